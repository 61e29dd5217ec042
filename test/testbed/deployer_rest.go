package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim"
)

// restClient is the Deployer's JobManager REST client: JSON in and out, and
// a non-2xx answer as a *flink.APIError, so that the errors of every call
// map to the simulator's in one place (simError).
type restClient struct {
	base string // http://host:port
	hc   *http.Client
}

func (c restClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &flink.APIError{Method: method, Endpoint: path, Status: resp.StatusCode, Messages: restErrors(raw)}
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

func (c restClient) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// restErrors are the messages of Flink's {"errors":[…]} body, each cut to
// its first line (Flink appends whole stack traces).
func restErrors(raw []byte) []string {
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) != nil || len(body.Errors) == 0 {
		if s := strings.TrimSpace(string(raw)); s != "" {
			return []string{firstLine(s)}
		}
		return nil
	}
	out := make([]string, len(body.Errors))
	for i, e := range body.Errors {
		out[i] = firstLine(e)
	}
	return out
}

// simError maps a JobManager's error answer to the simulator's error of
// the same meaning (test/sim/control.go), keeping Flink's message: 404 is
// sim.ErrNotFound, 400 sim.ErrBadRequest, 409 sim.ErrConflict, and a 500
// from an UnsupportedOperationException (the default scheduler asked for
// resource requirements) sim.ErrUnsupported. Other errors pass unchanged.
func simError(err error) error {
	var ae *flink.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", sim.ErrNotFound, err)
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %w", sim.ErrBadRequest, err)
	case http.StatusConflict:
		return fmt.Errorf("%w: %w", sim.ErrConflict, err)
	case http.StatusInternalServerError:
		msg := strings.Join(ae.Messages, " ")
		if strings.Contains(msg, "UnsupportedOperation") || strings.Contains(msg, "AdaptiveScheduler") {
			return fmt.Errorf("%w: %w", sim.ErrUnsupported, err)
		}
	}
	return err
}

// savepointTarget is where a savepoint of the testbed goes for a
// trigger's target directory: "" stays "" (the cluster's own
// state.savepoints.dir), a file: URI or an absolute path is used as
// given, and anything else (s3://, gs://, hdfs://…, which a
// FlinkDeployment written for a real cluster names, but the testbed has no
// object store; or a relative path) becomes own, the cluster's own
// savepoint directory.
func savepointTarget(dir, own string) string {
	if dir == "" || strings.HasPrefix(dir, "file:") || strings.HasPrefix(dir, "/") {
		return dir
	}
	return own
}

// savepointStatus maps GET /jobs/:id/savepoints/:trigger to the
// simulator's status: IN_PROGRESS, or COMPLETED with the location, or
// COMPLETED with the failure (readableCause of the stack trace, and the
// exception's class).
func savepointStatus(s flink.SavepointStatus) sim.SavepointStatus {
	out := sim.SavepointStatus{Status: s.Status.ID}
	if s.Operation == nil {
		return out
	}
	out.Location = s.Operation.Location
	if fc := s.Operation.FailureCause; fc != nil {
		out.FailureClass = fc.Class
		out.FailureCause = readableCause(fc.StackTrace)
		if out.FailureCause == "" {
			out.FailureCause = fc.Class
		}
	}
	return out
}

// wrapperExceptions only carry the exception they wrap: their message is
// the wrapped one's "class: message".
var wrapperExceptions = []string{
	"java.util.concurrent.CompletionException",
	"java.util.concurrent.ExecutionException",
	"org.apache.flink.util.SerializedThrowable",
}

// readableCause is one line out of a Java stack trace: the outermost
// exception that is not a mere wrapper, and, when a deeper "Caused by:"
// says something else, the root cause after it. For example
//
//	org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint. (root cause: java.io.IOException: Mkdirs failed to create /x)
func readableCause(trace string) string {
	var heads []string
	for i, line := range strings.Split(strings.TrimSpace(trace), "\n") {
		line = strings.TrimSpace(line)
		if i > 0 {
			var ok bool
			if line, ok = strings.CutPrefix(line, "Caused by: "); !ok {
				continue
			}
		}
		heads = append(heads, unwrap(line))
	}
	if len(heads) == 0 {
		return ""
	}
	first, root := heads[0], heads[len(heads)-1]
	if root == first || strings.Contains(first, root) {
		return first
	}
	return first + " (root cause: " + root + ")"
}

