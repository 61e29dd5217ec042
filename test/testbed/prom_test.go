package testbed

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/flinkprom"
	"github.com/flinkscale/flinkscale/test/fixtures"
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
	base := fixtures.StartPrometheus(t, bin, fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: flink
    static_configs:
      - targets: [%s]
`, strings.Join(hosts, ", ")))
	client, err := api.NewClient(api.Config{Address: base})
	require.NoError(t, err)
	return v1.NewAPI(client)
}
