package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/test/sim"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startBroker(t testing.TB, topics []sim.TopicSpec, opts ...simkafka.Option) *simkafka.Broker {
	t.Helper()
	b, err := simkafka.Start(topics, opts...)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

func newCollector(t testing.TB, cfg Config) *Collector {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func tp(topic string, p int32) sim.TopicPartition {
	return sim.TopicPartition{Topic: topic, Partition: p}
}

// The end, start and committed offsets are what was produced, trimmed and
// committed; an uncommitted partition reports -1.
func TestCollectExact(t *testing.T) {
	b := startBroker(t, []sim.TopicSpec{{Name: "orders", Partitions: 4}, {Name: "clicks", Partitions: 2}, {Name: "other", Partitions: 1}})
	ctx := testCtx(t)
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{
		tp("orders", 0): 100, tp("orders", 1): 200, tp("orders", 2): 300, tp("orders", 3): 0,
		tp("clicks", 0): 7, tp("clicks", 1): 1 << 40, tp("other", 0): 5,
	})
	require.NoError(t, err)
	require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{
		tp("orders", 0): 90, tp("orders", 1): 200, tp("orders", 3): 0,
		tp("clicks", 0): 3, tp("clicks", 1): 1 << 39,
	}))
	require.NoError(t, b.Trim(ctx, map[sim.TopicPartition]int64{tp("orders", 2): 50, tp("clicks", 0): 5}))

	c := newCollector(t, Config{BootstrapServers: b.Addrs()})
	before := time.Now()
	s, err := c.Collect(ctx, "g", []string{"orders", "clicks"})
	require.NoError(t, err)
	assert.Equal(t, "g", s.Group)
	assert.Equal(t, "Empty", s.GroupState)
	assert.Empty(t, s.Missing)
	assert.WithinRange(t, s.At, before, time.Now())
	want := []metrics.KafkaPartition{
		{Topic: "clicks", Partition: 0, End: 7, Start: 5, Committed: 3},
		{Topic: "clicks", Partition: 1, End: 1 << 40, Start: 0, Committed: 1 << 39},
		{Topic: "orders", Partition: 0, End: 100, Start: 0, Committed: 90},
		{Topic: "orders", Partition: 1, End: 200, Start: 0, Committed: 200},
		{Topic: "orders", Partition: 2, End: 300, Start: 50, Committed: -1},
		{Topic: "orders", Partition: 3, End: 0, Start: 0, Committed: 0},
	}
	assert.Equal(t, want, s.Partitions)

	// Without topics: those the group has commits for ("other" has none).
	s2, err := c.Collect(ctx, "g", nil)
	require.NoError(t, err)
	assert.Equal(t, want, s2.Partitions)

	// A group that never committed: every partition is -1, state Dead.
	s3, err := c.Collect(ctx, "nobody", []string{"other"})
	require.NoError(t, err)
	assert.Equal(t, []metrics.KafkaPartition{{Topic: "other", Partition: 0, End: 5, Start: 0, Committed: -1}}, s3.Partitions)
	assert.Equal(t, "Dead", s3.GroupState)
	s4, err := c.Collect(ctx, "nobody", nil)
	require.NoError(t, err)
	assert.Empty(t, s4.Partitions)
	assert.Empty(t, s4.Missing)
}

