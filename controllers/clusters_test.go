package controllers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
)

// clusterWorld is a Flink cluster without the operator: a simulated job
// (native: Flink's ResourceManager provisions TaskManagers; standalone: a
// fixed pool the test's kubelet sizes to the TaskManager Deployment) behind
// its REST API, a JobManager Deployment (and a TaskManager Deployment) on
// a real API server, and the controller, driven in virtual time.
type clusterWorld struct {
	t     *testing.T
	ctx   context.Context
	c     client.Client
	ns    string
	live  *fixtures.LiveJob
	job   *sim.Job
	pool  *sim.Pool
	clock *clocktesting.FakeClock
	ctl   *controllers.PolicyReconciler
	rec   *eventLog
	reg   *prometheus.Registry
	pKey  types.NamespacedName
	tmKey types.NamespacedName
	next  time.Time
	// poolWant is the replicas the kubelet last gave the pool; pods the
	// TaskManager pods it keeps, by TaskManager id.
	poolWant int
	pods     map[string]bool
}

type clusterOptions struct {
	scheduler, schedulerMode string
	native                   bool
	// taskManagers > 0 runs a standalone pool of that many TaskManagers
	// and names its Deployment in the policy.
	taskManagers int
	mode         v1alpha1.Mode
}

func newClusterWorld(t *testing.T, o clusterOptions) *clusterWorld {
	t.Helper()
	env, c := fixtures.StartEnv(t)
	w := &clusterWorld{t: t, ctx: context.Background(), c: c, ns: env.CreateNamespace(t, "cluster"), rec: &eventLog{}}
	spec := fixtures.OrdersJob()
	spec.Scheduler, spec.SchedulerMode = o.scheduler, o.schedulerMode
	w.live = fixtures.StartLive(t, spec, fixtures.LiveOptions{Start: t0, Seed: 7, Rate: 1500})
	w.job = w.live.Job
	w.clock = clocktesting.NewFakeClock(t0)
	if o.taskManagers > 0 {
		w.pool, w.poolWant = sim.NewPool(o.taskManagers, 2, 10*time.Second), o.taskManagers
		w.job.UsePool(w.pool)
	}
	src, _ := w.job.VertexID("Source: orders")
	enr, _ := w.job.VertexID("Enrich -> Sink")
	require.NoError(t, w.job.Submit(sim.Submission{JobID: "0000000000000000000000000000c0de", Overrides: map[string]int{src: 2, enr: 2}, SlotsPerTaskManager: 2, Session: o.taskManagers > 0}))

	labels := map[string]string{"app": "orders", "component": "jobmanager"}
	if o.native {
		labels["type"] = "flink-native-kubernetes"
	}
	require.NoError(t, c.Create(w.ctx, deployment(w.ns, "orders", labels, 1)))
	ref := v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: v1alpha1.KindDeployment, Name: "orders"}
	if o.taskManagers > 0 {
		w.tmKey = types.NamespacedName{Namespace: w.ns, Name: "orders-taskmanager"}
		require.NoError(t, c.Create(w.ctx, deployment(w.ns, w.tmKey.Name, map[string]string{"app": "orders", "component": "taskmanager"}, int32(o.taskManagers))))
		ref.TaskManagerDeployment = w.tmKey.Name
	}
	w.reg = prometheus.NewRegistry()
	w.ctl = &controllers.PolicyReconciler{
		Client: c, APIReader: c, Recorder: w.rec, Clock: w.clock, FixedRequeue: true, Metrics: controllers.NewMetrics(w.reg),
		Sources: &controllers.ClientSources{Reader: c, Now: w.job.Now, Timeout: 5 * time.Second,
			FlinkOpts: []flink.CollectorOption{flink.WithClock(w.job.Now),
				flink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() })}},
	}
	if o.mode == "" {
		o.mode = v1alpha1.ModeApply
	}
	pol := &v1alpha1.FlinkScalingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "orders"}}
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef: ref, Mode: o.mode,
		Triggers: &v1alpha1.Triggers{
			Kafka:        []v1alpha1.KafkaTrigger{{Name: "orders", BootstrapServers: w.live.Kafka.Addrs(), ConsumerGroup: "orders", Topics: []string{"orders"}}},
			FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: w.live.REST.URL}},
		},
	}
	require.NoError(t, c.Create(w.ctx, pol))
	w.pKey = client.ObjectKeyFromObject(pol)
	return w
}

