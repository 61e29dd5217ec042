package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// EnvPrometheus names the prometheus binary to run (default: prometheus on
// PATH); promtool is looked for beside it, then on PATH.
const EnvPrometheus = "FLINKSCALE_PROMETHEUS"

// metricsPath is where the test's manager serves the controller's metrics
// (its own registry; controller-runtime's /metrics serves the global one).
const metricsPath = "/flinkscale/metrics"

// A real Prometheus scrapes a real controller-runtime manager running the
// opt-in and policy controllers against envtest, a simulated Flink job (30×
// faster than the wall clock) behind its REST API, kfake and the fake Flink
// operator. A step in load ends in one rescale; then every expression of the
// Grafana dashboards and every alert's left-hand side must return data, and
// Prometheus must have evaluated every rule without error.
func TestPrometheusEvaluatesDashboardsAndRules(t *testing.T) {
	began := time.Now()
	promBin, promtool := findPrometheus(t)
	root := repoRoot(t)
	rulesPath := filepath.Join(root, rulesFile)

	out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput()
	require.NoError(t, err, "promtool check rules %s:\n%s", rulesPath, out)
	t.Logf("promtool check rules: %s", strings.TrimSpace(string(out)))
	dashboards := loadDashboards(t, root)
	rules := loadRules(t, rulesPath)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// The world: envtest, Kafka, the simulated job and its REST API.
	env, c := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "e2e")
	key := types.NamespacedName{Namespace: ns, Name: "orders"}
	start := time.Now().Truncate(time.Second)
	live := fixtures.StartLive(t, fixtures.OrdersJob(), fixtures.LiveOptions{Start: start, Seed: 9, Rate: 1500})
	j := live.Job

	// The manager, serving a registry of its own on 127.0.0.1.
	reg := prometheus.NewRegistry()
	metricsAddr := fixtures.FreeAddr(t)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: fixtures.Scheme(t),
		Metrics: metricsserver.Options{BindAddress: metricsAddr, ExtraHandlers: map[string]http.Handler{
			metricsPath: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}),
		}},
		HealthProbeBindAddress: "0",
	})
	require.NoError(t, err)
	clusters := fakeoperator.NewRegistry()
	clusters.Register(key, j)
	var seq atomic.Int64
	clk := live.Clock()
	require.NoError(t, (&fakeoperator.Operator{Clusters: clusters, Clock: clk, ResyncInterval: 200 * time.Millisecond,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xe0+seq.Add(1)) }}).SetupWithManager(mgr))
	require.NoError(t, (&optin.Reconciler{}).SetupWithManager(mgr))
	pr := &controllers.PolicyReconciler{
		Client: mgr.GetClient(),
		Sources: &controllers.ClientSources{Reader: mgr.GetAPIReader(), Now: j.Now, Timeout: 5 * time.Second,
			FlinkOpts: []flink.CollectorOption{flink.WithClock(j.Now), flink.WithSleep(live.Sleep)}},
		Clock:         clk,
		TrackInterval: 200 * time.Millisecond,
		Metrics:       controllers.NewMetrics(reg),
	}
	require.NoError(t, pr.SetupWithManager(mgr, controllers.Options{SkipNameValidation: true}))

	// Prometheus, scraping the manager every second and evaluating the rules.
	prom := startPrometheus(t, promBin, metricsAddr, rulesPath)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- mgr.Start(runCtx) }()
	go func() { done <- j.RunRealtime(runCtx, 30, 50*time.Millisecond) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Errorf("stopping: %v", err)
			}
		}
	}()
	waitFor(t, ctx, "Prometheus scrapes the manager", 30*time.Second, func() (bool, string) {
		n, err := prom.count(ctx, `up{job="flinkscale"} == 1`)
		return err == nil && n == 1, fmt.Sprintf("%d series, %v", n, err)
	})
	t.Logf("t+%s: Prometheus ready at %s, scraping http://%s%s", since(began), prom.base, metricsAddr, metricsPath)

	fd := live.OptedIn(ns, key.Name, "Apply", "1s") // 1s: 30 virtual seconds
	require.NoError(t, c.Create(ctx, fd))
	policy := func() *v1alpha1.FlinkScalingPolicy {
		var p v1alpha1.FlinkScalingPolicy
		if err := c.Get(ctx, key, &p); err != nil {
			return nil
		}
		return &p
	}

	// Decisions at the base load (holds), then a step that needs a rescale.
	waitFor(t, ctx, "the policy decides at the base load", 60*time.Second, func() (bool, string) {
		p := policy()
		return p != nil && p.Status.LastDecision != nil && j.Now().Sub(start) > 8*time.Minute, fmt.Sprintf("virtual %s", j.Now().Sub(start))
	})
	t.Logf("t+%s: decisions at 1500 rec/s (%s); load → 3000 rec/s", since(began), policy().Status.LastDecision.Summary)
	live.SetRate(3000)
	waitFor(t, ctx, "a rescale completes", 90*time.Second, func() (bool, string) {
		p := policy()
		if p == nil || p.Status.History == nil || len(p.Status.History.Rescales) == 0 {
			return false, "no rescale yet"
		}
		r := p.Status.History.Rescales[0]
		return r.Outcome == scaling.OutcomeSucceeded, fmt.Sprintf("%+v", r)
	})
	p := policy()
	t.Logf("t+%s: rescale %s, parallelism now %s (measured downtime %s)", since(began),
		p.Status.History.Rescales[0].Outcome, p.Status.CurrentParallelism, p.Status.History.Rescales[0].Downtime.Duration)
	sel := fmt.Sprintf(`namespace=%q, policy=%q`, ns, key.Name)
	waitFor(t, ctx, "Prometheus has the rescale", 20*time.Second, func() (bool, string) {
		n, err := prom.count(ctx, fmt.Sprintf(`flinkscale_rescales_total{%s, outcome="Succeeded"} >= 1 and on () flinkscale_rescale_downtime_seconds_count{%s} >= 1`, sel, sel))
		return err == nil && n == 1, fmt.Sprintf("%d series, %v", n, err)
	})
	// A few more scrapes and evaluations after the rescale.
	sleep(ctx, 4*time.Second)

	vars := map[string]string{"namespace": ns, "job": key.Name, "vertex": ".*"}
	var checks []check
	for _, d := range dashboards {
		for _, q := range d.queries() {
			e, unknown := substitute(q.expr, vars)
			require.Empty(t, unknown, "%s: unknown variables in %s", q.where, q.expr)
			checks = append(checks, check{what: q.where, expr: e, wantData: true})
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			selector, label, ok := parseLabelValues(v.queryString())
			require.True(t, ok, "%s variable %s: %q", d.UID, v.Name, v.queryString())
			if selector == "" {
				selector = fmt.Sprintf(`{%s=~".+"}`, label)
			}
			e, unknown := substitute(selector, vars)
			require.Empty(t, unknown, "%s variable %s", d.UID, v.Name)
			checks = append(checks, check{what: fmt.Sprintf("%s / variable %s", d.UID, v.Name), expr: e, wantData: true, label: label})
		}
	}
	for _, rl := range rules {
		if rl.Record != "" {
			checks = append(checks, check{what: "record " + rl.Record, expr: rl.Record, wantData: true})
			continue
		}
		lhs, _, _, ok := comparison(rl.Expr)
		require.True(t, ok, "alert %s: no comparison in %q", rl.Alert, rl.Expr)
		checks = append(checks,
			check{what: "alert " + rl.Alert, expr: strings.TrimSpace(rl.Expr)},
			check{what: "alert " + rl.Alert + " (left-hand side)", expr: lhs, wantData: true})
	}

	// Evaluate everything; what has no data yet is retried for a while
	// (a scrape or an evaluation may be due).
	deadline := time.Now().Add(20 * time.Second)
	for {
		failing := 0
		for i := range checks {
			if checks[i].ok {
				continue
			}
			checks[i].run(ctx, prom, time.Now())
			if !checks[i].ok {
				failing++
			}
		}
		if failing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Second)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tOK\tWHERE\tEXPRESSION")
	passed := 0
	for _, ch := range checks {
		mark := "ok"
		if !ch.ok {
			mark = "FAIL"
		} else {
			passed++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", ch.series, mark, ch.what, oneLine(ch.expr, 140))
	}
	_ = tw.Flush()
	t.Logf("%d expressions checked against Prometheus at t+%s:\n%s", len(checks), since(began), table.String())
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s: %s\n  %s", ch.what, ch.problem, ch.expr)
		}
	}

	// Prometheus evaluated every rule, without error.
	waitFor(t, ctx, "every rule evaluated", 15*time.Second, func() (bool, string) {
		rs, err := prom.rules(ctx)
		if err != nil {
			return false, err.Error()
		}
		var bad []string
		for _, r := range rs {
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s: health %q %s", r.Name, r.Health, r.LastError))
			}
		}
		if len(rs) != len(rules) {
			bad = append(bad, fmt.Sprintf("Prometheus has %d rules, the file %d", len(rs), len(rules)))
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	t.Logf("t+%s: %d rules healthy in Prometheus; %d/%d expressions returned what they should",
		since(began), len(rules), passed, len(checks))

	if shot := os.Getenv(EnvScreenshot); shot != "" {
		screenshot(t, ctx, prom, shot, fmt.Sprintf(`max by (vertex) (flinkscale_vertex_parallelism{%s})`, sel))
	}
}

// EnvScreenshot, when set to a PNG path (relative to the repository root),
// makes the test save a screenshot of Prometheus' graph of the vertices' parallelism (headless Chromium).
const EnvScreenshot = "FLINKSCALE_E2E_SCREENSHOT"

func screenshot(t *testing.T, ctx context.Context, p *promServer, path, expr string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(repoRoot(t), path) // relative to the repository, not the package
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(abs), 0o755))
	u := p.base + "/graph?" + url.Values{"g0.expr": {expr}, "g0.tab": {"0"}, "g0.range_input": {"1m"}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--hide-scrollbars", "--window-size=1400,900",
		"--virtual-time-budget=8000", "--screenshot="+abs, u).CombinedOutput()
	if err != nil {
		t.Logf("no screenshot: %v\n%s", err, tail(string(out), 2000))
		return
	}
	if _, err := os.Stat(abs); err != nil {
		t.Logf("no screenshot: %v\n%s", err, tail(string(out), 2000))
		return
	}
	t.Logf("screenshot of %s saved to %s", u, abs)
}

