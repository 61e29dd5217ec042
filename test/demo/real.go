package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/test/realstack"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// RealSetup is a demo job as `make demo-real` plays it on real Flink.
type RealSetup struct {
	JobSetup
	// Flink is the Flink line of the job's session cluster.
	Flink testbed.Flink
	// SinkTopic is where the job's exactly-once sink writes every record,
	// for the audit.
	SinkTopic string
}

// RealJobs are the jobs of the real demo, each on its own Kafka broker and
// Flink cluster: orders on Flink 1.20 with the default scheduler (every
// rescale a savepoint and a restart) and clicks on Flink 2.2 with the
// adaptive scheduler (rescaled in place), the two paths the real
// end-to-end tests cover (test/realstack), so both Flink lines show. The
// DryRun job payments is left out: its eight-subtask cluster would be a
// third set of JVMs on the two cores, and it never rescales.
var RealJobs = []RealSetup{
	{JobSetup: JobSetup{Scenario: "orders", OptIn: OptInAnnotations, Mode: v1alpha1.ModeApply}, Flink: testbed.Flink120, SinkTopic: "enriched-orders"},
	{JobSetup: JobSetup{Scenario: "clicks", OptIn: OptInPolicy, Mode: v1alpha1.ModeApply}, Flink: testbed.Flink2, SinkTopic: "sessions"},
}

// realLeftOut says which demo job the real demo leaves out, and why.
const realLeftOut = "payments (DryRun) is left out: a third Flink cluster and broker do not fit two cores beside these two"

// The real demo's settings, in wall time: real Flink does not speed up.
const (
	// realRateBudget is each job's peak arrival rate (records/s): the two
	// jobs share the testbed's testbed.MaxSourceRate, which was measured
	// with one cluster alone on the two cores.
	realRateBudget = testbed.MaxSourceRate / 2
	// realStateBytes is each job's keyed state on the testbed. Its default,
	// 64 MiB, checkpointed every 5 s by both jobs, wrote 10 GB to the disk
	// in a run, kept the load average near 30 on the two cores, and slowed
	// checkpoints enough for flinkscale to see checkpoint pressure; 16 MiB
	// is still real state for the savepoints and the restores.
	realStateBytes = 16 << 20
	// realSlots are the slots (and cores) of a TaskManager, twice the
	// day's: each TaskManager JVM costs about a tenth of a core even when
	// its job idles, and with 2 slots the surge ran 14 JVMs on the two
	// cores. One core per slot, as in the day, keeps every subtask's
	// capacity.
	realSlots = 4
	// realPoll is the policies' polling interval: the JobManager's metric
	// fetcher refreshes every 10 s, so polling faster reads the same
	// values twice.
	realPoll = 10 * time.Second
	// realWindow is the metrics window: six polls.
	realWindow = time.Minute
	// realWarmUp keeps a restarted job's first samples (JIT, restore,
	// catch-up) out of decisions.
	realWarmUp = 30 * time.Second
	// realCooldown and realScaleDownWindow are short enough that the
	// compressed night (200 s at 24×) sees a scale-down.
	realCooldown        = 30 * time.Second
	realScaleDownWindow = time.Minute
	// realCatchUp is the time allowed to drain a backlog: about ten real
	// restarts, as the day's 15 minutes are about ten simulated ones.
	realCatchUp = 2 * time.Minute
	// realRestartTime is the downtime predicted before one is measured:
	// a restart of the testbed's Flink takes seconds, not the 90 s of a
	// Kubernetes pod's.
	realRestartTime = 20 * time.Second
	// realAuditWithin bounds the wait, after the day, for every record
	// produced to reach the output (the job catching up, the checkpoint
	// that commits the sink's last transaction).
	realAuditWithin = 3 * time.Minute
)

// realJob is a demo job on real Flink and Kafka (test/realstack): the
// cluster's REST snapshot, the broker's consumer-group lag, the producer's
// counts, the exactly-once sink's audit, and the simulator's model of the
// same scaled job for its capacity.
type realJob struct {
	*job
	setup RealSetup
	rs    *realstack.Job
	// played is what the testbed plays (rs.Testbed.Realised.Scaled): the
	// day compressed speed times, its rates scaled.
	played *scenario.Scenario
	speed  float64
	// model is a simulated job of the played scenario, never advanced:
	// the capacity the live view and the charts show is its.
	model *sim.Job
	audit atomic.Pointer[testbed.AuditResult]
}

var _ backend = (*realJob)(nil)

func (r *realJob) View() sim.View                      { return r.rs.Cluster.View() }
func (r *realJob) VertexID(name string) (string, bool) { return r.rs.Cluster.VertexID(name) }

