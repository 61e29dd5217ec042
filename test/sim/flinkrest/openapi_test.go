package flinkrest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// specFiles maps a simulated version to the generated spec it is checked
// against. There is no 2.1 spec in shared/flink: 2.x is checked against
// master's (2.3-SNAPSHOT), whose additions are optional properties.
var specFiles = map[string]string{
	"1.18": "rest_v1_dispatcher-1.18.yml",
	"1.20": "rest_v1_dispatcher-1.20.yml",
	"2.1":  "rest_v1_dispatcher-2.3-SNAPSHOT.yml",
}

// sharedDir finds the shared reference directory: $FLINKSCALE_SHARED_DIR,
// else the first "shared" directory with a "flink" folder found walking up
// from the working directory (the one beside the repository).
func sharedDir() string {
	if d := os.Getenv("FLINKSCALE_SHARED_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "shared", "flink")); err == nil && fi.IsDir() {
			return filepath.Join(dir, "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func loadSpec(t *testing.T, version string) *openapi3.T {
	t.Helper()
	dir := sharedDir()
	path := filepath.Join(dir, "flink", specFiles[version])
	if dir == "" {
		t.Skip("shared/flink not found (set FLINKSCALE_SHARED_DIR)")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not present", path)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromFile(path)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	return doc
}

// deviation is a place where the generated spec does not describe what
// Flink serves. check asserts the real shape; patch rewrites the body into
// the spec's shape so that the rest of it is still validated. breaks tells
// whether the real body fails validation because of it (checked, so that no
// deviation is claimed without need).
type deviation struct {
	spec, real, reason string
	breaks             bool
	check              func(t *testing.T, c *specCase, doc *openapi3.T, body any)
	patch              func(body any) any
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

var deviations = map[string]deviation{
	"metric-array": {
		spec:   "MetricCollectionResponseBody is an object {metrics:[Metric]}",
		real:   `a bare JSON array [{"id":…,"value":"…"}]`,
		reason: "reference §1, spec is wrong: MetricCollectionResponseBody has a custom serializer writing a bare array",
		breaks: true,
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			list, isArray := body.([]any)
			require.True(t, isArray, "a bare array")
			for _, e := range list {
				m := e.(map[string]any)
				assert.IsType(t, "", m["id"])
				if v, has := m["value"]; has {
					assert.IsType(t, "", v, "values are strings")
				}
			}
		},
		patch: func(body any) any { return map[string]any{"metrics": body} },
	},
	"aggregated-array": {
		spec:   "AggregatedMetricsResponseBody is an object",
		real:   `a bare JSON array [{"id":…,"min":…,"max":…,"avg":…,"sum":…(,"skew":…)}]`,
		reason: "reference §1, spec is wrong: AggregatedMetricsResponseBody has a custom serializer writing a bare array",
		breaks: true,
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			list, isArray := body.([]any)
			require.True(t, isArray, "a bare array")
			require.NotEmpty(t, list)
			for _, e := range list {
				for k, v := range e.(map[string]any) {
					if k == "id" {
						continue
					}
					assert.Contains(t, []string{"min", "max", "avg", "sum", "skew"}, k)
					if s, isString := v.(string); isString {
						assert.Contains(t, []string{"NaN", "Infinity", "-Infinity"}, s, "only non-finite doubles are strings")
					} else {
						assert.IsType(t, json.Number(""), v)
					}
				}
			}
		},
		patch: func(body any) any { return map[string]any{"metrics": body} },
	},
	"job-config-keys": {
		spec:   "JobConfigInfo{jobId, jobName, executionConfigInfo}",
		real:   "keys jid, name, execution-config",
		reason: "reference §1, spec is wrong: JobConfigInfo has a custom serializer with these keys",
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			m := body.(map[string]any)
			assert.Equal(t, jobID, m["jid"])
			assert.Equal(t, "orders_agg", m["name"])
			assert.Contains(t, m, "execution-config")
			assert.NotContains(t, m, "jobId")
		},
		patch: func(body any) any {
			m := body.(map[string]any)
			return map[string]any{"jobId": m["jid"], "jobName": m["name"], "executionConfigInfo": m["execution-config"]}
		},
	},
	"slot-sharing-group-hex": {
		spec:   "vertices[].slotSharingGroupId is SlotSharingGroupId{bytes, lowerPart, upperPart}",
		real:   "a 32-character hex string",
		reason: "reference §1, spec is wrong: SlotSharingGroupIDSerializer writes the hex string",
		breaks: true,
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			for _, v := range body.(map[string]any)["vertices"].([]any) {
				assert.Regexp(t, hex32, v.(map[string]any)["slotSharingGroupId"])
			}
		},
		patch: func(body any) any {
			for _, v := range body.(map[string]any)["vertices"].([]any) {
				delete(v.(map[string]any), "slotSharingGroupId")
			}
			return body
		},
	},
	"hidden-start-time": {
		spec:   "subtasks[] have no start_time",
		real:   "a duplicate start_time equal to start-time",
		reason: "reference §1, spec is wrong: the field is hidden from the schema generator but serialized",
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			for _, s := range body.(map[string]any)["subtasks"].([]any) {
				st := s.(map[string]any)
				assert.Equal(t, st["start-time"], st["start_time"])
			}
		},
		patch: func(body any) any {
			for _, s := range body.(map[string]any)["subtasks"].([]any) {
				delete(s.(map[string]any), "start_time")
			}
			return body
		},
	},
	"nulls": {
		spec:   "optional properties, none nullable",
		real:   "absent values written as null",
		reason: "reference §1: null fields are emitted (no global NON_NULL), but the generator marks nothing nullable",
		breaks: true,
		check: func(t *testing.T, c *specCase, _ *openapi3.T, body any) {
			require.NotEmpty(t, c.nulls)
			for _, p := range c.nulls {
				v, present := at(body, p)
				assert.True(t, present, "%s is present", p)
				assert.Nil(t, v, "%s is null", p)
			}
		},
		patch: dropNulls,
	},
	"operation-one-of": {
		spec:   "AsynchronousOperationResult.operation is oneOf[AsynchronousOperationInfo, CheckpointInfo, SavepointInfo]",
		real:   `a SavepointInfo ({"location":…} or {"failure-cause":…}), or null while in progress`,
		reason: "own finding: the three alternatives are objects with only optional properties, so any object matches all of them and oneOf can never hold; the real value is checked against SavepointInfo instead",
		breaks: true,
		check: func(t *testing.T, _ *specCase, doc *openapi3.T, body any) {
			op := body.(map[string]any)["operation"]
			if op == nil {
				return
			}
			require.NoError(t, doc.Components.Schemas["SavepointInfo"].Value.VisitJSON(op))
			assert.Len(t, op, 1, "either location or failure-cause")
		},
		patch: func(body any) any {
			delete(body.(map[string]any), "operation")
			return body
		},
	},
	"resource-id": {
		spec:   `TaskManager ids (ResourceID) match "[0-9a-f]{32}"`,
		real:   `free-form ResourceIDs such as "orders-agg-taskmanager-1-1" (Kubernetes) or "10.0.0.1:6122-a1b2c3" (standalone)`,
		reason: "own finding: ResourceID is an arbitrary string; the generator gives every id parameter the hex pattern",
		breaks: true,
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			for _, tm := range taskManagerObjects(body) {
				assert.Contains(t, []any{tm1, tm2}, tm["id"])
			}
		},
		patch: func(body any) any {
			for _, tm := range taskManagerObjects(body) {
				tm["id"] = strings.Repeat("ab", 16)
			}
			return body
		},
	},
	"processing-mode": {
		spec:   "checkpoint config mode is EXACTLY_ONCE | AT_LEAST_ONCE",
		real:   "exactly_once | at_least_once",
		reason: "own finding: CheckpointConfigInfo.ProcessingModeSerializer writes name().toLowerCase()",
		breaks: true,
		check: func(t *testing.T, _ *specCase, _ *openapi3.T, body any) {
			assert.Equal(t, "exactly_once", body.(map[string]any)["mode"])
		},
		patch: func(body any) any {
			m := body.(map[string]any)
			m["mode"] = strings.ToUpper(m["mode"].(string))
			return m
		},
	},
}

