// Package bench measures autoscaling policies side by side on the scenario
// library: each scenario's simulated job runs in virtual time, the same
// collectors (Flink's REST API over HTTP, the brokers over the Kafka
// protocol) feed every policy, and the same actuator performs what a policy
// asks for the way the Flink Kubernetes Operator does (a stop-with-savepoint
// and a restart, or an in-place rescale where the adaptive scheduler
// allows). `flinkscale bench` and `make bench` run it; docs/benchmarks.md
// holds the latest table.
package bench

import (
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

// Observation is what a policy sees at one of its decision points: the
// samples the controller would collect, and the deployment as the operator
// reports it.
type Observation struct {
	Now time.Time
	// Flink is one poll of Flink's REST API (metrics/flink). Counters are
	// cumulative, gauges instantaneous, as the collector returns them.
	Flink metrics.FlinkSample
	// Kafka is one poll of the brokers for the job's consumer group
	// (metrics/kafka); policies that only read Flink ignore it.
	Kafka metrics.KafkaSample
	// FlinkErr and KafkaErr are collection errors (the job restarting, for
	// example); a policy should hold when it lacks what it needs.
	FlinkErr, KafkaErr error
	Deployment         Deployment
}

// Deployment is the job's current shape.
type Deployment struct {
	// Parallelism per vertex id of the running job.
	Parallelism map[string]int
	// SlotsPerTaskManager and CPUPerTaskManager describe one TaskManager;
	// TaskManagers is how many run.
	SlotsPerTaskManager int
	CPUPerTaskManager   float64
	TaskManagers        int
	// Partitions per topic the job reads.
	Partitions map[string]int
	// Rescaling is true from a policy's Plan until the job runs again at
	// the new parallelism; Observe is still called (and may be ignored).
	Rescaling bool
	// RunningSince is when the job last became RUNNING (a restart moves
	// it).
	RunningSince time.Time
	// InPlace is true when a rescale that keeps the TaskManager shape
	// happens in place (adaptive scheduler, Flink ≥ 1.18), as the
	// controller knows from the deployment's configuration.
	InPlace bool
}

// Plan is a rescale a policy asks for.
type Plan struct {
	// Parallelism per vertex id: every vertex of the job.
	Parallelism map[string]int
	// SlotsPerTaskManager changes the TaskManagers' slots (0: keep).
	SlotsPerTaskManager int
	// Memory changes the TaskManagers' memory in the same restart (nil:
	// keep), as flinkscale's memory mode Apply writes it.
	Memory *scaling.TaskManagerMemory
	// Reason is a short note for the run's log.
	Reason string
}

// Rescale is one completed (or failed) rescale, reported back to the policy
// that asked for it.
type Rescale struct {
	DecidedAt   time.Time
	CompletedAt time.Time
	// Downtime is from the plan to the job running again.
	Downtime time.Duration
	From, To map[string]int
	// InPlace is true for an adaptive-scheduler rescale (same job id).
	InPlace bool
	Failed  bool
}

// Policy is one autoscaling policy under test. A Policy is used by one run
// at a time.
type Policy interface {
	// Name is the policy's column in the tables ("flinkscale",
	// "flink-operator", "keda-lag", "static", "oracle").
	Name() string
	// Interval is how often Observe is called (the policy's polling or
	// reconcile interval).
	Interval() time.Duration
	// Observe sees one observation and returns a rescale, or nil.
	Observe(o Observation) *Plan
	// Rescaled reports the end of a rescale the policy asked for.
	Rescaled(r Rescale)
}
