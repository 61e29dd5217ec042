package flinkrest

import (
	"github.com/flinkscale/flinkscale/scaling/assign"

	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJDoubleJSON(t *testing.T) {
	for in, want := range map[float64]string{
		734: "734.0", 1.2345678e7: "1.2345678E7", math.NaN(): `"NaN"`,
		math.Inf(1): `"Infinity"`, math.Inf(-1): `"-Infinity"`,
	} {
		assert.Equal(t, want, string(marshal(jdouble(in))))
	}
}

func TestJavaLong(t *testing.T) {
	assert.Equal(t, "12345678", javaLong(12_345_678))
	assert.Equal(t, "266", javaLong(266.9), "a Java (long) cast truncates")
	assert.Equal(t, "-1", javaLong(-1))
	assert.Equal(t, "0", javaLong(math.NaN()))
	assert.Equal(t, strconv.FormatInt(math.MaxInt64, 10), javaLong(1e300))
}

func TestJavaStringHash(t *testing.T) {
	assert.Equal(t, int32(0), assign.JavaStringHashCode(""))
	assert.Equal(t, int32(97), assign.JavaStringHashCode("a"))
	assert.Equal(t, int32(2112), assign.JavaStringHashCode("Aa"))
	assert.Equal(t, int32(2112), assign.JavaStringHashCode("BB"))
	// "orders".hashCode() from the reference's Kafka split-owner vector.
	assert.Equal(t, int32(-1008770331), assign.JavaStringHashCode("orders"))
	// A supplementary character hashes as its two UTF-16 units.
	assert.Equal(t, int32(31*0xD83D+0xDE00), assign.JavaStringHashCode("\U0001F600"))
}

func TestJavaHashOrder(t *testing.T) {
	// Buckets of a 16-slot table: "c"→3, "a"→1, "b"→2.
	assert.Equal(t, []string{"a", "b", "c"}, javaHashOrder([]string{"c", "a", "b"}, 0))
	// "Aa" and "BB" collide: insertion order within a bucket.
	assert.Equal(t, []string{"BB", "Aa"}, javaHashOrder([]string{"BB", "Aa"}, 0))
	assert.Equal(t, []string{"Aa", "BB"}, javaHashOrder([]string{"Aa", "BB", "Aa"}, 0), "duplicates keep the first place")
	// "a" (97) and "q" (113) share bucket 1 of 16, but not of 32: the 13th
	// entry makes the table grow.
	small := javaHashOrder([]string{"q", "a"}, 0)
	assert.Equal(t, []string{"q", "a"}, small)
	keys := []string{"q", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	grown := javaHashOrder(keys, 0)
	assert.Less(t, indexOf(grown, "a"), indexOf(grown, "q"), "after resizing, 97&31=1 comes before 113&31=17")
	// A HashSet sized for 40 entries has 64 buckets from the start.
	assert.Equal(t, 54, javaHashSetCapacity(40))
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

func TestPercentileMatchesCommonsMath(t *testing.T) {
	assert.True(t, math.IsNaN(percentile(nil, 50)))
	assert.Equal(t, 7.0, percentile([]float64{7}, 99))
	assert.Equal(t, 3.0, percentile([]float64{5, 1, 4, 2, 3}, 50))
	assert.Equal(t, 2.5, percentile([]float64{1, 2, 3, 4}, 50))
	assert.Equal(t, 1.25, percentile([]float64{1, 2, 3, 4}, 25))
	assert.Equal(t, 1.0, percentile([]float64{1, 2, 3, 4}, 10), "below the first position: the minimum")
	assert.Equal(t, 10.0, percentile([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 95), "past the last position: the maximum")
}

func TestJavaParseDouble(t *testing.T) {
	for in, want := range map[string]float64{
		"734.0": 734, "266": 266, "1.2345678E7": 1.2345678e7, " 5 ": 5, "1d": 1, "-Infinity": math.Inf(-1),
	} {
		got, isNum := javaParseDouble(in)
		require.True(t, isNum, in)
		assert.Equal(t, want, got, in)
	}
	got, isNum := javaParseDouble("NaN")
	assert.True(t, isNum)
	assert.True(t, math.IsNaN(got))
	for _, in := range []string{"true", "false", "", "inf", "n/a", "s3://x"} {
		_, isNum := javaParseDouble(in)
		assert.False(t, isNum, in)
	}
}
