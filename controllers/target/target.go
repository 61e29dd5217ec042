// Package target reads the parts of a FlinkDeployment (the Apache Flink
// Kubernetes Operator's resource, handled as unstructured) that flinkscale
// acts on, and builds the server-side apply object that rescales it.
//
// It is pure: no client, no clock. The controller reads a deployment with
// Read, checks Blocked before acting, and sends ApplyObject's object with its
// own field manager, so that the fields it manages are the only ones it can
// own (see PlanFields for when it writes each):
//
//	spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"]
//	spec.flinkConfiguration["taskmanager.numberOfTaskSlots"]
//	spec.job.parallelism (standalone mode)
//	spec.taskManager.replicas (standalone mode)
//	spec.flinkConfiguration[scaling.MemoryKeys] and
//	spec.taskManager.resource.memory (a plan that sets the TaskManagers'
//	memory: policy memory mode Apply)
package target

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flinkscale/flinkscale/scaling"
)

// GVK is the FlinkDeployment kind flinkscale scales.
var GVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkDeployment"}

// SessionJobGVK is the operator's FlinkSessionJob kind.
var SessionJobGVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkSessionJob"}

// New returns an empty FlinkDeployment object to read into.
func New() *unstructured.Unstructured { return NewOf(GVK) }

// NewOf returns an empty object of the kind to read into.
func NewOf(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// Flink configuration keys.
const (
	// KeyOverrides is pipeline.jobvertex-parallelism-overrides: a list of
	// vertexId:parallelism that beats every other parallelism setting.
	KeyOverrides = "pipeline.jobvertex-parallelism-overrides"
	// KeySlots is taskmanager.numberOfTaskSlots.
	KeySlots = "taskmanager.numberOfTaskSlots"
	// KeyScheduler is jobmanager.scheduler (default or adaptive).
	KeyScheduler = "jobmanager.scheduler"
	// KeyInPlaceScaling turns the operator's in-place rescale off (true by
	// default).
	KeyInPlaceScaling = "kubernetes.operator.job.upgrade.inplace-scaling.enabled"
)

// Upgrade modes of spec.job.upgradeMode.
const (
	UpgradeSavepoint = "savepoint"
	UpgradeLastState = "last-state"
	UpgradeStateless = "stateless"
)

// Lifecycle states the controller reads (status.lifecycleState).
const (
	LifecycleStable      = "STABLE"
	LifecycleDeployed    = "DEPLOYED"
	LifecycleUpgrading   = "UPGRADING"
	LifecycleSuspended   = "SUSPENDED"
	LifecycleRollingBack = "ROLLING_BACK"
	LifecycleRolledBack  = "ROLLED_BACK"
	LifecycleFailed      = "FAILED"
)

// Deployment is what flinkscale reads of the job it scales: a FlinkDeployment
// (Read), a FlinkSessionJob and its session cluster (ReadSessionJob), or a
// cluster without the operator (ReadCluster, then ObserveFlink).
type Deployment struct {
	Namespace, Name string
	Generation      int64
	ResourceVersion string
	// Kind is the target's kind: FlinkDeployment, FlinkSessionJob or
	// Deployment.
	Kind string
	// Cluster is the Flink cluster whose REST Service (<cluster>-rest)
	// serves the job: the FlinkDeployment itself, a session job's
	// deploymentName, a native cluster's id (its JobManager Deployment).
	Cluster string

	// Spec.
	Mode         string // native (default) or standalone
	FlinkVersion string // v1_18
	// HasJob is false for a session cluster (no spec.job): nothing to scale.
	HasJob bool
	// UpgradeMode is spec.job.upgradeMode; the operator's default is
	// stateless.
	UpgradeMode string
	// DesiredState is spec.job.state (running or suspended).
	DesiredState string
	// Parallelism is spec.job.parallelism (0: unset).
	Parallelism int
	// Overrides are the parsed parallelism overrides (empty: none).
	Overrides map[string]int
	// Slots is taskmanager.numberOfTaskSlots (Flink's default 1).
	Slots int
	// TaskManagerCPU is spec.taskManager.resource.cpu (0: unset).
	TaskManagerCPU float64
	// TaskManagerReplicas is spec.taskManager.replicas (0: unset).
	TaskManagerReplicas int
	// TaskManagerMemory is spec.taskManager.resource.memory as written
	// ("": unset).
	TaskManagerMemory string
	// Adaptive is jobmanager.scheduler: adaptive.
	Adaptive bool
	// Configuration is spec.flinkConfiguration, flattened.
	Configuration map[string]string

	// Status, as the operator writes it.
	ObservedGeneration int64
	Lifecycle          string
	JobID              string
	JobState           string
	Error              string
	// SavepointInProgress is true while jobStatus.savepointInfo.triggerId is
	// set (a manual, periodic or upgrade savepoint is pending).
	SavepointInProgress bool
	// ReconciliationState is status.reconciliationStatus.state.
	ReconciliationState string

	// Clusters without the operator (kind Deployment).

	// TaskManagerDeployment names the standalone TaskManagers' Deployment
	// ("" in native mode or when none was named); TaskManagerReplicas is
	// then its spec.replicas and ReadyTaskManagers its ready replicas.
	TaskManagerDeployment string
	ReadyTaskManagers     int
	// TaskManagerSelector selects the TaskManager Deployment's pods.
	TaskManagerSelector *metav1.LabelSelector
	// Reactive is scheduler-mode: reactive.
	Reactive bool
	// JobName selects the job on a cluster that runs several.
	JobName string

	// ownConfiguration is a session job's own flinkConfiguration (its
	// Configuration has the cluster's laid under it).
	ownConfiguration map[string]string
}

// Read reads u. It fails on a spec it cannot understand (a malformed
// override list or slot count), because acting on a half-read deployment
// could clobber what the user meant.
func Read(u *unstructured.Unstructured) (*Deployment, error) {
	d := &Deployment{
		Namespace: u.GetNamespace(), Name: u.GetName(),
		Generation: u.GetGeneration(), ResourceVersion: u.GetResourceVersion(),
		Kind: GVK.Kind, Cluster: u.GetName(),
	}
	obj := u.Object
	d.Mode, _, _ = unstructured.NestedString(obj, "spec", "mode")
	if d.Mode == "" {
		d.Mode = "native"
	}
	d.FlinkVersion, _, _ = unstructured.NestedString(obj, "spec", "flinkVersion")
	job, hasJob, _ := unstructured.NestedMap(obj, "spec", "job")
	d.HasJob = hasJob
	if hasJob {
		d.UpgradeMode, _ = job["upgradeMode"].(string)
		if d.UpgradeMode == "" {
			d.UpgradeMode = UpgradeStateless
		}
		d.DesiredState, _ = job["state"].(string)
		if d.DesiredState == "" {
			d.DesiredState = "running"
		}
		if p, ok, err := number(job["parallelism"]); err != nil {
			return nil, fmt.Errorf("spec.job.parallelism: %w", err)
		} else if ok {
			d.Parallelism = int(p)
		}
	}
	if v, ok, err := nested(obj, "spec", "taskManager", "resource", "cpu"); err != nil {
		return nil, fmt.Errorf("spec.taskManager.resource.cpu: %w", err)
	} else if ok {
		d.TaskManagerCPU = v
	}
	if v, ok, err := nested(obj, "spec", "taskManager", "replicas"); err != nil {
		return nil, fmt.Errorf("spec.taskManager.replicas: %w", err)
	} else if ok {
		d.TaskManagerReplicas = int(v)
	}
	if v, ok, _ := unstructured.NestedFieldNoCopy(obj, "spec", "taskManager", "resource", "memory"); ok && v != nil {
		d.TaskManagerMemory = fmt.Sprint(v)
	}
	conf, err := FlinkConfiguration(u)
	if err != nil {
		return nil, err
	}
	d.Configuration = conf
	d.Overrides, err = ParseOverrides(conf[KeyOverrides])
	if err != nil {
		return nil, err
	}
	d.Slots = 1
	if s, ok := conf[KeySlots]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("flinkConfiguration %s: %q is not a positive integer", KeySlots, s)
		}
		d.Slots = n
	}
	d.Adaptive = strings.EqualFold(strings.TrimSpace(conf[KeyScheduler]), "adaptive")

	d.ObservedGeneration, _, _ = unstructured.NestedInt64(obj, "status", "observedGeneration")
	d.Lifecycle, _, _ = unstructured.NestedString(obj, "status", "lifecycleState")
	d.JobID, _, _ = unstructured.NestedString(obj, "status", "jobStatus", "jobId")
	d.JobState, _, _ = unstructured.NestedString(obj, "status", "jobStatus", "state")
	d.Error, _, _ = unstructured.NestedString(obj, "status", "error")
	trigger, _, _ := unstructured.NestedString(obj, "status", "jobStatus", "savepointInfo", "triggerId")
	d.SavepointInProgress = trigger != ""
	d.ReconciliationState, _, _ = unstructured.NestedString(obj, "status", "reconciliationStatus", "state")
	return d, nil
}