func deployment(ns, name string, labels map[string]string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "flink", Image: "flink:1.18"}}},
			},
		},
	}
}

// run advances the world by d: the job, the kubelet (the pool follows the
// TaskManager Deployment's replicas), the controller when its requeue is
// due.
func (w *clusterWorld) run(d time.Duration) {
	w.t.Helper()
	end := w.job.Now().Add(d)
	for w.job.Now().Before(end) {
		require.NoError(w.t, w.job.Advance(time.Second))
		now := w.job.Now()
		w.clock.SetTime(now)
		if w.pool != nil {
			if n := w.taskManagerReplicas(); n != w.poolWant {
				w.pool.SetTaskManagers(n)
				w.poolWant = n
			}
			w.syncPods()
		}
		reconcileDue(w.t, w.ctx, w.ctl, w.pKey, now, &w.next)
	}
}

// syncPods keeps a pod per registered TaskManager, with its IP, as the
// kubelet would: the controller finds idle TaskManagers' pods by IP.
func (w *clusterWorld) syncPods() {
	w.t.Helper()
	if w.pods == nil {
		w.pods = map[string]bool{}
	}
	live := map[string]bool{}
	for _, tm := range w.job.View().TaskManagers {
		live[tm.ID] = true
		if w.pods[tm.ID] {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: strings.ToLower(tm.ID),
			Labels: map[string]string{"app": "orders", "component": "taskmanager"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "flink", Image: "flink:1.18"}}}}
		require.NoError(w.t, w.c.Create(w.ctx, pod))
		pod.Status.PodIP = tm.Host
		require.NoError(w.t, w.c.Status().Update(w.ctx, pod))
		w.pods[tm.ID] = true
	}
	for id := range w.pods {
		if !live[id] {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: strings.ToLower(id)}}
			require.NoError(w.t, client.IgnoreNotFound(w.c.Delete(w.ctx, pod)))
			delete(w.pods, id)
		}
	}
}

// markedPods are the TaskManager pods the controller marked to go first.
func (w *clusterWorld) markedPods() []string {
	var pods corev1.PodList
	require.NoError(w.t, w.c.List(w.ctx, &pods, client.InNamespace(w.ns)))
	var out []string
	for _, p := range pods.Items {
		if p.Annotations[controllers.AnnotationPodDeletionCost] == "-1000" {
			out = append(out, p.Name)
		}
	}
	return out
}

func (w *clusterWorld) taskManagerReplicas() int {
	var d appsv1.Deployment
	require.NoError(w.t, w.c.Get(w.ctx, w.tmKey, &d))
	return int(*d.Spec.Replicas)
}

func (w *clusterWorld) policy() *v1alpha1.FlinkScalingPolicy {
	w.t.Helper()
	p := &v1alpha1.FlinkScalingPolicy{}
	require.NoError(w.t, w.c.Get(w.ctx, w.pKey, p))
	return p
}

func (w *clusterWorld) running() map[string]int { return parallelism(w.job) }

func (w *clusterWorld) rescales() []v1alpha1.RescaleRecordStatus {
	if h := w.policy().Status.History; h != nil {
		return h.Rescales
	}
	return nil
}

func (w *clusterWorld) condition(typ string) *metav1.Condition {
	return meta.FindStatusCondition(w.policy().Status.Conditions, typ)
}

