package v1alpha1_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

func f64(v float64) *float64 { return &v }
func i32(v int32) *int32     { return &v }
func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

func TestScalingPolicyEmptySpecIsDefault(t *testing.T) {
	var s v1alpha1.FlinkScalingPolicySpec
	got, err := s.ScalingPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if want := scaling.DefaultPolicy(); !reflect.DeepEqual(got, want) {
		t.Fatalf("empty spec:\n got %+v\nwant %+v", got, want)
	}
}

// TestScalingPolicyFields sets one spec field per case and checks that
// exactly the corresponding scaling.Policy field changes.
func TestScalingPolicyFields(t *testing.T) {
	cases := []struct {
		name string
		spec func(*v1alpha1.FlinkScalingPolicySpec)
		want func(*scaling.Policy)
	}{
		{"utilization.target", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Utilization = &v1alpha1.Utilization{Target: f64(0.6)}
		}, func(p *scaling.Policy) { p.Utilization.Target = 0.6 }},
		{"utilization.min", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Utilization = &v1alpha1.Utilization{Min: f64(0.3)}
		}, func(p *scaling.Policy) { p.Utilization.Min = 0.3 }},
		{"utilization.max", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Utilization = &v1alpha1.Utilization{Max: f64(0.95)}
		}, func(p *scaling.Policy) { p.Utilization.Max = 0.95 }},
		{"metricsWindow", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MetricsWindow = dur("10m") },
			func(p *scaling.Policy) { p.MetricsWindow = scaling.D(10 * time.Minute) }},
		{"minSamples", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MinSamples = i32(7) },
			func(p *scaling.Policy) { p.MinSamples = 7 }},
		{"warmUp", func(s *v1alpha1.FlinkScalingPolicySpec) { s.WarmUp = dur("3m") },
			func(p *scaling.Policy) { p.WarmUp = scaling.D(3 * time.Minute) }},
		{"maxSnapshotAge", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MaxSnapshotAge = dur("4m") },
			func(p *scaling.Policy) { p.MaxSnapshotAge = scaling.D(4 * time.Minute) }},
		{"cooldownPeriod", func(s *v1alpha1.FlinkScalingPolicySpec) { s.CooldownPeriod = dur("0s") },
			func(p *scaling.Policy) { p.CooldownPeriod = scaling.D(0) }},
		{"catchUpDuration zero disables", func(s *v1alpha1.FlinkScalingPolicySpec) { s.CatchUpDuration = dur("0s") },
			func(p *scaling.Policy) { p.CatchUpDuration = scaling.D(0) }},
		{"restartTime", func(s *v1alpha1.FlinkScalingPolicySpec) { s.RestartTime = dur("2m30s") },
			func(p *scaling.Policy) { p.RestartTime = scaling.D(150 * time.Second) }},
		{"taskManagerStartup", func(s *v1alpha1.FlinkScalingPolicySpec) { s.TaskManagerStartup = dur("45s") },
			func(p *scaling.Policy) { p.TaskManagerStartup = scaling.D(45 * time.Second) }},
		{"taskManagerStartup zero", func(s *v1alpha1.FlinkScalingPolicySpec) { s.TaskManagerStartup = dur("0s") },
			func(p *scaling.Policy) { p.TaskManagerStartup = scaling.D(0) }},
		{"restartCost", func(s *v1alpha1.FlinkScalingPolicySpec) { s.RestartCost = dur("30m") },
			func(p *scaling.Policy) { p.RestartCost = scaling.D(30 * time.Minute) }},
		{"restartCost zero", func(s *v1alpha1.FlinkScalingPolicySpec) { s.RestartCost = dur("0s") },
			func(p *scaling.Policy) { p.RestartCost = scaling.D(0) }},
		{"planningHorizon", func(s *v1alpha1.FlinkScalingPolicySpec) { s.PlanningHorizon = dur("6h") },
			func(p *scaling.Policy) { p.PlanningHorizon = scaling.D(6 * time.Hour) }},
		{"minParallelism", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MinParallelism = i32(2) },
			func(p *scaling.Policy) { p.MinParallelism = 2 }},
		{"maxParallelism", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MaxParallelism = i32(64) },
			func(p *scaling.Policy) { p.MaxParallelism = 64 }},
		{"vertices", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Vertices = []v1alpha1.VertexOverride{
				{ID: "bc764cd8ddf7a0cff126f51c16239658", MinParallelism: 2, MaxParallelism: 12},
				{Name: "Sink: kafka", Exclude: true},
			}
		}, func(p *scaling.Policy) {
			p.Vertices = []scaling.VertexOverride{
				{ID: "bc764cd8ddf7a0cff126f51c16239658", MinParallelism: 2, MaxParallelism: 12},
				{Name: "Sink: kafka", Exclude: true},
			}
		}},
		{"behavior.scaleUp", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Behavior = &v1alpha1.Behavior{ScaleUp: &v1alpha1.ScaleUpRules{StabilizationWindow: dur("1m"), MaxFactor: f64(4)}}
		}, func(p *scaling.Policy) {
			p.Behavior.ScaleUp = scaling.ScalingRules{StabilizationWindow: scaling.D(time.Minute), MaxFactor: 4}
		}},
		{"behavior.scaleDown", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Behavior = &v1alpha1.Behavior{ScaleDown: &v1alpha1.ScaleDownRules{StabilizationWindow: dur("1h"), MaxFactor: f64(1.5)}}
		}, func(p *scaling.Policy) {
			p.Behavior.ScaleDown = scaling.ScalingRules{StabilizationWindow: scaling.D(time.Hour), MaxFactor: 1.5}
		}},
		{"behavior.scaleDown.maxFactor alone keeps the window", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Behavior = &v1alpha1.Behavior{ScaleDown: &v1alpha1.ScaleDownRules{MaxFactor: f64(3)}}
		}, func(p *scaling.Policy) { p.Behavior.ScaleDown.MaxFactor = 3 }},
		{"resources.slotsPerTaskManager int", func(s *v1alpha1.FlinkScalingPolicySpec) {
			n := intstr.FromInt32(4)
			s.Resources = &v1alpha1.Resources{SlotsPerTaskManager: &n}
		}, func(p *scaling.Policy) { p.Resources.SlotsPerTaskManager = 4 }},
		{"resources.slotsPerTaskManager auto", func(s *v1alpha1.FlinkScalingPolicySpec) {
			n := intstr.FromString("auto")
			s.Resources = &v1alpha1.Resources{SlotsPerTaskManager: &n}
		}, func(p *scaling.Policy) { p.Resources.SlotsPerTaskManager = 0 }},
		{"resources caps", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Resources = &v1alpha1.Resources{MaxTaskManagers: 10, MaxCores: 12.5}
		}, func(p *scaling.Policy) { p.Resources.MaxTaskManagers = 10; p.Resources.MaxCores = 12.5 }},
		{"minChange", func(s *v1alpha1.FlinkScalingPolicySpec) { s.MinChange = f64(0) },
			func(p *scaling.Policy) { p.MinChange = 0 }},
		{"checkpoints.maxDurationRatio", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Checkpoints = &v1alpha1.CheckpointPolicy{MaxDurationRatio: f64(0.8)}
		}, func(p *scaling.Policy) { p.Checkpoints.MaxDurationRatio = 0.8 }},
		{"memory.mode Apply", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Memory = &v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryApply}
		}, func(p *scaling.Policy) { p.Memory.Mode = scaling.MemoryApply }},
		{"memory.mode Off", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Memory = &v1alpha1.MemoryPolicy{Mode: v1alpha1.MemoryOff}
		}, func(p *scaling.Policy) { p.Memory.Mode = scaling.MemoryOff }},
		{"memory.headroom", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Memory = &v1alpha1.MemoryPolicy{Headroom: f64(0.5)}
		}, func(p *scaling.Policy) { p.Memory.Headroom = 0.5 }},
		{"memory.minSaving zero turns memory-only restarts off", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Memory = &v1alpha1.MemoryPolicy{MinSaving: f64(0)}
		}, func(p *scaling.Policy) { p.Memory.MinSaving = 0 }},
		{"memory thresholds", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.Memory = &v1alpha1.MemoryPolicy{MaxGCTimeRatio: f64(0.1), MaxHeapUsage: f64(0.9)}
		}, func(p *scaling.Policy) { p.Memory.MaxGCTimeRatio = 0.1; p.Memory.MaxHeapUsage = 0.9 }},
		{"controller-only fields do not touch the model", func(s *v1alpha1.FlinkScalingPolicySpec) {
			s.TargetRef = v1alpha1.TargetRef{Name: "job", Kind: "FlinkDeployment"}
			s.Mode = v1alpha1.ModeApply
			s.PollingInterval = dur("10s")
			s.AllowStatelessUpgrade = true
			s.Triggers = &v1alpha1.Triggers{Kafka: []v1alpha1.KafkaTrigger{{BootstrapServers: []string{"k:9092"}, ConsumerGroup: "g"}}}
			s.ExcludedPeriods = []v1alpha1.ExcludedPeriod{{Schedule: "0 8 * * 1-5", Duration: *dur("10h")}}
		}, func(*scaling.Policy) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s v1alpha1.FlinkScalingPolicySpec
			tc.spec(&s)
			got, err := s.ScalingPolicy()
			if err != nil {
				t.Fatal(err)
			}
			want := scaling.DefaultPolicy()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestScalingPolicyInvalid(t *testing.T) {
	cases := []struct {
		name string
		spec v1alpha1.FlinkScalingPolicySpec
		want []string
	}{
		{"min above target", v1alpha1.FlinkScalingPolicySpec{Utilization: &v1alpha1.Utilization{Min: f64(0.8)}},
			[]string{"utilization must satisfy min ≤ target ≤ max"}},
		{"utilization zero", v1alpha1.FlinkScalingPolicySpec{Utilization: &v1alpha1.Utilization{Target: f64(0), Min: f64(0)}},
			[]string{"utilization.target must be in (0,1]", "utilization.min must be in (0,1]"}},
		{"utilization above one", v1alpha1.FlinkScalingPolicySpec{Utilization: &v1alpha1.Utilization{Max: f64(1.2)}},
			[]string{"utilization.max must be in (0,1]"}},
		{"max below min parallelism", v1alpha1.FlinkScalingPolicySpec{MinParallelism: i32(8), MaxParallelism: i32(4)},
			[]string{"1 ≤ minParallelism ≤ maxParallelism"}},
		{"negative duration", v1alpha1.FlinkScalingPolicySpec{CooldownPeriod: &metav1.Duration{Duration: -time.Minute}},
			[]string{"cooldownPeriod must not be negative"}},
		{"max factor below one", v1alpha1.FlinkScalingPolicySpec{Behavior: &v1alpha1.Behavior{ScaleUp: &v1alpha1.ScaleUpRules{MaxFactor: f64(0.5)}}},
			[]string{"behavior.scaleUp.maxFactor must be a finite number ≥ 1"}},
		{"vertex without id or name", v1alpha1.FlinkScalingPolicySpec{Vertices: []v1alpha1.VertexOverride{{MaxParallelism: 3}}},
			[]string{"vertices[0] needs an id or a name"}},
		{"vertex min above max", v1alpha1.FlinkScalingPolicySpec{Vertices: []v1alpha1.VertexOverride{{ID: "a", MinParallelism: 5, MaxParallelism: 3}}},
			[]string{"vertices[0] bounds"}},
		{"bad slots string", v1alpha1.FlinkScalingPolicySpec{Resources: &v1alpha1.Resources{SlotsPerTaskManager: ptrIntstr(intstr.FromString("four"))}},
			[]string{`slotsPerTaskManager must be a positive integer or "auto"`}},
		{"zero slots", v1alpha1.FlinkScalingPolicySpec{Resources: &v1alpha1.Resources{SlotsPerTaskManager: ptrIntstr(intstr.FromInt32(0))}},
			[]string{`slotsPerTaskManager must be a positive integer or "auto"`}},
		{"minChange one", v1alpha1.FlinkScalingPolicySpec{MinChange: f64(1)}, []string{"minChange must be in [0,1)"}},
		{"minSamples zero", v1alpha1.FlinkScalingPolicySpec{MinSamples: i32(0)}, []string{"minSamples must be ≥ 1"}},
		{"bad memory", v1alpha1.FlinkScalingPolicySpec{Memory: &v1alpha1.MemoryPolicy{Mode: "Auto", Headroom: f64(-1), MinSaving: f64(1)}},
			[]string{"memory.mode must be Off, Recommend or Apply", "memory.headroom must be in [0,10]", "memory.minSaving must be in [0,1)"}},
		{"negative cost and horizon", v1alpha1.FlinkScalingPolicySpec{
			TaskManagerStartup: &metav1.Duration{Duration: -time.Second},
			RestartCost:        &metav1.Duration{Duration: -time.Minute},
			PlanningHorizon:    &metav1.Duration{Duration: -time.Hour},
		}, []string{"taskManagerStartup must not be negative", "restartCost must not be negative", "planningHorizon must not be negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.ScalingPolicy()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func ptrIntstr(v intstr.IntOrString) *intstr.IntOrString { return &v }

func sampleHistory() scaling.History {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	return scaling.History{
		Rescales: []scaling.RescaleRecord{
			{DecidedAt: t0, CompletedAt: t0.Add(3 * time.Minute), Downtime: scaling.D(75 * time.Second), Outcome: scaling.OutcomeSucceeded,
				Vertices:       []scaling.RescaleVertex{{ID: "src", From: 4, To: 8, TrueRateBefore: 1000.5, TrueRateAfter: 1900.25}, {ID: "sink", From: 2, To: 2}},
				StateSizeBytes: 3.5e9, StartedTaskManagers: true},
			{DecidedAt: t0.Add(time.Hour), Outcome: scaling.OutcomeInProgress, StateSizeBytes: 123456789.25},
		},
		Recommendations: []scaling.RecommendationRecord{
			{At: t0.Add(30 * time.Second), Parallelism: map[string]int{"src": 8, "sink": 2},
				Arrival: map[string]float64{"src": 12345.678901234567, "src2": 0}},
			{At: t0.Add(60 * time.Second), Parallelism: map[string]int{"src": 7, "sink": 3}},
		},
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	h := sampleHistory()
	st := v1alpha1.FromHistory(h)
	if got := st.ToHistory(); !reflect.DeepEqual(got, h) {
		t.Fatalf("in memory:\n got %+v\nwant %+v", got, h)
	}
	// Through JSON, as the API server stores it (times at second precision,
	// which sampleHistory uses).
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back v1alpha1.HistoryStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := back.ToHistory()
	if len(got.Rescales) != len(h.Rescales) || len(got.Recommendations) != len(h.Recommendations) {
		t.Fatalf("through JSON: lengths differ: %+v", got)
	}
	for i := range h.Rescales {
		w, g := h.Rescales[i], got.Rescales[i]
		if !g.DecidedAt.Equal(w.DecidedAt) || !g.CompletedAt.Equal(w.CompletedAt) || g.Downtime != w.Downtime ||
			g.Outcome != w.Outcome || !reflect.DeepEqual(g.Vertices, w.Vertices) ||
			g.StateSizeBytes != w.StateSizeBytes || g.StartedTaskManagers != w.StartedTaskManagers {
			t.Errorf("through JSON: rescale %d: got %+v want %+v", i, g, w)
		}
	}
	for i := range h.Recommendations {
		w, g := h.Recommendations[i], got.Recommendations[i]
		if !g.At.Equal(w.At) || !reflect.DeepEqual(g.Parallelism, w.Parallelism) || !reflect.DeepEqual(g.Arrival, w.Arrival) {
			t.Errorf("through JSON: recommendation %d: got %+v want %+v", i, g, w)
		}
	}
	// And back to the status form, unchanged.
	if again := v1alpha1.FromHistory(got); !reflect.DeepEqual(again.ToHistory(), got) {
		t.Errorf("second round trip differs")
	}
}

func TestHistoryEmptyAndBounded(t *testing.T) {
	if st := v1alpha1.FromHistory(scaling.History{}); st != nil {
		t.Errorf("empty history: got %+v, want nil", st)
	}
	var nilStatus *v1alpha1.HistoryStatus
	if h := nilStatus.ToHistory(); !reflect.DeepEqual(h, scaling.History{}) {
		t.Errorf("nil status: got %+v", h)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var h scaling.History
	for i := range 50 {
		h.Rescales = append(h.Rescales, scaling.RescaleRecord{DecidedAt: t0.Add(time.Duration(i) * time.Hour), Outcome: scaling.OutcomeSucceeded})
	}
	for i := range 300 {
		h.Recommendations = append(h.Recommendations, scaling.RecommendationRecord{At: t0.Add(time.Duration(i) * time.Minute), Parallelism: map[string]int{"a": i}})
	}
	st := v1alpha1.FromHistory(h)
	// Every decision required another parallelism: a run each.
	if len(st.Rescales) != v1alpha1.MaxRescaleHistory || len(st.RecommendationRuns) != v1alpha1.MaxRecommendationHistory {
		t.Fatalf("bounded lengths: %d rescales, %d runs", len(st.Rescales), len(st.RecommendationRuns))
	}
	// The newest are kept, oldest first.
	if !st.Rescales[len(st.Rescales)-1].DecidedAt.Time.Equal(h.Rescales[49].DecidedAt) ||
		!st.Rescales[0].DecidedAt.Time.Equal(h.Rescales[30].DecidedAt) {
		t.Errorf("wrong rescales kept")
	}
	if st.RecommendationRuns[0].Parallelism["a"] != 180 || st.RecommendationRuns[119].Parallelism["a"] != 299 {
		t.Errorf("wrong recommendations kept")
	}

	// 300 decisions that required the same: one run of the newest 120
	// (minutes 180 to 299: offsets 60 s to 119 × 60 s).
	for i := range h.Recommendations {
		h.Recommendations[i].Parallelism = map[string]int{"a": 3}
	}
	st = v1alpha1.FromHistory(h)
	if len(st.RecommendationRuns) != 1 {
		t.Fatalf("steady: %d runs, want 1", len(st.RecommendationRuns))
	}
	run := st.RecommendationRuns[0]
	if !run.From.Time.Equal(t0.Add(180*time.Minute)) || len(run.Offsets) != 119 || run.Offsets[0] != 60 || run.Offsets[118] != 119*60 {
		t.Errorf("steady run: from %v, %d offsets %v", run.From, len(run.Offsets), run.Offsets)
	}
}

// The status stores the new history fields under their JSON names, and
// leaves them out when unset (a history without them stays as compact as
// before).
func TestHistoryJSONNames(t *testing.T) {
	b, err := json.Marshal(v1alpha1.FromHistory(sampleHistory()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"stateSizeBytes":3500000000`, `"startedTaskManagers":true`, `"arrival":{"src":[12345.678901234567],"src2":[0]}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("status JSON lacks %s:\n%s", want, b)
		}
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b, err = json.Marshal(v1alpha1.FromHistory(scaling.History{
		Rescales:        []scaling.RescaleRecord{{DecidedAt: t0, Outcome: scaling.OutcomeInProgress}},
		Recommendations: []scaling.RecommendationRecord{{At: t0, Parallelism: map[string]int{"a": 1}, Arrival: map[string]float64{}}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"stateSizeBytes", "startedTaskManagers", "arrival"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("status JSON has %s though it is unset:\n%s", absent, b)
		}
	}
}

// JSON has no NaN or infinity: FromHistory leaves such arrival rates out
// and makes such a state size 0 (unknown), so that the status can still be
// written.
func TestHistoryNonFiniteNumbers(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h := scaling.History{
		Rescales: []scaling.RescaleRecord{{DecidedAt: t0, Outcome: scaling.OutcomeSucceeded, StateSizeBytes: math.Inf(1)}},
		Recommendations: []scaling.RecommendationRecord{
			{At: t0, Parallelism: map[string]int{"a": 1, "b": 2}, Arrival: map[string]float64{"a": math.NaN(), "b": 250}},
			{At: t0.Add(time.Minute), Parallelism: map[string]int{"a": 1}, Arrival: map[string]float64{"a": math.Inf(-1)}},
		},
	}
	st := v1alpha1.FromHistory(h)
	if _, err := json.Marshal(st); err != nil {
		t.Fatalf("status does not encode: %v", err)
	}
	got := st.ToHistory()
	if got.Rescales[0].StateSizeBytes != 0 {
		t.Errorf("state size = %g, want 0", got.Rescales[0].StateSizeBytes)
	}
	if want := map[string]float64{"b": 250}; !reflect.DeepEqual(got.Recommendations[0].Arrival, want) {
		t.Errorf("arrival = %v, want %v", got.Recommendations[0].Arrival, want)
	}
	if got.Recommendations[1].Arrival != nil {
		t.Errorf("arrival = %v, want none", got.Recommendations[1].Arrival)
	}
}
