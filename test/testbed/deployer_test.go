package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim"
)

// The workload of scenarios/saturate-step.yaml as Flink plans it (the ids
// are real Flink's, see the golden fixtures).
const (
	idSource = "712a6f476cd6ee71f3f0d459a5814a97"
	idKeyed  = "df85b03322cf860d36bf7bbdbc498ff0"
	idSink   = "9325f30f8c374edd52441089d38b2d6b"
)

var saturatePlan = []PlannedVertex{
	{ID: idSource, Parallelism: 2, MaxParallelism: 128, Group: 0, Name: "Source: events -> Map"},
	{ID: idKeyed, Parallelism: 2, MaxParallelism: 128, Group: 0, Name: "KeyedProcess: count"},
	{ID: idSink, Parallelism: 1, MaxParallelism: 128, Group: 0, Name: "Sink: counts"},
}

func TestParsePlan(t *testing.T) {
	out := "WARN something logged\n" +
		"VERTEX\t712a6f476cd6ee71f3f0d459a5814a97\t2\t128\t0\tSource: events -> Map\n" +
		"VERTEX\t9325f30f8c374edd52441089d38b2d6b\t1\t-1\t1\tSink: a\tname with a tab\n"
	vs, err := parsePlan([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, []PlannedVertex{
		{ID: idSource, Parallelism: 2, MaxParallelism: 128, Group: 0, Name: "Source: events -> Map"},
		{ID: idSink, Parallelism: 1, MaxParallelism: -1, Group: 1, Name: "Sink: a\tname with a tab"},
	}, vs)
	_, err = parsePlan([]byte("nothing\n"))
	assert.ErrorContains(t, err, "no VERTEX lines")
	_, err = parsePlan([]byte("VERTEX\tnot-an-id\t1\t1\t0\tx\n"))
	assert.ErrorContains(t, err, "bad plan line")
}

func TestTaskManagersFor(t *testing.T) {
	twoGroups := []PlannedVertex{
		{ID: "a", Parallelism: 4, Group: 0}, {ID: "b", Parallelism: 2, Group: 0},
		{ID: "c", Parallelism: 3, Group: 1},
	}
	for _, c := range []struct {
		name  string
		plan  []PlannedVertex
		par   map[string]int
		slots int
		want  int
	}{
		// One group, widest vertex 2: 2 slots, one TaskManager of 2.
		{"the plan's parallelism", saturatePlan, nil, 2, 1},
		// Widest 3: ceil(3/2) = 2.
		{"an override widens the group", saturatePlan, map[string]int{idKeyed: 3}, 2, 2},
		// Widest 6 on 4-slot TaskManagers: ceil(6/4) = 2.
		{"upper bounds", saturatePlan, map[string]int{idKeyed: 6}, 4, 2},
		// Groups add up: max(4, 2) + 3 = 7 slots, ceil(7/2) = 4.
		{"slot sharing groups add up", twoGroups, nil, 2, 4},
		// max(1, 1) + 1 = 2 slots on 4-slot TaskManagers: 1.
		{"narrowed", twoGroups, map[string]int{"a": 1, "b": 1, "c": 1}, 4, 1},
		// 4 + 3 = 7 slots of 1: 7.
		{"one slot each", twoGroups, nil, 1, 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, taskManagersFor(c.plan, c.par, c.slots))
		})
	}
}

func TestPoolStartsReplacementsWhenDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := poolState{want: 3, replaceAt: []time.Time{now.Add(5 * time.Second)}}
	// One of three killed: its replacement is not due.
	assert.Equal(t, 0, p.startsDue(2, now))
	assert.Equal(t, 0, p.startsDue(2, now.Add(4*time.Second)))
	// Due at 5 s: one starts, and is no longer owed.
	assert.Equal(t, 1, p.startsDue(2, now.Add(5*time.Second)))
	assert.Empty(t, p.replaceAt)
	// A pool grown by an in-place rescale starts at once.
	p.want = 5
	assert.Equal(t, 2, p.startsDue(3, now))
	// Replacements the pool no longer misses are dropped.
	p = poolState{want: 2, replaceAt: []time.Time{now.Add(time.Second), now.Add(2 * time.Second)}}
	assert.Equal(t, 0, p.startsDue(2, now))
	assert.Empty(t, p.replaceAt)
}

func TestPoolReleasesIdleTaskManagersAboveTheFloor(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := poolState{want: 3, floor: 1}
	timeout := 30 * time.Second
	assert.Empty(t, p.idleToRelease([]string{"tm-2", "tm-3"}, 3, now, timeout), "idle from now on")
	assert.Empty(t, p.idleToRelease([]string{"tm-2", "tm-3"}, 3, now.Add(29*time.Second), timeout))
	// tm-3 got busy at 29 s: its idle time starts over.
	assert.Empty(t, p.idleToRelease([]string{"tm-2"}, 3, now.Add(29500*time.Millisecond), timeout))
	assert.Equal(t, []string{"tm-2"}, p.idleToRelease([]string{"tm-2", "tm-3"}, 3, now.Add(30*time.Second), timeout))
	// Never below the floor: of 2 live, 1 may go even if both are idle.
	p = poolState{want: 2, floor: 1, idleSince: map[string]time.Time{"tm-1": now, "tm-2": now}}
	assert.Equal(t, []string{"tm-1"}, p.idleToRelease([]string{"tm-1", "tm-2"}, 2, now.Add(time.Minute), timeout))
}

