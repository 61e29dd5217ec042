package scenario

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
)

// Limits that keep a scenario, and a fuzzer, within sensible bounds.
const (
	MaxDuration       = 31 * 24 * time.Hour
	MaxPartitions     = 100_000
	MaxParallelism    = 32_768 // Flink's upper bound on max parallelism
	MaxTopicsVertices = 1_000
	MaxRate           = 1e12 // records per second
	MaxInitialLag     = 1e15 // records
)

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	vertexIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	versions   = map[string]bool{"1.18": true, "1.20": true, "2.1": true}
	schedulers = map[string]bool{"default": true, "adaptive": true}
	ships      = map[string]bool{"FORWARD": true, "HASH": true, "REBALANCE": true, "RESCALE": true, "BROADCAST": true}
)

// Validate reports every problem of a defaulted scenario at once (joined
// with errors.Join), each naming the field at fault.
func (s *Scenario) Validate() error {
	v := &validator{}
	v.top(s)
	v.job(s)
	v.load(s)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) bad(path, format string, a ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
}

// atLeast checks a float is finite and at least lo.
func (v *validator) atLeast(path string, x, lo float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < lo {
		v.bad(path, "must be a finite number ≥ %g, not %g", lo, x)
	}
}

// rate checks a rate in records per second.
func (v *validator) rate(path string, x float64) {
	if math.IsNaN(x) || x < 0 || x > MaxRate {
		v.bad(path, "must be a rate between 0 and %g records/s, not %g", float64(MaxRate), x)
	}
}

func (v *validator) positive(path string, x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		v.bad(path, "must be a finite number > 0, not %g", x)
	}
}

func (v *validator) duration(path string, d time.Duration, lo time.Duration) {
	switch {
	case d < lo:
		if lo == 0 {
			v.bad(path, "must not be negative, not %s", fd(d))
		} else {
			v.bad(path, "must be at least %s, not %s", fd(lo), fd(d))
		}
	case d > MaxDuration:
		v.bad(path, "must be at most %s, not %s", fd(MaxDuration), fd(d))
	}
}

func (v *validator) top(s *Scenario) {
	if !nameRE.MatchString(s.Name) {
		v.bad("name", "must be lowercase letters, digits and dashes, not %q", s.Name)
	}
	v.duration("duration", s.Duration, time.Nanosecond)
	v.duration("tick", s.Tick, time.Nanosecond)
	if s.Tick > s.Duration && s.Duration > 0 {
		v.bad("tick", "%s is longer than the duration %s", fd(s.Tick), fd(s.Duration))
	}
	v.duration("slo.lag", s.SLO.Lag, time.Nanosecond)
	if c := s.Compression; c != 0 && !(c >= 1 && c <= 1000) {
		v.bad("compression", "must be between 1 and 1000, not %g", c)
	}
	if e := s.Expect; e.MaxRescales != nil && *e.MaxRescales < 0 {
		v.bad("expect.maxRescales", "must not be negative, not %d", *e.MaxRescales)
	}
	if r := s.Expect.MaxSlotHoursRatio; r != 0 {
		v.atLeast("expect.maxSlotHoursRatio", r, 1)
	}
	if d := s.Expect.MaxTimeOverSLO; d != nil {
		v.duration("expect.maxTimeOverSLO", *d, 0)
	}
	for _, topic := range sortedKeys(s.InitialLag) {
		p := "initialLag." + topic
		if _, ok := s.Topic(topic); !ok {
			v.bad(p, "no topic %q in job.topics", topic)
		}
		if n := s.InitialLag[topic]; n < 0 || n > MaxInitialLag {
			v.bad(p, "must be between 0 and %g, not %d", float64(MaxInitialLag), n)
		}
	}
}

