package flink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

func TestNewValidates(t *testing.T) {
	for _, u := range []string{"", "localhost:8081", "ftp://x", "http://"} {
		_, err := New(u)
		assert.Error(t, err, u)
	}
	_, err := New("http://x", WithTimeout(0))
	assert.Error(t, err)
	_, err = New("https://x", WithHTTPClient(http.DefaultClient), WithTLSConfig(&tls.Config{}))
	assert.Error(t, err)
}

// TLS with a self-signed certificate (trusted through a custom CA pool) and
// the bearer token on every request.
func TestTLSAndBearer(t *testing.T) {
	rate := 100.0
	j := testJob(t, "1.20", &rate)
	require.NoError(t, j.Advance(time.Minute))
	h := flinkrest.NewHandler(j)
	var seen, unauthorized atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("X-Tenant") != "a" {
			unauthorized.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// Untrusted certificate: a clear error.
	plain, err := New(srv.URL, WithBearerToken("s3cret"))
	require.NoError(t, err)
	_, err = plain.Overview(context.Background())
	require.ErrorContains(t, err, "certificate")

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cl, err := New(srv.URL, WithTLSConfig(&tls.Config{RootCAs: pool}), WithBearerToken("s3cret"), WithHeader("X-Tenant", "a"))
	require.NoError(t, err)
	s, err := NewCollector(cl, WithSleep(noSleep)).Collect(context.Background(), "")
	require.NoError(t, err)
	assert.Equal(t, j.View().Job.ID, s.JobID)
	assert.Zero(t, unauthorized.Load())
	assert.Greater(t, seen.Load(), int64(8))
}

func TestBasicAuth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "flink" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("no"))
			return
		}
		_, _ = w.Write([]byte(`{"taskmanagers":0,"flink-version":"2.1.0"}`))
	}))
	defer srv.Close()
	cl, err := New(srv.URL+"/", WithBasicAuth("flink", "pw"))
	require.NoError(t, err)
	o, err := cl.Overview(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "2.1.0", o.FlinkVersion)
	bad, _ := New(srv.URL)
	_, err = bad.Overview(context.Background())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 401, ae.Status)
	assert.Equal(t, []string{"no"}, ae.Messages)
}

// The request bodies: hyphenated savepoint keys, camelCase stop keys, the
// resource-requirements map.
func TestControlBodies(t *testing.T) {
	var got = map[string]map[string]any{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		got[r.Method+" "+r.URL.Path] = m
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"request-id":"abc"}`))
		case http.MethodPut:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"errors":["Another update to the job [x] resource requirements is in progress."]}`))
		}
	}))
	defer srv.Close()
	cl, _ := New(srv.URL)
	ctx := context.Background()
	id, err := cl.TriggerSavepoint(ctx, fJob, "s3://sp", "NATIVE")
	require.NoError(t, err)
	assert.Equal(t, "abc", id)
	assert.Equal(t, map[string]any{"target-directory": "s3://sp", "cancel-job": false, "formatType": "NATIVE"}, got["POST /jobs/"+fJob+"/savepoints"])
	_, err = cl.StopWithSavepoint(ctx, fJob, "s3://sp", true)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"targetDirectory": "s3://sp", "drain": true}, got["POST /jobs/"+fJob+"/stop"])
	err = cl.PutResourceRequirements(ctx, fJob, map[string]Bounds{fSrc: {1, 4}})
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 409, ae.Status)
	assert.Equal(t, map[string]any{fSrc: map[string]any{"parallelism": map[string]any{"lowerBound": 1.0, "upperBound": 4.0}}}, got["PUT /jobs/"+fJob+"/resource-requirements"])
}