func TestSavepointTarget(t *testing.T) {
	own := "file:///tmp/tb/flink/savepoints"
	for dir, want := range map[string]string{
		"":                          "",
		"file:///data/savepoints":   "file:///data/savepoints",
		"file:/data/savepoints":     "file:/data/savepoints",
		"/data/savepoints":          "/data/savepoints",
		"s3://flink/savepoints":     own,
		"gs://bucket/sp":            own,
		"hdfs://namenode:8020/sp":   own,
		"s3a://flink/savepoints":    own,
		"relative/savepoints":       own,
		"abfss://c@a.dfs.core/sp/x": own,
	} {
		assert.Equal(t, want, savepointTarget(dir, own), dir)
	}
}

func TestReadableCause(t *testing.T) {
	trace := "java.util.concurrent.CompletionException: java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint.\n" +
		"\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(CompletableFuture.java:315)\n" +
		"Caused by: java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint.\n" +
		"\tat x.y(Z.java:1)\n" +
		"Caused by: java.io.IOException: Mkdirs failed to create /tmp/x/savepoint-fault/savepoints\n" +
		"\t... 12 more\n"
	assert.Equal(t, "org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint. (root cause: java.io.IOException: Mkdirs failed to create /tmp/x/savepoint-fault/savepoints)",
		readableCause(trace))
	assert.Equal(t, "java.lang.IllegalStateException: boom", readableCause("java.lang.IllegalStateException: boom\n\tat a.b(C.java:1)"))
	assert.Equal(t, "", readableCause(""))
}

// The failed savepoints recorded from real Flink (TestRealDeployer with
// FLINKSCALE_UPDATE_GOLDEN=1): FaultSavepoint's directory below a regular
// file.
func TestSavepointStatusOfARealFailure(t *testing.T) {
	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "deployer", "savepoint-failure-flink-"+string(v)+".json"))
			require.NoError(t, err)
			var s flink.SavepointStatus
			require.NoError(t, json.Unmarshal(b, &s))
			st := savepointStatus(s)
			assert.Equal(t, "COMPLETED", st.Status)
			assert.Empty(t, st.Location)
			assert.Equal(t, "java.util.concurrent.CompletionException", st.FailureClass)
			// Six exceptions deep: the outermost that is not a mere
			// CompletionException, and the root cause, which names the
			// regular file in the way.
			assert.Regexp(t, `^org\.apache\.flink\.util\.FlinkException: Stop with savepoint operation could not be completed\. `+
				`\(root cause: java\.nio\.file\.FileAlreadyExistsException: /tmp/flinkscale-deployer-\d+/savepoint-fault\)$`, st.FailureCause)
		})
	}
}

func TestSavepointStatusMapping(t *testing.T) {
	var inProgress, done flink.SavepointStatus
	require.NoError(t, json.Unmarshal([]byte(`{"status":{"id":"IN_PROGRESS"},"operation":null}`), &inProgress))
	assert.Equal(t, sim.SavepointStatus{Status: "IN_PROGRESS"}, savepointStatus(inProgress))
	require.NoError(t, json.Unmarshal([]byte(`{"status":{"id":"COMPLETED"},"operation":{"location":"file:/sp/savepoint-1"}}`), &done))
	assert.Equal(t, sim.SavepointStatus{Status: "COMPLETED", Location: "file:/sp/savepoint-1"}, savepointStatus(done))
}

