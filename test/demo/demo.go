// Package demo is the embedded demo `flinkscale demo` (`make demo`) runs:
// the whole system on one machine, with nothing to install but Go.
//
//   - a real kube-apiserver and etcd (test/envtest, built by `make
//     envtest-bins`) with the FlinkDeployment and FlinkScalingPolicy CRDs;
//   - one kfake Kafka cluster holding every job's topics;
//   - three simulated Flink jobs (test/sim), each behind Flink's REST API
//     on 127.0.0.1, created as FlinkDeployments and deployed, savepointed
//     and restarted by the fake Flink operator (test/fakeoperator);
//   - the real controller (the opt-in and policy reconcilers, the same as
//     `flinkscale controller` runs) managing two jobs through annotations
//     and one through a FlinkScalingPolicy, with its metrics endpoint.
//
// The jobs play one day in fast motion (test/demo/scenarios: steady load, a
// surge, a quiet night) on one virtual clock shared by the simulator, the
// fake operator and the controller; requeue delays stay real, so polling
// intervals are set in wall time (60 s of job time at the default speed).
// A live view shows each job's load against its capacity, its lag, its
// parallelism and what flinkscale recommends; at the end Run prints a
// summary and writes an HTML report with charts and a Markdown one.
//
// With Config.Real (`make demo-real`) two of the jobs play the same day on
// real Flink and Kafka instead (real.go, on test/realstack), the day
// compressed and its rates scaled for the testbed. The view and the
// reports read a job through backend, which the simulated job (simJob) and
// the real one (realJob) implement.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
)

// Namespace holds the demo's FlinkDeployments and policies.
const Namespace = "streaming"

// Defaults.
const (
	DefaultSpeed = 60
	// DefaultRealSpeed compresses the day for real Flink: the 3 h day in
	// 7 min 30 s, so that `make demo-real` stays within about 10 minutes
	// with the clusters' start.
	DefaultRealSpeed   = 24
	DefaultOut         = "demo-report"
	DefaultMetricsAddr = "127.0.0.1:8080"
	// pollEvery is the policies' polling interval in job time.
	pollEvery = time.Minute
)

// Config is one demo run.
type Config struct {
	// Real plays the day on real Apache Flink and Kafka started on this
	// machine (test/realstack; needs java and mvn) instead of the
	// simulator: two of the jobs, the day compressed by Speed.
	Real bool
	// Speed is how many seconds of job time pass per wall second (default
	// 60: the 3 h day plays in 3 minutes). With Real it is how much the
	// day is compressed (default DefaultRealSpeed), at most
	// MaxRealSpeed.
	Speed float64
	// Duration plays only the first part of the day (default: all of it).
	Duration time.Duration
	// Out is the folder the reports, the kubeconfig and the controller's
	// log are written to (default demo-report, created if missing).
	Out string
	// MetricsAddr is where the controller's Prometheus metrics are served
	// (default 127.0.0.1:8080; "0" disables them).
	MetricsAddr string
	// Terminal receives the live view and the summary (nil: discarded).
	Terminal io.Writer
	// Redraw redraws the live view in place (a terminal); otherwise events
	// and periodic status lines are appended (a log, a pipe).
	Redraw bool
	// Width, when set, gives the terminal's width in columns at each
	// redraw: the view's lines are cut to it, since a wrapped line would
	// throw the redraw off.
	Width func() int
	// Compare replays the same load offline under the Flink operator's
	// autoscaler, KEDA's Kafka scaler and no autoscaler (test/bench) for
	// the summary (a few seconds of CPU after the run).
	Compare bool
	// Hold keeps everything running after the day is over, in real time,
	// until ctx ends, for kubectl and Prometheus; the reports are written
	// first.
	Hold bool
	// Ready, if set, is called once the stack is up, with the run's
	// kubeconfig path and metrics URL (tests use it).
	Ready func(kubeconfig, metricsURL string)
}

// MaxRealSpeed bounds the compression of the day on real Flink: at 60×
// the 5-minute lag SLO is 5 s, the checkpoint interval's floor, and a real
// restart of some seconds is already most of an hour of the day.
const MaxRealSpeed = 60

