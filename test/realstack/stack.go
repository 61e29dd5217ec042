// Package realstack runs flinkscale's whole path on real Flink and Kafka:
// a kube-apiserver and etcd (test/envtest), the fake Flink operator
// (test/fakeoperator) driving real session clusters of the testbed
// (test/testbed, through testbed.Deployer) as the Flink Kubernetes
// Operator drives its clusters, and the real controller deciding from the
// jobs' real metrics and the brokers' real offsets.
//
// Nothing here is simulated but the Kubernetes side of the operator (no
// pods: the testbed starts and stops TaskManager processes instead). Every
// clock is the wall clock. The end-to-end tests of this package
// (TestReal*) and `flinkscale demo --real` build on Start.
package realstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/eventlog"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// OptIn is how a job is handed to flinkscale.
type OptIn string

const (
	// OptInPolicy: a FlinkScalingPolicy written by hand (the default).
	OptInPolicy OptIn = "policy"
	// OptInAnnotations: flinkscale.io/* annotations on the FlinkDeployment.
	OptInAnnotations OptIn = "annotations"
	// OptInNone: flinkscale is not told; the deployment keeps what it was
	// deployed with, or another autoscaler (the Flink project's
	// standalone one, in `flinkscale bench --real`) rescales it.
	OptInNone OptIn = "none"
)

// Job is one FlinkDeployment of the stack: a scenario on its own testbed
// (broker and session cluster).
type Job struct {
	// Name of the FlinkDeployment and of its policy.
	Name string
	// Scenario is the workload; Scale shrinks it for the testbed.
	Scenario *scenario.Scenario
	Scale    testbed.Scale
	// Flink is the Flink line (default 1.20).
	Flink testbed.Flink
	// Adaptive runs the adaptive scheduler, so that the operator rescales
	// in place; otherwise a rescale is a savepoint upgrade.
	Adaptive bool
	// Slots is taskmanager.numberOfTaskSlots of the deployment (default
	// the scenario's).
	Slots int
	// Sink writes every record to an output topic, for the audit.
	Sink *testbed.SinkOptions
	// SavepointDir overrides state.savepoints.dir (default a folder of
	// the testbed's run).
	SavepointDir string
	// OptIn and Mode say how flinkscale is told about the job (default a
	// policy in Apply mode).
	OptIn OptIn
	Mode  v1alpha1.Mode
	// Policy edits the policy before it is created (OptInPolicy).
	Policy func(*v1alpha1.FlinkScalingPolicy)
	// Annotations are added to the deployment's (OptInAnnotations).
	Annotations map[string]string
	// FlinkConfiguration entries are added to the deployment's
	// spec.flinkConfiguration, over DeploymentSpec's own: for example the
	// Flink operator's job.autoscaler.* options, which the opt-in
	// controller carries over into an annotated job's policy.
	FlinkConfiguration map[string]string
	// Deployer configures how the testbed plays Kubernetes.
	Deployer testbed.DeployerOptions
	// Standalone runs the job as a standalone Flink cluster on Kubernetes
	// without the operator: Deployments of its JobManager and TaskManagers
	// (played by the stack's kubelet), the job submitted to Flink
	// directly, and a policy targeting the JobManager Deployment
	// (flinkscale's REST path; see standalone.go). OptIn must be the
	// default.
	Standalone bool

	// Set by Start.
	Testbed  *testbed.Testbed
	Cluster  *testbed.Deployer
	Key      types.NamespacedName
	admin    *kadm.Client
	adminCl  *kgo.Client
	topics   []string
	consumer string
}

