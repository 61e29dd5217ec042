package scaling

import (
	"math"
	"sort"
	"strings"
)

// Network buffers: the pure arithmetic of how many network memory segments
// the subtasks deployed on one TaskManager need, and how many the
// TaskManager has. Decide checks every plan with it (memplan.go).
//
// The rules follow Flink's sources, for a streaming job (every edge a
// PIPELINED_BOUNDED result partition, no tiered storage, no hybrid or
// blocking shuffle):
//
// Input gates (one per input edge of a subtask, n channels):
//   - Flink 1.20, InputGateSpecUtils.createGateBuffersSpec and
//     SingleInputGateFactory: requiredPerGate = min(T, n·b + 1) where b is
//     taskmanager.network.memory.buffers-per-channel and T is
//     taskmanager.network.memory.read-buffer.required-per-gate.max
//     (unset: Integer.MAX_VALUE for pipelined partitions,
//     DEFAULT_MAX_REQUIRED_BUFFERS_PER_GATE_FOR_STREAM); exclusive per
//     channel e = min(b, (requiredPerGate−1)/n); the gate's LocalBufferPool
//     is created with min = requiredPerGate − n·e (the "required floating"
//     buffers, 1 by default; NettyShuffleUtils.getMinMaxFloatingBuffersPerInputGate)
//     and max = n·b + f − n·e (f = floating-buffers-per-gate). The e
//     exclusive buffers are requested per RemoteInputChannel only
//     (RemoteInputChannel.setup → BufferManager.requestExclusiveBuffers →
//     NetworkBufferPool.requestUnpooledMemorySegments → tryRedistributeBuffers,
//     which throws "Insufficient number of network buffers"); a
//     LocalInputChannel reads the producer's buffers and reserves none.
//     So required = r·e + (requiredPerGate − n·e), at most r·e + n·b + f − n·e,
//     r = remote channels.
//   - Flink 2.0 and 2.1 behave the same, as measured on real Flink
//     (test/testbed/testdata/network-buffers.json: a job on one
//     TaskManager reserves exactly the 1.20 figures, and the layouts the two
//     lines refuse are the same). Flink's master branch moves the exclusive
//     buffers into the gate's pool (FLINK-33668, every channel counted);
//     when a release does, Version will pick the rule.
//
// Result partitions (one per output edge of a subtask, s subpartitions):
// ResultPartitionFactory.createBufferPoolFactory with
// NettyShuffleUtils.getMinMaxNetworkBuffersPerResultPartition: min = s + 1,
// max = s·b + f (PIPELINED_BOUNDED is bounded); the same in 1.20 and 2.x.
// A pipelined partition may also borrow up to
// taskmanager.network.memory.max-overdraft-buffers-per-gate overdraft
// buffers beyond its pool (LocalBufferPool), never required.
//
// NetworkBufferPool.internalCreateBufferPool (and tryRedistributeBuffers
// for 1.20's exclusive buffers) fails with "Insufficient number of network
// buffers: required X, but only Y available" once the sum of the pools'
// minimums on the TaskManager exceeds its total segments: that sum is
// NetworkUse.Required.
//
// Channels and subpartitions per edge: all-to-all (HASH, REBALANCE,
// BROADCAST and anything not pointwise): n = upstream parallelism,
// s = downstream parallelism. Pointwise (FORWARD, RESCALE) follows the
// ranges of EdgeManagerBuildUtil.connectPointwise: with pu ≥ pd, downstream
// subtask j reads upstream subtasks [j·pu/pd, (j+1)·pu/pd) and each
// upstream partition has 1 subpartition; with pu < pd, upstream subtask k
// feeds downstream subtasks [k·pd/pu, (k+1)·pd/pu) and every downstream
// subtask reads 1 channel.
//
// TaskManager network memory (TaskExecutorFlinkMemoryUtils,
// ProcessMemoryUtils.deriveWithFraction; FLIP-266 made
// taskmanager.memory.network.max default to infinite from Flink 1.17):
// network = clamp(fraction × total Flink memory, min, max), unless given
// explicitly; segments = network / segment size
// (NettyShuffleEnvironmentConfiguration.calculateNumberOfNetworkBuffers).

// Flink versions whose buffer rules NetworkNeed knows.
const (
	Flink120 = "1.20"
	Flink2   = "2.x"
)

