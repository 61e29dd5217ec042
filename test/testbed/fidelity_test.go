package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// EnvFidelityOut, when set, is a directory where TestFidelity writes its
// comparisons (fidelity-<flink>.md and .json).
const EnvFidelityOut = "FLINKSCALE_FIDELITY_OUT"

// TestFidelity plays scenarios/saturate-step.yaml on the simulator and on
// real Flink with the same samples, an in-place rescale at 4:00 and a
// savepoint restart at 5:00, and logs the comparison (docs/simulator.md,
// "Fidelity"). It fails when a side could not carry out the plan or the
// steady phase, which the simulator must get right, differs.
func TestFidelity(t *testing.T) {
	requireRealLong(t)
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) { fidelity(t, v) })
	}
}

func fidelity(t *testing.T, v Flink) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), s.Duration+10*time.Minute)
	defer cancel()
	f, err := RunFidelity(ctx, FidelityOptions{Scenario: s, Flink: v, SkipJavaTests: true, Progress: testWriter{t}})
	require.NoError(t, err)
	var md bytes.Buffer
	require.NoError(t, f.Write(&md, "markdown"))
	t.Log("\n" + md.String())
	if dir := os.Getenv(EnvFidelityOut); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		base := filepath.Join(dir, "fidelity-"+string(v))
		require.NoError(t, os.WriteFile(base+".md", md.Bytes(), 0o644))
		var js bytes.Buffer
		require.NoError(t, f.Write(&js, "json"))
		require.NoError(t, os.WriteFile(base+".json", js.Bytes(), 0o644))
	}
	require.Len(t, f.RealEvents, 2)
	require.Len(t, f.SimEvents, 2)
	for i := range f.RealEvents {
		assert.Empty(t, f.RealEvents[i].Err, "real %s", f.RealEvents[i].Kind)
		assert.Empty(t, f.SimEvents[i].Err, "sim %s", f.SimEvents[i].Kind)
		assert.NotNil(t, f.RealEvents[i].Downtime, "real %s downtime", f.RealEvents[i].Kind)
	}
	// The phases before the rescales the simulator must get right; the
	// checkpoints' durations vary with the machine's load.
	for _, r := range f.Phases {
		if settled[r.Phase] && !strings.Contains(r.Metric, "checkpoint duration") {
			assert.NotEqual(t, VerdictDiff, r.Verdict, "%s %s: real %s, sim %s", r.Phase, r.Metric, formatPtr(r.Real, r.Unit), formatPtr(r.Sim, r.Unit))
		}
	}
}

// settled are the phases before any rescale: what follows a rescale
// depends on the backlog it left, which depends on the restart time (a
// model parameter) and on where in the checkpoint cycle it fell.
var settled = map[string]bool{"steady": true, "before in-place": true}

// TestRejudgeRecordedRealRuns judges the simulator as it is now against
// real runs recorded by TestFidelity (testdata/fidelity, written with
// FLINKSCALE_FIDELITY_OUT and compacted): in every go test, without Java,
// the phases before the rescales must be within tolerance.
func TestRejudgeRecordedRealRuns(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	files, err := filepath.Glob("testdata/fidelity/saturate-step-flink-*.json")
	require.NoError(t, err)
	require.Len(t, files, 2)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			var rec Fidelity
			require.NoError(t, json.Unmarshal(b, &rec))
			f, err := Rejudge(context.Background(), &rec, s)
			require.NoError(t, err)
			require.Len(t, f.SimEvents, 2)
			for _, ev := range f.SimEvents {
				assert.Empty(t, ev.Err, ev.Kind)
			}
			n := 0
			for _, r := range f.Phases {
				if settled[r.Phase] {
					n++
					assert.Equal(t, VerdictOK, r.Verdict, "%s %s: real %s, sim %s", r.Phase, r.Metric, formatPtr(r.Real, r.Unit), formatPtr(r.Sim, r.Unit))
				}
			}
			assert.Equal(t, 30, n)
		})
	}
}

func ptr(x float64) *float64 { return &x }

