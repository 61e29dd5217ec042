package scaling

import (
	"math"
	"testing"
)

// Flink's defaults used below (DefaultNetworkConfig), from
// NettyShuffleEnvironmentOptions and TaskManagerOptions of Flink 1.20 and 2.x:
//   b = taskmanager.network.memory.buffers-per-channel           = 2
//   f = taskmanager.network.memory.floating-buffers-per-gate     = 8
//   o = taskmanager.network.memory.max-overdraft-buffers-per-gate = 5
//   taskmanager.network.memory.read-buffer.required-per-gate.max  = unset
//   taskmanager.memory.segment-size = 32 KiB
//   taskmanager.memory.network.fraction/min/max = 0.1 / 64 MiB / infinite
// Per subtask (streaming, PIPELINED_BOUNDED):
//   input gate, n channels:  required n·b+1, at most n·b+f
//     (Flink 1.20 on one TaskManager, all channels local: required 1,
//     at most f)
//   result partition, s subpartitions: required s+1, at most s·b+f+o

func nbV(id string, p int, group string, inputs ...Input) Vertex {
	return Vertex{ID: id, Parallelism: p, SlotSharingGroup: group, Inputs: inputs}
}

func nbIn(id, ship string) Input { return Input{ID: id, ShipStrategy: ship} }

func TestDefaultNetworkConfig(t *testing.T) {
	for _, v := range []string{Flink120, Flink2} {
		c := DefaultNetworkConfig(v)
		if c.Version != v || c.SegmentSize != 32768 || c.BuffersPerChannel != 2 ||
			c.FloatingBuffersPerGate != 8 || c.MaxOverdraftBuffersPerGate != 5 ||
			c.RequiredPerGateMax != 0 || c.NetworkFraction != 0.1 ||
			c.NetworkMin != 64<<20 || c.NetworkMax != math.MaxInt64 {
			t.Errorf("DefaultNetworkConfig(%q) = %+v", v, c)
		}
	}
	if DefaultNetworkConfig("1.19").Version != Flink2 {
		t.Errorf("an unknown version should read as 2.x")
	}
}

func TestNetworkSegments(t *testing.T) {
	c := DefaultNetworkConfig(Flink2)
	for _, tc := range []struct {
		name            string
		total, explicit int64
		max             int64
		bytes, segments int64
	}{
		// 0.1 × 1 GiB = 107374182.4 → 107374182 bytes, above the 64 MiB
		// minimum; 107374182 / 32768 = 3276.8 → 3276 segments.
		{"1 GiB Flink memory", 1 << 30, 0, 0, 107374182, 3276},
		// 0.1 × 512 MiB = 53687091 < 64 MiB → 64 MiB = 2048 segments.
		{"512 MiB: the minimum", 512 << 20, 0, 0, 64 << 20, 2048},
		// 0.1 × 2 GiB = 214748364 > max 100 MiB → 104857600 / 32768 = 3200.
		{"2 GiB, max 100 MiB", 2 << 30, 0, 100 << 20, 100 << 20, 3200},
		// Explicit network memory: 1 MiB / 32 KiB = 32 segments.
		{"explicit 1 MiB", 1 << 30, 1 << 20, 0, 1 << 20, 32},
	} {
		cc := c
		cc.TotalFlinkMemory, cc.NetworkMemory = tc.total, tc.explicit
		if tc.max > 0 {
			cc.NetworkMax = tc.max
		}
		if got := cc.NetworkMemoryBytes(); got != tc.bytes {
			t.Errorf("%s: network memory %d, want %d", tc.name, got, tc.bytes)
		}
		if got := cc.TotalSegments(); got != tc.segments {
			t.Errorf("%s: segments %d, want %d", tc.name, got, tc.segments)
		}
	}
}

