package testbed

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Verdicts of a comparison.
const (
	VerdictOK   = "ok"
	VerdictDiff = "DIFF"
	// VerdictNA: one side has no value.
	VerdictNA = "n/a"
)

// Tolerance is how far the simulator may be from real Flink on a metric:
// a difference is within it when |sim − real| ≤ max(Abs, Rel × |real|).
type Tolerance struct {
	Rel float64 `json:"rel"`
	Abs float64 `json:"abs"`
	// Why justifies the bounds.
	Why string `json:"why"`
}

// Allows tells whether sim is within the tolerance of real.
func (t Tolerance) Allows(real, sim float64) bool {
	return math.Abs(sim-real) <= math.Max(t.Abs, t.Rel*math.Abs(real))+1e-9
}

func (t Tolerance) String() string {
	return fmt.Sprintf("±%.0f %% or ±%s", 100*t.Rel, trimFloat(t.Abs))
}

// Cell is one value on both sides and their difference (sim − real).
type Cell struct {
	Real    *float64 `json:"real"`
	Sim     *float64 `json:"sim"`
	Diff    *float64 `json:"diff"`
	DiffPct *float64 `json:"diffPct"`
	Verdict string   `json:"verdict"`
}

// Compare puts a real and a simulated value side by side and judges the
// difference against tol; n/a when either is missing.
func Compare(real, sim *float64, tol Tolerance) Cell {
	c := Cell{Real: real, Sim: sim, Verdict: VerdictNA}
	if real == nil || sim == nil {
		return c
	}
	d := *sim - *real
	c.Diff = &d
	if *real != 0 {
		p := 100 * d / math.Abs(*real)
		c.DiffPct = &p
	}
	c.Verdict = VerdictDiff
	if tol.Allows(*real, *sim) {
		c.Verdict = VerdictOK
	}
	return c
}

// Metric names one compared quantity.
type Metric struct {
	// Key is "busy", "backpressured", "in", "out", "kafkaLag",
	// "pendingRecords", "checkpointDuration" or "checkpointSize".
	Key string `json:"key"`
	// Vertex is the vertex's name; empty for the job's metrics.
	Vertex string    `json:"vertex,omitempty"`
	Title  string    `json:"title"`
	Unit   string    `json:"unit"`
	Tol    Tolerance `json:"tolerance"`
}

// Label is "<vertex>: <title>" or the title.
func (m Metric) Label() string {
	if m.Vertex == "" {
		return m.Title
	}
	return m.Vertex + ": " + m.Title
}

// Series is a metric over the run, sample by sample.
type Series struct {
	Metric
	Points []Point `json:"points"`
}

// Point is one sample time.
type Point struct {
	T time.Duration `json:"t"`
	Cell
}

// PhaseRow is a metric's mean over a phase on both sides.
type PhaseRow struct {
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	Phase  string `json:"phase"`
	Cell
}

// EventRow compares one quantity of a rescale.
type EventRow struct {
	Event    string `json:"event"`
	Quantity string `json:"quantity"`
	Unit     string `json:"unit"`
	Cell
}

// Fidelity is the comparison of one scenario on real Flink and on the
// simulator.
type Fidelity struct {
	Scenario string    `json:"scenario"`
	Flink    string    `json:"flink"`
	Date     time.Time `json:"date"`
	// Load is the machine's load average before and after the real run
	// (/proc/loadavg): other work competes with the JVMs for the cores.
	Load   string       `json:"load,omitempty"`
	Plan   FidelityPlan `json:"plan"`
	Phases []PhaseRow   `json:"phases"`
	Events []EventRow   `json:"events"`
	Series []Series     `json:"series"`
	// EventTolerances judge the rescales' rows, by quantity.
	EventTolerances map[string]Tolerance `json:"eventTolerances"`
	// RealEvents and SimEvents are the rescales as each side measured them.
	RealEvents []EventResult `json:"realEvents"`
	SimEvents  []EventResult `json:"simEvents"`
	// Notes are what went wrong or deserves a word (a failed sample, a
	// rescale that did not complete).
	Notes []string `json:"notes,omitempty"`
}

