package java

import (
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJavaDoubleVectors(t *testing.T) {
	point1, point2 := 0.1, 0.2 // variables: Go folds constant arithmetic exactly
	cases := []struct {
		in   float64
		want string
	}{
		// The brief's vectors.
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{734, "734.0"},
		{15234.55, "15234.55"},
		{12345678, "1.2345678E7"},
		{1e7, "1.0E7"},
		{9999999, "9999999.0"},
		{0.001, "0.001"},
		{1e-4, "1.0E-4"},
		{52428800, "5.24288E7"},
		{45231007, "4.5231007E7"},
		{1e21, "1.0E21"},
		{math.MaxFloat64, "1.7976931348623157E308"},
		{math.SmallestNonzeroFloat64, "4.9E-324"},
		// Plain range edges.
		{math.Nextafter(1e7, 0), "9999999.999999998"},
		{math.Nextafter(0.001, 0), "9.999999999999998E-4"},
		{math.Nextafter(0.001, 1), "0.0010000000000000002"},
		{0.002, "0.002"},
		{1e-3 * 5, "0.005"},
		{1234567, "1234567.0"},
		{100, "100.0"},
		{12345, "12345.0"},
		{123456.789, "123456.789"},
		{0.5, "0.5"},
		{0.1, "0.1"},
		{0.3, "0.3"},
		{point1 + point2, "0.30000000000000004"},
		{1.0 / 3, "0.3333333333333333"},
		{2.0 / 3, "0.6666666666666666"},
		{4.35, "4.35"},
		{-1.5, "-1.5"},
		{-734, "-734.0"},
		{-12345678, "-1.2345678E7"},
		// Scientific notation.
		{1e-5, "1.0E-5"},
		{2.5e-4, "2.5E-4"},
		{1e22, "1.0E22"},
		{1e23, "1.0E23"},
		{2e23, "2.0E23"},
		{8.41e21, "8.41E21"},
		{1e100, "1.0E100"},
		{1e-100, "1.0E-100"},
		{2147483647, "2.147483647E9"},
		{math.MaxInt64, "9.223372036854776E18"},
		{1776076199900, "1.7760761999E12"},
		{536870912, "5.36870912E8"},
		{2.2250738585072014e-308, "2.2250738585072014E-308"},
		// Java keeps two digits when one would do and picks the closest.
		{2 * math.SmallestNonzeroFloat64, "9.9E-324"},
		{3 * math.SmallestNonzeroFloat64, "1.5E-323"},
		// Non-finite, Prometheus spelling.
		{math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, DoubleToString(c.in), "DoubleToString(%v)", c.in)
	}
}

func TestJavaDoubleToStringNonFinite(t *testing.T) {
	assert.Equal(t, "NaN", DoubleToString(math.NaN()))
	assert.Equal(t, "Infinity", DoubleToString(math.Inf(1)))
	assert.Equal(t, "-Infinity", DoubleToString(math.Inf(-1)))
	assert.Equal(t, "734.0", DoubleToString(734))
}

var (
	plainForm = regexp.MustCompile(`^-?(0|[1-9][0-9]*)\.[0-9]+$`)
	sciForm   = regexp.MustCompile(`^-?[1-9]\.[0-9]+E-?[1-9][0-9]*$`)
)

// checkJavaDouble checks the properties of Double.toString on one finite x.
func checkJavaDouble(t *testing.T, x float64) {
	s := DoubleToString(x)
	y, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, s)
	require.Equal(t, math.Float64bits(x), math.Float64bits(y), "%v → %s → %v", x, s, y)
	if a := math.Abs(x); a >= 1e-3 && a < 1e7 || x == 0 {
		require.Regexp(t, plainForm, s, "%v", x)
	} else {
		require.Regexp(t, sciForm, s, "%v", x)
	}
	// Digits: Go's shortest count, or two where Go needs one.
	mant, _, _ := strings.Cut(strings.TrimPrefix(s, "-"), "E")
	digits := strings.Trim(strings.Replace(mant, ".", "", 1), "0")
	short := strings.Trim(strings.Replace(strings.Split(strconv.FormatFloat(math.Abs(x), 'e', -1, 64), "e")[0], ".", "", 1), "0")
	if x == 0 {
		return
	}
	if len(short) == 1 {
		require.LessOrEqual(t, len(digits), 2, "%v → %s", x, s)
	} else {
		require.Equal(t, len(short), len(digits), "%v → %s (shortest %s)", x, s, short)
	}
}

func TestJavaDoubleProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var x float64
		switch r.IntN(4) {
		case 0: // any bit pattern
			x = math.Float64frombits(r.Uint64())
		case 1: // counters and offsets
			x = float64(r.Int64N(1 << 53))
		case 2: // rates and ms/s
			x = math.Round(r.Float64()*1e6) / 100
		default: // around the notation boundaries
			x = []float64{1e-3, 1e7}[r.IntN(2)] * (1 + (r.Float64()-0.5)*1e-9)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		checkJavaDouble(t, x)
	}
}

func FuzzJavaDouble(f *testing.F) {
	for _, x := range []float64{0, 1, 734, 1e7, 1e-3, 4.9e-324, math.MaxFloat64} {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		checkJavaDouble(t, x)
	})
}

// Where a single digit reads back, Java prints the two-digit decimal closest
// to the exact binary value: check it against exact arithmetic.
func TestJavaDoubleTwoDigitRule(t *testing.T) {
	var xs []float64
	for k := 1; k <= 40; k++ {
		xs = append(xs, float64(k)*math.SmallestNonzeroFloat64)
	}
	for e := -323; e <= 308; e++ {
		for d := 1; d <= 9; d++ {
			if x, err := strconv.ParseFloat(strconv.Itoa(d)+"e"+strconv.Itoa(e), 64); err == nil && x != 0 && !math.IsInf(x, 0) {
				xs = append(xs, x)
			}
		}
	}
	exact := func(s string) *big.Float {
		f, _, err := big.ParseFloat(s, 10, 2000, big.ToNearestEven)
		require.NoError(t, err, s)
		return f
	}
	dist := func(a, b *big.Float) *big.Float {
		return new(big.Float).SetPrec(2000).Abs(new(big.Float).SetPrec(2000).Sub(a, b))
	}
	for _, x := range xs {
		s := DoubleToString(x)
		checkJavaDouble(t, x)
		ex := new(big.Float).SetPrec(2000).SetFloat64(x)
		short := strconv.FormatFloat(x, 'e', -1, 64)
		if strings.Contains(strings.Split(short, "e")[0], ".") {
			continue // Go needs two or more digits: no choice to check
		}
		// The shortest one-digit decimal must not be strictly closer.
		assert.LessOrEqual(t, dist(exact(s), ex).Cmp(dist(exact(short), ex)), 0, "%s vs %s", s, short)
	}
	assert.Equal(t, "9.9E-324", DoubleToString(2*math.SmallestNonzeroFloat64))
}
