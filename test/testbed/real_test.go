package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/flinkprom"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// EnvFlink restricts the real-Flink tests to one line ("1.20" or "2").
const EnvFlink = "FLINKSCALE_TESTBED_FLINK"

// EnvUpdateGolden, when "1", makes TestRealCollectors rewrite the golden
// fixtures in testdata/golden/ from the real processes.
const EnvUpdateGolden = "FLINKSCALE_UPDATE_GOLDEN"

// eachFlink runs f as a subtest "flink-<v>" for every tested Flink line.
func eachFlink(t *testing.T, f func(*testing.T, Flink)) {
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) { f(t, v) })
	}
}

func testedVersions(t *testing.T) []Flink {
	if v := os.Getenv(EnvFlink); v != "" {
		require.NoError(t, Flink(v).Validate())
		return []Flink{Flink(v)}
	}
	return Versions
}

// Tolerances of the collectors against the testbed's truth, in
// docs/testbed.md. Busy time: Flink derives it from idle and backpressured
// TimerGauges averaged over the last 60 s (updated every 5 s), the paced
// cost overshoots by the park granularity, and Flink's own per-record
// work adds to it: ±15 % of the expected value or ±40 ms/s, whichever is
// larger. Rates from counters over ≥ 20 s: ±8 %.
const (
	busyRelTol = 0.15
	busyAbsTol = 40.0
	rateRelTol = 0.08
)

// TestRealCollectors runs the calibration scenario's steady phase on real
// Flink and a real broker, collects it through the REST collector, the
// reporter scraper and the Kafka collector into a metrics.Window, and
// checks the snapshot against what the testbed knows: the configured
// capacities and the produced rates.
func TestRealCollectors(t *testing.T) {
	RequireReal(t)
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) { realCollectors(t, v) })
	}
}

func realCollectors(t *testing.T, v Flink) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	tb, err := Start(ctx, Options{Scenario: s, Flink: v, SkipJavaTests: true, Progress: testWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tb.Stop()) })
	j := tb.Realised.Scaled.Job

	rec := newRecorder()
	rc, err := flink.New(tb.Flink.RESTURL(), flink.WithHTTPClient(&http.Client{Transport: rec}))
	require.NoError(t, err)
	// Every poll reads everything: the checks compare the REST answers
	// with the reporter's at the same moment, and a collector that reuses
	// the checkpoint statistics for a minute (DefaultSlowRefresh) is up to
	// six of this job's 10 s checkpoints behind the reporter.
	fc := flink.NewCollector(rc, flink.WithSlowRefresh(0))
	kc, err := kafka.New(kafka.Config{BootstrapServers: []string{tb.Kafka.Bootstrap()}})
	require.NoError(t, err)
	defer kc.Close()
	scraper := &flinkprom.Scraper{JobID: tb.JobID}
	var promQL *flinkprom.PromQL
	if api := prometheusFor(t, tb.Flink.ReporterTargets()); api != nil {
		promQL = &flinkprom.PromQL{API: api}
	}

	// Warm up: the first checkpoints and commits, and a whole 60 s window
	// of Flink's time gauges and meters after the job started. The steady
	// phase lasts 3 minutes.
	const warm = 65 * time.Second
	sleepUntil(ctx, tb, warm)
	restW, promW, queryW := metrics.NewWindow(time.Minute), metrics.NewWindow(time.Minute), metrics.NewWindow(time.Minute)
	var lastREST, lastProm metrics.FlinkSample
	var producedAt []int64
	var times []time.Time
	for i := 0; i < 5; i++ {
		if i > 0 {
			// 11 s apart: the JobManager refreshes the metrics REST serves at
			// most every 10 s, so faster polls re-read the same counters.
			sleepUntil(ctx, tb, warm+time.Duration(i)*11*time.Second)
		}
		fs, err := fc.Collect(ctx, tb.JobID)
		require.NoError(t, err)
		ps, err := scraper.Scrape(ctx, tb.Flink.ReporterTargets())
		require.NoError(t, err)
		ks, err := kc.Collect(ctx, j.ConsumerGroup, []string{"events"})
		require.NoError(t, err)
		restW.AddFlink(fs)
		restW.AddKafka(ks)
		promW.AddFlink(flinkprom.MergeWith(fs, ps, flinkprom.MergeOptions{PreferPrometheus: true}))
		promW.AddKafka(ks)
		if promQL != nil {
			qs, err := promQL.Collect(ctx, tb.JobID, time.Now())
			require.NoError(t, err)
			queryW.AddFlink(flinkprom.MergeWith(fs, qs, flinkprom.MergeOptions{PreferPrometheus: true}))
			queryW.AddKafka(ks)
		}
		lastREST, lastProm = fs, ps
		producedAt = append(producedAt, tb.Producer.Total())
		times = append(times, time.Now())
	}
	require.Less(t, tb.Now(), 3*time.Minute, "the checks assume the steady phase")
	produced := float64(producedAt[len(producedAt)-1]-producedAt[0]) / times[len(times)-1].Sub(times[0]).Seconds()
	assert.InDelta(t, 500, produced, 500*0.03, "the producer plays 500 records/s")

	want := ExpectedRates(j, map[string]float64{"events": 500})
	windows := map[string]*metrics.Window{"REST": restW, "REST+reporter": promW}
	if promQL != nil {
		windows["REST+PromQL"] = queryW
	}
	for name, w := range windows {
		snap, missing := w.Snapshot()
		t.Logf("%s snapshot missing: %v", name, missing)
		checkSnapshot(t, name, snap, j.Vertices, want)
	}
	checkReporterAgainstREST(t, lastREST, lastProm)
	// Flink's REST server (Netty) keeps the connections alive: the five
	// polls' requests, up to DefaultInFlight at once, reuse the first ones.
	t.Logf("REST requests %d over %d connections", rec.requests.Load(), rec.dials.Load())
	assert.LessOrEqual(t, rec.dials.Load(), int64(2*flink.DefaultInFlight), "connections dialled for five polls")

	if os.Getenv(EnvUpdateGolden) == "1" {
		writeGolden(t, tb, rec, lastREST)
	}
}

