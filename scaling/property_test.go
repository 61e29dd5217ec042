package scaling

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/scaling/assign"
)

// randomJob builds a random but well-formed job of n vertices: a DAG whose
// vertex i reads from one or two earlier vertices (or none: a source), with
// random parallelism, key groups, partitions, busy and backpressure times,
// rates and slot-sharing groups, observed over a healthy window.
func randomJob(r *rand.Rand, n int) Snapshot {
	ships := []string{ShipHash, ShipRebalance, ShipForward, ShipRescale, ShipBroadcast}
	cpus := []float64{0.5, 1, 1.5, 2, 4, 8}
	cpu := cpus[r.IntN(len(cpus))]
	s := snapshot(1)
	s.TaskManagers = TaskManagers{CPU: Float(cpu), Slots: 1 + r.IntN(8), Replicas: 1 + r.IntN(40)}
	for i := range n {
		p := 1 + r.IntN(48)
		maxP := assign.DefaultMaxParallelism(p)
		if r.IntN(3) == 0 {
			maxP = max(p, []int{p, 7, 720, 32768}[r.IntN(4)])
		}
		busy := 1000 * r.Float64()
		bp := (1000 - busy) * r.Float64() * float64(r.IntN(2))
		in := math.Round(1e5*r.Float64()*r.Float64()) * float64(r.IntN(8)+1) / 8
		b := vtx{id: fmt.Sprintf("v%02d", i), p: p, maxP: maxP, busy: busy, busyAvg: busy * (0.2 + 0.8*r.Float64()),
			bp: bp, in: in, out: in * 2 * r.Float64()}
		if r.IntN(2) == 0 {
			b.group = "other"
		}
		if i > 0 && r.IntN(5) != 0 {
			for range 1 + r.IntN(2) {
				up := fmt.Sprintf("v%02d", r.IntN(i))
				if len(b.inputs) == 0 || b.inputs[0].ID != up {
					b.inputs = append(b.inputs, Input{ID: up, ShipStrategy: ships[r.IntN(len(ships))]})
				}
			}
		}
		if len(b.inputs) == 0 && r.IntN(3) != 0 {
			b.partitions = 1 + r.IntN(64)
			b.p = min(b.p, b.partitions)
			b.lag = F(math.Round(1e7 * r.Float64() * r.Float64()))
			b.arrival = F(b.in * 3 * r.Float64())
			if r.IntN(3) == 0 {
				for k := range b.partitions {
					owner := r.IntN(b.p)
					b.partitionRates = append(b.partitionRates, PartitionRate{Topic: fmt.Sprintf("t%d", k%3), Partition: k,
						ArrivalRatePerSecond: Float(100 * r.ExpFloat64()), Subtask: &owner})
				}
			}
		}
		s.Vertices = append(s.Vertices, b.build())
	}
	if r.IntN(3) == 0 {
		s.Checkpoints = &Checkpoints{IntervalMs: 60000, DurationMs: Float(60000 * r.Float64()), RecentFailures: r.IntN(2),
			StateSizeBytes: Float(1e10 * r.Float64() * float64(r.IntN(2)))}
	}
	s.RescaleInPlace = r.IntN(3) == 0
	if r.IntN(4) == 0 {
		s.SlotSharingUnknown = true
		s.TaskManagers.SlotsTotal = s.TaskManagers.Slots * s.TaskManagers.Replicas
		s.TaskManagers.SlotsAvailable = r.IntN(s.TaskManagers.SlotsTotal)
	}
	for i := range s.Vertices {
		if len(s.Vertices[i].Inputs) == 0 && s.Vertices[i].LagRecords != nil && r.IntN(2) == 0 {
			s.Vertices[i].LagSource = LagFromCommittedOffsets
		}
	}
	return s
}

// randomHistory records the sources' arrivals over the last 40 minutes,
// rising, falling or flat with noise, and random recommendations.
func randomHistory(r *rand.Rand, s Snapshot) History {
	var h History
	slope := []float64{0, 0.5, -0.5, 5}[r.IntN(4)]
	for at := -40 * time.Minute; at < 0; at += 30 * time.Second {
		rec := RecommendationRecord{At: t0.Add(at), Parallelism: map[string]int{}, Arrival: map[string]float64{}}
		for _, v := range s.Vertices {
			rec.Parallelism[v.ID] = max(1, v.Parallelism+r.IntN(5)-2)
			if len(v.Inputs) == 0 && v.ArrivalRatePerSecond != nil {
				rec.Arrival[v.ID] = math.Max(0, float64(*v.ArrivalRatePerSecond)*(1+slope*at.Hours())*(0.9+0.2*r.Float64()))
			}
		}
		h.Recommendations = append(h.Recommendations, rec)
	}
	return h
}

