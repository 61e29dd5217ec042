package optin

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{}, false},
		{map[string]string{AnnotationEnabled: "true"}, true},
		{map[string]string{AnnotationEnabled: " TRUE "}, true},
		{map[string]string{AnnotationEnabled: "false"}, false},
		{map[string]string{AnnotationEnabled: "yes"}, false},
	} {
		if got := Enabled(tc.ann); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.ann, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"300000", 300 * time.Second}, // no unit: milliseconds, as in Flink
		{"300000 ms", 300 * time.Second},
		{"30 s", 30 * time.Second},
		{"30s", 30 * time.Second},
		{"5 min", 5 * time.Minute},
		{"5 MINUTES", 5 * time.Minute},
		{"5m", 5 * time.Minute},
		{"1h", time.Hour},
		{"2 hours", 2 * time.Hour},
		{"1 d", 24 * time.Hour},
		{"3 days", 72 * time.Hour},
		{"10 seconds", 10 * time.Second},
		{"7 millis", 7 * time.Millisecond},
		{"PT5M", 5 * time.Minute},
		{"pt1h30m", 90 * time.Minute},
		{"P1DT2H", 26 * time.Hour},
		{"PT1.5S", 1500 * time.Millisecond},
		{"1h30m", 90 * time.Minute}, // Go syntax
		{"1.5s", 1500 * time.Millisecond},
		{"-1 min", -time.Minute},
		{"0", 0},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "min", "5 fortnights", "5 m s", "P", "PT", "PT5", "P5H", "1.5 min", "999999999999 d", "abc", "--5s"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func mustSpec(t *testing.T, ann, conf map[string]string) (v1alpha1.FlinkScalingPolicySpec, []Warning) {
	t.Helper()
	s, w, err := PolicySpec("job", ann, conf)
	if err != nil {
		t.Fatalf("PolicySpec(%v, %v): %v", ann, conf, err)
	}
	if _, err := s.ScalingPolicy(); err != nil {
		t.Fatalf("ScalingPolicy: %v", err)
	}
	return s, w
}

func TestDefaults(t *testing.T) {
	s, w := mustSpec(t, map[string]string{AnnotationEnabled: "true"}, nil)
	want := v1alpha1.FlinkScalingPolicySpec{
		TargetRef: v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: "FlinkDeployment", Name: "job"},
		Mode:      v1alpha1.ModeDryRun,
	}
	if !equal(s, want) {
		t.Errorf("spec = %+v, want %+v", s, want)
	}
	if len(w) != 0 {
		t.Errorf("warnings = %v", w)
	}
	if _, _, err := PolicySpec("", nil, nil); err == nil {
		t.Error("an empty deployment name must be an error")
	}
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		want v1alpha1.Mode
	}{
		{map[string]string{}, v1alpha1.ModeDryRun},
		{map[string]string{AnnotationMode: "Apply"}, v1alpha1.ModeApply},
		{map[string]string{AnnotationMode: "apply"}, v1alpha1.ModeApply},
		{map[string]string{AnnotationMode: "DryRun"}, v1alpha1.ModeDryRun},
		{map[string]string{AnnotationMode: "Paused"}, v1alpha1.ModePaused},
		// paused wins over the mode
		{map[string]string{AnnotationMode: "Apply", AnnotationPaused: "true"}, v1alpha1.ModePaused},
		{map[string]string{AnnotationMode: "Apply", AnnotationPaused: "false"}, v1alpha1.ModeApply},
	} {
		s, _ := mustSpec(t, tc.ann, nil)
		if s.Mode != tc.want {
			t.Errorf("%v: mode %s, want %s", tc.ann, s.Mode, tc.want)
		}
	}
}

