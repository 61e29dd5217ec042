package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Policies are the names of the policies Compare runs, besides the oracle.
var Policies = []string{"flinkscale", "flink-operator", "flink-operator-1.16", "keda-lag", "static"}

// NewPolicy returns a fresh policy by name for scenario s (nil: defaults).
func NewPolicy(name string, s *scenario.Scenario) (Policy, error) {
	switch name {
	case "flinkscale":
		return NewFlinkscale(), nil
	case FlinkscaleMemoryName:
		return NewFlinkscaleMemory(), nil
	case "flink-operator":
		return NewFlinkOperator(), nil
	case "flink-operator-1.16":
		return NewFlinkOperator116(), nil
	case "keda-lag":
		if s != nil {
			return NewKEDALagFor(s), nil
		}
		return NewKEDALag(), nil
	case "static":
		return Static{}, nil
	}
	return nil, fmt.Errorf("unknown policy %q (known: %s)", name, strings.Join(append(slices.Clone(Policies), FlinkscaleMemoryName), ", "))
}

// Report is the side-by-side comparison of one run of the library.
type Report struct {
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed"`
	Policies []string      `json:"policies"`
	// Results holds every policy's result on every scenario, and the
	// oracle's (Policy "oracle").
	Results []*Result `json:"results"`
	// Goals are the goals with their verdicts.
	Goals []Goal `json:"goals"`
	// Expectations are the scenarios' expect fields judged on every
	// policy's run (not the oracle's), and ExpectationsMet how many each
	// policy met.
	Expectations    []Expectation      `json:"expectations,omitempty"`
	ExpectationsMet []ExpectationTally `json:"expectationsMet,omitempty"`
	// SLO per scenario.
	SLO map[string]time.Duration `json:"slo"`
	// Notes are the scenarios' expect.notes, what good behaviour looks
	// like in words: not judged.
	Notes map[string]string `json:"notes,omitempty"`
}

// Goal is one target and whether it was met.
type Goal struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// Compare runs every policy on every scenario (parallel runs at once) and
// the oracle, then judges the goals. progress, if set, is called after each
// run with how many of how many are done.
func Compare(ctx context.Context, scenarios []*scenario.Scenario, policies []string, parallel int, progress func(done, total int, what string)) (*Report, error) {
	start := time.Now()
	rep := &Report{Started: start.UTC(), Policies: policies, SLO: map[string]time.Duration{}, Notes: map[string]string{}}
	type job struct {
		s      *scenario.Scenario
		policy string
	}
	var jobs []job
	for _, s := range scenarios {
		rep.SLO[s.Name] = s.SLO.Lag
		if s.Expect.Notes != "" {
			rep.Notes[s.Name] = s.Expect.Notes
		}
		for _, p := range policies {
			if _, err := NewPolicy(p, nil); err != nil {
				return nil, err
			}
			jobs = append(jobs, job{s, p})
		}
	}
	total := len(jobs) + len(scenarios)
	var mu sync.Mutex
	done := 0
	report := func(what string) {
		mu.Lock()
		done++
		d := done
		mu.Unlock()
		if progress != nil {
			progress(d, total, what)
		}
	}
	for _, s := range scenarios {
		o, err := Oracle(s, 0.7, OracleStep(s))
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, o)
		report(s.Name + "/" + OracleName)
	}
	parallel = max(parallel, 1)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	results := make([]*Result, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, _ := NewPolicy(j.policy, j.s)
			results[i], errs[i] = Run(ctx, j.s, Compress(p, j.s.Compression), Options{})
			report(j.s.Name + "/" + j.policy)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", jobs[i].s.Name, jobs[i].policy, err)
		}
	}
	rep.add(scenarios, results)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// add puts the policies' results beside the oracles', sorted by scenario,
