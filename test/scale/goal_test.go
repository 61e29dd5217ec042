package scale

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The goals: 0.10 cores and 250 MiB for 1,000 jobs, 0.5 cores and
// 1 GiB for 5,000; between, the CPU per job stays the same and the memory
// is on the line between the two.
func TestGoal(t *testing.T) {
	for _, tc := range []struct {
		jobs       int
		cores, mib float64
	}{
		{20, 0.10, 250},    // a quick look: the 1,000-job goal
		{1000, 0.10, 250},  // the issue's
		{2500, 0.25, 540},  // 250 + 1,500 × 774 / 4,000 = 540.25
		{5000, 0.50, 1024}, // the issue's
	} {
		cores, mib := Goal(tc.jobs)
		assert.InDelta(t, tc.cores, cores, 1e-9, "%d jobs", tc.jobs)
		assert.InDelta(t, tc.mib, mib, 0.5, "%d jobs", tc.jobs)
	}
	// The report's goal line is the fleet's.
	var out strings.Builder
	assert.NoError(t, (&Report{Jobs: 5000}).WriteTable(&out))
	assert.Contains(t, out.String(), "goal (≤ 0.50 cores, ≤ 1024 MiB)")
}
