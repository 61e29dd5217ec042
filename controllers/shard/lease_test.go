package shard

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/test/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// Fast Lease timings for the tests (the defaults are 15 s, 10 s, 2 s).
const (
	testLease = 2 * time.Second
	testRenew = 1500 * time.Millisecond
	testRetry = 200 * time.Millisecond
)

// replica is one controller replica's shard Manager; a crash stops its
// loop without releasing anything (its gate stays, as in a replica cut off
// from the API server that keeps reconciling).
type replica struct {
	id       string
	m        *Manager
	cancel   context.CancelFunc
	crash    atomic.Bool
	done     chan struct{}
	released atomic.Int32 // OnRelease calls
}

type fleet struct {
	t       *testing.T
	c       client.Client
	ns      string
	shards  int
	mu      sync.Mutex
	slots   []*replica // by ordinal; a restart replaces the slot
	started time.Time
}

func (f *fleet) start(ordinal int) *replica {
	f.t.Helper()
	r := &replica{id: fmt.Sprintf("flinkscale-%d", ordinal), done: make(chan struct{})}
	m, err := New(Options{
		Shards: f.shards, Identity: r.id, Namespace: f.ns, Prefix: "flinkscale.io",
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
		Client: f.c, Log: testr.New(f.t).WithName(r.id),
		OnRelease: func(int) { r.released.Add(1) },
	})
	require.NoError(f.t, err)
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		m.run(ctx)
		if !r.crash.Load() {
			m.releaseAll()
		}
	}()
	f.mu.Lock()
	f.slots[ordinal] = r
	f.mu.Unlock()
	return r
}

func (f *fleet) replica(ordinal int) *replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slots[ordinal]
}

// stop stops a replica gracefully, or as a crash.
func (f *fleet) stop(r *replica, crash bool) {
	r.crash.Store(crash)
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(2 * testLease):
		f.t.Fatalf("%s did not stop", r.id)
	}
}

// holders is who holds each shard, by the replicas' gates.
func (f *fleet) holders() [][]string {
	out := make([][]string, f.shards)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.slots {
		for _, i := range r.m.Held() {
			out[i] = append(out[i], r.id)
		}
	}
	return out
}

func (f *fleet) lease(i int) coordinationv1.Lease {
	var l coordinationv1.Lease
	_ = f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: fmt.Sprintf("flinkscale.io-shard-%d", i)}, &l)
	return l
}

// gateRecorder hammers every replica's gate with many keys, concurrently,
// and records a violation whenever a key's shard is entered by one
// replica while another one is inside it: ownership intervals never
// overlap.
type gateRecorder struct {
	mu         sync.Mutex
	inside     []map[string]int // per shard: replica → reconciles in flight
	admitted   map[types.NamespacedName]map[string]int
	violations []string
	lastEnter  map[string]map[int]time.Time // replica → shard → its last admission
}

func (g *gateRecorder) enter(id string, key types.NamespacedName, shard int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for other, n := range g.inside[shard] {
		if other != id && n > 0 {
			g.violations = append(g.violations, fmt.Sprintf("%s entered shard %d (%s) while %s was inside", id, shard, key, other))
		}
	}
	g.inside[shard][id]++
	if g.lastEnter[id] == nil {
		g.lastEnter[id] = map[int]time.Time{}
	}
	g.lastEnter[id][shard] = time.Now()
	if g.admitted[key] == nil {
		g.admitted[key] = map[string]int{}
	}
	g.admitted[key][id]++
}

func (g *gateRecorder) leave(id string, shard int) {
	g.mu.Lock()
	g.inside[shard][id]--
	g.mu.Unlock()
}

// lastAdmitted is when replica id was last admitted into shard.
func (g *gateRecorder) lastAdmitted(id string, shard int) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastEnter[id][shard]
}

func (g *gateRecorder) snapshot() (admitted int, violations []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.admitted), slices.Clone(g.violations)
}

// hammer enters every key through slot's current replica in a loop until
// ctx ends.
func (f *fleet) hammer(ctx context.Context, wg *sync.WaitGroup, g *gateRecorder, slot int, keys []types.NamespacedName) {
	defer wg.Done()
	for ctx.Err() == nil {
		r := f.replica(slot)
		for _, k := range keys {
			done, ok := r.m.Enter(k)
			if !ok {
				continue
			}
			s := Of(k, f.shards)
			g.enter(r.id, k, s)
			time.Sleep(50 * time.Microsecond) // a reconcile
			g.leave(r.id, s)
			done()
		}
		time.Sleep(time.Millisecond)
	}
}