func TestNetworkNeed(t *testing.T) {
	hash48 := []Vertex{nbV("src", 4, ""), nbV("map", 8, "", nbIn("src", ShipHash))}
	for _, tc := range []struct {
		name       string
		version    string
		graph      []Vertex
		par        map[string]int
		slots, tms int
		limit      int // RequiredPerGateMax
		req, max   int64
		tmsWant    int
		local      bool
	}{
		// p=4 → p=8 on a HASH edge, 2 slots per TaskManager: the group takes
		// 8 slots, 4 TaskManagers. Slots 0–3 hold src and map subtasks:
		//   src partition, 8 subpartitions: required 8+1 = 9,
		//     at most 8·2+8+5 = 29
		//   map gate, 4 channels: required 4·2+1 = 9, at most 4·2+8 = 16
		//   slot: required 18, at most 45
		// Slots 4–7 hold map only: 9, at most 16. Worst TaskManager (slots
		// 0, 1): required 36, at most 90.
		{"hash 4→8, 2 slots, 2.x", Flink2, hash48, nil, 2, 0, 0, 36, 90, 4, false},
		// Flink 1.20 on 4 TaskManagers: channels are counted remote, each
		// takes b = 2 exclusive buffers from the global pool plus 1 required
		// floating buffer per gate: the same 9 per gate; at most r·b+f = 16.
		{"hash 4→8, 2 slots, 1.20", Flink120, hash48, nil, 2, 0, 0, 36, 90, 4, false},
		// 8 slots per TaskManager, 2.x: all 8 slots on one TaskManager,
		// every channel local: as on 1.20 below (real Flink 2.x reserves
		// the same as 1.20 on one TaskManager: TestNetworkNeedMatchesRealFlink).
		{"hash 4→8, 8 slots, 2.x", Flink2, hash48, nil, 8, 0, 0, 44, 180, 1, true},
		// The same on Flink 1.20: every channel is local, no exclusive
		// buffers; a gate requires 9 − 4·2 = 1 floating buffer, at most
		// 16 − 8 = 8. Slots 0–3: 9 + 1 = 10, at most 29 + 8 = 37; slots
		// 4–7: 1, at most 8. Required 4·10 + 4·1 = 44, at most
		// 4·37 + 4·8 = 180.
		{"hash 4→8, 8 slots, 1.20 local", Flink120, hash48, nil, 8, 0, 0, 44, 180, 1, true},
		// The plan as a parallelism override: map 8 → 4 (hash 4→4), 2 slots:
		// slot: src partition 4 subpartitions 5 (at most 4·2+8+5 = 21) +
		// map gate 4 channels 9 (at most 16) = 14 (37); × 2 = 28 (74).
		{"override map to 4", Flink2, hash48, map[string]int{"map": 4}, 2, 0, 0, 28, 74, 2, false},
		// FORWARD 4 → 4, 2 slots: partition 1 subpartition: 2 (at most
		// 1·2+8+5 = 15); gate 1 channel: 3 (at most 1·2+8 = 10); slot 5 (25);
		// × 2 = 10 (50).
		{"forward 4→4", Flink2, []Vertex{nbV("a", 4, ""), nbV("b", 4, "", nbIn("a", ShipForward))}, nil, 2, 0, 0, 10, 50, 2, false},
		// RESCALE 4 → 2, 2 slots: b's subtask j reads a's [2j, 2j+2): gate
		// of 2 channels 5 (at most 12); a's partitions have 1 subpartition:
		// 2 (15). Slots 0, 1: 7 (27); slots 2, 3: a only, 2 (15). Worst: 14
		// (54).
		{"rescale 4→2", Flink2, []Vertex{nbV("a", 4, ""), nbV("b", 2, "", nbIn("a", ShipRescale))}, nil, 2, 0, 0, 14, 54, 2, false},
		// Two slot-sharing groups, src p=2 in "a" → HASH → sink p=3 in "b":
		// 5 slots, 3 TaskManagers of 2 slots. Group a slots: partition of
		// 3 subpartitions 4 (at most 3·2+8+5 = 19); group b slots: gate of
		// 2 channels 5 (at most 12). Worst 2 slots: 5 + 5 = 10 required;
		// at most 19 + 19 = 38 (the costliest slots by each measure).
		{"two groups", Flink2, []Vertex{nbV("src", 2, "a"), nbV("sink", 3, "b", nbIn("src", ShipHash))}, nil, 2, 0, 0, 10, 38, 3, false},
		// Two outputs: a (p=2) → HASH → b (p=2) and a → FORWARD → c (p=2),
		// 2 slots, one TaskManager, every channel local: a's partitions
		// 2+1 = 3 (2·2+8+5 = 17) and 1+1 = 2 (15); b's gate of 2 channels
		// 5 − 2·2 = 1 (12 − 4 = 8); c's gate of 1 channel 3 − 2 = 1
		// (10 − 2 = 8); slot 7 (48); × 2 = 14 (96).
		{"two outputs", Flink2, []Vertex{nbV("a", 2, ""), nbV("b", 2, "", nbIn("a", ShipHash)), nbV("c", 2, "", nbIn("a", ShipForward))}, nil, 2, 0, 0, 14, 96, 1, true},
		// read-buffer.required-per-gate.max = 5, hash 8 → 8, 1 slot per
		// TaskManager: gate required min(5, 8·2+1) = 5, at most 8·2+8 = 24;
		// partition 9 (29). Slot: 14 (53).
		{"required-per-gate.max 5, 2.x", Flink2, []Vertex{nbV("a", 8, ""), nbV("b", 8, "", nbIn("a", ShipHash))}, nil, 1, 0, 5, 14, 53, 8, false},
		// Flink 1.20 with the same limit: exclusive per channel
		// min(2, (5−1)/8) = 0, so the gate's pool requires 5 − 0 = 5 and
		// no channel takes exclusive buffers: 14 (53).
		{"required-per-gate.max 5, 1.20", Flink120, []Vertex{nbV("a", 8, ""), nbV("b", 8, "", nbIn("a", ShipHash))}, nil, 1, 0, 5, 14, 53, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultNetworkConfig(tc.version)
			c.RequiredPerGateMax = tc.limit
			c.NetworkMemory = 64 << 20
			u := NetworkNeed(tc.graph, tc.par, tc.slots, tc.tms, c)
			if u.Required != tc.req || u.MaxUse != tc.max || u.TaskManagers != tc.tmsWant || u.AllLocal != tc.local {
				t.Errorf("got required %d, at most %d, %d TaskManagers, local %v; want %d, %d, %d, %v",
					u.Required, u.MaxUse, u.TaskManagers, u.AllLocal, tc.req, tc.max, tc.tmsWant, tc.local)
			}
			if u.Available != 2048 || !u.Fits || u.MinNetworkBytes != tc.req*32768 {
				t.Errorf("available %d fits %v min bytes %d", u.Available, u.Fits, u.MinNetworkBytes)
			}
		})
	}
}

