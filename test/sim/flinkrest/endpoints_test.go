package flinkrest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

func TestRouting(t *testing.T) {
	h := NewHandler(newFake("1.20"))

	// Flink registers every handler under "/" and "/v1"; slashes at either
	// end do not matter.
	assert.JSONEq(t, string(get(t, h, "/overview")), string(get(t, h, "/v1/overview")))
	assert.JSONEq(t, string(get(t, h, "/jobs")), string(get(t, h, "/jobs/")))
	assert.JSONEq(t, string(get(t, h, "/jobs/"+jobID)), string(get(t, h, "/v1/jobs/"+jobID+"/")))
	// A literal segment wins over a path parameter.
	assert.Contains(t, obj(t, get(t, h, "/jobs/overview")), "jobs")

	cases := []struct {
		method, target string
		status         int
		errors         []string
	}{
		{"GET", "/nope/nothing?x=1", 404, []string{"Not found: /nope/nothing?x=1"}},
		{"GET", "/v2/overview", 404, []string{"Not found: /v2/overview"}},
		// Flink's router knows no 405: a wrong method is "not found".
		{"DELETE", "/overview", 404, []string{"Not found: /overview"}},
		{"POST", "/jobs/" + jobID + "/checkpoints/config", 404, []string{"Not found: /jobs/" + jobID + "/checkpoints/config"}},
		{"GET", "/jobs/not-a-job-id", 400, []string{`Bad request, could not parse parameters: Cannot resolve path parameter (jobid) from value "not-a-job-id".`}},
		{"GET", "/jobs/" + jobID + "/vertices/xyz", 400, []string{`Bad request, could not parse parameters: Cannot resolve path parameter (vertexid) from value "xyz".`}},
		{"GET", "/jobs/00000000000000000000000000000000", 404, []string{"Job 00000000000000000000000000000000 not found"}},
		{"GET", "/jobs/00000000000000000000000000000000/plan", 404, []string{"Job 00000000000000000000000000000000 not found"}},
		{"GET", "/jobs/00000000000000000000000000000000/config", 404, []string{"Job 00000000000000000000000000000000 not found"}},
		{"GET", "/jobs/00000000000000000000000000000000/checkpoints", 404, []string{"Job 00000000000000000000000000000000 not found"}},
		{"GET", "/jobs/" + jobID + "/vertices/00000000000000000000000000000000", 404, []string{"JobVertex 00000000000000000000000000000000 not found"}},
		{"GET", "/taskmanagers/nobody", 404, []string{"Could not find TaskExecutor nobody."}},
	}
	for _, c := range cases {
		code, body := do(t, h, c.method, c.target, "")
		assert.Equal(t, c.status, code, "%s %s: %s", c.method, c.target, body)
		assert.Equal(t, map[string]any{"errors": toAny(c.errors)}, obj(t, body), "%s %s", c.method, c.target)
	}

	// Metric handlers answer [] for what their metric store lacks.
	for _, target := range []string{
		"/jobs/00000000000000000000000000000000/metrics?get=uptime",
		"/jobs/00000000000000000000000000000000/vertices/" + srcID + "/metrics",
		"/jobs/" + jobID + "/vertices/00000000000000000000000000000000/subtasks/metrics?get=numRecordsIn",
		"/jobs/" + jobID + "/vertices/" + srcID + "/subtasks/7/metrics",
		"/taskmanagers/nobody/metrics",
	} {
		assert.Equal(t, "[]", string(get(t, h, target)), target)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func TestServesOverHTTP(t *testing.T) {
	srv := httptest.NewServer(NewHandler(newFake("2.1")))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/jobs/overview", nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json; charset=UTF-8", resp.Header.Get("Content-Type"))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, jobID, obj(t, raw)["jobs"].([]any)[0].(map[string]any)["jid"])
}

