package kafka

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

// TestConformance applies one random sequence of operations (fixed seed) to
// sim.MemoryKafka and to a Broker and requires identical results: the same
// maps, and an error from one exactly when the other errs.
//
// Invalid operations carry only the invalid entry: MemoryKafka applies the
// valid entries of a map that it iterates before meeting an invalid one, in
// random map order, while Broker validates the whole map first and then
// changes nothing.
func TestConformance(t *testing.T) {
	topics := []sim.TopicSpec{
		{Name: "orders", Partitions: 16},
		{Name: "clicks", Partitions: 5},
		{Name: "audit", Partitions: 1},
	}
	for _, mode := range []struct {
		name string
		opts []Option
	}{
		{"stored", []Option{WithSegmentBytes(1 << 10)}},
		{"blackhole", []Option{WithBlackhole()}},
		{"three-brokers", []Option{WithBrokers(3)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			conform(t, topics, 400, sim.NewMemoryKafka(topics), startBroker(t, topics, mode.opts...))
		})
	}
}

func conform(t *testing.T, topics []sim.TopicSpec, steps int, want, got sim.Kafka) {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(42, 7))
	tps := allTPs(topics)
	groups := []string{"flink-a", "flink-b", "flink-c"}
	end := map[sim.TopicPartition]int64{}
	trimmed := map[sim.TopicPartition]int64{}
	invalid := []sim.TopicPartition{
		{Topic: "orders", Partition: 16},
		{Topic: "orders", Partition: -1},
		{Topic: "missing", Partition: 0},
	}
	subset := func() []sim.TopicPartition {
		var s []sim.TopicPartition
		for _, tp := range tps {
			if rng.IntN(3) == 0 {
				s = append(s, tp)
			}
		}
		return s
	}
	ops, errs := map[string]int{}, map[string]int{}
	defer func() { t.Logf("operations %v, of which errors %v", ops, errs) }()
	same := func(step int, op string, w, g any, werr, gerr error) {
		t.Helper()
		name := op[:strings.IndexByte(op, '(')]
		ops[name]++
		if werr != nil {
			errs[name]++
		}
		require.Equal(t, werr != nil, gerr != nil, "step %d %s: errors differ: memory %v, broker %v", step, op, werr, gerr)
		if werr == nil {
			require.Equal(t, w, g, "step %d %s", step, op)
		}
	}

	for step := range steps {
		switch op := rng.IntN(10); {
		case op < 4: // produce, sometimes huge, sometimes nothing
			counts := map[sim.TopicPartition]int64{}
			for _, tp := range subset() {
				switch rng.IntN(8) {
				case 0:
					counts[tp] = 0
				case 1:
					counts[tp] = rng.Int64N(3_000_000_000)
				default:
					counts[tp] = rng.Int64N(100_000)
				}
			}
			if rng.IntN(8) == 0 {
				counts = map[sim.TopicPartition]int64{invalid[rng.IntN(len(invalid))]: 5}
			} else if rng.IntN(8) == 0 {
				counts = map[sim.TopicPartition]int64{tps[rng.IntN(len(tps))]: -3}
			}
			w, werr := want.Produce(ctx, counts)
			g, gerr := got.Produce(ctx, counts)
			same(step, fmt.Sprintf("Produce(%v)", counts), w, g, werr, gerr)
			if werr == nil {
				for tp, e := range w {
					end[tp] = e
				}
			}
		case op < 7: // commit (a checkpoint)
			group := groups[rng.IntN(len(groups))]
			offsets := map[sim.TopicPartition]int64{}
			for _, tp := range subset() {
				offsets[tp] = trimmed[tp] + rng.Int64N(end[tp]-trimmed[tp]+1)
			}
			switch rng.IntN(10) {
			case 0:
				tp := tps[rng.IntN(len(tps))]
				offsets = map[sim.TopicPartition]int64{tp: end[tp] + 1 + rng.Int64N(10)}
			case 1:
				offsets = map[sim.TopicPartition]int64{invalid[rng.IntN(len(invalid))]: 0}
			case 2:
				offsets = map[sim.TopicPartition]int64{tps[rng.IntN(len(tps))]: -1}
			}
			werr := want.Commit(ctx, group, offsets)
			gerr := got.Commit(ctx, group, offsets)
			same(step, fmt.Sprintf("Commit(%s, %v)", group, offsets), nil, nil, werr, gerr)
		case op < 8:
			q := subset()
			if rng.IntN(10) == 0 {
				q = append(q, invalid[rng.IntN(len(invalid))])
			}
			w, werr := want.EndOffsets(ctx, q)
			g, gerr := got.EndOffsets(ctx, q)
			same(step, fmt.Sprintf("EndOffsets(%v)", q), w, g, werr, gerr)
		case op < 9:
			group := groups[rng.IntN(len(groups))]
			if rng.IntN(10) == 0 {
				group = "never-committed"
			}
			w, werr := want.Committed(ctx, group)
			g, gerr := got.Committed(ctx, group)
			same(step, "Committed("+group+")", w, g, werr, gerr)
		default: // trim below what every group has committed
			below := map[sim.TopicPartition]int64{}
			for _, tp := range subset() {
				low := end[tp]
				for _, group := range groups {
					c, err := want.Committed(ctx, group)
					require.NoError(t, err)
					if o, ok := c[tp]; ok {
						low = min(low, o)
					} else {
						low = min(low, trimmed[tp])
					}
				}
				below[tp] = low
				trimmed[tp] = max(trimmed[tp], low)
			}
			werr := want.Trim(ctx, below)
			gerr := got.Trim(ctx, below)
			same(step, fmt.Sprintf("Trim(%v)", below), nil, nil, werr, gerr)
		}
	}

	w, err := want.EndOffsets(ctx, tps)
	require.NoError(t, err)
	g, err := got.EndOffsets(ctx, tps)
	require.NoError(t, err)
	require.Equal(t, w, g)
	for _, group := range groups {
		w, err := want.Committed(ctx, group)
		require.NoError(t, err)
		g, err := got.Committed(ctx, group)
		require.NoError(t, err)
		require.Equal(t, w, g, group)
	}
}
