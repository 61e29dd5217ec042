package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flinkscale/flinkscale/test/sim"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startBroker(t testing.TB, topics []sim.TopicSpec, opts ...Option) *Broker {
	t.Helper()
	b, err := Start(topics, opts...)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

// collector is what flinkscale's collectors will be: a separate franz-go
// client speaking the Kafka protocol to the brokers.
func collector(t testing.TB, b *Broker, extra ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(b.ClientOpts(), extra...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

var threeTopics = []sim.TopicSpec{
	{Name: "orders", Partitions: 64},
	{Name: "clicks", Partitions: 24},
	{Name: "audit", Partitions: 3},
}

func allTPs(topics []sim.TopicSpec) []sim.TopicPartition {
	var tps []sim.TopicPartition
	for _, t := range topics {
		for p := range t.Partitions {
			tps = append(tps, sim.TopicPartition{Topic: t.Name, Partition: int32(p)})
		}
	}
	return tps
}

func listedEnds(t testing.TB, adm *kadm.Client, topics []sim.TopicSpec) map[sim.TopicPartition]int64 {
	t.Helper()
	var names []string
	for _, tp := range topics {
		names = append(names, tp.Name)
	}
	listed, err := adm.ListEndOffsets(testCtx(t), names...)
	require.NoError(t, err)
	out := map[sim.TopicPartition]int64{}
	listed.Each(func(l kadm.ListedOffset) {
		require.NoError(t, l.Err)
		out[sim.TopicPartition{Topic: l.Topic, Partition: l.Partition}] = l.Offset
	})
	return out
}

func TestProduceFluidCounts(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	tps := allTPs(threeTopics)
	rng := rand.New(rand.NewPCG(1, 2))

	want := map[sim.TopicPartition]int64{}
	for _, tp := range tps {
		want[tp] = 0
	}
	var total int64
	for call := range 10 {
		counts := map[sim.TopicPartition]int64{}
		for _, tp := range tps {
			// 1e9 records over the 10 calls, with some idle partitions.
			if rng.IntN(10) == 0 {
				counts[tp] = 0
				continue
			}
			counts[tp] = rng.Int64N(2 * 1e9 / 10 / int64(len(tps)))
		}
		if call == 7 {
			// One count above what a batch header can claim: two rounds.
			counts[tps[5]] = 5_000_000_000
		}
		got, err := b.Produce(ctx, counts)
		require.NoError(t, err)
		for tp, n := range counts {
			want[tp] += n
			total += n
		}
		require.Equal(t, len(counts), len(got))
		for tp := range counts {
			assert.Equal(t, want[tp], got[tp], "end of %s after call %d", tp, call)
		}
	}
	t.Logf("produced %d records in 10 calls to %d partitions", total, len(tps))
	require.Greater(t, total, int64(1e9))

	got, err := b.EndOffsets(ctx, tps)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, want, listedEnds(t, collector(t, b), threeTopics))
	for _, tp := range tps[:3] {
		assert.Equal(t, want[tp], b.Cluster().PartitionInfo(tp.Topic, tp.Partition).HighWatermark)
	}
}

func TestProduceRejectsBeforeSending(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	good := sim.TopicPartition{Topic: "audit", Partition: 0}
	for _, bad := range []map[sim.TopicPartition]int64{
		{good: 5, {Topic: "audit", Partition: 3}: 1},
		{good: 5, {Topic: "audit", Partition: -1}: 1},
		{good: 5, {Topic: "nope", Partition: 0}: 1},
		{good: 5, {Topic: "audit", Partition: 1}: -1},
	} {
		_, err := b.Produce(ctx, bad)
		require.Error(t, err)
	}
	ends, err := b.EndOffsets(ctx, []sim.TopicPartition{good})
	require.NoError(t, err)
	assert.Equal(t, int64(0), ends[good], "a rejected Produce sends nothing")
	_, err = b.EndOffsets(ctx, []sim.TopicPartition{{Topic: "nope", Partition: 0}})
	require.ErrorContains(t, err, "unknown topic or partition")

	got, err := b.Produce(ctx, map[sim.TopicPartition]int64{})
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestCommitStandaloneGroupAndLag(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	tps := allTPs(threeTopics)
	rng := rand.New(rand.NewPCG(3, 4))

	counts := map[sim.TopicPartition]int64{}
	for _, tp := range tps {
		counts[tp] = 1 + rng.Int64N(50_000_000)
	}
	ends, err := b.Produce(ctx, counts)
	require.NoError(t, err)

	const group = "flink-orders"
	commit := map[sim.TopicPartition]int64{}
	for _, tp := range tps {
		if tp.Topic == "audit" && tp.Partition == 2 {
			continue // never committed: absent
		}
		commit[tp] = rng.Int64N(ends[tp] + 1)
	}
	commit[tps[0]] = ends[tps[0]] // fully caught up
	commit[tps[1]] = 0
	require.NoError(t, b.Commit(ctx, group, commit))

	got, err := b.Committed(ctx, group)
	require.NoError(t, err)
	assert.Equal(t, commit, got)

	// What a collector sees over the wire.
	adm := collector(t, b)
	fetched, err := adm.FetchOffsets(ctx, group)
	require.NoError(t, err)
	seen := map[sim.TopicPartition]int64{}
	fetched.Each(func(r kadm.OffsetResponse) {
		require.NoError(t, r.Err)
		seen[sim.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.At
	})
	assert.Equal(t, commit, seen)

	// The group has no members: it is Empty, and kadm computes the lag of
	// every committed partition from the listed end offsets.
	described, err := adm.DescribeGroups(ctx, group)
	require.NoError(t, err)
	assert.Equal(t, "Empty", described[group].State)
	assert.Empty(t, described[group].Members)

	lags, err := adm.Lag(ctx, group)
	require.NoError(t, err)
	require.NoError(t, lags.Error())
	lag := lags[group].Lag
	for tp, c := range commit {
		l, ok := lag.Lookup(tp.Topic, tp.Partition)
		require.True(t, ok, tp.String())
		require.NoError(t, l.Err)
		assert.True(t, l.IsEmpty())
		assert.Equal(t, ends[tp]-c, l.Lag, "lag of %s", tp)
	}
	var wantTotal int64
	for tp, c := range commit {
		wantTotal += ends[tp] - c
	}
	// The uncommitted partition counts its whole log as lag.
	missing := sim.TopicPartition{Topic: "audit", Partition: 2}
	wantTotal += ends[missing]
	assert.Equal(t, wantTotal, lag.Total())

	// The same from the parts, as a collector may compute it.
	listed, err := adm.ListEndOffsets(ctx, "orders", "clicks", "audit")
	require.NoError(t, err)
	calc := kadm.CalculateGroupLag(described[group], fetched, listed)
	for tp, c := range commit {
		l, _ := calc.Lookup(tp.Topic, tp.Partition)
		assert.Equal(t, ends[tp]-c, l.Lag, "calculated lag of %s", tp)
	}

	// Commits move forward and back (a restore from an older checkpoint
	// commits lower offsets).
	commit[tps[0]] = 1
	require.NoError(t, b.Commit(ctx, group, map[sim.TopicPartition]int64{tps[0]: 1}))
	got, err = b.Committed(ctx, group)
	require.NoError(t, err)
	assert.Equal(t, commit, got)
}

func TestCommitErrorsChangeNothing(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	p0 := sim.TopicPartition{Topic: "audit", Partition: 0}
	p1 := sim.TopicPartition{Topic: "audit", Partition: 1}
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{p0: 100, p1: 200})
	require.NoError(t, err)
	const group = "g"
	before := map[sim.TopicPartition]int64{p0: 40, p1: 50}
	require.NoError(t, b.Commit(ctx, group, before))

	for name, bad := range map[string]map[sim.TopicPartition]int64{
		"above end":         {p0: 60, p1: 201},
		"negative":          {p0: 60, p1: -1},
		"unknown partition": {p0: 60, {Topic: "audit", Partition: 9}: 1},
		"unknown topic":     {p0: 60, {Topic: "nope", Partition: 0}: 1},
	} {
		err := b.Commit(ctx, group, bad)
		require.Error(t, err, name)
		got, err := b.Committed(ctx, group)
		require.NoError(t, err)
		assert.Equal(t, before, got, name)
	}
	assert.ErrorContains(t, b.Commit(ctx, group, map[sim.TopicPartition]int64{p1: 201}), "offset 201 outside [0, 200]")

	// Exactly the end offset is fine (nothing left to read).
	require.NoError(t, b.Commit(ctx, group, map[sim.TopicPartition]int64{p1: 200}))

	// A group that never committed has no offsets.
	got, err := b.Committed(ctx, "never")
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, b.Commit(ctx, "empty", nil))
}

// A record produced by someone else (a real client) moves the end offset;
// Commit asks the broker before refusing an offset above what it produced.
func TestForeignProducer(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	tp := sim.TopicPartition{Topic: "audit", Partition: 1}
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp: 10})
	require.NoError(t, err)

	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.DefaultProduceTopic("audit"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	for range 3 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr())
	}
	require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{tp: 13}))
	got, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp: 7, {Topic: "audit", Partition: 0}: 0})
	require.NoError(t, err)
	assert.Equal(t, map[sim.TopicPartition]int64{tp: 20, {Topic: "audit", Partition: 0}: 0}, got)
}

