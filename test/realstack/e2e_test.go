package realstack_test

import (
	"context"
	_ "embed"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/realstack"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// The testbed's switches (test/testbed's real tests read the same).
const (
	// envFlink runs every real test on one Flink line ("1.20" or "2").
	envFlink = "FLINKSCALE_TESTBED_FLINK"
	// envRealLong enables the long real runs (make test-real).
	envRealLong = "FLINKSCALE_REAL_LONG"
)

//go:embed scenarios/step.yaml
var stepScenario []byte

// e2e is one end-to-end run: the stack with one job, and the test's view
// of it.
type e2e struct {
	t   *testing.T
	ctx context.Context
	st  *realstack.Stack
	job *realstack.Job
	sc  *scenario.Scenario // the scaled scenario the testbed plays
}

type e2eOptions struct {
	flink        testbed.Flink
	adaptive     bool
	slots        int
	sink         *testbed.SinkOptions
	policy       func(*v1alpha1.FlinkScalingPolicy)
	savepointDir string
	deployer     testbed.DeployerOptions
	// steady plays the base load throughout (no step).
	steady bool
	// standalone runs the job without the operator (realstack.Job.Standalone).
	standalone bool
}

// startE2E starts the stack with the step scenario: a policy polling every
// 10 s (the JobManager's metric fetcher interval) over a 60 s window, a
// 30 s warm-up, and the default utilization band [0.4, 0.85] with target
// 0.7.
func startE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	testbed.RequireReal(t)
	text := string(stepScenario)
	if o.steady {
		const step = "      - {kind: constant, rate: 500, for: 100s}\n      - {kind: constant, rate: 1000}\n"
		require.Contains(t, text, step)
		text = strings.Replace(text, step, "      - {kind: constant, rate: 500}\n", 1)
	}
	s, err := scenario.Parse([]byte(text))
	require.NoError(t, err)
	env, _ := fixtures.StartEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(cancel)
	job := &realstack.Job{
		Name: "step", Scenario: s, Scale: testbed.Scale{Rate: 1}, Flink: o.flink, Adaptive: o.adaptive,
		Slots: o.slots, Sink: o.sink, SavepointDir: o.savepointDir, Deployer: o.deployer, Standalone: o.standalone,
		Policy: func(p *v1alpha1.FlinkScalingPolicy) {
			p.Spec.MetricsWindow = &metav1.Duration{Duration: time.Minute}
			p.Spec.WarmUp = &metav1.Duration{Duration: 30 * time.Second}
			p.Spec.CooldownPeriod = &metav1.Duration{Duration: 3 * time.Minute}
			if o.policy != nil {
				o.policy(p)
			}
		},
	}
	st, err := realstack.Start(ctx, realstack.Options{
		Env: env, Namespace: env.CreateNamespace(t, "real"), Jobs: []*realstack.Job{job},
		Progress: testWriter{t}, Testbed: testbed.Options{SkipJavaTests: true},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("events:\n%s", st.Events)
			if p, err := st.Policy(context.Background(), job); err == nil {
				t.Logf("policy status: %+v", p.Status)
			}
		}
		assert.NoError(t, st.Stop())
	})
	return &e2e{t: t, ctx: ctx, st: st, job: job, sc: job.Testbed.Realised.Scaled}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// until polls done every second until it holds or max passes.
