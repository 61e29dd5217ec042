// Package flink reads a Flink JobManager's REST API (versions 1.18 to 2.x)
// into metrics.FlinkSample: a typed Client for the endpoints the autoscaler
// needs, and a Collector that polls one job with a bounded number of round
// trips, discovering metric ids before it asks for them (Flink answers []
// to an aggregated query if any requested id is missing).
package flink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds each request unless WithTimeout says otherwise (the
// Flink operator's job.autoscaler.flink.rest-client.timeout default).
const DefaultTimeout = 10 * time.Second

// maxBody bounds a response body read into memory.
const maxBody = 64 << 20

// Client is a REST client for one Flink JobManager. It is safe for
// concurrent use.
type Client struct {
	base    *url.URL
	hc      *http.Client
	timeout time.Duration
	headers http.Header
}

// Option configures a Client.
type Option func(*clientConfig) error

type clientConfig struct {
	timeout time.Duration
	hc      *http.Client
	tls     *tls.Config
	headers http.Header
}

// WithTimeout bounds every request (default DefaultTimeout; ≤ 0 is an
// error).
func WithTimeout(d time.Duration) Option {
	return func(c *clientConfig) error {
		if d <= 0 {
			return fmt.Errorf("timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithHTTPClient uses hc for every request (its Transport, TLS and
// redirects). WithTLSConfig cannot be combined with it.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *clientConfig) error {
		if hc == nil {
			return errors.New("nil *http.Client")
		}
		c.hc = hc
		return nil
	}
}

// WithTLSConfig sets the TLS configuration (custom CA in RootCAs, client
// certificates in Certificates) of the client's own transport.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *clientConfig) error {
		if cfg == nil {
			return errors.New("nil *tls.Config")
		}
		c.tls = cfg.Clone()
		return nil
	}
}

// WithBearerToken sends "Authorization: Bearer <token>" on every request.
func WithBearerToken(token string) Option {
	return func(c *clientConfig) error {
		if token == "" {
			return errors.New("empty bearer token")
		}
		c.headers.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// WithBasicAuth sends HTTP basic authentication on every request.
func WithBasicAuth(user, password string) Option {
	return func(c *clientConfig) error {
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, password)
		c.headers.Set("Authorization", r.Header.Get("Authorization"))
		return nil
	}
}

// WithHeader sends a header on every request (e.g. a proxy's API key).
func WithHeader(key, value string) Option {
	return func(c *clientConfig) error {
		if key == "" {
			return errors.New("empty header name")
		}
		c.headers.Add(key, value)
		return nil
	}
}

// New returns a client for the JobManager at baseURL
// ("http://host:8081", optionally with a path prefix such as a proxy's).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("flink: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("flink: base URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("flink: base URL %q: no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	cfg := clientConfig{timeout: DefaultTimeout, headers: http.Header{}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("flink: %w", err)
		}
	}
	if cfg.hc != nil && cfg.tls != nil {
		return nil, errors.New("flink: WithHTTPClient and WithTLSConfig are exclusive; set TLS on the http.Client's transport")
	}
	hc := cfg.hc
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.tls != nil {
			tr.TLSClientConfig = cfg.tls
		}
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: u, hc: hc, timeout: cfg.timeout, headers: cfg.headers}, nil
}

// APIError is a JobManager's error answer: the HTTP status and the messages
// of its {"errors":[…]} body (or the raw body when it has none).
type APIError struct {
	Method   string
	Endpoint string // path and query, relative to the base URL
	Status   int
	Messages []string
}

func (e *APIError) Error() string {
	msg := e.Summary()
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("flink: %s %s: HTTP %d: %s", e.Method, e.Endpoint, e.Status, msg)
}

// Summary is the messages joined, each cut to its first line: Flink puts
// whole Java stack traces into "errors" (a job not found is a
// NotFoundException with 30 lines of frames), and only the first line,
// the exception and its message, belongs in a condition or an event.
func (e *APIError) Summary() string {
	lines := make([]string, 0, len(e.Messages))
	for _, m := range e.Messages {
		first, _, _ := strings.Cut(strings.TrimSpace(m), "\n")
		lines = append(lines, strings.TrimSpace(first))
	}
	return strings.Join(lines, "; ")
}

