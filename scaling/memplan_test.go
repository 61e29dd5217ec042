package scaling

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Flink's derivation of a TaskManager's memory from its configuration.
func TestDeriveTaskManagerMemory(t *testing.T) {
	gib := int64(1 << 30)
	cases := []struct {
		name    string
		conf    map[string]string
		process int64
		want    TaskManagerMemory
	}{
		{
			// The testbed's TaskManagers (TestRealCollectors read 326 MiB
			// heap, 58 MiB managed, 64 MiB network from real Flink):
			// overhead max(0.1·1024, 192) = 192 MiB; Flink memory
			// 1024 − 256 − 192 = 576 MiB = 603979776; managed
			// 0.1·603979776 = 60397977; network max(57.6 MiB, 64 MiB);
			// task heap 603979776 − 2·128 MiB − 60397977 − 64 MiB = 208037479,
			// heap 326.4 MiB.
			name:    "testbed: 1 GiB process, managed fraction 0.1",
			conf:    map[string]string{KeyProcessSize: "1024m", KeyManagedFraction: "0.1"},
			process: 0,
			want: TaskManagerMemory{ProcessBytes: gib, FrameworkHeapBytes: 128 * mib, TaskHeapBytes: 208037479,
				FrameworkOffHeapBytes: 128 * mib, ManagedBytes: 60397977, NetworkBytes: 64 * mib,
				MetaspaceBytes: 256 * mib, OverheadBytes: 192 * mib},
		},
		{
			// The operator's spec.taskManager.resource.memory "2048m" with
			// Flink's defaults: overhead 0.1·2 GiB = 214748364 (within
			// [192 MiB, 1 GiB]); Flink memory 2 GiB − 256 MiB − 214748364 =
			// 1664299828; managed 0.4 of it = 665719931; network 0.1 =
			// 166429982; task heap 1664299828 − 256 MiB − 665719931 −
			// 166429982 = 563714459.
			name:    "2 GiB process from the pod, defaults",
			conf:    map[string]string{},
			process: 2 * gib,
			want: TaskManagerMemory{ProcessBytes: 2 * gib, FrameworkHeapBytes: 128 * mib, TaskHeapBytes: 563714459,
				FrameworkOffHeapBytes: 128 * mib, ManagedBytes: 665719931, NetworkBytes: 166429982,
				MetaspaceBytes: 256 * mib, OverheadBytes: 214748364},
		},
		{
			// network min = max = 1 MiB (TestRealNetworkBuffers' small
			// network): 576 − 256 − 57.6 − 1 MiB of task heap.
			name:    "small network memory",
			conf:    map[string]string{KeyProcessSize: "1g", KeyManagedFraction: "0.1", KeyNetworkMin: "1m", KeyNetworkMax: "1m"},
			process: 0,
			want: TaskManagerMemory{ProcessBytes: gib, FrameworkHeapBytes: 128 * mib, TaskHeapBytes: 603979776 - 256*mib - 60397977 - mib,
				FrameworkOffHeapBytes: 128 * mib, ManagedBytes: 60397977, NetworkBytes: mib,
				MetaspaceBytes: 256 * mib, OverheadBytes: 192 * mib},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveTaskManagerMemory(c.conf, c.process)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, got.ProcessBytes, got.FlinkBytes()+got.MetaspaceBytes+got.OverheadBytes)
		})
	}
	for _, bad := range []map[string]string{
		{},                       // no size at all
		{KeyProcessSize: "lots"}, // not a size
		{KeyProcessSize: "300m"}, // 300 − 256 − 192 < 0
		{KeyProcessSize: "1g", KeyTaskHeap: "2g"}, // parts exceed the whole
		{KeyProcessSize: "1g", KeyManagedFraction: "1.5"},
	} {
		_, err := DeriveTaskManagerMemory(bad, 0)
		assert.Error(t, err, "%v", bad)
	}
}

