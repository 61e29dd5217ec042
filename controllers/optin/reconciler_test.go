package optin

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/test/envtest"
)

// TestMain shares one control plane between the tests of the package (the
// pure tests do not use it).
func TestMain(m *testing.M) { envtest.Main(m) }

// rig is a control plane with the FlinkDeployment and FlinkScalingPolicy
// CRDs, a fresh namespace, and a Reconciler driven by hand.
type rig struct {
	t   *testing.T
	ctx context.Context
	env *envtest.Env
	c   client.Client
	ns  string
	rec *record.FakeRecorder
	r   *Reconciler
}

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(s))
	require.NoError(t, v1alpha1.AddToScheme(s))
	return s
}

func newRig(t *testing.T) *rig {
	t.Helper()
	root, err := envtest.RepoRoot()
	require.NoError(t, err)
	env := envtest.Start(t, envtest.WithCRDPaths(filepath.Join(root, "config", "crd")))
	c, err := client.New(env.Config, client.Options{Scheme: testScheme(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	rec := record.NewFakeRecorder(100)
	return &rig{
		t: t, ctx: ctx, env: env, c: c, ns: env.CreateNamespace(t, "optin"), rec: rec,
		r: &Reconciler{Client: c, Recorder: rec},
	}
}

// fdSpec is a valid FlinkDeployment spec (as in test/fakeoperator) with
// extra flinkConfiguration entries.
func fdSpec(conf map[string]any) map[string]any {
	fc := map[string]any{
		"taskmanager.numberOfTaskSlots": "2",
		"state.savepoints.dir":          "s3://bucket/savepoints",
	}
	for k, v := range conf {
		fc[k] = v
	}
	return map[string]any{
		"flinkVersion":       "v1_18",
		"mode":               "native",
		"image":              "flink:1.18",
		"serviceAccount":     "flink",
		"flinkConfiguration": fc,
		"job": map[string]any{
			"jarURI":      "local:///opt/flink/usrlib/orders.jar",
			"parallelism": int64(2),
			"upgradeMode": "savepoint",
			"state":       "running",
		},
		"jobManager":  map[string]any{"replicas": int64(1), "resource": map[string]any{"cpu": int64(1), "memory": "2048m"}},
		"taskManager": map[string]any{"resource": map[string]any{"cpu": 1.5, "memory": "4096m"}},
	}
}

func (g *rig) createFD(name string, annotations map[string]string, conf map[string]any) *unstructured.Unstructured {
	g.t.Helper()
	fd := envtest.NewFlinkDeployment(g.ns, name)
	fd.Object["spec"] = fdSpec(conf)
	fd.SetAnnotations(annotations)
	require.NoError(g.t, g.c.Create(g.ctx, fd))
	return fd
}

func (g *rig) fd(name string) *unstructured.Unstructured {
	g.t.Helper()
	fd := target.New()
	require.NoError(g.t, g.c.Get(g.ctx, types.NamespacedName{Namespace: g.ns, Name: name}, fd))
	return fd
}

// annotate sets (or, for an empty value, removes) annotations of a
// FlinkDeployment.
func (g *rig) annotate(name string, set map[string]string) {
	g.t.Helper()
	fd := g.fd(name)
	ann := fd.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	for k, v := range set {
		if v == "" {
			delete(ann, k)
		} else {
			ann[k] = v
		}
	}
	fd.SetAnnotations(ann)
	require.NoError(g.t, g.c.Update(g.ctx, fd))
}

func (g *rig) reconcile(name string) {
	g.t.Helper()
	res, err := g.r.Reconcile(g.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: g.ns, Name: name}})
	require.NoError(g.t, err)
	assert.Equal(g.t, ctrl.Result{}, res)
}

// policy returns the policy named name, or nil if there is none.
func (g *rig) policy(name string) *v1alpha1.FlinkScalingPolicy {
	g.t.Helper()
	p := &v1alpha1.FlinkScalingPolicy{}
	err := g.c.Get(g.ctx, types.NamespacedName{Namespace: g.ns, Name: name}, p)
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(g.t, err)
	return p
}

// events drains the recorded events ("Type Reason message").
func (g *rig) events() []string {
	var out []string
	for {
		select {
		case e := <-g.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func reasons(events []string) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		f := strings.Fields(e)
		out = append(out, f[0]+" "+f[1])
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// expected is what PolicySpec makes of a deployment.
func expected(t *testing.T, fd *unstructured.Unstructured) (v1alpha1.FlinkScalingPolicySpec, []Warning) {
	t.Helper()
	conf, err := target.FlinkConfiguration(fd)
	require.NoError(t, err)
	spec, warns, err := PolicySpec(fd.GetName(), fd.GetAnnotations(), conf)
	require.NoError(t, err)
	return spec, warns
}

func TestReconcileCreatesPolicy(t *testing.T) {
	g := newRig(t)
	fd := g.createFD("orders", map[string]string{
		AnnotationEnabled:        "true",
		AnnotationMode:           "apply",
		AnnotationMaxParallelism: "48",
		AnnotationPausedScaleIn:  "true",
		"flinkscale.io/typo":     "x", // a warning
	}, nil)
	g.reconcile("orders")

	p := g.policy("orders")
	require.NotNil(t, p)
	want, warns := expected(t, fd)
	require.Len(t, warns, 1, "the unknown annotation")

	// The stored spec is PolicySpec's with the CRD defaults filled in.
	assert.Equal(t, defaulted(want), p.Spec)
	// What `kubectl get fsp` shows, and defaults the API server applied.
	assert.Equal(t, "orders", p.Spec.TargetRef.Name)
	assert.Equal(t, "FlinkDeployment", p.Spec.TargetRef.Kind)
	assert.Equal(t, v1alpha1.ModeApply, p.Spec.Mode)
	assert.Equal(t, int32(48), *p.Spec.MaxParallelism)
	require.NotNil(t, p.Spec.PollingInterval)
	assert.Equal(t, 30*time.Second, p.Spec.PollingInterval.Duration)
	require.NotNil(t, p.Spec.Utilization)
	assert.InDelta(t, 0.7, *p.Spec.Utilization.Target, 1e-12)
	assert.Equal(t, "auto", p.Spec.Resources.SlotsPerTaskManager.String())

	assert.Equal(t, map[string]string{LabelManagedBy: ManagedBy}, p.Labels)
	assert.Equal(t, map[string]string{AnnotationPausedScaleIn: "true"}, p.Annotations)
	require.Len(t, p.OwnerReferences, 1)
	ref := p.OwnerReferences[0]
	assert.Equal(t, "flink.apache.org/v1beta1", ref.APIVersion)
	assert.Equal(t, "FlinkDeployment", ref.Kind)
	assert.Equal(t, "orders", ref.Name)
	assert.Equal(t, fd.GetUID(), ref.UID)
	assert.True(t, *ref.Controller)
	assert.True(t, *ref.BlockOwnerDeletion)

	ev := g.events()
	assert.Equal(t, []string{"Normal PolicyCreated", "Normal OptInWarning"}, reasons(ev))
	assert.Contains(t, ev[1], "flinkscale.io/typo")

	// Nothing changed: no write, no event.
	g.reconcile("orders")
	assert.Equal(t, p.ResourceVersion, g.policy("orders").ResourceVersion)
	assert.Empty(t, g.events())
}

func TestReconcileCarriesAutoscalerOptions(t *testing.T) {
	g := newRig(t)
	fd := g.createFD("enricher", map[string]string{AnnotationEnabled: "true"}, map[string]any{
		"job.autoscaler.enabled":                "false",
		"job.autoscaler.utilization.target":     "0.6",
		"job.autoscaler.vertex.max-parallelism": "24",
		"job.autoscaler.metrics.window":         "10 min",
		"job.autoscaler.scale-down.interval":    "30 min",
		"job.autoscaler.scale-up.max-factor":    "1.5",
		"job.autoscaler.memory.tuning.enabled":  "true", // no equivalent: a warning
	})
	g.reconcile("enricher")

	p := g.policy("enricher")
	require.NotNil(t, p)
	want, warns := expected(t, fd)
	assert.Equal(t, defaulted(want), p.Spec)
	// 0.6 ± the operator's boundary 0.3.
	assert.InDelta(t, 0.6, *p.Spec.Utilization.Target, 1e-12)
	assert.InDelta(t, 0.9, *p.Spec.Utilization.Max, 1e-12)
	assert.InDelta(t, 0.3, *p.Spec.Utilization.Min, 1e-12)
	assert.Equal(t, int32(24), *p.Spec.MaxParallelism)
	assert.Equal(t, 10*time.Minute, p.Spec.MetricsWindow.Duration)
	assert.Equal(t, 30*time.Minute, p.Spec.Behavior.ScaleDown.StabilizationWindow.Duration)
	assert.InDelta(t, 2.5, *p.Spec.Behavior.ScaleUp.MaxFactor, 1e-12)

	require.NotEmpty(t, warns)
	assert.Equal(t, append([]string{"Normal PolicyCreated"}, repeat("Normal OptInWarning", len(warns))...), reasons(g.events()))
}

func TestReconcileUpdatesPolicy(t *testing.T) {
	g := newRig(t)
	g.createFD("orders", map[string]string{
		AnnotationEnabled:        "true",
		AnnotationMaxParallelism: "48",
		AnnotationPausedScaleIn:  "true",
	}, nil)
	g.reconcile("orders")
	g.events()

	// The policy controller writes a status; a user adds a label and an
	// annotation of their own.
	p := g.policy("orders")
	p.Status.CurrentParallelism = "4,8"
	p.Status.LagRecords = 1234
	require.NoError(t, g.c.Status().Update(g.ctx, p))
	p = g.policy("orders")
	p.Labels["team"] = "payments"
	p.Annotations["note"] = "watched by on-call"
	require.NoError(t, g.c.Update(g.ctx, p))
	before := g.policy("orders")

	g.annotate("orders", map[string]string{
		AnnotationMaxParallelism: "64",
		AnnotationPausedScaleIn:  "",
		AnnotationPausedScaleOut: "false",
	})
	g.reconcile("orders")

	after := g.policy("orders")
	want, _ := expected(t, g.fd("orders"))
	assert.Equal(t, defaulted(want), after.Spec)
	assert.Equal(t, int32(64), *after.Spec.MaxParallelism)
	assert.NotEqual(t, before.ResourceVersion, after.ResourceVersion)
	assert.Equal(t, map[string]string{"note": "watched by on-call", AnnotationPausedScaleOut: "false"}, after.Annotations)
	assert.Equal(t, map[string]string{LabelManagedBy: ManagedBy, "team": "payments"}, after.Labels)
	assert.Equal(t, before.Status, after.Status, "the status survives the update")
	assert.Equal(t, "4,8", after.Status.CurrentParallelism)
	ev := g.events()
	assert.Equal(t, []string{"Normal PolicyUpdated"}, reasons(ev))
	assert.Contains(t, ev[0], "spec")
	assert.Contains(t, ev[0], AnnotationPausedScaleIn)

	// Unchanged: no write, no event.
	g.reconcile("orders")
	assert.Equal(t, after.ResourceVersion, g.policy("orders").ResourceVersion)
	assert.Empty(t, g.events())

	// A hand edit of the managed spec is put back.
	after.Spec.MaxParallelism = ptr(int32(7))
	require.NoError(t, g.c.Update(g.ctx, after))
	g.reconcile("orders")
	assert.Equal(t, int32(64), *g.policy("orders").Spec.MaxParallelism)
	assert.Equal(t, []string{"Normal PolicyUpdated"}, reasons(g.events()))
}

func TestReconcileDeletesPolicyOnOptOut(t *testing.T) {
	for _, optOut := range []map[string]string{
		{AnnotationEnabled: ""},      // removed
		{AnnotationEnabled: "false"}, // any value but "true"
	} {
		g := newRig(t)
		g.createFD("orders", map[string]string{AnnotationEnabled: "true"}, nil)
		g.reconcile("orders")
		require.NotNil(t, g.policy("orders"))
		g.events()

		g.annotate("orders", optOut)
		g.reconcile("orders")
		assert.Nil(t, g.policy("orders"))
		assert.Equal(t, []string{"Normal PolicyDeleted"}, reasons(g.events()))

		g.reconcile("orders")
		assert.Empty(t, g.events())
	}
}

func TestReconcileLeavesUsersPolicy(t *testing.T) {
	g := newRig(t)
	own := &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "orders"},
		Spec: v1alpha1.FlinkScalingPolicySpec{
			TargetRef:      v1alpha1.TargetRef{Name: "orders"},
			Mode:           v1alpha1.ModeApply,
			MaxParallelism: ptr(int32(12)),
		},
	}
	require.NoError(t, g.c.Create(g.ctx, own))
	other := &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "billing"},
		Spec:       v1alpha1.FlinkScalingPolicySpec{TargetRef: v1alpha1.TargetRef{Name: "payments"}},
	}
	require.NoError(t, g.c.Create(g.ctx, other))
	g.createFD("orders", map[string]string{AnnotationEnabled: "true", AnnotationMaxParallelism: "48"}, nil)
	g.createFD("billing", map[string]string{AnnotationEnabled: "true"}, nil)

	g.reconcile("orders")
	got := g.policy("orders")
	assert.Equal(t, own.ResourceVersion, got.ResourceVersion)
	assert.Equal(t, int32(12), *got.Spec.MaxParallelism)
	assert.Empty(t, got.OwnerReferences)
	ev := g.events()
	require.Equal(t, []string{"Warning PolicyConflict"}, reasons(ev))
	assert.Contains(t, ev[0], `FlinkScalingPolicy "orders" already exists and is not managed by the flinkscale.io/enabled annotation`)
	assert.Contains(t, ev[0], "your own policy")

	g.reconcile("billing")
	assert.Equal(t, other.ResourceVersion, g.policy("billing").ResourceVersion)
	ev = g.events()
	require.Equal(t, []string{"Warning PolicyConflict"}, reasons(ev))
	assert.Contains(t, ev[0], `it targets FlinkDeployment "payments"`)

	// Opting out never deletes a policy the deployment does not control.
	g.annotate("orders", map[string]string{AnnotationEnabled: ""})
	g.reconcile("orders")
	assert.Equal(t, own.ResourceVersion, g.policy("orders").ResourceVersion)
	assert.Empty(t, g.events())
}