func checkSnapshot(t *testing.T, name string, snap scaling.Snapshot, vs []sim.VertexSpec, want map[string]Expected) {
	t.Helper()
	require.Len(t, snap.Vertices, len(vs), name)
	byName := map[string]scaling.Vertex{}
	for _, v := range snap.Vertices {
		byName[v.Name] = v
	}
	for _, sv := range vs {
		v, ok := byName[sv.Name]
		if !assert.True(t, ok, "%s: vertex %q missing", name, sv.Name) {
			continue
		}
		w := want[sv.Name]
		assert.Equal(t, sv.Parallelism, v.Parallelism, "%s %s parallelism", name, sv.Name)
		if assert.True(t, v.BusyTimeMsPerSecond != nil && v.BusyTimeMsPerSecond.Avg != nil, "%s %s busy", name, sv.Name) {
			tol := math.Max(busyAbsTol, w.Busy*busyRelTol)
			assert.InDelta(t, w.Busy, float64(*v.BusyTimeMsPerSecond.Avg), tol, "%s %s busy ms/s (expected %.0f = %.0f/s / %d / %.0f/s)",
				name, sv.Name, w.Busy, w.In, sv.Parallelism, sv.Capacity)
		}
		if assert.True(t, v.BackPressuredTimeMsPerSecond != nil && v.BackPressuredTimeMsPerSecond.Max != nil, "%s %s backpressure", name, sv.Name) {
			assert.Less(t, float64(*v.BackPressuredTimeMsPerSecond.Max), 50.0, "%s %s: no backpressure at 500/s", name, sv.Name)
		}
		if assert.NotNil(t, v.NumRecordsInPerSecond, "%s %s in", name, sv.Name) {
			assert.InDelta(t, w.In, float64(*v.NumRecordsInPerSecond), w.In*rateRelTol, "%s %s records in/s", name, sv.Name)
		}
		if sv.Selectivity > 0 && assert.NotNil(t, v.NumRecordsOutPerSecond, "%s %s out", name, sv.Name) {
			assert.InDelta(t, w.Out, float64(*v.NumRecordsOutPerSecond), w.Out*rateRelTol, "%s %s records out/s", name, sv.Name)
		}
		if len(sv.Topics) > 0 {
			assert.Equal(t, 4, v.Partitions, "%s source partitions", name)
			if assert.NotNil(t, v.ArrivalRatePerSecond, "%s arrival rate", name) {
				assert.InDelta(t, 500, float64(*v.ArrivalRatePerSecond), 500*rateRelTol, "%s arrival rate", name)
			}
			// Offsets are committed on each checkpoint (10 s): the lag the
			// brokers see is at most an interval and a poll of arrivals.
			if assert.NotNil(t, v.LagRecords, "%s lag", name) {
				assert.Less(t, float64(*v.LagRecords), 500*16.0, "%s lag records", name)
			}
		}
	}
	if c := snap.Checkpoints; assert.NotNil(t, c, name) {
		t.Logf("%s checkpoints: %+v", name, *c)
		assert.Equal(t, 10_000.0, float64(c.IntervalMs), "%s checkpoint interval", name)
		assert.Equal(t, 120_000.0, float64(c.TimeoutMs), "%s checkpoint timeout", name)
		assert.Zero(t, c.RecentFailures, "%s failed checkpoints", name)
		// 128 key groups × 64 KiB blocks, their counters and the sources'
		// splits: 8 MiB and a few KiB.
		assert.InDelta(t, 8<<20, float64(c.StateSizeBytes), 128<<10, "%s checkpointed state", name)
		assert.Less(t, float64(c.DurationMs), 5000.0, "%s checkpoint duration", name)
	}
	assert.Equal(t, 2, snap.TaskManagers.Slots, name)
	assert.Equal(t, 1, snap.TaskManagers.Replicas, name)
	// The TaskManager's memory, as real Flink reports it over REST: its
	// memory model, and heap, managed memory and network segments in use
	// (issue 21). A job this small is never GC-bound.
	if m := snap.TaskManagers.Memory; assert.NotNil(t, m, "%s memory", name) {
		t.Logf("%s memory: process %.0f MiB, heap %.0f MiB, managed %.0f MiB, network %.0f MiB; heap used %v of %v; GC %v ms/s; segments %v of %v",
			name, float64(m.ProcessBytes)/(1<<20), float64(m.HeapBytes)/(1<<20), float64(m.ManagedBytes)/(1<<20), float64(m.NetworkBytes)/(1<<20),
			statString(m.HeapUsedBytes), floatString(m.HeapMaxBytes), statString(m.GCTimeMsPerSecond), floatString(m.NetworkSegmentsUsed), floatString(m.NetworkSegmentsTotal))
		assert.Positive(t, float64(m.ProcessBytes), name)
		assert.Greater(t, float64(m.FlinkBytes), float64(m.HeapBytes+m.ManagedBytes+m.NetworkBytes)-1, name)
		if assert.NotNil(t, m.NetworkSegmentsTotal, name) {
			assert.InDelta(t, float64(m.NetworkBytes)/(32<<10), float64(*m.NetworkSegmentsTotal), 1, "%s: network memory in 32 KiB segments", name)
		}
		if assert.NotNil(t, m.HeapUsedBytes, name) && assert.NotNil(t, m.HeapMaxBytes, name) {
			assert.LessOrEqual(t, float64(*m.HeapUsedBytes.Max), float64(*m.HeapMaxBytes), name)
		}
		if m.GCTimeMsPerSecond != nil {
			assert.Less(t, float64(*m.GCTimeMsPerSecond.Avg), 300.0, "%s: GC time", name)
		}
	}
}

