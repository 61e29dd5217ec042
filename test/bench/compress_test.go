package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func TestCompressPolicy(t *testing.T) {
	p := CompressPolicy(scaling.DefaultPolicy(), 10)
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		// 5m ÷ 10 = 30s is under Flink's 60 s busy-time span.
		{"metricsWindow floored at 60s", p.MetricsWindow.Duration, time.Minute},
		{"warmUp 2m ÷ 10", p.WarmUp.Duration, 12 * time.Second},
		// 2m ÷ 10 = 12s is under two 10 s sampling intervals.
		{"maxSnapshotAge floored at 2 × 10s", p.MaxSnapshotAge.Duration, 20 * time.Second},
		{"cooldown 5m ÷ 10", p.CooldownPeriod.Duration, 30 * time.Second},
		{"catch-up 15m ÷ 10", p.CatchUpDuration.Duration, 90 * time.Second},
		{"restart guess 90s ÷ 10", p.RestartTime.Duration, 9 * time.Second},
		{"TaskManager start-up 1m ÷ 10", p.TaskManagerStartup.Duration, 6 * time.Second},
		{"restart cost 20m ÷ 10", p.RestartCost.Duration, 2 * time.Minute},
		{"planning horizon 1h ÷ 10", p.PlanningHorizon.Duration, 6 * time.Minute},
		{"scale-down stabilization 30m ÷ 10", p.Behavior.ScaleDown.StabilizationWindow.Duration, 3 * time.Minute},
		{"scale-up stabilization 0 stays 0", p.Behavior.ScaleUp.StabilizationWindow.Duration, 0},
	} {
		assert.Equal(t, c.want, c.got, c.name)
	}
	require.NoError(t, p.Validate())
	// What is not a time setting is untouched.
	d := scaling.DefaultPolicy()
	assert.Equal(t, d.Utilization, p.Utilization)
	assert.Equal(t, d.MinSamples, p.MinSamples)
	assert.Equal(t, d.Behavior.ScaleDown.MaxFactor, p.Behavior.ScaleDown.MaxFactor)
}

func TestCompressFlinkOperatorAndRivalConfig(t *testing.T) {
	c := CompressFlinkOperator(DefaultFlinkOperatorConfig(), 10)
	assert.Equal(t, 90*time.Second, c.MetricsWindow, "15m ÷ 10")
	assert.Equal(t, 30*time.Second, c.StabilizationInterval, "5m ÷ 10")
	assert.Equal(t, 6*time.Minute, c.ScaleDownInterval, "1h ÷ 10")
	assert.Equal(t, 3*time.Minute, c.CatchUpDuration, "30m ÷ 10")
	assert.Equal(t, 30*time.Second, c.RestartTime, "5m ÷ 10")
	assert.Equal(t, 30*time.Second, c.BacklogLagThreshold, "5m ÷ 10")
	assert.Equal(t, 3*time.Second, c.ObservedTPRLagThreshold, "30s ÷ 10")
	assert.Equal(t, CompressedInterval, c.ReconcileInterval, "the standalone control loop's default")
	assert.Equal(t, DefaultFlinkOperatorConfig().TargetUtilization, c.TargetUtilization)

	rc := RivalConfig(c)
	assert.Equal(t, map[string]string{
		"autoscaler.standalone.control-loop.interval":                "10000 ms",
		"job.autoscaler.enabled":                                     "true",
		"job.autoscaler.metrics.window":                              "90000 ms",
		"job.autoscaler.stabilization.interval":                      "30000 ms",
		"job.autoscaler.scale-down.interval":                         "360000 ms",
		"job.autoscaler.catch-up.duration":                           "180000 ms",
		"job.autoscaler.restart.time":                                "30000 ms",
		"job.autoscaler.backlog-processing.lag-threshold":            "30000 ms",
		"job.autoscaler.observed-true-processing-rate.lag-threshold": "3000 ms",
	}, rc)
}

func TestCompressPolicies(t *testing.T) {
	fs := Compress(NewFlinkscale(), 10).(*Flinkscale)
	assert.Equal(t, CompressedInterval, fs.PollingInterval)
	assert.Equal(t, time.Minute, fs.Policy.MetricsWindow.Duration)
	assert.Equal(t, 3*time.Minute, CompressFlinkOperator(DefaultFlinkOperatorConfig(), 5).MetricsWindow, "15m ÷ 5: above the floor")
	fo := Compress(NewFlinkOperator(), 10).(*FlinkOperator)
	assert.Equal(t, 90*time.Second, fo.Config.MetricsWindow)
	k := Compress(NewKEDALag(), 10).(*KEDALag)
	assert.Equal(t, 30*time.Second, k.ScaleDownWindow, "the HPA's 5m scale-down window ÷ 10")
	// Not compressed: nothing changes.
	assert.Equal(t, 5*time.Minute, Compress(NewFlinkscale(), 1).(*Flinkscale).Policy.MetricsWindow.Duration)
	assert.Equal(t, Static{}, Compress(Static{}, 10))
}

func TestOracleStepOfACompressedScenario(t *testing.T) {
	assert.Equal(t, 30*time.Second, OracleStep(&scenario.Scenario{}), "not compressed")
	assert.Equal(t, 3*time.Second, OracleStep(&scenario.Scenario{Compression: 10}), "30 s of the workload ÷ 10")
}
