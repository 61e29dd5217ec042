package metrics

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func f(x float64) *float64 { return &x }

// flinkAt is a sample of a source → sink job at second s: the source has read
// 1000·s records (1000 rec/s) over partitions orders.v1-0 and -1, the sink
// is busy 600 ms/s.
func flinkAt(s int, jobID string) FlinkSample {
	return FlinkSample{
		At: t0.Add(time.Duration(s) * time.Second), JobID: jobID, JobName: "orders", State: "RUNNING", RunningSince: t0.Add(-time.Hour),
		Vertices: []VertexSample{
			{ID: "src", Name: "Source: orders", Parallelism: 2, MaxParallelism: 128,
				BusyTimeMsPerSecond: &Agg{Avg: 200, Max: 250}, BackPressuredTimeMsPerSecond: &Agg{Avg: 0, Max: 0},
				NumRecordsIn: f(1000 * float64(s)), NumRecordsOut: f(1000 * float64(s)), NumRecordsInPerSecond: f(990), NumRecordsOutPerSecond: f(990),
				PendingRecords: f(4000),
				Partitions:     []PartitionOwner{{Topic: "orders_v1", Partition: 0, Subtask: 0}, {Topic: "orders_v1", Partition: 1, Subtask: 1}}},
			{ID: "sink", Name: "Sink", Parallelism: 2, MaxParallelism: 128, Inputs: []scaling.Input{{ID: "src", ShipStrategy: "HASH"}},
				BusyTimeMsPerSecond: &Agg{Avg: 550, Max: 600}, BackPressuredTimeMsPerSecond: &Agg{Avg: 0, Max: 0},
				NumRecordsIn: f(1000 * float64(s)), NumRecordsOut: f(0), NumRecordsInPerSecond: f(1000), NumRecordsOutPerSecond: f(0)},
		},
		Checkpoints:  &CheckpointSample{Interval: time.Minute, Timeout: 10 * time.Minute, LastDuration: 2 * time.Second, Completed: s / 60, Failed: 0},
		TaskManagers: &TaskManagerSample{CPU: 2, Slots: 2, Replicas: 1},
	}
}

// kafkaAt: 1200 rec/s arrive (800 on partition 0, 400 on 1); the group has
// committed 1000·s − 3000 records in all.
func kafkaAt(s int) KafkaSample {
	return KafkaSample{At: t0.Add(time.Duration(s) * time.Second), Group: "orders", GroupState: "Empty",
		Partitions: []KafkaPartition{
			{Topic: "orders.v1", Partition: 0, End: int64(800 * s), Committed: int64(600*s - 2000)},
			{Topic: "orders.v1", Partition: 1, End: int64(400 * s), Committed: int64(400*s - 1000)},
		}}
}

func TestWindowAssemblesTheSnapshot(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 100; s <= 400; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
		w.AddKafka(kafkaAt(s))
	}
	snap, missing := w.Snapshot()
	assert.Empty(t, missing)
	assert.Equal(t, 11, snap.Samples)
	assert.Equal(t, t0.Add(100*time.Second), snap.WindowStart)
	src := snap.Vertices[0]
	// Counter growth: 1000 rec/s exactly (the meter's 990 is not used).
	assert.InDelta(t, 1000, float64(*src.NumRecordsInPerSecond), 1e-9)
	assert.Equal(t, 2, src.Partitions)
	// Arrival: 800 + 400 = 1200 rec/s from end-offset growth.
	assert.InDelta(t, 1200, float64(*src.ArrivalRatePerSecond), 1e-9)
	// The lag is Flink's pendingRecords (steady: no growth), not the
	// brokers' end − committed (TestWindowLagSource).
	assert.InDelta(t, 4000, float64(*src.LagRecords), 1e-9)
	assert.Equal(t, scaling.LagFromPendingRecords, src.LagSource)
	assert.InDelta(t, 0, float64(*src.LagRatePerSecond), 1e-9)
	require.Len(t, src.PartitionRates, 2)
	assert.Equal(t, 1, *src.PartitionRates[1].Subtask)
	// Per partition the lag is the brokers' at s=400: 320000 − 238000.
	assert.InDelta(t, 82000, float64(*src.PartitionRates[0].LagRecords), 1e-9)
	assert.InDelta(t, 400, float64(src.PartitionRates[1].ArrivalRatePerSecond), 1e-9)
	assert.InDelta(t, 600, float64(*snap.Vertices[1].BusyTimeMsPerSecond.Max), 1e-9)
	assert.Equal(t, 2000.0, float64(snap.Checkpoints.DurationMs))
	assert.Equal(t, 1, snap.TaskManagers.Replicas)

	// The assembled snapshot is what the model reads.
	d := scaling.Decide(snap, scaling.DefaultPolicy(), scaling.History{}, snap.WindowEnd)
	assert.True(t, d.Sized, d.Summary)
}

