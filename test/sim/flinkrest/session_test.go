package flinkrest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// poolJob is a source feeding a keyed sink, both at parallelism p (max
// parallelism 8, one slot-sharing group: p slots), on pool.
func poolJob(t *testing.T, pool *sim.Pool, name string, p int, seed uint64, mode string) *sim.Job {
	t.Helper()
	spec := sim.JobSpec{
		Name: name, FlinkVersion: "1.20", Scheduler: "adaptive", SchedulerMode: mode, ConsumerGroup: name,
		Topics: []sim.TopicSpec{{Name: name + "-in", Partitions: 8}},
		Vertices: []sim.VertexSpec{
			{Name: "Source: in", Parallelism: p, MaxParallelism: 8, Capacity: 5000, Selectivity: 1, Topics: []string{name + "-in"}},
			{Name: "KeyedAgg -> Sink", Parallelism: p, MaxParallelism: 8, Capacity: 4000, Selectivity: 0,
				Inputs: []sim.EdgeSpec{{From: "Source: in", Ship: "HASH"}}},
		},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Interval: 30 * time.Second, Base: time.Second},
		Restart:     sim.RestartSpec{Time: 10 * time.Second},
	}
	j, err := sim.NewJob(spec, sim.Options{Start: time.Unix(0, 0), Seed: seed})
	require.NoError(t, err)
	j.UsePool(pool)
	require.NoError(t, j.Submit(sim.Submission{}))
	return j
}

// requirementsBody is a PUT /jobs/:jobid/resource-requirements body giving
// every vertex of v the bounds [1, upper].
func requirementsBody(v sim.View, upper int) string {
	var parts []string
	for _, vx := range v.Job.Vertices {
		parts = append(parts, fmt.Sprintf(`%q:{"parallelism":{"lowerBound":1,"upperBound":%d}}`, vx.ID, upper))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// A session cluster of 3 TaskManagers × 2 slots running job A (4 slots:
// TM 1 and TM 2) and job B (1 slot: TM 3's first): one REST API lists both
// jobs and shows the TaskManagers once, 6 − 4 − 1 = 1 slot free.
func TestSessionClusterServesEveryJob(t *testing.T) {
	pool := sim.NewPool(3, 2, 20*time.Second)
	a := poolJob(t, pool, "a", 4, 1, "")
	b := poolJob(t, pool, "b", 1, 2, "")
	session := sim.Session{Jobs: []*sim.Job{a, b}}
	require.NoError(t, session.Advance(time.Minute))
	h := NewSessionHandler(session.Clusters())
	aID, bID := a.View().Job.ID, b.View().Job.ID
	require.NotEqual(t, aID, bID)

	for _, tc := range []struct {
		target string
		want   string // JSON the answer contains (a subset check on objects)
	}{
		{"/overview", `{"taskmanagers":3,"slots-total":6,"slots-available":1,"jobs-running":2,"jobs-finished":0}`},
		{"/jobs", `{"jobs":[{"id":"` + aID + `","status":"RUNNING"},{"id":"` + bID + `","status":"RUNNING"}]}`},
		{"/jobs/" + aID + "/status", `{"status":"RUNNING"}`},
		{"/v1/jobs/" + strings.ToUpper(bID) + "/status", `{"status":"RUNNING"}`},
		{"/jobmanager/metrics?get=numRunningJobs,taskSlotsAvailable,taskSlotsTotal",
			`[{"id":"numRunningJobs","value":"2"},{"id":"taskSlotsAvailable","value":"1"},{"id":"taskSlotsTotal","value":"6"}]`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			got := get(t, h, tc.target)
			var want, have any
			require.NoError(t, json.Unmarshal([]byte(tc.want), &want))
			require.NoError(t, json.Unmarshal(got, &have))
			if w, isObj := want.(map[string]any); isObj && !strings.HasPrefix(tc.target, "/jobs") {
				h := have.(map[string]any)
				for k := range h {
					if _, kept := w[k]; !kept {
						delete(h, k)
					}
				}
			}
			assert.Equal(t, want, have, string(got))
		})
	}

	// /jobs/overview: A's 4 + 4 subtasks, B's 1 + 1.
	var overview struct {
		Jobs []struct {
			JID   string         `json:"jid"`
			Name  string         `json:"name"`
			Tasks map[string]int `json:"tasks"`
		} `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal(get(t, h, "/jobs/overview"), &overview))
	require.Len(t, overview.Jobs, 2)
	assert.Equal(t, []any{aID, "a", 8}, []any{overview.Jobs[0].JID, overview.Jobs[0].Name, overview.Jobs[0].Tasks["total"]})
	assert.Equal(t, []any{bID, "b", 2}, []any{overview.Jobs[1].JID, overview.Jobs[1].Name, overview.Jobs[1].Tasks["total"]})

	// Each job's routes reach its own job.
	assert.Equal(t, "b", obj(t, get(t, h, "/jobs/"+bID))["name"])
	assert.Equal(t, "a", obj(t, get(t, h, "/jobs/"+aID+"/config"))["name"])
	code, body := do(t, h, http.MethodGet, "/jobs/00000000000000000000000000000000", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"errors":["Job 00000000000000000000000000000000 not found"]}`, string(body))
	code, _ = do(t, h, http.MethodGet, "/jobs/not-a-job-id", "")
	assert.Equal(t, http.StatusBadRequest, code)

	// /taskmanagers: the pool's, free slots 0 + 0 + 1; each slot in use
	// names the job holding it.
	var tms struct {
		TaskManagers []struct {
			ID        string `json:"id"`
			FreeSlots int    `json:"freeSlots"`
		} `json:"taskmanagers"`
	}
	require.NoError(t, json.Unmarshal(get(t, h, "/taskmanagers"), &tms))
	require.Len(t, tms.TaskManagers, 3)
	var free []int
	for _, tm := range tms.TaskManagers {
		free = append(free, tm.FreeSlots)
	}
	assert.Equal(t, []int{0, 0, 1}, free)
	for i, want := range [][]string{{aID, aID}, {aID, aID}, {bID}} {
		var details struct {
			AllocatedSlots []struct {
				JobID string `json:"jobId"`
			} `json:"allocatedSlots"`
		}
		require.NoError(t, json.Unmarshal(get(t, h, "/taskmanagers/"+tms.TaskManagers[i].ID), &details))
		var got []string
		for _, s := range details.AllocatedSlots {
			got = append(got, s.JobID)
		}
		assert.Equal(t, want, got, tms.TaskManagers[i].ID)
	}

	// B asks for 4 in place: it gets the free slot plus its own, 2, at
	// once (it restarts on them): no slot is free, in every job's view.
	code, body = do(t, h, http.MethodPut, "/jobs/"+bID+"/resource-requirements", requirementsBody(b.View(), 4))
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, json.Number("0"), obj(t, get(t, h, "/overview"))["slots-available"])
	assert.Equal(t, "RESTARTING", obj(t, get(t, h, "/jobs/"+bID+"/status"))["status"])
	require.NoError(t, session.Advance(10*time.Second))
	assert.Equal(t, 2, b.View().Job.JobParallelism)
}