// TestFlinkMappings checks each operator option, under its current name.
func TestFlinkMappings(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf map[string]string
		want func(s *v1alpha1.FlinkScalingPolicySpec) bool
	}{
		// utilization.target 0.8, default boundary 0.3: max = min(1, 1.1) = 1, min = 0.5
		{"target", map[string]string{"job.autoscaler.utilization.target": "0.8"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Utilization.Target, 0.8) && near(s.Utilization.Max, 1) && near(s.Utilization.Min, 0.5)
		}},
		// deprecated key, boundary 0.1: 0.6 ± 0.1
		{"deprecated target + boundary", map[string]string{"job.autoscaler.target.utilization": "0.6", "job.autoscaler.target.utilization.boundary": "0.1"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Utilization.Target, 0.6) && near(s.Utilization.Max, 0.7) && near(s.Utilization.Min, 0.5)
		}},
		// explicit bounds beat the derived ones
		{"max/min", map[string]string{"job.autoscaler.utilization.target": "0.5", "job.autoscaler.utilization.max": "0.9", "job.autoscaler.utilization.min": "0.2"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Utilization.Target, 0.5) && near(s.Utilization.Max, 0.9) && near(s.Utilization.Min, 0.2)
		}},
		// target 0.2 − boundary 0.3 < 0: min clamped to 0.01
		{"min clamped", map[string]string{"job.autoscaler.utilization.target": "0.2"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Utilization.Min, 0.01) && near(s.Utilization.Max, 0.5)
		}},
		// boundary alone: around the default target 0.7 → 0.5..0.9
		{"boundary only", map[string]string{"job.autoscaler.target.utilization.boundary": "0.2"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return s.Utilization.Target == nil && near(s.Utilization.Max, 0.9) && near(s.Utilization.Min, 0.5)
		}},
		{"metrics.window", map[string]string{"job.autoscaler.metrics.window": "15 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.MetricsWindow == *dur(15 * time.Minute)
		}},
		{"stabilization.interval → warmUp", map[string]string{"job.autoscaler.stabilization.interval": "5 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.WarmUp == *dur(5 * time.Minute)
		}},
		{"scale-down.interval → scaleDown.stabilizationWindow", map[string]string{"job.autoscaler.scale-down.interval": "1 h"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.Behavior.ScaleDown.StabilizationWindow == *dur(time.Hour) && s.Behavior.ScaleUp == nil
		}},
		// ≤ 0 means immediate in the operator
		{"scale-down.interval negative", map[string]string{"job.autoscaler.scale-down.interval": "-1 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.Behavior.ScaleDown.StabilizationWindow == *dur(0)
		}},
		{"scale-up.grace-period (deprecated)", map[string]string{"job.autoscaler.scale-up.grace-period": "10 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.Behavior.ScaleDown.StabilizationWindow == *dur(10 * time.Minute)
		}},
		// operator max factor 1 + 2 = 3
		{"scale-up.max-factor", map[string]string{"job.autoscaler.scale-up.max-factor": "2"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Behavior.ScaleUp.MaxFactor, 3)
		}},
		// operator min factor 1 − 0.6 = 0.4, i.e. ÷ 2.5
		{"scale-down.max-factor", map[string]string{"job.autoscaler.scale-down.max-factor": "0.6"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Behavior.ScaleDown.MaxFactor, 2.5)
		}},
		// 1 − 0 = 1: no scale-down step at all → ÷ 1
		{"scale-down.max-factor 0", map[string]string{"job.autoscaler.scale-down.max-factor": "0"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Behavior.ScaleDown.MaxFactor, 1)
		}},
		// ≥ 1: unbounded → the cap
		{"scale-down.max-factor unbounded", map[string]string{"job.autoscaler.scale-down.max-factor": "1"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return near(s.Behavior.ScaleDown.MaxFactor, UnboundedScaleDownFactor)
		}},
		{"parallelism", map[string]string{"job.autoscaler.vertex.min-parallelism": "2", "job.autoscaler.vertex.max-parallelism": "200"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.MinParallelism == 2 && *s.MaxParallelism == 200
		}},
		{"catch-up.duration", map[string]string{"job.autoscaler.catch-up.duration": "30 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.CatchUpDuration == *dur(30 * time.Minute)
		}},
		{"catch-up.duration 0", map[string]string{"job.autoscaler.catch-up.duration": "0"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.CatchUpDuration == *dur(0)
		}},
		{"restart.time", map[string]string{"job.autoscaler.restart.time": "5 min"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return *s.RestartTime == *dur(5 * time.Minute)
		}},
		{"vertex.exclude.ids", map[string]string{"job.autoscaler.vertex.exclude.ids": "0A448493B4782967B150582570326227;bc764cd8ddf7a0cff126f51c16239658;0a448493b4782967b150582570326227"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return len(s.Vertices) == 2 && s.Vertices[0] == v1alpha1.VertexOverride{ID: "0a448493b4782967b150582570326227", Exclude: true} &&
				s.Vertices[1] == v1alpha1.VertexOverride{ID: "bc764cd8ddf7a0cff126f51c16239658", Exclude: true}
		}},
		{"vertex.exclude.ids yaml list", map[string]string{"job.autoscaler.vertex.exclude.ids": "[0a448493b4782967b150582570326227, bc764cd8ddf7a0cff126f51c16239658]"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return len(s.Vertices) == 2
		}},
		{"quota.cpu", map[string]string{"job.autoscaler.quota.cpu": "16"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return s.Resources.MaxCores == 16
		}},
		// daily 22:00-06:00 → starts at 22:00 each day, lasts 8h;
		// Quartz "* * 9-17 ? * MON-FRI" (every second of 9-17 h on
		// weekdays) → every such minute, for 1m; Quartz day 2-6 (Mon-Fri,
		// Sunday = 1) → cron 1-5.
		{"excluded.periods", map[string]string{"job.autoscaler.excluded.periods": "22:00:00-06:00:00;* * 9-17 ? * MON-FRI;* 0 12 ? * 2-6"}, func(s *v1alpha1.FlinkScalingPolicySpec) bool {
			return len(s.ExcludedPeriods) == 3 &&
				s.ExcludedPeriods[0] == v1alpha1.ExcludedPeriod{Name: "flink-excluded-period-1", Schedule: "0 22 * * *", Duration: *dur(8 * time.Hour)} &&
				s.ExcludedPeriods[1] == v1alpha1.ExcludedPeriod{Name: "flink-excluded-period-2", Schedule: "* 9-17 * * MON-FRI", Duration: *dur(time.Minute)} &&
				s.ExcludedPeriods[2] == v1alpha1.ExcludedPeriod{Name: "flink-excluded-period-3", Schedule: "0 12 * * 1-5", Duration: *dur(time.Minute)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, w := mustSpec(t, nil, tc.conf)
			if !tc.want(&s) {
				t.Errorf("spec = %s", show(s))
			}
			t.Logf("warnings: %v", w)
		})
		// The legacy prefix maps the same way.
		t.Run(tc.name+" legacy", func(t *testing.T) {
			legacy := map[string]string{}
			for k, v := range tc.conf {
				legacy[FlinkLegacyPrefix+strings.TrimPrefix(k, FlinkPrefix)] = v
			}
			s, _ := mustSpec(t, nil, legacy)
			if !tc.want(&s) {
				t.Errorf("spec = %s", show(s))
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	_, w := mustSpec(t, nil, map[string]string{
		"job.autoscaler.enabled":                     "true",
		"job.autoscaler.scaling.enabled":             "true",
		"job.autoscaler.memory.tuning.enabled":       "true",
		"job.autoscaler.quota.memory":                "10g",
		"job.autoscaler.no-such-option":              "1",
		"job.autoscaler.scale-down.max-factor":       "1.5",
		"job.autoscaler.excluded.periods":            "0 0 * ? * * && 09:00:00-17:00:00;09:00:30-10:00:00;0 * * ? * *;* * * L * ?;* 0 8 ? * * 2030",
		"job.autoscaler.restart.time-tracking.limit": "15 min",
		"kubernetes.operator.reconcile.interval":     "60 s", // not the autoscaler's: silent
	})
	want := []string{
		"job.autoscaler.enabled: the Flink operator's autoscaler is enabled too",
		"job.autoscaler.excluded.periods: period \"0 0 * ? * * && 09:00:00-17:00:00\" not carried over",
		"job.autoscaler.excluded.periods: period \"09:00:30-10:00:00\" not carried over",
		"job.autoscaler.excluded.periods: period \"0 * * ? * *\" not carried over: only a seconds field of *",
		"job.autoscaler.excluded.periods: period \"* * * L * ?\" not carried over",
		"job.autoscaler.excluded.periods: period \"* 0 8 ? * * 2030\" not carried over",
		"job.autoscaler.memory.tuning.enabled: carried over as spec.memory.mode Apply",
		"job.autoscaler.no-such-option: unknown option",
		"job.autoscaler.quota.memory: no equivalent",
		"job.autoscaler.restart.time-tracking.limit: flinkscale always measures",
		"job.autoscaler.scale-down.max-factor: a value ≥ 1 does not bound",
		"job.autoscaler.scaling.enabled: not carried over",
	}
	if len(w) != len(want) {
		t.Errorf("got %d warnings, want %d: %v", len(w), len(want), w)
	}
	for _, p := range want {
		found := false
		for _, x := range w {
			found = found || strings.HasPrefix(x.String(), p)
		}
		if !found {
			t.Errorf("no warning starting %q in %v", p, w)
		}
	}
	_, w = mustSpec(t, map[string]string{"flinkscale.io/min-paralelism": "3"}, nil)
	if len(w) != 1 || w[0].Key != "flinkscale.io/min-paralelism" {
		t.Errorf("typo'd annotation: warnings %v", w)
	}
}

// TestPrecedence: annotation > job.autoscaler.* > legacy > deprecated name >
// API default.
func TestPrecedence(t *testing.T) {
	conf := map[string]string{
		"job.autoscaler.utilization.target":                         "0.6",
		"kubernetes.operator.job.autoscaler.utilization.target":     "0.5",
		"job.autoscaler.target.utilization":                         "0.4",
		"job.autoscaler.vertex.max-parallelism":                     "50",
		"kubernetes.operator.job.autoscaler.vertex.max-parallelism": "40",
		"job.autoscaler.metrics.window":                             "10 min",
	}
	s, w := mustSpec(t, nil, conf)
	if !near(s.Utilization.Target, 0.6) || *s.MaxParallelism != 50 || s.MetricsWindow.Duration != 10*time.Minute {
		t.Errorf("flink precedence: %s", show(s))
	}
	if len(w) != 3 { // the two shadowed targets and the shadowed max-parallelism
		t.Errorf("warnings %v", w)
	}
	// Legacy beats the deprecated name under the current prefix.
	s, _ = mustSpec(t, nil, map[string]string{
		"kubernetes.operator.job.autoscaler.utilization.target": "0.5",
		"job.autoscaler.target.utilization":                     "0.4",
	})
	if !near(s.Utilization.Target, 0.5) {
		t.Errorf("legacy vs deprecated: %s", show(s))
	}
	ann := map[string]string{
		AnnotationUtilizationTarget: "0.75",
		AnnotationMaxParallelism:    "64",
		AnnotationMetricsWindow:     "3m",
	}
	s, w = mustSpec(t, ann, conf)
	// target 0.75 from the annotation; the Flink target is overridden so
	// no derivation happens: max stays the default 0.85, min 0.4.
	if !near(s.Utilization.Target, 0.75) || s.Utilization.Max != nil || s.Utilization.Min != nil ||
		*s.MaxParallelism != 64 || s.MetricsWindow.Duration != 3*time.Minute {
		t.Errorf("annotation precedence: %s", show(s))
	}
	overridden := 0
	for _, x := range w {
		if strings.Contains(x.Message, "overrides it") {
			overridden++
		}
	}
	if overridden != 3 {
		t.Errorf("want 3 overridden warnings: %v", w)
	}
	// An annotated target above the default max widens the max.
	s, _ = mustSpec(t, map[string]string{AnnotationUtilizationTarget: "0.95"}, nil)
	if !near(s.Utilization.Max, 0.95) || s.Utilization.Min != nil {
		t.Errorf("widened: %s", show(s))
	}
	s, _ = mustSpec(t, map[string]string{AnnotationUtilizationTarget: "0.3"}, nil)
	if !near(s.Utilization.Min, 0.3) || s.Utilization.Max != nil {
		t.Errorf("widened: %s", show(s))
	}
	// Annotation bounds with a Flink-derived band.
	s, _ = mustSpec(t, map[string]string{AnnotationUtilizationMax: "0.9"}, map[string]string{"job.autoscaler.utilization.target": "0.8"})
	if !near(s.Utilization.Max, 0.9) || !near(s.Utilization.Min, 0.5) || !near(s.Utilization.Target, 0.8) {
		t.Errorf("mixed: %s", show(s))
	}
}

func TestAnnotations(t *testing.T) {
	s, _ := mustSpec(t, map[string]string{
		AnnotationEnabled:               "true",
		AnnotationMinParallelism:        "2",
		AnnotationMaxParallelism:        "32",
		AnnotationUtilizationTarget:     "0.6",
		AnnotationUtilizationMin:        "0.3",
		AnnotationUtilizationMax:        "0.8",
		AnnotationKafkaBootstrapServers: "kafka-0:9092, kafka-1:9092",
		AnnotationKafkaConsumerGroup:    "orders",
		AnnotationKafkaTopics:           "orders,payments",
		AnnotationKafkaSecret:           "kafka-sasl",
		AnnotationCooldownPeriod:        "10 min",
		AnnotationMetricsWindow:         "PT3M",
		AnnotationTaskManagerStartup:    "45 s",
		AnnotationRestartCost:           "0",
		AnnotationPlanningHorizon:       "2h",
	}, nil)
	want := v1alpha1.FlinkScalingPolicySpec{
		TargetRef:      v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: "FlinkDeployment", Name: "job"},
		Mode:           v1alpha1.ModeDryRun,
		MinParallelism: ptr(int32(2)),
		MaxParallelism: ptr(int32(32)),
		Utilization:    &v1alpha1.Utilization{Target: ptr(0.6), Min: ptr(0.3), Max: ptr(0.8)},
		CooldownPeriod: dur(10 * time.Minute),
		MetricsWindow:  dur(3 * time.Minute),
		// The policy durations without a Flink option.
		TaskManagerStartup: dur(45 * time.Second),
		RestartCost:        dur(0),
		PlanningHorizon:    dur(2 * time.Hour),
		Triggers: &v1alpha1.Triggers{Kafka: []v1alpha1.KafkaTrigger{{
			Name: "kafka", BootstrapServers: []string{"kafka-0:9092", "kafka-1:9092"}, ConsumerGroup: "orders",
			Topics: []string{"orders", "payments"}, AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "kafka-sasl", Kind: "Secret"},
		}}},
	}
	if !equal(s, want) {
		t.Errorf("spec = %s\nwant   %s", show(s), show(want))
	}
	if got := PolicyAnnotations(map[string]string{AnnotationPausedScaleIn: "true", AnnotationEnabled: "true"}); len(got) != 1 || got[AnnotationPausedScaleIn] != "true" {
		t.Errorf("PolicyAnnotations = %v", got)
	}
	if PolicyAnnotations(nil) != nil {
		t.Error("PolicyAnnotations(nil) != nil")
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		ann, conf map[string]string
		want      []string // substrings of the error
	}{
		{map[string]string{AnnotationMode: "Yolo"}, nil, []string{AnnotationMode, `"Yolo"`}},
		{map[string]string{AnnotationPaused: "yes"}, nil, []string{AnnotationPaused, `"yes"`}},
		{map[string]string{AnnotationPausedScaleIn: "1"}, nil, []string{AnnotationPausedScaleIn}},
		{map[string]string{AnnotationMinParallelism: "0"}, nil, []string{AnnotationMinParallelism, `"0"`}},
		{map[string]string{AnnotationMaxParallelism: "many"}, nil, []string{AnnotationMaxParallelism, `"many"`}},
		{map[string]string{AnnotationMaxParallelism: "99999999999"}, nil, []string{AnnotationMaxParallelism}},
		{map[string]string{AnnotationMinParallelism: "8", AnnotationMaxParallelism: "4"}, nil, []string{"minParallelism 8", "maxParallelism 4", AnnotationMinParallelism, AnnotationMaxParallelism}},
		{map[string]string{AnnotationMinParallelism: "2000"}, nil, []string{"maxParallelism 1000 (from the default)"}},
		{map[string]string{AnnotationMinParallelism: "8"}, map[string]string{"job.autoscaler.vertex.max-parallelism": "4"}, []string{AnnotationMinParallelism, "job.autoscaler.vertex.max-parallelism"}},
		{map[string]string{AnnotationUtilizationTarget: "1.5"}, nil, []string{AnnotationUtilizationTarget, `"1.5"`, "(0,1]"}},
		{map[string]string{AnnotationUtilizationTarget: "0"}, nil, []string{AnnotationUtilizationTarget}},
		{map[string]string{AnnotationUtilizationTarget: "NaN"}, nil, []string{AnnotationUtilizationTarget}},
		{map[string]string{AnnotationUtilizationMin: "0.9"}, nil, []string{"min 0.9", "target 0.7 (from the default)"}},
		{map[string]string{AnnotationUtilizationTarget: "0.9", AnnotationUtilizationMax: "0.8"}, nil, []string{"target 0.9", "max 0.8"}},
		{map[string]string{AnnotationCooldownPeriod: "soon"}, nil, []string{AnnotationCooldownPeriod, `"soon"`}},
		{map[string]string{AnnotationMetricsWindow: "-5m"}, nil, []string{AnnotationMetricsWindow, "negative"}},
		{map[string]string{AnnotationTaskManagerStartup: "a while"}, nil, []string{AnnotationTaskManagerStartup, `"a while"`}},
		{map[string]string{AnnotationRestartCost: "-10m"}, nil, []string{AnnotationRestartCost, "negative"}},
		{map[string]string{AnnotationPlanningHorizon: "-PT1H"}, nil, []string{AnnotationPlanningHorizon, `"-PT1H"`}},
		{map[string]string{AnnotationKafkaConsumerGroup: "g"}, nil, []string{AnnotationKafkaBootstrapServers}},
		{map[string]string{AnnotationKafkaBootstrapServers: "k:9092"}, nil, []string{AnnotationKafkaBootstrapServers, "needs " + AnnotationKafkaConsumerGroup}},
		{map[string]string{AnnotationKafkaConsumerGroup: "g", AnnotationKafkaBootstrapServers: " , "}, nil, []string{AnnotationKafkaBootstrapServers}},
		{map[string]string{AnnotationKafkaConsumerGroup: " ", AnnotationKafkaBootstrapServers: "k:9092"}, nil, []string{AnnotationKafkaConsumerGroup}},
		{map[string]string{AnnotationKafkaConsumerGroup: "g", AnnotationKafkaBootstrapServers: "k:9092", AnnotationKafkaSecret: ""}, nil, []string{AnnotationKafkaSecret}},
		{nil, map[string]string{"job.autoscaler.metrics.window": "15 minutes please"}, []string{"job.autoscaler.metrics.window", `"15 minutes please"`}},
		{nil, map[string]string{"kubernetes.operator.job.autoscaler.restart.time": "x"}, []string{"kubernetes.operator.job.autoscaler.restart.time"}},
		{nil, map[string]string{"job.autoscaler.utilization.target": "0"}, []string{"job.autoscaler.utilization.target"}},
		{nil, map[string]string{"job.autoscaler.target.utilization.boundary": "-0.1"}, []string{"job.autoscaler.target.utilization.boundary"}},
		{nil, map[string]string{"job.autoscaler.scale-up.max-factor": "-1"}, []string{"job.autoscaler.scale-up.max-factor"}},
		{nil, map[string]string{"job.autoscaler.scale-down.max-factor": "Inf"}, []string{"job.autoscaler.scale-down.max-factor"}},
		{nil, map[string]string{"job.autoscaler.vertex.exclude.ids": "source"}, []string{"job.autoscaler.vertex.exclude.ids", `"source"`, "JobVertexID"}},
		{nil, map[string]string{"job.autoscaler.quota.cpu": "0"}, []string{"job.autoscaler.quota.cpu"}},
		{nil, map[string]string{"job.autoscaler.utilization.min": "0.8", "job.autoscaler.utilization.target": "0.7"}, []string{"min 0.8", "job.autoscaler.utilization.min"}},
		{map[string]string{AnnotationMemoryMode: "Tune"}, nil, []string{AnnotationMemoryMode, `"Tune"`, "Off, Recommend or Apply"}},
		{nil, map[string]string{"job.autoscaler.memory.tuning.enabled": "sometimes"}, []string{"job.autoscaler.memory.tuning.enabled", `"sometimes"`}},
		{nil, map[string]string{"job.autoscaler.memory.tuning.overhead": "-0.1"}, []string{"job.autoscaler.memory.tuning.overhead", "[0,10]"}},
		{nil, map[string]string{"job.autoscaler.memory.gc-pressure.threshold": "1.5"}, []string{"job.autoscaler.memory.gc-pressure.threshold", "[0,1]"}},
		// every error at once
		{map[string]string{AnnotationMode: "x", AnnotationMinParallelism: "y"}, nil, []string{AnnotationMode, AnnotationMinParallelism}},
	} {
		s, w, err := PolicySpec("job", tc.ann, tc.conf)
		if err == nil {
			t.Errorf("%v %v: no error; spec %s", tc.ann, tc.conf, show(s))
			continue
		}
		if !equal(s, v1alpha1.FlinkScalingPolicySpec{}) || w != nil {
			t.Errorf("%v %v: an error must come with nothing else", tc.ann, tc.conf)
		}
		for _, sub := range tc.want {
			if !strings.Contains(err.Error(), sub) {
				t.Errorf("%v %v: error %q lacks %q", tc.ann, tc.conf, err, sub)
			}
		}
	}
}

func TestQuartzToCron(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"* * * ? * *", "* * * * *"},
		{"* 0/15 8-18 ? * MON-FRI", "0/15 8-18 * * MON-FRI"},
		{"* * 1 1 * ?", "* 1 1 * *"},
		{"* * 0 ? * 1,7", "* 0 * * 0,6"},
		{"* * 0 ? * 2/2", "* 0 * * 1/2"},
		{"* * 0 ? * * *", "* 0 * * *"},
	} {
		got, why, ok := quartzToCron(tc.in)
		if !ok || got != tc.want {
			t.Errorf("quartzToCron(%q) = %q, %q, %v; want %q", tc.in, got, why, ok, tc.want)
		}
	}
	for _, in := range []string{"* * *", "0 * * ? * *", "* * * ? * 8", "* * * 15W * ?", "* * * ? * 6#3", "* ? * * * *"} {
		if got, _, ok := quartzToCron(in); ok {
			t.Errorf("quartzToCron(%q) = %q, want failure", in, got)
		}
	}
}