// Three replicas (StatefulSet pods flinkscale-0..2) on three shards. Each
// ends holding its home shard; a replica that crashes without releasing
// (its loop stops, its gate keeps being asked) loses its shard to a
// survivor within LeaseDuration + 2×RetryPeriod of its last renewal and
// stops admitting before the survivor starts; restarted, it gets its home
// back by the hand-back; a replica stopped gracefully releases at once.
// Throughout, a recorder hammering every replica's gate with 300 keys sees
// no shard entered by two replicas at once.
func TestShardLeasesTakeoverAndHandBack(t *testing.T) {
	env := envtest.Start(t)
	ns := env.CreateNamespace(t, "shards")
	c, err := client.New(env.Config, client.Options{Scheme: clientgoscheme.Scheme})
	require.NoError(t, err)
	const n = 3
	f := &fleet{t: t, c: c, ns: ns, shards: n, slots: make([]*replica, n), started: time.Now()}
	for i := range n {
		f.start(i)
	}
	defer func() {
		for i := range n {
			if r := f.replica(i); r != nil {
				select {
				case <-r.done:
				default:
					f.stop(r, false)
				}
			}
		}
	}()

	var keys []types.NamespacedName
	for i := range 300 {
		keys = append(keys, types.NamespacedName{Namespace: fmt.Sprintf("team-%d", i%7), Name: fmt.Sprintf("job-%d", i)})
	}
	g := &gateRecorder{inside: make([]map[string]int, n), admitted: map[types.NamespacedName]map[string]int{}, lastEnter: map[string]map[int]time.Time{}}
	for i := range g.inside {
		g.inside[i] = map[string]int{}
	}
	hctx, stopHammer := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for slot := range n {
		wg.Add(1)
		go f.hammer(hctx, &wg, g, slot, keys)
	}
	defer func() { stopHammer(); wg.Wait() }()

	homes := func() bool {
		h := f.holders()
		for i := range n {
			if !slices.Equal(h[i], []string{fmt.Sprintf("flinkscale-%d", i)}) {
				return false
			}
		}
		return true
	}
	require.Eventually(t, homes, 5*time.Second, 10*time.Millisecond, "each replica holds its home shard: %v", f.holders())
	t.Logf("home shards held %s after the start", time.Since(f.started).Round(time.Millisecond))
	for i := range n {
		l := f.lease(i)
		require.NotNil(t, l.Spec.HolderIdentity)
		assert.Equal(t, fmt.Sprintf("flinkscale-%d", i), *l.Spec.HolderIdentity)
		assert.EqualValues(t, 2, *l.Spec.LeaseDurationSeconds)
	}
	require.Eventually(t, func() bool { a, _ := g.snapshot(); return a == len(keys) }, 5*time.Second, 10*time.Millisecond, "every key is admitted")
	// A key of each shard, for the fences.
	inShard := make([]types.NamespacedName, n)
	for _, k := range keys {
		inShard[Of(k, n)] = k
	}
	for i := range n {
		alive, fence := f.replica(i).m.Fence(inShard[i])
		assert.True(t, alive.IsZero() && fence.IsZero(), "a new Lease taken from nobody has no fence")
		alive, fence = f.replica(i).m.Fence(inShard[(i+1)%n])
		assert.True(t, alive.IsZero() && fence.IsZero(), "no fence for a shard not held")
	}
	// checkFence: the replica that took shard i from prev holds a fence
	// after prev's last admission into it and not after now, and an
	// alive time at or before the fence. (The hammer asks the gates
	// continuously, so prev admitted until it stopped: a crashed
	// replica's gate until its renew deadline, which alive does not
	// bound; a graceful one's until it began to release, before alive.)
	checkFence := func(taker *replica, prev string, i int, graceful bool) {
		t.Helper()
		alive, fence := taker.m.Fence(inShard[i])
		last := g.lastAdmitted(prev, i)
		require.False(t, fence.IsZero(), "%s took shard %d from %s: it has a fence", taker.id, i, prev)
		assert.False(t, fence.Before(last), "%s's fence of shard %d (%s) is after %s's last admission (%s)",
			taker.id, i, fence.Format(time.StampMicro), prev, last.Format(time.StampMicro))
		assert.False(t, fence.After(time.Now()))
		assert.False(t, alive.After(fence))
		if graceful {
			assert.False(t, alive.Before(last), "a released shard: %s admitted nothing after the release was seen", prev)
		}
		t.Logf("shard %d: %s's last admission %s before %s's fence, %s before its alive time", i, prev,
			fence.Sub(last).Round(time.Millisecond), taker.id, alive.Sub(last).Round(time.Millisecond))
	}
	// Nobody takes a shard that is renewed.
	assert.Never(t, func() bool { return !homes() }, 2*testLease, 20*time.Millisecond, "shards move while all renew: %v", f.holders())

	// Crash flinkscale-2: its loop stops, nothing is released.
	crashed := f.replica(2)
	lastRenew := func() time.Time {
		crashed.m.mu.Lock()
		defer crashed.m.mu.Unlock()
		return crashed.m.shards[2].renewedAt
	}
	f.stop(crashed, true)
	crashAt := time.Now()
	renewed := lastRenew()
	var survivor string
	require.Eventually(t, func() bool {
		h := f.holders()[2]
		if len(h) == 1 && h[0] != crashed.id {
			survivor = h[0]
			return true
		}
		return false
	}, 3*testLease, 5*time.Millisecond, "a survivor takes shard 2: %v", f.holders())
	took := time.Since(renewed)
	t.Logf("shard 2 taken by %s %s after the crashed replica's last renewal (%s after the crash; bound LeaseDuration+2×RetryPeriod = %s)",
		survivor, took.Round(time.Millisecond), time.Since(crashAt).Round(time.Millisecond), testLease+2*testRetry)
	// API latency on a loaded 2-core machine on top of the bound.
	assert.Less(t, took, testLease+2*testRetry+500*time.Millisecond)
	assert.GreaterOrEqual(t, took, testLease, "taken before the Lease expired")
	assert.Empty(t, crashed.m.Held(), "the crashed replica's gate closed at its renew deadline")
	l := f.lease(2)
	assert.Equal(t, survivor, *l.Spec.HolderIdentity)
	assert.EqualValues(t, 1, *l.Spec.LeaseTransitions)
	_, v := g.snapshot()
	require.Empty(t, v)
	for i := range 2 {
		if f.replica(i).id == survivor {
			checkFence(f.replica(i), crashed.id, 2, false)
		}
	}

	// Restart flinkscale-2: it asks for its home back and gets it.
	restarted := f.start(2)
	var loser *replica
	for i := range 2 {
		if f.replica(i).id == survivor {
			loser = f.replica(i)
		}
	}
	before := loser.released.Load()
	handBack := time.Now()
	require.Eventually(t, homes, 3*testLease, 5*time.Millisecond, "the home shard is handed back: %v", f.holders())
	t.Logf("shard 2 handed back to %s in %s", restarted.id, time.Since(handBack).Round(time.Millisecond))
	assert.Eventually(t, func() bool { return loser.released.Load() > before }, testLease, 10*time.Millisecond, "OnRelease on the survivor")
	l = f.lease(2)
	assert.Equal(t, restarted.id, *l.Spec.HolderIdentity)
	assert.Empty(t, l.Annotations[AnnotationRequestedBy], "the request is cleared")
	assert.EqualValues(t, 2, *l.Spec.LeaseTransitions)
	checkFence(restarted, loser.id, 2, true)

	// Graceful stop of flinkscale-1: released at once, taken by another
	// well before the Lease would have expired.
	stopping := f.replica(1)
	stopAt := time.Now()
	f.stop(stopping, false)
	l = f.lease(1)
	require.NotNil(t, l.Spec.HolderIdentity)
	assert.NotEqual(t, stopping.id, *l.Spec.HolderIdentity, "released on stop")
	require.Eventually(t, func() bool {
		h := f.holders()[1]
		return len(h) == 1 && h[0] != stopping.id
	}, testLease, 5*time.Millisecond, "shard 1 is taken after the graceful stop: %v", f.holders())
	t.Logf("shard 1 taken %s after the graceful stop began", time.Since(stopAt).Round(time.Millisecond))
	assert.Less(t, time.Since(stopAt), testLease, "no wait for expiry")
	assert.Positive(t, stopping.released.Load(), "OnRelease on stop")
	for _, r := range []*replica{f.replica(0), f.replica(2)} {
		if h := f.holders()[1]; len(h) == 1 && h[0] == r.id {
			checkFence(r, stopping.id, 1, true)
		}
	}

	stopHammer()
	wg.Wait()
	_, v = g.snapshot()
	assert.Empty(t, v, "a shard entered by two replicas at once")
}
