package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// fidelitySide is one place the plan runs: real Flink and Kafka, or the
// simulator. Times are the scenario's (t = 0 when the load starts).
type fidelitySide interface {
	name() string
	now() time.Duration
	sleepUntil(ctx context.Context, t time.Duration) error
	// observe samples the job's metrics through the Prometheus reporter
	// (flinkprom.Scraper) and the group's lag on the brokers (nil until
	// every partition has a commit).
	observe(ctx context.Context, jobID string) (metrics.FlinkSample, *float64, error)
	job(ctx context.Context, jobID string) (jobStatus, error)
	requirements(ctx context.Context, jobID string) (map[string]flink.Bounds, error)
	setRequirements(ctx context.Context, jobID string, req map[string]flink.Bounds) error
	stopWithSavepoint(ctx context.Context, jobID string) (string, error)
	// savepoint reports a stop-with-savepoint: done, and its location.
	savepoint(ctx context.Context, jobID, trigger string) (bool, string, error)
	// submit resubmits the job from a savepoint with each vertex at its
	// Parallelism (pipeline.jobvertex-parallelism-overrides by vertex id);
	// the new job's id arrives on the channel.
	submit(ctx context.Context, savepoint string, vertices []jobVertex) <-chan submitted
}

type submitted struct {
	jobID string
	err   error
}

// jobStatus is GET /jobs/:id as the plan reads it.
type jobStatus struct {
	State    string
	Vertices []jobVertex
}

type jobVertex struct {
	ID, Name, Status string
	Parallelism      int
}

// running tells whether the job and every vertex run, each vertex at the
// parallelism want gives it (by id; absent: any).
func (j jobStatus) running(want map[string]int) bool {
	if j.State != "RUNNING" || len(j.Vertices) == 0 {
		return false
	}
	for _, v := range j.Vertices {
		if v.Status != "RUNNING" {
			return false
		}
		if p, ok := want[v.ID]; ok && v.Parallelism != p {
			return false
		}
	}
	return true
}

func (j jobStatus) vertex(name string) (jobVertex, bool) {
	for _, v := range j.Vertices {
		if v.Name == name {
			return v, true
		}
	}
	return jobVertex{}, false
}

// EventResult is one rescale on one side, as the run measured it.
type EventResult struct {
	// Kind is "in-place rescale" or "savepoint restart".
	Kind   string        `json:"kind"`
	Vertex string        `json:"vertex"`
	From   int           `json:"from"`
	To     int           `json:"to"`
	At     time.Duration `json:"at"`
	// Downtime is from the request until every vertex runs at the new
	// parallelism and the sources' numRecordsIn advances between two
	// polls. Outage is from the first poll that saw the job down (a
	// vertex not RUNNING, or the sources' counters reset) to the same
	// end; a stop-with-savepoint's starts at the request.
	Downtime *time.Duration `json:"downtime,omitempty"`
	Outage   *time.Duration `json:"outage,omitempty"`
	// Savepoint (request → completed), Submit (→ the new job's id) and
	// Start (→ records flowing) are a savepoint restart's steps.
	Savepoint *time.Duration `json:"savepoint,omitempty"`
	Submit    *time.Duration `json:"submit,omitempty"`
	Start     *time.Duration `json:"start,omitempty"`
	// Replayed is the records the sources read again: read by the old
	// and the new attempt together, minus how far their offsets moved.
	Replayed *float64 `json:"replayed,omitempty"`
	Err      string   `json:"error,omitempty"`
}

// fidelitySample is one sample of one side.
type fidelitySample struct {
	T, At time.Duration // nominal, actual
	JobID string
	// Vertices by name.
	Vertices                      map[string]vertexObs
	KafkaLag, Pending             *float64
	CheckpointMs, CheckpointBytes *float64
	Err                           string
}

type vertexObs struct {
	Busy, BackPressured *float64
	In, Out             *float64 // counters
}

// fidelityRun plays a plan on one side.
type fidelityRun struct {
	side     fidelitySide
	s        *scenario.Scenario
	plan     FidelityPlan
	jobID    string
	progress io.Writer
	sources  map[string]bool      // source vertex names
	names    map[string]jobStatus // the jobs seen, by id: their vertex names
	next     time.Duration        // next sample
	samples  []fidelitySample
	events   []EventResult
	notes    []string
}

func newFidelityRun(side fidelitySide, s *scenario.Scenario, plan FidelityPlan, jobID string, progress io.Writer) *fidelityRun {
	r := &fidelityRun{side: side, s: s, plan: plan, jobID: jobID, progress: progress,
		sources: map[string]bool{}, names: map[string]jobStatus{}, next: plan.FirstSample}
	for _, v := range s.Job.Vertices {
		if len(v.Topics) > 0 {
			r.sources[v.Name] = true
		}
	}
	return r
}