var (
	crdDuration = regexp.MustCompile(`^(0|([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$`)
	crdSchedule = regexp.MustCompile(`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4})$`)
)

// checkCRD checks what the CRD's schema would check beyond ScalingPolicy().
func checkCRD(t *testing.T, s v1alpha1.FlinkScalingPolicySpec) {
	t.Helper()
	for _, d := range []*metav1.Duration{s.MetricsWindow, s.WarmUp, s.CooldownPeriod, s.CatchUpDuration, s.RestartTime,
		s.TaskManagerStartup, s.RestartCost, s.PlanningHorizon} {
		if d != nil && (!crdDuration.MatchString(d.Duration.String()) || len(d.Duration.String()) > 64) {
			t.Errorf("duration %s fails the CRD pattern", d.Duration)
		}
	}
	if b := s.Behavior; b != nil && b.ScaleDown != nil && b.ScaleDown.StabilizationWindow != nil && !crdDuration.MatchString(b.ScaleDown.StabilizationWindow.Duration.String()) {
		t.Errorf("scaleDown window %s fails the CRD pattern", b.ScaleDown.StabilizationWindow.Duration)
	}
	if len(s.ExcludedPeriods) > 20 || len(s.Vertices) > 100 {
		t.Errorf("too many items")
	}
	for _, p := range s.ExcludedPeriods {
		if !crdSchedule.MatchString(p.Schedule) || len(p.Schedule) > 128 || !crdDuration.MatchString(p.Duration.Duration.String()) {
			t.Errorf("excluded period %+v fails the CRD", p)
		}
	}
	if s.TargetRef.Name == "" || s.TargetRef.Kind != "FlinkDeployment" {
		t.Errorf("targetRef %+v", s.TargetRef)
	}
	switch s.Mode {
	case v1alpha1.ModeApply, v1alpha1.ModeDryRun, v1alpha1.ModePaused:
	default:
		t.Errorf("mode %q", s.Mode)
	}
}

