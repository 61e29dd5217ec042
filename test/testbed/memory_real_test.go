package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// TestRealMemoryAwarePlans is issue 21's proof on real Flink that a plan
// real Flink would refuse with "Insufficient number of network buffers"
// is caught before it is applied. On each Flink line it starts
// TaskManagers of 4 slots with 1 MiB of network memory (32 segments,
// nbSmallNetwork), runs scenarios/network-memory.yaml at 2/2/1 (source
// and keyed vertex overloaded), collects a snapshot from real Flink and
// the real broker through the collectors, and decides: the load calls for
// source 4, keyed 4, sink 1 on one TaskManager of 4 slots (the policy
// bounds it there), the layout TestRealNetworkBuffers saw refused:
//
//   - without the TaskManagers' memory in the snapshot the model wants
//     4/4/1 unchecked; applied by hand on the small TaskManagers, real
//     Flink refuses it;
//   - memory mode Recommend reduces the plan (NetworkMemoryLimited), and
//     the reduced plan runs on the small TaskManagers;
//   - memory mode Apply keeps 4/4/1 with Plan.Memory: TaskManagers started
//     with its FlinkConfiguration() report exactly that memory
//     (memoryConfiguration), and the plan runs on them.
//
// Every layout deployed is also judged against the model's buffer
// arithmetic (scaling.NetworkNeed): the test fails if the model says a
// layout fits that Flink refuses, and logs a layout the model refuses
// that Flink runs. 3 to 4 minutes per Flink line; FLINKSCALE_REAL=1 and
// FLINKSCALE_REAL_LONG=1 (make test-real); FLINKSCALE_TESTBED_FLINK picks
// one line.
func TestRealMemoryAwarePlans(t *testing.T) {
	requireRealLong(t)
	eachFlink(t, realMemoryAwarePlans)
}

// memRun is one Flink line's testbed, deployer and the job deployed now.
type memRun struct {
	t     *testing.T
	ctx   context.Context
	tb    *Testbed
	d     *Deployer
	job   string
	names map[string]string // vertex id → scenario name
	// verdicts are the layouts deployed: the model's figures against
	// Flink's outcome.
	verdicts []string
}

// memOutcome is what real Flink made of a deployment.
type memOutcome struct {
	Ran     bool
	Refusal *nbRefusal
	TMs     []NetworkBuffersTM
}

