package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/controllers/shard"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// controllerConfig is the controller's command line.
type controllerConfig struct {
	kubeconfig        string
	metricsAddr       string
	probeAddr         string
	leaderElect       bool
	leaderElectionID  string
	leaderElectionNS  string
	namespaces        string
	shardSelector     string
	shards            int
	shardIdentity     string
	concurrency       int
	flinkTimeout      time.Duration
	rescaleTimeout    time.Duration
	rescaleBackoff    time.Duration
	disableOptIn      bool
	gracefulShutdown  time.Duration
	statusRefresh     time.Duration
	vertexDetail      bool
	zapOpts           zap.Options
	restConfigForTest *rest.Config
}

// controllerFlags defines the controller's flags on fs, and the zap
// logger's (--zap-log-level, --zap-encoder, ...).
func controllerFlags(cfg *controllerConfig, fs *pflag.FlagSet) {
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&cfg.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (\"0\" disables it)")
	fs.StringVar(&cfg.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes (\"0\" disables them)")
	fs.BoolVar(&cfg.leaderElect, "leader-elect", true, "elect a leader so that only one replica acts (a Lease)")
	fs.StringVar(&cfg.leaderElectionID, "leader-election-id", "flinkscale.io", "name of the leader election Lease (give each shard its own)")
	fs.StringVar(&cfg.leaderElectionNS, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace)")
	fs.StringVar(&cfg.namespaces, "namespaces", "", "comma-separated namespaces to watch (default: all)")
	fs.StringVar(&cfg.shardSelector, "shard-selector", "", "label selector on FlinkDeployments and FlinkScalingPolicies: replicas with disjoint selectors split a fleet (e.g. flinkscale.io/shard=a)")
	fs.IntVar(&cfg.shards, "shards", 1, "split the policies over this many shards, each a Lease <leader-election-id>-shard-<i> held by one replica (1: one leader does all; >1 turns --leader-elect off)")
	fs.StringVar(&cfg.shardIdentity, "shard-identity", "", "this replica's name in the shard Leases; a StatefulSet ordinal suffix (-2) makes that shard its home (default: $POD_NAME, else the hostname)")
	fs.IntVar(&cfg.concurrency, "max-concurrent-reconciles", 4, "policies reconciled at once")
	fs.DurationVar(&cfg.flinkTimeout, "flink-timeout", 10*time.Second, "timeout of each Flink REST or Prometheus request")
	fs.DurationVar(&cfg.rescaleTimeout, "rescale-timeout", controllers.DefaultRescaleTimeout, "a rescale not complete after this long fails")
	fs.DurationVar(&cfg.rescaleBackoff, "rescale-backoff", controllers.DefaultRescaleBackoff, "wait after a failed rescale before the next (doubles per failure, up to 2h)")
	fs.BoolVar(&cfg.disableOptIn, "disable-opt-in", false, "do not create policies for FlinkDeployments annotated flinkscale.io/enabled")
	fs.DurationVar(&cfg.statusRefresh, "status-refresh", controllers.DefaultStatusRefresh, "write a steady policy's status (decision time, numbers, lag) at most this often; changes that matter are written at once (0: every poll)")
	fs.BoolVar(&cfg.vertexDetail, "vertex-detail-metrics", true, "export every policy's per-vertex detail metrics (utilization, rates, backpressure: five series per vertex); false: only policies annotated flinkscale.io/vertex-metrics=true")
	fs.DurationVar(&cfg.gracefulShutdown, "graceful-shutdown-timeout", 30*time.Second, "how long in-flight reconciles may finish on shutdown")
	// controller-runtime's zap options bind to a standard library flag set.
	zapFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	cfg.zapOpts = zap.Options{Development: false}
	cfg.zapOpts.BindFlags(zapFlags)
	fs.AddGoFlagSet(zapFlags)
}

func newControllerCommand(a *app) *cobra.Command {
	var cfg controllerConfig
	cmd := &cobra.Command{
		Use:   "controller [--kubeconfig FILE] [--namespaces a,b] [--shard-selector SEL] [--leader-elect=true] [flags]",
		Short: "Run the Kubernetes controller",
		Long: `Run the Kubernetes controller: FlinkScalingPolicy resources and
FlinkDeployments, FlinkSessionJobs and Deployments annotated
flinkscale.io/enabled. Interrupt or SIGTERM stops it gracefully: in-flight
reconciles finish (--graceful-shutdown-timeout) and the leader Lease is
released.`,
		Example: examplesFor(`  flinkscale controller --kubeconfig ~/.kube/config --leader-elect=false --zap-log-level=debug`),
		GroupID: groupOperate,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runManager(cmd.Context(), cfg, a.stderr)
		},
	}
	controllerFlags(&cfg, cmd.Flags())
	anyFiles(cmd, "kubeconfig")
	fixedValues(cmd, "zap-log-level", "debug", "info", "error")
	fixedValues(cmd, "zap-encoder", "json", "console")
	return cmd
}