func (e *e2e) until(what string, max time.Duration, done func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(max)
	for !done() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s (load at %s)", what, max, e.job.Testbed.Now().Round(time.Second))
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("%s: %v", what, e.ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (e *e2e) policy() *v1alpha1.FlinkScalingPolicy {
	e.t.Helper()
	p, err := e.st.Policy(e.ctx, e.job)
	require.NoError(e.t, err)
	return p
}

func (e *e2e) rescales() []v1alpha1.RescaleRecordStatus {
	if h := e.policy().Status.History; h != nil {
		return h.Rescales
	}
	return nil
}

// finished is the number of rescales that ended (any outcome).
func (e *e2e) finished() int {
	n := 0
	for _, r := range e.rescales() {
		if r.Outcome != scaling.OutcomeInProgress {
			n++
		}
	}
	return n
}

func (e *e2e) metric(name string, labels ...string) float64 {
	e.t.Helper()
	v, err := fixtures.Metric(e.st.Registry, name, append([]string{"namespace", e.job.Key.Namespace, "policy", e.job.Name}, labels...)...)
	require.NoError(e.t, err)
	return v
}

// running is the real job's parallelism by vertex name, when it and every
// vertex run.
func (e *e2e) running() (map[string]int, bool) {
	v := e.job.Cluster.View()
	if v.Job.State != "RUNNING" {
		return nil, false
	}
	out := map[string]int{}
	for _, x := range v.Job.Vertices {
		if x.Status != "RUNNING" {
			return nil, false
		}
		out[x.Name] = x.Parallelism
	}
	return out, len(out) > 0
}

// byName turns applied parallelism (vertex id → p) into names.
func (e *e2e) byName(applied map[string]int32) map[string]int {
	out := map[string]int{}
	for _, v := range e.sc.Job.Vertices {
		id, ok := e.job.Cluster.VertexID(v.Name)
		require.True(e.t, ok, v.Name)
		if p, ok := applied[id]; ok {
			out[v.Name] = int(p)
		}
	}
	return out
}

// rate is the scenario's arrival rate at load offset t, records/s.
func (e *e2e) rate(t time.Duration) float64 {
	r := 0.0
	for _, tp := range e.sc.Job.Topics {
		r += e.sc.Rate(tp.Name, t)
	}
	return r
}

// underSLO reports whether the real consumer-group lag is within the SLO:
// lag / arrival rate ≤ slo.lag.
func (e *e2e) underSLO() (bool, int64) {
	lag, err := e.job.Lag(e.ctx)
	if err != nil {
		e.t.Logf("lag: %v", err)
		return false, -1
	}
	return float64(lag) <= e.rate(e.job.Testbed.Now())*e.sc.SLO.Lag.Seconds(), lag
}

// stepRescale is the end-to-end path on real Flink: a step of the
// load saturates the keyed vertex → exactly one rescale → the lag drains
// below the SLO → the history records the real downtime → the model's next
// prediction of downtime is that downtime. It returns what it measured.
func (e *e2e) stepRescale(inPlace bool) measured {
	t := e.t
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	firstJob := e.job.Cluster.View().Job.ID
	initial, _ := e.running()
	assert.Equal(t, map[string]int{"Source: events -> Map": 2, "KeyedProcess: count": 2, "Sink: counts": 1}, plainNames(initial))

	// Before the step (at 100 s of load) the controller holds: 62.5 %
	// busy is inside the band.
	e.until("a decision", 3*time.Minute, func() bool { return e.policy().Status.LastDecision != nil })
	require.Empty(t, e.rescales(), "no rescale before the step")

	e.until("a rescale starts", 5*time.Minute, func() bool { return e.policy().Status.Rescale != nil })
	p := e.policy()
	rs := p.Status.Rescale
	require.NotNil(t, rs)
	assert.GreaterOrEqual(t, e.job.Testbed.Now(), 100*time.Second, "not before the step")
	applied := e.byName(rs.AppliedParallelism)
	t.Logf("rescale at %s of load: %v (%s)", e.job.Testbed.Now().Round(time.Second), applied, p.Status.LastDecision.Summary)
	// 1,000 records/s at 70 % of 400 a subtask: ⌈3.57⌉ = 4 keyed
	// subtasks at least (more to drain the backlog).
	assert.GreaterOrEqual(t, applied["KeyedProcess: count"], 4)
	predicted := e.metric("flinkscale_predicted_downtime_seconds")

	e.until("the rescale ends", 5*time.Minute, func() bool { return e.finished() == 1 })
	r := e.rescales()[0]
	require.Equal(t, scaling.OutcomeSucceeded, r.Outcome, "%+v\n%s", r, e.st.Events)
	require.NotNil(t, r.CompletedAt)
	m := measured{downtime: r.Downtime.Duration, predictedBefore: time.Duration(predicted * float64(time.Second)),
		applied: applied, at: rs.StartTime.Time}
	m.rescaleAt = e.job.Testbed.Now() - time.Since(rs.StartTime.Time)
	// A real downtime: more than nothing, less than the whole rescale.
	assert.Positive(t, m.downtime)
	assert.LessOrEqual(t, m.downtime, r.CompletedAt.Sub(rs.StartTime.Time)+time.Second)

	// The controller saw every vertex RUNNING; the deployer's view of the
	// REST API follows within its refresh.
	var now map[string]int
	e.until("the job runs after the rescale", 30*time.Second, func() bool {
		var ok bool
		now, ok = e.running()
		return ok
	})
	for name, p := range applied {
		assert.Equal(t, p, now[plainName(now, name)], "vertex %s runs at the applied parallelism", name)
	}
	if inPlace {
		assert.Equal(t, firstJob, e.job.Cluster.View().Job.ID, "in place: the same job")
		assert.Contains(t, e.st.Events.String(), "(in place)")
	} else {
		assert.NotEqual(t, firstJob, e.job.Cluster.View().Job.ID, "a savepoint upgrade runs a new job")
	}

	// The lag drains below the SLO.
	drainStart := time.Now()
	e.until("the lag is under the SLO", 5*time.Minute, func() bool { ok, _ := e.underSLO(); return ok })
	m.recovered = time.Since(m.at)
	_, m.lagAfter = e.underSLO()
	t.Logf("lag back under the SLO %s after the rescale completed (%s after the apply)", time.Since(drainStart).Round(time.Second), m.recovered.Round(time.Second))

	// The next sized decision (past the warm-up, on a full window of the
	// new job's samples: the gauge follows sized decisions only) predicts
	// the measured downtime, the median of one.
	done := r.CompletedAt.Time
	e.until("the model predicts the downtime it measured", 4*time.Minute, func() bool {
		d := e.policy().Status.LastDecision
		m.predictedAfter = time.Duration(e.metric("flinkscale_predicted_downtime_seconds") * float64(time.Second))
		return d != nil && d.Time.After(done) && math.Abs(m.predictedAfter.Seconds()-m.downtime.Seconds()) < 0.001
	})
	assert.Equal(t, m.downtime.Seconds(), e.metric("flinkscale_last_rescale_downtime_seconds"))

	// That decision, on the new parallelism at the full load, holds: no
	// second rescale.
	assert.Equal(t, "Hold", e.policy().Status.LastDecision.Action, e.policy().Status.LastDecision.Summary)
	assert.Len(t, e.rescales(), 1, "exactly one rescale\n%s", e.st.Events)
	assert.Equal(t, 1, e.st.Events.Count("FlinkScalingPolicy", controllers.EventRescaleStarted))
	assert.Equal(t, 1, e.st.Events.Count("FlinkScalingPolicy", controllers.EventRescaleCompleted))
	assert.Zero(t, e.st.Events.Count("", controllers.EventRescaleFailed))
	return m
}

// measured is what one real rescale took, for the log and docs.
type measured struct {
	at                              time.Time
	rescaleAt                       time.Duration // load offset of the apply
	applied                         map[string]int
	downtime, recovered             time.Duration
	predictedBefore, predictedAfter time.Duration
	lagAfter                        int64
}

// compare plays the same rescale in the simulator and logs both.
func (e *e2e) compare(m measured, inPlace bool, slots0, tms0, slots, tms int) {
	e.t.Helper()
	sim, err := realstack.SimulateRescale(e.sc, testbed.SimFlinkVersion(e.job.Testbed.Flink.Version()), realstack.Rescale{
		At: m.rescaleAt, InPlace: inPlace, Parallelism: m.applied,
		Slots0: slots0, TaskManagers0: tms0, Slots: slots, TaskManagers: tms,
	})
	require.NoError(e.t, err)
	path := "savepoint restart"
	if inPlace {
		path = "in place"
	}
	e.t.Logf("MEASURED Flink %s %s: downtime real %s, simulator %s; lag under SLO after real %s, simulator %s; "+
		"model predicted %s before (restartTime guess), %s after",
		e.job.Testbed.Flink.Version(), path, m.downtime.Round(100*time.Millisecond), sim.Downtime,
		m.recovered.Round(time.Second), sim.Recovered, m.predictedBefore, m.predictedAfter.Round(100*time.Millisecond))
}

// plainNames maps the REST's vertex names (a chained sink adds its
// operators to the terminal vertex's name) to the scenario's.
func plainNames(in map[string]int) map[string]int {
	out := map[string]int{}
	for name, p := range in {
		for _, want := range []string{"Source: events -> Map", "KeyedProcess: count", "Sink: counts"} {
			if name == want || strings.HasPrefix(name, want+" -> ") {
				name = want
			}
		}
		out[name] = p
	}
	return out
}

// plainName is the REST name in running of scenario vertex name.
func plainName(running map[string]int, name string) string {
	for n := range running {
		if n == name || strings.HasPrefix(n, name+" -> ") {
			return n
		}
	}
	return name
}

// taskManagers is the number of TaskManagers registered and the slots of
// each (the first's).
func (e *e2e) taskManagers() (n, slots int) {
	v := e.job.Cluster.View()
	for _, tm := range v.TaskManagers {
		n++
		slots = tm.SlotsNumber
	}
	return n, slots
}

// The savepoint path on Flink 1.20 (default scheduler): the deployment
// starts with one slot per 2-core TaskManager, so flinkscale's plan also
// aligns the slots to the cores: a slot change and a new job from the
// savepoint, through the fake operator exactly as the Flink operator
// upgrades. Every record is accounted for by the exactly-once sink.
func TestRealRescaleBySavepoint(t *testing.T) {
	e := startE2E(t, e2eOptions{flink: flinkFor(t, testbed.Flink120), slots: 1,
		sink: &testbed.SinkOptions{Topic: "step-out", Guarantee: "exactly-once"}})
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	tms0, slots0 := e.taskManagers()
	// 2 slots needed (max parallelism 2) at one slot each.
	assert.Equal(t, 2, tms0)
	assert.Equal(t, 1, slots0)
	m := e.stepRescale(false)

	fd, err := e.st.Deployment(e.ctx, e.job)
	require.NoError(t, err)
	slots, _, _ := unstructured.NestedString(fd.Object, "spec", "flinkConfiguration", "taskmanager.numberOfTaskSlots")
	assert.Equal(t, "2", slots, "slots aligned to the 2 cores")
	tms, slotsNow := e.taskManagers()
	assert.Equal(t, 2, slotsNow, "the TaskManagers run 2 slots each")
	maxP := 0
	for _, p := range m.applied {
		maxP = max(maxP, p)
	}
	assert.Equal(t, (maxP+1)/2, tms, "⌈%d/2⌉ TaskManagers", maxP)
	e.compare(m, false, slots0, tms0, 2, tms)
	e.audit()
}

// The in-place path on Flink 2.2 (adaptive scheduler): the same job id,
// the new resource requirements reach the real JobManager, which waits for
// a checkpoint before it rescales (FLIP-461); the testbed starts the
// TaskManager the new slots need as Flink's native resource manager
// would.
func TestRealRescaleInPlace(t *testing.T) {
	e := startE2E(t, e2eOptions{flink: flinkFor(t, testbed.Flink2), adaptive: true,
		sink: &testbed.SinkOptions{Topic: "step-out", Guarantee: "exactly-once"}})
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	tms0, slots0 := e.taskManagers()
	assert.Equal(t, 1, tms0, "2 slots on one 2-core TaskManager")
	m := e.stepRescale(true)
	tms, _ := e.taskManagers()
	assert.Greater(t, tms, tms0, "TaskManagers added for the new slots")
	e.compare(m, true, slots0, tms0, slots0, tms)
	e.audit()
}

// The REST path on a standalone cluster without the operator (Flink 1.20,
// adaptive scheduler): the policy targets the JobManager Deployment and
// names the TaskManager Deployment; flinkscale sets the job's resource
// requirements on the real JobManager and scales the TaskManager
// Deployment, whose new replica the stack's kubelet starts as a real
// TaskManager process; the adaptive scheduler takes its slots in place.
// Every record is accounted for by the exactly-once sink.
func TestRealRescaleWithoutOperator(t *testing.T) {
	e := startE2E(t, e2eOptions{flink: flinkFor(t, testbed.Flink120), adaptive: true, standalone: true,
		sink: &testbed.SinkOptions{Topic: "step-out", Guarantee: "exactly-once"}})
	e.until("the job runs", 3*time.Minute, func() bool { _, ok := e.running(); return ok })
	tms0, slots0 := e.taskManagers()
	assert.Equal(t, 1, tms0, "2 slots on one 2-core TaskManager")
	e.until("the path is known", 2*time.Minute, func() bool { return e.policy().Status.RescalePath != "" })
	assert.Equal(t, v1alpha1.PathInPlaceAndTaskManagers, e.policy().Status.RescalePath, e.policy().Status.RescalePathReason)
	replicas0, err := e.st.TaskManagerReplicas(e.ctx, e.job)
	require.NoError(t, err)
	assert.Equal(t, tms0, replicas0)

	m := e.stepRescale(true)
	replicas, err := e.st.TaskManagerReplicas(e.ctx, e.job)
	require.NoError(t, err)
	tms, _ := e.taskManagers()
	assert.Greater(t, replicas, replicas0, "flinkscale scaled the TaskManager Deployment up")
	assert.Equal(t, replicas, tms, "each replica is a real TaskManager registered with the JobManager")
	maxP := 0
	for _, p := range m.applied {
		maxP = max(maxP, p)
	}
	assert.Equal(t, (maxP+slots0-1)/slots0, replicas, "⌈%d/%d⌉ TaskManagers for the plan", maxP, slots0)
	assert.Zero(t, e.metric("flinkscale_policy_target_info", "kind", "Deployment", "path", v1alpha1.PathInPlaceAndTaskManagers)-1)
	e.compare(m, true, slots0, tms0, slots0, tms)
	e.audit()
}

// flinkFor is the Flink line a test runs on: its own, unless
// FLINKSCALE_TESTBED_FLINK names one.
func flinkFor(t *testing.T, def testbed.Flink) testbed.Flink {
	if v := os.Getenv(envFlink); v != "" {
		require.NoError(t, testbed.Flink(v).Validate())
		return testbed.Flink(v)
	}
	return def
}

// audit stops the load and proves on the broker that the exactly-once sink
// wrote every record produced exactly once (read_committed).
func (e *e2e) audit() {
	e.t.Helper()
	require.NoError(e.t, e.job.Testbed.StopLoad())
	r, err := e.job.Testbed.AwaitAudit(e.ctx, testbed.ReadCommitted, 2*time.Minute)
	require.NoError(e.t, err, "%s", r)
	e.t.Logf("MEASURED audit after the rescale: %s", r)
	assert.True(e.t, r.Exact(), "%s", r)
	assert.Positive(e.t, r.Produced)
}
