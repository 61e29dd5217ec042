package scenario

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/kafka"
)

// BenchmarkDiurnalDay runs the 24-hour diurnal scenario at 1 s steps, with
// the topics in memory and in kfake over the Kafka protocol (appending every
// 5 s of virtual time): what one simulated day costs.
func BenchmarkDiurnalDay(b *testing.B) {
	s, err := Load(filepath.Join(libraryDir, "diurnal-day.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			j, err := s.NewJob(nil, start, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := j.Advance(s.Duration); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kfake", func(b *testing.B) {
		for b.Loop() {
			broker, err := kafka.Start(s.Job.Topics)
			if err != nil {
				b.Fatal(err)
			}
			var k sim.Kafka = broker
			j, err := s.NewJob(k, start, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if err := j.Advance(s.Duration); err != nil {
				b.Fatal(err)
			}
			broker.Close()
		}
	})
}