func realMemoryAwarePlans(t *testing.T, v Flink) {
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	s := loadScenario(t, "scenarios/network-memory.yaml")
	cfg := map[string]string{"slot.idle.timeout": "5000", "metrics.fetcher.update-interval": "1000"}
	maps.Copy(cfg, nbSmallNetwork)
	tb, err := Start(ctx, Options{Scenario: s, Flink: v, SkipJavaTests: true, NoJob: true, Progress: testWriter{t}, Config: cfg})
	require.NoError(t, err)
	defer func() { assert.NoError(t, tb.Stop()) }()
	d, err := NewDeployer(ctx, tb, DeployerOptions{IdleTaskManagerTimeout: 5 * time.Second, TaskManagerRestart: -1, Progress: testWriter{t}})
	require.NoError(t, err)
	defer func() { assert.NoError(t, d.Close()) }()
	r := &memRun{t: t, ctx: ctx, tb: tb, d: d, names: map[string]string{}}
	ids := map[string]string{}
	for _, name := range []string{nbSource, nbKeyed, nbSink} {
		id, ok := d.VertexID(name)
		require.True(t, ok, name)
		ids[name], r.names[id] = id, name
	}
	defer func() {
		if r.job != "" {
			_ = d.Cancel(r.job)
		}
		for _, line := range r.verdicts {
			t.Log(line)
		}
	}()

	// a. The job at 2/2/1 on one TaskManager of 4 slots and 32 segments.
	current := map[string]int{ids[nbSource]: 2, ids[nbKeyed]: 2, ids[nbSink]: 1}
	first := r.deploy("a. current", current, 4, 1)
	require.True(t, first.Ran, "the job runs at 2/2/1 on 1 MiB of network memory: %+v", first.Refusal)
	runningAt := time.Now()

	// b. A snapshot from real Flink and the real broker, after a minute
	// (Flink's busy and backpressure gauges average the last 60 s).
	snap := r.collect(runningAt.Add(60*time.Second), 5, 10*time.Second, s.Job.ConsumerGroup)
	mem := snap.TaskManagers.Memory
	require.NotNil(t, mem, "the collector reports the TaskManagers' memory")
	require.NotNil(t, mem.NetworkSegmentsTotal, "the collector reports the network segments")
	segments := int64(*mem.NetworkSegmentsTotal)
	assert.Equal(t, int64(32), segments, "1 MiB of network memory is 32 segments of 32 KiB")
	assert.InDelta(t, 1<<20, float64(mem.NetworkBytes), 0, "memoryConfiguration networkMemory")
	t.Logf("snapshot: Flink %s, state backend %q, %d TaskManager(s) of %d slots; memory: process %.0f MiB, heap %.0f MiB, managed %.0f MiB, network %.0f MiB (%d segments), metaspace %.0f MiB",
		snap.FlinkVersion, snap.StateBackend, snap.TaskManagers.Replicas, snap.TaskManagers.Slots, float64(mem.ProcessBytes)/(1<<20),
		float64(mem.HeapBytes)/(1<<20), float64(mem.ManagedBytes)/(1<<20), float64(mem.NetworkBytes)/(1<<20), segments, float64(mem.MetaspaceBytes)/(1<<20))
	for _, x := range snap.Vertices {
		t.Logf("snapshot vertex %s: p=%d busy %s backpressured %s in %s/s", x.Name, x.Parallelism, statString(x.BusyTimeMsPerSecond),
			statString(x.BackPressuredTimeMsPerSecond), floatString(x.NumRecordsInPerSecond))
	}

	// The policy: the window above, TaskManagers of 4 slots, and upper
	// bounds that keep the plan at the 4/4/1 the load calls for (not
	// lower bounds: a reduction for memory stops at a vertex's lower
	// bound).
	p := scaling.DefaultPolicy()
	p.MetricsWindow, p.WarmUp, p.MaxSnapshotAge = scaling.D(40*time.Second), scaling.D(30*time.Second), scaling.D(2*time.Minute)
	p.Resources.SlotsPerTaskManager = 4
	p.Vertices = []scaling.VertexOverride{{Name: nbSource, MaxParallelism: 4}, {Name: nbKeyed, MaxParallelism: 4}, {Name: nbSink, MaxParallelism: 1}}
	now := time.Now()
	unchecked := snap
	unchecked.TaskManagers.Memory = nil // what the model wants without the memory check
	want := scaling.Decide(unchecked, p, scaling.History{}, now)
	logDecision(t, "unchecked", want)
	require.Equal(t, scaling.ActionScale, want.Action, "the overloaded source and keyed vertex trigger a rescale: %s", want.Summary)
	wanted := want.Recommended
	require.Equal(t, map[string]int{ids[nbSource]: 4, ids[nbKeyed]: 4, ids[nbSink]: 1}, wanted.Parallelism, "the load calls for 4/4/1")
	require.Equal(t, 4, wanted.SlotsPerTaskManager)
	require.Equal(t, 1, wanted.TaskManagers)

	p.Memory.Mode = scaling.MemoryRecommend
	rec := scaling.Decide(snap, p, scaling.History{}, now)
	logDecision(t, "Recommend", rec)
	p.Memory.Mode = scaling.MemoryApply
	app := scaling.Decide(snap, p, scaling.History{}, now)
	logDecision(t, "Apply", app)

	need := func(pl map[string]int, slots, tms int, networkBytes int64) scaling.NetworkUse {
		c := scaling.DefaultNetworkConfig(networkLine(snap.FlinkVersion))
		c.NetworkMemory = networkBytes
		return scaling.NetworkNeed(snap.Vertices, pl, slots, tms, c)
	}
	small := segments * (32 << 10)
	wantUse := need(wanted.Parallelism, 4, 1, small)
	t.Logf("model: the wanted plan %s needs %d buffers on its worst TaskManager (%d subtasks, %d gates, %d partitions), which has %d: fits %v",
		r.layout(wanted.Parallelism), wantUse.Required, wantUse.Subtasks, wantUse.Gates, wantUse.Partitions, wantUse.Available, wantUse.Fits)

	// c. Recommend: reduced, and the reduced plan runs.
	assert.True(t, hasReason(rec, scaling.ReasonNetworkMemoryLimited), "Recommend: NetworkMemoryLimited in %s", rec.Summary)
	reduced := rec.Recommended
	assert.Nil(t, reduced.Memory, "Recommend never sets the TaskManagers' memory")
	assert.Less(t, total(reduced.Parallelism), total(wanted.Parallelism), "Recommend reduces the plan")
	redUse := need(reduced.Parallelism, max(reduced.SlotsPerTaskManager, 1), reduced.TaskManagers, small)
	out := r.deploy("c. Recommend, reduced", reduced.Parallelism, max(reduced.SlotsPerTaskManager, 1), reduced.TaskManagers)
	r.judge("c. Recommend, reduced", reduced.Parallelism, redUse, out)
	assert.True(t, out.Ran, "the reduced plan %s runs on the small TaskManagers: %+v", r.layout(reduced.Parallelism), out.Refusal)

	// Halfway from the current plan to the wanted one, when the reduction
	// did not stop there: does real Flink run what the model reduced away?
	mid := map[string]int{}
	for id, q := range wanted.Parallelism {
		mid[id] = (current[id] + q + 1) / 2
	}
	if !maps.Equal(mid, reduced.Parallelism) && !maps.Equal(mid, current) {
		out := r.deploy("halfway, by hand", mid, 4, 1)
		r.judge("halfway, by hand", mid, need(mid, 4, 1, small), out)
	}

	// e. The unchecked plan, applied by hand to the small TaskManagers:
	// refused.
	out = r.deploy("e. unchecked", wanted.Parallelism, 4, 1)
	r.judge("e. unchecked", wanted.Parallelism, wantUse, out)
	if assert.False(t, out.Ran, "real Flink refuses the unchecked plan %s on 32 segments", r.layout(wanted.Parallelism)) && assert.NotNil(t, out.Refusal) {
		t.Logf("unchecked %s on the small TaskManagers: Flink %q (required %d, available %d, total %d); the model: %d required of %d",
			r.layout(wanted.Parallelism), out.Refusal.Message, out.Refusal.Required, out.Refusal.Available, out.Refusal.Total, wantUse.Required, wantUse.Available)
		assert.Equal(t, int(segments), out.Refusal.Total, "Flink's total is the TaskManager's segments")
	}

	// d. Apply: the wanted parallelism with the memory it needs, on new
	// TaskManagers started with Plan.Memory's configuration.
	require.Equal(t, scaling.ActionScale, app.Action, "Apply: %s", app.Summary)
	applied := app.Recommended
	assert.Equal(t, wanted.Parallelism, applied.Parallelism, "Apply keeps the parallelism")
	require.NotNil(t, applied.Memory, "Apply: the plan carries the TaskManagers' memory")
	pm := *applied.Memory
	conf := pm.FlinkConfiguration()
	t.Logf("Apply: Plan.Memory %+v; flinkConfiguration %v", pm, conf)
	if app.Memory != nil && app.Memory.Network != nil {
		t.Logf("Apply: the plan's network need on the small TaskManagers: %d required, %d at most, %d available", app.Memory.Network.Required, app.Memory.Network.MaxUse, app.Memory.Network.Available)
	}
	require.NoError(t, d.Cancel(r.job))
	r.job = ""
	require.NoError(t, d.ScaleTaskManagers(ctx, 0), "the small TaskManagers go")
	require.NoError(t, tb.Flink.SetTaskManagerConfig(ctx, conf), "Flink derives a TaskManager from Plan.Memory's configuration")
	appUse := need(applied.Parallelism, applied.SlotsPerTaskManager, applied.TaskManagers, pm.NetworkBytes)
	out = r.deploy("d. Apply, with Plan.Memory", applied.Parallelism, applied.SlotsPerTaskManager, applied.TaskManagers)
	r.judge("d. Apply, with Plan.Memory", applied.Parallelism, appUse, out)
	assert.True(t, out.Ran, "the plan runs on TaskManagers with its memory: %+v", out.Refusal)
	for _, tm := range readTaskManagerMemory(t, ctx, tb.Flink) {
		t.Logf("Apply: TaskManager %s memoryConfiguration %+v", tm.ID, tm.Memory)
		m := tm.Memory
		assert.Equal(t, pm.NetworkBytes, m.Network, "%s: the network memory the plan asked for", tm.ID)
		assert.Equal(t, pm.ProcessBytes, m.TotalProcess, "%s: process memory", tm.ID)
		assert.Equal(t, pm.FlinkBytes(), m.TotalFlink, "%s: total Flink memory", tm.ID)
		assert.Equal(t, pm.FrameworkHeapBytes, m.FrameworkHeap, "%s: framework heap", tm.ID)
		assert.Equal(t, pm.TaskHeapBytes, m.TaskHeap, "%s: task heap", tm.ID)
		assert.Equal(t, pm.FrameworkOffHeapBytes, m.FrameworkOffHeap, "%s: framework off-heap", tm.ID)
		assert.Equal(t, pm.TaskOffHeapBytes, m.TaskOffHeap, "%s: task off-heap", tm.ID)
		assert.Equal(t, pm.ManagedBytes, m.Managed, "%s: managed", tm.ID)
		assert.Equal(t, pm.MetaspaceBytes, m.Metaspace, "%s: metaspace", tm.ID)
		assert.Equal(t, pm.OverheadBytes, m.Overhead, "%s: JVM overhead", tm.ID)
	}
	for _, tm := range out.TMs {
		assert.Equal(t, pm.NetworkBytes/(32<<10), tm.TotalSegments, "%s: segments", tm.ID)
		assert.GreaterOrEqual(t, tm.TotalSegments, appUse.Required, "%s: the segments cover the model's requirement", tm.ID)
	}
}

