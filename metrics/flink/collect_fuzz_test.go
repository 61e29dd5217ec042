package flink

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/scaling/scalingtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
)

// The REST answers FuzzCollect controls, one per kind of endpoint the
// collector reads (every vertex gets the same answer for its kind).
const (
	kOverview     = iota // GET /overview
	kJobs                // GET /jobs/overview
	kDetails             // GET /jobs/:jid
	kSubtaskList         // GET .../vertices/:vid/subtasks/metrics
	kSubtaskAgg          // GET .../vertices/:vid/subtasks/metrics?get=...
	kVertex              // GET .../vertices/:vid/metrics[?get=...]
	kCheckpoints         // GET /jobs/:jid/checkpoints
	kCkptConfig          // GET /jobs/:jid/checkpoints/config
	kJMConfig            // GET /jobmanager/config
	kTaskManagers        // GET /taskmanagers
	nKinds
)

func endpointKind(r *http.Request) int {
	p := r.URL.Path
	get := r.URL.Query().Has("get")
	switch {
	case p == "/overview":
		return kOverview
	case p == "/jobs/overview":
		return kJobs
	case p == "/jobmanager/config":
		return kJMConfig
	case p == "/taskmanagers":
		return kTaskManagers
	case strings.HasSuffix(p, "/checkpoints/config"):
		return kCkptConfig
	case strings.HasSuffix(p, "/checkpoints"):
		return kCheckpoints
	case strings.HasSuffix(p, "/subtasks/metrics") && get:
		return kSubtaskAgg
	case strings.HasSuffix(p, "/subtasks/metrics"):
		return kSubtaskList
	case strings.HasSuffix(p, "/metrics"):
		return kVertex
	case strings.HasPrefix(p, "/jobs/") && strings.Count(p, "/") == 2:
		return kDetails
	}
	return -1
}

// recordedAnswers collects the simulator's real answers, by kind, as
// seeds: what a Flink 1.18 JobManager says about a running job.
func recordedAnswers(f *testing.F) [nKinds][]byte {
	rate := 1000.0
	j := testJob(f, "1.18", &rate)
	if err := j.Advance(2 * time.Minute); err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var got [nKinds][]byte
	h := flinkrest.NewHandler(j)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		// The priming request is no seed: its answer is one sum.
		priming := r.URL.Query().Get("get") == mIn && r.URL.Query().Get("agg") == AggSum
		if k := endpointKind(r); k >= 0 && rec.Code == http.StatusOK && !priming {
			mu.Lock()
			if got[k] == nil {
				got[k] = rec.Body.Bytes()
			}
			mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = io.Copy(w, rec.Body)
	}))
	defer srv.Close()
	c, err := New(srv.URL, WithTimeout(5*time.Second))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := NewCollector(c, WithClock(j.Now), WithSleep(noSleep)).Collect(context.Background(), ""); err != nil {
		f.Fatal(err)
	}
	for k, b := range got {
		if b == nil {
			got[k] = []byte("[]")
		}
	}
	return got
}

