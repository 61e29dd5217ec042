// Package scenario reads workload scenarios for the simulator and the
// benchmark: a simulated Flink job (a sim.JobSpec), the arrival rate of each
// of its Kafka topics over time, the backlog at the start, and what a good
// autoscaler should achieve on it.
//
// A scenario is a YAML file (docs/scenarios.md is the format reference; the
// library lives in test/scenarios). Loading is strict: an unknown field, a
// field the segment kind does not use, or a duration written as a bare
// number is an error naming the field. Parse applies the defaults and
// validates, reporting every problem at once.
//
// The load is a pure function of (seed, topic, offset): Rate and
// PartitionRates keep no state, so two runs of a scenario, or two runs with
// different simulation steps, see exactly the same arrivals at the same
// instants. A parsed scenario is only read by these methods, so one may
// serve several simulations at once.
package scenario

import (
	"math"
	"sort"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
)

// Scenario is one workload: a job, its load over time, and expectations.
type Scenario struct {
	// Name identifies the scenario (lowercase letters, digits and dashes);
	// a file's name is its name plus ".yaml". Load defaults it from the
	// file name.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed makes the noise reproducible: same seed, same trace.
	Seed int64 `json:"seed"`
	// Duration is the simulated time the scenario runs for.
	Duration time.Duration `json:"duration"`
	// Tick is the simulation step (default 1s).
	Tick time.Duration `json:"tick,omitempty"`
	// Compression says the scenario plays a workload Compression times
	// faster than it happens (tens of minutes for hours), so that it runs
	// on real Flink: the autoscalers under test get their time settings
	// (windows, stabilization, delays, catch-up) divided by it too
	// (test/bench.Compress). 0 or 1: not compressed.
	Compression float64 `json:"compression,omitempty"`
	// SLO is what the job's owner asks of it.
	SLO SLO `json:"slo,omitempty"`
	// Expect holds what a good autoscaling policy achieves here, for the
	// benchmark's verdicts. Optional.
	Expect Expect `json:"expect,omitempty"`
	// Job is the simulated Flink job.
	Job sim.JobSpec `json:"job"`
	// Load gives each topic's arrival rate over time: one entry per topic
	// of the job.
	Load []TopicLoad `json:"load"`
	// InitialLag is, per topic, the records already waiting when the job
	// starts, spread over the partitions by the topic's weights.
	InitialLag map[string]int64 `json:"initialLag,omitempty"`

	// File is the path the scenario was loaded from, if any.
	File string `json:"-"`
}

// SLO is the service level the job is run for.
type SLO struct {
	// Lag is the largest acceptable consumer lag expressed in time: the
	// records behind the end of the topic divided by the arrival rate
	// (default 5m).
	Lag time.Duration `json:"lag,omitempty"`
}

// Expect is what a good autoscaling policy achieves on the scenario. Zero
// values mean "no expectation".
type Expect struct {
	// MaxRescales bounds the rescales over the whole run (0 is a real
	// bound: a steady load deserves no rescale).
	MaxRescales *int `json:"maxRescales,omitempty"`
	// MaxSlotHoursRatio bounds the slot-hours used, as a multiple of the
	// oracle's (the cheapest schedule that meets the SLO), e.g. 1.10.
	MaxSlotHoursRatio float64 `json:"maxSlotHoursRatio,omitempty"`
	// MaxTimeOverSLO bounds the total time the lag exceeds SLO.Lag (0s
	// is a real bound: the lag never over the SLO).
	MaxTimeOverSLO *time.Duration `json:"maxTimeOverSLO,omitempty"`
	// Notes say, in words, what good behavior looks like.
	Notes string `json:"notes,omitempty"`
}

// TopicLoad is the arrival rate of one topic, in records per second for the
// whole topic, as a sequence of segments plus noise overlays.
type TopicLoad struct {
	Topic    string    `json:"topic"`
	Segments []Segment `json:"segments"`
}

