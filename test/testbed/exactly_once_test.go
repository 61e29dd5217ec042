package testbed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/test/sim"
)

// The exactly-once run's plan, in the scenario's time: saturate-step's
// 500 records/s phase (its step to 1,000 comes at 3:00, when the producer
// stops here), a savepoint restart at 0:30 with the keyed vertex 2 → 3 and
// the terminal one (with the chained Kafka sink) 1 → 2, an in-place rescale
// of the terminal vertex 2 → 4 at 1:30 (a spare TaskManager gives the
// slots), then the load until 3:00.
const (
	eoDuration  = 3 * time.Minute
	eoRestartAt = 30 * time.Second
	eoInPlaceAt = 90 * time.Second
	eoKeyed     = "KeyedProcess: count"
	eoTerminal  = "Sink: counts"
)

// TestRealExactlyOnce proves on a real broker what Flink's Kafka sink
// delivers across the two kinds of rescale: with the exactly-once
// (transactional) sink, read_committed sees every record produced exactly
// once after a savepoint restart and an in-place rescale (which restores
// the last checkpoint); with the at-least-once sink, nothing is missing and
// the duplicates, the replay of what was written after the restored
// checkpoint, are measured and logged. Output ids are the producer's
// (Producer.IDs), compared one by one (Audit).
func TestRealExactlyOnce(t *testing.T) {
	requireRealLong(t)
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) {
			for _, g := range []string{GuaranteeExactlyOnce, GuaranteeAtLeastOnce} {
				t.Run(g, func(t *testing.T) { realSinkAudit(t, v, g) })
			}
		})
	}
}

func realSinkAudit(t *testing.T, v Flink, guarantee string) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	s.Duration = eoDuration
	s.Load[0].Segments = s.Load[0].Segments[:1] // 500 records/s
	ctx, cancel := context.WithTimeout(context.Background(), eoDuration+7*time.Minute)
	defer cancel()
	tb, err := Start(ctx, Options{
		Scenario: s, Flink: v, SpareTaskManagers: 1, SkipJavaTests: true, Progress: testWriter{t},
		Sink: &SinkOptions{Topic: "audit", Guarantee: guarantee, Partitions: 2},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tb.Stop() })
	side, err := newRealSide(tb)
	require.NoError(t, err)
	defer side.close()
	// Mid-run audits count duplicates; records still in the job (or in an
	// open transaction) are missing until the end.
	iso := ReadCommitted
	if guarantee == GuaranteeAtLeastOnce {
		iso = ReadUncommitted // the same, with no transactions
	}
	audit := func(when string) AuditResult {
		r, err := tb.Audit(ctx, iso)
		require.NoError(t, err, when)
		t.Logf("audit %s: %s", when, r)
		assert.Zero(t, r.Unexpected, when)
		if guarantee == GuaranteeExactlyOnce {
			assert.Zero(t, r.Duplicates, when)
		}
		return r
	}

	jobID := tb.JobID
	sleepUntil(ctx, tb, eoRestartAt)
	before := audit("before the savepoint restart")
	jobID = savepointRestart(ctx, t, side, jobID, map[string]int{eoKeyed: 3, eoTerminal: 2})
	sleepUntil(ctx, tb, eoInPlaceAt)
	afterRestart := audit("after the savepoint restart")
	replay := inPlaceRescale(ctx, t, side, jobID, eoTerminal, 4)

	require.NoError(t, tb.Wait(ctx), "the producer")
	final, err := tb.AwaitAudit(ctx, ReadCommitted, 3*time.Minute)
	require.NoError(t, err, "%s", final)
	t.Logf("audit at the end: %s", final)
	uncommitted, err := tb.Audit(ctx, ReadUncommitted)
	require.NoError(t, err)
	t.Logf("audit at the end: %s", uncommitted)

	assert.Zero(t, final.Missing)
	assert.Zero(t, final.Unexpected)
	restartDup := afterRestart.Duplicates - before.Duplicates
	inPlaceDup := final.Duplicates - afterRestart.Duplicates
	switch guarantee {
	case GuaranteeExactlyOnce:
		assert.True(t, final.Exact(), "read_committed after both rescales: %s", final)
		t.Logf("RESULT flink %s exactly-once: %d records produced; read_committed read %d: %d duplicates, %d missing, %d unexpected; "+
			"read_uncommitted read %d: %d records of aborted transactions (in-place rescale: %s)",
			v, final.Produced, final.Read, final.Duplicates, final.Missing, final.Unexpected,
			uncommitted.Read, uncommitted.Read-final.Read, replay)
	case GuaranteeAtLeastOnce:
		assert.Equal(t, final.Read, uncommitted.Read, "no transactions: both isolations read the same")
		assert.Equal(t, final.Duplicates, uncommitted.Duplicates)
		t.Logf("RESULT flink %s at-least-once: %d records produced, %d read, %d missing, %d unexpected; "+
			"duplicates: %d after the savepoint restart, %d after the in-place rescale (%s)",
			v, final.Produced, final.Read, final.Missing, final.Unexpected, restartDup, inPlaceDup, replay)
	}
}