func taskManagerObjects(body any) []map[string]any {
	m := body.(map[string]any)
	if list, isList := m["taskmanagers"].([]any); isList {
		out := make([]map[string]any, 0, len(list))
		for _, tm := range list {
			out = append(out, tm.(map[string]any))
		}
		return out
	}
	return []map[string]any{m}
}

func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = dropNulls(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

// at reads a dotted path ("latest.restored", "history.0.savepointFormat").
func at(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var found bool
			if v, found = x[p]; !found {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

type specCase struct {
	name       string
	method     string
	tmpl       string // the spec's path
	url        string
	body       string
	status     int
	setup      func(f *fakeCluster)
	deviations []string
	versions   []string // nil: every version
	nulls      []string // paths the "nulls" deviation expects to be null
}

func specCases() []specCase {
	j := "/jobs/" + jobID
	return []specCase{
		{name: "overview", tmpl: "/overview", url: "/overview"},
		{name: "dashboard config", tmpl: "/config", url: "/config"},
		{name: "jobs", tmpl: "/jobs", url: "/jobs"},
		{name: "jobs overview", tmpl: "/jobs/overview", url: "/jobs/overview"},
		{name: "job details 1.18", tmpl: "/jobs/{jobid}", url: j, versions: []string{"1.18"}},
		{name: "job details", tmpl: "/jobs/{jobid}", url: j, versions: []string{"1.20", "2.1"},
			deviations: []string{"slot-sharing-group-hex"}},
		{name: "job status", tmpl: "/jobs/{jobid}/status", url: j + "/status"},
		{name: "job plan", tmpl: "/jobs/{jobid}/plan", url: j + "/plan"},
		{name: "job config", tmpl: "/jobs/{jobid}/config", url: j + "/config", deviations: []string{"job-config-keys"}},
		{name: "job jobmanager config", tmpl: "/jobs/{jobid}/jobmanager/config", url: j + "/jobmanager/config"},
		{name: "vertex details", tmpl: "/jobs/{jobid}/vertices/{vertexid}", url: j + "/vertices/" + srcID,
			deviations: []string{"hidden-start-time"}},
		{name: "vertex metric ids", tmpl: "/jobs/{jobid}/vertices/{vertexid}/metrics", url: j + "/vertices/" + srcID + "/metrics",
			deviations: []string{"metric-array"}},
		{name: "vertex metric values", tmpl: "/jobs/{jobid}/vertices/{vertexid}/metrics",
			url:        j + "/vertices/" + srcID + "/metrics?get=0.busyTimeMsPerSecond,1.numRecordsOut,0.Source__Kafka_Source.pendingRecords",
			deviations: []string{"metric-array"}},
		{name: "subtask metric values", tmpl: "/jobs/{jobid}/vertices/{vertexid}/subtasks/{subtaskindex}/metrics",
			url: j + "/vertices/" + srcID + "/subtasks/0/metrics?get=busyTimeMsPerSecond", deviations: []string{"metric-array"}},
		{name: "aggregated subtask metrics", tmpl: "/jobs/{jobid}/vertices/{vertexid}/subtasks/metrics",
			url:        j + "/vertices/" + winID + "/subtasks/metrics?get=busyTimeMsPerSecond,numRecordsIn",
			deviations: []string{"aggregated-array"}},
		{name: "job metrics", tmpl: "/jobs/{jobid}/metrics", url: j + "/metrics?get=lastCheckpointDuration,numRestarts,uptime",
			deviations: []string{"metric-array"}},
		{name: "checkpoints", tmpl: "/jobs/{jobid}/checkpoints", url: j + "/checkpoints",
			deviations: []string{"nulls"}, nulls: []string{"latest.restored", "history.0.savepointFormat", "latest.completed.savepointFormat"}},
		{name: "checkpoint config", tmpl: "/jobs/{jobid}/checkpoints/config", url: j + "/checkpoints/config",
			deviations: []string{"processing-mode"}},
		{name: "task managers", tmpl: "/taskmanagers", url: "/taskmanagers", deviations: []string{"resource-id"}},
		{name: "task manager details", tmpl: "/taskmanagers/{taskmanagerid}", url: "/taskmanagers/" + tm1, deviations: []string{"resource-id"}},
		{name: "task manager metrics", tmpl: "/taskmanagers/{taskmanagerid}/metrics", url: "/taskmanagers/" + tm1 + "/metrics",
			deviations: []string{"metric-array"}},
		{name: "aggregated task manager metrics", tmpl: "/taskmanagers/metrics", url: "/taskmanagers/metrics?get=Status.JVM.Memory.Heap.Used",
			deviations: []string{"aggregated-array"}},
		{name: "jobmanager config", tmpl: "/jobmanager/config", url: "/jobmanager/config"},
		{name: "jobmanager metrics", tmpl: "/jobmanager/metrics",
			url: "/jobmanager/metrics?get=taskSlotsTotal,taskSlotsAvailable,numRegisteredTaskManagers", deviations: []string{"metric-array"}},
		{name: "resource requirements", tmpl: "/jobs/{jobid}/resource-requirements", url: j + "/resource-requirements"},
		{name: "update resource requirements", method: http.MethodPut, tmpl: "/jobs/{jobid}/resource-requirements", url: j + "/resource-requirements",
			body: `{"` + srcID + `":{"parallelism":{"lowerBound":1,"upperBound":3}},"` + winID + `":{"parallelism":{"lowerBound":1,"upperBound":2}}}`},
		{name: "trigger savepoint", method: http.MethodPost, tmpl: "/jobs/{jobid}/savepoints", url: j + "/savepoints",
			body: `{"target-directory":"s3://x","cancel-job":false}`, status: http.StatusAccepted},
		{name: "stop with savepoint", method: http.MethodPost, tmpl: "/jobs/{jobid}/stop", url: j + "/stop",
			body: `{"targetDirectory":"s3://x","drain":false}`, status: http.StatusAccepted},
		{name: "savepoint in progress", tmpl: "/jobs/{jobid}/savepoints/{triggerid}", url: j + "/savepoints/" + triggerHex,
			setup: triggered(sim.SavepointStatus{Status: "IN_PROGRESS"}), deviations: []string{"nulls", "operation-one-of"}, nulls: []string{"operation"}},
		{name: "savepoint completed", tmpl: "/jobs/{jobid}/savepoints/{triggerid}", url: j + "/savepoints/" + triggerHex,
			setup: triggered(sim.SavepointStatus{Status: "COMPLETED", Location: "s3://x/savepoint-1"}), deviations: []string{"operation-one-of"}},
		{name: "savepoint failed", tmpl: "/jobs/{jobid}/savepoints/{triggerid}", url: j + "/savepoints/" + triggerHex,
			setup:      triggered(sim.SavepointStatus{Status: "COMPLETED", FailureCause: "boom", FailureClass: "java.lang.RuntimeException"}),
			deviations: []string{"operation-one-of"}},
	}
}

func triggered(st sim.SavepointStatus) func(*fakeCluster) {
	return func(f *fakeCluster) {
		if _, err := f.TriggerSavepoint(sim.SavepointRequest{JobID: jobID, TriggerID: triggerHex, TargetDirectory: "s3://x"}); err != nil {
			panic(err)
		}
		f.finish(triggerHex, st)
	}
}

func validate(doc *openapi3.T, c *specCase, status int, body []byte) error {
	pathItem := doc.Paths.Find(c.tmpl)
	if pathItem == nil {
		return &openapi3.SchemaError{Reason: "no path " + c.tmpl}
	}
	op := pathItem.GetOperation(c.method)
	if op == nil {
		return &openapi3.SchemaError{Reason: "no operation " + c.method + " " + c.tmpl}
	}
	req := httptest.NewRequest(c.method, c.url, nil)
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: c.tmpl, PathItem: pathItem, Method: c.method, Operation: op},
		},
		Status:  status,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

func TestResponsesMatchOpenAPISpec(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			doc := loadSpec(t, v)
			for _, c := range specCases() {
				if c.versions != nil && !contains(c.versions, v) {
					continue
				}
				if c.method == "" {
					c.method = http.MethodGet
				}
				if c.status == 0 {
					c.status = http.StatusOK
				}
				t.Run(c.name, func(t *testing.T) {
					f := newFake(v)
					if c.setup != nil {
						c.setup(f)
					}
					code, raw := do(t, NewHandler(f), c.method, c.url, c.body)
					require.Equal(t, c.status, code, string(raw))

					// Every deviation is real: the unpatched body fails the spec
					// exactly when a breaking deviation applies.
					breaking := false
					for _, id := range c.deviations {
						d, known := deviations[id]
						require.True(t, known, "deviation %q", id)
						breaking = breaking || d.breaks
					}
					if err := validate(doc, &c, code, raw); breaking {
						assert.Error(t, err, "the spec should reject the real shape")
					} else {
						assert.NoError(t, err)
					}

					body := decode(t, raw)
					for _, id := range c.deviations {
						d := deviations[id]
						d.check(t, &c, doc, body)
						body = d.patch(body)
					}
					patched, err := json.Marshal(body)
					require.NoError(t, err)
					assert.NoError(t, validate(doc, &c, code, patched), "%s", patched)
				})
			}
		})
	}
}

func contains(s []string, x string) bool { return slices.Contains(s, x) }

// TestDeviationTable prints the documented deviations (go test -v).
func TestDeviationTable(t *testing.T) {
	for _, id := range slices.Sorted(maps.Keys(deviations)) {
		d := deviations[id]
		require.NotEmpty(t, d.reason, id)
		t.Logf("%-24s spec: %s\n%24s real: %s\n%24s why:  %s", id, d.spec, "", d.real, "", d.reason)
	}
}
