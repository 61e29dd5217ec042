package flink

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

const (
	srcName  = "Source: Kafka Source"
	mapName  = "Map"
	sinkName = "Sink: Keyed Sink"
)

// testJob is a source reading 8 partitions of orders.v1, a rebalanced map
// and a keyed sink that is the bottleneck at 2500 rec/s (2 × 1000).
func testJob(t testing.TB, version string, rate *float64) *sim.Job {
	t.Helper()
	spec := sim.JobSpec{
		Name: "orders_agg", FlinkVersion: version, ConsumerGroup: "orders",
		Topics: []sim.TopicSpec{{Name: "orders.v1", Partitions: 8}},
		Vertices: []sim.VertexSpec{
			{Name: srcName, Parallelism: 2, Capacity: 5000, Selectivity: 1, Topics: []string{"orders.v1"}},
			{Name: mapName, Parallelism: 2, Capacity: 3000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: srcName, Ship: "REBALANCE"}}},
			{Name: sinkName, Parallelism: 2, Capacity: 1000, Selectivity: 0, Inputs: []sim.EdgeSpec{{From: mapName, Ship: "HASH"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 20 * time.Second},
	}
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return *rate })
	j, err := sim.NewJob(spec, sim.Options{Start: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Seed: 1, Load: load})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	return j
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// serve is a collector of h that does not wait after priming the
// fetcher, and opts.
func serve(t testing.TB, h http.Handler, opts ...CollectorOption) (*Collector, *countingTransport) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ct := &countingTransport{base: http.DefaultTransport}
	cl, err := New(srv.URL, WithHTTPClient(&http.Client{Transport: ct}))
	require.NoError(t, err)
	return NewCollector(cl, append([]CollectorOption{WithSleep(noSleep)}, opts...)...), ct
}

// noSleep is the wait after priming against the simulator: its clock
// stands still while a Collect runs, and its fetches land at once.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func subAgg(subs []sim.SubtaskView, f func(sim.SubtaskView) float64) (avg, maxV, sum float64) {
	maxV = math.Inf(-1)
	for _, st := range subs {
		v := f(st)
		sum += v
		maxV = math.Max(maxV, v)
	}
	return sum / float64(len(subs)), maxV, sum
}

// Collected samples equal the simulator's ground truth.
func TestCollectMatchesSimulator(t *testing.T) {
	rate := 2500.0
	j := testJob(t, "1.20", &rate)
	// Every request at every Collect (the ground truth is of each moment;
	// TestCollectSlowRefresh reuses).
	col, ct := serve(t, flinkrest.NewHandler(j), WithClock(j.Now), WithSlowRefresh(0))
	require.NoError(t, j.Advance(5*time.Minute))

	s, err := col.Collect(context.Background(), "")
	require.NoError(t, err)
	first := ct.n.Load()
	v := j.View()
	assertMatches(t, v, s)
	assertBottleneck(t, s)
	assert.Equal(t, "1.20.0", s.FlinkVersion)
	assert.Empty(t, s.Missing)

	// Steady state: the non-source discoveries and checkpoint config are
	// cached; the overview is read for the slots; the fetcher is primed
	// (the last poll is 30 s old).
	require.NoError(t, j.Advance(30*time.Second))
	ct.n.Store(0)
	s, err = col.Collect(context.Background(), v.Job.ID)
	require.NoError(t, err)
	assertMatches(t, j.View(), s)
	// (+1 each: the TaskManagers' memory metrics, aggregated; the first
	// Collect also discovers which a TaskManager has.)
	assert.Equal(t, int64(12), ct.n.Load(), "requests per steady-state Collect")
	assert.Equal(t, int64(17), first, "requests of the first Collect (with job listing)")
	// The cache keeps of each non-source vertex's ids those it reads.
	col.mu.Lock()
	for vid, ids := range col.ids {
		assert.Subset(t, []string{mBusy, mBackPressured, mIn, mOut, mInRate, mOutRate}, ids, vid)
		assert.Contains(t, ids, mBusy, vid)
	}
	assert.Len(t, col.ids, len(v.Job.Vertices)-1, "every vertex but the source")
	col.mu.Unlock()

	// 5 s later: no priming; the store the previous poll fetched.
	before := j.View()
	require.NoError(t, j.Advance(5*time.Second))
	ct.n.Store(0)
	s, err = col.Collect(context.Background(), v.Job.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(11), ct.n.Load(), "requests per Collect without priming")
	assert.Equal(t, j.View().Now.UTC(), s.At)
	_, _, want := subAgg(before.Job.Vertices[2].Subtasks, func(st sim.SubtaskView) float64 { return st.NumRecordsIn })
	require.NotNil(t, s.Vertices[2].NumRecordsIn)
	assert.InDelta(t, want, *s.Vertices[2].NumRecordsIn, 2, "the sink's records in, 5 s ago")
}

