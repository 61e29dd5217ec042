package flink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
)

// fakeClock is the time of a test: the fetcher JobManager's and the
// collector's, moved by the test and by the collector's waits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fetcherJM is a JobManager whose metrics come from a MetricStore as real
// Flink's do (MetricFetcherImpl): a metrics request (and, as
// JobDetailsHandler's IO metrics do for running tasks, a job-details
// request) triggers a fetch when the store is more than interval old
// (lastUpdateTime starts at 0); the fetch is asynchronous: it takes rpc,
// and every request until then, the triggering one included, is answered
// from the old store. The TaskManagers' values are a function of the time:
// numRecordsIn is the seconds since deployed, so a value read tells when
// it was fetched.
type fetcherJM struct {
	clock    *fakeClock
	interval time.Duration // metrics.fetcher.update-interval
	rpc      time.Duration // until a fetch lands in the store
	deployed time.Time

	mu         sync.Mutex
	lastUpdate time.Time          // the latest fetch's start
	store      map[string]float64 // metric id → value, as of the latest fetch that landed
	inFlight   *fetch
	failPrime  bool // the collector's priming request answers 500
	primes     int  // priming requests received
}

type fetch struct {
	landsAt time.Time
	values  map[string]float64
}

const (
	fjJob    = "0123456789abcdef0123456789abcdef"
	fjVertex = "fedcba9876543210fedcba9876543210"
)

// newFetcherJM is a job deployed at the clock's time, whose store was
// fetched as its tasks started (what a just-deployed job's REST answers
// show: busy 1000 ms/s, no records).
func newFetcherJM(clock *fakeClock) *fetcherJM {
	jm := &fetcherJM{clock: clock, interval: 10 * time.Second, rpc: 300 * time.Millisecond, deployed: clock.Now()}
	jm.lastUpdate = jm.deployed
	jm.store = map[string]float64{
		mBusy: 1000, mBackPressured: 0, mIn: 0, mOut: 0, mInRate: 0, mOutRate: 0,
	}
	return jm
}

func (jm *fetcherJM) setFailPrime(fail bool) {
	jm.mu.Lock()
	jm.failPrime = fail
	jm.mu.Unlock()
}

func (jm *fetcherJM) primeCount() int {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.primes
}

// live is what the TaskManagers report at t.
func (jm *fetcherJM) live(t time.Time) map[string]float64 {
	s := t.Sub(jm.deployed).Seconds()
	return map[string]float64{mBusy: 500, mBackPressured: 0, mIn: s, mOut: s, mInRate: 1, mOutRate: 1}
}

// metricStore is MetricFetcherImpl.update() then getMetricStore(): the
// store the request is answered from.
func (jm *fetcherJM) metricStore() map[string]float64 {
	now := jm.clock.Now()
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if f := jm.inFlight; f != nil && !now.Before(f.landsAt) {
		jm.store, jm.inFlight = f.values, nil
	}
	answer := jm.store
	if now.Sub(jm.lastUpdate) > jm.interval {
		jm.lastUpdate = now
		jm.inFlight = &fetch{landsAt: now.Add(jm.rpc), values: jm.live(now)}
	}
	return answer
}

// primed counts a priming request and reports whether to answer it; a
// JobManager set to fail priming answers 500.
func (jm *fetcherJM) primed(w http.ResponseWriter) bool {
	jm.mu.Lock()
	jm.primes++
	fail := jm.failPrime
	jm.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errors":["Internal server error."]}`))
	}
	return !fail
}