// fuzzKeys are the keys FuzzPolicySpec picks from (by a byte), so that the
// fuzzer reaches every mapping.
var fuzzKeys = []string{
	AnnotationMode, AnnotationPaused, AnnotationMinParallelism, AnnotationMaxParallelism,
	AnnotationUtilizationTarget, AnnotationUtilizationMin, AnnotationUtilizationMax,
	AnnotationKafkaBootstrapServers, AnnotationKafkaConsumerGroup, AnnotationKafkaTopics, AnnotationKafkaSecret,
	AnnotationCooldownPeriod, AnnotationMetricsWindow,
	"job.autoscaler.utilization.target", "job.autoscaler.target.utilization", "job.autoscaler.target.utilization.boundary",
	"job.autoscaler.utilization.max", "kubernetes.operator.job.autoscaler.utilization.min",
	"job.autoscaler.metrics.window", "job.autoscaler.stabilization.interval", "job.autoscaler.scale-down.interval",
	"job.autoscaler.scale-up.max-factor", "job.autoscaler.scale-down.max-factor",
	"job.autoscaler.vertex.min-parallelism", "kubernetes.operator.job.autoscaler.vertex.max-parallelism",
	"job.autoscaler.catch-up.duration", "job.autoscaler.restart.time", "job.autoscaler.vertex.exclude.ids",
	"job.autoscaler.excluded.periods", "job.autoscaler.quota.cpu", "job.autoscaler.memory.tuning.enabled",
	"job.autoscaler.memory.tuning.overhead", AnnotationMemoryMode,
	AnnotationTaskManagerStartup, AnnotationRestartCost, AnnotationPlanningHorizon,
}

