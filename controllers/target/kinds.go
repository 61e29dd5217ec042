package target

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

// KindDeployment is an apps/v1 Deployment: the JobManager of a Flink cluster
// that runs without the operator.
const KindDeployment = v1alpha1.KindDeployment

// Rescale paths, as status.rescalePath names them.
const (
	PathOperatorUpgrade        = v1alpha1.PathOperatorUpgrade
	PathInPlace                = v1alpha1.PathInPlace
	PathInPlaceAndTaskManagers = v1alpha1.PathInPlaceAndTaskManagers
	PathTaskManagers           = v1alpha1.PathTaskManagers
	PathRecommendOnly          = v1alpha1.PathRecommendOnly
)

// Flink configuration keys read from a cluster's /jobmanager/config.
const (
	// KeySchedulerMode is scheduler-mode (reactive, or unset).
	KeySchedulerMode = "scheduler-mode"
	// KeyExecutionTarget is execution.target (kubernetes-application,
	// kubernetes-session, remote, ...).
	KeyExecutionTarget = "execution.target"
)

// LabelFlinkNativeType is the label (type=flink-native-kubernetes) Flink's
// native Kubernetes mode puts on the JobManager Deployment it creates.
const LabelFlinkNativeType = "flink-native-kubernetes"

// ReadSessionJob reads a FlinkSessionJob and the session cluster it runs on
// (the FlinkDeployment its spec.deploymentName names). The job's fields are
// read as from a FlinkDeployment's spec.job and status; the Flink version,
// mode, scheduler, slots and TaskManagers are the cluster's, with the
// session job's own flinkConfiguration laid over the cluster's.
func ReadSessionJob(sj, cluster *unstructured.Unstructured) (*Deployment, error) {
	d, err := Read(sj)
	if err != nil {
		return nil, err
	}
	d.Kind = SessionJobGVK.Kind
	d.Cluster, _, _ = unstructured.NestedString(sj.Object, "spec", "deploymentName")
	if d.Cluster == "" {
		return nil, fmt.Errorf("spec.deploymentName is empty: the session job names no session cluster")
	}
	d.ownConfiguration = d.Configuration
	if cluster == nil {
		return d, nil
	}
	c, err := Read(cluster)
	if err != nil {
		return nil, fmt.Errorf("session cluster %s: %w", cluster.GetName(), err)
	}
	if c.HasJob {
		return nil, fmt.Errorf("FlinkDeployment %s runs an application (spec.job is set), not a session cluster", c.Name)
	}
	d.Mode, d.FlinkVersion = c.Mode, c.FlinkVersion
	d.TaskManagerCPU, d.TaskManagerReplicas = c.TaskManagerCPU, c.TaskManagerReplicas
	conf := make(map[string]string, len(c.Configuration)+len(d.Configuration))
	for k, v := range c.Configuration {
		conf[k] = v
	}
	own := d.Configuration
	for k, v := range own {
		conf[k] = v
	}
	// Slots are the cluster's TaskManagers'; the scheduler is the
	// cluster's too (a job cannot choose it).
	conf[KeySlots] = strconv.Itoa(c.Slots)
	if v, ok := c.Configuration[KeyScheduler]; ok {
		conf[KeyScheduler] = v
	}
	d.Slots, d.Adaptive = c.Slots, c.Adaptive
	d.Configuration = conf
	d.ownConfiguration = own
	return d, nil
}

// ReadCluster reads the JobManager Deployment of a Flink cluster that runs
// without the operator, and the Deployment of its TaskManagers (nil: none
// named, or native mode). What only Flink knows (the job, its scheduler,
// version and resource requirements) comes later, from ObserveFlink.
func ReadCluster(jm, tm *appsv1.Deployment, ref v1alpha1.TargetRef) *Deployment {
	d := &Deployment{
		Namespace: jm.Namespace, Name: jm.Name, Generation: jm.Generation, ResourceVersion: jm.ResourceVersion,
		Kind: KindDeployment, Cluster: jm.Name, HasJob: true, DesiredState: "running",
		Mode: "standalone", Slots: 1, Configuration: map[string]string{}, Overrides: map[string]int{},
		JobName: ref.JobName,
	}
	if jm.Labels["type"] == LabelFlinkNativeType {
		d.Mode = "native"
		if id := jm.Labels["app"]; id != "" {
			d.Cluster = id
		}
	}
	if tm != nil {
		d.TaskManagerDeployment = tm.Name
		d.TaskManagerReplicas = 1
		if tm.Spec.Replicas != nil {
			d.TaskManagerReplicas = int(*tm.Spec.Replicas)
		}
		d.ReadyTaskManagers = int(tm.Status.ReadyReplicas)
		d.TaskManagerSelector = tm.Spec.Selector
	}
	// Without the operator, nothing reconciles a spec: the job is as
	// stable as Flink says it is (ObserveFlink).
	d.Lifecycle = LifecycleStable
	return d
}

