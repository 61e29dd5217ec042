package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
)

// The phase is part of the cadence replicas agree on: two releases that
// hash differently would poll a job off its slot after a rolling upgrade.
// Pinned here: FNV-1a 64 of "streaming/orders" is 0x848edf5e76854b85,
// fmix64 of that 0x70996f157abcb3cc, which is 11,728,842,700 ns mod 30 s.
func TestPollPhaseIsStable(t *testing.T) {
	k := types.NamespacedName{Namespace: "streaming", Name: "orders"}
	assert.Equal(t, uint64(0x70996f157abcb3cc), fmix64(0x848edf5e76854b85))
	assert.Equal(t, 11_728_842_700*time.Nanosecond, pollPhase(k, 30*time.Second))
	assert.Equal(t, pollPhase(k, 30*time.Second), pollPhase(k, 30*time.Second))
	assert.Zero(t, pollPhase(k, 0))
	assert.Zero(t, pollPhase(k, -time.Second))
	// hash/fnv computes the same FNV-1a 64, with allocations.
	h := fnv.New64a()
	h.Write([]byte("streaming/orders"))
	assert.Equal(t, uint64(0x848edf5e76854b85), h.Sum64())
	assert.Zero(t, testing.AllocsPerRun(100, func() { nextSlot(k, 30*time.Second, time.Now()) }), "every poll asks: no allocation")
}

// 10,000 jobs named as a fleet names them (team-N/job-NNNN) fall evenly over
// a 60 s interval: each of the 60 seconds gets 10,000/60 ≈ 167 of them, and
// a uniform spread keeps every second within ±35 % (a binomial's standard
// deviation there is √(10,000 · 1/60 · 59/60) ≈ 12.8, so ±58 is 4.5 σ). FNV
// alone fails this: names that differ in their last digits land
// milliseconds apart.
func TestPollPhaseSpreadsAFleet(t *testing.T) {
	const jobs, interval = 10000, 60 * time.Second
	var perSecond [60]int
	for i := range jobs {
		k := types.NamespacedName{Namespace: fmt.Sprintf("team-%d", i%10), Name: fmt.Sprintf("job-%04d", i)}
		perSecond[pollPhase(k, interval)/time.Second]++
	}
	for s, n := range perSecond {
		assert.InDelta(t, jobs/60.0, n, 58, "second %d of the interval", s)
	}
}

func TestNextAndLastSlot(t *testing.T) {
	k := types.NamespacedName{Namespace: "streaming", Name: "orders"}
	const iv = 30 * time.Second
	p := pollPhase(k, iv)
	// A slot: phase past a multiple of the interval since the epoch.
	slot := time.Unix(0, 0).Add(57*iv + p)
	for _, c := range []struct {
		name       string
		t          time.Time
		next, last time.Time
	}{
		{"on a slot", slot, slot, slot},
		{"just after", slot.Add(time.Nanosecond), slot.Add(iv), slot},
		{"just before", slot.Add(-time.Nanosecond), slot, slot.Add(-iv)},
		{"mid-way", slot.Add(iv / 2), slot.Add(iv), slot},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.True(t, c.next.Equal(nextSlot(k, iv, c.t)), "next %s, want %s", nextSlot(k, iv, c.t), c.next)
			assert.True(t, c.last.Equal(lastSlot(k, iv, c.t)), "last %s, want %s", lastSlot(k, iv, c.t), c.last)
		})
	}
	// Before the epoch too (negative UnixNano).
	early := time.Unix(0, 0).Add(-3*iv + p)
	assert.True(t, early.Equal(nextSlot(k, iv, early.Add(-time.Second))))
}

// Property: for any key, interval and time, nextSlot is the first point of
// the key's grid at or after t, lastSlot the last at or before it.
func TestSlotsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 23))
	for range 5000 {
		k := types.NamespacedName{Namespace: fmt.Sprintf("ns-%d", rng.IntN(50)), Name: fmt.Sprintf("job-%d", rng.IntN(1e6))}
		iv := time.Duration(1+rng.Int64N(600)) * time.Second / time.Duration(1+rng.IntN(3))
		tt := time.Unix(0, rng.Int64N(4e18)-1e18)
		n, l := nextSlot(k, iv, tt), lastSlot(k, iv, tt)
		require.False(t, n.Before(tt))
		require.Less(t, n.Sub(tt), iv)
		require.False(t, l.After(tt))
		require.Less(t, tt.Sub(l), iv)
		for _, s := range []time.Time{n, l} {
			off := (s.UnixNano() - int64(pollPhase(k, iv))) % int64(iv)
			require.Zero(t, off, "%s is on %s's grid of %s", s, k, iv)
		}
	}
}