func TestReconcileInvalidAnnotation(t *testing.T) {
	g := newRig(t)

	// A new deployment with a bad value gets no policy.
	g.createFD("fresh", map[string]string{AnnotationEnabled: "true", AnnotationMaxParallelism: "lots"}, nil)
	g.reconcile("fresh")
	assert.Nil(t, g.policy("fresh"))
	ev := g.events()
	require.Equal(t, []string{"Warning InvalidAnnotation"}, reasons(ev))
	assert.Contains(t, ev[0], `flinkscale.io/max-parallelism: invalid value "lots"`)

	// An existing policy is left as it is.
	g.createFD("orders", map[string]string{AnnotationEnabled: "true", AnnotationMaxParallelism: "48"}, nil)
	g.reconcile("orders")
	before := g.policy("orders")
	g.events()
	g.annotate("orders", map[string]string{AnnotationMaxParallelism: "0", AnnotationPausedScaleIn: "true"})
	g.reconcile("orders")
	after := g.policy("orders")
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion)
	assert.Equal(t, int32(48), *after.Spec.MaxParallelism)
	assert.Empty(t, after.Annotations)
	ev = g.events()
	require.Equal(t, []string{"Warning InvalidAnnotation"}, reasons(ev))
	assert.Contains(t, ev[0], "flinkscale.io/max-parallelism")
}

