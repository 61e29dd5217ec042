package target

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

const mib = 1 << 20

// planMemory is a TaskManager memory model as the model recommends one.
var planMemory = scaling.TaskManagerMemory{
	FrameworkHeapBytes: 128 * mib, TaskHeapBytes: 900 * mib, FrameworkOffHeapBytes: 128 * mib,
	ManagedBytes: 700 * mib, NetworkBytes: 320 * mib, MetaspaceBytes: 256 * mib, OverheadBytes: 400 * mib,
	ProcessBytes: (128 + 900 + 128 + 700 + 320 + 256 + 400) * mib,
}

// A plan that sets the TaskManagers' memory writes every key of its Flink
// configuration and the pod's memory, as the process size, on a
// FlinkDeployment; without it, the memory fields flinkscale owns keep
// their values (leaving them out of the apply would remove them), and
// those it does not own are not touched.
func TestPlanFieldsMemory(t *testing.T) {
	withMem := scaling.Plan{Parallelism: map[string]int{"aaa": 3, "bbb": 6}, SlotsPerTaskManager: 2, TaskManagers: 3, Memory: &planMemory}
	noMem := withMem
	noMem.Memory = nil
	// The deployment as flinkscale left it after an earlier memory apply.
	applied := func(t *testing.T) *Deployment {
		u := fd(t, stable)
		conf, _, _ := unstructured.NestedMap(u.Object, "spec", "flinkConfiguration")
		// 3 GiB with 256 MiB of network: 128 + 1216 + 128 + 640 + 256 +
		// 256 + 448 MiB.
		earlier := scaling.TaskManagerMemory{
			FrameworkHeapBytes: 128 * mib, TaskHeapBytes: 1216 * mib, FrameworkOffHeapBytes: 128 * mib,
			ManagedBytes: 640 * mib, NetworkBytes: 256 * mib, MetaspaceBytes: 256 * mib, OverheadBytes: 448 * mib,
			ProcessBytes: 3 << 30,
		}
		for k, v := range earlier.FlinkConfiguration() {
			conf[k] = v
		}
		require.NoError(t, unstructured.SetNestedMap(u.Object, conf, "spec", "flinkConfiguration"))
		require.NoError(t, unstructured.SetNestedField(u.Object, "3145728k", "spec", "taskManager", "resource", "memory"))
		d, err := Read(u)
		require.NoError(t, err)
		return d
	}
	ownedMemory := map[string]bool{FieldResourceMemory: true, FieldConfig(scaling.KeyProcessSize): true, FieldConfig(scaling.KeyNetworkMin): true}
	for _, tc := range []struct {
		name    string
		d       func(*testing.T) *Deployment
		plan    scaling.Plan
		owned   map[string]bool
		wantMem map[string]string
		wantRes string
	}{
		{"the plan sets memory", func(t *testing.T) *Deployment { d, _ := Read(fd(t, stable)); return d }, withMem, nil,
			planMemory.FlinkConfiguration(), scaling.FormatMemorySize(planMemory.ProcessBytes)},
		{"no memory, nothing owned", applied, noMem, nil, nil, ""},
		{"no memory, owned from before: kept", applied, noMem, ownedMemory,
			map[string]string{scaling.KeyProcessSize: "3145728k", scaling.KeyNetworkMin: "262144k"}, "3145728k"},
		{"memory replaces what was owned", applied, withMem, ownedMemory,
			planMemory.FlinkConfiguration(), scaling.FormatMemorySize(planMemory.ProcessBytes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d(t)
			f := d.PlanFields(tc.plan, tc.owned)
			assert.Equal(t, "aaa:3,bbb:6", f.Overrides)
			assert.Equal(t, tc.wantMem, f.Memory)
			assert.Equal(t, tc.wantRes, f.ResourceMemory)
			u := d.ApplyObject(f)
			conf, _, _ := unstructured.NestedStringMap(u.Object, "spec", "flinkConfiguration")
			for k, v := range tc.wantMem {
				assert.Equal(t, v, conf[k], k)
			}
			assert.Len(t, conf, 1+len(tc.wantMem), "the overrides and the memory keys only: %v", conf)
			res, found, _ := unstructured.NestedString(u.Object, "spec", "taskManager", "resource", "memory")
			assert.Equal(t, tc.wantRes != "", found)
			assert.Equal(t, tc.wantRes, res)
			// Once applied, the deployment says it.
			applied := fd(t, stable)
			for k, v := range conf {
				require.NoError(t, unstructured.SetNestedField(applied.Object, v, "spec", "flinkConfiguration", k))
			}
			if found {
				require.NoError(t, unstructured.SetNestedField(applied.Object, res, "spec", "taskManager", "resource", "memory"))
			}
			after, err := Read(applied)
			require.NoError(t, err)
			assert.True(t, after.Says(f))
		})
	}
}