// nested reads a number at path (JSON numbers arrive as int64 or float64;
// a string such as "2" is accepted as the operator accepts it).
func nested(obj map[string]any, path ...string) (float64, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !ok || v == nil {
		return 0, false, err
	}
	return number(v)
}

func number(v any) (float64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return float64(x), true, nil
	case int:
		return float64(x), true, nil
	case int32:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false, fmt.Errorf("%q is not a number", x)
		}
		return f, true, nil
	default:
		return 0, false, fmt.Errorf("%v (%T) is not a number", v, v)
	}
}

// FlinkConfiguration returns spec.flinkConfiguration as Flink reads it:
// nested maps (Flink's YAML form) become dotted keys, numbers and booleans
// strings, lists ';'-joined.
func FlinkConfiguration(u *unstructured.Unstructured) (map[string]string, error) {
	out := map[string]string{}
	v, ok, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "flinkConfiguration")
	if err != nil {
		return nil, fmt.Errorf("spec.flinkConfiguration: %w", err)
	}
	if !ok || v == nil {
		return out, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, fmt.Errorf("spec.flinkConfiguration: want a map, got %T", v)
	}
	Flatten("", m, out)
	return out, nil
}

// Flatten writes the value v found at key prefix of a flinkConfiguration
// into out as Flink reads it: nested maps (Flink's YAML form) become dotted
// keys, numbers and booleans strings, lists ';'-joined.
func Flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			Flatten(key, vv, out)
		}
	case nil:
	case string:
		out[prefix] = x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, fmt.Sprint(e))
		}
		out[prefix] = strings.Join(parts, ";")
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// ParseOverrides parses a parallelism override list ("id:p,id:p"); empty is
// none.
func ParseOverrides(s string) (map[string]int, error) {
	out := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, p, ok := strings.Cut(part, ":")
		id = strings.TrimSpace(id)
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if !ok || id == "" || err != nil || n < 1 {
			return nil, fmt.Errorf("flinkConfiguration %s: bad entry %q (want vertexId:parallelism)", KeyOverrides, part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("flinkConfiguration %s: vertex %s listed twice", KeyOverrides, id)
		}
		out[id] = n
	}
	return out, nil
}

