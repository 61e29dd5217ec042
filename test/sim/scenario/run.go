package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
)

// NewJob sets the scenario's job up on the given brokers (nil: in memory):
// the initial lag is appended to the topics, the job is created with the
// scenario's load and seed at the virtual time start, and submitted at its
// initial parallelism. Advance it by Tick up to Duration.
func (s *Scenario) NewJob(k sim.Kafka, start time.Time, produceEvery time.Duration) (*sim.Job, error) {
	if k == nil {
		k = sim.NewMemoryKafka(s.Job.Topics)
	}
	backlog := map[sim.TopicPartition]int64{}
	for _, t := range s.Job.Topics {
		for p, n := range s.InitialPartitionLag(t.Name) {
			if n > 0 {
				backlog[sim.TopicPartition{Topic: t.Name, Partition: int32(p)}] = n
			}
		}
	}
	if len(backlog) > 0 {
		if _, err := k.Produce(context.Background(), backlog); err != nil {
			return nil, fmt.Errorf("scenario %s: producing the initial lag: %w", s.Name, err)
		}
	}
	j, err := sim.NewJob(s.Job, sim.Options{Start: start, Seed: uint64(s.Seed), Load: s, Kafka: k, Step: s.Tick, ProduceEvery: produceEvery})
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := j.Submit(sim.Submission{}); err != nil {
		return nil, fmt.Errorf("scenario %s: submitting the job: %w", s.Name, err)
	}
	return j, nil
}
