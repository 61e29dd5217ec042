package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticResult is a 100-point timeline: a load stepping up, a policy
// following it, two rescales (the second failed), and when inf is set a
// +Inf lag once the load drops to zero.
func syntheticResult(scenario, policy string, scale float64, inf bool) *Result {
	r := &Result{Scenario: scenario, Policy: policy, Duration: 100 * 30 * time.Second}
	for i := range 100 {
		load := 1000.0
		if i >= 40 {
			load = 3000
		}
		if inf && i >= 90 {
			load = 0
		}
		slots := 4
		if i >= 50 {
			slots = 12
		}
		lagS := math.Max(0, float64(i-40)*scale)
		if inf && i == 95 {
			lagS = math.Inf(1)
		}
		r.Timeline = append(r.Timeline, Point{
			T:           time.Duration(i) * 30 * time.Second,
			Load:        load,
			Capacity:    float64(slots) * 300 * scale,
			Slots:       slots,
			Cores:       float64(slots),
			Parallelism: map[string]int{"source": slots, "sink": slots / 2},
			Lag:         lagS * load,
			LagSeconds:  lagS,
		})
	}
	r.Events = []Event{
		{T: 20 * time.Minute, Completed: 22 * time.Minute, From: map[string]int{"source": 4}, To: map[string]int{"source": 12}},
		{T: 35 * time.Minute, Failed: true},
	}
	return r
}

func syntheticResults(scenario string) []*Result {
	return []*Result{
		syntheticResult(scenario, OracleName, 0.5, false),
		syntheticResult(scenario, "keda-lag", 2, true),
		syntheticResult(scenario, "flinkscale", 1, false),
		{Scenario: scenario, Policy: "static"}, // empty timeline: skipped
	}
}

func checkSVG(t *testing.T, path string, want ...string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.HasPrefix(s, "<?xml") && !strings.HasPrefix(s, "<svg") {
		t.Errorf("%s starts with %q, want an SVG document", path, s[:min(len(s), 40)])
	}
	dec := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("%s is not valid XML: %v", path, err)
			}
			break
		}
	}
	if len(data) <= 10<<10 {
		t.Errorf("%s is %d bytes, want > 10 KB", path, len(data))
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", path, w)
		}
	}
	return s
}

func TestPlotScenario(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts", "nested")
	path, err := PlotScenario(dir, "step-up-3x", 30*time.Second, syntheticResults("step-up-3x"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "step-up-3x.svg"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	s := checkSVG(t, path, "step-up-3x", "flinkscale", "keda-lag", OracleName, "load", "SLO 30s",
		panelLoad, panelSlots, panelLag, panelParallelism, "hours since start")
	if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Errorf("%s holds NaN or Inf coordinates", path)
	}
}

func TestPlotScenarioEdgeCases(t *testing.T) {
	dir := t.TempDir()
	// No timeline at all, an unknown policy, and a lag that is only +Inf.
	odd := syntheticResult("odd/name", "my-policy", 1, false)
	for i := range odd.Timeline {
		odd.Timeline[i].LagSeconds = math.Inf(1)
		odd.Timeline[i].Capacity = math.NaN()
	}
	for _, results := range [][]*Result{nil, {nil, {Policy: "static"}}, {odd}} {
		path, err := PlotScenario(dir, "odd/name", 0, results)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(path) != dir {
			t.Errorf("path %s escapes %s", path, dir)
		}
		checkSVG(t, path, panelLoad, panelParallelism)
	}
}

func TestPlotCapacityCut(t *testing.T) {
	results := syntheticResults("cut")
	for i := range results[1].Timeline {
		results[1].Timeline[i].Capacity = 1e6 // keda-lag: 300× the load
	}
	path, err := PlotScenario(t.TempDir(), "cut", 0, results)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, path, "cut at 3× peak load")
}

func TestPlotAll(t *testing.T) {
	dir := t.TempDir()
	results := append(syntheticResults("b-scenario"), syntheticResults("a-scenario")...)
	paths, err := PlotAll(dir, map[string]time.Duration{"a-scenario": time.Minute}, results)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a-scenario.svg"), filepath.Join(dir, "b-scenario.svg")}
	if len(paths) != len(want) || paths[0] != want[0] || paths[1] != want[1] {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	checkSVG(t, paths[0], "a-scenario", "SLO 1m0s")
	if s := checkSVG(t, paths[1], "b-scenario"); strings.Contains(s, "SLO") {
		t.Errorf("%s draws an SLO it was not given", paths[1])
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("%d files in %s, want 2", len(entries), dir)
	}
}

func TestPlotUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PlotScenario(filepath.Join(file, "charts"), "s", time.Minute, syntheticResults("s")); err == nil {
		t.Error("PlotScenario under a regular file: no error")
	}
	if _, err := PlotAll(file, nil, syntheticResults("s")); err == nil {
		t.Error("PlotAll into a regular file: no error")
	}
}

func TestPlotReduce(t *testing.T) {
	var tl []Point
	for i := range 20000 {
		tl = append(tl, Point{T: time.Duration(i) * time.Second, Load: float64(i % 7), Slots: i / 5000})
	}
	load := reduce(series(tl, func(p Point) float64 { return p.Load }, 0))
	if len(load) > maxLinePoints+2 {
		t.Errorf("reduced to %d points, want ≤ %d", len(load), maxLinePoints+2)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range load {
		lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
	}
	if lo != 0 || hi != 6 {
		t.Errorf("reduced range [%v, %v], want [0, 6]", lo, hi)
	}
	slots := steps(series(tl, func(p Point) float64 { return float64(p.Slots) }, 0))
	if len(slots) != 5 {
		t.Errorf("step series has %d points, want 5 (4 levels and the end): %v", len(slots), slots)
	}
}