// A sample whose vertex metrics were read from a store refreshed earlier
// than its time (FlinkSample.MetricsAge: a poll that came back late after
// priming Flink's metric fetcher) has its counters dated when they were
// current: the rates between samples stay exact, the window's bounds stay
// the samples' times. The counters here are 1000·s at each sample's
// MetricsAt, the last one read 20 s after its priming.
func TestWindowDatesCountersByMetricsAge(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 100; s <= 400; s += 30 {
		age := 1 // the usual wait after priming
		if s == 400 {
			age = 20
		}
		x := flinkAt(s-age, "j1")
		x.At, x.MetricsAge = t0.Add(time.Duration(s)*time.Second), time.Duration(age)*time.Second
		w.AddFlink(x)
	}
	snap, missing := w.Snapshot()
	assert.Empty(t, missing)
	assert.Equal(t, t0.Add(100*time.Second), snap.WindowStart)
	assert.Equal(t, t0.Add(400*time.Second), snap.WindowEnd)
	// (380·1000 − 99·1000) / (380 − 99) s = 1000 rec/s; dated by At it
	// would be 281,000 / 300 s = 936.7 rec/s.
	assert.InDelta(t, 1000, float64(*snap.Vertices[0].NumRecordsInPerSecond), 1e-9)
	assert.InDelta(t, 1000, float64(*snap.Vertices[1].NumRecordsInPerSecond), 1e-9)
	// The series' processed rate between the last two samples as well:
	// (380 − 369)·1000 / 11 s.
	pts := w.Series()
	require.NotEmpty(t, pts)
	last := pts[len(pts)-1]
	require.NotNil(t, last.ProcessedRate)
	assert.InDelta(t, 1000, *last.ProcessedRate, 1e-9)
}

func TestWindowResetsOnRestartAndTrims(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 600; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
	}
	snap, _ := w.Snapshot()
	assert.Equal(t, t0.Add(300*time.Second), snap.WindowStart, "samples older than 5 minutes dropped")
	// A resubmission: new job id.
	w.AddFlink(flinkAt(630, "j2"))
	snap, _ = w.Snapshot()
	assert.Equal(t, 1, snap.Samples)
	assert.Equal(t, 1, w.Resets())
	// A failover: same job, new RUNNING timestamp.
	s := flinkAt(660, "j2")
	s.RunningSince = t0.Add(650 * time.Second)
	w.AddFlink(s)
	assert.Equal(t, 2, w.Resets())
}

func TestWindowReportsWhatIsMissing(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 300; s += 30 {
		fs := flinkAt(s, "j1")
		fs.Vertices[1].BusyTimeMsPerSecond = nil
		fs.Vertices[0].PendingRecords = nil
		fs.Checkpoints = nil
		w.AddFlink(fs)
		ks := kafkaAt(s)
		ks.Partitions[1].Committed = -1 // never committed
		w.AddKafka(ks)
	}
	snap, missing := w.Snapshot()
	assert.Contains(t, missing, "sink: busyTimeMsPerSecond in no sample of the window")
	assert.Contains(t, missing, "src: partition orders.v1-1 has no committed offset for the group")
	assert.Contains(t, missing, "src: lag unknown: no pendingRecords and no committed offsets")
	assert.Contains(t, missing, "checkpoint statistics: not collected")
	assert.Nil(t, snap.Vertices[1].BusyTimeMsPerSecond)
	// Without pendingRecords and a committed offset for every partition the
	// lag is unknown: never zero.
	assert.Nil(t, snap.Vertices[0].LagRecords)
	d := scaling.Decide(snap, scaling.DefaultPolicy(), scaling.History{}, snap.WindowEnd)
	assert.Equal(t, scaling.ActionHold, d.Action)
	assert.Contains(t, d.Summary, "busyTimeMsPerSecond is missing")
}

