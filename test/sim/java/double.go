// Package java reproduces the Java behavior that Flink's output depends on
// and the simulator must match: Double.toString. (String.hashCode lives in
// scaling/assign, beside the assignment rules that use it.)
package java

import (
	"math"
	"strconv"
	"strings"
)

// DoubleToString formats x as Java's Double.toString does (JDK 19 and
// later, whose output is the shortest decimal that reads back as x):
//
//   - 10⁻³ ≤ |x| < 10⁷: plain decimal with at least one fractional digit
//     ("734.0", "15234.55", "0.001", "9999999.0");
//   - otherwise computerized scientific notation d.ddd"E"n with at least one
//     fractional digit and no '+' on the exponent ("1.0E7", "1.2345678E7",
//     "1.0E-4", "4.9E-324");
//   - "0.0", "-0.0", "NaN", "Infinity", "-Infinity".
//
// Java keeps at least two significant digits available (d.d): when a
// single digit would do, it still picks the two-digit decimal closest to x,
// which is why Double.MIN_VALUE prints as 4.9E-324 (Go's shortest form is
// 5e-324) and 1.0E-323 as 9.9E-324.
//
// JDKs before 19 (Flink 1.18 and 1.20 run on Java 11 or 17) used an older
// algorithm that on rare values prints more digits than needed
// (JDK-4511638); this follows the newer, shortest output, which agrees with
// the old one on ordinary values.
//
// The REST API's values use it as is; the Prometheus exposition spells
// infinities "+Inf" and "-Inf".
func DoubleToString(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	case x == 0:
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	digits, exp := javaDigits(math.Abs(x))
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
	}
	// exp is the exponent of the first digit: x = d.ddd × 10^exp.
	if exp >= -3 && exp < 7 {
		if exp >= 0 {
			if len(digits) <= exp+1 {
				b.WriteString(digits)
				b.WriteString(strings.Repeat("0", exp+1-len(digits)))
				b.WriteString(".0")
			} else {
				b.WriteString(digits[:exp+1])
				b.WriteByte('.')
				b.WriteString(digits[exp+1:])
			}
		} else {
			b.WriteString("0.")
			b.WriteString(strings.Repeat("0", -exp-1))
			b.WriteString(digits)
		}
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

// javaDigits returns the significant digits (no leading or trailing zeros,
// at least one) and the decimal exponent of the first digit of the decimal
// Java chooses for the finite, positive x.
func javaDigits(x float64) (string, int) {
	digits, exp := splitE(strconv.FormatFloat(x, 'e', -1, 64))
	if len(digits) == 1 {
		// A one-digit decimal d is also the two-digit d.0; Java picks the
		// two-digit decimal closest to x when it still reads back as x.
		two := strconv.FormatFloat(x, 'e', 1, 64)
		if y, err := strconv.ParseFloat(two, 64); err == nil && y == x {
			d2, e2 := splitE(two)
			return strings.TrimRight(d2, "0"), e2
		}
	}
	return digits, exp
}

// splitE splits Go's 'e' format ("1.2345678e+07") into the digits without
// the point or trailing zeros ("12345678") and the exponent (7).
func splitE(s string) (string, int) {
	i := strings.IndexByte(s, 'e')
	mant, e := s[:i], s[i+1:]
	exp, _ := strconv.Atoi(e) // Go's own output: always an integer
	digits := strings.Replace(mant, ".", "", 1)
	if t := strings.TrimRight(digits, "0"); t != "" {
		digits = t
	} else {
		digits = "0"
	}
	return digits, exp
}
