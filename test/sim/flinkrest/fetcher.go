package flinkrest

import (
	"math"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
)

// DefaultMetricFetcherInterval is Flink's metrics.fetcher.update-interval
// default.
const DefaultMetricFetcherInterval = 10 * time.Second

// Option configures a handler.
type Option func(*handler)

// WithMetricFetcherInterval sets the JobManager's
// metrics.fetcher.update-interval, in the cluster's (virtual) time; 0
// serves every metric live, as no JobManager does.
func WithMetricFetcherInterval(d time.Duration) Option {
	return func(h *handler) { h.fetcher.interval = max(d, 0) }
}

// metricFetcher is the JobManager's MetricFetcher and the MetricStore it
// fills. Real Flink's metrics handlers (every …/metrics endpoint) do not
// read the TaskManagers: they call MetricFetcher.update(), which starts an
// asynchronous fetch from every metric query service when the last one
// started more than metrics.fetcher.update-interval ago, and answer from
// the store as it is. So the request that triggers a fetch is answered
// from the previous fetch. Here a fetch is the cluster's view at the
// triggering request, and it lands at once (a real one takes some hundred
// milliseconds of wall time): the next request sees it.
//
// A fetch is also taken as the tasks of a new job attempt start (a new job
// id or RUNNING timestamp): Flink's web UI and the operator poll metrics
// constantly, so the store holds what a just-deployed task reports, which
// is what the first request after a deployment gets (justStarted).
type metricFetcher struct {
	interval time.Duration

	mu      sync.Mutex
	store   *sim.View // nil: nothing fetched yet
	fetched time.Time // MetricFetcherImpl.lastUpdateTime
	attempt attempt   // the latest job attempt whose start was fetched
}

type attempt struct {
	job     string
	running int64 // timestamps.RUNNING, epoch ms
}

// runningAttempt is the job attempt whose tasks run in v.
func runningAttempt(v sim.View) (attempt, bool) {
	if v.Job.ID == "" || v.Job.State != "RUNNING" {
		return attempt{}, false
	}
	return attempt{job: v.Job.ID, running: v.Job.Timestamps["RUNNING"]}, true
}

// update is MetricFetcher.update() then getMetricStore() for a request
// made when the cluster is live: the store the request is answered from
// (nil: empty). It may start (and land) a fetch this request does not see.
func (f *metricFetcher) update(live sim.View) *sim.View {
	if f.interval <= 0 {
		return &live
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, running := runningAttempt(live); running && a != f.attempt {
		start := time.UnixMilli(a.running)
		if f.store == nil || !start.Before(f.fetched) {
			justStarted := justStarted(live, start)
			f.store, f.fetched = &justStarted, start
		}
		f.attempt = a
	}
	answer := f.store
	// MetricFetcherImpl: currentTime - lastUpdateTime > updateInterval.
	if f.store == nil || live.Now.Sub(f.fetched) > f.interval {
		fetched := live
		f.store, f.fetched = &fetched, live.Now
	}
	return answer
}

// justStarted is what a fetch as the tasks started at start holds: the
// tasks' metrics as Flink registers them, before any record and before the
// first 5-second update of their views, in the structure of now (the same
// subtasks, TaskManagers and partitions). Busy time is 1000 ms/s
// (TaskIOMetricGroup: 1000 − idle − backpressured, both still 0), counters
// and meters 0, pendingRecords not registered yet, every partition's
// offsets -1 (KafkaSourceReaderMetrics' INITIAL_OFFSET). The JobManager's
// and the TaskManagers' own metrics are those of now.
func justStarted(now sim.View, start time.Time) sim.View {
	v := now
	v.Now = start
	v.Job.Vertices = make([]sim.VertexView, len(now.Job.Vertices))
	for i, vx := range now.Job.Vertices {
		subs := make([]sim.SubtaskView, len(vx.Subtasks))
		for k, st := range vx.Subtasks {
			busy, acc := 1000.0, 0.0
			if math.IsNaN(st.BusyTimeMsPerSecond) {
				busy = math.NaN() // busy time not measured
			}
			if math.IsNaN(st.AccumulatedBusyTimeMs) {
				acc = math.NaN()
			}
			s := sim.SubtaskView{
				Index: st.Index, Attempt: st.Attempt, TaskManagerID: st.TaskManagerID, Host: st.Host,
				BusyTimeMsPerSecond: busy, AccumulatedBusyTimeMs: acc,
			}
			for _, p := range st.Partitions {
				s.Partitions = append(s.Partitions, sim.PartitionView{Topic: p.Topic, Partition: p.Partition, CurrentOffset: -1, CommittedOffset: -1})
			}
			subs[k] = s
		}
		vx.Subtasks = subs
		v.Job.Vertices[i] = vx
	}
	return v
}

// metricStore is the store a metrics handler answers from, after the
// fetcher's update (once per request; nil: empty). Call it after the
// request's parameters are parsed: Flink rejects bad ones before its
// handler runs.
func (req *request) metricStore() *sim.View {
	if !req.storeRead {
		req.store, req.storeRead = req.h.fetcher.update(req.view), true
	}
	return req.store
}