// assertBottleneck: the sink is saturated, the map backpressured, the
// backlog grows.
func assertBottleneck(t *testing.T, s metrics.FlinkSample) {
	t.Helper()
	assert.InDelta(t, 1000, s.Vertices[2].BusyTimeMsPerSecond.Max, 10)
	assert.Greater(t, s.Vertices[1].BackPressuredTimeMsPerSecond.Max, 100.0)
	assert.InDelta(t, 2000, *s.Vertices[2].NumRecordsInPerSecond, 50)
	assert.Greater(t, *s.Vertices[0].PendingRecords, 0.0)
}

func assertMatches(t *testing.T, v sim.View, s metrics.FlinkSample) {
	t.Helper()
	assert.Equal(t, v.Job.ID, s.JobID)
	assert.Equal(t, "orders_agg", s.JobName)
	assert.Equal(t, "RUNNING", s.State)
	assert.Equal(t, v.Now.UTC(), s.At)
	assert.Equal(t, time.UnixMilli(v.Job.Timestamps["RUNNING"]).UTC(), s.RunningSince)
	require.Len(t, s.Vertices, 3)
	for i, vx := range v.Job.Vertices {
		got := s.Vertices[i]
		p := float64(len(vx.Subtasks))
		assert.Equal(t, vx.ID, got.ID)
		assert.Equal(t, vx.Name, got.Name)
		assert.Equal(t, vx.Parallelism, got.Parallelism)
		assert.Equal(t, vx.MaxParallelism, got.MaxParallelism)
		if v.FlinkVersion != "1.18" { // slotSharingGroupId: 1.20+
			assert.Equal(t, vx.SlotSharingGroupID, got.SlotSharingGroup)
		}
		var ins []scaling.Input
		for _, e := range vx.Inputs {
			ins = append(ins, scaling.Input{ID: e.ID, ShipStrategy: e.Ship})
		}
		assert.Equal(t, ins, got.Inputs, vx.Name)

		// Doubles travel in Java's shortest form: equal to 1e-9 relative.
		// Long gauges and counters are truncated to whole numbers: up to
		// 1 per subtask.
		avg, mx, _ := subAgg(vx.Subtasks, func(st sim.SubtaskView) float64 { return st.BusyTimeMsPerSecond })
		require.NotNil(t, got.BusyTimeMsPerSecond, vx.Name)
		assert.InDelta(t, avg, got.BusyTimeMsPerSecond.Avg, 1e-6, vx.Name)
		assert.InDelta(t, mx, got.BusyTimeMsPerSecond.Max, 1e-6, vx.Name)
		avg, mx, _ = subAgg(vx.Subtasks, func(st sim.SubtaskView) float64 { return st.BackPressuredTimeMsPerSecond })
		require.NotNil(t, got.BackPressuredTimeMsPerSecond, vx.Name)
		assert.InDelta(t, avg, got.BackPressuredTimeMsPerSecond.Avg, 1, vx.Name)
		assert.InDelta(t, mx, got.BackPressuredTimeMsPerSecond.Max, 1, vx.Name)

		in := func(st sim.SubtaskView) float64 { return st.NumRecordsInPerSecond }
		inC := func(st sim.SubtaskView) float64 { return st.NumRecordsIn }
		if vx.IsSource {
			in = func(st sim.SubtaskView) float64 { return st.SourceNumRecordsInPerSecond }
			inC = func(st sim.SubtaskView) float64 { return st.SourceNumRecordsIn }
		}
		_, _, sum := subAgg(vx.Subtasks, in)
		require.NotNil(t, got.NumRecordsInPerSecond, vx.Name)
		assert.InDelta(t, sum, *got.NumRecordsInPerSecond, 1e-6*math.Max(1, sum), vx.Name)
		_, _, sum = subAgg(vx.Subtasks, func(st sim.SubtaskView) float64 { return st.NumRecordsOutPerSecond })
		require.NotNil(t, got.NumRecordsOutPerSecond, vx.Name)
		assert.InDelta(t, sum, *got.NumRecordsOutPerSecond, 1e-6*math.Max(1, sum), vx.Name)
		_, _, sum = subAgg(vx.Subtasks, inC)
		require.NotNil(t, got.NumRecordsIn, vx.Name)
		assert.InDelta(t, sum, *got.NumRecordsIn, p, vx.Name)
		_, _, sum = subAgg(vx.Subtasks, func(st sim.SubtaskView) float64 { return st.NumRecordsOut })
		require.NotNil(t, got.NumRecordsOut, vx.Name)
		assert.InDelta(t, sum, *got.NumRecordsOut, p, vx.Name)

		if !vx.IsSource {
			assert.Nil(t, got.PendingRecords)
			assert.Empty(t, got.Partitions)
			continue
		}
		_, _, sum = subAgg(vx.Subtasks, func(st sim.SubtaskView) float64 { return *st.PendingRecords })
		require.NotNil(t, got.PendingRecords)
		assert.InDelta(t, sum, *got.PendingRecords, p)
		var want []metrics.PartitionOwner
		for _, st := range vx.Subtasks {
			for _, pv := range st.Partitions {
				want = append(want, metrics.PartitionOwner{Topic: metrics.SanitizedTopic(pv.Topic), Partition: pv.Partition,
					Subtask: st.Index, CurrentOffset: pv.CurrentOffset, CommittedOffset: pv.CommittedOffset})
			}
		}
		sort.Slice(want, func(a, b int) bool { return want[a].Partition < want[b].Partition })
		assert.Equal(t, want, got.Partitions)
	}
	require.NotNil(t, s.Checkpoints)
	cp := v.Job.Checkpoints
	require.NotNil(t, cp.LatestCompleted)
	assert.Equal(t, metrics.CheckpointSample{
		Interval: 30 * time.Second, Timeout: 10 * time.Minute,
		LastDuration:  time.Duration(cp.LatestCompleted.EndToEndDurationMs) * time.Millisecond,
		LastStateSize: cp.LatestCompleted.StateSizeBytes,
		Completed:     cp.Completed, Failed: cp.Failed, InProgress: cp.InProgress,
	}, *s.Checkpoints)
	require.NotNil(t, s.TaskManagers)
	mem := s.TaskManagers.Memory
	s.TaskManagers.Memory = nil
	assert.Equal(t, metrics.TaskManagerSample{CPU: 2, Slots: 2, Replicas: len(v.TaskManagers)}, *s.TaskManagers)
	// The memory model of /taskmanagers and the gauges of
	// /taskmanagers/metrics, as the simulated TaskManagers report them.
	require.NotNil(t, mem)
	assert.Positive(t, mem.Process)
	assert.Equal(t, mem.Flink-mem.Heap-mem.Managed-mem.Network > 0, true, "off-heap is the rest of Flink memory: %+v", mem)
	require.NotNil(t, mem.HeapMax)
	require.NotNil(t, mem.HeapUsedMax)
	assert.LessOrEqual(t, *mem.HeapUsedMax, *mem.HeapMax)
	require.NotNil(t, mem.NetworkSegmentsTotal)
	assert.InDelta(t, float64(mem.Network)/32768, *mem.NetworkSegmentsTotal, 1, "network memory in 32 KiB segments")
	require.NotNil(t, mem.ManagedTotal)
	assert.InDelta(t, float64(mem.Managed), *mem.ManagedTotal, 1)
	// Every part of the memory model, adding up as Flink derives it.
	for name, part := range map[string]int64{"frameworkHeap": mem.FrameworkHeap, "taskHeap": mem.TaskHeap,
		"frameworkOffHeap": mem.FrameworkOffHeap, "jvmOverhead": mem.Overhead} {
		assert.Positive(t, part, name)
	}
	assert.Equal(t, mem.Heap, mem.FrameworkHeap+mem.TaskHeap, "heap = framework + task heap")
	assert.Equal(t, mem.Flink, mem.FrameworkHeap+mem.TaskHeap+mem.FrameworkOffHeap+mem.TaskOffHeap+mem.Managed+mem.Network, "Flink memory = its parts")
	assert.Equal(t, mem.Process, mem.Flink+mem.Metaspace+mem.Overhead, "process = Flink + metaspace + overhead")
	// The slots the resource manager reports (/overview).
	var slots metrics.SlotsSample
	for _, tm := range v.TaskManagers {
		slots.Total += tm.SlotsNumber
		slots.Available += tm.FreeSlots
	}
	require.NotNil(t, s.Slots)
	assert.Equal(t, slots, *s.Slots)
}

