package fakeoperator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseOverrides(t *testing.T) {
	got, err := ParseOverrides(" a1:4, b2:1 ,")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"a1": 4, "b2": 1}, got)
	got, err = ParseOverrides("")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"a1", "a1:0", "a1:x", ":3", "a1=3"} {
		_, err := ParseOverrides(bad)
		assert.Error(t, err, bad)
	}
}

func TestSpecDiff(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"flinkVersion":       "v1_18",
			"flinkConfiguration": map[string]any{"taskmanager.numberOfTaskSlots": "2"},
			"job":                map[string]any{"parallelism": 2, "upgradeMode": "savepoint"},
		}
	}
	cases := []struct {
		name   string
		mode   string // "" is native
		change func(map[string]any)
		want   diffType
	}{
		{"nothing", "", func(map[string]any) {}, diffNone},
		{"autoscaler key", "", func(s map[string]any) { s["flinkConfiguration"].(map[string]any)["job.autoscaler.enabled"] = "true" }, diffIgnore},
		{"operator key", "", func(s map[string]any) {
			s["flinkConfiguration"].(map[string]any)["kubernetes.operator.deployment.rollback.enabled"] = "true"
		}, diffIgnore},
		{"parallelism.default", "", func(s map[string]any) { s["flinkConfiguration"].(map[string]any)["parallelism.default"] = "3" }, diffIgnore},
		{"savepoint nonce", "", func(s map[string]any) { s["job"].(map[string]any)["savepointTriggerNonce"] = 1 }, diffIgnore},
		{"overrides", "", func(s map[string]any) { s["flinkConfiguration"].(map[string]any)[KeyOverrides] = "a:1" }, diffScale},
		{"overrides and autoscaler key", "", func(s map[string]any) {
			s["flinkConfiguration"].(map[string]any)[KeyOverrides] = "a:1"
			s["flinkConfiguration"].(map[string]any)["job.autoscaler.enabled"] = "true"
		}, diffScale},
		{"overrides and slots", "", func(s map[string]any) {
			s["flinkConfiguration"].(map[string]any)[KeyOverrides] = "a:1"
			s["flinkConfiguration"].(map[string]any)[KeySlots] = "4"
		}, diffUpgrade},
		{"job parallelism", "", func(s map[string]any) { s["job"].(map[string]any)["parallelism"] = 3 }, diffUpgrade},
		{"replicas", "", func(s map[string]any) { s["taskManager"] = map[string]any{"replicas": 2} }, diffUpgrade},
		{"image", "", func(s map[string]any) { s["image"] = "flink:1.19" }, diffUpgrade},
		// Flink's YAML configuration: a nested key is the same key.
		{"nested form of the same key", "", func(s map[string]any) {
			s["flinkConfiguration"] = map[string]any{"taskmanager": map[string]any{"numberOfTaskSlots": "2"}}
		}, diffNone},
		// The mode decides what SCALE is (operator 1.15's @SpecDiff modes).
		{"overrides, native", "native", func(s map[string]any) { s["flinkConfiguration"].(map[string]any)[KeyOverrides] = "a:1" }, diffScale},
		{"overrides, standalone", ModeStandalone, func(s map[string]any) { s["flinkConfiguration"].(map[string]any)[KeyOverrides] = "a:1" }, diffUpgrade},
		{"job parallelism, standalone", ModeStandalone, func(s map[string]any) { s["job"].(map[string]any)["parallelism"] = 3 }, diffScale},
		// The job spec's IGNORE fields take effect on the next upgrade.
		{"upgrade mode", "", func(s map[string]any) { s["job"].(map[string]any)["upgradeMode"] = "last-state" }, diffIgnore},
		{"initial savepoint", "", func(s map[string]any) { s["job"].(map[string]any)["initialSavepointPath"] = "s3://sp" }, diffIgnore},
		{"restart nonce set", "", func(s map[string]any) { s["restartNonce"] = 1 }, diffUpgrade},
		{"session job's deployment name", "", func(s map[string]any) { s["deploymentName"] = "other" }, diffUpgrade},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, err := normalize(base())
			require.NoError(t, err)
			n := base()
			tc.change(n)
			nn, err := normalize(n)
			require.NoError(t, err)
			got, paths := specDiff(old, nn, tc.mode)
			assert.Equal(t, tc.want, got, "%v", paths)
		})
	}
	// Removing an onNullIgnore field changes nothing deployed.
	got, _ := specDiff(map[string]any{"restartNonce": json.Number("1")}, map[string]any{}, "")
	assert.Equal(t, diffIgnore, got)
}

func TestParseSpec(t *testing.T) {
	s, err := parseSpec(map[string]any{
		"flinkVersion": "v2_0",
		"flinkConfiguration": map[string]any{
			"taskmanager.numberOfTaskSlots": int64(4),
			"jobmanager":                    map[string]any{"scheduler": "Adaptive"},
			KeyOverrides:                    "a:8,b:2",
		},
		"job": map[string]any{"parallelism": int64(3)},
	})
	require.NoError(t, err)
	assert.Equal(t, 4, s.slots)
	assert.True(t, s.adaptive())
	assert.True(t, s.atLeast(1, 18))
	assert.Equal(t, UpgradeStateless, s.upgradeMode)
	assert.Equal(t, JobRunning, s.state)
	sub := s.submission("id", "sp", nil)
	assert.Equal(t, 2, sub.TaskManagers, "ceil(8/4)")
	assert.Equal(t, 3, sub.DefaultParallelism)
	assert.Equal(t, map[string]int{"a": 8, "b": 2}, sub.Overrides)

	for _, v := range []string{"v1_17", "v1_9", "", "latest"} {
		s.flinkVersion = v
		assert.False(t, s.atLeast(1, 18), v)
	}

	_, err = parseSpec(map[string]any{"flinkConfiguration": map[string]any{KeySlots: "0"}})
	assert.Error(t, err)
	_, err = parseSpec(map[string]any{"job": map[string]any{"parallelism": int64(0)}})
	assert.Error(t, err)
}

func TestDeriveLifecycle(t *testing.T) {
	running := reconciledSpecJSON(map[string]any{"job": map[string]any{"state": "running"}}, 1, false)
	suspended := reconciledSpecJSON(map[string]any{"job": map[string]any{"state": "suspended"}}, 1, false)
	cases := []struct {
		st   Status
		want string
	}{
		{Status{}, LifecycleCreated},
		{Status{Error: "boom"}, LifecycleFailed},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconUpgrading, LastReconciledSpec: suspended}}, LifecycleUpgrading},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconRollingBack, LastReconciledSpec: running}, JobStatus: JobStatus{State: StateFailed}}, LifecycleRollingBack},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconDeployed, LastReconciledSpec: suspended}}, LifecycleSuspended},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconRolledBack, LastReconciledSpec: running}, JobStatus: JobStatus{State: StateFailed}}, LifecycleFailed},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconRolledBack, LastReconciledSpec: running, LastStableSpec: "x"}}, LifecycleRolledBack},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconDeployed, LastReconciledSpec: running, LastStableSpec: running}}, LifecycleStable},
		{Status{ReconciliationStatus: ReconciliationStatus{State: ReconDeployed, LastReconciledSpec: running}, Error: "savepoint failed"}, LifecycleDeployed},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, deriveLifecycle(&tc.st), "%+v", tc.st)
	}
}