// specVertexName is the scenario's name of a job vertex: the job vertex of
// a terminal vertex has the sink's operators chained to its name.
func specVertexName(j sim.JobSpec, name string) string {
	best := ""
	for _, v := range j.Vertices {
		if (name == v.Name || strings.HasPrefix(name, v.Name+" -> ")) && len(v.Name) > len(best) {
			best = v.Name
		}
	}
	if best == "" {
		return name
	}
	return best
}

// savepointRestart stops the job with a savepoint and resubmits it from it
// with the vertices at the parallelism to gives them (by scenario name),
// as the Flink operator does, and returns the new job's id.
func savepointRestart(ctx context.Context, t *testing.T, side *realSide, jobID string, to map[string]int) string {
	t.Helper()
	js, err := side.job(ctx, jobID)
	require.NoError(t, err)
	var vertices []jobVertex
	want := map[string]int{}
	for _, v := range js.Vertices {
		v.Name = specVertexName(side.tb.Realised.Scaled.Job, v.Name)
		if p, ok := to[v.Name]; ok {
			v.Parallelism = p
		}
		want[v.ID] = v.Parallelism
		vertices = append(vertices, v)
	}
	start := time.Now()
	trigger, err := side.stopWithSavepoint(ctx, jobID)
	require.NoError(t, err)
	location := ""
	for location == "" {
		require.Less(t, time.Since(start), 3*time.Minute, "the savepoint did not complete")
		time.Sleep(200 * time.Millisecond)
		done, loc, err := side.savepoint(ctx, jobID, trigger)
		require.NoError(t, err)
		if done {
			location = loc
		}
	}
	t.Logf("savepoint %s in %s; resubmitting at %s", location, time.Since(start).Round(time.Millisecond), parallelismsOf(vertices))
	res := <-side.submit(ctx, location, vertices)
	require.NoError(t, res.err)
	awaitParallelism(ctx, t, side, res.jobID, want)
	t.Logf("savepoint restart done in %s: job %s", time.Since(start).Round(time.Millisecond), res.jobID)
	return res.jobID
}

// replayWindow is what an in-place rescale restored: the checkpoint, and
// how long the job ran past that checkpoint's trigger before it went down;
// at the load's rate, Records were read (and, all but those in flight,
// written by the sink) after the checkpoint, to be read again.
type replayWindow struct {
	Restored int64
	Window   time.Duration
	Records  float64
}

func (w replayWindow) String() string {
	if w.Window <= 0 {
		return fmt.Sprintf("checkpoint %d restored; when it was triggered, or when the job went down, unseen", w.Restored)
	}
	return fmt.Sprintf("≈ %.0f records: the job went down %s after checkpoint %d, which it restored, was triggered",
		w.Records, w.Window.Round(10*time.Millisecond), w.Restored)
}

