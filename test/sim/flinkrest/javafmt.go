package flinkrest

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// javaDouble formats f as Java's Double.toString does (JDK 19+, the
// Raffaello Giulietti algorithm): the shortest decimal that rounds back to f
// (at least two significant digits are considered when one would do, and the
// closest wins), in plain notation with at least one fractional digit for
// 1e-3 <= |f| < 1e7 ("734.0", "0.001") and computerized scientific notation
// otherwise ("1.2345678E7", "1.0E-4", "4.9E-324"). NaN and the infinities
// are "NaN", "Infinity" and "-Infinity".
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	digits, exp := shortestDigits(f)

	var b strings.Builder
	b.WriteString(sign)
	if exp >= -3 && exp < 7 {
		// Plain notation: the value is 0.d1d2... × 10^(exp+1).
		if exp < 0 {
			b.WriteString("0.")
			b.WriteString(strings.Repeat("0", -exp-1))
			b.WriteString(digits)
			return b.String()
		}
		intLen := exp + 1
		if len(digits) <= intLen {
			b.WriteString(digits)
			b.WriteString(strings.Repeat("0", intLen-len(digits)))
			b.WriteString(".0")
			return b.String()
		}
		b.WriteString(digits[:intLen])
		b.WriteByte('.')
		b.WriteString(digits[intLen:])
		return b.String()
	}
	b.WriteByte(digits[0])
	b.WriteByte('.')
	if len(digits) > 1 {
		b.WriteString(digits[1:])
	} else {
		b.WriteByte('0')
	}
	b.WriteByte('E')
	b.WriteString(strconv.Itoa(exp))
	return b.String()
}

// shortestDigits returns the significant decimal digits of f > 0 (no
// trailing zeros) and the decimal exponent of the first digit, following
// Java's choice of decimal.
func shortestDigits(f float64) (string, int) {
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±xx, shortest, closest
	mant, expStr, _ := strings.Cut(s, "e")
	if len(strings.ReplaceAll(mant, ".", "")) == 1 {
		// Java considers the two-digit decimals too and takes the closest
		// one that still rounds to f (Double.MIN_VALUE is "4.9E-324", not
		// "5.0E-324"). The closest two-digit decimal is closer than d.0,
		// which rounds to f, so it rounds to f as well.
		s = strconv.FormatFloat(f, 'e', 1, 64)
		mant, expStr, _ = strings.Cut(s, "e")
	}
	exp, _ := strconv.Atoi(expStr)
	digits := strings.TrimRight(strings.ReplaceAll(mant, ".", ""), "0")
	if digits == "" {
		digits = "0"
	}
	return digits, exp
}

// javaLong formats a value Flink keeps as a long (a Counter or a Gauge<Long>
// reported through the metric query service), truncating as a Java cast does.
func javaLong(f float64) string {
	return strconv.FormatInt(toLong(f), 10)
}

// toLong is Java's (long) cast: NaN is 0, out-of-range values saturate.
func toLong(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// jdouble is a Java double as Jackson writes it: a JSON number in
// Double.toString form, and, with QUOTE_NON_NUMERIC_NUMBERS (Jackson's
// default), NaN and the infinities as the strings "NaN", "Infinity",
// "-Infinity".
type jdouble float64

func (d jdouble) MarshalJSON() ([]byte, error) {
	f := float64(d)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte(`"` + javaDouble(f) + `"`), nil
	}
	return []byte(javaDouble(f)), nil
}

// javaStringHash is Java's String.hashCode over UTF-16 code units.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16Units(s) {
		h = 31*h + int32(u)
	}
	return h
}

func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// javaHashOrder returns keys (first occurrence kept) in the order a
// java.util.HashMap created with the given initial capacity (0: the default
// 16) iterates them after inserting them in this order: by bucket of the
// final table, then by insertion. Flink builds many JSON objects and metric
// lists from HashMaps and HashSets of strings, so this is the order a real
// JobManager emits; it is deterministic for String keys.
func javaHashOrder(keys []string, initialCapacity int) []string {
	seen := make(map[string]bool, len(keys))
	uniq := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	capacity := 16
	if initialCapacity > 0 {
		capacity = 1
		for capacity < initialCapacity {
			capacity <<= 1
		}
	}
	for float64(len(uniq)) > 0.75*float64(capacity) {
		capacity <<= 1
	}
	bucket := func(k string) int {
		h := uint32(javaStringHash(k))
		return int((h ^ (h >> 16)) & uint32(capacity-1))
	}
	slices.SortStableFunc(uniq, func(a, b string) int { return bucket(a) - bucket(b) })
	return uniq
}

// javaHashSetCapacity is the initial capacity of new HashSet<>(collection).
func javaHashSetCapacity(n int) int {
	return max(int(float32(n)/0.75)+1, 16)
}

// percentile is Apache Commons Math's Percentile.evaluate(values, p) with
// the default (LEGACY) estimation, which Flink uses for checkpoint summary
// quantiles and task detail aggregates: NaN for no values.
func percentile(values []float64, p float64) float64 {
	n := len(values)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return values[0]
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	pos := p * float64(n+1) / 100
	fpos := math.Floor(pos)
	intPos := int(fpos)
	dif := pos - fpos
	if pos < 1 {
		return sorted[0]
	}
	if pos >= float64(n) {
		return sorted[n-1]
	}
	lower := sorted[intPos-1]
	upper := sorted[intPos]
	return lower + dif*(upper-lower)
}
