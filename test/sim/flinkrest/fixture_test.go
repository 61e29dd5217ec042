package flinkrest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

const (
	jobID    = "3f2a9c1e8b7d4f60a1b2c3d4e5f60718"
	srcID    = "cbc357ccb763df2852fee8c4fc7d55f2"
	winID    = "90bea66de1c231edf33913ecd54406c1"
	tm1      = "orders-agg-taskmanager-1-1"
	tm2      = "orders-agg-taskmanager-1-2"
	srcGroup = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	winGroup = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

var (
	fixtureNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	t0         = fixtureNow.Add(-time.Hour).UnixMilli()
	versions   = []string{"1.18", "1.20", "2.1"}
)

func f64(f float64) *float64 { return &f }

// fixtureView is the hand-built cluster every test renders: a Kafka source
// chained with a map (two subtasks owning partitions of "orders.v1"; the
// second has not registered pendingRecords yet), a keyed window chained with
// a print sink, and a checkpoint history with an in-progress, a failed, a
// completed checkpoint and a savepoint.
func fixtureView(version string) sim.View {
	now := fixtureNow.UnixMilli()
	completed := sim.CheckpointStat{
		ID: 42, Status: "COMPLETED", TriggerTimestamp: now - 20_000, LatestAckTimestamp: now - 18_166,
		EndToEndDurationMs: 1834, StateSizeBytes: 52_428_800, CheckpointedSize: 1_048_576,
		ProcessedData: 2048, PersistedData: 0, NumSubtasks: 4, NumAcknowledged: 4,
		CheckpointType: "CHECKPOINT", ExternalPath: "s3://flink/checkpoints/" + jobID + "/chk-42",
	}
	savepoint := sim.CheckpointStat{
		ID: 41, Status: "COMPLETED", IsSavepoint: true, TriggerTimestamp: now - 40_000, LatestAckTimestamp: now - 37_000,
		EndToEndDurationMs: 3000, StateSizeBytes: 50_331_648, CheckpointedSize: 50_331_648,
		NumSubtasks: 4, NumAcknowledged: 4, CheckpointType: "SAVEPOINT",
		ExternalPath: "s3://flink/savepoints/savepoint-3f2a9c-5d1b2e3f4a5b",
	}
	failed := sim.CheckpointStat{
		ID: 43, Status: "FAILED", TriggerTimestamp: now - 10_000, LatestAckTimestamp: now - 9_500,
		EndToEndDurationMs: 1200, NumSubtasks: 4, NumAcknowledged: 2, CheckpointType: "CHECKPOINT",
		FailureTimestamp: now - 8_800, FailureMessage: "Checkpoint expired before completing.",
	}
	inProgress := sim.CheckpointStat{
		ID: 44, Status: "IN_PROGRESS", TriggerTimestamp: now - 1_000, LatestAckTimestamp: now - 600,
		EndToEndDurationMs: 400, NumSubtasks: 4, NumAcknowledged: 1, CheckpointType: "CHECKPOINT",
	}
	return sim.View{
		Now:          fixtureNow,
		FlinkVersion: version,
		FlinkCommit:  "abc1234",
		Scheduler:    "adaptive",
		Job: sim.JobView{
			ID: jobID, Name: "orders_agg", State: "RUNNING",
			Timestamps: map[string]int64{"INITIALIZING": t0, "CREATED": t0 + 100, "RUNNING": t0 + 2_000},
			StartTime:  t0, EndTime: -1, MaxParallelism: -1, JobParallelism: 2,
			NumRestarts: 1, NumRescales: 0,
			Vertices: []sim.VertexView{
				{
					ID: srcID, Name: "Source: Kafka Source -> Map", OperatorName: "Source: Kafka Source",
					Parallelism: 2, MaxParallelism: 128, SlotSharingGroupID: srcGroup,
					Status: "RUNNING", IsSource: true, StartTime: t0 + 1_500,
					Subtasks: []sim.SubtaskView{
						{
							Index: 0, TaskManagerID: tm1, Host: "10.244.1.17",
							BusyTimeMsPerSecond: 734, IdleTimeMsPerSecond: 0,
							SoftBackPressuredTimeMsPerSecond: 200, HardBackPressuredTimeMsPerSecond: 66,
							BackPressuredTimeMsPerSecond: 266,
							AccumulatedBusyTimeMs:        1.2345678e7, AccumulatedIdleTimeMs: 0, AccumulatedBackPressuredMs: 958_000,
							NumRecordsIn: 0, NumRecordsOut: 12_345_678, NumRecordsInPerSecond: 0, NumRecordsOutPerSecond: 15234.55,
							SourceNumRecordsIn: 12_345_678, SourceNumRecordsOut: 12_345_678,
							SourceNumRecordsInPerSecond: 15234.55, SourceNumRecordsOutPerSecond: 15234.55,
							PendingRecords: f64(48_210),
							Partitions: []sim.PartitionView{
								{Topic: "orders.v1", Partition: 0, CurrentOffset: 45_231_007, CommittedOffset: 45_230_000},
								{Topic: "orders.v1", Partition: 2, CurrentOffset: 45_100_000, CommittedOffset: -1},
							},
						},
						{
							Index: 1, TaskManagerID: tm2, Host: "10.244.2.9",
							BusyTimeMsPerSecond: 120, IdleTimeMsPerSecond: 880,
							AccumulatedBusyTimeMs: 432_000, AccumulatedIdleTimeMs: 3_168_000,
							NumRecordsIn: 0, NumRecordsOut: 2_000_000, NumRecordsOutPerSecond: 500.5,
							SourceNumRecordsIn: 2_000_000, SourceNumRecordsOut: 2_000_000,
							SourceNumRecordsInPerSecond: 500.5, SourceNumRecordsOutPerSecond: 500.5,
							// PendingRecords nil: not registered before the first fetch.
							Partitions: []sim.PartitionView{
								{Topic: "orders.v1", Partition: 1, CurrentOffset: 1_000_000, CommittedOffset: 999_000},
								{Topic: "orders.v1", Partition: 3, CurrentOffset: 1_000_001, CommittedOffset: 999_001},
							},
						},
					},
				},
				{
					ID:           winID,
					Name:         "Window(TumblingEventTimeWindows(60000), EventTimeTrigger, CountAgg) -> Sink: Print to Std. Out",
					OperatorName: "Window(TumblingEventTimeWindows(60000), EventTimeTrigger, CountAgg)",
					Parallelism:  2, MaxParallelism: 128, SlotSharingGroupID: winGroup,
					Inputs: []sim.EdgeView{{ID: srcID, Ship: "HASH"}},
					Status: "RUNNING", StartTime: t0 + 1_600,
					Subtasks: []sim.SubtaskView{
						{
							Index: 0, TaskManagerID: tm1, Host: "10.244.1.17",
							BusyTimeMsPerSecond: 950, IdleTimeMsPerSecond: 50,
							AccumulatedBusyTimeMs: 3_420_000, AccumulatedIdleTimeMs: 180_000,
							NumRecordsIn: 7_000_000, NumRecordsOut: 0, NumRecordsInPerSecond: 7800.25,
						},
						{
							Index: 1, TaskManagerID: tm2, Host: "10.244.2.9",
							// Not measured (busy time disabled for this task).
							BusyTimeMsPerSecond: math.NaN(), IdleTimeMsPerSecond: 100,
							AccumulatedBusyTimeMs: 3_000_000, AccumulatedIdleTimeMs: 360_000,
							NumRecordsIn: 7_345_678, NumRecordsOut: 0, NumRecordsInPerSecond: 7934.3,
						},
					},
				},
			},
			Checkpoints: sim.CheckpointsView{
				Restored: 0, Total: 45, InProgress: 1, Completed: 40, Failed: 4,
				History:         []sim.CheckpointStat{inProgress, failed, completed, savepoint},
				LatestCompleted: &completed, LatestSavepoint: &savepoint, LatestFailed: &failed,
			},
		},
		TaskManagers: []sim.TaskManagerView{
			{
				ID: tm1, Path: "pekko.tcp://flink@10.244.1.17:6122/user/rpc/taskmanager_0",
				DataPort: 6121, JMXPort: -1, TimeSinceLastHeartbeat: now - 2_000,
				SlotsNumber: 2, FreeSlots: 0, CPUCores: 1, PhysicalMemory: 2048 * mib,
				FreeMemory: 900 * mib, ManagedMemory: 512 * mib, Host: "10.244.1.17",
			},
			{
				ID: tm2, Path: "pekko.tcp://flink@10.244.2.9:6122/user/rpc/taskmanager_0",
				DataPort: 6121, JMXPort: -1, TimeSinceLastHeartbeat: now - 3_000,
				SlotsNumber: 2, FreeSlots: 0, CPUCores: 1, PhysicalMemory: 2048 * mib,
				FreeMemory: 850 * mib, ManagedMemory: 512 * mib, Host: "10.244.2.9",
			},
		},
		JobManagerConfig: map[string]string{
			"jobmanager.scheduler":                                      "adaptive",
			"state.savepoints.dir":                                      "s3://flink/savepoints",
			"state.checkpoints.dir":                                     "s3://flink/checkpoints",
			"execution.checkpointing.interval":                          "10s",
			"execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
			"state.backend.type":                                        "rocksdb",
			"s3.secret-key":                                             "hunter2",
			"web.refresh-interval":                                      "3000",
		},
		JobManagerHost: "orders-agg-jobmanager",
	}
}

// trigger is a savepoint operation of the fake cluster.
type trigger struct {
	req    sim.SavepointRequest
	status sim.SavepointStatus
}

// fakeCluster serves a fixed view and records control calls.
type fakeCluster struct {
	mu           sync.Mutex
	view         sim.View
	triggers     map[string]*trigger
	order        []string
	requirements map[string]sim.Bounds
	updating     bool // a concurrent update is in progress: 409
	updates      []map[string]sim.Bounds
}

func newFake(version string) *fakeCluster {
	return &fakeCluster{
		view:     fixtureView(version),
		triggers: map[string]*trigger{},
		requirements: map[string]sim.Bounds{
			srcID: {LowerBound: 1, UpperBound: 2},
			winID: {LowerBound: 1, UpperBound: 2},
		},
	}
}

// storedHandler serves f with its view in the MetricStore: one metrics
// request has made the JobManager fetch it (the first answers from the
// fetch as the tasks started), and the fixture's clock stands still, so no
// later request fetches again.
func storedHandler(t *testing.T, f *fakeCluster) http.Handler {
	t.Helper()
	h := NewHandler(f)
	get(t, h, "/jobmanager/metrics")
	return h
}

// View is a copy of the fake's view, as sim.Cluster's must be: edits of
// the fake do not reach a view handed out before.
func (f *fakeCluster) View() sim.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.view
	v.Job.Timestamps = maps.Clone(v.Job.Timestamps)
	v.JobManagerConfig = maps.Clone(v.JobManagerConfig)
	v.TaskManagers = slices.Clone(v.TaskManagers)
	v.Job.Checkpoints.History = slices.Clone(v.Job.Checkpoints.History)
	v.Job.Vertices = slices.Clone(v.Job.Vertices)
	for i, vx := range v.Job.Vertices {
		vx.Inputs = slices.Clone(vx.Inputs)
		vx.Subtasks = slices.Clone(vx.Subtasks)
		for k, st := range vx.Subtasks {
			st.Partitions = slices.Clone(st.Partitions)
			if st.PendingRecords != nil {
				p := *st.PendingRecords
				st.PendingRecords = &p
			}
			vx.Subtasks[k] = st
		}
		v.Job.Vertices[i] = vx
	}
	return v
}

