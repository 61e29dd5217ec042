package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/metrics"
)

func TestLag(t *testing.T) {
	for _, tc := range []struct {
		name             string
		end, start, comm int64
		lag              int64
		ok               bool
		lost             int64
	}{
		{"caught up", 100, 0, 100, 0, true, 0},
		{"behind", 100, 10, 40, 60, true, 0},
		{"at log start", 100, 10, 10, 90, true, 0},
		{"empty log, committed 0", 0, 0, 0, 0, true, 0},
		{"no commit", 100, 0, -1, -1, false, 0},
		{"no commit on an empty log is not zero lag", 0, 0, -1, -1, false, 0},
		{"below log start", 100, 30, 10, 70, false, 20},
		{"past the end (recreated)", 100, 0, 150, 0, false, 0},
		{"inconsistent", 10, 20, 15, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := metrics.KafkaPartition{Topic: "t", End: tc.end, Start: tc.start, Committed: tc.comm}
			lag, ok := Lag(p)
			assert.Equal(t, tc.lag, lag)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.lost, Lost(p))
		})
	}
}

func TestArrivalRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	first := metrics.KafkaSample{At: t0, Partitions: []metrics.KafkaPartition{
		{Topic: "a", Partition: 0, End: 100},
		{Topic: "a", Partition: 1, End: 500},
		{Topic: "a", Partition: 2, End: 7},
		{Topic: "gone", Partition: 0, End: 1},
	}}
	last := metrics.KafkaSample{At: t0.Add(4 * time.Second), Partitions: []metrics.KafkaPartition{
		{Topic: "a", Partition: 0, End: 500},
		{Topic: "a", Partition: 1, End: 20}, // recreated
		{Topic: "a", Partition: 2, End: 7},
		{Topic: "new", Partition: 0, End: 9},
	}}
	rates, omitted := ArrivalRates(first, last)
	assert.Equal(t, map[TopicPartition]float64{{"a", 0}: 100, {"a", 2}: 0}, rates)
	assert.Equal(t, []string{
		"a-1: end offset went backwards (500 to 20; topic recreated?)",
		"gone-0: not in the last sample",
		"new-0: not in the first sample",
	}, omitted)

	for _, at := range []time.Time{t0, t0.Add(-time.Second)} {
		last.At = at
		rates, omitted = ArrivalRates(first, last)
		assert.Nil(t, rates)
		assert.Len(t, omitted, 1)
		assert.Contains(t, omitted[0], "not positive")
	}
	rates, omitted = ArrivalRates(metrics.KafkaSample{}, metrics.KafkaSample{At: t0})
	assert.Nil(t, rates)
	assert.Len(t, omitted, 1)
}

func bigSample(at time.Time, n int, scale int64) metrics.KafkaSample {
	s := metrics.KafkaSample{At: at, Partitions: make([]metrics.KafkaPartition, n)}
	for i := range n {
		s.Partitions[i] = metrics.KafkaPartition{Topic: fmt.Sprintf("t%d", i/1000), Partition: i % 1000,
			End: int64(i) * scale, Start: 0, Committed: int64(i)}
	}
	return s
}

// BenchmarkLag10k is the pure lag and arrival-rate computation over 10,000
// partitions.
func BenchmarkLag10k(b *testing.B) {
	t0 := time.Unix(0, 0)
	first, last := bigSample(t0, 10_000, 2), bigSample(t0.Add(10*time.Second), 10_000, 3)
	b.ReportAllocs()
	for b.Loop() {
		var total int64
		for _, p := range last.Partitions {
			if l, ok := Lag(p); ok {
				total += l
			}
		}
		rates, omitted := ArrivalRates(first, last)
		if len(rates) != 10_000 || len(omitted) != 0 || total == 0 {
			b.Fatal(len(rates), len(omitted), total)
		}
	}
}
