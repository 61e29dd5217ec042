package kafka

import (
	"context"
	"testing"

	"github.com/flinkscale/flinkscale/test/sim"
)

var benchTopics = []sim.TopicSpec{{Name: "bench", Partitions: 64}}

func benchCounts() map[sim.TopicPartition]int64 {
	counts := map[sim.TopicPartition]int64{}
	for _, tp := range allTPs(benchTopics) {
		counts[tp] = 50_000 // one virtual second at 50k records/s/partition
	}
	return counts
}

// BenchmarkProduce is one Produce call over 64 partitions.
func BenchmarkProduce(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"stored", nil}, {"blackhole", []Option{WithBlackhole()}}} {
		b.Run(mode.name, func(b *testing.B) {
			k := startBroker(b, benchTopics, mode.opts...)
			ctx := context.Background()
			counts := benchCounts()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ends, err := k.Produce(ctx, counts)
				if err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					b.StopTimer()
					if err := k.Trim(ctx, ends); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(len(counts)), "partitions/op")
		})
	}
}

// BenchmarkCommit is one Commit of 64 partitions' offsets.
func BenchmarkCommit(b *testing.B) {
	k := startBroker(b, benchTopics)
	ctx := context.Background()
	ends, err := k.Produce(ctx, benchCounts())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Commit(ctx, "bench", ends); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndOffsets is one EndOffsets of 64 partitions (kadm
// ListEndOffsets: a metadata request and a ListOffsets request).
func BenchmarkEndOffsets(b *testing.B) {
	k := startBroker(b, benchTopics)
	ctx := context.Background()
	tps := allTPs(benchTopics)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.EndOffsets(ctx, tps); err != nil {
			b.Fatal(err)
		}
	}
}
