package kafka

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/flinkscale/flinkscale/test/sim"
)

func TestTrimKeepsOffsets(t *testing.T) {
	topics := []sim.TopicSpec{{Name: "t", Partitions: 4}}
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"stored", []Option{WithSegmentBytes(512)}}, {"blackhole", []Option{WithBlackhole()}}} {
		t.Run(mode.name, func(t *testing.T) {
			b := startBroker(t, topics, mode.opts...)
			ctx := testCtx(t)
			tps := allTPs(topics)
			counts := map[sim.TopicPartition]int64{}
			for i, tp := range tps {
				counts[tp] = int64(1000 * (i + 1))
			}
			var ends map[sim.TopicPartition]int64
			for range 50 {
				var err error
				ends, err = b.Produce(ctx, counts)
				require.NoError(t, err)
			}
			commit := map[sim.TopicPartition]int64{}
			for tp, e := range ends {
				commit[tp] = e * 3 / 4
			}
			require.NoError(t, b.Commit(ctx, "g", commit))
			require.NoError(t, b.Trim(ctx, commit))

			got, err := b.EndOffsets(ctx, tps)
			require.NoError(t, err)
			assert.Equal(t, ends, got)
			c, err := b.Committed(ctx, "g")
			require.NoError(t, err)
			assert.Equal(t, commit, c)

			adm := collector(t, b)
			starts, err := adm.ListStartOffsets(ctx, "t")
			require.NoError(t, err)
			starts.Each(func(l kadm.ListedOffset) {
				tp := sim.TopicPartition{Topic: l.Topic, Partition: l.Partition}
				assert.Equal(t, commit[tp], l.Offset, "log start of %s", tp)
			})
			lags, err := adm.Lag(ctx, "g")
			require.NoError(t, err)
			for tp, o := range commit {
				l, _ := lags["g"].Lag.Lookup(tp.Topic, tp.Partition)
				assert.Equal(t, ends[tp]-o, l.Lag)
			}

			// Lower or equal offsets are no-ops, not errors.
			require.NoError(t, b.Trim(ctx, map[sim.TopicPartition]int64{tps[0]: 1, tps[1]: commit[tps[1]], tps[2]: 0}))
			// Past the end, negative, unknown: errors.
			assert.ErrorContains(t, b.Trim(ctx, map[sim.TopicPartition]int64{tps[0]: ends[tps[0]] + 1}), "t-0")
			assert.Error(t, b.Trim(ctx, map[sim.TopicPartition]int64{tps[0]: -1}))
			assert.ErrorContains(t, b.Trim(ctx, map[sim.TopicPartition]int64{{Topic: "t", Partition: 4}: 1}), "unknown topic or partition")
			require.NoError(t, b.Trim(ctx, nil))

			// Producing continues from the same end offsets; trimming to the
			// very end empties the log.
			more, err := b.Produce(ctx, counts)
			require.NoError(t, err)
			for tp, n := range counts {
				assert.Equal(t, ends[tp]+n, more[tp])
			}
			require.NoError(t, b.Trim(ctx, more))
			for _, tp := range tps {
				info := b.Cluster().PartitionInfo(tp.Topic, tp.Partition)
				assert.Equal(t, more[tp], info.LogStartOffset)
				if mode.name == "stored" {
					// (A blackhole still counts the bytes it drops.)
					assert.Zero(t, info.NumBytes)
				}
			}
		})
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestTrimBoundsMemory produces many sparse batches three ways: stored and
// never trimmed, stored and trimmed behind the producer as a simulator
// would, and blackholed. It checks kfake's retained log bytes exactly, and
// the heap's growth over the second half of the run. (Stored, a sparse
// batch costs about 230 heap bytes until trimmed: its 61 bytes in kfake's
// in-memory segment file, its index entry and its batch metadata. Trimmed,
// the heap saws within a few segments per partition.)
func TestTrimBoundsMemory(t *testing.T) {
	topics := []sim.TopicSpec{{Name: "t", Partitions: 16}}
	calls := 1000 // 16,000 batches per run
	if testing.Short() || raceEnabled {
		calls = 400
	}
	tps := allTPs(topics)
	counts := map[sim.TopicPartition]int64{}
	for _, tp := range tps {
		counts[tp] = 50_000
	}

	type result struct {
		growth   int64 // heap growth over the second half
		logBytes int64 // kfake's retained batch bytes, all partitions
	}
	run := func(trim bool, opts ...Option) result {
		b, err := Start(topics, opts...)
		require.NoError(t, err)
		defer b.Close() // not t.Cleanup: free each run's log before the next
		ctx := testCtx(t)
		var mid uint64
		for i := range calls {
			ends, err := b.Produce(ctx, counts)
			require.NoError(t, err)
			if trim {
				// The job is a few ticks behind; commit and trim there.
				behind := map[sim.TopicPartition]int64{}
				for tp, e := range ends {
					behind[tp] = max(0, e-3*counts[tp])
				}
				require.NoError(t, b.Commit(ctx, "g", behind))
				require.NoError(t, b.Trim(ctx, behind))
			}
			if i == calls/2 {
				mid = heapAfterGC()
			}
		}
		r := result{growth: int64(heapAfterGC()) - int64(mid)}
		for _, tp := range tps {
			r.logBytes += b.Cluster().PartitionInfo(tp.Topic, tp.Partition).NumBytes
		}
		return r
	}

	kept := run(false)
	trimmed := run(true, WithSegmentBytes(2<<10))
	blackhole := run(false, WithBlackhole())
	half := int64(calls / 2 * len(tps))
	t.Logf("untrimmed: %d log bytes, heap +%d B over %d batches (%d B/batch)", kept.logBytes, kept.growth, half, kept.growth/half)
	t.Logf("trimmed:   %d log bytes, heap %+d B over %d batches", trimmed.logBytes, trimmed.growth, half)
	t.Logf("blackhole: heap %+d B over %d batches", blackhole.growth, half)

	assert.Equal(t, int64(calls*len(tps)*batchHeaderLen), kept.logBytes, "every sparse batch is 61 bytes")
	// Trimmed: at most the current segment per partition (kfake drops
	// whole segments below the log start offset).
	assert.LessOrEqual(t, trimmed.logBytes, int64(len(tps)*(2<<10+batchHeaderLen)))
	if !raceEnabled {
		// The untrimmed log grows the heap linearly; the trimmed one and
		// the blackhole do not (the slack covers GC and client noise).
		assert.Greater(t, kept.growth, half*batchHeaderLen)
		assert.Less(t, trimmed.growth, kept.growth/4)
		assert.Less(t, blackhole.growth, kept.growth/4)
	}
}
