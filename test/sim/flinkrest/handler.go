// Package flinkrest serves the Flink JobManager REST API of a simulated
// cluster (sim.Cluster), with the JSON shapes, quirks and version
// differences of the real JobManager: Flink 1.18, 1.20 and 2.x, as chosen by
// sim.View.FlinkVersion. It renders a View: the live one for job details,
// checkpoint statistics, TaskManagers and the control endpoints (a real
// JobManager reads them from the execution graph and the resource
// manager), and for the metrics endpoints the one its MetricStore holds,
// refreshed on demand at most every metrics.fetcher.update-interval, as
// Flink's MetricFetcher does (see metricFetcher). That store is the only
// state it keeps.
package flinkrest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/flinkscale/flinkscale/test/sim"
)

// NewHandler serves c's REST API, under "/" and under "/v1" as Flink does.
// Its metrics are those of a MetricStore refreshed at most every
// DefaultMetricFetcherInterval of c's time (WithMetricFetcherInterval).
func NewHandler(c sim.Cluster, opts ...Option) http.Handler {
	h := &handler{cluster: c, routes: routes(), fetcher: &metricFetcher{interval: DefaultMetricFetcherInterval}}
	for _, o := range opts {
		o(h)
	}
	return h
}

type handler struct {
	cluster sim.Cluster
	routes  []route
	fetcher *metricFetcher

	// The view of the cluster's generation gen (a cluster that counts
	// its changes: sim.Job.Generation), kept for the requests that come
	// before it changes: a collector's dozen requests at one instant
	// render the cluster once. Renderers only read views.
	viewMu sync.Mutex
	view   *sim.View
	gen    uint64

	// The subtasks' metric stores of the metric store storesOf (a
	// fetch), by vertex id then subtask index, built once per fetch.
	storesMu sync.Mutex
	storesOf *sim.View
	stores   map[string]map[int]*metricStore
}

// generational is a cluster that counts its changes.
type generational interface{ Generation() uint64 }

// live is the cluster's view now.
func (h *handler) live() sim.View {
	g, ok := h.cluster.(generational)
	if !ok {
		return h.cluster.View()
	}
	h.viewMu.Lock()
	defer h.viewMu.Unlock()
	gen := g.Generation() // before View: a change in between renders again next time
	if h.view == nil || h.gen != gen {
		v := h.cluster.View()
		h.view, h.gen = &v, gen
	}
	return *h.view
}

// request is one routed call.
type request struct {
	h      *handler
	r      *http.Request
	params map[string]string
	view   sim.View // live
	ver    version

	store     *sim.View // metricStore's answer
	storeRead bool
}

type handlerFunc func(h *handler, req *request) response

// response is a status and a JSON body (already encoded).
type response struct {
	status int
	body   []byte
}

type route struct {
	method  string
	pattern []string // literal segments, or ":name"
	fn      handlerFunc
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write(w, h.serve(r))
}

func write(w http.ResponseWriter, resp response) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func (h *handler) serve(r *http.Request) response {
	tokens, valid := routeTokens(r)
	if !valid {
		return notFound(r)
	}
	rt, params := h.match(r.Method, tokens)
	if rt == nil {
		// Flink's router answers an unknown path and a known path with the
		// wrong method alike: 404 "Not found: <uri>", never 405.
		return notFound(r)
	}
	return rt.fn(h, h.request(r, params))
}

// request is a call with its path parameters, on the live view.
func (h *handler) request(r *http.Request, params map[string]string) *request {
	view := h.live()
	return &request{h: h, r: r, params: params, view: view, ver: parseVersion(view.FlinkVersion)}
}

// routeTokens is the request path's tokens below the optional "/v1".
func routeTokens(r *http.Request) ([]string, bool) {
	tokens, valid := pathTokens(r.URL.EscapedPath())
	if len(tokens) > 0 && tokens[0] == "v1" {
		tokens = tokens[1:]
	}
	return tokens, valid
}

// pathTokens splits a path as Flink's router does: slashes at both ends are
// dropped, then each component is URL-decoded.
func pathTokens(escaped string) ([]string, bool) {
	trimmed := strings.Trim(escaped, "/")
	if trimmed == "" {
		return nil, true
	}
	parts := strings.Split(trimmed, "/")
	for i, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = d
	}
	return parts, true
}

// match finds the route for method and tokens. A literal segment wins over a
// path parameter at the same position (as Flink orders its handlers), so
// /jobs/overview never reaches /jobs/:jobid.
func (h *handler) match(method string, tokens []string) (*route, map[string]string) {
	var best *route
	var bestScore []bool
	for i := range h.routes {
		rt := &h.routes[i]
		if rt.method != method || len(rt.pattern) != len(tokens) {
			continue
		}
		score := make([]bool, len(tokens))
		ok := true
		for j, seg := range rt.pattern {
			if strings.HasPrefix(seg, ":") {
				continue
			}
			if seg != tokens[j] {
				ok = false
				break
			}
			score[j] = true
		}
		if !ok {
			continue
		}
		if best == nil || literalBefore(score, bestScore) {
			best, bestScore = rt, score
		}
	}
	if best == nil {
		return nil, nil
	}
	params := map[string]string{}
	for j, seg := range best.pattern {
		if strings.HasPrefix(seg, ":") {
			params[seg[1:]] = tokens[j]
		}
	}
	return best, params
}

func literalBefore(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i]
		}
	}
	return false
}