func TestCompareJudgesAgainstTheLargerBound(t *testing.T) {
	tol := Tolerance{Rel: 0.1, Abs: 5}
	c := Compare(ptr(100), ptr(108), tol)
	assert.Equal(t, VerdictOK, c.Verdict)
	assert.InDelta(t, 8, *c.Diff, 1e-9)
	assert.InDelta(t, 8, *c.DiffPct, 1e-9)
	assert.Equal(t, VerdictDiff, Compare(ptr(100), ptr(89), tol).Verdict, "11 > max(5, 10)")
	assert.Equal(t, VerdictOK, Compare(ptr(10), ptr(14), tol).Verdict, "4 ≤ max(5, 1)")
	assert.Equal(t, VerdictDiff, Compare(ptr(-100), ptr(-120), tol).Verdict, "relative to |real|")
	zero := Compare(ptr(0), ptr(3), tol)
	assert.Equal(t, VerdictOK, zero.Verdict)
	assert.Nil(t, zero.DiffPct, "no percentage of zero")
	for _, c := range []Cell{Compare(nil, ptr(1), tol), Compare(ptr(1), nil, tol), Compare(nil, nil, tol)} {
		assert.Equal(t, VerdictNA, c.Verdict)
		assert.Nil(t, c.Diff)
	}
}

func TestPhaseMeansAverageEachSideOverTheWindow(t *testing.T) {
	s := Series{Metric: Metric{Tol: Tolerance{Rel: 0.1}}}
	for i, x := range []struct{ real, sim *float64 }{
		{ptr(1), ptr(1)}, {ptr(10), ptr(20)}, {ptr(20), nil}, {nil, ptr(40)}, {ptr(100), ptr(100)},
	} {
		s.Points = append(s.Points, Point{T: time.Duration(i) * 5 * time.Second, Cell: Cell{Real: x.real, Sim: x.sim}})
	}
	c := PhaseMeans(s, 5*time.Second, 20*time.Second) // t = 5, 10, 15
	assert.InDelta(t, 15, *c.Real, 1e-9, "(10 + 20) / 2: a missing sample is left out")
	assert.InDelta(t, 30, *c.Sim, 1e-9, "(20 + 40) / 2")
	assert.Equal(t, VerdictDiff, c.Verdict)
	assert.Equal(t, VerdictNA, PhaseMeans(s, time.Hour, 2*time.Hour).Verdict, "no sample in the window")
}

func TestValueComputesRatesFromCounters(t *testing.T) {
	m := Metric{Key: "in", Vertex: "v"}
	obs := func(job string, at time.Duration, in float64) *fidelitySample {
		return &fidelitySample{JobID: job, At: at, Vertices: map[string]vertexObs{"v": {In: ptr(in)}}}
	}
	assert.InDelta(t, 100, *value(m, obs("a", 15*time.Second, 1500), obs("a", 10*time.Second, 1000)), 1e-9, "Δcount / Δt of the actual times")
	assert.Nil(t, value(m, obs("a", 15*time.Second, 200), obs("a", 10*time.Second, 1000)), "a new attempt's counters")
	assert.Nil(t, value(m, obs("b", 15*time.Second, 1500), obs("a", 10*time.Second, 1000)), "another job")
	assert.Nil(t, value(m, obs("a", 15*time.Second, 1500), nil), "no sample before")
	busy := &fidelitySample{Vertices: map[string]vertexObs{"v": {Busy: ptr(600)}}}
	assert.InDelta(t, 600, *value(Metric{Key: "busy", Vertex: "v"}, busy, nil), 1e-9)
	assert.Nil(t, value(Metric{Key: "busy", Vertex: "w"}, busy, nil), "an unknown vertex")
}

func TestDefaultFidelityPlanRescalesTheBusiestKeyedVertex(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	p, err := DefaultFidelityPlan(s)
	require.NoError(t, err)
	assert.Equal(t, "KeyedProcess: count", p.Vertex)
	assert.Equal(t, 4*time.Minute, p.InPlaceAt)
	assert.Equal(t, 3, p.InPlaceTo)
	assert.Equal(t, 5*time.Minute, p.RestartAt)
	assert.Equal(t, 4, p.RestartTo)
	require.Len(t, p.Phases, 4)
	assert.Equal(t, FidelityPhase{"steady", 150 * time.Second, 180 * time.Second}, p.Phases[0], "the 30 s before the step at 3:00")
	assert.Equal(t, 210*time.Second, p.Phases[1].From)
	assert.Equal(t, 1, spareTaskManagers(s, p, 1), "4 keyed subtasks need 4 slots: one more TaskManager of 2")
}