func (f *fakeCluster) TriggerSavepoint(req sim.SavepointRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.JobID != f.view.Job.ID {
		return "", sim.ErrNotFound
	}
	if f.view.Job.State != "RUNNING" {
		return "", fmt.Errorf("%w: Job %s is not running (%s).", sim.ErrNotRunning, req.JobID, f.view.Job.State)
	}
	id := req.TriggerID
	if id == "" {
		id = fmt.Sprintf("%032x", len(f.triggers)+1)
	}
	if _, dup := f.triggers[id]; !dup {
		f.triggers[id] = &trigger{req: req, status: sim.SavepointStatus{Status: "IN_PROGRESS"}}
		f.order = append(f.order, id)
	}
	return id, nil
}

func (f *fakeCluster) SavepointStatus(jobID, triggerID string) (sim.SavepointStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tr, found := f.triggers[triggerID]
	if !found || tr.req.JobID != jobID {
		return sim.SavepointStatus{}, sim.ErrNotFound
	}
	return tr.status, nil
}

func (f *fakeCluster) finish(triggerID string, st sim.SavepointStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers[triggerID].status = st
}

func (f *fakeCluster) ResourceRequirements(jobID string) (map[string]sim.Bounds, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if jobID != f.view.Job.ID {
		return nil, sim.ErrNotFound
	}
	return maps.Clone(f.requirements), nil
}

