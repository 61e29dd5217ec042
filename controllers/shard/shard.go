// Package shard spreads a fleet of policies over the controller's replicas
// with Kubernetes Leases (coordination.k8s.io/v1), one Lease per shard, as
// client-go's leaderelection holds one Lease per leader.
//
// A key (namespace/name) belongs to shard Of(key, n): FNV-1a 32 of
// "namespace/name", mod n. A Manager holds some of the n Leases
// <prefix>-shard-<i> and admits, through Enter, only the reconciles of keys
// in the shards it holds. Each replica has a home shard (the ordinal of its
// StatefulSet pod name, as Argo CD's sharded application controller uses
// ordinals): it takes its home shard whenever it is free, asks its holder to
// hand it back otherwise, and takes other shards only when their holder
// stopped renewing them for a LeaseDuration, so every shard has an owner and
// no shard has two.
//
// Expiry is judged as client-go judges it: by the local time at which this
// replica last saw the Lease's record change, never by comparing the
// holder's renewTime with the local clock. A holder that could not renew
// for RenewDeadline (< LeaseDuration) stops admitting reconciles of that
// shard before anyone else may take it.
package shard

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Of is the shard of a key among n: FNV-1a (32 bits) of "namespace/name",
// mod n. It is stable across versions and replicas; n <= 1 is shard 0.
//
//	printf 'streaming/orders' | fnv1a32   # then mod n
func Of(key types.NamespacedName, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key.Namespace + "/" + key.Name))
	return int(h.Sum32() % uint32(n))
}

// Home is the home shard of a replica named identity among n: the ordinal
// of a StatefulSet pod name (flinkscale-2 → 2) when it is below n, else -1
// (no home: such a replica only takes over orphaned shards). An ordinal at
// or above n has no home rather than ordinal mod n, so that two replicas
// never hand one shard back and forth.
func Home(identity string, n int) int {
	i := strings.LastIndexByte(identity, '-')
	if i < 0 {
		return -1
	}
	o, err := strconv.Atoi(identity[i+1:])
	if err != nil || o < 0 || o >= n || strconv.Itoa(o) != identity[i+1:] {
		return -1
	}
	return o
}

// AnnotationRequestedBy, on a Lease, names the replica whose home shard it
// is and which asks its holder to hand it back.
const AnnotationRequestedBy = "flinkscale.io/requested-by"

// Defaults of the Lease timings (client-go's leaderelection and
// controller-runtime use the same).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Owned is flinkscale_shard_owned{shard}: 1 while this replica holds the
// shard. Registered on controller-runtime's metrics registry.
var Owned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "flinkscale_shard_owned",
	Help: "1 while this controller replica holds the shard's Lease and reconciles its policies, else 0.",
}, []string{"shard"})

func init() { crmetrics.Registry.MustRegister(Owned) }

// Options configure a Manager.
type Options struct {
	// Shards is the number of shards (Leases), at least 1.
	Shards int
	// Identity names this replica in the Leases (the pod name; required).
	Identity string
	// Namespace and Prefix place the Leases: Namespace/<Prefix>-shard-<i>.
	Namespace, Prefix string
	// LeaseDuration, RenewDeadline and RetryPeriod are the Lease timings
	// (defaults 15 s, 10 s, 2 s); RenewDeadline < LeaseDuration.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Client reads and writes the Leases (get, create, update). An
	// uncached client: a cached one would watch every Lease.
	Client client.Client
	// Reader lists the objects of an acquired shard for Watch (the
	// manager's cache); nil sends nothing.
	Reader client.Reader
	// Clock is the real clock when nil.
	Clock clock.WithTicker
	// OnRelease is called when this replica stops holding a shard, once
	// no reconcile of it is in flight: forget that shard's in-memory state
	// and series.
	OnRelease func(shard int)
	// Log receives one line per acquire, release and loss.
	Log logr.Logger
}