// What FlinkConfiguration writes, Flink derives back exactly as the
// normalized model (every part rounded down to whole KiB, the process
// their sum): every part explicit, so nothing else the user set can move
// it. The parts are any number of bytes, as Flink's fractions make them
// (the simulator found 4 GiB's overhead, 429496729 bytes, broke a
// per-part rounding).
func TestTaskManagerMemoryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 4))
	def, err := DeriveTaskManagerMemory(map[string]string{}, 4<<30)
	require.NoError(t, err)
	require.Equal(t, int64(429496729), def.OverheadBytes)
	got, err := DeriveTaskManagerMemory(def.FlinkConfiguration(), 0)
	require.NoError(t, err)
	require.Equal(t, def.Normalized(), got)
	for i := 0; i < 500; i++ {
		kib := func(lo, hi int64) int64 { return lo<<10 + r.Int64N((hi-lo+1)<<10) }
		m := TaskManagerMemory{
			FrameworkHeapBytes: kib(0, 256<<10), TaskHeapBytes: kib(0, 8<<20), FrameworkOffHeapBytes: kib(0, 256<<10),
			TaskOffHeapBytes: kib(0, 1<<20), ManagedBytes: kib(0, 8<<20), NetworkBytes: kib(1, 2<<20),
			MetaspaceBytes: kib(1, 512<<10), OverheadBytes: kib(1, 1<<20),
		}.withProcess()
		conf := m.FlinkConfiguration()
		// A user's fractions cannot change it.
		conf[KeyManagedFraction], conf[KeyNetworkFraction], conf[KeyOverheadFraction] = "0.9", "0.5", "0.3"
		got, err := DeriveTaskManagerMemory(conf, 0)
		require.NoError(t, err, "%+v", m)
		require.Equal(t, m.Normalized(), got)
		require.Equal(t, got, got.Normalized(), "normalizing is idempotent")
	}
}

func TestParseMemorySize(t *testing.T) {
	for in, want := range map[string]int64{
		"1024": 1024, "64m": 64 << 20, "1 gb": 1 << 30, "2Gi": 2 << 30, "512Mi": 512 << 20, "1048576k": 1 << 30,
		"0.5g": 512 << 20, "32 kb": 32 << 10, "1t": 1 << 40, "100 bytes": 100,
	} {
		got, err := ParseMemorySize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "m", "12 parsecs", "1e400g", "-"} {
		_, err := ParseMemorySize(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "1024k", FormatMemorySize(mib))
	assert.Equal(t, "2k", FormatMemorySize(1025), "rounded up to a whole KiB")
}

func FuzzParseMemorySize(f *testing.F) {
	for _, s := range []string{"1024m", "2Gi", "1 gb", "0.5g", "", "12 parsecs", "9999999999999t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseMemorySize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("%q parsed to %d", s, b)
		}
		// Writing it back in KiB and parsing again loses at most a KiB.
		back, err := ParseMemorySize(FormatMemorySize(b))
		if err != nil || back < b || back-b >= 1024 {
			t.Fatalf("%q: %d → %q → %d, %v", s, b, FormatMemorySize(b), back, err)
		}
	})
}

// memJob is a source → keyed → sink job on one TaskManager of 4 slots
// whose keyed vertex, at p=2, is fully busy with 1000 records/s (500 per
// subtask) while 1300 arrive: it needs 1300/0.7 = 1857 → p=4.
func memJob(segments int64, version string) Snapshot {
	s := snapshot(4,
		vtx{id: "src", p: 2, busy: 100, in: 1000, out: 1000, lag: F(0), arrival: F(1300), partitions: 8},
		vtx{id: "keyed", p: 2, busy: 1000, in: 1000, out: 1000, inputs: from("src", ShipHash)},
		vtx{id: "sink", p: 1, busy: 100, in: 1000, inputs: from("keyed", ShipRebalance)},
	)
	s.FlinkVersion = version
	s.TaskManagers.Memory = &Memory{
		ProcessBytes: Float(1 << 30), HeapBytes: Float(326 * mib), ManagedBytes: Float(58 * mib),
		NetworkBytes: Float(segments * 32 << 10), MetaspaceBytes: Float(256 * mib),
		NetworkSegmentsTotal: F(float64(segments)),
	}
	return s
}

