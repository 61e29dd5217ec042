package sim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunRealtimeFollowsTheWallClock(t *testing.T) {
	j, _ := start(t, pipeline(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	require.NoError(t, j.RunRealtime(ctx, 100, 10*time.Millisecond))
	wall := time.Since(begin)
	moved := j.Now().Sub(t0)
	// 100× speed: about 30 s of virtual time for 300 ms of wall time, less
	// what passed after the last tick (generous: the machine is shared).
	assert.LessOrEqual(t, moved, 100*wall)
	assert.GreaterOrEqual(t, moved, 100*(wall-100*time.Millisecond))
}