func (v *validator) job(s *Scenario) {
	j := &s.Job
	if j.Name == "" {
		v.bad("job.name", "must not be empty")
	}
	if !versions[j.FlinkVersion] {
		v.bad("job.flinkVersion", "must be one of 1.18, 1.20, 2.1, not %q", j.FlinkVersion)
	}
	if !schedulers[j.Scheduler] {
		v.bad("job.scheduler", "must be default or adaptive, not %q", j.Scheduler)
	}
	if j.ConsumerGroup == "" {
		v.bad("job.consumerGroup", "must not be empty")
	}
	v.positive("job.bufferSeconds", j.BufferSeconds)
	v.atLeast("job.recordBytes", j.RecordBytes, 0)
	v.positive("job.taskManager.cpu", j.TaskManager.CPU)
	if j.TaskManager.Slots < 1 {
		v.bad("job.taskManager.slots", "must be at least 1, not %d", j.TaskManager.Slots)
	}
	v.atLeast("job.taskManager.memoryBytes", j.TaskManager.MemoryBytes, 0)
	if _, err := sim.DeriveTaskManagerMemory(j.TaskManager); err != nil {
		v.bad("job.taskManager", "%v", err)
	}
	switch strings.ToLower(j.StateBackend) {
	case "", "hashmap", "rocksdb", "forst":
	default:
		v.bad("job.stateBackend", "must be hashmap, rocksdb or forst, not %q", j.StateBackend)
	}
	c := j.Checkpoints
	v.duration("job.checkpoints.interval", c.Interval, time.Millisecond)
	v.duration("job.checkpoints.timeout", c.Timeout, time.Millisecond)
	v.duration("job.checkpoints.base", c.Base, 0)
	v.positive("job.checkpoints.throughputBytesPerSecond", c.Throughput)
	v.atLeast("job.checkpoints.alignmentFactor", c.AlignmentFactor, 0)
	v.duration("job.restart.time", j.Restart.Time, 0)
	v.duration("job.restart.taskManagerStartup", j.Restart.TaskManagerStartup, 0)

	if len(j.Topics) == 0 {
		v.bad("job.topics", "the job reads no topic")
	}
	if len(j.Topics) > MaxTopicsVertices {
		v.bad("job.topics", "at most %d topics", MaxTopicsVertices)
	}
	topics := map[string]bool{}
	for i, t := range j.Topics {
		p := fmt.Sprintf("job.topics[%d]", i)
		if t.Name == "" {
			v.bad(p+".name", "must not be empty")
		} else if topics[t.Name] {
			v.bad(p+".name", "topic %q is listed twice", t.Name)
		}
		topics[t.Name] = true
		if t.Partitions < 1 || t.Partitions > MaxPartitions {
			v.bad(p+".partitions", "must be between 1 and %d, not %d", MaxPartitions, t.Partitions)
		}
		if math.IsNaN(t.Skew) || t.Skew < 0 || t.Skew > 10 {
			v.bad(p+".skew", "must be a Zipf exponent between 0 and 10, not %g", t.Skew)
		}
		if len(t.Weights) > 0 {
			if t.Skew != 0 {
				v.bad(p, "set weights or skew, not both")
			}
			if len(t.Weights) != t.Partitions {
				v.bad(p+".weights", "has %d weights for %d partitions", len(t.Weights), t.Partitions)
			}
			sum := 0.0
			for k, w := range t.Weights {
				if math.IsNaN(w) || w < 0 || w > 1e12 {
					v.bad(fmt.Sprintf("%s.weights[%d]", p, k), "must be between 0 and 1e12, not %g", w)
				}
				sum += w
			}
			if !(sum > 0) {
				v.bad(p+".weights", "must not all be zero")
			}
		}
	}

	if len(j.Vertices) == 0 {
		v.bad("job.vertices", "the job has no vertex")
	}
	if len(j.Vertices) > MaxTopicsVertices {
		v.bad("job.vertices", "at most %d vertices", MaxTopicsVertices)
	}
	byName := map[string]int{}
	ids := map[string]bool{}
	for i, x := range j.Vertices {
		p := vpath(i, x.Name)
		if x.Name == "" {
			v.bad(p+".name", "must not be empty")
		} else if _, dup := byName[x.Name]; dup {
			v.bad(p+".name", "vertex names must be unique: %q is used twice", x.Name)
		} else {
			byName[x.Name] = i
		}
		if x.ID != "" {
			if !vertexIDRE.MatchString(x.ID) {
				v.bad(p+".id", "must be 32 lowercase hex digits, not %q", x.ID)
			} else if ids[x.ID] {
				v.bad(p+".id", "id %s is used twice", x.ID)
			}
			ids[x.ID] = true
		}
		if x.Parallelism < 1 || x.Parallelism > MaxParallelism {
			v.bad(p+".parallelism", "must be between 1 and %d, not %d", MaxParallelism, x.Parallelism)
		}
		if x.MaxParallelism != 0 && (x.MaxParallelism < x.Parallelism || x.MaxParallelism > MaxParallelism) {
			v.bad(p+".maxParallelism", "must be between the parallelism %d and %d, not %d", x.Parallelism, MaxParallelism, x.MaxParallelism)
		}
		v.positive(p+".capacity", x.Capacity)
		v.atLeast(p+".selectivity", x.Selectivity, 0)
		v.atLeast(p+".usl.sigma", x.USL.Sigma, 0)
		v.atLeast(p+".usl.kappa", x.USL.Kappa, 0)
		v.atLeast(p+".keySkew", x.KeySkew, 0)
		v.atLeast(p+".stateBytes", x.StateBytes, 0)
	}

	// Edges, sources and topics.
	consumers := map[string]int{}
	readBy := map[string]string{}
	for i, x := range j.Vertices {
		p := vpath(i, x.Name)
		hash := false
		from := map[string]bool{}
		for k, in := range x.Inputs {
			q := fmt.Sprintf("%s.inputs[%d]", p, k)
			u, ok := byName[in.From]
			switch {
			case !ok:
				v.bad(q+".from", "no vertex %q", in.From)
			case in.From == x.Name:
				v.bad(q+".from", "a vertex cannot read itself")
			case from[in.From]:
				v.bad(q+".from", "%q is an input twice", in.From)
			}
			from[in.From] = true
			consumers[in.From]++
			if !ships[in.Ship] {
				v.bad(q+".ship", "must be FORWARD, HASH, REBALANCE, RESCALE or BROADCAST, not %q", in.Ship)
			}
			hash = hash || in.Ship == "HASH"
			if ok && in.Ship == "FORWARD" && j.Vertices[u].Parallelism != x.Parallelism {
				v.bad(q, "a FORWARD edge needs equal parallelism on both ends, not %d → %d", j.Vertices[u].Parallelism, x.Parallelism)
			}
		}
		if x.KeySkew != 0 && !hash {
			v.bad(p+".keySkew", "only a keyed vertex (one with a HASH input) has key skew")
		}
		if len(x.Inputs) == 0 {
			if len(x.Topics) == 0 {
				v.bad(p+".topics", "a source (a vertex without inputs) must read a topic")
			}
			for _, t := range x.Topics {
				if !topics[t] {
					v.bad(p+".topics", "no topic %q in job.topics", t)
				} else if other, dup := readBy[t]; dup {
					v.bad(p+".topics", "topic %q is also read by %q", t, other)
				}
				readBy[t] = x.Name
			}
		} else if len(x.Topics) > 0 {
			v.bad(p+".topics", "only sources (vertices without inputs) read topics")
		}
	}
	for i, x := range j.Vertices {
		if consumers[x.Name] > 0 && x.Selectivity == 0 {
			v.bad(vpath(i, x.Name)+".selectivity", "is 0 but the vertex has consumers: they would starve")
		}
	}
	for _, t := range j.Topics {
		if _, ok := readBy[t.Name]; !ok && t.Name != "" {
			v.bad("job.topics", "no source reads topic %q", t.Name)
		}
	}
	if cyc := cycle(j.Vertices, byName); len(cyc) > 0 {
		v.bad("job.vertices", "the graph has a cycle through %s", strings.Join(quoteAll(cyc), ", "))
	}
}

