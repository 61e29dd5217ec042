package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts of the HTML report, drawn with gonum/plot into SVG.

var (
	nowColor   = color.RGBA{R: 160, G: 160, B: 160, A: 255} // grey: the job as it runs
	afterColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}  // blue: at the recommendation
	loadColor  = color.RGBA{R: 255, G: 127, B: 14, A: 255}  // orange: the rate to sustain
	bandColor  = color.RGBA{R: 214, G: 239, B: 214, A: 255} // light green: the target band
	lineColor  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	stayColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255} // red: if nothing changes
)

const (
	chartWidth = 7.5 * vg.Inch
	// labelRunes bounds a vertex label on a chart's axis; the table under
	// the charts has the full names.
	labelRunes = 34
)

// chart is one rendered chart.
type chart struct {
	Title   string
	Caption string
	SVG     []byte
}

// barChart draws one group of horizontal bars per vertex, the first
// vertex at the top, each series in its color, with the legend in the
// upper right corner of an x range padded to leave it room.
func barChart(title, xlabel string, labels []string, series []barSeries, decorate func(p *plot.Plot, n int)) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.X.Min = 0
	n := len(labels)
	rev := make([]string, n)
	for i, l := range labels {
		rev[n-1-i] = truncate(l, labelRunes)
	}
	if decorate != nil {
		decorate(p, n) // under the bars
	}
	width := vg.Points(30 / float64(len(series)))
	maxX := 0.0
	for k, s := range series {
		vals := make(plotter.Values, n)
		for i, v := range s.values {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				v = 0
			}
			vals[n-1-i] = v
			maxX = math.Max(maxX, v)
		}
		b, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		b.Horizontal = true
		b.Color = s.color
		b.LineStyle.Width = 0
		b.Offset = width * vg.Length(float64(k)-float64(len(series)-1)/2) * -1
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	p.NominalY(rev...)
	// Room on the right for the legend.
	if m := math.Max(maxX, p.X.Max); m > 0 {
		p.X.Max = m * 1.5
	} else {
		p.X.Max = 1
	}
	p.Add(plotter.NewGrid())
	sans(p)
	p.X.Tick.Marker = siTicks{}
	return p, nil
}

// sans sets the plot's text in Liberation Sans, which reads better than
// gonum's default serif at these sizes.
func sans(p *plot.Plot) {
	for _, f := range []*font.Font{
		&p.Title.TextStyle.Font, &p.Legend.TextStyle.Font,
		&p.X.Label.TextStyle.Font, &p.X.Tick.Label.Font,
		&p.Y.Label.TextStyle.Font, &p.Y.Tick.Label.Font,
	} {
		f.Variant = "Sans"
	}
}

// siTicks are gonum's default ticks labeled with k, M and G.
type siTicks struct{}

func (siTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = si(ticks[i].Value)
		}
	}
	return ticks
}

