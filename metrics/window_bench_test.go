package metrics

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
)

// decodedSample is a poll of a job of 10 vertices (a Kafka source reading
// 10 partitions, then a chain), as the REST collector returns it: every
// string and number freshly allocated, as JSON decoding leaves them.
func decodedSample(at time.Time) FlinkSample {
	clone := strings.Clone
	s := FlinkSample{At: at, JobID: clone("0123456789abcdef0123456789abcdef"), JobName: clone("orders-enrichment"), State: clone("RUNNING"),
		FlinkVersion: clone("1.20.3"), StateBackend: clone("rocksdb"), RunningSince: time.Unix(1700000000, 0).Add(-time.Hour),
		Missing:      []string{clone("metrics fetcher: primed")},
		Checkpoints:  &CheckpointSample{Interval: time.Minute, LastDuration: time.Second},
		TaskManagers: &TaskManagerSample{CPU: 2, Slots: 2, Replicas: 2}}
	for v := 0; v < 10; v++ {
		vs := VertexSample{ID: clone(fmt.Sprintf("%032x", v+1)), Name: clone(fmt.Sprintf("Operator %d -> Map", v)), Parallelism: 4, MaxParallelism: 128,
			SlotSharingGroup:    clone("default"),
			BusyTimeMsPerSecond: &Agg{500, 600}, BackPressuredTimeMsPerSecond: &Agg{0, 0},
			NumRecordsIn: f(1e6), NumRecordsOut: f(1e6), NumRecordsInPerSecond: f(1000), NumRecordsOutPerSecond: f(1000)}
		if v == 0 {
			vs.PendingRecords = f(100)
			for p := 0; p < 10; p++ {
				vs.Partitions = append(vs.Partitions, PartitionOwner{Topic: clone("orders"), Partition: p, Subtask: p % 4, CurrentOffset: 1e6, CommittedOffset: 1e6})
			}
		} else {
			vs.Inputs = []scaling.Input{{ID: clone(fmt.Sprintf("%032x", v)), ShipStrategy: clone("FORWARD")}}
		}
		s.Vertices = append(s.Vertices, vs)
	}
	return s
}

// What a job's metrics window keeps after 5 minutes of 30 s polls (11
// samples), compact (as the controller runs) and whole.
//
//	go test ./metrics -run '^$' -bench WindowRetained
func BenchmarkWindowRetained(b *testing.B) {
	for _, keepWhole := range []bool{false, true} {
		b.Run(fmt.Sprintf("whole=%v", keepWhole), func(b *testing.B) {
			const jobs = 100
			var ms runtime.MemStats
			for i := 0; i < b.N; i++ {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				ws := make([]*Window, jobs)
				at := time.Unix(1700000000, 0)
				for j := range ws {
					ws[j] = NewWindow(5 * time.Minute)
					ws[j].keepWhole = keepWhole
				}
				for poll := 0; poll < 11; poll++ {
					for _, w := range ws {
						w.AddFlink(decodedSample(at.Add(time.Duration(poll) * 30 * time.Second)))
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc-before)/jobs, "B/job")
				runtime.KeepAlive(ws)
			}
		})
	}
}

// A snapshot of a full window (11 polls of a 10-vertex job and of the
// brokers of its 10 partitions), as every deciding poll assembles.
//
//	go test ./metrics -run '^$' -bench WindowSnapshot -benchmem
func BenchmarkWindowSnapshot(b *testing.B) {
	w := NewWindow(5 * time.Minute)
	at := time.Unix(1700000000, 0)
	for poll := 0; poll < 11; poll++ {
		t := at.Add(time.Duration(poll) * 30 * time.Second)
		w.AddFlink(decodedSample(t))
		ks := KafkaSample{At: t, Group: "orders-enrichment"}
		for p := 0; p < 10; p++ {
			end := int64(1e6 + poll*3000 + p)
			ks.Partitions = append(ks.Partitions, KafkaPartition{Topic: "orders", Partition: p, End: end, Start: 0, Committed: end - 100})
		}
		w.AddKafka(ks)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s, _ := w.Snapshot(); len(s.Vertices) != 10 {
			b.Fatal(len(s.Vertices))
		}
	}
}