// Capacity is the simulator's model of the played job: real Flink has no
// such number, and measuring it would mean saturating the job.
func (r *realJob) Capacity(par map[string]int, slotsPerTM int, rates map[string]float64) float64 {
	return modelCapacity(r.model, par, slotsPerTM, rates)
}

// Rates are the played scenario's, at the wall offset of at in the day.
func (r *realJob) Rates(at time.Duration) map[string]float64 {
	return scenarioRates(r.played, time.Duration(float64(at)/r.speed))
}

// Records: the producer's acknowledged records, the consumer group's lag
// on the broker (end offsets less the offsets Flink commits on
// checkpoints), and, once the audit has run, the records produced that the
// exactly-once sink never wrote as lost.
func (r *realJob) Records(ctx context.Context) (Records, error) {
	produced := r.rs.Testbed.Producer.Total()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lag, err := r.rs.Lag(ctx)
	if err != nil {
		return Records{}, err
	}
	rec := Records{Produced: produced, Lag: lag, Consumed: produced - lag}
	if a := r.audit.Load(); a != nil {
		rec.Lost = a.Missing
	}
	return rec, nil
}

// Elapsed maps the wall time since the job's load began (its producer's
// start) onto the day.
func (r *realJob) Elapsed() time.Duration { return r.Offset(time.Now()) }

func (r *realJob) Offset(t time.Time) time.Duration {
	return time.Duration(float64(t.Sub(r.rs.Testbed.Started)) * r.speed)
}

// newRealJobs prepares the real demo's jobs for realstack.Start: each
// scenario cut to its first part (0: the whole day) and made auditable, its
// rates scaled to realRateBudget, its state to realStateBytes and its time
// compressed speed times, with the policy settings above. It returns the
// day they play. logs receives the deployers' lines.
func newRealJobs(part time.Duration, speed float64, logs *lineWriter) (_ []*realJob, day time.Duration, err error) {
	var out []*realJob
	for _, setup := range RealJobs {
		s, err := loadScenario(setup.Scenario)
		if err != nil {
			return nil, 0, err
		}
		if part > 0 && part < s.Duration {
			cutDay(s, part)
		}
		day = s.Duration
		if s, err = auditable(s); err != nil {
			return nil, 0, err
		}
		s.Job.TaskManager.CPU, s.Job.TaskManager.Slots = realSlots, realSlots
		peak, err := testbed.Realise(s, testbed.Scale{Rate: 1, Time: speed, IgnoreLimits: true})
		if err != nil {
			return nil, 0, err
		}
		scale := testbed.Scale{Rate: twoDigitsDown(realRateBudget / peak.PeakRate), Time: speed}
		if state := stateBytes(s); state > realStateBytes {
			scale.State = realStateBytes / state
		}
		rs := &realstack.Job{
			Name: s.Name, Scenario: s, Scale: scale, Flink: setup.Flink, Adaptive: s.Job.Scheduler == "adaptive",
			Sink: &testbed.SinkOptions{Topic: setup.SinkTopic, Guarantee: testbed.GuaranteeExactlyOnce},
			Mode: setup.Mode, Deployer: testbed.DeployerOptions{Progress: logs},
		}
		switch setup.OptIn {
		case OptInAnnotations:
			// What the annotations cannot say comes from the Flink
			// operator's autoscaler options, which the opt-in controller
			// carries over: how a user migrating from it would write them.
			rs.OptIn = realstack.OptInAnnotations
			rs.Annotations = map[string]string{
				optin.AnnotationMetricsWindow:  realWindow.String(),
				optin.AnnotationCooldownPeriod: realCooldown.String(),
			}
			rs.FlinkConfiguration = map[string]string{
				optin.FlinkPrefix + "stabilization.interval": realWarmUp.String(),
				optin.FlinkPrefix + "scale-down.interval":    realScaleDownWindow.String(),
				optin.FlinkPrefix + "catch-up.duration":      realCatchUp.String(),
				optin.FlinkPrefix + "restart.time":           realRestartTime.String(),
			}
		default:
			rs.OptIn = realstack.OptInPolicy
			rs.Policy = realPolicy
		}
		out = append(out, &realJob{job: &job{setup: setup.JobSetup, sc: s}, setup: setup, rs: rs, speed: speed})
	}
	return out, day, nil
}

