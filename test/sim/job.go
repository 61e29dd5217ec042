package sim

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/scaling/assign"
)

// Load gives the arrival rate of each partition of a topic, in records per
// second, at an offset from the start of the simulation.
type Load interface {
	PartitionRates(topic string, t time.Duration) []float64
}

// ArrivalLoad is a Load that can also say how many records arrive on a topic
// between two offsets. When the load provides it, the job uses it, so that
// the records produced do not depend on the simulation step; the topic's
// partitions share them by PartitionShares.
type ArrivalLoad interface {
	Load
	Arrivals(topic string, from, to time.Duration) float64
}

// Options configure a Job.
type Options struct {
	// Start is the virtual time the simulation starts at.
	Start time.Time
	// Seed makes job ids and savepoint paths reproducible.
	Seed uint64
	// Load drives the producers; nil means nothing arrives.
	Load Load
	// Kafka holds the topics; nil uses a MemoryKafka.
	Kafka Kafka
	// Step is the largest step Advance takes at once (default 1 s).
	Step time.Duration
	// ProduceEvery batches the producers: arrivals are visible to the job
	// every step but appended to the brokers at most this often (default:
	// every step). A real broker costs a round trip per append; 5 s keeps a
	// simulated day to seconds, like a producer's linger.
	ProduceEvery time.Duration
}

// Job is one simulated Flink application cluster running one job. It is
// safe for concurrent use: Advance moves it, View copies it, and the control
// methods (savepoints, resource requirements, Submit) act on it.
type Job struct {
	mu    sync.Mutex
	spec  JobSpec
	g     *graph
	kafka Kafka
	load  Load
	step  time.Duration
	rng   *rand.Rand
	start time.Time
	now   time.Time

	// Producer side: each partition's end offset and the fraction of a
	// record carried to the next step; arrivals not yet appended to the
	// brokers wait in unflushed until the next flush.
	end          map[TopicPartition]int64
	carry        map[TopicPartition]float64
	tps          map[string][]TopicPartition // topic → partitions in order
	unflushed    map[TopicPartition]int64
	produceEvery time.Duration
	nextFlush    time.Time

	run *deployment // nil before the first Submit
	// pool, when set (UsePool), holds the TaskManagers the job's slots
	// come from; nil: they are started for it (native Kubernetes).
	pool *Pool
	// gen counts the changes to the job (every Advance and control
	// operation): equal generations, equal views (Generation).
	gen uint64
	// name is clusterName's answer, tmIDs taskManagerID's so far.
	name       string
	tmIDs      []string
	savepoints map[string]*snapshotData
	triggers   map[string]*trigger
	faults     map[Fault]int
	// mem is the memory of the TaskManagers: the spec's, then the last
	// submission's that named one (memory.go).
	mem scaling.TaskManagerMemory
	err error // the first Kafka error; Advance stops on it

	// Accounting across deployments, for conservation tests and benchmarks.
	produced    int64   // records appended to the topics
	reprocessed int64   // records read again after a restore from a checkpoint
	delivered   float64 // records that left the job's sinks
}