// NetworkConfig is a TaskManager's network configuration.
type NetworkConfig struct {
	// Version is Flink120 or Flink2 (anything else is read as Flink2).
	// Both follow the same rules today (measured; see above).
	Version string
	// SegmentSize is taskmanager.memory.segment-size in bytes (32 KiB).
	SegmentSize int64
	// BuffersPerChannel is taskmanager.network.memory.buffers-per-channel (2).
	BuffersPerChannel int
	// FloatingBuffersPerGate is
	// taskmanager.network.memory.floating-buffers-per-gate (8).
	FloatingBuffersPerGate int
	// MaxOverdraftBuffersPerGate is
	// taskmanager.network.memory.max-overdraft-buffers-per-gate (5).
	MaxOverdraftBuffersPerGate int
	// RequiredPerGateMax is
	// taskmanager.network.memory.read-buffer.required-per-gate.max; 0 means
	// unset (no limit for streaming).
	RequiredPerGateMax int
	// NetworkFraction, NetworkMin and NetworkMax are
	// taskmanager.memory.network.fraction/min/max (0.1, 64 MiB, infinite).
	NetworkFraction float64
	NetworkMin      int64
	NetworkMax      int64
	// TotalFlinkMemory is the TaskManager's total Flink memory in bytes
	// (taskmanager.memory.flink.size, or derived from the process size).
	TotalFlinkMemory int64
	// NetworkMemory, when positive, is the network memory in bytes as
	// configured or reported (/taskmanagers/:id memoryConfiguration
	// networkMemory); it overrides the fraction.
	NetworkMemory int64
}

// NetworkRules is the buffer rules (Flink120 or Flink2) of a Flink version
// ("1.20", "v1_20", "2.1"): Flink120 for any 1.x, else Flink2.
func NetworkRules(flinkVersion string) string {
	if strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(flinkVersion), "v"), "1") {
		return Flink120
	}
	return Flink2
}

// DefaultNetworkConfig returns Flink's defaults for version (Flink120 or
// Flink2): NettyShuffleEnvironmentOptions (buffers-per-channel 2,
// floating-buffers-per-gate 8, max-overdraft-buffers-per-gate 5,
// read-buffer.required-per-gate.max unset) and TaskManagerOptions
// (segment-size 32 KiB, network fraction 0.1, min 64 MiB, max infinite
// since FLIP-266). TotalFlinkMemory and NetworkMemory are left zero.
func DefaultNetworkConfig(version string) NetworkConfig {
	if version != Flink120 {
		version = Flink2
	}
	return NetworkConfig{
		Version:                    version,
		SegmentSize:                32 << 10,
		BuffersPerChannel:          2,
		FloatingBuffersPerGate:     8,
		MaxOverdraftBuffersPerGate: 5,
		NetworkFraction:            0.1,
		NetworkMin:                 64 << 20,
		NetworkMax:                 math.MaxInt64,
	}
}

// NetworkMemoryBytes is the TaskManager's network memory:
// NetworkMemory when set, else clamp(fraction × TotalFlinkMemory, min, max).
func (c NetworkConfig) NetworkMemoryBytes() int64 {
	if c.NetworkMemory > 0 {
		return c.NetworkMemory
	}
	n := int64(c.NetworkFraction * float64(c.TotalFlinkMemory))
	if c.NetworkMax > 0 && n > c.NetworkMax {
		n = c.NetworkMax
	}
	if n < c.NetworkMin {
		n = c.NetworkMin
	}
	if n < 0 {
		n = 0
	}
	return n
}

// TotalSegments is the number of network buffers (memory segments) of the
// TaskManager: network memory / segment size.
func (c NetworkConfig) TotalSegments() int64 {
	if c.SegmentSize <= 0 {
		return 0
	}
	return c.NetworkMemoryBytes() / c.SegmentSize
}

// NetworkUse is the network buffer need of the worst TaskManager.
type NetworkUse struct {
	// Slots is the number of slots the worst TaskManager holds; Subtasks,
	// Gates and Partitions count what runs in them.
	Slots      int `json:"slots"`
	Subtasks   int `json:"subtasks"`
	Gates      int `json:"gates"`
	Partitions int `json:"partitions"`
	// TaskManagers is the number of TaskManagers the layout needs (or was
	// given).
	TaskManagers int `json:"taskManagers"`
	// AllLocal is true when every channel is local (one TaskManager): Flink
	// 1.20 then reserves no exclusive buffers.
	AllLocal bool `json:"allLocal,omitempty"`
	// Required is the sum of the buffer pools' minimums: what Flink must
	// reserve or fail with "Insufficient number of network buffers".
	Required int64 `json:"required"`
	// MaxUse is the most the tasks use: every pool at its maximum plus the
	// result partitions' overdraft buffers.
	MaxUse int64 `json:"maxUse"`
	// Available is the TaskManager's total network segments.
	Available int64 `json:"available"`
	// Fits is Required ≤ Available.
	Fits bool `json:"fits"`
	// MinNetworkBytes is the least network memory that fits: Required ×
	// segment size (set taskmanager.memory.network.min to at least this,
	// or raise the fraction).
	MinNetworkBytes int64 `json:"minNetworkBytes"`
}

type bufCost struct{ req, max int64 }

