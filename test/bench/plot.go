package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart geometry: one SVG of about 10in × 12in, four panels stacked under
// the scenario's title, each with its legend in a margin on the right so
// that it never hides a line.
const (
	chartWidth   = 10 * vg.Inch
	chartHeight  = 12 * vg.Inch
	titleHeight  = 0.45 * vg.Inch
	legendMargin = 1.7 * vg.Inch
	// maxLinePoints bounds the points of a continuous series: longer ones
	// are reduced to each bucket's extremes, which look the same at this
	// width and keep the SVG small.
	maxLinePoints = 1600
	// capacityCap × the peak load is the most the load panel shows.
	capacityCap = 3.0
)

// Panel titles, in order from the top.
const (
	panelLoad        = "Load and capacity (records/s)"
	panelSlots       = "Slots held"
	panelLag         = "Consumer lag (seconds)"
	panelParallelism = "Parallelism (sum over vertices)"
)

// policyOrder is the order policies are drawn and listed in; others follow
// by name.
var policyOrder = []string{"flinkscale", "flink-operator", "keda-lag", "static", OracleName}

var policyColors = map[string]color.Color{
	"flinkscale":     color.RGBA{R: 31, G: 119, B: 180, A: 255}, // blue
	"flink-operator": color.RGBA{R: 255, G: 127, B: 14, A: 255}, // orange
	"keda-lag":       color.RGBA{R: 44, G: 160, B: 44, A: 255},  // green
	"static":         color.RGBA{R: 110, G: 110, B: 110, A: 255},
	OracleName:       color.Black,
}

// extraColors are given, in turn, to policies without a fixed color.
var extraColors = []color.Color{
	color.RGBA{R: 148, G: 103, B: 189, A: 255}, // purple
	color.RGBA{R: 140, G: 86, B: 75, A: 255},   // brown
	color.RGBA{R: 227, G: 119, B: 194, A: 255}, // pink
	color.RGBA{R: 188, G: 189, B: 34, A: 255},  // olive
	color.RGBA{R: 23, G: 190, B: 207, A: 255},  // cyan
}

var (
	loadColor = color.RGBA{R: 195, G: 195, B: 195, A: 255}
	sloColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	gridColor = color.RGBA{R: 232, G: 232, B: 232, A: 255}
)

// PlotAll writes one chart per scenario of results into dir (see
// PlotScenario), scenarios in name order, and returns the files' paths.
// slo gives each scenario's lag SLO (a missing one draws no SLO line).
func PlotAll(dir string, slo map[string]time.Duration, results []*Result) ([]string, error) {
	byScenario := map[string][]*Result{}
	for _, r := range results {
		if r == nil {
			continue
		}
		byScenario[r.Scenario] = append(byScenario[r.Scenario], r)
	}
	names := make([]string, 0, len(byScenario))
	for name := range byScenario {
		names = append(names, name)
	}
	slices.Sort(names)
	paths := make([]string, 0, len(names))
	for _, name := range names {
		path, err := PlotScenario(dir, name, slo[name], byScenario[name])
		if err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// PlotScenario writes one self-contained SVG, <dir>/<scenario>.svg (dir is
// created if missing), with four panels over a shared time axis in hours
// since the start: load and each policy's capacity, slots held (each
// rescale marked by a tick in the policy's color under the zero line), the
// consumer lag in seconds with the SLO (when slo > 0) as a dashed line, and
// the parallelism summed over vertices. results holds one Result per policy
// of that scenario, in any order; those with an empty timeline are skipped.
// It returns the file's path.
func PlotScenario(dir string, scenario string, slo time.Duration, results []*Result) (string, error) {
	runs := make([]*Result, 0, len(results))
	for _, r := range results {
		if r != nil && len(r.Timeline) > 0 {
			runs = append(runs, r)
		}
	}
	slices.SortStableFunc(runs, func(a, b *Result) int {
		if ra, rb := policyRank(a.Policy), policyRank(b.Policy); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Policy, b.Policy)
	})
	colors := assignColors(runs)

	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		for _, p := range r.Timeline {
			h := hours(p.T)
			xmin, xmax = math.Min(xmin, h), math.Max(xmax, h)
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}

	panels := []*panel{
		loadPanel(runs, colors),
		slotsPanel(runs, colors),
		lagPanel(runs, colors, slo, xmin, xmax),
		parallelismPanel(runs, colors),
	}
	for _, p := range panels {
		p.plot.X.Min, p.plot.X.Max = xmin, xmax
		p.plot.X.Tick.Marker = hourTicks{}
	}
	panels[len(panels)-1].plot.X.Label.Text = "hours since start"

	canvas := vgsvg.New(chartWidth, chartHeight)
	dc := draw.New(canvas)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	title := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 16),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: plot.DefaultTextHandler,
	}
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - titleHeight/2}, scenario)

	body := draw.Crop(dc, 0, -legendMargin, 0, -titleHeight)
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p.plot}
	}
	tiles := draw.Tiles{
		Rows: len(panels), Cols: 1,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(6), PadRight: vg.Points(6),
		PadY: vg.Points(10),
	}
	cells := plot.Align(grid, tiles, body)
	for i, p := range panels {
		cell := cells[i][0]
		p.plot.Draw(cell)
		// The legend sits in the right margin, level with its panel's data
		// area (below the panel's title).
		data := p.plot.DataCanvas(cell)
		lc := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: cell.Max.X + vg.Points(8), Y: data.Min.Y},
			Max: vg.Point{X: dc.Max.X - vg.Points(4), Y: data.Max.Y},
		}}
		p.legend.Draw(lc)
	}

	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("rendering chart of %s: %w", scenario, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("chart of %s: %w", scenario, err)
	}
	path := filepath.Join(dir, fileName(scenario)+".svg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("chart of %s: %w", scenario, err)
	}
	return path, nil
}

