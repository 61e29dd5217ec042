package sim

import (
	"testing"
	"time"
)

// BenchmarkSimulatedHour is one hour of virtual time of the pipeline job at
// 1 s steps, in memory: what a 24-hour scenario costs is 24× this.
func BenchmarkSimulatedHour(b *testing.B) {
	spec := pipeline()
	for b.Loop() {
		j, err := NewJob(spec, Options{Start: t0, Seed: 1, Load: constant(spec, 2500)})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Submit(Submission{}); err != nil {
			b.Fatal(err)
		}
		if err := j.Advance(time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