// and judges the goals and the scenarios' expectations.
func (r *Report) add(scenarios []*scenario.Scenario, results []*Result) {
	r.Results = append(r.Results, results...)
	sort.SliceStable(r.Results, func(a, b int) bool { return r.Results[a].Scenario < r.Results[b].Scenario })
	r.Goals = judge(scenarios, r)
	r.Expectations, r.ExpectationsMet = judgeExpectations(scenarios, r)
}

// find returns the result of policy on scenario.
func (r *Report) find(scenario, policy string) *Result {
	for _, x := range r.Results {
		if x.Scenario == scenario && x.Policy == policy {
			return x
		}
	}
	return nil
}

// SlotRatio is x's slot-hours over the oracle's, both in whole
// TaskManagers.
func (r *Report) SlotRatio(x *Result) float64 {
	o := r.find(x.Scenario, OracleName)
	if o == nil || o.SlotHours <= 0 {
		return math.NaN()
	}
	return x.SlotHours / o.SlotHours
}

// CoreRatio is x's core-hours over the oracle's, both in whole
// TaskManagers.
func (r *Report) CoreRatio(x *Result) float64 {
	o := r.find(x.Scenario, OracleName)
	if o == nil || o.CoreHours <= 0 {
		return math.NaN()
	}
	return x.CoreHours / o.CoreHours
}

// stepScenarios have a discrete step in load and are judged on one rescale
// per step.
func isStep(s *scenario.Scenario) bool {
	return strings.HasPrefix(s.Name, "step-")
}

// judge checks the goals of the benchmark issue against flinkscale's
// results. Nothing is tuned to pass: a goal missed says so.
func judge(scenarios []*scenario.Scenario, rep *Report) []Goal {
	var goals []Goal
	has := func(p string) bool { return slices.Contains(rep.Policies, p) }
	if !has("flinkscale") {
		return nil
	}
	// One rescale per step, converged.
	for _, s := range scenarios {
		if !isStep(s) {
			continue
		}
		r := rep.find(s.Name, "flinkscale")
		steps := len(changePoints(s))
		ok := r.Rescales == steps && r.Failed == 0
		for _, c := range r.Converge {
			ok = ok && c >= 0
		}
		goals = append(goals, Goal{Name: "one rescale per step: " + s.Name, Met: ok,
			Detail: fmt.Sprintf("%d rescale(s) for %d step(s), converged after %s", r.Rescales, steps, durations(r.Converge))})
	}
	for _, s := range scenarios {
		r := rep.find(s.Name, "flinkscale")
		if s.Name == "steady-noise-24h" {
			goals = append(goals, Goal{Name: "zero rescales: " + s.Name, Met: r.Rescales == 0,
				Detail: fmt.Sprintf("%d rescale(s)", r.Rescales)})
		}
		if strings.HasPrefix(s.Name, "steady") || strings.HasPrefix(s.Name, "diurnal") {
			ratio := rep.SlotRatio(r)
			goals = append(goals, Goal{Name: "slot-hours ≤ 1.10× oracle: " + s.Name, Met: ratio <= 1.10,
				Detail: fmt.Sprintf("%.2f×", ratio)})
		}
	}
	// SLO seconds within 1.2× the unavoidable minimum, per scenario.
	var over []string
	for _, s := range scenarios {
		r, o := rep.find(s.Name, "flinkscale"), rep.find(s.Name, OracleName)
		if float64(r.OverSLO) > 1.2*float64(o.OverSLO) {
			over = append(over, fmt.Sprintf("%s %s vs %s", s.Name, r.OverSLO.Round(time.Second), o.OverSLO.Round(time.Second)))
		}
	}
	goals = append(goals, Goal{Name: "time over the lag SLO ≤ 1.2× the unavoidable minimum, every scenario", Met: len(over) == 0,
		Detail: orAll(over, "all within")})
	// The library as a whole against the baselines.
	sum := func(p string, f func(*Result) float64) float64 {
		t := 0.0
		for _, s := range scenarios {
			if r := rep.find(s.Name, p); r != nil {
				t += f(r)
			}
		}
		return t
	}
	rescales := func(r *Result) float64 { return float64(r.Rescales) }
	slotH := func(r *Result) float64 { return r.SlotHours }
	overS := func(r *Result) float64 { return r.OverSLO.Seconds() }
	if has("flink-operator") {
		a, b := sum("flinkscale", rescales), sum("flink-operator", rescales)
		goals = append(goals, Goal{Name: "fewer rescales than flink-operator (library)", Met: fewer(a, b), Detail: fmt.Sprintf("%.0f vs %.0f", a, b)})
		a, b = sum("flinkscale", slotH), sum("flink-operator", slotH)
		goals = append(goals, Goal{Name: "fewer slot-hours than flink-operator (library)", Met: fewer(a, b), Detail: fmt.Sprintf("%.1f vs %.1f", a, b)})
	}
	if has("keda-lag") {
		a, b := sum("flinkscale", overS), sum("keda-lag", overS)
		goals = append(goals, Goal{Name: "less time over the SLO than keda-lag (library)", Met: fewer(a, b),
			Detail: fmt.Sprintf("%s vs %s", time.Duration(a*1e9).Round(time.Second), time.Duration(b*1e9).Round(time.Second))})
	}
	lost := 0.0
	for _, p := range rep.Policies {
		lost += sum(p, func(r *Result) float64 { return math.Abs(float64(r.RecordsLost)) })
	}
	goals = append(goals, Goal{Name: "no record lost, any policy", Met: lost == 0, Detail: fmt.Sprintf("%.0f lost", lost)})
	return goals
}

