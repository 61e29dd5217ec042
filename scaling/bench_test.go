package scaling

import (
	"fmt"
	"testing"
	"time"
)

// layeredJob is a 50-vertex job: 5 Kafka sources of 32 partitions (with
// per-partition rates and owners), then 9 layers of 5 vertices, each reading
// two vertices of the layer above by key or rebalance, in two slot-sharing
// groups. Load is 2.5× what the job handles, so Decide runs every stage.
func layeredJob() Snapshot {
	const width, layers = 5, 10
	var vs []vtx
	for l := range layers {
		for i := range width {
			b := vtx{id: fmt.Sprintf("l%d-v%d", l, i), p: 8, maxP: 128, busy: 900, busyAvg: 700, bp: 20, in: 8000, out: 8000}
			if l%2 == 1 {
				b.group = "heavy"
			}
			if l == 0 {
				b.partitions, b.lag, b.arrival = 32, F(2e6), F(20000)
				for k := range 32 {
					owner := k % 8
					b.partitionRates = append(b.partitionRates, PartitionRate{Topic: fmt.Sprintf("topic-%d", i), Partition: k,
						ArrivalRatePerSecond: Float(400 + 50*(k%5)), Subtask: &owner})
				}
			} else {
				ship := ShipHash
				if l%3 == 0 {
					ship = ShipRebalance
				}
				b.inputs = []Input{{ID: fmt.Sprintf("l%d-v%d", l-1, i), ShipStrategy: ship}, {ID: fmt.Sprintf("l%d-v%d", l-1, (i+1)%width), ShipStrategy: ship}}
				b.in, b.out = 16000, 16000
			}
			vs = append(vs, b)
		}
	}
	s := snapshot(4, vs...)
	s.Checkpoints = &Checkpoints{IntervalMs: 60000, DurationMs: 5000}
	return s
}

func BenchmarkDecide50Vertices(b *testing.B) {
	s, p := layeredJob(), DefaultPolicy()
	if d := Decide(s, p, History{}, t0); d.Action != ActionScale || len(d.Vertices) != 50 {
		b.Fatalf("the benchmark job should rescale all 50 vertices: %s", d.Summary)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(s, p, History{}, t0)
	}
}

// With history: 30 minutes of recommendations every 30 s and three past
// rescales per vertex, so the stabilization windows and the USL fit run.
func BenchmarkDecide50VerticesWithHistory(b *testing.B) {
	s, p := layeredJob(), DefaultPolicy()
	var h History
	for i := 60; i > 0; i-- {
		h = h.Record(Decide(s, p, History{}, t0.Add(-time.Duration(i)*30*time.Second)), time.Hour)
	}
	for k, q := range []int{2, 4, 6} {
		r := RescaleRecord{DecidedAt: t0.Add(-time.Duration(5-k) * time.Hour), CompletedAt: t0.Add(-time.Duration(5-k)*time.Hour + 2*time.Minute),
			Downtime: D(time.Minute), Outcome: OutcomeSucceeded}
		for _, v := range s.Vertices {
			r.Vertices = append(r.Vertices, RescaleVertex{ID: v.ID, From: q, To: q + 2, TrueRateBefore: 1000 * float64(q) * 0.95, TrueRateAfter: 1000 * float64(q+2) * 0.9})
		}
		h.Rescales = append(h.Rescales, r)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(s, p, h, t0)
	}
}

// With a rising load: 30 minutes of recommendations every 30 s with every
// source's arrival rising 1 % a minute to the 20000 rec/s of now, so the
// trend is fitted, plans for the load ahead are weighed (13, each scanned
// over the horizon) and the plan's economics computed.
func BenchmarkDecide50VerticesRisingLoad(b *testing.B) {
	s, p := layeredJob(), DefaultPolicy()
	var h History
	for i := 60; i > 0; i-- {
		at := t0.Add(-time.Duration(i) * 30 * time.Second)
		r := RecommendationRecord{At: at, Parallelism: map[string]int{}, Arrival: map[string]float64{}}
		for _, v := range s.Vertices {
			r.Parallelism[v.ID] = v.Parallelism
			if v.IsSource() {
				r.Arrival[v.ID] = 20000 * (1 + 0.01*at.Sub(t0).Minutes())
			}
		}
		h.Recommendations = append(h.Recommendations, r)
	}
	d := Decide(s, p, h, t0)
	if d.Action != ActionScale || d.Economics == nil || len(d.Economics.Trends) == 0 || !d.Economics.Trends[0].Significant {
		b.Fatalf("the benchmark job should see its load rise: %s %+v", d.Summary, d.Economics)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(s, p, h, t0)
	}
}
