package realstack

import (
	"context"
	"fmt"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/test/sim"
)

// A standalone job runs on its testbed as a Flink cluster on Kubernetes
// without the operator: a JobManager Deployment and a TaskManager
// Deployment stand for its pods, the job is submitted to Flink directly, and
// its policy targets the JobManager Deployment (flinkscale's REST path).
// The stack's kubelet plays the TaskManager Deployment: its replicas are
// the testbed's TaskManager processes.

// LabelStandaloneJob marks the Deployments of a standalone job (its name).
const LabelStandaloneJob = "realstack.flinkscale.io/job"

// JobManagerDeployment and TaskManagerDeployment name a standalone job's
// Deployments.
func (j *Job) JobManagerDeployment() string  { return j.Name + "-jobmanager" }
func (j *Job) TaskManagerDeployment() string { return j.Name + "-taskmanager" }

// standaloneDeployment is a Deployment of a standalone job's component.
func standaloneDeployment(ns, name, job, component string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": job, "component": component, LabelStandaloneJob: job}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": job, "component": component}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: component, Image: "flink:1.20", Args: []string{component},
				}}},
			},
		},
	}
}

// createStandalone submits a standalone job to its testbed and creates its
// Deployments and its policy (kind Deployment, with the TaskManager
// Deployment named).
func (s *Stack) createStandalone(ctx context.Context, o Options, j *Job, mode v1alpha1.Mode) error {
	sc := j.Testbed.Realised.Scaled.Job
	over := map[string]int{}
	for _, v := range sc.Vertices {
		id, ok := j.Cluster.VertexID(v.Name)
		if !ok {
			return fmt.Errorf("no job vertex id for %q", v.Name)
		}
		over[id] = v.Parallelism
	}
	slots := sc.TaskManager.Slots
	if j.Slots > 0 {
		slots = j.Slots
	}
	if err := j.Cluster.Submit(sim.Submission{Overrides: over, SlotsPerTaskManager: slots}); err != nil {
		return fmt.Errorf("submitting the standalone job: %w", err)
	}
	tms := int32(max(1, j.Cluster.TaskManagerCount()))
	for _, d := range []*appsv1.Deployment{
		standaloneDeployment(o.Namespace, j.JobManagerDeployment(), j.Name, "jobmanager", 1),
		standaloneDeployment(o.Namespace, j.TaskManagerDeployment(), j.Name, "taskmanager", tms),
	} {
		if err := s.Client.Create(ctx, d); err != nil {
			return fmt.Errorf("creating Deployment %s: %w", d.Name, err)
		}
	}
	return s.createPolicy(ctx, o, j, v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: v1alpha1.KindDeployment,
		Name: j.JobManagerDeployment(), TaskManagerDeployment: j.TaskManagerDeployment()}, mode)
}

// kubelet plays the TaskManager Deployments of standalone jobs: a change of
// replicas starts or stops the testbed's TaskManager processes, and the
// Deployment's status reports them ready.
type kubelet struct {
	client client.Client
	mu     sync.Mutex
	jobs   map[types.NamespacedName]*Job // by TaskManager Deployment
}

func (k *kubelet) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("realstack-kubelet").
		For(&appsv1.Deployment{}).
		WithOptions(controller.Options{SkipNameValidation: ptr(true)}).
		Complete(k)
}

func ptr[T any](v T) *T { return &v }

// Reconcile sizes the job's TaskManagers to its Deployment's replicas.
func (k *kubelet) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	k.mu.Lock()
	j := k.jobs[req.NamespacedName]
	k.mu.Unlock()
	if j == nil {
		return ctrl.Result{}, nil
	}
	var d appsv1.Deployment
	if err := k.client.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	if j.Cluster.TaskManagerCount() != want {
		if err := j.Cluster.ScaleTaskManagers(ctx, want); err != nil {
			return ctrl.Result{}, fmt.Errorf("TaskManagers of %s: %w", j.Name, err)
		}
	}
	n := int32(j.Cluster.TaskManagerCount())
	if d.Status.Replicas == n && d.Status.ReadyReplicas == n && d.Status.ObservedGeneration == d.Generation {
		return ctrl.Result{}, nil
	}
	d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = n, n, n, n
	d.Status.ObservedGeneration = d.Generation
	if err := k.client.Status().Update(ctx, &d); err != nil && !apierrors.IsConflict(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// standaloneJobs says whether any job is standalone.
func standaloneJobs(jobs []*Job) bool {
	for _, j := range jobs {
		if j.Standalone {
			return true
		}
	}
	return false
}

// TaskManagerReplicas reads a standalone job's TaskManager Deployment's
// replicas.
func (s *Stack) TaskManagerReplicas(ctx context.Context, j *Job) (int, error) {
	var d appsv1.Deployment
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: j.Key.Namespace, Name: j.TaskManagerDeployment()}, &d); err != nil {
		return 0, fmt.Errorf("realstack: %s: %w", strings.ToLower(j.TaskManagerDeployment()), err)
	}
	if d.Spec.Replicas == nil {
		return 1, nil
	}
	return int(*d.Spec.Replicas), nil
}