func TestJobViewOfGoldenREST(t *testing.T) {
	for _, v := range Versions {
		t.Run("flink-"+string(v), func(t *testing.T) {
			g := loadGolden(t, v)
			var det flink.JobDetails
			var ck flink.CheckpointStatistics
			var tms restTaskManagers
			require.NoError(t, json.Unmarshal(goldenBody(t, g, "/jobs/"+g.JobID), &det))
			require.NoError(t, json.Unmarshal(goldenBody(t, g, "/jobs/"+g.JobID+"/checkpoints"), &ck))
			require.NoError(t, json.Unmarshal(goldenBody(t, g, "/taskmanagers"), &tms))
			jv := jobView(det, &ck)
			assert.Equal(t, g.JobID, jv.ID)
			assert.Equal(t, "saturate-step", jv.Name)
			assert.Equal(t, "RUNNING", jv.State)
			assert.Equal(t, int64(-1), jv.EndTime)
			assert.Equal(t, det.StartTime, jv.StartTime)
			assert.Equal(t, []string{"CREATED", "INITIALIZING", "RUNNING"}, sortedKeys(jv.Timestamps), "only the states entered")
			// maxParallelism is -1 at the job level: the vertices' 128.
			assert.Equal(t, 128, jv.MaxParallelism)
			// p = 2, 2, 1: the job's parallelism is the widest, 2.
			assert.Equal(t, 2, jv.JobParallelism)
			require.Len(t, jv.Vertices, 3)
			src, keyed, sink := jv.Vertices[0], jv.Vertices[1], jv.Vertices[2]
			assert.Equal(t, sim.VertexView{ID: idSource, Name: "Source: events -> Map", OperatorName: "Source: events",
				Parallelism: 2, MaxParallelism: 128, SlotSharingGroupID: src.SlotSharingGroupID, Status: "RUNNING",
				IsSource: true, StartTime: det.Vertices[0].StartTime}, src)
			assert.Len(t, src.SlotSharingGroupID, 32)
			assert.False(t, keyed.IsSource)
			assert.Equal(t, []sim.EdgeView{{ID: idSource, Ship: "HASH"}}, keyed.Inputs)
			assert.Equal(t, []sim.EdgeView{{ID: idKeyed, Ship: "REBALANCE"}}, sink.Inputs)
			assert.Equal(t, "Sink: counts", sink.OperatorName)

			c := jv.Checkpoints
			assert.Equal(t, 11, c.Completed)
			assert.Equal(t, 11, c.Total)
			if assert.NotNil(t, c.LatestCompleted) {
				assert.Equal(t, int64(11), c.LatestCompleted.ID)
				assert.True(t, strings.HasPrefix(c.LatestCompleted.ExternalPath, "file:/tmp/"), c.LatestCompleted.ExternalPath)
				assert.True(t, strings.HasSuffix(c.LatestCompleted.ExternalPath, "/"+g.JobID+"/chk-11"))
				// 128 key groups × 64 KiB = 8 MiB of keyed state, plus
				// the sources' offsets: 8,398,312 bytes.
				assert.Equal(t, int64(8398312), c.LatestCompleted.StateSizeBytes)
				assert.Equal(t, 5, c.LatestCompleted.NumSubtasks)
				assert.Equal(t, "CHECKPOINT", c.LatestCompleted.CheckpointType)
			}
			assert.Nil(t, c.LatestSavepoint)
			assert.Nil(t, c.LatestRestored)
			assert.NotEmpty(t, c.History)

			tv := tms.view(2)
			require.Len(t, tv, 1)
			assert.Equal(t, sim.TaskManagerView{ID: "taskmanager-1", Path: tv[0].Path, DataPort: tv[0].DataPort, JMXPort: -1,
				TimeSinceLastHeartbeat: tv[0].TimeSinceLastHeartbeat, SlotsNumber: 2, FreeSlots: 0, CPUCores: 2,
				PhysicalMemory: 25276194816, FreeMemory: 343932928, ManagedMemory: 60397978, Host: loopback}, tv[0])
		})
	}
}

func goldenBody(t *testing.T, g goldenREST, path string) []byte {
	t.Helper()
	for _, c := range g.Calls {
		if c.Path == path && c.Query == "" {
			return c.Body
		}
	}
	t.Fatalf("no recorded GET %s", path)
	return nil
}

func TestCloneJobSharesNothing(t *testing.T) {
	g := loadGolden(t, Flink120)
	var det flink.JobDetails
	var ck flink.CheckpointStatistics
	require.NoError(t, json.Unmarshal(goldenBody(t, g, "/jobs/"+g.JobID), &det))
	require.NoError(t, json.Unmarshal(goldenBody(t, g, "/jobs/"+g.JobID+"/checkpoints"), &ck))
	orig := jobView(det, &ck)
	c := cloneJob(orig)
	c.Timestamps["RUNNING"] = 1
	c.Vertices[1].Inputs[0].Ship = "FORWARD"
	c.Checkpoints.LatestCompleted.ID = 99
	c.Checkpoints.History[0].ID = 99
	assert.NotEqual(t, int64(1), orig.Timestamps["RUNNING"])
	assert.Equal(t, "HASH", orig.Vertices[1].Inputs[0].Ship)
	assert.Equal(t, int64(11), orig.Checkpoints.LatestCompleted.ID)
	assert.NotEqual(t, int64(99), orig.Checkpoints.History[0].ID)
}

// saturateSpec is the workload spec WorkloadSpec writes for
// scenarios/saturate-step.yaml.
func saturateSpec(t *testing.T) []byte {
	t.Helper()
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	r, err := Realise(s, Scale{})
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, WorkloadSpec(&b, r.Scaled.Job, "127.0.0.1:9092"))
	return []byte(b.String())
}

func TestRespecWritesTheOverriddenParallelism(t *testing.T) {
	spec := saturateSpec(t)
	require.Contains(t, string(spec), "vertex.1.name=KeyedProcess: count\nvertex.1.parallelism=2\n")
	require.Contains(t, string(spec), "job.costFactor=1\n")
	// keyed 2 → 5 on TaskManagers of 4 slots and 2 cores: each subtask
	// runs 4/2 = 2 times slower, as the simulator models it.
	out, err := respec(spec, saturatePlan, map[string]int{idSource: 2, idKeyed: 5, idSink: 1}, 2)
	require.NoError(t, err)
	got := string(out)
	assert.Contains(t, got, "vertex.0.name=Source: events -> Map\nvertex.0.parallelism=2\n")
	assert.Contains(t, got, "vertex.1.name=KeyedProcess: count\nvertex.1.parallelism=5\n")
	assert.Contains(t, got, "vertex.2.name=Sink: counts\nvertex.2.parallelism=1\n")
	assert.Contains(t, got, "job.costFactor=2\n")
	// Nothing else changes.
	diff := 0
	a, b := strings.Split(string(spec), "\n"), strings.Split(got, "\n")
	require.Len(t, b, len(a))
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	assert.Equal(t, 2, diff, "the keyed vertex's parallelism and the cost factor")

	// A vertex the spec does not have cannot be given a parallelism.
	plan := append(slices.Clone(saturatePlan), PlannedVertex{ID: strings.Repeat("ab", 16), Parallelism: 1, Name: "Sink: extra"})
	_, err = respec(spec, plan, map[string]int{plan[3].ID: 2}, 1)
	assert.ErrorContains(t, err, `no parallelism for vertex "Sink: extra"`)
}

