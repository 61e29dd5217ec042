package scale_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/scale"
)

// TestSmallFleet runs the measurement on 10 jobs for 30 s, the fleet in a
// process of its own (this test binary, TestMain), and checks its
// structure: every policy decided, the Flink REST and Kafka calls look like
// the collectors' (metrics/flink: 5 + vertices + 2 × sources requests per
// collection in steady state), latencies were measured, nothing is not Ready.
//
// It polls every 15 s and takes about 80 s (a simulator-only baseline, two polling
// intervals of warm-up, the measured period), so it runs only when
// FLINKSCALE_SCALE_TEST=1 is set, and not under -short; it skips without
// envtest's binaries (make envtest-bins) unless CI=true.
func TestSmallFleet(t *testing.T) {
	if os.Getenv("FLINKSCALE_SCALE_TEST") != "1" {
		t.Skip("set FLINKSCALE_SCALE_TEST=1 to run the fleet measurement (about 80 s)")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := scale.Run(ctx, scale.Config{Jobs: 10, Duration: 30 * time.Second, PollingInterval: 15 * time.Second, Baseline: 5 * time.Second,
		ScrapeInterval: 10 * time.Second, FleetCommand: fleetCommand(), FleetStderr: os.Stderr})
	if errors.Is(err, scale.ErrNoControlPlane) {
		t.Skip(err)
	}
	require.NoError(t, err)

	assert.Equal(t, 10, rep.Decided, "every policy decided in the period: %v", rep.Actions)
	assert.Empty(t, rep.NotReady, "%v", rep.NotReadySamples)
	assert.Zero(t, rep.ReconcileErrors, "%v", rep.ErrorSamples)
	assert.Zero(t, rep.SimErrors, rep.SimErrorSample)
	assert.NotContains(t, rep.Actions, "Scale", "the load is inside the band: no rescale")

	assert.GreaterOrEqual(t, rep.Reconciles, 10)
	// 5 + vertices + 2 when everything is read; the overview, checkpoint
	// statistics, TaskManagers and their memory (4) and the source's two
	// listings are reused for a minute (flink.WithSlowRefresh): at 15 s
	// polls, 3 polls in 4 send 6 fewer.
	assert.InDelta(t, 5+scale.Vertices+2-6*3.0/4, rep.Calls.RESTPerReconcile, 2, "REST requests per collection")
	assert.Greater(t, rep.Calls.RESTPerJobPerCycle, 5.0)
	assert.Less(t, rep.Calls.RESTPerJobPerCycle, 30.0)
	assert.Positive(t, rep.Calls.KafkaPerJobPerCycle)
	assert.Positive(t, rep.Calls.KafkaPerReconcile)
	assert.Zero(t, rep.Calls.RESTErrors)

	l := rep.Latency
	assert.Positive(t, l.P50)
	assert.LessOrEqual(t, l.P50, l.P95)
	assert.LessOrEqual(t, l.P95, l.P99)
	assert.Positive(t, rep.CPU.Process)
	assert.Positive(t, rep.Memory.RSSPeak)
	// The fleet ran in its own process, measured apart.
	assert.True(t, rep.FleetProcess)
	assert.Positive(t, rep.CPU.Fleet)
	assert.Positive(t, rep.CPU.RESTServing)
	assert.Positive(t, rep.Memory.FleetRSS)
	assert.Positive(t, rep.Memory.HeapInuseEnd)

	// Scraped as a Prometheus would: every job's series, per vertex too.
	assert.GreaterOrEqual(t, rep.Scrape.Count, 2)
	assert.Greater(t, rep.Scrape.Series, 10*(2*scale.Vertices), "at least parallelism and recommendation per vertex")
	assert.Positive(t, rep.Scrape.Bytes)
}

// Two replicas share a fleet of 20 jobs through two shard Leases; one is
// killed mid-run as a crashed pod (no Lease released). No policy is
// reconciled by both at once or polled twice within half an interval,
// and the killed replica's policies are all taken over within a Lease
// duration (15 s) plus a polling interval. About 2 minutes; same gates as
// TestSmallFleet.
func TestShardedFleetSurvivesAKill(t *testing.T) {
	if os.Getenv("FLINKSCALE_SCALE_TEST") != "1" {
		t.Skip("set FLINKSCALE_SCALE_TEST=1 to run the fleet measurement (about 2 minutes)")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := scale.Run(ctx, scale.Config{Jobs: 20, Replicas: 2, KillAfter: 30 * time.Second, Duration: 75 * time.Second,
		PollingInterval: 15 * time.Second, Baseline: 5 * time.Second, ScrapeInterval: 10 * time.Second})
	if errors.Is(err, scale.ErrNoControlPlane) {
		t.Skip(err)
	}
	require.NoError(t, err)
	sh := rep.Shards
	require.NotNil(t, sh)
	assert.Len(t, sh.ReconcilesByReplica, 2)
	for i, n := range sh.ReconcilesByReplica {
		assert.Positive(t, n, "replica %d reconciled its shard", i)
	}
	assert.Zero(t, sh.Overlapping, "no policy reconciled by both replicas at once")
	assert.Zero(t, sh.DoublePolls, "no policy polled twice")
	assert.Positive(t, sh.Orphans, "the killed replica held policies")
	assert.Zero(t, sh.Dropped, "every orphan polled again")
	// Taken when the Lease expires: 15 s after its last renewal (at most
	// a RetryPeriod, 2 s, before the kill), plus the survivor's next look.
	assert.Less(t, sh.FirstTakeover, 15.0+2+2)
	assert.Less(t, sh.TakeoverGap.Max/1000, 15.0+2+2+15*1.1+2, "gap across the kill: Lease + a polling interval")
	assert.Equal(t, 20, rep.Decided, "every policy decided in the period")
	assert.Zero(t, rep.ReconcileErrors, "%v", rep.ErrorSamples)
}
