package target

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/scaling"
)

// fd builds a FlinkDeployment from JSON, as the API server returns it.
func fd(t testing.TB, js string) *unstructured.Unstructured {
	t.Helper()
	u := New()
	require.NoError(t, u.UnmarshalJSON([]byte(js)))
	return u
}

const stable = `{
  "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
  "metadata": {"namespace": "ns", "name": "orders", "generation": 4, "resourceVersion": "77"},
  "spec": {
    "flinkVersion": "v1_18",
    "flinkConfiguration": {
      "taskmanager.numberOfTaskSlots": "2",
      "pipeline.jobvertex-parallelism-overrides": "bbb:4, aaa:2",
      "jobmanager": {"scheduler": "adaptive"},
      "state.checkpoints.num-retained": 3
    },
    "job": {"jarURI": "local:///a.jar", "parallelism": 4, "upgradeMode": "savepoint"},
    "taskManager": {"resource": {"cpu": 1.5, "memory": "4g"}}
  },
  "status": {
    "observedGeneration": 4, "lifecycleState": "STABLE",
    "jobStatus": {"jobId": "j1", "state": "RUNNING"},
    "reconciliationStatus": {"state": "DEPLOYED"}
  }
}`

func TestRead(t *testing.T) {
	d, err := Read(fd(t, stable))
	require.NoError(t, err)
	assert.Equal(t, "native", d.Mode, "the operator's default mode")
	assert.True(t, d.HasJob)
	assert.Equal(t, UpgradeSavepoint, d.UpgradeMode)
	assert.Equal(t, "running", d.DesiredState, "the operator's default state")
	assert.Equal(t, 4, d.Parallelism)
	assert.Equal(t, map[string]int{"aaa": 2, "bbb": 4}, d.Overrides)
	assert.Equal(t, 2, d.Slots)
	assert.InDelta(t, 1.5, d.TaskManagerCPU, 1e-12)
	assert.True(t, d.Adaptive, "nested YAML keys are flattened: jobmanager.scheduler")
	assert.Equal(t, "3", d.Configuration["state.checkpoints.num-retained"], "numbers become strings")
	assert.Equal(t, "j1", d.JobID)
	assert.Equal(t, "RUNNING", d.JobState)
	assert.Equal(t, LifecycleStable, d.Lifecycle)
	assert.Equal(t, int64(4), d.ObservedGeneration)
	assert.Nil(t, d.Blocked(false))
}

func TestReadRefusesWhatItCannotUnderstand(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(map[string]any)
		want   string
	}{
		"bad override":   {func(s map[string]any) { conf(s)[KeyOverrides] = "aaa:two" }, KeyOverrides},
		"zero override":  {func(s map[string]any) { conf(s)[KeyOverrides] = "aaa:0" }, KeyOverrides},
		"twice":          {func(s map[string]any) { conf(s)[KeyOverrides] = "aaa:1,aaa:2" }, "listed twice"},
		"bad slots":      {func(s map[string]any) { conf(s)[KeySlots] = "many" }, KeySlots},
		"zero slots":     {func(s map[string]any) { conf(s)[KeySlots] = "0" }, KeySlots},
		"bad conf":       {func(s map[string]any) { s["flinkConfiguration"] = "x" }, "flinkConfiguration"},
		"bad cpu":        {func(s map[string]any) { s["taskManager"] = map[string]any{"resource": map[string]any{"cpu": "lots"}} }, "cpu"},
		"bad parallel":   {func(s map[string]any) { s["job"].(map[string]any)["parallelism"] = true }, "parallelism"},
		"bad replicas":   {func(s map[string]any) { s["taskManager"] = map[string]any{"replicas": []any{1}} }, "replicas"},
		"no colon":       {func(s map[string]any) { conf(s)[KeyOverrides] = "aaa" }, KeyOverrides},
		"empty vertex":   {func(s map[string]any) { conf(s)[KeyOverrides] = ":3" }, KeyOverrides},
		"negative slots": {func(s map[string]any) { conf(s)[KeySlots] = "-2" }, KeySlots},
	} {
		t.Run(name, func(t *testing.T) {
			u := fd(t, stable)
			spec := u.Object["spec"].(map[string]any)
			tc.mutate(spec)
			_, err := Read(u)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func conf(spec map[string]any) map[string]any { return spec["flinkConfiguration"].(map[string]any) }

func TestBlocked(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate         func(d *Deployment)
		allowStateless bool
		want           string // "" = not blocked
	}{
		"stable":              {func(*Deployment) {}, false, ""},
		"session cluster":     {func(d *Deployment) { d.HasJob = false }, false, BlockNoJob},
		"suspended":           {func(d *Deployment) { d.DesiredState = "suspended" }, false, BlockSuspended},
		"unreconciled":        {func(d *Deployment) { d.Generation = 5 }, false, BlockSpecNotReconciled},
		"no observedGen":      {func(d *Deployment) { d.Generation, d.ObservedGeneration = 5, 0 }, false, ""},
		"upgrading":           {func(d *Deployment) { d.Lifecycle = LifecycleUpgrading }, false, BlockNotStable},
		"deployed":            {func(d *Deployment) { d.Lifecycle = LifecycleDeployed }, false, BlockNotStable},
		"restarting":          {func(d *Deployment) { d.JobState = "RESTARTING" }, false, BlockJobNotRunning},
		"savepoint":           {func(d *Deployment) { d.SavepointInProgress = true }, false, BlockSavepointInProgress},
		"operator error":      {func(d *Deployment) { d.Error = "boom" }, false, BlockOperatorError},
		"stateless":           {func(d *Deployment) { d.UpgradeMode = UpgradeStateless }, false, BlockStateless},
		"stateless allowed":   {func(d *Deployment) { d.UpgradeMode = UpgradeStateless }, true, ""},
		"last-state":          {func(d *Deployment) { d.UpgradeMode = UpgradeLastState }, false, ""},
		"first reason counts": {func(d *Deployment) { d.Lifecycle, d.JobState = LifecycleUpgrading, "FAILED" }, false, BlockNotStable},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := Read(fd(t, stable))
			require.NoError(t, err)
			tc.mutate(d)
			b := d.Blocked(tc.allowStateless)
			if tc.want == "" {
				assert.Nil(t, b)
				return
			}
			require.NotNil(t, b)
			assert.Equal(t, tc.want, b.Reason)
			assert.NotEmpty(t, b.Message)
		})
	}
}

