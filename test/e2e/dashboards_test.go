package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/test/envtest"
)

// Paths of what this package checks, relative to the repository root.
const (
	dashboardsDir = "charts/flinkscale/dashboards"
	rulesFile     = "charts/flinkscale/rules/flinkscale-rules.yaml"
)

// The datasource every panel, target and annotation must use: the
// dashboard's `datasource` variable.
var wantDatasource = map[string]any{"type": "prometheus", "uid": "${datasource}"}

// dashboard is the part of a Grafana dashboard's JSON model the tests read.
type dashboard struct {
	file          string
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Tags          []string
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"` // a string, or {"query": "..."} (Grafana ≥ 10)
	Datasource map[string]any `json:"datasource"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
}

// queryString is the variable's query whichever form it takes.
func (v variable) queryString() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

type annotation struct {
	Name       string         `json:"name"`
	Datasource map[string]any `json:"datasource"`
	Expr       string         `json:"expr"`
	BuiltIn    int            `json:"builtIn"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource map[string]any `json:"datasource"`
	Hide       bool           `json:"hide"`
}

// query is one PromQL expression of a dashboard, named for the test log.
type query struct {
	where string // dashboard / panel / refId, or the annotation
	expr  string // as written, with template variables
}

// walk calls f for every panel, rows' nested panels included.
func walk(ps []panel, f func(panel)) {
	for _, p := range ps {
		f(p)
		walk(p.Panels, f)
	}
}

// queries are every panel target's and annotation query's expression.
func (d *dashboard) queries() []query {
	var out []query
	walk(d.Panels, func(p panel) {
		for _, t := range p.Targets {
			if t.Expr != "" && !t.Hide {
				out = append(out, query{fmt.Sprintf("%s / %s / %s", d.UID, p.Title, t.RefID), t.Expr})
			}
		}
	})
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, query{fmt.Sprintf("%s / annotation %s", d.UID, a.Name), a.Expr})
		}
	}
	return out
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := envtest.RepoRoot()
	require.NoError(t, err)
	return root
}

// loadDashboards parses every dashboard of the chart.
func loadDashboards(t testing.TB, root string) []*dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dashboardsDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards in %s", dashboardsDir)
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		d := &dashboard{file: filepath.Base(f)}
		require.NoError(t, json.Unmarshal(b, d), f)
		out = append(out, d)
	}
	return out
}

// ruleFile is a Prometheus rules file.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Record      string            `json:"record"`
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func (r rule) name() string { return r.Record + r.Alert }

func loadRules(t testing.TB, path string) []rule {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f ruleFile
	require.NoError(t, yaml.Unmarshal(b, &f), path)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	require.NotEmpty(t, out, "no rules in %s", path)
	return out
}

// varRef matches Grafana's variable syntaxes: ${name}, ${name:format},
// [[name]], [[name:format]] and $name.
var varRef = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// builtins are Grafana's interval variables as the test substitutes them:
// windows the test's run (over a minute of samples scraped every second)
// covers with at least two samples.
var builtins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__interval_ms":   "15000",
	"__range":         "5m",
	"__range_s":       "300",
	"__range_ms":      "300000",
}

// substitute replaces the template variables of expr with vars (and the
// builtins); it returns the variables it did not know.
func substitute(expr string, vars map[string]string) (string, []string) {
	var unknown []string
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtins[name]; ok {
			return v
		}
		unknown = append(unknown, name)
		return m
	})
	return out, unknown
}

// varsIn are the names of the variables expr refers to.
func varsIn(expr string) []string {
	var out []string
	for _, sub := range varRef.FindAllStringSubmatch(expr, -1) {
		out = append(out, sub[1]+sub[2]+sub[3])
	}
	return out
}

// matcher is a label matcher `op "value"` of a PromQL selector.
var matcher = regexp.MustCompile(`(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)

// labelValues parses Grafana's label_values(selector, label) (or
// label_values(label)) variable query.
var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$`)

