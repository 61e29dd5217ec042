package v1alpha1_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const crdFile = "config/crd/flinkscale.io_flinkscalingpolicies.yaml"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startAPI starts (or shares) a control plane with config/crd installed and
// returns a client that knows the v1alpha1 types and a fresh namespace.
func startAPI(t *testing.T) (client.Client, string) {
	t.Helper()
	env := envtest.Start(t, envtest.WithCRDPaths(filepath.Join(repoRoot(t), "config", "crd")))
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c, env.CreateNamespace(t, "fsp")
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// createRaw creates a FlinkScalingPolicy from a YAML spec (so that tests can
// send what the Go types could not express, such as bad enums).
func createRaw(t *testing.T, c client.Client, ns, name, spec string) (*v1alpha1.FlinkScalingPolicy, error) {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(spec), &m); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": m}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("FlinkScalingPolicy"))
	u.SetNamespace(ns)
	u.SetName(name)
	if err := c.Create(ctx(t), u); err != nil {
		return nil, err
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	var out v1alpha1.FlinkScalingPolicy
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out, nil
}

func TestAPIDefaults(t *testing.T) {
	c, ns := startAPI(t)
	obj := &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minimal"},
		Spec:       v1alpha1.FlinkScalingPolicySpec{TargetRef: v1alpha1.TargetRef{Name: "wordcount"}},
	}
	if err := c.Create(ctx(t), obj); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.FlinkScalingPolicy
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(obj), &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.Mode != v1alpha1.ModeDryRun {
		t.Errorf("mode = %q, want DryRun", s.Mode)
	}
	// No apiVersion default: it depends on the kind (the operator's for
	// its kinds, apps/v1 for a Deployment), which a CRD default cannot.
	if s.TargetRef.Kind != "FlinkDeployment" || s.TargetRef.APIVersion != "" {
		t.Errorf("targetRef = %+v", s.TargetRef)
	}
	if s.PollingInterval == nil || s.PollingInterval.Duration != 30*time.Second {
		t.Errorf("pollingInterval = %v, want 30s", s.PollingInterval)
	}
	if s.Utilization == nil || s.Utilization.Target == nil || *s.Utilization.Target != 0.7 {
		t.Errorf("utilization = %+v, want target 0.7", s.Utilization)
	}
	if s.Resources == nil || s.Resources.SlotsPerTaskManager == nil || s.Resources.SlotsPerTaskManager.String() != "auto" {
		t.Errorf("resources = %+v, want slotsPerTaskManager auto", s.Resources)
	}
	if s.AllowStatelessUpgrade {
		t.Errorf("allowStatelessUpgrade defaulted to true")
	}
	// Every model knob was defaulted, so nothing comes from DefaultPolicy in
	// the conversion: this checks that the CRD defaults equal the model's.
	for _, p := range []any{s.MetricsWindow, s.MinSamples, s.WarmUp, s.MaxSnapshotAge, s.CooldownPeriod, s.CatchUpDuration,
		s.RestartTime, s.TaskManagerStartup, s.RestartCost, s.PlanningHorizon, s.MinParallelism, s.MaxParallelism, s.Behavior.ScaleUp.StabilizationWindow, s.Behavior.ScaleUp.MaxFactor,
		s.Behavior.ScaleDown.StabilizationWindow, s.Behavior.ScaleDown.MaxFactor, s.MinChange, s.Checkpoints.MaxDurationRatio,
		s.Utilization.Min, s.Utilization.Max, s.Memory.Headroom, s.Memory.MinSaving, s.Memory.MaxGCTimeRatio} {
		if reflect.ValueOf(p).IsNil() {
			t.Errorf("a model knob was not defaulted: %+v", s)
			break
		}
	}
	if s.Memory.Mode != v1alpha1.MemoryRecommend {
		t.Errorf("memory.mode = %q, want Recommend", s.Memory.Mode)
	}
	pol, err := s.ScalingPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if want := scaling.DefaultPolicy(); !reflect.DeepEqual(pol, want) {
		t.Errorf("ScalingPolicy of the defaulted object:\n got %+v\nwant %+v", pol, want)
	}
}