// NewJob validates the spec and creates a job that is not yet running: call
// Submit to deploy it, then Advance to move time.
func NewJob(spec JobSpec, opts Options) (*Job, error) {
	g, err := buildGraph(spec)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", spec.Name, err)
	}
	if spec.BufferSeconds == 0 {
		spec.BufferSeconds = 1
	}
	if spec.TaskManager.Slots < 1 || !(spec.TaskManager.CPU > 0) {
		return nil, fmt.Errorf("job %q: taskManager needs slots ≥ 1 and cpu > 0", spec.Name)
	}
	if spec.Checkpoints.Interval <= 0 {
		return nil, fmt.Errorf("job %q: checkpoints.interval must be positive", spec.Name)
	}
	if spec.Checkpoints.Timeout <= 0 {
		spec.Checkpoints.Timeout = 10 * time.Minute
	}
	if spec.FlinkVersion == "" {
		spec.FlinkVersion = "1.20"
	}
	switch spec.SchedulerMode {
	case "":
	case SchedulerModeReactive:
		// Reactive mode runs the adaptive scheduler, whatever
		// jobmanager.scheduler says.
		spec.Scheduler = "adaptive"
	default:
		return nil, fmt.Errorf("job %q: schedulerMode %q: only %q is known", spec.Name, spec.SchedulerMode, SchedulerModeReactive)
	}
	if spec.Scheduler == "" {
		spec.Scheduler = "default"
	}
	if spec.ConsumerGroup == "" {
		spec.ConsumerGroup = spec.Name
	}
	mem, err := DeriveTaskManagerMemory(spec.TaskManager)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", spec.Name, err)
	}
	j := &Job{
		spec: spec, mem: mem, g: g, kafka: opts.Kafka, load: opts.Load, step: opts.Step,
		rng:   rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		start: opts.Start, now: opts.Start,
		end: map[TopicPartition]int64{}, carry: map[TopicPartition]float64{}, tps: map[string][]TopicPartition{},
		savepoints: map[string]*snapshotData{}, triggers: map[string]*trigger{}, faults: map[Fault]int{},
		unflushed: map[TopicPartition]int64{}, produceEvery: opts.ProduceEvery,
	}
	if j.kafka == nil {
		j.kafka = NewMemoryKafka(spec.Topics)
	}
	if j.step <= 0 {
		j.step = time.Second
	}
	var all []TopicPartition
	for _, t := range spec.Topics {
		for p := range t.Partitions {
			tp := TopicPartition{t.Name, int32(p)}
			j.tps[t.Name] = append(j.tps[t.Name], tp)
			all = append(all, tp)
		}
	}
	ends, err := j.kafka.EndOffsets(context.Background(), all)
	if err != nil {
		return nil, fmt.Errorf("job %q: reading end offsets: %w", spec.Name, err)
	}
	for tp, e := range ends {
		j.end[tp] = e
		j.produced += e
	}
	return j, nil
}

// Spec returns the job's spec (with defaults applied).
func (j *Job) Spec() JobSpec { return j.spec }

// Now is the job's virtual time.
func (j *Job) Now() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.now
}

// VertexID returns the id of the vertex with the given name.
func (j *Job) VertexID(name string) (string, bool) {
	for _, v := range j.g.vertices {
		if v.spec.Name == name {
			return v.id, true
		}
	}
	return "", false
}

// Generation counts the changes to the job: time advancing, a submission,
// a savepoint triggered, resource requirements updated, a fault injected.
// Two calls of View between which it stays the same return equal views,
// so a renderer may keep a view for as long as the generation holds.
// A job on a Pool also counts the pool's changes (its TaskManagers, the
// slots other jobs take), which its view shows.
func (j *Job) Generation() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pool != nil {
		return j.gen + j.pool.generation()
	}
	return j.gen
}

// Inject arms a fault: it fires at the next matching event (a savepoint, a
// restart) or, for a TaskManager loss, at once.
func (j *Job) Inject(f Fault) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	if f == FaultTaskManagerLoss {
		if j.run != nil && j.run.state == "RUNNING" {
			j.failover("TaskManager lost")
		}
		return
	}
	j.faults[f]++
}

// Advance moves virtual time forward by d in steps of at most Options.Step:
// records arrive, the job processes them, checkpoints and restarts progress,
// and metrics update. It returns the first Kafka error, after which the job
// does not move.
func (j *Job) Advance(d time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen++
	for d > 0 && j.err == nil {
		dt := min(d, j.step)
		j.tick(dt)
		d -= dt
	}
	return j.err
}

// tick is one step of the simulation.
func (j *Job) tick(dt time.Duration) {
	j.arrive(dt)
	if j.err != nil {
		return
	}
	j.now = j.now.Add(dt)
	if j.pool != nil {
		j.pool.advance(j.now)
	}
	r := j.run
	if r == nil {
		return
	}
	r.transitions(j)
	if r.state == "RUNNING" {
		j.flow(dt.Seconds())
		r.checkpoints(j)
	}
	r.meters(j)
}

