package scale

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/metrics/flink"
)

// Each job's REST URL names a JobManager host of its own, which the
// sources' dialer finds at the fleet's address; with SharedHost, the
// fleet's address itself, as before.
func TestJobURLs(t *testing.T) {
	for _, c := range []struct {
		shared bool
		want   string
	}{{false, "http://job-17.jobmanager.test:4321/job-17"}, {true, "http://127.0.0.1:4321/job-17"}} {
		got, err := jobURL("http://127.0.0.1:4321", 17, c.shared)
		require.NoError(t, err)
		assert.Equal(t, c.want, got)
	}
	_, err := jobURL("http://127.0.0.1", 17, false)
	require.ErrorContains(t, err, "no host and port")

	var dialled []string
	dial := fleetDialer(func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		return nil, io.EOF
	})
	for _, addr := range []string{"job-17.jobmanager.test:4321", "127.0.0.1:9092", "kafka.example:9092"} {
		_, err := dial(context.Background(), "tcp", addr)
		require.ErrorIs(t, err, io.EOF)
	}
	assert.Equal(t, []string{"127.0.0.1:4321", "127.0.0.1:9092", "kafka.example:9092"}, dialled)
}

// Through the sources' own client: two jobs' hosts are two connection
// pools to one server, each request sent with its job's host name.
func TestJobManagerHostsReachTheFleet(t *testing.T) {
	hosts := make(chan string, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host + r.URL.Path
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	hc := newSources(0, 1).cs.HTTPClient
	for _, i := range []int{1, 2} {
		u, err := jobURL("http://"+ln.Addr().String(), i, false)
		require.NoError(t, err)
		resp, err := hc.Get(u + "/overview")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	assert.Equal(t, "job-1.jobmanager.test:"+port+"/job-1/overview", <-hosts)
	assert.Equal(t, "job-2.jobmanager.test:"+port+"/job-2/overview", <-hosts)
}

// Replicas in this one process share its open files: each keeps its share
// of the idle REST connections one controller would keep (two replicas of
// 5,000 JobManagers each, keeping half the limit idle apiece, ran the
// process and the fleet's out of files: accept4 "too many open files").
func TestReplicasShareTheIdleConnections(t *testing.T) {
	idle := func(s *sources) int { return s.cs.HTTPClient.Transport.(*flink.Transport).MaxIdle }
	one := idle(newSources(0, 1))
	require.Positive(t, one)
	assert.Equal(t, controllers.NewRESTTransport().MaxIdle, one)
	assert.Equal(t, one/2, idle(newSources(0, 2)))
	assert.Equal(t, one/3, idle(newSources(0, 3)))
}
