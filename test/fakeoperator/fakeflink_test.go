package fakeoperator

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flinkscale/flinkscale/test/sim"
)

// fakeFlink is a sim.Deployer the test drives by hand: it records every call,
// and the test moves the job between states, completes or fails savepoints
// and arms faults.
type fakeFlink struct {
	mu sync.Mutex

	version, scheduler string
	vertexIDs          []string // job graph, topological order

	// Current job; ID "" before the first Submit.
	jobID, jobName, state string
	parallelism           map[string]int
	startTime             int64
	requirements          map[string]sim.Bounds

	submissions []sim.Submission
	triggers    []sim.SavepointRequest
	puts        []map[string]sim.Bounds
	cancels     []string
	savepoints  map[string]*sim.SavepointStatus // trigger id → status
	faults      map[sim.Fault]int
	// autoRun makes a submitted job RUNNING at once (for manager tests).
	autoRun bool
	spSeq   int
	// checkpoint is the external path of the job's latest completed
	// checkpoint ("" for none).
	checkpoint string
}

const (
	vSource = "bc764cd8ddf7a0cff126f51c16239658"
	vSink   = "0a448493b4782967b150582570326227"
)

func newFakeFlink(version, scheduler string) *fakeFlink {
	return &fakeFlink{
		version: version, scheduler: scheduler,
		vertexIDs:  []string{vSource, vSink},
		jobName:    "orders",
		savepoints: map[string]*sim.SavepointStatus{},
		faults:     map[sim.Fault]int{},
	}
}

func (f *fakeFlink) View() sim.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := sim.View{FlinkVersion: f.version, Scheduler: f.scheduler}
	v.Job = sim.JobView{ID: f.jobID, State: f.state, StartTime: f.startTime}
	if f.jobID != "" {
		v.Job.Name = f.jobName
	}
	for _, id := range f.vertexIDs {
		v.Job.Vertices = append(v.Job.Vertices, sim.VertexView{ID: id, Parallelism: f.parallelism[id]})
	}
	if f.checkpoint != "" {
		v.Job.Checkpoints.LatestCompleted = &sim.CheckpointStat{ID: 1, Status: "COMPLETED", ExternalPath: f.checkpoint}
	}
	return v
}

func (f *fakeFlink) TriggerSavepoint(req sim.SavepointRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers = append(f.triggers, req)
	if req.JobID != f.jobID {
		return "", fmt.Errorf("%w: job %s", sim.ErrNotFound, req.JobID)
	}
	if f.state != StateRunning {
		return "", fmt.Errorf("%w: job is %s", sim.ErrNotRunning, f.state)
	}
	f.spSeq++
	id := fmt.Sprintf("trigger-%d", f.spSeq)
	f.savepoints[id] = &sim.SavepointStatus{Status: "IN_PROGRESS"}
	return id, nil
}

func (f *fakeFlink) SavepointStatus(jobID, triggerID string) (sim.SavepointStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.savepoints[triggerID]
	if !ok {
		return sim.SavepointStatus{}, sim.ErrNotFound
	}
	return *s, nil
}

func (f *fakeFlink) ResourceRequirements(jobID string) (map[string]sim.Bounds, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if jobID != f.jobID {
		return nil, sim.ErrNotFound
	}
	return maps.Clone(f.requirements), nil
}

func (f *fakeFlink) UpdateResourceRequirements(jobID string, req map[string]sim.Bounds) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if jobID != f.jobID {
		return sim.ErrNotFound
	}
	if f.scheduler != "adaptive" {
		return sim.ErrUnsupported
	}
	f.puts = append(f.puts, maps.Clone(req))
	f.requirements = maps.Clone(req)
	for id, b := range req {
		f.parallelism[id] = b.UpperBound
	}
	return nil
}

