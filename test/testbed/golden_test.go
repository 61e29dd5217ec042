package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/flinkprom"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	"github.com/flinkscale/flinkscale/test/sim/promreporter"
)

// The golden fixtures in testdata/golden/flink-<v>/ are real Flink's
// answers (REST calls the collector made, and both reporters' expositions)
// recorded by TestRealCollectors with FLINKSCALE_UPDATE_GOLDEN=1 against
// the testbed playing scenarios/saturate-step.yaml. These tests need no
// Java: they hold the collectors and the simulator to those shapes.

func loadGolden(t *testing.T, v Flink) goldenREST {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "flink-"+string(v), "rest.json"))
	require.NoError(t, err)
	var g goldenREST
	require.NoError(t, json.Unmarshal(b, &g))
	return g
}

// serveGolden answers the recorded GETs (path and query exactly) and 404s
// anything else.
func serveGolden(t *testing.T, g goldenREST) *httptest.Server {
	byKey := map[string]goldenCall{}
	for _, c := range g.Calls {
		byKey[c.Path+"?"+c.Query] = c
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := byKey[r.URL.Path+"?"+r.URL.RawQuery]
		if !ok {
			http.Error(w, `{"errors":["not recorded"]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.Status)
		_, _ = w.Write(c.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The workload's vertices as real Flink names and numbers them.
var goldenVertices = []struct {
	name        string
	parallelism int
	input       string // ship strategy of the input edge
}{
	{"Source: events -> Map", 2, ""},
	{"KeyedProcess: count", 2, "HASH"},
	{"Sink: counts", 1, "REBALANCE"},
}

func TestGoldenRESTCollector(t *testing.T) {
	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) {
			g := loadGolden(t, v)
			srv := serveGolden(t, g)
			c, err := flink.New(srv.URL)
			require.NoError(t, err)
			s, err := flink.NewCollector(c).Collect(context.Background(), g.JobID)
			require.NoError(t, err)
			assert.Equal(t, g.FlinkVersion, s.FlinkVersion)
			assert.Equal(t, "RUNNING", s.State)
			require.Len(t, s.Vertices, len(goldenVertices))
			for i, want := range goldenVertices {
				got := s.Vertices[i]
				assert.Equal(t, want.name, got.Name)
				assert.Equal(t, want.parallelism, got.Parallelism, want.name)
				assert.Equal(t, 128, got.MaxParallelism, want.name)
				if want.input != "" && assert.Len(t, got.Inputs, 1, want.name) {
					assert.Equal(t, want.input, got.Inputs[0].ShipStrategy, want.name)
					assert.Equal(t, s.Vertices[i-1].ID, got.Inputs[0].ID, want.name)
				}
				assert.NotNil(t, got.BusyTimeMsPerSecond, want.name)
				assert.NotNil(t, got.BackPressuredTimeMsPerSecond, want.name)
				assert.NotNil(t, got.NumRecordsIn, want.name)
			}
			src := s.Vertices[0]
			assert.Len(t, src.Partitions, 4, "the source's readers own the topic's 4 partitions")
			assert.NotNil(t, src.PendingRecords, "pendingRecords is registered by now")
			if assert.NotNil(t, s.Checkpoints) {
				assert.Equal(t, 10*time.Second, s.Checkpoints.Interval)
				assert.Equal(t, 2*time.Minute, s.Checkpoints.Timeout)
				assert.Positive(t, s.Checkpoints.Completed)
				// 128 key groups × 64 KiB of keyed state, plus counters and
				// the sources' split state.
				assert.InDelta(t, 8<<20, s.Checkpoints.LastStateSize, 256<<10)
			}
			if assert.NotNil(t, s.TaskManagers) {
				assert.Equal(t, 2, s.TaskManagers.Slots)
				assert.Equal(t, 1, s.TaskManagers.Replicas)
			}
			t.Logf("missing: %v", s.Missing)
		})
	}
}

func TestGoldenReporterScrape(t *testing.T) {
	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) {
			g := loadGolden(t, v)
			var targets []flinkprom.Target
			for _, role := range []flinkprom.Role{flinkprom.JobManager, flinkprom.TaskManager} {
				body, err := os.ReadFile(filepath.Join("testdata", "golden", "flink-"+string(v), "reporter-"+string(role)+".txt"))
				require.NoError(t, err)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain; version=0.0.4")
					_, _ = w.Write(body)
				}))
				t.Cleanup(srv.Close)
				targets = append(targets, flinkprom.Target{URL: srv.URL, Role: role})
			}
			s, err := (&flinkprom.Scraper{JobID: g.JobID}).Scrape(context.Background(), targets)
			require.NoError(t, err)
			assert.Empty(t, s.Missing, "every family of real Flink's exposition parses")
			require.Len(t, s.Vertices, len(goldenVertices))
			byName := map[string]int{}
			for i, sv := range s.Vertices {
				byName[sv.Name] = i
			}
			for _, want := range goldenVertices {
				i, ok := byName[flinkprom.PromSanitize(want.name)]
				if !assert.True(t, ok, "vertex %q (task_name %q)", want.name, flinkprom.PromSanitize(want.name)) {
					continue
				}
				got := s.Vertices[i]
				assert.Equal(t, want.parallelism, got.Parallelism, want.name)
				assert.NotNil(t, got.BusyTimeMsPerSecond, want.name)
				assert.NotNil(t, got.NumRecordsIn, want.name)
				assert.NotNil(t, got.NumRecordsOutPerSecond, want.name)
			}
			src := s.Vertices[byName[flinkprom.PromSanitize(goldenVertices[0].name)]]
			if assert.Len(t, src.Partitions, 4) {
				for _, p := range src.Partitions {
					assert.True(t, flinkprom.SameTopic(p.Topic, "events"))
					assert.GreaterOrEqual(t, p.CurrentOffset, int64(0))
				}
			}
			assert.NotNil(t, s.Checkpoints, "the JobManager's checkpoint gauges")
		})
	}
}

// TestSimServesGoldenFields holds the simulator's REST API and reporter to
// real Flink's: every JSON field real Flink served to the collector (and
// the cluster endpoints recorded beside) is served by the simulator too,
// every metric id the collector asked for is listed, and every Prometheus
// family the scraper reads has the same labels. Fields real Flink has and
// the simulator need not serve are listed in simNotServed, with why.
func TestSimServesGoldenFields(t *testing.T) {
	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) {
			g := loadGolden(t, v)
			s := loadScenario(t, "scenarios/saturate-step.yaml")
			s.Job.FlinkVersion = SimFlinkVersion(v)
			job, err := s.NewJob(nil, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 5*time.Second)
			require.NoError(t, err)
			require.NoError(t, job.Advance(90*time.Second))
			// Shapes, not staleness: the simulator's metric store (refreshed
			// on demand like Flink's, fetcher_test.go) would answer the first
			// request with a just-deployed job's values.
			sim := httptest.NewServer(flinkrest.NewHandler(job, flinkrest.WithMetricFetcherInterval(0)))
			t.Cleanup(sim.Close)

			// Real ids → the simulator's, by vertex name.
			realJob := findCall(t, g, "/jobs/"+g.JobID, "")
			var details struct {
				Vertices []struct{ ID, Name string } `json:"vertices"`
			}
			require.NoError(t, json.Unmarshal(realJob.Body, &details))
			var simJobs struct {
				Jobs []struct {
					JID string `json:"jid"`
				} `json:"jobs"`
			}
			getJSON(t, sim.URL+"/jobs/overview", &simJobs)
			require.NotEmpty(t, simJobs.Jobs)
			ids := map[string]string{g.JobID: simJobs.Jobs[0].JID}
			for _, vx := range details.Vertices {
				id, ok := job.VertexID(vx.Name)
				require.True(t, ok, vx.Name)
				ids[vx.ID] = id
			}
			var problems []string
			for _, c := range g.Calls {
				path, query := c.Path, c.Query
				for from, to := range ids {
					path = strings.ReplaceAll(path, from, to)
				}
				resp, err := http.Get(sim.URL + path + "?" + query)
				require.NoError(t, err)
				var simBody any
				err = json.NewDecoder(resp.Body).Decode(&simBody)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK || err != nil {
					problems = append(problems, fmt.Sprintf("%s?%s: simulator answered %d (%v)", c.Path, c.Query, resp.StatusCode, err))
					continue
				}
				var realBody any
				require.NoError(t, json.Unmarshal(c.Body, &realBody))
				tmpl := template(c.Path, ids)
				if isMetricList(realBody) {
					problems = append(problems, metricIDsMissing(tmpl, c, g, simBody)...)
					continue
				}
				for _, k := range keyPaths(realBody) {
					if !contains(keyPaths(simBody), k) && simNotServed[tmpl+" "+k] == "" {
						problems = append(problems, fmt.Sprintf("%s: field %s", tmpl, k))
					}
				}
			}
			sort.Strings(problems)
			assert.Empty(t, problems, "real Flink serves these and the simulator does not (add to simNotServed only with a reason)")

			// The reporter: the families the scraper reads, with their labels.
			body, err := os.ReadFile(filepath.Join("testdata", "golden", "flink-"+string(v), "reporter-taskmanager.txt"))
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			promreporter.Handler(job.View, job.View().TaskManagers[0].ID).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			realFams, simFams := familyLabels(string(body)), familyLabels(rec.Body.String())
			for _, f := range scrapedFamilies {
				rl, ok := realFams[f]
				if !assert.True(t, ok, "real Flink exports %s", f) {
					continue
				}
				assert.Equal(t, rl, simFams[f], "%s: the simulator's labels", f)
			}
		})
	}
}

// scrapedFamilies are the TaskManager families metrics/flinkprom reads.
var scrapedFamilies = []string{
	"flink_taskmanager_job_task_busyTimeMsPerSecond",
	"flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
	"flink_taskmanager_job_task_numRecordsIn",
	"flink_taskmanager_job_task_numRecordsOut",
	"flink_taskmanager_job_task_numRecordsInPerSecond",
	"flink_taskmanager_job_task_numRecordsOutPerSecond",
	"flink_taskmanager_job_task_operator_numRecordsIn",
	"flink_taskmanager_job_task_operator_numRecordsOut",
	"flink_taskmanager_job_task_operator_pendingRecords",
	"flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset",
	"flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_committedOffset",
}

// simNotServed are fields of real Flink's answers that the simulator does
// not serve, keyed by endpoint template and field path, with the reason
// nothing is lost.
var simNotServed = map[string]string{}

func template(path string, ids map[string]string) string {
	for from := range ids {
		if len(from) == 32 {
			path = strings.ReplaceAll(path, from, "{id}")
		}
	}
	return path
}

func findCall(t *testing.T, g goldenREST, path, query string) goldenCall {
	for _, c := range g.Calls {
		if c.Path == path && c.Query == query {
			return c
		}
	}
	t.Fatalf("no recorded call %s?%s", path, query)
	return goldenCall{}
}

func getJSON(t *testing.T, url string, v any) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// isMetricList tells a metric listing ([{"id": …}, …] without values).
func isMetricList(v any) bool {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return false
	}
	m, ok := a[0].(map[string]any)
	return ok && len(m) == 1 && m["id"] != nil
}

// metricIDsMissing: every metric id the collector went on to ask for on
// this vertex (the get= of the recorded calls on the same path) must be in
// the simulator's listing.
func metricIDsMissing(tmpl string, list goldenCall, g goldenREST, simBody any) []string {
	listed := map[string]bool{}
	if a, ok := simBody.([]any); ok {
		for _, e := range a {
			if m, ok := e.(map[string]any); ok {
				listed[fmt.Sprint(m["id"])] = true
			}
		}
	}
	var out []string
	for _, c := range g.Calls {
		if c.Path != list.Path || c.Query == "" {
			continue
		}
		for _, kv := range strings.Split(c.Query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "get" {
				continue
			}
			v = strings.ReplaceAll(v, "%3E", ">")
			for _, id := range strings.Split(v, ",") {
				if !listed[id] {
					out = append(out, fmt.Sprintf("%s: metric id %s not listed", tmpl, id))
				}
			}
		}
	}
	return out
}

// keyPaths lists the field paths of a JSON value: "a.b", arrays as "a[]",
// the fields of all elements merged.
func keyPaths(v any) []string {
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				set[p] = true
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		}
	}
	walk("", v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool {
	i := sort.SearchStrings(xs, x)
	return i < len(xs) && xs[i] == x
}

// familyLabels maps each family of an exposition to its sorted label names.
func familyLabels(expo string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(expo, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		labels, _, _ := strings.Cut(rest, "}")
		var names []string
		for _, kv := range strings.Split(labels, ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
				names = append(names, strings.TrimSpace(k))
			}
		}
		sort.Strings(names)
		if _, seen := out[name]; !seen {
			out[name] = strings.Join(names, ",")
		}
	}
	return out
}