func TestWindowKeepsALatestNaN(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 300; s += 30 {
		fs := flinkAt(s, "j1")
		if s == 300 {
			fs.Vertices[1].BusyTimeMsPerSecond = &Agg{Avg: math.NaN(), Max: math.NaN()}
		}
		w.AddFlink(fs)
	}
	snap, _ := w.Snapshot()
	assert.True(t, math.IsNaN(float64(*snap.Vertices[1].BusyTimeMsPerSecond.Max)))
}

func TestArrivalTrendAndQuantiles(t *testing.T) {
	w := NewWindow(10 * time.Minute)
	end := int64(0)
	for s := 0; s <= 300; s += 30 {
		// The rate grows by 60 rec/s every 30 s: 120 rec/s per minute.
		end += int64(30 * (1000 + 2*s))
		w.AddKafka(KafkaSample{At: t0.Add(time.Duration(s) * time.Second), Partitions: []KafkaPartition{{Topic: "t", End: end, Committed: 0}}})
		fs := flinkAt(s, "j1")
		fs.Vertices[1].BusyTimeMsPerSecond.Max = float64(500 + s)
		w.AddFlink(fs)
	}
	trend, ok := w.ArrivalTrend(map[string]bool{"t": true})
	require.True(t, ok)
	assert.InDelta(t, 120, trend, 1e-6)
	p50, ok := w.BusyQuantile("sink", 0.5)
	require.True(t, ok)
	assert.Equal(t, 650.0, p50) // 500, 530, …, 800: the empirical median is 650
}

func TestWindowFlagsStaleBrokerSamples(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	w.AddKafka(kafkaAt(0))
	w.AddKafka(kafkaAt(30))
	for s := 0; s <= 300; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
	}
	_, missing := w.Snapshot()
	assert.Contains(t, missing, "kafka: the newest brokers' sample is 4m30s older than the newest Flink sample")
}

func TestWindowReportsRebalancesAndBrokerGaps(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 300; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
		ks := kafkaAt(s)
		if s == 300 {
			ks.GroupState = "PreparingRebalance"
			ks.Missing = []string{"orders.v2: UNKNOWN_TOPIC_OR_PARTITION"}
		}
		w.AddKafka(ks)
	}
	_, missing := w.Snapshot()
	assert.Contains(t, missing, "kafka: group orders is in PreparingRebalance; its committed offsets may be stale")
	assert.Contains(t, missing, "kafka: orders.v2: UNKNOWN_TOPIC_OR_PARTITION")
}

// Without any brokers' sample (a policy with no Kafka trigger) a source's
// lag is Flink's own pendingRecords and nothing is reported missing: the
// model falls back to the records read for the demand.
func TestWindowWithoutBrokersUsesFlinksLag(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 120; s += 30 {
		w.AddFlink(flinkAt(s, "job"))
	}
	snap, missing := w.Snapshot()
	assert.Empty(t, missing)
	src := snap.Vertices[0]
	require.NotNil(t, src.LagRecords)
	assert.InDelta(t, 4000, float64(*src.LagRecords), 1e-9, "pendingRecords")
	assert.Equal(t, 2, src.Partitions)
	assert.Nil(t, src.ArrivalRatePerSecond, "no brokers, no arrival rate")
}