// A plan whose network buffers do not fit is reduced until they do
// (memory mode Recommend), or gets the network memory it needs in the same
// restart (Apply). One TaskManager, every channel local (NetworkNeed): a
// gate needs 1 buffer, a result partition of s subpartitions s+1; slot i
// of the one slot-sharing group holds subtask i of every vertex.
//
//	keyed p=2 (now): slot 0 = src0 (s=2: 3) + keyed0 (gate 1, out s=1: 2) + sink0 (gate 1) = 7,
//	                 slot 1 = 3 + 1 + 2 = 6: 13 buffers.
//	keyed p=3:       slot 0 = 4 + 1 + 2 + 1 = 8, slot 1 = 4 + 1 + 2 = 7, slot 2 = 1 + 2 = 3: 18.
//	keyed p=4:       slot 0 = 5 + 1 + 2 + 1 = 9, slot 1 = 8, slots 2, 3 = 3 each: 23.
//
// Real Flink 1.20 and 2.x reserve 13 and 23 for these layouts, and refuse
// the next one up (src p=4: 33) on 32 buffers (network-buffers.json).
func TestNetworkMemoryLimitsThePlan(t *testing.T) {
	cases := []struct {
		name      string
		version   string
		segments  int64
		mode      MemoryMode
		wantKeyed int
		wantCode  ReasonCode // among the decision's reasons
		wantMem   bool       // the plan sets the memory
	}{
		{"room for 23: p=4", "2.1", 64, MemoryRecommend, 4, "", false},
		{"20 buffers: 23 refused, 18 fits: p=3", "2.1", 20, MemoryRecommend, 3, ReasonNetworkMemoryLimited, false},
		{"the same on Flink 1.20", "1.20", 20, MemoryRecommend, 3, ReasonNetworkMemoryLimited, false},
		{"20 buffers, memory off: still reduced", "2.1", 20, MemoryOff, 3, ReasonNetworkMemoryLimited, false},
		{"20 buffers, Apply: p=4 with the network memory it needs", "2.1", 20, MemoryApply, 4, ReasonMemoryTuning, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			p.Memory.Mode = c.mode
			d := mustScale(t, memJob(c.segments, c.version), p)
			assert.Equal(t, c.wantKeyed, d.Recommended.Parallelism["keyed"])
			if c.wantCode != "" {
				assert.Contains(t, codes(d.Reasons), c.wantCode)
			}
			if c.wantCode == ReasonNetworkMemoryLimited {
				assert.Equal(t, ReasonNetworkMemoryLimited, vertexByID(d, "keyed").Limit)
				assert.Contains(t, vertexByID(d, "keyed").Explanation, "held by the TaskManagers' network memory")
			}
			require.Equal(t, c.wantMem, d.Recommended.Memory != nil)
			if c.mode == MemoryOff {
				assert.Nil(t, d.Memory, "no recommendation in mode Off")
				return
			}
			require.NotNil(t, d.Memory)
			use := d.Memory.Network
			want := map[int]int64{3: 18, 4: 23}[c.wantKeyed]
			assert.Equal(t, want, use.Required)
			if c.wantMem {
				m := d.Recommended.Memory
				assert.True(t, d.Memory.Applied)
				// MaxUse (every pool at its max plus overdraft) × 32 KiB
				// × 1.2, in whole MiB: at least the 23 required.
				assert.Equal(t, roundUpMiB(float64(use.MaxUse)*32*1024*1.2), m.NetworkBytes)
				assert.GreaterOrEqual(t, m.NetworkBytes, int64(23*32<<10))
				assert.Equal(t, m.ProcessBytes, m.FlinkBytes()+m.MetaspaceBytes+m.OverheadBytes)
				assert.False(t, InPlace(memJob(20, "2.1"), d.Current, d.Recommended), "a memory change restarts the TaskManagers")
			}
		})
	}
}

// A job that runs although the arithmetic says its layout needs more than
// the TaskManagers have (the estimate is an upper bound over several
// TaskManagers): plans are held to what it needs now, never frozen
// outright.
func TestNetworkMemoryCalibratedByTheRunningJob(t *testing.T) {
	d := Decide(memJob(10, "2.1"), testPolicy(), History{}, t0) // 13 > 10, yet it runs
	require.Equal(t, ActionHold, d.Action, "%s %v", d.Summary, d.Reasons)
	assert.Contains(t, allCodes(d), ReasonNetworkMemoryLimited)
	assert.Equal(t, 2, d.Recommended.Parallelism["keyed"])
}