// unwrap drops wrapper exceptions from the front of "class: message".
func unwrap(head string) string {
	for {
		class, msg, ok := strings.Cut(head, ": ")
		if !ok || msg == "" {
			return head
		}
		wrapper := false
		for _, w := range wrapperExceptions {
			wrapper = wrapper || class == w
		}
		if !wrapper {
			return head
		}
		head = msg
	}
}

// jobView is the simulator's view of GET /jobs/:id and, when known (ck
// not nil), GET /jobs/:id/checkpoints.
func jobView(d flink.JobDetails, ck *flink.CheckpointStatistics) sim.JobView {
	jv := sim.JobView{
		ID: d.ID, Name: d.Name, State: d.State, Timestamps: map[string]int64{},
		StartTime: d.StartTime, EndTime: d.EndTime, MaxParallelism: int(d.MaxParallelism),
	}
	for s, t := range d.Timestamps {
		if t > 0 { // Flink lists every state, 0 for those never entered
			jv.Timestamps[s] = t
		}
	}
	inputs := map[string][]sim.EdgeView{}
	for _, n := range d.Plan.Nodes {
		for _, in := range n.Inputs {
			inputs[n.ID] = append(inputs[n.ID], sim.EdgeView{ID: in.ID, Ship: in.ShipStrategy})
		}
	}
	maxP := 0
	for _, v := range d.Vertices {
		jv.Vertices = append(jv.Vertices, sim.VertexView{
			ID: v.ID, Name: v.Name, OperatorName: headOperator(v.Name),
			Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism,
			SlotSharingGroupID: v.SlotSharingGroupID, Status: v.Status,
			IsSource: len(inputs[v.ID]) == 0, Inputs: inputs[v.ID], StartTime: v.StartTime,
		})
		jv.JobParallelism = max(jv.JobParallelism, v.Parallelism)
		maxP = max(maxP, v.MaxParallelism)
	}
	if jv.MaxParallelism <= 0 { // -1: each vertex has its own
		jv.MaxParallelism = maxP
	}
	if ck != nil {
		jv.Checkpoints = checkpointsView(ck)
	}
	return jv
}

// headOperator is the first operator of a chain's name, as metric scopes
// name a vertex ("Source: events" of "Source: events -> Map").
func headOperator(name string) string {
	head, _, _ := strings.Cut(name, " -> ")
	return head
}

// checkpointStat is one checkpoint of GET /jobs/:id/checkpoints as the
// simulator's view has it.
func checkpointStat(c flink.CheckpointStat) sim.CheckpointStat {
	return sim.CheckpointStat{
		ID: c.ID, Status: c.Status, IsSavepoint: c.IsSavepoint,
		TriggerTimestamp: c.TriggerTimestamp, LatestAckTimestamp: c.LatestAckTimestamp,
		EndToEndDurationMs: c.EndToEndDuration, StateSizeBytes: c.StateSize, CheckpointedSize: c.CheckpointedSize,
		AlignmentBuffered: c.AlignmentBuffered, ProcessedData: c.ProcessedData, PersistedData: c.PersistedData,
		NumSubtasks: c.NumSubtasks, NumAcknowledged: c.NumAcknowledged, CheckpointType: c.CheckpointType,
		ExternalPath: c.ExternalPath, FailureTimestamp: c.FailureTimestamp, FailureMessage: c.FailureMessage,
	}
}

