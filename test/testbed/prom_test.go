package testbed

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/flinkprom"
)

// prometheusFor starts Debian's prometheus (FLINKSCALE_PROMETHEUS names
// another) scraping the testbed's reporter endpoints every 2 s, for the
// PromQL collector, and stops it when the test ends. Without a prometheus
// binary it returns nil, unless CI=true (.ci/run installs it): then the
// test fails.
func prometheusFor(t *testing.T, targets []flinkprom.Target) v1.API {
	t.Helper()
	bin := os.Getenv("FLINKSCALE_PROMETHEUS")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("prometheus"); err != nil {
			if os.Getenv(EnvCI) == "true" {
				t.Fatalf("prometheus is not installed and CI=true (apt-get install prometheus)")
			}
			t.Logf("no prometheus binary: the PromQL path is not checked (apt-get install prometheus)")
			return nil
		}
	}
	var hosts []string
	for _, tg := range targets {
		u, err := url.Parse(tg.URL)
		require.NoError(t, err)
		hosts = append(hosts, fmt.Sprintf("%q", u.Host))
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: flink
    static_configs:
      - targets: [%s]
`, strings.Join(hosts, ", ")), 0o644))
	port, err := freePort()
	require.NoError(t, err)
	addr := hostPort(port)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		_ = logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited: %v (log in %s)", err, dir)
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		require.False(t, time.Now().After(deadline), "prometheus not ready within 30 s: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	require.NoError(t, err)
	return v1.NewAPI(client)
}