// A lower bound the network memory cannot hold: the decision holds and
// recommends the plan that runs, never the one Flink would refuse (the
// real testbed found a hold recommending 4/4/1).
func TestNetworkMemoryBelowALowerBoundHolds(t *testing.T) {
	p := testPolicy()
	p.Vertices = []VertexOverride{{ID: "keyed", MinParallelism: 4}}
	d := Decide(memJob(20, "2.1"), p, History{}, t0) // p=4 needs 23 of 20
	require.Equal(t, ActionHold, d.Action, "%s %v", d.Summary, d.Reasons)
	assert.Contains(t, codes(d.Reasons), ReasonNetworkMemoryLimited)
	assert.Equal(t, 2, d.Recommended.Parallelism["keyed"], "the current plan, not one Flink refuses")
	assert.Contains(t, d.Summary, "lower the bound")

	p.Memory.Mode = MemoryApply
	d = mustScale(t, memJob(20, "2.1"), p)
	require.NotNil(t, d.Recommended.Memory)
	// The restart is for the plan: nothing but the network grows, nothing
	// shrinks (memJob reports no heap or metaspace in use).
	now := d.Memory.Current
	m := *d.Recommended.Memory
	assert.Equal(t, now.HeapBytes(), m.HeapBytes())
	assert.Equal(t, now.MetaspaceBytes, m.MetaspaceBytes)
	assert.Greater(t, m.NetworkBytes, now.NetworkBytes)
}

// A scale-down of a job with its state on the heap stops where the state
// each TaskManager gains still fits the heap with headroom, or (Apply)
// gives the heap the room.
//
// 4 TaskManagers of 1 slot, 2 GiB of hashmap state: 512 MiB each now. The
// heap is 1 GiB, 600 MiB in use on average (700 at the peak); at most
// 1024/1.2 = 853 MiB may be in use. The job needs 2 slots (1024 MiB each:
// 600 + 512 = 1112, too much); 3 slots hold 683 MiB each: 600 + 171 = 771,
// fits.
func TestHeapMemoryLimitsAScaleDown(t *testing.T) {
	job := func() Snapshot {
		s := snapshot(1,
			vtx{id: "src", p: 4, busy: 100, in: 400, out: 400, lag: F(0), arrival: F(400), partitions: 8},
			vtx{id: "agg", p: 4, busy: 200, in: 400, out: 0, inputs: from("src", ShipHash)},
		)
		s.StateBackend = "hashmap"
		s.Checkpoints = &Checkpoints{DurationMs: 1000, StateSizeBytes: Float(2 << 30)}
		s.TaskManagers.Memory = &Memory{
			ProcessBytes: Float(2 << 30), HeapBytes: Float(1 << 30), NetworkBytes: Float(64 * mib),
			HeapUsedBytes: &Stat{Avg: F(600 * mib), Max: F(700 * mib)}, HeapMaxBytes: F(1 << 30),
		}
		return s
	}
	p := testPolicy()
	p.Behavior.ScaleDown.StabilizationWindow = D(0)
	p.Behavior.ScaleDown.MaxFactor = 10
	p.MinChange = 0
	free := mustScale(t, func() Snapshot { s := job(); s.StateBackend = "rocksdb"; return s }(), p)
	require.Equal(t, 2, free.Recommended.Slots, "off the heap, the state does not bind: 2 slots")

	d := mustScale(t, job(), p)
	assert.Equal(t, 3, d.Recommended.Slots)
	assert.Contains(t, codes(d.Reasons), ReasonHeapMemoryLimited)

	p.Memory.Mode = MemoryApply
	d = mustScale(t, job(), p)
	assert.Equal(t, 2, d.Recommended.Slots)
	require.NotNil(t, d.Recommended.Memory)
	// Heap: the 700 MiB peak plus the 512 MiB the scale-down adds, plus
	// 20 %: 1454.4 → 1455 MiB.
	assert.Equal(t, int64(1455*mib), d.Recommended.Memory.HeapBytes())
}

