package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim"
)

// DeployerOptions configure a Deployer. Every zero value is a working
// default.
type DeployerOptions struct {
	// TaskManagerRestart is how long after a TaskManager is killed (or
	// dies) a replacement starts, as Kubernetes recreates a pod (default
	// 5s; negative: never).
	TaskManagerRestart time.Duration
	// IdleTaskManagerTimeout: after an in-place rescale, TaskManagers idle
	// (all slots free) while the job runs are stopped after this, as
	// Flink's resourcemanager.taskmanager-timeout releases them (default
	// 30s).
	IdleTaskManagerTimeout time.Duration
	// CPUCores is reported per TaskManager in View (default the scenario's
	// taskManager.cpu).
	CPUCores float64
	// RefreshInterval is how often the snapshot View returns is read from
	// the REST API (default 500 ms).
	RefreshInterval time.Duration
	// Progress receives one line per action (submissions, TaskManagers
	// started and stopped, faults); nil discards them.
	Progress io.Writer
	// FollowRequirements reads the running job's resource requirements
	// every FollowInterval (default 2s) and sizes the pool to them, as
	// Flink's active resource manager asks Kubernetes for the pods the
	// adaptive scheduler wants: for requirements that another client (the
	// Flink autoscaler's standalone rescaler) sets with PUT
	// /jobs/:id/resource-requirements, not through this Deployer.
	FollowRequirements bool
	FollowInterval     time.Duration
}

// Deployer is a sim.Deployer backed by the testbed's real Flink session
// cluster, so that test/fakeoperator drives real Flink as the Flink
// Kubernetes Operator drives a cluster: View is a snapshot of the REST API
// refreshed in the background (never a call to Flink), Submit resizes the
// TaskManager pool and runs the workload's client asynchronously, the
// savepoint and resource-requirement calls are the REST API's, and faults
// are real ones (a killed TaskManager, an unwritable savepoint directory, a
// missing savepoint).
//
// The pool plays Kubernetes and Flink's active resource manager: a
// submission gets its TaskManagers × slots (another slot count replaces
// every TaskManager), an in-place rescale starts what its upper bounds
// need and releases TaskManagers left idle, and a lost TaskManager is
// replaced after DeployerOptions.TaskManagerRestart.
//
// Savepoint target directories that the testbed cannot write (s3://,
// gs://, hdfs://…) become the cluster's own savepoint directory; file:
// URIs and absolute paths are used as given.
type Deployer struct {
	o          DeployerOptions
	rest       restClient
	pool       taskManagerPool
	runClient  func(context.Context, SubmitOptions) (string, error)
	submitOpts SubmitOptions // Classpath, JarPath, REST of every submission
	job        sim.JobSpec   // the scaled scenario's job
	plan       []PlannedVertex
	static     map[string]sim.VertexView // by id: what is known before a job runs
	spec       []byte                    // the testbed's workload spec, for per-submission copies
	dir        string                    // where per-submission specs go
	savepoints string                    // the cluster's savepoint directory (URI)
	badTarget  string                    // FaultSavepoint's directory, below a regular file
	version    string                    // sim.View.FlinkVersion
	commit     string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// poolMu serializes changes to the TaskManager processes.
	poolMu sync.Mutex

	mu        sync.Mutex
	cur       current
	tms       []sim.TaskManagerView
	jmConfig  map[string]string
	scheduler string
	slots     int
	ps        poolState
	faults    map[sim.Fault]int
	triggers  map[string]trigger
	ending    map[string]bool // jobs stopped with a savepoint or cancelled
	submitErr error
	seq       int
	// followed is the TaskManagers the last requirements read or set
	// needed (FollowRequirements).
	followed int
}

// current is the job View reports.
type current struct {
	id string
	// rest is the REST API's view of the job, nil until it knows the job.
	rest *sim.JobView
	// pending is the submission from Submit until the REST API knows
	// the job (or forever, when the submission failed).
	pending *pendingJob
}

type pendingJob struct {
	submitted time.Time
	par       map[string]int // vertex id → parallelism
	failedAt  time.Time      // zero unless the submission failed
}

type trigger struct {
	jobID string
	stop  bool // the job ends when the savepoint completes
}

var _ sim.Deployer = (*Deployer)(nil)