func TestClusterEndpoints(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			h := NewHandler(newFake(v))

			overview := get(t, h, "/overview")
			assert.Equal(t, []string{"taskmanagers", "slots-total", "slots-available", "jobs-running",
				"jobs-finished", "jobs-cancelled", "jobs-failed", "flink-version", "flink-commit"}, keysAt(t, overview))
			assert.JSONEq(t, `{"taskmanagers":2,"slots-total":4,"slots-available":0,"jobs-running":1,"jobs-finished":0,
				"jobs-cancelled":0,"jobs-failed":0,"flink-version":"`+v+`.0","flink-commit":"abc1234"}`, string(overview))

			config := get(t, h, "/config")
			assert.Equal(t, []string{"refresh-interval", "timezone-name", "timezone-offset", "flink-version",
				"flink-revision", "features"}, keysAt(t, config))
			assert.Equal(t, map[string]any{"web-submit": true, "web-cancel": true, "web-rescale": true, "web-history": false},
				obj(t, config)["features"], "web-rescale follows the adaptive scheduler")

			assert.JSONEq(t, `{"jobs":[{"id":"`+jobID+`","status":"RUNNING"}]}`, string(get(t, h, "/jobs")))

			jmConfig := decode(t, get(t, h, "/jobmanager/config")).([]any)
			values := map[string]any{}
			for _, e := range jmConfig {
				values[e.(map[string]any)["key"].(string)] = e.(map[string]any)["value"]
			}
			assert.Equal(t, "adaptive", values["jobmanager.scheduler"])
			assert.Equal(t, "******", values["s3.secret-key"], "sensitive values are hidden")
			assert.JSONEq(t, string(get(t, h, "/jobmanager/config")), string(get(t, h, "/jobs/"+jobID+"/jobmanager/config")))

			assert.JSONEq(t, `[{"id":"numRegisteredTaskManagers","value":"2"},{"id":"taskSlotsAvailable","value":"0"},{"id":"taskSlotsTotal","value":"4"}]`,
				string(get(t, h, "/jobmanager/metrics?get=taskSlotsTotal,taskSlotsAvailable,numRegisteredTaskManagers")))

			tms := obj(t, get(t, h, "/taskmanagers"))["taskmanagers"].([]any)
			require.Len(t, tms, 2)
			tm := tms[0].(map[string]any)
			assert.Equal(t, tm1, tm["id"])
			assert.Equal(t, json.Number("6121"), tm["dataPort"])
			assert.Equal(t, json.Number("2"), tm["slotsNumber"])
			assert.Equal(t, json.Number("1.0"), tm["totalResource"].(map[string]any)["cpuCores"], "a Java double")
			assert.Equal(t, []string{"id", "path", "dataPort", "jmxPort", "timeSinceLastHeartbeat", "slotsNumber", "freeSlots",
				"totalResource", "freeResource", "hardware", "memoryConfiguration"}, keysAt(t, get(t, h, "/taskmanagers"), "taskmanagers", "0"))
			mem := tm["memoryConfiguration"].(map[string]any)
			assert.Equal(t, json.Number("2147483648"), mem["totalProcessMemory"])
			assert.Equal(t, json.Number("536870912"), mem["managedMemory"])

			details := obj(t, get(t, h, "/taskmanagers/"+tm1))
			assert.Len(t, details["allocatedSlots"], 2)
			_, legacy := details["metrics"].(map[string]any)["memorySegmentsTotal"]
			assert.Equal(t, v != "2.1", legacy, "memorySegments* were removed in 2.0")
		})
	}
}