// Defaults.
const (
	DefaultTick                = time.Second
	DefaultSLOLag              = 5 * time.Minute
	DefaultFlinkVersion        = "1.20"
	DefaultScheduler           = "default"
	DefaultBufferSeconds       = 1.0
	DefaultCheckpointInterval  = time.Minute
	DefaultCheckpointTimeout   = 10 * time.Minute
	DefaultCheckpointBandwidth = 100 << 20 // bytes/s
	DefaultRestartTime         = time.Minute
	DefaultTaskManagerStartup  = 30 * time.Second
	DefaultMemoryPerCPU        = 4 << 30 // bytes of TaskManager memory per core
	DefaultPeriod              = 24 * time.Hour
	DefaultCorrelation         = time.Minute
)

// Default fills in every unset field that has a default. Zero means unset,
// so a field whose default is not zero cannot be set to zero.
func (s *Scenario) Default() {
	if s.Tick == 0 {
		s.Tick = DefaultTick
	}
	if s.SLO.Lag == 0 {
		s.SLO.Lag = DefaultSLOLag
	}
	j := &s.Job
	if j.Name == "" {
		j.Name = s.Name
	}
	if j.FlinkVersion == "" {
		j.FlinkVersion = DefaultFlinkVersion
	}
	if j.Scheduler == "" {
		j.Scheduler = DefaultScheduler
	}
	if j.ConsumerGroup == "" {
		j.ConsumerGroup = j.Name
	}
	if j.BufferSeconds == 0 {
		j.BufferSeconds = DefaultBufferSeconds
	}
	if j.TaskManager.Slots == 0 && j.TaskManager.CPU > 0 && j.TaskManager.CPU < 1<<20 {
		j.TaskManager.Slots = max(1, int(j.TaskManager.CPU)) // one slot per whole core
	}
	if j.TaskManager.MemoryBytes == 0 && j.TaskManager.CPU > 0 {
		j.TaskManager.MemoryBytes = j.TaskManager.CPU * DefaultMemoryPerCPU
	}
	c := &j.Checkpoints
	if c.Interval == 0 {
		c.Interval = DefaultCheckpointInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCheckpointTimeout
	}
	if c.Throughput == 0 {
		c.Throughput = DefaultCheckpointBandwidth
	}
	if j.Restart.Time == 0 {
		j.Restart.Time = DefaultRestartTime
	}
	if j.Restart.TaskManagerStartup == 0 {
		j.Restart.TaskManagerStartup = DefaultTaskManagerStartup
	}
	for i := range s.Load {
		for k := range s.Load[i].Segments {
			g := &s.Load[i].Segments[k]
			switch g.Kind {
			case KindDiurnal:
				if g.Period == 0 {
					g.Period = DefaultPeriod
					g.mark("period")
				}
			case KindNoise:
				if g.Correlation == 0 {
					g.Correlation = DefaultCorrelation
					g.mark("correlation")
				}
			}
		}
	}
}

// Topic returns the job's topic of that name.
func (s *Scenario) Topic(name string) (sim.TopicSpec, bool) {
	for _, t := range s.Job.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return sim.TopicSpec{}, false
}

func (s *Scenario) topicLoad(topic string) *TopicLoad {
	for i := range s.Load {
		if s.Load[i].Topic == topic {
			return &s.Load[i]
		}
	}
	return nil
}

// Rate is the arrival rate of the whole topic, in records per second, at
// offset t from the start of the scenario: the base segment in force at t
// times every noise overlay active at t. It is a pure function of the seed,
// the topic and t. Offsets before 0 count as 0; past the last segment the
// last one holds. An unknown topic has rate 0.
func (s *Scenario) Rate(topic string, t time.Duration) float64 {
	l := s.topicLoad(topic)
	if l == nil {
		return 0
	}
	t = max(t, 0)
	return max(l.base(t)*l.noise(s.Seed, t), 0)
}