// NewDeployer returns a Deployer of the testbed's cluster. It learns the
// workload's job vertex ids from Flink's own graph generator (PlanWorkload,
// a JVM start the first time for a spec), so that VertexID answers before
// any job runs, and starts refreshing the snapshot View returns. The
// testbed's job, if Start submitted one, is the current job. Close stops
// the Deployer (not the testbed).
func NewDeployer(ctx context.Context, tb *Testbed, o DeployerOptions) (*Deployer, error) {
	if tb == nil || tb.Flink == nil {
		return nil, errors.New("testbed: NewDeployer needs a started testbed")
	}
	plan, err := PlanWorkload(ctx, tb.flinkCP, tb.jar, tb.specFile)
	if err != nil {
		return nil, err
	}
	spec, err := os.ReadFile(tb.specFile)
	if err != nil {
		return nil, fmt.Errorf("testbed: reading the workload spec: %w", err)
	}
	c := tb.Flink
	d, err := newDeployer(ctx, deployerDeps{
		restURL: c.RESTURL(), pool: c, runClient: Submit,
		submitOpts: SubmitOptions{Classpath: tb.flinkCP, JarPath: tb.jar, REST: strings.TrimPrefix(c.RESTURL(), "http://")},
		job:        tb.Realised.Scaled.Job, plan: plan, spec: spec, dir: tb.dir,
		savepoints: "file://" + filepath.Join(c.Dir(), "savepoints"), version: c.Version(), jobID: tb.JobID,
	}, o)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// deployerDeps are what a Deployer works with; NewDeployer takes them from
// a Testbed, the unit tests from fakes.
type deployerDeps struct {
	restURL    string
	pool       taskManagerPool
	runClient  func(context.Context, SubmitOptions) (string, error)
	submitOpts SubmitOptions
	job        sim.JobSpec
	plan       []PlannedVertex
	spec       []byte
	dir        string
	savepoints string
	version    Flink
	jobID      string // a job running already
}

func newDeployer(ctx context.Context, deps deployerDeps, o DeployerOptions) (*Deployer, error) {
	if o.TaskManagerRestart == 0 {
		o.TaskManagerRestart = 5 * time.Second
	}
	if o.IdleTaskManagerTimeout <= 0 {
		o.IdleTaskManagerTimeout = 30 * time.Second
	}
	if o.CPUCores <= 0 {
		o.CPUCores = deps.job.TaskManager.CPU
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 500 * time.Millisecond
	}
	if o.FollowInterval <= 0 {
		o.FollowInterval = 2 * time.Second
	}
	// A regular file: nothing can be created below it, not even by root,
	// for whom permissions are no obstacle.
	notADir := filepath.Join(deps.dir, "savepoint-fault")
	if err := os.WriteFile(notADir, []byte("FaultSavepoint's target directory is below this regular file.\n"), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: deployer: %w", err)
	}
	d := &Deployer{
		o: o, rest: restClient{base: deps.restURL, hc: &http.Client{}}, pool: deps.pool, runClient: deps.runClient,
		submitOpts: deps.submitOpts, job: deps.job, plan: deps.plan, spec: deps.spec, dir: deps.dir,
		savepoints: deps.savepoints, badTarget: "file://" + filepath.Join(notADir, "savepoints"),
		version: SimFlinkVersion(deps.version),
		faults:  map[sim.Fault]int{}, triggers: map[string]trigger{}, ending: map[string]bool{},
		slots: deps.pool.Slots(),
	}
	d.static = staticVertices(deps.job, deps.plan)
	var ov flink.Overview
	if err := d.rest.get(ctx, "/overview", &ov); err != nil {
		return nil, fmt.Errorf("testbed: deployer: %w", err)
	}
	d.commit = ov.FlinkCommit
	var entries []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := d.rest.get(ctx, "/jobmanager/config", &entries); err != nil {
		return nil, fmt.Errorf("testbed: deployer: %w", err)
	}
	d.jmConfig = map[string]string{}
	for _, e := range entries {
		d.jmConfig[e.Key] = e.Value
	}
	d.scheduler = d.jmConfig["jobmanager.scheduler"]
	if d.scheduler == "" {
		d.scheduler = "default"
	}
	d.cur.id = deps.jobID
	d.ps.want = len(deps.pool.TaskManagerIDs())
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.refresh(ctx)
	d.wg.Go(func() { d.every(d.o.RefreshInterval, d.refresh) })
	d.wg.Go(func() { d.every(d.o.RefreshInterval, d.tend) })
	if d.o.FollowRequirements {
		d.wg.Go(func() { d.every(d.o.FollowInterval, d.follow) })
	}
	return d, nil
}

// staticVertices are the job's vertices as known before it runs: the
// plan's ids, the scenario's sources and edges.
func staticVertices(j sim.JobSpec, plan []PlannedVertex) map[string]sim.VertexView {
	ids := map[string]string{}
	for _, v := range plan {
		ids[ScenarioVertex(v.Name, j)] = v.ID
	}
	out := map[string]sim.VertexView{}
	for _, pv := range plan {
		v := sim.VertexView{ID: pv.ID, Name: pv.Name, OperatorName: headOperator(pv.Name), MaxParallelism: pv.MaxParallelism}
		name := ScenarioVertex(pv.Name, j)
		for _, sv := range j.Vertices {
			if sv.Name != name {
				continue
			}
			v.IsSource = len(sv.Topics) > 0
			for _, e := range sv.Inputs {
				v.Inputs = append(v.Inputs, sim.EdgeView{ID: ids[e.From], Ship: e.Ship})
			}
		}
		out[pv.ID] = v
	}
	return out
}

// ScenarioVertex is the scenario vertex a job vertex realises: the one of
// the same name, or the longest whose name, followed by " -> ", starts the
// job vertex's (operators chained behind the scenario's, such as a Kafka
// sink's writer and committer, lengthen the name). "" if none.
func ScenarioVertex(jobVertex string, j sim.JobSpec) string {
	best := ""
	for _, v := range j.Vertices {
		switch {
		case v.Name == jobVertex:
			return v.Name
		case strings.HasPrefix(jobVertex, v.Name+" -> ") && len(v.Name) > len(best):
			best = v.Name
		}
	}
	return best
}

// every calls f every interval until Close.
func (d *Deployer) every(interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			f(d.ctx)
		}
	}
}