// fewer is a "less than" goal's verdict: a below b, or both at zero (none
// of it at all is as good as it gets).
func fewer(a, b float64) bool {
	return a < b || a == 0 && b == 0
}

// Expectation is one of a scenario's expect fields (scenario.Expect)
// judged on one policy's run.
type Expectation struct {
	Scenario string `json:"scenario"`
	Policy   string `json:"policy"`
	// Name is the field: maxRescales, maxSlotHoursRatio or maxTimeOverSLO.
	Name string `json:"name"`
	// Want is the bound, Got the run's figure, both as the table prints
	// them.
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// ExpectationTally is how many of the library's expectations a policy met.
type ExpectationTally struct {
	Policy string `json:"policy"`
	Met    int    `json:"met"`
	Total  int    `json:"total"`
}

// judgeExpectations judges every scenario's expect fields on every
// policy's run: maxRescales against the rescales started, maxSlotHoursRatio
// against the slot-hours over the oracle's (whole TaskManagers, SlotRatio),
// maxTimeOverSLO against the time over the SLO. A zero field (a nil
// maxRescales) is no expectation; notes are words, not judged.
func judgeExpectations(scenarios []*scenario.Scenario, rep *Report) ([]Expectation, []ExpectationTally) {
	var out []Expectation
	tally := make([]ExpectationTally, len(rep.Policies))
	for i, p := range rep.Policies {
		tally[i].Policy = p
	}
	for _, s := range scenarios {
		e := s.Expect
		for i, p := range rep.Policies {
			r := rep.find(s.Name, p)
			if r == nil {
				continue
			}
			add := func(name, want, got string, met bool) {
				out = append(out, Expectation{Scenario: s.Name, Policy: p, Name: name, Want: want, Got: got, Met: met})
				tally[i].Total++
				if met {
					tally[i].Met++
				}
			}
			if e.MaxRescales != nil {
				add("maxRescales", fmt.Sprintf("≤ %d rescale(s)", *e.MaxRescales), fmt.Sprintf("%d rescale(s)", r.Rescales), r.Rescales <= *e.MaxRescales)
			}
			if e.MaxSlotHoursRatio > 0 {
				ratio := rep.SlotRatio(r)
				add("maxSlotHoursRatio", fmt.Sprintf("≤ %.2f× the oracle's slot-hours", e.MaxSlotHoursRatio), fmt.Sprintf("%.2f×", ratio),
					ratio <= e.MaxSlotHoursRatio)
			}
			if d := e.MaxTimeOverSLO; d != nil {
				add("maxTimeOverSLO", "≤ "+dur(*d)+" over the SLO", dur(r.OverSLO), r.OverSLO <= *d)
			}
		}
	}
	return out, tally
}

// expected is "met/total" of policy's expectations on a scenario, "-" for
// none.
func (r *Report) expected(scenario, policy string) string {
	met, total := 0, 0
	for _, e := range r.Expectations {
		if e.Scenario == scenario && e.Policy == policy {
			total++
			if e.Met {
				met++
			}
		}
	}
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", met, total)
}

func orAll(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, "; ")
}