// deploy replaces the job with one at parallelism par (vertex id →
// subtasks) on tms TaskManagers of slots slots, and waits until it runs
// (every subtask RUNNING, and still so 5 s later) or Flink refuses it for
// want of network buffers.
func (r *memRun) deploy(what string, par map[string]int, slots, tms int) memOutcome {
	t, d := r.t, r.d
	t.Helper()
	if r.job != "" {
		require.NoError(t, d.Cancel(r.job))
	}
	job := randomHex()
	require.NoError(t, d.Submit(sim.Submission{JobID: job, SlotsPerTaskManager: slots, TaskManagers: tms, Overrides: maps.Clone(par)}))
	r.job = job
	began := time.Now()
	var out memOutcome
	deadline := began.Add(2 * time.Minute)
	steadySince := time.Time{}
	for {
		require.False(t, time.Now().After(deadline), "%s: job %s %s neither ran nor was refused in 2 minutes", what, job, r.layout(par))
		require.NoError(t, r.ctx.Err())
		time.Sleep(time.Second)
		if err := d.SubmitError(); err != nil && d.View().Job.ID == job && d.View().Job.State == "FAILED" {
			t.Fatalf("%s: submitting %s: %v", what, r.layout(par), err)
		}
		if out.Refusal = refusal(r.ctx, r.tb.Flink, job); out.Refusal != nil {
			break
		}
		vw := d.View()
		if vw.Job.ID != job || !Steady(&vw.Job) || !maps.Equal(runningSubtasks(r.ctx, r.tb.Flink, job), par) {
			steadySince = time.Time{}
			continue
		}
		if steadySince.IsZero() {
			steadySince = time.Now()
		}
		if time.Since(steadySince) >= 5*time.Second {
			out.Ran = true
			break
		}
	}
	time.Sleep(2 * time.Second) // a metrics fetch (1 s here) for the segments
	out.TMs = readNetworkTMs(t, r.ctx, r.tb.Flink)
	state := "RUNNING"
	if !out.Ran {
		state = "refused: " + out.Refusal.Message
	}
	t.Logf("%s: %s on %d×%d slots %s after %s; TaskManagers %+v", what, r.layout(par), tms, slots, state, time.Since(began).Round(time.Second), out.TMs)
	return out
}

