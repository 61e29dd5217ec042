package bench

import (
	"fmt"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// CompressedInterval is every autoscaler's sampling interval on a
// compressed scenario. Loops are not compressed with the rest: the
// standalone Flink autoscaler's control loop defaults to 10 s, and Flink's
// JobManager refreshes the metrics its REST API serves every 10 s, so a
// faster loop would read the same numbers twice.
const CompressedInterval = 10 * time.Second

// MinMetricsWindow floors a compressed metrics window. Flink reports busy
// and backpressured time per second as an average over the last 60 s
// (its TimerGauge's span, Flink 1.20 and 2.x) refreshed every few seconds,
// so a window shorter than that sees no more than the gauge already
// averaged, in fewer samples: with 10 s samples a 30 s window is three
// readings of the same minute. On the simulator, flinkscale's compressed
// 30 s window took 4 rescales for real-step-up's single step and 3 for
// real-step-down's, where a 60 s one took 1 and 1.
const MinMetricsWindow = time.Minute

// Compress returns p with its time settings divided by factor, for a
// scenario compressed by factor (scenario.Scenario.Compression): flinkscale's
// policy (CompressPolicy), the Flink operator's configuration
// (CompressFlinkOperator) and KEDA's scale-down window. Policies without
// time settings are returned as they are. factor ≤ 1 changes nothing.
func Compress(p Policy, factor float64) Policy {
	if !(factor > 1) {
		return p
	}
	switch x := p.(type) {
	case *Flinkscale:
		x.Policy = CompressPolicy(x.Policy, factor)
		x.PollingInterval = CompressedInterval
	case *FlinkOperator:
		x.Config = CompressFlinkOperator(x.Config, factor)
	case *KEDALag:
		x.ScaleDownWindow = div(x.ScaleDownWindow, factor)
	}
	return p
}

// CompressPolicy divides the durations that shape flinkscale's behaviour
// by factor: the metrics window (no shorter than MinMetricsWindow),
// warm-up, cooldown, catch-up, the restart-time and TaskManager start-up
// guesses, the restart cost, the planning horizon and both stabilization
// windows. MaxSnapshotAge, a staleness guard rather than a
// behaviour, is divided too but kept at two sampling intervals at least.
func CompressPolicy(p scaling.Policy, factor float64) scaling.Policy {
	p.MetricsWindow = scaling.D(max(div(p.MetricsWindow.Duration, factor), MinMetricsWindow))
	p.WarmUp = scaling.D(div(p.WarmUp.Duration, factor))
	p.MaxSnapshotAge = scaling.D(max(div(p.MaxSnapshotAge.Duration, factor), 2*CompressedInterval))
	p.CooldownPeriod = scaling.D(div(p.CooldownPeriod.Duration, factor))
	p.CatchUpDuration = scaling.D(div(p.CatchUpDuration.Duration, factor))
	p.RestartTime = scaling.D(div(p.RestartTime.Duration, factor))
	p.TaskManagerStartup = scaling.D(div(p.TaskManagerStartup.Duration, factor))
	p.RestartCost = scaling.D(div(p.RestartCost.Duration, factor))
	p.PlanningHorizon = scaling.D(div(p.PlanningHorizon.Duration, factor))
	p.Behavior.ScaleUp.StabilizationWindow = scaling.D(div(p.Behavior.ScaleUp.StabilizationWindow.Duration, factor))
	p.Behavior.ScaleDown.StabilizationWindow = scaling.D(div(p.Behavior.ScaleDown.StabilizationWindow.Duration, factor))
	return p
}

// CompressFlinkOperator divides the autoscaler's durations by factor: the
// metrics window (no shorter than MinMetricsWindow), stabilization interval, scale-down interval, catch-up
// duration, restart time and both lag thresholds (lags counted in seconds
// of arrivals, which a compressed scenario shortens too). Its sampling
// becomes CompressedInterval, the standalone autoscaler's control loop.
func CompressFlinkOperator(c FlinkOperatorConfig, factor float64) FlinkOperatorConfig {
	c.MetricsWindow = max(div(c.MetricsWindow, factor), MinMetricsWindow)
	c.StabilizationInterval = div(c.StabilizationInterval, factor)
	c.ScaleDownInterval = div(c.ScaleDownInterval, factor)
	c.CatchUpDuration = div(c.CatchUpDuration, factor)
	c.RestartTime = div(c.RestartTime, factor)
	c.BacklogLagThreshold = div(c.BacklogLagThreshold, factor)
	c.ObservedTPRLagThreshold = div(c.ObservedTPRLagThreshold, factor)
	c.ReconcileInterval = CompressedInterval
	return c
}

// RivalConfig is the configuration of the real standalone autoscaler
// (flink-autoscaler-standalone) that matches c's time settings: the
// job.autoscaler.* keys Compress changes and the control loop. Every other
// option stays at the release's default, as FlinkOperatorConfig's
// defaults mirror them; the rival is unchanged except for time.
func RivalConfig(c FlinkOperatorConfig) map[string]string {
	return map[string]string{
		"autoscaler.standalone.control-loop.interval":                millis(c.ReconcileInterval),
		"job.autoscaler.enabled":                                     "true",
		"job.autoscaler.metrics.window":                              millis(c.MetricsWindow),
		"job.autoscaler.stabilization.interval":                      millis(c.StabilizationInterval),
		"job.autoscaler.scale-down.interval":                         millis(c.ScaleDownInterval),
		"job.autoscaler.catch-up.duration":                           millis(c.CatchUpDuration),
		"job.autoscaler.restart.time":                                millis(c.RestartTime),
		"job.autoscaler.backlog-processing.lag-threshold":            millis(c.BacklogLagThreshold),
		"job.autoscaler.observed-true-processing-rate.lag-threshold": millis(c.ObservedTPRLagThreshold),
	}
}

// div divides d by f, to the millisecond.
func div(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) / f).Round(time.Millisecond)
}

// millis renders d for Flink's duration options ("90000 ms").
func millis(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// OracleStep is how often the oracle re-sizes a scenario's job: every
// 30 s of the workload it stands for, so every 3 s of a scenario
// compressed 10×.
func OracleStep(s *scenario.Scenario) time.Duration {
	return div(30*time.Second, max(s.Compression, 1))
}