func TestNetworkNeedDoesNotFit(t *testing.T) {
	// hash 4→8 with 2 slots needs 36 segments (TestNetworkNeed); 1 MiB of
	// network memory is 32 segments: Flink would fail with "Insufficient
	// number of network buffers". The least that fits is 36 × 32 KiB =
	// 1179648 bytes.
	g := []Vertex{nbV("src", 4, ""), nbV("map", 8, "", nbIn("src", ShipHash))}
	c := DefaultNetworkConfig(Flink2)
	c.NetworkMemory = 1 << 20
	u := NetworkNeed(g, nil, 2, 0, c)
	if u.Available != 32 || u.Fits || u.MinNetworkBytes != 1179648 {
		t.Fatalf("got %+v", u)
	}
	c.NetworkMemory = u.MinNetworkBytes
	if u := NetworkNeed(g, nil, 2, 0, c); !u.Fits || u.Available != 36 {
		t.Fatalf("with the least memory: %+v", u)
	}

	// A realistic failure: 256 → 256 on a HASH edge, 8 slots per
	// TaskManager of 512 MiB Flink memory (network 64 MiB = 2048 segments).
	// Slot: partition of 256 subpartitions 257 + gate of 256 channels
	// 256·2+1 = 513 = 770; × 8 = 6160 required > 2048. The least network
	// memory: 6160 × 32768 = 201850880 bytes (192.5 MiB).
	g = []Vertex{nbV("src", 256, ""), nbV("agg", 256, "", nbIn("src", ShipHash))}
	c = DefaultNetworkConfig(Flink120)
	c.TotalFlinkMemory = 512 << 20
	u = NetworkNeed(g, nil, 8, 0, c)
	if u.Required != 6160 || u.Available != 2048 || u.Fits || u.MinNetworkBytes != 201850880 {
		t.Fatalf("got %+v", u)
	}
	if u.Slots != 8 || u.Subtasks != 16 || u.Gates != 8 || u.Partitions != 8 {
		t.Fatalf("counts %+v", u)
	}
}