func TestJobEndpoints(t *testing.T) {
	now := fixtureNow.UnixMilli()
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			h := NewHandler(newFake(v))
			is120 := v != "1.18"
			is2 := v == "2.1"

			// /jobs/overview: JobDetails' own serializer.
			ov := get(t, h, "/jobs/overview")
			wantKeys := []string{"jid", "name", "state", "start-time", "end-time", "duration", "last-modification", "tasks"}
			if is2 {
				wantKeys = append(wantKeys, "pending-operators")
			}
			assert.Equal(t, wantKeys, keysAt(t, ov, "jobs", "0"))
			assert.Equal(t, []string{"total", "created", "scheduled", "deploying", "running", "finished", "canceling",
				"canceled", "failed", "reconciling", "initializing"}, keysAt(t, ov, "jobs", "0", "tasks"))
			job := obj(t, ov)["jobs"].([]any)[0].(map[string]any)
			assert.Equal(t, json.Number("4"), job["tasks"].(map[string]any)["running"])
			assert.Equal(t, json.Number("-1"), job["end-time"])
			assert.Equal(t, json.Number("3600000"), job["duration"], "now − start, from View.Now")

			// /jobs/:jobid
			raw := get(t, h, "/jobs/"+jobID)
			wantKeys = []string{"jid", "name", "isStoppable", "state"}
			if is120 {
				wantKeys = append(wantKeys, "job-type")
			}
			wantKeys = append(wantKeys, "start-time", "end-time", "duration", "maxParallelism", "now", "timestamps",
				"vertices", "status-counts", "plan")
			if is2 {
				wantKeys = append(wantKeys, "pending-operators")
			}
			assert.Equal(t, wantKeys, keysAt(t, raw))
			d := obj(t, raw)
			assert.Equal(t, json.Number("1717243200000"), d["now"])
			assert.Equal(t, json.Number("-1"), d["maxParallelism"])
			if is120 {
				assert.Equal(t, "STREAMING", d["job-type"])
			}
			assert.Equal(t, jobStatuses, keysAt(t, raw, "timestamps"))
			assert.Equal(t, json.Number("0"), d["timestamps"].(map[string]any)["FAILED"], "states never entered are 0")
			assert.Equal(t, executionStates, keysAt(t, raw, "status-counts"))
			assert.Equal(t, json.Number("2"), d["status-counts"].(map[string]any)["RUNNING"], "status-counts counts vertices")

			vertexKeys := []string{"id"}
			if is120 {
				vertexKeys = append(vertexKeys, "slotSharingGroupId")
			}
			vertexKeys = append(vertexKeys, "name", "maxParallelism", "parallelism", "status", "start-time", "end-time",
				"duration", "tasks", "metrics")
			assert.Equal(t, vertexKeys, keysAt(t, raw, "vertices", "0"))
			src := d["vertices"].([]any)[0].(map[string]any)
			if is120 {
				assert.Equal(t, srcGroup, src["slotSharingGroupId"], "a hex string, not the spec's {bytes,lowerPart,upperPart}")
			}
			assert.Equal(t, []string{"read-bytes", "read-bytes-complete", "write-bytes", "write-bytes-complete", "read-records",
				"read-records-complete", "write-records", "write-records-complete", "accumulated-backpressured-time",
				"accumulated-idle-time", "accumulated-busy-time"}, keysAt(t, raw, "vertices", "0", "metrics"))
			io := src["metrics"].(map[string]any)
			assert.Equal(t, json.Number("0"), io["read-records"], "a FLIP-27 source reads no network records")
			assert.Equal(t, json.Number("14345678"), io["write-records"])
			assert.Equal(t, json.Number("1.2777678E7"), io["accumulated-busy-time"], "a Java double")
			assert.Equal(t, json.Number("958000"), io["accumulated-backpressured-time"])
			assert.Equal(t, json.Number(itoa64(now-(t0+1_500))), src["duration"])
			assert.Equal(t, json.Number("2"), src["tasks"].(map[string]any)["RUNNING"])

			// The plan, also embedded in the details.
			p := get(t, h, "/jobs/"+jobID+"/plan")
			assert.JSONEq(t, string(mustJSON(t, d["plan"])), string(mustJSON(t, obj(t, p)["plan"])))
			assert.Equal(t, []string{"id", "parallelism", "operator", "operator_strategy", "description", "optimizer_properties"},
				keysAt(t, p, "plan", "nodes", "0"), "a source has no inputs")
			assert.Equal(t, []string{"id", "parallelism", "operator", "operator_strategy", "description", "inputs", "optimizer_properties"},
				keysAt(t, p, "plan", "nodes", "1"))
			win := obj(t, p)["plan"].(map[string]any)["nodes"].([]any)[1].(map[string]any)
			assert.Equal(t, []any{map[string]any{"num": json.Number("0"), "id": srcID, "ship_strategy": "HASH", "exchange": "pipelined_bounded"}},
				win["inputs"])
			assert.Contains(t, string(p), `-&gt; Sink: Print to Std. Out<br/>`, "the description is HTML-escaped, verbatim")

			// /jobs/:jobid/config: jid/name/execution-config, not the spec's names.
			cfg := get(t, h, "/jobs/"+jobID+"/config")
			assert.Equal(t, []string{"jid", "name", "execution-config"}, keysAt(t, cfg))
			ec := obj(t, cfg)["execution-config"].(map[string]any)
			assert.Equal(t, json.Number("2"), ec["job-parallelism"])
			_, hasMode := ec["execution-mode"]
			assert.Equal(t, !is2, hasMode, "execution-mode was removed in 2.0")

			assert.JSONEq(t, `{"status":"RUNNING"}`, string(get(t, h, "/jobs/"+jobID+"/status")))
		})
	}
}