// NetworkNeed computes the network buffers of the worst TaskManager when
// the job graph runs at parallelism par (missing vertices keep their
// current parallelism) with slotsPerTM slots per TaskManager on
// taskManagers TaskManagers (0: as many as the slots need).
//
// Slots follow slot sharing: a group takes as many slots as its largest
// parallelism, and its slot i holds subtask i of every vertex of the group
// whose parallelism exceeds i. The worst TaskManager is taken to hold the
// slotsPerTM costliest slots of the job (the first TaskManager of a
// single-group job). Channels are counted as remote unless the job runs on
// a single TaskManager, since Flink does not promise which TaskManager a
// slot lands on: exact for Flink 2.x (where it does not matter) and an
// upper bound for Flink 1.20.
func NetworkNeed(vertices []Vertex, par map[string]int, slotsPerTM, taskManagers int, cfg NetworkConfig) NetworkUse {
	if slotsPerTM < 1 {
		slotsPerTM = 1
	}
	p := make(map[string]int, len(vertices))
	for _, v := range vertices {
		n := v.Parallelism
		if q, ok := par[v.ID]; ok {
			n = q
		}
		if n < 1 {
			n = 1
		}
		p[v.ID] = n
	}
	group := func(v Vertex) string {
		if v.SlotSharingGroup == "" {
			return "default"
		}
		return v.SlotSharingGroup
	}
	groupSlots := map[string]int{}
	for _, v := range vertices {
		if p[v.ID] > groupSlots[group(v)] {
			groupSlots[group(v)] = p[v.ID]
		}
	}
	totalSlots := 0
	for _, n := range groupSlots {
		totalSlots += n
	}
	tms := taskManagers
	if tms < 1 {
		tms = (totalSlots + slotsPerTM - 1) / slotsPerTM
	}
	allLocal := tms <= 1

	// outputs[u] lists the downstream ends of u's output edges.
	type edge struct{ down, ship string }
	outputs := map[string][]edge{}
	for _, v := range vertices {
		for _, in := range v.Inputs {
			if _, ok := p[in.ID]; ok {
				outputs[in.ID] = append(outputs[in.ID], edge{v.ID, in.ShipStrategy})
			}
		}
	}

	b := int64(max(cfg.BuffersPerChannel, 0))
	f := int64(max(cfg.FloatingBuffersPerGate, 0))
	od := int64(max(cfg.MaxOverdraftBuffersPerGate, 0))
	gate := func(n int64) bufCost {
		if n < 1 {
			return bufCost{}
		}
		req := n*b + 1
		if cfg.RequiredPerGateMax > 0 && int64(cfg.RequiredPerGateMax) < req {
			req = int64(cfg.RequiredPerGateMax)
		}
		mx := max(n*b+f, req)
		e := min(b, (req-1)/n)
		r := n
		if allLocal {
			r = 0
		}
		return bufCost{r*e + req - n*e, r*e + mx - n*e}
	}
	partition := func(s int64) bufCost {
		req := s + 1
		return bufCost{req, max(s*b+f, req) + od}
	}

	names := make([]string, 0, len(groupSlots))
	for g := range groupSlots {
		names = append(names, g)
	}
	sort.Strings(names)
	var slots []bufCost
	var counts [][3]int
	for _, g := range names {
		for i := 0; i < groupSlots[g]; i++ {
			var c bufCost
			var k [3]int
			for _, v := range vertices {
				pv := p[v.ID]
				if group(v) != g || pv <= i {
					continue
				}
				k[0]++
				for _, in := range v.Inputs {
					pu, ok := p[in.ID]
					if !ok {
						continue
					}
					gc := gate(int64(channels(pu, pv, i, in.ShipStrategy)))
					c.req += gc.req
					c.max += gc.max
					k[1]++
				}
				for _, o := range outputs[v.ID] {
					pc := partition(int64(subpartitions(pv, p[o.down], i, o.ship)))
					c.req += pc.req
					c.max += pc.max
					k[2]++
				}
			}
			slots = append(slots, c)
			counts = append(counts, k)
		}
	}
	idx := make([]int, len(slots))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := slots[idx[a]], slots[idx[b]]
		if x.req != y.req {
			return x.req > y.req
		}
		return x.max > y.max
	})
	maxes := make([]int64, len(slots))
	for i, s := range slots {
		maxes[i] = s.max
	}
	sort.Slice(maxes, func(a, b int) bool { return maxes[a] > maxes[b] })

	u := NetworkUse{TaskManagers: tms, AllLocal: allLocal}
	for j := 0; j < len(idx) && j < slotsPerTM; j++ {
		s := idx[j]
		u.Slots++
		u.Required += slots[s].req
		u.MaxUse += maxes[j]
		u.Subtasks += counts[s][0]
		u.Gates += counts[s][1]
		u.Partitions += counts[s][2]
	}
	u.Available = cfg.TotalSegments()
	u.Fits = u.Required <= u.Available
	u.MinNetworkBytes = u.Required * cfg.SegmentSize
	return u
}

func pointwise(ship string) bool { return ship == ShipForward || ship == ShipRescale }

// channels is the number of input channels of downstream subtask j.
func channels(pu, pd, j int, ship string) int {
	if !pointwise(ship) {
		return pu
	}
	if pu >= pd {
		return (j+1)*pu/pd - j*pu/pd
	}
	return 1
}

// subpartitions is the number of subpartitions of upstream subtask k's
// result partition.
func subpartitions(pu, pd, k int, ship string) int {
	if !pointwise(ship) {
		return pd
	}
	if pu < pd {
		return (k+1)*pd/pu - k*pd/pu
	}
	return 1
}
