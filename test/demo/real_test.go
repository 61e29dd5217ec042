package demo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// envRealLong, with testbed.EnvReal, enables the long real-Flink runs of
// make test-real (the testbed's and realstack's long runs read it too).
const envRealLong = "FLINKSCALE_REAL_LONG"

// `make demo-real` for the first 80 minutes of the day (steady load, then
// 40 minutes of the surge: 3m20s of wall time at 24×, after the clusters'
// start), on real Flink and Kafka: the reports are written, orders (Flink
// 1.20, default scheduler) is rescaled by a savepoint restart and clicks
// (Flink 2.2, adaptive scheduler) in place, neither rescale fails, and the
// audit of each job's exactly-once output finds every record produced, once.
func TestRealDemo(t *testing.T) {
	testbed.RequireReal(t)
	if os.Getenv(envRealLong) != "1" {
		t.Skipf("a long real-Flink run: set %s=1 (make test-real)", envRealLong)
	}
	out := t.TempDir()
	var term fixtures.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	began := time.Now()
	res, err := Run(ctx, Config{Real: true, Duration: 80 * time.Minute, Out: out, MetricsAddr: fixtures.FreeAddr(t), Terminal: &term})
	if errors.Is(err, envtest.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skipf("%v", err)
	}
	require.NoError(t, err, "terminal output:\n%s", term.String())
	t.Logf("terminal output (%s in all):\n%s", time.Since(began).Round(time.Second), term.String())

	require.Len(t, res.Jobs, 2)
	assert.True(t, res.Real)
	byName := map[string]*JobResult{}
	for _, j := range res.Jobs {
		byName[j.Name] = j
		assert.Zero(t, j.Failed, "%s: failed rescales", j.Name)
		assert.NotEmpty(t, j.Timeline, j.Name)
		if assert.NotNil(t, j.Audit, j.Name) {
			assert.Positive(t, j.Audit.Produced, j.Name)
			assert.True(t, j.Audit.Exact(), "%s: %s", j.Name, j.Audit)
		}
		assert.Zero(t, j.RecordsLost, "%s: records lost", j.Name)
	}
	orders, clicks := byName["orders"], byName["clicks"]
	require.NotNil(t, orders)
	require.NotNil(t, clicks)
	assert.GreaterOrEqual(t, orders.Succeeded(), 1, "orders rescaled in the surge")
	assert.Zero(t, orders.InPlace, "orders runs the default scheduler: savepoint restarts")
	assert.Equal(t, "1.20", orders.Flink)
	assert.GreaterOrEqual(t, clicks.Succeeded(), 1, "clicks rescaled in the surge")
	assert.Equal(t, clicks.Rescales, clicks.InPlace, "clicks runs the adaptive scheduler: in place")
	assert.Equal(t, "2.2", clicks.Flink)

	for _, f := range []string{"index.html", "summary.md", "result.json", "kubeconfig", "controller.log", "prometheus.yml",
		"charts/orders.svg", "charts/clicks.svg"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, fi.Size(), f)
		}
	}
	var back Result
	js, err := os.ReadFile(filepath.Join(out, "result.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &back))
	assert.True(t, back.Real)
	assert.Contains(t, term.String(), "The day is over")
	assert.Contains(t, term.String(), "each read once")
}