// When no trigger's brokers answer, the controller drops the brokers'
// samples: the snapshot is then Flink's alone (pendingRecords for the lag,
// no arrival rate, nothing missing), with no lag or rate left over from
// before the outage; the next brokers' samples start afresh.
func TestWindowDropKafkaFallsBackToFlinksLag(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 0; s <= 300; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
		w.AddKafka(kafkaAt(s))
	}
	snap, missing := w.Snapshot()
	require.Empty(t, missing)
	require.NotNil(t, snap.Vertices[0].ArrivalRatePerSecond)
	assert.InDelta(t, 4000, float64(*snap.Vertices[0].LagRecords), 1e-9, "Flink's pendingRecords")

	w.DropKafka()
	assert.Zero(t, w.KafkaSamples())
	w.AddFlink(flinkAt(330, "j1"))
	snap, missing = w.Snapshot()
	assert.Empty(t, missing)
	src := snap.Vertices[0]
	assert.InDelta(t, 4000, float64(*src.LagRecords), 1e-9, "Flink's pendingRecords")
	assert.Equal(t, scaling.LagFromPendingRecords, src.LagSource)
	assert.Nil(t, src.ArrivalRatePerSecond, "no rate from the brokers' samples before the outage")
	require.NotNil(t, src.LagRatePerSecond, "Flink's own: pendingRecords over the window")
	assert.InDelta(t, 0, float64(*src.LagRatePerSecond), 1e-9)
	assert.Equal(t, 2, src.Partitions)

	// The brokers answer again: one sample gives no rate yet, and says so.
	w.AddKafka(kafkaAt(360))
	w.AddFlink(flinkAt(360, "j1"))
	_, missing = w.Snapshot()
	assert.Contains(t, missing, "src: arrival rate unknown: fewer than two brokers' samples of every partition")

	assert.True(t, w.SetBrokersUnavailable(true))
	assert.False(t, w.SetBrokersUnavailable(true), "unchanged")
	assert.True(t, w.BrokersUnavailable())
	assert.True(t, w.SetBrokersUnavailable(false))
}

// A group without a committed offset for any of a source's partitions
// takes its lag from Flink's pendingRecords, keeps the brokers' arrival
// rates, and lists nothing missing; without pendingRecords it is a gap.
func TestWindowGroupWithoutCommitsUsesFlinksLag(t *testing.T) {
	for _, pending := range []bool{true, false} {
		w := NewWindow(5 * time.Minute)
		for s := 0; s <= 300; s += 30 {
			fs := flinkAt(s, "j1")
			if !pending {
				fs.Vertices[0].PendingRecords = nil
			}
			w.AddFlink(fs)
			ks := kafkaAt(s)
			ks.GroupState = "Dead"
			for i := range ks.Partitions {
				ks.Partitions[i].Committed = -1
			}
			w.AddKafka(ks)
		}
		snap, missing := w.Snapshot()
		src := snap.Vertices[0]
		require.NotNil(t, src.ArrivalRatePerSecond)
		assert.InDelta(t, 1200, float64(*src.ArrivalRatePerSecond), 1e-9, "end offsets")
		if pending {
			assert.Empty(t, missing)
			assert.InDelta(t, 4000, float64(*src.LagRecords), 1e-9, "pendingRecords")
			continue
		}
		assert.Nil(t, src.LagRecords)
		assert.Contains(t, missing, "src: partition orders.v1-0 has no committed offset for the group")
		assert.Contains(t, missing, "src: lag unknown: no pendingRecords and no committed offsets")
	}
}

