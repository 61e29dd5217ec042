package realbench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/realstack"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// advisor runs test/bench's re-implementation of the Flink operator's
// autoscaler (bench.FlinkOperator, at the rival's compressed settings) in
// advisory mode next to the real one: it reads the same job's REST API
// whenever the real one does and notes what it would do, never acting.
type advisor struct {
	j        *realstack.Job
	rivalLog string
	fo       *bench.FlinkOperator
	fc       *flink.Collector
	loop     time.Duration
	evals    []advice
}

// advice is one evaluation of the advisory policy.
type advice struct {
	At time.Time
	// To is the parallelism it would rescale to (changed vertices only),
	// nil when it holds.
	To map[string]int
	// Err is why it could not look (the job restarting).
	Err string
	// Why is the policy's last evaluation (bench.FlinkOperator.Explain).
	Why string
}

func newAdvisor(j *realstack.Job, cfg bench.FlinkOperatorConfig, rivalLog string) (*advisor, error) {
	rc, err := flink.New(j.Testbed.Flink.RESTURL())
	if err != nil {
		return nil, err
	}
	fo := bench.NewFlinkOperator()
	fo.Config = cfg
	return &advisor{j: j, rivalLog: rivalLog, fo: fo, fc: flink.NewCollector(rc), loop: cfg.ReconcileInterval}, nil
}

// window is the advisory policy's metric window, for the report.
func (a *advisor) window() time.Duration { return a.fo.Config.MetricsWindow }

// run evaluates in step with the rival until the scenario has played:
// each time the rival's log shows its control loop looking at the job, the
// advisory policy samples the REST API too, so that both windows hold the
// same moments and fill at the same loop (sampling on its own 10 s clock,
// out of phase, the advisory window filled up to a loop later, and where
// the real autoscaler rescaled at its first full window the advisory one
// never saw that window). Without a tick for two loops it samples anyway.
func (a *advisor) run(ctx context.Context, d time.Duration) {
	partitions := map[string]int{}
	for _, t := range a.j.Testbed.Realised.Scaled.Job.Topics {
		partitions[t.Name] = t.Partitions
	}
	follow := testbed.NewRivalTicks(a.rivalLog)
	_, _ = follow.New() // the looks before the advisor started
	// The first look from now on counts, however soon it comes.
	last := time.Now().Add(-a.loop / 2)
	for time.Since(a.j.Testbed.Started) < d {
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
		// One look logs "Collected metrics" and "Evaluated metrics"
		// within milliseconds: ticks closer than half a loop to the last
		// are the same look.
		ticks, _ := follow.New()
		ticks = slices.DeleteFunc(ticks, func(t time.Time) bool { return t.Before(last.Add(a.loop / 2)) })
		if len(ticks) == 0 && time.Since(last) < 2*a.loop {
			continue
		}
		if len(ticks) > 0 {
			last = ticks[len(ticks)-1]
		} else {
			last = time.Now()
		}
		a.evaluate(ctx, partitions)
	}
}

// evaluate samples the job and notes the advisory policy's verdict.
func (a *advisor) evaluate(ctx context.Context, partitions map[string]int) {
	v := a.j.Cluster.View()
	now := time.Now()
	dep := bench.Deployment{Parallelism: map[string]int{}, SlotsPerTaskManager: a.j.Testbed.Realised.Scaled.Job.TaskManager.Slots,
		CPUPerTaskManager: a.j.Testbed.Realised.Scaled.Job.TaskManager.CPU, TaskManagers: a.j.Testbed.Flink.TaskManagers(),
		Partitions: partitions, Rescaling: !testbed.Steady(&v.Job)}
	for _, vx := range v.Job.Vertices {
		dep.Parallelism[vx.ID] = vx.Parallelism
	}
	if ms, ok := v.Job.Timestamps["RUNNING"]; ok {
		dep.RunningSince = time.UnixMilli(ms)
	}
	obs := bench.Observation{Now: now, Deployment: dep}
	obs.Flink, obs.FlinkErr = a.fc.Collect(ctx, v.Job.ID)
	obs.Flink.At = now
	ad := advice{At: now}
	if obs.FlinkErr != nil {
		ad.Err = obs.FlinkErr.Error()
	}
	plan := a.fo.Observe(obs)
	ad.Why = a.fo.Explain()
	if plan != nil {
		ad.To = map[string]int{}
		for id, p := range plan.Parallelism {
			if p != dep.Parallelism[id] {
				ad.To[id] = p
			}
		}
	}
	a.evals = append(a.evals, ad)
}

