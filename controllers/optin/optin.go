// Package optin turns a FlinkDeployment that opts in to flinkscale (by the
// annotation flinkscale.io/enabled: "true") into the spec of the
// FlinkScalingPolicy the controller creates for it, owned by the deployment.
//
// It is pure: no client, no I/O. The spec is built from, in order of
// precedence,
//
//  1. the deployment's flinkscale.io/* annotations (the common knobs),
//  2. the Flink Kubernetes Operator's autoscaler settings in the deployment's
//     spec.flinkConfiguration (job.autoscaler.* and the legacy
//     kubernetes.operator.job.autoscaler.*), so users migrating from the
//     operator's autoscaler keep their settings,
//  3. the API's defaults (fields left unset).
//
// Annotations are user input: a bad value is an error naming the key and the
// value, and no spec is returned. Flink settings without an equivalent are
// reported as Warnings. docs/configuration.md has the tables.
package optin

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

// Annotations on a FlinkDeployment read by PolicySpec.
const (
	// AnnotationEnabled: "true" opts the deployment in: the controller
	// creates a FlinkScalingPolicy owned by it.
	AnnotationEnabled = "flinkscale.io/enabled"
	// AnnotationMode is the policy's mode: Apply, DryRun (the default) or
	// Paused (case-insensitive).
	AnnotationMode = "flinkscale.io/mode"
	// AnnotationPaused: "true" makes the mode Paused whatever
	// AnnotationMode says. The same annotation on the policy itself
	// (v1alpha1.AnnotationPaused) pauses it too.
	AnnotationPaused = v1alpha1.AnnotationPaused
	// AnnotationPausedScaleIn: "true" blocks scale-downs only; copied to the
	// policy by PolicyAnnotations.
	AnnotationPausedScaleIn = v1alpha1.AnnotationPausedScaleIn
	// AnnotationPausedScaleOut: "true" blocks scale-ups only; copied to the
	// policy by PolicyAnnotations.
	AnnotationPausedScaleOut = v1alpha1.AnnotationPausedScaleOut
	// AnnotationMinParallelism is spec.minParallelism (an integer ≥ 1).
	AnnotationMinParallelism = "flinkscale.io/min-parallelism"
	// AnnotationMaxParallelism is spec.maxParallelism (an integer ≥ 1).
	AnnotationMaxParallelism = "flinkscale.io/max-parallelism"
	// AnnotationUtilizationTarget is spec.utilization.target, in (0,1].
	AnnotationUtilizationTarget = "flinkscale.io/utilization-target"
	// AnnotationUtilizationMin is spec.utilization.min, in (0,1].
	AnnotationUtilizationMin = "flinkscale.io/utilization-min"
	// AnnotationUtilizationMax is spec.utilization.max, in (0,1].
	AnnotationUtilizationMax = "flinkscale.io/utilization-max"
	// AnnotationKafkaBootstrapServers is the comma-separated host:port list
	// of the Kafka trigger (required with AnnotationKafkaConsumerGroup).
	AnnotationKafkaBootstrapServers = "flinkscale.io/kafka-bootstrap-servers"
	// AnnotationKafkaConsumerGroup is the consumer group of the Kafka
	// trigger; setting it adds spec.triggers.kafka[0].
	AnnotationKafkaConsumerGroup = "flinkscale.io/kafka-consumer-group"
	// AnnotationKafkaTopics is the comma-separated topic list of the Kafka
	// trigger (default: every topic the group has offsets for).
	AnnotationKafkaTopics = "flinkscale.io/kafka-topics"
	// AnnotationKafkaSecret names the Secret with the Kafka trigger's
	// SASL/TLS settings (its authenticationRef).
	AnnotationKafkaSecret = "flinkscale.io/kafka-secret"
	// AnnotationCooldownPeriod is spec.cooldownPeriod (a duration: "10m",
	// "10 min", "PT10M").
	AnnotationCooldownPeriod = "flinkscale.io/cooldown-period"
	// AnnotationMetricsWindow is spec.metricsWindow (a duration).
	AnnotationMetricsWindow = "flinkscale.io/metrics-window"
	// AnnotationPollingInterval is spec.pollingInterval (a duration, at
	// least 1s).
	AnnotationPollingInterval = "flinkscale.io/polling-interval"
	// AnnotationTaskManagerStartup is spec.taskManagerStartup (a duration):
	// how long a new TaskManager takes to start and register.
	AnnotationTaskManagerStartup = "flinkscale.io/task-manager-startup"
	// AnnotationRestartCost is spec.restartCost (a duration of the job's
	// slots): what a restart costs beyond its downtime.
	AnnotationRestartCost = "flinkscale.io/restart-cost"
	// AnnotationPlanningHorizon is spec.planningHorizon (a duration): the
	// longest a plan is expected to hold.
	AnnotationPlanningHorizon = "flinkscale.io/planning-horizon"
	// AnnotationFlinkRESTURL is spec.triggers.flinkMetrics.rest.url: the
	// JobManager REST API when it is not the operator's <name>-rest Service
	// (a proxy, an ingress).
	AnnotationFlinkRESTURL = "flinkscale.io/flink-rest-url"
	// AnnotationTaskManagerDeployment is spec.targetRef.taskManagerDeployment
	// (on a JobManager Deployment only): the standalone TaskManagers'
	// Deployment that flinkscale scales.
	AnnotationTaskManagerDeployment = "flinkscale.io/taskmanager-deployment"
	// AnnotationJobName is spec.targetRef.jobName (on a JobManager
	// Deployment only): the job to scale on a cluster that runs several.
	AnnotationJobName = "flinkscale.io/job-name"
	// AnnotationMemoryMode is spec.memory.mode: Off, Recommend or Apply
	// (case-insensitive). It overrides the operator's
	// memory.tuning.enabled.
	AnnotationMemoryMode = "flinkscale.io/memory-mode"
)

