package controllers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
)

// What the target says of the job's memory model fills the snapshot: its
// spec's Flink version beats the collected one, the configuration's state
// backend stands in when Flink reported none.
func TestTargetFacts(t *testing.T) {
	cluster := target.ReadCluster(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "wc"}}, nil, v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wc"})
	cluster.ObserveFlink(target.FlinkView{Version: "2.1.0", Configuration: map[string]string{"state.backend.type": "forst"}})
	net := &scaling.NetworkSettings{BuffersPerChannel: 4}
	for _, tc := range []struct {
		name                   string
		d                      *target.Deployment
		collected, backend     string
		wantVersion, wantState string
	}{
		{"spec.flinkVersion", &target.Deployment{FlinkVersion: "v1_20", Configuration: map[string]string{}}, "2.1", "rocksdb", "1.20", "rocksdb"},
		{"no version in the spec: the collected one", &target.Deployment{Configuration: map[string]string{}}, "1.18", "", "1.18", ""},
		{"a version the operator's enum does not know", &target.Deployment{FlinkVersion: "latest", Configuration: map[string]string{}}, "2.0", "", "2.0", ""},
		{"state.backend.type when Flink said none", &target.Deployment{FlinkVersion: "v2_1", Configuration: map[string]string{"state.backend.type": "rocksdb"}}, "", "", "2.1", "rocksdb"},
		{"legacy state.backend", &target.Deployment{Configuration: map[string]string{"state.backend": "filesystem"}}, "", "", "", "hashmap"},
		{"Flink's answer wins", &target.Deployment{Configuration: map[string]string{"state.backend.type": "rocksdb"}}, "", "hashmap", "", "hashmap"},
		{"a cluster without the operator: REST's version and configuration", cluster, "", "", "2.1", "forst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := scaling.Snapshot{FlinkVersion: tc.collected, StateBackend: tc.backend}
			targetFacts(&snap, tc.d, net)
			assert.Equal(t, tc.wantVersion, snap.FlinkVersion)
			assert.Equal(t, tc.wantState, snap.StateBackend)
			assert.Same(t, net, snap.TaskManagers.Network)
		})
	}
}

// The memory a rescale writes and what was there before survive the round
// trip through status.rescale.
func TestManagedFieldsRoundTripTheMemory(t *testing.T) {
	for _, f := range []target.Fields{
		{Overrides: "a:2"},
		{Overrides: "a:2", Slots: "4", Memory: map[string]string{scaling.KeyProcessSize: "2097152k", scaling.KeyNetworkMin: "65536k"}, ResourceMemory: "2097152k"},
		{Overrides: "a:2", ResourceMemory: "4g"},
	} {
		back := managedFields(managedStatus(f))
		assert.True(t, back.Equal(f), "%+v → %+v", f, back)
	}
}

// The decision's memory recommendation in the status, and a plan's key
// that tells a memory-only restart from the parallelism it keeps.
func TestMemoryInTheDecisionStatus(t *testing.T) {
	cur := scaling.TaskManagerMemory{ProcessBytes: 2 << 30, NetworkBytes: 64 << 20}
	rec := scaling.TaskManagerMemory{ProcessBytes: 3 << 30, NetworkBytes: 512 << 20}
	plan := scaling.Plan{Parallelism: map[string]int{"a": 2}, SlotsPerTaskManager: 2, TaskManagers: 1}
	withMem := plan
	withMem.Memory = &rec
	for _, tc := range []struct {
		name        string
		d           scaling.Decision
		wantApplied bool
	}{
		{"applied", scaling.Decision{Action: scaling.ActionScale, Recommended: withMem,
			Memory: &scaling.MemoryRecommendation{Current: cur, Recommended: rec, Applied: true, SavingBytes: -1 << 30}}, true},
		{"recommended only", scaling.Decision{Action: scaling.ActionScale, Recommended: plan,
			Memory: &scaling.MemoryRecommendation{Current: cur, Recommended: rec, SavingBytes: -1 << 30}}, false},
		{"a hold applies nothing", scaling.Decision{Action: scaling.ActionHold, Recommended: withMem,
			Memory: &scaling.MemoryRecommendation{Current: cur, Recommended: rec, Applied: true, SavingBytes: -1 << 30}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.At = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
			st := decisionStatus(tc.d)
			assert.Equal(t, &v1alpha1.MemoryDecisionStatus{
				CurrentProcessBytes: 2 << 30, RecommendedProcessBytes: 3 << 30, CurrentNetworkBytes: 64 << 20, RecommendedNetworkBytes: 512 << 20,
				Applied: tc.wantApplied, SavingBytes: -1 << 30,
			}, st.Memory)
		})
	}
	assert.Nil(t, decisionStatus(scaling.Decision{Action: scaling.ActionHold}).Memory, "no recommendation: none in the status")
	assert.NotEqual(t, planKey(plan), planKey(withMem), "a memory-only restart is a plan of its own")
	assert.Contains(t, coresChange(scaling.Decision{Recommended: withMem, Memory: &scaling.MemoryRecommendation{Current: cur}}),
		"TaskManager memory 2048 MiB → 3072 MiB")
}
