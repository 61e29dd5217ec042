package scale

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/controllers/shard"
)

// shardReport on a made-up log of two replicas, interval 60 s, replica 1
// killed at t0+100 s. The takeover is the survivor's first reconcile of an
// orphan of any kind (a wait for the slot at +117 s); the gap is between
// polls (deciding reconciles) only; an orphan only waited for after the
// kill counts as never polled again; a poll by the other replica 20 s
// after one, before the kill, is a double poll.
func TestShardReportCountsPolls(t *testing.T) {
	const n, iv = 2, 60 * time.Second
	t0 := time.Unix(1_800_000_000, 0)
	// Keys of each shard.
	var inShard [n][]types.NamespacedName
	for i := 0; len(inShard[0]) < 3 || len(inShard[1]) < 3; i++ {
		k := types.NamespacedName{Namespace: "scale-0", Name: "job-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		s := shard.Of(k, n)
		inShard[s] = append(inShard[s], k)
	}
	log := &timed{}
	at := func(k types.NamespacedName, replica int, start time.Duration, primed bool) {
		log.add(run{key: k, replica: replica, primed: primed, end: t0.Add(start + 10*time.Millisecond), d: 10 * time.Millisecond})
	}
	orphan, unpolled, home := inShard[1][0], inShard[1][1], inShard[0][0]
	// orphan: polled at +50 s by replica 1; after the kill replica 0
	// waits (+117 s), primes (+169 s) and polls (+170 s): a 120 s gap.
	at(orphan, 1, 49*time.Second, true)
	at(orphan, 1, 50*time.Second, false)
	at(orphan, 0, 117*time.Second, true)
	at(orphan, 0, 169*time.Second, true)
	at(orphan, 0, 170*time.Second, false)
	// unpolled: polled at +80 s, then only a wait after the kill.
	at(unpolled, 1, 80*time.Second, false)
	at(unpolled, 0, 118*time.Second, true)
	// home: replica 0's, polled by replica 1 too 20 s later: polled twice.
	at(home, 0, 10*time.Second, false)
	at(home, 1, 30*time.Second, false)

	rep := shardReport(log, n, iv, t0, t0.Add(200*time.Second), t0.Add(100*time.Second), []int{1})
	assert.Equal(t, 2, rep.Orphans)
	assert.InDelta(t, 17.0, rep.FirstTakeover, 1e-9, "the first reconcile after the kill, a wait")
	assert.Equal(t, 1, rep.Dropped, "an orphan only waited for")
	assert.InDelta(t, 120_000.0, rep.TakeoverGap.Max, 1e-6, "ms between the orphan's polls at +50 s and +170 s")
	assert.Equal(t, 1, rep.DoublePolls)
	assert.Zero(t, rep.Overlapping)
	assert.Equal(t, []int{2, 3}, rep.ReconcilesByReplica, "deciding reconciles in the period: replica 0 home +10 s and orphan +170 s, replica 1 the rest")
}