// Manager holds shards' Leases and gates reconciles by them. It is a
// manager.Runnable that runs on every replica (no leader election).
type Manager struct {
	o       Options
	started time.Time

	mu     sync.Mutex
	shards []*state
	// stopping: Enter admits nothing (set when Start's context ends).
	stopping bool

	watchMu sync.Mutex
	watches []watch
}

type watch struct {
	newList func() client.ObjectList
	ch      chan event.GenericEvent
}

// state is one shard as this replica knows it. The gate's fields are
// guarded by Manager.mu; the observation is only touched by the loop.
type state struct {
	// gate
	held      bool
	admitting bool      // false while handing back or stopping
	renewedAt time.Time // local time the last successful write was sent
	inflight  int
	forget    bool // OnRelease is due once inflight is 0
	// alive, fence: the previous holder admitted reconciles until alive
	// at least and fence at most (zero when the shard had no holder
	// before this one); see Fence.
	alive, fence time.Time

	// observation (loop only)
	record     string    // the Lease's holder, times and transitions
	observedAt time.Time // local time the record last changed
	exists     bool
}

var (
	_ manager.Runnable               = (*Manager)(nil)
	_ manager.LeaderElectionRunnable = (*Manager)(nil)
)

// New checks o and applies its defaults.
func New(o Options) (*Manager, error) {
	if o.Shards < 1 {
		return nil, fmt.Errorf("shards must be at least 1, not %d", o.Shards)
	}
	if o.Identity == "" || o.Namespace == "" || o.Prefix == "" || o.Client == nil {
		return nil, fmt.Errorf("shard manager: identity, namespace, prefix and client are required")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.RenewDeadline >= o.LeaseDuration || o.RetryPeriod >= o.RenewDeadline {
		return nil, fmt.Errorf("shard timings: want retry period %s < renew deadline %s < lease duration %s", o.RetryPeriod, o.RenewDeadline, o.LeaseDuration)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	m := &Manager{o: o, shards: make([]*state, o.Shards)}
	for i := range m.shards {
		m.shards[i] = &state{}
	}
	return m, nil
}

// NeedLeaderElection is false: every replica runs its Manager.
func (m *Manager) NeedLeaderElection() bool { return false }

// Home is this replica's home shard, or -1.
func (m *Manager) Home() int { return Home(m.o.Identity, m.o.Shards) }

// LeaseName is the name of shard i's Lease.
func (m *Manager) LeaseName(i int) string { return fmt.Sprintf("%s-shard-%d", m.o.Prefix, i) }

// Watch returns a channel (for source.Channel) on which, each time this
// replica acquires a shard, every object of newList's kind in that shard
// (listed from Options.Reader) is sent, so that it is reconciled at once
// rather than at its next event. Call before Start.
func (m *Manager) Watch(newList func() client.ObjectList) <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent)
	m.watchMu.Lock()
	m.watches = append(m.watches, watch{newList: newList, ch: ch})
	m.watchMu.Unlock()
	return ch
}

// Enter admits a reconcile of key when this replica holds key's shard now
// (held, and renewed less than RenewDeadline ago). The shard is not
// released before done is called.
func (m *Manager) Enter(key types.NamespacedName) (done func(), ok bool) {
	i := Of(key, m.o.Shards)
	now := m.o.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.shards[i]
	if m.stopping || !s.held || !s.admitting || now.Sub(s.renewedAt) >= m.o.RenewDeadline {
		return nil, false
	}
	s.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			s.inflight--
			m.mu.Unlock()
		})
	}, true
}

// Held lists the shards this replica holds now.
func (m *Manager) Held() []int {
	now := m.o.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for i, s := range m.shards {
		if s.held && now.Sub(s.renewedAt) < m.o.RenewDeadline {
			out = append(out, i)
		}
	}
	return out
}

// Start runs the loop until ctx ends, then releases the held Leases once
// their reconciles have finished (at most a LeaseDuration later).
func (m *Manager) Start(ctx context.Context) error {
	m.run(ctx)
	m.releaseAll()
	return nil
}