// CrossCheck compares the real autoscaler's evaluations with the
// re-implementation's, evaluation by evaluation, on one real run.
type CrossCheck struct {
	// Window is the metric window both used.
	Window time.Duration `json:"window"`
	// Evaluations is the advisory policy's evaluations; Agree those whose
	// verdict (rescale or hold) matched the real autoscaler's within one
	// control loop.
	Evaluations int `json:"evaluations"`
	Agree       int `json:"agree"`
	// RivalRescales and AdvisorRescales count each side's rescale
	// verdicts; Matched are the real rescales the advisory policy also
	// asked for within one loop, SameTargets those with the same new
	// parallelism for every vertex the real one changed.
	RivalRescales   int `json:"rivalRescales"`
	AdvisorRescales int `json:"advisorRescales"`
	Matched         int `json:"matched"`
	SameTargets     int `json:"sameTargets"`
	// Lines describe every disagreement.
	Lines []string `json:"lines,omitempty"`
}

// Agreement is Agree / Evaluations.
func (c *CrossCheck) Agreement() float64 {
	if c == nil || c.Evaluations == 0 {
		return math.NaN()
	}
	return float64(c.Agree) / float64(c.Evaluations)
}

func (c *CrossCheck) String() string {
	if c == nil {
		return "no cross-check"
	}
	return fmt.Sprintf("%d of %d evaluations agree (%.0f %%); real rescales %d, advisory %d, matched %d, same targets %d",
		c.Agree, c.Evaluations, 100*c.Agreement(), c.RivalRescales, c.AdvisorRescales, c.Matched, c.SameTargets)
}

// compare lines the real autoscaler's log entries up with the advisory
// evaluations. The two loops run at the same interval but out of phase:
// each real rescale belongs to the advisory evaluation nearest in time,
// and a rescale verdict of one side matches one of the other side at the
// same or a neighbouring evaluation (each used once). Every verdict left
// unmatched is one evaluation on which the two disagree.
func compare(entries []testbed.RivalEntry, evals []advice, window time.Duration) *CrossCheck {
	c := &CrossCheck{Window: window, Evaluations: len(evals)}
	// The real rescales, by the evaluation nearest each.
	real := map[int]testbed.RivalEntry{}
	for _, e := range entries {
		if e.Outcome != testbed.RivalScaling || len(evals) == 0 {
			continue
		}
		c.RivalRescales++
		best := 0
		for i, ev := range evals {
			if ev.At.Sub(e.At).Abs() < evals[best].At.Sub(e.At).Abs() {
				best = i
			}
		}
		real[best] = e
	}
	used := map[int]bool{} // real rescales matched, by evaluation
	matchedAdv := map[int]bool{}
	for i, ev := range evals {
		if ev.To == nil {
			continue
		}
		c.AdvisorRescales++
		for _, k := range []int{i, i - 1, i + 1} {
			e, ok := real[k]
			if !ok || used[k] {
				continue
			}
			used[k], matchedAdv[i] = true, true
			c.Matched++
			changed := map[string]int{}
			for id, to := range e.To {
				if to != e.From[id] {
					changed[id] = to
				}
			}
			if maps.Equal(ev.To, changed) {
				c.SameTargets++
			} else {
				c.Lines = append(c.Lines, fmt.Sprintf("%s: the real one rescaled to %s, the re-implementation asked for %s",
					e.At.Format("15:04:05"), fmtPar(changed), fmtPar(ev.To)))
			}
			break
		}
	}
	for i, ev := range evals {
		if ev.To != nil && !matchedAdv[i] {
			c.Lines = append(c.Lines, fmt.Sprintf("%s: the re-implementation would rescale to %s; the real one held", ev.At.Format("15:04:05"), fmtPar(ev.To)))
		}
		if e, ok := real[i]; ok && !used[i] {
			c.Lines = append(c.Lines, fmt.Sprintf("%s: the real one rescaled (%s); the re-implementation held", e.At.Format("15:04:05"), fmtPar(e.To)))
		}
	}
	c.Agree = c.Evaluations - (c.AdvisorRescales - c.Matched) - (len(real) - c.Matched)
	return c
}

// fmtPar renders a parallelism map with short vertex ids, sorted.
func fmtPar(p map[string]int) string {
	var parts []string
	for id, n := range p {
		parts = append(parts, fmt.Sprintf("%.6s:%d", id, n))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

// writeLog writes one line per evaluation: when, what it would do, why.
func (a *advisor) writeLog(path string) error {
	var b strings.Builder
	for _, ev := range a.evals {
		what := "hold"
		if ev.To != nil {
			what = "rescale to " + fmtPar(ev.To)
		}
		if ev.Err != "" {
			what += " (" + ev.Err + ")"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", ev.At.Format("15:04:05.000"), what, ev.Why)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
