package kafka

import (
	"fmt"
	"slices"

	"github.com/flinkscale/flinkscale/metrics"
)

// TopicPartition names a partition in the pure helpers' results.
type TopicPartition struct {
	Topic     string
	Partition int
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Lag is the group's lag on a partition: the records between its committed
// offset and the log end. ok is true only when that is exactly what the
// number is:
//
//   - Start ≤ Committed ≤ End: End − Committed, true.
//   - Committed < 0 (no commit): -1, false. The lag is unknown — where the
//     consumer starts depends on its reset policy — and is never zero.
//   - 0 ≤ Committed < Start: retention (or DeleteRecords) removed records
//     the group had not read. The consumer cannot resume at Committed; the
//     most it can still read is the whole log, so Lag is End − Start, false
//     (and Start − Committed records were lost: see Lost).
//   - Committed > End: the log was truncated or the topic recreated under
//     the group: 0, false.
//
// A partition with End < Start (an inconsistent reading) gives 0, false.
func Lag(p metrics.KafkaPartition) (int64, bool) {
	switch {
	case p.End < p.Start || p.Start < 0:
		return 0, false
	case p.Committed < 0:
		return -1, false
	case p.Committed < p.Start:
		return p.End - p.Start, false
	case p.Committed > p.End:
		return 0, false
	}
	return p.End - p.Committed, true
}

// Lost is how many records the group skipped because they were deleted
// before it committed past them (Start − Committed when 0 ≤ Committed <
// Start), else 0.
func Lost(p metrics.KafkaPartition) int64 {
	if p.Committed >= 0 && p.Committed < p.Start && p.Start <= p.End {
		return p.Start - p.Committed
	}
	return 0
}

// ArrivalRates is each partition's arrival rate between two samples, in
// records per second: (End_last − End_first) / (last.At − first.At).
// Partitions that cannot have a rate are omitted and named in the second
// result ("<topic>-<partition>: <why>", sorted): those in only one of the
// samples, and those whose end offset went backwards (the topic was deleted
// and recreated). If last is not after first, no rate is computed and the
// second result says so.
func ArrivalRates(first, last metrics.KafkaSample) (map[TopicPartition]float64, []string) {
	dt := last.At.Sub(first.At).Seconds()
	if !(dt > 0) || first.At.IsZero() || last.At.IsZero() {
		return nil, []string{fmt.Sprintf("samples: interval %s is not positive", last.At.Sub(first.At))}
	}
	ends := make(map[TopicPartition]int64, len(first.Partitions))
	for _, p := range first.Partitions {
		ends[TopicPartition{p.Topic, p.Partition}] = p.End
	}
	rates := make(map[TopicPartition]float64, len(last.Partitions))
	var omitted []string
	for _, p := range last.Partitions {
		tp := TopicPartition{p.Topic, p.Partition}
		e0, ok := ends[tp]
		if !ok {
			omitted = append(omitted, tp.String()+": not in the first sample")
			continue
		}
		delete(ends, tp)
		if p.End < e0 {
			omitted = append(omitted, fmt.Sprintf("%s: end offset went backwards (%d to %d; topic recreated?)", tp, e0, p.End))
			continue
		}
		rates[tp] = float64(p.End-e0) / dt
	}
	for tp := range ends {
		omitted = append(omitted, tp.String()+": not in the last sample")
	}
	slices.Sort(omitted)
	return rates, omitted
}
