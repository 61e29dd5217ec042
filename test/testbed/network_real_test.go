package testbed

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// updateNetworkBuffers rewrites testdata/network-buffers.json from a real
// run of TestRealNetworkBuffers.
var updateNetworkBuffers = flag.Bool("update", false, "TestRealNetworkBuffers: rewrite testdata/network-buffers.json")

const networkBuffersFixture = "testdata/network-buffers.json"

// NetworkBuffers is testdata/network-buffers.json: the network buffers real
// Flink reserves per TaskManager for scenarios/network-buffers.yaml at
// several parallelisms and slot layouts, and the deployments it refused
// for want of them. Unit tests of the buffer arithmetic check against it.
type NetworkBuffers struct {
	// Recorded is the date of the run; Scenario the job's scenario file.
	Recorded, Scenario string
	// Edges are the job's edges, "from -> to: SHIP".
	Edges []string
	Runs  []NetworkBuffersRun
}

// NetworkBuffersRun is one cluster: a Flink line and a network memory
// configuration, and the jobs deployed on it one after the other.
type NetworkBuffersRun struct {
	Flink string
	// NetworkConfig is the taskmanager.memory.network.* options set (none:
	// Flink's defaults for taskmanager.memory.process.size).
	NetworkConfig map[string]string `json:",omitempty"`
	// TaskManagerProcessMemory is taskmanager.memory.process.size.
	TaskManagerProcessMemory string
	// SegmentSize is the bytes of a network buffer (TotalMemory /
	// TotalMemorySegments).
	SegmentSize int64
	// ShuffleMetrics are the TaskManager metric ids with "Shuffle" or
	// "Network" in them, as GET /taskmanagers/:id/metrics lists them.
	ShuffleMetrics []string
	Cases          []NetworkBuffersCase
}

// NetworkBuffersCase is one deployment.
type NetworkBuffersCase struct {
	SlotsPerTaskManager, TaskManagers int
	// Parallelism by scenario vertex name.
	Parallelism map[string]int
	// Deployed: every vertex ran; otherwise the job failed with
	// "Insufficient number of network buffers" (Error, Required, Available
	// and TotalBuffers from its message).
	Deployed bool
	// Error is the exception's line.
	Error                             string `json:",omitempty"`
	Required, Available, TotalBuffers int    `json:",omitempty"`
	// PerTaskManager are the figures of each TaskManager, once the job ran
	// steadily (three readings 2 s apart agree); for a refused deployment,
	// one reading while Flink restarts it, which is any moment of the loop.
	PerTaskManager []NetworkBuffersTM
}

// NetworkBuffersTM is one TaskManager's network memory.
type NetworkBuffersTM struct {
	ID string
	// NetworkMemory is memoryConfiguration.networkMemory of GET
	// /taskmanagers/:id, in bytes.
	NetworkMemory int64
	// Status.Shuffle.Netty.TotalMemorySegments, AvailableMemorySegments
	// and UsedMemorySegments.
	TotalSegments, AvailableSegments, UsedSegments int64
	// Subtasks is how many subtasks of each scenario vertex run there.
	Subtasks map[string]int `json:",omitempty"`
}

// TestNetworkBuffersFixture checks the committed fixture is whole and
// consistent (every go test); TestRealNetworkBuffers writes it.
func TestNetworkBuffersFixture(t *testing.T) {
	b, err := os.ReadFile(networkBuffersFixture)
	require.NoError(t, err)
	var f NetworkBuffers
	require.NoError(t, json.Unmarshal(b, &f))
	versions := map[string]bool{}
	failed := 0
	for _, r := range f.Runs {
		versions[r.Flink] = true
		assert.Positive(t, r.SegmentSize, r.Flink)
		for _, c := range r.Cases {
			if !c.Deployed {
				failed++
				assert.Greater(t, c.Required, c.Available, "%s %v: a refusal requires more than is available", r.Flink, c.Parallelism)
				continue
			}
			for _, tm := range c.PerTaskManager {
				assert.Equal(t, tm.TotalSegments, tm.AvailableSegments+tm.UsedSegments, "%s %v %s", r.Flink, c.Parallelism, tm.ID)
				assert.Equal(t, tm.NetworkMemory, tm.TotalSegments*r.SegmentSize, "%s %s: network memory is whole segments", r.Flink, tm.ID)
			}
		}
	}
	for _, v := range Versions {
		assert.True(t, versions[string(v)], "no run of Flink %s", v)
	}
	assert.Positive(t, failed, "no refused deployment")
}

// The vertices of scenarios/network-buffers.yaml.
const (
	nbSource = "Source: events -> Map"
	nbKeyed  = "KeyedProcess: count"
	nbSink   = "Sink: counts"
)