// Prefixes of the Flink Kubernetes Operator's autoscaler options.
const (
	FlinkPrefix       = "job.autoscaler."
	FlinkLegacyPrefix = "kubernetes.operator.job.autoscaler."
)

// UnboundedScaleDownFactor is behavior.scaleDown.maxFactor for the
// operator's scale-down.max-factor ≥ 1 (no bound on a step down).
const UnboundedScaleDownFactor = 1e9

// KafkaTriggerName is the name of the Kafka trigger built from annotations.
const KafkaTriggerName = "kafka"

// Warning is a setting that was not carried over, or was overridden, or
// needs the user's attention. Key is the annotation or Flink option.
type Warning struct {
	Key     string
	Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Enabled reports whether the annotations opt the deployment in
// (flinkscale.io/enabled is "true", case-insensitive, spaces ignored).
func Enabled(annotations map[string]string) bool {
	v, ok := annotations[AnnotationEnabled]
	return ok && strings.EqualFold(strings.TrimSpace(v), "true")
}

// PolicyAnnotations returns the annotations to copy from the deployment to
// its policy: flinkscale.io/paused-scale-in and -scale-out, which the spec
// has no field for (flinkscale.io/paused becomes the mode). Nil if none.
func PolicyAnnotations(annotations map[string]string) map[string]string {
	var out map[string]string
	for _, k := range []string{AnnotationPausedScaleIn, AnnotationPausedScaleOut} {
		if v, ok := annotations[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// knownAnnotations are the flinkscale.io/ annotations a deployment may
// carry; any other one under flinkscale.io/ gets a Warning (a typo).
var knownAnnotations = map[string]bool{
	AnnotationEnabled: true, AnnotationMode: true, AnnotationPaused: true,
	AnnotationTaskManagerDeployment: true, AnnotationJobName: true,
	AnnotationPausedScaleIn: true, AnnotationPausedScaleOut: true,
	AnnotationMinParallelism: true, AnnotationMaxParallelism: true,
	AnnotationUtilizationTarget: true, AnnotationUtilizationMin: true, AnnotationUtilizationMax: true,
	AnnotationKafkaBootstrapServers: true, AnnotationKafkaConsumerGroup: true,
	AnnotationKafkaTopics: true, AnnotationKafkaSecret: true,
	AnnotationCooldownPeriod: true, AnnotationMetricsWindow: true,
	AnnotationPollingInterval: true, AnnotationFlinkRESTURL: true,
	AnnotationTaskManagerStartup: true, AnnotationRestartCost: true, AnnotationPlanningHorizon: true,
	AnnotationMemoryMode: true,
}

// PolicySpec builds the spec of the policy a deployment named deploymentName
// gets, from its annotations and its spec.flinkConfiguration (either may be
// nil). On error (a bad annotation or Flink value, or an inconsistent
// combination) it returns the zero spec, no warnings and an error naming
// every offending key and value. A returned spec passes ScalingPolicy().
func PolicySpec(deploymentName string, annotations, flinkConfiguration map[string]string) (v1alpha1.FlinkScalingPolicySpec, []Warning, error) {
	return PolicySpecFor(v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: v1alpha1.KindFlinkDeployment, Name: deploymentName},
		annotations, flinkConfiguration)
}

// PolicySpecFor is PolicySpec for a target of any kind: a FlinkDeployment,
// a FlinkSessionJob (its own flinkConfiguration), or the JobManager
// Deployment of a cluster without the operator (no flinkConfiguration:
// annotations only, with the taskmanager-deployment and job-name
// annotations filling in the targetRef).
func PolicySpecFor(ref v1alpha1.TargetRef, annotations, flinkConfiguration map[string]string) (v1alpha1.FlinkScalingPolicySpec, []Warning, error) {
	deploymentName := ref.Name
	b := &builder{
		ann:      annotations,
		conf:     flinkConfiguration,
		consumed: map[string]bool{},
	}
	if deploymentName == "" {
		b.errs = append(b.errs, errors.New("the FlinkDeployment name is empty"))
	} else if len(deploymentName) > 253 {
		b.errs = append(b.errs, fmt.Errorf("the FlinkDeployment name is longer than 253 characters"))
	}
	b.spec.TargetRef = v1alpha1.TargetRef{APIVersion: ref.APIVersion, Kind: ref.EffectiveKind(), Name: deploymentName}
	b.targetRef()
	b.mode()
	b.parallelism()
	b.utilization()
	b.durations()
	b.behavior()
	b.vertices()
	b.excludedPeriods()
	b.quota()
	b.memory()
	b.kafka()
	b.restURL()
	b.leftovers()
	if len(b.errs) > 0 {
		return v1alpha1.FlinkScalingPolicySpec{}, nil, errors.Join(b.errs...)
	}
	if _, err := b.spec.ScalingPolicy(); err != nil {
		return v1alpha1.FlinkScalingPolicySpec{}, nil, fmt.Errorf("the settings make an %w", err)
	}
	return b.spec, b.warns, nil
}

type builder struct {
	ann, conf map[string]string
	consumed  map[string]bool // Flink keys read (or reported)
	spec      v1alpha1.FlinkScalingPolicySpec
	warns     []Warning
	errs      []error
}

func (b *builder) warn(key, format string, a ...any) {
	b.warns = append(b.warns, Warning{Key: key, Message: fmt.Sprintf(format, a...)})
}

func (b *builder) bad(key, value, format string, a ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: invalid value %q: %s", key, value, fmt.Sprintf(format, a...)))
}

// flink returns the first Flink option set among names (each tried as
// job.autoscaler.<name>, then kubernetes.operator.job.autoscaler.<name>),
// marks all of them consumed and warns about the shadowed ones.
func (b *builder) flink(names ...string) (key, value string, ok bool) {
	for _, n := range names {
		for _, k := range []string{FlinkPrefix + n, FlinkLegacyPrefix + n} {
			v, present := b.conf[k]
			if !present {
				continue
			}
			b.consumed[k] = true
			if ok {
				b.warn(k, "ignored: %s is set too and takes precedence", key)
				continue
			}
			key, value, ok = k, v, true
		}
	}
	return key, value, ok
}

// pick returns the annotation annKey if set, else the first Flink option
// among names. A Flink option overridden by the annotation gets a Warning.
func (b *builder) pick(annKey string, names ...string) (key, value string, fromAnn, ok bool) {
	fk, fv, fok := b.flink(names...)
	if annKey != "" {
		if v, present := b.ann[annKey]; present {
			if fok {
				b.warn(fk, "ignored: annotation %s overrides it", annKey)
			}
			return annKey, v, true, true
		}
	}
	return fk, fv, false, fok
}

func (b *builder) mode() {
	b.spec.Mode = v1alpha1.ModeDryRun
	if v, ok := b.ann[AnnotationMode]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "apply":
			b.spec.Mode = v1alpha1.ModeApply
		case "dryrun":
			b.spec.Mode = v1alpha1.ModeDryRun
		case "paused":
			b.spec.Mode = v1alpha1.ModePaused
		default:
			b.bad(AnnotationMode, v, "must be Apply, DryRun or Paused")
		}
	}
	if v, ok := b.ann[AnnotationPaused]; ok {
		p, err := parseBool(v)
		if err != nil {
			b.bad(AnnotationPaused, v, "must be \"true\" or \"false\"")
		} else if p {
			b.spec.Mode = v1alpha1.ModePaused
		}
	}
	for _, k := range []string{AnnotationPausedScaleIn, AnnotationPausedScaleOut} {
		if v, ok := b.ann[k]; ok {
			if _, err := parseBool(v); err != nil {
				b.bad(k, v, "must be \"true\" or \"false\"")
			}
		}
	}
	// The operator's own autoscaler: running both would fight.
	if k, v, ok := b.flink("enabled"); ok {
		if on, err := parseBool(v); err == nil && on {
			b.warn(k, "the Flink operator's autoscaler is enabled too; set it to false before using mode Apply, or both will rescale the job")
		}
	}
	if k, _, ok := b.flink("scaling.enabled"); ok {
		b.warn(k, "not carried over: the mode comes from %s (default DryRun, which is the operator's passive mode)", AnnotationMode)
	}
}

// int32Value reads an integer ≥ 1 that fits the API's int32.
func (b *builder) int32Value(key, v string) (*int32, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 1 {
		b.bad(key, v, "must be an integer from 1 to %d", math.MaxInt32)
		return nil, false
	}
	i := int32(n)
	return &i, true
}

func (b *builder) parallelism() {
	var minKey, maxKey string
	if k, v, _, ok := b.pick(AnnotationMinParallelism, "vertex.min-parallelism"); ok {
		if p, ok := b.int32Value(k, v); ok {
			b.spec.MinParallelism, minKey = p, k
		}
	}
	if k, v, _, ok := b.pick(AnnotationMaxParallelism, "vertex.max-parallelism"); ok {
		if p, ok := b.int32Value(k, v); ok {
			b.spec.MaxParallelism, maxKey = p, k
		}
	}
	lo, hi := int32(1), int32(1000) // the API's defaults
	loSrc, hiSrc := "the default", "the default"
	if b.spec.MinParallelism != nil {
		lo, loSrc = *b.spec.MinParallelism, minKey
	}
	if b.spec.MaxParallelism != nil {
		hi, hiSrc = *b.spec.MaxParallelism, maxKey
	}
	if lo > hi {
		b.errs = append(b.errs, fmt.Errorf("minParallelism %d (from %s) exceeds maxParallelism %d (from %s)", lo, loSrc, hi, hiSrc))
	}
}

// fraction reads a number in (0,1].
func (b *builder) fraction(key, v string) (float64, bool) {
	f, err := parseFloat(v)
	if err != nil || !(f > 0 && f <= 1) {
		b.bad(key, v, "must be a number in (0,1]")
		return 0, false
	}
	return f, true
}

func (b *builder) utilization() {
	type knob struct {
		key string
		v   float64
		set bool
	}
	var target, lo, hi knob
	read := func(k *knob, annKey string, names ...string) (flinkSet bool) {
		key, v, fromAnn, ok := b.pick(annKey, names...)
		if !ok {
			return false
		}
		if f, good := b.fraction(key, v); good {
			*k = knob{key: key, v: f, set: true}
		}
		return !fromAnn
	}
	flinkTarget := read(&target, AnnotationUtilizationTarget, "utilization.target", "target.utilization")
	read(&hi, AnnotationUtilizationMax, "utilization.max")
	read(&lo, AnnotationUtilizationMin, "utilization.min")
	boundary, boundaryKey, boundarySet := 0.3, "", false
	if k, v, ok := b.flink("target.utilization.boundary"); ok {
		f, err := parseFloat(v)
		if err != nil || f < 0 {
			b.bad(k, v, "must be a number ≥ 0")
		} else {
			boundary, boundaryKey, boundarySet = f, k, true
		}
	}
	t := 0.7 // the API's default
	if target.set {
		t = target.v
	}
	// The operator derives unset bounds as target ± boundary (boundary 0.3
	// by default) whenever its utilization settings are used.
	if flinkTarget || boundarySet {
		src := target.key
		if boundarySet {
			src = boundaryKey
		}
		if !hi.set {
			hi = knob{key: src + " (target + boundary)", v: math.Min(1, t+boundary), set: true}
		}
		if !lo.set {
			v := t - boundary
			if v <= 0 {
				v = math.Min(0.01, t)
			}
			lo = knob{key: src + " (target − boundary)", v: v, set: true}
		}
	}
	// Widen the API's default band to hold a target outside it.
	if !hi.set && t > 0.85 {
		hi = knob{key: target.key, v: t, set: true}
	}
	if !lo.set && t < 0.4 {
		lo = knob{key: target.key, v: t, set: true}
	}
	if !target.set && !hi.set && !lo.set {
		return
	}
	name := func(k knob, def string) string {
		if k.set {
			return k.key
		}
		return def
	}
	lv, hv := 0.4, 0.85
	if lo.set {
		lv = lo.v
	}
	if hi.set {
		hv = hi.v
	}
	if lv > t {
		b.errs = append(b.errs, fmt.Errorf("utilization min %g (from %s) exceeds target %g (from %s)", lv, name(lo, "the default"), t, name(target, "the default")))
	}
	if t > hv {
		b.errs = append(b.errs, fmt.Errorf("utilization target %g (from %s) exceeds max %g (from %s)", t, name(target, "the default"), hv, name(hi, "the default")))
	}
	u := &v1alpha1.Utilization{}
	if target.set {
		u.Target = ptr(target.v)
	}
	if lo.set {
		u.Min = ptr(lo.v)
	}
	if hi.set {
		u.Max = ptr(hi.v)
	}
	b.spec.Utilization = u
}

// duration reads a non-negative duration; negative ones are errors unless
// negativeIsZero.
func (b *builder) duration(key, v string, negativeIsZero bool) (*metav1.Duration, bool) {
	d, err := ParseDuration(v)
	if err != nil {
		b.bad(key, v, "%v", err)
		return nil, false
	}
	if d < 0 {
		if !negativeIsZero {
			b.bad(key, v, "must not be negative")
			return nil, false
		}
		d = 0
	}
	return &metav1.Duration{Duration: d}, true
}

func (b *builder) durations() {
	for _, f := range []struct {
		ann   string
		names []string
		dst   **metav1.Duration
	}{
		{AnnotationMetricsWindow, []string{"metrics.window"}, &b.spec.MetricsWindow},
		{AnnotationCooldownPeriod, nil, &b.spec.CooldownPeriod},
		{AnnotationPollingInterval, nil, &b.spec.PollingInterval},
		{"", []string{"stabilization.interval"}, &b.spec.WarmUp},
		{"", []string{"catch-up.duration"}, &b.spec.CatchUpDuration},
		{"", []string{"restart.time"}, &b.spec.RestartTime},
		{AnnotationTaskManagerStartup, nil, &b.spec.TaskManagerStartup},
		{AnnotationRestartCost, nil, &b.spec.RestartCost},
		{AnnotationPlanningHorizon, nil, &b.spec.PlanningHorizon},
	} {
		if k, v, _, ok := b.pick(f.ann, f.names...); ok {
			if d, ok := b.duration(k, v, false); ok {
				*f.dst = d
			}
		}
	}
	if p := b.spec.PollingInterval; p != nil && p.Duration < time.Second {
		b.bad(AnnotationPollingInterval, b.ann[AnnotationPollingInterval], "must be at least 1s")
		b.spec.PollingInterval = nil
	}
}

func (b *builder) behavior() {
	var up v1alpha1.ScaleUpRules
	var down v1alpha1.ScaleDownRules
	if k, v, ok := b.flink("scale-down.interval", "scale-up.grace-period"); ok {
		// A value ≤ 0 makes the operator scale down at once.
		if d, ok := b.duration(k, v, true); ok {
			down.StabilizationWindow = d
		}
	}
	if k, v, ok := b.flink("scale-up.max-factor"); ok {
		f, err := parseFloat(v)
		if err != nil || f < 0 || f > 1e12 {
			b.bad(k, v, "must be a number from 0 to 1e12")
		} else {
			up.MaxFactor = ptr(1 + f) // the operator's largest step is ×(1+value)
		}
	}
	if k, v, ok := b.flink("scale-down.max-factor"); ok {
		f, err := parseFloat(v)
		switch {
		case err != nil || f < 0:
			b.bad(k, v, "must be a number ≥ 0")
		case f >= 1:
			down.MaxFactor = ptr(float64(UnboundedScaleDownFactor))
			b.warn(k, "a value ≥ 1 does not bound a scale-down; behavior.scaleDown.maxFactor is set to %g", float64(UnboundedScaleDownFactor))
		default:
			// The operator's smallest step is ×(1−value), ours is ÷maxFactor.
			down.MaxFactor = ptr(1 / (1 - f))
		}
	}
	if up != (v1alpha1.ScaleUpRules{}) || down != (v1alpha1.ScaleDownRules{}) {
		b.spec.Behavior = &v1alpha1.Behavior{}
		if up != (v1alpha1.ScaleUpRules{}) {
			b.spec.Behavior.ScaleUp = &up
		}
		if down != (v1alpha1.ScaleDownRules{}) {
			b.spec.Behavior.ScaleDown = &down
		}
	}
}

func isVertexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func (b *builder) vertices() {
	k, v, ok := b.flink("vertex.exclude.ids")
	if !ok {
		return
	}
	ids := parseList(v, ";,")
	seen := map[string]bool{}
	var out []v1alpha1.VertexOverride
	for _, id := range ids {
		if !isVertexID(id) {
			b.bad(k, v, "%q is not a JobVertexID (32 hex digits)", id)
			return
		}
		id = strings.ToLower(id)
		if !seen[id] {
			seen[id] = true
			out = append(out, v1alpha1.VertexOverride{ID: id, Exclude: true})
		}
	}
	if len(out) > 100 {
		b.bad(k, v, "lists %d vertices; at most 100 are allowed", len(out))
		return
	}
	b.spec.Vertices = out
}

func (b *builder) excludedPeriods() {
	k, v, ok := b.flink("excluded.periods")
	if !ok {
		return
	}
	var out []v1alpha1.ExcludedPeriod
	for _, item := range parseList(v, ";") {
		name := fmt.Sprintf("flink-excluded-period-%d", len(out)+1)
		switch {
		case strings.Contains(item, "&&"):
			b.warn(k, "period %q not carried over: a combination with && has no equivalent; add it to spec.excludedPeriods by hand", item)
		case len(item) > 0 && item[0] >= '0' && item[0] <= '9' && strings.Contains(item, ":"):
			sched, d, why, ok := parseDailyRange(item)
			if !ok {
				b.warn(k, "period %q not carried over: %s", item, why)
				continue
			}
			out = append(out, v1alpha1.ExcludedPeriod{Name: name, Schedule: sched, Duration: metav1.Duration{Duration: d}})
		default:
			sched, why, ok := quartzToCron(item)
			if !ok {
				b.warn(k, "period %q not carried over: %s", item, why)
				continue
			}
			if len(sched) > 128 {
				b.warn(k, "period %q not carried over: too long", item)
				continue
			}
			// Every matched minute starts a one-minute window: the same
			// instants the Quartz expression matches with seconds *.
			out = append(out, v1alpha1.ExcludedPeriod{Name: name, Schedule: sched, Duration: metav1.Duration{Duration: time.Minute}})
		}
	}
	if len(out) > 20 {
		b.bad(k, v, "has %d periods; at most 20 are allowed", len(out))
		return
	}
	if len(out) > 0 {
		b.warn(k, "converted to spec.excludedPeriods in UTC; set timeZone if the operator's JVM runs in another zone")
	}
	b.spec.ExcludedPeriods = out
}

func (b *builder) quota() {
	k, v, ok := b.flink("quota.cpu")
	if !ok {
		return
	}
	f, err := parseFloat(v)
	if err != nil || f <= 0 {
		b.bad(k, v, "must be a positive number of cores")
		return
	}
	b.spec.Resources = &v1alpha1.Resources{MaxCores: f}
}

// memory carries the operator's memory settings over: memory tuning
// (memory.tuning.enabled: true is mode Apply, false Recommend; the
// flinkscale.io/memory-mode annotation overrides it) with its overhead as
// the headroom, and the GC and heap thresholds, with the same meaning (skip
// scaling above the share), where 1.0, the operator's default, can never be
// exceeded and so is off, as flinkscale's 0.
func (b *builder) memory() {
	var m v1alpha1.MemoryPolicy
	set := false
	threshold := func(key string, to **float64) {
		k, v, ok := b.flink(key)
		if !ok {
			return
		}
		f, err := parseFloat(v)
		if err != nil || !(f >= 0 && f <= 1) {
			b.bad(k, v, "must be a number in [0,1]")
			return
		}
		if f == 1 {
			f = 0
		}
		*to, set = &f, true
	}
	threshold("memory.gc-pressure.threshold", &m.MaxGCTimeRatio)
	threshold("memory.heap-usage.threshold", &m.MaxHeapUsage)
	if k, v, fromAnn, ok := b.pick(AnnotationMemoryMode, "memory.tuning.enabled"); ok {
		switch on, err := parseBool(v); {
		case fromAnn:
			for _, mode := range []v1alpha1.MemoryMode{v1alpha1.MemoryOff, v1alpha1.MemoryRecommend, v1alpha1.MemoryApply} {
				if strings.EqualFold(strings.TrimSpace(v), string(mode)) {
					m.Mode = mode
				}
			}
			if m.Mode == "" {
				b.bad(k, v, "must be Off, Recommend or Apply")
			}
		case err != nil:
			b.bad(k, v, "must be \"true\" or \"false\"")
		case on:
			m.Mode = v1alpha1.MemoryApply
			b.warn(k, "carried over as spec.memory.mode Apply: unlike the operator's tuning, flinkscale may give the TaskManagers more memory than the spec says when a plan needs it")
		default:
			m.Mode = v1alpha1.MemoryRecommend
		}
		if m.Mode == v1alpha1.MemoryApply && b.spec.TargetRef.Kind != v1alpha1.KindFlinkDeployment {
			b.warn(k, "only a FlinkDeployment's TaskManager memory is ever written; for a %s, Apply only recommends", b.spec.TargetRef.Kind)
		}
		set = set || m.Mode != ""
	}
	if k, v, ok := b.flink("memory.tuning.overhead"); ok {
		f, err := parseFloat(v)
		if err != nil || !(f >= 0 && f <= 10) {
			b.bad(k, v, "must be a number in [0,10]")
		} else {
			m.Headroom, set = &f, true
		}
	}
	if set {
		b.spec.Memory = &m
	}
}

func (b *builder) kafka() {
	group, hasGroup := b.ann[AnnotationKafkaConsumerGroup]
	servers, hasServers := b.ann[AnnotationKafkaBootstrapServers]
	topics, hasTopics := b.ann[AnnotationKafkaTopics]
	secret, hasSecret := b.ann[AnnotationKafkaSecret]
	if !hasGroup {
		for _, k := range []string{AnnotationKafkaBootstrapServers, AnnotationKafkaTopics, AnnotationKafkaSecret} {
			if v, ok := b.ann[k]; ok {
				b.bad(k, v, "needs %s too", AnnotationKafkaConsumerGroup)
			}
		}
		return
	}
	t := v1alpha1.KafkaTrigger{Name: KafkaTriggerName, ConsumerGroup: strings.TrimSpace(group)}
	good := true
	if t.ConsumerGroup == "" || len(t.ConsumerGroup) > 255 {
		b.bad(AnnotationKafkaConsumerGroup, group, "must be 1 to 255 characters")
		good = false
	}
	if !hasServers {
		b.errs = append(b.errs, fmt.Errorf("%s is set but %s is not", AnnotationKafkaConsumerGroup, AnnotationKafkaBootstrapServers))
		good = false
	} else {
		t.BootstrapServers = parseList(servers, ",")
		switch {
		case len(t.BootstrapServers) == 0 || len(t.BootstrapServers) > 32:
			b.bad(AnnotationKafkaBootstrapServers, servers, "must list 1 to 32 host:port pairs, separated by commas")
			good = false
		default:
			for _, s := range t.BootstrapServers {
				if len(s) > 255 || strings.ContainsAny(s, " \t\n") {
					b.bad(AnnotationKafkaBootstrapServers, servers, "%q is not a host:port pair", s)
					good = false
					break
				}
			}
		}
	}
	if hasTopics {
		t.Topics = parseList(topics, ",")
		if len(t.Topics) > 64 {
			b.bad(AnnotationKafkaTopics, topics, "lists more than 64 topics")
			good = false
		}
		for _, s := range t.Topics {
			if len(s) > 249 || strings.ContainsAny(s, " \t\n") {
				b.bad(AnnotationKafkaTopics, topics, "%q is not a topic name", s)
				good = false
				break
			}
		}
	}
	if hasSecret {
		s := strings.TrimSpace(secret)
		if s == "" || len(s) > 253 {
			b.bad(AnnotationKafkaSecret, secret, "must be a Secret name of 1 to 253 characters")
			good = false
		}
		t.AuthenticationRef = &v1alpha1.AuthenticationRef{Name: s, Kind: "Secret"}
	}
	if good {
		b.spec.Triggers = &v1alpha1.Triggers{Kafka: []v1alpha1.KafkaTrigger{t}}
	}
}

// targetRef reads the annotations that only a JobManager Deployment carries.
func (b *builder) targetRef() {
	for key, field := range map[string]*string{
		AnnotationTaskManagerDeployment: &b.spec.TargetRef.TaskManagerDeployment,
		AnnotationJobName:               &b.spec.TargetRef.JobName,
	} {
		v, ok := b.ann[key]
		if !ok {
			continue
		}
		if b.spec.TargetRef.Kind != v1alpha1.KindDeployment {
			b.warn(key, "applies only to a JobManager Deployment; ignored on a %s", b.spec.TargetRef.Kind)
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 253 {
			b.bad(key, v, "must be a name of 1 to 253 characters")
			continue
		}
		*field = v
	}
}

func (b *builder) restURL() {
	v, ok := b.ann[AnnotationFlinkRESTURL]
	if !ok {
		return
	}
	raw := strings.TrimSpace(v)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 {
		b.bad(AnnotationFlinkRESTURL, v, "must be an http:// or https:// URL with a host")
		return
	}
	if b.spec.Triggers == nil {
		b.spec.Triggers = &v1alpha1.Triggers{}
	}
	b.spec.Triggers.FlinkMetrics = &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: raw}}
}