// panel is one plot and its legend, drawn apart from it.
type panel struct {
	plot   *plot.Plot
	legend plot.Legend
}

func newPanel(title, ylabel string) *panel {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(4)
	p.Y.Label.Text = ylabel
	p.Y.Tick.Marker = valueTicks{}
	p.X.Tick.Label.Font.Size = 9
	p.Y.Tick.Label.Font.Size = 9
	p.Y.Label.TextStyle.Font.Size = 10
	p.X.Label.TextStyle.Font.Size = 10
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	p.Add(g)
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = 10
	l.Padding = vg.Points(2)
	return &panel{plot: p, legend: l}
}

// finish sets the panel's vertical range: from zero (every quantity here
// is non-negative), with a non-empty span.
func (p *panel) finish() {
	if math.IsInf(p.plot.Y.Max, 0) || p.plot.Y.Max <= 0 {
		p.plot.Y.Max = 1
	}
	p.plot.Y.Min = 0
}

// addLine adds xys as a line in policy's style (the oracle dashed) with a
// legend entry; empty series are skipped.
func (p *panel) addLine(policy string, c color.Color, xys plotter.XYs, step plotter.StepKind) *plotter.Line {
	line, err := plotter.NewLine(xys)
	if err != nil || len(xys) == 0 {
		return nil
	}
	line.StepStyle = step
	line.Color = c
	line.Width = vg.Points(1.3)
	if policy == OracleName {
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	p.plot.Add(line)
	return line
}

func loadPanel(runs []*Result, colors map[*Result]color.Color) *panel {
	p := newPanel(panelLoad, "records/s")
	peakLoad := 0.0
	if len(runs) > 0 {
		// The load is the same for every policy: take the first run's
		// (a policy's rather than the oracle's, whose step may differ).
		src := runs[0]
		for _, r := range runs {
			if r.Policy != OracleName {
				src = r
				break
			}
		}
		xys := reduce(series(src.Timeline, func(pt Point) float64 { return pt.Load }, 0))
		for _, xy := range xys {
			peakLoad = math.Max(peakLoad, xy.Y)
		}
		if line, err := plotter.NewLine(xys); err == nil && len(xys) > 0 {
			line.Color = loadColor
			line.Width = vg.Points(4)
			p.plot.Add(line)
			p.legend.Add("load", line)
		}
	}
	for _, r := range runs {
		xys := reduce(series(r.Timeline, func(pt Point) float64 { return pt.Capacity }, 0))
		if line := p.addLine(r.Policy, colors[r], xys, plotter.NoStep); line != nil {
			p.legend.Add(r.Policy, line)
		}
	}
	p.finish()
	// A policy holding many times the capacity it needs would flatten the
	// load: the axis stops at capacityCap × the peak load, and lines above
	// it are cut at the top.
	if top := capacityCap * peakLoad; peakLoad > 0 && p.plot.Y.Max > top {
		p.plot.Y.Max = top
		p.plot.Y.Label.Text = fmt.Sprintf("records/s (cut at %g× peak load)", capacityCap)
	}
	return p
}

func slotsPanel(runs []*Result, colors map[*Result]color.Color) *panel {
	p := newPanel(panelSlots, "slots")
	var ticks []*rescaleTicks
	for _, r := range runs {
		xys := steps(series(r.Timeline, func(pt Point) float64 { return float64(pt.Slots) }, 0))
		line := p.addLine(r.Policy, colors[r], xys, plotter.PostStep)
		if line == nil {
			continue
		}
		thumbs := []plot.Thumbnailer{line}
		if len(r.Events) > 0 {
			t := &rescaleTicks{color: colors[r]}
			for _, e := range r.Events {
				t.at = append(t.at, hours(e.T))
				t.failed = append(t.failed, e.Failed)
			}
			ticks = append(ticks, t)
			thumbs = append(thumbs, t)
		}
		p.legend.Add(r.Policy, thumbs...)
	}
	p.finish()
	if len(ticks) > 0 {
		// The ticks go in a band under zero, one row per policy with
		// rescales; the axis shows no negative ticks.
		rows := float64(len(ticks))
		frac := math.Min(0.35, 0.06*rows+0.03)
		p.plot.Y.Min = -p.plot.Y.Max * frac / (1 - frac)
		p.plot.Y.Tick.Marker = valueTicks{nonNegative: true}
		for i, t := range ticks {
			t.row, t.rows = i, len(ticks)
			p.plot.Add(t)
		}
		p.legend.Add("rescale (× failed)", &rescaleTicks{color: color.Black})
	}
	return p
}

func lagPanel(runs []*Result, colors map[*Result]color.Color, slo time.Duration, xmin, xmax float64) *panel {
	p := newPanel(panelLag, "seconds")
	// +Inf (a backlog with no arrivals) is drawn at the highest finite lag.
	ceiling := slo.Seconds()
	for _, r := range runs {
		for _, pt := range r.Timeline {
			if v := pt.LagSeconds; !math.IsInf(v, 0) && !math.IsNaN(v) {
				ceiling = math.Max(ceiling, v)
			}
		}
	}
	for _, r := range runs {
		xys := reduce(series(r.Timeline, func(pt Point) float64 { return pt.LagSeconds }, ceiling))
		if line := p.addLine(r.Policy, colors[r], xys, plotter.NoStep); line != nil {
			p.legend.Add(r.Policy, line)
		}
	}
	if slo > 0 {
		line, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: slo.Seconds()}, {X: xmax, Y: slo.Seconds()}})
		if err == nil {
			line.Color = sloColor
			line.Width = vg.Points(1)
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
			p.plot.Add(line)
			p.legend.Add("SLO "+slo.String(), line)
		}
	}
	p.finish()
	return p
}

