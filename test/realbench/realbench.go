// Package realbench races autoscalers on real Flink and Kafka: each
// compressed scenario (test/scenarios/real) is played from the same seed,
// at the same time, on three testbeds (test/testbed) of one real stack
// (test/realstack) — one rescaled by flinkscale's controller, one by the
// Flink project's own standalone autoscaler (flink-autoscaler-standalone,
// the real jar), one left alone — and each is measured the same way from
// outside: the load played, the consumer lag on the broker, the
// TaskManagers running, the parallelism Flink's REST API reports, the
// restarts it went through, and an audit of the exactly-once sink's
// output. The results are test/bench Results, so `flinkscale bench
// --real` prints the table and draws the charts `flinkscale bench` does.
package realbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/realstack"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// The policies a race runs, as the table names them.
const (
	Flinkscale = "flinkscale"
	// Rival is the Flink Kubernetes Operator's standalone autoscaler.
	Rival  = "flink-autoscaler-" + testbed.RivalRelease
	Static = "static"
)

// Policies are the names Run accepts, in table order.
var Policies = []string{Flinkscale, Rival, Static}

// Options configure Run.
type Options struct {
	// Env is the control plane (envtest.StartControlPlane) with the
	// FlinkScalingPolicy CRD installed.
	Env *envtest.Env
	// Policies to race (default Policies).
	Policies []string
	// Flink is the Flink line (default 1.20, the line the rival's
	// release is built against).
	Flink testbed.Flink
	// Dir keeps the rival's log and the cross-check (required).
	Dir string
	// Sample is the measuring interval (default 2s).
	Sample time.Duration
	// Drain bounds the wait, after the load stops, for each job to read
	// what is left before its output is audited (default 90s).
	Drain time.Duration
	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// Logger receives the controller's and the fake operator's logs
	// (default discard).
	Logger logr.Logger
}

// Race is one scenario's outcome.
type Race struct {
	Results []*bench.Result
	// CrossCheck compares the rival's evaluations with test/bench's
	// re-implementation fed the same job's metrics (nil without the
	// rival).
	CrossCheck *CrossCheck
	// Audits are each policy's output audit (read_committed).
	Audits map[string]testbed.AuditResult
	// Load is the machine's load average at the end of the run.
	Load string
}

