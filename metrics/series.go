package metrics

import (
	"sort"
	"time"
)

// Point is the job at one sample of the window, for charts and reports. A
// nil field was not measured at that sample.
type Point struct {
	At time.Time
	// ArrivalRate is the records per second appended to the partitions the
	// brokers reported at this sample and the previous one (brokers'
	// samples only).
	ArrivalRate *float64
	// ProcessedRate is the records per second the job's sources read:
	// from the counters between this Flink sample and the previous one,
	// else Flink's own meter (Flink samples only).
	ProcessedRate *float64
	// LagRecords is the consumer lag: end minus committed offsets over the
	// partitions with a committed offset (brokers' samples), or the
	// sources' pendingRecords (Flink samples without brokers).
	LagRecords *float64
}

// Series is the window as points in time order: one per brokers' sample
// (arrival rate and lag) and one per Flink sample (processed rate, and
// pendingRecords lag when no brokers' sample exists). Samples the window
// dropped on a restart are not in it.
func (w *Window) Series() []Point {
	var out []Point
	for i, s := range w.kafka {
		p := Point{At: s.At}
		lag, known := 0.0, false
		for _, part := range s.Partitions {
			if part.Committed >= 0 {
				lag += float64(max(0, part.End-part.Committed))
				known = true
			}
		}
		if known {
			p.LagRecords = &lag
		}
		if i > 0 {
			if r, ok := arrival(w.kafka[i-1], s); ok {
				p.ArrivalRate = &r
			}
		}
		out = append(out, p)
	}
	var prev *FlinkSample
	for i, s := range w.flink {
		p := Point{At: s.At}
		s.Vertices = w.vertices(i) // s is a copy
		if r, ok := processed(prev, s); ok {
			p.ProcessedRate = &r
		}
		if len(w.kafka) == 0 {
			pending, ok := 0.0, false
			for _, v := range s.Vertices {
				if len(v.Inputs) == 0 && v.PendingRecords != nil {
					pending += *v.PendingRecords
					ok = true
				}
			}
			if ok {
				p.LagRecords = &pending
			}
		}
		out = append(out, p)
		prev = &s
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// arrival is the append rate between two brokers' samples over the
// partitions both report; false if none is common, time did not move or an
// end offset went backwards (a recreated topic).
func arrival(a, b KafkaSample) (float64, bool) {
	dt := b.At.Sub(a.At).Seconds()
	if dt <= 0 {
		return 0, false
	}
	type key struct {
		topic     string
		partition int
	}
	before := make(map[key]int64, len(a.Partitions))
	for _, p := range a.Partitions {
		before[key{p.Topic, p.Partition}] = p.End
	}
	sum, common := 0.0, false
	for _, p := range b.Partitions {
		end, ok := before[key{p.Topic, p.Partition}]
		if !ok {
			continue
		}
		if p.End < end {
			return 0, false
		}
		sum += float64(p.End - end)
		common = true
	}
	return sum / dt, common
}

// processed is the sources' read rate at s: the counters' growth since
// prev when both samples have them for every source, else the sum of the
// sources' meters.
func processed(prev *FlinkSample, s FlinkSample) (float64, bool) {
	var sources []VertexSample
	for _, v := range s.Vertices {
		if len(v.Inputs) == 0 {
			sources = append(sources, v)
		}
	}
	if len(sources) == 0 {
		return 0, false
	}
	if prev != nil {
		if dt := s.MetricsAt().Sub(prev.MetricsAt()).Seconds(); dt > 0 {
			sum, ok := 0.0, true
			for _, v := range sources {
				var before *float64
				for _, pv := range prev.Vertices {
					if pv.ID == v.ID {
						before = pv.NumRecordsIn
					}
				}
				if v.NumRecordsIn == nil || before == nil || *v.NumRecordsIn < *before {
					ok = false
					break
				}
				sum += *v.NumRecordsIn - *before
			}
			if ok {
				return sum / dt, true
			}
		}
	}
	sum := 0.0
	for _, v := range sources {
		if v.NumRecordsInPerSecond == nil {
			return 0, false
		}
		sum += *v.NumRecordsInPerSecond
	}
	return sum, true
}