// Close stops the Deployer's goroutines and a client still submitting; the
// testbed and its processes keep running.
func (d *Deployer) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

func (d *Deployer) say(format string, args ...any) {
	if d.o.Progress != nil {
		fmt.Fprintf(d.o.Progress, "deployer: "+format+"\n", args...)
	}
}

// VertexID is the job vertex id of a scenario vertex (or of a job vertex),
// by name.
func (d *Deployer) VertexID(name string) (string, bool) {
	for _, v := range d.plan {
		if v.Name == name || ScenarioVertex(v.Name, d.job) == name {
			return v.ID, true
		}
	}
	return "", false
}

// SubmitError is the error of the last submission whose client failed
// (the job View then reports as FAILED), nil if none did.
func (d *Deployer) SubmitError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.submitErr
}

// refresh reads the current job, its checkpoints and the TaskManagers
// from the REST API into the snapshot. A failed read keeps what the last
// one read.
func (d *Deployer) refresh(ctx context.Context) {
	d.mu.Lock()
	id := d.cur.id
	d.mu.Unlock()
	var job *sim.JobView
	if id != "" {
		var det flink.JobDetails
		if err := d.rest.get(ctx, "/jobs/"+id, &det); err == nil && det.ID == id {
			var ck *flink.CheckpointStatistics
			var c flink.CheckpointStatistics
			if err := d.rest.get(ctx, "/jobs/"+id+"/checkpoints", &c); err == nil {
				ck = &c
			}
			jv := jobView(det, ck)
			if ck == nil { // keep the last known checkpoints of the job
				d.mu.Lock()
				if old := d.cur.rest; old != nil && old.ID == id {
					jv.Checkpoints = cloneJob(*old).Checkpoints
				}
				d.mu.Unlock()
			}
			job = &jv
		}
	}
	var tms restTaskManagers
	tmErr := d.rest.get(ctx, "/taskmanagers", &tms)
	d.mu.Lock()
	defer d.mu.Unlock()
	if job != nil && d.cur.id == id {
		d.cur.rest = job
	}
	if tmErr == nil {
		d.tms = tms.view(d.o.CPUCores)
	}
}

// View is a copy of the latest snapshot: the current job as the REST API
// last reported it (or, while its submission is in flight, as
// INITIALIZING, and FAILED if the submission failed), the TaskManagers
// and the JobManager's configuration. It never calls Flink.
func (d *Deployer) View() sim.View {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := sim.View{
		Now: time.Now(), FlinkVersion: d.version, FlinkCommit: d.commit, Scheduler: d.scheduler,
		JobManagerConfig: maps.Clone(d.jmConfig), JobManagerHost: loopback,
		TaskManagers: slices.Clone(d.tms),
	}
	// The operator sets the slot count of the deployment's TaskManagers.
	v.JobManagerConfig["taskmanager.numberOfTaskSlots"] = strconv.Itoa(d.slots)
	switch {
	case d.cur.rest != nil:
		v.Job = cloneJob(*d.cur.rest)
	case d.cur.pending != nil:
		v.Job = d.pendingView()
	default: // nothing submitted yet, as the simulator reports it
		v.Job = sim.JobView{State: "INITIALIZING", Timestamps: map[string]int64{}, EndTime: -1}
	}
	return v
}

