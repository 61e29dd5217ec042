package flinkrest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

const srcOp = "Source__Kafka_Source"

func vertexURL(vid, rest string) string { return "/jobs/" + jobID + "/vertices/" + vid + rest }

// metricIDs reads the ids of a metric listing, in order, checking that the
// entries carry nothing but ids.
func metricIDs(t *testing.T, raw []byte) []string {
	t.Helper()
	var list []map[string]any
	require.NoError(t, json.Unmarshal(raw, &list), string(raw))
	ids := make([]string, 0, len(list))
	for _, m := range list {
		require.Len(t, m, 1, "a listing entry is {\"id\":…}: %v", m)
		ids = append(ids, m["id"].(string))
	}
	return ids
}

func TestVertexMetrics(t *testing.T) {
	h := storedHandler(t, newFake("1.20"))

	// Without ?get: the ids, "<subtask>." prefixed, in the store's order.
	raw := get(t, h, vertexURL(srcID, "/metrics"))
	require.Equal(t, byte('['), raw[0], "a bare JSON array")
	ids := metricIDs(t, raw)
	for _, id := range ids {
		assert.True(t, strings.HasPrefix(id, "0.") || strings.HasPrefix(id, "1."), id)
	}
	assert.Contains(t, ids, "0.busyTimeMsPerSecond")
	assert.Contains(t, ids, "1.isBackPressured")
	assert.Contains(t, ids, "0."+srcOp+".numRecordsInPerSecond")
	assert.Contains(t, ids, "0."+srcOp+".pendingRecords")
	assert.NotContains(t, ids, "1."+srcOp+".pendingRecords", "not registered before the reader's first fetch")
	assert.Contains(t, ids, "0."+srcOp+".KafkaSourceReader.topic.orders_v1.partition.2.currentOffset")
	assert.Contains(t, ids, "1."+srcOp+".KafkaSourceReader.topic.orders_v1.partition.3.committedOffset")
	assert.Contains(t, ids, "1."+srcOp+".KafkaSourceReader.commitsSucceeded")
	assert.Equal(t, ids, metricIDs(t, get(t, h, vertexURL(srcID, "/metrics"))), "a deterministic order")

	// With ?get: values as strings as the metric dump holds them; unknown
	// ids silently dropped.
	vals := metricValues(t, get(t, h, vertexURL(srcID, "/metrics?get=0.busyTimeMsPerSecond,0.idleTimeMsPerSecond,"+
		"0.backPressuredTimeMsPerSecond,0.accumulateBusyTimeMs,0.numRecordsOut,0.numRecordsOutPerSecond,"+
		"0.isBackPressured,0."+srcOp+".numRecordsIn,0."+srcOp+".pendingRecords,1."+srcOp+".pendingRecords,"+
		"0."+srcOp+".KafkaSourceReader.topic.orders_v1.partition.0.currentOffset,"+
		"0."+srcOp+".KafkaSourceReader.topic.orders_v1.partition.2.committedOffset,no.such.metric")))
	assert.Equal(t, map[string]string{
		"0.busyTimeMsPerSecond":          "734.0",       // Gauge<Double>
		"0.idleTimeMsPerSecond":          "0",           // Gauge<Long>
		"0.backPressuredTimeMsPerSecond": "266",         // Gauge<Long>
		"0.accumulateBusyTimeMs":         "1.2345678E7", // Gauge<Double>, Double.toString
		"0.numRecordsOut":                "12345678",    // Counter: a long
		"0.numRecordsOutPerSecond":       "15234.55",    // Meter: a double
		"0.isBackPressured":              "false",
		"0." + srcOp + ".numRecordsIn":   "12345678",
		"0." + srcOp + ".pendingRecords": "48210",
		"0." + srcOp + ".KafkaSourceReader.topic.orders_v1.partition.0.currentOffset":   "45231007",
		"0." + srcOp + ".KafkaSourceReader.topic.orders_v1.partition.2.committedOffset": "-1",
	}, vals)

	// NaN busy time of a task that does not measure it.
	assert.Equal(t, map[string]string{"1.busyTimeMsPerSecond": "NaN"},
		metricValues(t, get(t, h, vertexURL(winID, "/metrics?get=1.busyTimeMsPerSecond"))))

	// Subtask scope: the same metrics without the prefix.
	sub := metricValues(t, get(t, h, vertexURL(srcID, "/subtasks/0/metrics?get=busyTimeMsPerSecond,"+srcOp+".pendingRecords,0.busyTimeMsPerSecond")))
	assert.Equal(t, map[string]string{"busyTimeMsPerSecond": "734.0", srcOp + ".pendingRecords": "48210"}, sub)
	subIDs := metricIDs(t, get(t, h, vertexURL(srcID, "/subtasks/1/metrics")))
	assert.Contains(t, subIDs, "isBackPressured")
	assert.NotContains(t, subIDs, srcOp+".pendingRecords")

	// A window operator is no source: no operator-scope ids.
	for _, id := range metricIDs(t, get(t, h, vertexURL(winID, "/metrics"))) {
		assert.NotContains(t, id, "KafkaSourceReader")
		assert.NotContains(t, id, "pendingRecords")
	}
}