// A session job's and a cluster without the operator's plans never carry
// memory, even if a plan had some: their TaskManagers are not theirs.
func TestPlanFieldsNeverSetMemoryOnOtherKinds(t *testing.T) {
	plan := scaling.Plan{Parallelism: map[string]int{"aaa": 4, "bbb": 6}, SlotsPerTaskManager: 2, TaskManagers: 3, Memory: &planMemory}
	sj, err := ReadSessionJob(obj(t, SessionJobGVK.Kind, sessionJob), obj(t, GVK.Kind, sessionCluster("native", "adaptive", "v1_20")))
	require.NoError(t, err)
	cl := ReadCluster(jobManager(nil), taskManagers(2), v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wordcount", TaskManagerDeployment: "wordcount-tm"})
	fdep, err := Read(fd(t, stable))
	require.NoError(t, err)
	for _, tc := range []struct {
		d    *Deployment
		sets bool
	}{{sj, false}, {cl, false}, {fdep, true}} {
		assert.Equal(t, tc.sets, tc.d.SetsMemory(), tc.d.Kind)
		f := tc.d.PlanFields(plan, map[string]bool{FieldResourceMemory: true})
		assert.Equal(t, tc.sets, f.Memory != nil, tc.d.Kind)
		assert.Equal(t, tc.sets, f.ResourceMemory != "", tc.d.Kind)
		if !tc.sets {
			assert.Nil(t, tc.d.Managed().Memory, tc.d.Kind)
			assert.Empty(t, tc.d.Managed().ResourceMemory, tc.d.Kind)
		}
	}
}

// The memory fields flinkscale owns are found in its managed fields, and
// Only keeps their values: what a revert or a release writes.
func TestOwnedMemoryFields(t *testing.T) {
	u := fd(t, stable)
	require.NoError(t, unstructured.SetNestedField(u.Object, "2g", "spec", "flinkConfiguration", scaling.KeyProcessSize))
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:taskManager":{"f:resource":{"f:cpu":{}}}}}`)}},
		{Manager: "flinkscale", Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:flinkConfiguration":{"f:pipeline.jobvertex-parallelism-overrides":{},"f:taskmanager.memory.process.size":{}},"f:taskManager":{"f:resource":{"f:memory":{}}}}}`)}},
	})
	owned, err := OwnedFields(u, "flinkscale")
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{FieldOverrides: true, FieldConfig(scaling.KeyProcessSize): true, FieldResourceMemory: true}, owned)
	mask := OwnedMask(owned)
	assert.Equal(t, map[string]string{scaling.KeyProcessSize: "owned"}, mask.Memory)
	assert.NotEmpty(t, mask.ResourceMemory)
	d, err := Read(u)
	require.NoError(t, err)
	assert.Equal(t, "4g", d.TaskManagerMemory)
	keep := d.Managed().Only(mask)
	assert.True(t, keep.Equal(Fields{Overrides: "bbb:4, aaa:2", Memory: map[string]string{scaling.KeyProcessSize: "2g"}, ResourceMemory: "4g"}), "%+v", keep)
	obj := d.ApplyObject(keep)
	assert.Equal(t, map[string]any{"resource": map[string]any{"memory": "4g"}}, obj.Object["spec"].(map[string]any)["taskManager"])
}

// Only keeps the memory keys both have; absent keys stay absent, so that
// applying the previous values removes what flinkscale added.
func TestOnlyAndEqualWithMemory(t *testing.T) {
	now := Fields{Overrides: "a:1", Memory: map[string]string{scaling.KeyProcessSize: "2g", scaling.KeyNetworkMin: "64m"}, ResourceMemory: "2g"}
	mask := Fields{Overrides: "x", Memory: map[string]string{scaling.KeyProcessSize: "x", scaling.KeyNetworkMax: "x"}}
	got := now.Only(mask)
	assert.Equal(t, Fields{Overrides: "a:1", Memory: map[string]string{scaling.KeyProcessSize: "2g"}}, got)
	assert.Nil(t, now.Only(Fields{Overrides: "x"}).Memory, "no memory in the mask: none kept")
	assert.Nil(t, Fields{}.Only(mask).Memory, "nothing to keep: nil, not empty")
	assert.True(t, Fields{Memory: map[string]string{}}.Equal(Fields{}), "nil and empty alike")
	assert.False(t, got.Equal(now))
	assert.False(t, now.Equal(Fields{Overrides: "a:1", Memory: now.Memory, ResourceMemory: "3g"}))
	assert.True(t, now.Equal(Fields{Overrides: "a:1", Memory: map[string]string{scaling.KeyNetworkMin: "64m", scaling.KeyProcessSize: "2g"}, ResourceMemory: "2g"}))
}