func TestSubmitConfig(t *testing.T) {
	id := strings.Repeat("0f", 16)
	assert.Equal(t, map[string]string{"$internal.pipeline.job-id": id}, submitConfig(sim.Submission{}, id, ""))
	assert.Equal(t, map[string]string{
		"$internal.pipeline.job-id":                  id,
		"pipeline.jobvertex-parallelism-overrides":   idSource + ":3," + idKeyed + ":4",
		"execution.savepoint.path":                   "file:/sp/savepoint-1",
		"execution.savepoint.ignore-unclaimed-state": "true",
	}, submitConfig(sim.Submission{Overrides: map[string]int{idKeyed: 4, idSource: 3}, AllowNonRestoredState: true}, id, "file:/sp/savepoint-1"))
}

func TestSimError(t *testing.T) {
	for status, want := range map[int]error{404: sim.ErrNotFound, 400: sim.ErrBadRequest, 409: sim.ErrConflict} {
		err := simError(&flink.APIError{Method: "GET", Endpoint: "/x", Status: status, Messages: []string{"m"}})
		assert.ErrorIs(t, err, want)
		var ae *flink.APIError
		assert.ErrorAs(t, err, &ae, "Flink's answer is kept")
	}
	unsupported := simError(&flink.APIError{Status: 500, Messages: []string{"java.lang.UnsupportedOperationException: The resource requirements update is only expected to work with the AdaptiveScheduler."}})
	assert.ErrorIs(t, unsupported, sim.ErrUnsupported)
	other := simError(&flink.APIError{Status: 500, Messages: []string{"java.lang.NullPointerException"}})
	assert.False(t, errors.Is(other, sim.ErrUnsupported))
	plain := errors.New("connection refused")
	assert.Equal(t, plain, simError(plain))
}

// fakePool is a TaskManager pool without processes.
type fakePool struct {
	mu     sync.Mutex
	ids    []string
	slots  int
	next   int
	used   map[string]int // slots in use, as /taskmanagers reports
	killed []string
	stops  []string
}

func newFakePool(n, slots int) *fakePool {
	p := &fakePool{slots: slots, used: map[string]int{}}
	for range n {
		_ = p.AddTaskManager(context.Background())
	}
	return p
}

func (p *fakePool) TaskManagerIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids)
}

func (p *fakePool) AddTaskManager(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.ids = append(p.ids, fmt.Sprintf("tm-%d", p.next))
	return nil
}

func (p *fakePool) remove(id string) error {
	i := slices.Index(p.ids, id)
	if i < 0 {
		return fmt.Errorf("no TaskManager %q", id)
	}
	p.ids = slices.Delete(p.ids, i, i+1)
	delete(p.used, id)
	return nil
}

func (p *fakePool) StopTaskManager(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops = append(p.stops, id)
	return p.remove(id)
}

func (p *fakePool) KillTaskManager(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = append(p.killed, id)
	return p.remove(id)
}

func (p *fakePool) ReapTaskManagers() map[string]error { return nil }

func (p *fakePool) Slots() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots
}

func (p *fakePool) SetSlots(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slots = n
	return nil
}

// shape is the pool as "<TaskManagers>x<slots>".
func (p *fakePool) shape() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%dx%d", len(p.ids), p.slots)
}

// fakeJobManager is a JobManager's REST API that keeps state: the jobs
// the fake client submits, savepoint triggers (a stop finishes its job at
// once), resource requirements, and the fake pool's TaskManagers.
type fakeJobManager struct {
	mu       sync.Mutex
	pool     *fakePool
	plan     []PlannedVertex
	jobs     map[string]*fakeJob
	triggers map[string]string // trigger id → status JSON
	requests []string          // "METHOD path body"
}

type fakeJob struct {
	state    string
	par      map[string]int
	req      map[string]sim.Bounds
	restored string
}

func (f *fakeJobManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	b, _ := json.Marshal(body)
	if r.Method != http.MethodGet {
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI()+" "+string(b))
	}
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	notFound := func() {
		reply(404, map[string]any{"errors": []string{"org.apache.flink.runtime.rest.NotFoundException: not found\n\tat x"}})
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/overview":
		reply(200, map[string]any{"flink-version": "1.20.3", "flink-commit": "01e3a6d"})
	case r.URL.Path == "/jobmanager/config":
		reply(200, []map[string]string{{"key": "jobmanager.scheduler", "value": "adaptive"}, {"key": "taskmanager.numberOfTaskSlots", "value": "2"}})
	case r.URL.Path == "/taskmanagers":
		f.pool.mu.Lock()
		var tms []map[string]any
		for _, id := range f.pool.ids {
			tms = append(tms, map[string]any{"id": id, "slotsNumber": f.pool.slots, "freeSlots": f.pool.slots - f.pool.used[id]})
		}
		f.pool.mu.Unlock()
		reply(200, map[string]any{"taskmanagers": tms})
	case parts[0] == "jobs" && len(parts) >= 2:
		j := f.jobs[parts[1]]
		if j == nil {
			notFound()
			return
		}
		f.job(w, r, parts, j, body, reply, notFound)
	default:
		notFound()
	}
}