// UpdateResourceRequirements validates as Flink's Dispatcher does.
func (f *fakeCluster) UpdateResourceRequirements(jobID string, req map[string]sim.Bounds) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if jobID != f.view.Job.ID {
		return sim.ErrNotFound
	}
	if f.view.Scheduler != "adaptive" {
		return sim.ErrUnsupported
	}
	if f.updating {
		return sim.ErrConflict // bare: the handler supplies Flink's message
	}
	for _, vx := range f.view.Job.Vertices {
		b, found := req[vx.ID]
		if !found {
			return fmt.Errorf("%w: The request is incomplete, missing job vertex [%s] resource requirements.", sim.ErrBadRequest, vx.ID)
		}
		if b.LowerBound < 1 || b.UpperBound < b.LowerBound || b.UpperBound > vx.MaxParallelism {
			return fmt.Errorf("%w: Invalid parallelism bounds for job vertex [%s].", sim.ErrBadRequest, vx.ID)
		}
	}
	if len(req) != len(f.view.Job.Vertices) {
		return fmt.Errorf("%w: The request contains unknown job vertices.", sim.ErrBadRequest)
	}
	f.updates = append(f.updates, maps.Clone(req))
	f.requirements = maps.Clone(req)
	return nil
}

// ---- helpers ----