// FormatOverrides writes overrides sorted by vertex id, so that the same plan
// is always the same string (and an unchanged plan no spec change).
func FormatOverrides(p map[string]int) string {
	ids := slices.Sorted(maps.Keys(p))
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, id+":"+strconv.Itoa(p[id]))
	}
	return strings.Join(parts, ",")
}

// Blocker is why a deployment cannot be rescaled now.
type Blocker struct {
	// Reason is a CamelCase condition reason.
	Reason string
	// Message says what was seen.
	Message string
}

// Blocker reasons.
const (
	BlockNoJob               = "NoJob"
	BlockSuspended           = "JobSuspended"
	BlockSpecNotReconciled   = "SpecNotReconciled"
	BlockNotStable           = "TargetNotStable"
	BlockJobNotRunning       = "JobNotRunning"
	BlockSavepointInProgress = "SavepointInProgress"
	BlockStateless           = "StatelessUpgradeMode"
	BlockOperatorError       = "OperatorError"
)

// Blocked returns why d cannot be rescaled now, or nil. A rescale needs an
// application deployment whose job runs, whose last spec change the
// operator has reconciled, in lifecycle STABLE, with no savepoint pending,
// and (unless allowStateless) an upgrade mode that keeps state.
func (d *Deployment) Blocked(allowStateless bool) *Blocker {
	switch {
	case !d.HasJob:
		return &Blocker{BlockNoJob, "the FlinkDeployment has no spec.job (a session cluster): there is no job to rescale"}
	case d.DesiredState == "suspended":
		return &Blocker{BlockSuspended, "spec.job.state is suspended"}
	case d.ObservedGeneration != 0 && d.ObservedGeneration < d.Generation:
		return &Blocker{BlockSpecNotReconciled, fmt.Sprintf("the operator has not reconciled generation %d yet (observed %d)", d.Generation, d.ObservedGeneration)}
	case d.Lifecycle != LifecycleStable:
		return &Blocker{BlockNotStable, fmt.Sprintf("lifecycle state is %q, not STABLE", d.Lifecycle)}
	case d.JobState != "RUNNING":
		return &Blocker{BlockJobNotRunning, fmt.Sprintf("job state is %q, not RUNNING", d.JobState)}
	case d.SavepointInProgress:
		return &Blocker{BlockSavepointInProgress, "a savepoint is in progress"}
	case d.Error != "":
		return &Blocker{BlockOperatorError, "the operator reports an error: " + d.Error}
	case d.UpgradeMode == UpgradeStateless && !allowStateless:
		return &Blocker{BlockStateless, "upgradeMode is stateless: a rescale would restart the job without its state; set allowStatelessUpgrade to allow it"}
	}
	return nil
}