// aggregated reads an AggregatedMetricsResponseBody (a bare array).
func aggregated(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var list []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&list), string(raw))
	return list
}

func TestAggregatedSubtaskMetrics(t *testing.T) {
	h := storedHandler(t, newFake("1.20"))
	agg := func(query string) []map[string]any {
		return aggregated(t, get(t, h, vertexURL(srcID, "/subtasks/metrics"+query)))
	}

	// Values are JSON numbers in Double.toString form; all aggregations
	// when none is asked for (skew included from 1.20).
	raw := get(t, h, vertexURL(srcID, "/subtasks/metrics?get=numRecordsOut"))
	assert.Equal(t, `[{"id":"numRecordsOut","min":2000000.0,"max":1.2345678E7,"avg":7172839.0,"sum":1.4345678E7,"skew":72.1170376192746}]`,
		string(raw))

	// agg is case-insensitive; only the requested aggregations appear, in
	// AggregatedMetric's field order; ids in the requested order.
	got := agg("?get=busyTimeMsPerSecond,numRecordsOut&agg=SUM,Max")
	require.Len(t, got, 2)
	assert.Equal(t, map[string]any{"id": "busyTimeMsPerSecond", "max": json.Number("734.0"), "sum": json.Number("854.0")}, got[0])
	assert.Equal(t, "numRecordsOut", got[1]["id"])
	assert.Equal(t, []string{"id", "max", "sum"}, keysAt(t, get(t, h, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond&agg=sum,max")), "0"))

	// Non-numeric metrics are skipped, the rest answered.
	got = agg("?get=isBackPressured,busyTimeMsPerSecond&agg=avg")
	assert.Equal(t, []map[string]any{{"id": "busyTimeMsPerSecond", "avg": json.Number("427.0")}}, got)

	// pendingRecords exists on subtask 0 only: aggregated over it.
	got = agg("?get=" + srcOp + ".pendingRecords&agg=sum")
	assert.Equal(t, []map[string]any{{"id": srcOp + ".pendingRecords", "sum": json.Number("48210.0")}}, got)
	// On subtask 1 alone it has no value anywhere: the whole answer is [],
	// other ids included.
	assert.Equal(t, "[]", string(get(t, h, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond,"+srcOp+".pendingRecords&subtasks=1"))))
	assert.Equal(t, "[]", string(get(t, h, vertexURL(srcID, "/subtasks/metrics?get=no.such.metric,busyTimeMsPerSecond"))))

	// subtasks= ranges select the subtasks (malformed parts ignored,
	// repeats counted again, unknown indices skipped).
	assert.Equal(t, json.Number("734.0"), agg("?get=busyTimeMsPerSecond&agg=sum&subtasks=0")[0]["sum"])
	assert.Equal(t, json.Number("854.0"), agg("?get=busyTimeMsPerSecond&agg=sum&subtasks=0-1")[0]["sum"])
	assert.Equal(t, json.Number("854.0"), agg("?get=busyTimeMsPerSecond&agg=sum&subtasks=1,x,0,7")[0]["sum"])
	assert.Equal(t, json.Number("1468.0"), agg("?get=busyTimeMsPerSecond&agg=sum&subtasks=0,0")[0]["sum"])

	// Without ?get: the union of the subtasks' ids, unprefixed.
	ids := metricIDs(t, get(t, h, vertexURL(srcID, "/subtasks/metrics")))
	assert.Contains(t, ids, srcOp+".pendingRecords")
	assert.Contains(t, ids, "busyTimeMsPerSecond")
	assert.NotContains(t, ids, "0.busyTimeMsPerSecond")
	assert.Equal(t, 1, countOf(ids, "busyTimeMsPerSecond"), "a union")

	// NaN propagates as in Math.min/max and sums, written "NaN".
	raw = get(t, storedHandler(t, newFake("1.20")), vertexURL(winID, "/subtasks/metrics?get=busyTimeMsPerSecond"))
	assert.Equal(t, `[{"id":"busyTimeMsPerSecond","min":"NaN","max":"NaN","avg":"NaN","sum":"NaN","skew":"NaN"}]`, string(raw))

	// An unknown aggregation is a 400.
	code, body := do(t, h, http.MethodGet, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond&agg=median"), "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.JSONEq(t, `{"errors":["Bad request, could not parse parameters: Cannot resolve query parameter (agg) from value \"median\"."]}`, string(body))
}

func countOf(s []string, x string) int {
	n := 0
	for _, v := range s {
		if v == x {
			n++
		}
	}
	return n
}

func TestPendingRecordsNotYetRegistered(t *testing.T) {
	// Right after (re)start no reader has fetched: no subtask has
	// pendingRecords, so a query that asks for it (as the operator's
	// autoscaler does, together with other metrics) gets [].
	f := newFake("1.20")
	for i := range f.view.Job.Vertices[0].Subtasks {
		f.view.Job.Vertices[0].Subtasks[i].PendingRecords = nil
	}
	h := storedHandler(t, f)
	q := "?get=numRecordsInPerSecond," + srcOp + ".numRecordsInPerSecond," + srcOp + ".pendingRecords&agg=sum"
	assert.Equal(t, "[]", string(get(t, h, vertexURL(srcID, "/subtasks/metrics"+q))))
	got := aggregated(t, get(t, h, vertexURL(srcID, "/subtasks/metrics?get="+srcOp+".numRecordsInPerSecond&agg=sum")))
	assert.Equal(t, []map[string]any{{"id": srcOp + ".numRecordsInPerSecond", "sum": json.Number("15735.05")}}, got)
}

func TestSkewByVersion(t *testing.T) {
	for _, v := range versions {
		h := storedHandler(t, newFake(v))
		raw := get(t, h, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond"))
		keys := keysAt(t, raw, "0")
		code, body := do(t, h, http.MethodGet, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond&agg=skew"), "")
		if v == "1.18" {
			assert.Equal(t, []string{"id", "min", "max", "avg", "sum"}, keys)
			assert.Equal(t, http.StatusBadRequest, code, "1.18 has no SKEW aggregation")
			continue
		}
		assert.Equal(t, []string{"id", "min", "max", "avg", "sum", "skew"}, keys, v)
		require.Equal(t, http.StatusOK, code)
		// Mean absolute deviation over the mean: |427−734| = |427−120| = 307.
		assert.Equal(t, `[{"id":"busyTimeMsPerSecond","skew":71.89695550351288}]`, string(body))
	}
}

func TestTaskManagerAggregatedMetrics(t *testing.T) {
	h := storedHandler(t, newFake("2.1"))
	all := aggregated(t, get(t, h, "/taskmanagers/metrics?get=Status.JVM.Memory.Heap.Max&agg=sum,min"))
	one := aggregated(t, get(t, h, "/taskmanagers/metrics?get=Status.JVM.Memory.Heap.Max&agg=sum,min&taskmanagers="+tm2))
	require.Len(t, all, 1)
	require.Len(t, one, 1)
	assert.Equal(t, all[0]["min"], one[0]["min"])
	assert.Equal(t, "[]", string(get(t, h, "/taskmanagers/metrics?get=Status.JVM.Memory.Heap.Max&taskmanagers=nobody")))
	assert.Contains(t, metricIDs(t, get(t, h, "/taskmanagers/metrics")), "Status.JVM.Memory.Heap.Used")
	assert.Contains(t, metricValues(t, get(t, h, "/taskmanagers/"+tm1+"/metrics?get=Status.JVM.Memory.Heap.Max")), "Status.JVM.Memory.Heap.Max")
}

func TestOperatorMetricNames(t *testing.T) {
	assert.Equal(t, "Source__Kafka_Source", restScopeComponent("Source: Kafka Source"))
	assert.Equal(t, "a_b_c_d-e/f(g)", restScopeComponent("a.b:c,d-e/f(g)"), "only ' ', '.', ':' and ',' are replaced")
	long := "Source: " + strings.Repeat("x", 100)
	name := operatorMetricName(sim.VertexView{OperatorName: long})
	assert.Len(t, name, 80)
	assert.Equal(t, "Source: Kafka Source", operatorMetricName(sim.VertexView{Name: "Source: Kafka Source -> Map"}),
		"without OperatorName, the chain's head")

	f := newFake("1.20")
	f.view.Job.Vertices[0].OperatorName = long
	ids := metricIDs(t, get(t, storedHandler(t, f), vertexURL(srcID, "/subtasks/0/metrics")))
	assert.Contains(t, ids, restScopeComponent(long[:80])+".pendingRecords")
}