// Run plays scenario s (testbed units, compressed by s.Compression) under
// every policy at once and measures each.
func Run(ctx context.Context, s *scenario.Scenario, o Options) (_ *Race, err error) {
	if o.Env == nil || o.Dir == "" {
		return nil, errors.New("realbench: Env and Dir are required")
	}
	if len(o.Policies) == 0 {
		o.Policies = Policies
	}
	if o.Flink == "" {
		o.Flink = testbed.Flink120
	}
	if o.Sample <= 0 {
		o.Sample = 2 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 90 * time.Second
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	factor := max(s.Compression, 1)
	var jobs []*realstack.Job
	names := map[*realstack.Job]string{}
	var rivalJob *realstack.Job
	for _, p := range o.Policies {
		j := &realstack.Job{
			Scenario: s, Scale: testbed.Scale{Rate: 1, Time: 1}, Flink: o.Flink, Adaptive: true,
			Sink:     &testbed.SinkOptions{Topic: "results", Guarantee: testbed.GuaranteeExactlyOnce},
			Deployer: testbed.DeployerOptions{Progress: o.Progress},
		}
		switch p {
		case Flinkscale:
			j.Name, j.OptIn = "flinkscale", realstack.OptInPolicy
			j.Policy = compressedPolicy(factor)
		case Rival:
			j.Name, j.OptIn = "rival", realstack.OptInNone
			j.Deployer.FollowRequirements = true
			rivalJob = j
		case Static:
			j.Name, j.OptIn = "static", realstack.OptInNone
		default:
			return nil, fmt.Errorf("realbench: unknown policy %q (known: %v)", p, Policies)
		}
		names[j] = p
		jobs = append(jobs, j)
	}
	st, err := realstack.Start(ctx, realstack.Options{
		Env: o.Env, Namespace: "bench-" + s.Name, Jobs: jobs, PollInterval: bench.CompressedInterval,
		Progress: o.Progress, Testbed: testbed.Options{SkipJavaTests: true}, Concurrent: true, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := st.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("realbench: stopping: %w", serr)
		}
	}()
	meters := make([]*meter, len(jobs))
	for i, j := range jobs {
		if meters[i], err = newMeter(s, names[j], j); err != nil {
			return nil, err
		}
	}
	var rival *testbed.Rival
	var advisor *advisor
	if rivalJob != nil {
		if err := awaitRunning(ctx, rivalJob, 3*time.Minute); err != nil {
			return nil, fmt.Errorf("realbench: the rival's job: %w", err)
		}
		cfg := bench.CompressFlinkOperator(bench.DefaultFlinkOperatorConfig(), factor)
		rival, err = testbed.StartRival(ctx, testbed.RivalOptions{
			RESTURL: rivalJob.Testbed.Flink.RESTURL(), Config: bench.RivalConfig(cfg), Dir: filepath.Join(o.Dir, s.Name),
		})
		if err != nil {
			return nil, err
		}
		defer func() { _ = rival.Stop() }()
		say("rival %s rescales job %s at %s (log %s)", Rival, rivalJob.Name, rivalJob.Testbed.Flink.RESTURL(), rival.Log())
		if advisor, err = newAdvisor(rivalJob, cfg, rival.Log()); err != nil {
			return nil, err
		}
	}

	// Measure every job until its scenario has played out.
	say("racing %v on %s for %s", o.Policies, s.Name, s.Duration)
	var wg sync.WaitGroup
	errs := make([]error, len(meters))
	for i, m := range meters {
		wg.Go(func() { errs[i] = m.run(ctx, o.Sample) })
	}
	if advisor != nil {
		wg.Go(func() { advisor.run(ctx, s.Duration) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	race := &Race{Audits: map[string]testbed.AuditResult{}, Load: testbed.LoadAverage()}
	if rival != nil {
		if err := rival.Err(); err != nil {
			return nil, fmt.Errorf("realbench: the rival ended during the run: %w", err)
		}
		entries, err := testbed.ReadRivalLog(rival.Log())
		if err != nil {
			return nil, fmt.Errorf("realbench: reading the rival's log: %w", err)
		}
		race.CrossCheck = compare(entries, advisor.evals, advisor.window())
		if err := advisor.writeLog(filepath.Join(o.Dir, s.Name, "advisor.log")); err != nil {
			return nil, fmt.Errorf("realbench: %w", err)
		}
	}

	// Stop the load, let each job read what is left, audit its output.
	for _, j := range jobs {
		if err := j.Testbed.StopLoad(); err != nil {
			return nil, fmt.Errorf("realbench: job %s: %w", j.Name, err)
		}
	}
	say("load stopped; auditing the sinks (up to %s each to drain)", o.Drain)
	for i, m := range meters {
		wg.Go(func() { errs[i] = m.audit(ctx, o.Drain) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, m := range meters {
		bench.Finish(s, m.res)
		race.Results = append(race.Results, m.res)
		race.Audits[m.res.Policy] = m.audited
	}
	return race, nil
}

// compressedPolicy writes flinkscale's default policy, compressed by
// factor (bench.CompressPolicy), into the job's FlinkScalingPolicy.
func compressedPolicy(factor float64) func(*v1alpha1.FlinkScalingPolicy) {
	p := bench.CompressPolicy(scaling.DefaultPolicy(), factor)
	d := func(x scaling.Duration) *metav1.Duration { return &metav1.Duration{Duration: x.Duration} }
	return func(pol *v1alpha1.FlinkScalingPolicy) {
		pol.Spec.MetricsWindow = d(p.MetricsWindow)
		pol.Spec.WarmUp = d(p.WarmUp)
		pol.Spec.MaxSnapshotAge = d(p.MaxSnapshotAge)
		pol.Spec.CooldownPeriod = d(p.CooldownPeriod)
		pol.Spec.CatchUpDuration = d(p.CatchUpDuration)
		pol.Spec.RestartTime = d(p.RestartTime)
		pol.Spec.TaskManagerStartup = d(p.TaskManagerStartup)
		pol.Spec.RestartCost = d(p.RestartCost)
		pol.Spec.PlanningHorizon = d(p.PlanningHorizon)
		pol.Spec.Behavior = &v1alpha1.Behavior{
			ScaleUp:   &v1alpha1.ScaleUpRules{StabilizationWindow: d(p.Behavior.ScaleUp.StabilizationWindow)},
			ScaleDown: &v1alpha1.ScaleDownRules{StabilizationWindow: d(p.Behavior.ScaleDown.StabilizationWindow)},
		}
	}
}

// awaitRunning waits for the fake operator to have deployed the job and
// for every vertex to run.
func awaitRunning(ctx context.Context, j *realstack.Job, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		v := j.Cluster.View()
		if testbed.Steady(&v.Job) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s not running after %s (state %s)", j.Name, within, v.Job.State)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// meter measures one job from outside, the same way for every policy.
type meter struct {
	s       *scenario.Scenario
	j       *realstack.Job
	model   *sim.Job // the scenario's ground truth, for the capacity line
	ids     map[string]string
	res     *bench.Result
	audited testbed.AuditResult

	// The rescale under way: the parallelism before it, since when the
	// job was not running.
	steadyPar map[string]int
	steadyJob string
	downSince time.Time
	last      time.Time
}

func newMeter(s *scenario.Scenario, policy string, j *realstack.Job) (*meter, error) {
	model, err := sim.NewJob(s.Job, sim.Options{Start: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("realbench: the model of %s: %w", s.Name, err)
	}
	ids := map[string]string{}
	for _, v := range s.Job.Vertices {
		id, _ := model.VertexID(v.Name)
		ids[v.Name] = id
	}
	return &meter{s: s, j: j, model: model, ids: ids,
		res: &bench.Result{Scenario: s.Name, Policy: policy, Duration: s.Duration}}, nil
}

// run samples the job every interval until the scenario has played.
func (m *meter) run(ctx context.Context, every time.Duration) error {
	start := m.j.Testbed.Started
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		now := time.Now()
		el := now.Sub(start)
		if el >= m.s.Duration {
			return nil
		}
		if err := m.sample(ctx, now, el); err != nil {
			return fmt.Errorf("realbench: job %s at %s: %w", m.j.Name, el.Round(time.Second), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// sample takes one measurement: it integrates what the job held and its
// lag since the last one, records a timeline point and notes rescales.
func (m *meter) sample(ctx context.Context, now time.Time, el time.Duration) error {
	v := m.j.Cluster.View()
	lagN, err := m.j.Lag(ctx)
	if err != nil {
		return err
	}
	rates := map[string]float64{}
	load := 0.0
	for _, t := range m.s.Job.Topics {
		rates[t.Name] = m.s.Rate(t.Name, el)
		load += rates[t.Name]
	}
	slotsPerTM := m.s.Job.TaskManager.Slots
	if n, err := strconv.Atoi(v.JobManagerConfig["taskmanager.numberOfTaskSlots"]); err == nil && n > 0 {
		slotsPerTM = n
	}
	tms := m.j.Testbed.Flink.TaskManagers()
	up := testbed.Steady(&v.Job)
	par := map[string]int{} // by REST vertex id
	byName := map[string]int{}
	simPar := map[string]int{}
	for _, vx := range v.Job.Vertices {
		par[vx.ID] = vx.Parallelism
		name := testbed.ScenarioVertex(vx.Name, m.s.Job)
		byName[name] = vx.Parallelism
		simPar[m.ids[name]] = vx.Parallelism
	}
	lag := float64(lagN)
	lagS := 0.0
	if load > 0 {
		lagS = lag / load
	}
	used := testbed.SlotsNeeded(withParallelism(m.s.Job, byName))
	if !m.last.IsZero() {
		dt := now.Sub(m.last)
		bench.Account(m.res, m.s, dt, bench.Held{Slots: tms * slotsPerTM, UsedSlots: used,
			Cores: float64(tms) * m.s.Job.TaskManager.CPU, LagSeconds: lagS, Lag: lag})
	}
	m.last = now
	capacity := 0.0
	if up {
		capacity = bench.JobCapacity(m.model, simPar, slotsPerTM, rates)
	}
	m.res.Timeline = append(m.res.Timeline, bench.Point{T: el, Load: load, Capacity: capacity, Slots: tms * slotsPerTM, UsedSlots: used,
		Cores: float64(tms) * m.s.Job.TaskManager.CPU, Parallelism: byName, Lag: lag, LagSeconds: lagS})
	m.track(v.Job, up, par, now)
	return nil
}

// track notes a rescale: the job stops running (or its parallelism
// changes) and runs again at another parallelism; a restart that ends at
// the same parallelism counts as a failed rescale.
func (m *meter) track(j sim.JobView, up bool, par map[string]int, now time.Time) {
	start := m.j.Testbed.Started
	if !up {
		if m.downSince.IsZero() && m.steadyPar != nil {
			m.downSince = now
		}
		return
	}
	if m.steadyPar == nil { // the first time it runs
		m.steadyPar, m.steadyJob = par, j.ID
		return
	}
	changed := !maps.Equal(par, m.steadyPar)
	if !changed && m.downSince.IsZero() {
		return
	}
	from := m.downSince
	if from.IsZero() { // a rescale quicker than the sampling
		from = now
	}
	ev := bench.Event{T: from.Sub(start), Completed: now.Sub(start), Downtime: now.Sub(from),
		From: m.steadyPar, To: par, InPlace: j.ID == m.steadyJob, Failed: !changed}
	if !changed {
		ev.Reason = "restarted at the same parallelism"
		m.res.Failed++
	}
	m.res.Events = append(m.res.Events, ev)
	m.res.Rescales++
	m.steadyPar, m.steadyJob, m.downSince = par, j.ID, time.Time{}
}

// audit waits up to drain for the job to have read every record, then
// compares the sink's committed output with what was produced: records
// still unread are not lost, so the loss is the missing records beyond
// the lag left.
func (m *meter) audit(ctx context.Context, drain time.Duration) error {
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) {
		lag, err := m.j.Lag(ctx)
		if err == nil && lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	// The sink commits its last transaction on the next checkpoint. An
	// audit still missing records (a job that has not caught up) is a
	// result; one that could not read the topic is an error.
	a, aerr := m.j.Testbed.AwaitAudit(ctx, testbed.ReadCommitted, 20*time.Second)
	if aerr != nil && a.Produced == 0 {
		return fmt.Errorf("realbench: job %s: %w", m.j.Name, aerr)
	}
	lag, err := m.j.Lag(ctx)
	if err != nil {
		return fmt.Errorf("realbench: job %s: %w", m.j.Name, err)
	}
	m.audited = a
	m.res.RecordsLost = max(0, a.Missing-lag) + a.Unexpected
	m.res.Reprocessed = a.Duplicates
	return nil
}

// withParallelism is the job with each vertex at par (by name; absent:
// as deployed).
func withParallelism(j sim.JobSpec, par map[string]int) sim.JobSpec {
	j.Vertices = slices.Clone(j.Vertices)
	for i, v := range j.Vertices {
		if p, ok := par[v.Name]; ok && p > 0 {
			j.Vertices[i].Parallelism = p
		}
	}
	return j
}
