package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/shard"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// shardLedger records, per policy, the replicas whose reconciles were
// admitted and wrote it, and any moment two replicas were inside one
// policy's reconcile at once.
type shardLedger struct {
	mu         sync.Mutex
	inside     map[types.NamespacedName]map[string]int
	reconciled map[types.NamespacedName]map[string]int // admitted reconciles since reset
	writes     map[types.NamespacedName]map[string]int // status patches
	overlaps   []string
	// polls: each read of a policy's target (its name "missing-" + the
	// policy's), by whom and when: the policy's polls.
	polls map[types.NamespacedName][]ledgerPoll
}

type ledgerPoll struct {
	id string
	at time.Time
}

func newShardLedger() *shardLedger {
	return &shardLedger{inside: map[types.NamespacedName]map[string]int{},
		reconciled: map[types.NamespacedName]map[string]int{}, writes: map[types.NamespacedName]map[string]int{},
		polls: map[types.NamespacedName][]ledgerPoll{}}
}

func bump(m map[types.NamespacedName]map[string]int, k types.NamespacedName, id string, d int) {
	if m[k] == nil {
		m[k] = map[string]int{}
	}
	m[k][id] += d
}

// replicasOf lists the replicas with a count for k.
func replicasOf(m map[types.NamespacedName]map[string]int, k types.NamespacedName) []string {
	var out []string
	for id, n := range m[k] {
		if n > 0 {
			out = append(out, id)
		}
	}
	return out
}

// ledgerGate is a replica's shard gate, recorded.
type ledgerGate struct {
	id    string
	gate  *shard.Manager
	books *shardLedger
}

func (g ledgerGate) Enter(k types.NamespacedName) (func(), bool) {
	done, ok := g.gate.Enter(k)
	if !ok {
		return nil, false
	}
	b := g.books
	b.mu.Lock()
	for other, n := range b.inside[k] {
		if other != g.id && n > 0 {
			b.overlaps = append(b.overlaps, fmt.Sprintf("%s reconciles %s while %s does", g.id, k, other))
		}
	}
	bump(b.inside, k, g.id, 1)
	bump(b.reconciled, k, g.id, 1)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		bump(b.inside, k, g.id, -1)
		b.mu.Unlock()
		done()
	}, true
}

func (g ledgerGate) Fence(k types.NamespacedName) (alive, fence time.Time) { return g.gate.Fence(k) }

// ledgerClient records a replica's status patches and its polls.
type ledgerClient struct {
	client.Client
	id    string
	books *shardLedger
}