// nbCase is a deployment to measure: slots per TaskManager, TaskManagers
// (at least; the Deployer adds what the slots need) and the parallelism of
// source, keyed vertex and sink.
type nbCase struct{ slots, tms, src, keyed, sink int }

// The default network memory: slots 2 first, then 4 (a slot change
// restarts every TaskManager).
var nbDefaultCases = []nbCase{
	{2, 1, 1, 1, 1}, {2, 1, 2, 2, 1}, {2, 2, 2, 4, 1}, {2, 2, 4, 4, 2}, {2, 4, 4, 8, 1},
	{4, 1, 2, 4, 1}, {4, 2, 4, 8, 1},
}

// nbSmallNetwork is the TaskManagers' network memory for the refusal, and
// nbSmallCases the deployments tried on it, growing until one is refused.
var (
	nbSmallNetwork = map[string]string{"taskmanager.memory.network.min": "1mb", "taskmanager.memory.network.max": "1mb"}
	nbSmallCases   = []nbCase{
		{4, 2, 1, 1, 1}, {4, 2, 2, 2, 1}, {4, 2, 2, 4, 1}, {4, 2, 4, 4, 1}, {4, 2, 4, 8, 1}, {4, 2, 8, 8, 1},
	}
)

var insufficientBuffers = regexp.MustCompile(`Insufficient number of network buffers: required (\d+), but only (\d+) available\. The total number of network buffers is currently set to (\d+) of (\d+) bytes each`)

// TestRealNetworkBuffers deploys scenarios/network-buffers.yaml on real
// Flink at the parallelisms and slot layouts of nbDefaultCases and reads
// each TaskManager's network segments (total, available, used) once the
// job runs steadily; then, on TaskManagers with 1 MiB of network memory,
// deploys nbSmallCases until Flink refuses one with "Insufficient number
// of network buffers". About 3 minutes per Flink line; it runs with
// FLINKSCALE_REAL=1 and FLINKSCALE_REAL_LONG=1 (FLINKSCALE_TESTBED_FLINK
// picks one line), and with -update it rewrites
// testdata/network-buffers.json.
func TestRealNetworkBuffers(t *testing.T) {
	requireRealLong(t)
	s := loadScenario(t, "scenarios/network-buffers.yaml")
	out := NetworkBuffers{
		Recorded: time.Now().UTC().Format("2006-01-02"), Scenario: "test/testbed/scenarios/network-buffers.yaml",
		Edges: []string{nbSource + " -> " + nbKeyed + ": HASH", nbKeyed + " -> " + nbSink + ": REBALANCE"},
	}
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) {
			out.Runs = append(out.Runs, measureNetworkBuffers(t, s, v, nil, nbDefaultCases, false))
			small := measureNetworkBuffers(t, s, v, nbSmallNetwork, nbSmallCases, true)
			out.Runs = append(out.Runs, small)
			i := slices.IndexFunc(small.Cases, func(c NetworkBuffersCase) bool { return !c.Deployed })
			require.Positive(t, i, "want a deployment that runs on %v, then one refused", nbSmallNetwork)
		})
	}
	for _, r := range out.Runs {
		for _, c := range r.Cases {
			line := fmt.Sprintf("flink %s %v slots=%d src=%d keyed=%d sink=%d deployed=%v", r.Flink, r.NetworkConfig, c.SlotsPerTaskManager,
				c.Parallelism[nbSource], c.Parallelism[nbKeyed], c.Parallelism[nbSink], c.Deployed)
			if !c.Deployed {
				line += fmt.Sprintf(" required=%d available=%d total=%d", c.Required, c.Available, c.TotalBuffers)
			}
			for _, tm := range c.PerTaskManager {
				line += fmt.Sprintf(" | %s total=%d avail=%d used=%d %v", tm.ID, tm.TotalSegments, tm.AvailableSegments, tm.UsedSegments, tm.Subtasks)
			}
			t.Log(line)
		}
	}
	if *updateNetworkBuffers && !t.Failed() {
		b, err := json.MarshalIndent(out, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(networkBuffersFixture, append(b, '\n'), 0o644))
		t.Logf("wrote %s", networkBuffersFixture)
	}
}