// realPolicy sets a hand-written policy to the real demo's settings.
func realPolicy(p *v1alpha1.FlinkScalingPolicy) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	p.Spec.MetricsWindow = d(realWindow)
	p.Spec.WarmUp = d(realWarmUp)
	p.Spec.CooldownPeriod = d(realCooldown)
	p.Spec.CatchUpDuration = d(realCatchUp)
	p.Spec.RestartTime = d(realRestartTime)
	p.Spec.Behavior = &v1alpha1.Behavior{ScaleDown: &v1alpha1.ScaleDownRules{StabilizationWindow: d(realScaleDownWindow)}}
}

// started completes a job once its testbed runs: what it plays, and the
// model of it.
func (r *realJob) started() error {
	r.played = r.rs.Testbed.Realised.Scaled
	r.slo = r.played.SLO.Lag
	spec := r.played.Job
	spec.FlinkVersion = testbed.SimFlinkVersion(r.setup.Flink)
	model, err := sim.NewJob(spec, sim.Options{Start: r.rs.Testbed.Started, Seed: uint64(r.played.Seed),
		Load: r.played, Kafka: sim.NewMemoryKafka(spec.Topics)})
	if err != nil {
		return fmt.Errorf("the model of %s: %w", r.sc.Name, err)
	}
	r.model = model
	r.run = r
	return nil
}

// auditable returns a copy of s in which every record reaches the sink, as
// the testbed's audit needs (testbed.SinkOptions): a vertex with consumers
// that filters or multiplies records (clicks' sessionizer keeps one in
// five) passes each on once instead, and each vertex downstream gets its
// capacity multiplied by how many more records it now receives, so that
// every vertex is exactly as busy at every load, and needs the same
// parallelism, as in s.
func auditable(s *scenario.Scenario) (*scenario.Scenario, error) {
	b, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("copying scenario %s: %w", s.Name, err)
	}
	out, err := scenario.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("copying scenario %s: %w", s.Name, err)
	}
	vs := out.Job.Vertices
	index, consumed := map[string]int{}, map[string]bool{}
	for i, v := range vs {
		index[v.Name] = i
		for _, e := range v.Inputs {
			consumed[e.From] = true
		}
	}
	// gain is the records a vertex receives per record it received in s.
	gain := make([]float64, len(vs))
	var gainOf func(i, depth int) (float64, error)
	gainOf = func(i, depth int) (float64, error) {
		if gain[i] > 0 {
			return gain[i], nil
		}
		if depth > len(vs) {
			return 0, fmt.Errorf("scenario %s: a cycle through %q", s.Name, vs[i].Name)
		}
		g := 1.0
		for k, e := range vs[i].Inputs {
			u := index[e.From]
			gu, err := gainOf(u, depth+1)
			if err != nil {
				return 0, err
			}
			if vs[u].Selectivity <= 0 {
				return 0, fmt.Errorf("scenario %s: %q drops every record before %q: nothing would reach the sink", s.Name, e.From, vs[i].Name)
			}
			gi := gu / vs[u].Selectivity
			if k > 0 && math.Abs(gi-g) > 1e-9*g {
				return 0, fmt.Errorf("scenario %s: the inputs of %q would grow unevenly, so its busy time could not be kept", s.Name, vs[i].Name)
			}
			g = gi
		}
		gain[i] = g
		return g, nil
	}
	for i := range vs {
		if _, err := gainOf(i, 0); err != nil {
			return nil, err
		}
	}
	for i := range vs {
		vs[i].Capacity *= gain[i]
		if consumed[vs[i].Name] {
			vs[i].Selectivity = 1
		}
	}
	out.File = s.File
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s made auditable: %w", s.Name, err)
	}
	return out, nil
}

// cutDay ends s at day, dropping the load segments that would start later:
// a scenario's validation, which the testbed's scaled copy goes through,
// refuses them.
func cutDay(s *scenario.Scenario, day time.Duration) {
	s.Duration = day
	for i := range s.Load {
		var keep []scenario.Segment
		var start time.Duration
		for _, g := range s.Load[i].Segments {
			if g.Kind == scenario.KindNoise {
				if g.Start < day {
					keep = append(keep, g)
				}
				continue
			}
			if start < day {
				keep = append(keep, g)
			}
			start += g.For
		}
		s.Load[i].Segments = keep
	}
}

// stateBytes is the keyed state of every vertex of s.
func stateBytes(s *scenario.Scenario) float64 {
	total := 0.0
	for _, v := range s.Job.Vertices {
		total += v.StateBytes
	}
	return total
}

// flinkRelease names the release of a testbed Flink line.
func flinkRelease(v testbed.Flink) string {
	if v == testbed.Flink2 {
		return "2.2" // the testbed's 2.x line (docs/testbed.md)
	}
	return string(v)
}