func TestPlanFields(t *testing.T) {
	plan := scaling.Plan{Parallelism: map[string]int{"bbb": 6, "aaa": 3}, DefaultParallelism: 6, SlotsPerTaskManager: 2, TaskManagers: 3}
	for name, tc := range map[string]struct {
		mode  string
		slots int
		owned map[string]bool
		want  Fields
	}{
		// Native, slots unchanged (2 = 2), nothing owned: only the overrides.
		"native": {"native", 2, nil, Fields{Overrides: "aaa:3,bbb:6"}},
		// The plan changes the slots: they are written.
		"native, new slots": {"native", 4, nil, Fields{Overrides: "aaa:3,bbb:6", Slots: "4"}},
		// Owned from an earlier rescale: kept in the apply (else removed),
		// spec.job.parallelism at its current value 4 (no UPGRADE).
		"native, owned": {"native", 2, map[string]bool{FieldSlots: true, FieldParallelism: true},
			Fields{Overrides: "aaa:3,bbb:6", Slots: "2", Parallelism: 4}},
		// Standalone: parallelism and replicas are SCALE changes there.
		"standalone": {"standalone", 2, nil, Fields{Overrides: "aaa:3,bbb:6", Parallelism: 6, TaskManagerReplicas: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := Read(fd(t, stable))
			require.NoError(t, err)
			d.Mode = tc.mode
			p := plan
			p.SlotsPerTaskManager = tc.slots
			f := d.PlanFields(p, tc.owned)
			assert.Equal(t, tc.want, f)
			assert.False(t, d.Says(f), "the deployment does not say this plan yet")
		})
	}
}

func TestSaysComparesMeanings(t *testing.T) {
	d, err := Read(fd(t, stable))
	require.NoError(t, err)
	// The deployment lists "bbb:4, aaa:2" and slots "2".
	assert.True(t, d.Says(Fields{Overrides: "aaa:2,bbb:4"}), "order and spaces do not matter")
	assert.True(t, d.Says(Fields{Overrides: "aaa:2,bbb:4", Slots: "2", Parallelism: 4}))
	assert.False(t, d.Says(Fields{Overrides: "aaa:2"}), "a vertex missing")
	assert.False(t, d.Says(Fields{Overrides: "aaa:2,bbb:4", Slots: "3"}))
	assert.False(t, d.Says(Fields{Overrides: "aaa:2,bbb:4", Parallelism: 5}))
}

