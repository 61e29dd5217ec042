package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// parse reads a scenario written for a test.
func parse(t testing.TB, yaml string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse([]byte(strings.TrimSpace(yaml) + "\n"))
	require.NoError(t, err)
	return s
}

// oneVertex is a job of one source vertex (that is also its sink): 1000
// records/s per subtask, reading a topic of `partitions` partitions, so p
// readers own ⌈partitions/p⌉ partitions at most and the vertex does
// 1000 · partitions / ⌈partitions/p⌉ records/s. The load is `rate` for 1h,
// then `then` for 1h.
func oneVertex(name, slo, scheduler string, partitions, parallelism int, cpu float64, slots int, rate, then float64) string {
	return fmt.Sprintf(`
name: %s
duration: 2h
slo: {lag: %s}
job:
  flinkVersion: "1.20"
  scheduler: %s
  topics:
    - {name: s, partitions: %d}
  vertices:
    - name: "Source: s -> Sink"
      parallelism: %d
      capacity: 1000
      selectivity: 0
      topics: [s]
  taskManager: {cpu: %g, slots: %d}
  checkpoints: {interval: 60s, base: 10s}
  restart: {time: 120s, taskManagerStartup: 30s}
load:
  - topic: s
    segments:
      - {kind: constant, rate: %g, for: 1h}
      - {kind: constant, rate: %g}
`, name, slo, scheduler, partitions, parallelism, cpu, slots, rate, then)
}

// The oracle holds whole TaskManagers at its own slots per TaskManager,
// min(slots, ⌊cpu⌋): its slot-hours count them, its used slot-hours the
// bare slots.
func TestOracleCountsWholeTaskManagers(t *testing.T) {
	// 3300 records/s at 70 % needs 3300/0.7 = 4714 records/s of one
	// vertex of 1000 per subtask over 20 partitions: 4 readers own 5
	// partitions (1000·20/5 = 4000 < 4714), 5 own 4 (5000 ≥ 4714): 5
	// slots, for the whole hour (no noise). Hours: 2h at 3300 both halves.
	for _, c := range []struct {
		name              string
		cpu               float64
		slots             int
		used, held, cores float64 // per hour
	}{
		// 4 slots per TaskManager: ⌈5/4⌉ = 2 TaskManagers = 8 slots, 8 cores.
		{"4 cores, 4 slots", 4, 4, 5, 8, 8},
		// One slot per core: min(4, ⌊2⌋) = 2 slots per TaskManager,
		// ⌈5/2⌉ = 3 TaskManagers = 6 slots, 3 × 2 = 6 cores.
		{"2 cores, 4 slots", 2, 4, 5, 6, 6},
		// 2.5 cores, 2 slots: ⌈5/2⌉ = 3 TaskManagers = 6 slots, 3 × 2.5 =
		// 7.5 cores.
		{"2.5 cores, 2 slots", 2.5, 2, 5, 6, 7.5},
		// One slot per TaskManager: 5 TaskManagers, no idle slot.
		{"1 core, 1 slot", 1, 1, 5, 5, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := parse(t, oneVertex("tm", "5m", "default", 20, 5, c.cpu, c.slots, 3300, 3300))
			o, err := Oracle(s, 0.7, 0)
			require.NoError(t, err)
			assert.InDelta(t, 2*c.used, o.UsedSlotHours, 1e-9, "used slot-hours over 2h")
			assert.InDelta(t, 2*c.held, o.SlotHours, 1e-9, "whole TaskManagers' slot-hours over 2h")
			assert.InDelta(t, 2*c.cores, o.CoreHours, 1e-9, "whole TaskManagers' core-hours over 2h")
			assert.Equal(t, 5, o.Timeline[0].UsedSlots)
			assert.Equal(t, int(c.held), o.Timeline[0].Slots)
		})
	}
}

