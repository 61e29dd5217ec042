package flink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connCounter is an HTTP test server that counts the connections it
// accepted.
type connCounter struct {
	*httptest.Server
	opened atomic.Int64
}

func newConnCounter(t *testing.T, h http.HandlerFunc) *connCounter {
	t.Helper()
	cc := &connCounter{}
	cc.Server = httptest.NewUnstartedServer(h)
	cc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cc.opened.Add(1)
		}
	}
	cc.Start()
	t.Cleanup(cc.Close)
	return cc
}

// recordingRT is a fallback that answers 299 and records what it carried.
type recordingRT struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.String())
	r.mu.Unlock()
	return &http.Response{StatusCode: 299, Body: io.NopCloser(strings.NewReader("fallback")), Request: req}, nil
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// A GET is sent on a kept-alive connection, and the next reuses it; what
// the client sent is what net/http would (path, query, Host, headers).
func TestTransportKeepsConnectionsAlive(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" host="+r.Host+" auth="+r.Header.Get("Authorization")+" ua="+r.UserAgent())
		mu.Unlock()
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4}
	c := &http.Client{Transport: tr}
	for i := range 5 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+fmt.Sprintf("/jobs/%d/metrics?get=a,b", i), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer x")
		resp, err := c.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, fmt.Sprintf(`{"path":"/jobs/%d/metrics"}`, i), string(b))
	}
	assert.Equal(t, int64(1), srv.opened.Load(), "one connection for five GETs")
	assert.Equal(t, 1, tr.Idle())
	host := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, "GET /jobs/4/metrics?get=a,b host="+host+" auth=Bearer x ua=flinkscale", seen[4])

	// A User-Agent of the caller's is sent instead of flinkscale's.
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/ua", nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "platform-probe/2")
	resp, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "GET /ua host="+host+" auth= ua=platform-probe/2", seen[5])
}

// n requests in flight at once open n connections; MaxIdlePerHost of them
// are kept and reused by the next round, the others closed; MaxIdle bounds
// them in all.
func TestTransportIdleBounds(t *testing.T) {
	// A request of a round of n waits until all n have arrived: n
	// connections at once.
	var mu sync.Mutex
	arrived := map[string]int{}
	all := sync.NewCond(&mu)
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var n int
		_, _ = fmt.Sscan(q.Get("n"), &n)
		mu.Lock()
		arrived[q.Get("round")]++
		all.Broadcast()
		for arrived[q.Get("round")] < n {
			all.Wait()
		}
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	round := func(c *http.Client, name string, n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { get(t, c, fmt.Sprintf("%s/?round=%s&n=%d", srv.URL, name, n)) })
		}
		wg.Wait()
	}
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4}
	c := &http.Client{Transport: tr}
	round(c, "a", 6)
	assert.Equal(t, int64(6), srv.opened.Load())
	assert.Equal(t, 4, tr.Idle(), "MaxIdlePerHost kept")
	round(c, "b", 4)
	assert.Equal(t, int64(6), srv.opened.Load(), "the kept ones reused")
	tr.CloseIdleConnections()
	assert.Zero(t, tr.Idle())

	tr2 := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4, MaxIdle: 1}
	round(&http.Client{Transport: tr2}, "c", 3)
	assert.Equal(t, 1, tr2.Idle(), "MaxIdle kept")
}

// A connection the server closed while idle (a JobManager restarted) is
// found out on the next GET, which is sent again on a new connection.
func TestTransportRetriesOnAClosedIdleConnection(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4}
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { get(t, c, srv.URL+"/") })
	}
	wg.Wait()
	idle := tr.Idle()
	require.GreaterOrEqual(t, idle, 1)
	srv.CloseClientConnections()
	code, b := get(t, c, srv.URL+"/")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", b)
	assert.Equal(t, 1, tr.Idle(), "the stale ones dropped, the new one kept")
}