func TestApplyObjectHasOnlyTheManagedFields(t *testing.T) {
	d, err := Read(fd(t, stable))
	require.NoError(t, err)
	u := d.ApplyObject(Fields{Overrides: "aaa:3", Slots: "4", Parallelism: 4, TaskManagerReplicas: 2})
	want := map[string]any{
		"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
		"metadata": map[string]any{"namespace": "ns", "name": "orders", "resourceVersion": "77"},
		"spec": map[string]any{
			"flinkConfiguration": map[string]any{KeyOverrides: "aaa:3", KeySlots: "4"},
			"job":                map[string]any{"parallelism": int64(4)},
			"taskManager":        map[string]any{"replicas": int64(2)},
		},
	}
	assert.Equal(t, want, u.Object)
	// Absent fields are left out (so that applying releases them).
	u = d.ApplyObject(Fields{})
	assert.Equal(t, map[string]any{}, u.Object["spec"])
}

func TestOwnedFields(t *testing.T) {
	u := fd(t, stable)
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:job":{"f:parallelism":{}}}}`)}},
		{Manager: "flinkscale", Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:flinkConfiguration":{".":{},"f:pipeline.jobvertex-parallelism-overrides":{},"f:taskmanager.numberOfTaskSlots":{}}}}`)}},
	})
	owned, err := OwnedFields(u, "flinkscale")
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{FieldOverrides: true, FieldSlots: true}, owned)

	owned, err = OwnedFields(u, "nobody")
	require.NoError(t, err)
	assert.Empty(t, owned)
}

func TestFormatOverridesRoundTrips(t *testing.T) {
	p := map[string]int{"c": 1, "a": 12, "b": 3}
	s := FormatOverrides(p)
	assert.Equal(t, "a:12,b:3,c:1", s)
	back, err := ParseOverrides(s)
	require.NoError(t, err)
	assert.Equal(t, p, back)
	empty, err := ParseOverrides(" , ")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// FuzzParseOverrides: never panics; what parses formats back to the same
// map.
func FuzzParseOverrides(f *testing.F) {
	for _, s := range []string{"", "a:1", "a:1,b:2", " a : 3 ,", "a:1,a:2", "a:-1", ":", "a:99999999999999999999", "a:1,,b:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseOverrides(s)
		if err != nil {
			return
		}
		back, err := ParseOverrides(FormatOverrides(p))
		require.NoError(t, err)
		assert.Equal(t, p, back)
	})
}

// FuzzRead: any JSON object is either refused with an error or read into a
// Deployment whose apply object is well formed; nothing panics.
func FuzzRead(f *testing.F) {
	f.Add(stable)
	f.Add(`{"apiVersion":"flink.apache.org/v1beta1","kind":"FlinkDeployment","spec":{"flinkConfiguration":{"a":{"b":[1,2]}},"job":{"parallelism":"3"}}}`)
	f.Add(`{"apiVersion":"flink.apache.org/v1beta1","kind":"FlinkDeployment","spec":null,"status":{"jobStatus":7}}`)
	f.Add(`{"apiVersion":"flink.apache.org/v1beta1","kind":"FlinkDeployment","spec":{"taskManager":{"resource":{"cpu":"x"}}}}`)
	f.Fuzz(func(t *testing.T, js string) {
		u := New()
		if u.UnmarshalJSON([]byte(js)) != nil {
			return
		}
		d, err := Read(u)
		if err != nil {
			return
		}
		_ = d.Blocked(false)
		f := d.PlanFields(scaling.Plan{Parallelism: map[string]int{"v": 2}, DefaultParallelism: 2, SlotsPerTaskManager: 1, TaskManagers: 2}, nil)
		obj := d.ApplyObject(f)
		if _, err := json.Marshal(obj.Object); err != nil {
			t.Fatalf("apply object does not marshal: %v", err)
		}
	})
}

func TestRescaleInPlace(t *testing.T) {
	for _, tc := range []struct {
		version, mode string
		adaptive      bool
		want          bool
	}{
		{"v1_18", "native", true, true},
		{"v1_20", "", true, true},
		{"v2_0", "native", true, true},
		{"v1_17", "native", true, false}, // no resource-requirements API
		{"v1_20", "native", false, false},
		{"v1_20", "standalone", true, false},
		{"", "native", true, false},
		{"1.20", "native", true, false}, // not the operator's enum
	} {
		d := Deployment{FlinkVersion: tc.version, Mode: tc.mode, Adaptive: tc.adaptive}
		if got := d.RescaleInPlace(); got != tc.want {
			t.Errorf("%+v: RescaleInPlace() = %v, want %v", tc, got, tc.want)
		}
	}
	off := Deployment{FlinkVersion: "v1_20", Adaptive: true, Configuration: map[string]string{KeyInPlaceScaling: "false"}}
	if off.RescaleInPlace() {
		t.Errorf("in-place scaling turned off: RescaleInPlace() = true")
	}
}
