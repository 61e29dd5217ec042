package promreporter

import (
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

func scrape(t *testing.T, h http.Handler, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func TestHandlerServesOnlyItsProcess(t *testing.T) {
	v := fixture()
	get := func() sim.View { return v }
	for _, tc := range []struct {
		process      string
		tmID, other  string
		subtaskCount int
	}{
		{fxTM1, "orders_agg_taskmanager_1_1", "orders_agg_taskmanager_1_2", 2},
		{fxTM2, "orders_agg_taskmanager_1_2", "orders_agg_taskmanager_1_1", 2},
	} {
		res := scrape(t, Handler(get, tc.process), "/metrics", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", res.Header.Get("Content-Type"))
		text := body(t, res)
		assert.Equal(t, string(TaskManager(v, tc.process)), text)
		assert.Contains(t, text, `tm_id="`+tc.tmID+`"`)
		assert.NotContains(t, text, tc.other)

		mfs := parse(t, []byte(text))
		busy := mfs["flink_taskmanager_job_task_busyTimeMsPerSecond"]
		require.NotNil(t, busy)
		assert.Len(t, busy.GetMetric(), tc.subtaskCount)
		for _, m := range busy.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tm_id" {
					assert.Equal(t, tc.tmID, l.GetValue())
				}
			}
		}
	}
	// Only the source subtask on TaskManager 2 has no pendingRecords yet.
	assert.NotContains(t, string(TaskManager(v, fxTM2)), "pendingRecords")
	assert.Contains(t, string(TaskManager(v, fxTM1)), "pendingRecords")

	res := scrape(t, Handler(get, JobManagerProcess), "/", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, ContentType, res.Header.Get("Content-Type"))
	text := body(t, res)
	assert.Equal(t, string(JobManager(v)), text)
	assert.NotContains(t, text, "flink_taskmanager")
}

func TestHandlerUnknownTaskManager(t *testing.T) {
	v := fixture()
	res := scrape(t, Handler(func() sim.View { return v }, "orders-agg-taskmanager-9-9"), "/metrics", nil)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

func TestHandlerNameFilterAndGzip(t *testing.T) {
	v := fixture()
	h := Handler(func() sim.View { return v }, fxTM1)

	res := scrape(t, h, "/metrics?name[]=flink_taskmanager_job_task_busyTimeMsPerSecond&name%5B%5D=flink_taskmanager_Status_JVM_CPU_Load", nil)
	mfs := parse(t, []byte(body(t, res)))
	assert.Len(t, mfs, 2)
	assert.Contains(t, mfs, "flink_taskmanager_job_task_busyTimeMsPerSecond")
	assert.Contains(t, mfs, "flink_taskmanager_Status_JVM_CPU_Load")

	res = scrape(t, h, "/metrics", http.Header{"Accept-Encoding": {"deflate, GZIP"}})
	assert.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(res.Body)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, string(TaskManager(v, fxTM1)), string(plain))

	res = scrape(t, h, "/metrics", http.Header{"Accept-Encoding": {"gzip;q=1"}})
	assert.Empty(t, res.Header.Get("Content-Encoding"))
}

// Over a real connection: Go's client asks for gzip and inflates it.
func TestHandlerOverHTTP(t *testing.T) {
	var mu sync.Mutex
	v := fixture()
	srv := httptest.NewServer(Handler(func() sim.View { mu.Lock(); defer mu.Unlock(); return v }, fxTM1))
	defer srv.Close()

	get := func() string {
		res, err := http.Get(srv.URL + "/metrics")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, ContentType, res.Header.Get("Content-Type"))
		return body(t, res)
	}
	assert.Contains(t, get(), " 734.0\n")
	mu.Lock()
	v.Job.Vertices[1].Subtasks[1].BusyTimeMsPerSecond = 735
	mu.Unlock()
	assert.Contains(t, get(), " 735.0\n") // the View is read per request
}

func TestTasksOnlyWhileDeployed(t *testing.T) {
	v := fixture()
	v.Job.Vertices[1].Status = "CANCELED"
	out := string(TaskManager(v, fxTM1))
	assert.NotContains(t, out, fxWindowID)
	assert.Contains(t, out, fxSourceID)

	for _, state := range []string{"CREATED", "INITIALIZING", "FINISHED", "CANCELED", "FAILED"} {
		v := fixture()
		v.Job.State = state
		out := string(TaskManager(v, fxTM1))
		assert.NotContains(t, out, "flink_taskmanager_job", state)
		assert.Contains(t, out, "flink_taskmanager_Status_JVM_CPU_Load", state)
	}
}