// After a poll at its slot, or late by a queue's wait, the next poll is
// the next slot, less the priming request's lead; a poll made off its slot
// (at once on a spec change) returns to it at least half an interval on.
func TestNextPollIn(t *testing.T) {
	k := types.NamespacedName{Namespace: "streaming", Name: "orders"}
	const iv = 30 * time.Second
	slot := nextSlot(k, iv, time.Unix(1_800_000_000, 0))
	r := &PolicyReconciler{}
	for _, c := range []struct {
		name       string
		at         time.Time
		lead, want time.Duration
	}{
		{"on its slot", slot, 0, iv},
		{"on its slot, primed 1 s ahead", slot, time.Second, iv - time.Second},
		{"4 s late in the queue: no drift", slot.Add(4 * time.Second), 0, iv - 4*time.Second},
		{"14 s late", slot.Add(14 * time.Second), 0, iv - 14*time.Second},
		{"16 s after its slot (a spec change): the slot after next", slot.Add(16 * time.Second), 0, 2*iv - 16*time.Second},
		{"a lead longer than the wait: a quarter interval", slot.Add(14 * time.Second), 10 * time.Second, iv / 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, r.nextPollIn(k, iv, c.lead, c.at))
		})
	}
	fixed := &PolicyReconciler{FixedRequeue: true}
	assert.Equal(t, iv-time.Second, fixed.nextPollIn(k, iv, time.Second, slot.Add(7*time.Second)))
	assert.Equal(t, iv/2, fixed.nextPollIn(k, iv, 20*time.Second, slot))
}

// The first poll after a takeover, for a job whose slots are at :00 and
// :30 (interval 30 s), its previous owner seen alive until alive and
// admitting nothing after fence.
func TestFirstPollDue(t *testing.T) {
	k := types.NamespacedName{Namespace: "streaming", Name: "orders"}
	const iv = 30 * time.Second
	s0 := nextSlot(k, iv, time.Unix(1_800_000_000, 0)) // a slot: call it :00
	at := func(d time.Duration) time.Time { return s0.Add(d) }
	for _, c := range []struct {
		name         string
		alive, fence time.Duration // after :00
		want         time.Duration
	}{
		// Last slot ≤ fence is :00, and the owner was alive after it: it
		// polled then; due :30.
		{"a crash between slots", 5 * time.Second, 13 * time.Second, 30 * time.Second},
		// A release seen at :20: the same.
		{"a release", 20 * time.Second, 20 * time.Second, 30 * time.Second},
		// Last slot ≤ fence is :30, after alive (:27): polled there or
		// not; due :45, half an interval on.
		{"a slot in the uncertain window", 27 * time.Second, 37 * time.Second, 45 * time.Second},
		// alive exactly on the slot: it was admitting then.
		{"alive on the slot", 30 * time.Second, 40 * time.Second, 60 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := firstPollDue(k, iv, at(c.alive), at(c.fence))
			assert.Equal(t, c.want, got.Sub(s0))
		})
	}
}