// IsNotFound reports whether err is a Flink 404 (unknown job, vertex,
// trigger, or checkpointing not enabled).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends one request and decodes a 2xx JSON answer into out (when not
// nil). Errors name the method and endpoint.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	endpoint, rawQuery := path, ""
	if len(query) > 0 {
		rawQuery = query.Encode()
		endpoint += "?" + rawQuery
	}
	wrap := func(err error) error { return fmt.Errorf("flink: %s %s: %w", method, endpoint, err) }
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return wrap(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + path
	if len(query) > 0 {
		// Flink reads "get=a,b" with literal commas.
		u.RawQuery = strings.ReplaceAll(rawQuery, "%2C", ",")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return wrap(err)
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The transport reports a connection's deadline (the request's)
		// as DeadlineExceeded; it may pass before ctx's own timer has
		// fired, so the deadline is read, not only ctx.Err.
		if errors.Is(err, context.DeadlineExceeded) && (ctx.Err() != nil || deadlinePassed(ctx)) {
			return wrap(fmt.Errorf("no answer within %v: %w", c.timeout, err))
		}
		return wrap(err)
	}
	defer resp.Body.Close()
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	raw := buf.Bytes()
	if err != nil {
		return wrap(fmt.Errorf("reading body: %w", err))
	}
	if len(raw) > maxBody {
		return wrap(fmt.Errorf("body larger than %d bytes", maxBody))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Endpoint: endpoint, Status: resp.StatusCode, Messages: errorMessages(raw)}
	}
	if out == nil {
		return nil
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return wrap(errors.New("empty body"))
	}
	if fd, ok := out.(fastDecoder); !ok || !fd.decodeFast(raw) {
		if err := json.Unmarshal(raw, out); err != nil {
			return wrap(fmt.Errorf("decoding %T: %w", out, err))
		}
	}
	if v, ok := out.(validator); ok {
		if err := v.validate(); err != nil {
			return wrap(fmt.Errorf("unexpected shape: %w", err))
		}
	}
	return nil
}

// bodyBuffers hold answers while they are decoded: a fleet's polls read
// some 500 answers a second, and io.ReadAll grew a new buffer for each
// (14 % of the controller's allocation at 1,000 jobs). Nothing decoded
// refers to the buffer: encoding/json and decodeFast copy the strings.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBodyBuffer returns buf to bodyBuffers, unless an answer made it
// large (a rare one should not stay in memory).
func putBodyBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return
	}
	buf.Reset()
	bodyBuffers.Put(buf)
}

// validator checks the fields a decoded answer must have.
type validator interface{ validate() error }

func errorMessages(raw []byte) []string {
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Errors) > 0 {
		return body.Errors
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	if s == "" {
		return nil
	}
	return []string{s}
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

func jobPath(jobID string) string { return "/jobs/" + url.PathEscape(jobID) }

func vertexPath(jobID, vertexID string) string {
	return jobPath(jobID) + "/vertices/" + url.PathEscape(vertexID)
}

// Overview is GET /overview.
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	var o Overview
	err := c.get(ctx, "/overview", nil, &o)
	return o, err
}

// Jobs is GET /jobs/overview: every job the JobManager knows.
func (c *Client) Jobs(ctx context.Context) ([]JobOverview, error) {
	var body struct {
		Jobs *[]JobOverview `json:"jobs"`
	}
	if err := c.get(ctx, "/jobs/overview", nil, &body); err != nil {
		return nil, err
	}
	if body.Jobs == nil {
		return nil, errors.New("flink: GET /jobs/overview: unexpected shape: no \"jobs\"")
	}
	return *body.Jobs, nil
}

// JobDetails is GET /jobs/:jobid: vertices, plan, timestamps and state.
func (c *Client) JobDetails(ctx context.Context, jobID string) (JobDetails, error) {
	var d JobDetails
	err := c.get(ctx, jobPath(jobID), nil, &d)
	return d, err
}

// VertexMetricIDs is GET /jobs/:jobid/vertices/:vertexid/subtasks/metrics
// without get: the ids the vertex's subtasks have (task scope "metric",
// operator scope "<operator>.<metric>").
func (c *Client) VertexMetricIDs(ctx context.Context, jobID, vertexID string) ([]string, error) {
	var items metricList
	if err := c.get(ctx, vertexPath(jobID, vertexID)+"/subtasks/metrics", nil, &items); err != nil {
		return nil, err
	}
	return items.ids(), nil
}

// TaskManagerMetricIDs is GET /taskmanagers/:id/metrics without get: the
// metric ids one TaskManager has (Status.JVM.*, Status.Flink.Memory.*,
// Status.Shuffle.Netty.*, …).
func (c *Client) TaskManagerMetricIDs(ctx context.Context, tmID string) ([]string, error) {
	var items metricList
	if err := c.get(ctx, "/taskmanagers/"+url.PathEscape(tmID)+"/metrics", nil, &items); err != nil {
		return nil, err
	}
	return items.ids(), nil
}