func TestReconcileDeploymentGone(t *testing.T) {
	g := newRig(t)
	g.reconcile("never-created")
	assert.Empty(t, g.events())
}

// TestDefaultedMatchesCRD checks defaulted against the API server's
// defaulting of the CRD, for specs beyond the ones PolicySpec makes.
func TestDefaultedMatchesCRD(t *testing.T) {
	g := newRig(t)
	secret := &v1alpha1.AuthenticationRef{Name: "creds"}
	for i, spec := range []v1alpha1.FlinkScalingPolicySpec{
		{TargetRef: v1alpha1.TargetRef{Name: "a"}},
		{
			TargetRef: v1alpha1.TargetRef{Name: "b"},
			Triggers: &v1alpha1.Triggers{
				Kafka:        []v1alpha1.KafkaTrigger{{BootstrapServers: []string{"kafka:9092"}, ConsumerGroup: "g", AuthenticationRef: secret}},
				FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{AuthenticationRef: secret}},
			},
			Behavior:    &v1alpha1.Behavior{ScaleUp: &v1alpha1.ScaleUpRules{MaxFactor: ptr(3.0)}},
			Utilization: &v1alpha1.Utilization{Target: ptr(0.5)},
		},
		{
			TargetRef: v1alpha1.TargetRef{Name: "c"},
			Triggers:  &v1alpha1.Triggers{FlinkMetrics: &v1alpha1.FlinkMetricsSource{Prometheus: &v1alpha1.PrometheusReporterSource{}}},
			Resources: &v1alpha1.Resources{MaxCores: 8},
		},
		{
			TargetRef: v1alpha1.TargetRef{Name: "d"},
			Triggers:  &v1alpha1.Triggers{FlinkMetrics: &v1alpha1.FlinkMetricsSource{PromQL: &v1alpha1.PromQLSource{URL: "http://prom:9090", AuthenticationRef: secret}}},
		},
	} {
		p := &v1alpha1.FlinkScalingPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: spec.TargetRef.Name},
			Spec:       *spec.DeepCopy(),
		}
		require.NoError(t, g.c.Create(g.ctx, p), "spec %d", i)
		assert.Equal(t, defaulted(spec), g.policy(p.Name).Spec, "spec %d", i)
	}
}

