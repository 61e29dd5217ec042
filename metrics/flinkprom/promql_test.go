package flinkprom

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
)

const (
	pqJob = "3f2a9c1e8b7d4f60a1b2c3d4e5f60718"
	pqSrc = "cbc357ccb763df2852fee8c4fc7d55f2"
	pqWin = "90bea66de1c231edf33913ecd54406c1"
)

type series struct {
	labels map[string]string
	value  string
}

// fakeProm answers /api/v1/query as Prometheus does, from a table of
// results by query text, and records the queries and times asked.
type fakeProm struct {
	mu      sync.Mutex
	results map[string][]series
	fail    map[string]bool
	asked   []string
	times   []string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q := r.FormValue("query")
	f.mu.Lock()
	f.asked = append(f.asked, q)
	f.times = append(f.times, r.FormValue("time"))
	res, fail := f.results[q], f.fail[q]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fail {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`))
		return
	}
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	out := []sample{}
	for _, s := range res {
		out = append(out, sample{Metric: s.labels, Value: [2]any{1795262400.0, s.value}})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "vector", "result": out},
	})
}

func newPromQL(t *testing.T, f *fakeProm) *PromQL {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(api.Config{Address: srv.URL})
	require.NoError(t, err)
	return &PromQL{API: v1.NewAPI(c)}
}

func byTaskID(pairs ...string) []series {
	var out []series
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, series{labels: map[string]string{"task_id": pairs[i]}, value: pairs[i+1]})
	}
	return out
}

func jobSeries(v string) []series {
	return []series{{labels: map[string]string{"job_id": pqJob, "job_name": "orders_agg"}, value: v}}
}

func offsets(v1, v2 string) []series {
	return []series{
		{labels: map[string]string{"task_id": pqSrc, "subtask_index": "1", "topic": "orders_v1", "partition": "4"}, value: v2},
		{labels: map[string]string{"task_id": pqSrc, "subtask_index": "0", "topic": "orders_v1", "partition": "3"}, value: v1},
	}
}

func TestPromQLRendersAndParses(t *testing.T) {
	p := &PromQL{}
	q := func(name string) string {
		s, err := p.Render(name, pqJob)
		require.NoError(t, err)
		return s
	}
	f := &fakeProm{results: map[string][]series{
		q(QSubtasks):          byTaskID(pqSrc, "2", pqWin, "3"),
		q(QBusyMax):           byTaskID(pqSrc, "188", pqWin, "734"),
		q(QBusyAvg):           byTaskID(pqSrc, "150.5", pqWin, "NaN"),
		q(QBackPressuredMax):  byTaskID(pqSrc, "412", pqWin, "0"),
		q(QBackPressuredAvg):  byTaskID(pqSrc, "400", pqWin, "0"),
		q(QRecordsInRateHead): byTaskID(pqSrc, "15234.55"),
		q(QRecordsInRateTask): byTaskID(pqSrc, "0", pqWin, "15000"),
		q(QRecordsOutRate):    byTaskID(pqSrc, "15234.55", pqWin, "0"),
		q(QRecordsInHead):     byTaskID(pqSrc, "1.2345678e+07"),
		q(QRecordsInTask):     byTaskID(pqSrc, "0", pqWin, "12000000"),
		q(QRecordsOut):        byTaskID(pqSrc, "12345678", pqWin, "0"),
		q(QPendingRecords):    byTaskID(pqSrc, "48210"),
		q(QCurrentOffset):     offsets("45231007", "100"),
		q(QCommittedOffset):   offsets("45000000", "-1"),

		q(QCheckpointDuration):   jobSeries("1834"),
		q(QCheckpointSize):       jobSeries("52428800"),
		q(QCheckpointsCompleted): jobSeries("42"),
		q(QCheckpointsFailed):    jobSeries("1"),
		q(QCheckpointsInProg):    jobSeries("0"),
		q(QRestarts):             jobSeries("2"),
		q(QSlotsTotal):           {{labels: map[string]string{}, value: "4"}},
		q(QSlotsAvailable):       {{labels: map[string]string{}, value: "1"}},
	}}
	pq := newPromQL(t, f)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s, err := pq.Collect(context.Background(), pqJob, at)
	require.NoError(t, err)

	// The rendered queries.
	assert.Len(t, f.asked, len(queryNames))
	assert.Contains(t, f.asked, `max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="`+pqJob+`"})`)
	assert.Contains(t, f.asked, `avg by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="`+pqJob+`"})`)
	assert.Contains(t, f.asked, `sum by (task_id) (flink_taskmanager_job_task_operator_pendingRecords{job_id="`+pqJob+`"})`)
	assert.Contains(t, f.asked, `sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsInPerSecond{job_id="`+pqJob+`"}`+
		` and on (task_id, subtask_index, operator_id) label_replace(flink_taskmanager_job_task_operator_numRecordsInPerSecond{job_id="`+pqJob+`"}, "operator_id", "$1", "task_id", "(.*)"))`)
	for _, ts := range f.times {
		assert.Equal(t, "1795262400", ts, "instant queries at the time asked")
	}

	assert.Equal(t, pqJob, s.JobID)
	assert.Equal(t, "orders_agg", s.JobName)
	assert.Equal(t, at, s.At)
	require.Len(t, s.Vertices, 2)
	src, win := vertexOf(s, pqSrc), vertexOf(s, pqWin)
	require.NotNil(t, src)
	require.NotNil(t, win)
	assert.Equal(t, 2, src.Parallelism)
	assert.Equal(t, 3, win.Parallelism)
	assert.Equal(t, &metrics.Agg{Avg: 150.5, Max: 188}, src.BusyTimeMsPerSecond)
	assert.Equal(t, &metrics.Agg{Avg: 400, Max: 412}, src.BackPressuredTimeMsPerSecond)
	assert.Equal(t, 15234.55, *src.NumRecordsInPerSecond, "the head operator's")
	assert.Equal(t, 12345678.0, *src.NumRecordsIn)
	assert.Equal(t, 48210.0, *src.PendingRecords)
	assert.Equal(t, []metrics.PartitionOwner{
		{Topic: "orders_v1", Partition: 3, Subtask: 0, CurrentOffset: 45231007, CommittedOffset: 45000000},
		{Topic: "orders_v1", Partition: 4, Subtask: 1, CurrentOffset: 100, CommittedOffset: -1},
	}, src.Partitions)

	assert.Nil(t, win.BusyTimeMsPerSecond, "a NaN average is missing")
	assert.Contains(t, s.Missing, pqWin+": busyTimeMsPerSecond: not finite (busy_avg)")
	assert.Equal(t, 15000.0, *win.NumRecordsInPerSecond, "the task's, no head operator series")
	assert.Nil(t, win.PendingRecords)
	assert.Len(t, s.Missing, 1, "%q", s.Missing)

	require.NotNil(t, s.Checkpoints)
	assert.Equal(t, metrics.CheckpointSample{LastDuration: 1834 * time.Millisecond, LastStateSize: 52428800, Completed: 42, Failed: 1}, *s.Checkpoints)
	assert.Equal(t, &metrics.SlotsSample{Total: 4, Available: 1}, s.Slots)
	assert.Contains(t, f.asked, `max(flink_jobmanager_taskSlotsTotal and on (host) flink_jobmanager_job_numRestarts{job_id="`+pqJob+`"})`)
}

// TestPromQLSlots: the cluster's slots need one plausible value of each
// query; otherwise they are unknown, and a failed slot query is in
// Dropped, never Missing.
func TestPromQLSlots(t *testing.T) {
	p := &PromQL{}
	q := func(name string) string {
		s, err := p.Render(name, pqJob)
		require.NoError(t, err)
		return s
	}
	one := func(v string) []series { return []series{{labels: map[string]string{}, value: v}} }
	for _, tc := range []struct {
		name             string
		total, available []series
		fail             bool
		want             *metrics.SlotsSample
	}{
		{name: "one value each", total: one("8"), available: one("2"), want: &metrics.SlotsSample{Total: 8, Available: 2}},
		{name: "no series (no JobManager reports the job)", want: nil},
		{name: "only the total", total: one("8"), want: nil},
		{name: "NaN", total: one("NaN"), available: one("2"), want: nil},
		{name: "more available than there are", total: one("8"), available: one("9"), want: nil},
		{name: "several series (an override without max)", total: append(one("8"), one("4")...), available: one("2"), want: nil},
		{name: "the queries fail", fail: true, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeProm{results: map[string][]series{
				q(QSubtasks):       byTaskID(pqSrc, "2"),
				q(QSlotsTotal):     tc.total,
				q(QSlotsAvailable): tc.available,
			}}
			if tc.fail {
				f.fail = map[string]bool{q(QSlotsTotal): true, q(QSlotsAvailable): true}
			}
			s, err := newPromQL(t, f).Collect(context.Background(), pqJob, time.Time{})
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.Slots)
			for _, m := range s.Missing {
				assert.NotContains(t, m, "slots")
			}
			if tc.fail {
				assert.Len(t, s.Dropped, 2)
				assert.Contains(t, s.Dropped[0], "promql slots_")
			}
		})
	}
}

func TestPromQLOverridesAndFailures(t *testing.T) {
	p := &PromQL{Window: 90 * time.Second, Templates: Templates{
		QBusyMax:        `max by (task_id) (max_over_time(flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="{{.JobID}}"}[{{.Window}}]))`,
		QPendingRecords: ``, // skipped
	}}
	busyMax, err := p.Render(QBusyMax, pqJob)
	require.NoError(t, err)
	assert.Equal(t, `max by (task_id) (max_over_time(flink_taskmanager_job_task_busyTimeMsPerSecond{job_id="`+pqJob+`"}[1m30s]))`, busyMax)
	skipped, err := p.Render(QPendingRecords, pqJob)
	require.NoError(t, err)
	assert.Empty(t, skipped)
	def, err := p.Render(QBusyAvg, pqJob)
	require.NoError(t, err)
	assert.Equal(t, strings.ReplaceAll(DefaultTemplates()[QBusyAvg], "{{.JobID}}", pqJob), def)

	_, err = p.Render(QBusyMax, `x"}) or vector(1) #`)
	assert.Error(t, err, "a job id that would inject PromQL")
	_, err = (&PromQL{Templates: Templates{QBusyMax: "{{.Nope}}"}}).Render(QBusyMax, pqJob)
	assert.Error(t, err)

	subtasks, _ := p.Render(QSubtasks, pqJob)
	busyAvg, _ := p.Render(QBusyAvg, pqJob)
	f := &fakeProm{
		results: map[string][]series{subtasks: byTaskID(pqSrc, "2"), busyMax: byTaskID(pqSrc, "500")},
		fail:    map[string]bool{busyAvg: true},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := api.NewClient(api.Config{Address: srv.URL})
	require.NoError(t, err)
	p.API = v1.NewAPI(c)
	s, err := p.Collect(context.Background(), pqJob, time.Time{})
	require.NoError(t, err)
	assert.NotContains(t, f.asked, "", "the skipped query is not run")
	assert.Len(t, f.asked, len(queryNames)-1)
	require.Len(t, s.Vertices, 1)
	assert.Nil(t, s.Vertices[0].BusyTimeMsPerSecond)
	assert.True(t, hasPrefix(s.Missing, "promql busy_avg: "), "%q", s.Missing)
	assert.Contains(t, s.Missing, pqSrc+": backPressuredTimeMsPerSecond", "empty result: missing")
	assert.Contains(t, s.Missing, "checkpoints: no checkpoint gauges")
	assert.Nil(t, s.Checkpoints)

	// Without the subtasks query nothing is known.
	f.fail[subtasks] = true
	_, err = p.Collect(context.Background(), pqJob, time.Time{})
	assert.ErrorContains(t, err, "subtasks")
}