// checkpointsView is GET /jobs/:id/checkpoints as the simulator's view
// has it.
func checkpointsView(c *flink.CheckpointStatistics) sim.CheckpointsView {
	var v sim.CheckpointsView
	if n := c.Counts; n != nil {
		v.Restored, v.Total, v.InProgress, v.Completed, v.Failed = n.Restored, n.Total, n.InProgress, n.Completed, n.Failed
	}
	for _, h := range c.History {
		v.History = append(v.History, checkpointStat(h))
	}
	opt := func(c *flink.CheckpointStat) *sim.CheckpointStat {
		if c == nil {
			return nil
		}
		s := checkpointStat(*c)
		return &s
	}
	v.LatestCompleted, v.LatestSavepoint, v.LatestFailed = opt(c.Latest.Completed), opt(c.Latest.Savepoint), opt(c.Latest.Failed)
	if r := c.Latest.Restored; r != nil {
		v.LatestRestored = &sim.RestoredCheckpoint{ID: r.ID, RestoreTimestamp: r.RestoreTimestamp, IsSavepoint: r.IsSavepoint, ExternalPath: r.ExternalPath}
	}
	return v
}

// restTaskManagers is GET /taskmanagers.
type restTaskManagers struct {
	TaskManagers []struct {
		ID                     string `json:"id"`
		Path                   string `json:"path"`
		DataPort               int    `json:"dataPort"`
		JMXPort                int    `json:"jmxPort"`
		TimeSinceLastHeartbeat int64  `json:"timeSinceLastHeartbeat"`
		SlotsNumber            int    `json:"slotsNumber"`
		FreeSlots              int    `json:"freeSlots"`
		Hardware               struct {
			PhysicalMemory int64 `json:"physicalMemory"`
			FreeMemory     int64 `json:"freeMemory"`
			ManagedMemory  int64 `json:"managedMemory"`
		} `json:"hardware"`
	} `json:"taskmanagers"`
}

// view lists the TaskManagers with cpu cores each (what the pod asks
// for; the JVMs all share this machine's cores).
func (r restTaskManagers) view(cpu float64) []sim.TaskManagerView {
	out := make([]sim.TaskManagerView, 0, len(r.TaskManagers))
	for _, tm := range r.TaskManagers {
		out = append(out, sim.TaskManagerView{
			ID: tm.ID, Path: tm.Path, DataPort: tm.DataPort, JMXPort: tm.JMXPort,
			TimeSinceLastHeartbeat: tm.TimeSinceLastHeartbeat, SlotsNumber: tm.SlotsNumber, FreeSlots: tm.FreeSlots,
			CPUCores: cpu, PhysicalMemory: tm.Hardware.PhysicalMemory, FreeMemory: tm.Hardware.FreeMemory,
			ManagedMemory: tm.Hardware.ManagedMemory, Host: loopback,
		})
	}
	return out
}

// cloneJob deep-copies a job view, so a View never shares memory with
// the Deployer's snapshot.
func cloneJob(j sim.JobView) sim.JobView {
	out := j
	out.Timestamps = make(map[string]int64, len(j.Timestamps))
	for k, v := range j.Timestamps {
		out.Timestamps[k] = v
	}
	out.Vertices = make([]sim.VertexView, len(j.Vertices))
	for i, v := range j.Vertices {
		v.Inputs = append([]sim.EdgeView(nil), v.Inputs...)
		v.Subtasks = append([]sim.SubtaskView(nil), v.Subtasks...)
		out.Vertices[i] = v
	}
	c := &out.Checkpoints
	c.History = append([]sim.CheckpointStat(nil), j.Checkpoints.History...)
	for _, p := range []**sim.CheckpointStat{&c.LatestCompleted, &c.LatestSavepoint, &c.LatestFailed} {
		if *p != nil {
			x := **p
			*p = &x
		}
	}
	if c.LatestRestored != nil {
		x := *c.LatestRestored
		c.LatestRestored = &x
	}
	return out
}

// terminalState reports a globally terminal Flink job state.
func terminalState(s string) bool {
	return s == "FINISHED" || s == "CANCELED" || s == "FAILED"
}
