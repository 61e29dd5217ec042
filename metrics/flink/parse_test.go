package flink

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMetricValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  bool
	}{
		{"734.0", 734, false},
		{"266", 266, false},
		{"-1", -1, false},
		{"1.2345678E7", 1.2345678e7, false},
		{"4.9E-324", 4.9e-324, false},
		{" 12.5 ", 12.5, false},
		{"Infinity", math.Inf(1), false},
		{"-Infinity", math.Inf(-1), false},
		{"1e400", math.Inf(1), false},
		{"true", 0, true},
		{"", 0, true},
		{"inf", 0, true},
		{"nan", 0, true},
		{"0x1p-2", 0, true},
		{"1_000", 0, true},
		{"n/a", 0, true},
		{"1.0.0", 0, true},
	} {
		got, err := ParseMetricValue(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	v, err := ParseMetricValue("NaN")
	require.NoError(t, err)
	assert.True(t, math.IsNaN(v))
}

// Aggregated answers as Flink writes them (reference §1): numbers, strings,
// NaN, null; unknown fields tolerated.
func TestDecodeAggregated(t *testing.T) {
	var items []AggregatedMetric
	require.NoError(t, json.Unmarshal([]byte(`[{"id":"busyTimeMsPerSecond","min":120.0,"max":734.0,"avg":431.5,"sum":1726.0},
		{"id":"x","max":"NaN","avg":"1.2345678E7","sum":null,"extra":{"a":1}}]`), &items))
	assert.Equal(t, 734.0, float64(*items[0].Max))
	assert.Nil(t, items[0].Skew)
	assert.True(t, math.IsNaN(float64(*items[1].Max)))
	assert.Equal(t, 1.2345678e7, *items[1].Avg.Ptr())
	assert.Nil(t, items[1].Sum)
	assert.Error(t, json.Unmarshal([]byte(`[{"id":"x","max":"true"}]`), &items))
	assert.Error(t, json.Unmarshal([]byte(`{"id":"x"}`), &items))
}

// Job details with a plan given as an object and as a string (older
// JobManagers), a source node without inputs.
func TestDecodeJobDetails(t *testing.T) {
	plan := `{"jid":"j","name":"n","type":"STREAMING","nodes":[{"id":"a","parallelism":4,"operator":"","operator_strategy":"","description":"Source: Kafka Source<br/>","optimizer_properties":{}},{"id":"b","parallelism":2,"description":"Sink","inputs":[{"num":0,"id":"a","ship_strategy":"HASH","exchange":"pipelined_bounded"}]}]}`
	for name, p := range map[string]string{"object": plan, "string": strconv.Quote(plan)} {
		var d JobDetails
		require.NoError(t, json.Unmarshal([]byte(`{"jid":"j","state":"RUNNING","timestamps":{"RUNNING":1717239600000,"FAILED":0},"vertices":[{"id":"a","name":"Source","parallelism":4,"maxParallelism":128,"slotSharingGroupId":"ff","status":"RUNNING","metrics":{"accumulated-busy-time":"NaN"}}],"plan":`+p+`,"pending-operators":0}`), &d), name)
		require.NoError(t, d.validate())
		assert.Len(t, d.Plan.Nodes, 2, name)
		assert.Empty(t, d.Plan.Nodes[0].Inputs)
		assert.Equal(t, "HASH", d.Plan.Nodes[1].Inputs[0].ShipStrategy)
		assert.Equal(t, time.UnixMilli(1717239600000).UTC(), d.RunningSince())
	}
	var d JobDetails
	require.NoError(t, json.Unmarshal([]byte(`{"jid":"j","state":"RUNNING"}`), &d))
	assert.ErrorContains(t, d.validate(), "no vertices")
}

// slotSharingGroupId, reported from Flink 1.20 on, is told apart from its
// absence (older JobManagers) even when empty.
func TestDecodeSlotSharingGroup(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		group       string
		reported    bool
	}{
		{"1.20+: the group's id", `"slotSharingGroupId":"a1b2c3d4e5f60718293a4b5c6d7e8f90",`, "a1b2c3d4e5f60718293a4b5c6d7e8f90", true},
		{"before 1.20: absent", ``, "", false},
		{"null", `"slotSharingGroupId":null,`, "", false},
		{"empty, but reported", `"slotSharingGroupId":"",`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v JobVertex
			require.NoError(t, json.Unmarshal([]byte(`{"id":"a",`+tc.field+`"name":"Source","parallelism":4,"maxParallelism":128,"status":"RUNNING"}`), &v))
			assert.Equal(t, tc.group, v.SlotSharingGroupID)
			assert.Equal(t, tc.reported, v.SlotSharingGroupReported)
			assert.Equal(t, "a", v.ID)
			assert.Equal(t, 4, v.Parallelism)
			assert.Equal(t, "RUNNING", v.Status)
		})
	}
	var v JobVertex
	assert.Error(t, json.Unmarshal([]byte(`{"id":"a","slotSharingGroupId":7}`), &v))
	// In job details, per vertex.
	var d JobDetails
	require.NoError(t, json.Unmarshal([]byte(`{"jid":"j","state":"RUNNING","vertices":[{"id":"a","slotSharingGroupId":"ff"},{"id":"b"}]}`), &d))
	assert.True(t, d.Vertices[0].SlotSharingGroupReported)
	assert.False(t, d.Vertices[1].SlotSharingGroupReported)
}

