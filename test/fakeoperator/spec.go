package fakeoperator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// Flink configuration keys the fake operator reads.
const (
	KeyOverrides      = "pipeline.jobvertex-parallelism-overrides"
	KeySlots          = "taskmanager.numberOfTaskSlots"
	KeyScheduler      = "jobmanager.scheduler"
	KeyDefaultPar     = "parallelism.default"
	KeyRollback       = "kubernetes.operator.deployment.rollback.enabled"
	KeyInPlaceScaling = "kubernetes.operator.job.upgrade.inplace-scaling.enabled"
	KeySavepointDir   = "state.savepoints.dir"
	// KeySavepointDir2 is the Flink 1.20+/2.x name of the savepoint directory.
	KeySavepointDir2   = "execution.checkpointing.savepoint-dir"
	KeySavepointFormat = "kubernetes.operator.savepoint.format.type"
)

// Upgrade modes and job states of the spec.
const (
	UpgradeSavepoint = "savepoint"
	UpgradeLastState = "last-state"
	UpgradeStateless = "stateless"

	JobRunning   = "running"
	JobSuspended = "suspended"

	// ModeStandalone is spec.mode of a standalone cluster; "" and "native"
	// are native.
	ModeStandalone = "standalone"
)

// deploymentSpec is a FlinkDeployment spec, or a FlinkSessionJob spec with
// its session cluster's (parseSessionJobSpec), as the fake operator reads
// it: the whole spec (normalised JSON values, for diffs and
// lastReconciledSpec) and the fields it acts on.
type deploymentSpec struct {
	raw  map[string]any
	conf map[string]string // flinkConfiguration, nested maps flattened to dotted keys

	// hasJob: spec.job is set; a FlinkDeployment without one is a session
	// cluster.
	hasJob              bool
	flinkVersion        string
	mode                string
	parallelism         int
	upgradeMode         string
	state               string
	initialSavepoint    string
	allowNonRestored    bool
	taskManagerReplicas int // 0: derive from parallelism and slots

	overrides map[string]int
	slots     int
	// memory is the TaskManagers' memory model when the spec says one
	// (spec.taskManager.resource.memory, which the operator writes into
	// taskmanager.memory.process.size, or taskmanager.memory.* keys):
	// derived as Flink derives it; nil keeps the simulated cluster's.
	memory *scaling.TaskManagerMemory
}