// TestReconcilerUnderManager runs the Reconciler in a real manager: the
// watches, the cache and the owner-reference mapping.
func TestReconcilerUnderManager(t *testing.T) {
	g := newRig(t)
	g.underManager(&Reconciler{Recorder: record.NewFakeRecorder(100)})

	fd := g.createFD("orders", map[string]string{AnnotationEnabled: "true", AnnotationMaxParallelism: "48"}, nil)
	require.Eventually(t, func() bool {
		p := g.policy("orders")
		return p != nil && metav1.IsControlledBy(p, fd)
	}, 30*time.Second, 100*time.Millisecond, "the policy appears")

	// An annotation edit reaches the policy.
	g.annotate("orders", map[string]string{AnnotationMaxParallelism: "64"})
	require.Eventually(t, func() bool {
		p := g.policy("orders")
		return p != nil && p.Spec.MaxParallelism != nil && *p.Spec.MaxParallelism == 64
	}, 30*time.Second, 100*time.Millisecond, "the policy follows the annotation")

	// Deleting the managed policy by hand brings it back (Owns).
	require.NoError(t, g.c.Delete(g.ctx, g.policy("orders")))
	require.Eventually(t, func() bool {
		p := g.policy("orders")
		return p != nil && p.DeletionTimestamp == nil && *p.Spec.MaxParallelism == 64
	}, 30*time.Second, 100*time.Millisecond, "the policy is recreated")

	// Opting out deletes it.
	g.annotate("orders", map[string]string{AnnotationEnabled: "false"})
	require.Eventually(t, func() bool { return g.policy("orders") == nil }, 30*time.Second, 100*time.Millisecond, "the policy goes")
}

