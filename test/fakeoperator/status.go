package fakeoperator

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Lifecycle states (status.lifecycleState).
const (
	LifecycleCreated     = "CREATED"
	LifecycleDeployed    = "DEPLOYED"
	LifecycleStable      = "STABLE"
	LifecycleUpgrading   = "UPGRADING"
	LifecycleSuspended   = "SUSPENDED"
	LifecycleRollingBack = "ROLLING_BACK"
	LifecycleRolledBack  = "ROLLED_BACK"
	LifecycleFailed      = "FAILED"
)

// Reconciliation states (status.reconciliationStatus.state).
const (
	ReconDeployed    = "DEPLOYED"
	ReconUpgrading   = "UPGRADING"
	ReconRollingBack = "ROLLING_BACK"
	ReconRolledBack  = "ROLLED_BACK"
)

// JobManager deployment states (status.jobManagerDeploymentStatus).
const (
	JMDeploying        = "DEPLOYING"
	JMDeployedNotReady = "DEPLOYED_NOT_READY"
	JMReady            = "READY"
)

// Flink job states the operator acts on (status.jobStatus.state).
const (
	StateReconciling  = "RECONCILING"
	StateInitializing = "INITIALIZING"
	StateCreated      = "CREATED"
	StateRunning      = "RUNNING"
	StateFinished     = "FINISHED"
	StateFailed       = "FAILED"
	StateCanceled     = "CANCELED"
	StateSuspended    = "SUSPENDED"
)

// terminal reports a globally terminal Flink job state (or no job).
func terminal(state string) bool {
	switch state {
	case "", StateFinished, StateFailed, StateCanceled, StateSuspended:
		return true
	}
	return false
}

// Status is the part of FlinkDeployment.status the fake operator owns. Field
// names and types are the operator's (see test/crds); other status fields
// (conditions, clusterInfo) are kept as they are.
type Status struct {
	JobStatus                  JobStatus            `json:"jobStatus"`
	LifecycleState             string               `json:"lifecycleState,omitempty"`
	ReconciliationStatus       ReconciliationStatus `json:"reconciliationStatus"`
	JobManagerDeploymentStatus string               `json:"jobManagerDeploymentStatus,omitempty"`
	TaskManager                *TaskManagerStatus   `json:"taskManager,omitempty"`
	Error                      string               `json:"error,omitempty"`
	ObservedGeneration         int64                `json:"observedGeneration,omitempty"`
}

// JobStatus is status.jobStatus. Times are epoch milliseconds as strings.
type JobStatus struct {
	State                string         `json:"state,omitempty"`
	JobID                string         `json:"jobId,omitempty"`
	JobName              string         `json:"jobName,omitempty"`
	StartTime            string         `json:"startTime,omitempty"`
	UpdateTime           string         `json:"updateTime,omitempty"`
	UpgradeSavepointPath string         `json:"upgradeSavepointPath,omitempty"`
	SavepointInfo        *SavepointInfo `json:"savepointInfo,omitempty"`
}

// SavepointInfo is the legacy status.jobStatus.savepointInfo: the pending
// trigger (the fake keeps an in-flight upgrade savepoint here between
// reconciles) and the last savepoint taken.
type SavepointInfo struct {
	TriggerID        string     `json:"triggerId,omitempty"`
	TriggerTimestamp int64      `json:"triggerTimestamp,omitempty"`
	TriggerType      string     `json:"triggerType,omitempty"`
	FormatType       string     `json:"formatType,omitempty"`
	LastSavepoint    *Savepoint `json:"lastSavepoint,omitempty"`
}

// Savepoint is a savepoint taken.
type Savepoint struct {
	Location    string `json:"location,omitempty"`
	TimeStamp   int64  `json:"timeStamp,omitempty"`
	TriggerType string `json:"triggerType,omitempty"`
	FormatType  string `json:"formatType,omitempty"`
}

// ReconciliationStatus is status.reconciliationStatus.
type ReconciliationStatus struct {
	State string `json:"state,omitempty"`
	// LastReconciledSpec and LastStableSpec are ReconciledSpec JSON strings.
	LastReconciledSpec      string `json:"lastReconciledSpec,omitempty"`
	LastStableSpec          string `json:"lastStableSpec,omitempty"`
	ReconciliationTimestamp int64  `json:"reconciliationTimestamp,omitempty"`
}

