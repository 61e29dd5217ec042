package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/bench"
)

// terminal serializes writes to the demo's output.
type terminal struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *terminal) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, format, args...)
}

// Event is something the live view announces: a phase of the day starting,
// a rescale starting, completing or failing, a DryRun recommendation.
type Event struct {
	// At is the offset in the day (job time).
	At   time.Duration `json:"at"`
	Job  string        `json:"job,omitempty"`
	Kind string        `json:"kind"`
	Text string        `json:"text"`
}

// Event kinds.
const (
	EventPhase          = "Phase"
	EventRescaleStarted = "RescaleStarted"
	EventRescaleDone    = "RescaleSucceeded"
	EventRescaleFailed  = "RescaleFailed"
	EventRecommendation = "Recommendation"
)

// monitor follows every job's policy through the API server, as kubectl
// would, turns what changes into events, and draws the live view.
type monitor struct {
	c    client.Client
	jobs []*job
	// elapsed is the view's clock: how far into the day it is (the jobs'
	// clocks may differ by seconds on real Flink, each job's events are
	// timed by its own).
	elapsed func() time.Duration
	out     *terminal
	redraw  bool       // redraw the view in place (a terminal)
	speed   float64    // seconds of the day per wall second now (1 after the day, with Hold)
	where   string     // what plays the day, after the speed in the view's header ("" for the simulator)
	width   func() int // the terminal's columns (nil or ≤ 0: unknown)

	mu      sync.Mutex
	watches map[string]*watch
	events  []Event
	phase   string
	drawn   int           // lines of the live view on screen (redraw mode)
	lastAt  time.Duration // job time of the last status block printed (append mode)
	shown   int           // events already printed
	nextLog time.Duration // next status block in append mode (job time)
}

// watch is what the monitor has seen of one job's policy.
type watch struct {
	policy *v1alpha1.FlinkScalingPolicy

	started  map[time.Time]bool // rescales announced, by start time
	finished map[time.Time]bool // rescales whose end was announced, by decision time
	fromJob  map[time.Time]string
	lastRec  string
	rescales []bench.Event
}

func newMonitor(c client.Client, jobs []*job, elapsed func() time.Duration, speed float64, out *terminal, redraw bool) *monitor {
	m := &monitor{c: c, jobs: jobs, elapsed: elapsed, out: out, redraw: redraw, speed: speed, watches: map[string]*watch{}}
	for _, j := range jobs {
		m.watches[j.sc.Name] = &watch{started: map[time.Time]bool{}, finished: map[time.Time]bool{}, fromJob: map[time.Time]string{}}
	}
	return m
}

// loop refreshes twice per wall second until ctx ends.
func (m *monitor) loop(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		m.refresh(ctx)
		m.draw(false)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// finish prints what is left and the final state of the view.
func (m *monitor) finish() { m.draw(true) }

// refresh reads every policy and records what changed.
func (m *monitor) refresh(ctx context.Context) {
	at := m.elapsed()
	m.mu.Lock()
	if p := phaseAt(at); p.Name != m.phase {
		// At the phase's start: the view may first look a moment later
		// (on real Flink, the clusters start after the first job's load).
		m.phase = p.Name
		m.events = append(m.events, Event{At: p.Start, Kind: EventPhase, Text: p.Name})
	}
	m.mu.Unlock()
	for _, j := range m.jobs {
		var p v1alpha1.FlinkScalingPolicy
		err := m.c.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: j.sc.Name}, &p)
		if apierrors.IsNotFound(err) || err != nil {
			continue // not created yet by the opt-in controller, or stopping
		}
		m.observe(j, &p)
	}
}