// measureNetworkBuffers starts a testbed of Flink v with the network
// configuration netCfg and deploys the cases one after the other; with
// untilRefused it stops after the first refused one.
func measureNetworkBuffers(t *testing.T, s *scenario.Scenario, v Flink, netCfg map[string]string, cases []nbCase, untilRefused bool) NetworkBuffersRun {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	// metrics.fetcher.update-interval: the REST API serves metrics a
	// fetch old, 10 s by default.
	cfg := map[string]string{"slot.idle.timeout": "5000", "metrics.fetcher.update-interval": "1000"}
	for k, val := range netCfg {
		cfg[k] = val
	}
	tb, err := Start(ctx, Options{Scenario: s, Flink: v, SkipJavaTests: true, NoJob: true, Progress: testWriter{t}, Config: cfg})
	require.NoError(t, err)
	defer func() { assert.NoError(t, tb.Stop()) }()
	d, err := NewDeployer(ctx, tb, DeployerOptions{IdleTaskManagerTimeout: 5 * time.Second, TaskManagerRestart: -1})
	require.NoError(t, err)
	defer func() { assert.NoError(t, d.Close()) }()
	ids := map[string]string{}
	for _, name := range []string{nbSource, nbKeyed, nbSink} {
		id, ok := d.VertexID(name)
		require.True(t, ok, name)
		ids[name] = id
	}
	run := NetworkBuffersRun{Flink: string(v), NetworkConfig: netCfg, TaskManagerProcessMemory: DefaultTaskManagerMemory}
	prev := ""
	for _, c := range cases {
		if prev != "" {
			require.NoError(t, d.Cancel(prev))
		}
		job := randomHex()
		par := map[string]int{nbSource: c.src, nbKeyed: c.keyed, nbSink: c.sink}
		require.NoError(t, d.Submit(sim.Submission{JobID: job, SlotsPerTaskManager: c.slots, TaskManagers: c.tms,
			Overrides: map[string]int{ids[nbSource]: c.src, ids[nbKeyed]: c.keyed, ids[nbSink]: c.sink}}))
		prev = job
		nc := NetworkBuffersCase{SlotsPerTaskManager: c.slots, Parallelism: par}
		// Running, or refused.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			require.False(t, time.Now().After(deadline), "job %s %v: neither ran nor was refused in 2 minutes", job, par)
			time.Sleep(time.Second)
			if err := d.SubmitError(); err != nil && d.View().Job.ID == job && d.View().Job.State == "FAILED" {
				t.Fatalf("submitting %v: %v", par, err)
			}
			if r := refusal(ctx, tb.Flink, job); r != nil {
				nc.Error = r.Message
				nc.Required, nc.Available, nc.TotalBuffers = r.Required, r.Available, r.Total
				break
			}
			vw := d.View()
			if vw.Job.ID == job && Steady(&vw.Job) && parallelismOf(vw, ids[nbKeyed]) == c.keyed {
				nc.Deployed = true
				break
			}
		}
		if nc.Deployed {
			// The REST API's metrics are a fetch old (1 s here): wait
			// until three readings 2 s apart agree, at most 40 s.
			var last []NetworkBuffersTM
			same := 0
			for i := 0; i < 20 && same < 2; i++ {
				time.Sleep(2 * time.Second)
				cur := readNetworkTMs(t, ctx, tb.Flink)
				if slices.EqualFunc(cur, last, func(a, b NetworkBuffersTM) bool {
					return a.ID == b.ID && a.TotalSegments == b.TotalSegments && a.UsedSegments == b.UsedSegments
				}) {
					same++
				} else {
					same = 0
				}
				last = cur
			}
			if same < 2 {
				t.Logf("%v: the segments did not settle in 40 s; the last reading is kept", par)
			}
			nc.PerTaskManager = last
		} else {
			time.Sleep(2 * time.Second)
			nc.PerTaskManager = readNetworkTMs(t, ctx, tb.Flink)
		}
		placeSubtasks(ctx, tb.Flink, job, ids, nc.PerTaskManager)
		nc.TaskManagers = len(nc.PerTaskManager)
		if run.ShuffleMetrics == nil && len(nc.PerTaskManager) > 0 {
			run.ShuffleMetrics, run.SegmentSize = shuffleMetrics(t, ctx, tb.Flink, nc.PerTaskManager[0].ID)
		}
		t.Logf("%v on %d×%d slots: deployed %v %s %+v", par, nc.TaskManagers, c.slots, nc.Deployed, nc.Error, nc.PerTaskManager)
		run.Cases = append(run.Cases, nc)
		if !nc.Deployed && untilRefused {
			break
		}
	}
	if prev != "" {
		_ = d.Cancel(prev)
	}
	return run
}