func (r *fidelityRun) say(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, "%s %s: %s\n", clock(r.side.now()), r.side.name(), fmt.Sprintf(format, args...))
	}
}

func (r *fidelityRun) note(format string, args ...any) {
	r.notes = append(r.notes, r.side.name()+": "+fmt.Sprintf(format, args...))
}

// play runs the plan to its end, or until ctx ends.
func (r *fidelityRun) play(ctx context.Context) {
	type action struct {
		at  time.Duration
		run func(context.Context) EventResult
	}
	var actions []action
	if r.plan.InPlaceAt > 0 {
		actions = append(actions, action{r.plan.InPlaceAt, r.inPlace})
	}
	if r.plan.RestartAt > 0 {
		actions = append(actions, action{r.plan.RestartAt, r.restart})
	}
	for _, a := range actions {
		if err := r.pauseUntil(ctx, a.at); err != nil {
			return
		}
		ev := a.run(ctx)
		if ev.Err != "" {
			r.note("%s at %s: %s", ev.Kind, clock(ev.At), ev.Err)
		}
		r.say("%s: downtime %s, outage %s, replayed %s%s", ev.Kind, fmtDur(ev.Downtime), fmtDur(ev.Outage), fmtRecords(ev.Replayed), errSuffix(ev.Err))
		r.events = append(r.events, ev)
	}
	_ = r.pauseUntil(ctx, r.plan.End)
}

// pauseUntil lets the side's time pass until t, taking the samples due.
func (r *fidelityRun) pauseUntil(ctx context.Context, t time.Duration) error {
	for r.next <= t && r.next <= r.plan.End {
		if err := r.side.sleepUntil(ctx, r.next); err != nil {
			return err
		}
		r.sample(ctx, r.next)
		r.next += r.plan.Every
	}
	return r.side.sleepUntil(ctx, t)
}

func (r *fidelityRun) pause(ctx context.Context, d time.Duration) error {
	return r.pauseUntil(ctx, r.side.now()+d)
}

// status is the job's status, cached per job id for the vertex names.
func (r *fidelityRun) status(ctx context.Context, jobID string) (jobStatus, error) {
	js, err := r.side.job(ctx, jobID)
	if err == nil {
		r.names[jobID] = js
	}
	return js, err
}

// vertexName maps a vertex id of a job to its name.
func (r *fidelityRun) vertexName(ctx context.Context, jobID, id string) string {
	js, ok := r.names[jobID]
	if !ok {
		js, _ = r.status(ctx, jobID)
	}
	for _, v := range js.Vertices {
		if v.ID == id {
			return v.Name
		}
	}
	return ""
}

// sample takes one sample at nominal time t.
func (r *fidelityRun) sample(ctx context.Context, t time.Duration) {
	smp := fidelitySample{T: t, At: r.side.now(), JobID: r.jobID, Vertices: map[string]vertexObs{}}
	defer func() { r.samples = append(r.samples, smp) }()
	fs, lag, err := r.side.observe(ctx, r.jobID)
	if err != nil {
		smp.Err = err.Error()
		r.note("sample at %s: %v", clock(t), err)
		return
	}
	smp.KafkaLag = lag
	for _, v := range fs.Vertices {
		name := r.vertexName(ctx, r.jobID, v.ID)
		if name == "" {
			continue
		}
		o := vertexObs{In: v.NumRecordsIn, Out: v.NumRecordsOut}
		if v.BusyTimeMsPerSecond != nil {
			o.Busy = &v.BusyTimeMsPerSecond.Avg
		}
		if v.BackPressuredTimeMsPerSecond != nil {
			o.BackPressured = &v.BackPressuredTimeMsPerSecond.Avg
		}
		smp.Vertices[name] = o
		if r.sources[name] && v.PendingRecords != nil {
			smp.Pending = addPtr(smp.Pending, *v.PendingRecords)
		}
	}
	if c := fs.Checkpoints; c != nil && c.Completed > 0 {
		ms := float64(c.LastDuration) / float64(time.Millisecond)
		mib := float64(c.LastStateSize) / (1 << 20)
		smp.CheckpointMs, smp.CheckpointBytes = &ms, &mib
	}
}

func addPtr(p *float64, x float64) *float64 {
	if p == nil {
		return &x
	}
	s := *p + x
	return &s
}

// flow is what the sources have read: their numRecordsIn summed (nil
// when a source does not report it) and their partitions' current
// offsets summed (nil unless every partition of their topics has a known
// one).
type flow struct {
	count, offsets *float64
}