func itoa64(i int64) string { return string(marshal(i)) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestVertexDetails(t *testing.T) {
	now := fixtureNow.UnixMilli()
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			h := NewHandler(newFake(v))
			raw := get(t, h, "/jobs/"+jobID+"/vertices/"+srcID)
			assert.Equal(t, []string{"id", "name", "parallelism", "maxParallelism", "now", "subtasks", "aggregated"}, keysAt(t, raw))

			want := []string{"subtask", "status", "attempt"}
			switch v {
			case "1.18":
				want = append(want, "host")
			case "1.20":
				want = append(want, "endpoint", "host")
			default:
				want = append(want, "endpoint")
			}
			want = append(want, "start-time", "end-time", "duration", "metrics", "taskmanager-id", "status-duration", "start_time")
			assert.Equal(t, want, keysAt(t, raw, "subtasks", "1"))

			st := obj(t, raw)["subtasks"].([]any)[1].(map[string]any)
			assert.Equal(t, json.Number("1"), st["subtask"])
			assert.Equal(t, tm2, st["taskmanager-id"])
			assert.Equal(t, st["start-time"], st["start_time"], "the hidden duplicate")
			if v != "2.1" {
				assert.Equal(t, "10.244.2.9", st["host"], "the hostname, without port")
			}
			if v != "1.18" {
				assert.Equal(t, "10.244.2.9:6121", st["endpoint"], "host:dataPort")
			}
			assert.Equal(t, map[string]any{
				"CREATED": json.Number("0"), "SCHEDULED": json.Number("0"), "DEPLOYING": json.Number("0"),
				"INITIALIZING": json.Number("0"), "RUNNING": json.Number(itoa64(now - (t0 + 1_500))),
			}, st["status-duration"])
			assert.Equal(t, json.Number("432000.0"), st["metrics"].(map[string]any)["accumulated-busy-time"])

			agg := obj(t, raw)["aggregated"].(map[string]any)
			wr := agg["metrics"].(map[string]any)["write-records"].(map[string]any)
			assert.Equal(t, map[string]any{
				"min": json.Number("2000000"), "max": json.Number("12345678"), "avg": json.Number("7172839"),
				"sum": json.Number("14345678"), "median": json.Number("7172839"), "p25": json.Number("2000000"),
				"p75": json.Number("12345678"), "p95": json.Number("12345678"),
			}, wr)
			assert.Len(t, agg["status-duration"], 5)
		})
	}
}

