package scale

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A tenth of 1000 jobs fail: jobs 0, 10, 20, …, evenly spread; none for 0.
func TestFaultyJobsAreSpreadEvenly(t *testing.T) {
	for _, c := range []struct {
		n     int
		frac  float64
		count int
	}{{1000, 0.1, 100}, {1000, 0, 0}, {7, 0.5, 4}, {3, 0.01, 0}, {10, 0.99, 10}} {
		var idx []int
		for i := range c.n {
			if faulty(i, c.n, c.frac) {
				idx = append(idx, i)
			}
		}
		assert.Len(t, idx, c.count, "%d × %g", c.n, c.frac)
		if c.n == 1000 && c.count == 100 {
			for m, i := range idx {
				assert.Equal(t, 10*m, i)
			}
		}
	}
}