// pendingView is the job of a submission REST does not know (yet):
// INITIALIZING, or FAILED when its client failed. d.mu is held.
func (d *Deployer) pendingView() sim.JobView {
	p := d.cur.pending
	start := p.submitted.UnixMilli()
	jv := sim.JobView{
		ID: d.cur.id, Name: d.job.Name, State: "INITIALIZING", StartTime: start, EndTime: -1,
		Timestamps: map[string]int64{"INITIALIZING": start},
	}
	status := "CREATED"
	if !p.failedAt.IsZero() {
		end := p.failedAt.UnixMilli()
		jv.State, jv.EndTime, jv.Timestamps["FAILED"], status = "FAILED", end, end, "FAILED"
	}
	for _, pv := range d.plan {
		v := d.static[pv.ID]
		v.Inputs = slices.Clone(v.Inputs)
		v.Parallelism, v.Status = p.par[pv.ID], status
		jv.Vertices = append(jv.Vertices, v)
		jv.JobParallelism = max(jv.JobParallelism, v.Parallelism)
		jv.MaxParallelism = max(jv.MaxParallelism, v.MaxParallelism)
	}
	return jv
}

// Steady reports a job that runs with every vertex running.
func Steady(j *sim.JobView) bool {
	if j == nil || j.State != "RUNNING" || len(j.Vertices) == 0 {
		return false
	}
	for _, v := range j.Vertices {
		if v.Status != "RUNNING" {
			return false
		}
	}
	return true
}

// Submit deploys the workload as a new job, as the operator deploys a
// FlinkDeployment: it checks the submission (the current job must be
// terminal, or ending after a stop-with-savepoint or cancel; the overrides
// must name known vertices with a parallelism within their max
// parallelism) and returns; the TaskManager pool is resized and the
// client runs in the background. Until Flink knows the job, View reports
// it INITIALIZING; if the client fails, FAILED (SubmitError has why).
//
// The job id is fixed with $internal.pipeline.job-id. Each overridden
// vertex's parallelism is written into a copy of the workload spec
// (Flink 2.1+ ignores pipeline.jobvertex-parallelism-overrides for a
// DataStream client's job) and passed in that option too, as the operator
// does; other vertices keep the spec's.
func (d *Deployer) Submit(sub sim.Submission) error {
	if d.ctx.Err() != nil {
		return errors.New("testbed: submitting: the deployer is closed")
	}
	id := sub.JobID
	if id == "" {
		id = randomHex()
	}
	if !jobIDPattern.MatchString(id) {
		return fmt.Errorf("testbed: submitting: %w: job id %q is not 32 hex digits", sim.ErrBadRequest, id)
	}
	par, err := d.parallelism(sub)
	if err != nil {
		return fmt.Errorf("testbed: submitting job %s: %w", id, err)
	}
	d.mu.Lock()
	prev, prevState, busy := d.cur.id, "", d.inFlight()
	if d.cur.rest != nil {
		prevState = d.cur.rest.State
	}
	ending := d.ending[prev]
	d.mu.Unlock()
	if busy {
		return fmt.Errorf("testbed: submitting job %s: %w: the submission of job %s is in flight", id, sim.ErrConflict, prev)
	}
	waitPrev := false
	if prev != "" && !terminalState(prevState) && !d.submissionFailed() {
		// The snapshot may be a refresh behind: ask.
		var j flink.JobDetails
		if err := d.rest.get(context.Background(), "/jobs/"+prev, &j); err == nil {
			prevState = j.State
		}
		switch {
		case terminalState(prevState):
		case ending || prevState == "CANCELLING":
			waitPrev = true // it is on its way out: the deployment waits for it
		default:
			return fmt.Errorf("testbed: submitting job %s: %w: job %s is %s; only a terminal job can be replaced", id, sim.ErrConflict, prev, prevState)
		}
	}

	slots := sub.SlotsPerTaskManager
	d.mu.Lock()
	if slots < 1 {
		slots = d.slots
	}
	if d.cur.id != prev || d.inFlight() {
		d.mu.Unlock()
		return fmt.Errorf("testbed: submitting job %s: %w: another submission came first", id, sim.ErrConflict)
	}
	savepoint := sub.SavepointPath
	if d.faults[sim.FaultRestart] > 0 {
		d.faults[sim.FaultRestart]--
		savepoint = "file://" + filepath.Join(d.dir, "no-such-savepoint-"+id)
		d.say("fault: job %s restores from %s, which does not exist", id, savepoint)
	}
	d.seq++
	specFile := filepath.Join(d.dir, fmt.Sprintf("job-%d-%s.properties", d.seq, id))
	d.cur = current{id: id, pending: &pendingJob{submitted: time.Now(), par: par}}
	d.mu.Unlock()

	tms := max(sub.TaskManagers, taskManagersFor(d.plan, par, slots))
	cfg := submitConfig(sub, id, savepoint)
	d.say("submitting job %s on %d TaskManager(s) of %d slots: %v", id, tms, slots, cfg)
	d.wg.Go(func() {
		err := d.deploy(d.ctx, prev, waitPrev, tms, slots, specFile, par, cfg)
		if err != nil {
			d.say("job %s: %v", id, err)
			d.mu.Lock()
			d.submitErr = err
			if d.cur.id == id && d.cur.pending != nil {
				d.cur.pending.failedAt = time.Now()
			}
			d.mu.Unlock()
		}
	})
	return nil
}