// FuzzNetworkBuffers checks NetworkNeed's invariants on random chains:
// never negative, required ≤ max use, fits ⇔ required ≤ available, and a
// vertex whose edges are all all-to-all never needs fewer buffers at a
// higher parallelism.
func FuzzNetworkBuffers(f *testing.F) {
	f.Add([]byte{3, 4, 8, 2, 1, 0, 2, 5})
	f.Add([]byte{5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	ships := []string{ShipHash, ShipRebalance, ShipBroadcast, ShipForward, ShipRescale}
	f.Fuzz(func(t *testing.T, data []byte) {
		at := func(i int) int {
			if i < len(data) {
				return int(data[i])
			}
			return i * 7
		}
		n := 1 + at(0)%5
		var g []Vertex
		for i := 0; i < n; i++ {
			v := nbV(string(rune('a'+i)), 1+at(1+3*i)%24, []string{"", "x"}[at(2+3*i)%2])
			if i > 0 {
				v.Inputs = []Input{nbIn(string(rune('a'+i-1)), ships[at(3+3*i)%len(ships)])}
			}
			g = append(g, v)
		}
		slots := 1 + at(20)%8
		c := DefaultNetworkConfig([]string{Flink120, Flink2}[at(21)%2])
		c.RequiredPerGateMax = at(22) % 40
		c.NetworkMemory = int64(at(23)) * 32768
		u := NetworkNeed(g, nil, slots, 0, c)
		if u.Required < 0 || u.MaxUse < 0 || u.Available < 0 || u.Required > u.MaxUse {
			t.Fatalf("bad use %+v", u)
		}
		if u.Fits != (u.Required <= u.Available) {
			t.Fatalf("fits %v with required %d available %d", u.Fits, u.Required, u.Available)
		}
		for i, v := range g {
			allToAll := true
			for j, w := range g {
				for _, in := range w.Inputs {
					if (j == i || in.ID == v.ID) && pointwise(in.ShipStrategy) {
						allToAll = false
					}
				}
			}
			// Flink 1.20 on one TaskManager with required-per-gate.max set
			// is exempt: there a gate's required floating buffers,
			// T − n·min(b, (T−1)/n), can fall as n grows (T=5: n=3 → 2,
			// n=4 → 1), which is Flink's own arithmetic.
			if !allToAll || (c.Version == Flink120 && c.RequiredPerGateMax > 0) {
				continue
			}
			w := NetworkNeed(g, map[string]int{v.ID: v.Parallelism + 1}, slots, 0, c)
			if w.Required < u.Required || w.MaxUse < u.MaxUse {
				t.Fatalf("%s %d→%d: required %d→%d, at most %d→%d", v.ID, v.Parallelism, v.Parallelism+1, u.Required, w.Required, u.MaxUse, w.MaxUse)
			}
		}
	})
}

func TestNetworkRules(t *testing.T) {
	for in, want := range map[string]string{"1.20": Flink120, "v1_18": Flink120, "1.19.1": Flink120, "2.1": Flink2, "v2_0": Flink2, "": Flink2} {
		if got := NetworkRules(in); got != want {
			t.Errorf("NetworkRules(%q) = %q, want %q", in, got, want)
		}
	}
}