// TestWindowLagSource: a source's lag is Flink's pendingRecords when the
// newest sample has it (the readers' own backlog), growing as it grew over
// the window; only without it the brokers' end − committed offsets, which
// trail the readers by up to a checkpoint interval, growing as they grew.
// Without either the lag is missing, never zero. Samples every 30 s from
// s=100 to 400: 1200 rec/s arrive; the committed lag is 23000 at s=100 and
// 83000 at s=400 (200 rec/s more); pendingRecords, when reported, is
// 4000 + 10·(s − 100): 7000 at s=400, 10 rec/s more.
func TestWindowLagSource(t *testing.T) {
	grow := func(s int) *float64 { return f(4000 + 10*float64(s-100)) }
	notRegistered := "src: pendingRecords: not registered yet"
	for _, tc := range []struct {
		name         string
		pending      func(s int) *float64 // nil: never reported
		flinkMissing []string             // the Flink samples' Missing
		uncommitted  bool                 // partition 1 never committed
		noBrokers    bool                 // no Kafka trigger
		lag, rate    *float64             // nil: absent
		source       string
		missing      []string
	}{
		{name: "pendingRecords: the readers' backlog, not the committed offsets",
			pending: grow, lag: f(7000), rate: f(10), source: scaling.LagFromPendingRecords},
		{name: "no pendingRecords: the brokers' committed offsets; what the collectors say of pendingRecords costs nothing",
			flinkMissing: []string{notRegistered, "src: pendingRecords: 1 of 2 subtasks reported", "src: numRecordsOut: not reported"},
			lag:          f(83000), rate: f(200), source: scaling.LagFromCommittedOffsets,
			missing: []string{"flink: src: numRecordsOut: not reported"}},
		{name: "pendingRecords registered within the window: its growth since its first report",
			pending: func(s int) *float64 {
				if s < 250 {
					return nil
				}
				return grow(s)
			},
			lag: f(7000), rate: f(10), source: scaling.LagFromPendingRecords},
		{name: "pendingRecords gone from the newest sample: the committed offsets, not an older pendingRecords",
			pending: func(s int) *float64 {
				if s == 400 {
					return nil
				}
				return grow(s)
			},
			lag: f(83000), rate: f(200), source: scaling.LagFromCommittedOffsets},
		{name: "pendingRecords, a partition never committed: no gap",
			pending: grow, uncommitted: true, lag: f(7000), rate: f(10), source: scaling.LagFromPendingRecords},
		{name: "neither: the lag is missing, never zero",
			uncommitted: true, flinkMissing: []string{notRegistered},
			missing: []string{"flink: " + notRegistered, "src: lag unknown: no pendingRecords and no committed offsets",
				"src: partition orders.v1-1 has no committed offset for the group"}},
		{name: "no brokers: pendingRecords",
			noBrokers: true, pending: grow, lag: f(7000), rate: f(10), source: scaling.LagFromPendingRecords},
		{name: "no brokers, no pendingRecords: missing (the model holds on a Kafka source without lag)",
			noBrokers: true, flinkMissing: []string{notRegistered}, missing: []string{"flink: " + notRegistered}},
		{name: "a NaN pendingRecords in the newest sample: kept for the model to refuse, no growth",
			pending: func(s int) *float64 {
				if s == 400 {
					return f(math.NaN())
				}
				return grow(s)
			},
			lag: f(math.NaN()), source: scaling.LagFromPendingRecords},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(5 * time.Minute)
			for s := 100; s <= 400; s += 30 {
				fs := flinkAt(s, "j1")
				fs.Vertices[0].PendingRecords = nil
				if tc.pending != nil {
					fs.Vertices[0].PendingRecords = tc.pending(s)
				}
				fs.Missing = tc.flinkMissing
				w.AddFlink(fs)
				if tc.noBrokers {
					continue
				}
				ks := kafkaAt(s)
				if tc.uncommitted {
					ks.Partitions[1].Committed = -1
				}
				w.AddKafka(ks)
			}
			snap, missing := w.Snapshot()
			assert.Equal(t, tc.missing, missing)
			src := snap.Vertices[0]
			assert.Equal(t, tc.source, src.LagSource)
			for _, x := range []struct {
				what string
				got  *scaling.Float
				want *float64
			}{{"lagRecords", src.LagRecords, tc.lag}, {"lagRatePerSecond", src.LagRatePerSecond, tc.rate}} {
				if x.want == nil {
					assert.Nil(t, x.got, x.what)
					continue
				}
				require.NotNil(t, x.got, x.what)
				if math.IsNaN(*x.want) {
					assert.True(t, math.IsNaN(float64(*x.got)), "%s: %v", x.what, *x.got)
					continue
				}
				assert.InDelta(t, *x.want, float64(*x.got), 1e-9, x.what)
			}
			if !tc.noBrokers {
				require.NotNil(t, src.ArrivalRatePerSecond, "the brokers' arrival rates, whatever the lag's source")
				assert.InDelta(t, 1200, float64(*src.ArrivalRatePerSecond), 1e-9)
			}
			if len(missing) == 0 && !tc.noBrokers && tc.lag != nil && !math.IsNaN(*tc.lag) {
				d := scaling.Decide(snap, scaling.DefaultPolicy(), scaling.History{}, snap.WindowEnd)
				assert.True(t, d.Sized, d.Summary)
			}
		})
	}
}