func (c *Config) defaults() error {
	switch {
	case c.Speed == 0 && c.Real:
		c.Speed = DefaultRealSpeed
	case c.Speed == 0:
		c.Speed = DefaultSpeed
	}
	if c.Real && (c.Speed < 1 || c.Speed > MaxRealSpeed) {
		return fmt.Errorf("speed %g: must be between 1 and %d on real Flink", c.Speed, MaxRealSpeed)
	}
	if c.Speed < 1 || c.Speed > 600 {
		return fmt.Errorf("speed %g: must be between 1 and 600", c.Speed)
	}
	if c.Duration < 0 {
		return fmt.Errorf("duration %s: must not be negative", c.Duration)
	}
	if c.Out == "" {
		c.Out = DefaultOut
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.Terminal == nil {
		c.Terminal = io.Discard
	}
	return nil
}

// pollInterval is the policies' polling interval in wall time: pollEvery of
// job time, at least the API's minimum of 1s.
func (c *Config) pollInterval() time.Duration {
	return max(time.Second, time.Duration(float64(pollEvery)/c.Speed).Round(100*time.Millisecond))
}

// stepInterval is how often the fake operator and the controller's rescale
// tracking look again while something changes: 10 s of job time, within
// [50 ms, 1 s] of wall time.
func (c *Config) stepInterval() time.Duration {
	return min(time.Second, max(50*time.Millisecond, time.Duration(float64(10*time.Second)/c.Speed)))
}

// Run runs the demo until the day is over (or, with Hold, until ctx ends)
// and returns its result. The reports are in cfg.Out.
func Run(ctx context.Context, cfg Config) (_ *Result, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s, err := startSession(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := s.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if cfg.Real {
		return runReal(ctx, s)
	}
	return runSimulated(ctx, s)
}

// session is what both demos start with: the report folder, the
// controller's log, the control plane and its kubeconfig.
type session struct {
	cfg        Config
	began      time.Time
	out        *terminal
	root       string // the repository
	outAbs     string
	metricsURL string
	logPath    string
	logFile    *os.File
	logger     logr.Logger
	env        *envtest.Env
	kubeconfig string
}

// startSession creates the report folder and the log, checks the metrics
// address, and starts the control plane. On error nothing is left running.
func startSession(cfg Config) (_ *session, err error) {
	s := &session{cfg: cfg, began: time.Now(), out: &terminal{w: cfg.Terminal}}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("report folder: %w", err)
	}
	if s.outAbs, err = filepath.Abs(cfg.Out); err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "0" {
		// Fail now, with the flag to change, rather than inside the manager.
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("serving metrics on %s: %w (choose another address with --metrics-addr, or 0 to disable)", cfg.MetricsAddr, err)
		}
		_ = ln.Close()
		s.metricsURL = "http://" + cfg.MetricsAddr + "/metrics"
	}

	// Logs: the controller's, controller-runtime's and client-go's go to a
	// file; the terminal shows the live view.
	s.logPath = filepath.Join(s.outAbs, "controller.log")
	if s.logFile, err = os.Create(s.logPath); err != nil {
		return nil, fmt.Errorf("controller log: %w", err)
	}
	s.logger = zap.New(zap.WriteTo(s.logFile), zap.UseDevMode(false))
	ctrl.SetLogger(s.logger)
	klog.SetLogger(s.logger.WithName("client-go"))

	// The control plane.
	if s.root, err = envtest.RepoRoot(); err != nil {
		return nil, err
	}
	s.out.printf("Starting kube-apiserver and etcd (bin/k8s) ... ")
	t0 := time.Now()
	if s.env, err = envtest.StartControlPlane(envtest.WithCRDPaths(filepath.Join(s.root, "config", "crd"))); err != nil {
		s.out.printf("failed\n")
		return nil, err
	}
	s.out.printf("up in %s (FlinkDeployment CRD: %s)\n", time.Since(t0).Round(100*time.Millisecond), relTo(s.root, s.env.FlinkDeploymentCRD))
	s.kubeconfig = filepath.Join(s.outAbs, "kubeconfig")
	if err := s.env.WriteKubeconfigFile(s.kubeconfig, "flinkscale-demo"); err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return s, nil
}