// refusal is the job's refusal for want of network buffers: the first
// line of the exception with "Insufficient number of network buffers",
// and its four numbers (GET /jobs/:id/exceptions,
// exceptionHistory, which 1.20 and 2.2 both serve); nil if none.
func refusal(ctx context.Context, c *Cluster, job string) *nbRefusal {
	var ex struct {
		History struct {
			Entries []struct {
				Stacktrace string `json:"stacktrace"`
			} `json:"entries"`
		} `json:"exceptionHistory"`
	}
	if err := c.getJSON(ctx, "/jobs/"+job+"/exceptions", &ex); err != nil {
		return nil
	}
	for _, e := range ex.History.Entries {
		m := insufficientBuffers.FindStringSubmatch(e.Stacktrace)
		if m == nil {
			continue
		}
		r := &nbRefusal{}
		for line := range strings.Lines(e.Stacktrace) {
			if strings.Contains(line, "Insufficient number of network buffers") {
				r.Message = strings.TrimSpace(line)
				break
			}
		}
		r.Required, _ = strconv.Atoi(m[1])
		r.Available, _ = strconv.Atoi(m[2])
		r.Total, _ = strconv.Atoi(m[3])
		return r
	}
	return nil
}

type nbRefusal struct {
	Message                    string
	Required, Available, Total int
}

// readNetworkTMs reads every TaskManager's network memory and segments.
func readNetworkTMs(t *testing.T, ctx context.Context, c *Cluster) []NetworkBuffersTM {
	t.Helper()
	ids, err := c.taskManagerIDs(ctx)
	require.NoError(t, err)
	sort := slices.Clone(ids)
	slices.Sort(sort)
	var out []NetworkBuffersTM
	for _, id := range sort {
		var tm struct {
			Memory struct {
				NetworkMemory int64 `json:"networkMemory"`
			} `json:"memoryConfiguration"`
		}
		require.NoError(t, c.getJSON(ctx, "/taskmanagers/"+id, &tm))
		var ms []struct{ ID, Value string }
		require.NoError(t, c.getJSON(ctx, "/taskmanagers/"+id+"/metrics?get=Status.Shuffle.Netty.TotalMemorySegments,Status.Shuffle.Netty.AvailableMemorySegments,Status.Shuffle.Netty.UsedMemorySegments", &ms))
		r := NetworkBuffersTM{ID: id, NetworkMemory: tm.Memory.NetworkMemory}
		for _, m := range ms {
			n, _ := strconv.ParseInt(m.Value, 10, 64)
			switch m.ID {
			case "Status.Shuffle.Netty.TotalMemorySegments":
				r.TotalSegments = n
			case "Status.Shuffle.Netty.AvailableMemorySegments":
				r.AvailableSegments = n
			case "Status.Shuffle.Netty.UsedMemorySegments":
				r.UsedSegments = n
			}
		}
		require.Len(t, ms, 3, "TaskManager %s serves the three segment metrics", id)
		out = append(out, r)
	}
	return out
}

// placeSubtasks counts the subtasks of each vertex on each TaskManager
// (GET /jobs/:id/vertices/:vid/taskmanagers).
func placeSubtasks(ctx context.Context, c *Cluster, job string, ids map[string]string, tms []NetworkBuffersTM) {
	for name, vid := range ids {
		var v struct {
			TaskManagers []struct {
				ID     string         `json:"taskmanager-id"`
				Counts map[string]int `json:"status-counts"`
			} `json:"taskmanagers"`
		}
		if c.getJSON(ctx, "/jobs/"+job+"/vertices/"+vid+"/taskmanagers", &v) != nil {
			continue
		}
		for _, x := range v.TaskManagers {
			for i := range tms {
				if tms[i].ID != x.ID {
					continue
				}
				n := 0
				for _, k := range x.Counts {
					n += k
				}
				if n > 0 {
					if tms[i].Subtasks == nil {
						tms[i].Subtasks = map[string]int{}
					}
					tms[i].Subtasks[name] = n
				}
			}
		}
	}
}

// shuffleMetrics lists a TaskManager's metric ids about the shuffle and
// the network, and derives the segment size.
func shuffleMetrics(t *testing.T, ctx context.Context, c *Cluster, id string) ([]string, int64) {
	var all []struct{ ID string }
	require.NoError(t, c.getJSON(ctx, "/taskmanagers/"+id+"/metrics", &all))
	var names []string
	for _, m := range all {
		if strings.Contains(m.ID, "Shuffle") || strings.Contains(m.ID, "Network") {
			names = append(names, m.ID)
		}
	}
	slices.Sort(names)
	var ms []struct{ ID, Value string }
	require.NoError(t, c.getJSON(ctx, "/taskmanagers/"+id+"/metrics?get=Status.Shuffle.Netty.TotalMemory,Status.Shuffle.Netty.TotalMemorySegments", &ms))
	var bytes, segs int64
	for _, m := range ms {
		n, _ := strconv.ParseInt(m.Value, 10, 64)
		if m.ID == "Status.Shuffle.Netty.TotalMemory" {
			bytes = n
		} else {
			segs = n
		}
	}
	if segs == 0 {
		return names, 0
	}
	return names, bytes / segs
}