func parseLabelValues(q string) (selector, label string, ok bool) {
	m := labelValuesRe.FindStringSubmatch(q)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// comparison splits an alert's expression at its first comparison operator
// outside brackets, braces, parentheses and strings: the left-hand side is
// what the alert compares with its threshold.
func comparison(expr string) (lhs, op, rhs string, ok bool) {
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
			continue
		case ch == '"' || ch == '\'' || ch == '`':
			quote = ch
			continue
		case ch == '(' || ch == '[' || ch == '{':
			depth++
			continue
		case ch == ')' || ch == ']' || ch == '}':
			depth--
			continue
		case depth > 0:
			continue
		}
		for _, o := range []string{"==", "!=", ">=", "<=", ">", "<"} {
			if strings.HasPrefix(expr[i:], o) {
				return strings.TrimSpace(expr[:i]), o, strings.TrimSpace(expr[i+len(o):]), true
			}
		}
	}
	return "", "", "", false
}

// The dashboards' and rules' shape, checked without Prometheus.
func TestDashboardsAreWellFormed(t *testing.T) {
	root := repoRoot(t)
	uids := map[string]string{}
	for _, d := range loadDashboards(t, root) {
		t.Run(d.file, func(t *testing.T) {
			assert.NotEmpty(t, d.UID, "uid")
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %q of %s is also %s's", d.UID, d.file, other)
			}
			uids[d.UID] = d.file
			assert.NotEmpty(t, d.Title, "title")
			assert.Equal(t, 39, d.SchemaVersion, "schemaVersion")
			assert.Contains(t, d.Tags, "flinkscale", "tags")

			vars := map[string]variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			ds, ok := vars["datasource"]
			if assert.True(t, ok, "a datasource variable") {
				assert.Equal(t, "datasource", ds.Type)
				assert.Equal(t, "prometheus", ds.queryString())
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				assert.Equal(t, wantDatasource, v.Datasource, "variable %s datasource", v.Name)
				_, _, ok := parseLabelValues(v.queryString())
				assert.True(t, ok, "variable %s: a label_values query: %q", v.Name, v.queryString())
				if v.IncludeAll {
					assert.Equal(t, ".*", v.AllValue, "variable %s: All is the regex .*", v.Name)
				}
			}

			ids := map[int]bool{}
			walk(d.Panels, func(p panel) {
				assert.False(t, ids[p.ID], "panel id %d used twice", p.ID)
				ids[p.ID] = true
				if p.Type == "row" {
					return
				}
				assert.Equal(t, wantDatasource, p.Datasource, "panel %q datasource", p.Title)
				assert.NotEmpty(t, p.Targets, "panel %q has no targets", p.Title)
				for _, tg := range p.Targets {
					assert.Equal(t, wantDatasource, tg.Datasource, "panel %q target %s datasource", p.Title, tg.RefID)
					assert.NotEmpty(t, tg.Expr, "panel %q target %s expr", p.Title, tg.RefID)
				}
			})
			for _, a := range d.Annotations.List {
				if a.BuiltIn == 0 {
					assert.Equal(t, wantDatasource, a.Datasource, "annotation %q datasource", a.Name)
				}
			}

			qs := d.queries()
			assert.NotEmpty(t, qs)
			for _, q := range qs {
				for _, name := range varsIn(q.expr) {
					_, known := vars[name]
					_, builtin := builtins[name]
					assert.True(t, known || builtin, "%s: unknown variable $%s", q.where, name)
				}
				// A multi-value variable is a regex: only =~ and !~ take it.
				for _, m := range matcher.FindAllStringSubmatch(q.expr, -1) {
					for _, name := range varsIn(m[2]) {
						if vars[name].Multi || vars[name].IncludeAll {
							assert.Contains(t, []string{"=~", "!~"}, m[1], "%s: multi-value $%s in %s", q.where, name, m[0])
						}
					}
				}
			}
		})
	}
}

