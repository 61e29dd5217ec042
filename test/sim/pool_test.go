package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipe is a source feeding a keyed sink, one slot-sharing group, both at
// parallelism p (max parallelism 8): the job needs p slots. Restarts take
// 10 s; on a pool no TaskManager starts for it (TaskManagerStartup unused).
func pipe(name, scheduler string, p int) JobSpec {
	return JobSpec{
		Name: name, FlinkVersion: "1.20", Scheduler: scheduler, ConsumerGroup: name,
		Topics: []TopicSpec{{Name: name + "-in", Partitions: 8}},
		Vertices: []VertexSpec{
			{Name: "Source: in", Parallelism: p, MaxParallelism: 8, Capacity: 5000, Selectivity: 1, Topics: []string{name + "-in"}},
			{Name: "KeyedAgg -> Sink", Parallelism: p, MaxParallelism: 8, Capacity: 4000, Selectivity: 0,
				Inputs: []EdgeSpec{{From: "Source: in", Ship: "HASH"}}},
		},
		TaskManager: TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     RestartSpec{Time: 10 * time.Second, TaskManagerStartup: time.Hour},
	}
}

// onPool creates a job on p and submits it.
func onPool(t *testing.T, p *Pool, spec JobSpec, seed uint64) *Job {
	t.Helper()
	j, err := NewJob(spec, Options{Start: t0, Seed: seed, Load: constant(spec, 100)})
	require.NoError(t, err)
	j.UsePool(p)
	require.NoError(t, j.Submit(Submission{}))
	return j
}

// widest is the job's widest vertex parallelism.
func widest(j *Job) int { return j.View().Job.JobParallelism }

func upTo(j *Job, upper int) map[string]Bounds {
	req := map[string]Bounds{}
	for _, v := range j.g.vertices {
		req[v.id] = Bounds{LowerBound: 1, UpperBound: upper}
	}
	return req
}