// Options configure Start.
type Options struct {
	// Env is the control plane (envtest.Start in tests,
	// envtest.StartControlPlane elsewhere); the FlinkScalingPolicy CRD must
	// be installed.
	Env *envtest.Env
	// Namespace holds the jobs' objects; it is created if missing.
	Namespace string
	Jobs      []*Job
	// PollInterval is every policy's polling interval (default 10s: the
	// JobManager's metric fetcher refreshes every 10 s, so polling faster
	// reads the same values twice).
	PollInterval time.Duration
	// TrackInterval bounds the controller's looks at a rescale in progress
	// (default 2s): the resolution of the measured downtime.
	TrackInterval time.Duration
	// Registry receives the controller's metrics (default a new one).
	Registry *prometheus.Registry
	// MetricsAddr serves the manager's metrics endpoint ("" or "0": none).
	MetricsAddr string
	// Logger is the manager's logger (default discard).
	Logger logr.Logger
	// Progress receives one line per step of the start; nil discards.
	Progress io.Writer
	// Testbed options every job's testbed starts with (Scenario, Scale,
	// Flink, Scheduler, NoJob and Sink are the job's).
	Testbed testbed.Options
	// Concurrent starts every job's testbed at once rather than one after
	// the other: the start takes about as long as the slowest testbed's,
	// and the jobs' loads (each testbed's producer starts with it) begin
	// within seconds of each other, as a demo playing one day on several
	// jobs needs.
	Concurrent bool
}

// Stack is the running whole.
type Stack struct {
	Client    client.Client
	Namespace string
	Jobs      []*Job
	Events    *eventlog.Log
	Registry  *prometheus.Registry
	Metrics   *controllers.Metrics
	Operator  *fakeoperator.Operator

	stopMgr context.CancelFunc
	mgrDone chan error
	once    sync.Once
	stopErr error
}