// inPlaceRescale raises a vertex's upper bound through PUT
// /jobs/:id/resource-requirements and waits for the job to run at it,
// polling every 200 ms. The records after the restored checkpoint are
// estimated by time: from its trigger (the JobManager's clock, this
// machine's) to when the old attempt went down (the new execution graph's
// creation, else the first poll that no longer saw it run), at the load's
// rate.
// (The consumer group's committed offsets cannot tell: on Flink 2 the job
// restarts as soon as the restored checkpoint completes, before the
// sources commit its offsets, so the group is a checkpoint behind.)
func inPlaceRescale(ctx context.Context, t *testing.T, side *realSide, jobID, vertex string, to int) replayWindow {
	t.Helper()
	js, err := side.job(ctx, jobID)
	require.NoError(t, err)
	var id string
	old := map[string]int{}
	for _, v := range js.Vertices {
		old[v.ID] = v.Parallelism
		if specVertexName(side.tb.Realised.Scaled.Job, v.Name) == vertex {
			id = v.ID
		}
	}
	require.NotEmpty(t, id, "vertex %q", vertex)
	req, err := side.requirements(ctx, jobID)
	require.NoError(t, err)
	req[id] = flink.Bounds{LowerBound: 1, UpperBound: to}
	want := map[string]int{id: to}

	// The old attempt's checkpoints, in progress ones included: after the
	// restart, the statistics hold the new attempt's only.
	triggered := map[int64]time.Time{}
	lastCompleted := int64(-1)
	checkpoints := func() {
		cs, err := side.rest.Checkpoints(ctx, jobID)
		if err != nil {
			return
		}
		for _, c := range cs.History {
			triggered[c.ID] = time.UnixMilli(c.TriggerTimestamp)
		}
		if c := cs.Latest.Completed; c != nil {
			triggered[c.ID] = time.UnixMilli(c.TriggerTimestamp)
			lastCompleted = c.ID
		}
	}
	checkpoints() // the job may go down before the first poll
	start := time.Now()
	require.NoError(t, side.setRequirements(ctx, jobID, req))
	t.Logf("in-place rescale of %q %d → %d requested", vertex, old[id], to)
	// down is the first poll that no longer saw the old attempt run: the
	// job restarting, or already running at the new parallelism.
	var down time.Time
	for {
		require.Less(t, time.Since(start), 3*time.Minute, "the in-place rescale did not happen")
		js, jerr := side.job(ctx, jobID)
		now := time.Now()
		oldRuns := jerr == nil && js.running(old)
		if oldRuns {
			checkpoints()
		} else if down.IsZero() {
			down = now
		}
		if jerr == nil && js.running(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("in-place rescale done in %s", time.Since(start).Round(time.Millisecond))

	// The restore shows in the statistics a moment after the job runs.
	w := replayWindow{Restored: -1}
	for wait := time.Now(); time.Since(wait) < 15*time.Second; time.Sleep(500 * time.Millisecond) {
		cs, err := side.rest.Checkpoints(ctx, jobID)
		if r := cs.Latest.Restored; err == nil && r != nil && r.RestoreTimestamp >= start.UnixMilli() {
			w.Restored = r.ID
			break
		}
	}
	// REST answers are cached for up to web.refresh-interval (3 s): the
	// polls see the old attempt run for a while after it stopped. The new
	// attempt's execution graph, created once the old one's tasks were
	// cancelled, tells better.
	if d, err := side.rest.JobDetails(ctx, jobID); err == nil {
		if created := time.UnixMilli(d.Timestamps["CREATED"]); created.After(start) && created.Before(down) {
			down = created
		}
	}
	if at, ok := triggered[w.Restored]; ok && !down.IsZero() {
		w.Window = down.Sub(at)
		w.Records = w.Window.Seconds() * side.tb.Realised.PeakRate
	}
	t.Logf("restored checkpoint %d (the latest completed at the last poll before the restart: %d; trigger times seen for %d checkpoints); %s",
		w.Restored, lastCompleted, len(triggered), w)
	return w
}

// awaitParallelism waits until the job runs with every vertex at want.
func awaitParallelism(ctx context.Context, t *testing.T, side *realSide, jobID string, want map[string]int) {
	t.Helper()
	start := time.Now()
	for {
		js, err := side.job(ctx, jobID)
		if err == nil && js.running(want) {
			return
		}
		require.Less(t, time.Since(start), 3*time.Minute, "job %s does not run at the parallelism asked for", jobID)
		time.Sleep(200 * time.Millisecond)
	}
}

func parallelismsOf(vs []jobVertex) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s=%d", v.Name, v.Parallelism))
	}
	return strings.Join(out, ", ")
}
