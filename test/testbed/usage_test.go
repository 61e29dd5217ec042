package testbed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	// A JVM's stat line: the name may hold spaces and parentheses; utime
	// 1234 and stime 566 ticks are 18 s at 100 ticks a second.
	stat := []byte("4242 (java (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 566 0 0 20 0 60 0 100 3000000000 80000 18446744073709551615")
	cpu, err := parseStatCPU(stat)
	require.NoError(t, err)
	assert.Equal(t, 18.0, cpu)
	_, err = parseStatCPU([]byte("4242 java S 1"))
	assert.Error(t, err)

	rss, err := parseStatusRSS([]byte("Name:\tjava\nVmPeak:\t 100 kB\nVmRSS:\t  318328 kB\nThreads:\t60\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(318328)<<10, rss)
	_, err = parseStatusRSS([]byte("Name:\tjava\n"))
	assert.ErrorContains(t, err, "no VmRSS")
}