// observe turns one reading of a job's policy into events.
func (m *monitor) observe(j *job, p *v1alpha1.FlinkScalingPolicy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wt := m.watches[j.sc.Name]
	wt.policy = p
	st := &p.Status
	offset := func(t time.Time) time.Duration { return j.run.Offset(t).Round(time.Second) }
	names := map[string]string{}
	for _, v := range st.Vertices {
		names[v.ID] = v.Name
	}
	if r := st.Rescale; r != nil && !wt.started[r.StartTime.Time] {
		wt.started[r.StartTime.Time] = true
		wt.fromJob[r.StartTime.Time] = r.FromJobID
		how := "savepoint and restart"
		if j.sc.Job.Scheduler == "adaptive" {
			how = "in place, adaptive scheduler"
		}
		to := joinByVertexOrder(st.Vertices, func(v v1alpha1.VertexStatus) int32 {
			if x, ok := r.AppliedParallelism[v.ID]; ok {
				return x
			}
			return v.Current
		})
		text := fmt.Sprintf("rescale %s → %s started (%s)", st.CurrentParallelism, to, how)
		if d := st.LastDecision; d != nil && d.Action == string(scaling.ActionScale) {
			text += ": " + firstReasons(d.Reasons, 2, names)
		}
		m.events = append(m.events, Event{At: offset(r.StartTime.Time), Job: j.sc.Name, Kind: EventRescaleStarted, Text: text})
	}
	if h := st.History; h != nil {
		for _, r := range h.Rescales {
			if r.Outcome == scaling.OutcomeInProgress || wt.finished[r.DecidedAt.Time] {
				continue
			}
			wt.finished[r.DecidedAt.Time] = true
			ev := bench.Event{T: offset(r.DecidedAt.Time), Downtime: r.Downtime.Duration, From: map[string]int{}, To: map[string]int{},
				Failed: r.Outcome != scaling.OutcomeSucceeded}
			if r.CompletedAt != nil {
				ev.Completed = offset(r.CompletedAt.Time)
			}
			var from, to []string
			for _, v := range r.Vertices {
				n := names[v.ID]
				if n == "" {
					n = v.ID
				}
				ev.From[n], ev.To[n] = int(v.From), int(v.To)
				from = append(from, fmt.Sprint(v.From))
				to = append(to, fmt.Sprint(v.To))
			}
			// An in-place rescale keeps the Flink job id. (A rescale too
			// short for the monitor to see start: the scheduler says.)
			if fromID, seen := wt.fromJob[r.DecidedAt.Time]; seen {
				ev.InPlace = !ev.Failed && fromID != "" && fromID == j.run.View().Job.ID
			} else {
				ev.InPlace = !ev.Failed && j.sc.Job.Scheduler == "adaptive"
			}
			wt.rescales = append(wt.rescales, ev)
			at := ev.Completed
			if at == 0 {
				at = j.run.Elapsed()
			}
			if ev.Failed {
				m.events = append(m.events, Event{At: at, Job: j.sc.Name, Kind: EventRescaleFailed,
					Text: fmt.Sprintf("rescale %s → %s %s", strings.Join(from, "/"), strings.Join(to, "/"), strings.ToLower(r.Outcome))})
				continue
			}
			m.events = append(m.events, Event{At: at, Job: j.sc.Name, Kind: EventRescaleDone,
				Text: fmt.Sprintf("rescale %s → %s done: %s of downtime", strings.Join(from, "/"), strings.Join(to, "/"), fmtDur(ev.Downtime))})
		}
	}
	if p.EffectiveMode() == v1alpha1.ModeDryRun {
		if d := st.LastDecision; d != nil && d.Action == string(scaling.ActionScale) && st.RecommendedParallelism != "" &&
			st.RecommendedParallelism != wt.lastRec {
			wt.lastRec = st.RecommendedParallelism
			m.events = append(m.events, Event{At: offset(d.Time.Time), Job: j.sc.Name, Kind: EventRecommendation,
				Text: fmt.Sprintf("recommends %s → %s (DryRun: not applied): %s", st.CurrentParallelism, st.RecommendedParallelism,
					firstReasons(d.Reasons, 2, names))})
		}
	}
}

// joinByVertexOrder joins f of every vertex with "/", in the status' order.
func joinByVertexOrder(vs []v1alpha1.VertexStatus, f func(v1alpha1.VertexStatus) int32) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(f(v))
	}
	return strings.Join(parts, "/")
}