// AggregatedTaskManagerMetrics is GET /taskmanagers/metrics?get=ids&agg=aggs:
// each id's aggregates over every TaskManager. As for subtasks, ask only
// for discovered ids.
func (c *Client) AggregatedTaskManagerMetrics(ctx context.Context, ids, aggs []string) (map[string]AggregatedMetric, error) {
	return c.aggregated(ctx, "/taskmanagers/metrics", ids, aggs)
}

// Aggregation names for AggregatedSubtaskMetrics.
const (
	AggMin  = "min"
	AggMax  = "max"
	AggAvg  = "avg"
	AggSum  = "sum"
	AggSkew = "skew" // Flink 1.20+
)

// AggregatedSubtaskMetrics is GET …/subtasks/metrics?get=ids&agg=aggs: each
// id's aggregates over the vertex's subtasks (all aggregations when aggs is
// empty). Flink answers with no entries at all if any id is missing on
// every subtask, so ask only for discovered ids; ids it skipped (non-numeric
// gauges) are absent from the map.
func (c *Client) AggregatedSubtaskMetrics(ctx context.Context, jobID, vertexID string, ids, aggs []string) (map[string]AggregatedMetric, error) {
	return c.aggregated(ctx, vertexPath(jobID, vertexID)+"/subtasks/metrics", ids, aggs)
}

// aggregated is GET path?get=ids&agg=aggs of an aggregating metrics
// handler (subtasks, TaskManagers): each id's aggregates.
func (c *Client) aggregated(ctx context.Context, path string, ids, aggs []string) (map[string]AggregatedMetric, error) {
	if len(ids) == 0 {
		return map[string]AggregatedMetric{}, nil
	}
	q := url.Values{"get": {strings.Join(ids, ",")}}
	if len(aggs) > 0 {
		q.Set("agg", strings.Join(aggs, ","))
	}
	var items aggregatedList
	if err := c.get(ctx, path, q, &items); err != nil {
		return nil, err
	}
	out := make(map[string]AggregatedMetric, len(items))
	for _, m := range items {
		if m.ID == "" {
			return nil, fmt.Errorf("flink: GET %s: unexpected shape: entry without id", path)
		}
		out[m.ID] = m
	}
	return out, nil
}

// VertexMetricList is GET /jobs/:jobid/vertices/:vertexid/metrics without
// get: per-subtask ids, "<subtask>.<metric>" or
// "<subtask>.<operator>.<metric>".
func (c *Client) VertexMetricList(ctx context.Context, jobID, vertexID string) ([]string, error) {
	var items metricList
	if err := c.get(ctx, vertexPath(jobID, vertexID)+"/metrics", nil, &items); err != nil {
		return nil, err
	}
	return items.ids(), nil
}

// maxQueryLen keeps a ?get= query under Netty's 4096-byte request line.
const maxQueryLen = 3000

// VertexMetrics is GET /jobs/:jobid/vertices/:vertexid/metrics?get=ids, in
// as many requests as the ids need to keep each URL short: id → raw value.
// Unknown ids are absent from the map.
func (c *Client) VertexMetrics(ctx context.Context, jobID, vertexID string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for _, batch := range batches(ids, maxQueryLen) {
		var items metricList
		if err := c.get(ctx, vertexPath(jobID, vertexID)+"/metrics", url.Values{"get": {strings.Join(batch, ",")}}, &items); err != nil {
			return nil, err
		}
		for _, m := range items {
			if m.Value != nil {
				out[m.ID] = *m.Value
			}
		}
	}
	return out, nil
}