// Says compares memory sizes by value ("4g" is "4194304k").
func TestSaysComparesMemorySizes(t *testing.T) {
	d, err := Read(fd(t, stable)) // resource.memory "4g"
	require.NoError(t, err)
	d.Configuration[scaling.KeyProcessSize] = "4096m"
	for _, tc := range []struct {
		f    Fields
		want bool
	}{
		{Fields{Overrides: "aaa:2,bbb:4", ResourceMemory: "4194304k"}, true},
		{Fields{Overrides: "aaa:2,bbb:4", ResourceMemory: "4Gi"}, true},
		{Fields{Overrides: "aaa:2,bbb:4", ResourceMemory: "4194305k"}, false},
		{Fields{Overrides: "aaa:2,bbb:4", Memory: map[string]string{scaling.KeyProcessSize: "4g"}}, true},
		{Fields{Overrides: "aaa:2,bbb:4", Memory: map[string]string{scaling.KeyProcessSize: "3g"}}, false},
		{Fields{Overrides: "aaa:2,bbb:4", Memory: map[string]string{scaling.KeyNetworkMin: "64m"}}, false},
	} {
		assert.Equal(t, tc.want, d.Says(tc.f), "%+v", tc.f)
	}
}

// The network buffer keys: read as the model takes them, and a value
// Flink would refuse is an error naming the key.
func TestNetworkSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf map[string]string
		want *scaling.NetworkSettings
		err  string
	}{
		{"none set", map[string]string{"other": "1"}, nil, ""},
		{"all set", map[string]string{KeySegmentSize: "64kb", KeyBuffersPerChannel: "4", KeyFloatingBuffersPerGate: "16",
			KeyMaxOverdraftBuffersPerGate: " 7 ", KeyRequiredPerGateMax: "100"},
			&scaling.NetworkSettings{SegmentSizeBytes: 64 << 10, BuffersPerChannel: 4, FloatingBuffersPerGate: 16, MaxOverdraftBuffersPerGate: 7, RequiredPerGateMax: 100}, ""},
		{"one set", map[string]string{KeyBuffersPerChannel: "3"}, &scaling.NetworkSettings{BuffersPerChannel: 3}, ""},
		{"bad segment size", map[string]string{KeySegmentSize: "32 lightyears"}, nil, KeySegmentSize},
		{"segment size not a power of two", map[string]string{KeySegmentSize: "48k"}, nil, "power of two"},
		{"segment size too small", map[string]string{KeySegmentSize: "1k"}, nil, "at least 4 KiB"},
		{"not a number", map[string]string{KeyFloatingBuffersPerGate: "eight"}, nil, KeyFloatingBuffersPerGate},
		{"negative", map[string]string{KeyBuffersPerChannel: "-1"}, nil, KeyBuffersPerChannel},
		{"required-per-gate.max 0", map[string]string{KeyRequiredPerGateMax: "0"}, nil, KeyRequiredPerGateMax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Deployment{Configuration: tc.conf}
			got, err := d.NetworkSettings()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzNetworkSettings: whatever the keys say, the settings read are
// either an error or values Flink would accept (a power-of-two segment of
// at least 4 KiB, counts ≥ 0), and reading is deterministic.
func FuzzNetworkSettings(f *testing.F) {
	f.Add("32kb", "2", "8", "5", "")
	f.Add("3000", "-1", "x", "", "1000")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, seg, perChannel, floating, overdraft, perGate string) {
		d := &Deployment{Configuration: map[string]string{}}
		for k, v := range map[string]string{KeySegmentSize: seg, KeyBuffersPerChannel: perChannel, KeyFloatingBuffersPerGate: floating,
			KeyMaxOverdraftBuffersPerGate: overdraft, KeyRequiredPerGateMax: perGate} {
			if v != "" {
				d.Configuration[k] = v
			}
		}
		n, err := d.NetworkSettings()
		again, err2 := d.NetworkSettings()
		if (err == nil) != (err2 == nil) || (n == nil) != (again == nil) || (n != nil && *n != *again) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", n, err, again, err2)
		}
		if err != nil || n == nil {
			return
		}
		if s := n.SegmentSizeBytes; s != 0 && (s < minSegmentSize || s&(s-1) != 0) {
			t.Fatalf("segment size %d accepted", s)
		}
		if n.BuffersPerChannel < 0 || n.FloatingBuffersPerGate < 0 || n.MaxOverdraftBuffersPerGate < 0 || n.RequiredPerGateMax < 0 {
			t.Fatalf("negative count accepted: %+v", n)
		}
	})
}