func TestAPIPartialSpec(t *testing.T) {
	c, ns := startAPI(t)
	got, err := createRaw(t, c, ns, "partial", `
targetRef: {name: wordcount}
mode: Apply
utilization: {target: 0.6}
cooldownPeriod: 10m
warmUp: 1h0m0s         # as Go's time.Duration.String writes it
maxSnapshotAge: 1.5µs
maxParallelism: 64
taskManagerStartup: 2m
restartCost: 0s
planningHorizon: 4h
vertices:
- {name: "Sink: kafka", exclude: true}
- {id: bc764cd8ddf7a0cff126f51c16239658, minParallelism: 2, maxParallelism: 12}
behavior:
  scaleDown: {maxFactor: 3}
resources: {slotsPerTaskManager: 4, maxCores: 12.5}
memory: {mode: Apply, headroom: 0.5}
triggers:
  kafka:
  - bootstrapServers: ["kafka:9092"]
    consumerGroup: wordcount
    topics: [words]
    authenticationRef: {name: kafka-sasl}
  flinkMetrics:
    promQL: {url: "http://prometheus:9090"}
excludedPeriods:
- {name: nightly-batch, schedule: "0 1 * * *", duration: 2h, timeZone: Europe/Berlin}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Triggers.Kafka[0].AuthenticationRef.Kind != "Secret" {
		t.Errorf("authenticationRef.kind not defaulted: %+v", got.Spec.Triggers.Kafka[0].AuthenticationRef)
	}
	pol, err := got.Spec.ScalingPolicy()
	if err != nil {
		t.Fatal(err)
	}
	want := scaling.DefaultPolicy()
	want.Utilization.Target = 0.6
	want.CooldownPeriod = scaling.D(10 * time.Minute)
	want.WarmUp = scaling.D(time.Hour)
	want.MaxSnapshotAge = scaling.D(1500 * time.Nanosecond)
	want.MaxParallelism = 64
	want.TaskManagerStartup = scaling.D(2 * time.Minute)
	want.RestartCost = scaling.D(0)
	want.PlanningHorizon = scaling.D(4 * time.Hour)
	want.Vertices = []scaling.VertexOverride{{Name: "Sink: kafka", Exclude: true},
		{ID: "bc764cd8ddf7a0cff126f51c16239658", MinParallelism: 2, MaxParallelism: 12}}
	want.Behavior.ScaleDown.MaxFactor = 3 // the 30m window stays
	want.Resources.SlotsPerTaskManager = 4
	want.Resources.MaxCores = 12.5
	want.Memory.Mode = scaling.MemoryApply
	want.Memory.Headroom = 0.5 // minSaving and maxGCTimeRatio keep their defaults
	if !reflect.DeepEqual(pol, want) {
		t.Errorf("\n got %+v\nwant %+v", pol, want)
	}
}

// Every target kind is accepted with the fields it may carry.
func TestAPIAcceptsEveryKind(t *testing.T) {
	c, ns := startAPI(t)
	for i, spec := range []string{
		`{targetRef: {name: j, kind: FlinkSessionJob}}`,
		`{targetRef: {name: j, kind: FlinkSessionJob, apiVersion: flink.apache.org/v1beta1}}`,
		`{targetRef: {name: j, kind: Deployment}}`,
		`{targetRef: {name: jm, kind: Deployment, apiVersion: apps/v1, taskManagerDeployment: tm, jobName: "Word Count"}}`,
	} {
		if _, err := createRaw(t, c, ns, "ok-"+string(rune('a'+i)), spec); err != nil {
			t.Errorf("rejected %s: %v", spec, err)
		}
	}
}

func TestAPIRejects(t *testing.T) {
	c, ns := startAPI(t)
	cases := []struct {
		name, spec, want string
	}{
		{"min above max utilization", `{targetRef: {name: j}, utilization: {min: 0.9, target: 0.7}}`,
			"utilization.min must be less than or equal to utilization.target"},
		{"target above max utilization", `{targetRef: {name: j}, utilization: {target: 0.9, max: 0.8}}`,
			"utilization.target must be less than or equal to utilization.max"},
		{"utilization zero", `{targetRef: {name: j}, utilization: {target: 0, min: 0}}`,
			"utilization.target must be in (0,1]"},
		{"utilization above one", `{targetRef: {name: j}, utilization: {max: 1.5}}`,
			"utilization.max must be in (0,1]"},
		{"max below min parallelism", `{targetRef: {name: j}, minParallelism: 8, maxParallelism: 4}`,
			"minParallelism must be less than or equal to maxParallelism"},
		{"zero parallelism", `{targetRef: {name: j}, minParallelism: 0}`,
			"should be greater than or equal to 1"},
		{"negative duration", `{targetRef: {name: j}, cooldownPeriod: -5m}`,
			"must be a non-negative duration"},
		{"unparsable duration", `{targetRef: {name: j}, metricsWindow: 5 minutes}`,
			"must be a non-negative duration"},
		{"negative restart cost", `{targetRef: {name: j}, restartCost: -10m}`,
			"must be a non-negative duration"},
		{"unparsable planning horizon", `{targetRef: {name: j}, planningHorizon: 1 day}`,
			"must be a non-negative duration"},
		{"negative TaskManager start-up", `{targetRef: {name: j}, taskManagerStartup: -1m}`,
			"must be a non-negative duration"},
		{"negative stabilization window", `{targetRef: {name: j}, behavior: {scaleDown: {stabilizationWindow: -1m}}}`,
			"must be a non-negative duration"},
		{"polling too fast", `{targetRef: {name: j}, pollingInterval: 500ms}`,
			"must be at least 1s"},
		{"bad mode", `{targetRef: {name: j}, mode: Auto}`,
			`Unsupported value: "Auto"`},
		{"bad kind", `{targetRef: {name: j, kind: StatefulSet}}`,
			"targetRef.kind must be FlinkDeployment"},
		{"Deployment with the operator's apiVersion", `{targetRef: {name: j, kind: Deployment, apiVersion: flink.apache.org/v1beta1}}`,
			"targetRef.apiVersion must be apps/v1 for a Deployment"},
		{"session job with apps/v1", `{targetRef: {name: j, kind: FlinkSessionJob, apiVersion: apps/v1}}`,
			"flink.apache.org/<version> for the operator's kinds"},
		{"TaskManager Deployment on a FlinkDeployment", `{targetRef: {name: j, taskManagerDeployment: tm}}`,
			"apply only to kind Deployment"},
		{"job name on a session job", `{targetRef: {name: j, kind: FlinkSessionJob, jobName: x}}`,
			"apply only to kind Deployment"},
		{"missing target", `{mode: Apply}`,
			"spec.targetRef: Required value"},
		{"vertex without id or name", `{targetRef: {name: j}, vertices: [{maxParallelism: 4}]}`,
			"a vertex override needs an id or a name"},
		{"vertex min above max", `{targetRef: {name: j}, vertices: [{id: a, minParallelism: 5, maxParallelism: 3}]}`,
			"vertex minParallelism must be less than or equal to maxParallelism"},
		{"max factor below one", `{targetRef: {name: j}, behavior: {scaleUp: {maxFactor: 0.5}}}`,
			"maxFactor must be at least 1"},
		{"slots zero", `{targetRef: {name: j}, resources: {slotsPerTaskManager: 0}}`,
			`slotsPerTaskManager must be a positive integer or "auto"`},
		{"slots word", `{targetRef: {name: j}, resources: {slotsPerTaskManager: four}}`,
			`slotsPerTaskManager must be a positive integer or "auto"`},
		{"two metrics sources", `{targetRef: {name: j}, triggers: {flinkMetrics: {rest: {}, promQL: {url: "http://p:9090"}}}}`,
			"set at most one of rest, prometheus and promQL"},
		{"kafka without servers", `{targetRef: {name: j}, triggers: {kafka: [{consumerGroup: g, bootstrapServers: []}]}}`,
			"bootstrapServers"},
		{"bad cron", `{targetRef: {name: j}, excludedPeriods: [{schedule: "every night", duration: 1h}]}`,
			"schedule"},
		{"minChange one", `{targetRef: {name: j}, minChange: 1}`,
			"minChange must be in [0,1)"},
		{"maxDurationRatio zero", `{targetRef: {name: j}, checkpoints: {maxDurationRatio: 0}}`,
			"maxDurationRatio must be positive"},
		{"bad memory mode", `{targetRef: {name: j}, memory: {mode: Auto}}`,
			`Unsupported value: "Auto"`},
		{"negative memory headroom", `{targetRef: {name: j}, memory: {headroom: -0.1}}`,
			"headroom must be in [0,10]"},
		{"memory headroom above ten", `{targetRef: {name: j}, memory: {headroom: 11}}`,
			"headroom must be in [0,10]"},
		{"memory minSaving one", `{targetRef: {name: j}, memory: {minSaving: 1}}`,
			"minSaving must be in [0,1)"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := createRaw(t, c, ns, "bad-"+string(rune('a'+i)), tc.spec)
			if err == nil {
				t.Fatalf("accepted %s", tc.spec)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not contain %q:\n%v", tc.want, err)
			}
			t.Log(err)
		})
	}
}

func TestAPIStatusHistory(t *testing.T) {
	c, ns := startAPI(t)
	obj := &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "with-status"},
		Spec:       v1alpha1.FlinkScalingPolicySpec{TargetRef: v1alpha1.TargetRef{Name: "wordcount"}},
	}
	if err := c.Create(ctx(t), obj); err != nil {
		t.Fatal(err)
	}
	h := sampleHistory()
	now := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	obj.Status = v1alpha1.FlinkScalingPolicyStatus{
		ObservedGeneration:     obj.Generation,
		CurrentParallelism:     "4/2",
		RecommendedParallelism: "8/2",
		LagRecords:             12345,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonReady, Message: "collecting metrics", LastTransitionTime: now}},
		Vertices: []v1alpha1.VertexStatus{{ID: "src", Name: "Source: words", Current: 4, Recommended: 8}, {ID: "sink", Current: 2, Recommended: 2}},
		LastDecision: &v1alpha1.DecisionStatus{Time: now, Action: string(scaling.ActionScale), Summary: "scale up",
			Reasons: []v1alpha1.ReasonStatus{{Code: string(scaling.ReasonOverloaded), Vertex: "src", Message: "busy 0.95"}}},
		Rescale: &v1alpha1.RescaleStatus{Phase: v1alpha1.RescaleRestarting, StartTime: now,
			AppliedParallelism: map[string]int32{"src": 8, "sink": 2}, FromJobID: "0123"},
		History: v1alpha1.FromHistory(h),
	}
	if err := c.Status().Update(ctx(t), obj); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.FlinkScalingPolicy
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(obj), &got); err != nil {
		t.Fatal(err)
	}
	back := got.Status.History.ToHistory()
	if len(back.Rescales) != 2 || !back.Rescales[0].CompletedAt.Equal(h.Rescales[0].CompletedAt) ||
		back.Rescales[0].Downtime != h.Rescales[0].Downtime || !reflect.DeepEqual(back.Rescales[0].Vertices, h.Rescales[0].Vertices) ||
		!reflect.DeepEqual(back.Recommendations[1].Parallelism, h.Recommendations[1].Parallelism) ||
		back.Rescales[0].StateSizeBytes != h.Rescales[0].StateSizeBytes || !back.Rescales[0].StartedTaskManagers ||
		back.Rescales[1].StateSizeBytes != h.Rescales[1].StateSizeBytes || back.Rescales[1].StartedTaskManagers ||
		!reflect.DeepEqual(back.Recommendations[0].Arrival, h.Recommendations[0].Arrival) || back.Recommendations[1].Arrival != nil {
		t.Errorf("history through the API server:\n got %+v\nwant %+v", back, h)
	}
	if got.Status.Rescale == nil || got.Status.Rescale.Phase != v1alpha1.RescaleRestarting || got.Status.LagRecords != 12345 {
		t.Errorf("status = %+v", got.Status)
	}

	// A bad phase is refused.
	got.Status.Rescale.Phase = "Deploying"
	if err := c.Status().Update(ctx(t), &got); err == nil || !strings.Contains(err.Error(), `Unsupported value: "Deploying"`) {
		t.Errorf("bad phase: err = %v", err)
	}
}

func TestCRDPrinterColumns(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), crdFile))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Group != "flinkscale.io" || crd.Spec.Names.Kind != "FlinkScalingPolicy" ||
		!reflect.DeepEqual(crd.Spec.Names.ShortNames, []string{"fsp"}) || !reflect.DeepEqual(crd.Spec.Names.Categories, []string{"flinkscale"}) {
		t.Errorf("names = %+v", crd.Spec.Names)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
		t.Fatalf("versions = %+v", crd.Spec.Versions)
	}
	v := crd.Spec.Versions[0]
	if v.Subresources == nil || v.Subresources.Status == nil {
		t.Errorf("no status subresource")
	}
	want := map[string]string{
		"Target":      ".spec.targetRef.name",
		"Kind":        ".spec.targetRef.kind",
		"Path":        ".status.rescalePath",
		"Mode":        ".spec.mode",
		"Current":     ".status.currentParallelism",
		"Recommended": ".status.recommendedParallelism",
		"Lag":         ".status.lagRecords",
		"Ready":       `.status.conditions[?(@.type=="Ready")].status`,
		"Age":         ".metadata.creationTimestamp",
	}
	var order []string
	for _, col := range v.AdditionalPrinterColumns {
		order = append(order, col.Name)
		if w, ok := want[col.Name]; ok && col.JSONPath != w {
			t.Errorf("column %s: jsonPath %q, want %q", col.Name, col.JSONPath, w)
		}
	}
	if got := strings.Join(order, ","); got != "Target,Kind,Path,Mode,Current,Recommended,Lag,Ready,Age" {
		t.Errorf("columns = %s", got)
	}
}