func TestJobManagerStates(t *testing.T) {
	v := fixture()
	v.Job.State = "FINISHED"
	out := string(JobManager(v))
	assert.NotContains(t, out, "flink_jobmanager_job_")
	assert.Contains(t, out, `flink_jobmanager_numRunningJobs{host="orders_agg_jobmanager",} 0.0`)

	v = fixture()
	v.Job.State = "RESTARTING"
	v.Job.Checkpoints.LatestCompleted = nil
	v.Job.Checkpoints.LatestRestored = nil
	lines := outputLines(JobManager(v))
	job := `{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",host="orders_agg_jobmanager",job_name="orders_agg",}`
	for _, l := range []string{
		"flink_jobmanager_job_uptime" + job + " 0.0",
		"flink_jobmanager_job_lastCheckpointDuration" + job + " -1.0",
		"flink_jobmanager_job_lastCheckpointSize" + job + " -1.0",
		"flink_jobmanager_job_lastCheckpointFullSize" + job + " -1.0",
		"flink_jobmanager_job_lastCheckpointRestoreTimestamp" + job + " -1.0",
		`flink_jobmanager_numRunningJobs{host="orders_agg_jobmanager",} 1.0`,
	} {
		assert.True(t, lines[l], "missing %s", l)
	}
}

func TestOperatorNameTruncated(t *testing.T) {
	v := fixture()
	v.Job.Vertices[0].OperatorName = "Source: " + strings.Repeat("k", 100)
	mfs := parse(t, TaskManager(v, fxTM1))
	for _, m := range mfs["flink_taskmanager_job_task_operator_numRecordsIn"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "operator_name" {
				assert.Equal(t, "Source:_"+strings.Repeat("k", 72), l.GetValue())
			}
		}
	}
	// A cut through a surrogate pair leaves one '_'.
	assert.Equal(t, strings.Repeat("a", 79)+"_", sanitize(truncateOperatorName(strings.Repeat("a", 79)+"😀")))
	assert.Equal(t, "_", sanitize("😀"))
	assert.Equal(t, "__", sanitize("\xff\xfe"))
	assert.Equal(t, "Source:_Kafka_Source____Map", sanitize("Source: Kafka Source -> Map"))
}

func TestJavaLong(t *testing.T) {
	assert.Equal(t, 266.0, javaLong(266.9))
	assert.Equal(t, -1.0, javaLong(-1.9))
	assert.Equal(t, 0.0, javaLong(math.NaN()))
	assert.Equal(t, float64(math.MaxInt64), javaLong(math.Inf(1)))
	assert.Equal(t, float64(math.MinInt64), javaLong(math.Inf(-1)))
}

func TestExecutionGraphIDStable(t *testing.T) {
	id := ExecutionGraphID(fxJobID)
	assert.Regexp(t, `^[0-9a-f]{32}$`, id)
	assert.Equal(t, id, ExecutionGraphID(fxJobID))
	assert.NotEqual(t, id, ExecutionGraphID("00000000000000000000000000000000"))
	assert.Equal(t, id+"_"+fxSourceID+"_3_2", AttemptID(fxJobID, fxSourceID, 3, 2))
}

func TestSyntheticJVMGauges(t *testing.T) {
	tm := sim.TaskManagerView{CPUCores: 2, FreeMemory: 1 << 30}
	g := taskManagerGauges(tm, []float64{1000, 500, math.NaN()})
	assert.InDelta(t, 0.76, g.cpuLoad, 1e-12)
	assert.Equal(t, float64(1<<30), g.heapMax)
	assert.Equal(t, g.heapMax, g.heapCommitted)
	assert.Equal(t, math.Trunc(float64(1<<30)*(0.2+0.5*0.76)), g.heapUsed)

	g = taskManagerGauges(sim.TaskManagerView{CPUCores: math.NaN()}, []float64{4000, 4000})
	assert.Equal(t, 1.0, g.cpuLoad)
	assert.Equal(t, float64(defaultHeapMax), g.heapMax)
}