// The unavoidable time over the SLO pays one restart per change of load
// that the job's size cannot absorb, at the cheapest downtime, on top of
// the first start every run pays.
func TestOracleUnavoidableTimeOverSLO(t *testing.T) {
	// One vertex over 8 partitions: 2 subtasks do 2000 records/s, 4 do
	// 4000, at most (8 readers) 8000. The load is 1000/s for 1h, then
	// 3000/s: 4 subtasks are the smallest size sufficient for it. Every
	// tick is one second; a tick counts over the SLO when the lag at its
	// end exceeds SLO × load.
	//
	// The first start: down 120 s + 30 s = 150 s at 1000/s, the lag is
	// 1000·n after n s: over a 1-minute SLO for n = 61..150 (90 s). Then
	// 2 subtasks drain 2000 − 1000 = 1000/s: 150000 − 1000·u > 60000 for
	// u = 1..89 (89 s). 179 s in all at the start.
	const start = 179 * time.Second
	for _, c := range []struct {
		name           string
		slo, scheduler string
		parallelism    int
		over, down     time.Duration
		restarts       int
		inPlace        bool
		maxLagSeconds  float64
	}{
		{
			// At the step 2 subtasks fall behind for good: a restart, by
			// savepoint (the default scheduler): 10 s (checkpoint base, no
			// state) + 120 s + 30 s TaskManager start-up = 160 s. At
			// 3000/s the lag is 3000·n: over for n = 61..160 (100 s); then
			// 8000 − 3000 = 5000/s drain 480000 − 5000·u > 180000 for u =
			// 1..59 (59 s). 179 + 159 = 338 s.
			name: "savepoint restart", slo: "1m", scheduler: "default", parallelism: 2,
			over: start + 159*time.Second, down: 160 * time.Second, restarts: 1, maxLagSeconds: 160,
		},
		{
			// The adaptive scheduler on 1.20 rescales in place: 120 s + 30 s
			// (2 → 4 TaskManagers of one slot) = 150 s, cheaper than the
			// 160 s savepoint. Over for n = 61..150 (90 s), then 450000 −
			// 5000·u > 180000 for u = 1..53 (53 s). 179 + 143 = 322 s.
			name: "in-place restart", slo: "1m", scheduler: "adaptive", parallelism: 2,
			over: start + 143*time.Second, down: 150 * time.Second, restarts: 1, inPlace: true, maxLagSeconds: 150,
		},
		{
			// Deployed at 4 subtasks the job absorbs the step: no restart.
			// The start: over for n = 61..150 (90 s), then 4000 − 1000 =
			// 3000/s drain 150000 − 3000·u > 60000 for u = 1..29 (29 s):
			// 119 s.
			name: "the deployed size copes", slo: "1m", scheduler: "default", parallelism: 4,
			over: 119 * time.Second, maxLagSeconds: 150,
		},
		{
			// A 5-minute SLO: the 150 s start and the 160 s restart both
			// stay under it. Nothing is over, one restart all the same.
			name: "restarts shorter than the SLO", slo: "5m", scheduler: "default", parallelism: 2,
			over: 0, down: 160 * time.Second, restarts: 1, maxLagSeconds: 160,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := parse(t, oneVertex("unavoidable", c.slo, c.scheduler, 8, c.parallelism, 1, 1, 1000, 3000))
			o, err := Oracle(s, 0.7, 0)
			require.NoError(t, err)
			assert.Equal(t, c.over, o.OverSLO)
			require.Len(t, o.Unavoidable, c.restarts)
			assert.InDelta(t, c.maxLagSeconds, o.MaxLagSeconds, 1e-6)
			if c.restarts == 0 {
				return
			}
			r := o.Unavoidable[0]
			id, _ := job(t, s).VertexID("Source: s -> Sink")
			assert.Equal(t, time.Hour, r.T, "at the step")
			assert.Equal(t, c.down, r.Downtime)
			assert.Equal(t, c.inPlace, r.InPlace)
			assert.Equal(t, map[string]int{id: 4}, r.To, "the smallest size sufficient for 3000/s")
		})
	}
}

func job(t testing.TB, s *scenario.Scenario) *sim.Job {
	t.Helper()
	j, err := sim.NewJob(s.Job, sim.Options{})
	require.NoError(t, err)
	return j
}