// underManager runs r under a manager on the rig's control plane until the
// test ends.
func (g *rig) underManager(r *Reconciler) {
	t := g.t
	mgr, err := ctrl.NewManager(g.env.Config, ctrl.Options{
		Scheme:                 testScheme(t),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	require.NoError(t, err)
	require.NoError(t, r.SetupWithManager(mgr))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("the manager did not stop")
		}
	})
}

// The shard labels of a deployment follow it to its policy, so that the
// controller replica whose selector matches the deployment also sees the
// policy.
func TestReconcileCopiesShardLabels(t *testing.T) {
	g := newRig(t)
	g.r.CopyLabels = []string{"flinkscale.io/shard"}
	fd := g.createFD("orders", map[string]string{AnnotationEnabled: "true"}, nil)
	fd.SetLabels(map[string]string{"flinkscale.io/shard": "a", "team": "data"})
	require.NoError(t, g.c.Update(g.ctx, fd))
	g.reconcile("orders")
	assert.Equal(t, map[string]string{LabelManagedBy: ManagedBy, "flinkscale.io/shard": "a"}, g.policy("orders").Labels,
		"only the shard label is copied")

	fd = g.fd("orders")
	fd.SetLabels(map[string]string{"flinkscale.io/shard": "b"})
	require.NoError(t, g.c.Update(g.ctx, fd))
	g.reconcile("orders")
	assert.Equal(t, "b", g.policy("orders").Labels["flinkscale.io/shard"], "moved to another shard")
}