func (c ledgerClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if name, ok := strings.CutPrefix(key.Name, "missing-"); ok {
		k := types.NamespacedName{Namespace: key.Namespace, Name: name}
		c.books.mu.Lock()
		c.books.polls[k] = append(c.books.polls[k], ledgerPoll{id: c.id, at: time.Now()})
		c.books.mu.Unlock()
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c ledgerClient) Status() client.SubResourceWriter {
	return ledgerStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type ledgerStatus struct {
	client.SubResourceWriter
	c ledgerClient
}

func (s ledgerStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if err == nil {
		s.c.books.mu.Lock()
		bump(s.c.books.writes, client.ObjectKeyFromObject(obj), s.c.id, 1)
		s.c.books.mu.Unlock()
	}
	return err
}

// cutLeases fails every Lease write once cut: a replica cut off from the
// API server, or killed before it could release.
type cutLeases struct {
	client.Client
	cut *atomic.Bool
}

func (c cutLeases) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if c.cut.Load() {
		return errors.New("cut off")
	}
	return c.Client.Update(ctx, obj, opts...)
}

// Two replicas wired as `flinkscale controller --shards 2` wires them
// (no leader election, a shard.Manager per replica gating the policy
// reconciler, waking an acquired shard's policies, forgetting a lost
// one's) on 20 policies whose FlinkDeployments do not exist (each poll
// reads the missing target, writes the TargetNotFound condition once and
// requeues for the policy's next slot, every 6 s). Each policy is
// reconciled, and its status written, by exactly the replica that holds
// its shard, never by two at once. After one replica is killed without
// releasing its Lease, the other polls every orphan on its cadence: an
// interval after the killed replica's last poll of it, or half an interval
// when that poll was on a slot after the last renewal the survivor saw (the
// killed replica may or may not have polled there), never sooner, and not
// more than an interval and a half and 2 s after it. (Polling each orphan
// at the takeover, 2 s after the kill, gives gaps spread from 2 to 8 s: all
// ten orphans within those bounds by chance in under 1 % of runs: 0.6¹⁰.)
func TestShardsTwoReplicasSplitThePolicies(t *testing.T) {
	env, c := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "shards")
	const n, policies = 2, 20
	lease, renew, retry := 2*time.Second, 1500*time.Millisecond, 200*time.Millisecond
	// Three Lease durations: a takeover's poll at once would come well
	// within an interval of the previous owner's.
	const interval = 6 * time.Second
	books := newShardLedger()

	ctx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	type replica struct {
		id     string
		gate   *shard.Manager
		cut    atomic.Bool
		cancel context.CancelFunc
		done   chan error
	}
	start := func(ordinal int) *replica {
		r := &replica{id: fmt.Sprintf("flinkscale-%d", ordinal), done: make(chan error, 1)}
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme: fixtures.Scheme(t), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		})
		require.NoError(t, err)
		pr := &controllers.PolicyReconciler{
			Client:  ledgerClient{Client: mgr.GetClient(), id: r.id, books: books},
			Sources: &controllers.ClientSources{Reader: mgr.GetAPIReader(), Timeout: time.Second},
			Metrics: controllers.NewMetrics(prometheus.NewRegistry()),
		}
		r.gate, err = shard.New(shard.Options{
			Shards: n, Identity: r.id, Namespace: ns, Prefix: "flinkscale.io",
			LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
			Client: cutLeases{Client: c, cut: &r.cut}, Reader: mgr.GetCache(), Log: testr.New(t).WithName(r.id),
			OnRelease: func(i int) {
				pr.ForgetWhere(func(k types.NamespacedName) bool { return shard.Of(k, n) == i })
			},
		})
		require.NoError(t, err)
		require.NoError(t, mgr.Add(r.gate))
		pr.Shards = ledgerGate{id: r.id, gate: r.gate, books: books}
		require.NoError(t, pr.SetupWithManager(mgr, controllers.Options{SkipNameValidation: true,
			Wake: r.gate.Watch(func() client.ObjectList { return &v1alpha1.FlinkScalingPolicyList{} })}))
		mctx, cancel := context.WithCancel(ctx)
		r.cancel = cancel
		go func() { r.done <- mgr.Start(mctx) }()
		return r
	}

	var keys []types.NamespacedName
	for i := range policies {
		p := &v1alpha1.FlinkScalingPolicy{}
		p.Namespace, p.Name = ns, fmt.Sprintf("job-%02d", i)
		p.Spec = v1alpha1.FlinkScalingPolicySpec{
			TargetRef:       v1alpha1.TargetRef{Name: "missing-" + p.Name},
			Mode:            v1alpha1.ModeDryRun,
			PollingInterval: &metav1.Duration{Duration: interval},
		}
		require.NoError(t, c.Create(ctx, p))
		keys = append(keys, client.ObjectKeyFromObject(p))
	}
	replicas := []*replica{start(0), start(1)}
	owner := func(k types.NamespacedName) string { return fmt.Sprintf("flinkscale-%d", shard.Of(k, n)) }
	perShard := map[int]int{}
	for _, k := range keys {
		perShard[shard.Of(k, n)]++
	}
	require.Len(t, perShard, n, "20 policies fall in both shards: %v", perShard)

	// Every policy's status is written, by its shard's home replica only.
	notFound := func(k types.NamespacedName) bool {
		var p v1alpha1.FlinkScalingPolicy
		if err := c.Get(ctx, k, &p); err != nil {
			return false
		}
		cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		return cond != nil && cond.Reason == v1alpha1.ReasonTargetNotFound
	}
	require.Eventually(t, func() bool {
		for _, k := range keys {
			if !notFound(k) {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "every policy's status is written")
	// A few more polls, then the ledger.
	require.Eventually(t, func() bool {
		books.mu.Lock()
		defer books.mu.Unlock()
		for _, k := range keys {
			if books.reconciled[k][owner(k)] < 2 {
				return false
			}
		}
		return true
	}, 3*interval, 50*time.Millisecond, "each policy is polled by its owner")
	books.mu.Lock()
	for _, k := range keys {
		assert.Equal(t, []string{owner(k)}, replicasOf(books.reconciled, k), "%s (shard %d) reconciled by", k, shard.Of(k, n))
		assert.Equal(t, []string{owner(k)}, replicasOf(books.writes, k), "%s (shard %d) status written by", k, shard.Of(k, n))
	}
	books.reconciled = map[types.NamespacedName]map[string]int{}
	books.mu.Unlock()

	// Kill flinkscale-1 without releasing: its Lease writes fail from now
	// on, and its manager stops.
	killed, survivor := replicas[1], replicas[0]
	killed.cut.Store(true)
	killedAt := time.Now()
	killed.cancel()
	// Not released: the survivor waits for the Lease to expire (the
	// killed replica renewed it at most a RetryPeriod before the kill).
	require.Eventually(t, func() bool { return len(survivor.gate.Held()) == n }, lease+5*time.Second, 5*time.Millisecond,
		"the survivor takes the killed replica's shard")
	took := time.Since(killedAt)
	assert.GreaterOrEqual(t, took, lease-retry, "taken before the Lease expired: was it released?")
	var l coordinationv1.Lease
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "flinkscale.io-shard-1"}, &l))
	assert.Equal(t, survivor.id, *l.Spec.HolderIdentity)
	select {
	case err := <-killed.done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the killed replica's manager did not stop")
	}
	books.mu.Lock()
	books.reconciled = map[types.NamespacedName]map[string]int{}
	books.mu.Unlock()

	// pollsAround: an orphan's last poll by the killed replica, and the
	// survivor's first after the kill (zero until it came).
	pollsAround := func(k types.NamespacedName) (last, first time.Time) {
		for _, p := range books.polls[k] {
			switch {
			case p.id == killed.id:
				last = p.at
			case p.at.After(killedAt) && first.IsZero():
				first = p.at
			}
		}
		return last, first
	}
	require.Eventually(t, func() bool {
		books.mu.Lock()
		defer books.mu.Unlock()
		for _, k := range keys {
			if _, first := pollsAround(k); books.reconciled[k][survivor.id] == 0 || first.IsZero() {
				return false
			}
		}
		return true
	}, lease+interval+10*time.Second, 50*time.Millisecond, "the survivor reconciles and polls every policy")
	books.mu.Lock()
	orphans := 0
	for _, k := range keys {
		if owner(k) != killed.id {
			continue
		}
		orphans++
		last, first := pollsAround(k)
		require.False(t, last.IsZero(), "%s was polled by %s before the kill", k, killed.id)
		gap := first.Sub(last)
		t.Logf("%s: polled by %s %s before the kill, by %s %s after it: %s apart", k, killed.id, killedAt.Sub(last).Round(time.Millisecond),
			survivor.id, first.Sub(killedAt).Round(time.Millisecond), gap.Round(time.Millisecond))
		// On its cadence (an interval, or up to the takeover's delay more
		// for a slot that passed before the takeover, or half an interval
		// more after a slot the killed replica may have missed), or half
		// an interval after a slot it may have polled on. Less the killed
		// replica's lateness on a slot (queue, loaded machine): 0.5 s.
		const late = 500 * time.Millisecond
		halfAfterUncertain := gap >= interval/2-late && gap <= interval/2+late
		onCadence := gap >= interval-late && gap <= interval+interval/2+2*time.Second
		assert.True(t, halfAfterUncertain || onCadence, "%s: polled again %s after the killed replica's poll, at a %s interval", k, gap, interval)
	}
	books.mu.Unlock()
	assert.Equal(t, perShard[1], orphans)
	t.Logf("shard 1 taken %s and all %d policies reconciled by %s %s after %s was killed (Lease duration %s)", took.Round(time.Millisecond),
		policies, survivor.id, time.Since(killedAt).Round(time.Millisecond), killed.id, lease)
	assert.ElementsMatch(t, []int{0, 1}, survivor.gate.Held())
	books.mu.Lock()
	for _, k := range keys {
		assert.Equal(t, []string{survivor.id}, replicasOf(books.reconciled, k), k.String())
	}
	assert.Empty(t, books.overlaps, "a policy reconciled by two replicas at once")
	books.mu.Unlock()

	cancelAll()
	select {
	case err := <-survivor.done:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Error("the survivor did not stop")
	}
}