// The plan carried out on the simulator twice gives the same result, and
// the run measures what the simulator knows: the in-place rescale's
// downtime is its restart time (to the poll), the records it replays are
// the simulator's own count, and a savepoint restart replays nothing.
func TestFidelityRunOnTheSimulatorMeasuresItsModel(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	r, err := Realise(s, Scale{})
	require.NoError(t, err)
	plan, err := DefaultFidelityPlan(r.Scaled)
	require.NoError(t, err)
	tms := r.TaskManagers + spareTaskManagers(r.Scaled, plan, r.TaskManagers)
	a, err := playSimulator(context.Background(), r.Scaled, Flink120, plan, tms)
	require.NoError(t, err)
	b, err := playSimulator(context.Background(), r.Scaled, Flink120, plan, tms)
	require.NoError(t, err)
	f := compareRuns(r.Scaled, Flink120, plan, a, b)
	n := f.Count()
	assert.Zero(t, n[VerdictDiff]+n[VerdictNA], "the simulator against itself")
	require.Len(t, a.samples, int((plan.End-plan.FirstSample)/plan.Every)+1)

	require.Len(t, a.events, 2)
	in, re := a.events[0], a.events[1]
	require.Empty(t, in.Err)
	require.Empty(t, re.Err)
	restart := r.Scaled.Job.Restart.Time
	assert.InDelta(t, restart.Seconds(), in.Outage.Seconds(), 2*plan.Poll.Seconds(), "in-place outage")
	assert.Equal(t, 2, in.From)
	assert.Equal(t, 3, in.To)
	side, err := newSimSide(r.Scaled, Flink120, tms)
	require.NoError(t, err)
	run := newFidelityRun(side, r.Scaled, plan, side.jobID(), nil)
	run.play(context.Background())
	assert.InDelta(t, float64(side.sj.Stats().Reprocessed), *run.events[0].Replayed, 1, "replay measured as the simulator counts it")
	assert.InDelta(t, 0, *re.Replayed, 1, "a savepoint restart replays nothing")
	assert.Greater(t, re.Downtime.Seconds(), (restart + r.Scaled.Job.Restart.TaskManagerStartup).Seconds())
}

func TestFidelityWriteRendersEveryFormat(t *testing.T) {
	tol := Tolerance{Rel: 0.15, Abs: 40, Why: "because"}
	m := Metric{Key: "busy", Vertex: "KeyedProcess: count", Title: "busy time", Unit: "ms/s", Tol: tol}
	f := &Fidelity{
		Scenario: "saturate-step", Flink: "1.20", Date: time.Date(2026, 12, 5, 1, 2, 0, 0, time.UTC), Load: "1.00 2.00 3.00",
		Plan: FidelityPlan{FirstSample: 20 * time.Second, Every: 5 * time.Second, Vertex: "KeyedProcess: count",
			InPlaceAt: 4 * time.Minute, InPlaceTo: 3, RestartAt: 5 * time.Minute, RestartTo: 4,
			Phases: []FidelityPhase{{"steady", 150 * time.Second, 180 * time.Second}}},
		Series: []Series{{Metric: m, Points: []Point{{T: 150 * time.Second, Cell: Compare(ptr(611), ptr(625), tol)}}}},
		Phases: []PhaseRow{{Metric: m.Label(), Unit: m.Unit, Phase: "steady", Cell: Compare(ptr(611), ptr(625), tol)}},
		Events: []EventRow{{Event: "in-place rescale 2 → 3 at 4:00", Quantity: "downtime", Unit: "s",
			Cell: Compare(ptr(3.2), ptr(10.2), Tolerance{Rel: 0.5, Abs: 5})}},
		EventTolerances: map[string]Tolerance{"downtime": {Rel: 0.5, Abs: 5, Why: "load"}},
		Notes:           []string{"real: a note"},
	}
	var table, md, js bytes.Buffer
	require.NoError(t, f.Write(&table, "table"))
	require.NoError(t, f.Write(&md, "markdown"))
	require.NoError(t, f.Write(&js, "json"))
	assert.Error(t, f.Write(&bytes.Buffer{}, "yaml"))

	for _, out := range []string{table.String(), md.String()} {
		for _, want := range []string{"saturate-step on Flink 1.20", "1.00 2.00 3.00", "2026-12-05 01:02 UTC", "steady [2:30, 3:00)",
			"KeyedProcess: count: busy time (ms/s)", "611", "625", "+14", "+2.3 %", "10.20", "+7.00", "DIFF", "±15 % or ±40", "because", "real: a note", "2:30"} {
			assert.Contains(t, out, want)
		}
		assert.Contains(t, out, "1 ok, 1 DIFF, 0 n/a")
	}
	assert.Contains(t, md.String(), "| KeyedProcess: count: busy time (ms/s) | steady | 611 | 625 | +14 | +2.3 % | ok |")
	assert.Contains(t, md.String(), "\n## Phase means\n")
	assert.Regexp(t, `\n\s+KeyedProcess: count: busy time \(ms/s\)\s+steady\s+611\s+625\s+\+14\s+\+2\.3 %\s+ok\n`, table.String())

	var back Fidelity
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, f.Phases, back.Phases)
	assert.Equal(t, f.Series, back.Series)
}