// firstReasons is the first n reason codes of a decision, each with its
// vertex's first operator (names maps vertex ids to names).
func firstReasons(rs []v1alpha1.ReasonStatus, n int, names map[string]string) string {
	var parts []string
	for _, r := range rs {
		if len(parts) == n {
			parts = append(parts, "…")
			break
		}
		s := r.Code
		if r.Vertex != "" {
			v := r.Vertex
			if name, ok := names[v]; ok {
				v, _, _ = strings.Cut(name, " -> ")
			}
			s += " (" + v + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// draw prints the events not yet shown and the status block: in place
// (redraw) or, in append mode, every 15 minutes of job time (and at the
// end, final).
func (m *monitor) draw(final bool) {
	redraw := m.redraw
	m.mu.Lock()
	defer m.mu.Unlock()
	var buf bytes.Buffer
	if redraw && m.drawn > 0 {
		fmt.Fprintf(&buf, "\x1b[%dA\x1b[J", m.drawn) // up over the old block, clear below
	}
	for _, e := range m.events[m.shown:] {
		buf.WriteString(formatEvent(e))
	}
	m.shown = len(m.events)
	at := m.elapsed()
	if _, ok := m.jobs[0].lastPoint(); !ok {
		m.out.printf("%s", buf.String())
		return // nothing measured yet
	}
	switch {
	case redraw:
		block := m.block(at)
		if m.width != nil {
			block = fit(block, m.width())
		}
		buf.WriteString(block)
		m.drawn = strings.Count(block, "\n")
	case final && at == m.lastAt:
		// the last block printed is up to date
	case final || at >= m.nextLog:
		buf.WriteString(m.block(at))
		m.lastAt = at
		for m.nextLog <= at {
			m.nextLog += 15 * time.Minute
		}
	}
	m.out.printf("%s", buf.String())
}

// fit cuts every line of s to width-1 columns (one per rune: the view's
// characters are all narrow), so that none wraps.
func fit(s string, width int) string {
	if width <= 1 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if r := []rune(l); len(r) > width-1 {
			lines[i] = string(r[:width-2]) + "…"
		}
	}
	return strings.Join(lines, "\n")
}

func formatEvent(e Event) string {
	if e.Kind == EventPhase {
		return fmt.Sprintf("── %s %s ──\n", fmtClock(e.At), e.Text)
	}
	return fmt.Sprintf("   %s  %-9s %s %s\n", fmtClock(e.At), e.Job, eventMark(e.Kind), e.Text)
}

// eventMark is the symbol an event kind is shown with.
func eventMark(kind string) string {
	return map[string]string{EventRescaleStarted: "▶", EventRescaleDone: "✔", EventRescaleFailed: "✘", EventRecommendation: "◆"}[kind]
}

// block is the live view: one line per job.
func (m *monitor) block(at time.Duration) string {
	var b bytes.Buffer
	pace := fmt.Sprintf("%g×", m.speed)
	if m.where != "" {
		pace += " " + m.where
	}
	if day := m.jobs[0].sc.Duration; at > day {
		fmt.Fprintf(&b, "\n  %s after the day · %s · %s · parallelism per vertex (source first) now → recommended\n",
			fmtDur(at-day), PhaseAt(at), pace)
	} else {
		fmt.Fprintf(&b, "\n  day %s of %s · %s · %s · parallelism per vertex (source first) now → recommended\n",
			fmtClock(at), fmtClock(day), PhaseAt(at), pace)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  JOB\tMODE\tLOAD/s\tCAPACITY/s\tLOAD / CAPACITY\tLAG\tPARALLELISM\tSTATE")
	for _, j := range m.jobs {
		wt := m.watches[j.sc.Name]
		pt, ok := j.lastPoint()
		if !ok {
			continue
		}
		par, state := "", strings.ToLower(j.run.View().Job.State)
		if p := wt.policy; p != nil {
			st := p.Status
			par = st.CurrentParallelism
			if st.RecommendedParallelism != "" && st.RecommendedParallelism != st.CurrentParallelism {
				par += " → " + st.RecommendedParallelism
			}
			if st.Rescale != nil {
				state = "rescaling: " + strings.ToLower(string(st.Rescale.Phase))
			} else if d := st.LastDecision; d != nil && state == "running" {
				// The job runs: say what flinkscale last decided.
				state = strings.ToLower(d.Action)
				if len(d.Reasons) > 0 {
					state += " " + d.Reasons[0].Code
				}
			}
		}
		if par == "" {
			par = parallelismOf(pt, j.vertexNames())
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.sc.Name, j.setup.Mode,
			fmtRate(pt.Load), fmtCapacity(pt.Capacity), bar(pt.Load, pt.Capacity), fmtLag(pt.Lag, pt.LagSeconds), par, state)
	}
	_ = tw.Flush()
	return b.String()
}

// parallelismOf joins a timeline point's parallelism in vertex order.
func parallelismOf(p bench.Point, order []string) string {
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = fmt.Sprint(p.Parallelism[n])
	}
	return strings.Join(parts, "/")
}

// bar draws load/capacity on ten cells; over 100 % it ends in "!".
func bar(load, capacity float64) string {
	if capacity <= 0 {
		return "(job down)"
	}
	r := load / capacity
	n := int(math.Round(math.Min(r, 1) * 10))
	s := strings.Repeat("█", n) + strings.Repeat("░", 10-n)
	mark := " "
	if r > 1 {
		mark = "!"
	}
	return fmt.Sprintf("%s%s%4.0f%%", s, mark, r*100)
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func fmtCapacity(c float64) string {
	if c <= 0 {
		return "-"
	}
	return fmtRate(c)
}

func fmtLag(records, seconds float64) string {
	return fmt.Sprintf("%s (%s)", fmtRate(records), fmtDur(time.Duration(seconds*float64(time.Second))))
}

// fmtClock is an offset in the day as h:mm.
func fmtClock(d time.Duration) string {
	d = d.Truncate(time.Minute)
	return fmt.Sprintf("%d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

// fmtDur is a duration rounded for people: 45s, 3m10s, 1h05m.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