// A native cluster without the operator, on the adaptive scheduler: the
// load doubles, flinkscale sets the job's resource requirements over REST,
// Flink rescales the same job in place (its ResourceManager starts the
// TaskManagers), and no Kubernetes object is written.
func TestNativeClusterRescalesInPlaceOverREST(t *testing.T) {
	w := newClusterWorld(t, clusterOptions{scheduler: "adaptive", native: true})
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales())
	p := w.policy()
	assert.Equal(t, v1alpha1.PathInPlace, p.Status.RescalePath, p.Status.RescalePathReason)
	jobID := w.job.View().Job.ID

	w.live.SetRate(3000)
	w.run(15 * time.Minute)
	rs := w.rescales()
	require.NotEmpty(t, rs, "a rescale\n%s", w.rec.dump())
	assert.Equal(t, "Succeeded", rs[0].Outcome)
	assert.Equal(t, jobID, w.job.View().Job.ID, "in place: the same job")
	run := w.running()
	assert.Greater(t, run["Enrich -> Sink"], 2)
	assert.Contains(t, w.rec.dump(), "(in place)")
	var jm appsv1.Deployment
	require.NoError(t, w.c.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: "orders"}, &jm))
	assert.Equal(t, int64(1), jm.Generation, "flinkscale never writes the JobManager Deployment")
	v, err := fixtures.Metric(w.reg, "flinkscale_policy_target_info", "kind", "Deployment", "path", v1alpha1.PathInPlace)
	require.NoError(t, err)
	assert.Equal(t, 1.0, v)
}

// A native cluster on the default scheduler: no operator could restart the
// job from a savepoint and Flink cannot rescale it in place, so the policy
// (in Apply mode) recommends, writes the report and never stops the job.
func TestDefaultSchedulerWithoutOperatorOnlyRecommends(t *testing.T) {
	w := newClusterWorld(t, clusterOptions{scheduler: "default", native: true})
	w.run(12 * time.Minute)
	jobID := w.job.View().Job.ID
	w.live.SetRate(3000)
	w.run(10 * time.Minute)

	p := w.policy()
	assert.Equal(t, v1alpha1.PathRecommendOnly, p.Status.RescalePath)
	assert.Contains(t, p.Status.RescalePathReason, "default scheduler")
	require.NotNil(t, p.Status.LastDecision)
	assert.Equal(t, "Scale", p.Status.LastDecision.Action, "the model still says what the job needs")
	c := w.condition(v1alpha1.ConditionScaling)
	require.NotNil(t, c)
	assert.Equal(t, v1alpha1.ReasonRecommendOnly, c.Reason)
	assert.Empty(t, w.rescales())
	assert.Equal(t, jobID, w.job.View().Job.ID)
	assert.Equal(t, "RUNNING", w.job.View().Job.State)
	assert.Equal(t, map[string]int{"Source: orders": 2, "Enrich -> Sink": 2}, w.running())
	var cm corev1.ConfigMap
	require.NoError(t, w.c.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: "orders" + controllers.ReportSuffix}, &cm))
	assert.Contains(t, cm.Data[controllers.ReportMarkdownKey], "rescale path **RecommendOnly**")
	assert.Equal(t, 1, w.rec.count("FlinkScalingPolicy", controllers.EventRescaleBlocked), w.rec.dump())
}

