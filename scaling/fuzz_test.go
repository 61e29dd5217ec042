package scaling

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flinkscale/flinkscale/scaling/examples"
)

// FuzzDecideSnapshotJSON feeds arbitrary snapshot documents through the
// strict reader and the model: no panic, and every decision satisfies the
// invariants.
func FuzzDecideSnapshotJSON(f *testing.F) {
	files, _ := fs.Glob(examples.FS, "*.json")
	for _, name := range files {
		b, err := examples.FS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"jobState":"RUNNING","vertices":[{"id":"a","parallelism":1,"maxParallelism":1}]}`))
	p := DefaultPolicy()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		now := s.WindowEnd
		d := Decide(s, p, History{}, now)
		checkInvariants(t, s, p, d)
	})
}

// FuzzDecideRandomJob lets the fuzzer steer the random job generator (size,
// seed, policy), reaching shapes a fixed seed does not.
func FuzzDecideRandomJob(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(5))
	f.Add(uint64(7), uint64(0), uint8(40))
	f.Fuzz(func(t *testing.T, a, b uint64, n uint8) {
		r := rand.New(rand.NewPCG(a, b))
		s := randomJob(r, 1+int(n%50))
		p := randomPolicy(r)
		h := History{}.Record(Decide(s, p, History{}, t0.Add(-40*60e9)), 3600e9)
		if n%2 == 1 {
			h = randomHistory(r, s) // arrivals rising, falling or flat: the trend's paths
		}
		checkInvariants(t, s, p, Decide(s, p, h, t0))
	})
}

// FuzzFitTrend: any series of arrival rates gives a finite slope and error,
// a trend only when the slope is not zero, and a forecast that is finite and
// never negative.
func FuzzFitTrend(f *testing.F) {
	f.Add(uint64(1), uint8(61), 1000.0, 2.0, 0.1)
	f.Add(uint64(2), uint8(4), 0.0, 0.0, 0.0)
	f.Add(uint64(3), uint8(30), 1e9, -1e6, 3.0)
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, level, slope, noise float64) {
		r := rand.New(rand.NewPCG(seed, 7))
		var pts []tpoint
		for i := int(n) - 1; i >= 0; i-- {
			at := -30 * float64(i)
			y := level + slope*at + noise*level*(r.Float64()-0.5)
			pts = append(pts, tpoint{t: at, y: y})
		}
		tr := fitTrend(pts, 5*60e9)
		if math.IsNaN(tr.slope) || math.IsNaN(tr.se) {
			for _, p := range pts {
				if math.IsNaN(p.y) || math.IsInf(p.y, 0) {
					return // the model never feeds these: arrivalSeries drops them
				}
			}
			t.Fatalf("NaN slope %g ± %g from finite points", tr.slope, tr.se)
		}
		if tr.significant && tr.slope == 0 {
			t.Fatalf("a significant trend with a zero slope")
		}
		if f := tr.at(math.Abs(level), 600); f < 0 || math.IsNaN(f) && !math.IsNaN(level) && !math.IsInf(tr.slope, 0) {
			t.Fatalf("forecast %g", f)
		}
	})
}

// FuzzFloat: any input either fails cleanly or round-trips.
func FuzzFloat(f *testing.F) {
	for _, s := range []string{`1`, `"1.5E7"`, `"NaN"`, `"-Inf"`, `null`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v Float
		if err := json.Unmarshal(data, &v); err != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q decoded but does not encode: %v", data, err)
		}
		var back Float
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not decode again: %v", b, err)
		}
		if v == v && back != v { // NaN ≠ NaN
			t.Fatalf("%q → %v → %s → %v", data, v, b, back)
		}
	})
}

// FuzzReadPolicy: a policy either fails with an error or validates, and the
// model accepts it.
func FuzzReadPolicy(f *testing.F) {
	f.Add(`{"utilization":{"target":0.6,"min":0.3,"max":0.9},"behavior":{"scaleUp":{"maxFactor":3}}}`)
	f.Add(`{"resources":{"slotsPerTaskManager":"auto","maxCores":12}}`)
	f.Add(`{"vertices":[{"name":"Sink","exclude":true}]}`)
	s := snapshot(2,
		vtx{id: "src", p: 2, busy: 900, in: 1000, out: 1000, partitions: 8, lag: F(1e5), arrival: F(2000)},
		vtx{id: "sink", p: 2, busy: 300, in: 1000, out: 0, inputs: from("src", ShipHash)},
	)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ReadPolicy(strings.NewReader(doc))
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ReadPolicy returned an invalid policy: %v", err)
		}
		d := Decide(s, p, History{}, t0)
		for _, r := range d.Reasons {
			if r.Code == ReasonInvalidPolicy {
				t.Fatalf("Decide rejects a policy ReadPolicy accepted: %s", r.Message)
			}
		}
		checkInvariants(t, s, p, d)
	})
}

// FuzzDecideClusterShapes: random jobs on clusters the job does not own or
// cannot reshape (fixed slots, TaskManagers that cannot grow, a shared
// session cluster, reactive mode) keep the invariants, and each shape's
// promise: fixed slots are kept; a Scale fits the slots the job holds plus
// those free; reactive plans run every vertex at its group's share.
func FuzzDecideClusterShapes(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(5), uint8(0b1111), uint16(3))
	f.Add(uint64(9), uint64(4), uint8(12), uint8(0b0010), uint16(0))
	f.Add(uint64(3), uint64(3), uint8(2), uint8(0b1000), uint16(40))
	f.Fuzz(func(t *testing.T, a, b uint64, n, shape uint8, free uint16) {
		r := rand.New(rand.NewPCG(a, b))
		s := randomJob(r, 1+int(n%30))
		p := randomPolicy(r)
		tm := &s.TaskManagers
		tm.FixedSlots = shape&1 != 0
		tm.FixedTaskManagers = shape&2 != 0
		tm.Shared = shape&4 != 0
		s.Reactive = shape&8 != 0
		if tm.FixedTaskManagers || tm.Shared {
			tm.SlotsAvailable = int(free % 200)
			tm.SlotsTotal = tm.SlotsAvailable + tm.Slots*tm.Replicas
		}
		d := Decide(s, p, History{}, t0)
		checkInvariants(t, s, p, d)
		if d.Action != ActionScale {
			return
		}
		if tm.FixedSlots && tm.Slots > 0 && d.Recommended.SlotsPerTaskManager != tm.Slots {
			t.Fatalf("fixed slots %d, plan has %d per TaskManager", tm.Slots, d.Recommended.SlotsPerTaskManager)
		}
		if tm.FixedTaskManagers && tm.SlotsTotal > 0 && !s.Reactive && d.Recommended.Slots > d.Current.Slots+tm.SlotsAvailable {
			t.Fatalf("plan of %d slots on a cluster where the job holds %d and %d are free", d.Recommended.Slots, d.Current.Slots, tm.SlotsAvailable)
		}
		if s.Reactive {
			groups := map[string]int{}
			for _, v := range s.Vertices {
				g := v.SlotSharingGroup
				q := d.Recommended.Parallelism[v.ID]
				if v.MaxParallelism > 0 && q == v.MaxParallelism {
					continue // capped by its max parallelism
				}
				if w, ok := groups[g]; ok && w != q {
					t.Fatalf("reactive plan runs group %q at %d and %d", g, w, q)
				}
				groups[g] = q
			}
		}
	})
}
