package scale

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/fixtures"
)

// The fleet in a child process (this test binary, through TestMain): its
// address line names every job and kfake, its REST API answers as the
// in-process fleet's does and is counted, a faulty job fails, and closing
// its stdin ends it.
func TestProcFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr fixtures.SyncBuffer // the child writes it while the test reads it
	p, err := startProcFleet(ctx, []string{"env", "FLINKSCALE_SCALE_FLEET_CHILD=1", os.Args[0]}, 4, 0.25, &stderr)
	require.NoError(t, err, stderr.String())
	defer p.close()

	inf := p.info()
	require.Len(t, inf.JobIDs, 4)
	require.Len(t, inf.Faulty, 4)
	assert.NotEmpty(t, inf.Brokers)
	assert.NotEqual(t, os.Getpid(), inf.PID, "a process of its own")
	faulty := -1
	for i, f := range inf.Faulty {
		if f {
			require.Equal(t, -1, faulty, "one job in four fails")
			faulty = i
		}
	}
	require.NotEqual(t, -1, faulty, "one job in four fails")
	healthy := (faulty + 1) % 4

	get := func(i int, path string) int {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a hanging job is cut short
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, inf.URL+"/"+jobName(i)+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s0, err := p.stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, get(healthy, "/jobs/"+inf.JobIDs[healthy]))
	assert.Equal(t, http.StatusOK, get(healthy, "/overview"))
	assert.NotEqual(t, http.StatusOK, get(faulty, "/overview"))
	s1, err := p.stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), s1.Rest[healthy]-s0.Rest[healthy])
	assert.Equal(t, int64(1), s1.Rest[faulty]-s0.Rest[faulty])
	assert.Positive(t, s1.ProcessCPU)
	assert.Positive(t, s1.RSS)
	assert.Zero(t, s1.SimErrors, s1.SimFirst)

	p.close()
	select {
	case <-p.exited:
		assert.NoError(t, p.err, stderr.String())
	default:
		t.Fatal("the fleet process still runs after close")
	}
}