// A standalone cluster in reactive mode: the TaskManager Deployment is the
// only knob. The load doubles; flinkscale scales the Deployment, the new
// TaskManagers register, and reactive mode runs every vertex at the slots
// there are. No resource requirements are sent (reactive mode rejects
// them).
func TestReactiveClusterScalesTaskManagers(t *testing.T) {
	w := newClusterWorld(t, clusterOptions{scheduler: "adaptive", schedulerMode: "reactive", taskManagers: 1})
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales())
	assert.Equal(t, map[string]int{"Source: orders": 2, "Enrich -> Sink": 2}, w.running(), "1 TaskManager of 2 slots")
	p := w.policy()
	assert.Equal(t, v1alpha1.PathTaskManagers, p.Status.RescalePath, p.Status.RescalePathReason)

	w.live.SetRate(3000)
	w.run(15 * time.Minute)
	rs := w.rescales()
	require.NotEmpty(t, rs, "a rescale\n%s", w.rec.dump())
	assert.Equal(t, "Succeeded", rs[0].Outcome, w.rec.dump())
	replicas := w.taskManagerReplicas()
	assert.Greater(t, replicas, 1)
	// Reactive mode: every vertex at the slots of the TaskManagers (2 each).
	assert.Equal(t, map[string]int{"Source: orders": 2 * replicas, "Enrich -> Sink": 2 * replicas}, w.running())
	assert.Contains(t, w.rec.dump(), "(TaskManagers,", "the rescale event names the reactive path")
	assert.Contains(t, w.rec.dump(), "(in place)")
	t.Logf("TaskManagers 1 → %d; parallelism %v", replicas, w.running())
}

// A standalone cluster on the adaptive scheduler with its TaskManager
// Deployment named: a scale-up scales the Deployment first and sets the
// requirements; the job takes the new slots in place. When the load falls
// far enough that whole TaskManagers go idle, the requirements come down
// first and the Deployment follows once the job runs the smaller plan, by
// no more TaskManagers than are idle.
func TestStandaloneClusterScalesInPlaceAndTaskManagers(t *testing.T) {
	w := newClusterWorld(t, clusterOptions{scheduler: "adaptive", taskManagers: 1})
	w.run(12 * time.Minute)
	require.Empty(t, w.rescales())
	p := w.policy()
	assert.Equal(t, v1alpha1.PathInPlaceAndTaskManagers, p.Status.RescalePath, p.Status.RescalePathReason)
	jobID := w.job.View().Job.ID

	w.live.SetRate(4500)
	w.run(15 * time.Minute)
	rs := w.rescales()
	require.Len(t, rs, 1, "one rescale up\n%s", w.rec.dump())
	assert.Equal(t, "Succeeded", rs[0].Outcome, w.rec.dump())
	up := w.taskManagerReplicas()
	run := w.running()
	assert.Greater(t, up, 1, "the TaskManager Deployment grew")
	assert.Equal(t, jobID, w.job.View().Job.ID, "in place")
	// The job holds the slots of the TaskManagers it asked for.
	assert.LessOrEqual(t, max(run["Source: orders"], run["Enrich -> Sink"]), 2*up)
	n, _ := w.pool.TaskManagers()
	assert.Equal(t, up, n, "every replica registered")

	// The load falls to a trickle: after the scale-down stabilization
	// window the plan needs one slot per vertex.
	w.live.SetRate(300)
	w.run(50 * time.Minute)
	rs = w.rescales()
	require.GreaterOrEqual(t, len(rs), 2, "a rescale down\n%s", w.rec.dump())
	last := rs[len(rs)-1]
	assert.Equal(t, "Succeeded", last.Outcome, w.rec.dump())
	down := w.taskManagerReplicas()
	assert.Less(t, down, up, "idle TaskManagers were released\n%s", w.rec.dump())
	n, _ = w.pool.TaskManagers()
	assert.Equal(t, down, n)
	assert.Equal(t, "RUNNING", w.job.View().Job.State)
	assert.Equal(t, jobID, w.job.View().Job.ID, "never a new job: nothing stopped it")
	assert.Contains(t, w.rec.dump(), "scaled "+strconv.Itoa(up)+" → "+strconv.Itoa(down))
	// The idle TaskManagers' pods were marked to go first (the kubelet
	// deleted them with the TaskManagers; none left marked runs a task).
	assert.Contains(t, w.rec.dump(), "idle pod(s) marked to go first")
	assert.Empty(t, w.markedPods(), "the pod left runs the job's tasks: never marked")
	t.Logf("TaskManagers 1 → %d → %d; parallelism %v after the scale-up, %v now", up, down, run, w.running())
}