func TestCheckpoints(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			h := NewHandler(newFake(v))
			raw := get(t, h, "/jobs/"+jobID+"/checkpoints")
			assert.Equal(t, []string{"counts", "summary", "latest", "history"}, keysAt(t, raw))
			assert.Equal(t, []string{"restored", "total", "in_progress", "completed", "failed"}, keysAt(t, raw, "counts"))
			assert.Equal(t, []string{"checkpointed_size", "state_size", "end_to_end_duration", "alignment_buffered",
				"processed_data", "persisted_data"}, keysAt(t, raw, "summary"))
			assert.Equal(t, []string{"min", "max", "avg", "p50", "p90", "p95", "p99", "p999"}, keysAt(t, raw, "summary", "state_size"))
			assert.Equal(t, []string{"completed", "savepoint", "failed", "restored"}, keysAt(t, raw, "latest"))

			c := obj(t, raw)
			assert.Nil(t, c["latest"].(map[string]any)["restored"], "null, not omitted")
			// Completed checkpoint 42 and savepoint 41 make the summary.
			e2e := c["summary"].(map[string]any)["end_to_end_duration"].(map[string]any)
			assert.Equal(t, map[string]any{
				"min": json.Number("1834"), "max": json.Number("3000"), "avg": json.Number("2417"),
				"p50": json.Number("2417.0"), "p90": json.Number("3000.0"), "p95": json.Number("3000.0"),
				"p99": json.Number("3000.0"), "p999": json.Number("3000.0"),
			}, e2e)
			assert.Contains(t, string(raw), `"p50":5.1380224E7`, "quantiles are Java doubles")

			var classes []any
			for _, e := range c["history"].([]any) {
				classes = append(classes, e.(map[string]any)["className"])
			}
			assert.Equal(t, []any{"in_progress", "failed", "completed", "completed"}, classes, "newest first")

			common := []string{"className", "id", "status", "is_savepoint", "savepointFormat", "trigger_timestamp",
				"latest_ack_timestamp", "checkpointed_size", "state_size", "end_to_end_duration", "alignment_buffered",
				"processed_data", "persisted_data", "num_subtasks", "num_acknowledged_subtasks", "checkpoint_type", "tasks"}
			assert.Equal(t, common, keysAt(t, raw, "history", "0"))
			assert.Equal(t, append(common[:len(common):len(common)], "failure_timestamp", "failure_message"), keysAt(t, raw, "history", "1"))
			assert.Equal(t, append(common[:len(common):len(common)], "external_path", "discarded"), keysAt(t, raw, "history", "2"))

			completed := c["latest"].(map[string]any)["completed"].(map[string]any)
			assert.Nil(t, completed["savepointFormat"], "null for a checkpoint")
			assert.Equal(t, "CHECKPOINT", completed["checkpoint_type"])
			sp := c["latest"].(map[string]any)["savepoint"].(map[string]any)
			assert.Equal(t, "CANONICAL", sp["savepointFormat"])
			assert.Equal(t, "SAVEPOINT", sp["checkpoint_type"])
			assert.Equal(t, true, sp["is_savepoint"])
			failed := c["latest"].(map[string]any)["failed"].(map[string]any)
			assert.Equal(t, "Checkpoint expired before completing.", failed["failure_message"])

			cfg := obj(t, get(t, h, "/jobs/"+jobID+"/checkpoints/config"))
			assert.Equal(t, "exactly_once", cfg["mode"], "ProcessingMode's own serializer writes lower case")
			assert.Equal(t, json.Number("10000"), cfg["interval"])
			assert.Equal(t, map[string]any{"enabled": true, "delete_on_cancellation": false}, cfg["externalization"])
			assert.Equal(t, "EmbeddedRocksDBStateBackend", cfg["state_backend"])
			assert.Equal(t, "FileSystemCheckpointStorage", cfg["checkpoint_storage"])

			// Job-scope metrics from the same statistics.
			assert.Equal(t, map[string]string{"lastCheckpointDuration": "1834", "lastCheckpointSize": "1048576"},
				metricValues(t, get(t, h, "/jobs/"+jobID+"/metrics?get=lastCheckpointSize,lastCheckpointDuration")))
			jm := metricValues(t, get(t, h, "/jobs/"+jobID+"/metrics?get=lastCheckpointFullSize,numberOfCompletedCheckpoints,"+
				"numberOfFailedCheckpoints,numberOfInProgressCheckpoints,totalNumberOfCheckpoints,numRestarts,numRescales,uptime,fullRestarts"))
			want := map[string]string{
				"lastCheckpointFullSize": "52428800", "numberOfCompletedCheckpoints": "40", "numberOfFailedCheckpoints": "4",
				"numberOfInProgressCheckpoints": "1", "totalNumberOfCheckpoints": "45", "numRestarts": "1", "numRescales": "0",
				"uptime": "3598000",
			}
			if v != "2.1" {
				want["fullRestarts"] = "1"
			}
			assert.Equal(t, want, jm)
		})
	}
}

func TestCheckpointsWithoutHistory(t *testing.T) {
	f := newFake("1.20")
	f.view.Job.Checkpoints = sim.CheckpointsView{}
	delete(f.view.JobManagerConfig, "execution.checkpointing.interval")
	h := NewHandler(f)
	c := obj(t, get(t, h, "/jobs/"+jobID+"/checkpoints"))
	s := c["summary"].(map[string]any)["state_size"].(map[string]any)
	assert.Equal(t, json.Number("0"), s["min"])
	assert.Equal(t, "NaN", s["p50"], "quantiles of nothing are NaN, written as a string")
	assert.Equal(t, map[string]any{"completed": nil, "savepoint": nil, "failed": nil, "restored": nil}, c["latest"])
	assert.Equal(t, []any{}, c["history"])
	assert.Equal(t, map[string]string{"lastCheckpointDuration": "-1", "lastCheckpointExternalPath": "n/a"},
		metricValues(t, get(t, h, "/jobs/"+jobID+"/metrics?get=lastCheckpointDuration,lastCheckpointExternalPath")))

	code, body := do(t, h, "GET", "/jobs/"+jobID+"/checkpoints/config", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"errors":["Checkpointing is not enabled for this job (`+jobID+`)."]}`, string(body))
}

// metricValues reads a MetricCollectionResponseBody (a bare array) as id →
// value.
func metricValues(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	var list []struct {
		ID    string  `json:"id"`
		Value *string `json:"value"`
	}
	require.NoError(t, json.Unmarshal(raw, &list), string(raw))
	out := map[string]string{}
	for _, m := range list {
		require.NotNil(t, m.Value, "metric %s has no value", m.ID)
		out[m.ID] = *m.Value
	}
	return out
}