// Fetching sparse batches fails loudly in the consumer instead of skipping
// offsets silently.
func TestFetchIsNotSupported(t *testing.T) {
	b := startBroker(t, threeTopics)
	ctx := testCtx(t)
	tp := sim.TopicPartition{Topic: "audit", Partition: 0}
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp: 1000})
	require.NoError(t, err)

	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"audit": {0: kgo.NewOffset().AtStart()},
	}))...)
	require.NoError(t, err)
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var fetchErr error
	for fetchErr == nil && pctx.Err() == nil {
		fs := cl.PollFetches(pctx)
		assert.Zero(t, fs.NumRecords())
		fs.EachError(func(_ string, _ int32, err error) {
			if pctx.Err() == nil {
				fetchErr = err
			}
		})
	}
	require.Error(t, fetchErr)
	t.Logf("a consumer fetching a sparse batch gets: %v", fetchErr)
}

func TestSASLAndTLS(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []Option
	}{
		{"plain", []Option{WithSASL(SASLPlain, "flink", "s3cret")}},
		{"scram-256", []Option{WithSASL(SASLScramSHA256, "flink", "s3cret")}},
		{"scram-512", []Option{WithSASL(SASLScramSHA512, "flink", "s3cret"), WithSASL(SASLPlain, "other", "pw")}},
		{"tls", []Option{WithTLS()}},
		{"tls+scram", []Option{WithTLS(), WithSASL(SASLScramSHA512, "flink", "s3cret")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, threeTopics, c.opts...)
			ctx := testCtx(t)
			tp := sim.TopicPartition{Topic: "clicks", Partition: 3}
			_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp: 123456})
			require.NoError(t, err)
			require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{tp: 100000}))
			lags, err := collector(t, b).Lag(ctx, "g")
			require.NoError(t, err)
			l, ok := lags["g"].Lag.Lookup(tp.Topic, tp.Partition)
			require.True(t, ok)
			assert.Equal(t, int64(23456), l.Lag)

			// Without the credentials nothing works.
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.RequestRetries(0))
			require.NoError(t, err)
			defer cl.Close()
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err = kadm.NewClient(cl).ListEndOffsets(pctx, "clicks")
			require.Error(t, err)
		})
	}
	_, err := Start(threeTopics, WithSASL("GSSAPI", "a", "b"))
	require.ErrorContains(t, err, "unknown SASL mechanism")
}