func si(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(x/1e9, 'g', 4, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(x/1e6, 'g', 4, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(x/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

type barSeries struct {
	name   string
	color  color.Color
	values []float64
}

// barHeight is a bar chart's height for n vertices.
func barHeight(n int) vg.Length {
	return vg.Length(math.Max(2.6, 0.9+0.5*float64(n))) * vg.Inch
}

func renderSVG(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(dc)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (r Report) labels() []string {
	out := make([]string, len(r.Vertices))
	for i, v := range r.Vertices {
		out[i] = v.label()
	}
	return out
}

// charts draws the report's charts: utilization and parallelism per vertex
// before and after, rates against capacity, and the lag now and as
// predicted. A hold on bad data has no sized figures: only parallelism.
func (r Report) charts() ([]chart, error) {
	if len(r.Vertices) == 0 {
		return nil, nil
	}
	n := len(r.Vertices)
	labels := r.labels()
	var out []chart
	add := func(title, caption string, p *plot.Plot, h vg.Length) error {
		b, err := renderSVG(p, chartWidth, h)
		if err != nil {
			return fmt.Errorf("rendering %q: %w", title, err)
		}
		out = append(out, chart{Title: title, Caption: caption, SVG: b})
		return nil
	}
	col := func(f func(Vertex) float64) []float64 {
		xs := make([]float64, n)
		for i, v := range r.Vertices {
			xs[i] = f(v)
		}
		return xs
	}

	if r.Sized {
		p, err := barChart("Utilization at the target rate", "busiest subtask's busy time (%)", labels, []barSeries{
			{"now", nowColor, col(func(v Vertex) float64 { return 100 * v.UtilizationNow })},
			{"after", afterColor, col(func(v Vertex) float64 { return 100 * v.UtilizationAfter })},
		}, func(p *plot.Plot, n int) {
			if r.Utilization == nil {
				return
			}
			u := r.Utilization
			lo, hi := -0.5, float64(n)-0.5
			band, err := plotter.NewPolygon(plotter.XYs{{X: 100 * u.Min, Y: lo}, {X: 100 * u.Max, Y: lo}, {X: 100 * u.Max, Y: hi}, {X: 100 * u.Min, Y: hi}})
			if err == nil {
				band.Color = bandColor
				band.LineStyle.Width = 0
				p.Add(band)
				p.Legend.Add(fmt.Sprintf("band %.0f–%.0f %%", 100*u.Min, 100*u.Max), band)
			}
			if target, err := plotter.NewLine(plotter.XYs{{X: 100 * u.Target, Y: lo}, {X: 100 * u.Target, Y: hi}}); err == nil {
				target.Color = lineColor
				target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				p.Add(target)
				p.Legend.Add(fmt.Sprintf("target %.0f %%", 100*u.Target), target)
			}
		})
		if err != nil {
			return nil, err
		}
		if err := add("Utilization", "How busy each vertex's busiest subtask would be at its target rate, at the current parallelism (grey) and at the recommended one (blue), against the policy's band.", p, barHeight(n)); err != nil {
			return nil, err
		}
	}

	p, err := barChart("Parallelism", "subtasks", labels, []barSeries{
		{"current", nowColor, col(func(v Vertex) float64 { return float64(v.Current) })},
		{"recommended", afterColor, col(func(v Vertex) float64 { return float64(v.Recommended) })},
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := add("Parallelism", "Subtasks per vertex now (grey) and as recommended (blue).", p, barHeight(n)); err != nil {
		return nil, err
	}

	if r.Sized {
		p, err := barChart("Rates", "records/s", labels, []barSeries{
			{"target rate", loadColor, col(func(v Vertex) float64 { return v.TargetRate })},
			{"capacity now", nowColor, col(func(v Vertex) float64 { return v.TrueRate })},
			{"capacity after", afterColor, col(func(v Vertex) float64 { return v.CapacityAfter })},
		}, nil)
		if err != nil {
			return nil, err
		}
		if err := add("Arrival rate and capacity", "The rate each vertex must sustain (orange; for a source, the arrival rate) against its capacity at 100 % busy now (grey) and at the recommendation (blue).", p, barHeight(n)); err != nil {
			return nil, err
		}
		if p := r.lagPlot(); p != nil {
			if err := add("Lag", "Consumer lag observed (black), and as predicted from now: with the recommendation applied (blue, the restart shaded) and if nothing changes (red, dashed).", p, 3.2*vg.Inch); err != nil {
				return nil, err
			}
		}
	}
	if obs := r.ratePlot(); obs != nil {
		if err := add("Observed rates", "Records per second appended to the source partitions (orange) and read by the job's sources (blue), over the observation window.", obs, 3*vg.Inch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jobRates are the job's arrival rate (summed over sources) and its
// capacity now and after, as the fraction of the arrival rate the slowest
// vertex keeps up with.
func (r Report) jobRates() (arrival, now, after float64) {
	ratioNow, ratioAfter := math.Inf(1), math.Inf(1)
	for _, v := range r.Vertices {
		if v.Source {
			arrival += v.TargetRate
		}
		if v.TargetRate > 0 {
			ratioNow = math.Min(ratioNow, v.TrueRate/v.TargetRate)
			ratioAfter = math.Min(ratioAfter, v.CapacityAfter/v.TargetRate)
		}
	}
	if math.IsInf(ratioNow, 1) {
		return arrival, arrival, arrival
	}
	return arrival, arrival * ratioNow, arrival * ratioAfter
}

// lagProjection is the lag t seconds from now: with the recommendation
// (the backlog grows through the predicted downtime, then drains in the
// predicted catch-up time, or keeps growing when a limit binds) or if
// nothing changes (it grows or drains at the difference between the
// arrival rate and the job's capacity now).
func (r Report) lagProjection(t float64, apply bool) float64 {
	arrival, capNow, capAfter := r.jobRates()
	lag := r.LagRecords
	if !apply || !r.Change {
		return math.Max(0, lag+(arrival-capNow)*t)
	}
	down := seconds(r.PredictedDowntime)
	if t <= down {
		return lag + arrival*t
	}
	peak := lag + arrival*down
	if r.LagGrows {
		return peak + math.Max(0, arrival-capAfter)*(t-down)
	}
	catch := seconds(r.PredictedCatchUp)
	if catch <= 0 {
		if capAfter > arrival {
			return math.Max(0, peak-(capAfter-arrival)*(t-down))
		}
		return peak
	}
	return math.Max(0, peak*(1-(t-down)/catch))
}

func seconds(d string) float64 {
	x, err := time.ParseDuration(d)
	if err != nil {
		return 0
	}
	return x.Seconds()
}

// lagPlot draws the observed lag and its projections over minutes from the
// decision; nil when the job has no lag measurement at all.
func (r Report) lagPlot() *plot.Plot {
	var observed plotter.XYs
	for _, o := range r.Observed {
		if o.LagRecords != nil && !math.IsNaN(*o.LagRecords) {
			observed = append(observed, plotter.XY{X: o.At.Sub(r.At).Minutes(), Y: *o.LagRecords})
		}
	}
	hasSource := false
	for _, v := range r.Vertices {
		hasSource = hasSource || v.Source
	}
	if !hasSource && len(observed) == 0 {
		return nil
	}
	down, catch := seconds(r.PredictedDowntime), seconds(r.PredictedCatchUp)
	horizon := math.Max(10*60, 1.25*(down+catch))
	if r.LagGrows || !r.Change {
		horizon = math.Max(horizon, 30*60)
	}
	horizon = math.Min(horizon, 4*3600)
	const steps = 240
	var stay, apply plotter.XYs
	for i := 0; i <= steps; i++ {
		t := horizon * float64(i) / steps
		stay = append(stay, plotter.XY{X: t / 60, Y: r.lagProjection(t, false)})
		if r.Change {
			apply = append(apply, plotter.XY{X: t / 60, Y: r.lagProjection(t, true)})
		}
	}
	// The restart's corners, exactly.
	if r.Change && down > 0 {
		apply = append(apply, plotter.XY{X: down / 60, Y: r.lagProjection(down, true)})
		slices.SortStableFunc(apply, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	}
	p := plot.New()
	p.Title.Text = "Consumer lag"
	p.X.Label.Text = "minutes from the decision"
	p.Y.Label.Text = "records"
	p.Y.Min = 0
	maxY := 1.0
	for _, s := range []plotter.XYs{observed, stay, apply} {
		for _, xy := range s {
			maxY = math.Max(maxY, xy.Y)
		}
	}
	p.Y.Max = maxY * 1.35 // room for the legend
	if r.Change && down > 0 {
		shade, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: 0}, {X: down / 60, Y: 0}, {X: down / 60, Y: p.Y.Max}, {X: 0, Y: p.Y.Max}})
		if err == nil {
			shade.Color = color.RGBA{R: 222, G: 234, B: 246, A: 255}
			shade.LineStyle.Width = 0
			p.Add(shade)
			p.Legend.Add("restart (predicted)", shade)
		}
	}
	line := func(xy plotter.XYs, c color.Color, name string, dashed bool) {
		if len(xy) < 2 {
			return
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return
		}
		l.Color = c
		l.Width = vg.Points(1.5)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(name, l)
	}
	line(observed, color.Black, "observed", false)
	if r.Change {
		line(apply, afterColor, "recommendation applied", false)
	}
	line(stay, stayColor, "nothing changes", true)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	sans(p)
	p.Y.Tick.Marker = siTicks{}
	return p
}

// ratePlot draws the observed arrival and processing rates; nil without
// at least two points of either.
func (r Report) ratePlot() *plot.Plot {
	var arrival, processed plotter.XYs
	for _, o := range r.Observed {
		x := o.At.Sub(r.At).Minutes()
		if o.ArrivalRate != nil && !math.IsNaN(*o.ArrivalRate) {
			arrival = append(arrival, plotter.XY{X: x, Y: *o.ArrivalRate})
		}
		if o.ProcessedRate != nil && !math.IsNaN(*o.ProcessedRate) {
			processed = append(processed, plotter.XY{X: x, Y: *o.ProcessedRate})
		}
	}
	if len(arrival) < 2 && len(processed) < 2 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "Observed rates"
	p.X.Label.Text = "minutes from the decision"
	p.Y.Label.Text = "records/s"
	p.Y.Min = 0
	top := 1.0
	for _, xy := range append(append(plotter.XYs{}, arrival...), processed...) {
		top = math.Max(top, xy.Y)
	}
	p.Y.Max = top * 1.35 // room for the legend
	for _, s := range []struct {
		xy   plotter.XYs
		c    color.Color
		name string
	}{{arrival, loadColor, "arrival (brokers)"}, {processed, afterColor, "read by the sources (Flink)"}} {
		if len(s.xy) < 2 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			continue
		}
		l.Color = s.c
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	sans(p)
	p.Y.Tick.Marker = siTicks{}
	return p
}