func statString(s *scaling.Stat) string {
	if s == nil || s.Avg == nil || s.Max == nil {
		return "?"
	}
	return fmt.Sprintf("%.4g (max %.4g)", float64(*s.Avg), float64(*s.Max))
}

func floatString(f *scaling.Float) string {
	if f == nil {
		return "?"
	}
	return fmt.Sprintf("%.4g", float64(*f))
}

// checkReporterAgainstREST compares the two sources vertex by vertex at
// their last polls: the same vertices (by id), and busy times within the
// busy tolerance of each other.
func checkReporterAgainstREST(t *testing.T, rest, prom metrics.FlinkSample) {
	t.Helper()
	assert.Equal(t, rest.JobID, prom.JobID)
	byID := map[string]metrics.VertexSample{}
	for _, v := range prom.Vertices {
		byID[v.ID] = v
	}
	for _, rv := range rest.Vertices {
		pv, ok := byID[rv.ID]
		if !assert.True(t, ok, "the reporter has vertex %s (%s)", rv.ID, rv.Name) {
			continue
		}
		assert.Equal(t, rv.Parallelism, pv.Parallelism, "%s: subtasks reported", rv.Name)
		assert.Equal(t, flinkprom.PromSanitize(rv.Name), pv.Name, "task_name is the sanitized vertex name")
		if rv.BusyTimeMsPerSecond != nil && pv.BusyTimeMsPerSecond != nil {
			tol := math.Max(busyAbsTol, rv.BusyTimeMsPerSecond.Avg*busyRelTol)
			assert.InDelta(t, rv.BusyTimeMsPerSecond.Avg, pv.BusyTimeMsPerSecond.Avg, tol, "%s: REST and reporter busy", rv.Name)
		}
	}
	if assert.NotNil(t, rest.Checkpoints) && assert.NotNil(t, prom.Checkpoints) {
		assert.InDelta(t, rest.Checkpoints.Completed, prom.Checkpoints.Completed, 1, "completed checkpoints")
	}
}