// A deleted topic is reported in Missing with Kafka's error name; the
// other topics are still collected.
func TestCollectDeletedTopic(t *testing.T) {
	b := startBroker(t, []sim.TopicSpec{{Name: "orders", Partitions: 3}, {Name: "gone", Partitions: 2}})
	ctx := testCtx(t)
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp("orders", 0): 10, tp("gone", 0): 10, tp("gone", 1): 10})
	require.NoError(t, err)
	require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{tp("orders", 0): 10, tp("gone", 0): 4}))

	c := newCollector(t, Config{BootstrapServers: b.Addrs()})
	s, err := c.Collect(ctx, "g", nil)
	require.NoError(t, err)
	require.Len(t, s.Partitions, 5)

	cl, err := kgo.NewClient(b.ClientOpts()...)
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, "gone")
	require.NoError(t, err)
	require.NoError(t, resp.Error())

	for _, topics := range [][]string{{"orders", "gone"}, nil} {
		s, err = c.Collect(ctx, "g", topics)
		require.NoError(t, err)
		assert.Equal(t, []metrics.KafkaPartition{
			{Topic: "orders", Partition: 0, End: 10, Committed: 10},
			{Topic: "orders", Partition: 1, End: 0, Committed: -1},
			{Topic: "orders", Partition: 2, End: 0, Committed: -1},
		}, s.Partitions, "topics %v", topics)
		if topics == nil {
			// kfake, like Kafka, drops the deleted topic's commits with
			// it: the group no longer has commits for it, so only a
			// caller naming its topics learns that one is gone.
			assert.Empty(t, s.Missing)
			continue
		}
		assert.Equal(t, []string{"gone: UNKNOWN_TOPIC_OR_PARTITION"}, s.Missing, "topics %v", topics)
	}
}

func TestCollectRequiresGroup(t *testing.T) {
	c := newCollector(t, Config{BootstrapServers: []string{"127.0.0.1:1"}})
	_, err := c.Collect(testCtx(t), "", nil)
	assert.ErrorContains(t, err, "empty consumer group")
}

func TestCollectUnreachable(t *testing.T) {
	c := newCollector(t, Config{BootstrapServers: []string{"127.0.0.1:1"}, RequestTimeout: 1500 * time.Millisecond})
	start := time.Now()
	_, err := c.Collect(testCtx(t), "g", []string{"t"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.ErrorContains(t, err, "127.0.0.1:1")
	t.Log(err)
}

// A group with a live member reports Stable; the state goes back to Empty
// when the member leaves.
func TestCollectGroupState(t *testing.T) {
	b := startBroker(t, []sim.TopicSpec{{Name: "live", Partitions: 2}})
	ctx := testCtx(t)
	c := newCollector(t, Config{BootstrapServers: b.Addrs()})

	member, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumerGroup("live-g"), kgo.ConsumeTopics("live"))...)
	require.NoError(t, err)
	pollCtx, stopPolling := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pollCtx.Err() == nil {
			member.PollFetches(pollCtx)
		}
	}()
	var states []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		s, err := c.Collect(ctx, "live-g", []string{"live"})
		require.NoError(t, err)
		if len(states) == 0 || states[len(states)-1] != s.GroupState {
			states = append(states, s.GroupState)
		}
		if s.GroupState == "Stable" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, "Stable", states[len(states)-1], "states seen: %v", states)
	stopPolling()
	<-done
	member.Close() // leaves the group

	s, err := c.Collect(ctx, "live-g", []string{"live"})
	require.NoError(t, err)
	assert.Contains(t, []string{"Empty", "PreparingRebalance"}, s.GroupState)
	t.Logf("states: %v, after leaving: %s", states, s.GroupState)
}

// Arrival rates between two collected samples are exact.
func TestCollectArrivalRates(t *testing.T) {
	b := startBroker(t, []sim.TopicSpec{{Name: "a", Partitions: 3}})
	ctx := testCtx(t)
	c := newCollector(t, Config{BootstrapServers: b.Addrs()})
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp("a", 0): 5, tp("a", 1): 5})
	require.NoError(t, err)
	first, err := c.Collect(ctx, "g", []string{"a"})
	require.NoError(t, err)
	_, err = b.Produce(ctx, map[sim.TopicPartition]int64{tp("a", 0): 1000, tp("a", 1): 3, tp("a", 2): 77})
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
	last, err := c.Collect(ctx, "g", []string{"a"})
	require.NoError(t, err)
	dt := last.At.Sub(first.At).Seconds()
	require.Positive(t, dt)
	rates, omitted := ArrivalRates(first, last)
	assert.Empty(t, omitted)
	assert.Equal(t, map[TopicPartition]float64{{"a", 0}: 1000 / dt, {"a", 1}: 3 / dt, {"a", 2}: 77 / dt}, rates)
}