// PhaseMeans averages each side of a series over [from, to) (samples
// with a value only) and compares the means.
func PhaseMeans(s Series, from, to time.Duration) Cell {
	var rs, ss []float64
	for _, p := range s.Points {
		if p.T < from || p.T >= to {
			continue
		}
		if p.Real != nil {
			rs = append(rs, *p.Real)
		}
		if p.Sim != nil {
			ss = append(ss, *p.Sim)
		}
	}
	return Compare(mean(rs), mean(ss), s.Tol)
}

func mean(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	return &m
}

// Count is how many cells of each verdict the phase and event rows have.
func (f *Fidelity) Count() map[string]int {
	n := map[string]int{}
	for _, r := range f.Phases {
		n[r.Verdict]++
	}
	for _, r := range f.Events {
		n[r.Verdict]++
	}
	return n
}

// Formats Write knows.
var FidelityFormats = []string{"table", "json", "markdown"}

// Write renders the comparison: "table" (text columns), "json" or
// "markdown".
func (f *Fidelity) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	case "table", "":
		return f.write(w, false)
	case "markdown":
		return f.write(w, true)
	}
	return fmt.Errorf("fidelity: unknown format %q (want %s)", format, strings.Join(FidelityFormats, ", "))
}

// write renders the three tables (phases, events, then every series
// sample by sample) as aligned text or Markdown.
func (f *Fidelity) write(w io.Writer, md bool) error {
	var b strings.Builder
	heading := func(level int, s string) {
		if md {
			fmt.Fprintf(&b, "\n%s %s\n\n", strings.Repeat("#", level), s)
		} else {
			rule := "-"
			if level == 1 {
				rule = "="
			}
			fmt.Fprintf(&b, "\n%s\n%s\n", s, strings.Repeat(rule, len([]rune(s))))
		}
	}
	heading(1, fmt.Sprintf("Fidelity: %s on Flink %s against the simulator", f.Scenario, f.Flink))
	fmt.Fprintf(&b, "%s; load average %s.\n", f.Date.UTC().Format("2006-01-02 15:04 MST"), orDash(f.Load))
	fmt.Fprintf(&b, "Samples every %s from %s; in-place rescale of %q to %d at %s; savepoint restart with it at %d at %s.\n",
		f.Plan.Every, clock(f.Plan.FirstSample), f.Plan.Vertex, f.Plan.InPlaceTo, clock(f.Plan.InPlaceAt), f.Plan.RestartTo, clock(f.Plan.RestartAt))
	n := f.Count()
	fmt.Fprintf(&b, "Verdicts of the phase and event rows: %d ok, %d DIFF, %d n/a.\n", n[VerdictOK], n[VerdictDiff], n[VerdictNA])

	heading(2, "Phase means")
	var phases []string
	for _, p := range f.Plan.Phases {
		phases = append(phases, fmt.Sprintf("%s [%s, %s)", p.Name, clock(p.From), clock(p.To)))
	}
	fmt.Fprintf(&b, "Means over the samples of each phase: %s.\n\n", strings.Join(phases, ", "))
	rows := [][]string{{"metric", "phase", "real", "sim", "diff", "diff %", "verdict"}}
	for _, r := range f.Phases {
		rows = append(rows, append([]string{r.Metric + " (" + r.Unit + ")", r.Phase}, cellCols(r.Cell, r.Unit)...))
	}
	table(&b, rows, md)

	heading(2, "Rescales")
	rows = [][]string{{"event", "quantity", "real", "sim", "diff", "diff %", "verdict"}}
	for _, r := range f.Events {
		rows = append(rows, append([]string{r.Event, r.Quantity + " (" + r.Unit + ")"}, cellCols(r.Cell, r.Unit)...))
	}
	table(&b, rows, md)

	heading(2, "Tolerances")
	rows = [][]string{{"metric", "tolerance", "why"}}
	seen := map[string]bool{}
	for _, s := range f.Series {
		if seen[s.Key] {
			continue
		}
		seen[s.Key] = true
		rows = append(rows, []string{s.Title + " (" + s.Unit + ")", s.Tol.String(), s.Tol.Why})
	}
	for _, k := range sortedKeys(f.EventTolerances) {
		t := f.EventTolerances[k]
		rows = append(rows, []string{k, t.String(), t.Why})
	}
	table(&b, rows, md)

	if len(f.Notes) > 0 {
		heading(2, "Notes")
		for _, s := range f.Notes {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}

	heading(2, "Samples")
	for _, s := range f.Series {
		heading(3, fmt.Sprintf("%s (%s), tolerance %s", s.Label(), s.Unit, s.Tol))
		rows = [][]string{{"t", "real", "sim", "diff", "diff %", "verdict"}}
		for _, p := range s.Points {
			rows = append(rows, append([]string{clock(p.T)}, cellCols(p.Cell, s.Unit)...))
		}
		table(&b, rows, md)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table writes rows (the first is the header) as a Markdown table or
// aligned columns, numbers right-aligned.
func table(b *strings.Builder, rows [][]string, md bool) {
	if md {
		for i, r := range rows {
			fmt.Fprintf(b, "| %s |\n", strings.Join(escapePipes(r), " | "))
			if i == 0 {
				seps := make([]string, len(r))
				for k := range seps {
					seps[k] = "---"
					if k > 0 && k >= len(r)-5 && r[k] != "verdict" && r[k] != "why" && r[k] != "tolerance" {
						seps[k] = "---:"
					}
				}
				fmt.Fprintf(b, "|%s|\n", strings.Join(seps, "|"))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func escapePipes(r []string) []string {
	out := make([]string, len(r))
	for i, s := range r {
		out[i] = strings.ReplaceAll(s, "|", `\|`)
	}
	return out
}

// cellCols are a cell's real, sim, diff, diff % and verdict columns.
func cellCols(c Cell, unit string) []string {
	pct := "-"
	if c.DiffPct != nil {
		pct = signed(fmt.Sprintf("%.1f", *c.DiffPct)) + " %"
	}
	diff := "-"
	if c.Diff != nil {
		diff = signed(formatValue(*c.Diff, unit))
	}
	return []string{formatPtr(c.Real, unit), formatPtr(c.Sim, unit), diff, pct, c.Verdict}
}

func formatPtr(x *float64, unit string) string {
	if x == nil {
		return "-"
	}
	return formatValue(*x, unit)
}

// signed puts a + before a formatted number above zero, and no sign on
// zero.
func signed(s string) string {
	switch {
	case strings.Trim(s, "-0.") == "":
		return strings.TrimPrefix(s, "-")
	case strings.HasPrefix(s, "-"):
		return s
	}
	return "+" + s
}

// formatValue writes a value with the precision its unit deserves (and
// no "-0").
func formatValue(x float64, unit string) string {
	s := fmt.Sprintf("%.0f", x)
	if unit == "s" || unit == "MiB" {
		s = fmt.Sprintf("%.2f", x)
	}
	if strings.Trim(s, "-0.") == "" {
		return strings.TrimPrefix(s, "-")
	}
	return s
}

// clock writes a scenario time as m:ss.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func trimFloat(x float64) string {
	s := fmt.Sprintf("%.2f", x)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fidelityMetrics are the compared metrics of a scenario, with their
// tolerances: per vertex busy and backpressured time and records in and
// out per second, the sources' lag on the brokers and in Flink, and the
// job's last checkpoint.
func fidelityMetrics(s *scenario.Scenario) []Metric {
	peak := 0.0
	for _, t := range s.Job.Topics {
		peak += peakTopicRate(s, t.Name)
	}
	interval := s.Job.Checkpoints.Interval.Seconds()
	busy := Tolerance{Rel: 0.15, Abs: 40, Why: "Flink averages busy time per subtask over up to 60 s, updated every 5 s, and the testbed's paced cost overshoots by the park granularity, more on a loaded machine; the collectors' tolerance"}
	bp := Tolerance{Rel: 0.15, Abs: 50, Why: "the same measurement as busy time; a subtask alternates between busy and backpressured at buffer granularity"}
	rate := Tolerance{Rel: 0.08, Abs: 25, Why: "counters over 5 s move by whole Kafka fetches and network buffers; over a 30 s phase within the collectors' 8 %"}
	lag := Tolerance{Rel: 0.25, Abs: peak * interval / 2, Why: fmt.Sprintf(
		"offsets are committed when a checkpoint completes, every %gs: the two sides' checkpoints are not in phase, so a sample of the sawtooth can differ by half an interval of arrivals (%.0f records at the peak rate)", interval, peak*interval/2)}
	pending := Tolerance{Rel: 0.25, Abs: peak, Why: "the readers' view of the lag moves by whole fetches: one second of arrivals at the peak rate"}
	ckptMs := Tolerance{Rel: 0.5, Abs: 100, Why: "a checkpoint of a few MiB to local disk takes 100-200 ms and varies with GC and the other JVMs on the cores"}
	ckptSize := Tolerance{Rel: 0.1, Abs: 0.0625, Why: "the keyed state is fixed; the sources' split state is a few bytes"}
	var out []Metric
	for _, v := range s.Job.Vertices {
		out = append(out,
			Metric{Key: "busy", Vertex: v.Name, Title: "busy time", Unit: "ms/s", Tol: busy},
			Metric{Key: "backpressured", Vertex: v.Name, Title: "backpressured time", Unit: "ms/s", Tol: bp},
			Metric{Key: "in", Vertex: v.Name, Title: "records in", Unit: "records/s", Tol: rate})
		if v.Selectivity > 0 {
			out = append(out, Metric{Key: "out", Vertex: v.Name, Title: "records out", Unit: "records/s", Tol: rate})
		}
	}
	return append(out,
		Metric{Key: "kafkaLag", Title: "Kafka lag (end − committed)", Unit: "records", Tol: lag},
		Metric{Key: "pendingRecords", Title: "sources' pendingRecords", Unit: "records", Tol: pending},
		Metric{Key: "checkpointDuration", Title: "last checkpoint duration", Unit: "ms", Tol: ckptMs},
		Metric{Key: "checkpointSize", Title: "last checkpoint size", Unit: "MiB", Tol: ckptSize})
}

// eventTolerances judge the rescales.
func eventTolerances(s *scenario.Scenario) map[string]Tolerance {
	peak := 0.0
	for _, t := range s.Job.Topics {
		peak += peakTopicRate(s, t.Name)
	}
	interval := s.Job.Checkpoints.Interval.Seconds()
	return map[string]Tolerance{
		"downtime": {Rel: 0.5, Abs: 5, Why: "a restart's steps (cancel, schedule, deploy, restore) each take seconds that vary with the machine's load"},
		"replayed": {Rel: 0.5, Abs: peak * interval / 2, Why: fmt.Sprintf(
			"an in-place rescale restores the last checkpoint: the records read since then depend on where in the %gs checkpoint cycle it falls, which differs between the sides", interval)},
	}
}

// value reads a metric from a sample (and the one before, for rates from
// counters); nil when it has none.
func value(m Metric, cur, prev *fidelitySample) *float64 {
	switch m.Key {
	case "busy":
		return cur.Vertices[m.Vertex].Busy
	case "backpressured":
		return cur.Vertices[m.Vertex].BackPressured
	case "in", "out":
		if prev == nil || prev.JobID != cur.JobID || cur.At <= prev.At {
			return nil
		}
		c, p := cur.Vertices[m.Vertex].In, prev.Vertices[m.Vertex].In
		if m.Key == "out" {
			c, p = cur.Vertices[m.Vertex].Out, prev.Vertices[m.Vertex].Out
		}
		if c == nil || p == nil || *c < *p {
			return nil // missing, or a new attempt's counters
		}
		r := (*c - *p) / (cur.At - prev.At).Seconds()
		return &r
	case "kafkaLag":
		return cur.KafkaLag
	case "pendingRecords":
		return cur.Pending
	case "checkpointDuration":
		return cur.CheckpointMs
	case "checkpointSize":
		return cur.CheckpointBytes
	}
	return nil
}

// outcome is what one side measured: each metric's value at each sample
// time, the rescales, and notes.
type outcome struct {
	values map[string]map[time.Duration]*float64 // by metricID
	events []EventResult
	notes  []string
}

func metricID(m Metric) string { return m.Key + "\x00" + m.Vertex }

// outcome reads a run's samples into the metrics' values.
func (r *fidelityRun) outcome(ms []Metric) outcome {
	o := outcome{values: map[string]map[time.Duration]*float64{}, events: r.events, notes: r.notes}
	for _, m := range ms {
		vals := map[time.Duration]*float64{}
		for i := range r.samples {
			var prev *fidelitySample
			if i > 0 {
				prev = &r.samples[i-1]
			}
			vals[r.samples[i].T] = value(m, &r.samples[i], prev)
		}
		o.values[metricID(m)] = vals
	}
	return o
}

// recordedOutcome is the real side of a recorded comparison.
func recordedOutcome(f *Fidelity) outcome {
	o := outcome{values: map[string]map[time.Duration]*float64{}, events: f.RealEvents}
	for _, sr := range f.Series {
		vals := map[time.Duration]*float64{}
		for _, p := range sr.Points {
			vals[p.T] = p.Real
		}
		o.values[metricID(sr.Metric)] = vals
	}
	for _, n := range f.Notes {
		if strings.HasPrefix(n, "real: ") {
			o.notes = append(o.notes, n)
		}
	}
	return o
}

// compareRuns puts the two runs side by side.
func compareRuns(s *scenario.Scenario, v Flink, plan FidelityPlan, real, simRun *fidelityRun) *Fidelity {
	ms := fidelityMetrics(s)
	return compareOutcomes(s, v, plan, real.outcome(ms), simRun.outcome(ms))
}

func compareOutcomes(s *scenario.Scenario, v Flink, plan FidelityPlan, real, simOut outcome) *Fidelity {
	f := &Fidelity{Scenario: s.Name, Flink: string(v), Date: time.Now(), Plan: plan,
		EventTolerances: eventTolerances(s), RealEvents: real.events, SimEvents: simOut.events}
	f.Notes = append(append(f.Notes, real.notes...), simOut.notes...)
	var times []time.Duration
	for t := plan.FirstSample; t <= plan.End; t += plan.Every {
		times = append(times, t)
	}
	for _, m := range fidelityMetrics(s) {
		rs, ss := real.values[metricID(m)], simOut.values[metricID(m)]
		sr := Series{Metric: m}
		for _, t := range times {
			sr.Points = append(sr.Points, Point{T: t, Cell: Compare(rs[t], ss[t], m.Tol)})
		}
		f.Series = append(f.Series, sr)
	}
	for _, p := range plan.Phases {
		for _, sr := range f.Series {
			f.Phases = append(f.Phases, PhaseRow{Metric: sr.Label(), Unit: sr.Unit, Phase: p.Name, Cell: PhaseMeans(sr, p.From, p.To)})
		}
	}
	f.Events = eventRows(real.events, simOut.events, f.EventTolerances)
	return f
}

// eventRows compares the rescales of both sides, in order.
func eventRows(real, simEvents []EventResult, tol map[string]Tolerance) []EventRow {
	secs := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		x := d.Seconds()
		return &x
	}
	var rows []EventRow
	for i := range max(len(real), len(simEvents)) {
		var r, s EventResult
		if i < len(real) {
			r = real[i]
		}
		if i < len(simEvents) {
			s = simEvents[i]
		}
		name := r.Kind
		if name == "" {
			name = s.Kind
		}
		if to := max(r.To, s.To); to > 0 {
			name += fmt.Sprintf(" %d → %d at %s", max(r.From, s.From), to, clock(max(r.At, s.At)))
		}
		add := func(q, unit string, rv, sv *float64, t Tolerance) {
			rows = append(rows, EventRow{Event: name, Quantity: q, Unit: unit, Cell: Compare(rv, sv, t)})
		}
		add("downtime", "s", secs(r.Downtime), secs(s.Downtime), tol["downtime"])
		add("outage", "s", secs(r.Outage), secs(s.Outage), tol["downtime"])
		if r.Savepoint != nil || s.Savepoint != nil {
			add("  savepoint", "s", secs(r.Savepoint), secs(s.Savepoint), tol["downtime"])
			add("  submission", "s", secs(r.Submit), secs(s.Submit), tol["downtime"])
			add("  start", "s", secs(r.Start), secs(s.Start), tol["downtime"])
		}
		add("records replayed", "records", r.Replayed, s.Replayed, tol["replayed"])
	}
	return rows
}