func (jm *fetcherJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vertexPrefix := "/jobs/" + fjJob + "/vertices/" + fjVertex
	var body any
	switch p := r.URL.Path; {
	case p == "/overview":
		body = map[string]any{"flink-version": "1.20.3", "taskmanagers": 1}
	case p == "/jobs/"+fjJob:
		jm.metricStore()
		body = map[string]any{
			"jid": fjJob, "name": "fetcher", "state": "RUNNING", "now": jm.clock.Now().UnixMilli(),
			"timestamps": map[string]int64{"RUNNING": jm.deployed.UnixMilli()},
			"vertices":   []any{map[string]any{"id": fjVertex, "name": "Map", "parallelism": 1, "maxParallelism": 128, "status": "RUNNING"}},
			"plan":       map[string]any{"nodes": []any{map[string]any{"id": fjVertex, "inputs": []any{map[string]any{"id": "upstream", "ship_strategy": "HASH"}}}}},
		}
	case p == "/jobs/"+fjJob+"/checkpoints":
		body = map[string]any{"counts": map[string]int{"completed": 1}, "latest": map[string]any{"completed": map[string]any{"id": 1, "end_to_end_duration": 100, "state_size": 10}}}
	case p == "/jobs/"+fjJob+"/checkpoints/config":
		body = map[string]any{"interval": 30000, "timeout": 600000}
	case p == "/taskmanagers/metrics":
		// The vertex-less priming request (the TaskManagers' heap).
		if !jm.primed(w) {
			return
		}
		jm.metricStore()
		body = []any{}
	case p == "/taskmanagers":
		body = map[string]any{"taskmanagers": []any{map[string]any{"id": "tm", "slotsNumber": 1, "hardware": map[string]any{"cpuCores": 1}}}}
	case p == vertexPrefix+"/subtasks/metrics":
		q := r.URL.Query()
		if q.Get("get") == mIn && q.Get("agg") == AggSum && !jm.primed(w) {
			return
		}
		store := jm.metricStore()
		list := []map[string]any{}
		if !q.Has("get") {
			for id := range store {
				list = append(list, map[string]any{"id": id})
			}
		} else {
			for _, id := range strings.Split(q.Get("get"), ",") {
				v, ok := store[id]
				if !ok {
					list = []map[string]any{} // Flink's [] for a missing id
					break
				}
				list = append(list, map[string]any{"id": id, "min": v, "max": v, "avg": v, "sum": v})
			}
		}
		body = list
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"errors":["Not found: %s"]}`, r.URL.Path)
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}

// sleeps records the collector's waits, which move the clock.
type sleeps struct {
	clock *fakeClock
	mu    sync.Mutex
	n     int
	total time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.n++
	s.total += d
	s.mu.Unlock()
	s.clock.Advance(d)
	return ctx.Err()
}

// readAt is when the store the sample's vertex metrics come from was
// fetched, from numRecordsIn (seconds since the job was deployed).
func readAt(t *testing.T, jm *fetcherJM, s metrics.FlinkSample) time.Time {
	t.Helper()
	require.Len(t, s.Vertices, 1)
	in := s.Vertices[0].NumRecordsIn
	require.NotNil(t, in, "numRecordsIn: missing %v", s.Missing)
	return jm.deployed.Add(time.Duration(*in * float64(time.Second)))
}

// Against a JobManager whose metric store is refreshed on demand,
// asynchronously and at most every update interval, a collector that does
// not prime reads, each poll, the store its previous poll made the
// JobManager fetch; one that primes reads current values; a fast poller
// is never delayed and reads values at most one interval plus one poll
// period old.
func TestCollectPrimesTheMetricFetcher(t *testing.T) {
	deployed := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		wait   time.Duration // WithFetcherWait
		period time.Duration // between polls
		polls  int
		// the age of what each poll reads (its vertex metrics' fetch time
		// against the sample's time, the JobManager's when the poll began)
		wantAge []time.Duration
		// the polls that primed and waited
		wantSleeps int
	}{
		{
			name: "not primed: the previous poll's values", wait: 0, period: 30 * time.Second, polls: 4,
			// The first poll reads the store fetched as the tasks started.
			wantAge:    []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second},
			wantSleeps: 0,
		},
		{
			name: "primed: current values", wait: time.Second, period: 30 * time.Second, polls: 4,
			wantAge:    []time.Duration{0, 0, 0, 0},
			wantSleeps: 4,
		},
		{
			name: "a poller faster than the interval primes once", wait: time.Second, period: 5 * time.Second, polls: 8,
			// Poll 1 primes (t=30s, fetched then); polls 2 and 3 read that
			// store (it is not more than 10 s old: no fetch); poll 4 (t=45s)
			// triggers a fetch and reads the old store, and so on.
			wantAge:    []time.Duration{0, 5 * time.Second, 10 * time.Second, 15 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 5 * time.Second},
			wantSleeps: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: deployed}
			jm := newFetcherJM(clock)
			col, _ := serve(t, jm)
			sl := &sleeps{clock: clock}
			col = NewCollector(col.c, WithClock(clock.Now), WithSleep(sl.Sleep), WithFetcherWait(tc.wait))

			var ages []time.Duration
			for i := range tc.polls {
				clock.Set(deployed.Add(30*time.Second + time.Duration(i)*tc.period))
				s, err := col.Collect(context.Background(), fjJob)
				require.NoError(t, err)
				assert.Empty(t, s.Missing)
				ages = append(ages, s.At.Sub(readAt(t, jm, s)))
			}
			assert.Equal(t, tc.wantAge, ages)
			assert.Equal(t, tc.wantSleeps, sl.n, "waits")
			assert.Equal(t, tc.wantSleeps, jm.primeCount(), "priming requests")
		})
	}
}

// A failed prime is named in Missing; the reads go on and their values are
// the store's, never made up.
func TestCollectPrimeFailure(t *testing.T) {
	deployed := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: deployed}
	jm := newFetcherJM(clock)
	col, _ := serve(t, jm)
	sl := &sleeps{clock: clock}
	col = NewCollector(col.c, WithClock(clock.Now), WithSleep(sl.Sleep))

	clock.Set(deployed.Add(30 * time.Second))
	s, err := col.Collect(context.Background(), fjJob)
	require.NoError(t, err)
	require.Empty(t, s.Missing)
	first := readAt(t, jm, s)
	assert.Equal(t, s.At, first)

	jm.setFailPrime(true)
	clock.Set(deployed.Add(60 * time.Second))
	s, err = col.Collect(context.Background(), fjJob)
	require.NoError(t, err)
	require.Len(t, s.Missing, 1)
	assert.Contains(t, s.Missing[0], "metrics fetcher: priming failed, values may be one poll old: flink: GET /jobs/"+fjJob+"/vertices/"+fjVertex+"/subtasks/metrics?agg=sum&get=numRecordsIn: HTTP 500")
	assert.Equal(t, 1, sl.n, "no wait after a failed prime")
	// The previous poll's fetch: stale, but Flink's.
	assert.Equal(t, first, readAt(t, jm, s))
	require.NotNil(t, s.Vertices[0].BusyTimeMsPerSecond)
	assert.Equal(t, 500.0, s.Vertices[0].BusyTimeMsPerSecond.Max)

	// The next poll primes again.
	jm.setFailPrime(false)
	clock.Set(deployed.Add(90 * time.Second))
	s, err = col.Collect(context.Background(), fjJob)
	require.NoError(t, err)
	assert.Empty(t, s.Missing)
	assert.Equal(t, s.At, readAt(t, jm, s))
}

// A context that ends during the wait ends the Collect.
func TestCollectPrimeWaitCancelled(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	jm := newFetcherJM(clock)
	col, _ := serve(t, jm)
	ctx, cancel := context.WithCancel(context.Background())
	col = NewCollector(col.c, WithClock(clock.Now), WithSleep(func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}))
	_, err := col.Collect(ctx, fjJob)
	require.ErrorIs(t, err, context.Canceled)

	// The default wait is a timer that ctx cancels.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	col = NewCollector(col.c, WithFetcherWait(time.Hour))
	start := time.Now()
	_, err = col.Collect(ctx, fjJob)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// primingAhead is a collector priming a fetcherJM ahead, both on a fake
// clock at the job's deployment, with a 1 s wait and sleeps counted.
func primingAhead(t *testing.T) (time.Time, *fakeClock, *fetcherJM, *sleeps, *Collector) {
	t.Helper()
	deployed := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: deployed}
	jm := newFetcherJM(clock)
	col, _ := serve(t, jm)
	sl := &sleeps{clock: clock}
	return deployed, clock, jm, sl, NewCollector(col.c, WithClock(clock.Now), WithSleep(sl.Sleep), WithFetcherWait(time.Second))
}

// PrimeAhead primes without waiting, and the Collect that follows the
// wait reads current values at once, without priming or sleeping itself:
// the same values as a Collect that primes and waits, with no worker
// held through the wait.
func TestPrimeAhead(t *testing.T) {
	deployed, clock, jm, sl, col := primingAhead(t)
	ctx := context.Background()

	// Before the first Collect no vertex is known: the TaskManagers'
	// aggregated metrics prime the fetcher, and that Collect reads at once
	// what they fetched.
	clock.Set(deployed.Add(30 * time.Second))
	wait, err := col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	assert.Equal(t, time.Second, wait)
	assert.Equal(t, 1, jm.primeCount())
	clock.Advance(wait)
	s, err := col.Collect(ctx, fjJob)
	require.NoError(t, err)
	assert.Zero(t, sl.n, "the first Collect neither primed nor waited")
	assert.Equal(t, s.At.Add(-time.Second), readAt(t, jm, s), "the values the priming fetched")

	for i, at := range []time.Duration{60 * time.Second, 90 * time.Second, 120 * time.Second} {
		clock.Set(deployed.Add(at))
		wait, err := col.PrimeAhead(ctx, fjJob)
		require.NoError(t, err)
		assert.Equal(t, time.Second, wait, "poll %d: the wait to come back after", i)
		assert.Equal(t, 2+i, jm.primeCount())
		// Within the update interval, a second PrimeAhead sends nothing.
		again, err := col.PrimeAhead(ctx, fjJob)
		require.NoError(t, err)
		assert.Zero(t, again)
		assert.Equal(t, 2+i, jm.primeCount())

		clock.Advance(wait)
		s, err := col.Collect(ctx, fjJob)
		require.NoError(t, err)
		assert.Empty(t, s.Missing)
		assert.Zero(t, sl.n, "poll %d: Collect neither primed nor slept", i)
		assert.Equal(t, 2+i, jm.primeCount())
		// Values fetched by the priming request, a wait before the read:
		// what a Collect that primes and sleeps reads, and dated so.
		assert.Equal(t, s.At.Add(-time.Second), readAt(t, jm, s), "poll %d", i)
		assert.Equal(t, time.Second, s.MetricsAge, "poll %d", i)
	}

	// Another job id (the job was redeployed): its vertices are not known
	// yet; primed through the TaskManagers.
	clock.Advance(30 * time.Second)
	wait, err = col.PrimeAhead(ctx, "00000000000000000000000000000000")
	require.NoError(t, err)
	assert.Equal(t, time.Second, wait)
	assert.Equal(t, 5, jm.primeCount())

	// Within the update interval, nothing.
	wait, err = col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	assert.Zero(t, wait)
	clock.Advance(30 * time.Second)

	// A JobManager that does not answer: the error, and no wait.
	jm.setFailPrime(true)
	wait, err = col.PrimeAhead(ctx, fjJob)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "priming the metric fetcher of job "+fjJob)
	assert.Zero(t, wait)
}

// A caller that comes back later than the update interval after
// PrimeAhead (a controller whose queue held the poll) is not sent back to
// prime again: its Collect reads the store the priming refreshed, at once,
// dated by the priming, so that rates between samples stay true. The
// priming stands for one Collect, and for at most MaxPendingPrime.
func TestPrimeAheadOncePerCollect(t *testing.T) {
	deployed, clock, jm, sl, col := primingAhead(t)
	ctx := context.Background()

	// A first poll on time: primes, then reads a wait later.
	clock.Set(deployed.Add(30 * time.Second))
	wait, err := col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	require.Equal(t, time.Second, wait)
	clock.Advance(wait)
	first, err := col.Collect(ctx, fjJob)
	require.NoError(t, err)
	require.Equal(t, 1, jm.primeCount())

	// The next poll primes at 60 s and comes back 25 s late (more than the
	// 10 s update interval): no second priming, no wait.
	for _, late := range []time.Duration{25 * time.Second, MaxPendingPrime - time.Second} {
		clock.Set(deployed.Add(60 * time.Second))
		if late > 25*time.Second {
			clock.Set(deployed.Add(150 * time.Second))
		}
		primedAt := clock.Now()
		wait, err = col.PrimeAhead(ctx, fjJob)
		require.NoError(t, err)
		require.Equal(t, time.Second, wait)
		primes := jm.primeCount()

		clock.Advance(late)
		again, err := col.PrimeAhead(ctx, fjJob)
		require.NoError(t, err)
		assert.Zero(t, again, "back %s late: collect now", late)
		assert.Equal(t, primes, jm.primeCount(), "back %s late: no second priming", late)
		s, err := col.Collect(ctx, fjJob)
		require.NoError(t, err)
		assert.Empty(t, s.Missing)
		assert.Zero(t, sl.n, "back %s late: Collect neither primed nor slept", late)
		assert.Equal(t, primes, jm.primeCount())
		// The store as the priming refreshed it, dated so: MetricsAt is
		// when its values were current.
		assert.Equal(t, late, s.MetricsAge)
		assert.Equal(t, primedAt, readAt(t, jm, s))
		assert.Equal(t, primedAt, s.MetricsAt())
		// numRecordsIn grows 1 a second in this JobManager: the rate
		// between the two samples by their MetricsAt is exactly 1/s; by
		// their At it would be off by the lateness.
		dt := s.MetricsAt().Sub(first.MetricsAt()).Seconds()
		assert.InDelta(t, 1.0, (*s.Vertices[0].NumRecordsIn-*first.Vertices[0].NumRecordsIn)/dt, 1e-9)
		first = s
	}

	// The Collect read the priming: the next PrimeAhead, once the store is
	// stale, primes again.
	clock.Advance(30 * time.Second)
	primes := jm.primeCount()
	wait, err = col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	assert.Equal(t, time.Second, wait)
	assert.Equal(t, primes+1, jm.primeCount())

	// A priming no Collect read within MaxPendingPrime (the poll failed
	// before collecting, or the policy went away) stands for nothing: the
	// next PrimeAhead primes again.
	clock.Advance(MaxPendingPrime)
	wait, err = col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	assert.Equal(t, time.Second, wait)
	assert.Equal(t, primes+2, jm.primeCount())

	// A priming for another job id stands for nothing for this one.
	clock.Advance(30 * time.Second)
	_, err = col.PrimeAhead(ctx, "00000000000000000000000000000000")
	require.NoError(t, err)
	clock.Advance(20 * time.Second)
	wait, err = col.PrimeAhead(ctx, fjJob)
	require.NoError(t, err)
	assert.Equal(t, time.Second, wait)
	assert.Equal(t, primes+4, jm.primeCount())
}