// A hung JobManager: the request's context ends the exchange with its
// error, and the connection is not kept.
func TestTransportContextEndsTheExchange(t *testing.T) {
	hang := make(chan struct{})
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-hang
		}
		if r.URL.Path == "/slowbody" {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			<-hang
		}
	})
	defer close(hang)
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4}
	c := &http.Client{Transport: tr}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hang", nil)
	require.NoError(t, err)
	start := time.Now()
	_, err = c.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Zero(t, tr.Idle())

	// Cancelled (no deadline) while the body is read.
	ctx, cancel = context.WithCancel(context.Background())
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slowbody", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Zero(t, tr.Idle(), "a connection whose answer was cut is not kept")
}

// Only an answer read to its end, framed, and not asking to close keeps
// its connection.
func TestTransportKeepsOnlyCleanEnds(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/chunked":
			_, _ = io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/error":
			http.Error(w, `{"errors":["nope"]}`, http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "part2")
	})
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4}
	c := &http.Client{Transport: tr}
	for _, tc := range []struct {
		path     string
		code     int
		body     string
		readAll  bool
		wantIdle int
	}{
		{"/close", 200, "part2", true, 0},
		{"/chunked", 200, "part1,part2", true, 1},
		{"/empty", 204, "", true, 1},
		{"/error", 500, "{\"errors\":[\"nope\"]}\n", true, 1},
		{"/plain", 200, "", false, 0}, // closed before its end
	} {
		t.Run(tc.path, func(t *testing.T) {
			tr.CloseIdleConnections()
			resp, err := c.Get(srv.URL + tc.path)
			require.NoError(t, err)
			assert.Equal(t, tc.code, resp.StatusCode)
			if tc.readAll {
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				assert.Equal(t, tc.body, string(b))
			}
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.wantIdle, tr.Idle())
		})
	}
}

// What Transport does not send itself goes to Fallback: other methods, a
// body, https, a proxy's traffic. A header that would split the request
// is refused.
func TestTransportFallback(t *testing.T) {
	fb := &recordingRT{}
	proxied := "http://proxied.example:8081/jobs"
	tr := &Transport{Fallback: fb, Proxy: func(r *http.Request) (*url.URL, error) {
		if r.URL.String() == proxied {
			return url.Parse("http://proxy:3128")
		}
		return nil, nil
	}}
	c := &http.Client{Transport: tr}
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPut, "http://jm.example:8081/jobs/x/resource-requirements", strings.NewReader("{}")),
		httptest.NewRequest(http.MethodGet, "https://jm.example:8081/overview", nil),
		httptest.NewRequest(http.MethodGet, proxied, nil),
	} {
		req.RequestURI = ""
		resp, err := c.Do(req)
		require.NoError(t, err)
		assert.Equal(t, 299, resp.StatusCode)
		_ = resp.Body.Close()
	}
	assert.Equal(t, []string{"PUT http://jm.example:8081/jobs/x/resource-requirements", "GET https://jm.example:8081/overview", "GET " + proxied}, fb.reqs)

	req, err := http.NewRequest(http.MethodGet, "http://jm.example:8081/overview", nil)
	require.NoError(t, err)
	req.Header["X-Bad"] = []string{"a\r\nHost: evil"}
	_, err = tr.RoundTrip(req)
	require.ErrorContains(t, err, `header "X-Bad"`)
}

// Connections idle longer than IdleTimeout are closed: when next taken,
// and, for JobManagers no longer polled, by the sweep at a later put.
func TestTransportIdleTimeout(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 4, IdleTimeout: time.Minute, now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	// Two "JobManagers": the server under two addresses.
	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	c := &http.Client{Transport: tr}
	get(t, c, srv.URL+"/")
	get(t, c, other+"/")
	assert.Equal(t, 2, tr.Idle())
	assert.Equal(t, int64(2), srv.opened.Load())

	advance(61 * time.Second)
	get(t, c, srv.URL+"/") // the idle one is too old: a new connection; the sweep drops the other host's
	assert.Equal(t, int64(3), srv.opened.Load())
	assert.Equal(t, 1, tr.Idle())
}