// With RocksDB, more slots per TaskManager would split its managed memory:
// the plan keeps the slots per TaskManager, or (Apply) keeps each slot's
// share.
func TestManagedMemoryKeepsEachSlotsShare(t *testing.T) {
	job := func() Snapshot {
		s := memJob(1024, "2.1")
		s.StateBackend = "rocksdb"
		s.TaskManagers.Slots = 1
		s.TaskManagers.Replicas = 2
		s.TaskManagers.Memory.ManagedBytes = Float(400 * mib)
		return s
	}
	p := testPolicy()
	p.Resources.SlotsPerTaskManager = SlotCount(4)
	d := mustScale(t, job(), p)
	assert.Equal(t, 1, d.Recommended.SlotsPerTaskManager)
	assert.Contains(t, codes(d.Reasons), ReasonManagedMemoryLimited)

	p.Memory.Mode = MemoryApply
	d = mustScale(t, job(), p)
	assert.Equal(t, 4, d.Recommended.SlotsPerTaskManager)
	require.NotNil(t, d.Recommended.Memory)
	assert.Equal(t, int64(1600*mib), d.Recommended.Memory.ManagedBytes, "400 MiB per slot, 4 slots")
}

// A GC-bound job within its band: Recommend holds and says how much heap;
// Apply restarts with more heap, parallelism unchanged; not during a
// cooldown.
func TestMemoryOnlyRestart(t *testing.T) {
	job := func() Snapshot {
		s := snapshot(2,
			vtx{id: "src", p: 2, busy: 500, in: 1000, out: 1000, lag: F(0), arrival: F(1000), partitions: 8},
			vtx{id: "work", p: 2, busy: 600, in: 1000, inputs: from("src", ShipRebalance)},
		)
		s.TaskManagers.Memory = &Memory{
			ProcessBytes: Float(1 << 30), HeapBytes: Float(326 * mib), NetworkBytes: Float(64 * mib),
			HeapUsedBytes: &Stat{Avg: F(300 * mib), Max: F(320 * mib)}, HeapMaxBytes: F(326 * mib),
			GCTimeMsPerSecond: &Stat{Avg: F(450), Max: F(700)},
		}
		return s
	}
	p := testPolicy()
	d := Decide(job(), p, History{}, t0)
	require.Equal(t, ActionHold, d.Action)
	assert.Contains(t, codes(d.Reasons), ReasonMemoryPressure)
	require.NotNil(t, d.Memory)
	assert.False(t, d.Memory.Applied)
	// GC-bound: at least the heap now plus 20 %: 326 × 1.2 = 391.2 → 392 MiB.
	assert.Equal(t, int64(392*mib), d.Memory.Recommended.HeapBytes())

	p.Memory.Mode = MemoryApply
	d = mustScale(t, job(), p)
	assert.Equal(t, d.Current.Parallelism, d.Recommended.Parallelism)
	require.NotNil(t, d.Recommended.Memory)
	assert.Equal(t, int64(392*mib), d.Recommended.Memory.HeapBytes())
	assert.Contains(t, d.Summary, "TaskManager memory")

	h := History{Rescales: []RescaleRecord{{DecidedAt: t0.Add(-2 * time.Minute), CompletedAt: t0.Add(-time.Minute), Outcome: OutcomeSucceeded}}}
	d = Decide(job(), p, h, t0)
	require.Equal(t, ActionHold, d.Action)
	assert.Contains(t, codes(d.Reasons), ReasonCooldown)
	assert.Nil(t, d.Recommended.Memory)
	assert.False(t, d.Memory.Applied)

	// The cluster's memory is not the job's to change: hold.
	s := job()
	s.TaskManagers.FixedSlots = true
	d = Decide(s, p, History{}, t0)
	require.Equal(t, ActionHold, d.Action)
	assert.Nil(t, d.Recommended.Memory)
}

// mustScale decides on s and requires a Scale.
func mustScale(t *testing.T, s Snapshot, p Policy) Decision {
	t.Helper()
	d := Decide(s, p, History{}, t0)
	require.Equal(t, ActionScale, d.Action, "%s %v", d.Summary, d.Reasons)
	return d
}