func (f *fakeJobManager) job(w http.ResponseWriter, r *http.Request, parts []string, j *fakeJob, body map[string]any, reply func(int, any), notFound func()) {
	id := parts[1]
	switch {
	case len(parts) == 2 && r.Method == http.MethodGet:
		status := "CREATED"
		if j.state == "RUNNING" || terminalState(j.state) {
			status = j.state
		}
		var vs, nodes []map[string]any
		for i, v := range f.plan {
			vs = append(vs, map[string]any{"id": v.ID, "name": v.Name, "parallelism": j.par[v.ID], "maxParallelism": v.MaxParallelism, "status": status})
			n := map[string]any{"id": v.ID, "parallelism": j.par[v.ID]}
			if i > 0 {
				n["inputs"] = []map[string]any{{"id": f.plan[i-1].ID, "ship_strategy": "HASH"}}
			}
			nodes = append(nodes, n)
		}
		reply(200, map[string]any{"jid": id, "name": "saturate-step", "state": j.state, "start-time": 1000, "end-time": -1,
			"maxParallelism": -1, "timestamps": map[string]int64{"INITIALIZING": 1000, j.state: 2000}, "vertices": vs, "plan": map[string]any{"nodes": nodes}})
	case len(parts) == 2 && r.Method == http.MethodPatch && r.URL.Query().Get("mode") == "cancel":
		j.state = "CANCELED"
		reply(202, map[string]any{})
	case len(parts) == 3 && parts[2] == "checkpoints":
		ck := map[string]any{"counts": map[string]int{"completed": 0}, "latest": map[string]any{}}
		if j.restored != "" {
			ck["latest"] = map[string]any{"restored": map[string]any{"id": 7, "is_savepoint": true, "external_path": j.restored}}
		}
		reply(200, ck)
	case len(parts) == 3 && (parts[2] == "stop" || parts[2] == "savepoints") && r.Method == http.MethodPost:
		if j.state != "RUNNING" {
			reply(409, map[string]any{"errors": []string{"job not running"}})
			return
		}
		trig := fmt.Sprintf("%032x", len(f.triggers)+1)
		target, _ := body["targetDirectory"].(string)
		if parts[2] == "savepoints" {
			target, _ = body["target-directory"].(string)
		}
		if strings.Contains(target, "savepoint-fault") {
			f.triggers[trig] = `{"status":{"id":"COMPLETED"},"operation":{"failure-cause":{"class":"java.util.concurrent.CompletionException","stack-trace":"java.util.concurrent.CompletionException: java.io.IOException: Mkdirs failed to create ` + target + `\n\tat x"}}}`
		} else {
			f.triggers[trig] = `{"status":{"id":"COMPLETED"},"operation":{"location":"file:/sp/savepoint-` + id[:6] + `"}}`
			if parts[2] == "stop" {
				j.state = "FINISHED"
			}
		}
		reply(202, map[string]any{"request-id": trig})
	case len(parts) == 4 && parts[2] == "savepoints":
		s, ok := f.triggers[parts[3]]
		if !ok {
			notFound()
			return
		}
		reply(200, json.RawMessage(s))
	case len(parts) == 3 && parts[2] == "resource-requirements" && r.Method == http.MethodGet:
		out := map[string]any{}
		for id, b := range j.req {
			out[id] = map[string]any{"parallelism": b}
		}
		reply(200, out)
	case len(parts) == 3 && parts[2] == "resource-requirements" && r.Method == http.MethodPut:
		for id, v := range body {
			p := v.(map[string]any)["parallelism"].(map[string]any)
			b := sim.Bounds{LowerBound: int(p["lowerBound"].(float64)), UpperBound: int(p["upperBound"].(float64))}
			j.req[id], j.par[id] = b, b.UpperBound
		}
		reply(200, map[string]any{})
	default:
		notFound()
	}
}

// fakeClient submits to a fakeJobManager as the workload's client does:
// the job runs at the spec file's parallelism, or fails when it restores
// from a savepoint that does not exist. gate, when not nil, holds it.
type fakeClient struct {
	jm    *fakeJobManager
	gate  chan struct{}
	mu    sync.Mutex
	calls []SubmitOptions
	specs []string
}

func (c *fakeClient) run(ctx context.Context, o SubmitOptions) (string, error) {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	spec, err := os.ReadFile(o.SpecFile)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.calls = append(c.calls, o)
	c.specs = append(c.specs, string(spec))
	c.mu.Unlock()
	sp := o.Config["execution.savepoint.path"]
	if strings.Contains(sp, "no-such-savepoint") {
		return "", fmt.Errorf("client: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory '%s'", sp)
	}
	id := o.Config["$internal.pipeline.job-id"]
	j := &fakeJob{state: "RUNNING", par: map[string]int{}, req: map[string]sim.Bounds{}, restored: sp}
	for _, v := range c.jm.plan {
		m := regexpFor(v.Name).FindStringSubmatch(string(spec))
		if m == nil {
			return "", fmt.Errorf("no parallelism for %s in %s", v.Name, o.SpecFile)
		}
		j.par[v.ID], _ = strconv.Atoi(m[1])
		j.req[v.ID] = sim.Bounds{LowerBound: 1, UpperBound: j.par[v.ID]}
	}
	c.jm.mu.Lock()
	c.jm.jobs[id] = j
	c.jm.mu.Unlock()
	return id, nil
}

