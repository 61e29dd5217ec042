package scenario

import (
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse: Parse never panics, and a scenario it accepts has finite,
// non-negative rates at any instant, splits them over its partitions, and
// survives Marshal and Parse with the same rates.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(libraryDir, "*.yaml"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(doc(1, "1h", "{kind: ramp, from: 0, to: 10, for: 1m}", "{kind: noise, percent: 99.9, correlation: 1ms}")))
	f.Add([]byte(doc(-9, "90s", "{kind: diurnal, base: 1e9, amplitude: -1e9, period: 1ms, phase: -720h}")))
	f.Add([]byte(doc(2, "1ns", "{kind: spike, rate: 0, peak: 1e300, at: 0s, width: 1ns}")))
	f.Add([]byte("{}"))
	f.Add([]byte("- a\n- b"))
	f.Add([]byte("name: [\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		h := fnv.New64a()
		h.Write(data)
		seed := h.Sum64()
		instants := []time.Duration{0, s.Duration / 2, s.Duration, s.Duration + time.Hour, -time.Second}
		for range 8 {
			seed = splitmix64(seed)
			instants = append(instants, time.Duration(seed%uint64(s.Duration+1)))
		}
		back, err := s.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(back)
		if err != nil {
			t.Fatalf("a marshaled scenario does not parse: %v\n%s", err, back)
		}
		for _, tp := range s.Job.Topics {
			for _, at := range instants {
				r := s.Rate(tp.Name, at)
				if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
					t.Fatalf("rate of %s at %s is %g", tp.Name, at, r)
				}
				if r2 := again.Rate(tp.Name, at); r2 != r {
					t.Fatalf("rate of %s at %s: %g, after a round trip %g", tp.Name, at, r, r2)
				}
				pr := s.PartitionRates(tp.Name, at)
				if len(pr) != tp.Partitions {
					t.Fatalf("%d partition rates for %d partitions", len(pr), tp.Partitions)
				}
				sum := 0.0
				for _, x := range pr {
					if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
						t.Fatalf("partition rate %g", x)
					}
					sum += x
				}
				if math.Abs(sum-r) > 1e-9*max(r, 1) {
					t.Fatalf("partition rates sum to %g, not %g", sum, r)
				}
			}
			var total int64
			for _, n := range s.InitialPartitionLag(tp.Name) {
				if n < 0 {
					t.Fatalf("negative initial lag %d", n)
				}
				total += n
			}
			if total != s.InitialLag[tp.Name] {
				t.Fatalf("initial lag spread to %d, not %d", total, s.InitialLag[tp.Name])
			}
		}
	})
}