func TestThreeBrokersAndMovingLeaders(t *testing.T) {
	b := startBroker(t, threeTopics, WithBrokers(3))
	ctx := testCtx(t)
	tps := allTPs(threeTopics)
	leaders := map[int32]bool{}
	for _, tp := range tps {
		leaders[b.Cluster().LeaderFor(tp.Topic, tp.Partition)] = true
	}
	require.Len(t, leaders, 3, "partitions are spread over the brokers")

	counts := map[sim.TopicPartition]int64{}
	for i, tp := range tps {
		counts[tp] = int64(1000 + i)
	}
	_, err := b.Produce(ctx, counts)
	require.NoError(t, err)

	// Move a leader behind the Broker's back: Produce follows it.
	moved := sim.TopicPartition{Topic: "orders", Partition: 7}
	from := b.Cluster().LeaderFor(moved.Topic, moved.Partition)
	require.NoError(t, b.Cluster().MoveTopicPartition(moved.Topic, moved.Partition, (from+1)%3))
	got, err := b.Produce(ctx, counts)
	require.NoError(t, err)
	for i, tp := range tps {
		assert.Equal(t, 2*int64(1000+i), got[tp])
	}
	assert.Equal(t, got, listedEnds(t, collector(t, b), threeTopics))
	require.NoError(t, b.Commit(ctx, "g", got))
	c, err := b.Committed(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, got, c)
}

func TestConcurrentUse(t *testing.T) {
	b := startBroker(t, threeTopics, WithBrokers(2))
	ctx := testCtx(t)
	tps := allTPs(threeTopics)
	adm := collector(t, b)

	const writers, calls = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range calls {
				counts := map[sim.TopicPartition]int64{}
				for j, tp := range tps {
					counts[tp] = int64(1 + (w+i+j)%5)
				}
				ends, err := b.Produce(ctx, counts)
				if !assert.NoError(t, err) {
					return
				}
				commit := map[sim.TopicPartition]int64{}
				for tp, e := range ends {
					commit[tp] = e / 2
				}
				assert.NoError(t, b.Commit(ctx, fmt.Sprintf("g%d", w), commit))
				assert.NoError(t, b.Trim(ctx, map[sim.TopicPartition]int64{tps[0]: ends[tps[0]] / 4}))
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := b.EndOffsets(ctx, tps)
			assert.NoError(t, err)
			_, err = b.Committed(ctx, "g0")
			assert.NoError(t, err)
			_, err = adm.Lag(ctx, "g1")
			assert.NoError(t, err)
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()

	want := map[sim.TopicPartition]int64{}
	for w := range writers {
		for i := range calls {
			for j, tp := range tps {
				want[tp] += int64(1 + (w+i+j)%5)
			}
		}
	}
	got, err := b.EndOffsets(ctx, tps)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestStartValidates(t *testing.T) {
	for _, topics := range [][]sim.TopicSpec{
		{{Name: "a", Partitions: 0}},
		{{Name: "", Partitions: 1}},
		{{Name: "a", Partitions: 1}, {Name: "a", Partitions: 2}},
	} {
		_, err := Start(topics)
		require.Error(t, err, "%v", topics)
	}
	_, err := Start(nil, WithBrokers(0))
	require.Error(t, err)

	b, err := Start(nil)
	require.NoError(t, err)
	require.Len(t, b.Addrs(), 1)
	b.Close()
	b.Close()
}
