package controllers

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
)

// The REST path: a Flink cluster without the operator (targetRef kind
// Deployment). flinkscale rescales the job in place through the adaptive
// scheduler's resource requirements and, when a TaskManager Deployment is
// named, scales it: up with the requirements (the scheduler rescales once
// the new TaskManagers register), down only once the job runs at the
// smaller plan, by no more TaskManagers than have every slot free, whose
// pods are marked to go first. In reactive mode the TaskManager Deployment's
// replicas are the only knob. A job on the default scheduler, or on Flink
// before 1.18, is never touched: nothing could restart it from a savepoint.

// AnnotationPodDeletionCost is the ReplicaSet controller's hint of which
// pods to remove first on a scale-down (lower first).
const AnnotationPodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// ReasonNoCheckpoints blocks an in-place rescale of a job that does not
// checkpoint: Flink restarts it from its latest checkpoint, so its state
// would be lost.
const ReasonNoCheckpoints = "NoCheckpoints"

// observeCluster reads from Flink what a cluster without the operator does
// not say in Kubernetes: the job, its state, scheduler, version and
// resource requirements.
func (c *cycle) observeCluster(src FlinkSource) error {
	ctl, ok := src.(FlinkControl)
	if !ok {
		return errors.New("the Flink metrics source cannot read the cluster over REST (kind Deployment needs Flink's REST API)")
	}
	v, err := ctl.Observe(c.ctx, c.d.JobName)
	if err != nil {
		return fmt.Errorf("reading the Flink cluster of Deployment %s over REST: %w", c.d.Name, err)
	}
	c.d.ObserveFlink(v)
	c.ctl = ctl
	return nil
}

// actREST starts a rescale on the REST path; the gates of act have passed.
func (c *cycle) actREST(dec scaling.Decision, snap scaling.Snapshot) bool {
	if (snap.Checkpoints == nil || !(float64(snap.Checkpoints.IntervalMs) > 0)) && !c.pol.Spec.AllowStatelessUpgrade {
		c.block(ReasonNoCheckpoints, "the job does not checkpoint: Flink restarts a rescaled job from its latest checkpoint, so its state would be lost; enable checkpointing, or set allowStatelessUpgrade")
		return false
	}
	path, _ := c.d.Path()
	fields := c.d.PlanFields(dec.Recommended, nil)
	if path == target.PathTaskManagers {
		fields.Overrides = "" // reactive mode takes no requirements
	}
	if c.d.Says(fields) {
		c.block(ReasonSpecAlreadyApplied, "Flink's resource requirements (and the TaskManager Deployment) already hold the recommended plan but the job does not run it yet")
		return false
	}
	prev := c.d.Managed().Only(fields)
	before, retry, ok := c.recordIntent(dec, snap, fields, prev)
	if !ok {
		return retry
	}
	undo := func(msg string) {
		c.pol.Status.Rescale, c.pol.Status.History = before.Rescale, before.History
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, msg)
		c.setStalled(v1alpha1.ReasonApplyFailed, msg)
		c.event(corev1.EventTypeWarning, EventRescaleFailed, "%s", msg)
	}
	grow := fields.TaskManagerReplicas > c.d.TaskManagerReplicas
	if path == target.PathTaskManagers || grow {
		// More TaskManagers first: the scheduler rescales once they
		// register. In reactive mode fewer, too: the job restarts on what
		// is left.
		if err := c.scaleTaskManagers(fields.TaskManagerReplicas); err != nil {
			undo(fmt.Sprintf("scaling TaskManager Deployment %s to %d: %v", c.d.TaskManagerDeployment, fields.TaskManagerReplicas, err))
			return false
		}
	}
	if fields.Overrides != "" {
		if err := c.ctl.SetParallelism(c.ctx, c.d.JobID, dec.Recommended.Parallelism); err != nil {
			msg := fmt.Sprintf("setting the resource requirements of job %s: %v", c.d.JobID, err)
			if grow {
				msg += "; " + c.scaleBack(fields.TaskManagerReplicas)
			}
			undo(msg)
			return false
		}
	}
	c.pol.Status.Rescale.TargetGeneration = max(1, c.fd.GetGeneration())
	how := map[string]string{
		target.PathInPlace:                "Flink rescales in place",
		target.PathInPlaceAndTaskManagers: "Flink rescales in place; TaskManagers follow the plan",
		target.PathTaskManagers:           "reactive mode: the TaskManager Deployment scaled",
	}[path]
	c.pol.Status.Rescale.Message = "applied: " + how
	c.pol.Status.Rescale.Phase = v1alpha1.RescaleRestarting
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionTrue, v1alpha1.ReasonRescaling,
		fmt.Sprintf("rescaling %s → %s (%s)", c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism, path))
	c.event(corev1.EventTypeNormal, EventRescaleStarted, "Rescaling %s → %s (%s, %s), predicted downtime %s: %s",
		c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism, path, coresChange(dec),
		dec.PredictedDowntime.Round(1e9), dec.Summary)
	c.log.Info("rescale started", "deployment", c.d.Name, "path", path, "from", c.pol.Status.CurrentParallelism,
		"to", c.pol.Status.RecommendedParallelism, "taskManagers", fields.TaskManagerReplicas)
	c.commit(func() {
		c.st.blocked = ""
		c.pm.rescaleStarted()
	})
	return false
}

