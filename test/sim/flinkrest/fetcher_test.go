package flinkrest

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// change edits the fake cluster's view.
func (f *fakeCluster) change(edit func(v *sim.View)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(&f.view)
}

// busyMax is the source's busyTimeMsPerSecond max as the aggregated
// subtask metrics answer it ("" when the answer is empty).
func busyMax(t *testing.T, h http.Handler) string {
	t.Helper()
	got := aggregated(t, get(t, h, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond&agg=max")))
	if len(got) == 0 {
		return ""
	}
	return string(got[0]["max"].(json.Number))
}

// Metrics come from a MetricStore as the JobManager's MetricFetcher fills
// it: a fetch as the tasks start; then on demand, at most every update
// interval of the cluster's clock, the triggering request answered from
// the previous fetch. Job details, checkpoint statistics and the
// TaskManager list stay live.
func TestMetricStore(t *testing.T) {
	f := newFake("1.20")
	h := NewHandler(f)
	later := func(d time.Duration) {
		f.change(func(v *sim.View) { v.Now = v.Now.Add(d) })
	}

	// The first request (an hour after the tasks started) is answered from
	// the fetch taken as they started: busy 1000 ms/s, no records, offsets
	// -1, no pendingRecords. It makes the JobManager fetch.
	raw := get(t, h, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond,numRecordsOutPerSecond,"+srcOp+".numRecordsIn&agg=max,sum"))
	assert.Equal(t, `[{"id":"busyTimeMsPerSecond","max":1000.0,"sum":2000.0},{"id":"numRecordsOutPerSecond","max":0.0,"sum":0.0},{"id":"Source__Kafka_Source.numRecordsIn","max":0.0,"sum":0.0}]`, string(raw))
	// The next one sees the fetch.
	assert.Equal(t, "734.0", busyMax(t, h))
	assert.Equal(t, map[string]string{
		"0." + srcOp + ".KafkaSourceReader.topic.orders_v1.partition.0.currentOffset": "45231007",
		"0." + srcOp + ".pendingRecords":                                              "48210",
	}, metricValues(t, get(t, h, vertexURL(srcID, "/metrics?get=0."+srcOp+".KafkaSourceReader.topic.orders_v1.partition.0.currentOffset,0."+srcOp+".pendingRecords"))))

	// The subtask works harder, a checkpoint completes, a TaskManager
	// joins: the live endpoints say so at once, the metrics not before a
	// fetch more than 10 s after the last one.
	f.change(func(v *sim.View) {
		v.Job.Vertices[0].Subtasks[0].BusyTimeMsPerSecond = 900
		v.Job.Checkpoints.Completed++
		tm := v.TaskManagers[1]
		tm.ID = "orders-agg-taskmanager-1-3"
		v.TaskManagers = append(v.TaskManagers, tm)
	})
	later(5 * time.Second)
	assert.Equal(t, "734.0", busyMax(t, h))
	assert.Equal(t, json.Number("41"), obj(t, get(t, h, "/jobs/"+jobID+"/checkpoints"))["counts"].(map[string]any)["completed"])
	assert.Equal(t, map[string]string{"numberOfCompletedCheckpoints": "40"},
		metricValues(t, get(t, h, "/jobs/"+jobID+"/metrics?get=numberOfCompletedCheckpoints")))
	assert.Len(t, obj(t, get(t, h, "/taskmanagers"))["taskmanagers"], 3)
	assert.Equal(t, "[]", string(get(t, h, "/taskmanagers/orders-agg-taskmanager-1-3/metrics?get=Status.JVM.Memory.Heap.Max")))
	assert.Equal(t, json.Number(itoa(int(fixtureNow.Add(5*time.Second).UnixMilli()))), obj(t, get(t, h, "/jobs/"+jobID))["now"])

	later(5 * time.Second) // 10 s: Flink fetches only when more than that
	assert.Equal(t, "734.0", busyMax(t, h))
	later(time.Millisecond)
	assert.Equal(t, "734.0", busyMax(t, h), "the triggering request: the previous fetch")
	assert.Equal(t, "900.0", busyMax(t, h))
	assert.Equal(t, map[string]string{"numberOfCompletedCheckpoints": "41"},
		metricValues(t, get(t, h, "/jobs/"+jobID+"/metrics?get=numberOfCompletedCheckpoints")))
	assert.Contains(t, metricValues(t, get(t, h, "/taskmanagers/orders-agg-taskmanager-1-3/metrics?get=Status.JVM.Memory.Heap.Max")), "Status.JVM.Memory.Heap.Max")

	// A parameter Flink rejects never reaches the handler: no fetch.
	f.change(func(v *sim.View) { v.Job.Vertices[0].Subtasks[0].BusyTimeMsPerSecond = 600 })
	later(time.Minute)
	code, _ := do(t, h, http.MethodGet, vertexURL(srcID, "/subtasks/metrics?get=busyTimeMsPerSecond&agg=median"), "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "900.0", busyMax(t, h))
	assert.Equal(t, "600.0", busyMax(t, h))

	// Resubmitted: while the new job initializes the store knows only the
	// old one; once its tasks run, the first answer is the fetch as they
	// started.
	const newJob = "0000000000000000000000000000beef"
	var subtasks [][]sim.SubtaskView
	f.change(func(v *sim.View) {
		v.Job.ID, v.Job.State = newJob, "INITIALIZING"
		v.Job.Timestamps = map[string]int64{"INITIALIZING": v.Now.UnixMilli()}
		for i := range v.Job.Vertices {
			subtasks = append(subtasks, v.Job.Vertices[i].Subtasks)
			v.Job.Vertices[i].Subtasks = nil
		}
	})
	later(time.Minute)
	newURL := "/jobs/" + newJob + "/vertices/" + srcID + "/subtasks/metrics?get=busyTimeMsPerSecond&agg=max"
	assert.Equal(t, "[]", string(get(t, h, "/jobs/"+newJob+"/metrics?get=uptime")), "not fetched yet")
	assert.Equal(t, "[]", string(get(t, h, newURL)), "no task yet")
	assert.Equal(t, map[string]string{"uptime": "0"}, metricValues(t, get(t, h, "/jobs/"+newJob+"/metrics?get=uptime")))
	f.change(func(v *sim.View) {
		v.Job.State = "RUNNING"
		v.Job.Timestamps["RUNNING"] = v.Now.UnixMilli()
		for i := range v.Job.Vertices {
			v.Job.Vertices[i].Subtasks = subtasks[i]
		}
	})
	later(3 * time.Second) // 3 s after the tasks started
	assert.Equal(t, `[{"id":"busyTimeMsPerSecond","max":1000.0}]`, string(get(t, h, newURL)))
	assert.Equal(t, map[string]string{"uptime": "0"}, metricValues(t, get(t, h, "/jobs/"+newJob+"/metrics?get=uptime")))
	later(8 * time.Second) // 11 s
	assert.Equal(t, `[{"id":"busyTimeMsPerSecond","max":1000.0}]`, string(get(t, h, newURL)))
	assert.Equal(t, `[{"id":"busyTimeMsPerSecond","max":600.0}]`, string(get(t, h, newURL)))
	assert.Equal(t, map[string]string{"uptime": "11000"}, metricValues(t, get(t, h, "/jobs/"+newJob+"/metrics?get=uptime")))
}

// With an update interval of 0 every metric is live.
func TestMetricStoreDisabled(t *testing.T) {
	f := newFake("1.20")
	h := NewHandler(f, WithMetricFetcherInterval(0))
	assert.Equal(t, "734.0", busyMax(t, h))
	f.change(func(v *sim.View) { v.Job.Vertices[0].Subtasks[0].BusyTimeMsPerSecond = 900 })
	assert.Equal(t, "900.0", busyMax(t, h))
}

// A fetch as the tasks start holds the structure of the running job with
// Flink's initial values; a task that does not measure busy time keeps NaN.
func TestJustStarted(t *testing.T) {
	v := fixtureView("1.20")
	start := time.UnixMilli(v.Job.Timestamps["RUNNING"])
	js := justStarted(v, start)
	assert.Equal(t, start, js.Now)
	require.Len(t, js.Job.Vertices, 2)
	src := js.Job.Vertices[0].Subtasks[0]
	assert.Equal(t, sim.SubtaskView{
		Index: 0, TaskManagerID: tm1, Host: "10.244.1.17", BusyTimeMsPerSecond: 1000,
		Partitions: []sim.PartitionView{
			{Topic: "orders.v1", Partition: 0, CurrentOffset: -1, CommittedOffset: -1},
			{Topic: "orders.v1", Partition: 2, CurrentOffset: -1, CommittedOffset: -1},
		},
	}, src)
	win := js.Job.Vertices[1].Subtasks[1]
	assert.True(t, win.BusyTimeMsPerSecond != win.BusyTimeMsPerSecond, "NaN stays NaN")
	// The live view is not touched.
	assert.Equal(t, 734.0, v.Job.Vertices[0].Subtasks[0].BusyTimeMsPerSecond)
	assert.Equal(t, int64(45_231_007), v.Job.Vertices[0].Subtasks[0].Partitions[0].CurrentOffset)
}
