package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeries(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	for s := 100; s <= 160; s += 30 {
		w.AddFlink(flinkAt(s, "j1"))
		k := kafkaAt(s)
		k.At = k.At.Add(time.Second) // the brokers are read just after Flink
		w.AddKafka(k)
	}
	pts := w.Series()
	require.Len(t, pts, 6, "one point per Flink sample and per brokers' sample")
	for i := 1; i < len(pts); i++ {
		assert.False(t, pts[i].At.Before(pts[i-1].At), "in time order")
	}
	// Flink at 100 s: no previous sample, so the meter (990 rec/s); at
	// 130 s and 160 s the counters: (130 000 − 100 000) / 30 s = 1000.
	flink := []Point{pts[0], pts[2], pts[4]}
	for i, want := range []float64{990, 1000, 1000} {
		require.NotNil(t, flink[i].ProcessedRate, i)
		assert.InDelta(t, want, *flink[i].ProcessedRate, 1e-9, i)
		assert.Nil(t, flink[i].LagRecords, "brokers give the lag")
		assert.Nil(t, flink[i].ArrivalRate)
	}
	// Brokers: lag = (800s − 600s + 2000) + (400s − 400s + 1000) = 200s + 3000:
	// 23 000 at s = 100; arrival (800 + 400)·30 / 30 s = 1200 rec/s from the
	// second sample on.
	kafka := []Point{pts[1], pts[3], pts[5]}
	for i, s := range []float64{100, 130, 160} {
		require.NotNil(t, kafka[i].LagRecords)
		assert.InDelta(t, 200*s+3000, *kafka[i].LagRecords, 1e-9)
		assert.Nil(t, kafka[i].ProcessedRate)
	}
	assert.Nil(t, kafka[0].ArrivalRate)
	for _, p := range kafka[1:] {
		require.NotNil(t, p.ArrivalRate)
		assert.InDelta(t, 1200, *p.ArrivalRate, 1e-9)
	}
}

func TestSeriesWithoutBrokersAndOddOffsets(t *testing.T) {
	w := NewWindow(5 * time.Minute)
	w.AddFlink(flinkAt(0, "j"))
	w.AddFlink(flinkAt(30, "j"))
	pts := w.Series()
	require.Len(t, pts, 2)
	require.NotNil(t, pts[1].LagRecords)
	assert.InDelta(t, 4000, *pts[1].LagRecords, 1e-9, "pendingRecords without brokers")

	// A partition's end offset going backwards (a recreated topic) gives no
	// arrival rate; a partition never committed gives no lag.
	a := KafkaSample{At: t0, Partitions: []KafkaPartition{{Topic: "t", Partition: 0, End: 500, Committed: -1}}}
	b := KafkaSample{At: t0.Add(10 * time.Second), Partitions: []KafkaPartition{{Topic: "t", Partition: 0, End: 100, Committed: -1}}}
	w = NewWindow(time.Minute)
	w.AddKafka(a)
	w.AddKafka(b)
	for _, p := range w.Series() {
		assert.Nil(t, p.ArrivalRate)
		assert.Nil(t, p.LagRecords)
	}
}