// run is the loop: every RetryPeriod, each Lease is read once and
// renewed, acquired, asked for or handed back.
func (m *Manager) run(ctx context.Context) {
	m.started = m.o.Clock.Now()
	m.o.Log.Info("shard manager started", "identity", m.o.Identity, "shards", m.o.Shards, "home", m.Home(),
		"namespace", m.o.Namespace, "leasePrefix", m.o.Prefix)
	for i := range m.o.Shards {
		Owned.WithLabelValues(strconv.Itoa(i)).Set(0)
	}
	t := m.o.Clock.NewTicker(m.o.RetryPeriod)
	defer t.Stop()
	for {
		m.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// tick looks at every Lease once.
func (m *Manager) tick(ctx context.Context) {
	leases := make([]*coordinationv1.Lease, m.o.Shards)
	for i := range leases {
		if ctx.Err() != nil {
			return
		}
		leases[i] = m.observe(ctx, i)
	}
	counts := m.holders(leases)
	for i, l := range leases {
		if ctx.Err() != nil {
			return
		}
		m.step(ctx, i, l, counts)
	}
}

// observe reads shard i's Lease (nil when absent or unreadable) and notes
// the local time its record changed.
func (m *Manager) observe(ctx context.Context, i int) *coordinationv1.Lease {
	s := m.shards[i]
	cctx, cancel := context.WithTimeout(ctx, m.o.RetryPeriod)
	defer cancel()
	var l coordinationv1.Lease
	err := m.o.Client.Get(cctx, types.NamespacedName{Namespace: m.o.Namespace, Name: m.LeaseName(i)}, &l)
	now := m.o.Clock.Now()
	switch {
	case apierrors.IsNotFound(err):
		s.exists, s.record = false, ""
		return nil
	case err != nil:
		m.o.Log.V(1).Info("reading a shard Lease", "shard", i, "error", err.Error())
		return nil
	}
	if r := record(&l); !s.exists || r != s.record {
		s.record, s.observedAt = r, now
	}
	s.exists = true
	return &l
}

func record(l *coordinationv1.Lease) string {
	var b strings.Builder
	b.WriteString(holder(l))
	for _, t := range []*metav1.MicroTime{l.Spec.AcquireTime, l.Spec.RenewTime} {
		b.WriteByte('|')
		if t != nil {
			b.WriteString(t.UTC().Format(time.RFC3339Nano))
		}
	}
	fmt.Fprintf(&b, "|%d|%d", deref(l.Spec.LeaseTransitions), deref(l.Spec.LeaseDurationSeconds))
	return b.String()
}

func holder(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// expired: nobody wrote the record for a LeaseDuration, as seen locally.
func (m *Manager) expired(i int, now time.Time) bool {
	return now.Sub(m.shards[i].observedAt) >= m.o.LeaseDuration
}

// holders counts the unexpired shards each identity holds.
func (m *Manager) holders(leases []*coordinationv1.Lease) map[string]int {
	now := m.o.Clock.Now()
	out := map[string]int{}
	for i, l := range leases {
		if h := holder(l); h != "" && (h == m.o.Identity || !m.expired(i, now)) {
			out[h]++
		}
	}
	return out
}

// step decides what to do with shard i's Lease l (nil: absent or
// unreadable).
func (m *Manager) step(ctx context.Context, i int, l *coordinationv1.Lease, counts map[string]int) {
	s := m.shards[i]
	now := m.o.Clock.Now()
	m.settle(i, now)
	m.mu.Lock()
	held := s.held
	m.mu.Unlock()
	h := holder(l)
	switch {
	case held && l != nil && h != m.o.Identity:
		m.drop(i, "lost", "holder", h)
	case held && l != nil:
		m.renewOrHandBack(ctx, i, l)
	case held:
		// Unreadable (or deleted): keep trying; Enter stops admitting at
		// the renew deadline.
	case l == nil && !s.exists:
		if i == m.Home() || now.Sub(m.started) >= m.o.LeaseDuration && m.fair(counts) {
			m.acquire(ctx, i, nil, "absent", counts)
		}
	case l == nil:
		// unreadable
	case h == m.o.Identity:
		// Ours from before a restart with the same identity.
		m.acquire(ctx, i, l, "restarted", counts)
	case i == m.Home() && (h == "" || m.expired(i, now)):
		m.acquire(ctx, i, l, "home", counts)
	case i == m.Home():
		m.request(ctx, l)
	case m.expired(i, now) && m.fair(counts):
		m.acquire(ctx, i, l, "expired", counts)
	case h == "" && m.requester(l, i) == "" && m.fair(counts):
		m.acquire(ctx, i, l, "released", counts)
	}
}

// fair: among replicas taking over an orphan, the one holding the fewest
// shards goes first: this one tries only when no live holder holds fewer.
// (Ties race; the Lease's resourceVersion picks one winner.)
func (m *Manager) fair(counts map[string]int) bool {
	mine := counts[m.o.Identity]
	for id, n := range counts {
		if id != m.o.Identity && n < mine {
			return false
		}
	}
	return true
}

// requester is the replica asking for shard i back, when shard i is its
// home, else "".
func (m *Manager) requester(l *coordinationv1.Lease, i int) string {
	r := l.Annotations[AnnotationRequestedBy]
	if r == "" || r == m.o.Identity || Home(r, m.o.Shards) != i {
		return ""
	}
	return r
}

// request asks the holder of this replica's home shard to hand it back.
func (m *Manager) request(ctx context.Context, l *coordinationv1.Lease) {
	if l.Annotations[AnnotationRequestedBy] == m.o.Identity {
		return
	}
	l = l.DeepCopy()
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationRequestedBy] = m.o.Identity
	if err := m.update(ctx, l); err != nil {
		m.o.Log.V(1).Info("asking for the home shard back", "lease", l.Name, "error", err.Error())
		return
	}
	m.o.Log.Info("asked for the home shard back", "shard", m.Home(), "lease", l.Name, "holder", holder(l))
}

// acquire writes this replica into shard i's Lease (creating it when l is
// nil) and counts it in counts.
func (m *Manager) acquire(ctx context.Context, i int, l *coordinationv1.Lease, why string, counts map[string]int) {
	sent := m.o.Clock.Now()
	prev := holder(l)
	alive, fence := m.fenceOf(i, l, sent)
	var err error
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.o.Namespace, Name: m.LeaseName(i)}}
		m.stamp(l, sent, true)
		cctx, cancel := context.WithTimeout(ctx, m.o.RetryPeriod)
		err = m.o.Client.Create(cctx, l)
		cancel()
	} else {
		l = l.DeepCopy()
		if l.Annotations[AnnotationRequestedBy] == m.o.Identity {
			delete(l.Annotations, AnnotationRequestedBy)
		}
		m.stamp(l, sent, prev != m.o.Identity)
		err = m.update(ctx, l)
	}
	if err != nil {
		m.o.Log.V(1).Info("acquiring a shard", "shard", i, "lease", m.LeaseName(i), "error", err.Error())
		return
	}
	counts[m.o.Identity]++ // the next orphan of this tick sees it
	s := m.shards[i]
	m.mu.Lock()
	s.held, s.admitting, s.renewedAt, s.forget, s.alive, s.fence = true, true, sent, false, alive, fence
	m.mu.Unlock()
	Owned.WithLabelValues(strconv.Itoa(i)).Set(1)
	event := "acquired"
	if prev != "" && prev != m.o.Identity {
		event = "took over"
	}
	m.o.Log.Info("shard "+event, "shard", i, "lease", l.Name, "identity", m.o.Identity, "reason", why,
		"previousHolder", prev, "transitions", deref(l.Spec.LeaseTransitions))
	m.wake(ctx, i)
}