// check is one expression evaluated against Prometheus.
type check struct {
	what     string
	expr     string
	wantData bool   // must return at least one series
	label    string // every series must carry this label (a variable's)

	ok      bool
	series  int
	problem string
}

func (c *check) run(ctx context.Context, p *promServer, at time.Time) {
	res, err := p.query(ctx, c.expr, at)
	c.series = len(res)
	switch {
	case err != nil:
		c.problem = err.Error()
	case c.wantData && len(res) == 0:
		c.problem = "no data"
	default:
		c.ok = true
		if c.label != "" {
			for _, s := range res {
				if s.Metric[c.label] == "" {
					c.ok, c.problem = false, fmt.Sprintf("a series without label %s: %v", c.label, s.Metric)
					break
				}
			}
		}
	}
}

// findPrometheus returns the prometheus and promtool binaries; missing, the
// test skips (fails with CI=true).
func findPrometheus(t *testing.T) (prom, promtool string) {
	t.Helper()
	missing := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI=true, so this fails instead of skipping (apt-get install prometheus)", msg)
		}
		t.Skipf("%s; skipping (apt-get install prometheus, or set %s)", msg, EnvPrometheus)
	}
	prom = os.Getenv(EnvPrometheus)
	if prom == "" {
		p, err := exec.LookPath("prometheus")
		if err != nil {
			missing("prometheus not found on PATH")
		}
		prom = p
	} else if _, err := os.Stat(prom); err != nil {
		missing(fmt.Sprintf("%s=%s: %v", EnvPrometheus, prom, err))
	}
	promtool = filepath.Join(filepath.Dir(prom), "promtool")
	if _, err := os.Stat(promtool); err != nil {
		p, err := exec.LookPath("promtool")
		if err != nil {
			missing("promtool not found beside " + prom + " nor on PATH")
		}
		promtool = p
	}
	if out, err := exec.Command(prom, "--version").CombinedOutput(); err == nil {
		t.Logf("%s", strings.SplitN(string(out), "\n", 2)[0])
	}
	return prom, promtool
}

