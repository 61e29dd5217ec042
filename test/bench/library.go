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
	return nil, fmt.Errorf("unknown policy %q (known: %s)", name, strings.Join(Policies, ", "))
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
	// SLO per scenario.
	SLO map[string]time.Duration `json:"slo"`
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
	rep := &Report{Started: start.UTC(), Policies: policies, SLO: map[string]time.Duration{}}
	type job struct {
		s      *scenario.Scenario
		policy string
	}
	var jobs []job
	for _, s := range scenarios {
		rep.SLO[s.Name] = s.SLO.Lag
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
		o, err := Oracle(s, 0.7, 30*time.Second)
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
			results[i], errs[i] = Run(ctx, j.s, p, Options{})
			report(j.s.Name + "/" + j.policy)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", jobs[i].s.Name, jobs[i].policy, err)
		}
	}
	rep.Results = append(rep.Results, results...)
	sort.SliceStable(rep.Results, func(a, b int) bool { return rep.Results[a].Scenario < rep.Results[b].Scenario })
	rep.Goals = judge(scenarios, rep)
	rep.Elapsed = time.Since(start)
	return rep, nil
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

// Ratio is x over the oracle's, for slot-hours.
func (r *Report) SlotRatio(x *Result) float64 {
	o := r.find(x.Scenario, OracleName)
	if o == nil || o.SlotHours <= 0 {
		return math.NaN()
	}
	return x.SlotHours / o.SlotHours
}

// CoreRatio is x's core-hours over the oracle's.
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
		goals = append(goals, Goal{Name: "fewer rescales than flink-operator (library)", Met: a < b, Detail: fmt.Sprintf("%.0f vs %.0f", a, b)})
		a, b = sum("flinkscale", slotH), sum("flink-operator", slotH)
		goals = append(goals, Goal{Name: "fewer slot-hours than flink-operator (library)", Met: a < b, Detail: fmt.Sprintf("%.1f vs %.1f", a, b)})
	}
	if has("keda-lag") {
		a, b := sum("flinkscale", overS), sum("keda-lag", overS)
		goals = append(goals, Goal{Name: "less time over the SLO than keda-lag (library)", Met: a < b,
			Detail: fmt.Sprintf("%s vs %s", time.Duration(a*1e9).Round(time.Second), time.Duration(b*1e9).Round(time.Second))})
	}
	lost := 0.0
	for _, p := range rep.Policies {
		lost += sum(p, func(r *Result) float64 { return math.Abs(float64(r.RecordsLost)) })
	}
	goals = append(goals, Goal{Name: "no record lost, any policy", Met: lost == 0, Detail: fmt.Sprintf("%.0f lost", lost)})
	return goals
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
// row per policy, then the goals.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpolicy\trescales\treversals\tconverge\tover SLO\tmax lag (s)\tslot-h\t× oracle\tcore-h\t× oracle\tlost\t")
	last := ""
	for _, x := range r.Results {
		name := x.Scenario
		if name == last {
			name = ""
		}
		last = x.Scenario
		resc, rev, conv, lost := fmt.Sprint(x.Rescales), fmt.Sprint(x.Reversals), durations(x.Converge), fmt.Sprint(x.RecordsLost)
		if x.Policy == OracleName {
			resc, rev, conv, lost = "-", "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%.2f\t%.1f\t%.2f\t%s\t\n", name, x.Policy, resc, rev, conv,
			dur(x.OverSLO), x.MaxLagSeconds, x.SlotHours, r.SlotRatio(x), x.CoreHours, r.CoreRatio(x), lost)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "oracle: the resource lower bound (no restarts); its \"over SLO\" is the unavoidable minimum")
	fmt.Fprintln(w)
	for _, g := range r.Goals {
		mark := "MET   "
		if !g.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", mark, g.Name, g.Detail)
	}
	return nil
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
