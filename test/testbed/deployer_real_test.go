package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/test/sim"
)

// TestRealDeployer drives real Flink through the Deployer as the fake
// operator does, playing scenarios/saturate-step.yaml: a first deployment
// with overrides; a stop-with-savepoint and a redeployment from it with
// another parallelism, slot count and TaskManager count (the state and the
// Kafka offsets carry over); an in-place scale-up through the resource
// requirements (the pool grows) and a scale-down (the idle TaskManager
// goes); a TaskManager killed (the job fails over and runs again, the
// replacement starts); a savepoint that fails for real while the job runs
// on; a cancel and a submission from a missing savepoint (the job FAILs).
// It logs the downtimes. Minutes per Flink line: it runs with
// FLINKSCALE_REAL=1 and FLINKSCALE_REAL_LONG=1; FLINKSCALE_TESTBED_FLINK
// picks one line. With FLINKSCALE_UPDATE_GOLDEN=1 it records the failed
// savepoint's status in testdata/deployer/.
func TestRealDeployer(t *testing.T) {
	requireRealLong(t)
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) { realDeployer(t, v) })
	}
}

func realDeployer(t *testing.T, v Flink) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "flinkscale-deployer-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("run directory kept: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	tb, err := Start(ctx, Options{
		Scenario: s, Flink: v, SkipJavaTests: true, NoJob: true, Dir: dir, Progress: testWriter{t},
		// Slots a scale-down frees go back to the resource manager after
		// this (default 50 s), then the TaskManager counts as idle.
		Config: map[string]string{"slot.idle.timeout": "5000"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tb.Stop()) })
	require.Empty(t, tb.JobID, "NoJob: Start submits nothing")

	began := time.Now()
	d, err := NewDeployer(ctx, tb, DeployerOptions{IdleTaskManagerTimeout: 10 * time.Second, Progress: testWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	t.Logf("deployer ready in %s (the plan of the workload)", time.Since(began).Round(time.Millisecond))
	src, ok1 := d.VertexID("Source: events -> Map")
	keyed, ok2 := d.VertexID("KeyedProcess: count")
	sink, ok3 := d.VertexID("Sink: counts")
	require.True(t, ok1 && ok2 && ok3, "every scenario vertex has an id before any job runs")
	kc, err := kafka.New(kafka.Config{BootstrapServers: []string{tb.Kafka.Bootstrap()}})
	require.NoError(t, err)
	defer kc.Close()
	committed := func() map[int]int64 {
		ks, err := kc.Collect(ctx, s.Job.ConsumerGroup, []string{"events"})
		require.NoError(t, err)
		out := map[int]int64{}
		for _, p := range ks.Partitions {
			out[p.Partition] = p.Committed
		}
		return out
	}

	// 1. The first deployment, with an override.
	job1 := randomHex()
	t0 := time.Now()
	require.NoError(t, d.Submit(sim.Submission{JobID: job1, Overrides: map[string]int{keyed: 3}, SlotsPerTaskManager: 2, TaskManagers: 2}))
	assert.Less(t, time.Since(t0), time.Second, "Submit does not wait for the client")
	first := d.View().Job
	assert.Equal(t, job1, first.ID)
	assert.Equal(t, "INITIALIZING", first.State, "the submission is in flight")
	vw := waitView(t, ctx, d, "job 1 to run with keyed=3", func(v sim.View) bool {
		return v.Job.ID == job1 && Steady(&v.Job) && parallelismOf(v, keyed) == 3
	})
	t.Logf("first deployment: RUNNING %s after Submit", time.Since(t0).Round(100*time.Millisecond))
	assert.Equal(t, map[string]int{src: 2, keyed: 3, sink: 1}, vertexParallelism(vw))
	// 2 + 3 + 1 subtasks in one slot sharing group: 3 slots of 4.
	assert.ElementsMatch(t, []string{"2/2", "2/1"}, slotShapes(waitView(t, ctx, d, "2 TaskManagers of 2 slots", func(v sim.View) bool {
		return len(v.TaskManagers) == 2
	})))
	waitView(t, ctx, d, "a checkpoint of job 1", func(v sim.View) bool { return v.Job.Checkpoints.LatestCompleted != nil })

	// 2. Stop with a savepoint, then redeploy from it: keyed 3 → 4, 2 → 4
	// slots a TaskManager, 2 → 1 TaskManagers. The source commits its
	// offsets when a checkpoint completes: wait for the first commit.
	var before map[int]int64
	waitFor(t, ctx, "job 1 to commit offsets", func() bool {
		before = committed()
		return len(before) == 4 && !slices.Contains(slices.Collect(maps.Values(before)), -1)
	})
	t0 = time.Now()
	trig, err := d.TriggerSavepoint(sim.SavepointRequest{JobID: job1, Stop: true, TargetDirectory: "s3://flink/savepoints", FormatType: "CANONICAL"})
	require.NoError(t, err)
	sp := awaitSavepoint(t, ctx, d, job1, trig)
	require.Empty(t, sp.FailureCause)
	tSavepoint := time.Now()
	assert.True(t, strings.HasPrefix(sp.Location, "file:"+filepath.Join(tb.Flink.Dir(), "savepoints")),
		"s3:// maps to the cluster's savepoint directory: %s", sp.Location)
	job2 := randomHex()
	require.NoError(t, d.Submit(sim.Submission{JobID: job2, Overrides: map[string]int{keyed: 4}, SlotsPerTaskManager: 4, TaskManagers: 1, SavepointPath: sp.Location}))
	vw = waitView(t, ctx, d, "job 2 to run with keyed=4", func(v sim.View) bool {
		return v.Job.ID == job2 && Steady(&v.Job) && parallelismOf(v, keyed) == 4
	})
	restart := time.Since(t0)
	t.Logf("savepoint restart: downtime %s (savepoint %s, then RUNNING %s after Submit)", restart.Round(100*time.Millisecond),
		tSavepoint.Sub(t0).Round(100*time.Millisecond), time.Since(tSavepoint).Round(100*time.Millisecond))
	assert.Equal(t, map[string]int{src: 2, keyed: 4, sink: 1}, vertexParallelism(vw))
	if r := vw.Job.Checkpoints.LatestRestored; assert.NotNil(t, r, "job 2 restored") {
		assert.True(t, r.IsSavepoint)
		assert.Equal(t, sp.Location, r.ExternalPath)
	}
	assert.Equal(t, []string{"4/4"}, slotShapes(waitView(t, ctx, d, "1 TaskManager of 4 slots", func(v sim.View) bool {
		return len(v.TaskManagers) == 1 && v.TaskManagers[0].SlotsNumber == 4
	})))
	assert.Equal(t, "4", vw.JobManagerConfig["taskmanager.numberOfTaskSlots"])
	waitView(t, ctx, d, "a checkpoint of job 2", func(v sim.View) bool {
		c := v.Job.Checkpoints.LatestCompleted
		return v.Job.ID == job2 && c != nil && !c.IsSavepoint
	})
	// Restored, the job reads on from the savepoint's offsets: what it
	// commits never goes below what job 1 had committed before the stop.
	var after map[int]int64
	waitFor(t, ctx, "job 2 to commit offsets past job 1's", func() bool {
		after = committed()
		for p, off := range before {
			if after[p] < off {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("committed %v, before the stop %v", after, before) })
	t.Logf("committed offsets before the stop %v, after job 2's first checkpoints %v", before, after)

	// 3. In place: keyed 4 → 6 needs 6 slots, a second TaskManager of 4.
	req, err := d.ResourceRequirements(job2)
	require.NoError(t, err)
	req[keyed] = sim.Bounds{LowerBound: 1, UpperBound: 6}
	t0 = time.Now()
	require.NoError(t, d.UpdateResourceRequirements(job2, req))
	vw = waitView(t, ctx, d, "job 2 to run with keyed=6", func(v sim.View) bool {
		return v.Job.ID == job2 && Steady(&v.Job) && parallelismOf(v, keyed) == 6
	})
	t.Logf("in-place scale-up 4 → 6 with a TaskManager to start: RUNNING at 6 after %s", time.Since(t0).Round(100*time.Millisecond))
	assert.Equal(t, map[string]int{src: 2, keyed: 6, sink: 1}, vertexParallelism(vw))
	assert.Len(t, tb.Flink.TaskManagerIDs(), 2)

	// 4. A TaskManager lost: the job fails over and runs again; the
	// replacement starts after TaskManagerRestart.
	// The adaptive scheduler makes a new execution graph for every
	// restart: its RUNNING timestamp is the restart's end.
	t0 = time.Now()
	d.Inject(sim.FaultTaskManagerLoss)
	vw = waitView(t, ctx, d, "job 2 to fail over and run again", func(v sim.View) bool {
		return v.Job.ID == job2 && Steady(&v.Job) && v.Job.Timestamps["RUNNING"] > t0.UnixMilli()
	})
	t.Logf("TaskManager loss: RUNNING again after %s at %v", time.Since(t0).Round(100*time.Millisecond), vertexParallelism(vw))
	waitFor(t, ctx, "the replacement TaskManager", func() bool { return len(tb.Flink.TaskManagerIDs()) == 2 })

	// 5. In place: keyed down to 2 fits one TaskManager; the other goes
	// if the scheduler leaves it idle (slot.idle.timeout 5 s, then
	// IdleTaskManagerTimeout 10 s). Flink decides where the 2 slots go:
	// 1.20's adaptive scheduler was seen to spread them over both.
	req, err = d.ResourceRequirements(job2)
	require.NoError(t, err)
	req[keyed] = sim.Bounds{LowerBound: 1, UpperBound: 2}
	t0 = time.Now()
	require.NoError(t, d.UpdateResourceRequirements(job2, req))
	waitView(t, ctx, d, "job 2 to run with keyed=2", func(v sim.View) bool {
		return v.Job.ID == job2 && Steady(&v.Job) && parallelismOf(v, keyed) == 2
	})
	t.Logf("in-place scale-down 6 → 2: RUNNING at 2 after %s", time.Since(t0).Round(100*time.Millisecond))
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end) && len(tb.Flink.TaskManagerIDs()) > 1; {
		time.Sleep(200 * time.Millisecond)
	}
	vw = waitView(t, ctx, d, "job 2 to run on", func(v sim.View) bool { return v.Job.ID == job2 && Steady(&v.Job) })
	if n := len(tb.Flink.TaskManagerIDs()); n == 1 {
		t.Logf("the idle TaskManager was released %s after the request", time.Since(t0).Round(100*time.Millisecond))
	} else {
		t.Logf("%d TaskManagers kept: Flink placed the 2 slots on %v (slots/used)", n, slotShapes(vw))
		for _, tm := range vw.TaskManagers {
			assert.Less(t, tm.FreeSlots, tm.SlotsNumber, "%s is idle but was not released", tm.ID)
		}
	}

	// 6. A savepoint that fails for real: the job runs on.
	d.Inject(sim.FaultSavepoint)
	trig, err = d.TriggerSavepoint(sim.SavepointRequest{JobID: job2, Stop: true, FormatType: "CANONICAL"})
	require.NoError(t, err)
	sp = awaitSavepoint(t, ctx, d, job2, trig)
	assert.NotEmpty(t, sp.FailureCause)
	assert.NotEmpty(t, sp.FailureClass)
	assert.Empty(t, sp.Location)
	t.Logf("failed savepoint: %s: %s", sp.FailureClass, sp.FailureCause)
	recordSavepointFailure(t, ctx, d, v, job2, trig)
	time.Sleep(2 * time.Second)
	vw = waitView(t, ctx, d, "job 2 to run on", func(v sim.View) bool { return Steady(&v.Job) })
	assert.Equal(t, job2, vw.Job.ID)

	// 7. Cancel, then a submission from a savepoint that does not exist.
	require.NoError(t, d.Cancel(job2))
	d.Inject(sim.FaultRestart)
	job3 := randomHex()
	require.NoError(t, d.Submit(sim.Submission{JobID: job3, SlotsPerTaskManager: 4, TaskManagers: 1, SavepointPath: sp.Location}))
	vw = waitView(t, ctx, d, "job 3 to fail", func(v sim.View) bool { return v.Job.ID == job3 && v.Job.State == "FAILED" })
	t.Logf("job 3 FAILED as it should (submission error: %v)", d.SubmitError())
}

func parallelismOf(v sim.View, id string) int {
	for _, x := range v.Job.Vertices {
		if x.ID == id {
			return x.Parallelism
		}
	}
	return 0
}

func vertexParallelism(v sim.View) map[string]int {
	out := map[string]int{}
	for _, x := range v.Job.Vertices {
		out[x.ID] = x.Parallelism
	}
	return out
}

// slotShapes are the TaskManagers' "slots/free" as View lists them.
func slotShapes(v sim.View) []string {
	var out []string
	for _, tm := range v.TaskManagers {
		out = append(out, fmt.Sprintf("%d/%d", tm.SlotsNumber, tm.SlotsNumber-tm.FreeSlots))
	}
	return out
}

// waitView polls View every 200 ms until cond holds; it fails the test
// after 3 minutes.
func waitView(t *testing.T, ctx context.Context, d *Deployer, what string, cond func(sim.View) bool) sim.View {
	t.Helper()
	var last sim.View
	waitFor(t, ctx, what, func() bool {
		last = d.View()
		return cond(last)
	}, func() string {
		return fmt.Sprintf("job %s %s %v, TaskManagers %v", last.Job.ID, last.Job.State, vertexParallelism(last), slotShapes(last))
	})
	return last
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool, describe ...func() string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			msg := ""
			for _, f := range describe {
				msg = "; last: " + f()
			}
			t.Fatalf("waiting for %s: gave up%s", what, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func awaitSavepoint(t *testing.T, ctx context.Context, d *Deployer, jobID, trigger string) sim.SavepointStatus {
	t.Helper()
	var st sim.SavepointStatus
	waitFor(t, ctx, "savepoint "+trigger, func() bool {
		var err error
		st, err = d.SavepointStatus(jobID, trigger)
		require.NoError(t, err)
		return st.Status == "COMPLETED"
	})
	return st
}

// recordSavepointFailure writes the failed savepoint's REST answer to
// testdata/deployer/ with FLINKSCALE_UPDATE_GOLDEN=1, less the failure's
// serialized-throwable (100 KB of base64 the Deployer does not read).
func recordSavepointFailure(t *testing.T, ctx context.Context, d *Deployer, v Flink, jobID, trigger string) {
	if os.Getenv(EnvUpdateGolden) != "1" {
		return
	}
	var raw map[string]any
	require.NoError(t, d.rest.get(ctx, "/jobs/"+jobID+"/savepoints/"+trigger, &raw))
	if op, ok := raw["operation"].(map[string]any); ok {
		if fc, ok := op["failure-cause"].(map[string]any); ok {
			delete(fc, "serialized-throwable")
		}
	}
	b, err := json.Marshal(raw)
	require.NoError(t, err)
	path := filepath.Join("testdata", "deployer", "savepoint-failure-flink-"+string(v)+".json")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("recorded %s", path)
}