// normalize round-trips v through JSON so specs from the API server (int64,
// float64) and from a lastReconciledSpec string compare equal.
func normalize(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// parseSpec reads and validates a spec map.
func parseSpec(spec map[string]any) (*deploymentSpec, error) {
	raw, err := normalize(spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	var typed struct {
		FlinkVersion string `json:"flinkVersion"`
		Mode         string `json:"mode"`
		Job          struct {
			Parallelism           json.Number `json:"parallelism"`
			UpgradeMode           string      `json:"upgradeMode"`
			State                 string      `json:"state"`
			InitialSavepointPath  string      `json:"initialSavepointPath"`
			AllowNonRestoredState bool        `json:"allowNonRestoredState"`
		} `json:"job"`
		TaskManager struct {
			Replicas json.Number `json:"replicas"`
			Resource struct {
				Memory string `json:"memory"`
			} `json:"resource"`
		} `json:"taskManager"`
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &typed); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	_, hasJob := raw["job"]
	s := &deploymentSpec{
		raw:              raw,
		hasJob:           hasJob,
		conf:             map[string]string{},
		flinkVersion:     typed.FlinkVersion,
		mode:             typed.Mode,
		upgradeMode:      typed.Job.UpgradeMode,
		state:            typed.Job.State,
		initialSavepoint: typed.Job.InitialSavepointPath,
		allowNonRestored: typed.Job.AllowNonRestoredState,
	}
	if s.upgradeMode == "" {
		s.upgradeMode = UpgradeStateless // the operator's Java default
	}
	if s.state == "" {
		s.state = JobRunning
	}
	if fc, ok := raw["flinkConfiguration"].(map[string]any); ok {
		flatten("", fc, s.conf)
	}

	positive := func(what, v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s must be a positive integer, got %q", what, v)
		}
		return n, nil
	}
	switch {
	case typed.Job.Parallelism != "":
		if s.parallelism, err = positive("spec.job.parallelism", typed.Job.Parallelism.String()); err != nil {
			return nil, err
		}
	case s.conf[KeyDefaultPar] != "":
		if s.parallelism, err = positive(KeyDefaultPar, s.conf[KeyDefaultPar]); err != nil {
			return nil, err
		}
	default:
		s.parallelism = 1
	}
	if typed.TaskManager.Replicas != "" {
		if s.taskManagerReplicas, err = positive("spec.taskManager.replicas", typed.TaskManager.Replicas.String()); err != nil {
			return nil, err
		}
	}
	s.slots = 1
	if v, ok := s.conf[KeySlots]; ok {
		if s.slots, err = positive(KeySlots, v); err != nil {
			return nil, err
		}
	}
	if s.overrides, err = ParseOverrides(s.conf[KeyOverrides]); err != nil {
		return nil, err
	}
	if s.memory, err = taskManagerMemory(s.conf, typed.TaskManager.Resource.Memory); err != nil {
		return nil, err
	}
	return s, nil
}

// taskManagerMemory derives the TaskManagers' memory from the
// flinkConfiguration and spec.taskManager.resource.memory as the operator
// and Flink do: the operator sets taskmanager.memory.process.size from the
// resource's memory unless the configuration sets it, and Flink derives
// the rest (scaling.DeriveTaskManagerMemory). Nil when the spec says
// nothing of memory.
func taskManagerMemory(conf map[string]string, resource string) (*scaling.TaskManagerMemory, error) {
	says := strings.TrimSpace(resource) != ""
	for _, k := range append(slices.Clone(scaling.MemoryKeys), scaling.KeyManagedFraction, scaling.KeyNetworkFraction, scaling.KeyOverheadFraction) {
		if _, ok := conf[k]; ok {
			says = true
		}
	}
	if !says {
		return nil, nil
	}
	var process int64
	if strings.TrimSpace(resource) != "" {
		b, err := scaling.ParseMemorySize(resource)
		if err != nil {
			return nil, fmt.Errorf("spec.taskManager.resource.memory: %w", err)
		}
		process = b
	}
	m, err := scaling.DeriveTaskManagerMemory(conf, process)
	if err != nil {
		return nil, fmt.Errorf("TaskManager memory: %w", err)
	}
	return &m, nil
}

// flatten writes a flinkConfiguration map as Flink reads it (nested maps
// become dotted keys, scalars strings, lists ';'-joined), as the controller
// reads it.
func flatten(prefix string, v any, out map[string]string) { target.Flatten(prefix, v, out) }

// ParseOverrides parses pipeline.jobvertex-parallelism-overrides
// ("vertexHex:p,vertexHex:p"); empty is no overrides.
func ParseOverrides(s string) (map[string]int, error) { return target.ParseOverrides(s) }

// submission is the sim.Submission for this spec. vertices (the job graph, if
// known) size the TaskManagers exactly; otherwise the largest parallelism in
// the spec does.
func (s *deploymentSpec) submission(jobID, savepointPath string, vertices []sim.VertexView) sim.Submission {
	tms := s.taskManagerReplicas
	if tms == 0 {
		maxP := s.maxParallelism(vertices)
		tms = (maxP + s.slots - 1) / s.slots
	}
	return sim.Submission{
		JobID:                 jobID,
		DefaultParallelism:    s.parallelism,
		Overrides:             maps.Clone(s.overrides),
		SlotsPerTaskManager:   s.slots,
		TaskManagers:          tms,
		SavepointPath:         savepointPath,
		AllowNonRestoredState: s.allowNonRestored,
		Memory:                s.memory,
	}
}

func (s *deploymentSpec) maxParallelism(vertices []sim.VertexView) int {
	maxP := 0
	if len(vertices) > 0 {
		for _, v := range vertices {
			p, ok := s.overrides[v.ID]
			if !ok {
				p = s.parallelism
			}
			maxP = max(maxP, p)
		}
		return maxP
	}
	maxP = s.parallelism
	for _, p := range s.overrides {
		maxP = max(maxP, p)
	}
	return maxP
}

// adaptive reports jobmanager.scheduler: adaptive.
func (s *deploymentSpec) adaptive() bool {
	return strings.EqualFold(strings.TrimSpace(s.conf[KeyScheduler]), "adaptive")
}

func (s *deploymentSpec) rollbackEnabled() bool {
	return strings.EqualFold(strings.TrimSpace(s.conf[KeyRollback]), "true")
}

func (s *deploymentSpec) inPlaceScalingEnabled() bool {
	return !strings.EqualFold(strings.TrimSpace(s.conf[KeyInPlaceScaling]), "false")
}

func (s *deploymentSpec) savepointDir() string {
	if d := s.conf[KeySavepointDir]; d != "" {
		return d
	}
	return s.conf[KeySavepointDir2]
}

// savepointFormat is CANONICAL unless the operator config asks for NATIVE.
func (s *deploymentSpec) savepointFormat() string {
	if strings.EqualFold(s.conf[KeySavepointFormat], "NATIVE") {
		return "NATIVE"
	}
	return "CANONICAL"
}

// atLeast reports flinkVersion (v<major>_<minor>) ≥ major.minor.
func (s *deploymentSpec) atLeast(major, minor int) bool {
	return versionAtLeast(s.flinkVersion, major, minor)
}

// versionAtLeast reports a spec.flinkVersion (v<major>_<minor>) ≥
// major.minor; false for a malformed or empty one.
func versionAtLeast(flinkVersion string, major, minor int) bool {
	v, ok := strings.CutPrefix(flinkVersion, "v")
	if !ok {
		return false
	}
	maStr, miStr, ok := strings.Cut(v, "_")
	ma, err1 := strconv.Atoi(maStr)
	mi, err2 := strconv.Atoi(miStr)
	if !ok || err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// withJob returns a copy of the raw spec with job fields replaced.
func (s *deploymentSpec) withJob(fields map[string]any) map[string]any {
	out, _ := normalize(s.raw)
	job, _ := out["job"].(map[string]any)
	if job == nil {
		job = map[string]any{}
	}
	maps.Copy(job, fields)
	out["job"] = job
	return out
}

// diffType is the class of a spec change, as the operator's @SpecDiff
// annotations sort them: IGNORE < SCALE < UPGRADE.
type diffType int

const (
	diffNone diffType = iota
	diffIgnore
	diffScale
	diffUpgrade
)

func (d diffType) String() string {
	return [...]string{"NONE", "IGNORE", "SCALE", "UPGRADE"}[d]
}

// ignoredJobFields change nothing that is deployed: the job spec's
// @SpecDiff(IGNORE) fields (operator 1.15's JobSpec). The nonces trigger
// operations this fake does not simulate, or reset the autoscaler; the
// others take effect on the next upgrade.
var ignoredJobFields = []string{"savepointTriggerNonce", "checkpointTriggerNonce", "autoscalerResetNonce",
	"upgradeMode", "initialSavepointPath", "allowNonRestoredState"}

// onNullIgnored are the spec fields (@SpecDiff onNullIgnore) whose removal
// changes nothing.
var onNullIgnored = []string{"spec.restartNonce", "spec.job.savepointRedeployNonce"}

// classifyConfigKey is the diff class of a changed flinkConfiguration key in
// the given deployment mode: the overrides are a SCALE change in native mode
// only (AbstractFlinkSpec's @SpecDiff.Entry).
func classifyConfigKey(key, mode string) diffType {
	switch {
	case strings.HasPrefix(key, "job.autoscaler"), strings.HasPrefix(key, "kubernetes.operator"), key == KeyDefaultPar:
		return diffIgnore
	case key == KeyOverrides && mode != ModeStandalone:
		return diffScale
	default:
		return diffUpgrade
	}
}

// specDiff classifies the change from old to new (both normalised), as the
// operator's ReflectiveDiffBuilder does for the deployment mode (spec.mode of
// a FlinkDeployment, its session cluster's for a session job; "" is native),
// and lists the changed paths with their classes, sorted. spec.job.parallelism
// is a SCALE change in standalone mode only.
func specDiff(old, new map[string]any, mode string) (diffType, []string) {
	typ := diffNone
	var changed []string
	note := func(path string, t diffType) {
		typ = max(typ, t)
		changed = append(changed, fmt.Sprintf("%s (%s)", path, t))
	}

	oldConf, newConf := map[string]string{}, map[string]string{}
	if m, ok := old["flinkConfiguration"].(map[string]any); ok {
		flatten("", m, oldConf)
	}
	if m, ok := new["flinkConfiguration"].(map[string]any); ok {
		flatten("", m, newConf)
	}
	for _, k := range unionKeys(oldConf, newConf) {
		ov, oldOK := oldConf[k]
		nv, newOK := newConf[k]
		if ov != nv || oldOK != newOK {
			note("flinkConfiguration."+k, classifyConfigKey(k, mode))
		}
	}

	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			for _, k := range unionKeys(am, bm) {
				walk(path+"."+k, am[k], bm[k])
			}
			return
		}
		if reflect.DeepEqual(a, b) {
			return
		}
		t := diffUpgrade
		name, isJob := strings.CutPrefix(path, "spec.job.")
		switch {
		case isJob && slices.Contains(ignoredJobFields, name),
			b == nil && slices.Contains(onNullIgnored, path):
			t = diffIgnore
		case path == "spec.job.parallelism" && mode == ModeStandalone:
			t = diffScale
		}
		note(strings.TrimPrefix(path, "spec."), t)
	}
	for _, k := range unionKeys(old, new) {
		if k == "flinkConfiguration" {
			continue
		}
		walk("spec."+k, old[k], new[k])
	}
	slices.Sort(changed)
	return typ, changed
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