// Start starts every job's testbed (without submitting: the fake operator
// deploys each job when it sees its FlinkDeployment), the manager with the
// fake operator, the policy controller and the opt-in controller, and
// creates the objects. On error nothing is left running.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Env == nil {
		return nil, errors.New("realstack: no control plane")
	}
	if len(o.Jobs) == 0 {
		return nil, errors.New("realstack: no jobs")
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Second
	}
	if o.TrackInterval == 0 {
		o.TrackInterval = 2 * time.Second
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "0"
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	s := &Stack{Namespace: o.Namespace, Jobs: o.Jobs, Events: &eventlog.Log{}, Registry: o.Registry}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	seen := map[string]bool{}
	for _, j := range o.Jobs {
		if j.Name == "" || seen[j.Name] {
			return nil, fmt.Errorf("realstack: job name %q is empty or used twice", j.Name)
		}
		seen[j.Name] = true
	}
	start := func(j *Job) error {
		if err := s.startJob(ctx, o, j); err != nil {
			return fmt.Errorf("realstack: job %s: %w", j.Name, err)
		}
		say("job %s: Flink %s at %s, Kafka %s", j.Name, j.Testbed.Flink.Version(), j.Testbed.Flink.RESTURL(), j.Testbed.Kafka.Bootstrap())
		return nil
	}
	if o.Concurrent {
		errs := make([]error, len(o.Jobs))
		var wg sync.WaitGroup
		for i, j := range o.Jobs {
			wg.Go(func() { errs[i] = start(j) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	} else {
		for _, j := range o.Jobs {
			if err := start(j); err != nil {
				return nil, err
			}
		}
	}

	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(o.Env.Config, ctrl.Options{
		Scheme:                 scheme,
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress: "0",
		Logger:                 o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("realstack: manager: %w", err)
	}
	clusters := fakeoperator.NewRegistry()
	for _, j := range o.Jobs {
		clusters.Register(j.Key, j.Cluster)
	}
	s.Operator = &fakeoperator.Operator{Clusters: clusters, Recorder: s.Events, ResyncInterval: time.Second,
		// Real Flink restarts in seconds: retry a failed upgrade after 30 s,
		// as the operator's default does.
		RetryBackoff: 30 * time.Second}
	if err := s.Operator.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("realstack: fake operator: %w", err)
	}
	if standaloneJobs(o.Jobs) {
		k := &kubelet{client: mgr.GetClient(), jobs: map[types.NamespacedName]*Job{}}
		for _, j := range o.Jobs {
			if j.Standalone {
				k.jobs[types.NamespacedName{Namespace: o.Namespace, Name: j.TaskManagerDeployment()}] = j
			}
		}
		if err := k.setup(mgr); err != nil {
			return nil, fmt.Errorf("realstack: kubelet: %w", err)
		}
	}
	s.Metrics = controllers.NewMetrics(o.Registry)
	pr := &controllers.PolicyReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  s.Events,
		Sources:   &controllers.ClientSources{Reader: mgr.GetAPIReader(), Timeout: 5 * time.Second},
		// Requeues exactly at the polling interval: the tests count polls.
		FixedRequeue:      true,
		TrackInterval:     o.TrackInterval,
		RescaleTimeout:    controllers.DefaultRescaleTimeout,
		RescaleBackoff:    controllers.DefaultRescaleBackoff,
		MaxRescaleBackoff: controllers.DefaultMaxRescaleBackoff,
		Metrics:           s.Metrics,
	}
	// SkipNameValidation: one process may start stacks one after the
	// other (flinkscale bench --real, a stack per scenario).
	if err := pr.SetupWithManager(mgr, controllers.Options{MaxConcurrentReconciles: 2, SkipNameValidation: true}); err != nil {
		return nil, fmt.Errorf("realstack: policy controller: %w", err)
	}
	if err := (&optin.Reconciler{}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("realstack: opt-in controller: %w", err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	s.stopMgr, s.mgrDone = cancel, make(chan error, 1)
	go func() { s.mgrDone <- mgr.Start(mctx) }()

	if s.Client, err = client.New(o.Env.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if err := s.createObjects(ctx, o); err != nil {
		return nil, err
	}
	say("controller, fake operator and %d FlinkDeployment(s) up in namespace %s", len(o.Jobs), o.Namespace)
	return s, nil
}

func (s *Stack) startJob(ctx context.Context, o Options, j *Job) error {
	to := o.Testbed
	to.Scenario, to.Scale, to.Flink, to.NoJob, to.Sink = j.Scenario, j.Scale, j.Flink, true, j.Sink
	to.Scheduler = "default"
	if j.Adaptive {
		to.Scheduler = "adaptive"
	}
	if to.Progress == nil {
		to.Progress = o.Progress
	}
	tb, err := testbed.Start(ctx, to)
	if err != nil {
		return err
	}
	j.Testbed = tb
	if j.Cluster, err = testbed.NewDeployer(ctx, tb, j.Deployer); err != nil {
		return err
	}
	j.Key = types.NamespacedName{Namespace: o.Namespace, Name: j.Name}
	sc := tb.Realised.Scaled
	j.consumer = sc.Job.ConsumerGroup
	for _, t := range sc.Job.Topics {
		j.topics = append(j.topics, t.Name)
	}
	if j.adminCl, err = kgo.NewClient(kgo.SeedBrokers(tb.Kafka.Bootstrap())); err != nil {
		return fmt.Errorf("Kafka admin client: %w", err)
	}
	j.admin = kadm.NewClient(j.adminCl)
	return nil
}

// DeploymentSpec is the FlinkDeployment spec of a job as a user of the
// Flink Kubernetes Operator would write it for the testbed's workload:
// native mode, the scenario's TaskManager and checkpoints, its first
// parallelism per vertex as overrides keyed by the real job vertex ids,
// savepoint upgrades to a local folder, and the adaptive scheduler when the
// job runs it.
func (j *Job) DeploymentSpec() (map[string]any, error) {
	sc := j.Testbed.Realised.Scaled.Job
	major, minor := "1", "20"
	if j.Testbed.Flink.Version() == testbed.Flink2 {
		major, minor = "2", "2" // the testbed's 2.x line is Flink 2.2
	}
	var overrides []string
	minP := 0
	for _, v := range sc.Vertices {
		id, ok := j.Cluster.VertexID(v.Name)
		if !ok {
			return nil, fmt.Errorf("no job vertex id for %q", v.Name)
		}
		overrides = append(overrides, id+":"+strconv.Itoa(v.Parallelism))
		if minP == 0 || v.Parallelism < minP {
			minP = v.Parallelism
		}
	}
	slots := sc.TaskManager.Slots
	if j.Slots > 0 {
		slots = j.Slots
	}
	spDir := j.SavepointDir
	if spDir == "" {
		spDir = "file://" + filepath.Join(j.Testbed.Dir(), "operator-savepoints")
	}
	conf := map[string]any{
		"taskmanager.numberOfTaskSlots":            strconv.Itoa(slots),
		"pipeline.jobvertex-parallelism-overrides": strings.Join(overrides, ","),
		"state.savepoints.dir":                     spDir,
		"state.checkpoints.dir":                    "file://" + filepath.Join(j.Testbed.Dir(), "operator-checkpoints"),
		"execution.checkpointing.interval":         sc.Checkpoints.Interval.String(),
		// Only one autoscaler may act on a job.
		"job.autoscaler.enabled": "false",
	}
	if j.Adaptive {
		conf["jobmanager.scheduler"] = "adaptive"
	}
	for k, v := range j.FlinkConfiguration {
		conf[k] = v
	}
	return map[string]any{
		"flinkVersion":       "v" + major + "_" + minor,
		"mode":               "native",
		"image":              "flink:" + major + "." + minor,
		"serviceAccount":     "flink",
		"flinkConfiguration": conf,
		"job": map[string]any{
			"jarURI":      "local:///opt/flink/usrlib/flinkscale-testbed.jar",
			"parallelism": int64(minP),
			"upgradeMode": "savepoint",
			"state":       "running",
		},
		"jobManager":  map[string]any{"replicas": int64(1), "resource": map[string]any{"cpu": int64(1), "memory": "1024m"}},
		"taskManager": map[string]any{"resource": map[string]any{"cpu": sc.TaskManager.CPU, "memory": "1024m"}},
	}, nil
}

func (s *Stack) createObjects(ctx context.Context, o Options) error {
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("realstack: namespace %s: %w", o.Namespace, err)
	}
	for _, j := range o.Jobs {
		mode := j.Mode
		if mode == "" {
			mode = v1alpha1.ModeApply
		}
		if j.Standalone {
			if err := s.createStandalone(ctx, o, j, mode); err != nil {
				return fmt.Errorf("realstack: job %s: %w", j.Name, err)
			}
			continue
		}
		spec, err := j.DeploymentSpec()
		if err != nil {
			return fmt.Errorf("realstack: job %s: %w", j.Name, err)
		}
		fd := envtest.NewFlinkDeployment(o.Namespace, j.Name)
		if err := unstructured.SetNestedField(fd.Object, spec, "spec"); err != nil {
			return fmt.Errorf("realstack: FlinkDeployment %s: %w", j.Name, err)
		}
		fd.SetLabels(map[string]string{"app": j.Name})
		if j.OptIn == OptInAnnotations {
			ann := map[string]string{
				optin.AnnotationEnabled:               "true",
				optin.AnnotationMode:                  string(mode),
				optin.AnnotationPollingInterval:       o.PollInterval.String(),
				optin.AnnotationFlinkRESTURL:          j.Testbed.Flink.RESTURL(),
				optin.AnnotationKafkaBootstrapServers: j.Testbed.Kafka.Bootstrap(),
				optin.AnnotationKafkaConsumerGroup:    j.consumer,
				optin.AnnotationKafkaTopics:           strings.Join(j.topics, ","),
			}
			for k, v := range j.Annotations {
				ann[k] = v
			}
			fd.SetAnnotations(ann)
		}
		if err := s.Client.Create(ctx, fd); err != nil {
			return fmt.Errorf("realstack: creating FlinkDeployment %s: %w", j.Key, err)
		}
		if j.OptIn == OptInAnnotations || j.OptIn == OptInNone {
			continue
		}
		if err := s.createPolicy(ctx, o, j, v1alpha1.TargetRef{Name: j.Name}, mode); err != nil {
			return fmt.Errorf("realstack: %w", err)
		}
	}
	return nil
}

// createPolicy creates a job's policy for target: its triggers, the
// stack's polling interval, then the job's own edits.
func (s *Stack) createPolicy(ctx context.Context, o Options, j *Job, target v1alpha1.TargetRef, mode v1alpha1.Mode) error {
	pol := &v1alpha1.FlinkScalingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: j.Name}}
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef:       target,
		Mode:            mode,
		PollingInterval: &metav1.Duration{Duration: o.PollInterval},
		Triggers:        j.triggers(),
	}
	if j.Policy != nil {
		j.Policy(pol)
	}
	if err := s.Client.Create(ctx, pol); err != nil {
		return fmt.Errorf("creating FlinkScalingPolicy %s: %w", j.Key, err)
	}
	return nil
}

// triggers are the job's policy's: its consumer group on its broker, and
// its testbed's REST API.
func (j *Job) triggers() *v1alpha1.Triggers {
	return &v1alpha1.Triggers{
		Kafka: []v1alpha1.KafkaTrigger{{
			Name: j.Name, BootstrapServers: []string{j.Testbed.Kafka.Bootstrap()},
			ConsumerGroup: j.consumer, Topics: j.topics,
		}},
		FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: j.Testbed.Flink.RESTURL()}},
	}
}

