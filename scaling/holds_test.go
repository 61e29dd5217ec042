package scaling

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad or insufficient data never produces a guess: the decision holds, says
// why, and recommends the current parallelism.
func TestDecideHoldsOnBadData(t *testing.T) {
	healthy := func() Snapshot {
		return snapshot(1,
			vtx{id: "src", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 8, lag: F(1e6), arrival: F(5000)},
			vtx{id: "sink", p: 2, busy: 900, in: 1000, out: 0, inputs: from("src", ShipRebalance)},
		)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Snapshot)
		code  ReasonCode
		match string
	}{
		{"job not running", func(s *Snapshot) { s.JobState = "RESTARTING" }, ReasonJobNotRunning, "RESTARTING"},
		{"no vertices", func(s *Snapshot) { s.Vertices = nil }, ReasonInvalidSnapshot, "no vertices"},
		{"duplicate id", func(s *Snapshot) { s.Vertices[1].ID = "src" }, ReasonInvalidSnapshot, "twice"},
		{"unknown input", func(s *Snapshot) { s.Vertices[1].Inputs[0].ID = "gone" }, ReasonInvalidSnapshot, "gone"},
		{"cycle", func(s *Snapshot) { s.Vertices[0].Inputs = from("sink", ShipRebalance) }, ReasonInvalidSnapshot, "cycle"},
		{"missing busy time", func(s *Snapshot) { s.Vertices[1].BusyTimeMsPerSecond = nil }, ReasonMissingMetrics, "busyTimeMsPerSecond"},
		{"missing max", func(s *Snapshot) { s.Vertices[1].BusyTimeMsPerSecond.Max = nil }, ReasonMissingMetrics, "busyTimeMsPerSecond.max"},
		{"NaN busy time", func(s *Snapshot) { s.Vertices[1].BusyTimeMsPerSecond.Max = F(math.NaN()) }, ReasonNonFiniteMetric, "NaN"},
		{"infinite rate", func(s *Snapshot) { s.Vertices[0].NumRecordsInPerSecond = F(math.Inf(1)) }, ReasonNonFiniteMetric, "Inf"},
		{"busy above 1000 ms/s", func(s *Snapshot) { s.Vertices[0].BusyTimeMsPerSecond.Max = F(1400) }, ReasonMetricOutOfRange, "1400"},
		{"negative rate", func(s *Snapshot) { s.Vertices[1].NumRecordsInPerSecond = F(-1) }, ReasonMetricOutOfRange, "-1"},
		{"avg above max", func(s *Snapshot) { s.Vertices[1].BusyTimeMsPerSecond.Avg = F(950) }, ReasonMetricOutOfRange, "exceeds"},
		{"Kafka source without lag (pendingRecords not registered yet)", func(s *Snapshot) { s.Vertices[0].LagRecords = nil }, ReasonMissingMetrics, "lagRecords"},
		{"no max parallelism", func(s *Snapshot) { s.Vertices[1].MaxParallelism = 0 }, ReasonMissingMetrics, "maxParallelism"},
		{"parallelism zero", func(s *Snapshot) { s.Vertices[1].Parallelism = 0 }, ReasonInvalidSnapshot, "parallelism"},
		{"too few samples", func(s *Snapshot) { s.Samples = 2 }, ReasonTooFewSamples, "2 samples"},
		{"window too short after a restart", func(s *Snapshot) { s.WindowStart = t0.Add(-time.Minute) }, ReasonWindowTooShort, "1m0s"},
		{"stale window", func(s *Snapshot) { s.WindowEnd = t0.Add(-10 * time.Minute); s.WindowStart = t0.Add(-15 * time.Minute) }, ReasonStaleSnapshot, "10m0s old"},
		{"window from the future", func(s *Snapshot) { s.WindowEnd = t0.Add(time.Hour) }, ReasonInvalidSnapshot, "future"},
		{"warm-up after a restart", func(s *Snapshot) { s.RunningSince = t0.Add(-6 * time.Minute) }, ReasonWarmingUp, "warm-up"},
		{"no TaskManager shape", func(s *Snapshot) { s.TaskManagers.CPU = 0 }, ReasonMissingMetrics, "cpu"},
		{"no TaskManagers", func(s *Snapshot) { s.TaskManagers.Replicas = 0 }, ReasonMissingMetrics, "replicas ≥ 1"},
		{"partition rates on a source without partitions", func(s *Snapshot) {
			s.Vertices[0].Partitions = 0
			s.Vertices[0].PartitionRates = []PartitionRate{{Topic: "t", Partition: 0, ArrivalRatePerSecond: 1}}
		}, ReasonInvalidSnapshot, "partitionRates"},
		{"partition rates do not match", func(s *Snapshot) {
			s.Vertices[0].PartitionRates = []PartitionRate{{Topic: "t", Partition: 0, ArrivalRatePerSecond: 1}}
		}, ReasonInvalidSnapshot, "partitionRates"},
		{"NaN checkpoint duration", func(s *Snapshot) { s.Checkpoints = &Checkpoints{IntervalMs: 1000, DurationMs: Float(math.NaN())} }, ReasonNonFiniteMetric, "checkpoint"},
		{"no capacity measurable anywhere", func(s *Snapshot) {
			for i := range s.Vertices {
				s.Vertices[i].BusyTimeMsPerSecond = &Stat{Avg: F(0), Max: F(0)}
			}
			s.Vertices[0].ArrivalRatePerSecond = F(1000)
		}, ReasonCapacityUnmeasured, "nothing to size on"},
		{"source busy but reading nothing", func(s *Snapshot) {
			s.Vertices[0].NumRecordsInPerSecond, s.Vertices[1].NumRecordsInPerSecond = F(0), F(0)
		}, ReasonNoThroughput, "reads nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy()
			tc.edit(&s)
			d := Decide(s, testPolicy(), History{}, t0)
			require.Equal(t, ActionHold, d.Action, d.Summary)
			assert.False(t, d.Sized)
			assert.Contains(t, codes(d.Reasons), tc.code, d.Summary)
			assert.True(t, strings.Contains(d.Summary, tc.match), "summary %q should mention %q", d.Summary, tc.match)
			for _, v := range d.Vertices {
				assert.Equal(t, v.Current, v.Recommended, v.ID)
			}
		})
	}
	// The healthy snapshot itself scales: the holds above come from the edits.
	assert.Equal(t, ActionScale, Decide(healthy(), testPolicy(), History{}, t0).Action)
}