// Fields are the raw values of the managed fields; an empty string or zero
// means the field is absent.
type Fields struct {
	Overrides           string
	Slots               string
	Parallelism         int
	TaskManagerReplicas int
	// Memory are the TaskManager memory keys of spec.flinkConfiguration
	// (among scaling.MemoryKeys) and their values; a key not in the map is
	// absent (nil: none). Only a FlinkDeployment has them.
	Memory map[string]string
	// ResourceMemory is spec.taskManager.resource.memory (FlinkDeployment
	// only).
	ResourceMemory string
}

// Equal reports whether f and g are the same fields (a nil and an empty
// Memory alike).
func (f Fields) Equal(g Fields) bool {
	return f.Overrides == g.Overrides && f.Slots == g.Slots && f.Parallelism == g.Parallelism &&
		f.TaskManagerReplicas == g.TaskManagerReplicas && maps.Equal(f.Memory, g.Memory) && f.ResourceMemory == g.ResourceMemory
}

// Only keeps the fields of f that mask has (non-empty), blanking the rest;
// of Memory, the keys mask.Memory has that f has too.
func (f Fields) Only(mask Fields) Fields {
	var out Fields
	if mask.Overrides != "" {
		out.Overrides = f.Overrides
	}
	if mask.Slots != "" {
		out.Slots = f.Slots
	}
	if mask.Parallelism != 0 {
		out.Parallelism = f.Parallelism
	}
	if mask.TaskManagerReplicas != 0 {
		out.TaskManagerReplicas = f.TaskManagerReplicas
	}
	for k := range mask.Memory {
		if v, ok := f.Memory[k]; ok && v != "" {
			if out.Memory == nil {
				out.Memory = map[string]string{}
			}
			out.Memory[k] = v
		}
	}
	if mask.ResourceMemory != "" {
		out.ResourceMemory = f.ResourceMemory
	}
	return out
}

// Managed returns the managed fields as the deployment has them now.
func (d *Deployment) Managed() Fields {
	if d.Kind == SessionJobGVK.Kind {
		return Fields{Overrides: d.ownConfiguration[KeyOverrides], Parallelism: d.Parallelism}
	}
	f := Fields{
		Overrides:           d.Configuration[KeyOverrides],
		Slots:               d.Configuration[KeySlots],
		Parallelism:         d.Parallelism,
		TaskManagerReplicas: d.TaskManagerReplicas,
	}
	if !d.SetsMemory() {
		return f
	}
	f.ResourceMemory = d.TaskManagerMemory
	for _, k := range scaling.MemoryKeys {
		if v, ok := d.Configuration[k]; ok && v != "" {
			if f.Memory == nil {
				f.Memory = map[string]string{}
			}
			f.Memory[k] = v
		}
	}
	return f
}

// SetsMemory reports whether the kind of target can take a plan's
// TaskManager memory: only a FlinkDeployment's TaskManagers are its own
// to reshape (a session job's are its cluster's; a cluster without the
// operator has no spec to write).
func (d *Deployment) SetsMemory() bool { return d.Kind == GVK.Kind }