// Before the first record pendingRecords does not exist; everything else is
// still collected because only discovered ids are requested.
func TestCollectBeforeFirstRecord(t *testing.T) {
	rate := 0.0
	j := testJob(t, "1.20", &rate)
	col, _ := serve(t, flinkrest.NewHandler(j), WithClock(j.Now))
	require.NoError(t, j.Advance(time.Minute))
	s, err := col.Collect(context.Background(), "")
	require.NoError(t, err)
	src := s.Vertices[0]
	assert.Nil(t, src.PendingRecords)
	assert.Contains(t, s.Missing, src.ID+": pendingRecords: not registered yet")
	require.NotNil(t, src.BusyTimeMsPerSecond)
	require.NotNil(t, src.NumRecordsInPerSecond)
	assert.Equal(t, 0.0, *src.NumRecordsInPerSecond)
	assert.Len(t, src.Partitions, 8)
	for _, v := range s.Vertices {
		assert.NotNil(t, v.BusyTimeMsPerSecond, v.Name)
		assert.NotNil(t, v.BackPressuredTimeMsPerSecond, v.Name)
	}
	assert.NotNil(t, s.TaskManagers)

	// Records arrive: the source's ids are discovered again, pendingRecords
	// shows up.
	rate = 1000
	require.NoError(t, j.Advance(time.Minute))
	s, err = col.Collect(context.Background(), "")
	require.NoError(t, err)
	require.NotNil(t, s.Vertices[0].PendingRecords)
	assert.NotContains(t, s.Missing, s.Vertices[0].ID+": pendingRecords: not registered yet")
}