// twoDigitsDown rounds a positive scale down to two significant digits, so
// that the scale printed is the one used.
func twoDigitsDown(x float64) float64 {
	if !(x > 0) {
		return x
	}
	e := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Floor(x/e) * e
}

// runReal plays the day on real Flink and Kafka: each job's testbed (its
// broker, its session cluster, its producer playing the compressed load)
// and the controller and fake operator of realstack, on the session's
// control plane.
func runReal(ctx context.Context, s *session) (_ *Result, err error) {
	cfg, out := s.cfg, s.out
	logs := &lineWriter{to: func(line string) { s.logger.WithName("testbed").Info(line) }}
	jobs, day, err := newRealJobs(cfg.Duration, cfg.Speed, logs)
	if err != nil {
		return nil, err
	}
	if err := testbed.Available(); err != nil {
		return nil, fmt.Errorf("the real demo needs java and mvn: %w", err)
	}
	reg := prometheus.NewRegistry()
	if s.metricsURL != "" {
		stop := serveMetrics(cfg.MetricsAddr, reg)
		defer func() {
			if serr := stop(); serr != nil && err == nil {
				err = serr
			}
		}()
	}

	out.printf("Starting a Kafka broker and a Flink cluster per job (real JVMs, test/testbed; their logs in %s) ...\n", rel(s.logPath))
	rsJobs := make([]*realstack.Job, len(jobs))
	for i, j := range jobs {
		how := "default scheduler: savepoint restarts"
		if j.rs.Adaptive {
			how = "adaptive scheduler: in place"
		}
		out.printf("  %-8s Flink %s (%s), rates ×%g (peak %s records/s), the day ÷%g\n",
			j.sc.Name, flinkRelease(j.setup.Flink), how, j.rs.Scale.Rate, fmtRate(realRateBudget), cfg.Speed)
		rsJobs[i] = j.rs
	}
	st, err := realstack.Start(ctx, realstack.Options{
		Env: s.env, Namespace: Namespace, Jobs: rsJobs, PollInterval: realPoll, Registry: reg,
		Logger: s.logger, Progress: &lineWriter{to: func(line string) { out.printf("  %s\n", line) }},
		Testbed: testbed.Options{SkipJavaTests: true, Progress: logs}, Concurrent: true,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		out.printf("Stopping every JVM ... ")
		if serr := st.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stopping the real stack: %w", serr)
		}
		out.printf("done\n")
	}()
	views := make([]*job, len(jobs))
	for i, j := range jobs {
		if err := j.started(); err != nil {
			return nil, err
		}
		views[i] = j.job
	}
	if s.metricsURL != "" {
		if err := writePrometheusConfig(filepath.Join(s.outAbs, "prometheus.yml"), cfg.MetricsAddr, filepath.Join(s.root, RulesFile), realPoll); err != nil {
			return nil, err
		}
	}
	res := &Result{Started: s.began, Speed: cfg.Speed, Day: day, Out: s.outAbs, Kubeconfig: s.kubeconfig,
		MetricsURL: s.metricsURL, Log: s.logPath, PollInterval: realPoll, Namespace: Namespace,
		SetupTime: time.Since(s.began), Real: true, LeftOut: []string{realLeftOut}}
	s.introReal(jobs, day)
	if cfg.Ready != nil {
		cfg.Ready(s.kubeconfig, s.metricsURL)
	}

	// The day: the monitor follows the policies, the sampler measures the
	// jobs. The view's clock is the job whose load began first.
	elapsed := func() time.Duration {
		var at time.Duration
		for _, j := range jobs {
			at = max(at, j.Elapsed())
		}
		return at
	}
	mon := newMonitor(st.Client, views, elapsed, cfg.Speed, out, cfg.Redraw)
	mon.where = "on real Flink"
	mon.width = cfg.Width
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.loop(runCtx) }()
	sample(runCtx, jobs, day, max(time.Second, time.Duration(float64(30*time.Second)/cfg.Speed)), s.logger.Error)
	stopRun()
	<-monDone
	if ctx.Err() != nil {
		out.printf("\nInterrupted at %s of the day.\n", fmtClock(elapsed()))
		return nil, ctx.Err()
	}
	mon.refresh(ctx)
	mon.finish()
	res.Wall = time.Since(s.began)

	if err := audit(ctx, jobs, out); err != nil {
		return nil, err
	}
	if err := res.collect(ctx, st.Client, views, mon); err != nil {
		return nil, err
	}
	for i, jr := range res.Jobs {
		jr.Flink = flinkRelease(jobs[i].setup.Flink)
		jr.RateScale = jobs[i].rs.Scale.Rate
		jr.Audit = jobs[i].audit.Load()
	}
	if err := res.write(); err != nil {
		return nil, err
	}
	res.WriteSummary(cfg.Terminal)

	if cfg.Hold {
		out.printf("\nThe day is over; everything keeps running (with no more load) until Ctrl-C.\n")
		mon.loop(ctx)
		out.printf("\nStopped.\n")
	}
	return res, nil
}

