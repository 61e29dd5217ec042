package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// CreateTopics creates the scenario's topics on the broker with their
// partition counts, and the sink's output topic when sink is not nil
// (replication factor 1: one broker).
func CreateTopics(ctx context.Context, bootstrap string, s *scenario.Scenario, sink *SinkOptions) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return fmt.Errorf("testbed: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := slices.Clone(s.Job.Topics)
	if sink != nil {
		topics = append(topics, sim.TopicSpec{Name: sink.Topic, Partitions: sink.partitions()})
	}
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, int32(t.Partitions), 1, nil, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("testbed: creating topic %q with %d partitions: %w", t.Name, t.Partitions, err)
		}
	}
	return nil
}

// Producer plays a scenario's load onto the real broker: each partition of
// each topic receives PartitionRates(topic, t) records a second (the
// simulator's own load code, so both see the same arrivals), t the time
// since Run started, in the scaled scenario's units. A record's value is an
// 8-byte id drawn from (seed, topic, partition, sequence), which the
// workload uses to pick keys and the sink writes out (see ID). Produced
// counts are exact: a record counts once the broker acknowledged it, and
// Acked says which sequence numbers those were.
type Producer struct {
	s      *scenario.Scenario
	client *kgo.Client
	// Tick is the production step (default 50 ms).
	Tick time.Duration

	mu       sync.Mutex
	produced map[string][]int64
	owed     map[string][]float64
	seq      map[string][]uint64
	salt     map[string]uint64
	// acked holds, per topic and partition, the sequence numbers the
	// broker acknowledged, as ordered ranges.
	acked map[string][][]SeqRange
}

// SeqRange is the sequence numbers [From, To) of one partition's records.
type SeqRange struct{ From, To uint64 }

// NewProducer connects to the broker.
func NewProducer(bootstrap string, s *scenario.Scenario) (*Producer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return nil, fmt.Errorf("testbed: kafka producer: %w", err)
	}
	p := &Producer{
		s: s, client: cl, Tick: 50 * time.Millisecond,
		produced: map[string][]int64{}, owed: map[string][]float64{},
		seq: map[string][]uint64{}, salt: map[string]uint64{},
		acked: map[string][][]SeqRange{},
	}
	for _, t := range s.Job.Topics {
		p.produced[t.Name] = make([]int64, t.Partitions)
		p.owed[t.Name] = make([]float64, t.Partitions)
		p.seq[t.Name] = make([]uint64, t.Partitions)
		p.acked[t.Name] = make([][]SeqRange, t.Partitions)
		h := fnv.New64a()
		_, _ = h.Write([]byte(t.Name))
		p.salt[t.Name] = h.Sum64() ^ uint64(s.Seed)
	}
	return p, nil
}

// Close closes the client.
func (p *Producer) Close() { p.client.Close() }

// ProduceInitialLag writes the scenario's initial backlog.
func (p *Producer) ProduceInitialLag(ctx context.Context) error {
	for _, t := range p.s.Job.Topics {
		lag := p.s.InitialPartitionLag(t.Name)
		for part, n := range lag {
			for n > 0 {
				batch := min(n, 10_000)
				if err := p.produce(ctx, t.Name, int32(part), int(batch)); err != nil {
					return err
				}
				n -= batch
			}
		}
	}
	return nil
}

