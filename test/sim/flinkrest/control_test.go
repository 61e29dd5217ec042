package flinkrest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

const triggerHex = "7d273f5a62eb4730b9dea8e833733c1e"

func TestSavepointTriggerAndPoll(t *testing.T) {
	f := newFake("1.20")
	h := NewHandler(f)

	// The savepoint body is hyphenated.
	code, body := do(t, h, http.MethodPost, "/jobs/"+jobID+"/savepoints",
		`{"target-directory":"s3://flink/sp","cancel-job":false,"formatType":"NATIVE","triggerId":"`+triggerHex+`"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	assert.Equal(t, `{"request-id":"`+triggerHex+`"}`, string(body))
	assert.Equal(t, sim.SavepointRequest{
		JobID: jobID, TargetDirectory: "s3://flink/sp", FormatType: "NATIVE", TriggerID: triggerHex,
	}, f.triggers[triggerHex].req)

	// The same trigger id again: the same operation.
	code, body = do(t, h, http.MethodPost, "/v1/jobs/"+jobID+"/savepoints",
		`{"target-directory":"s3://flink/sp","formatType":"NATIVE","triggerId":"`+triggerHex+`"}`)
	require.Equal(t, http.StatusAccepted, code)
	assert.Equal(t, `{"request-id":"`+triggerHex+`"}`, string(body))
	assert.Len(t, f.order, 1)

	statusURL := "/jobs/" + jobID + "/savepoints/" + triggerHex
	assert.Equal(t, `{"status":{"id":"IN_PROGRESS"},"operation":null}`, string(get(t, h, statusURL)))

	f.finish(triggerHex, sim.SavepointStatus{Status: "COMPLETED", Location: "s3://flink/sp/savepoint-3f2a9c-0123456789ab"})
	assert.Equal(t, `{"status":{"id":"COMPLETED"},"operation":{"location":"s3://flink/sp/savepoint-3f2a9c-0123456789ab"}}`,
		string(get(t, h, statusURL)))

	// Without a body: the configured default directory, CANONICAL, a
	// generated trigger id.
	code, body = do(t, h, http.MethodPost, "/jobs/"+jobID+"/savepoints", "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	id := obj(t, body)["request-id"].(string)
	assert.Equal(t, sim.SavepointRequest{JobID: jobID, TargetDirectory: "s3://flink/savepoints", FormatType: "CANONICAL", TriggerID: ""},
		f.triggers[id].req)

	// A failed operation is COMPLETED with a failure cause.
	f.finish(id, sim.SavepointStatus{Status: "COMPLETED", FailureCause: "java.lang.Exception: Checkpoint was declined",
		FailureClass: "org.apache.flink.runtime.checkpoint.CheckpointException"})
	raw := get(t, h, "/jobs/"+jobID+"/savepoints/"+id)
	assert.Equal(t, []string{"status", "operation"}, keysAt(t, raw))
	assert.Equal(t, []string{"failure-cause"}, keysAt(t, raw, "operation"))
	assert.Equal(t, []string{"class", "stack-trace", "serialized-throwable"}, keysAt(t, raw, "operation", "failure-cause"))
	cause := obj(t, raw)["operation"].(map[string]any)["failure-cause"].(map[string]any)
	assert.Equal(t, "org.apache.flink.runtime.checkpoint.CheckpointException", cause["class"])
	assert.True(t, strings.HasPrefix(cause["stack-trace"].(string),
		"org.apache.flink.runtime.checkpoint.CheckpointException: java.lang.Exception: Checkpoint was declined\n\tat "))
	_, err := base64.StdEncoding.DecodeString(cause["serialized-throwable"].(string))
	assert.NoError(t, err)
}

func TestStopWithSavepoint(t *testing.T) {
	f := newFake("2.1")
	h := NewHandler(f)
	// The stop body is camelCase.
	code, body := do(t, h, http.MethodPost, "/jobs/"+jobID+"/stop", `{"targetDirectory":"s3://flink/sp","drain":true}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	id := obj(t, body)["request-id"].(string)
	assert.Equal(t, sim.SavepointRequest{JobID: jobID, TargetDirectory: "s3://flink/sp", Stop: true, Drain: true, FormatType: "CANONICAL"},
		f.triggers[id].req)
	// Polled at the savepoints endpoint.
	assert.Equal(t, `{"status":{"id":"IN_PROGRESS"},"operation":null}`, string(get(t, h, "/jobs/"+jobID+"/savepoints/"+id)))
}

func TestSavepointRequestErrors(t *testing.T) {
	cases := []struct {
		name, version, path, body string
		status                    int
		errors                    []string
		noDefaultDir, notRunning  bool
	}{
		{name: "camelCase to /savepoints", path: "savepoints", body: `{"targetDirectory":"s3://x"}`,
			status: 400, errors: []string{"Request did not match expected format SavepointTriggerRequestBody."}},
		{name: "hyphenated to /stop", path: "stop", body: `{"target-directory":"s3://x"}`,
			status: 400, errors: []string{"Request did not match expected format StopWithSavepointRequestBody."}},
		{name: "case matters", path: "savepoints", body: `{"Target-Directory":"s3://x"}`,
			status: 400, errors: []string{"Request did not match expected format SavepointTriggerRequestBody."}},
		{name: "format type is an upper-case enum", path: "savepoints", body: `{"target-directory":"s3://x","formatType":"canonical"}`,
			status: 400, errors: []string{"Request did not match expected format SavepointTriggerRequestBody."}},
		{name: "trigger id is 32 hex", path: "stop", body: `{"targetDirectory":"s3://x","triggerId":"abc"}`,
			status: 400, errors: []string{"Request did not match expected format StopWithSavepointRequestBody."}},
		{name: "not JSON", path: "savepoints", body: `target-directory=s3://x`,
			status: 400, errors: []string{"Request did not match expected format SavepointTriggerRequestBody."}},
		{name: "no directory 1.x", version: "1.20", path: "savepoints", body: `{}`, noDefaultDir: true,
			status: 400, errors: []string{"Config key [state.savepoints.dir] is not set. Property [target-directory] must be provided."}},
		{name: "no directory 2.x", version: "2.1", path: "stop", body: `{"drain":false}`, noDefaultDir: true,
			status: 400, errors: []string{"Config key [execution.checkpointing.savepoint-dir] is not set. Property [targetDirectory] must be provided."}},
		{name: "job not running", path: "stop", body: `{"targetDirectory":"s3://x"}`, notRunning: true,
			status: 409, errors: []string{"Job " + jobID + " is not running (FINISHED)."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.version
			if v == "" {
				v = "1.20"
			}
			f := newFake(v)
			if c.noDefaultDir {
				delete(f.view.JobManagerConfig, "state.savepoints.dir")
			}
			if c.notRunning {
				f.view.Job.State = "FINISHED"
			}
			code, body := do(t, NewHandler(f), http.MethodPost, "/jobs/"+jobID+"/"+c.path, c.body)
			assert.Equal(t, c.status, code, string(body))
			assert.Equal(t, map[string]any{"errors": toAny(c.errors)}, obj(t, body))
			assert.Empty(t, f.triggers, "nothing triggered")
		})
	}

	h := NewHandler(newFake("1.20"))
	code, body := do(t, h, http.MethodPost, "/jobs/00000000000000000000000000000000/savepoints", `{"target-directory":"s3://x"}`)
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"errors":["Job 00000000000000000000000000000000 not found"]}`, string(body))

	code, body = do(t, h, http.MethodGet, "/jobs/"+jobID+"/savepoints/"+triggerHex, "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, obj(t, body)["errors"].([]any)[0], "Operation not found under key")

	code, body = do(t, h, http.MethodGet, "/jobs/"+jobID+"/savepoints/nope", "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.JSONEq(t, `{"errors":["Bad request, could not parse parameters: Cannot resolve path parameter (triggerid) from value \"nope\"."]}`, string(body))
}

func TestResourceRequirements(t *testing.T) {
	f := newFake("1.18")
	h := NewHandler(f)
	url := "/jobs/" + jobID + "/resource-requirements"

	raw := get(t, h, url)
	assert.Equal(t, `{"`+srcID+`":{"parallelism":{"lowerBound":1,"upperBound":2}},"`+winID+`":{"parallelism":{"lowerBound":1,"upperBound":2}}}`,
		string(raw))

	update := `{"` + srcID + `":{"parallelism":{"lowerBound":1,"upperBound":4}},"` + winID + `":{"parallelism":{"lowerBound":1,"upperBound":3}}}`
	code, body := do(t, h, http.MethodPut, url, update)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, "{}", string(body), "an EmptyResponseBody")
	require.Len(t, f.updates, 1)
	assert.Equal(t, map[string]sim.Bounds{srcID: {LowerBound: 1, UpperBound: 4}, winID: {LowerBound: 1, UpperBound: 3}}, f.updates[0])
	assert.JSONEq(t, update, string(get(t, h, url)))

	cases := []struct {
		name, body string
		setup      func(*fakeCluster)
		status     int
		errors     []string
	}{
		{name: "empty body", body: "", status: 400, errors: []string{"Request body does not specify resource requirements."}},
		{name: "empty object", body: "{}", status: 400, errors: []string{"Request body does not specify resource requirements."}},
		{name: "missing vertex", body: `{"` + srcID + `":{"parallelism":{"lowerBound":1,"upperBound":2}}}`, status: 400,
			errors: []string{"The request is incomplete, missing job vertex [" + winID + "] resource requirements."}},
		{name: "upper bound above max parallelism", body: `{"` + srcID + `":{"parallelism":{"lowerBound":1,"upperBound":129}},"` + winID + `":{"parallelism":{"lowerBound":1,"upperBound":2}}}`,
			status: 400, errors: []string{"Invalid parallelism bounds for job vertex [" + srcID + "]."}},
		{name: "not a vertex id", body: `{"source":{"parallelism":{"lowerBound":1,"upperBound":2}}}`, status: 400,
			errors: []string{"Request did not match expected format JobResourceRequirementsBody."}},
		{name: "unknown property", body: `{"` + srcID + `":{"parallelism":{"lower":1,"upperBound":2}}}`, status: 400,
			errors: []string{"Request did not match expected format JobResourceRequirementsBody."}},
		{name: "concurrent update", body: update, setup: func(f *fakeCluster) { f.updating = true }, status: 409,
			errors: []string{"Another update to the job [" + jobID + "] resource requirements is in progress."}},
		{name: "default scheduler", body: update, setup: func(f *fakeCluster) { f.view.Scheduler = "default" }, status: 500,
			errors: []string{"Internal server error.", "<Exception on server side:\n" +
				"java.util.concurrent.CompletionException: java.lang.UnsupportedOperationException: The DefaultScheduler does not support " +
				"changing the parallelism without a job restart. This feature is currently only expected to work with the AdaptiveScheduler.\n" +
				"\tat org.apache.flink.runtime.rest.handler.AbstractRestHandler.respondToRequest(AbstractRestHandler.java:83)\n" +
				"\nEnd of exception on server side>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake("1.18")
			if c.setup != nil {
				c.setup(f)
			}
			code, body := do(t, NewHandler(f), http.MethodPut, url, c.body)
			assert.Equal(t, c.status, code, string(body))
			assert.Equal(t, map[string]any{"errors": toAny(c.errors)}, obj(t, body))
			assert.Empty(t, f.updates)
		})
	}

	code, body = do(t, h, http.MethodPut, "/jobs/00000000000000000000000000000000/resource-requirements", update)
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"errors":["Job 00000000000000000000000000000000 not found"]}`, string(body))
}

func TestFlinkMessage(t *testing.T) {
	assert.Equal(t, "default", flinkMessage(sim.ErrConflict, "default"))
	assert.Equal(t, "Busy.", flinkMessage(wrapf("%w: Busy.", sim.ErrConflict), "default"))
	assert.Equal(t, "Busy.", flinkMessage(wrapf("Busy.: %w", sim.ErrConflict), "default"))
}

func wrapf(format string, err error) error { return fmt.Errorf(format, err) }
