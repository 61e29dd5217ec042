package kafka

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flinkscale/flinkscale/test/sim"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
)

// keyCounter counts the requests a client writes, by key.
type keyCounter struct {
	mu   sync.Mutex
	keys map[string]int
}

func (k *keyCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]int{}
	}
	k.keys[kmsg.NameForKey(key)]++
}

func (k *keyCounter) OnBrokerConnect(kgo.BrokerMetadata, time.Duration, net.Conn, error) {}

func (k *keyCounter) take() (map[string]int, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out, n := k.keys, 0
	for _, c := range out {
		n += c
	}
	k.keys = nil
	return out, n
}

// setupPartitions starts a broker with topics×parts partitions, produces
// to all and commits all but every tenth.
func setupPartitions(t testing.TB, topics, parts int, opts ...func(*Config)) (*Collector, *keyCounter, []string) {
	t.Helper()
	var specs []sim.TopicSpec
	var names []string
	for i := range topics {
		name := "topic-" + string(rune('a'+i))
		specs = append(specs, sim.TopicSpec{Name: name, Partitions: parts})
		names = append(names, name)
	}
	b := startBroker(t, specs)
	ctx := testCtx(t)
	counts := map[sim.TopicPartition]int64{}
	commits := map[sim.TopicPartition]int64{}
	for _, s := range specs {
		for p := range s.Partitions {
			counts[tp(s.Name, int32(p))] = int64(1000 + p)
			if p%10 != 0 {
				commits[tp(s.Name, int32(p))] = int64(p)
			}
		}
	}
	_, err := b.Produce(ctx, counts)
	require.NoError(t, err)
	require.NoError(t, b.Commit(ctx, "g", commits))
	kc := &keyCounter{}
	cfg := Config{BootstrapServers: b.Addrs(), ClientOpts: []kgo.Opt{kgo.WithHooks(kc)}}
	for _, o := range opts {
		o(&cfg)
	}
	return newCollector(t, cfg), kc, names
}

// The requests per Collect do not depend on the partition count.
func TestCollectRequestsBounded(t *testing.T) {
	perCollect := map[int]int{}
	for _, parts := range []int{4, 2000} {
		c, kc, names := setupPartitions(t, 2, parts)
		ctx := testCtx(t)
		for i := range 3 {
			s, err := c.Collect(ctx, "g", names)
			require.NoError(t, err)
			require.Len(t, s.Partitions, 2*parts)
			for _, p := range s.Partitions {
				want := int64(p.Partition)
				if p.Partition%10 == 0 {
					want = -1
				}
				require.Equal(t, want, p.Committed)
				require.Equal(t, int64(1000+p.Partition), p.End)
			}
			keys, n := kc.take()
			t.Logf("%d partitions, collect %d: %d requests %v", 2*parts, i, n, keys)
			if i == 2 {
				perCollect[parts] = n
			}
		}
	}
	assert.Equal(t, perCollect[4], perCollect[2000])
	assert.LessOrEqual(t, perCollect[2000], 6)
}

// With several brokers, each ListOffsets is split by partition leader: one
// request per broker, still independent of the partition count.
func TestCollectRequestsSeveralBrokers(t *testing.T) {
	b := startBroker(t, []sim.TopicSpec{{Name: "t", Partitions: 300}}, simkafka.WithBrokers(3))
	ctx := testCtx(t)
	counts := map[sim.TopicPartition]int64{}
	for p := range 300 {
		counts[tp("t", int32(p))] = int64(p + 1)
	}
	_, err := b.Produce(ctx, counts)
	require.NoError(t, err)
	kc := &keyCounter{}
	c := newCollector(t, Config{BootstrapServers: b.Addrs(), ClientOpts: []kgo.Opt{kgo.WithHooks(kc)}})
	for i := range 2 {
		s, err := c.Collect(ctx, "g", []string{"t"})
		require.NoError(t, err)
		require.Len(t, s.Partitions, 300)
		for _, p := range s.Partitions {
			require.Equal(t, int64(p.Partition+1), p.End)
			require.Equal(t, int64(-1), p.Committed)
		}
		keys, n := kc.take()
		t.Logf("collect %d: %d requests %v", i, n, keys)
		if i == 1 {
			assert.Equal(t, 3, keys["ListOffsets"]/2)
			assert.Equal(t, 1+2*3+2, n)
		}
	}
}

// BenchmarkCollect10kPartitions collects one topic of 10,000 partitions.
func BenchmarkCollect10kPartitions(b *testing.B) {
	for _, shape := range []struct {
		name          string
		topics, parts int
	}{{"1x10000", 1, 10_000}, {"10x1000", 10, 1000}} {
		b.Run(shape.name, func(b *testing.B) {
			c, kc, names := setupPartitions(b, shape.topics, shape.parts)
			ctx := testCtx(b)
			if _, err := c.Collect(ctx, "g", names); err != nil { // connect, warm caches
				b.Fatal(err)
			}
			kc.take()
			b.ReportAllocs()
			for b.Loop() {
				s, err := c.Collect(ctx, "g", names)
				if err != nil || len(s.Partitions) != 10_000 {
					b.Fatal(err, len(s.Partitions))
				}
			}
			_, n := kc.take()
			b.ReportMetric(float64(n)/float64(b.N), "requests/op")
		})
	}
}