func TestDecodeSavepointStatus(t *testing.T) {
	var s SavepointStatus
	require.NoError(t, json.Unmarshal([]byte(`{"status":{"id":"IN_PROGRESS"},"operation":null}`), &s))
	assert.False(t, s.Done())
	assert.NoError(t, s.Err())
	s = SavepointStatus{}
	require.NoError(t, json.Unmarshal([]byte(`{"status":{"id":"COMPLETED"},"operation":{"location":"s3://sp/savepoint-1"}}`), &s))
	assert.Equal(t, "s3://sp/savepoint-1", s.Location())
	assert.NoError(t, s.Err())
	s = SavepointStatus{}
	require.NoError(t, json.Unmarshal([]byte(`{"status":{"id":"COMPLETED"},"operation":{"failure-cause":{"class":"java.util.concurrent.CompletionException","stack-trace":"java.util.concurrent.CompletionException: Checkpoint expired\n\tat x","serialized-throwable":"AA=="}}}`), &s))
	assert.ErrorContains(t, s.Err(), "Checkpoint expired")
}

func TestParsePartitionMetricID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want PartitionMetric
		ok   bool
	}{
		{"0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset", PartitionMetric{0, "orders_v1", 3, "currentOffset"}, true},
		{"12.Source__K.KafkaSourceReader.topic.a-b.partition.10.committedOffset", PartitionMetric{12, "a-b", 10, "committedOffset"}, true},
		{"1.Source__K.kafkaCluster.c1.KafkaSourceReader.topic.t.partition.0.currentOffset", PartitionMetric{1, "t", 0, "currentOffset"}, true},
		{"Source__K.KafkaSourceReader.topic.t.partition.0.currentOffset", PartitionMetric{}, false}, // aggregated id: no subtask
		{"0.Source__K.KafkaSourceReader.topic.t.partition.x.currentOffset", PartitionMetric{}, false},
		{"0.Source__K.KafkaSourceReader.commitsSucceeded", PartitionMetric{}, false},
		{"0.Source__K.KafkaSourceReader.topic.t.partition.0.currentOffsetX", PartitionMetric{}, false},
		{"99999999999999999999.S.KafkaSourceReader.topic.t.partition.0.currentOffset", PartitionMetric{}, false},
	} {
		got, ok := ParsePartitionMetricID(tc.id)
		assert.Equal(t, tc.ok, ok, tc.id)
		assert.Equal(t, tc.want, got, tc.id)
	}
}

func TestParseFlinkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30 s": 30 * time.Second, "500ms": 500 * time.Millisecond, "1min": time.Minute, "180000": 3 * time.Minute,
		"2 h": 2 * time.Hour, "1m30s": 90 * time.Second, "10 min": 10 * time.Minute,
	} {
		got, ok := ParseFlinkDuration(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "fast", "99999999999999999 d"} {
		_, ok := ParseFlinkDuration(in)
		assert.False(t, ok, in)
	}
}

func FuzzParseMetricValue(f *testing.F) {
	for _, s := range []string{"734.0", "NaN", "Infinity", "-Infinity", "1.2345678E7", "true", "", "0x1p3", "1e400", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMetricValue(s)
		if err != nil {
			return
		}
		tr := strings.TrimSpace(s)
		if math.IsNaN(v) && tr != "NaN" {
			t.Fatalf("%q parsed as NaN", s)
		}
		// A number round-trips through a JSON string value too.
		var f Float
		b, _ := json.Marshal(s)
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%q: string form: %v", s, err)
		}
		if !(math.IsNaN(v) && math.IsNaN(float64(f))) && float64(f) != v {
			t.Fatalf("%q: %v vs %v", s, f, v)
		}
	})
}

func FuzzParsePartitionMetricID(f *testing.F) {
	f.Add("0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset")
	f.Add("1.x.KafkaSourceReader.topic.a.b.partition.0.committedOffset")
	f.Add("busyTimeMsPerSecond")
	f.Fuzz(func(t *testing.T, id string) {
		pm, ok := ParsePartitionMetricID(id)
		if !ok {
			return
		}
		if pm.Subtask < 0 || pm.Partition < 0 || pm.Topic == "" {
			t.Fatalf("%q: %+v", id, pm)
		}
		if pm.Kind != "currentOffset" && pm.Kind != "committedOffset" {
			t.Fatalf("%q: kind %q", id, pm.Kind)
		}
		// The parts are in the id, in order.
		want := strconv.Itoa(pm.Subtask) + "."
		if !strings.HasPrefix(id, want) && !strings.HasPrefix(strings.TrimLeft(id, "0"), want) && pm.Subtask != 0 {
			t.Fatalf("%q: subtask %d", id, pm.Subtask)
		}
		suffix := ".partition." + strconv.Itoa(pm.Partition) + "." + pm.Kind
		if !strings.HasSuffix(id, suffix) && !strings.Contains(id, ".topic."+pm.Topic+".partition.") {
			t.Fatalf("%q: %+v", id, pm)
		}
	})
}