// shardKeys are the label keys a selector constrains (copied from
// deployments to their policies).
func shardKeys(sel labels.Selector) []string {
	reqs, _ := sel.Requirements()
	var out []string
	for _, r := range reqs {
		if r.Operator() != selection.DoesNotExist {
			out = append(out, r.Key())
		}
	}
	return out
}

func runManager(ctx context.Context, cfg controllerConfig, stderr io.Writer) error {
	if cfg.shards < 1 {
		return fmt.Errorf("--shards must be at least 1, not %d", cfg.shards)
	}
	logger := zap.New(zap.UseFlagOptions(&cfg.zapOpts), zap.WriteTo(stderr))
	ctrl.SetLogger(logger)
	log := logger.WithName("setup")
	if cfg.restConfigForTest == nil { // not in a test's process
		limit, why := setMemoryLimit("/sys/fs/cgroup", os.Getenv)
		log.Info("Go memory limit", "bytes", limit, "from", why)
	}

	restCfg := cfg.restConfigForTest
	if restCfg == nil {
		var err error
		if cfg.kubeconfig != "" {
			restCfg, err = clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
		} else {
			restCfg, err = ctrl.GetConfig()
		}
		if err != nil {
			return fmt.Errorf("kubernetes client configuration: %w", err)
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	// Cached objects keep only the managedFields flinkscale reads (its own
	// apply entries).
	cacheOpts := cache.Options{DefaultTransform: controllers.TrimManagedFields}
	if ns := splitList(cfg.namespaces); len(ns) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range ns {
			cacheOpts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	var copyLabels []string
	if cfg.shardSelector != "" {
		sel, err := labels.Parse(cfg.shardSelector)
		if err != nil {
			return fmt.Errorf("--shard-selector %q: %w", cfg.shardSelector, err)
		}
		copyLabels = shardKeys(sel)
		cacheOpts.ByObject = map[client.Object]cache.ByObject{
			&v1alpha1.FlinkScalingPolicy{}:     {Label: sel},
			target.New():                       {Label: sel},
			target.NewOf(target.SessionJobGVK): {Label: sel},
			deploymentMetadata():               {Label: sel},
		}
	}
	if cfg.shards > 1 {
		// The shard Leases gate every reconcile: all replicas run.
		cfg.leaderElect = false
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOpts,
		// FlinkDeployments are read as unstructured objects: from the
		// informer the watches keep anyway, not with a GET per poll.
		Client:                  client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                 metricsserver.Options{BindAddress: cfg.metricsAddr},
		HealthProbeBindAddress:  cfg.probeAddr,
		LeaderElection:          cfg.leaderElect,
		LeaderElectionID:        cfg.leaderElectionID,
		LeaderElectionNamespace: cfg.leaderElectionNS,
		// The new leader starts at once when the old one steps down
		// (SIGTERM on a rolling update) instead of waiting the lease out.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &cfg.gracefulShutdown,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	m := controllers.DefaultMetrics()
	m.SetVertexDetail(cfg.vertexDetail)
	rec := &controllers.PolicyReconciler{
		Metrics:           m,
		Client:            mgr.GetClient(),
		APIReader:         mgr.GetAPIReader(),
		Sources:           &controllers.ClientSources{Reader: mgr.GetAPIReader(), Timeout: cfg.flinkTimeout},
		RescaleTimeout:    cfg.rescaleTimeout,
		RescaleBackoff:    cfg.rescaleBackoff,
		MaxRescaleBackoff: controllers.DefaultMaxRescaleBackoff,
		PrimeAhead:        true,
		StatusRefresh:     cfg.statusRefresh,
	}
	setupOpts := controllers.Options{MaxConcurrentReconciles: cfg.concurrency}
	shards, err := shardManager(cfg, restCfg, scheme, mgr, rec)
	if err != nil {
		return err
	}
	if shards != nil {
		rec.Shards = shards
		setupOpts.Wake = shards.Watch(func() client.ObjectList { return &v1alpha1.FlinkScalingPolicyList{} })
	}
	if err := rec.SetupWithManager(mgr, setupOpts); err != nil {
		return fmt.Errorf("setting up the policy controller: %w", err)
	}
	if !cfg.disableOptIn {
		for _, gvk := range []schema.GroupVersionKind{target.GVK, target.SessionJobGVK, optin.DeploymentGVK} {
			if !controllers.KindServed(mgr, gvk) {
				log.Info("kind not served by the API server: its opt-in annotations are not watched", "kind", gvk.String())
				continue
			}
			or := &optin.Reconciler{Kind: gvk, CopyLabels: copyLabels}
			if shards != nil {
				or.Shards = shards
				or.Wake = shards.Watch(optinList(gvk))
			}
			if err := or.SetupWithManager(mgr); err != nil {
				return fmt.Errorf("setting up the opt-in controller of %s: %w", gvk.Kind, err)
			}
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the caches have synced: before that a reconcile would act
	// on nothing.
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	log.Info("starting the flinkscale controller", "version", version, "namespaces", cfg.namespaces,
		"shardSelector", cfg.shardSelector, "leaderElection", cfg.leaderElect, "shards", cfg.shards)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// shardManager is the shard.Manager of --shards > 1 (nil for 1), added to
// mgr: its Leases are <leader-election-id>-shard-<i> in the Lease
// namespace, read and written with an uncached client (no Lease watch).
func shardManager(cfg controllerConfig, restCfg *rest.Config, scheme *runtime.Scheme, mgr ctrl.Manager, rec *controllers.PolicyReconciler) (*shard.Manager, error) {
	if cfg.shards <= 1 {
		return nil, nil
	}
	id := cfg.shardIdentity
	if id == "" {
		id = os.Getenv("POD_NAME")
	}
	if id == "" {
		var err error
		if id, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("--shard-identity: %w", err)
		}
	}
	ns := cfg.leaderElectionNS
	if ns == "" {
		b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return nil, errors.New("--shards: --leader-election-namespace is required outside a cluster")
		}
		ns = strings.TrimSpace(string(b))
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("lease client: %w", err)
	}
	n := cfg.shards
	sm, err := shard.New(shard.Options{
		Shards: n, Identity: id, Namespace: ns, Prefix: cfg.leaderElectionID,
		Client: c, Reader: mgr.GetCache(), Log: ctrl.Log.WithName("shards"),
		OnRelease: func(i int) {
			rec.ForgetWhere(func(k types.NamespacedName) bool { return shard.Of(k, n) == i })
		},
	})
	if err != nil {
		return nil, err
	}
	return sm, mgr.Add(sm)
}

// optinList lists the annotated objects of kind gvk as the opt-in watch
// caches them (metadata only for Deployments).
func optinList(gvk schema.GroupVersionKind) func() client.ObjectList {
	return func() client.ObjectList {
		lk := gvk.GroupVersion().WithKind(gvk.Kind + "List")
		if gvk == optin.DeploymentGVK {
			l := &metav1.PartialObjectMetadataList{}
			l.SetGroupVersionKind(lk)
			return l
		}
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(lk)
		return l
	}
}

// deploymentMetadata is the metadata-only Deployment the opt-in watch
// caches.
func deploymentMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(optin.DeploymentGVK)
	return m
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