// batches cuts ids into groups whose comma-joined (query-escaped) length
// stays under limit; an id longer than limit travels alone.
func batches(ids []string, limit int) [][]string {
	var out [][]string
	var cur []string
	n := 0
	for _, id := range ids {
		l := len(url.QueryEscape(id)) + 1
		if len(cur) > 0 && n+l > limit {
			out = append(out, cur)
			cur, n = nil, 0
		}
		cur = append(cur, id)
		n += l
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Checkpoints is GET /jobs/:jobid/checkpoints.
func (c *Client) Checkpoints(ctx context.Context, jobID string) (CheckpointStatistics, error) {
	var s CheckpointStatistics
	err := c.get(ctx, jobPath(jobID)+"/checkpoints", nil, &s)
	return s, err
}

// CheckpointConfig is GET /jobs/:jobid/checkpoints/config. Flink answers 404
// when checkpointing is not enabled (see IsNotFound).
func (c *Client) CheckpointConfig(ctx context.Context, jobID string) (CheckpointConfig, error) {
	var s CheckpointConfig
	err := c.get(ctx, jobPath(jobID)+"/checkpoints/config", nil, &s)
	return s, err
}

// JobManagerConfig is GET /jobmanager/config as key → value (secret values
// come back as "******").
func (c *Client) JobManagerConfig(ctx context.Context) (map[string]string, error) {
	var entries []struct {
		Key   *string `json:"key"`
		Value string  `json:"value"`
	}
	if err := c.get(ctx, "/jobmanager/config", nil, &entries); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.Key == nil {
			return nil, errors.New("flink: GET /jobmanager/config: unexpected shape: entry without key")
		}
		out[*e.Key] = e.Value
	}
	return out, nil
}

// TaskManagers is GET /taskmanagers.
func (c *Client) TaskManagers(ctx context.Context) ([]TaskManagerInfo, error) {
	var body struct {
		TaskManagers *[]TaskManagerInfo `json:"taskmanagers"`
	}
	if err := c.get(ctx, "/taskmanagers", nil, &body); err != nil {
		return nil, err
	}
	if body.TaskManagers == nil {
		return nil, errors.New("flink: GET /taskmanagers: unexpected shape: no \"taskmanagers\"")
	}
	return *body.TaskManagers, nil
}

type triggerAnswer struct {
	RequestID string `json:"request-id"`
}

func (t *triggerAnswer) validate() error {
	if t.RequestID == "" {
		return errors.New("no request-id")
	}
	return nil
}

// TriggerSavepoint is POST /jobs/:jobid/savepoints (the job keeps running);
// dir "" uses the cluster's default directory, formatType "" Flink's
// default (CANONICAL; or NATIVE). It returns the trigger id.
func (c *Client) TriggerSavepoint(ctx context.Context, jobID, dir, formatType string) (string, error) {
	body := struct { // hyphenated keys, unlike the stop body
		TargetDirectory string `json:"target-directory,omitempty"`
		CancelJob       bool   `json:"cancel-job"`
		FormatType      string `json:"formatType,omitempty"`
	}{dir, false, formatType}
	var a triggerAnswer
	if err := c.do(ctx, http.MethodPost, jobPath(jobID)+"/savepoints", nil, body, &a); err != nil {
		return "", err
	}
	return a.RequestID, nil
}

// StopWithSavepoint is POST /jobs/:jobid/stop: a savepoint, then the job
// finishes (drain: after emitting MAX_WATERMARK). It returns the trigger id,
// polled with SavepointStatus.
func (c *Client) StopWithSavepoint(ctx context.Context, jobID, dir string, drain bool) (string, error) {
	body := struct { // camelCase keys
		TargetDirectory string `json:"targetDirectory,omitempty"`
		Drain           bool   `json:"drain"`
	}{dir, drain}
	var a triggerAnswer
	if err := c.do(ctx, http.MethodPost, jobPath(jobID)+"/stop", nil, body, &a); err != nil {
		return "", err
	}
	return a.RequestID, nil
}

// SavepointStatus is GET /jobs/:jobid/savepoints/:triggerid.
func (c *Client) SavepointStatus(ctx context.Context, jobID, triggerID string) (SavepointStatus, error) {
	var s SavepointStatus
	err := c.get(ctx, jobPath(jobID)+"/savepoints/"+url.PathEscape(triggerID), nil, &s)
	return s, err
}

// GetResourceRequirements is GET /jobs/:jobid/resource-requirements
// (adaptive scheduler): vertex id → parallelism bounds.
func (c *Client) GetResourceRequirements(ctx context.Context, jobID string) (map[string]Bounds, error) {
	var body map[string]struct {
		Parallelism *Bounds `json:"parallelism"`
	}
	if err := c.get(ctx, jobPath(jobID)+"/resource-requirements", nil, &body); err != nil {
		return nil, err
	}
	out := make(map[string]Bounds, len(body))
	for id, r := range body {
		if r.Parallelism == nil {
			return nil, fmt.Errorf("flink: GET %s/resource-requirements: unexpected shape: vertex %s has no parallelism", jobPath(jobID), id)
		}
		out[id] = *r.Parallelism
	}
	return out, nil
}

// PutResourceRequirements is PUT /jobs/:jobid/resource-requirements. Flink
// requires every vertex of the job; a concurrent update answers 409.
func (c *Client) PutResourceRequirements(ctx context.Context, jobID string, req map[string]Bounds) error {
	if len(req) == 0 {
		return fmt.Errorf("flink: PUT %s/resource-requirements: no vertices", jobPath(jobID))
	}
	body := make(map[string]struct {
		Parallelism Bounds `json:"parallelism"`
	}, len(req))
	for id, b := range req {
		body[id] = struct {
			Parallelism Bounds `json:"parallelism"`
		}{b}
	}
	return c.do(ctx, http.MethodPut, jobPath(jobID)+"/resource-requirements", nil, body, nil)
}

// deadlinePassed reports whether ctx has a deadline that has passed.
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