func TestDetermineParallelismFollowsFlinksSlotSharingSlotAllocator(t *testing.T) {
	// Vertices a, b in group "x"; c in group "y" (when named).
	type vx struct {
		group        string
		lower, upper int
	}
	for _, tc := range []struct {
		name  string
		vs    []vx
		slots int
		want  []int // a, b, c; nil: too few slots
	}{
		{"one group takes every slot up to its widest upper bound: min(4, 3) = 3; b min(2, 3) = 2",
			[]vx{{"x", 1, 4}, {"x", 1, 2}}, 3, []int{3, 2}},
		{"one group with slots to spare: min(4, 10) = 4",
			[]vx{{"x", 1, 4}, {"x", 1, 2}}, 10, []int{4, 2}},
		{"two equal groups on 5 slots: the first gets 1 + (5−2)/2 = 2, the second 1 + (3−1)/1 = 3",
			[]vx{{"x", 1, 4}, {"x", 1, 4}, {"y", 1, 4}}, 5, []int{2, 2, 3}},
		{"a narrow group leaves its share to the wide one: y (range 0) gets 1, x 1 + min(7, 5−1) = 5",
			[]vx{{"x", 1, 8}, {"x", 1, 8}, {"y", 1, 1}}, 6, []int{5, 5, 1}},
		{"lower bounds: y (range 2) first: 2 + (4−3)/2 = 2; x: 1 + min(3, 2−1) = 2",
			[]vx{{"x", 1, 4}, {"x", 1, 4}, {"y", 2, 4}}, 4, []int{2, 2, 2}},
		{"the group's minimum is its largest lower bound (FLINK-33960): 3 + 3 > 5 slots",
			[]vx{{"x", 1, 4}, {"x", 3, 4}, {"y", 3, 4}}, 5, nil},
		{"fewer slots than groups", []vx{{"x", 1, 4}, {"x", 1, 4}, {"y", 1, 4}}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &graph{}
			req := map[string]Bounds{}
			for i, v := range tc.vs {
				id := string(rune('a' + i))
				g.vertices = append(g.vertices, &gvertex{id: id, group: v.group})
				req[id] = Bounds{LowerBound: v.lower, UpperBound: v.upper}
			}
			par := determineParallelism(g, req, tc.slots)
			if tc.want == nil {
				assert.Nil(t, par)
				return
			}
			var got []int
			for _, v := range g.vertices {
				got = append(got, par[v.id])
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// A session of two adaptive jobs on a pool of 3 TaskManagers × 2 slots.
// B is submitted first (1 slot: TM1/slot 1), then A (4 slots: TM1/2,
// TM2/1, TM2/2, TM3/1); 1 slot stays free (TM3/2).
func TestJobsShareThePoolsSlots(t *testing.T) {
	pool := NewPool(3, 2, 20*time.Second)
	b := onPool(t, pool, pipe("b", "adaptive", 1), 2)
	a := onPool(t, pool, pipe("a", "adaptive", 4), 1)
	s := Session{Jobs: []*Job{a, b}}

	type want struct {
		aState, bState string
		aPar, bPar     int
		registered     int
		free           int
	}
	for _, step := range []struct {
		name    string
		act     func(t *testing.T)
		advance time.Duration
		want    want
	}{
		{"both run 10 s after submission, on TaskManagers that run already; 6 − 4 − 1 = 1 slot free",
			nil, time.Minute, want{"RUNNING", "RUNNING", 4, 1, 3, 1}},
		{"B asks for 4 in place at 1:00: it gets the free slot plus the one it holds, 2",
			func(t *testing.T) { require.NoError(t, b.UpdateResourceRequirements(b.View().Job.ID, upTo(b, 4))) },
			0, want{"RUNNING", "RESTARTING", 4, 2, 3, 0}},
		{"B runs at 2 at 1:10", nil, 10 * time.Second, want{"RUNNING", "RUNNING", 4, 2, 3, 0}},
		{"a fourth TaskManager at 1:10 registers 20 s later, at 1:30: 2 slots free",
			func(*testing.T) { pool.SetTaskManagers(4) }, 20 * time.Second, want{"RUNNING", "RUNNING", 4, 2, 4, 2}},
		{"B waits for 30 s since it started running (1:10): still 2 at 1:39",
			nil, 9 * time.Second, want{"RUNNING", "RUNNING", 4, 2, 4, 2}},
		{"at 1:40 B rescales to its upper bound 4 (2 held + 2 free)",
			nil, time.Second, want{"RUNNING", "RESTARTING", 4, 4, 4, 0}},
		{"B runs at 4 at 1:50", nil, 10 * time.Second, want{"RUNNING", "RUNNING", 4, 4, 4, 0}},
		{"two TaskManagers go, the newest first: TM4 (B's 2 new slots) and TM3 (A's TM3/1, B's TM3/2): " +
			"both fail over; B keeps TM1/1, A its 3 slots on TM1 and TM2: A runs at 3, B at 1",
			func(*testing.T) { pool.SetTaskManagers(2) }, 0, want{"RESTARTING", "RESTARTING", 3, 1, 2, 0}},
		{"both run again 10 s later", nil, 10 * time.Second, want{"RUNNING", "RUNNING", 3, 1, 2, 0}},
	} {
		if step.act != nil {
			step.act(t)
		}
		require.NoError(t, s.Advance(step.advance))
		av, bv := a.View(), b.View()
		registered, _ := pool.TaskManagers()
		_, free := pool.Slots()
		got := want{av.Job.State, bv.Job.State, av.Job.JobParallelism, bv.Job.JobParallelism, registered, free}
		require.Equal(t, step.want, got, step.name)
		viewFree := 0
		for _, tm := range av.TaskManagers {
			viewFree += tm.FreeSlots
		}
		assert.Equal(t, free, viewFree, "%s: the view shows the pool", step.name)
		assert.Len(t, bv.TaskManagers, registered, step.name)
	}
	assert.Equal(t, 1, a.View().Job.NumRestarts, "A failed over once")
	assert.Equal(t, []int{0, 2}, []int{a.View().Job.NumRescales, b.View().Job.NumRescales}, "B rescaled at 1:00 and 1:40")
}

func TestWaitingForSlots(t *testing.T) {
	type step struct {
		at         time.Duration // since submission
		setTMs     int           // > 0: SetTaskManagers(setTMs) at that time
		state      string
		par        int // 0: not checked
		cause      string
		free       int
		registered int
	}
	const (
		slotTimeout = "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Slot request bulk is not fulfillable! Could not allocate the required slot within slot request timeout"
		minimum     = "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Could not acquire the minimum required resources."
	)
	for _, tc := range []struct {
		name      string
		scheduler string
		reactive  bool
		tms       int // of 2 slots
		steps     []step
	}{
		{"default scheduler, 4 slots there: it holds them at once, runs after the restart time alone (10 s), no TaskManager starts",
			"default", false, 2, []step{
				{at: 9 * time.Second, state: "CREATED", free: 0, registered: 2},
				{at: 10 * time.Second, state: "RUNNING", par: 4, free: 0, registered: 2},
			}},
		{"default scheduler, 2 slots for 4: CREATED until slot.request.timeout (5 min), then FAILED; its slots free",
			"default", false, 1, []step{
				{at: 4*time.Minute + 59*time.Second, state: "CREATED", free: 2, registered: 1},
				{at: 5 * time.Minute, state: "FAILED", cause: slotTimeout, free: 2, registered: 1},
			}},
		{"default scheduler: a TaskManager added at 1:00 registers at 1:20; the job runs 10 s later, at 1:30",
			"default", false, 1, []step{
				{at: time.Minute, setTMs: 2, state: "CREATED", free: 2, registered: 1},
				{at: time.Minute + 20*time.Second, state: "CREATED", free: 0, registered: 2},
				{at: time.Minute + 29*time.Second, state: "CREATED", free: 0, registered: 2},
				{at: time.Minute + 30*time.Second, state: "RUNNING", par: 4, free: 0, registered: 2},
			}},
		{"adaptive scheduler, 2 slots for 4: runs at what fits, 2, at 0:10",
			"adaptive", false, 1, []step{
				{at: 10 * time.Second, state: "RUNNING", par: 2, free: 0, registered: 1},
			}},
		{"adaptive scheduler, no TaskManager: FAILED after resource-wait-timeout (5 min)",
			"adaptive", false, 0, []step{
				{at: 4*time.Minute + 59*time.Second, state: "CREATED", free: 0, registered: 0},
				{at: 5 * time.Minute, state: "FAILED", cause: minimum, free: 0, registered: 0},
			}},
		{"reactive mode, no TaskManager: waits for ever; one added at 10:00 registers at 10:20, the job runs at 10:30 on its 2 slots",
			"", true, 0, []step{
				{at: 10 * time.Minute, setTMs: 1, state: "CREATED", free: 0, registered: 0},
				{at: 10*time.Minute + 29*time.Second, state: "CREATED", free: 0, registered: 1},
				{at: 10*time.Minute + 30*time.Second, state: "RUNNING", par: 2, free: 0, registered: 1},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := pipe("w", tc.scheduler, 4)
			if tc.reactive {
				spec.SchedulerMode = SchedulerModeReactive
			}
			pool := NewPool(tc.tms, 2, 20*time.Second)
			j := onPool(t, pool, spec, 1)
			at := time.Duration(0)
			for _, s := range tc.steps {
				require.NoError(t, j.Advance(s.at-at))
				at = s.at
				if s.setTMs > 0 {
					pool.SetTaskManagers(s.setTMs)
				}
				v := j.View()
				_, free := pool.Slots()
				registered, _ := pool.TaskManagers()
				assert.Equal(t, []any{s.state, s.cause, s.free, s.registered}, []any{v.Job.State, v.Job.FailureCause, free, registered}, "at %v", s.at)
				if s.par > 0 {
					assert.Equal(t, s.par, v.Job.JobParallelism, "at %v", s.at)
				}
			}
		})
	}
}

// A reactive job on 2 TaskManagers × 2 slots: its source (max parallelism
// 5) and its keyed sink (128) run at min(max parallelism, 4 slots) = 4;
// with a third TaskManager at min(5, 6) = 5 and min(128, 6) = 6; with one
// TaskManager left, at 2.
func TestReactiveModeFollowsTheTaskManagers(t *testing.T) {
	spec := pipe("r", "", 1)
	spec.SchedulerMode = SchedulerModeReactive
	spec.Vertices[0].MaxParallelism = 5
	spec.Vertices[1].MaxParallelism = 128
	_, err := NewJob(spec, Options{Start: t0})
	require.NoError(t, err)

	native, err := NewJob(spec, Options{Start: t0})
	require.NoError(t, err)
	assert.ErrorIs(t, native.Submit(Submission{}), ErrBadRequest, "reactive mode needs a standalone cluster")

	bad := spec
	bad.SchedulerMode = "elastic"
	_, err = NewJob(bad, Options{Start: t0})
	assert.Error(t, err)

	pool := NewPool(2, 2, 20*time.Second)
	j := onPool(t, pool, spec, 1)
	src, _ := j.VertexID("Source: in")
	sink, _ := j.VertexID("KeyedAgg -> Sink")
	pars := func() []int {
		p := j.Parallelism()
		return []int{p[src], p[sink]}
	}
	require.NoError(t, j.Advance(time.Minute))
	v := j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	assert.Equal(t, []int{4, 4}, pars())
	assert.Equal(t, "adaptive", v.Scheduler)
	assert.Equal(t, "reactive", v.JobManagerConfig["scheduler-mode"])
	assert.Equal(t, "adaptive", v.JobManagerConfig["jobmanager.scheduler"])
	req, err := j.ResourceRequirements(v.Job.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]Bounds{src: {1, 5}, sink: {1, 128}}, req, "upper bounds: the max parallelism")

	err = j.UpdateResourceRequirements(v.Job.ID, map[string]Bounds{src: {1, 2}, sink: {1, 2}})
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.ErrorContains(t, err, "Cannot change the parallelism of a job running in reactive mode.")
	assert.Equal(t, "RUNNING", j.View().Job.State)

	// A third TaskManager at 1:00 registers at 1:20; the job has run since
	// 0:10, past the 30 s interval: it rescales at 1:20, runs at 1:30.
	pool.SetTaskManagers(3)
	require.NoError(t, j.Advance(20*time.Second))
	assert.Equal(t, "RESTARTING", j.View().Job.State)
	require.NoError(t, j.Advance(10*time.Second))
	assert.Equal(t, "RUNNING", j.View().Job.State)
	assert.Equal(t, []int{5, 6}, pars())
	_, free := pool.Slots()
	assert.Equal(t, 0, free, "6 slots, the sink's 6 subtasks share them with the source's 5")

	pool.SetTaskManagers(1)
	assert.Equal(t, "RESTARTING", j.View().Job.State, "its TaskManagers went: a failover")
	require.NoError(t, j.Advance(10*time.Second))
	assert.Equal(t, "RUNNING", j.View().Job.State)
	assert.Equal(t, []int{2, 2}, pars())
	assert.Equal(t, 1, j.View().Job.NumRestarts)
	assert.Equal(t, 1, j.View().Job.NumRescales)
}

func TestSessionJobIDsAndGenerations(t *testing.T) {
	pool := NewPool(2, 2, 0)
	a, err := NewJob(pipe("a", "adaptive", 2), Options{Start: t0, Seed: 1})
	require.NoError(t, err)
	b, err := NewJob(pipe("b", "adaptive", 1), Options{Start: t0, Seed: 1})
	require.NoError(t, err)
	a.UsePool(pool)
	b.UsePool(pool)
	require.NoError(t, a.Submit(Submission{}))
	assert.ErrorIs(t, b.Submit(Submission{}), ErrConflict, "the same seed draws the same job id: a session runs it once")
	require.NoError(t, b.Submit(Submission{JobID: "0123456789abcdef0123456789abcdef"}))
	require.NoError(t, Session{Jobs: []*Job{a, b}}.Advance(time.Minute))

	// B taking a slot changes A's view (its TaskManagers' free slots), so
	// A's generation moves too.
	gen := a.Generation()
	require.NoError(t, b.UpdateResourceRequirements(b.View().Job.ID, upTo(b, 2)))
	assert.NotEqual(t, gen, a.Generation())
	free := 0
	for _, tm := range a.View().TaskManagers {
		free += tm.FreeSlots
	}
	assert.Equal(t, 0, free, "4 slots: A 2, B 2")
	assert.Equal(t, []string{"a-taskmanager-1-1", "a-taskmanager-1-2"},
		[]string{a.View().TaskManagers[0].ID, b.View().TaskManagers[1].ID}, "the pool's TaskManagers, named after its first job")
}

// On Flink 2 a scale-up to new slots waits for the next checkpoint, as a
// requested rescale does (FLIP-461).
func TestFlink2ScalesUpToNewSlotsOnTheNextCheckpoint(t *testing.T) {
	spec := pipe("f", "adaptive", 4)
	spec.FlinkVersion = "2.1"
	pool := NewPool(1, 2, 20*time.Second)
	j := onPool(t, pool, spec, 1)
	require.NoError(t, j.Advance(time.Minute))
	assert.Equal(t, 2, widest(j), "2 slots for 4")
	n, slots := j.TaskManagers()
	assert.Equal(t, []int{1, 2}, []int{n, slots}, "the pool's")

	// Registered at 1:20, 70 s after the job started running (0:10); the
	// checkpoints run every 30 s from 0:40: the one of 1:40 completes a
	// second later, and the job rescales then.
	pool.SetTaskManagers(2)
	require.NoError(t, j.Advance(39*time.Second))
	v := j.View()
	assert.Equal(t, []any{"RUNNING", 2}, []any{v.Job.State, v.Job.JobParallelism}, "at 1:39, waiting for the checkpoint")
	require.NoError(t, j.Advance(21*time.Second))
	v = j.View()
	assert.Equal(t, []any{"RUNNING", 4, 1}, []any{v.Job.State, v.Job.JobParallelism, v.Job.NumRescales}, "at 2:00")
	assert.Equal(t, ms(t0.Add(time.Minute+41*time.Second)), v.Job.Timestamps["RESTARTING"])
}