// FuzzTransportAnswer: whatever a server answers, RoundTrip returns an
// error or a response whose body reads to an end; the connection is kept
// only after a well-framed answer read whole, and a second request on it
// gets the second answer (no bytes of the first left behind).
func FuzzTransportAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody until close"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"))
	f.Add([]byte("garbage"))
	f.Add([]byte(""))
	const second = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
	f.Fuzz(func(t *testing.T, answer []byte) {
		var conns []net.Conn
		var mu sync.Mutex
		dials := 0
		tr := &Transport{Fallback: &recordingRT{}, MaxIdlePerHost: 1, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			mu.Lock()
			dials++
			conns = append(conns, client, server)
			mu.Unlock()
			go func() {
				// Answer each request: the fuzzed bytes, then the second.
				br := bufio.NewReader(server)
				for i := 0; ; i++ {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					out := answer
					if i > 0 {
						out = []byte(second)
					}
					if _, err := server.Write(out); err != nil {
						return
					}
					if i > 0 {
						return
					}
				}
			}()
			return client, nil
		}}
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		// An answer cut short waits for this deadline: short, so that the
		// fuzzer runs many (a deadline that cuts a whole answer only
		// makes the exchange fail, which the checks below allow).
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://jm:8081/overview", nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			assert.Zero(t, tr.Idle())
			return
		}
		_, rerr := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		if rerr != nil || resp.Close || resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 {
			assert.Zero(t, tr.Idle(), "kept after %v", rerr)
			return
		}
		if tr.Idle() == 0 {
			return // bytes left over, or the deadline: not kept
		}
		// Kept: the next request on it reads the second answer whole.
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		req2, err := http.NewRequestWithContext(ctx2, http.MethodGet, "http://jm:8081/overview", nil)
		require.NoError(t, err)
		resp2, err := tr.RoundTrip(req2)
		require.NoError(t, err)
		b, err := io.ReadAll(resp2.Body)
		require.NoError(t, err)
		require.NoError(t, resp2.Body.Close())
		assert.Equal(t, "second", string(b))
		mu.Lock()
		assert.Equal(t, 1, dials, "the kept connection was reused")
		mu.Unlock()
	})
}

// BenchmarkTransport polls a fleet of JobManagers as the controller does:
// each op is one poll of one JobManager, 12 GETs of a 600-byte answer, 4
// in flight; the JobManagers in turn, all served by one local server.
// net/http's transport as the controller had it (4 idle per host, 1,000 in
// all) against Transport (4 per host). With 1,000 hosts net/http dials most
// polls' connections anew; with one host, both reuse theirs. The server's
// share is in both.
func BenchmarkTransport(b *testing.B) {
	answer := `[` + strings.Repeat(`{"id":"busyTimeMsPerSecond","min":1.0,"max":912.0,"avg":455.5,"sum":3644.0},`, 7) + `{"id":"x","sum":1}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	const perPoll, lanes = 12, 4
	for _, hosts := range []int{1, 1000} {
		for _, tc := range []struct {
			name string
			rt   func() http.RoundTripper
		}{
			{"net-http", func() http.RoundTripper {
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.DialContext = 1000, lanes, dial
				return tr
			}},
			{"flink-transport", func() http.RoundTripper {
				return &Transport{Fallback: http.DefaultTransport, MaxIdlePerHost: lanes, DialContext: dial}
			}},
		} {
			b.Run(fmt.Sprintf("hosts=%d/%s", hosts, tc.name), func(b *testing.B) {
				c := &http.Client{Transport: tc.rt()}
				defer c.CloseIdleConnections()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					u := fmt.Sprintf("http://job-%d.jm.test:%s/jobs/j/vertices/v/subtasks/metrics?get=a,b", i%hosts, port)
					var wg sync.WaitGroup
					for range lanes {
						wg.Go(func() {
							for range perPoll / lanes {
								resp, err := c.Get(u)
								if err != nil {
									b.Error(err)
									return
								}
								_, _ = io.Copy(io.Discard, resp.Body)
								_ = resp.Body.Close()
							}
						})
					}
					wg.Wait()
				}
			})
		}
	}
}

// A dial that the request's deadline ends is the deadline's error, as
// flink.Client reports it ("no answer within …").
func TestTransportDialDeadline(t *testing.T) {
	tr := &Transport{Fallback: &recordingRT{}, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://jm.example:8081/overview", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "dial tcp")
}