// The slots Flink reports are the newest sample's; absent or implausible
// there, they are 0 (unknown), never a gap and never an older sample's.
func TestWindowSlots(t *testing.T) {
	for _, tc := range []struct {
		name         string
		older, newer *SlotsSample
		total, avail int
	}{
		{"the newest sample's", &SlotsSample{Total: 4, Available: 0}, &SlotsSample{Total: 6, Available: 1}, 6, 1},
		{"not in the newest sample: unknown", &SlotsSample{Total: 4, Available: 0}, nil, 0, 0},
		{"implausible: unknown", nil, &SlotsSample{Total: 2, Available: 3}, 0, 0},
		{"never reported", nil, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(5 * time.Minute)
			for s := 0; s <= 300; s += 30 {
				fs := flinkAt(s, "j1")
				fs.Slots = tc.older
				if s == 300 {
					fs.Slots = tc.newer
				}
				w.AddFlink(fs)
				w.AddKafka(kafkaAt(s))
			}
			snap, missing := w.Snapshot()
			assert.Empty(t, missing)
			assert.Equal(t, tc.total, snap.TaskManagers.SlotsTotal)
			assert.Equal(t, tc.avail, snap.TaskManagers.SlotsAvailable)
			assert.Equal(t, 1, snap.TaskManagers.Replicas, "the TaskManagers' shape stands")
		})
	}
}

func TestNewSlotsSample(t *testing.T) {
	assert.Equal(t, &SlotsSample{Total: 8, Available: 2}, NewSlotsSample(8, 2))
	assert.Equal(t, &SlotsSample{Total: 8, Available: 8}, NewSlotsSample(8, 8))
	assert.Equal(t, &SlotsSample{Total: 8, Available: 0}, NewSlotsSample(8, math.Copysign(0, -1)))
	for _, c := range [][2]float64{{0, 0}, {-8, 2}, {8, -1}, {8, 9}, {8.5, 2}, {8, 0.5}, {math.NaN(), 1}, {8, math.NaN()}, {math.Inf(1), 1}, {1e300, 1}} {
		assert.Nil(t, NewSlotsSample(c[0], c[1]), "%v", c)
	}
}

// Whether the slot-sharing groups are unknown is the newest sample's say.
func TestWindowSlotSharingUnknown(t *testing.T) {
	for _, unknown := range []bool{true, false} {
		w := NewWindow(5 * time.Minute)
		for s := 0; s <= 300; s += 30 {
			fs := flinkAt(s, "j1")
			fs.SlotSharingUnknown = unknown != (s < 300)
			w.AddFlink(fs)
		}
		snap, _ := w.Snapshot()
		assert.Equal(t, unknown, snap.SlotSharingUnknown)
	}
}

// The TaskManagers' memory over the window: the newest model and limits,
// the largest use seen, the average of the averages; a poll that read no
// memory figures changes nothing.
func TestWindowMemory(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	const gib = 1 << 30
	for i, heap := range []float64{0.4, 0.7, 0.5} {
		s := flinkAt(100+30*i, "j1")
		s.TaskManagers.Memory = &MemorySample{
			Process: 4 * gib, Flink: 3 * gib, Heap: gib, Managed: gib, Network: gib / 8, Metaspace: gib / 4,
			FrameworkHeap: gib / 8, TaskHeap: gib - gib/8, FrameworkOffHeap: gib / 8, TaskOffHeap: int64(i) << 20, Overhead: 3 * gib / 4,
			HeapUsedMax: f(heap * gib), HeapUsedAvg: f(heap * gib / 2), HeapMax: f(gib),
			GCTimeMsPerSecondMax: f(float64(10 * (i + 1))), NetworkSegmentsTotal: f(4096), NetworkSegmentsUsedMax: f(float64(100 * (i + 1))),
		}
		w.AddFlink(s)
	}
	w.AddFlink(flinkAt(190, "j1")) // no memory read at this poll
	snap, _ := w.Snapshot()
	m := snap.TaskManagers.Memory
	require.NotNil(t, m)
	assert.Equal(t, scaling.Float(4*gib), m.ProcessBytes)
	assert.Equal(t, scaling.Float(gib), m.HeapBytes)
	// The rest of the model, from the newest poll that reported it.
	assert.Equal(t, scaling.Float(gib/8), m.FrameworkHeapBytes)
	assert.Equal(t, scaling.Float(gib-gib/8), m.TaskHeapBytes)
	assert.Equal(t, scaling.Float(gib/8), m.FrameworkOffHeapBytes)
	assert.Equal(t, scaling.Float(2<<20), m.TaskOffHeapBytes, "the third poll's")
	assert.Equal(t, scaling.Float(3*gib/4), m.OverheadBytes)
	require.NotNil(t, m.HeapUsedBytes)
	// Max: the 0.7 GiB poll; avg: (0.2 + 0.35 + 0.25) / 3 GiB.
	assert.InDelta(t, 0.7*gib, float64(*m.HeapUsedBytes.Max), 1)
	assert.InDelta(t, 0.8/3*gib, float64(*m.HeapUsedBytes.Avg), 1)
	// GC: (10 + 20 + 30) / 3 = 20 ms/s on average, 30 at worst.
	assert.InDelta(t, 20, float64(*m.GCTimeMsPerSecond.Avg), 1e-9)
	assert.InDelta(t, 30, float64(*m.GCTimeMsPerSecond.Max), 1e-9)
	assert.InDelta(t, 4096, float64(*m.NetworkSegmentsTotal), 1e-9)
	assert.InDelta(t, 300, float64(*m.NetworkSegmentsUsed), 1e-9)
	assert.Nil(t, m.MetaspaceUsedBytes, "not reported")

	w = NewWindow(5 * time.Minute)
	w.AddFlink(flinkAt(100, "j1"))
	snap, _ = w.Snapshot()
	assert.Nil(t, snap.TaskManagers.Memory)
}