// fenceOf is what this replica, acquiring shard i at now from its observed
// Lease l, knows of the previous holder's last reconciles (see Fence). nil
// (never held): nothing. A released Lease (no holder): its holder released
// it, its reconciles done, when this replica saw the record change. A held
// one (expired, or this identity's from before a restart): its holder
// renewed it when this replica saw the record change at the latest, and
// at most a RetryPeriod (this replica's look at the Lease) before; it
// admits reconciles for at most RenewDeadline after a renewal (Enter).
// Neither is later than now.
func (m *Manager) fenceOf(i int, l *coordinationv1.Lease, now time.Time) (alive, fence time.Time) {
	if l == nil {
		return time.Time{}, time.Time{}
	}
	seen := m.shards[i].observedAt
	alive, fence = seen, seen
	if holder(l) != "" {
		alive, fence = seen.Add(-m.o.RetryPeriod), seen.Add(m.o.RenewDeadline)
	}
	if alive.After(now) {
		alive = now
	}
	if fence.After(now) {
		fence = now
	}
	return alive, fence
}

// Fence tells what this replica knows of the reconciles of key's shard by
// the replica that held it before: fence, after which that replica
// admitted none (its reconciles then in flight aside, as after a
// partition); and alive, before which it was admitting them (it renewed or
// released the Lease then: a crash came after). Between the two it may or
// may not have. Both are zero when this replica does not hold the shard,
// or took it from nobody (a new Lease). The policy reconciler polls each
// job of a shard it took over on the job's slot after them
// (controllers.firstPollDue), so that no job is polled again within half
// an interval of its previous owner's poll.
func (m *Manager) Fence(key types.NamespacedName) (alive, fence time.Time) {
	i := Of(key, m.o.Shards)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.shards[i]; s.held {
		return s.alive, s.fence
	}
	return time.Time{}, time.Time{}
}

