package flinkrest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// readBody decodes a request body strictly, as Flink's REST handlers do
// (RestMapperUtils' strict mapper fails on unknown properties): an empty
// body counts as "{}", anything that does not fit is a 400 naming the
// request class.
func readBody(r *http.Request, into any, requestClass string) *response {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		resp := errorResponse(http.StatusBadRequest, "Request did not match expected format "+requestClass+".")
		return &resp
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil || !exactKeys(raw, reflect.TypeOf(into)) {
		resp := errorResponse(http.StatusBadRequest, "Request did not match expected format "+requestClass+".")
		return &resp
	}
	return nil
}

// exactKeys reports whether every object key in raw matches its Go
// field's JSON name exactly: encoding/json matches names case-insensitively,
// Jackson does not.
func exactKeys(raw []byte, t reflect.Type) bool {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	return keysMatch(doc, t)
}

func keysMatch(doc any, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	obj, isObj := doc.(map[string]any)
	switch {
	case !isObj:
		return true
	case t.Kind() == reflect.Map:
		for _, v := range obj {
			if !keysMatch(v, t.Elem()) {
				return false
			}
		}
		return true
	case t.Kind() != reflect.Struct:
		return true
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	for k, v := range obj {
		ft, found := fields[k]
		if !found || !keysMatch(v, ft) {
			return false
		}
	}
	return true
}

// flinkMessage is the message of a sim error without its sentinel's text:
// "conflict: Another update…" and "Another update…: conflict" both give
// "Another update…"; a bare sentinel gives def.
func flinkMessage(err error, def string) string {
	msg := err.Error()
	for _, s := range []error{sim.ErrNotFound, sim.ErrBadRequest, sim.ErrConflict, sim.ErrUnsupported, sim.ErrNotRunning} {
		if !errors.Is(err, s) {
			continue
		}
		if msg == s.Error() {
			return def
		}
		msg = strings.TrimPrefix(msg, s.Error()+": ")
		msg = strings.TrimSuffix(msg, ": "+s.Error())
	}
	return msg
}

// simErrorResponse maps a sim.Cluster error to Flink's answer. defaults
// gives, per sentinel, Flink's message when the error carries none.
func simErrorResponse(err error, defaults map[error]string) response {
	def := func(s error) string {
		if d, found := defaults[s]; found {
			return d
		}
		return s.Error()
	}
	switch {
	case errors.Is(err, sim.ErrBadRequest):
		return errorResponse(http.StatusBadRequest, flinkMessage(err, def(sim.ErrBadRequest)))
	case errors.Is(err, sim.ErrConflict):
		return errorResponse(http.StatusConflict, flinkMessage(err, def(sim.ErrConflict)))
	case errors.Is(err, sim.ErrNotRunning):
		return errorResponse(http.StatusConflict, flinkMessage(err, def(sim.ErrNotRunning)))
	case errors.Is(err, sim.ErrNotFound):
		return errorResponse(http.StatusNotFound, flinkMessage(err, def(sim.ErrNotFound)))
	case errors.Is(err, sim.ErrUnsupported):
		msg := flinkMessage(err, def(sim.ErrUnsupported))
		return internalError(javaStackTrace("java.util.concurrent.CompletionException",
			"java.lang.UnsupportedOperationException: "+msg))
	}
	return internalError(javaStackTrace("java.util.concurrent.CompletionException", err.Error()))
}

// javaStackTrace is ExceptionUtils.stringifyException of an exception
// without frames worth showing.
func javaStackTrace(class, msg string) string {
	return class + ": " + msg + "\n\tat org.apache.flink.runtime.rest.handler.AbstractRestHandler.respondToRequest(AbstractRestHandler.java:83)\n"
}

// ---- POST /jobs/:jobid/savepoints and /jobs/:jobid/stop ----

// savepointTriggerBody is SavepointTriggerRequestBody: hyphenated keys.
type savepointTriggerBody struct {
	TargetDirectory *string `json:"target-directory"`
	CancelJob       bool    `json:"cancel-job"`
	FormatType      *string `json:"formatType"`
	TriggerID       *string `json:"triggerId"`
}

// stopWithSavepointBody is StopWithSavepointRequestBody: camelCase keys.
type stopWithSavepointBody struct {
	TargetDirectory *string `json:"targetDirectory"`
	Drain           bool    `json:"drain"`
	FormatType      *string `json:"formatType"`
	TriggerID       *string `json:"triggerId"`
}

type triggerResponse struct {
	RequestID string `json:"request-id"`
}

func (h *handler) triggerSavepoint(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	var body savepointTriggerBody
	if errResp := readBody(req.r, &body, "SavepointTriggerRequestBody"); errResp != nil {
		return *errResp
	}
	sr := sim.SavepointRequest{JobID: jid, Cancel: body.CancelJob}
	if errResp := h.completeTrigger(req, &sr, body.TargetDirectory, "target-directory", body.FormatType, body.TriggerID, "SavepointTriggerRequestBody"); errResp != nil {
		return *errResp
	}
	return h.trigger(sr)
}

func (h *handler) stopWithSavepoint(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	var body stopWithSavepointBody
	if errResp := readBody(req.r, &body, "StopWithSavepointRequestBody"); errResp != nil {
		return *errResp
	}
	sr := sim.SavepointRequest{JobID: jid, Stop: true, Drain: body.Drain}
	if errResp := h.completeTrigger(req, &sr, body.TargetDirectory, "targetDirectory", body.FormatType, body.TriggerID, "StopWithSavepointRequestBody"); errResp != nil {
		return *errResp
	}
	return h.trigger(sr)
}

// completeTrigger validates and fills in the fields both bodies share.
func (h *handler) completeTrigger(req *request, sr *sim.SavepointRequest, dir *string, dirField string, format, triggerID *string, requestClass string) *response {
	bad := func() *response {
		r := errorResponse(http.StatusBadRequest, "Request did not match expected format "+requestClass+".")
		return &r
	}
	sr.FormatType = "CANONICAL"
	if format != nil {
		if *format != "CANONICAL" && *format != "NATIVE" {
			return bad() // Jackson's enum deserialization is case-sensitive
		}
		sr.FormatType = *format
	}
	if triggerID != nil {
		if !isHexID(*triggerID) {
			return bad()
		}
		sr.TriggerID = strings.ToLower(*triggerID)
	}
	if dir != nil {
		sr.TargetDirectory = *dir
	} else {
		sr.TargetDirectory = req.ver.savepointDir(req.view.JobManagerConfig)
	}
	if sr.TargetDirectory == "" {
		r := errorResponse(http.StatusBadRequest, fmt.Sprintf(
			"Config key [%s] is not set. Property [%s] must be provided.", req.ver.savepointDirKey(), dirField))
		return &r
	}
	return nil
}

func (h *handler) trigger(sr sim.SavepointRequest) response {
	id, err := h.cluster.TriggerSavepoint(sr)
	if err != nil {
		return simErrorResponse(err, map[error]string{
			sim.ErrNotFound:   fmt.Sprintf("Job %s not found", sr.JobID),
			sim.ErrNotRunning: fmt.Sprintf("Job %s is not in state RUNNING.", sr.JobID),
		})
	}
	return accepted(triggerResponse{RequestID: id})
}

// ---- GET /jobs/:jobid/savepoints/:triggerid ----

type queueStatus struct {
	ID string `json:"id"`
}

type serializedThrowable struct {
	Class               string `json:"class"`
	StackTrace          string `json:"stack-trace"`
	SerializedThrowable string `json:"serialized-throwable"`
}

func (h *handler) savepointStatus(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	tid := req.params["triggerid"]
	if !isHexID(tid) {
		return badParam("path", "triggerid", tid)
	}
	tid = strings.ToLower(tid)
	st, err := h.cluster.SavepointStatus(jid, tid)
	if err != nil {
		return simErrorResponse(err, map[error]string{
			sim.ErrNotFound: fmt.Sprintf("Operation not found under key: AsynchronousJobOperationKey{triggerId=%s, jobId=%s}", tid, jid),
		})
	}
	if st.Status != "COMPLETED" {
		return ok(omap{{"status", queueStatus{"IN_PROGRESS"}}, {"operation", nil}})
	}
	var op omap
	if st.FailureCause != "" || st.Location == "" {
		class := st.FailureClass
		if class == "" {
			class = "java.util.concurrent.CompletionException"
		}
		trace := javaStackTrace(class, st.FailureCause)
		op = omap{{"failure-cause", serializedThrowable{
			Class:      class,
			StackTrace: trace,
			// The real value is the Java-serialized throwable; this carries
			// the stack trace so the field is present and decodable.
			SerializedThrowable: base64.StdEncoding.EncodeToString([]byte(trace)),
		}}}
	} else {
		op = omap{{"location", st.Location}}
	}
	return ok(omap{{"status", queueStatus{"COMPLETED"}}, {"operation", op}})
}

// ---- GET/PUT /jobs/:jobid/resource-requirements ----

type parallelismBounds struct {
	Parallelism *sim.Bounds `json:"parallelism"`
}

func (h *handler) getResourceRequirements(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	reqs, err := h.cluster.ResourceRequirements(jid)
	if err != nil {
		return simErrorResponse(err, map[error]string{
			sim.ErrNotFound:    fmt.Sprintf("Job %s not found", jid),
			sim.ErrUnsupported: "The DefaultScheduler does not support declarative resource management.",
		})
	}
	// Known vertices in topological order, then any others by id.
	var ids []string
	for _, vx := range req.view.Job.Vertices {
		if _, found := reqs[vx.ID]; found {
			ids = append(ids, vx.ID)
		}
	}
	var rest []string
	for id := range reqs {
		if !slices.Contains(ids, id) {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	out := omap{}
	for _, id := range append(ids, rest...) {
		b := reqs[id]
		out = append(out, kv{id, parallelismBounds{Parallelism: &b}})
	}
	return ok(out)
}

func (h *handler) putResourceRequirements(req *request) response {
	jid, errResp := req.jobParam()
	if errResp != nil {
		return *errResp
	}
	var body map[string]parallelismBounds
	if errResp := readBody(req.r, &body, "JobResourceRequirementsBody"); errResp != nil {
		return *errResp
	}
	if len(body) == 0 {
		return errorResponse(http.StatusBadRequest, "Request body does not specify resource requirements.")
	}
	reqs := make(map[string]sim.Bounds, len(body))
	for id, b := range body {
		if !isHexID(id) || b.Parallelism == nil {
			return errorResponse(http.StatusBadRequest, "Request did not match expected format JobResourceRequirementsBody.")
		}
		reqs[strings.ToLower(id)] = *b.Parallelism
	}
	if err := h.cluster.UpdateResourceRequirements(jid, reqs); err != nil {
		return simErrorResponse(err, map[error]string{
			sim.ErrNotFound: fmt.Sprintf("Job %s not found", jid),
			sim.ErrConflict: fmt.Sprintf("Another update to the job [%s] resource requirements is in progress.", jid),
			sim.ErrUnsupported: "The DefaultScheduler does not support changing the parallelism without a job restart. " +
				"This feature is currently only expected to work with the AdaptiveScheduler.",
		})
	}
	return ok(struct{}{}) // EmptyResponseBody
}
