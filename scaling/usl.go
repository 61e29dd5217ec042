package scaling

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// point is one observation of a vertex: its whole-vertex true processing rate
// x at parallelism n.
type point struct{ n, x float64 }

// usl is the shape of a Universal Scalability Law curve,
//
//	X(N) = λ·N / (1 + σ(N−1) + κ·N(N−1)),
//
// with contention σ ≥ 0 and coherency κ ≥ 0, so that it never predicts a
// super-linear speed-up. λ is not kept: the model anchors the curve at the
// rate measured now (see efficiency), so that a drift in per-record cost since
// the history was taken does not bias the sizing.
type usl struct {
	sigma, kappa float64
}

// linear is the curve used without enough history.
var linear = usl{}

// efficiency is X(N)/(λN): the share of a linear speed-up the curve keeps at N.
func (u usl) efficiency(n int) float64 {
	f := float64(n)
	return 1 / (1 + u.sigma*(f-1) + u.kappa*f*(f-1))
}

// peak is the parallelism beyond which the curve predicts less throughput,
// √((1−σ)/κ), or +Inf when it never turns down.
func (u usl) peak() float64 {
	if u.kappa <= 0 || u.sigma >= 1 {
		if u.sigma >= 1 {
			return 1
		}
		return math.Inf(1)
	}
	return math.Sqrt((1 - u.sigma) / u.kappa)
}

// minUSLParallelisms is how many distinct parallelisms history must hold for
// a vertex before a curve is fitted (three points pin down σ and κ).
const minUSLParallelisms = 3

// fitUSL fits σ and κ to observations. Dividing the USL by X and rearranging
// gives a model linear in its coefficients,
//
//	N/X = a + b·(N−1) + c·N(N−1),  a = 1/λ, b = σ/λ, c = κ/λ,
//
// solved by least squares on relative residuals (each row divided by its
// N/X). The coefficients must be non-negative, and with three unknowns the
// exact non-negative solution is the best feasible one among the four
// subsets {a,b,c}, {a,b}, {a,c}, {a}. ok is false with fewer than
// minUSLParallelisms distinct parallelisms.
func fitUSL(pts []point) (usl, bool) {
	distinct := map[float64]bool{}
	for _, p := range pts {
		if p.n >= 1 && p.x > 0 && !math.IsInf(p.x, 0) && !math.IsNaN(p.x) {
			distinct[p.n] = true
		}
	}
	if len(distinct) < minUSLParallelisms {
		return linear, false
	}
	var rows [][3]float64
	var ys []float64
	for _, p := range pts {
		if !distinct[p.n] || !(p.x > 0) || math.IsInf(p.x, 0) {
			continue
		}
		y := p.n / p.x
		rows = append(rows, [3]float64{1 / y, (p.n - 1) / y, p.n * (p.n - 1) / y})
		ys = append(ys, 1) // y/y
	}
	best, bestRes := [3]float64{}, math.Inf(1)
	for i, cols := range [][]int{{0, 1, 2}, {0, 1}, {0, 2}, {0}} {
		coef, res, ok := lstsq(rows, ys, cols)
		if !ok || coef[0] <= 0 || coef[1] < 0 || coef[2] < 0 {
			continue
		}
		if i == 0 {
			// The unconstrained optimum is feasible, so it is the answer.
			best, bestRes = coef, res
			break
		}
		if res < bestRes-1e-12 {
			best, bestRes = coef, res
		}
	}
	if math.IsInf(bestRes, 1) {
		return linear, false
	}
	return usl{sigma: best[1] / best[0], kappa: best[2] / best[0]}, true
}

// lstsq solves the least-squares problem restricted to the given columns and
// returns the full coefficient vector (zero outside cols) and the residual
// sum of squares. With at most three unknowns the normal equations are the
// cheap way; columns are scaled to unit size first so that N(N−1) next to 1
// does not ruin their conditioning, and a matrix that is not positive
// definite (collinear columns) is reported as no solution.
func lstsq(rows [][3]float64, ys []float64, cols []int) ([3]float64, float64, bool) {
	k := len(cols)
	if len(rows) < k {
		return [3]float64{}, 0, false
	}
	var scale [3]float64
	for _, r := range rows {
		for _, c := range cols {
			scale[c] = math.Max(scale[c], math.Abs(r[c]))
		}
	}
	// Normal equations AᵀA·x = Aᵀy, solved by LAPACK's Cholesky (Potrf,
	// Potrs): a 3×3 system needs no condition estimate, which is what
	// mat.Cholesky would spend most of its time on.
	ata := blas64.Symmetric{N: k, Stride: k, Uplo: blas.Upper, Data: make([]float64, k*k)}
	aty := blas64.General{Rows: k, Cols: 1, Stride: 1, Data: make([]float64, k)}
	for i, r := range rows {
		for a, ca := range cols {
			va := r[ca] / scale[ca]
			aty.Data[a] += va * ys[i]
			for b := a; b < k; b++ {
				cb := cols[b]
				ata.Data[a*k+b] += va * r[cb] / scale[cb]
			}
		}
	}
	t, ok := lapack64.Potrf(ata)
	if !ok {
		return [3]float64{}, 0, false
	}
	lapack64.Potrs(t, aty)
	var coef [3]float64
	for j, c := range cols {
		v := aty.Data[j] / scale[c]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return [3]float64{}, 0, false
		}
		coef[c] = v
	}
	res := 0.0
	for i, r := range rows {
		d := coef[0]*r[0] + coef[1]*r[1] + coef[2]*r[2] - ys[i]
		res += d * d
	}
	return coef, res, true
}

// distinctParallelisms counts the different parallelisms among points.
func distinctParallelisms(pts []point) []int {
	set := map[int]bool{}
	for _, p := range pts {
		set[int(p.n)] = true
	}
	out := make([]int, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