func parallelismPanel(runs []*Result, colors map[*Result]color.Color) *panel {
	p := newPanel(panelParallelism, "subtasks")
	for _, r := range runs {
		xys := steps(series(r.Timeline, func(pt Point) float64 {
			sum := 0
			for _, n := range pt.Parallelism {
				sum += n
			}
			return float64(sum)
		}, 0))
		if line := p.addLine(r.Policy, colors[r], xys, plotter.PostStep); line != nil {
			p.legend.Add(r.Policy, line)
		}
	}
	p.finish()
	return p
}

// rescaleTicks draws a policy's rescales as short vertical ticks at their
// start, in row row of rows in the band between the data area's bottom and
// y = 0; a failed rescale gets a cross on top.
type rescaleTicks struct {
	color     color.Color
	at        []float64
	failed    []bool
	row, rows int
}

func (t *rescaleTicks) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	band := trY(0) - c.Min.Y
	if band <= 0 || t.rows == 0 {
		return
	}
	h := band / vg.Length(t.rows)
	y0 := c.Min.Y + vg.Length(t.rows-1-t.row)*h + h*0.15
	y1 := y0 + h*0.7
	sty := draw.LineStyle{Color: t.color, Width: vg.Points(1.5)}
	cross := draw.GlyphStyle{Color: t.color, Radius: vg.Points(2.5), Shape: draw.CrossGlyph{}}
	for i, x := range t.at {
		px := trX(x)
		if !c.ContainsX(px) {
			continue
		}
		c.StrokeLine2(sty, px, y0, px, y1)
		if t.failed[i] {
			c.DrawGlyphNoClip(cross, vg.Point{X: px, Y: y1})
		}
	}
}

func (t *rescaleTicks) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(draw.LineStyle{Color: t.color, Width: vg.Points(1.2)}, x, c.Min.Y, x, c.Max.Y)
}

// valueTicks is the default tick marker with compact labels (1.5k, 2M),
// and, when nonNegative, without the ticks under zero (the rescale band).
type valueTicks struct{ nonNegative bool }

func (v valueTicks) Ticks(lo, hi float64) []plot.Tick {
	if v.nonNegative {
		lo = math.Max(lo, 0)
	}
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	out := ticks[:0]
	for _, t := range ticks {
		if t.Value < lo {
			continue
		}
		if t.Label != "" {
			t.Label = compact(t.Value)
		}
		out = append(out, t)
	}
	return out
}