func vpath(i int, name string) string {
	return fmt.Sprintf("job.vertices[%d] (%q)", i, name)
}

// cycle returns the vertices left on cycles (Kahn's algorithm), sorted.
func cycle(vs []sim.VertexSpec, byName map[string]int) []string {
	indeg := make([]int, len(vs))
	outs := make([][]int, len(vs))
	for i, x := range vs {
		for _, in := range x.Inputs {
			if u, ok := byName[in.From]; ok && u != i {
				indeg[i]++
				outs[u] = append(outs[u], i)
			}
		}
	}
	var ready []int
	for i := range vs {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := 0
	for len(ready) > 0 {
		u := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		done++
		for _, w := range outs[u] {
			if indeg[w]--; indeg[w] == 0 {
				ready = append(ready, w)
			}
		}
	}
	if done == len(vs) {
		return nil
	}
	var left []string
	for i := range vs {
		if indeg[i] > 0 {
			left = append(left, vs[i].Name)
		}
	}
	sort.Strings(left)
	return left
}

func (v *validator) load(s *Scenario) {
	loaded := map[string]bool{}
	for i, l := range s.Load {
		p := fmt.Sprintf("load[%d]", i)
		if _, ok := s.Topic(l.Topic); !ok {
			v.bad(p+".topic", "no topic %q in job.topics", l.Topic)
		}
		if loaded[l.Topic] {
			v.bad(p+".topic", "topic %q has two loads", l.Topic)
		}
		loaded[l.Topic] = true
		v.segments(s, p, l.Segments)
	}
	for _, t := range s.Job.Topics {
		if !loaded[t.Name] && t.Name != "" {
			v.bad("load", "topic %q has no load", t.Name)
		}
	}
}

func (v *validator) segments(s *Scenario, path string, segs []Segment) {
	var bases []int
	for i := range segs {
		if segs[i].Kind != KindNoise {
			bases = append(bases, i)
		}
	}
	if len(bases) == 0 {
		v.bad(path+".segments", "need at least one segment that is not noise")
	}
	var start time.Duration
	for i := range segs {
		g := &segs[i]
		p := fmt.Sprintf("%s.segments[%d] (%s)", path, i, g.Kind)
		spec, ok := kindFields[g.Kind]
		if !ok {
			v.bad(fmt.Sprintf("%s.segments[%d].kind", path, i), "must be one of %s, not %q", strings.Join(Kinds(), ", "), g.Kind)
			continue
		}
		for _, f := range spec.required {
			if g.set != nil && !g.set[f] {
				v.bad(p, "%s needs %s", g.Kind, f)
			}
		}
		for _, f := range segmentFields {
			if !contains(spec.required, f) && !contains(spec.optional, f) && g.present(f) {
				v.bad(p+"."+f, "is not a field of %s (it takes %s)", g.Kind, strings.Join(append(append([]string(nil), spec.required...), spec.optional...), ", "))
			}
		}
		v.duration(p+".for", g.For, 0)
		last := len(bases) > 0 && i == bases[len(bases)-1]
		switch g.Kind {
		case KindConstant:
			v.rate(p+".rate", g.Rate)
		case KindRamp:
			v.rate(p+".from", g.From)
			v.rate(p+".to", g.To)
			if g.For <= 0 {
				v.bad(p+".for", "a ramp needs a positive length")
			}
		case KindStep:
			v.rate(p+".from", g.From)
			v.rate(p+".to", g.To)
			v.duration(p+".at", g.At, 0)
			if g.For > 0 && g.At > g.For {
				v.bad(p+".at", "%s is past the segment's end at %s", fd(g.At), fd(g.For))
			}
		case KindDiurnal:
			v.rate(p+".base", g.Base)
			if math.IsNaN(g.Amplitude) || math.IsInf(g.Amplitude, 0) {
				v.bad(p+".amplitude", "must be a finite number, not %g", g.Amplitude)
			} else if math.Abs(g.Amplitude) > g.Base {
				v.bad(p+".amplitude", "|%g| exceeds base %g: the rate would go negative", g.Amplitude, g.Base)
			}
			v.duration(p+".period", g.Period, time.Millisecond)
			if g.Phase < -MaxDuration || g.Phase > MaxDuration {
				v.bad(p+".phase", "must be within ±%s", fd(MaxDuration))
			}
		case KindSpike:
			v.rate(p+".rate", g.Rate)
			v.rate(p+".peak", g.Peak)
			v.duration(p+".at", g.At, 0)
			v.duration(p+".width", g.Width, time.Nanosecond)
			if g.For > 0 && satAdd(g.At, g.Width) > g.For {
				v.bad(p+".width", "the spike (at %s for %s) runs past the segment's end at %s", fd(g.At), fd(g.Width), fd(g.For))
			}
		case KindNoise:
			if math.IsNaN(g.Percent) || g.Percent < 0 || g.Percent >= 100 {
				v.bad(p+".percent", "must be in [0, 100), not %g", g.Percent)
			}
			v.duration(p+".correlation", g.Correlation, time.Millisecond)
			v.duration(p+".start", g.Start, 0)
			if s.Duration > 0 && g.Start >= s.Duration {
				v.bad(p+".start", "%s is not before the end of the scenario (%s)", fd(g.Start), fd(s.Duration))
			}
			continue
		}
		if g.For == 0 && !last && g.Kind != KindRamp {
			v.bad(p+".for", "only the last segment may leave out its length")
		}
		if s.Duration > 0 && start >= s.Duration {
			v.bad(p, "starts at %s, not before the end of the scenario (%s)", fd(start), fd(s.Duration))
		}
		start = satAdd(start, g.For)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// fd formats a duration for a message as it would be written in a file.
func fd(d time.Duration) string { return formatDuration(d) }