// A restart costs what the actuator's cheapest way costs in the simulator.
func TestOracleRestartDowntime(t *testing.T) {
	const gib = 1 << 30
	// Two vertices in one slot-sharing group (slots = the widest) on
	// TaskManagers of 2 slots.
	base := sim.JobSpec{
		FlinkVersion: "1.20", Scheduler: "default",
		Vertices:    []sim.VertexSpec{{Name: "a", StateBytes: gib}, {Name: "b", StateBytes: gib}},
		TaskManager: sim.TaskManagerSpec{CPU: 2, Slots: 2},
		Checkpoints: sim.CheckpointSpec{Base: 10 * time.Second, Throughput: 100 << 20},
		Restart:     sim.RestartSpec{Time: 2 * time.Minute, TaskManagerStartup: 30 * time.Second},
	}
	groups := map[string]string{"a": "default", "b": "default"}
	two, four, three := map[string]int{"a": 2, "b": 1}, map[string]int{"a": 4, "b": 4}, map[string]int{"a": 1, "b": 3}
	for _, c := range []struct {
		name     string
		change   func(*sim.JobSpec)
		from, to map[string]int
		want     time.Duration
		inPlace  bool
	}{
		// 2 GiB of state at 100 MiB/s: a 10 s + 20.48 s savepoint, then
		// 120 s restart + 30 s TaskManager start-up: 180.48 s.
		{"savepoint", nil, two, four, 180480 * time.Millisecond, false},
		// Restoring 2 GiB at 1 GiB/s adds 2 s: 182.48 s.
		{"savepoint and restore", func(j *sim.JobSpec) { j.Restart.RestoreBytesPerSecond = gib }, two, four, 182480 * time.Millisecond, false},
		// In place: 120 s, + 30 s for 1 → 2 TaskManagers (2 → 4 slots):
		// 150 s.
		{"in place, more TaskManagers", func(j *sim.JobSpec) { j.Scheduler = "adaptive" }, two, four, 150 * time.Second, true},
		// In place to 3 slots from 2: ⌈3/2⌉ = 2 TaskManagers > 1: 150 s.
		{"in place, one more TaskManager", func(j *sim.JobSpec) { j.Scheduler = "adaptive" }, two, three, 150 * time.Second, true},
		// In place down to 2 slots from 4: no TaskManager starts: 120 s.
		{"in place, fewer TaskManagers", func(j *sim.JobSpec) { j.Scheduler = "adaptive" }, four, two, 120 * time.Second, true},
		// In place with the restore: 120 + 2 + 30 = 152 s.
		{"in place and restore", func(j *sim.JobSpec) { j.Scheduler, j.Restart.RestoreBytesPerSecond = "adaptive", gib },
			two, four, 152 * time.Second, true},
		// Flink 2 rescales in place too (its wait for a checkpoint is not
		// downtime).
		{"in place on Flink 2", func(j *sim.JobSpec) { j.Scheduler, j.FlinkVersion = "adaptive", "2.1" }, two, four, 150 * time.Second, true},
		// The actuator rescales in place from 1.18 on only: savepoint.
		{"adaptive on 1.17", func(j *sim.JobSpec) { j.Scheduler, j.FlinkVersion = "adaptive", "1.17" }, two, four, 180480 * time.Millisecond, false},
		// No state and no checkpoint base: the savepoint path is 0 + 120 s
		// + 30 s (a resubmission always starts TaskManagers) = 150 s; in
		// place down to fewer TaskManagers, 120 s.
		{"no state", func(j *sim.JobSpec) {
			j.Scheduler, j.Vertices, j.Checkpoints.Base = "adaptive", []sim.VertexSpec{{Name: "a"}, {Name: "b"}}, 0
		}, four, two, 120 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := base
			spec.Vertices = append([]sim.VertexSpec(nil), base.Vertices...)
			if c.change != nil {
				c.change(&spec)
			}
			o := &oracle{s: &scenario.Scenario{Job: spec}, groups: groups}
			d, inPlace := o.restartDowntime(c.from, c.to)
			assert.Equal(t, c.want, d)
			assert.Equal(t, c.inPlace, inPlace)
		})
	}
}

func TestOracleStep(t *testing.T) {
	s := library(t, "step-up-3x")
	o, err := Oracle(s, 0.7, 0)
	require.NoError(t, err)
	// 20k/s for 1h then 60k/s for 2h (±3 %): the source needs
	// ⌈20000/(0.7·20000)⌉ = 2 then ⌈60000/14000⌉ = 5 (aligned by the
	// busiest reader of 24 partitions: 5 readers own 5,5,5,5,4 → share
	// 5/24, capacity 20000·24/5 = 96000 ≥ 85714 ✓); dedupe 18k→54k of
	// 15k at 0.7: 2 → 6 (key groups 128: 6 subtasks own ≤ 22/128 →
	// 15000·128/22 = 87272 ≥ 77142 ✓); async 17.46k→52.4k of 8k: 4 → 10.
	// Slots = max = 10 after the step, 4 before: on TaskManagers of 2
	// slots, 2 and 5 whole.
	last := o.Timeline[len(o.Timeline)-1]
	first := o.Timeline[0]
	t.Logf("oracle: first %+v last %+v slotH %.1f overSLO %s", first.Parallelism, last.Parallelism, o.SlotHours, o.OverSLO)
	assert.Equal(t, 4, first.Slots)
	assert.Equal(t, 4, first.UsedSlots)
	assert.Zero(t, o.OverSLO, "a 2-minute restart at 60k/s is well under the 5-minute SLO")
	// One restart, at the step, in place (the adaptive scheduler on
	// 1.20): 90 s restart + 30 s for more TaskManagers.
	require.Len(t, o.Unavoidable, 1)
	assert.Equal(t, time.Hour, o.Unavoidable[0].T)
	assert.Equal(t, 2*time.Minute, o.Unavoidable[0].Downtime)
	assert.True(t, o.Unavoidable[0].InPlace)
}
