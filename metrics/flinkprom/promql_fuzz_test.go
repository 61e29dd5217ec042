package flinkprom

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// FuzzPromQLResponses answers the PromQL source's instant queries with
// arbitrary Prometheus HTTP API bodies (data holds one body per query,
// separated by NUL bytes, given to the queries in queryNames order, round
// robin) and runs a collection and a merge with REST's sample: any answer
// is used or refused with an error, never a panic, and what is collected
// keeps the job, names what it could not read, and keeps only plausible
// slots.
func FuzzPromQLResponses(f *testing.F) {
	vec := func(labels, value string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + labels + `,"value":[1795262400,"` + value + `"]}]}}`
	}
	task := `{"task_id":"` + pqSrc + `","subtask_index":"0","topic":"orders_v1","partition":"3"}`
	for _, seed := range [][]string{
		{vec(task, "512"), vec(`{"task_id":"`+pqWin+`"}`, "1024"), vec(`{"job_id":"`+pqJob+`"}`, "3")},
		{vec(task, "NaN"), vec(task, "+Inf"), vec(task, "-1e308"), vec(`{}`, "1")},
		{`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}`},
		{`{"status":"success","data":{"resultType":"scalar","result":[1795262400,"1"]}}`},
		{`{"status":"error","errorType":"bad_data","error":"parse error"}`},
		{`{"status":"success","data":{"resultType":"vector","result":null}}`, `{}`, `null`, ``},
		{vec(`{"task_id":"`+pqSrc+`","subtask_index":"-4","partition":"99999999999999999999"}`, "12")},
	} {
		f.Add([]byte(string(bytes.Join(toBytes(seed), []byte{0}))))
	}
	// One body per query: the slot queries (the last two) answer a total
	// and more slots available than that, then a total and -0 available.
	for _, slots := range [][2]string{{vec(`{}`, "8"), vec(`{}`, "9")}, {vec(`{}`, "8"), vec(`{}`, "-0")}} {
		seed := make([]string, len(queryNames))
		for i := range seed {
			seed[i] = vec(task, "7")
		}
		seed[len(seed)-2], seed[len(seed)-1] = slots[0], slots[1]
		f.Add([]byte(string(bytes.Join(toBytes(seed), []byte{0}))))
	}

	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	// One query at a time: the same input gives the same coverage, which the
	// fuzzer needs (it minimizes every input whose coverage looks new).
	p := &PromQL{Concurrency: 1}
	order := map[string]int{}
	for i, n := range queryNames {
		q, err := p.Render(n, pqJob)
		if err != nil {
			f.Fatal(err)
		}
		if q != "" {
			order[q] = i
		}
	}
	// An in-process transport, not a server: no connections, no server
	// goroutines, so coverage follows the answers alone.
	rt := fixtures.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		i, ok := order[r.Form.Get("query")]
		mu.Lock()
		var b []byte
		if ok && len(bodies) > 0 {
			b = bodies[i%len(bodies)]
		}
		mu.Unlock()
		code := http.StatusOK
		if len(b) > 0 && b[0] == 'E' { // "E..." answers with an HTTP error
			code, b = http.StatusServiceUnavailable, b[1:]
		}
		return &http.Response{
			StatusCode: code, Status: http.StatusText(code), Request: r,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)),
		}, nil
	})
	c, err := api.NewClient(api.Config{Address: "http://prometheus:9090", RoundTripper: rt})
	if err != nil {
		f.Fatal(err)
	}
	p.API = v1.NewAPI(c)
	at := time.Unix(1795262400, 0).UTC()
	rest := metrics.FlinkSample{At: at, JobID: pqJob, State: "RUNNING", Vertices: []metrics.VertexSample{
		{ID: pqSrc, Name: "Source: orders", Parallelism: 2, MaxParallelism: 128},
		{ID: pqWin, Name: "Window", Parallelism: 2, MaxParallelism: 128},
	}}

	f.Fuzz(func(t *testing.T, data []byte) {
		defer fixtures.Watchdog(10 * time.Second)()
		mu.Lock()
		bodies = bytes.Split(data, []byte{0})
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := p.Collect(ctx, pqJob, at)
		if err != nil {
			return
		}
		if s.JobID != pqJob || !s.At.Equal(at) {
			t.Fatalf("collected job %q at %v, asked %q at %v", s.JobID, s.At, pqJob, at)
		}
		for _, v := range s.Vertices {
			if v.ID == "" {
				t.Fatalf("vertex without id: %+v", v)
			}
		}
		m := MergeWith(rest, s, MergeOptions{PreferPrometheus: true})
		if m.JobID != pqJob || len(m.Vertices) != len(rest.Vertices) {
			t.Fatalf("merge changed the job or its vertices: %+v", m)
		}
		for i, v := range m.Vertices {
			if v.ID != rest.Vertices[i].ID || v.Parallelism != rest.Vertices[i].Parallelism {
				t.Fatalf("merge changed vertex %d: %+v", i, v)
			}
		}
		if sl := m.Slots; sl != nil && (sl.Total <= 0 || sl.Available < 0 || sl.Available > sl.Total) {
			t.Fatalf("implausible slots: %+v", *sl)
		}
	})
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