func regexpFor(name string) *regexp.Regexp {
	return regexp.MustCompile(`vertex\.\d+\.name=` + regexp.QuoteMeta(name) + `\nvertex\.\d+\.parallelism=(\d+)`)
}

type fixture struct {
	d      *Deployer
	jm     *fakeJobManager
	pool   *fakePool
	client *fakeClient
	dir    string
}

func newFixture(t *testing.T, gate chan struct{}) *fixture {
	t.Helper()
	return newFixtureWith(t, gate, DeployerOptions{})
}

// newFixtureWith is newFixture with more options; the fixture's short
// intervals are set unless o has its own.
func newFixtureWith(t *testing.T, gate chan struct{}, o DeployerOptions) *fixture {
	t.Helper()
	if o.RefreshInterval == 0 {
		o.RefreshInterval = 5 * time.Millisecond
	}
	if o.TaskManagerRestart == 0 {
		o.TaskManagerRestart = 100 * time.Millisecond
	}
	if o.IdleTaskManagerTimeout == 0 {
		o.IdleTaskManagerTimeout = 50 * time.Millisecond
	}
	pool := newFakePool(1, 2)
	jm := &fakeJobManager{pool: pool, plan: saturatePlan, jobs: map[string]*fakeJob{}, triggers: map[string]string{}}
	srv := httptest.NewServer(jm)
	t.Cleanup(srv.Close)
	client := &fakeClient{jm: jm, gate: gate}
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	dir := t.TempDir()
	d, err := newDeployer(context.Background(), deployerDeps{
		restURL: srv.URL, pool: pool, runClient: client.run, job: s.Job, plan: saturatePlan,
		spec: saturateSpec(t), dir: dir, savepoints: "file://" + dir + "/flink/savepoints", version: Flink120,
	}, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return &fixture{d: d, jm: jm, pool: pool, client: client, dir: dir}
}

func (f *fixture) await(t *testing.T, what string, cond func(sim.View) bool) sim.View {
	t.Helper()
	var v sim.View
	require.Eventually(t, func() bool { v = f.d.View(); return cond(v) }, 5*time.Second, 5*time.Millisecond, what)
	return v
}

func (f *fixture) lastRequest() string {
	f.jm.mu.Lock()
	defer f.jm.mu.Unlock()
	return f.jm.requests[len(f.jm.requests)-1]
}

func TestDeployerSubmitsAsynchronouslyAndResizesThePool(t *testing.T) {
	gate := make(chan struct{})
	f := newFixture(t, gate)
	d := f.d
	v := d.View()
	assert.Equal(t, "", v.Job.ID, "nothing submitted yet")
	assert.Equal(t, "1.20", v.FlinkVersion)
	assert.Equal(t, "adaptive", v.Scheduler)
	assert.Equal(t, "01e3a6d", v.FlinkCommit)
	id, ok := d.VertexID("KeyedProcess: count")
	require.True(t, ok)
	require.Equal(t, idKeyed, id)

	job1 := strings.Repeat("a1", 16)
	require.NoError(t, d.Submit(sim.Submission{JobID: job1, Overrides: map[string]int{idKeyed: 3}, SlotsPerTaskManager: 2, TaskManagers: 2}))
	v = d.View()
	assert.Equal(t, job1, v.Job.ID)
	assert.Equal(t, "INITIALIZING", v.Job.State, "the client is held: the submission is in flight")
	assert.Equal(t, map[string]int{idSource: 2, idKeyed: 3, idSink: 1}, vertexParallelism(v))
	assert.True(t, v.Job.Vertices[0].IsSource)
	assert.Equal(t, []sim.EdgeView{{ID: idSource, Ship: "HASH"}}, v.Job.Vertices[1].Inputs)
	err := d.Submit(sim.Submission{JobID: strings.Repeat("a2", 16)})
	assert.ErrorIs(t, err, sim.ErrConflict, "one submission at a time")

	close(gate)
	v = f.await(t, "job 1 running", func(v sim.View) bool { return v.Job.ID == job1 && v.Job.State == "RUNNING" })
	// keyed 3 in one slot sharing group: 3 slots, ceil(3/2) = 2 TaskManagers.
	assert.Equal(t, "2x2", f.pool.shape())
	require.Len(t, f.client.calls, 1)
	call := f.client.calls[0]
	assert.Equal(t, map[string]string{
		"$internal.pipeline.job-id":                job1,
		"pipeline.jobvertex-parallelism-overrides": idKeyed + ":3",
	}, call.Config)
	assert.Equal(t, filepath.Join(f.dir, "job-1-"+job1+".properties"), call.SpecFile)
	assert.Contains(t, f.client.specs[0], "vertex.1.name=KeyedProcess: count\nvertex.1.parallelism=3\n")
	assert.Equal(t, "2", v.JobManagerConfig["taskmanager.numberOfTaskSlots"])

	err = d.Submit(sim.Submission{JobID: strings.Repeat("a2", 16)})
	assert.ErrorIs(t, err, sim.ErrConflict)
	assert.ErrorContains(t, err, "is RUNNING")

	// Stop with a savepoint to s3://: the cluster's own directory.
	trig, err := d.TriggerSavepoint(sim.SavepointRequest{JobID: job1, Stop: true, TargetDirectory: "s3://flink/sp", FormatType: "CANONICAL"})
	require.NoError(t, err)
	assert.Equal(t, "POST /jobs/"+job1+`/stop {"drain":false,"formatType":"CANONICAL","targetDirectory":"file://`+f.dir+`/flink/savepoints"}`, f.lastRequest())
	st, err := d.SavepointStatus(job1, trig)
	require.NoError(t, err)
	assert.Equal(t, sim.SavepointStatus{Status: "COMPLETED", Location: "file:/sp/savepoint-a1a1a1"}, st)
	_, err = d.SavepointStatus(job1, strings.Repeat("0", 32))
	assert.ErrorIs(t, err, sim.ErrNotFound)

	// Redeploy from it: keyed 4 on one TaskManager of 4 slots.
	job2 := strings.Repeat("b2", 16)
	require.NoError(t, d.Submit(sim.Submission{JobID: job2, Overrides: map[string]int{idKeyed: 4}, SlotsPerTaskManager: 4, TaskManagers: 1, SavepointPath: st.Location}))
	v = f.await(t, "job 2 running", func(v sim.View) bool { return v.Job.ID == job2 && v.Job.State == "RUNNING" })
	assert.Equal(t, "1x4", f.pool.shape(), "another slot count: every TaskManager replaced")
	assert.ElementsMatch(t, []string{"tm-1", "tm-2"}, f.pool.stops)
	assert.Equal(t, "file:/sp/savepoint-a1a1a1", f.client.calls[1].Config["execution.savepoint.path"])
	// 4 slots on 2 cores: each subtask is 4/2 = 2 times slower.
	assert.Contains(t, f.client.specs[1], "job.costFactor=2\n")
	if assert.NotNil(t, v.Job.Checkpoints.LatestRestored) {
		assert.Equal(t, "file:/sp/savepoint-a1a1a1", v.Job.Checkpoints.LatestRestored.ExternalPath)
	}
	assert.Equal(t, "4", v.JobManagerConfig["taskmanager.numberOfTaskSlots"])

	// In place: keyed 4 → 6 needs ceil(6/4) = 2 TaskManagers.
	req, err := d.ResourceRequirements(job2)
	require.NoError(t, err)
	assert.Equal(t, sim.Bounds{LowerBound: 1, UpperBound: 4}, req[idKeyed])
	req[idKeyed] = sim.Bounds{LowerBound: 1, UpperBound: 6}
	require.NoError(t, d.UpdateResourceRequirements(job2, req))
	assert.Contains(t, f.lastRequest(), `"`+idKeyed+`":{"parallelism":{"lowerBound":1,"upperBound":6}}`)
	require.Eventually(t, func() bool { return f.pool.shape() == "2x4" }, 5*time.Second, 5*time.Millisecond, "the pool grows")
	_, err = d.ResourceRequirements(job1)
	assert.ErrorIs(t, err, sim.ErrNotFound, "only the current job")

	// A TaskManager holding the job's slots dies; its replacement comes
	// TaskManagerRestart (100 ms) later.
	f.pool.mu.Lock()
	f.pool.used["tm-4"] = 2
	f.pool.mu.Unlock()
	f.await(t, "tm-4 busy", func(v sim.View) bool {
		return slices.ContainsFunc(v.TaskManagers, func(tm sim.TaskManagerView) bool { return tm.ID == "tm-4" && tm.FreeSlots == 2 })
	})
	killed := time.Now()
	d.Inject(sim.FaultTaskManagerLoss)
	assert.Equal(t, []string{"tm-4"}, f.pool.killed)
	require.Eventually(t, func() bool { return f.pool.shape() == "2x4" }, 5*time.Second, 5*time.Millisecond, "replaced")
	assert.GreaterOrEqual(t, time.Since(killed), 100*time.Millisecond)
	assert.Equal(t, []string{"tm-3", "tm-5"}, f.pool.TaskManagerIDs())

	// Down to keyed 2: one TaskManager of 4 slots is enough; the idle one
	// goes after IdleTaskManagerTimeout, the busy one stays.
	f.pool.mu.Lock()
	f.pool.used["tm-3"] = 2
	f.pool.mu.Unlock()
	f.await(t, "tm-3 busy", func(v sim.View) bool {
		return slices.ContainsFunc(v.TaskManagers, func(tm sim.TaskManagerView) bool { return tm.ID == "tm-3" && tm.FreeSlots == 2 })
	})
	req[idKeyed] = sim.Bounds{LowerBound: 1, UpperBound: 2}
	require.NoError(t, d.UpdateResourceRequirements(job2, req))
	require.Eventually(t, func() bool { return f.pool.shape() == "1x4" }, 5*time.Second, 5*time.Millisecond, "the idle TaskManager goes")
	assert.Equal(t, []string{"tm-3"}, f.pool.TaskManagerIDs())

	// A savepoint that cannot be written.
	d.Inject(sim.FaultSavepoint)
	trig, err = d.TriggerSavepoint(sim.SavepointRequest{JobID: job2})
	require.NoError(t, err)
	assert.Contains(t, f.lastRequest(), `"target-directory":"file://`+filepath.Join(f.dir, "savepoint-fault", "savepoints")+`"`)
	fi, err := os.Stat(filepath.Join(f.dir, "savepoint-fault"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the directory is below a regular file")
	st, err = d.SavepointStatus(job2, trig)
	require.NoError(t, err)
	assert.Equal(t, "COMPLETED", st.Status)
	assert.Equal(t, "java.util.concurrent.CompletionException", st.FailureClass)
	assert.Equal(t, "java.io.IOException: Mkdirs failed to create file://"+filepath.Join(f.dir, "savepoint-fault", "savepoints"), st.FailureCause)
	assert.Equal(t, "RUNNING", f.await(t, "job 2 runs on", func(sim.View) bool { return true }).Job.State)

	// Cancel, then a restart from a savepoint that does not exist.
	require.NoError(t, d.Cancel(job2))
	assert.Equal(t, "PATCH /jobs/"+job2+"?mode=cancel null", f.lastRequest())
	d.Inject(sim.FaultRestart)
	job3 := strings.Repeat("c3", 16)
	require.NoError(t, d.Submit(sim.Submission{JobID: job3, SavepointPath: "file:/sp/savepoint-bbbbbb"}))
	v = f.await(t, "job 3 failed", func(v sim.View) bool { return v.Job.ID == job3 && v.Job.State == "FAILED" })
	assert.Positive(t, v.Job.EndTime)
	assert.ErrorContains(t, d.SubmitError(), "no-such-savepoint-"+job3)
	// A failed submission is terminal: the next one may go.
	require.NoError(t, d.Submit(sim.Submission{JobID: strings.Repeat("d4", 16)}))
}

// The Flink autoscaler's standalone rescaler PUTs the requirements to
// Flink itself; with FollowRequirements the pool follows them as Flink's
// active resource manager would.
func TestDeployerFollowsRequirementsSetByAnotherClient(t *testing.T) {
	f := newFixtureWith(t, nil, DeployerOptions{FollowRequirements: true, FollowInterval: 5 * time.Millisecond})
	job := strings.Repeat("e5", 16)
	require.NoError(t, f.d.Submit(sim.Submission{JobID: job, SlotsPerTaskManager: 2, TaskManagers: 1}))
	f.await(t, "running", func(v sim.View) bool { return v.Job.ID == job && v.Job.State == "RUNNING" })
	assert.Equal(t, "1x2", f.pool.shape(), "source 2, keyed 2, sink 1 share 2 slots")

	put := func(keyed int) {
		f.jm.mu.Lock()
		defer f.jm.mu.Unlock()
		j := f.jm.jobs[job]
		j.req[idKeyed], j.par[idKeyed] = sim.Bounds{LowerBound: 1, UpperBound: keyed}, keyed
	}
	// Keyed 2 → 7: 7 slots, ceil(7/2) = 4 TaskManagers.
	put(7)
	require.Eventually(t, func() bool { return f.pool.shape() == "4x2" }, 5*time.Second, 5*time.Millisecond, "the pool grows")
	// Back to 3: ceil(3/2) = 2; the TaskManagers left idle go.
	put(3)
	require.Eventually(t, func() bool { return f.pool.shape() == "2x2" }, 5*time.Second, 5*time.Millisecond, "idle ones released")
}

func TestDeployerRefusesBadSubmissions(t *testing.T) {
	f := newFixture(t, nil)
	for name, sub := range map[string]sim.Submission{
		"parallelism over the max": {Overrides: map[string]int{idKeyed: 129}},
		"parallelism 0":            {Overrides: map[string]int{idKeyed: 0}},
		"unknown vertex":           {Overrides: map[string]int{strings.Repeat("ef", 16): 2}},
		"bad job id":               {JobID: "not-hex"},
	} {
		assert.ErrorIs(t, f.d.Submit(sub), sim.ErrBadRequest, name)
	}
	// AllowNonRestoredState lets an override of a vertex the job lacks pass.
	require.NoError(t, f.d.Submit(sim.Submission{Overrides: map[string]int{strings.Repeat("ef", 16): 2}, AllowNonRestoredState: true}))
	_, err := f.d.TriggerSavepoint(sim.SavepointRequest{JobID: strings.Repeat("99", 16)})
	assert.ErrorIs(t, err, sim.ErrNotFound)
}

func TestScenarioVertexOfAChainedSink(t *testing.T) {
	j := loadScenario(t, "scenarios/saturate-step.yaml").Job
	for jobVertex, want := range map[string]string{
		"Source: events -> Map": "Source: events -> Map",
		"Sink: counts":          "Sink: counts",
		// A Kafka sink chained into the terminal vertex lengthens its name.
		"Sink: counts -> KafkaSink: audit: Writer -> KafkaSink: audit: Committer": "Sink: counts",
		"Source: events -> Map -> KafkaSink: audit: Writer":                       "Source: events -> Map",
		"Sink: countsX":     "",
		"KafkaSink: orphan": "",
	} {
		assert.Equal(t, want, ScenarioVertex(jobVertex, j), jobVertex)
	}
	plan := slices.Clone(saturatePlan)
	plan[2].Name = "Sink: counts -> KafkaSink: audit: Writer -> KafkaSink: audit: Committer"
	d := &Deployer{plan: plan, job: j}
	id, ok := d.VertexID("Sink: counts")
	assert.True(t, ok)
	assert.Equal(t, idSink, id)
	id, ok = d.VertexID(plan[2].Name)
	assert.True(t, ok)
	assert.Equal(t, idSink, id)
	// The spec names the scenario's vertex: its parallelism is found.
	out, err := respec(saturateSpec(t), d.scenarioPlan(), map[string]int{idSink: 3}, 1)
	require.NoError(t, err)
	assert.Contains(t, string(out), "vertex.2.name=Sink: counts\nvertex.2.parallelism=3\n")
}