// inFlight reports a submission whose client has not finished and whose job
// REST does not know yet. d.mu is held.
func (d *Deployer) inFlight() bool {
	return d.cur.pending != nil && d.cur.pending.failedAt.IsZero() && d.cur.rest == nil
}

func (d *Deployer) submissionFailed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur.pending != nil && !d.cur.pending.failedAt.IsZero() && d.cur.rest == nil
}

// parallelism is each vertex's parallelism for a submission: the override,
// else the spec's. Overrides must name known vertices (unless
// AllowNonRestoredState) and stay within [1, max parallelism].
func (d *Deployer) parallelism(sub sim.Submission) (map[string]int, error) {
	par := map[string]int{}
	for _, v := range d.plan {
		p := v.Parallelism
		if o, ok := sub.Overrides[v.ID]; ok {
			p = o
		}
		if p < 1 || v.MaxParallelism > 0 && p > v.MaxParallelism {
			return nil, fmt.Errorf("%w: vertex %s (%s): parallelism %d outside [1, %d]", sim.ErrBadRequest, v.ID, v.Name, p, v.MaxParallelism)
		}
		par[v.ID] = p
	}
	for id := range sub.Overrides {
		if _, ok := par[id]; !ok && !sub.AllowNonRestoredState {
			return nil, fmt.Errorf("%w: override for unknown vertex %s", sim.ErrBadRequest, id)
		}
	}
	return par, nil
}

// submitConfig is the Flink configuration of a submission: the fixed job
// id, the overrides (as the operator passes them), and the savepoint to
// restore from.
func submitConfig(sub sim.Submission, jobID, savepoint string) map[string]string {
	cfg := map[string]string{"$internal.pipeline.job-id": jobID}
	if len(sub.Overrides) > 0 {
		cfg["pipeline.jobvertex-parallelism-overrides"] = overridesString(sub.Overrides)
	}
	if savepoint != "" {
		cfg["execution.savepoint.path"] = savepoint
		if sub.AllowNonRestoredState {
			cfg["execution.savepoint.ignore-unclaimed-state"] = "true"
		}
	}
	return cfg
}

// deploy is a submission's background part: wait for the previous job to
// end if it is ending, resize the pool, write the spec, run the client.
func (d *Deployer) deploy(ctx context.Context, prev string, waitPrev bool, tms, slots int, specFile string, par map[string]int, cfg map[string]string) error {
	if waitPrev {
		if err := d.awaitTerminal(ctx, prev, 2*time.Minute); err != nil {
			return err
		}
	}
	d.poolMu.Lock()
	err := d.resize(ctx, tms, slots)
	d.poolMu.Unlock()
	if err != nil {
		return err
	}
	spec, err := respec(d.spec, d.scenarioPlan(), par, CostFactor(sim.TaskManagerSpec{CPU: d.o.CPUCores, Slots: slots}))
	if err != nil {
		return err
	}
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		return fmt.Errorf("writing the submission's spec: %w", err)
	}
	o := d.submitOpts
	o.SpecFile, o.Config = specFile, cfg
	got, err := d.runClient(ctx, o)
	if err != nil {
		return err
	}
	if want := cfg["$internal.pipeline.job-id"]; got != want {
		return fmt.Errorf("the client submitted job %s, not %s: $internal.pipeline.job-id was ignored", got, want)
	}
	return nil
}