// unmapped are the operator's options with no equivalent, by name or name
// prefix, and why.
var unmapped = []struct{ prefix, why string }{
	{"restart.time-tracking.", "flinkscale always measures restart downtime from its rescale history (restartTime is the guess until it has)"},
	{"backlog-processing.lag-threshold", "flinkscale sizes for the backlog through catchUpDuration instead"},
	{"observed-true-processing-rate.", "flinkscale estimates the true processing rate from busy time only"},
	{"scaling.effectiveness.", "no equivalent: flinkscale does not block scale-ups after an ineffective one"},
	{"memory.tuning.maximize-managed-memory", "no equivalent: flinkscale sizes managed memory from its use (none when nothing uses it, RocksDB's and ForSt's share per slot kept)"},
	{"memory.tuning.scale-down-compensation.", "no equivalent: flinkscale always counts the state a scale-down adds to each TaskManager's heap"},
	{"memory.", "no equivalent (memory.tuning.enabled, memory.tuning.overhead, memory.gc-pressure.threshold and memory.heap-usage.threshold are carried over to spec.memory)"},
	{"history.", "no equivalent: the rescale history kept in the policy status has fixed limits"},
	{"metrics.busy-time.aggregator", "no equivalent: flinkscale uses the busiest subtask (the operator's default, MAX)"},
	{"scaling.event.interval", "no equivalent: events are the controller's"},
	{"flink.rest-client.timeout", "no equivalent: set spec.triggers.flinkMetrics for the metrics source"},
	{"scaling.key-group.partitions.adjust.mode", "no equivalent: flinkscale always aligns parallelism to key groups and source partitions its own way"},
	{"scaling.parallelism-alignment.", "no equivalent: flinkscale always aligns parallelism to key groups and source partitions its own way"},
	{"observed-scalability.", "no equivalent: flinkscale learns from its rescale history instead"},
	{"metrics.custom-evaluator", "no equivalent: custom evaluator plugins are not supported"},
	{"scaling.custom-executor", "no equivalent: custom executor plugins are not supported"},
	{"quota.memory", "no equivalent: only quota.cpu (resources.maxCores) is carried over"},
	{"vertex.exclude.", "not carried over"},
}

// leftovers warns about every autoscaler option not read and every unknown
// flinkscale.io/ annotation.
func (b *builder) leftovers() {
	for k := range b.conf {
		if b.consumed[k] {
			continue
		}
		name, ok := strings.CutPrefix(k, FlinkPrefix)
		if !ok {
			name, ok = strings.CutPrefix(k, FlinkLegacyPrefix)
		}
		if !ok {
			continue
		}
		why := "unknown option of the Flink operator's autoscaler; ignored"
		for _, u := range unmapped {
			if strings.HasPrefix(name, u.prefix) {
				why = u.why
				break
			}
		}
		b.warn(k, "%s", why)
	}
	for k := range b.ann {
		if strings.HasPrefix(k, "flinkscale.io/") && !knownAnnotations[k] {
			b.warn(k, "unknown flinkscale.io annotation; ignored")
		}
	}
	sortWarnings(b.warns)
}

func sortWarnings(w []Warning) {
	slices.SortStableFunc(w, func(a, b Warning) int { return strings.Compare(a.Key, b.Key) })
}

func ptr[T any](v T) *T { return &v }