// promServer is a Prometheus the test runs.
type promServer struct {
	base string // http://127.0.0.1:port
	http *http.Client
}

const promConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: flinkscale
    metrics_path: %q
    static_configs:
      - targets: [%q]
`

// startPrometheus runs prometheus scraping the metrics at target every
// second, with the alert rules, until the test ends; it returns once
// Prometheus is ready.
func startPrometheus(t *testing.T, bin, target, rules string) *promServer {
	t.Helper()
	base := fixtures.StartPrometheus(t, bin, fmt.Sprintf(promConfig, rules, metricsPath, target))
	return &promServer{base: base, http: &http.Client{Timeout: 5 * time.Second}}
}

// series is one element of an instant vector.
type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p *promServer) get(ctx context.Context, path string, params url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, tail(string(b), 300))
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: status %q: %s: %s", path, r.Status, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query evaluates expr at the instant at; a scalar or string result counts as
// one series.
func (p *promServer) query(ctx context.Context, expr string, at time.Time) ([]series, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	params := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := p.get(ctx, "/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var out []series
		err := json.Unmarshal(data.Result, &out)
		return out, err
	case "scalar", "string":
		return []series{{Metric: map[string]string{}}}, nil
	}
	return nil, fmt.Errorf("unexpected result type %q", data.ResultType)
}

func (p *promServer) count(ctx context.Context, expr string) (int, error) {
	s, err := p.query(ctx, expr, time.Now())
	return len(s), err
}

type ruleStatus struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// rules are every rule Prometheus loaded, with its health.
func (p *promServer) rules(ctx context.Context) ([]ruleStatus, error) {
	var data struct {
		Groups []struct {
			Rules []ruleStatus `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", nil, &data); err != nil {
		return nil, err
	}
	var out []ruleStatus
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// waitFor polls cond every 250 ms until it holds; it fails the test after
// timeout or when ctx ends, with cond's last note.
func waitFor(t *testing.T, ctx context.Context, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, note := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %s (%v): %s", what, timeout, ctx.Err(), note)
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