// scenarioPlan is the plan with each vertex named as the scenario (and the
// workload spec) names it.
func (d *Deployer) scenarioPlan() []PlannedVertex {
	out := slices.Clone(d.plan)
	for i := range out {
		if name := ScenarioVertex(out[i].Name, d.job); name != "" {
			out[i].Name = name
		}
	}
	return out
}

// awaitTerminal waits until job id is FINISHED, CANCELED or FAILED.
func (d *Deployer) awaitTerminal(ctx context.Context, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var j flink.JobDetails
		err := d.rest.get(ctx, "/jobs/"+id, &j)
		if err == nil && terminalState(j.State) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s did not end within %s (state %q, %v)", id, limit, j.State, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// respec is the workload spec with the parallelism par gives each vertex
// (by id, through the plan's names; the plan's parallelism is the spec's)
// and the cost factor of the TaskManagers' shape: a per-submission copy,
// whatever else the spec holds left as it is.
func respec(spec []byte, plan []PlannedVertex, par map[string]int, costFactor float64) ([]byte, error) {
	byName := map[string]int{} // the vertices whose parallelism changes
	for _, v := range plan {
		if p, ok := par[v.ID]; ok && p != v.Parallelism {
			byName[escape(v.Name)] = p
		}
	}
	lines := strings.SplitAfter(string(spec), "\n")
	index := map[string]string{} // "vertex.<i>." → escaped name
	for _, l := range lines {
		if m := specName.FindStringSubmatch(strings.TrimRight(l, "\r\n")); m != nil {
			index[m[1]] = m[2]
		}
	}
	set, costSet := map[string]bool{}, false
	for i, l := range lines {
		key, _, ok := strings.Cut(strings.TrimRight(l, "\r\n"), "=")
		if !ok {
			continue
		}
		switch {
		case key == "job.costFactor":
			lines[i] = "job.costFactor=" + fmtFloat(costFactor) + "\n"
			costSet = true
		case strings.HasPrefix(key, "vertex.") && strings.HasSuffix(key, ".parallelism"):
			prefix := strings.TrimSuffix(key, "parallelism")
			if p, ok := byName[index[prefix]]; ok {
				lines[i] = key + "=" + strconv.Itoa(p) + "\n"
				set[index[prefix]] = true
			}
		}
	}
	for name := range byName {
		if !set[name] {
			return nil, fmt.Errorf("the workload spec has no parallelism for vertex %q", name)
		}
	}
	out := strings.Join(lines, "")
	if !costSet {
		out += "job.costFactor=" + fmtFloat(costFactor) + "\n"
	}
	return []byte(out), nil
}

var specName = regexp.MustCompile(`^(vertex\.\d+\.)name=(.*)$`)

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// currentJob fails with sim.ErrNotFound for a job other than the current
// one, as the simulator (one application cluster, one job) does.
func (d *Deployer) currentJob(jobID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if jobID == "" || jobID != d.cur.id {
		return fmt.Errorf("%w: Job %s not found", sim.ErrNotFound, jobID)
	}
	return nil
}

// TriggerSavepoint starts a savepoint of the running job (POST
// /jobs/:id/savepoints, with cancel-job for Cancel) or a stop-with-savepoint
// (POST /jobs/:id/stop) and returns Flink's trigger id. The target
// directory maps as savepointTarget says; an armed FaultSavepoint sends
// this savepoint below a regular file, where Flink cannot create it.
func (d *Deployer) TriggerSavepoint(req sim.SavepointRequest) (string, error) {
	wrap := func(err error) error {
		return fmt.Errorf("testbed: savepoint of job %s: %w", req.JobID, err)
	}
	if err := d.currentJob(req.JobID); err != nil {
		return "", wrap(err)
	}
	d.mu.Lock()
	if t, ok := d.triggers[req.TriggerID]; ok && req.TriggerID != "" && t.jobID == req.JobID {
		d.mu.Unlock()
		return req.TriggerID, nil
	}
	d.mu.Unlock()
	var j flink.JobDetails
	if err := d.rest.get(context.Background(), "/jobs/"+req.JobID, &j); err != nil {
		return "", wrap(simError(err))
	}
	if j.State != "RUNNING" {
		return "", wrap(fmt.Errorf("%w: job %s is %s", sim.ErrNotRunning, req.JobID, j.State))
	}
	target := savepointTarget(req.TargetDirectory, d.savepoints)
	d.mu.Lock()
	if d.faults[sim.FaultSavepoint] > 0 {
		d.faults[sim.FaultSavepoint]--
		target = d.badTarget
		d.say("fault: the savepoint of job %s goes to %s, below a regular file", req.JobID, target)
	}
	d.mu.Unlock()
	path, body := "/jobs/"+req.JobID+"/savepoints", any(savepointBody(req, target))
	if req.Stop {
		path, body = "/jobs/"+req.JobID+"/stop", stopBody(req, target)
	}
	var answer struct {
		RequestID string `json:"request-id"`
	}
	if err := d.rest.do(context.Background(), http.MethodPost, path, body, &answer); err != nil {
		return "", wrap(simError(err))
	}
	if answer.RequestID == "" {
		return "", wrap(errors.New("no request-id in the answer"))
	}
	d.mu.Lock()
	d.triggers[answer.RequestID] = trigger{jobID: req.JobID, stop: req.Stop || req.Cancel}
	d.mu.Unlock()
	return answer.RequestID, nil
}

// savepointBody is POST /jobs/:id/savepoints' body (hyphenated keys).
func savepointBody(req sim.SavepointRequest, target string) map[string]any {
	return triggerBody(req, map[string]any{"cancel-job": req.Cancel}, "target-directory", target)
}

// stopBody is POST /jobs/:id/stop's body (camelCase keys).
func stopBody(req sim.SavepointRequest, target string) map[string]any {
	return triggerBody(req, map[string]any{"drain": req.Drain}, "targetDirectory", target)
}

// triggerBody adds what both triggers share to b: the target directory
// under the endpoint's own key, the format and the idempotency id.
func triggerBody(req sim.SavepointRequest, b map[string]any, targetKey, target string) map[string]any {
	if target != "" {
		b[targetKey] = target
	}
	if req.FormatType != "" {
		b["formatType"] = req.FormatType
	}
	if req.TriggerID != "" {
		b["triggerId"] = req.TriggerID
	}
	return b
}

// SavepointStatus is GET /jobs/:id/savepoints/:trigger: IN_PROGRESS, or
// COMPLETED with the location or the failure (savepointStatus).
func (d *Deployer) SavepointStatus(jobID, triggerID string) (sim.SavepointStatus, error) {
	var s flink.SavepointStatus
	err := d.rest.get(context.Background(), "/jobs/"+jobID+"/savepoints/"+url.PathEscape(triggerID), &s)
	if err != nil {
		return sim.SavepointStatus{}, fmt.Errorf("testbed: savepoint %s of job %s: %w", triggerID, jobID, simError(err))
	}
	st := savepointStatus(s)
	if st.Status == "COMPLETED" && st.FailureCause == "" {
		d.mu.Lock()
		if t := d.triggers[triggerID]; t.stop && t.jobID == jobID {
			d.ending[jobID] = true
		}
		d.mu.Unlock()
	}
	return st, nil
}

// ResourceRequirements is GET /jobs/:id/resource-requirements.
func (d *Deployer) ResourceRequirements(jobID string) (map[string]sim.Bounds, error) {
	if err := d.currentJob(jobID); err != nil {
		return nil, fmt.Errorf("testbed: resource requirements of job %s: %w", jobID, err)
	}
	var body map[string]struct {
		Parallelism sim.Bounds `json:"parallelism"`
	}
	if err := d.rest.get(context.Background(), "/jobs/"+jobID+"/resource-requirements", &body); err != nil {
		return nil, fmt.Errorf("testbed: resource requirements of job %s: %w", jobID, simError(err))
	}
	out := make(map[string]sim.Bounds, len(body))
	for id, r := range body {
		out[id] = r.Parallelism
	}
	return out, nil
}

// UpdateResourceRequirements is PUT /jobs/:id/resource-requirements. Then,
// as Flink's active resource manager on Kubernetes would, the pool starts
// the TaskManagers the new upper bounds need, and releases those a lower
// parallelism leaves idle IdleTaskManagerTimeout after the job runs at it.
func (d *Deployer) UpdateResourceRequirements(jobID string, req map[string]sim.Bounds) error {
	if err := d.currentJob(jobID); err != nil {
		return fmt.Errorf("testbed: updating the resource requirements of job %s: %w", jobID, err)
	}
	body := make(map[string]any, len(req))
	for id, b := range req {
		body[id] = map[string]sim.Bounds{"parallelism": b}
	}
	if err := d.rest.do(context.Background(), http.MethodPut, "/jobs/"+jobID+"/resource-requirements", body, nil); err != nil {
		return fmt.Errorf("testbed: updating the resource requirements of job %s: %w", jobID, simError(err))
	}
	d.require(jobID, req)
	return nil
}

// require sizes the pool to a job's resource requirements: the
// TaskManagers their upper bounds need start now, and the floor that
// idle TaskManagers are released down to becomes that need.
func (d *Deployer) require(jobID string, req map[string]sim.Bounds) {
	d.mu.Lock()
	defer d.mu.Unlock()
	need := d.needs(req)
	if need > d.ps.want {
		d.say("job %s's new requirements need %d TaskManager(s)", jobID, need)
	}
	d.ps.want = max(d.ps.want, need)
	d.ps.floor = need
	d.followed = need
}

// needs is the TaskManagers that requirements' upper bounds (-1: the
// vertex's max parallelism) take. d.mu is held.
func (d *Deployer) needs(req map[string]sim.Bounds) int {
	upper := map[string]int{}
	for _, v := range d.plan {
		if b, ok := req[v.ID]; ok {
			upper[v.ID] = b.UpperBound
			if b.UpperBound == -1 {
				upper[v.ID] = v.MaxParallelism
			}
		}
	}
	return taskManagersFor(d.plan, upper, d.slots)
}

// follow reads the current job's resource requirements and, when they
// ask for another number of TaskManagers than last time, sizes the pool
// to them (FollowRequirements).
func (d *Deployer) follow(ctx context.Context) {
	d.mu.Lock()
	id, run := d.cur.id, Steady(d.cur.rest)
	d.mu.Unlock()
	if id == "" || !run {
		return
	}
	var body map[string]struct {
		Parallelism sim.Bounds `json:"parallelism"`
	}
	if err := d.rest.get(ctx, "/jobs/"+id+"/resource-requirements", &body); err != nil {
		return // the job may be restarting; the next round reads again
	}
	req := make(map[string]sim.Bounds, len(body))
	for vid, r := range body {
		req[vid] = r.Parallelism
	}
	d.mu.Lock()
	changed := d.needs(req) != d.followed
	d.mu.Unlock()
	if changed {
		d.require(id, req)
	}
}

// Inject arms a fault. FaultTaskManagerLoss kills (SIGKILL) a TaskManager
// that holds the job's slots at once, and its replacement starts after
// TaskManagerRestart; FaultSavepoint fails the next savepoint trigger
// (its directory cannot be created); FaultRestart fails the next
// submission (it restores from a savepoint that does not exist).
func (d *Deployer) Inject(f sim.Fault) {
	if f != sim.FaultTaskManagerLoss {
		d.mu.Lock()
		d.faults[f]++
		d.mu.Unlock()
		d.say("fault armed: %s", f)
		return
	}
	live := d.pool.TaskManagerIDs()
	d.mu.Lock()
	victim := ""
	for _, tm := range d.tms {
		if tm.FreeSlots < tm.SlotsNumber && slices.Contains(live, tm.ID) {
			victim = tm.ID
			break
		}
	}
	d.mu.Unlock()
	if victim == "" && len(live) > 0 {
		victim = live[0]
	}
	if victim == "" {
		d.say("fault: no TaskManager to kill")
		return
	}
	if err := d.pool.KillTaskManager(victim); err != nil {
		d.say("fault: killing %s: %v", victim, err)
		return
	}
	d.say("fault: killed %s", victim)
	d.lost(time.Now())
}

// Cancel cancels the job (PATCH /jobs/:id?mode=cancel), as the stateless
// upgrade mode does; a Submit right after waits for it to end.
func (d *Deployer) Cancel(jobID string) error {
	if err := d.currentJob(jobID); err != nil {
		return fmt.Errorf("testbed: cancelling job %s: %w", jobID, err)
	}
	if err := d.rest.do(context.Background(), http.MethodPatch, "/jobs/"+jobID+"?mode=cancel", nil, nil); err != nil {
		return fmt.Errorf("testbed: cancelling job %s: %w", jobID, simError(err))
	}
	d.mu.Lock()
	d.ending[jobID] = true
	d.mu.Unlock()
	return nil
}