// Policy reads a job's policy.
func (s *Stack) Policy(ctx context.Context, j *Job) (*v1alpha1.FlinkScalingPolicy, error) {
	p := &v1alpha1.FlinkScalingPolicy{}
	if err := s.Client.Get(ctx, j.Key, p); err != nil {
		return nil, fmt.Errorf("realstack: policy %s: %w", j.Key, err)
	}
	return p, nil
}

// Deployment reads a job's FlinkDeployment.
func (s *Stack) Deployment(ctx context.Context, j *Job) (*unstructured.Unstructured, error) {
	fd := envtest.NewFlinkDeployment(j.Key.Namespace, j.Key.Name)
	if err := s.Client.Get(ctx, j.Key, fd); err != nil {
		return nil, fmt.Errorf("realstack: FlinkDeployment %s: %w", j.Key, err)
	}
	return fd, nil
}

// Lag is the job's consumer-group lag on the broker now, in records: the
// end offsets minus the group's committed offsets (Flink commits them on
// checkpoints), over every partition of its topics. A partition without a
// commit counts from its start offset.
func (j *Job) Lag(ctx context.Context) (int64, error) {
	ends, err := j.admin.ListEndOffsets(ctx, j.topics...)
	if err != nil {
		return 0, fmt.Errorf("realstack: end offsets: %w", err)
	}
	starts, err := j.admin.ListStartOffsets(ctx, j.topics...)
	if err != nil {
		return 0, fmt.Errorf("realstack: start offsets: %w", err)
	}
	committed, err := j.admin.FetchOffsets(ctx, j.consumer)
	if err != nil {
		return 0, fmt.Errorf("realstack: committed offsets of %s: %w", j.consumer, err)
	}
	var lag int64
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			errs = append(errs, e.Err)
			return
		}
		at := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			at = s.Offset
		}
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		lag += max(0, e.Offset-at)
	})
	return lag, errors.Join(errs...)
}

// Stop stops the manager and every testbed; it is idempotent.
func (s *Stack) Stop() error {
	s.once.Do(func() {
		var errs []error
		if s.stopMgr != nil {
			s.stopMgr()
			if err := <-s.mgrDone; err != nil {
				errs = append(errs, fmt.Errorf("manager: %w", err))
			}
		}
		for _, j := range s.Jobs {
			if j.adminCl != nil {
				j.adminCl.Close()
			}
			if j.Cluster != nil {
				if err := j.Cluster.Close(); err != nil {
					errs = append(errs, fmt.Errorf("job %s: deployer: %w", j.Name, err))
				}
			}
			if j.Testbed != nil {
				if err := j.Testbed.Stop(); err != nil {
					errs = append(errs, fmt.Errorf("job %s: testbed: %w", j.Name, err))
				}
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