// judge notes the model's verdict on a layout next to real Flink's, and
// fails the test when the model says it fits and Flink refused it.
func (r *memRun) judge(what string, par map[string]int, u scaling.NetworkUse, out memOutcome) {
	line := fmt.Sprintf("%s %s: model %d buffers required of %d (fits %v); Flink ", what, r.layout(par), u.Required, u.Available, u.Fits)
	used := int64(0)
	for _, tm := range out.TMs {
		used = max(used, tm.UsedSegments)
	}
	switch {
	case out.Ran:
		line += fmt.Sprintf("ran, %d segments used on its fullest TaskManager", used)
	case out.Refusal != nil:
		line += fmt.Sprintf("refused (required %d, available %d, total %d)", out.Refusal.Required, out.Refusal.Available, out.Refusal.Total)
	}
	if u.Fits != out.Ran {
		line += " — DISAGREEMENT"
	}
	r.verdicts = append(r.verdicts, line)
	r.t.Log(line)
	assert.False(r.t, u.Fits && !out.Ran, "the model says %s fits and real Flink refused it", r.layout(par))
}

// collect polls the collectors n times, every, from at on, into a window,
// and returns its snapshot.
func (r *memRun) collect(at time.Time, n int, every time.Duration, group string) scaling.Snapshot {
	t := r.t
	rc, err := flink.New(r.tb.Flink.RESTURL())
	require.NoError(t, err)
	fc := flink.NewCollector(rc)
	kc, err := kafka.New(kafka.Config{BootstrapServers: []string{r.tb.Kafka.Bootstrap()}})
	require.NoError(t, err)
	defer kc.Close()
	w := metrics.NewWindow(2 * time.Minute)
	for i := range n {
		select {
		case <-r.ctx.Done():
			t.Fatal(r.ctx.Err())
		case <-time.After(time.Until(at.Add(time.Duration(i) * every))):
		}
		fs, err := fc.Collect(r.ctx, r.job)
		require.NoError(t, err)
		ks, err := kc.Collect(r.ctx, group, []string{"events"})
		require.NoError(t, err)
		w.AddFlink(fs)
		w.AddKafka(ks)
	}
	snap, missing := w.Snapshot()
	t.Logf("snapshot: %d samples over %s; missing %v", snap.Samples, snap.WindowEnd.Sub(snap.WindowStart).Round(time.Second), missing)
	return snap
}