// sleepUntil waits until the testbed's scenario time reaches at.
func sleepUntil(ctx context.Context, tb *Testbed, at time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(at - tb.Now()):
	}
}

// testWriter sends the testbed's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recorder is an http.RoundTripper that keeps the latest answer to every
// GET it carries (path and query), for the golden fixtures: the collector
// lists a vertex's metric ids only on its first poll, so the fixtures hold
// every poll's calls.
type recorder struct {
	mu    sync.Mutex
	calls []goldenCall
	at    map[string]int

	// tr is the controller's REST transport, its dials counted.
	tr              *flink.Transport
	dials, requests atomic.Int64
}

// newRecorder records through the controller's own REST transport
// (controllers.NewRESTTransport), its dials counted.
func newRecorder() *recorder {
	r := &recorder{tr: controllers.NewRESTTransport()}
	dial := (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	r.tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		r.dials.Add(1)
		return dial(ctx, network, addr)
	}
	return r
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.requests.Add(1)
	resp, err := r.tr.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	c := goldenCall{Path: req.URL.Path, Query: req.URL.RawQuery, Status: resp.StatusCode, Body: json.RawMessage(body)}
	r.mu.Lock()
	if r.at == nil {
		r.at = map[string]int{}
	}
	if i, ok := r.at[c.Path+"?"+c.Query]; ok {
		r.calls[i] = c
	} else {
		r.at[c.Path+"?"+c.Query] = len(r.calls)
		r.calls = append(r.calls, c)
	}
	r.mu.Unlock()
	return resp, nil
}

// goldenCall is one recorded REST exchange.
type goldenCall struct {
	Path   string          `json:"path"`
	Query  string          `json:"query,omitempty"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// goldenREST is testdata/golden/flink-<v>/rest.json.
type goldenREST struct {
	FlinkVersion string       `json:"flinkVersion"`
	JobID        string       `json:"jobId"`
	Recorded     string       `json:"recorded"`
	Calls        []goldenCall `json:"calls"`
}

func writeGolden(t *testing.T, tb *Testbed, rec *recorder, last metrics.FlinkSample) {
	dir := filepath.Join("testdata", "golden", "flink-"+string(tb.Flink.Version()))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rec.mu.Lock()
	calls := append([]goldenCall(nil), rec.calls...)
	rec.mu.Unlock()
	sort.SliceStable(calls, func(i, k int) bool { return calls[i].Path+"?"+calls[i].Query < calls[k].Path+"?"+calls[k].Query })
	// Flink's /taskmanagers/:id/metrics and the cluster overview are not
	// read by the collector; record them too, for the simulator's check.
	for _, p := range []string{"/overview", "/jobs/overview", "/taskmanagers", "/jobs/" + tb.JobID + "/checkpoints/config"} {
		if !hasCall(calls, p) {
			calls = append(calls, getCall(t, tb, p))
		}
	}
	g := goldenREST{FlinkVersion: last.FlinkVersion, JobID: tb.JobID, Recorded: time.Now().UTC().Format(time.RFC3339), Calls: calls}
	b, err := json.MarshalIndent(g, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rest.json"), append(b, '\n'), 0o644))
	for _, target := range tb.Flink.ReporterTargets() {
		resp, err := http.Get(target.URL + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "reporter-"+string(target.Role)+".txt"), body, 0o644))
	}
	t.Logf("golden fixtures written to %s (%d REST calls)", dir, len(calls))
}

func hasCall(calls []goldenCall, path string) bool {
	for _, c := range calls {
		if c.Path == path && c.Query == "" {
			return true
		}
	}
	return false
}

func getCall(t *testing.T, tb *Testbed, path string) goldenCall {
	resp, err := http.Get(tb.Flink.RESTURL() + path)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	return goldenCall{Path: path, Status: resp.StatusCode, Body: json.RawMessage(body)}
}
