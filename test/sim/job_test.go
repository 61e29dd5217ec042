package sim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// pipeline is source → map (rebalance) → keyed sink: the shape of most
// Kafka jobs.
func pipeline() JobSpec {
	return JobSpec{
		Name: "orders_agg", FlinkVersion: "1.20", ConsumerGroup: "orders-agg",
		Topics: []TopicSpec{{Name: "orders", Partitions: 4}},
		Vertices: []VertexSpec{
			{Name: "Source: orders", Parallelism: 2, Capacity: 5000, Selectivity: 1, Topics: []string{"orders"}},
			{Name: "Map", Parallelism: 4, Capacity: 500, Selectivity: 1, Inputs: []EdgeSpec{{From: "Source: orders", Ship: "REBALANCE"}}},
			{Name: "KeyedAgg -> Sink: Print", Parallelism: 2, MaxParallelism: 128, Capacity: 4000, Selectivity: 1,
				Inputs: []EdgeSpec{{From: "Map", Ship: "HASH"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: CheckpointSpec{Interval: 30 * time.Second, Timeout: 10 * time.Minute, Base: 2 * time.Second},
		Restart:     RestartSpec{Time: 30 * time.Second, TaskManagerStartup: 20 * time.Second},
	}
}

func constant(spec JobSpec, perTopic float64) Load {
	return TopicRates(spec.Topics, func(string, time.Duration) float64 { return perTopic })
}

// afterDeploy starts the load once the job runs (50 s after submission), so
// no backlog builds while it starts.
func afterDeploy(spec JobSpec, perTopic float64) Load {
	return TopicRates(spec.Topics, func(_ string, at time.Duration) float64 {
		if at < 50*time.Second {
			return 0
		}
		return perTopic
	})
}

func start(t *testing.T, spec JobSpec, load Load) (*Job, *MemoryKafka) {
	t.Helper()
	k := NewMemoryKafka(spec.Topics)
	j, err := NewJob(spec, Options{Start: t0, Seed: 1, Load: load, Kafka: k})
	require.NoError(t, err)
	require.NoError(t, j.Submit(Submission{}))
	return j, k
}

func vertex(v View, name string) VertexView {
	for _, x := range v.Job.Vertices {
		if x.Name == name {
			return x
		}
	}
	return VertexView{}
}

func sum(v VertexView, f func(SubtaskView) float64) float64 {
	s := 0.0
	for _, st := range v.Subtasks {
		s += f(st)
	}
	return s
}

func maxOf(v VertexView, f func(SubtaskView) float64) float64 {
	m := 0.0
	for _, st := range v.Subtasks {
		m = max(m, f(st))
	}
	return m
}

func busy(s SubtaskView) float64 { return s.BusyTimeMsPerSecond }
func bp(s SubtaskView) float64   { return s.BackPressuredTimeMsPerSecond }

func TestStartsAfterTheRestartTime(t *testing.T) {
	j, _ := start(t, pipeline(), nil)
	// Restart 30 s + TaskManager start-up 20 s.
	require.NoError(t, j.Advance(49*time.Second))
	assert.Equal(t, "CREATED", j.View().Job.State)
	require.NoError(t, j.Advance(time.Second))
	v := j.View()
	assert.Equal(t, "RUNNING", v.Job.State)
	assert.Equal(t, ms(t0.Add(50*time.Second)), v.Job.Timestamps["RUNNING"])
	// 2+4+2 subtasks in one slot-sharing group need 4 slots: 2 TaskManagers.
	assert.Len(t, v.TaskManagers, 2)
}

func TestSteadyLoadBelowCapacity(t *testing.T) {
	// 1500 rec/s: the source (2×5000) is 15 % busy, the map (4×500) 75 %,
	// the keyed sink (2×4000) about 19 %; no backpressure, no lag.
	j, _ := start(t, pipeline(), constant(pipeline(), 1500))
	require.NoError(t, j.Advance(5*time.Minute))
	v := j.View()
	src, mp, sink := vertex(v, "Source: orders"), vertex(v, "Map"), vertex(v, "KeyedAgg -> Sink: Print")
	assert.InDelta(t, 1500, sum(src, func(s SubtaskView) float64 { return s.SourceNumRecordsInPerSecond }), 30)
	assert.Equal(t, 0.0, sum(src, func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }), "a FLIP-27 source has no task input")
	assert.InDelta(t, 150, maxOf(src, busy), 10)
	assert.InDelta(t, 750, maxOf(mp, busy), 20)
	assert.InDelta(t, 1500, sum(mp, func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }), 30)
	assert.Less(t, maxOf(src, bp), 1.0)
	assert.Less(t, maxOf(sink, busy), 260.0)
	st := j.Stats()
	assert.Less(t, st.Lag, int64(2000))
	assert.Equal(t, st.Produced, st.Consumed+st.Lag)
}

func TestBottleneckBackpressuresTheSource(t *testing.T) {
	// 3000 rec/s against a map that can do 4×500 = 2000: the map is fully
	// busy, the source reads 2000 rec/s, is 2000/10000 = 20 % busy and
	// blocked the rest of the time, and the lag grows by ~1000 rec/s.
	j, _ := start(t, pipeline(), constant(pipeline(), 3000))
	require.NoError(t, j.Advance(50*time.Second)) // deploy
	before := j.Stats().Lag
	require.NoError(t, j.Advance(5*time.Minute))
	v := j.View()
	src, mp := vertex(v, "Source: orders"), vertex(v, "Map")
	assert.InDelta(t, 1000, maxOf(mp, busy), 5)
	assert.InDelta(t, 200, maxOf(src, busy), 15)
	assert.InDelta(t, 800, maxOf(src, bp), 15)
	assert.InDelta(t, 0, maxOf(mp, bp), 5)
	grew := float64(j.Stats().Lag-before) / 300
	assert.InDelta(t, 1000, grew, 30)
	// pendingRecords is the lag the readers see.
	pending := sum(src, func(s SubtaskView) float64 { return *s.PendingRecords })
	assert.InDelta(t, float64(j.Stats().Lag), pending, 1)
}

func TestMeterReadsLowInTheFirstMinute(t *testing.T) {
	// MeterView divides by 60 s from the start: 30 s after the job runs at
	// 1000 rec/s, the meter says about 500.
	j, _ := start(t, pipeline(), afterDeploy(pipeline(), 1000))
	require.NoError(t, j.Advance(50*time.Second+30*time.Second))
	src := vertex(j.View(), "Source: orders")
	assert.InDelta(t, 500, sum(src, func(s SubtaskView) float64 { return s.SourceNumRecordsInPerSecond }), 60)
}

func TestPendingRecordsRegistersAfterTheFirstRecord(t *testing.T) {
	j, _ := start(t, pipeline(), nil)
	require.NoError(t, j.Advance(2*time.Minute))
	for _, s := range vertex(j.View(), "Source: orders").Subtasks {
		assert.Nil(t, s.PendingRecords, "no record read yet")
	}
}

func TestCheckpointsCommitOffsetsAndFailPastTheTimeout(t *testing.T) {
	spec := pipeline()
	j, k := start(t, spec, afterDeploy(spec, 1000))
	require.NoError(t, j.Advance(50*time.Second+95*time.Second))
	v := j.View()
	// Checkpoints at 30, 60 and 90 s after RUNNING, each taking 2 s.
	assert.Equal(t, 3, v.Job.Checkpoints.Completed)
	assert.Equal(t, int64(2000), v.Job.Checkpoints.LatestCompleted.EndToEndDurationMs)
	committed, err := k.Committed(context.Background(), spec.ConsumerGroup)
	require.NoError(t, err)
	var total int64
	for _, o := range committed {
		total += o
	}
	// The commit is the position at the third checkpoint's barrier, 90 s
	// after RUNNING: about 90 000 records read.
	assert.InDelta(t, 90000, float64(total), 2000)
	for _, p := range vertex(v, "Source: orders").Subtasks[0].Partitions {
		assert.Equal(t, committed[TopicPartition{p.Topic, int32(p.Partition)}], p.CommittedOffset)
	}

	slow := pipeline()
	slow.Vertices[2].StateBytes = 50e9
	slow.Checkpoints.Throughput = 100e6 // 500 s to write, timeout 60 s
	slow.Checkpoints.Timeout = time.Minute
	j, _ = start(t, slow, constant(slow, 1000))
	require.NoError(t, j.Advance(50*time.Second+100*time.Second))
	c := j.View().Job.Checkpoints
	assert.Equal(t, 0, c.Completed)
	assert.GreaterOrEqual(t, c.Failed, 1)
	assert.Equal(t, "Checkpoint expired before completing.", c.LatestFailed.FailureMessage)
}

func TestPartitionsFollowFlinksAssignment(t *testing.T) {
	spec := pipeline()
	j, _ := start(t, spec, constant(spec, 100))
	require.NoError(t, j.Advance(time.Minute))
	src := vertex(j.View(), "Source: orders")
	// Fresh start: partition p of "orders" goes to (start + p) % 2 with
	// start = 1088887011 % 2 = 1 → readers [1,3] and [0,2].
	var got [][]int
	for _, s := range src.Subtasks {
		var ps []int
		for _, p := range s.Partitions {
			ps = append(ps, p.Partition)
			assert.Equal(t, assign.KafkaSplitOwner("orders", p.Partition, 2), s.Index)
		}
		got = append(got, ps)
	}
	assert.Equal(t, [][]int{{1, 3}, {0, 2}}, got)
}

// A rescale through stop-with-savepoint loses and duplicates nothing: the
// sources resume exactly where the savepoint's barrier was, at the new
// parallelism, with splits spread by the restore rule.
func TestStopWithSavepointAndResubmitConservesRecords(t *testing.T) {
	spec := pipeline()
	j, _ := start(t, spec, constant(spec, 3000))
	require.NoError(t, j.Advance(5*time.Minute))
	v := j.View()
	id := v.Job.ID
	trig, err := j.TriggerSavepoint(SavepointRequest{JobID: id, TargetDirectory: "s3://sp", Stop: true})
	require.NoError(t, err)
	var status SavepointStatus
	for range 60 {
		require.NoError(t, j.Advance(time.Second))
		status, err = j.SavepointStatus(id, trig)
		require.NoError(t, err)
		if status.Status == "COMPLETED" {
			break
		}
	}
	require.Equal(t, "COMPLETED", status.Status)
	require.Empty(t, status.FailureCause)
	assert.Equal(t, "FINISHED", j.View().Job.State)
	stopped := j.Stats()
	assert.Zero(t, stopped.InFlight, "the barrier drained the buffers")
	assert.InDelta(t, float64(stopped.Consumed), stopped.Delivered, 1e-6, "every record read left the sink")

	mapID, _ := j.VertexID("Map")
	srcID, _ := j.VertexID("Source: orders")
	require.NoError(t, j.Submit(Submission{SavepointPath: status.Location, Overrides: map[string]int{mapID: 8, srcID: 3}}))
	v = j.View()
	assert.NotEqual(t, id, v.Job.ID, "a resubmitted job has a new id")
	assert.Equal(t, "INITIALIZING", v.Job.State)
	assert.Equal(t, status.Location, v.Job.Checkpoints.LatestRestored.ExternalPath)
	restored := j.Stats()
	assert.Equal(t, stopped.Consumed, restored.Consumed, "sources resume at the savepoint's offsets")
	// The backlog (≈ 300 000 from 5 minutes 1000 rec/s short, plus 50 s of
	// downtime at 3000) drains at the 1000 rec/s spare: about 8 minutes.
	require.NoError(t, j.Advance(15*time.Minute))
	v = j.View()
	assert.Equal(t, 8, vertex(v, "Map").Parallelism)
	assert.InDelta(t, 750, maxOf(vertex(v, "Map"), busy), 20, "8×500 = 4000 rec/s of capacity for 3000")
	assert.Less(t, j.Stats().Lag, int64(5000))
	end := j.Stats()
	assert.Zero(t, end.Reprocessed)
	assert.Equal(t, end.Produced, end.Consumed+end.Lag)
	assert.InDelta(t, float64(end.Consumed), end.Delivered+end.InFlight, 1e-3)
	// Restore rule: 4 splits of readers [1,3] [0,2] over 3 readers → [1,3] [0] [2].
	var got [][]int
	for _, s := range vertex(v, "Source: orders").Subtasks {
		var ps []int
		for _, p := range s.Partitions {
			ps = append(ps, p.Partition)
		}
		got = append(got, ps)
	}
	assert.Equal(t, [][]int{{1, 3}, {0}, {2}}, got)
}

func TestSavepointFailureKeepsTheJobRunning(t *testing.T) {
	j, _ := start(t, pipeline(), constant(pipeline(), 1000))
	require.NoError(t, j.Advance(2*time.Minute))
	j.Inject(FaultSavepoint)
	id := j.View().Job.ID
	trig, err := j.TriggerSavepoint(SavepointRequest{JobID: id, Stop: true})
	require.NoError(t, err)
	require.NoError(t, j.Advance(10*time.Second))
	st, err := j.SavepointStatus(id, trig)
	require.NoError(t, err)
	assert.Equal(t, "COMPLETED", st.Status)
	assert.Contains(t, st.FailureCause, "declined")
	assert.Empty(t, st.Location)
	assert.Equal(t, "RUNNING", j.View().Job.State)
	before := j.Stats().Consumed
	require.NoError(t, j.Advance(30*time.Second))
	assert.Greater(t, j.Stats().Consumed, before, "the sources resumed")
}

func TestRestartFailureAndTaskManagerLoss(t *testing.T) {
	j, _ := start(t, pipeline(), constant(pipeline(), 1000))
	require.NoError(t, j.Advance(3*time.Minute))
	consumed := j.Stats().Consumed
	j.Inject(FaultTaskManagerLoss)
	v := j.View()
	assert.Equal(t, "RESTARTING", v.Job.State)
	assert.Equal(t, 1, v.Job.NumRestarts)
	// Rewound to the last checkpoint: what was read after it is read again.
	rewound := j.Stats()
	assert.Less(t, rewound.Consumed, consumed)
	assert.Equal(t, consumed-rewound.Consumed, rewound.Reprocessed)
	require.NoError(t, j.Advance(51*time.Second))
	assert.Equal(t, "RUNNING", j.View().Job.State)

	// A restart that fails leaves the job FAILED after its downtime.
	id := j.View().Job.ID
	trig, err := j.TriggerSavepoint(SavepointRequest{JobID: id, Stop: true})
	require.NoError(t, err)
	require.NoError(t, j.Advance(30*time.Second))
	st, _ := j.SavepointStatus(id, trig)
	require.Equal(t, "COMPLETED", st.Status)
	j.Inject(FaultRestart)
	require.NoError(t, j.Submit(Submission{SavepointPath: st.Location}))
	require.NoError(t, j.Advance(time.Minute))
	assert.Equal(t, "FAILED", j.View().Job.State)
}

func TestInPlaceRescaleWithTheAdaptiveScheduler(t *testing.T) {
	spec := pipeline()
	spec.Scheduler = "adaptive"
	j, _ := start(t, spec, constant(spec, 3000))
	require.NoError(t, j.Advance(3*time.Minute))
	id := j.View().Job.ID
	req, err := j.ResourceRequirements(id)
	require.NoError(t, err)
	mapID, _ := j.VertexID("Map")
	assert.Equal(t, Bounds{1, 4}, req[mapID])

	delete(req, mapID)
	assert.ErrorIs(t, j.UpdateResourceRequirements(id, req), ErrBadRequest, "every vertex must be listed")
	req[mapID] = Bounds{1, 999}
	assert.ErrorIs(t, j.UpdateResourceRequirements(id, req), ErrBadRequest, "upper bound above max parallelism")
	req[mapID] = Bounds{1, 8}
	require.NoError(t, j.UpdateResourceRequirements(id, req))
	assert.ErrorIs(t, j.UpdateResourceRequirements(id, req), ErrConflict, "a second update while restarting")
	v := j.View()
	assert.Equal(t, "RESTARTING", v.Job.State)
	assert.Equal(t, id, v.Job.ID, "in place: same job")
	require.NoError(t, j.Advance(2*time.Minute))
	v = j.View()
	assert.Equal(t, "RUNNING", v.Job.State)
	assert.Equal(t, 8, vertex(v, "Map").Parallelism)
	assert.Equal(t, 1, v.Job.NumRescales)
	assert.Positive(t, j.Stats().Reprocessed, "restarted from the last checkpoint")
	assert.Len(t, v.TaskManagers, 4, "8 slots (Map's 8 subtasks share them) on TaskManagers of 2")

	// A scale-down leaves TaskManagers idle: the resource manager releases
	// them TaskManagerTimeout (30 s) after the job runs again. Restart 30 s
	// (no restore cost set) → RUNNING at +30 s, released at +60 s. Every
	// vertex at 2 needs 2 slots, one TaskManager's worth, but the adaptive
	// scheduler spreads the slots it keeps over the TaskManagers it has
	// (as real Flink 1.20.3 did): the 2 slots keep 2 TaskManagers.
	req[mapID] = Bounds{1, 2}
	require.NoError(t, j.UpdateResourceRequirements(id, req))
	require.NoError(t, j.Advance(45*time.Second))
	v = j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	assert.Len(t, v.TaskManagers, 4, "still within the TaskManager timeout")
	require.NoError(t, j.Advance(30*time.Second))
	assert.Len(t, j.View().TaskManagers, 2, "idle TaskManagers released")
	n, slots := j.TaskManagers()
	assert.Equal(t, []int{2, 2}, []int{n, slots}, "what the job holds")

	def, _ := start(t, pipeline(), nil)
	require.NoError(t, def.Advance(time.Minute))
	assert.ErrorIs(t, def.UpdateResourceRequirements(def.View().Job.ID, req), ErrUnsupported)
}

func TestKeySkewLoadsOneSubtaskMore(t *testing.T) {
	spec := pipeline()
	spec.Vertices[2].KeySkew = 1.2
	spec.Vertices[2].Capacity = 1000
	j, _ := start(t, spec, constant(spec, 1000))
	require.NoError(t, j.Advance(4*time.Minute))
	sink := vertex(j.View(), "KeyedAgg -> Sink: Print")
	hi, lo := maxOf(sink, busy), 1000.0
	for _, s := range sink.Subtasks {
		lo = min(lo, s.BusyTimeMsPerSecond)
	}
	assert.Greater(t, hi, 1.2*lo, "Zipf keys make one key-group range hotter")
}

func TestNonLinearVertexLosesPerSubtaskCapacity(t *testing.T) {
	// Capacity 500/(1 + 0.1·(8−1)) = 294 rec/s a subtask at p=8.
	spec := pipeline()
	spec.Vertices[1].USL = USLSpec{Sigma: 0.1}
	spec.Vertices[1].Parallelism = 8
	j, _ := start(t, spec, constant(spec, 1000))
	require.NoError(t, j.Advance(4*time.Minute))
	mp := vertex(j.View(), "Map")
	// 1000 rec/s over 8 subtasks of 294 → 42.5 % busy.
	assert.InDelta(t, 425, maxOf(mp, busy), 15)
}

func TestSameSeedSameTrace(t *testing.T) {
	run := func() (View, Stats) {
		j, _ := start(t, pipeline(), constant(pipeline(), 2500))
		require.NoError(t, j.Advance(3*time.Minute))
		return j.View(), j.Stats()
	}
	v1, s1 := run()
	v2, s2 := run()
	assert.Equal(t, v1.Job.ID, v2.Job.ID)
	assert.Equal(t, s1, s2)
	assert.Equal(t, v1.Job.Vertices, v2.Job.Vertices)
}

func TestInvalidSpecs(t *testing.T) {
	for name, edit := range map[string]func(*JobSpec){
		"cycle":           func(s *JobSpec) { s.Vertices[0].Inputs = []EdgeSpec{{From: "Map", Ship: "FORWARD"}} },
		"unknown topic":   func(s *JobSpec) { s.Vertices[0].Topics = []string{"nope"} },
		"unknown input":   func(s *JobSpec) { s.Vertices[1].Inputs[0].From = "nope" },
		"bad ship":        func(s *JobSpec) { s.Vertices[1].Inputs[0].Ship = "SHUFFLE" },
		"zero capacity":   func(s *JobSpec) { s.Vertices[1].Capacity = 0 },
		"no checkpoints":  func(s *JobSpec) { s.Checkpoints.Interval = 0 },
		"duplicate names": func(s *JobSpec) { s.Vertices[2].Name = "Map" },
	} {
		spec := pipeline()
		edit(&spec)
		_, err := NewJob(spec, Options{Start: t0})
		assert.Error(t, err, name)
	}
}

// broadcastJoin is orders keyed into a join that also receives a rules
// stream over a BROADCAST edge, and a sink after it.
func broadcastJoin() JobSpec {
	return JobSpec{
		Name: "rules_join", FlinkVersion: "1.20", ConsumerGroup: "rules-join",
		Topics: []TopicSpec{{Name: "orders", Partitions: 4}, {Name: "rules", Partitions: 1}},
		Vertices: []VertexSpec{
			{Name: "Source: orders", Parallelism: 2, Capacity: 10000, Selectivity: 1, Topics: []string{"orders"}},
			{Name: "Source: rules", Parallelism: 1, Capacity: 10000, Selectivity: 1, Topics: []string{"rules"}},
			{Name: "Join", Parallelism: 4, MaxParallelism: 128, Capacity: 1000, Selectivity: 1, Inputs: []EdgeSpec{
				{From: "Source: orders", Ship: "HASH"}, {From: "Source: rules", Ship: "BROADCAST"}}},
			{Name: "Sink", Parallelism: 1, Capacity: 20000, Selectivity: 0, Inputs: []EdgeSpec{{From: "Join", Ship: "REBALANCE"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 4, Slots: 4},
		Checkpoints: CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     RestartSpec{Time: 20 * time.Second},
	}
}

// A BROADCAST edge sends every record to every downstream subtask, as
// Flink does: the receiver's numRecordsIn summed over its subtasks counts
// each broadcast record once per subtask, each subtask spends busy time on
// all of them (that load does not shrink with parallelism), and the
// sender's numRecordsOut counts each record once.
func TestBroadcastReachesEverySubtask(t *testing.T) {
	spec := broadcastJoin()
	rates := map[string]float64{"orders": 2000, "rules": 100}
	load := TopicRates(spec.Topics, func(topic string, _ time.Duration) float64 { return rates[topic] })
	j, _ := start(t, spec, load)
	sumOf := func(v VertexView, f func(SubtaskView) float64) float64 { return sum(v, f) }
	in := func(s SubtaskView) float64 { return s.NumRecordsInPerSecond }
	out := func(s SubtaskView) float64 { return s.NumRecordsOutPerSecond }
	check := func(p int) {
		t.Helper()
		v := j.View()
		require.Equal(t, "RUNNING", v.Job.State)
		join, rules, sink := vertex(v, "Join"), vertex(v, "Source: rules"), vertex(v, "Sink")
		require.Len(t, join.Subtasks, p)
		assert.InDelta(t, 100, sumOf(rules, out), 3, "the sender counts each rule once")
		assert.InDelta(t, 2000+float64(p)*100, sumOf(join, in), 40, "each of the %d subtasks counts every rule", p)
		assert.InDelta(t, 2000+float64(p)*100, sumOf(sink, in), 40, "and processes and emits it")
		// Busy: a subtask's share of the orders plus every rule, at
		// 1000 records/s.
		for _, st := range join.Subtasks {
			assert.InDelta(t, (2000/float64(p)+100)/1000*1000, st.BusyTimeMsPerSecond, 60, "subtask %d of %d", st.Index, p)
		}
	}
	require.NoError(t, j.Advance(3*time.Minute))
	check(4)

	// Twice the subtasks: half the orders each, the same rules each.
	id := j.View().Job.ID
	trig, err := j.TriggerSavepoint(SavepointRequest{JobID: id, Stop: true})
	require.NoError(t, err)
	for st, _ := j.SavepointStatus(id, trig); st.Status != "COMPLETED"; st, _ = j.SavepointStatus(id, trig) {
		require.NoError(t, j.Advance(time.Second))
	}
	st, _ := j.SavepointStatus(id, trig)
	joinID, _ := j.VertexID("Join")
	require.NoError(t, j.Submit(Submission{SavepointPath: st.Location, Overrides: map[string]int{joinID: 8}}))
	require.NoError(t, j.Advance(3*time.Minute))
	check(8)

	// The ground truth says the same: a subtask spends SubtaskCapacity on
	// each rule; Capacity is the orders' (partitioned) side.
	tr := j.Truth()
	assert.Equal(t, []bool{false, true}, tr[2].Broadcast, tr[2].Name)
	c, ok := j.SubtaskCapacity(joinID, 8, 4)
	require.True(t, ok)
	assert.InDelta(t, 1000, c, 1e-9)
	c, _ = j.Capacity(joinID, 8, 4, nil)
	assert.InDelta(t, 8000, c, 1e-9, "uniform keys: an eighth of the orders a subtask")
}
