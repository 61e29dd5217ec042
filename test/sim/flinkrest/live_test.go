package flinkrest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

// The handler over a live simulated job: what an autoscaler reads and does
// over HTTP is what the job does.
func TestLiveJobOverHTTP(t *testing.T) {
	spec := sim.JobSpec{
		Name: "orders_agg", FlinkVersion: "1.20", ConsumerGroup: "orders",
		Topics: []sim.TopicSpec{{Name: "orders.v1", Partitions: 4}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: Kafka Source -> Map", Parallelism: 2, Capacity: 4000, Selectivity: 1, Topics: []string{"orders.v1"}},
			{Name: "Window -> Sink: Print", Parallelism: 2, Capacity: 1000, Selectivity: 0.1, Inputs: []sim.EdgeSpec{{From: "Source: Kafka Source -> Map", Ship: "HASH"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 20 * time.Second},
	}
	rate := 0.0
	load := sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return rate })
	j, err := sim.NewJob(spec, sim.Options{Start: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Seed: 1, Load: load})
	require.NoError(t, err)
	require.NoError(t, j.Submit(sim.Submission{}))
	srv := httptest.NewServer(flinkrest.NewHandler(j))
	defer srv.Close()
	get := func(path string, into any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if into != nil && resp.StatusCode == 200 {
			require.NoError(t, json.Unmarshal(body, into), string(body))
		}
		return resp.StatusCode
	}
	require.NoError(t, j.Advance(time.Minute))
	jobID := j.View().Job.ID
	src, _ := j.VertexID("Source: Kafka Source -> Map")
	win, _ := j.VertexID("Window -> Sink: Print")

	// Before the first record, pendingRecords does not exist: asking for it
	// empties the aggregated answer, as in Flink. (This first request is
	// answered from the fetch taken as the tasks started.)
	var agg []map[string]any
	q := "/jobs/" + jobID + "/vertices/" + src + "/subtasks/metrics?get=busyTimeMsPerSecond,Source__Kafka_Source.pendingRecords&agg=max"
	require.Equal(t, 200, get(q, &agg))
	assert.Empty(t, agg)

	// 2500 rec/s against a window vertex of 2×1000: it is the bottleneck.
	// Metrics come from the JobManager's store: the first request after a
	// while makes it fetch and is answered from the previous fetch (no
	// record yet); the next one sees the fetch.
	rate = 2500
	require.NoError(t, j.Advance(4*time.Minute))
	require.Equal(t, 200, get(q, &agg))
	assert.Empty(t, agg, "the previous fetch")
	require.Equal(t, 200, get(q, &agg))
	require.Len(t, agg, 2)
	require.Equal(t, 200, get("/jobs/"+jobID+"/vertices/"+win+"/subtasks/metrics?get=busyTimeMsPerSecond,numRecordsInPerSecond&agg=max,sum", &agg))
	values := map[string]map[string]any{}
	for _, m := range agg {
		values[m["id"].(string)] = m
	}
	assert.InDelta(t, 1000, values["busyTimeMsPerSecond"]["max"], 5)
	assert.InDelta(t, 2000, values["numRecordsInPerSecond"]["sum"], 40)

	var details struct {
		State    string `json:"state"`
		Vertices []struct {
			ID          string `json:"id"`
			Parallelism int    `json:"parallelism"`
		} `json:"vertices"`
	}
	require.Equal(t, 200, get("/v1/jobs/"+jobID, &details))
	assert.Equal(t, "RUNNING", details.State)
	assert.Len(t, details.Vertices, 2)

	// Stop with a savepoint over HTTP and poll it to completion.
	resp, err := http.Post(srv.URL+"/jobs/"+jobID+"/stop", "application/json", strings.NewReader(`{"targetDirectory":"s3://sp","drain":false}`))
	require.NoError(t, err)
	var trig struct {
		RequestID string `json:"request-id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&trig))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var status struct {
		Status struct {
			ID string `json:"id"`
		} `json:"status"`
		Operation struct {
			Location string `json:"location"`
		} `json:"operation"`
	}
	for range 120 {
		require.NoError(t, j.Advance(time.Second))
		require.Equal(t, 200, get("/jobs/"+jobID+"/savepoints/"+trig.RequestID, &status))
		if status.Status.ID == "COMPLETED" {
			break
		}
	}
	assert.Equal(t, "COMPLETED", status.Status.ID)
	assert.True(t, strings.HasPrefix(status.Operation.Location, "s3://sp/savepoint-"), status.Operation.Location)
	require.Equal(t, 200, get("/jobs/"+jobID, &details))
	assert.Equal(t, "FINISHED", details.State)
}