// FuzzPolicySpec: lines "<byte><value>" set fuzzKeys[byte % n] (annotations
// and Flink options alike) to value. PolicySpec must not panic, and either
// fail or return a spec that validates.
func FuzzPolicySpec(f *testing.F) {
	idx := func(k string) string {
		for i, x := range fuzzKeys {
			if x == k {
				return string(rune('A' + i))
			}
		}
		panic(k)
	}
	f.Add(idx(AnnotationMode) + "Apply\n" + idx("job.autoscaler.utilization.target") + "0.8")
	f.Add(idx("job.autoscaler.target.utilization.boundary") + "0.5\n" + idx(AnnotationUtilizationMin) + "0.1")
	f.Add(idx("job.autoscaler.excluded.periods") + "22:00-06:00;* * 9-17 ? * 2-6")
	f.Add(idx("job.autoscaler.scale-down.max-factor") + "0.99999\n" + idx("job.autoscaler.scale-up.max-factor") + "1e12")
	f.Add(idx("job.autoscaler.metrics.window") + "PT1.5S\n" + idx("job.autoscaler.restart.time") + "106751 d")
	f.Add(idx(AnnotationKafkaConsumerGroup) + "g\n" + idx(AnnotationKafkaBootstrapServers) + "a:1,b:2")
	f.Add(idx(AnnotationTaskManagerStartup) + "90 s\n" + idx(AnnotationRestartCost) + "PT0.5S\n" + idx(AnnotationPlanningHorizon) + "2 d")
	f.Add(idx("job.autoscaler.vertex.exclude.ids") + "[0a448493b4782967b150582570326227]")
	f.Fuzz(func(t *testing.T, data string) {
		ann, conf := map[string]string{}, map[string]string{}
		for _, line := range strings.Split(data, "\n") {
			if line == "" {
				continue
			}
			k := fuzzKeys[int(line[0]-'A')%len(fuzzKeys)]
			if line[0] < 'A' {
				k = fuzzKeys[int(line[0])%len(fuzzKeys)]
			}
			if strings.HasPrefix(k, "flinkscale.io/") {
				ann[k] = line[1:]
			} else {
				conf[k] = line[1:]
			}
		}
		s, w, err := PolicySpec("job", ann, conf)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if _, err := s.ScalingPolicy(); err != nil {
			t.Fatalf("spec from %v %v does not validate: %v", ann, conf, err)
		}
		checkCRD(t, s)
		for _, x := range w {
			if x.Key == "" || x.Message == "" {
				t.Fatalf("empty warning %+v", x)
			}
		}
	})
}

