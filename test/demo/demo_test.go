package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// The demo end to end, as `make demo` runs it but for the first 55 minutes
// of the day (steady load, then the surge's first quarter hour): on a real
// kube-apiserver, the opt-in controller creates the annotated jobs'
// policies, the surge makes flinkscale rescale orders (savepoint) and clicks
// (in place), payments only gets a recommendation; while it runs, the
// kubeconfig it wrote reaches the API server and the metrics endpoint
// serves flinkscale's series; at the end the reports are written and no
// record is lost.
func TestDemoRunsTheDay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about a minute and a half")
	}
	out := t.TempDir()
	addr := fixtures.FreeAddr(t)
	var term fixtures.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// What a user does from another terminal while the demo runs.
	var sawPolicies, sawDeployments, sawMetrics atomic.Bool
	var during sync.WaitGroup
	defer during.Wait()
	ready := func(kubeconfig, metricsURL string) {
		during.Go(func() {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if !assert.NoError(t, err, "the demo's kubeconfig") {
				return
			}
			c, err := client.New(cfg, client.Options{Scheme: fixtures.Scheme(t)})
			if !assert.NoError(t, err) {
				return
			}
			for range 120 { // up to a minute
				var pols v1alpha1.FlinkScalingPolicyList
				if err := c.List(ctx, &pols, client.InNamespace(Namespace)); err == nil && len(pols.Items) == 3 {
					sawPolicies.Store(true)
				}
				fds := &unstructured.UnstructuredList{}
				fds.SetGroupVersionKind(envtest.FlinkDeploymentGVK.GroupVersion().WithKind("FlinkDeploymentList"))
				if err := c.List(ctx, fds, client.InNamespace(Namespace)); err == nil && len(fds.Items) == 3 {
					sawDeployments.Store(true)
				}
				if body, err := get(ctx, metricsURL); err == nil &&
					hasSeries(body, "flinkscale_policy_info{", `mode="DryRun"`, `namespace="streaming"`, `policy="payments"`) &&
					hasSeries(body, "flinkscale_vertex_parallelism{", `policy="orders"`) {
					sawMetrics.Store(true)
				}
				if sawPolicies.Load() && sawDeployments.Load() && sawMetrics.Load() {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		})
	}

	res, err := Run(ctx, Config{Speed: 60, Duration: 55 * time.Minute, Out: out, MetricsAddr: addr,
		Terminal: &term, Compare: true, Ready: ready})
	if errors.Is(err, envtest.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skipf("%v", err)
	}
	require.NoError(t, err, "terminal output:\n%s", term.String())
	during.Wait()
	t.Logf("terminal output:\n%s", term.String())

	assert.True(t, sawPolicies.Load(), "kubectl get fsp via the demo's kubeconfig: 3 policies (2 created by the opt-in controller)")
	assert.True(t, sawDeployments.Load(), "kubectl get flinkdeployments: 3")
	assert.True(t, sawMetrics.Load(), "the metrics endpoint serves flinkscale_* series")

	require.Len(t, res.Jobs, 3)
	byName := map[string]*JobResult{}
	for _, j := range res.Jobs {
		byName[j.Name] = j
		assert.Zero(t, j.RecordsLost, "%s: records lost", j.Name)
		assert.Zero(t, j.Failed, "%s: failed rescales", j.Name)
		assert.NotEmpty(t, j.Timeline, j.Name)
	}
	// The surge (7,000 → 18,000 rec/s from 0:40) needs about 2.5× the
	// parallelism: orders scales up with a savepoint restart, clicks (30,000
	// rec/s from 0:45) in place.
	orders, clicks, payments := byName["orders"], byName["clicks"], byName["payments"]
	require.NotNil(t, orders)
	assert.GreaterOrEqual(t, orders.Succeeded(), 1, "orders rescaled in the surge")
	assert.Zero(t, orders.InPlace, "orders runs the default scheduler: savepoint restarts")
	assert.Greater(t, total(orders.EndParallelism), total(orders.StartParallelism), "orders scaled up: %s → %s", orders.StartParallelism, orders.EndParallelism)
	assert.Positive(t, orders.Downtime)
	require.NotNil(t, clicks)
	assert.GreaterOrEqual(t, clicks.Succeeded(), 1, "clicks rescaled in the surge")
	assert.Equal(t, clicks.Rescales, clicks.InPlace, "clicks runs the adaptive scheduler: in place")
	// payments is 5-20 % busy: DryRun recommends fewer subtasks, acts on
	// nothing, and its report is in its ConfigMap. Its load doubles in
	// the surge (1.5k → 3.1k rec/s), and a decision in the climb may hold
	// at 8/8/8 (the rising trend), so the day's recommendations are
	// checked, not only the last.
	require.NotNil(t, payments)
	assert.Zero(t, payments.Rescales)
	assert.Equal(t, "8/8/8", payments.EndParallelism)
	assert.NotEmpty(t, payments.Recommended)
	var down []string
	for _, e := range res.Events {
		if e.Job != "payments" || e.Kind != EventRecommendation {
			continue
		}
		if _, to, ok := strings.Cut(e.Text, "→ "); ok {
			if plan, _, _ := strings.Cut(to, " "); total(plan) < 24 {
				down = append(down, plan)
			}
		}
	}
	assert.NotEmpty(t, down, "recommends fewer than 8/8/8 (the last: %s); events: %v", payments.Recommended, res.Events)
	require.NotNil(t, payments.Report, "the DryRun report ConfigMap")

	kinds := map[string]int{}
	for _, e := range res.Events {
		kinds[e.Job+"/"+e.Kind]++
	}
	assert.Positive(t, kinds["orders/"+EventRescaleStarted], "events: %v", kinds)
	assert.Positive(t, kinds["orders/"+EventRescaleDone], "events: %v", kinds)
	assert.Positive(t, kinds["payments/"+EventRecommendation], "events: %v", kinds)
	assert.Equal(t, 2, kinds["/"+EventPhase], "steady load, then the surge")

	assert.Len(t, res.Baselines, 3*len(BaselinePolicies))
	for _, b := range res.Baselines {
		assert.Zero(t, b.RecordsLost, "%s under %s", b.Scenario, b.Policy)
	}

	// The reports.
	for _, f := range []string{"index.html", "summary.md", "result.json", "kubeconfig", "controller.log", "prometheus.yml",
		"charts/orders.svg", "charts/clicks.svg", "charts/payments.svg", "payments-recommendation.html", "payments-recommendation.md"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, fi.Size(), f)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	require.NoError(t, err)
	// html/template writes the "+" of the media type as &#43; (same URL).
	assert.Equal(t, 3, strings.Count(string(page), `<img class="chart" src="data:image/svg&#43;xml;base64,`), "one embedded chart per job")
	assert.NotContains(t, string(page), `src="http`, "self-contained")
	md, err := os.ReadFile(filepath.Join(out, "summary.md"))
	require.NoError(t, err)
	for _, want := range []string{"## Summary", "## The same days under the alternatives", "## orders", "](charts/orders.svg)", "[Markdown](payments-recommendation.md)"} {
		assert.Contains(t, string(md), want)
	}
	// The Prometheus configuration is one Prometheus accepts (when its
	// promtool is here; test/e2e runs Prometheus itself on the same rules).
	if promtool, err := exec.LookPath("promtool"); err == nil {
		msg, err := exec.Command(promtool, "check", "config", filepath.Join(out, "prometheus.yml")).CombinedOutput()
		assert.NoError(t, err, "promtool check config:\n%s", msg)
	}
	var back Result
	js, err := os.ReadFile(filepath.Join(out, "result.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Len(t, back.Jobs, 3)

	text := term.String()
	for _, want := range []string{"kube-apiserver and etcd", "get fsp,flinkdeployments -n streaming", "── 0:40 surge ──",
		"The day is over", "SLOT-HOURS", "Flink operator autoscaler", "index.html"} {
		assert.Contains(t, text, want)
	}
}

// hasSeries reports whether the exposition has a line starting with
// prefix and containing every label in labels.
func hasSeries(exposition, prefix string, labels ...string) bool {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		found := true
		for _, l := range labels {
			found = found && strings.Contains(line, l)
		}
		if found {
			return true
		}
	}
	return false
}

// total sums a "2/4/2" parallelism.
func total(par string) int {
	n := 0
	for _, p := range strings.Split(par, "/") {
		var x int
		for _, c := range p {
			x = x*10 + int(c-'0')
		}
		n += x
	}
	return n
}

func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