// close stops the control plane and closes the log.
func (s *session) close() error {
	var errs []error
	if s.env != nil {
		if err := s.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
		}
	}
	if s.logFile != nil {
		errs = append(errs, s.logFile.Close())
	}
	return errors.Join(errs...)
}

// runSimulated plays the day on the simulator: every job in one world on
// a virtual clock, with the fake operator and the controller on it too.
func runSimulated(ctx context.Context, s *session) (_ *Result, err error) {
	cfg, out, began := s.cfg, s.out, s.began
	root, outAbs, kubeconfig, metricsURL, logPath, logger := s.root, s.outAbs, s.kubeconfig, s.metricsURL, s.logPath, s.logger
	scs, err := LoadScenarios()
	if err != nil {
		return nil, err
	}
	day := scs[0].Duration
	if cfg.Duration > 0 && cfg.Duration < day {
		day = cfg.Duration
	}
	for _, sc := range scs {
		sc.Duration = day
	}

	// The simulated jobs and Kafka. The virtual day ends about when the
	// demo does, so that no timestamp lies in the future.
	start := began.Add(-day).Truncate(time.Second).UTC()
	w, err := newWorld(scs, Jobs, start, cfg.Speed)
	if err != nil {
		return nil, err
	}
	defer w.close()
	out.printf("Kafka (kfake) on %s with %d topics; %d simulated Flink jobs, REST APIs on 127.0.0.1\n",
		strings.Join(w.kafka.Addrs(), ","), len(w.jobs), len(w.jobs))

	// The manager: the fake Flink operator and the real controller.
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(s.env.Config, ctrl.Options{
		Scheme:                 scheme,
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress: "0",
		Logger:                 logger,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	clusters := fakeoperator.NewRegistry()
	for _, j := range w.jobs {
		clusters.Register(types.NamespacedName{Namespace: Namespace, Name: j.sc.Name}, j.sim)
	}
	var seq atomic.Int64
	if err := (&fakeoperator.Operator{Clusters: clusters, Clock: w, ResyncInterval: cfg.stepInterval(),
		NewJobID: func() string { return fmt.Sprintf("%08x%024x", 0xf1157000, seq.Add(1)) }}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the fake Flink operator: %w", err)
	}
	pr := &controllers.PolicyReconciler{
		Client:            mgr.GetClient(),
		Sources:           &controllers.ClientSources{Reader: mgr.GetAPIReader(), Now: w.Now, Timeout: 5 * time.Second},
		Clock:             w,
		TrackInterval:     cfg.stepInterval(),
		RescaleTimeout:    controllers.DefaultRescaleTimeout,
		RescaleBackoff:    controllers.DefaultRescaleBackoff,
		MaxRescaleBackoff: controllers.DefaultMaxRescaleBackoff,
	}
	if err := pr.SetupWithManager(mgr, controllers.Options{MaxConcurrentReconciles: 4}); err != nil {
		return nil, fmt.Errorf("setting up the policy controller: %w", err)
	}
	if err := (&optin.Reconciler{}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the opt-in controller: %w", err)
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	defer func() {
		stopMgr()
		if merr := <-mgrDone; merr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("controller manager: %w", merr)
		}
	}()

	// The objects, as a user would write them.
	c, err := client.New(s.env.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	if err := createObjects(ctx, c, w, cfg.pollInterval()); err != nil {
		return nil, err
	}
	if err := waitSubmitted(ctx, w, time.Minute); err != nil {
		return nil, err
	}

	promConfig := ""
	if metricsURL != "" {
		promConfig = filepath.Join(outAbs, "prometheus.yml")
		if err := writePrometheusConfig(promConfig, cfg.MetricsAddr, filepath.Join(root, RulesFile), cfg.pollInterval()); err != nil {
			return nil, err
		}
	}
	res := &Result{Started: began, Speed: cfg.Speed, Day: day, Out: outAbs, Kubeconfig: kubeconfig,
		MetricsURL: metricsURL, Log: logPath, PollInterval: cfg.pollInterval(), Namespace: Namespace,
		SetupTime: time.Since(began)}
	out.printf("Controller running. orders: annotations, mode Apply (savepoint restarts); clicks: a FlinkScalingPolicy,\n")
	out.printf("mode Apply (adaptive scheduler: in place); payments: annotations, mode DryRun (recommends only).\n\n")
	out.printf("While it runs, from another terminal:\n")
	kubectl, haveKubectl := kubectlName(root)
	out.printf("  %s --kubeconfig %s get fsp,flinkdeployments -n %s\n", kubectl, rel(kubeconfig), Namespace)
	if !haveKubectl {
		out.printf("    (no kubectl here: `make envtest-bins` builds one into bin/k8s)\n")
	}
	out.printf("  %s status -A --kubeconfig %s\n", flinkscaleName(root), rel(kubeconfig))
	if metricsURL != "" {
		out.printf("  curl -s %s | grep ^flinkscale_\n", metricsURL)
		out.printf("  prometheus --config.file=%s   (then Grafana: charts/flinkscale/dashboards/*.json)\n", rel(promConfig))
	}
	out.printf("\nThe day plays at %g× (1 s of wall time = %s of job time); policies poll every %s (%s of job time).\n\n",
		cfg.Speed, time.Duration(cfg.Speed*float64(time.Second)), cfg.pollInterval(), time.Duration(float64(cfg.pollInterval())*cfg.Speed))
	if cfg.Ready != nil {
		cfg.Ready(kubeconfig, metricsURL)
	}

	// The day.
	mon := newMonitor(c, w.views(), w.Elapsed, cfg.Speed, out, cfg.Redraw)
	mon.width = cfg.Width
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	worldDone := make(chan error, 1)
	go func() { worldDone <- w.run(runCtx, day, cfg.Speed) }()
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.loop(runCtx) }()
	select {
	case err = <-worldDone:
	case merr := <-mgrDone:
		mgrDone <- merr // for the deferred stop
		if merr == nil {
			merr = errors.New("stopped")
		}
		err = fmt.Errorf("controller manager: %w", merr)
	}
	stopRun()
	<-monDone
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		out.printf("\nInterrupted at %s of job time.\n", fmtClock(w.Elapsed()))
		return nil, ctx.Err()
	}
	// One last look at every policy, for the events of the last seconds.
	mon.refresh(ctx)
	mon.finish()
	res.Wall = time.Since(began)

	if err := res.collect(ctx, c, w.views(), mon); err != nil {
		return nil, err
	}
	if cfg.Compare {
		out.printf("\nReplaying the same load offline under the Flink operator's autoscaler, KEDA and no autoscaler ... ")
		t0 := time.Now()
		if err := res.compare(ctx, scs, runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		out.printf("done in %s\n", time.Since(t0).Round(100*time.Millisecond))
	}
	if err := res.write(); err != nil {
		return nil, err
	}
	res.WriteSummary(cfg.Terminal)

	if cfg.Hold {
		// In real time from now on: the day was laid out to end now, so
		// job time and the wall clock agree (ages, kubectl, Prometheus).
		out.printf("\nThe day is over; everything keeps running in real time (at the night's load) until Ctrl-C.\n")
		holdCtx, stopHold := context.WithCancel(ctx)
		defer stopHold()
		mon.mu.Lock()
		mon.speed = 1
		mon.mu.Unlock()
		// Catch up with the wall clock (the setup and the reports took
		// some seconds), then run in step with it.
		if err := w.advanceTo(time.Now()); err != nil {
			return res, err
		}
		go func() { worldDone <- w.run(holdCtx, 0, 1) }()
		mon.loop(holdCtx)
		stopHold()
		if err := <-worldDone; err != nil {
			return res, err
		}
		out.printf("\nStopped.\n")
	}
	return res, nil
}

// RulesFile is the chart's Prometheus rules file, relative to the
// repository: the demo's prometheus.yml loads it.
const RulesFile = "charts/flinkscale/rules/flinkscale-rules.yaml"

// writePrometheusConfig writes a Prometheus configuration that scrapes the
// demo's controller at addr every poll interval (a minute of job time, in
// milliseconds: Prometheus' durations take no fractions) and
// evaluates the chart's recording rules and alerts.
func writePrometheusConfig(path, addr, rules string, every time.Duration) error {
	conf := fmt.Sprintf(`# Written by flinkscale demo: prometheus --config.file=%s
# scrapes the demo's controller while it runs. Import the Grafana dashboards
# of charts/flinkscale/dashboards with this Prometheus as their data source.
global:
  scrape_interval: %dms
  evaluation_interval: %dms
rule_files:
  - %q
scrape_configs:
  - job_name: flinkscale
    static_configs:
      - targets: [%q]
`, path, every.Milliseconds(), every.Milliseconds(), rules, addr)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// createObjects creates the namespace, every job's FlinkDeployment (with
// the opt-in annotations when the job is scaled through them) and the
// FlinkScalingPolicy of the job scaled by one.
func createObjects(ctx context.Context, c client.Client, w *world, poll time.Duration) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	brokers := strings.Join(w.kafka.Addrs(), ",")
	for _, j := range w.jobs {
		spec, err := j.deploymentSpec()
		if err != nil {
			return err
		}
		fd := envtest.NewFlinkDeployment(Namespace, j.sc.Name)
		if err := unstructured.SetNestedField(fd.Object, spec, "spec"); err != nil {
			return fmt.Errorf("FlinkDeployment %s: %w", j.sc.Name, err)
		}
		fd.SetLabels(map[string]string{"app": j.sc.Name})
		if j.setup.OptIn == OptInAnnotations {
			fd.SetAnnotations(map[string]string{
				optin.AnnotationEnabled:               "true",
				optin.AnnotationMode:                  string(j.setup.Mode),
				optin.AnnotationPollingInterval:       poll.String(),
				optin.AnnotationFlinkRESTURL:          j.url,
				optin.AnnotationKafkaBootstrapServers: brokers,
				optin.AnnotationKafkaConsumerGroup:    j.sc.Job.ConsumerGroup,
				optin.AnnotationKafkaTopics:           strings.Join(j.topics(), ","),
			})
		}
		if err := c.Create(ctx, fd); err != nil {
			return fmt.Errorf("creating FlinkDeployment %s/%s: %w", Namespace, j.sc.Name, err)
		}
		if j.setup.OptIn != OptInPolicy {
			continue
		}
		pol := &v1alpha1.FlinkScalingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: j.sc.Name}}
		pol.Spec = v1alpha1.FlinkScalingPolicySpec{
			TargetRef:       v1alpha1.TargetRef{Name: j.sc.Name},
			Mode:            j.setup.Mode,
			PollingInterval: &metav1.Duration{Duration: poll},
			Triggers: &v1alpha1.Triggers{
				Kafka: []v1alpha1.KafkaTrigger{{
					Name: j.sc.Name, BootstrapServers: w.kafka.Addrs(),
					ConsumerGroup: j.sc.Job.ConsumerGroup, Topics: j.topics(),
				}},
				FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: j.url}},
			},
		}
		if err := c.Create(ctx, pol); err != nil {
			return fmt.Errorf("creating FlinkScalingPolicy %s/%s: %w", Namespace, pol.Name, err)
		}
	}
	return nil
}

// waitSubmitted waits until the fake operator has submitted every job, so
// that the day starts with every job deploying.
func waitSubmitted(ctx context.Context, w *world, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, j := range w.jobs {
			if j.sim.View().Job.ID == "" {
				missing = append(missing, j.sc.Name)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fake Flink operator did not deploy %s within %s (see the controller log)", strings.Join(missing, ", "), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kubectlName is how to call kubectl: the one `make envtest-bins` built,
// when there is one, else the one on PATH; found is false with neither.
func kubectlName(root string) (name string, found bool) {
	p := filepath.Join(root, "bin", "k8s", "kubectl")
	if _, err := os.Stat(p); err == nil {
		return rel(p), true
	}
	_, err := exec.LookPath("kubectl")
	return "kubectl", err == nil
}

// flinkscaleName is how to call flinkscale: bin/flinkscale when built.
func flinkscaleName(root string) string {
	p := filepath.Join(root, "bin", "flinkscale")
	if _, err := os.Stat(p); err == nil {
		return rel(p)
	}
	return "go run ./cmd/flinkscale"
}

// rel is p relative to the working directory when it is below it.
func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	return relTo(wd, p)
}

func relTo(dir, p string) string {
	r, err := filepath.Rel(dir, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	return r
}