func (f *fakeFlink) Submit(s sim.Submission) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submissions = append(f.submissions, s)
	if !terminal(f.state) {
		return fmt.Errorf("%w: job %s is %s", sim.ErrConflict, f.jobID, f.state)
	}
	f.jobID = s.JobID
	f.state = StateInitializing
	if f.autoRun {
		f.state = StateRunning
	}
	f.startTime = time.Date(2026, 1, 1, 0, len(f.submissions), 0, 0, time.UTC).UnixMilli()
	f.parallelism = map[string]int{}
	f.requirements = map[string]sim.Bounds{}
	for _, id := range f.vertexIDs {
		p := s.DefaultParallelism
		if o, ok := s.Overrides[id]; ok {
			p = o
		}
		f.parallelism[id] = p
		f.requirements[id] = sim.Bounds{LowerBound: 1, UpperBound: p}
	}
	if f.faults[sim.FaultRestart] > 0 {
		f.faults[sim.FaultRestart]--
		f.state = StateFailed
	}
	return nil
}

func (f *fakeFlink) Inject(fault sim.Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[fault]++
}

// Test controls.

func (f *fakeFlink) setState(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
}

// setCheckpoint sets the latest completed checkpoint's external path.
func (f *fakeFlink) setCheckpoint(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkpoint = path
}

// requirementsOf returns the job's resource requirements.
func (f *fakeFlink) requirementsOf() map[string]sim.Bounds {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.requirements)
}

// finishSavepoint completes the latest trigger: a failure if FaultSavepoint
// is armed (the job keeps running), else success at loc (the job stops).
func (f *fakeFlink) finishSavepoint(t *testing.T, loc string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("trigger-%d", f.spSeq)
	sp := f.savepoints[id]
	if sp == nil || sp.Status != "IN_PROGRESS" {
		t.Fatalf("no savepoint in progress (last trigger %s)", id)
	}
	if f.faults[sim.FaultSavepoint] > 0 {
		f.faults[sim.FaultSavepoint]--
		*sp = sim.SavepointStatus{Status: "COMPLETED", FailureCause: "Checkpoint expired before completing.", FailureClass: "java.util.concurrent.CompletionException"}
		return
	}
	*sp = sim.SavepointStatus{Status: "COMPLETED", Location: loc}
	req := f.triggers[len(f.triggers)-1]
	switch {
	case req.Stop:
		f.state = StateFinished
	case req.Cancel:
		f.state = StateCanceled
	}
}

type calls struct {
	submissions []sim.Submission
	triggers    []sim.SavepointRequest
	puts        []map[string]sim.Bounds
	cancels     []string
}

func (f *fakeFlink) calls() calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return calls{
		submissions: append([]sim.Submission(nil), f.submissions...),
		triggers:    append([]sim.SavepointRequest(nil), f.triggers...),
		puts:        append([]map[string]sim.Bounds(nil), f.puts...),
		cancels:     append([]string(nil), f.cancels...),
	}
}

// cancelingFlink adds a plain cancel (Canceler), which sim.Job does not have.
type cancelingFlink struct{ *fakeFlink }

// withCancel is f, with a plain cancel if canceler.
func withCancel(f *fakeFlink, canceler bool) sim.Deployer {
	if canceler {
		return cancelingFlink{f}
	}
	return f
}

func (c cancelingFlink) Cancel(jobID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancels = append(c.cancels, jobID)
	if jobID != c.jobID || terminal(c.state) {
		return sim.ErrNotFound
	}
	c.state = StateCanceled
	return nil
}

// recorder is a record.EventRecorder keeping "Type Reason Message" lines.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Event(_ runtime.Object, typ, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, typ+" "+reason+" "+msg)
}

func (r *recorder) Eventf(o runtime.Object, typ, reason, format string, args ...any) {
	r.Event(o, typ, reason, fmt.Sprintf(format, args...))
}

func (r *recorder) AnnotatedEventf(o runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	r.Eventf(o, typ, reason, format, args...)
}

// take returns the events since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// reasons returns the reason of each event.
func reasons(events []string) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		f := strings.Fields(e)
		if len(f) > 1 {
			out = append(out, f[1])
		}
	}
	return out
}
