package flinkprom

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/promreporter"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// pipeline is source → map (rebalance) → keyed sink; at 3000 rec/s the map
// (4×500) is the bottleneck and back-pressures the source.
func pipeline() sim.JobSpec {
	return sim.JobSpec{
		Name: "orders_agg", FlinkVersion: "1.20", ConsumerGroup: "orders-agg",
		Topics: []sim.TopicSpec{{Name: "orders.v1", Partitions: 6}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: orders", Parallelism: 3, Capacity: 5000, Selectivity: 1, Topics: []string{"orders.v1"}},
			{Name: "Map", Parallelism: 4, Capacity: 500, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: orders", Ship: "REBALANCE"}}},
			{Name: "KeyedAgg -> Sink: Print", Parallelism: 2, MaxParallelism: 128, Capacity: 4000, Selectivity: 1,
				Inputs: []sim.EdgeSpec{{From: "Map", Ship: "HASH"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Timeout: 10 * time.Minute, Base: 2 * time.Second},
		Restart:     sim.RestartSpec{Time: 30 * time.Second, TaskManagerStartup: 20 * time.Second},
	}
}

// runJob runs a job for d at perTopic rec/s and returns its View.
func runJob(t testing.TB, spec sim.JobSpec, perTopic float64, d time.Duration) sim.View {
	t.Helper()
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return perTopic })
	j, err := sim.NewJob(spec, sim.Options{Start: t0, Seed: 1, Load: load})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	require.NoError(t, j.Advance(d))
	v := j.View()
	require.Equal(t, "RUNNING", v.Job.State)
	return v
}

// cluster serves a View's processes: one server per TaskManager and one for
// the JobManager. wrap, when set, may replace a TaskManager's handler.
type cluster struct {
	targets []Target
	tmURL   map[string]string // tm id → URL
	servers []*httptest.Server
}

func serve(t testing.TB, v sim.View, wrap func(tm string, h http.Handler) http.Handler) *cluster {
	t.Helper()
	get := func() sim.View { return v }
	c := &cluster{tmURL: map[string]string{}}
	start := func(h http.Handler) string {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		c.servers = append(c.servers, s)
		return s.URL
	}
	c.targets = append(c.targets, Target{URL: start(promreporter.Handler(get, promreporter.JobManagerProcess)), Role: JobManager})
	for _, tm := range v.TaskManagers {
		h := promreporter.Handler(get, tm.ID)
		if wrap != nil {
			h = wrap(tm.ID, h)
		}
		u := start(h)
		c.tmURL[tm.ID] = u
		c.targets = append(c.targets, Target{URL: u, Role: TaskManager})
	}
	return c
}

func vertexOf(s metrics.FlinkSample, id string) *metrics.VertexSample {
	for i := range s.Vertices {
		if s.Vertices[i].ID == id {
			return &s.Vertices[i]
		}
	}
	return nil
}

// truth aggregates a vertex of the View as the scraper should.
type truth struct {
	busyAvg, busyMax, bpAvg, bpMax float64
	in, out, inCount, outCount     float64
	pending                        *float64
	parts                          map[partKey]sim.PartitionView
}

func groundTruth(vx sim.VertexView) truth {
	var tr truth
	tr.busyMax, tr.bpMax = math.Inf(-1), math.Inf(-1)
	tr.parts = map[partKey]sim.PartitionView{}
	n := float64(len(vx.Subtasks))
	for _, s := range vx.Subtasks {
		tr.busyAvg += s.BusyTimeMsPerSecond / n
		tr.busyMax = max(tr.busyMax, s.BusyTimeMsPerSecond)
		tr.bpAvg += s.BackPressuredTimeMsPerSecond / n
		tr.bpMax = max(tr.bpMax, s.BackPressuredTimeMsPerSecond)
		if vx.IsSource {
			tr.in += s.SourceNumRecordsInPerSecond
			tr.inCount += s.SourceNumRecordsIn
		} else {
			tr.in += s.NumRecordsInPerSecond
			tr.inCount += s.NumRecordsIn
		}
		tr.out += s.NumRecordsOutPerSecond
		tr.outCount += s.NumRecordsOut
		if s.PendingRecords != nil {
			if tr.pending == nil {
				tr.pending = new(float64)
			}
			*tr.pending += *s.PendingRecords
		}
		for _, p := range s.Partitions {
			tr.parts[partKey{p.Topic, p.Partition}] = p
		}
	}
	return tr
}

// restSample is what the REST collector would give for the View's
// topology, without metric values.
func restSample(v sim.View) metrics.FlinkSample {
	out := metrics.FlinkSample{At: v.Now, JobID: v.Job.ID, JobName: v.Job.Name, State: v.Job.State}
	for _, vx := range v.Job.Vertices {
		out.Vertices = append(out.Vertices, metrics.VertexSample{ID: vx.ID, Name: vx.Name, Parallelism: vx.Parallelism, MaxParallelism: vx.MaxParallelism})
		for _, m := range []string{mBusy, mBackPressured, mRecordsInRate, mRecordsOutRate} {
			out.Missing = append(out.Missing, vx.ID+": "+m)
		}
	}
	return out
}

func TestScrapeMatchesTheSimulatedJob(t *testing.T) {
	v := runJob(t, pipeline(), 3000, 5*time.Minute)
	require.GreaterOrEqual(t, len(v.TaskManagers), 2)
	c := serve(t, v, nil)
	s := &Scraper{Timeout: 2 * time.Second, Now: func() time.Time { return v.Now }}
	got, err := s.Scrape(context.Background(), c.targets)
	require.NoError(t, err)
	assert.Empty(t, got.Missing)
	assert.Equal(t, v.Job.ID, got.JobID)
	assert.Equal(t, PromSanitize(v.Job.Name), got.JobName)
	require.Len(t, got.Vertices, len(v.Job.Vertices))

	for _, vx := range v.Job.Vertices {
		t.Run(vx.Name, func(t *testing.T) {
			gv := vertexOf(got, vx.ID)
			require.NotNil(t, gv)
			tr := groundTruth(vx)
			assert.Equal(t, PromSanitize(vx.Name), gv.Name)
			assert.Equal(t, len(vx.Subtasks), gv.Parallelism, "reported subtasks")
			require.NotNil(t, gv.BusyTimeMsPerSecond)
			assert.InDelta(t, tr.busyMax, gv.BusyTimeMsPerSecond.Max, 1e-6)
			assert.InDelta(t, tr.busyAvg, gv.BusyTimeMsPerSecond.Avg, 1e-6)
			// A Gauge<Long>: truncated by the reporter.
			require.NotNil(t, gv.BackPressuredTimeMsPerSecond)
			assert.InDelta(t, tr.bpMax, gv.BackPressuredTimeMsPerSecond.Max, 1)
			assert.InDelta(t, tr.bpAvg, gv.BackPressuredTimeMsPerSecond.Avg, 1)
			require.NotNil(t, gv.NumRecordsInPerSecond)
			assert.InEpsilon(t, tr.in, *gv.NumRecordsInPerSecond, 1e-9)
			require.NotNil(t, gv.NumRecordsOutPerSecond)
			assert.InDelta(t, tr.out, *gv.NumRecordsOutPerSecond, 1e-6)
			require.NotNil(t, gv.NumRecordsIn)
			assert.InDelta(t, tr.inCount, *gv.NumRecordsIn, float64(len(vx.Subtasks)))
			require.NotNil(t, gv.NumRecordsOut)
			assert.InDelta(t, tr.outCount, *gv.NumRecordsOut, float64(len(vx.Subtasks)))
			if !vx.IsSource {
				assert.Nil(t, gv.PendingRecords)
				assert.Empty(t, gv.Partitions)
				return
			}
			require.NotNil(t, tr.pending)
			require.NotNil(t, gv.PendingRecords)
			assert.InDelta(t, *tr.pending, *gv.PendingRecords, float64(len(vx.Subtasks)))
			require.Len(t, gv.Partitions, len(tr.parts))
			for _, p := range gv.Partitions {
				assert.Equal(t, "orders_v1", p.Topic, "Prometheus-sanitized")
				assert.True(t, SameTopic(p.Topic, "orders.v1"))
				want, ok := tr.parts[partKey{"orders.v1", p.Partition}]
				require.True(t, ok, "partition %d", p.Partition)
				assert.Equal(t, want.CurrentOffset, p.CurrentOffset)
				assert.Equal(t, want.CommittedOffset, p.CommittedOffset)
				owner := -1
				for _, st := range vx.Subtasks {
					for _, q := range st.Partitions {
						if q.Partition == p.Partition {
							owner = st.Index
						}
					}
				}
				assert.Equal(t, owner, p.Subtask)
			}
		})
	}
	// The source is back-pressured by the map, the map is saturated.
	src, mp := vertexOf(got, v.Job.Vertices[0].ID), vertexOf(got, v.Job.Vertices[1].ID)
	assert.Greater(t, src.BackPressuredTimeMsPerSecond.Max, 500.0)
	assert.InDelta(t, 1000, mp.BusyTimeMsPerSecond.Max, 5)

	require.NotNil(t, got.Checkpoints)
	lc := v.Job.Checkpoints.LatestCompleted
	require.NotNil(t, lc)
	assert.Equal(t, time.Duration(lc.EndToEndDurationMs)*time.Millisecond, got.Checkpoints.LastDuration)
	assert.Equal(t, lc.CheckpointedSize, got.Checkpoints.LastStateSize)
	assert.Equal(t, v.Job.Checkpoints.Completed, got.Checkpoints.Completed)
	assert.Equal(t, v.Job.Checkpoints.Failed, got.Checkpoints.Failed)
	assert.Equal(t, v.Job.Checkpoints.InProgress, got.Checkpoints.InProgress)
	// The resource manager's slots, from the JobManager's gauges.
	var slots metrics.SlotsSample
	for _, tm := range v.TaskManagers {
		slots.Total += tm.SlotsNumber
		slots.Available += tm.FreeSlots
	}
	require.NotNil(t, got.Slots)
	assert.Equal(t, slots, *got.Slots)

	// Merged with a REST sample that has the topology only, every metric
	// comes from Prometheus and nothing is missing.
	m := Merge(restSample(v), got)
	assert.Empty(t, m.Missing)
	for i, vx := range v.Job.Vertices {
		assert.Equal(t, vx.Name, m.Vertices[i].Name, "REST's name")
		assert.NotNil(t, m.Vertices[i].BusyTimeMsPerSecond)
		assert.NotNil(t, m.Vertices[i].NumRecordsInPerSecond)
	}
	assert.NotNil(t, m.Checkpoints)
	assert.Equal(t, got.Slots, m.Slots, "the reporter's, REST having none")
}

func TestFailedTaskManagerFlagsItsVertices(t *testing.T) {
	v := runJob(t, pipeline(), 1500, 3*time.Minute)
	broken := v.TaskManagers[0].ID
	c := serve(t, v, func(tm string, h http.Handler) http.Handler {
		if tm != broken {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})
	})
	s := &Scraper{Timeout: 2 * time.Second}
	got, err := s.Scrape(context.Background(), c.targets)
	require.NoError(t, err)
	failure := "taskmanager " + c.tmURL[broken] + ": HTTP 500"
	assert.True(t, hasPrefix(got.Missing, failure), "%q", got.Missing)
	// Every vertex is flagged: which are complete cannot be told without
	// the parallelism.
	for _, gv := range got.Vertices {
		assert.True(t, hasPrefix(got.Missing, gv.ID+": subtasks: "), "%s in %q", gv.ID, got.Missing)
	}
	require.NotNil(t, got.Checkpoints, "the JobManager was read")

	m := Merge(restSample(v), got)
	affected := 0
	for i, vx := range v.Job.Vertices {
		onBroken := 0
		for _, st := range vx.Subtasks {
			if st.TaskManagerID == broken {
				onBroken++
			}
		}
		mv := m.Vertices[i]
		if onBroken == 0 {
			assert.NotNil(t, mv.BusyTimeMsPerSecond, vx.Name)
			assert.False(t, hasPrefix(m.Missing, vx.ID+": subtasks"), vx.Name)
			continue
		}
		affected++
		assert.Nil(t, mv.BusyTimeMsPerSecond, "%s: never averaged over part of the subtasks", vx.Name)
		assert.Nil(t, mv.NumRecordsInPerSecond, vx.Name)
		assert.Contains(t, m.Missing, vx.ID+": subtasks: prometheus reported "+itoa(vx.Parallelism-onBroken)+" of "+itoa(vx.Parallelism))
		assert.Contains(t, m.Missing, vx.ID+": "+mBusy, "REST's entry kept")
	}
	require.Positive(t, affected)
	assert.True(t, hasPrefix(m.Missing, failure), "the failure explains the gap")
}

func TestUnreachableAndMalformedTargets(t *testing.T) {
	v := runJob(t, pipeline(), 1000, 2*time.Minute)
	c := serve(t, v, nil)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("flink_taskmanager_job_task_busyTimeMsPerSecond{job_id=\"x\" 1\n"))
	}))
	defer bad.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	targets := append([]Target{}, c.targets...)
	targets = append(targets,
		Target{URL: bad.URL, Role: TaskManager},
		Target{URL: slow.URL, Role: TaskManager},
		Target{URL: "http://127.0.0.1:1", Role: TaskManager},
	)
	s := &Scraper{Timeout: 200 * time.Millisecond, Concurrency: 2}
	start := time.Now()
	got, err := s.Scrape(context.Background(), targets)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.True(t, hasPrefix(got.Missing, "taskmanager "+bad.URL+": parsing"), "%q", got.Missing)
	assert.True(t, hasPrefix(got.Missing, "taskmanager "+slow.URL+": "), "%q", got.Missing)
	assert.True(t, hasPrefix(got.Missing, "taskmanager http://127.0.0.1:1: "), "%q", got.Missing)
	assert.Len(t, got.Vertices, 3, "the other targets are used")
	// All subtasks were reported: Merge finds every vertex complete and
	// drops the failures, which cost nothing.
	m := Merge(restSample(v), got)
	assert.Empty(t, m.Missing)

	_, err = s.Scrape(context.Background(), nil)
	assert.Error(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Scrape(ctx, targets)
	assert.ErrorIs(t, err, context.Canceled)
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }

// benchSpec is the benchmarks' job: three vertices of parallelism 10 in
// their own slot-sharing groups on TaskManagers of 10 slots.
func benchSpec() sim.JobSpec {
	return sim.JobSpec{
		Name: "bench", ConsumerGroup: "bench",
		Topics: []sim.TopicSpec{{Name: "events", Partitions: 30}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: events", Parallelism: 10, Capacity: 5000, Selectivity: 1, Topics: []string{"events"}, SlotSharingGroup: "a"},
			{Name: "Map", Parallelism: 10, Capacity: 2000, Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: events", Ship: "REBALANCE"}}, SlotSharingGroup: "b"},
			{Name: "Sink: out", Parallelism: 10, Capacity: 4000, Selectivity: 0, Inputs: []sim.EdgeSpec{{From: "Map", Ship: "HASH"}}, SlotSharingGroup: "c"},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 10, Slots: 10},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 10 * time.Second, TaskManagerStartup: 10 * time.Second},
	}
}

// BenchmarkScrape scrapes a job with 3 TaskManagers × 10 subtasks (three
// vertices of parallelism 10 in their own slot-sharing groups, 10 slots
// per TaskManager) and a JobManager, over loopback HTTP.
func BenchmarkScrape(b *testing.B) {
	v := runJob(b, benchSpec(), 5000, 2*time.Minute)
	if len(v.TaskManagers) != 3 {
		b.Fatalf("%d TaskManagers", len(v.TaskManagers))
	}
	c := serve(b, v, nil)
	s := &Scraper{Timeout: 5 * time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.Scrape(ctx, c.targets)
		if err != nil || len(got.Missing) > 0 || len(got.Vertices) != 3 {
			b.Fatalf("%v %q", err, got.Missing)
		}
	}
}

// BenchmarkAggregate is BenchmarkScrape's parsing and aggregation alone,
// on the same four expositions (without HTTP, gzip and rendering).
func BenchmarkAggregate(b *testing.B) {
	v := runJob(b, benchSpec(), 5000, 2*time.Minute)
	jm := promreporter.JobManager(v)
	var tms [][]byte
	size := len(jm)
	for _, tm := range v.TaskManagers {
		tms = append(tms, promreporter.TaskManager(v, tm.ID))
		size += len(tms[len(tms)-1])
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		a := newAggregator("")
		for _, t := range tms {
			mfs, err := parseExposition(t)
			if err != nil {
				b.Fatal(err)
			}
			a.addTaskManager("tm", mfs)
		}
		mfs, err := parseExposition(jm)
		if err != nil {
			b.Fatal(err)
		}
		a.addJobManager("jm", mfs)
		if s, err := a.sample(time.Time{}, nil, false, true); err != nil || len(s.Vertices) != 3 {
			b.Fatal(err)
		}
	}
}