func TestRulesAreWellFormed(t *testing.T) {
	rules := loadRules(t, filepath.Join(repoRoot(t), rulesFile))
	names := map[string]bool{}
	for _, r := range rules {
		assert.False(t, names[r.name()], "rule %s twice", r.name())
		names[r.name()] = true
		if r.Record != "" {
			assert.True(t, strings.HasPrefix(r.Record, "flinkscale:"), "recording rule %s: name it flinkscale:...", r.Record)
			continue
		}
		assert.True(t, strings.HasPrefix(r.Alert, "Flinkscale"), r.Alert)
		assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "%s severity", r.Alert)
		for _, a := range []string{"summary", "description", "runbook_url"} {
			assert.NotEmpty(t, r.Annotations[a], "%s annotation %s", r.Alert, a)
		}
		lhs, _, rhs, ok := comparison(r.Expr)
		if assert.True(t, ok, "%s: expr is `<expression> <comparison> <threshold>`: %s", r.Alert, r.Expr) {
			assert.NotEmpty(t, lhs, r.Alert)
			assert.Regexp(t, `^[0-9.]+\b`, rhs, "%s: a numeric threshold after the comparison", r.Alert)
		}
	}
	var alerts []string
	for n := range names {
		if !strings.Contains(n, ":") {
			alerts = append(alerts, n)
		}
	}
	sort.Strings(alerts)
	for _, want := range []string{"FlinkscaleCollectionFailing", "FlinkscaleLagAboveSLO", "FlinkscaleRescaleFailures", "FlinkscaleRescaleStuck"} {
		assert.True(t, slices.Contains(alerts, want), "alert %s missing (have %v)", want, alerts)
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"namespace": "ns1", "job": "orders", "vertex": ".*"}
	got, unknown := substitute(`rate(x{namespace="$namespace", policy="${job}", vertex=~"[[vertex]]", v=~"${vertex:regex}"}[$__rate_interval]) + $__range + $nope`, vars)
	assert.Equal(t, `rate(x{namespace="ns1", policy="orders", vertex=~".*", v=~".*"}[1m]) + 5m + $nope`, got)
	assert.Equal(t, []string{"nope"}, unknown)
	assert.Equal(t, []string{"job", "__interval"}, varsIn(`a{p="$job"}[$__interval]`))
}

func TestComparison(t *testing.T) {
	for _, c := range []struct{ expr, lhs, op, rhs string }{
		{`flinkscale:x >= 2`, `flinkscale:x`, ">=", "2"},
		{`max by (a) (x{o=~"a>b|c"}) == 1`, `max by (a) (x{o=~"a>b|c"})`, "==", "1"},
		{"a > 900\n  unless on (n) b == 1", "a", ">", "900\n  unless on (n) b == 1"},
		{`rate(x[5m]) / rate(y[5m]) > 0.5`, `rate(x[5m]) / rate(y[5m])`, ">", "0.5"},
	} {
		lhs, op, rhs, ok := comparison(c.expr)
		assert.True(t, ok, c.expr)
		assert.Equal(t, []string{c.lhs, c.op, c.rhs}, []string{lhs, op, rhs}, c.expr)
	}
	_, _, _, ok := comparison(`sum(x{a!="b"})`)
	assert.False(t, ok)
}

func TestParseLabelValues(t *testing.T) {
	sel, label, ok := parseLabelValues(`label_values(flinkscale_x{namespace="$namespace"}, policy)`)
	assert.True(t, ok)
	assert.Equal(t, `flinkscale_x{namespace="$namespace"}`, sel)
	assert.Equal(t, "policy", label)
	sel, label, ok = parseLabelValues(`label_values(namespace)`)
	assert.True(t, ok)
	assert.Empty(t, sel)
	assert.Equal(t, "namespace", label)
}

// recorder is a Registerer that keeps what is registered.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Every metric the controller exports is on a dashboard.
func TestDashboardsShowEveryMetric(t *testing.T) {
	var reg recorder
	controllers.NewMetrics(&reg)
	ch := make(chan *prometheus.Desc, 100)
	go func() {
		for _, c := range reg.cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(t, m, d.String())
		names = append(names, m[1])
	}
	require.NotEmpty(t, names)
	var exprs []string
	for _, d := range loadDashboards(t, repoRoot(t)) {
		for _, q := range d.queries() {
			exprs = append(exprs, q.expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, n := range names {
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(n) + `(_bucket|_sum|_count)?\b`)
		assert.Regexp(t, re, all, "metric %s is on no dashboard", n)
	}
	t.Logf("%d metrics, all on the dashboards", len(names))
}