// serveMetrics serves the controller's metrics at addr until stop:
// controller-runtime's registry (the manager's own series) and reg, where
// realstack's controller registers flinkscale's, on one endpoint as
// `flinkscale controller` serves them.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func() error) {
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second,
		Handler: promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, reg}, promhttp.HandlerOpts{})}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving metrics on %s: %w", addr, err)
		}
		return nil
	}
}

// introReal says what runs and where to look while it does.
func (s *session) introReal(jobs []*realJob, day time.Duration) {
	out, speed := s.out, s.cfg.Speed
	out.printf("\nController running. orders: annotations (and the Flink operator's job.autoscaler.* options), mode Apply;\n")
	out.printf("clicks: a FlinkScalingPolicy, mode Apply. payments (DryRun) is left out on real Flink.\n\n")
	out.printf("While it runs, from another terminal:\n")
	kubectl, _ := kubectlName(s.root)
	out.printf("  %s --kubeconfig %s get fsp,flinkdeployments -n %s\n", kubectl, rel(s.kubeconfig), Namespace)
	out.printf("  %s status -A --kubeconfig %s\n", flinkscaleName(s.root), rel(s.kubeconfig))
	for _, j := range jobs {
		out.printf("  %s   (Flink's web UI of %s)\n", j.rs.Testbed.Flink.RESTURL(), j.sc.Name)
	}
	if s.metricsURL != "" {
		out.printf("  curl -s %s | grep ^flinkscale_\n", s.metricsURL)
	}
	out.printf("\nThe day plays at %g× on real Flink (%s of wall time); policies poll every %s (Flink's metric fetcher refreshes every 10 s).\n",
		speed, fmtDur(time.Duration(float64(day)/speed)), realPoll)
	out.printf("Times of day are the wall clock at %g×; durations and rates are real. Capacity is the simulator's model of the same jobs.\n\n", speed)
}

// audit reads every record back from each job's output topic as a
// read_committed consumer sees it, and compares it with every record the
// job's producer wrote, once the job has caught up and committed. An
// audit that times out still counts: what is missing is lost.
func audit(ctx context.Context, jobs []*realJob, out *terminal) error {
	out.printf("\nAuditing each job's output topic (read_committed) against every record its producer wrote ... ")
	t0 := time.Now()
	var notes []string
	for _, j := range jobs {
		a, err := j.rs.Testbed.AwaitAudit(ctx, testbed.ReadCommitted, realAuditWithin)
		if err != nil && a.Produced == 0 {
			out.printf("failed\n")
			return fmt.Errorf("auditing %s: %w", j.sc.Name, err)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", j.sc.Name, err))
		}
		j.audit.Store(&a)
	}
	out.printf("done in %s\n", time.Since(t0).Round(100*time.Millisecond))
	for _, n := range notes {
		out.printf("  %s\n", n)
	}
	return nil
}

// sample measures every job every interval, from the start of its load
// until it has played the day (or ctx ends): the timeline point at its
// offset in the day, and the integrals over the wall time since its last
// sample. A failed sample (the broker did not answer) is logged and the
// next one covers its time.
func sample(ctx context.Context, jobs []*realJob, day, every time.Duration, logErr func(error, string, ...any)) {
	last := make([]time.Time, len(jobs))
	done := make([]bool, len(jobs))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		all := true
		for i, j := range jobs {
			if done[i] {
				continue
			}
			now := time.Now()
			at := min(j.Offset(now), day)
			from := last[i]
			if from.IsZero() {
				from = j.rs.Testbed.Started
			}
			if err := j.account(ctx, at, now.Sub(from), true); err != nil {
				logErr(err, "sampling the job", "job", j.sc.Name)
			} else {
				last[i] = now
			}
			done[i] = at >= day
			all = all && done[i]
		}
		if all {
			return
		}
	}
}

// lineWriter hands each line written to it to a function.
type lineWriter struct{ to func(line string) }

func (w *lineWriter) Write(p []byte) (int, error) {
	for line := range strings.Lines(string(p)) {
		if line = strings.TrimRight(line, "\n"); line != "" {
			w.to(line)
		}
	}
	return len(p), nil
}