func routes() []route {
	get := func(p string, fn handlerFunc) route { return route{http.MethodGet, split(p), fn} }
	post := func(p string, fn handlerFunc) route { return route{http.MethodPost, split(p), fn} }
	put := func(p string, fn handlerFunc) route { return route{http.MethodPut, split(p), fn} }
	return []route{
		get("/overview", (*handler).clusterOverview),
		get("/config", (*handler).dashboardConfig),
		get("/jobs", (*handler).jobIDs),
		get("/jobs/overview", (*handler).jobsOverview),
		get("/jobs/:jobid", (*handler).jobDetails),
		get("/jobs/:jobid/status", (*handler).jobStatus),
		get("/jobs/:jobid/plan", (*handler).jobPlan),
		get("/jobs/:jobid/config", (*handler).jobConfig),
		get("/jobs/:jobid/jobmanager/config", (*handler).jobJobManagerConfig),
		get("/jobs/:jobid/metrics", (*handler).jobMetrics),
		get("/jobs/:jobid/checkpoints", (*handler).checkpoints),
		get("/jobs/:jobid/checkpoints/config", (*handler).checkpointConfig),
		get("/jobs/:jobid/vertices/:vertexid", (*handler).vertexDetails),
		get("/jobs/:jobid/vertices/:vertexid/metrics", (*handler).vertexMetrics),
		get("/jobs/:jobid/vertices/:vertexid/subtasks/metrics", (*handler).subtasksAggregatedMetrics),
		get("/jobs/:jobid/vertices/:vertexid/subtasks/:subtaskindex/metrics", (*handler).subtaskMetrics),
		get("/jobs/:jobid/resource-requirements", (*handler).getResourceRequirements),
		put("/jobs/:jobid/resource-requirements", (*handler).putResourceRequirements),
		post("/jobs/:jobid/savepoints", (*handler).triggerSavepoint),
		post("/jobs/:jobid/stop", (*handler).stopWithSavepoint),
		get("/jobs/:jobid/savepoints/:triggerid", (*handler).savepointStatus),
		get("/taskmanagers", (*handler).taskManagers),
		get("/taskmanagers/metrics", (*handler).taskManagersAggregatedMetrics),
		get("/taskmanagers/:taskmanagerid", (*handler).taskManagerDetails),
		get("/taskmanagers/:taskmanagerid/metrics", (*handler).taskManagerMetrics),
		get("/jobmanager/config", (*handler).jobManagerConfig),
		get("/jobmanager/metrics", (*handler).jobManagerMetrics),
	}
}

func split(p string) []string {
	t, _ := pathTokens(p)
	return t
}

// ---- responses ----

// marshal encodes v as Jackson would lay it out: no HTML escaping, no
// trailing newline.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("flinkrest: encoding %T: %v", v, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func ok(v any) response { return response{status: http.StatusOK, body: marshal(v)} }

func accepted(v any) response { return response{status: http.StatusAccepted, body: marshal(v)} }

type errorBody struct {
	Errors []string `json:"errors"`
}

func errorResponse(status int, msgs ...string) response {
	return response{status: status, body: marshal(errorBody{Errors: msgs})}
}

func notFound(r *http.Request) response {
	return errorResponse(http.StatusNotFound, "Not found: "+r.URL.RequestURI())
}

// internalError is how Flink's AbstractHandler answers an exception that is
// not a RestHandlerException (an UnsupportedOperationException, say).
func internalError(stackTrace string) response {
	return errorResponse(http.StatusInternalServerError,
		"Internal server error.",
		"<Exception on server side:\n"+stackTrace+"\nEnd of exception on server side>")
}

func badParam(kind, key, value string) response {
	return errorResponse(http.StatusBadRequest, fmt.Sprintf(
		"Bad request, could not parse parameters: Cannot resolve %s parameter (%s) from value \"%s\".",
		kind, key, value))
}

// ---- path parameters ----

func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// jobParam parses :jobid as Flink's JobIDPathParameter does (32 hex
// characters, case-insensitive) and returns it lower-cased.
func (req *request) jobParam() (string, *response) {
	raw := req.params["jobid"]
	if !isHexID(raw) {
		r := badParam("path", "jobid", raw)
		return "", &r
	}
	return strings.ToLower(raw), nil
}

// job finds the path's job: 400 for a malformed id, 404 "Job <id> not found"
// (AbstractExecutionGraphHandler's message) for an unknown one.
func (req *request) job() (*sim.JobView, *response) {
	id, errResp := req.jobParam()
	if errResp != nil {
		return nil, errResp
	}
	if req.view.Job.ID == "" || !strings.EqualFold(req.view.Job.ID, id) {
		r := errorResponse(http.StatusNotFound, fmt.Sprintf("Job %s not found", id))
		return nil, &r
	}
	return &req.view.Job, nil
}

func (req *request) vertexParam() (string, *response) {
	raw := req.params["vertexid"]
	if !isHexID(raw) {
		r := badParam("path", "vertexid", raw)
		return "", &r
	}
	return strings.ToLower(raw), nil
}

// findVertex returns the job's vertex with id, or nil.
func findVertex(job *sim.JobView, id string) *sim.VertexView {
	for i := range job.Vertices {
		if strings.EqualFold(job.Vertices[i].ID, id) {
			return &job.Vertices[i]
		}
	}
	return nil
}

// queryList is a comma-separated query parameter, all occurrences joined, as
// Flink's MessageQueryParameter reads it. Empty when absent.
func (req *request) queryList(key string) []string {
	vals, present := req.r.URL.Query()[key]
	if !present {
		return nil
	}
	return javaSplit(strings.Join(vals, ","))
}

// javaSplit is Java's s.split(","): trailing empty strings are dropped,
// except that splitting "" gives [""].
func javaSplit(s string) []string {
	if s == "" {
		return []string{""}
	}
	parts := strings.Split(s, ",")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}
