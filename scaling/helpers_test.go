package scaling

import (
	"time"
)

// t0 is the "now" of the tests.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// vtx builds a vertex from the numbers a test cares about: busy and
// backpressure of the busiest subtask in ms/s (the average equals the max
// unless skew is set), and records in/out per second summed over subtasks.
type vtx struct {
	id, group      string
	p, maxP        int
	busy, busyAvg  float64
	bp             float64
	in, out        float64
	inputs         []Input
	partitions     int
	lag, arrival   *Float
	partitionRates []PartitionRate
}

func (b vtx) build() Vertex {
	maxP := b.maxP
	if maxP == 0 {
		maxP = 128
	}
	avg := b.busyAvg
	if avg == 0 {
		avg = b.busy
	}
	return Vertex{
		ID: b.id, Name: b.id, Parallelism: b.p, MaxParallelism: maxP, SlotSharingGroup: b.group, Inputs: b.inputs,
		BusyTimeMsPerSecond:          &Stat{Avg: F(avg), Max: F(b.busy)},
		BackPressuredTimeMsPerSecond: &Stat{Avg: F(b.bp), Max: F(b.bp)},
		NumRecordsInPerSecond:        F(b.in), NumRecordsOutPerSecond: F(b.out),
		Partitions: b.partitions, LagRecords: b.lag, ArrivalRatePerSecond: b.arrival, PartitionRates: b.partitionRates,
	}
}

func from(id, ship string) []Input { return []Input{{ID: id, ShipStrategy: ship}} }

// snapshot wraps vertices in a healthy RUNNING job: a full 5 minute window
// ending at t0 with 10 samples, running for an hour, on TaskManagers of
// cpu cores and as many slots, enough of them for the job.
func snapshot(cpu float64, vs ...vtx) Snapshot {
	s := Snapshot{
		Version: SnapshotVersion, JobID: "job", JobName: "test", JobState: "RUNNING",
		RunningSince: t0.Add(-time.Hour), WindowStart: t0.Add(-5 * time.Minute), WindowEnd: t0, Samples: 10,
		TaskManagers: TaskManagers{CPU: Float(cpu), Slots: int(cpu), Replicas: 1},
	}
	for _, v := range vs {
		s.Vertices = append(s.Vertices, v.build())
	}
	j, _ := observe(&s, ptr(testPolicy()), t0)
	if j != nil {
		slots := j.slotsFor(j.currentPlan().Parallelism)
		s.TaskManagers.Replicas = (slots + int(cpu) - 1) / int(cpu)
	}
	return s
}

// testPolicy is the default policy without the catch-up terms, so that the
// arithmetic in test comments stays short (tests of catch-up set it), and
// with a restart cost of 10 minutes, which the tests' working counts in.
func testPolicy() Policy {
	p := DefaultPolicy()
	p.CatchUpDuration = D(0)
	p.RestartCost = D(10 * time.Minute)
	return p
}

func ptr[T any](v T) *T { return &v }

func vertexByID(d Decision, id string) VertexDecision {
	for _, v := range d.Vertices {
		if v.ID == id {
			return v
		}
	}
	return VertexDecision{}
}

func codes(rs []Reason) []ReasonCode {
	var out []ReasonCode
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func allCodes(d Decision) []ReasonCode {
	out := codes(d.Reasons)
	for _, v := range d.Vertices {
		out = append(out, codes(v.Reasons)...)
	}
	return out
}