// PlanFields turns a recommended plan into the fields to write, changing no
// more than the plan needs:
//
//   - the overrides, always (they name every vertex);
//   - the slots per TaskManager when the plan changes them, or when owned
//     already holds them (leaving a field out of an apply would remove it);
//   - spec.job.parallelism and spec.taskManager.replicas in standalone mode,
//     where the operator applies them as a SCALE change. In native mode both
//     are UPGRADE changes that would rule out the adaptive scheduler's
//     in-place rescale, and the overrides already set every vertex; Flink's
//     resource manager starts the TaskManagers the slots need. A
//     spec.job.parallelism owned from before keeps its value.
//   - the TaskManager memory (FlinkDeployment only): when the plan sets it
//     (p.Memory), every key of its FlinkConfiguration and
//     spec.taskManager.resource.memory = the process size; otherwise the
//     memory fields owned from before keep their values.
//
// owned are the fields flinkscale's field manager owns now (OwnedFields).
func (d *Deployment) PlanFields(p scaling.Plan, owned map[string]bool) Fields {
	f := Fields{Overrides: FormatOverrides(p.Parallelism)}
	switch d.Kind {
	case SessionJobGVK.Kind:
		// The slots are the session cluster's; spec.job.parallelism only
		// when owned from before.
		if owned[FieldParallelism] {
			f.Parallelism = d.Parallelism
		}
		return f
	case KindDeployment:
		// The resource requirements, and the TaskManager Deployment's
		// replicas when flinkscale scales it.
		if d.TaskManagerDeployment != "" {
			f.TaskManagerReplicas = p.TaskManagers
		}
		return f
	}
	slots := p.SlotsPerTaskManager
	if slots < 1 {
		slots = d.Slots
	}
	if slots != d.Slots || owned[FieldSlots] {
		f.Slots = strconv.Itoa(slots)
	}
	if d.Mode == "standalone" {
		f.Parallelism = p.DefaultParallelism
		f.TaskManagerReplicas = p.TaskManagers
	} else if owned[FieldParallelism] {
		f.Parallelism = d.Parallelism
	}
	if p.Memory != nil {
		f.Memory = p.Memory.FlinkConfiguration()
		f.ResourceMemory = scaling.FormatMemorySize(p.Memory.ProcessBytes)
	} else {
		mem := d.Managed().Only(OwnedMask(owned))
		f.Memory, f.ResourceMemory = mem.Memory, mem.ResourceMemory
	}
	return f
}

// Paths of the managed fields, as OwnedFields names them.
const (
	FieldOverrides    = "spec.flinkConfiguration." + KeyOverrides
	FieldSlots        = "spec.flinkConfiguration." + KeySlots
	FieldParallelism  = "spec.job.parallelism"
	FieldTaskManagers = "spec.taskManager.replicas"
	// FieldResourceMemory is the TaskManagers' process memory.
	FieldResourceMemory = "spec.taskManager.resource.memory"
)

// FieldConfig is the path of a flinkConfiguration key, as OwnedFields
// names it.
func FieldConfig(key string) string { return "spec.flinkConfiguration." + key }

// OwnedFields lists the leaf fields manager owns through server-side apply,
// as dotted paths ("spec.job.parallelism").
func OwnedFields(u metav1.Object, manager string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, e := range u.GetManagedFields() {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.FieldsV1 == nil {
			continue
		}
		var tree map[string]any
		if err := json.Unmarshal(e.FieldsV1.Raw, &tree); err != nil {
			return nil, fmt.Errorf("managedFields of %s: %w", manager, err)
		}
		leaves("", tree, out)
	}
	return out, nil
}