// The Flink version (as major.minor) and the state backend come from the
// newest Flink sample.
func TestWindowFlinkVersionAndStateBackend(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	a := flinkAt(100, "j1")
	a.FlinkVersion, a.StateBackend = "1.20.1", "rocksdb"
	w.AddFlink(a)
	snap, _ := w.Snapshot()
	assert.Equal(t, "1.20", snap.FlinkVersion)
	assert.Equal(t, "rocksdb", snap.StateBackend)
	b := flinkAt(130, "j1")
	b.FlinkVersion, b.StateBackend = "2.1-SNAPSHOT", ""
	w.AddFlink(b)
	snap, _ = w.Snapshot()
	assert.Equal(t, "2.1", snap.FlinkVersion)
	assert.Empty(t, snap.StateBackend, "the newest sample did not say")
}

func TestFlinkMinorVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.20.1": "1.20", "2.1-SNAPSHOT": "2.1", "1.18.0": "1.18", "2.2": "2.2",
		"v1_20": "1.20", "v2_1": "2.1", "v1_17": "1.17", " v2_0 ": "2.0",
		"": "", "v1": "", "1": "", "x.20": "", "1.x": "", "1a.2": "",
	} {
		assert.Equal(t, want, FlinkMinorVersion(in), "%q", in)
	}
}

func TestStateBackendType(t *testing.T) {
	for in, want := range map[string]string{
		"HashMapStateBackend": "hashmap", "EmbeddedRocksDBStateBackend": "rocksdb", "ForStStateBackend": "forst",
		"RocksDBStateBackend": "rocksdb", "MemoryStateBackend": "hashmap", "FsStateBackend": "hashmap",
		"hashmap": "hashmap", "rocksdb": "rocksdb", "ForSt": "forst", "jobmanager": "hashmap", "filesystem": "hashmap",
		"org.apache.flink.contrib.streaming.state.EmbeddedRocksDBStateBackendFactory": "rocksdb",
		"org.apache.flink.runtime.state.hashmap.HashMapStateBackendFactory":           "hashmap",
		"": "", "  ": "", "ChangelogStateBackend": "", "com.example.MyBackendFactory": "",
	} {
		assert.Equal(t, want, StateBackendType(in), "%q", in)
	}
}

// The configuration's state.backend.type wins over the legacy
// state.backend; blank values do not count.
func TestConfiguredStateBackend(t *testing.T) {
	for _, c := range []struct {
		conf map[string]string
		want string
	}{
		{map[string]string{"state.backend.type": "rocksdb", "state.backend": "hashmap"}, "rocksdb"},
		{map[string]string{"state.backend.type": " ", "state.backend": "filesystem"}, "hashmap"},
		{map[string]string{"state.backend": "forst"}, "forst"},
		{map[string]string{}, ""},
		{nil, ""},
	} {
		assert.Equal(t, c.want, ConfiguredStateBackend(c.conf), "%v", c.conf)
	}
}