// Property of a takeover, with the shard timings of flinkscale controller
// (Lease 15 s, renew deadline 10 s, retry 2 s): an owner polls a job on its
// slots (each poll starting up to q late) and dies at K, or is cut off and
// admits until its renew deadline; the survivor saw its last renewal R ≤ K
// at R + lag (lag ≤ the retry period), takes over a Lease duration later,
// and polls the job at max(takeover, firstPollDue). Never within half an
// interval of the owner's last poll less q; never later than an interval
// and a half, or the takeover's own delay past an interval; except that a
// slot the owner was alive for but whose poll the queue held past its end
// leaves up to two intervals.
func TestTakeoverCadenceProperty(t *testing.T) {
	const lease, renew, retry = 15 * time.Second, 10 * time.Second, 2 * time.Second
	rng := rand.New(rand.NewPCG(11, 5))
	for i := range 20000 {
		k := types.NamespacedName{Namespace: "team", Name: fmt.Sprintf("job-%d", i)}
		iv := []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second, 5 * time.Minute}[rng.IntN(4)]
		q := time.Duration(rng.Int64N(int64(2 * time.Second)))
		base := time.Unix(1_800_000_000, 0)
		R := base.Add(time.Duration(rng.Int64N(int64(time.Hour)))) // last renewal
		K := R.Add(time.Duration(rng.Int64N(int64(retry))))        // crash, before the next renewal
		lag := time.Duration(rng.Int64N(int64(retry)))             // the survivor's look
		seen := R.Add(lag)                                         // observedAt
		alive, fence := seen.Add(-retry), seen.Add(renew)          // shard.Manager's fenceOf
		partition := rng.IntN(3) == 0                              // admits until its renew deadline
		end := K
		if partition {
			end = R.Add(renew)
		}
		// The owner's last poll: its last slot whose start (slot + q) is
		// admitted.
		last := lastSlot(k, iv, end.Add(-q)).Add(q)
		T := seen.Add(lease)
		first := firstPollDue(k, iv, alive, fence)
		if first.Before(T) {
			first = T
		}
		gap := first.Sub(last)
		require.GreaterOrEqual(t, gap, iv/2-q, "interval %s: polled %s after the owner's last poll (crash at %s after it)", iv, gap, K.Sub(last))
		bound := max(iv+iv/2, T.Sub(K)+iv)
		if !lastSlot(k, iv, end).Equal(lastSlot(k, iv, end.Add(-q))) {
			bound = max(2*iv, T.Sub(K)+iv)
		}
		require.LessOrEqual(t, gap, bound+time.Nanosecond, "interval %s: unpolled for %s", iv, gap)
	}
}

type fakeFencer struct {
	alive, fence time.Time
	asked        int
}

func (f *fakeFencer) Enter(types.NamespacedName) (func(), bool) { return func() {}, true }
func (f *fakeFencer) Fence(types.NamespacedName) (time.Time, time.Time) {
	f.asked++
	return f.alive, f.fence
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                  { return c.t }
func (c fixedClock) Since(t time.Time) time.Duration { return c.t.Sub(t) }

func TestTakeoverWait(t *testing.T) {
	k := types.NamespacedName{Namespace: "streaming", Name: "orders"}
	const iv = 30 * time.Second
	s0 := nextSlot(k, iv, time.Unix(1_800_000_000, 0))
	// Alive until :05, fence :13: due :30.
	taken := &fakeFencer{alive: s0.Add(5 * time.Second), fence: s0.Add(13 * time.Second)}
	for _, c := range []struct {
		name                  string
		gate                  *fakeFencer
		fixed                 bool
		rescaling, specChange bool
		now                   time.Duration
		wait                  time.Duration
		waits                 bool
	}{
		{"no shards", nil, false, false, false, 17 * time.Second, 0, false},
		{"a new Lease", &fakeFencer{}, false, false, false, 17 * time.Second, 0, false},
		{"taken over: wait for :30", taken, false, false, false, 17 * time.Second, 13 * time.Second, true},
		{"taken over, the slot passed", taken, false, false, false, 31 * time.Second, 0, false},
		{"a rescale to follow", taken, false, true, false, 17 * time.Second, 0, false},
		{"a spec to act on", taken, false, false, true, 17 * time.Second, 0, false},
		{"fixed requeues", taken, true, false, false, 17 * time.Second, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &PolicyReconciler{FixedRequeue: c.fixed, Clock: fixedClock{s0.Add(c.now)}}
			if c.gate != nil {
				r.Shards = c.gate
			}
			st := &policyState{}
			hooked := 0
			ctx := WithPrimedHook(context.Background(), func() { hooked++ })
			wait, ok := r.takeoverWait(ctx, k, iv, c.rescaling, c.specChange, st)
			assert.Equal(t, c.waits, ok)
			assert.Equal(t, c.waits, hooked == 1, "a harness counting polls hears of a wait, and only of one")
			assert.Equal(t, c.wait, wait)
			assert.Equal(t, !c.waits, st.continued, "went on: never asks again")
		})
	}
	// Once it went on, later reconciles do not wait, whatever the fence.
	st := &policyState{}
	r := &PolicyReconciler{Clock: fixedClock{s0.Add(31 * time.Second)}, Shards: taken}
	_, ok := r.takeoverWait(context.Background(), k, iv, false, false, st)
	require.False(t, ok)
	taken.asked = 0
	r.Clock = fixedClock{s0.Add(17 * time.Second)}
	_, ok = r.takeoverWait(context.Background(), k, iv, false, false, st)
	assert.False(t, ok)
	assert.Zero(t, taken.asked)
}