func TestDefaultTemplatesCoverEveryQuery(t *testing.T) {
	d := DefaultTemplates()
	assert.Len(t, d, len(queryNames))
	for _, n := range queryNames {
		assert.Contains(t, d[n], `job_id="{{.JobID}}"`, n)
	}
	d[QBusyMax] = "changed"
	assert.NotEqual(t, "changed", DefaultTemplates()[QBusyMax], "a copy")
}

// TestPromQLSourceOutputFallsBack: a source vertex's output is the task's,
// else its source operators' (records_out_source, records_out_rate_source),
// as in the Scraper.
func TestPromQLSourceOutputFallsBack(t *testing.T) {
	p := &PromQL{}
	q := func(name string) string {
		s, err := p.Render(name, pqJob)
		require.NoError(t, err)
		return s
	}
	assert.Equal(t, `sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsOut{job_id="`+pqJob+`",operator_name=~"Source:.*"})`, q(QRecordsOutSource))
	assert.Equal(t, `sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond{job_id="`+pqJob+`",operator_name=~"Source:.*"})`, q(QRecordsOutRateSource))
	for _, tc := range []struct {
		name                          string
		taskOut, taskRate, src, srate []series
		count, rate                   *float64
		missing                       string
	}{{
		name:    "task-level 0, source operators 300 and 30: theirs",
		taskOut: byTaskID(pqSrc, "0"), taskRate: byTaskID(pqSrc, "0"), src: byTaskID(pqSrc, "300"), srate: byTaskID(pqSrc, "30"),
		count: f64(300), rate: f64(30),
	}, {
		name: "task-level absent: the source operators'",
		src:  byTaskID(pqSrc, "300"), srate: byTaskID(pqSrc, "30"),
		count: f64(300), rate: f64(30),
	}, {
		name:    "task-level 150 and 15 (a chained filter): the task's",
		taskOut: byTaskID(pqSrc, "150"), taskRate: byTaskID(pqSrc, "15"), src: byTaskID(pqSrc, "300"), srate: byTaskID(pqSrc, "30"),
		count: f64(150), rate: f64(15),
	}, {
		name:    "no source operator (not a source vertex): the task's 0",
		taskOut: byTaskID(pqSrc, "0"), taskRate: byTaskID(pqSrc, "0"),
		count: f64(0), rate: f64(0),
	}, {
		name:    "task count 0, rates 0 vs 30, no source count: the count is missing, not 0",
		taskOut: byTaskID(pqSrc, "0"), taskRate: byTaskID(pqSrc, "0"), srate: byTaskID(pqSrc, "30"),
		count: nil, rate: f64(30),
		missing: pqSrc + ": numRecordsOut: " + zeroOutput,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeProm{results: map[string][]series{
				q(QSubtasks):             byTaskID(pqSrc, "2"),
				q(QRecordsOut):           tc.taskOut,
				q(QRecordsOutRate):       tc.taskRate,
				q(QRecordsOutSource):     tc.src,
				q(QRecordsOutRateSource): tc.srate,
			}}
			s, err := newPromQL(t, f).Collect(context.Background(), pqJob, time.Time{})
			require.NoError(t, err)
			v := vertexOf(s, pqSrc)
			require.NotNil(t, v)
			assert.Equal(t, tc.count, v.NumRecordsOut, "numRecordsOut")
			assert.Equal(t, tc.rate, v.NumRecordsOutPerSecond, "numRecordsOutPerSecond")
			if tc.missing != "" {
				assert.Contains(t, s.Missing, tc.missing)
			}
		})
	}
}