// The whole client against the simulator, adaptive scheduler.
func TestClientAgainstSim(t *testing.T) {
	rate := 500.0
	spec := sim.JobSpec{
		Name: "rr", FlinkVersion: "2.1", Scheduler: "adaptive",
		Topics:      []sim.TopicSpec{{Name: "t", Partitions: 2}},
		Vertices:    []sim.VertexSpec{{Name: "Source: S", Parallelism: 1, Capacity: 1000, Selectivity: 1, Topics: []string{"t"}}},
		TaskManager: sim.TaskManagerSpec{CPU: 1, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 10 * time.Second, Base: time.Second},
	}
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return rate })
	j, err := sim.NewJob(spec, sim.Options{Start: time.Unix(1.7e9, 0), Seed: 2, Load: load})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	require.NoError(t, j.Advance(time.Minute))
	srv := httptest.NewServer(flinkrest.NewHandler(j))
	defer srv.Close()
	cl, err := New(srv.URL)
	require.NoError(t, err)
	ctx := context.Background()
	jobs, err := cl.Jobs(ctx)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	jid := jobs[0].ID
	vid, _ := j.VertexID("Source: S")

	cfg, err := cl.CheckpointConfig(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, cfg.Interval())
	jm, err := cl.JobManagerConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "adaptive", jm["jobmanager.scheduler"])
	tms, err := cl.TaskManagers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, tms[0].SlotsNumber)
	cps, err := cl.Checkpoints(ctx, jid)
	require.NoError(t, err)
	assert.Positive(t, cps.Counts.Completed)

	// The first metrics request is answered from the fetch taken as the
	// tasks started (no record read, no pendingRecords yet) and makes the
	// JobManager fetch; the next one sees that.
	ids, err := cl.VertexMetricIDs(ctx, jid, vid)
	require.NoError(t, err)
	assert.NotContains(t, ids, "Source__S.pendingRecords")
	ids, err = cl.VertexMetricIDs(ctx, jid, vid)
	require.NoError(t, err)
	assert.Contains(t, ids, "Source__S.pendingRecords")
	agg, err := cl.AggregatedSubtaskMetrics(ctx, jid, vid, []string{"busyTimeMsPerSecond", "isBackPressured"}, []string{AggMin, AggMax, AggSkew})
	require.NoError(t, err)
	require.Contains(t, agg, "busyTimeMsPerSecond")
	assert.NotContains(t, agg, "isBackPressured") // non-numeric: skipped
	assert.NotNil(t, agg["busyTimeMsPerSecond"].Skew)
	assert.Nil(t, agg["busyTimeMsPerSecond"].Avg)
	agg, err = cl.AggregatedSubtaskMetrics(ctx, jid, vid, []string{"busyTimeMsPerSecond", "nope"}, nil)
	require.NoError(t, err)
	assert.Empty(t, agg) // Flink's all-or-nothing answer

	rr, err := cl.GetResourceRequirements(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, 1, rr[vid].LowerBound)
	require.NoError(t, cl.PutResourceRequirements(ctx, jid, map[string]Bounds{vid: {1, 2}}))
	rr, err = cl.GetResourceRequirements(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, Bounds{1, 2}, rr[vid])

	require.NoError(t, j.Advance(time.Minute)) // the rescale restarts the job
	trig, err := cl.TriggerSavepoint(ctx, jid, "", "")
	require.NoError(t, err)
	var st SavepointStatus
	for range 60 {
		require.NoError(t, j.Advance(time.Second))
		st, err = cl.SavepointStatus(ctx, jid, trig)
		require.NoError(t, err)
		if st.Done() {
			break
		}
	}
	require.True(t, st.Done())
	require.NoError(t, st.Err())
	assert.Contains(t, st.Location(), "s3://flink/savepoints/")

	_, err = cl.JobDetails(ctx, "00000000000000000000000000000000")
	assert.True(t, IsNotFound(err), err)
	assert.ErrorContains(t, err, "Job 00000000000000000000000000000000 not found")
}

func TestBatches(t *testing.T) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = "0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset"
	}
	bs := batches(ids, maxQueryLen)
	n := 0
	for _, b := range bs {
		n += len(b)
		assert.LessOrEqual(t, len(b)*(len(ids[0])+1), maxQueryLen)
	}
	assert.Equal(t, 100, n)
	assert.Greater(t, len(bs), 1)
	assert.Empty(t, batches(nil, 10))
}

// Flink answers errors with whole Java stack traces (here real Flink
// 1.20's answer for a job it does not know yet); errors keep the first
// line of each, which is what a condition or an event can show.
func TestAPIErrorKeepsTheFirstLineOfEachTrace(t *testing.T) {
	ae := &APIError{Method: "GET", Endpoint: "/jobs/" + fJob, Status: 404, Messages: []string{
		"org.apache.flink.runtime.rest.NotFoundException: Job " + fJob + " not found\n" +
			"\tat org.apache.flink.runtime.rest.handler.job.AbstractExecutionGraphHandler.lambda$handleRequest$1(AbstractExecutionGraphHandler.java:99)\n" +
			"\tat java.base/java.util.concurrent.CompletableFuture.uniExceptionally(CompletableFuture.java:990)\n",
		"  Internal server error.  ",
	}}
	assert.Equal(t, "flink: GET /jobs/"+fJob+": HTTP 404: org.apache.flink.runtime.rest.NotFoundException: Job "+fJob+" not found; Internal server error.", ae.Error())
	assert.Contains(t, ae.Messages[0], "CompletableFuture.java:990", "the messages themselves are kept whole")
}