// A window keeps every sample but the newest compact (no partition owners,
// no missing list, strings shared): its snapshots and series are what a
// window that keeps every sample whole gives, poll after poll, through a
// restart of the job, and the caller's samples are not modified.
func TestWindowCompactionChangesNothingRead(t *testing.T) {
	compact, whole := NewWindow(5*time.Minute), NewWindow(5*time.Minute)
	whole.keepWhole = true
	var given []FlinkSample
	for i := 0; i < 30; i++ {
		job := "a"
		if i >= 18 {
			job = "b" // a restart empties both
		}
		s := flinkAt(30*i, job)
		s.Missing = []string{fmt.Sprintf("poll %d: something", i)}
		if i%4 == 3 {
			s.Vertices[0].Partitions = nil // not reported at this poll
		}
		given = append(given, s)
		compact.AddFlink(s)
		whole.AddFlink(s)
		if i%3 != 1 {
			compact.AddKafka(kafkaAt(30 * i))
			whole.AddKafka(kafkaAt(30 * i))
		}
		gotSnap, gotMissing := compact.Snapshot()
		wantSnap, wantMissing := whole.Snapshot()
		require.Equal(t, wantSnap, gotSnap, "poll %d", i)
		require.Equal(t, wantMissing, gotMissing, "poll %d", i)
		require.Equal(t, whole.Series(), compact.Series(), "poll %d", i)
		q1, ok1 := compact.BusyQuantile("sink", 0.9)
		q2, ok2 := whole.BusyQuantile("sink", 0.9)
		require.Equal(t, q2, q1)
		require.Equal(t, ok2, ok1)
	}
	require.Len(t, compact.flink, len(whole.flink))
	require.Len(t, compact.packed, len(compact.flink))
	for i, s := range compact.flink[:len(compact.flink)-1] {
		assert.Nil(t, s.Missing)
		assert.Nil(t, s.Vertices, "older samples keep their vertices packed")
		assert.Len(t, compact.packed[i], len(whole.flink[i].Vertices))
		for _, v := range compact.vertices(i) {
			assert.Nil(t, v.Partitions, "older samples keep no partition owners")
		}
	}
	assert.NotNil(t, compact.flink[len(compact.flink)-1].Vertices, "the newest sample is kept as given")
	assert.Len(t, compact.heads, len(given[len(given)-1].Vertices), "the samples of one attempt share their vertices' identities")
	for i, g := range given {
		if i%4 != 3 {
			assert.NotEmpty(t, g.Vertices[0].Partitions, "poll %d: the caller's sample is as it gave it", i)
		}
	}
	assert.NotEmpty(t, given[len(given)-2].Missing)
}

// A collector that names a vertex differently at every poll of one
// attempt (nothing real does) leaves the window's vertex identities
// bounded: those no kept sample names are dropped. What the window reads
// stays what a window of whole samples reads.
func TestWindowHeadsStayBounded(t *testing.T) {
	compact, whole := NewWindow(5*time.Minute), NewWindow(5*time.Minute)
	whole.keepWhole = true
	for i := 0; i < 60; i++ {
		s := flinkAt(30*i, "a")
		s.Vertices[1].Name = fmt.Sprintf("Sink %d", i)
		compact.AddFlink(s)
		whole.AddFlink(s)
		require.LessOrEqual(t, len(compact.heads), 2*len(s.Vertices)+16+len(s.Vertices), "poll %d", i)
		gotSnap, gotMissing := compact.Snapshot()
		wantSnap, wantMissing := whole.Snapshot()
		require.Equal(t, wantSnap, gotSnap, "poll %d", i)
		require.Equal(t, wantMissing, gotMissing, "poll %d", i)
		require.Equal(t, whole.Series(), compact.Series(), "poll %d", i)
	}
	// 11 samples in the window: 10 packed, each with its own sink name
	// and the one source.
	used := map[int32]bool{}
	for _, ps := range compact.packed {
		for _, p := range ps {
			used[p.head] = true
			require.Less(t, int(p.head), len(compact.heads))
		}
	}
	assert.Len(t, used, 11)
}
