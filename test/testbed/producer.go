package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// CreateTopics creates the scenario's topics on the broker with their
// partition counts (replication factor 1: one broker).
func CreateTopics(ctx context.Context, bootstrap string, s *scenario.Scenario) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return fmt.Errorf("testbed: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range s.Job.Topics {
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
// workload uses to pick keys. Produced counts are exact: a batch counts
// once the broker acknowledged it.
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
}

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
	}
	for _, t := range s.Job.Topics {
		p.produced[t.Name] = make([]int64, t.Partitions)
		p.owed[t.Name] = make([]float64, t.Partitions)
		p.seq[t.Name] = make([]uint64, t.Partitions)
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

func (p *Producer) produce(ctx context.Context, topic string, part int32, n int) error {
	recs := make([]*kgo.Record, n)
	p.mu.Lock()
	seq := p.seq[topic][part]
	p.seq[topic][part] += uint64(n)
	salt := p.salt[topic]
	p.mu.Unlock()
	for i := range recs {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, splitmix(salt^uint64(part)<<40^(seq+uint64(i))))
		recs[i] = &kgo.Record{Topic: topic, Partition: part, Value: v}
	}
	res := p.client.ProduceSync(ctx, recs...)
	ok := 0
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
		} else {
			ok++
		}
	}
	p.mu.Lock()
	p.produced[topic][part] += int64(ok)
	p.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("testbed: producing to %s/%d: %d of %d records failed: %w", topic, part, len(errs), n, errors.Join(errs[:1]...))
	}
	return nil
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