// Run produces the load from start (the scenario's t = 0) until the
// scenario's duration has passed or ctx ends. It returns ctx's error only
// when ctx ended before the duration; a broker error ends it at once.
func (p *Producer) Run(ctx context.Context, start time.Time) error {
	tick := p.Tick
	if tick <= 0 {
		tick = 50 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Duration(0)
	for {
		now := time.Since(start)
		if now > p.s.Duration {
			now = p.s.Duration
		}
		if err := p.step(ctx, last, now); err != nil {
			return err
		}
		last = now
		if now >= p.s.Duration {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// step produces what arrives in [from, to): each partition's rate at the
// step's midpoint × its length, the fractions carried to the next step.
func (p *Producer) step(ctx context.Context, from, to time.Duration) error {
	if to <= from {
		return nil
	}
	mid := from + (to-from)/2
	dt := (to - from).Seconds()
	for _, t := range p.s.Job.Topics {
		rates := p.s.PartitionRates(t.Name, mid)
		for part, r := range rates {
			p.mu.Lock()
			p.owed[t.Name][part] += r * dt
			n := math.Floor(p.owed[t.Name][part])
			p.owed[t.Name][part] -= n
			p.mu.Unlock()
			if n > 0 {
				if err := p.produce(ctx, t.Name, int32(part), int(n)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// produce sends n records to a partition and waits for the broker. Each
// record takes the partition's next sequence number whether or not it is
// acknowledged, and only acknowledged ones count (Produced, Acked): a
// failed batch leaves a hole in the sequence, not a record expected and
// missing. Its ids are never reused, since a record whose acknowledgement
// was lost may have reached the log: an audit that finds one reports it as
// unexpected, where a reused id would read as a duplicate.
func (p *Producer) produce(ctx context.Context, topic string, part int32, n int) error {
	recs := make([]*kgo.Record, n)
	seqOf := make(map[*kgo.Record]uint64, n)
	p.mu.Lock()
	seq := p.seq[topic][part]
	p.seq[topic][part] += uint64(n)
	p.mu.Unlock()
	for i := range recs {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, p.ID(topic, part, seq+uint64(i)))
		recs[i] = &kgo.Record{Topic: topic, Partition: part, Value: v}
		seqOf[recs[i]] = seq + uint64(i)
	}
	res := p.client.ProduceSync(ctx, recs...)
	var ok []uint64
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
		} else {
			ok = append(ok, seqOf[r.Record])
		}
	}
	p.mu.Lock()
	p.produced[topic][part] += int64(len(ok))
	p.acked[topic][part] = addSeqs(p.acked[topic][part], ok)
	p.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("testbed: producing to %s/%d: %d of %d records failed: %w", topic, part, len(errs), n, errors.Join(errs[:1]...))
	}
	return nil
}

// addSeqs adds sequence numbers, all above those in rs, to the ordered
// ranges rs, merging neighbours.
func addSeqs(rs []SeqRange, seqs []uint64) []SeqRange {
	slices.Sort(seqs)
	for _, s := range seqs {
		if last := len(rs) - 1; last >= 0 && rs[last].To == s {
			rs[last].To++
		} else {
			rs = append(rs, SeqRange{s, s + 1})
		}
	}
	return rs
}

// ID is the value of the record with sequence number seq on a partition of
// topic: splitmix64 of salt ^ partition<<40 ^ seq, salt a hash of the topic
// and the seed. splitmix64 is a bijection, and so is the xor for
// sequences under 2^40, so every record of a topic has its own id (topics
// share none but by a 2^-64 chance).
func (p *Producer) ID(topic string, part int32, seq uint64) uint64 {
	return splitmix(p.salt[topic] ^ uint64(part)<<40 ^ seq)
}

// Acked is the sequence numbers the broker acknowledged on each partition
// of topic, as ordered ranges: with ID, the exact records produced.
func (p *Producer) Acked(topic string) [][]SeqRange {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]SeqRange, len(p.acked[topic]))
	for i, rs := range p.acked[topic] {
		out[i] = slices.Clone(rs)
	}
	return out
}

// IDs is the id of every record acknowledged so far, on every topic: what
// the sink of an audited workload must write exactly once.
func (p *Producer) IDs() []uint64 {
	ids := make([]uint64, 0, p.Total())
	for _, t := range p.s.Job.Topics {
		for part, rs := range p.Acked(t.Name) {
			for _, r := range rs {
				for seq := r.From; seq < r.To; seq++ {
					ids = append(ids, p.ID(t.Name, int32(part), seq))
				}
			}
		}
	}
	return ids
}

// Produced is the records acknowledged so far, per partition of topic.
func (p *Producer) Produced(topic string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.produced[topic]...)
}

// Total is the records acknowledged so far on every topic.
func (p *Producer) Total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, ps := range p.produced {
		for _, x := range ps {
			n += x
		}
	}
	return n
}

func splitmix(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}