func (r *fidelityRun) flow(ctx context.Context, jobID string) flow {
	fs, _, err := r.side.observe(ctx, jobID)
	if err != nil {
		return flow{}
	}
	var f flow
	count, offsets, parts, known := 0.0, 0.0, 0, true
	seen := 0
	for _, v := range fs.Vertices {
		if !r.sources[r.vertexName(ctx, jobID, v.ID)] {
			continue
		}
		seen++
		if v.NumRecordsIn == nil {
			known = false
		} else {
			count += *v.NumRecordsIn
		}
		for _, p := range v.Partitions {
			parts++
			if p.CurrentOffset < 0 {
				known = false
			}
			offsets += float64(p.CurrentOffset)
		}
	}
	if seen != len(r.sources) || !known {
		return f
	}
	f.count = &count
	want := 0
	for _, t := range r.s.Job.Topics {
		want += t.Partitions
	}
	if parts == want {
		f.offsets = &offsets
	}
	return f
}

// inPlace rescales the plan's vertex in place and measures how long the
// job is down and what it reads again.
func (r *fidelityRun) inPlace(ctx context.Context) EventResult {
	ev := EventResult{Kind: "in-place rescale", Vertex: r.plan.Vertex, To: r.plan.InPlaceTo, At: r.side.now()}
	jobID := r.jobID
	js, err := r.status(ctx, jobID)
	if err != nil {
		ev.Err = fmt.Sprintf("reading the job: %v", err)
		return ev
	}
	v, ok := js.vertex(r.plan.Vertex)
	if !ok {
		ev.Err = fmt.Sprintf("the job has no vertex %q", r.plan.Vertex)
		return ev
	}
	ev.From = v.Parallelism
	pre := r.flow(ctx, jobID)
	req, err := r.side.requirements(ctx, jobID)
	if err != nil {
		ev.Err = fmt.Sprintf("reading the resource requirements: %v", err)
		return ev
	}
	b := req[v.ID]
	req[v.ID] = flink.Bounds{LowerBound: min(max(b.LowerBound, 1), r.plan.InPlaceTo), UpperBound: r.plan.InPlaceTo}
	t0 := r.side.now()
	if err := r.side.setRequirements(ctx, jobID, req); err != nil {
		ev.Err = fmt.Sprintf("updating the resource requirements: %v", err)
		return ev
	}
	r.say("in-place rescale of %q %d → %d requested", v.Name, ev.From, ev.To)

	// Until the job goes down, the old attempt keeps reading: its last
	// count is what it read.
	want := map[string]int{v.ID: r.plan.InPlaceTo}
	lastOld := pre.count
	deadline := t0 + 3*time.Minute
	down := time.Duration(-1)
	for down < 0 && r.side.now() < deadline {
		if err := r.pause(ctx, r.plan.Poll); err != nil {
			ev.Err = err.Error()
			return ev
		}
		js, jerr := r.status(ctx, jobID)
		f := r.flow(ctx, jobID)
		up := jerr == nil && js.running(nil) && !js.running(want)
		if up && f.count != nil && (lastOld == nil || *f.count >= *lastOld) {
			lastOld = f.count
			continue
		}
		down = r.side.now()
	}
	if down < 0 {
		ev.Err = "the job did not restart within 3 minutes"
		return ev
	}
	r.awaitFlow(ctx, &ev, jobID, want, t0, down, deadline, pre, lastOld)
	return ev
}