// layout is "source/keyed/sink" of par.
func (r *memRun) layout(par map[string]int) string {
	by := map[string]int{}
	for id, q := range par {
		by[r.names[id]] = q
	}
	return fmt.Sprintf("%d/%d/%d", by[nbSource], by[nbKeyed], by[nbSink])
}

// networkLine is the buffer rules of a snapshot's Flink version, as the
// model picks them.
func networkLine(version string) string {
	if strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(version), "v"), "1") {
		return scaling.Flink120
	}
	return scaling.Flink2
}

func hasReason(d scaling.Decision, code scaling.ReasonCode) bool {
	return slices.ContainsFunc(d.Reasons, func(r scaling.Reason) bool { return r.Code == code })
}

func total(par map[string]int) int {
	n := 0
	for _, q := range par {
		n += q
	}
	return n
}

func logDecision(t *testing.T, what string, d scaling.Decision) {
	t.Helper()
	t.Logf("%s: %s", what, d.Summary)
	for _, r := range d.Reasons {
		t.Logf("%s reason %s %s: %s", what, r.Code, r.Vertex, r.Message)
	}
	if d.Memory != nil {
		b, _ := json.Marshal(d.Memory)
		t.Logf("%s memory: %s", what, b)
	}
}

// runningSubtasks is the RUNNING subtasks of each vertex of the job (GET
// /jobs/:id, vertices[].tasks).
func runningSubtasks(ctx context.Context, c *Cluster, job string) map[string]int {
	var j struct {
		Vertices []struct {
			ID    string         `json:"id"`
			Tasks map[string]int `json:"tasks"`
		} `json:"vertices"`
	}
	if c.getJSON(ctx, "/jobs/"+job, &j) != nil {
		return nil
	}
	out := map[string]int{}
	for _, v := range j.Vertices {
		out[v.ID] = v.Tasks["RUNNING"]
	}
	return out
}

// tmMemory is a TaskManager's memoryConfiguration (GET /taskmanagers/:id),
// in bytes.
type tmMemory struct {
	FrameworkHeap    int64 `json:"frameworkHeap"`
	TaskHeap         int64 `json:"taskHeap"`
	FrameworkOffHeap int64 `json:"frameworkOffHeap"`
	TaskOffHeap      int64 `json:"taskOffHeap"`
	Network          int64 `json:"networkMemory"`
	Managed          int64 `json:"managedMemory"`
	Metaspace        int64 `json:"jvmMetaspace"`
	Overhead         int64 `json:"jvmOverhead"`
	TotalFlink       int64 `json:"totalFlinkMemory"`
	TotalProcess     int64 `json:"totalProcessMemory"`
}

type tmMemoryOf struct {
	ID     string
	Memory tmMemory
}

func readTaskManagerMemory(t *testing.T, ctx context.Context, c *Cluster) []tmMemoryOf {
	t.Helper()
	ids, err := c.taskManagerIDs(ctx)
	require.NoError(t, err)
	slices.Sort(ids)
	var out []tmMemoryOf
	for _, id := range ids {
		var tm struct {
			Memory tmMemory `json:"memoryConfiguration"`
		}
		require.NoError(t, c.getJSON(ctx, "/taskmanagers/"+id, &tm))
		out = append(out, tmMemoryOf{id, tm.Memory})
	}
	return out
}