// FuzzDecideMemory: whatever the job, memory and mode, a plan the model
// applies without memory fits the network segments (or needs no more than
// the job does now), a plan carries memory only in mode Apply on the job's
// own TaskManagers, and memory it carries holds the plan's buffers.
func FuzzDecideMemory(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(5), uint16(40), uint8(0))
	f.Add(uint64(7), uint64(3), uint8(12), uint16(8), uint8(2))
	f.Add(uint64(4), uint64(9), uint8(3), uint16(500), uint8(5))
	f.Fuzz(func(t *testing.T, a, b uint64, n uint8, segs uint16, shape uint8) {
		r := rand.New(rand.NewPCG(a, b))
		s := randomJob(r, 1+int(n%20))
		p := randomPolicy(r)
		p.Memory.Mode = []MemoryMode{MemoryRecommend, MemoryApply, MemoryOff}[shape%3]
		s.FlinkVersion = []string{"1.20", "2.1"}[(shape/3)%2]
		s.TaskManagers.FixedSlots = shape&8 != 0
		s.StateBackend = []string{"", "hashmap", "rocksdb"}[(shape/16)%3]
		s.TaskManagers.Memory = &Memory{
			ProcessBytes: Float(1 << 30), HeapBytes: Float(326 * mib), ManagedBytes: Float(58 * mib),
			NetworkBytes: Float(int64(segs) * 32 << 10), NetworkSegmentsTotal: F(float64(segs)),
			HeapUsedBytes: &Stat{Avg: F(200 * mib), Max: F(300 * mib)}, HeapMaxBytes: F(326 * mib),
		}
		if segs == 0 {
			s.TaskManagers.Memory = nil
		}
		d := Decide(s, p, History{}, t0)
		checkInvariants(t, s, p, d)
		if d.Action != ActionScale || s.TaskManagers.Memory == nil {
			return
		}
		j, _ := observe(&s, &p, t0)
		m := &model{j: j, p: &p, h: &History{}, now: t0, d: &Decision{Current: d.Current}}
		if mem := d.Recommended.Memory; mem != nil {
			if p.Memory.Mode != MemoryApply || s.TaskManagers.FixedSlots {
				t.Fatalf("plan carries memory in mode %s, fixed %v", p.Memory.Mode, s.TaskManagers.FixedSlots)
			}
			if req := m.networkUse(d.Recommended, 0).Required; mem.NetworkBytes < req*32<<10 {
				t.Fatalf("plan's network %d bytes < %d buffers", mem.NetworkBytes, req)
			}
			if mem.ProcessBytes != mem.FlinkBytes()+mem.MetaspaceBytes+mem.OverheadBytes || mem.TaskHeapBytes <= 0 {
				t.Fatalf("inconsistent memory %+v", mem)
			}
			return
		}
		need := m.networkUse(d.Recommended, int64(segs)).Required
		now := m.networkUse(d.Current, int64(segs)).Required
		if need > int64(segs) && need > now {
			t.Fatalf("plan needs %d buffers; the TaskManagers have %d and the job needs %d now", need, segs, now)
		}
	})
}

// FuzzDeriveTaskManagerMemory: any configuration either fails or derives a
// model whose parts are not negative and add up to the process size, and
// which, written back, derives to itself normalized.
func FuzzDeriveTaskManagerMemory(f *testing.F) {
	f.Add("1024m", "", "0.1", "", "", "", int64(0))
	f.Add("", "2g", "", "1m", "1m", "", int64(0))
	f.Add("", "", "", "", "", "300m", int64(2<<30))
	f.Add("300m", "", "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, process, flink, managedFraction, netMin, netMax, taskHeap string, podBytes int64) {
		conf := map[string]string{}
		for k, v := range map[string]string{KeyProcessSize: process, KeyFlinkSize: flink, KeyManagedFraction: managedFraction,
			KeyNetworkMin: netMin, KeyNetworkMax: netMax, KeyTaskHeap: taskHeap} {
			if v != "" {
				conf[k] = v
			}
		}
		m, err := DeriveTaskManagerMemory(conf, podBytes)
		if err != nil {
			return
		}
		for name, b := range map[string]int64{"task heap": m.TaskHeapBytes, "managed": m.ManagedBytes, "network": m.NetworkBytes,
			"overhead": m.OverheadBytes, "metaspace": m.MetaspaceBytes} {
			if b < 0 {
				t.Fatalf("%s %d in %+v from %v", name, b, m, conf)
			}
		}
		if m.ProcessBytes != m.FlinkBytes()+m.MetaspaceBytes+m.OverheadBytes {
			t.Fatalf("parts do not add up: %+v", m)
		}
		back, err := DeriveTaskManagerMemory(m.FlinkConfiguration(), 0)
		if err != nil || back != m.Normalized() {
			t.Fatalf("%+v written back derives %+v, %v", m.Normalized(), back, err)
		}
	})
}