// base is the rate of the base segment in force at t ≥ 0, without noise.
func (l *TopicLoad) base(t time.Duration) float64 {
	r := 0.0
	var start time.Duration
	found := false
	for i := range l.Segments {
		g := &l.Segments[i]
		if g.Kind == KindNoise {
			continue
		}
		if found && start > t {
			break
		}
		r, found = g.value(t-start), true
		start = satAdd(start, g.For)
	}
	if !(r > 0) { // negative from rounding, or NaN from an invalid scenario
		return 0
	}
	return r
}

// noise is the product of the noise overlays' factors at t ≥ 0.
func (l *TopicLoad) noise(seed int64, t time.Duration) float64 {
	f := 1.0
	n := 0
	for i := range l.Segments {
		g := &l.Segments[i]
		if g.Kind != KindNoise {
			continue
		}
		if t >= g.Start && (g.For <= 0 || t < satAdd(g.Start, g.For)) {
			f *= 1 + g.Percent/100*valueNoise(seed, l.Topic, n, t, g.Correlation)
		}
		n++
	}
	return f
}

// Shares is each partition's share of the topic's arrivals (summing to 1):
// the topic's Weights normalised, or else Zipf shares ∝ 1/(k+1)^Skew for
// partition k (equal shares when Skew is 0). Nil for an unknown topic.
func (s *Scenario) Shares(topic string) []float64 {
	ts, ok := s.Topic(topic)
	if !ok || ts.Partitions < 1 {
		return nil
	}
	return sim.PartitionShares(ts)
}

// PartitionRates splits Rate(topic, t) over the topic's partitions by their
// Shares. It implements sim.Load.
func (s *Scenario) PartitionRates(topic string, t time.Duration) []float64 {
	w := s.Shares(topic)
	r := s.Rate(topic, t)
	for k := range w {
		w[k] *= r
	}
	return w
}

var _ sim.Load = (*Scenario)(nil)

// InitialPartitionLag spreads InitialLag[topic] over the topic's partitions
// by their Shares, in whole records (largest remainder, ties to the lower
// partition), so that the parts add up to the total exactly.
func (s *Scenario) InitialPartitionLag(topic string) []int64 {
	w := s.Shares(topic)
	if w == nil {
		return nil
	}
	total := s.InitialLag[topic]
	out := make([]int64, len(w))
	if total <= 0 {
		return out
	}
	rem := make([]float64, len(w))
	left := total
	for k, x := range w {
		exact := x * float64(total)
		out[k] = int64(math.Floor(exact))
		rem[k] = exact - float64(out[k])
		left -= out[k]
	}
	// Hand out what the floors left over by largest remainder (ties to the
	// lower partition), or, if rounding gave too many, take back by
	// smallest remainder.
	order := make([]int, len(w))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for i := 0; left > 0; i = (i + 1) % len(order) {
		out[order[i]]++
		left--
	}
	for i := len(order) - 1; left < 0; i = (i - 1 + len(order)) % len(order) {
		if out[order[i]] > 0 {
			out[order[i]]--
			left++
		}
	}
	return out
}

// ArrivalGrid is the width of the cells Arrivals integrates over.
const ArrivalGrid = time.Second

// Arrivals is the number of records (fractional) that arrive on the topic
// in [from, to). Time is cut into cells of ArrivalGrid from offset 0, and
// in each cell the rate is taken at the cell's midpoint (the midpoint
// rule: exact for rates linear within a cell, and for steps on whole
// seconds). Because the cells are fixed, arrivals are additive,
// Arrivals(a,b) + Arrivals(b,c) = Arrivals(a,c) up to rounding, whatever
// step a simulation takes.
func (s *Scenario) Arrivals(topic string, from, to time.Duration) float64 {
	from, to = max(from, 0), max(to, 0)
	if to <= from || s.topicLoad(topic) == nil {
		return 0
	}
	sum := 0.0
	for x := from; x < to; {
		cell := x / ArrivalGrid * ArrivalGrid
		y := min(cell+ArrivalGrid, to)
		sum += s.Rate(topic, cell+ArrivalGrid/2) * (y - x).Seconds()
		x = y
	}
	return sum
}

// satAdd adds durations, saturating instead of overflowing.
func satAdd(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