// randomPolicy varies what a user may set.
func randomPolicy(r *rand.Rand) Policy {
	p := DefaultPolicy()
	p.Utilization.Target = 0.5 + 0.3*r.Float64()
	p.MaxParallelism = []int{8, 64, 1000}[r.IntN(3)]
	p.Behavior.ScaleDown.StabilizationWindow = D(0)
	if r.IntN(3) == 0 {
		p.Resources.MaxCores = float64(1 + r.IntN(64))
	}
	if r.IntN(3) == 0 {
		p.Resources.SlotsPerTaskManager = SlotCount(1 + r.IntN(4))
	}
	if r.IntN(2) == 0 {
		p.CatchUpDuration = D(0)
	}
	return p
}

// checkInvariants is what every decision must satisfy, whatever the input.
func checkInvariants(t *testing.T, s Snapshot, p Policy, d Decision) {
	t.Helper()
	if _, err := json.Marshal(d); err != nil {
		t.Fatalf("decision does not marshal: %v", err)
	}
	if d.Action != ActionScale && d.Action != ActionHold {
		t.Fatalf("action %q", d.Action)
	}
	if d.Summary == "" || len(d.Reasons) == 0 {
		t.Fatalf("decision without summary or reasons: %+v", d)
	}
	byID := map[string]Vertex{}
	for _, v := range s.Vertices {
		byID[v.ID] = v
	}
	changed := false
	for _, vd := range d.Vertices {
		v := byID[vd.ID]
		if vd.Recommended == vd.Current {
			continue
		}
		changed = true
		if vd.Recommended < 1 || vd.Recommended > v.MaxParallelism {
			t.Fatalf("%s: p=%d outside [1, maxParallelism %d]", vd.ID, vd.Recommended, v.MaxParallelism)
		}
		// (Reactive mode runs every vertex at its group's slots, idle
		// readers included: what Flink will run.)
		if v.Partitions > 0 && len(v.Inputs) == 0 && vd.Recommended > v.Partitions && !s.Reactive {
			t.Fatalf("%s: source at p=%d exceeds its %d partitions", vd.ID, vd.Recommended, v.Partitions)
		}
		if vd.Recommended > p.MaxParallelism || vd.Recommended < p.MinParallelism {
			t.Fatalf("%s: p=%d outside the policy's [%d, %d]: %s\n%s", vd.ID, vd.Recommended, p.MinParallelism, p.MaxParallelism, d.Summary, vd.Explanation)
		}
	}
	if d.Action == ActionScale {
		if !changed {
			t.Fatalf("Scale without a change: %s", d.Summary)
		}
		pl := d.Recommended
		widest := map[string]int{}
		for _, v := range s.Vertices {
			g := v.SlotSharingGroup
			if g == "" {
				g = defaultGroup
			}
			widest[g] = max(widest[g], pl.Parallelism[v.ID])
		}
		need := 0
		for _, w := range widest {
			need += w
		}
		if pl.Slots < need || pl.TaskManagers*pl.SlotsPerTaskManager < pl.Slots {
			t.Fatalf("plan %+v does not cover slot-sharing groups needing %d slots", pl, need)
		}
		if math.Abs(pl.Cores-float64(pl.TaskManagers)*pl.CPUPerTaskManager) > 1e-9 {
			t.Fatalf("plan cores %g ≠ %d × %g", pl.Cores, pl.TaskManagers, pl.CPUPerTaskManager)
		}
		if p.Resources.MaxCores > 0 && pl.Cores > p.Resources.MaxCores+1e-9 {
			t.Fatalf("plan uses %g cores, quota %g", pl.Cores, p.Resources.MaxCores)
		}
		// A rescale that only scales down earns its restart: it frees
		// slots, as Flink will hold them, worth more than the restart.
		up := false
		for _, vd := range d.Vertices {
			up = up || vd.Recommended > vd.Current
		}
		if e := d.Economics; !up && (e == nil || e.PlanSlots >= e.HeldSlots || e.SavedSlotHours < e.RestartSlotHours-1e-9) {
			t.Fatalf("a scale-down that does not pay: %+v: %s", e, d.Summary)
		}
	}
}

func TestPropertyInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	acted := 0
	for range 3000 {
		s := randomJob(r, 1+r.IntN(12))
		p := randomPolicy(r)
		before, _ := json.Marshal(s)
		var h History
		if r.IntN(2) == 0 {
			h = randomHistory(r, s)
		}
		d := Decide(s, p, h, t0)
		if after, _ := json.Marshal(s); string(after) != string(before) {
			t.Fatalf("Decide modified its snapshot")
		}
		checkInvariants(t, s, p, d)
		if d.Action == ActionScale {
			acted++
		}
	}
	// The generator must exercise the acting path, not only holds.
	if acted < 300 {
		t.Fatalf("only %d of 3000 random jobs were rescaled: the generator is too timid", acted)
	}
}

// More load never lowers what the model requires, for any vertex. (The
// recommended plan may: at the lower load a restart can be judged not worth
// it and every vertex kept, while at the higher load one vertex's scale-up
// pays for the restart and an idle neighbor is resized down with it.)
func TestPropertyMoreLoadNeverLowersTheRequirement(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	compared := 0
	for range 2000 {
		s := randomJob(r, 1+r.IntN(10))
		p := randomPolicy(r)
		for i := range s.Vertices {
			if v := &s.Vertices[i]; len(v.Inputs) == 0 && v.ArrivalRatePerSecond == nil {
				v.ArrivalRatePerSecond = F(float64(*v.NumRecordsInPerSecond))
			}
		}
		low := Decide(s, p, History{}, t0)
		k := 1 + 2*r.Float64()
		more := s
		more.Vertices = append([]Vertex(nil), s.Vertices...)
		for i := range more.Vertices {
			if a := more.Vertices[i].ArrivalRatePerSecond; a != nil {
				more.Vertices[i].ArrivalRatePerSecond = F(float64(*a) * k)
			}
		}
		high := Decide(more, p, History{}, t0)
		if len(low.Vertices) != len(high.Vertices) {
			t.Fatalf("vertex count changed")
		}
		for i := range low.Vertices {
			if high.Vertices[i].Required < low.Vertices[i].Required {
				t.Fatalf("%s: ×%.2f load lowered the requirement %d → %d\nlow:  %s\nhigh: %s", low.Vertices[i].ID, k,
					low.Vertices[i].Required, high.Vertices[i].Required, low.Vertices[i].Explanation, high.Vertices[i].Explanation)
			}
			compared++
		}
	}
	if compared < 1000 {
		t.Fatalf("only %d vertices compared", compared)
	}
}

// A job whose every vertex runs exactly at the target utilization, with no
// lag, is left alone.
func TestPropertyAtTargetLoadNothingChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		s := randomJob(r, 1+r.IntN(10))
		p := randomPolicy(r)
		s.Checkpoints = nil
		out := map[string]float64{}
		for i := range s.Vertices {
			v := &s.Vertices[i]
			in := 0.0
			if len(v.Inputs) == 0 {
				in = 1 + 1e4*r.Float64()
				v.ArrivalRatePerSecond = F(in)
				if v.Partitions > 0 {
					v.LagRecords, v.PartitionRates = F(0), nil
				}
			}
			for _, e := range v.Inputs {
				if e.ShipStrategy == ShipBroadcast {
					// Flink counts a broadcast record once per subtask.
					in += float64(v.Parallelism) * out[e.ID]
					continue
				}
				in += out[e.ID]
			}
			out[v.ID] = in * (0.1 + r.Float64())
			u := 1000 * p.Utilization.Target
			v.NumRecordsInPerSecond, v.NumRecordsOutPerSecond = F(in), F(out[v.ID])
			v.BusyTimeMsPerSecond = &Stat{Avg: F(u), Max: F(u)}
			v.BackPressuredTimeMsPerSecond = &Stat{Avg: F(0), Max: F(0)}
		}
		d := Decide(s, p, History{}, t0)
		if d.Action != ActionHold || d.Reasons[0].Code != ReasonWithinBand {
			t.Fatalf("at the target load: %s", d.Summary)
		}
		for _, v := range d.Vertices {
			if v.Recommended != v.Current || math.Abs(v.UtilizationNow-p.Utilization.Target) > 1e-9 {
				t.Fatalf("%s: %s", v.ID, v.Explanation)
			}
		}
	}
}