func do(t *testing.T, h http.Handler, method, target string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, "application/json; charset=UTF-8", rec.Header().Get("Content-Type"))
	return rec.Code, rec.Body.Bytes()
}

func get(t *testing.T, h http.Handler, target string) []byte {
	t.Helper()
	code, body := do(t, h, http.MethodGet, target, "")
	require.Equal(t, http.StatusOK, code, "GET %s: %s", target, body)
	return body
}

func decode(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&v), string(raw))
	return v
}

func obj(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	m, isObj := decode(t, raw).(map[string]any)
	require.True(t, isObj, "not an object: %s", raw)
	return m
}

// keysAt lists, in document order, the keys of the object at path (object
// keys, or array indices as decimal strings) in raw.
func keysAt(t *testing.T, raw []byte, path ...string) []string {
	t.Helper()
	var node json.RawMessage = raw
	for _, p := range path {
		var m map[string]json.RawMessage
		if json.Unmarshal(node, &m) == nil {
			node = m[p]
			continue
		}
		var a []json.RawMessage
		require.NoError(t, json.Unmarshal(node, &a))
		var i int
		_, err := fmt.Sscan(p, &i)
		require.NoError(t, err)
		node = a[i]
	}
	dec := json.NewDecoder(bytes.NewReader(node))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok, "not an object at %v", path)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}