// stamp makes l held by this replica as of now.
func (m *Manager) stamp(l *coordinationv1.Lease, now time.Time, acquired bool) {
	id := m.o.Identity
	secs := int32((m.o.LeaseDuration + time.Second - 1) / time.Second)
	t := metav1.NewMicroTime(now)
	if acquired {
		// A transition is a change of holder (a new Lease has none).
		n := deref(l.Spec.LeaseTransitions)
		if l.Spec.AcquireTime != nil {
			n++
		}
		l.Spec.AcquireTime, l.Spec.LeaseTransitions = &t, &n
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &t
}

// renewOrHandBack renews a held Lease, or hands it back to the replica
// whose home it is once no reconcile of it is in flight.
func (m *Manager) renewOrHandBack(ctx context.Context, i int, l *coordinationv1.Lease) {
	s := m.shards[i]
	r := m.requester(l, i)
	m.mu.Lock()
	s.admitting = r == "" // a withdrawn request admits again
	drained := s.inflight == 0
	m.mu.Unlock()
	if r != "" {
		if drained {
			if m.release(ctx, i, l, r) == nil {
				m.o.Log.Info("shard handed back", "shard", i, "lease", l.Name, "identity", m.o.Identity, "to", r)
				m.drop(i, "handed back", "to", r)
			}
			return
		}
		// Reconciles in flight: keep the Lease (renew below) and look
		// again at the next tick.
	}
	sent := m.o.Clock.Now()
	l = l.DeepCopy()
	m.stamp(l, sent, false)
	if err := m.update(ctx, l); err != nil {
		// A conflict (someone wrote the Lease) or an API error: the next
		// tick reads it again; Enter stops at the renew deadline.
		m.o.Log.V(1).Info("renewing a shard", "shard", i, "lease", l.Name, "error", err.Error())
		return
	}
	m.mu.Lock()
	s.renewedAt = sent
	m.mu.Unlock()
}

// release clears the holder, leaving the annotation of the replica it is
// handed back to (so that others wait for it), as client-go releases: a
// free Lease is taken at once.
func (m *Manager) release(ctx context.Context, i int, l *coordinationv1.Lease, to string) error {
	l = l.DeepCopy()
	empty, one := "", int32(1)
	t := metav1.NewMicroTime(m.o.Clock.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &empty, &one, &t
	if to == "" {
		delete(l.Annotations, AnnotationRequestedBy)
	}
	err := m.update(ctx, l)
	if err != nil {
		m.o.Log.Info("releasing a shard failed", "shard", i, "lease", l.Name, "error", err.Error())
	}
	return err
}

func (m *Manager) update(ctx context.Context, l *coordinationv1.Lease) error {
	cctx, cancel := context.WithTimeout(ctx, m.o.RetryPeriod)
	defer cancel()
	return m.o.Client.Update(cctx, l)
}

// drop stops holding shard i locally; OnRelease follows once its
// reconciles are done (settle).
func (m *Manager) drop(i int, why string, kv ...any) {
	s := m.shards[i]
	m.mu.Lock()
	was := s.held
	s.held, s.admitting, s.forget = false, false, s.forget || s.held
	m.mu.Unlock()
	if was {
		Owned.WithLabelValues(strconv.Itoa(i)).Set(0)
		m.o.Log.Info("shard released", append([]any{"shard", i, "lease", m.LeaseName(i), "identity", m.o.Identity, "reason", why}, kv...)...)
	}
	m.settle(i, m.o.Clock.Now())
}

// settle drops a held shard past its renew deadline, and calls OnRelease
// for a dropped one whose reconciles are done.
func (m *Manager) settle(i int, now time.Time) {
	s := m.shards[i]
	m.mu.Lock()
	if s.held && now.Sub(s.renewedAt) >= m.o.RenewDeadline {
		m.mu.Unlock()
		m.drop(i, "not renewed within the renew deadline")
		return
	}
	call := s.forget && !s.held && s.inflight == 0
	if call {
		s.forget = false
	}
	m.mu.Unlock()
	if call && m.o.OnRelease != nil {
		m.o.OnRelease(i)
	}
}

// wake sends the watched objects of shard i to their channels, in the
// background: the loop never waits for the cache or the controllers.
func (m *Manager) wake(ctx context.Context, i int) {
	m.watchMu.Lock()
	ws := append([]watch(nil), m.watches...)
	m.watchMu.Unlock()
	if m.o.Reader == nil {
		return
	}
	for _, w := range ws {
		go m.send(ctx, i, w)
	}
}

func (m *Manager) send(ctx context.Context, i int, w watch) {
	list := w.newList()
	if err := m.o.Reader.List(ctx, list); err != nil {
		m.o.Log.Info("listing the objects of an acquired shard", "shard", i, "error", err.Error())
		return
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return
	}
	for _, o := range objs {
		co, ok := o.(client.Object)
		if !ok || Of(client.ObjectKeyFromObject(co), m.o.Shards) != i {
			continue
		}
		select {
		case w.ch <- event.GenericEvent{Object: co}:
		case <-ctx.Done():
			return
		}
	}
}

// releaseAll, on stop: admit nothing more, then release each held Lease
// once its reconciles are done, renewing the others meanwhile, for at most
// a LeaseDuration (what is left then expires on its own).
func (m *Manager) releaseAll() {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.o.LeaseDuration)
	defer cancel()
	t := m.o.Clock.NewTicker(m.o.RetryPeriod / 4)
	defer t.Stop()
	for {
		left := 0
		for i, s := range m.shards {
			m.mu.Lock()
			held, drained := s.held, s.inflight == 0
			m.mu.Unlock()
			if !held {
				continue
			}
			l := m.observe(ctx, i)
			if l == nil || holder(l) != m.o.Identity {
				m.drop(i, "stopped")
				continue
			}
			if drained {
				if m.release(ctx, i, l, "") == nil {
					m.drop(i, "stopped")
					continue
				}
			} else if m.o.Clock.Since(s.renewedAt) >= m.o.RetryPeriod {
				m.renewOrHandBack(ctx, i, l)
			}
			left++
		}
		if left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			m.o.Log.Info("stopping with shards not released: they expire", "shards", left)
			return
		case <-t.C():
		}
	}
}