// arrive appends the records that arrived during dt.
func (j *Job) arrive(dt time.Duration) {
	if j.load == nil {
		return
	}
	at := j.now.Sub(j.start)
	arrivals, integrated := j.load.(ArrivalLoad)
	for _, t := range j.spec.Topics {
		var perPartition []float64
		if integrated {
			total := arrivals.Arrivals(t.Name, at, at+dt)
			perPartition = PartitionShares(t)
			for p := range perPartition {
				perPartition[p] *= total
			}
		} else {
			perPartition = j.load.PartitionRates(t.Name, at)
			for p := range perPartition {
				perPartition[p] *= dt.Seconds()
			}
		}
		for p, tp := range j.tps[t.Name] {
			if p >= len(perPartition) || !(perPartition[p] > 0) {
				continue
			}
			x := j.carry[tp] + perPartition[p]
			n := math.Floor(x)
			j.carry[tp] = x - n
			if n > 0 {
				j.produced += int64(n)
				j.end[tp] += int64(n)
				j.unflushed[tp] += int64(n)
			}
		}
	}
	if !j.now.Before(j.nextFlush) {
		j.flush()
		j.nextFlush = j.now.Add(j.produceEvery)
	}
}

// flush appends the arrivals of the last steps to the brokers.
func (j *Job) flush() {
	if len(j.unflushed) == 0 || j.err != nil {
		return
	}
	ends, err := j.kafka.Produce(context.Background(), j.unflushed)
	if err != nil {
		j.err = fmt.Errorf("producing to the job's topics: %w", err)
		return
	}
	for tp, e := range ends {
		if e != j.end[tp] {
			j.err = fmt.Errorf("partition %s: the brokers' end offset %d differs from the %d produced", tp, e, j.end[tp])
			return
		}
	}
	clear(j.unflushed)
}

// Stats is the job's record accounting, for conservation checks and
// benchmarks.
type Stats struct {
	// Produced is every record appended to the job's topics.
	Produced int64
	// Consumed is the sources' positions summed over partitions: records
	// read by the current deployment or restored into it.
	Consumed int64
	// Lag is Produced − Consumed: records waiting in Kafka.
	Lag int64
	// InFlight is the records sitting in the job's network buffers.
	InFlight float64
	// Reprocessed counts records read again after restoring from a
	// checkpoint (at-least-once replay after a failover or an in-place
	// rescale). A stop-with-savepoint restart replays nothing.
	Reprocessed int64
	// Delivered is what left the job's sinks (records out of vertices with
	// no downstream).
	Delivered float64
}

// Stats returns the job's record accounting now.
func (j *Job) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := Stats{Produced: j.produced, Reprocessed: j.reprocessed, Delivered: j.delivered}
	var positions map[TopicPartition]int64
	if j.run != nil {
		positions = j.run.positions
		for _, v := range j.g.vertices {
			for _, st := range j.run.tasks[v.id] {
				s.InFlight += st.queue
			}
		}
	} else {
		positions = map[TopicPartition]int64{}
	}
	for tp, end := range j.end {
		pos := positions[tp]
		s.Consumed += pos
		s.Lag += end - pos
	}
	return s
}

// randomHex returns n random bytes in hex from the job's seeded source.
func (j *Job) randomHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(j.rng.UintN(256))
	}
	return hex.EncodeToString(b)
}

// ms is a time in epoch milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// toAssign converts partitions for the assignment rules.
func toAssign(tps []TopicPartition) []assign.TopicPartition {
	out := make([]assign.TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = assign.TopicPartition{Topic: tp.Topic, Partition: int(tp.Partition)}
	}
	return out
}

func fromAssign(tps []assign.TopicPartition) []TopicPartition {
	out := make([]TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = TopicPartition{Topic: tp.Topic, Partition: int32(tp.Partition)}
	}
	return out
}

// TopicRates turns a per-topic arrival rate into a Load, splitting each
// topic's rate over its partitions by the topic's Weights or Skew.
func TopicRates(topics []TopicSpec, rate func(topic string, t time.Duration) float64) Load {
	w := map[string][]float64{}
	for _, t := range topics {
		w[t.Name] = PartitionShares(t)
	}
	return topicRates{weights: w, rate: rate}
}

type topicRates struct {
	weights map[string][]float64
	rate    func(string, time.Duration) float64
}

func (l topicRates) PartitionRates(topic string, t time.Duration) []float64 {
	r := l.rate(topic, t)
	out := make([]float64, len(l.weights[topic]))
	for i, w := range l.weights[topic] {
		out[i] = r * w
	}
	return out
}