// FuzzCollect serves arbitrary answers on every Flink REST endpoint the
// collector reads (cluster overview, job list, job details, vertex metric
// lists and values, subtask aggregates, checkpoint statistics and
// configuration, JobManager configuration, TaskManagers) and runs a whole
// collection, then the metric window and the model on what it collected:
// any answer is used or refused with an error or a Missing entry, never a
// panic, the slots kept are plausible, and the decision made from it
// satisfies the model's invariants.
func FuzzCollect(f *testing.F) {
	rec := recordedAnswers(f)
	f.Add(rec[kOverview], rec[kJobs], rec[kDetails], rec[kSubtaskList], rec[kSubtaskAgg], rec[kVertex],
		rec[kCheckpoints], rec[kCkptConfig], rec[kJMConfig], rec[kTaskManagers])
	// The same with hostile values: NaN and infinite metrics, negative
	// counts, an empty vertex list, nulls.
	nan := func(b []byte) []byte {
		return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(`"value":"`), []byte(`"value":"NaN","x":"`)), []byte(`"avg":`), []byte(`"avg":"-Infinity","y":`))
	}
	f.Add([]byte(`{"taskmanagers":-1,"slots-total":-8,"slots-available":99,"taskmanagers-blocked":-2,"slots-free-and-blocked":7,"flink-version":"1.20.1"}`),
		rec[kJobs], rec[kDetails], nan(rec[kSubtaskList]), nan(rec[kSubtaskAgg]), nan(rec[kVertex]),
		[]byte(`{"counts":{"completed":-1,"failed":-5,"in_progress":-2},"latest":{"completed":{"end_to_end_duration":-9,"state_size":-1}}}`),
		[]byte(`{"interval":-1,"timeout":0}`), []byte(`[{"key":"taskmanager.numberOfTaskSlots","value":"-3"},{"key":"taskmanager.cpu.cores","value":"NaN"}]`),
		[]byte(`{"taskmanagers":[{"id":"a","slotsNumber":-1,"hardware":{"cpuCores":-2}}]}`))
	f.Add([]byte(`{"slots-total":9223372036854775807,"slots-available":3,"flink-version":"2.2.0"}`), rec[kJobs], rec[kDetails], rec[kSubtaskList], rec[kSubtaskAgg], rec[kVertex],
		rec[kCheckpoints], rec[kCkptConfig], rec[kJMConfig], rec[kTaskManagers])
	f.Add([]byte(`{}`), []byte(`{"jobs":[{"jid":"a","state":"RUNNING"},{"jid":"b","state":"RUNNING"}]}`),
		[]byte(`{"jid":"a","state":"RUNNING","vertices":[{"id":"v","parallelism":0,"maxParallelism":-1}],"plan":{"nodes":[{"id":"v","inputs":[{"id":"v"}]}]}}`),
		[]byte(`null`), []byte(`[{"id":"x"}]`), []byte(`[{"id":"numRecordsInPerSecond","value":"1e400"}]`),
		[]byte(`{"counts":null}`), []byte(`{}`), []byte(`[]`), []byte(`{"taskmanagers":null}`))

	var (
		mu      sync.Mutex
		answers [nKinds][]byte
	)
	// An in-process transport, not a server: no connections, no server
	// goroutines, so coverage follows the answers alone.
	rt := fixtures.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		k := endpointKind(r)
		code, body := http.StatusOK, []byte(nil)
		if k < 0 {
			code, body = http.StatusNotFound, []byte(`{"errors":["Not found"]}`)
		} else {
			mu.Lock()
			body = answers[k]
			mu.Unlock()
		}
		return &http.Response{
			StatusCode: code, Status: http.StatusText(code), Request: r,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}, nil
	})
	c, err := New("http://jobmanager:8081", WithHTTPClient(&http.Client{Transport: rt}), WithTimeout(5*time.Second))
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, overview, jobs, details, subList, subAgg, vertex, ckpts, ckptConf, jmConf, tms []byte) {
		defer fixtures.Watchdog(10 * time.Second)()
		mu.Lock()
		answers = [nKinds][]byte{overview, jobs, details, subList, subAgg, vertex, ckpts, ckptConf, jmConf, tms}
		mu.Unlock()
		for _, id := range []string{"", "3f2a9c1e8b7d4f60a1b2c3d4e5f60718"} {
			s, err := NewCollector(c, WithSleep(noSleep)).Collect(context.Background(), id)
			if err != nil {
				continue
			}
			checkSample(t, s)
		}
	})
}

// checkSample checks what a collection returned and runs the window and
// the model on it.
func checkSample(t *testing.T, s metrics.FlinkSample) {
	t.Helper()
	if s.JobID == "" || s.State == "" {
		t.Fatalf("collected a sample without job id or state: %+v", s)
	}
	for _, v := range s.Vertices {
		if v.ID == "" {
			t.Fatalf("vertex without id: %+v", v)
		}
	}
	if sl := s.Slots; sl != nil && (sl.Total <= 0 || sl.Available < 0 || sl.Available > sl.Total) {
		t.Fatalf("implausible slots collected: %+v", *sl)
	}
	// Three polls of the same answers, 30 s apart, through the window and
	// the model.
	w := metrics.NewWindow(5 * time.Minute)
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		s.At = at.Add(time.Duration(i) * 30 * time.Second)
		w.AddFlink(s)
	}
	snap, _ := w.Snapshot()
	if tm := snap.TaskManagers; tm.SlotsTotal < 0 || tm.SlotsAvailable < 0 || tm.SlotsAvailable > tm.SlotsTotal {
		t.Fatalf("implausible slots in the snapshot: %+v", tm)
	}
	p := scaling.DefaultPolicy()
	scalingtest.CheckDecision(t, snap, p, scaling.Decide(snap, p, scaling.History{}, s.At))
}