func TestCollectVersions(t *testing.T) {
	for _, ver := range []string{"1.18", "1.20", "2.1"} {
		t.Run(ver, func(t *testing.T) {
			rate := 2500.0
			j := testJob(t, ver, &rate)
			col, _ := serve(t, flinkrest.NewHandler(j), WithClock(j.Now))
			require.NoError(t, j.Advance(5*time.Minute))
			s, err := col.Collect(context.Background(), "")
			require.NoError(t, err)
			assert.Equal(t, ver+".0", s.FlinkVersion)
			assert.Equal(t, "hashmap", s.StateBackend, "the simulator's default HashMapStateBackend")
			assertMatches(t, j.View(), s)
			assertBottleneck(t, s)
			// slotSharingGroupId: 1.20+; before, the groups are unknown.
			assert.Equal(t, ver == "1.18", s.SlotSharingUnknown, "slot sharing unknown")
			if ver == "1.18" {
				assert.Empty(t, s.Vertices[0].SlotSharingGroup)
			}
		})
	}
}

// A restart from a savepoint changes the job id and RunningSince, and the
// caches follow.
func TestCollectAfterRestart(t *testing.T) {
	rate := 1500.0
	j := testJob(t, "2.1", &rate)
	col, _ := serve(t, flinkrest.NewHandler(j), WithClock(j.Now))
	require.NoError(t, j.Advance(2*time.Minute))
	ctx := context.Background()
	before, err := col.Collect(ctx, "")
	require.NoError(t, err)

	trig, err := col.c.StopWithSavepoint(ctx, before.JobID, "s3://sp", false)
	require.NoError(t, err)
	var st SavepointStatus
	for range 120 {
		require.NoError(t, j.Advance(time.Second))
		st, err = col.c.SavepointStatus(ctx, before.JobID, trig)
		require.NoError(t, err)
		if st.Done() {
			break
		}
	}
	require.True(t, st.Done())
	require.NoError(t, st.Err())
	require.NoError(t, j.Submit(sim.Submission{SavepointPath: st.Location()}))
	require.NoError(t, j.Advance(2*time.Minute))

	after, err := col.Collect(ctx, "")
	require.NoError(t, err)
	assert.NotEqual(t, before.JobID, after.JobID)
	assert.True(t, after.RunningSince.After(before.RunningSince), "%v vs %v", after.RunningSince, before.RunningSince)
	assert.Equal(t, "RUNNING", after.State)
	assertMatches(t, j.View(), after)
}

// While the job restarts the sample names what it lacks.
func TestCollectNotRunning(t *testing.T) {
	rate := 0.0
	j := testJob(t, "1.20", &rate)
	col, _ := serve(t, flinkrest.NewHandler(j), WithClock(j.Now))
	s, err := col.Collect(context.Background(), "") // still INITIALIZING
	require.NoError(t, err)
	assert.NotEqual(t, "RUNNING", s.State)
	assert.Contains(t, s.Missing, "runningSince: job has never been RUNNING")
	assert.Contains(t, s.Missing, "vertex metrics: job is "+s.State)
	for _, v := range s.Vertices {
		assert.Nil(t, v.BusyTimeMsPerSecond)
	}
}

// fakeJM answers like a JobManager from canned bodies; paths not listed
// get a 404.
type fakeJM map[string]string