// compact writes v with at most 4 significant digits and a k or M suffix
// for thousands and millions.
func compact(v float64) string {
	suffix := ""
	switch a := math.Abs(v); {
	case a >= 1e9:
		v, suffix = v/1e9, "G"
	case a >= 1e6:
		v, suffix = v/1e6, "M"
	case a >= 1e3:
		v, suffix = v/1e3, "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + suffix
}

// hourTicks marks the time axis (hours) at a round step in minutes or
// hours giving at most about a dozen labels ("h:mm" under an hour's
// step), with an unlabelled tick in between.
type hourTicks struct{}

func (hourTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	steps := []float64{1. / 60, 2. / 60, 5. / 60, 10. / 60, 15. / 60, 0.5, 1, 2, 3, 6, 12, 24, 48, 168}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 12 {
			step = s
			break
		}
	}
	for span/step > 12 { // beyond weeks
		step *= 2
	}
	var ticks []plot.Tick
	minor := step / 2
	for i := math.Ceil(lo / minor); i*minor <= hi+1e-9*span; i++ {
		v := i * minor
		t := plot.Tick{Value: v}
		if math.Mod(i, 2) == 0 {
			t.Label = hourLabel(v, step < 1)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// hourLabel writes v hours as "h:mm" when clock is set, else as a
// number.
func hourLabel(v float64, clock bool) string {
	if !clock {
		return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
	}
	m := int64(math.Round(v * 60))
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d:%02d", sign, m/60, m%60)
}

// series is f over the timeline in hours since the start. NaN and -Inf are
// skipped; +Inf is drawn at ceiling when it is positive and finite, and
// skipped otherwise.
func series(tl []Point, f func(Point) float64, ceiling float64) plotter.XYs {
	xys := make(plotter.XYs, 0, len(tl))
	for _, pt := range tl {
		x, y := hours(pt.T), f(pt)
		switch {
		case math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, -1):
			continue
		case math.IsInf(y, 1):
			if ceiling <= 0 || math.IsInf(ceiling, 0) || math.IsNaN(ceiling) {
				continue
			}
			y = ceiling
		}
		xys = append(xys, plotter.XY{X: x, Y: y})
	}
	return xys
}

// steps drops the points of a step series (drawn post-step) that repeat
// the previous value, keeping the last: the same line, fewer points.
func steps(xys plotter.XYs) plotter.XYs {
	if len(xys) < 3 {
		return xys
	}
	out := plotter.XYs{xys[0]}
	for i := 1; i < len(xys)-1; i++ {
		if xys[i].Y != out[len(out)-1].Y {
			out = append(out, xys[i])
		}
	}
	return append(out, xys[len(xys)-1])
}

// reduce thins a continuous series: points inside a flat run are dropped,
// and a series still longer than maxLinePoints keeps, per bucket, its
// lowest and highest points in time order.
func reduce(xys plotter.XYs) plotter.XYs {
	if len(xys) < 3 {
		return xys
	}
	flat := plotter.XYs{xys[0]}
	for i := 1; i < len(xys)-1; i++ {
		if xys[i].Y != xys[i-1].Y || xys[i].Y != xys[i+1].Y {
			flat = append(flat, xys[i])
		}
	}
	flat = append(flat, xys[len(xys)-1])
	if len(flat) <= maxLinePoints {
		return flat
	}
	buckets := maxLinePoints / 2
	out := make(plotter.XYs, 0, maxLinePoints+2)
	out = append(out, flat[0])
	inner := flat[1 : len(flat)-1]
	for b := range buckets {
		lo, hi := b*len(inner)/buckets, (b+1)*len(inner)/buckets
		if lo >= hi {
			continue
		}
		imin, imax := lo, lo
		for i := lo; i < hi; i++ {
			if inner[i].Y < inner[imin].Y {
				imin = i
			}
			if inner[i].Y > inner[imax].Y {
				imax = i
			}
		}
		first, second := min(imin, imax), max(imin, imax)
		out = append(out, inner[first])
		if second != first {
			out = append(out, inner[second])
		}
	}
	return append(out, flat[len(flat)-1])
}

func hours(d time.Duration) float64 { return d.Hours() }

func policyRank(name string) int {
	if i := slices.Index(policyOrder, name); i >= 0 {
		return i
	}
	return len(policyOrder)
}

// assignColors gives each run its policy's color, and policies without
// one the extra colors in turn (runs are sorted, so it is stable).
func assignColors(runs []*Result) map[*Result]color.Color {
	colors := make(map[*Result]color.Color, len(runs))
	extra := map[string]color.Color{}
	for _, r := range runs {
		if c, ok := policyColors[r.Policy]; ok {
			colors[r] = c
			continue
		}
		c, ok := extra[r.Policy]
		if !ok {
			c = extraColors[len(extra)%len(extraColors)]
			extra[r.Policy] = c
		}
		colors[r] = c
	}
	return colors
}

// fileName makes a scenario name safe as a file name: anything but
// letters, digits, '.', '_' and '-' becomes '_'.
func fileName(scenario string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, scenario)
	if strings.Trim(name, ".") == "" {
		name = "scenario" + name
	}
	return name
}
