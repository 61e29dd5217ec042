package controllers

import (
	"context"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The polls' cadence. Each policy's deciding polls are due on slots of its
// own: at phase(key) + k·interval in Unix time, where phase is a hash of
// "namespace/name" modulo the polling interval, as Prometheus spreads its
// targets' scrapes by a hash of the target. So:
//   - a fleet's polls are spread evenly over the interval, without a random
//     jitter that lengthens every interval;
//   - a poll that waited in the queue does not delay the next: the cadence
//     does not drift by the queue's wait, poll after poll;
//   - a job's cadence is the job's, not the replica's: a replica that takes
//     a shard over (firstPollDue) polls each job on the slot after the last
//     one its previous owner polled, so no job is polled again within half
//     an interval across a takeover, and none waits much more than an
//     interval and a half.

// pollPhase is key's offset within interval: FNV-1a 64 of
// "namespace/name", mixed by MurmurHash3's 64-bit finalizer, modulo
// interval (0 for an interval ≤ 0). FNV alone spreads names that differ in
// their last characters (job-01, job-05) over a few milliseconds of the
// interval: its last step's product barely moves the low-order residue.
func pollPhase(key types.NamespacedName, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	// FNV-1a 64 byte by byte, as hash/fnv computes it, without its
	// allocations: every poll asks.
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime64
		}
	}
	add(key.Namespace)
	add("/")
	add(key.Name)
	return time.Duration(fmix64(h) % uint64(interval))
}

// fmix64 is MurmurHash3's finalizer: every input bit flips each output bit
// with probability about one half.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// nextSlot is key's first slot at or after t (t itself for an interval ≤ 0).
func nextSlot(key types.NamespacedName, interval time.Duration, t time.Time) time.Time {
	if interval <= 0 {
		return t
	}
	// The slots are phase + k·interval; t is off that grid by off.
	off := (t.UnixNano() - int64(pollPhase(key, interval))) % int64(interval)
	if off < 0 {
		off += int64(interval)
	}
	if off == 0 {
		return t
	}
	return t.Add(time.Duration(int64(interval) - off))
}

// lastSlot is key's last slot at or before t.
func lastSlot(key types.NamespacedName, interval time.Duration, t time.Time) time.Time {
	n := nextSlot(key, interval, t)
	if n.Equal(t) || interval <= 0 {
		return n
	}
	return n.Add(-interval)
}

// firstPollDue is when a replica that took key's shard over may poll it
// first, given what it knows of the previous holder (fencer.Fence): it
// admitted reconciles until alive and none after fence. The last slot s at
// or before fence is the last its previous owner could have polled on: at
// or before alive it did, and the job is due an interval later, on its
// cadence; after alive it may or may not have (a crash came in between),
// and the job is due half an interval after s: not within half an
// interval of a poll there, an interval and a half after the one before
// if there was none. A due time before now is due at once.
func firstPollDue(key types.NamespacedName, interval time.Duration, alive, fence time.Time) time.Time {
	s := lastSlot(key, interval, fence)
	if s.After(alive) {
		return s.Add(interval / 2)
	}
	return s.Add(interval)
}

// nextPollIn is the wait after a deciding poll at now: to the policy's
// first slot at least half an interval ahead, less lead (the wait of the
// priming request sent before the poll, which must land on the slot),
// and never less than a quarter of the interval. With FixedRequeue, an
// interval less lead, never less than half an interval.
func (r *PolicyReconciler) nextPollIn(key types.NamespacedName, interval, lead time.Duration, now time.Time) time.Duration {
	if r.FixedRequeue {
		return max(interval-lead, interval/2)
	}
	next := nextSlot(key, interval, now.Add(interval/2))
	return max(next.Sub(now)-lead, interval/4)
}

// backoffJitter stretches a backoff wait by a random fraction of up to a
// tenth, so that jobs that failed together do not retry in lockstep (not
// with FixedRequeue).
func (r *PolicyReconciler) backoffJitter(d time.Duration) time.Duration {
	if r.FixedRequeue {
		return d
	}
	return d + time.Duration(rand.Float64()*0.1*float64(d))
}

// ShardGate is PolicyReconciler.Shards: a shard.Manager, or a harness's
// wrapper of one.
type ShardGate interface {
	// Enter admits a reconcile of key when this replica holds its shard;
	// done ends it.
	Enter(key types.NamespacedName) (done func(), ok bool)
	// Fence tells when the previous holder of key's shard last admitted
	// reconciles of it: until alive at least, and none after fence. Both
	// are zero when nobody held it before, or this replica does not hold
	// it.
	Fence(key types.NamespacedName) (alive, fence time.Time)
}

// takeoverWait is how long the first reconcile of a policy on this replica
// waits for the policy's slot (firstPollDue) when its shard was taken from
// another holder (ok false: go on now). Not for a rescale in progress (it
// is followed at once), nor for a spec the previous owner had not
// observed (the user's change is acted on at once), nor once this replica
// polled the policy.
func (r *PolicyReconciler) takeoverWait(ctx context.Context, key types.NamespacedName, interval time.Duration, rescaling, specChanged bool, st *policyState) (time.Duration, bool) {
	if st.continued {
		return 0, false
	}
	if r.Shards == nil || r.FixedRequeue || rescaling || specChanged {
		st.continued = true
		return 0, false
	}
	alive, fence := r.Shards.Fence(key)
	if fence.IsZero() {
		st.continued = true
		return 0, false
	}
	if wait := firstPollDue(key, interval, alive, fence).Sub(r.now()); wait > 0 {
		notePrimed(ctx)
		return wait, true
	}
	st.continued = true
	return 0, false
}