func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = dur(d)
	}
	return strings.Join(parts, ", ")
}

func dur(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Second).String()
}

// WriteTable writes the report as aligned text: one block per scenario, a
// row per policy, then the goals and the scenarios' expectations.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpolicy\trescales\tfailed\treversals\tconverge\tover SLO\tmax lag (s)\tused slot-h\tTM slot-h\t× oracle\tcore-h\t× oracle\tlost\texpect\t")
	last := ""
	for _, x := range r.Results {
		name := x.Scenario
		if name == last {
			name = ""
		}
		last = x.Scenario
		resc, rev, conv, lost := fmt.Sprint(x.Rescales), fmt.Sprint(x.Reversals), durations(x.Converge), fmt.Sprint(x.RecordsLost)
		expect := r.expected(x.Scenario, x.Policy)
		if x.Policy == OracleName {
			resc, rev, conv, lost, expect = fmt.Sprintf("(%d)", len(x.Unavoidable)), "-", "-", "-", "-"
		}
		failed := fmt.Sprint(x.Failed)
		if x.Policy == OracleName {
			failed = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%.1f\t%.2f\t%.1f\t%.2f\t%s\t%s\t\n", name, x.Policy, resc, failed, rev, conv,
			dur(x.OverSLO), x.MaxLagSeconds, x.UsedSlotHours, x.SlotHours, r.SlotRatio(x), x.CoreHours, r.CoreRatio(x), lost, expect)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "slot-hours and core-hours count whole TaskManagers (TM slot-h; used slot-h: the slots the parallelism occupies)")
	fmt.Fprintln(w, "oracle: the resource lower bound, re-sized every 30 s of the workload's time at no restart cost; its \"over SLO\" is the unavoidable minimum, paying (n) restarts")
	if len(r.Goals) > 0 {
		fmt.Fprintln(w)
	}
	for _, g := range r.Goals {
		fmt.Fprintf(w, "%s  %s: %s\n", verdict(g.Met), g.Name, g.Detail)
	}
	if len(r.Expectations) > 0 {
		fmt.Fprintln(w)
		var met []string
		for _, t := range r.ExpectationsMet {
			met = append(met, fmt.Sprintf("%s %d/%d", t.Policy, t.Met, t.Total))
		}
		fmt.Fprintf(w, "expectations met (the scenarios' expect fields): %s\n", strings.Join(met, ", "))
		for _, e := range r.Expectations {
			if !e.Met {
				fmt.Fprintf(w, "%s  %s under %s: %s, expected %s (%s)\n", verdict(false), e.Scenario, e.Policy, e.Got, e.Want, e.Name)
			}
		}
	}
	return nil
}

func verdict(met bool) string {
	if met {
		return "MET   "
	}
	return "MISSED"
}

// Library loads the scenarios of a directory (the library) or files.
func Library(dir string, files []string) ([]*scenario.Scenario, error) {
	if len(files) == 0 {
		return scenario.All(dir)
	}
	var out []*scenario.Scenario
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