// restart stops the job with a savepoint and submits it again from it
// with the plan's vertex at RestartTo, as the Flink operator does.
func (r *fidelityRun) restart(ctx context.Context) EventResult {
	ev := EventResult{Kind: "savepoint restart", Vertex: r.plan.Vertex, To: r.plan.RestartTo, At: r.side.now()}
	jobID := r.jobID
	js, err := r.status(ctx, jobID)
	if err != nil {
		ev.Err = fmt.Sprintf("reading the job: %v", err)
		return ev
	}
	overrides := map[string]int{}
	var vertices []jobVertex
	for _, v := range js.Vertices {
		if v.Name == r.plan.Vertex {
			ev.From = v.Parallelism
			v.Parallelism = r.plan.RestartTo
		}
		overrides[v.ID] = v.Parallelism
		vertices = append(vertices, v)
	}
	if ev.From == 0 {
		ev.Err = fmt.Sprintf("the job has no vertex %q", r.plan.Vertex)
		return ev
	}
	pre := r.flow(ctx, jobID)
	t0 := r.side.now()
	trigger, err := r.side.stopWithSavepoint(ctx, jobID)
	if err != nil {
		ev.Err = fmt.Sprintf("stop-with-savepoint: %v", err)
		return ev
	}
	r.say("stop-with-savepoint requested")
	deadline := t0 + 3*time.Minute
	lastOld := pre.count
	location := ""
	for location == "" {
		if r.side.now() > deadline {
			ev.Err = "the savepoint did not complete within 3 minutes"
			return ev
		}
		if err := r.pause(ctx, r.plan.Poll); err != nil {
			ev.Err = err.Error()
			return ev
		}
		if f := r.flow(ctx, jobID); f.count != nil && (lastOld == nil || *f.count >= *lastOld) {
			lastOld = f.count
		}
		done, loc, err := r.side.savepoint(ctx, jobID, trigger)
		if err != nil {
			ev.Err = fmt.Sprintf("stop-with-savepoint: %v", err)
			return ev
		}
		if done {
			location = loc
		}
	}
	tSavepoint := r.side.now()
	ev.Savepoint = durPtr(tSavepoint - t0)
	r.say("savepoint %s; submitting with pipeline.jobvertex-parallelism-overrides=%s", location, overridesString(overrides))
	ch := r.side.submit(ctx, location, vertices)
	var res submitted
	for waiting := true; waiting; {
		select {
		case res = <-ch:
			waiting = false
		default:
			if r.side.now() > deadline {
				ev.Err = "the submission did not finish within 3 minutes"
				return ev
			}
			if err := r.pause(ctx, r.plan.Poll); err != nil {
				ev.Err = err.Error()
				return ev
			}
		}
	}
	if res.err != nil {
		ev.Err = fmt.Sprintf("submitting from the savepoint: %v", res.err)
		return ev
	}
	tSubmitted := r.side.now()
	ev.Submit = durPtr(tSubmitted - tSavepoint)
	r.jobID = res.jobID
	r.say("job %s submitted", res.jobID)
	// The overrides are by vertex id: the new job's vertices have the
	// same ids (the same graph).
	r.awaitFlow(ctx, &ev, res.jobID, overrides, t0, t0, deadline, pre, lastOld)
	if ev.Downtime != nil {
		ev.Start = durPtr(t0 + *ev.Downtime - tSubmitted)
	}
	return ev
}

// awaitFlow polls until the job runs at want and its sources' counters
// advance between two polls (the end of the downtime), then until every
// partition's offset is known again to count the records read twice.
func (r *fidelityRun) awaitFlow(ctx context.Context, ev *EventResult, jobID string, want map[string]int, t0, down, deadline time.Duration, pre flow, lastOld *float64) {
	// A job that runs, and reads, at another parallelism than asked for
	// (an override not applied) ends the wait after 30 s, with the time
	// it first read as the end of the downtime.
	var prev *float64
	flowing := time.Duration(-1)
	up := time.Duration(-1)
	for up < 0 {
		if r.side.now() > deadline {
			ev.Err = "records did not flow again within 3 minutes"
			return
		}
		if err := r.pause(ctx, r.plan.Poll); err != nil {
			ev.Err = err.Error()
			return
		}
		js, err := r.status(ctx, jobID)
		if err != nil || !js.running(nil) {
			prev = nil
			continue
		}
		f := r.flow(ctx, jobID)
		advancing := prev != nil && f.count != nil && *f.count > *prev
		prev = f.count
		switch {
		case advancing && js.running(want):
			up = r.side.now()
		case advancing && flowing < 0:
			flowing = r.side.now()
		case flowing >= 0 && r.side.now()-flowing > 30*time.Second:
			ev.Err = fmt.Sprintf("the job runs at %s, not at the parallelism asked for", parallelisms(js))
			up = flowing
		}
	}
	ev.Downtime, ev.Outage = durPtr(up-t0), durPtr(up-down)
	// Records read twice: the old attempt read lastOld − pre.count past
	// the offsets pre.offsets, the new one f.count; together they moved
	// the offsets by f.offsets − pre.offsets.
	if pre.count == nil || pre.offsets == nil || lastOld == nil {
		return
	}
	for until := up + 2*time.Second; ; {
		if r.side.now() > until+30*time.Second {
			return
		}
		if err := r.pause(ctx, r.plan.Poll); err != nil {
			return
		}
		if r.side.now() < until {
			continue
		}
		if f := r.flow(ctx, jobID); f.count != nil && f.offsets != nil {
			x := math.Max(0, (*lastOld-*pre.count)+*f.count-(*f.offsets-*pre.offsets))
			ev.Replayed = &x
			return
		}
	}
}

// parallelisms lists a job's vertices as "name=p, …".
func parallelisms(js jobStatus) string {
	var out []string
	for _, v := range js.Vertices {
		out = append(out, fmt.Sprintf("%s=%d", v.Name, v.Parallelism))
	}
	return strings.Join(out, ", ")
}

func durPtr(d time.Duration) *time.Duration { return &d }

func fmtDur(d *time.Duration) string {
	if d == nil {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

func fmtRecords(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f records", *x)
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// errNoJob is what a side answers for a job it does not know.
var errNoJob = errors.New("no such job")