func TestPollingIntervalAndRESTURLAnnotations(t *testing.T) {
	spec, _, err := PolicySpec("orders", map[string]string{
		AnnotationPollingInterval: "15s",
		AnnotationFlinkRESTURL:    "https://flink.example.com/orders/",
	}, nil)
	require.NoError(t, err)
	require.NotNil(t, spec.PollingInterval)
	assert.Equal(t, 15*time.Second, spec.PollingInterval.Duration)
	require.NotNil(t, spec.Triggers)
	assert.Equal(t, "https://flink.example.com/orders/", spec.Triggers.FlinkMetrics.REST.URL)

	for ann, v := range map[string]string{
		AnnotationPollingInterval: "500ms",
		AnnotationFlinkRESTURL:    "flink:8081",
	} {
		_, _, err := PolicySpec("orders", map[string]string{ann: v}, nil)
		require.Error(t, err, "%s=%s", ann, v)
		assert.Contains(t, err.Error(), ann)
	}
}

// The operator's memory tuning carries over to spec.memory: enabled true
// is mode Apply, false Recommend, the overhead is the headroom; the
// flinkscale.io/memory-mode annotation overrides it; the thresholds keep
// their meaning (1.0, never exceeded, is 0: off).
func TestMemoryMappings(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name      string
		ann, conf map[string]string
		want      *v1alpha1.MemoryPolicy
		warnings  []string // prefixes of the warnings
	}{
		{"nothing said", nil, map[string]string{"job.autoscaler.metrics.window": "5 min"}, nil, nil},
		{"tuning enabled", nil, map[string]string{"job.autoscaler.memory.tuning.enabled": "true"},
			&v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryApply}, []string{"job.autoscaler.memory.tuning.enabled: carried over as spec.memory.mode Apply"}},
		{"tuning disabled, legacy prefix", nil, map[string]string{"kubernetes.operator.job.autoscaler.memory.tuning.enabled": "false"},
			&v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryRecommend}, nil},
		{"overhead", nil, map[string]string{"job.autoscaler.memory.tuning.enabled": "false", "job.autoscaler.memory.tuning.overhead": "0.35"},
			&v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryRecommend, Headroom: f(0.35)}, nil},
		{"overhead alone", nil, map[string]string{"job.autoscaler.memory.tuning.overhead": "0"},
			&v1alpha1.MemoryPolicy{Headroom: f(0)}, nil},
		{"annotation", map[string]string{AnnotationMemoryMode: " apply "}, nil, &v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryApply}, nil},
		{"annotation overrides tuning", map[string]string{AnnotationMemoryMode: "Off"}, map[string]string{"job.autoscaler.memory.tuning.enabled": "true"},
			&v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryOff}, []string{"job.autoscaler.memory.tuning.enabled: ignored: annotation " + AnnotationMemoryMode + " overrides it"}},
		{"thresholds with tuning", nil, map[string]string{"job.autoscaler.memory.gc-pressure.threshold": "1.0",
			"job.autoscaler.memory.heap-usage.threshold": "0.9", "job.autoscaler.memory.tuning.enabled": "false"},
			&v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryRecommend, MaxGCTimeRatio: f(0), MaxHeapUsage: f(0.9)}, nil},
		{"options with no equivalent", nil, map[string]string{"job.autoscaler.memory.tuning.maximize-managed-memory": "true",
			"job.autoscaler.memory.tuning.scale-down-compensation.enabled": "false"}, nil,
			[]string{"job.autoscaler.memory.tuning.maximize-managed-memory: no equivalent: flinkscale sizes managed memory",
				"job.autoscaler.memory.tuning.scale-down-compensation.enabled: no equivalent: flinkscale always counts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, w := mustSpec(t, tc.ann, tc.conf)
			assert.Equal(t, tc.want, s.Memory)
			var got []string
			for _, x := range w {
				got = append(got, x.String())
			}
			require.Len(t, got, len(tc.warnings), "%v", got)
			for i, p := range tc.warnings {
				assert.True(t, strings.HasPrefix(got[i], p), "warning %q does not start with %q", got[i], p)
			}
			if tc.want != nil {
				pol, err := s.ScalingPolicy()
				require.NoError(t, err)
				if tc.want.Mode != "" {
					assert.Equal(t, scaling.MemoryMode(tc.want.Mode), pol.Memory.Mode)
				}
			}
		})
	}
}

// Memory tuning on a target whose TaskManagers are not its own is carried
// over, with a warning that it only recommends there.
func TestMemoryApplyOnOtherKindsWarns(t *testing.T) {
	for _, kind := range []string{v1alpha1.KindFlinkSessionJob, v1alpha1.KindDeployment} {
		ref := v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: kind, Name: "j"}
		if kind == v1alpha1.KindDeployment {
			ref.APIVersion = "apps/v1"
		}
		s, w, err := PolicySpecFor(ref, map[string]string{AnnotationMemoryMode: "Apply"}, nil)
		require.NoError(t, err)
		assert.Equal(t, v1alpha1.MemoryApply, s.Memory.Mode)
		require.Len(t, w, 1, kind)
		assert.Equal(t, AnnotationMemoryMode, w[0].Key)
		assert.Contains(t, w[0].Message, "for a "+kind+", Apply only recommends")
	}
	_, w, err := PolicySpec("j", map[string]string{AnnotationMemoryMode: "Apply"}, nil)
	require.NoError(t, err)
	assert.Empty(t, w, "a FlinkDeployment's memory is written")
}