func TestDecideRejectsInvalidPolicy(t *testing.T) {
	p := testPolicy()
	p.Utilization = Utilization{Target: 0.9, Min: 0.5, Max: 0.8}
	p.MinParallelism = 0
	d := Decide(snapshot(1, vtx{id: "a", p: 1, busy: 500, in: 10, out: 10}), p, History{}, t0)
	require.Equal(t, ActionHold, d.Action)
	assert.Equal(t, []ReasonCode{ReasonInvalidPolicy}, codes(d.Reasons))
	assert.Contains(t, d.Summary, "min ≤ target ≤ max")
	assert.Contains(t, d.Summary, "minParallelism")
}

// Timing gates hold an otherwise good scale-up but still report what it
// would do, so a dry-run report shows it.
func TestDecideTimingGates(t *testing.T) {
	s := snapshot(1, vtx{id: "src", p: 2, busy: 1000, in: 1000, out: 1000, partitions: 24, lag: F(0), arrival: F(2000)})
	// At p=2 the busiest reader owns 12 of 24 partitions (share 1/2) and reads
	// 500 rec/s fully busy. Capacity at q is 500/share(q); 2000/0.7 = 2857 is
	// needed: q=5 (5 partitions, share 5/24) gives 2400, q=6 (4/24) 3000 → 6.
	for _, tc := range []struct {
		name string
		h    History
		code ReasonCode
	}{
		{"rescale in progress", History{Rescales: []RescaleRecord{{DecidedAt: t0.Add(-time.Minute), Outcome: OutcomeInProgress}}}, ReasonRescaleInProgress},
		{"cooldown after the last rescale", History{Rescales: []RescaleRecord{{DecidedAt: t0.Add(-10 * time.Minute), CompletedAt: t0.Add(-2 * time.Minute), Outcome: OutcomeSucceeded}}}, ReasonCooldown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(s, testPolicy(), tc.h, t0)
			assert.Equal(t, ActionHold, d.Action)
			assert.Contains(t, codes(d.Reasons), tc.code)
			assert.Equal(t, 6, vertexByID(d, "src").Recommended)
		})
	}
	// Cooldown over (5 minutes after completion): act.
	h := History{Rescales: []RescaleRecord{{DecidedAt: t0.Add(-20 * time.Minute), CompletedAt: t0.Add(-6 * time.Minute), Outcome: OutcomeSucceeded}}}
	assert.Equal(t, ActionScale, Decide(s, testPolicy(), h, t0).Action)
}