// scaleBack returns the TaskManager Deployment to its replicas before a
// rescale whose requirements could not be set, and says how it went.
func (c *cycle) scaleBack(from int) string {
	if err := c.scaleTaskManagers(c.d.TaskManagerReplicas); err != nil {
		return fmt.Sprintf("scaling TaskManager Deployment %s back from %d to %d failed: %v", c.d.TaskManagerDeployment, from, c.d.TaskManagerReplicas, err)
	}
	return fmt.Sprintf("TaskManager Deployment %s scaled back to %d", c.d.TaskManagerDeployment, c.d.TaskManagerReplicas)
}

// scaleTaskManagers sets the TaskManager Deployment's replicas through its
// scale subresource (read, then updated at the version read).
func (c *cycle) scaleTaskManagers(n int) error {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: c.d.Namespace, Name: c.d.TaskManagerDeployment}}
	var sc autoscalingv1.Scale
	if err := c.r.Client.SubResource("scale").Get(c.ctx, dep, &sc); err != nil {
		return fmt.Errorf("reading its scale: %w", err)
	}
	if int(sc.Spec.Replicas) == n {
		return nil
	}
	sc.Spec.Replicas = int32(n)
	if err := c.r.Client.SubResource("scale").Update(c.ctx, dep, client.WithSubResourceBody(&sc)); err != nil {
		return fmt.Errorf("updating its scale: %w", err)
	}
	c.d.TaskManagerReplicas = n
	return nil
}

// releaseTaskManagers scales the TaskManager Deployment down to want once
// the job runs at a smaller plan, by no more TaskManagers than have every
// slot free (so no task is lost to a removed pod), whose pods are marked
// with the lowest deletion cost so that the ReplicaSet removes them first.
// It says what it did.
func (c *cycle) releaseTaskManagers(want int) string {
	if c.d.TaskManagerDeployment == "" || c.d.Reactive || want <= 0 || want >= c.d.TaskManagerReplicas {
		return ""
	}
	idle, err := c.ctl.IdleTaskManagers(c.ctx)
	if err != nil {
		return fmt.Sprintf("the TaskManagers were kept: reading Flink's TaskManagers failed: %v", err)
	}
	n := max(want, c.d.TaskManagerReplicas-len(idle))
	if n >= c.d.TaskManagerReplicas {
		return fmt.Sprintf("the TaskManagers were kept: none of the %d has every slot free", c.d.TaskManagerReplicas)
	}
	marked := c.markIdlePods(idle)
	from := c.d.TaskManagerReplicas
	if err := c.scaleTaskManagers(n); err != nil {
		return fmt.Sprintf("scaling TaskManager Deployment %s down to %d failed: %v", c.d.TaskManagerDeployment, n, err)
	}
	msg := fmt.Sprintf("TaskManager Deployment %s scaled %d → %d", c.d.TaskManagerDeployment, from, n)
	if marked > 0 {
		msg += fmt.Sprintf(" (%d idle pod(s) marked to go first)", marked)
	}
	if n > want {
		msg += fmt.Sprintf("; the plan's %d would remove TaskManagers that still run tasks", want)
	}
	return msg
}

// markIdlePods sets the lowest deletion cost on the TaskManager pods whose
// IP is one of hosts, and counts them.
func (c *cycle) markIdlePods(hosts []string) int {
	if c.d.TaskManagerSelector == nil {
		return 0
	}
	sel, err := metav1.LabelSelectorAsSelector(c.d.TaskManagerSelector)
	if err != nil {
		return 0
	}
	var pods corev1.PodList
	if err := c.r.reader().List(c.ctx, &pods, client.InNamespace(c.d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return 0
	}
	idle := map[string]bool{}
	for _, h := range hosts {
		idle[h] = true
	}
	n := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if !idle[p.Status.PodIP] || p.Annotations[AnnotationPodDeletionCost] == "-1000" {
			continue
		}
		patch := client.MergeFrom(p.DeepCopy())
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[AnnotationPodDeletionCost] = "-1000"
		if err := c.r.Client.Patch(c.ctx, p, patch); err == nil {
			n++
		}
	}
	return n
}

// revertREST sets the requirements and the TaskManager Deployment back to
// what they were before a rescale that did not succeed.
func (c *cycle) revertREST(rs *v1alpha1.RescaleStatus) string {
	prev := managedFields(rs.Previous)
	var done []string
	if prev.Overrides != "" && c.ctl != nil && c.d.JobID != "" {
		par, err := target.ParseOverrides(prev.Overrides)
		if err == nil {
			err = c.ctl.SetParallelism(c.ctx, c.d.JobID, par)
		}
		if err != nil {
			done = append(done, "setting the resource requirements back failed: "+err.Error())
		} else {
			done = append(done, "the resource requirements were set back to "+prev.Overrides)
		}
	}
	if prev.TaskManagerReplicas > 0 && c.d.TaskManagerDeployment != "" && prev.TaskManagerReplicas != c.d.TaskManagerReplicas {
		if err := c.scaleTaskManagers(prev.TaskManagerReplicas); err != nil && !apierrors.IsNotFound(err) {
			done = append(done, "scaling the TaskManagers back failed: "+err.Error())
		} else {
			done = append(done, fmt.Sprintf("TaskManager Deployment %s scaled back to %d", c.d.TaskManagerDeployment, prev.TaskManagerReplicas))
		}
	}
	if len(done) == 0 {
		return "nothing to set back"
	}
	return strings.Join(done, "; ")
}