func (f fakeJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	if g := r.URL.Query().Get("get"); g != "" {
		key += "?get"
	}
	body, ok := f[key]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"errors":["Not found: %s"]}`, r.URL.Path)
		return
	}
	_, _ = w.Write([]byte(body))
}

const (
	fJob = "3f2a9c1e8b7d4f60a1b2c3d4e5f60718"
	fSrc = "cbc357ccb763df2852fee8c4fc7d55f2"
)

func nanJM() fakeJM {
	return fakeJM{
		"/overview":     `{"taskmanagers":1,"slots-total":2,"slots-available":0,"jobs-running":1,"jobs-finished":0,"jobs-cancelled":0,"jobs-failed":0,"flink-version":"1.20.1","flink-commit":"abc1234"}`,
		"/jobs/" + fJob: `{"jid":"` + fJob + `","name":"j","isStoppable":false,"state":"RUNNING","job-type":"STREAMING","start-time":1,"end-time":-1,"duration":5,"maxParallelism":-1,"now":1717243200000,"timestamps":{"RUNNING":1717239600000,"CREATED":1717239500000},"vertices":[{"id":"` + fSrc + `","slotSharingGroupId":"a1b2c3d4e5f60718293a4b5c6d7e8f90","name":"Source: Kafka Source -> Map","maxParallelism":128,"parallelism":2,"status":"RUNNING","start-time":1,"end-time":-1,"duration":5,"tasks":{},"metrics":{"read-records":0,"write-records":10,"accumulated-busy-time":"NaN"},"newField":{"x":1}}],"status-counts":{},"plan":{"jid":"` + fJob + `","name":"j","type":"STREAMING","nodes":[{"id":"` + fSrc + `","parallelism":2,"operator":"","operator_strategy":"","description":"Source: Kafka Source -&gt; Map<br/>","optimizer_properties":{}}]},"stream-graph":{"nodes":[]}}`,
		"/jobs/" + fJob + "/vertices/" + fSrc + "/subtasks/metrics":     `[{"id":"busyTimeMsPerSecond"},{"id":"backPressuredTimeMsPerSecond"},{"id":"numRecordsOut"},{"id":"numRecordsOutPerSecond"},{"id":"Source__Kafka_Source.numRecordsIn"},{"id":"Source__Kafka_Source.numRecordsInPerSecond"},{"id":"Source__Kafka_Source.pendingRecords"},{"id":"isBackPressured"}]`,
		"/jobs/" + fJob + "/vertices/" + fSrc + "/subtasks/metrics?get": `[{"id":"busyTimeMsPerSecond","max":"NaN","avg":"NaN","sum":"NaN"},{"id":"backPressuredTimeMsPerSecond","max":0.0,"avg":0.0,"sum":0.0},{"id":"numRecordsOut","max":5.0,"avg":5.0,"sum":10.0},{"id":"numRecordsOutPerSecond","max":"Infinity","avg":1.0,"sum":2.0},{"id":"Source__Kafka_Source.numRecordsIn","max":5.0,"avg":5.0,"sum":10.0},{"id":"Source__Kafka_Source.numRecordsInPerSecond","max":1.0,"avg":1.0,"sum":"2.0"},{"id":"Source__Kafka_Source.pendingRecords","max":1.2345678E7,"avg":1.0,"sum":"1.2345678E7"}]`,
		"/jobs/" + fJob + "/vertices/" + fSrc + "/metrics":              `[{"id":"0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset"},{"id":"0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.committedOffset"},{"id":"1.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.0.currentOffset"},{"id":"1.busyTimeMsPerSecond"}]`,
		"/jobs/" + fJob + "/vertices/" + fSrc + "/metrics?get":          `[{"id":"0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset","value":"1200"},{"id":"0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.committedOffset","value":"-1"},{"id":"1.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.0.currentOffset","value":"77"}]`,
		"/jobs/" + fJob + "/checkpoints":                                `{"counts":{"restored":0,"total":0,"in_progress":0,"completed":0,"failed":0},"summary":{},"latest":{"completed":null,"savepoint":null,"failed":null,"restored":null},"history":[]}`,
		"/jobmanager/config":                                            `[{"key":"execution.checkpointing.interval","value":"1 min"}]`,
		"/taskmanagers":                                                 `{"taskmanagers":[{"id":"tm1","slotsNumber":2,"freeSlots":0,"totalResource":{"cpuCores":0.0},"hardware":{"cpuCores":4}}]}`,
	}
}

// A NaN busy time survives as NaN, so that the model can hold with
// NonFiniteMetric; Infinity and Java's exponent notation parse.
func TestCollectNaNAndQuirks(t *testing.T) {
	col, ct := serve(t, nanJM())
	s, err := col.Collect(context.Background(), fJob)
	require.NoError(t, err)
	require.Len(t, s.Vertices, 1)
	v := s.Vertices[0]
	require.NotNil(t, v.BusyTimeMsPerSecond)
	assert.True(t, math.IsNaN(v.BusyTimeMsPerSecond.Avg))
	assert.True(t, math.IsNaN(v.BusyTimeMsPerSecond.Max))
	assert.Equal(t, 2.0, *v.NumRecordsInPerSecond)
	assert.Equal(t, 2.0, *v.NumRecordsOutPerSecond)
	assert.Equal(t, 1.2345678e7, *v.PendingRecords)
	assert.Nil(t, v.Inputs)
	assert.Equal(t, []metrics.PartitionOwner{
		{Topic: "orders_v1", Partition: 0, Subtask: 1, CurrentOffset: 77, CommittedOffset: -1},
		{Topic: "orders_v1", Partition: 3, Subtask: 0, CurrentOffset: 1200, CommittedOffset: -1},
	}, v.Partitions)
	// checkpoint config 404 → JobManager configuration.
	require.NotNil(t, s.Checkpoints)
	assert.Equal(t, time.Minute, s.Checkpoints.Interval)
	assert.Equal(t, 10*time.Minute, s.Checkpoints.Timeout)
	assert.Contains(t, s.Missing, "checkpoints: lastDuration: no completed checkpoint yet")
	// cpuCores 0 in the resource profile → hardware.
	assert.Equal(t, metrics.TaskManagerSample{CPU: 4, Slots: 2, Replicas: 1}, *s.TaskManagers)
	assert.Equal(t, "1.20.1", s.FlinkVersion)
	assert.Equal(t, time.UnixMilli(1717239600000).UTC(), s.RunningSince)
	assert.Equal(t, int64(12), ct.n.Load(), "with the priming request (and the TaskManagers' metric ids, which this server does not have)")
}

// The state backend comes from the checkpoint config's state_backend, or
// from the JobManager's state.backend.type (legacy state.backend) when
// checkpointing is off (404); it is read once per job.
func TestCollectStateBackend(t *testing.T) {
	config := func(backend string) string {
		return `{"mode":"exactly_once","interval":60000,"timeout":600000,"min_pause":0,"max_concurrent":1,"state_backend":"` + backend + `"}`
	}
	jmConfig := func(kv ...string) string {
		var entries []string
		for i := 0; i+1 < len(kv); i += 2 {
			entries = append(entries, `{"key":"`+kv[i]+`","value":"`+kv[i+1]+`"}`)
		}
		return "[" + strings.Join(entries, ",") + "]"
	}
	for _, tc := range []struct {
		name     string
		config   string // "" : 404
		jmConfig string
		want     string
	}{
		{"hashmap", config("HashMapStateBackend"), "", "hashmap"},
		{"rocksdb", config("EmbeddedRocksDBStateBackend"), "", "rocksdb"},
		{"forst", config("ForStStateBackend"), "", "forst"},
		{"legacy rocksdb class", config("RocksDBStateBackend"), "", "rocksdb"},
		{"custom backend", config("MyStateBackend"), "", ""},
		{"404, state.backend.type", "", jmConfig("execution.checkpointing.interval", "1 min", "state.backend.type", "rocksdb"), "rocksdb"},
		{"404, legacy state.backend", "", jmConfig("execution.checkpointing.interval", "1 min", "state.backend", "filesystem"), "hashmap"},
		{"404, a factory class", "", jmConfig("state.backend.type", "org.apache.flink.state.forst.ForStStateBackendFactory"), "forst"},
		{"404, nothing said", "", jmConfig("execution.checkpointing.interval", "1 min"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jm := nanJM()
			if tc.config != "" {
				jm["/jobs/"+fJob+"/checkpoints/config"] = tc.config
			}
			if tc.jmConfig != "" {
				jm["/jobmanager/config"] = tc.jmConfig
			}
			col, _ := serve(t, jm)
			for range 2 { // the second poll reads it from the cache
				s, err := col.Collect(context.Background(), fJob)
				require.NoError(t, err)
				assert.Equal(t, tc.want, s.StateBackend)
			}
		})
	}
}

// The slots the resource manager reports come from /overview at every
// poll; anything implausible, absent or failed is unknown (nil), never a
// gap. Only the Flink version's absence is one, until it was read once.
func TestCollectClusterSlots(t *testing.T) {
	overview := func(fields string) string {
		return `{"taskmanagers":2,` + fields + `"jobs-running":1,"jobs-finished":0,"jobs-cancelled":0,"jobs-failed":0,"flink-version":"1.20.1","flink-commit":"abc1234"}`
	}
	for _, tc := range []struct {
		name  string
		body  string // "": HTTP 404
		slots *metrics.SlotsSample
	}{
		{"as Flink writes it", overview(`"slots-total":8,"slots-available":2,`), &metrics.SlotsSample{Total: 8, Available: 2}},
		{"with a blocked TaskManager", overview(`"slots-total":8,"slots-available":2,"taskmanagers-blocked":1,"slots-free-and-blocked":1,`), &metrics.SlotsSample{Total: 8, Available: 2}},
		{"every slot free", overview(`"slots-total":4,"slots-available":4,`), &metrics.SlotsSample{Total: 4, Available: 4}},
		{"no TaskManager registered: unknown", overview(`"slots-total":0,"slots-available":0,`), nil},
		{"more available than there are: unknown", overview(`"slots-total":4,"slots-available":5,`), nil},
		{"negative: unknown", overview(`"slots-total":-4,"slots-available":-1,`), nil},
		{"not reported: unknown", overview(``), nil},
		{"no overview: unknown", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jm := nanJM()
			if tc.body == "" {
				delete(jm, "/overview")
			} else {
				jm["/overview"] = tc.body
			}
			col, _ := serve(t, jm)
			s, err := col.Collect(context.Background(), fJob)
			require.NoError(t, err)
			assert.Equal(t, tc.slots, s.Slots)
			for _, m := range s.Missing {
				assert.NotContains(t, m, "slots")
			}
		})
	}
	t.Run("an overview that fails after the version was read", func(t *testing.T) {
		jm := nanJM()
		col, _ := serve(t, jm)
		s, err := col.Collect(context.Background(), fJob)
		require.NoError(t, err)
		assert.Equal(t, &metrics.SlotsSample{Total: 2, Available: 0}, s.Slots)
		assert.Equal(t, "1.20.1", s.FlinkVersion)
		delete(jm, "/overview")
		s, err = col.Collect(context.Background(), fJob)
		require.NoError(t, err)
		assert.Nil(t, s.Slots, "unknown, not the previous poll's")
		assert.Equal(t, "1.20.1", s.FlinkVersion)
		for _, m := range s.Missing {
			assert.NotContains(t, m, "flinkVersion")
		}
	})
	t.Run("an overview that fails before the version was read", func(t *testing.T) {
		jm := nanJM()
		delete(jm, "/overview")
		col, _ := serve(t, jm)
		s, err := col.Collect(context.Background(), fJob)
		require.NoError(t, err)
		found := false
		for _, m := range s.Missing {
			found = found || strings.HasPrefix(m, "flinkVersion: ")
		}
		assert.True(t, found, s.Missing)
	})
}

// When the aggregated query comes back empty (an id vanished), the vertex
// is named in Missing and nothing turns into zero.
func TestCollectEmptyAggregate(t *testing.T) {
	jm := nanJM()
	jm["/jobs/"+fJob+"/vertices/"+fSrc+"/subtasks/metrics?get"] = `[]`
	col, _ := serve(t, jm)
	s, err := col.Collect(context.Background(), fJob)
	require.NoError(t, err)
	v := s.Vertices[0]
	assert.Nil(t, v.BusyTimeMsPerSecond)
	assert.Nil(t, v.NumRecordsInPerSecond)
	assert.Nil(t, v.PendingRecords)
	found := false
	for _, m := range s.Missing {
		found = found || strings.HasPrefix(m, fSrc+": metrics: Flink returned no values")
	}
	assert.True(t, found, s.Missing)
}

func TestCollectErrors(t *testing.T) {
	t.Run("5xx on details", func(t *testing.T) {
		col, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"errors":["Internal server error.","<Exception on server side: boom>"]}`))
		}))
		_, err := col.Collect(context.Background(), fJob)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 500, ae.Status)
		assert.Equal(t, "/jobs/"+fJob, ae.Endpoint)
		assert.Contains(t, err.Error(), "HTTP 500: Internal server error.; <Exception on server side: boom>")
	})
	t.Run("malformed details", func(t *testing.T) {
		col, _ := serve(t, fakeJM{"/jobs/" + fJob: `{"jid":"x","vertices":{}`})
		_, err := col.Collect(context.Background(), fJob)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "GET /jobs/"+fJob)
		assert.Contains(t, err.Error(), "decoding")
	})
	t.Run("wrong shape", func(t *testing.T) {
		col, _ := serve(t, fakeJM{"/jobs/" + fJob: `{"jid":"x","state":"RUNNING","vertices":{"a":1}}`})
		_, err := col.Collect(context.Background(), fJob)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "cannot unmarshal object")
	})
	t.Run("5xx on a vertex goes to Missing", func(t *testing.T) {
		jm := nanJM()
		delete(jm, "/jobs/"+fJob+"/vertices/"+fSrc+"/subtasks/metrics")
		col, _ := serve(t, jm)
		s, err := col.Collect(context.Background(), fJob)
		require.NoError(t, err)
		assert.Nil(t, s.Vertices[0].BusyTimeMsPerSecond)
		assert.Contains(t, strings.Join(s.Missing, "\n"), fSrc+": metrics: flink: GET /jobs/"+fJob+"/vertices/"+fSrc+"/subtasks/metrics: HTTP 404")
	})
	t.Run("no job", func(t *testing.T) {
		col, _ := serve(t, fakeJM{"/jobs/overview": `{"jobs":[{"jid":"` + fJob + `","name":"j","state":"FINISHED"}]}`})
		_, err := col.Collect(context.Background(), "")
		require.ErrorContains(t, err, "no job running")
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer srv.Close()
		defer close(release)
		cl, err := New(srv.URL, WithTimeout(50*time.Millisecond))
		require.NoError(t, err)
		start := time.Now()
		_, err = NewCollector(cl, WithSleep(noSleep)).Collect(context.Background(), fJob)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Contains(t, err.Error(), "no answer within 50ms")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// BenchmarkCollect is one steady-state collection of the 3-vertex job over
// HTTP against the simulator.
func BenchmarkCollect(b *testing.B) {
	rate := 2500.0
	j := testJob(b, "1.20", &rate)
	col, ct := serve(b, flinkrest.NewHandler(j), WithClock(j.Now))
	require.NoError(b, j.Advance(5*time.Minute))
	ctx := context.Background()
	id := j.View().Job.ID
	_, err := col.Collect(ctx, id) // warm the caches
	require.NoError(b, err)
	ct.n.Store(0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := col.Collect(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ct.n.Load())/float64(b.N), "requests/op")
}

// The overview, checkpoint statistics and TaskManagers one Collect read are
// reused for a minute while the job runs the same attempt at the same
// parallelism (four requests fewer a poll), as copies, and so are a
// source's metric ids and partition gauge ids (two more); a minute after
// the read they are read again.
func TestCollectSlowRefresh(t *testing.T) {
	rate := 1500.0
	j := testJob(t, "1.20", &rate)
	col, ct := serve(t, flinkrest.NewHandler(j), WithClock(j.Now))
	ctx := context.Background()
	require.NoError(t, j.Advance(5*time.Minute))
	first, err := col.Collect(ctx, "")
	require.NoError(t, err)
	require.NotNil(t, first.Checkpoints)
	require.NotNil(t, first.TaskManagers)

	require.NoError(t, j.Advance(30*time.Second))
	ct.n.Store(0)
	second, err := col.Collect(ctx, first.JobID)
	require.NoError(t, err)
	assert.Equal(t, int64(12-4-2), ct.n.Load(), "no overview, checkpoints, TaskManagers or their memory metrics; the source's metric ids and partition gauges not listed again")
	assert.Equal(t, *first.Checkpoints, *second.Checkpoints, "the statistics read 30 s ago")
	assert.Equal(t, first.Slots, second.Slots)
	assert.Equal(t, first.FlinkVersion, second.FlinkVersion)
	assert.Equal(t, first.TaskManagers.Replicas, second.TaskManagers.Replicas)
	assert.NotSame(t, first.TaskManagers, second.TaskManagers, "a copy")
	second.TaskManagers.Replicas = 99
	second.TaskManagers.Memory.Process = -1
	assert.Less(t, j.View().Job.Checkpoints.Completed-first.Checkpoints.Completed, 3, "at most 30 s of checkpoints (every 30 s) behind")

	require.NoError(t, j.Advance(31*time.Second)) // 61 s after the read
	ct.n.Store(0)
	third, err := col.Collect(ctx, first.JobID)
	require.NoError(t, err)
	assert.Equal(t, int64(12), ct.n.Load(), "read again")
	assert.Greater(t, third.Checkpoints.Completed, first.Checkpoints.Completed)
	assert.Equal(t, first.TaskManagers.Replicas, third.TaskManagers.Replicas, "not the caller's change")
	assert.Positive(t, third.TaskManagers.Memory.Process)
	assertMatches(t, j.View(), third)
}

// A Collect has at most WithInFlight requests in flight (DefaultInFlight
// without it; each request is slowed here so that they overlap); with one,
// a client that keeps one connection per JobManager never dials a second.
func TestCollectInFlight(t *testing.T) {
	rate := 1500.0
	for _, c := range []struct {
		opts []CollectorOption
		want int
	}{{nil, DefaultInFlight}, {[]CollectorOption{WithInFlight(2)}, 2}, {[]CollectorOption{WithInFlight(1)}, 1}, {[]CollectorOption{WithInFlight(0)}, 1}} {
		j := testJob(t, "1.20", &rate)
		require.NoError(t, j.Advance(5*time.Minute))
		var now, most atomic.Int32
		h := flinkrest.NewHandler(j)
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := now.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			h.ServeHTTP(w, r)
			now.Add(-1)
		})
		col, _ := serve(t, slow, append([]CollectorOption{WithClock(j.Now)}, c.opts...)...)
		s, err := col.Collect(context.Background(), "")
		require.NoError(t, err)
		assert.Empty(t, s.Missing)
		assert.LessOrEqual(t, most.Load(), int32(c.want), "%d options", len(c.opts))
		if c.want > 1 {
			assert.Greater(t, most.Load(), int32(1), "requests overlap")
		}
	}
}