// FlinkView is what Flink's REST API says of a cluster without the
// operator: its configuration (/jobmanager/config), version (/overview),
// the job (/jobs/overview) and its resource requirements.
type FlinkView struct {
	Configuration map[string]string
	Version       string // "1.20.3"
	JobID         string
	JobState      string
	// Requirements are the upper bounds of the job's resource requirements
	// (adaptive scheduler), by vertex id; nil when Flink has none to give.
	Requirements map[string]int
	// Slots is the slots of one TaskManager (0: none registered).
	Slots int
}

// ObserveFlink fills in what Flink reports of a cluster without the
// operator. The resource requirements stand in for the overrides, so that
// Says and Managed compare a plan with what Flink was last told.
func (d *Deployment) ObserveFlink(v FlinkView) {
	for k, val := range v.Configuration {
		d.Configuration[k] = val
	}
	d.Adaptive = strings.EqualFold(strings.TrimSpace(d.Configuration[KeyScheduler]), "adaptive")
	d.Reactive = strings.EqualFold(strings.TrimSpace(d.Configuration[KeySchedulerMode]), "reactive")
	if d.Reactive {
		d.Adaptive = true
	}
	if strings.HasPrefix(d.Configuration[KeyExecutionTarget], "kubernetes-") {
		d.Mode = "native"
	}
	d.FlinkVersion = flinkVersionTag(v.Version)
	if n, err := strconv.Atoi(strings.TrimSpace(d.Configuration[KeySlots])); err == nil && n > 0 {
		d.Slots = n
	}
	if v.Slots > 0 {
		d.Slots = v.Slots
	}
	d.JobID, d.JobState = v.JobID, v.JobState
	if v.Requirements != nil {
		d.Overrides = v.Requirements
		d.Configuration[KeyOverrides] = FormatOverrides(v.Requirements)
	}
	d.Configuration[KeySlots] = strconv.Itoa(d.Slots)
}

// flinkVersionTag turns "1.20.3" into the operator's "v1_20".
func flinkVersionTag(v string) string {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return "v" + parts[0] + "_" + parts[1]
}

// atLeast reports whether the Flink version is major.minor or later.
func (d *Deployment) atLeast(major, minor int) bool {
	v := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d.FlinkVersion)), "v")
	ma, mi, ok := strings.Cut(v, "_")
	if !ok {
		return false
	}
	a, err1 := strconv.Atoi(ma)
	b, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}

// Path says how a rescale of the target happens, and why.
func (d *Deployment) Path() (path, why string) {
	if d.Kind != KindDeployment {
		if d.RescaleInPlace() {
			return PathInPlace, "the operator rescales in place: adaptive scheduler, Flink ≥ 1.18, native mode"
		}
		return PathOperatorUpgrade, "the operator stops the job with a savepoint and restarts it at the new parallelism"
	}
	switch {
	case !d.Adaptive:
		return PathRecommendOnly, "the job runs Flink's default scheduler and no operator can restart it from a savepoint: recommendations only (set jobmanager.scheduler: adaptive on Flink ≥ 1.18 to rescale in place)"
	case d.Reactive && d.TaskManagerDeployment == "":
		return PathRecommendOnly, "the job runs in reactive mode, where the TaskManagers are the only knob, and targetRef.taskManagerDeployment names none to scale"
	case d.Reactive:
		return PathTaskManagers, "reactive mode: the TaskManager Deployment's replicas set every vertex's parallelism"
	case !d.atLeast(1, 18):
		return PathRecommendOnly, fmt.Sprintf("Flink %s has no resource-requirements API (it came in 1.18) and no operator can restart the job: recommendations only", orUnknown(d.FlinkVersion))
	case d.TaskManagerDeployment != "":
		return PathInPlaceAndTaskManagers, "the adaptive scheduler rescales in place through Flink's REST API; the TaskManager Deployment is scaled to the plan"
	case d.Mode == "native":
		return PathInPlace, "the adaptive scheduler rescales in place through Flink's REST API; Flink's ResourceManager starts and stops TaskManager pods"
	}
	return PathInPlace, "the adaptive scheduler rescales in place through Flink's REST API, within the TaskManagers the cluster has (no TaskManager Deployment named)"
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

// TaskManagersFixed reports whether the job's TaskManagers cannot grow for
// a plan: a standalone cluster whose TaskManagers flinkscale does not scale
// (a session job's standalone session cluster, a standalone cluster without
// a TaskManager Deployment named).
func (d *Deployment) TaskManagersFixed() bool {
	switch d.Kind {
	case SessionJobGVK.Kind:
		return d.Mode == "standalone"
	case KindDeployment:
		return d.Mode != "native" && d.TaskManagerDeployment == ""
	}
	return false
}

// SlotsFixed reports whether a plan must keep the cluster's slots per
// TaskManager: every kind but a FlinkDeployment, whose spec flinkscale may
// change.
func (d *Deployment) SlotsFixed() bool { return d.Kind != GVK.Kind }

// SharedCluster reports whether the job's cluster may run other jobs: a
// session job's session cluster, or a cluster without the operator that
// runs several (it was picked by name).
func (d *Deployment) SharedCluster() bool {
	return d.Kind == SessionJobGVK.Kind || (d.Kind == KindDeployment && d.JobName != "")
}
