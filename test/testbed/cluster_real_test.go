package testbed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/metrics/flinkprom"
)

// TestRealClusterStartsAndStops starts a real Kafka broker and, for each
// Flink line, a real session cluster with two TaskManagers; checks what the
// JobManager reports and that every reporter endpoint serves Flink's
// metrics; adds and removes a TaskManager; and checks that, once stopped,
// no process of the run remains. About 50 s on two cores; it runs when
// FLINKSCALE_REAL=1 (see RequireReal).
func TestRealClusterStartsAndStops(t *testing.T) {
	RequireReal(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	began := time.Now()
	for _, profile := range []string{ProfileKafka, Flink120.Profile(), Flink2.Profile()} {
		if _, err := Resolve(ctx, root, profile); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("classpaths resolved in %s", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	k, err := StartKafka(ctx, KafkaOptions{RepoRoot: root, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Stop() })
	t.Logf("Kafka ready at %s in %s", k.Bootstrap(), time.Since(began).Round(time.Millisecond))
	kafkaRoundTrip(t, ctx, k.Bootstrap())

	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) { checkRealCluster(t, ctx, root, v) })
	}
	t.Run("a JobManager that cannot start", func(t *testing.T) {
		dir := t.TempDir()
		_, err := StartFlink(ctx, FlinkOptions{RepoRoot: root, Dir: dir, TaskManagers: 1,
			Config: map[string]string{"env.java.opts.jobmanager": "-XX:+NoSuchOption"}})
		if err == nil {
			t.Fatal("StartFlink succeeded with a JobManager JVM that cannot start")
		}
		for _, want := range []string{"jobmanager (pid ", "ended early", "NoSuchOption", "jobmanager.out"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q: missing %q", err, want)
			}
		}
		assertNothingRunsIn(t, dir)
	})

	t.Logf("idle RSS: kafka %s", residentMemory(k.Process().PID))
	began = time.Now()
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kafka stopped in %s", time.Since(began).Round(time.Millisecond))
	assertGroupGone(t, k.Process())
	assertNothingRunsIn(t, k.Dir())
}

func checkRealCluster(t *testing.T, ctx context.Context, root string, v Flink) {
	began := time.Now()
	c, err := StartFlink(ctx, FlinkOptions{Version: v, RepoRoot: root, Dir: t.TempDir(), TaskManagers: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("Flink %s ready at %s in %s", v, c.RESTURL(), time.Since(began).Round(time.Millisecond))
	all := c.Processes()

	wantFlinkOverview(t, ctx, c, 2, 4, v)
	checkReporterTargets(t, ctx, c.ReporterTargets(), 3)
	for _, p := range c.Processes() {
		t.Logf("idle RSS: %s %s", p.Name, residentMemory(p.PID))
	}

	began = time.Now()
	if err := c.AddTaskManager(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("TaskManager added in %s", time.Since(began).Round(time.Millisecond))
	if got := c.TaskManagers(); got != 3 {
		t.Errorf("TaskManagers() = %d after adding one to 2", got)
	}
	wantFlinkOverview(t, ctx, c, 3, 6, v)
	checkReporterTargets(t, ctx, c.ReporterTargets(), 4)
	procs := c.Processes()
	newest := procs[len(procs)-1]
	all = append(all, newest)

	began = time.Now()
	if err := c.RemoveTaskManager(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("TaskManager removed in %s", time.Since(began).Round(time.Millisecond))
	assertGroupGone(t, newest)
	wantFlinkOverview(t, ctx, c, 2, 4, v)
	if got := len(c.ReporterTargets()); got != 3 {
		t.Errorf("%d reporter targets after removing a TaskManager, want 3", got)
	}

	began = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Flink %s stopped in %s", v, time.Since(began).Round(time.Millisecond))
	for _, p := range all {
		assertGroupGone(t, p)
	}
	assertNothingRunsIn(t, c.Dir())
	if _, err := c.Overview(ctx); err == nil {
		t.Errorf("the JobManager still answers after Stop")
	}
}

func wantFlinkOverview(t *testing.T, ctx context.Context, c *Cluster, tms, slots int, v Flink) {
	t.Helper()
	o, err := c.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o.TaskManagers != tms || o.SlotsTotal != slots || !strings.HasPrefix(o.FlinkVersion, string(v)+".") {
		t.Errorf("GET /overview = %+v, want %d TaskManagers, %d slots, Flink %s.*", o, tms, slots, v)
	}
}

// checkReporterTargets scrapes every target once: each must serve its role's
// flink_ series.
func checkReporterTargets(t *testing.T, ctx context.Context, targets []flinkprom.Target, want int) {
	t.Helper()
	if len(targets) != want {
		t.Errorf("%d reporter targets, want %d: %v", len(targets), want, targets)
	}
	for _, tg := range targets {
		body, err := scrapeText(ctx, tg.URL+"/metrics")
		if err != nil {
			t.Errorf("%s reporter: %v", tg.Role, err)
			continue
		}
		prefix := "flink_" + string(tg.Role) + "_"
		if !strings.Contains(body, "\n"+prefix) {
			t.Errorf("%s reporter at %s serves no %s series; it serves:\n%.500s", tg.Role, tg.URL, prefix, body)
		}
	}
}

func scrapeText(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// kafkaRoundTrip creates a topic, produces a record and reads it back: the
// broker works, not only answers.
func kafkaRoundTrip(t *testing.T, ctx context.Context, bootstrap string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics("testbed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "testbed"); err != nil {
		t.Fatalf("creating a topic: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "testbed", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(fctx)
		if err := fctx.Err(); err != nil {
			t.Fatalf("consuming the record back: %v", err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "hello" {
				t.Fatalf("read back %q", recs[0].Value)
			}
			return
		}
	}
}

// assertNothingRunsIn fails when a live process has dir on its command
// line (every testbed JVM names its work directory there).
func assertNothingRunsIn(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(stat), ") Z ") {
			continue
		}
		t.Errorf("pid %s still runs in %s: %.300s", e.Name(), dir, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
}

// residentMemory is the resident memory of a process, from /proc (Linux), or "?".
func residentMemory(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
