package promreporter

import (
	"math"

	"github.com/flinkscale/flinkscale/test/sim/java"
)

// javaDouble is a sample value as Flink's Prometheus client writes it: Java's
// Double.toString, with infinities spelled "+Inf" and "-Inf".
func javaDouble(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return java.DoubleToString(x)
}
