package controllers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// fault is what the injector does to a request it matches.
type fault int32

const (
	// passThrough answers as the simulated JobManager does.
	passThrough fault = iota
	// refuse closes the connection without an answer (a JobManager that is
	// down, a Service without endpoints).
	refuse
	// slow answers only after slowFor: past the client's timeout.
	slow
	// unavailable answers 503 with a Flink error body (a JobManager during
	// leader election).
	unavailable
	// malformed answers 200 with the body cut in half (a proxy that drops
	// the connection mid-body).
	malformed
)

func (f fault) String() string {
	return [...]string{"passThrough", "refuse", "slow", "unavailable", "malformed"}[f]
}

// slowFor is how long a slow answer takes (the controller's Flink timeout
// in these tests is 300 ms).
const slowFor = time.Second

// flinkUnavailableBody is what a JobManager answers during leader election.
const flinkUnavailableBody = `{"errors":["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}`

// rewrite changes a successful answer's body (nil: unchanged) for a path.
type rewrite func(path string, r *http.Request, body []byte) []byte

// faultInjector is a test-only middleware in front of the simulated Flink
// REST API, switched at run time: a fault (on every path, or on the paths
// only matches) and a rewrite of the answers (partial metrics). The zero
// value passes everything through.
type faultInjector struct {
	next  http.Handler
	mode  atomic.Int32
	only  atomic.Pointer[func(*http.Request) bool]
	edit  atomic.Pointer[rewrite]
	hits  atomic.Int64 // requests a fault or a rewrite applied to
	total atomic.Int64
}

func (fi *faultInjector) wrap(next http.Handler) http.Handler {
	fi.next = next
	return fi
}

// set switches to fault f on the paths match accepts (nil: every path).
func (fi *faultInjector) set(f fault, match func(*http.Request) bool) {
	if match == nil {
		fi.only.Store(nil)
	} else {
		fi.only.Store(&match)
	}
	fi.mode.Store(int32(f))
}

// rewriting rewrites successful answers with rw (nil: stop rewriting).
func (fi *faultInjector) rewriting(rw rewrite) {
	if rw == nil {
		fi.edit.Store(nil)
		return
	}
	fi.edit.Store(&rw)
}

// clear passes everything through again.
func (fi *faultInjector) clear() {
	fi.set(passThrough, nil)
	fi.rewriting(nil)
}

func (fi *faultInjector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fi.total.Add(1)
	f := fault(fi.mode.Load())
	if m := fi.only.Load(); m != nil && !(*m)(r) {
		f = passThrough
	}
	if f != passThrough {
		fi.hits.Add(1)
	}
	switch f {
	case refuse:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("faultInjector: the server does not support hijacking")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	case slow:
		select {
		case <-time.After(slowFor):
		case <-r.Context().Done():
			return // the client gave up, as it should
		}
	case unavailable:
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(flinkUnavailableBody))
		return
	}
	edit := fi.edit.Load()
	if f != malformed && edit == nil {
		fi.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	fi.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code >= 200 && rec.Code < 300 {
		if edit != nil {
			if out := (*edit)(r.URL.Path, r, body); out != nil {
				fi.hits.Add(1)
				body = out
			}
		}
		if f == malformed {
			body = body[:len(body)/2]
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// onVertexMetrics matches a vertex's subtasks' metrics (discovery and
// aggregated values); vid "" matches every vertex.
func onVertexMetrics(vid string) func(*http.Request) bool {
	return func(r *http.Request) bool { return isVertexMetrics(r.URL.Path, vid) }
}

func isVertexMetrics(path, vid string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	return len(parts) == 6 && parts[0] == "jobs" && parts[2] == "vertices" &&
		(vid == "" || parts[3] == vid) && parts[4] == "subtasks" && parts[5] == "metrics"
}

// dropVertexMetrics answers [] for one vertex's subtasks' metrics: the
// vertex has registered none (a TaskManager that lost its metric group).
func dropVertexMetrics(vid string) rewrite {
	return func(path string, _ *http.Request, _ []byte) []byte {
		if isVertexMetrics(path, vid) {
			return []byte("[]")
		}
		return nil
	}
}

// nanBusyTime writes "NaN" for every aggregate of busyTimeMsPerSecond (as
// Flink does when the task's timer is not measured yet).
func nanBusyTime() rewrite {
	return editMetrics(func(m map[string]any) bool {
		if m["id"] != "busyTimeMsPerSecond" {
			return true
		}
		for _, k := range []string{"min", "max", "avg", "sum", "skew"} {
			if _, ok := m[k]; ok {
				m[k] = "NaN"
			}
		}
		return true
	})
}

// dropPendingRecords removes every pendingRecords id, listed or valued (a
// source whose reader never registered it).
func dropPendingRecords() rewrite {
	return editMetrics(func(m map[string]any) bool {
		id, _ := m["id"].(string)
		return !strings.HasSuffix(id, "pendingRecords")
	})
}

// editMetrics rewrites the entries of a vertex's metrics answers ([{"id":
// …}, …]): keep returns false to drop an entry, and may change it.
func editMetrics(keep func(map[string]any) bool) rewrite {
	return func(path string, _ *http.Request, body []byte) []byte {
		parts := strings.Split(strings.Trim(path, "/"), "/")
		if len(parts) < 5 || parts[0] != "jobs" || parts[2] != "vertices" || parts[len(parts)-1] != "metrics" {
			return nil
		}
		var items []map[string]any
		if json.Unmarshal(body, &items) != nil {
			return nil
		}
		out := make([]map[string]any, 0, len(items))
		for _, m := range items {
			if keep(m) {
				out = append(out, m)
			}
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return nil
		}
		return raw
	}
}
