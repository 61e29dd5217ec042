package scaling

import (
	"math"
	"sort"
	"time"
)

// The load's trend. Every decision records each source's arrival rate in
// history (RecommendationRecord.Arrival); a robust line through the last
// trendWindow of them is the forecast the model sizes with and weighs its
// restarts against.

// trendSpan is how many metrics windows of arrival history the trend is
// fitted to.
const trendSpan = 6

// trendWindow is the span of history the trend is fitted to.
func trendWindow(p *Policy) time.Duration {
	return trendSpan * p.MetricsWindow.Duration
}

// trendSignificance is how many standard errors a slope must be from zero to
// count; each half of the window must show it at one standard error, with the
// same sign.
const trendSignificance = 2

// tpoint is one arrival rate at a time, in seconds relative to now.
type tpoint struct{ t, y float64 }

// trend is a line fitted to a source's arrival rates.
type trend struct {
	// slope in records/s per second and its standard error.
	slope, se float64
	// points and span of the fit.
	points int
	span   time.Duration
	// significant: the slope is trendSignificance standard errors from
	// zero, in both halves of the window, with the same sign.
	significant bool
}

// at is the rate t seconds after now of a source whose rate is level now,
// floored at zero.
func (tr trend) at(level, t float64) float64 {
	if !tr.significant {
		return level
	}
	return math.Max(0, level+tr.slope*t)
}

// fitTrend fits a Theil–Sen line (the median of the pairwise slopes: a few
// wild points do not move it) to pts. The standard error counts the
// residuals' spread (1.4826 × their median absolute deviation, robust) and
// the points' correlation: each is an average over a metrics window, so
// only about one per window is independent. The trend is significant when
// the whole window's slope is at least trendSignificance standard errors
// from zero and each half's is at least one of its own, with the same sign:
// the load has been moving all along and still is. A step is not a trend:
// it shows in one half only, the other is flat. The slope planned with is
// the newer half's, how fast the load moves now (a ramp that slows at its
// slower rate, one that speeds up at its faster), but never more than twice
// the whole window's.
func fitTrend(pts []tpoint, window time.Duration) trend {
	tr, ok := theilSen(pts, window)
	if !ok {
		return tr
	}
	mid := (pts[0].t + pts[len(pts)-1].t) / 2
	var older, newer []tpoint
	for _, p := range pts {
		if p.t <= mid {
			older = append(older, p)
		}
		if p.t >= mid {
			newer = append(newer, p)
		}
	}
	a, okA := theilSen(older, window)
	b, okB := theilSen(newer, window)
	sig := func(x trend, k float64) bool { return math.Abs(x.slope) >= k*x.se && x.slope != 0 }
	same := func(x trend) bool { return math.Signbit(x.slope) == math.Signbit(tr.slope) }
	if !okA || !okB || !sig(tr, trendSignificance) || !sig(a, 1) || !sig(b, 1) || !same(a) || !same(b) {
		return tr
	}
	tr.significant = true
	if math.Abs(b.slope) < 2*math.Abs(tr.slope) {
		tr.slope = b.slope
	} else {
		tr.slope *= 2
	}
	return tr
}

// theilSen fits a line to pts (times in seconds). ok is false with fewer
// than 4 points or a span under one correlation window.
func theilSen(pts []tpoint, window time.Duration) (trend, bool) {
	n := len(pts)
	if n < 4 {
		return trend{points: n}, false
	}
	span := pts[n-1].t - pts[0].t
	tr := trend{points: n, span: time.Duration(span * float64(time.Second))}
	if span <= 0 || span < window.Seconds() {
		return tr, false
	}
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := 0; i < n; i++ {
		for k := i + 1; k < n; k++ {
			if dt := pts[k].t - pts[i].t; dt > 0 {
				slopes = append(slopes, (pts[k].y-pts[i].y)/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return tr, false
	}
	tr.slope = median(slopes)
	res := make([]float64, n)
	var tmean float64
	for i, p := range pts {
		res[i] = p.y - tr.slope*p.t
		tmean += p.t
	}
	tmean /= float64(n)
	icpt := median(append([]float64(nil), res...))
	var sxx float64
	for i, p := range pts {
		res[i] = math.Abs(res[i] - icpt)
		sxx += (p.t - tmean) * (p.t - tmean)
	}
	sigma := 1.4826 * median(res)
	// About one independent point per correlation window.
	nEff := math.Max(2, math.Min(float64(n), span/window.Seconds()+1))
	tr.se = sigma / math.Sqrt(sxx) * math.Sqrt(float64(n)/nEff)
	return tr, true
}

// median of xs; it reorders xs.
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// arrivalSeries is a source's arrival rates in history within the trend
// window before now, oldest first, then now's.
func (h *History) arrivalSeries(id string, now time.Time, window time.Duration, current float64) []tpoint {
	start := now.Add(-window)
	var pts []tpoint
	for _, r := range h.Recommendations {
		y, ok := r.Arrival[id]
		if !ok || r.At.Before(start) || !r.At.Before(now) || math.IsNaN(y) || math.IsInf(y, 0) || y < 0 {
			continue
		}
		pts = append(pts, tpoint{t: r.At.Sub(now).Seconds(), y: y})
	}
	sort.SliceStable(pts, func(i, k int) bool { return pts[i].t < pts[k].t })
	return append(pts, tpoint{t: 0, y: current})
}
