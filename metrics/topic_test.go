package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The spellings of a Kafka topic: REST's metric ids replace ' ', '.', ':'
// and ',' (SanitizedTopic); the Prometheus reporter everything outside
// [a-zA-Z0-9:_] (here: '.' and '-'; Kafka topics use [a-zA-Z0-9._-]).
func TestTopicSpellings(t *testing.T) {
	for _, tc := range []struct {
		kafka, rest, prom, canonical string
	}{
		{"orders", "orders", "orders", "orders"},
		{"orders.v1", "orders_v1", "orders_v1", "orders_v1"},
		{"orders-v1", "orders-v1", "orders_v1", "orders_v1"},
		{"orders_v1", "orders_v1", "orders_v1", "orders_v1"},
		{"a.b-c_d", "a_b-c_d", "a_b_c_d", "a_b_c_d"},
		{"__consumer-offsets.x", "__consumer-offsets_x", "__consumer_offsets_x", "__consumer_offsets_x"},
	} {
		assert.Equal(t, tc.rest, SanitizedTopic(tc.kafka), tc.kafka)
		for _, spelling := range []string{tc.kafka, tc.rest, tc.prom} {
			assert.Equal(t, tc.canonical, CanonicalTopic(spelling), "%s spelled %s", tc.kafka, spelling)
		}
	}
}

// TestOwnerMatchesItsKafkaTopic: a partition owner, however Flink's
// collectors spell its topic, finds the brokers' partition; a spelling
// several of the brokers' topics share finds none.
func TestOwnerMatchesItsKafkaTopic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		topics []string // the brokers'
		owner  string   // as a collector spells it
		want   string   // the brokers' topic matched, "" for none
		why    string
	}{
		{"orders.v1 as REST spells it", []string{"orders.v1"}, "orders_v1", "orders.v1", ""},
		{"orders.v1 as the reporter spells it", []string{"orders.v1"}, "orders_v1", "orders.v1", ""},
		{"orders-v1 as REST spells it", []string{"orders-v1"}, "orders-v1", "orders-v1", ""},
		{"orders-v1 as the reporter spells it", []string{"orders-v1"}, "orders_v1", "orders-v1", ""},
		{"orders_v1, spelled alike by both", []string{"orders_v1"}, "orders_v1", "orders_v1", ""},
		{"a.b-c_d as REST spells it", []string{"a.b-c_d", "orders"}, "a_b-c_d", "a.b-c_d", ""},
		{"a.b-c_d as the reporter spells it", []string{"a.b-c_d", "orders"}, "a_b_c_d", "a.b-c_d", ""},
		{"orders.v1 and orders-v1: REST's orders_v1 is orders.v1", []string{"orders.v1", "orders-v1"}, "orders_v1", "orders.v1", ""},
		{"orders.v1 and orders-v1: REST's orders-v1", []string{"orders.v1", "orders-v1"}, "orders-v1", "orders-v1", ""},
		{"orders-v1 and orders_v1: REST's orders_v1 (the reporter's cannot be told from it)", []string{"orders-v1", "orders_v1"}, "orders_v1", "orders_v1", ""},
		{"orders.v1 and orders_v1: REST spells both orders_v1", []string{"orders.v1", "orders_v1"}, "orders_v1", "",
			"matches partitions of several topics (orders.v1, orders_v1): their names are alike once sanitized"},
		{"orders.v1, orders-v1, orders_v1: the reporter's orders_v1 is ambiguous", []string{"orders.v1", "orders-v1", "orders_v1"}, "orders_v1", "",
			"matches partitions of several topics (orders.v1, orders_v1): their names are alike once sanitized"},
		{"a topic the brokers did not report", []string{"orders.v1"}, "payments", "", "not reported by the brokers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(5 * time.Minute)
			ks := KafkaSample{At: t0}
			for _, topic := range tc.topics {
				ks.Partitions = append(ks.Partitions, KafkaPartition{Topic: topic, Partition: 0, End: 10, Committed: 5})
			}
			w.AddKafka(ks)
			kp, why := w.kafkaParts().owned(PartitionOwner{Topic: tc.owner, Partition: 0, Subtask: 0})
			assert.Equal(t, tc.why, why)
			if tc.want == "" {
				assert.Nil(t, kp)
				return
			}
			require.NotNil(t, kp)
			assert.Equal(t, tc.want, kp.topic)
		})
	}
}

// TestSnapshotMatchesReporterTopics: the source's partitions as the
// Prometheus reporter names them ("orders_v1" for the topic orders-v1,
// which REST would name "orders-v1") get the brokers' lag and arrival.
func TestSnapshotMatchesReporterTopics(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 100; s <= 400; s += 30 {
		fs := flinkAt(s, "j1")
		fs.Vertices[0].PendingRecords = nil // the lag from the brokers
		fs.Vertices[0].Partitions = []PartitionOwner{{Topic: "orders_v1", Partition: 0, Subtask: 0}, {Topic: "orders_v1", Partition: 1, Subtask: 1}}
		w.AddFlink(fs)
		ks := kafkaAt(s)
		for i := range ks.Partitions {
			ks.Partitions[i].Topic = "orders-v1"
		}
		w.AddKafka(ks)
	}
	snap, missing := w.Snapshot()
	assert.Empty(t, missing)
	src := snap.Vertices[0]
	// As in TestWindowAssemblesTheSnapshot: 800 + 400 rec/s arrive; at
	// s=400 the lag is (320000 − 238000) + (160000 − 159000).
	require.NotNil(t, src.ArrivalRatePerSecond)
	assert.InDelta(t, 1200, float64(*src.ArrivalRatePerSecond), 1e-9)
	require.NotNil(t, src.LagRecords)
	assert.InDelta(t, 83000, float64(*src.LagRecords), 1e-9)
	require.Len(t, src.PartitionRates, 2)
	assert.Equal(t, "orders-v1", src.PartitionRates[0].Topic, "the brokers' name")
}