func leaves(prefix string, tree map[string]any, out map[string]bool) {
	for k, v := range tree {
		name, ok := strings.CutPrefix(k, "f:")
		if !ok {
			continue // "." and list keys ("k:", "v:", "i:")
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if sub, _ := v.(map[string]any); len(sub) > 0 && !(len(sub) == 1 && sub["."] != nil) {
			leaves(path, sub, out)
			continue
		}
		out[path] = true
	}
}

// Says reports whether the deployment's spec already says what f says
// (override lists compared as sets, slot counts as numbers).
func (d *Deployment) Says(f Fields) bool {
	want, err := ParseOverrides(f.Overrides)
	if err != nil || !maps.Equal(d.Overrides, want) {
		return false
	}
	if f.Slots != "" {
		n, err := strconv.Atoi(f.Slots)
		if err != nil || n != d.Slots {
			return false
		}
	}
	if f.Parallelism != 0 && f.Parallelism != d.Parallelism {
		return false
	}
	for k, v := range f.Memory {
		if !sameSize(v, d.Configuration[k]) {
			return false
		}
	}
	if f.ResourceMemory != "" && !sameSize(f.ResourceMemory, d.TaskManagerMemory) {
		return false
	}
	return f.TaskManagerReplicas == 0 || f.TaskManagerReplicas == d.TaskManagerReplicas
}

// sameSize reports whether two memory sizes are the same: as sizes when
// both parse ("1g" and "1048576k"), else as strings.
func sameSize(a, b string) bool {
	x, errA := scaling.ParseMemorySize(a)
	y, errB := scaling.ParseMemorySize(b)
	if errA == nil && errB == nil {
		return x == y
	}
	return strings.TrimSpace(a) == strings.TrimSpace(b)
}

// ApplyObject is the server-side apply object that sets f: the identity, the
// fields f has (a field f leaves absent is left out, so that applying it
// removes the field if flinkscale was its only owner), and the resource
// version read, so that the apply fails with a conflict if the deployment
// changed since.
func (d *Deployment) ApplyObject(f Fields) *unstructured.Unstructured {
	u := New()
	if d.Kind == SessionJobGVK.Kind {
		u = NewOf(SessionJobGVK)
	}
	u.SetNamespace(d.Namespace)
	u.SetName(d.Name)
	u.SetResourceVersion(d.ResourceVersion)
	spec := map[string]any{}
	conf := map[string]any{}
	if f.Overrides != "" {
		conf[KeyOverrides] = f.Overrides
	}
	if f.Slots != "" {
		conf[KeySlots] = f.Slots
	}
	for k, v := range f.Memory {
		if v != "" {
			conf[k] = v
		}
	}
	if len(conf) > 0 {
		spec["flinkConfiguration"] = conf
	}
	if f.Parallelism > 0 {
		spec["job"] = map[string]any{"parallelism": int64(f.Parallelism)}
	}
	tm := map[string]any{}
	if f.TaskManagerReplicas > 0 {
		tm["replicas"] = int64(f.TaskManagerReplicas)
	}
	if f.ResourceMemory != "" {
		tm["resource"] = map[string]any{"memory": f.ResourceMemory}
	}
	if len(tm) > 0 {
		spec["taskManager"] = tm
	}
	u.Object["spec"] = spec
	return u
}

// OwnedMask is a mask (for Fields.Only) of the managed fields among owned
// (as OwnedFields lists them).
func OwnedMask(owned map[string]bool) Fields {
	var m Fields
	if owned[FieldOverrides] {
		m.Overrides = "owned"
	}
	if owned[FieldSlots] {
		m.Slots = "owned"
	}
	if owned[FieldParallelism] {
		m.Parallelism = 1
	}
	if owned[FieldTaskManagers] {
		m.TaskManagerReplicas = 1
	}
	for _, k := range scaling.MemoryKeys {
		if owned[FieldConfig(k)] {
			if m.Memory == nil {
				m.Memory = map[string]string{}
			}
			m.Memory[k] = "owned"
		}
	}
	if owned[FieldResourceMemory] {
		m.ResourceMemory = "owned"
	}
	return m
}

// RescaleInPlace reports whether the operator rescales this deployment in
// place when only the parallelism overrides change: the adaptive scheduler
// takes new resource requirements from Flink 1.18 (spec.flinkVersion v1_18
// and later) without a savepoint, in native mode, unless the operator's
// in-place scaling is turned off.
func (d *Deployment) RescaleInPlace() bool {
	if d.Kind == KindDeployment {
		p, _ := d.Path()
		return p != PathRecommendOnly
	}
	// (A standalone session cluster's jobs too: the operator 1.15
	// upgrades them with a savepoint.)
	if !d.Adaptive || d.Mode == "standalone" || strings.EqualFold(strings.TrimSpace(d.Configuration[KeyInPlaceScaling]), "false") {
		return false
	}
	return d.atLeast(1, 18)
}