// A reactive job's JobManager says so, and refuses a resource-requirements
// update with Flink's UnsupportedOperationException.
func TestReactiveModeOverREST(t *testing.T) {
	pool := sim.NewPool(2, 2, 0)
	j := poolJob(t, pool, "r", 1, 1, sim.SchedulerModeReactive)
	require.NoError(t, j.Advance(time.Minute))
	h := NewHandler(j)
	v := j.View()
	assert.Equal(t, 4, v.Job.JobParallelism, "every slot: min(max parallelism 8, 2 × 2)")

	conf := map[string]string{}
	var entries []configEntry
	require.NoError(t, json.Unmarshal(get(t, h, "/jobmanager/config"), &entries))
	for _, e := range entries {
		conf[e.Key] = e.Value
	}
	assert.Equal(t, "reactive", conf["scheduler-mode"])
	assert.Equal(t, "adaptive", conf["jobmanager.scheduler"])

	code, body := do(t, h, http.MethodPut, "/jobs/"+v.Job.ID+"/resource-requirements", requirementsBody(v, 2))
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Contains(t, string(body), `java.util.concurrent.CompletionException: java.lang.UnsupportedOperationException: Cannot change the parallelism of a job running in reactive mode.`)
	assert.JSONEq(t, `{"`+v.Job.Vertices[0].ID+`":{"parallelism":{"lowerBound":1,"upperBound":8}},"`+v.Job.Vertices[1].ID+`":{"parallelism":{"lowerBound":1,"upperBound":8}}}`,
		string(get(t, h, "/jobs/"+v.Job.ID+"/resource-requirements")), "reactive mode's upper bounds: the max parallelism")
}