// TaskManagerStatus is status.taskManager (the scale subresource's status).
type TaskManagerStatus struct {
	Replicas      int32  `json:"replicas,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
}

// ReconciledSpec is the JSON in lastReconciledSpec and lastStableSpec.
type ReconciledSpec struct {
	Spec             map[string]any   `json:"spec"`
	ResourceMetadata ResourceMetadata `json:"resource_metadata"`
}

// ResourceMetadata is ReconciledSpec's resource_metadata.
type ResourceMetadata struct {
	APIVersion      string         `json:"apiVersion"`
	Metadata        map[string]any `json:"metadata"`
	FirstDeployment bool           `json:"firstDeployment"`
}

// ParseReconciledSpec decodes a lastReconciledSpec/lastStableSpec string.
func ParseReconciledSpec(s string) (*ReconciledSpec, error) {
	var rs ReconciledSpec
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&rs); err != nil {
		return nil, fmt.Errorf("reconciled spec: %w", err)
	}
	if rs.Spec == nil {
		rs.Spec = map[string]any{}
	}
	return &rs, nil
}

func reconciledSpecJSON(spec map[string]any, generation int64, first bool) string {
	b, err := json.Marshal(ReconciledSpec{
		Spec: spec,
		ResourceMetadata: ResourceMetadata{
			APIVersion:      FlinkDeploymentGVK.GroupVersion().String(),
			Metadata:        map[string]any{"generation": generation},
			FirstDeployment: first,
		},
	})
	if err != nil { // only JSON values in spec
		panic(err)
	}
	return string(b)
}

// lastJobState is job.state of a reconciled spec (running if unset).
func (rs *ReconciledSpec) lastJobState() string {
	if job, ok := rs.Spec["job"].(map[string]any); ok {
		if s, ok := job["state"].(string); ok && s != "" {
			return s
		}
	}
	return JobRunning
}

func (rs *ReconciledSpec) lastUpgradeMode() string {
	if job, ok := rs.Spec["job"].(map[string]any); ok {
		if s, ok := job["upgradeMode"].(string); ok && s != "" {
			return s
		}
	}
	return UpgradeStateless
}

// deriveLifecycle computes status.lifecycleState from the rest of the status,
// in the order the operator's CommonStatus does.
func deriveLifecycle(st *Status) string {
	rs := st.ReconciliationStatus
	if rs.LastReconciledSpec == "" {
		if st.Error != "" {
			return LifecycleFailed
		}
		return LifecycleCreated
	}
	switch rs.State {
	case ReconUpgrading:
		return LifecycleUpgrading
	case ReconRollingBack:
		return LifecycleRollingBack
	}
	if last, err := ParseReconciledSpec(rs.LastReconciledSpec); err == nil && last.lastJobState() == JobSuspended {
		return LifecycleSuspended
	}
	if st.JobStatus.State == StateFailed {
		return LifecycleFailed
	}
	if rs.State == ReconRolledBack {
		return LifecycleRolledBack
	}
	if rs.LastStableSpec == rs.LastReconciledSpec {
		return LifecycleStable
	}
	return LifecycleDeployed
}

// ownedStatusKeys are the status fields Status replaces; others are kept.
var ownedStatusKeys = []string{"jobStatus", "lifecycleState", "reconciliationStatus", "jobManagerDeploymentStatus", "taskManager", "error", "observedGeneration"}

// ReadStatus decodes a FlinkDeployment's status.
func ReadStatus(u *unstructured.Unstructured) (Status, error) {
	var st Status
	m, ok, err := unstructured.NestedMap(u.Object, "status")
	if err != nil || !ok {
		return st, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &st); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// writeStatus sets u's status to st, keeping status fields st does not own.
func writeStatus(u *unstructured.Unstructured, st *Status) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return err
	}
	old, _, _ := unstructured.NestedMap(u.Object, "status")
	out := maps.Clone(old)
	if out == nil {
		out = map[string]any{}
	}
	for _, k := range ownedStatusKeys {
		delete(out, k)
	}
	maps.Copy(out, m)
	return unstructured.SetNestedField(u.Object, out, "status")
}
