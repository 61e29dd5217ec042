package sim

import (
	"errors"

	"github.com/flinkscale/flinkscale/scaling"
)

// Errors of the control operations; the REST layer maps them to Flink's
// status codes.
var (
	ErrNotFound    = errors.New("not found")       // 404
	ErrBadRequest  = errors.New("bad request")     // 400
	ErrConflict    = errors.New("conflict")        // 409
	ErrUnsupported = errors.New("not supported")   // 500, as Flink answers an UnsupportedOperationException
	ErrNotRunning  = errors.New("job not running") // 409 for triggers on a job that is not running
)

// SavepointRequest is a savepoint trigger (POST /jobs/:jobid/savepoints) or a
// stop-with-savepoint (POST /jobs/:jobid/stop).
type SavepointRequest struct {
	JobID           string
	TargetDirectory string
	// Stop: stop the job once the savepoint completes (stop-with-savepoint);
	// Cancel: cancel it (the deprecated "cancel-job" of the savepoint body).
	Stop, Cancel bool
	// Drain emits MAX_WATERMARK before stopping.
	Drain bool
	// FormatType is CANONICAL or NATIVE.
	FormatType string
	// TriggerID, optional (32 hex), makes the trigger idempotent.
	TriggerID string
}

// SavepointStatus is GET /jobs/:jobid/savepoints/:triggerid.
type SavepointStatus struct {
	// Status is IN_PROGRESS or COMPLETED (failed operations are COMPLETED
	// with a FailureCause, as in Flink).
	Status       string
	Location     string // on success
	FailureCause string // on failure: the exception's message
	FailureClass string // e.g. "java.util.concurrent.CompletionException"
}

// Bounds are a vertex's parallelism bounds in resource requirements.
type Bounds struct {
	LowerBound int `json:"lowerBound"`
	UpperBound int `json:"upperBound"`
}

// Submission starts (or restarts) the job: a new job id, per-vertex
// parallelism (pipeline.jobvertex-parallelism-overrides; vertices not listed
// keep DefaultParallelism or their spec), the TaskManager shape, and the
// savepoint to restore from (empty: fresh start, offsets from the committed
// group offsets or the earliest).
type Submission struct {
	// JobID for the new job (32 hex); empty picks a random one.
	JobID               string
	DefaultParallelism  int
	Overrides           map[string]int // vertex id → parallelism
	SlotsPerTaskManager int
	// TaskManagers is the least the cluster runs (a standalone cluster's
	// replicas). The job gets as many as its slots need whatever this
	// says, as Flink's native resource manager starts them: Σ over its
	// slot-sharing groups of the group's widest vertex, over the slots per
	// TaskManager. 0: just those.
	TaskManagers  int
	SavepointPath string
	// Session: the job goes to a session cluster whose TaskManagers run
	// already, so no TaskManager starts (no TaskManagerStartup).
	//
	// A job on a Pool (Job.UsePool) ignores TaskManagers,
	// SlotsPerTaskManager and Session: its slots are the pool's, and no
	// TaskManager starts for it.
	Session bool
	// AllowNonRestoredState as the operator's job spec has it.
	AllowNonRestoredState bool
	// Memory is the TaskManagers' memory model (the FlinkDeployment's
	// flinkConfiguration and spec.taskManager.resource.memory, derived);
	// nil keeps the memory the job's TaskManagers have. A job on a Pool
	// keeps the pool's.
	Memory *scaling.TaskManagerMemory
}

// Fault is an injected failure.
type Fault string

const (
	// FaultSavepoint makes the next savepoint fail.
	FaultSavepoint Fault = "savepoint"
	// FaultRestart makes the next restart fail (the job ends FAILED).
	FaultRestart Fault = "restart"
	// FaultTaskManagerLoss kills one TaskManager: the job fails over and
	// restarts from its latest checkpoint at the same parallelism.
	FaultTaskManagerLoss Fault = "taskmanager-loss"
)

// Cluster is what the REST API and the fake operator drive: one Flink
// application cluster running one job. *Job implements it.
type Cluster interface {
	// View is a consistent copy of the cluster now.
	View() View
	// TriggerSavepoint starts a savepoint or stop-with-savepoint and
	// returns its trigger id.
	TriggerSavepoint(req SavepointRequest) (string, error)
	// SavepointStatus reports a trigger.
	SavepointStatus(jobID, triggerID string) (SavepointStatus, error)
	// ResourceRequirements and UpdateResourceRequirements are the adaptive
	// scheduler's GET and PUT /jobs/:jobid/resource-requirements.
	ResourceRequirements(jobID string) (map[string]Bounds, error)
	UpdateResourceRequirements(jobID string, req map[string]Bounds) error
}

// Deployer is a Cluster that can also be (re)deployed, as the Flink
// Kubernetes Operator does on an upgrade: the fake operator calls Submit
// after a stop-with-savepoint with the spec's new parallelism and shape.
type Deployer interface {
	Cluster
	// Submit replaces the job (which must be terminal: FINISHED, CANCELED,
	// FAILED, or not yet started) with a new one. The new job goes through
	// INITIALIZING and CREATED to RUNNING after the restart downtime.
	Submit(s Submission) error
	// Inject arms a fault.
	Inject(f Fault)
}
