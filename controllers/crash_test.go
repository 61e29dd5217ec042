package controllers_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
)

// errDead is what a process that has died no longer does.
var errDead = errors.New("the controller process is gone")

// dyingClient is the client of one controller process: it counts the
// process's server-side applies (into a counter shared by every process of
// the world) and, once dead, fails every call, as a killed process makes
// none. With dieOnStatusAfterApply, the first status patch after an apply
// kills it: the FlinkDeployment holds the plan, the cycle's final status
// patch is lost. With dieOnApply, it dies as it is about to apply: the
// rescale is recorded, never applied.
type dyingClient struct {
	client.Client
	applies               *atomic.Int32
	dieOnStatusAfterApply bool
	dieOnApply            bool
	applied, dead         atomic.Bool
}

func isApply(p client.Patch) bool { return p.Type() == "application/apply-patch+yaml" }

func (c *dyingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c.dead.Load() {
		return errDead
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *dyingClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if c.dead.Load() {
		return errDead
	}
	return c.Client.List(ctx, list, opts...)
}

func (c *dyingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if c.dead.Load() {
		return errDead
	}
	if c.dieOnApply && isApply(patch) {
		c.dead.Store(true)
		return errDead
	}
	err := c.Client.Patch(ctx, obj, patch, opts...)
	if err == nil && isApply(patch) {
		c.applies.Add(1)
		c.applied.Store(true)
	}
	return err
}

func (c *dyingClient) Status() client.SubResourceWriter {
	return &dyingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type dyingStatus struct {
	client.SubResourceWriter
	c *dyingClient
}

func (s *dyingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if s.c.dead.Load() {
		return errDead
	}
	if s.c.dieOnStatusAfterApply && s.c.applied.Load() {
		s.c.dead.Store(true)
		return errDead
	}
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// process starts a controller process on w whose client is a dyingClient
// counting into applies, dying as death says ("": never, "apply": on its
// first apply, "status": on the status patch after its first apply).
func (w *world) process(applies *atomic.Int32, death string) *dyingClient {
	var dc *dyingClient
	w.ctl = w.newController(func(c client.Client) client.Client {
		dc = &dyingClient{Client: c, applies: applies, dieOnStatusAfterApply: death == "status", dieOnApply: death == "apply"}
		return dc
	})
	return dc
}

// stepUntil advances the world a second at a time until done holds (the
// phases last seconds: w.until's 5 s steps could miss one).
func (w *world) stepUntil(what string, max time.Duration, done func() bool) {
	w.t.Helper()
	end := w.job.Now().Add(max)
	for !done() {
		if !w.job.Now().Before(end) {
			w.t.Fatalf("%s: not within %s; policy status: %+v\n%s", what, max, w.policy().Status, w.rec.dump())
		}
		w.run(time.Second)
	}
}

// flakySources fails the Flink source while down says so for the
// deployment (the JobManager's REST endpoint not answering yet after a
// restart).
type flakySources struct {
	controllers.Sources
	down func(*target.Deployment) bool
}

func (s *flakySources) Flink(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy, d *target.Deployment) (controllers.FlinkSource, error) {
	if s.down(d) {
		return nil, errors.New("JobManager REST endpoint not ready")
	}
	return s.Sources.Flink(ctx, pol, d)
}

// The controller process is killed at every point of a rescale and replaced
// by one that knows only what the API server holds: after recording the
// rescale but before applying it, after the apply but before the cycle's
// final status patch, and in each phase the status records. Whatever the
// point, the rescale finishes and is recorded once, the plan is applied
// once, the events are not repeated and no record is lost.
func TestCrashAtEachPhaseOfARescale(t *testing.T) {
	for _, tc := range []struct {
		name string
		// phase is the recorded phase in which the process dies; with
		// death set it dies on its first apply ("apply") or on the status
		// patch after it ("status") instead.
		phase v1alpha1.RescalePhase
		death string
	}{
		{name: "AfterIntentBeforeApply", death: "apply"},
		{name: "AfterApplyBeforeStatus", death: "status"},
		{name: "Savepointing", phase: v1alpha1.RescaleSavepointing},
		{name: "Restarting", phase: v1alpha1.RescaleRestarting},
		// The sim's new job reports the applied parallelism as soon as it
		// runs: the first process sees Flink's REST endpoint unreachable
		// after the restart, and so records Stabilizing.
		{name: "Stabilizing", phase: v1alpha1.RescaleStabilizing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var applies atomic.Int32
			w := newWorld(t, worldOptions{})
			first := w.process(&applies, tc.death)
			gen := stepped(t, w)
			firstJob := w.read().JobID
			if tc.phase == v1alpha1.RescaleStabilizing {
				w.ctl.Sources = &flakySources{Sources: w.ctl.Sources, down: func(d *target.Deployment) bool {
					return d.JobID != firstJob
				}}
			}

			switch tc.death {
			case "apply":
				w.stepUntil("the process dies as it applies", 10*time.Minute, first.dead.Load)
				rs := w.policy().Status.Rescale
				require.NotNil(t, rs, "the rescale is recorded before the apply")
				require.Zero(t, rs.TargetGeneration, "an intent: not applied yet")
				require.Equal(t, gen, w.deployment().GetGeneration(), "nothing applied")
				require.Zero(t, applies.Load())
			case "status":
				w.stepUntil("the process dies after its apply", 10*time.Minute, first.dead.Load)
				rs := w.policy().Status.Rescale
				require.NotNil(t, rs, "the rescale was recorded before the apply")
				require.Zero(t, rs.TargetGeneration, "the final status patch, with the generation, was lost")
				require.Equal(t, gen+1, w.deployment().GetGeneration(), "the plan was applied")
				require.Zero(t, w.rec.count(kindPolicy, controllers.EventRescaleStarted), "events follow the status: none yet")
				require.Equal(t, int32(1), applies.Load())
			default:
				w.stepUntil("phase "+string(tc.phase), 10*time.Minute, func() bool {
					if rs := w.rescales(); len(rs) > 0 && rs[len(rs)-1].Outcome != scaling.OutcomeInProgress {
						t.Fatalf("the rescale ended (%s) before phase %s was recorded\n%s", rs[len(rs)-1].Outcome, tc.phase, w.rec.dump())
					}
					r := w.policy().Status.Rescale
					return r != nil && r.Phase == tc.phase
				})
				first.dead.Store(true)
			}
			if tc.death == "" {
				require.Equal(t, int32(1), applies.Load())
			}
			t.Logf("killed at %s; job %s, deployment generation %d", w.job.Now().Format(time.TimeOnly), w.read().JobID, w.deployment().GetGeneration())

			// A new process, nothing in memory.
			w.process(&applies, "")
			ended := func() bool {
				rs := w.rescales()
				return len(rs) > 0 && rs[len(rs)-1].Outcome != scaling.OutcomeInProgress && w.policy().Status.Rescale == nil
			}
			w.until("the rescale is recorded as finished", 10*time.Minute, ended)
			w.run(10 * time.Minute)

			p := w.policy()
			rs := w.rescales()
			require.Len(t, rs, 1, w.rec.dump())
			assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome, w.rec.dump())
			assert.Nil(t, p.Status.Rescale)
			assertAppliedOnce(t, w, gen, firstJob, &applies)
			for _, v := range rs[0].Vertices {
				assert.Equal(t, w.read().Overrides[v.ID], int(v.To), "history: vertex %s", v.ID)
			}
			// Events: the start once (an adopted rescale announces itself,
			// a dropped intent never did), the completion once.
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleStarted), w.rec.dump())
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleCompleted), w.rec.dump())
			assert.Zero(t, w.rec.count(kindPolicy, controllers.EventRescaleFailed), w.rec.dump())
		})
	}
}

// assertAppliedOnce checks what must hold whatever the controller recorded:
// the plan was applied once (one apply, one spec change, one upgrade by the
// operator, one new job), the job runs what the deployment says, and no
// record was lost or replayed.
func assertAppliedOnce(t *testing.T, w *world, gen int64, firstJob string, applies *atomic.Int32) {
	t.Helper()
	assert.Equal(t, int32(1), applies.Load(), "server-side applies of the plan")
	assert.Equal(t, gen+1, w.deployment().GetGeneration(), "the deployment's spec changed once")
	assert.Equal(t, 1, w.rec.count(kindDeployment, fakeoperator.ReasonSpecChanged), w.rec.dump())
	d := w.read()
	assert.NotEqual(t, firstJob, d.JobID)
	got := map[string]int{}
	for _, v := range w.job.View().Job.Vertices {
		got[v.ID] = v.Parallelism
	}
	assert.Equal(t, d.Overrides, got, "the job runs at the applied parallelism")
	stats := w.job.Stats()
	assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag, "no record lost")
	assert.Zero(t, stats.Reprocessed, "a savepoint upgrade replays nothing")
}

// A status patch that fails once after the apply, in a process that lives
// on (a conflict with any write to the policy meanwhile: a label, an
// annotation, a spec edit), must not lose the rescale either.
func TestCrashFreeStatusConflictAfterApply(t *testing.T) {
	var applies atomic.Int32
	w := newWorld(t, worldOptions{})
	var lc *losingClient
	w.ctl = w.newController(func(c client.Client) client.Client {
		lc = &losingClient{dyingClient: dyingClient{Client: c, applies: &applies}}
		return lc
	})
	gen := stepped(t, w)
	firstJob := w.read().JobID
	w.stepUntil("the status patch after the apply conflicts", 10*time.Minute, lc.lost.Load)
	require.NotNil(t, w.policy().Status.Rescale, "the rescale was recorded before the apply")
	w.run(10 * time.Minute)
	rs := w.rescales()
	require.Len(t, rs, 1, w.rec.dump())
	assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome)
	assertAppliedOnce(t, w, gen, firstJob, &applies)
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleCompleted), w.rec.dump())
}

// losingClient answers the first status patch after an apply with a
// conflict, as the API server does when the policy changed since it was
// read, and works normally otherwise.
type losingClient struct {
	dyingClient
	lost atomic.Bool
}

func (c *losingClient) Status() client.SubResourceWriter {
	return &losingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type losingStatus struct {
	client.SubResourceWriter
	c *losingClient
}

func (s *losingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if s.c.applied.Load() && s.c.lost.CompareAndSwap(false, true) {
		return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("flinkscalingpolicies").GroupResource(), obj.GetName(),
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// staleClient is a replica whose reads of its policy come from an informer
// cache that lags: Get of the policy returns the copy frozen by freeze
// until thaw (as a cache that has not seen the other replica's status
// patch yet would), everything else is read fresh.
type staleClient struct {
	client.Client
	key     types.NamespacedName
	applies *atomic.Int32
	frozen  atomic.Pointer[v1alpha1.FlinkScalingPolicy]
}

func (c *staleClient) freeze(ctx context.Context) error {
	var p v1alpha1.FlinkScalingPolicy
	if err := c.Client.Get(ctx, c.key, &p); err != nil {
		return err
	}
	c.frozen.Store(&p)
	return nil
}

func (c *staleClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if p := c.frozen.Load(); p != nil && key == c.key {
		if out, ok := obj.(*v1alpha1.FlinkScalingPolicy); ok {
			p.DeepCopyInto(out)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *staleClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	err := c.Client.Patch(ctx, obj, patch, opts...)
	if err == nil && isApply(patch) {
		c.applies.Add(1)
	}
	return err
}

// countingClient counts a replica's applies and its status patches that
// failed.
type countingClient struct {
	client.Client
	applies, statusErrs *atomic.Int32
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	err := c.Client.Patch(ctx, obj, patch, opts...)
	if err == nil && isApply(patch) {
		c.applies.Add(1)
	}
	return err
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if err != nil {
		s.c.statusErrs.Add(1)
	}
	return err
}

// Two replicas without leader election, both reconciling the same policy,
// one with fresh reads, one whose policy reads lag the other's status writes
// (an informer cache behind, or a replica cut off from its watch) from
// before the rescale until 90 s after it started. Neither starts a second
// rescale; the lagging one wastes a poll and a refused status patch every
// second. Leader election is what keeps a replica from doing that work, and
// from sending the events a replica de-duplicates only in its own memory.
func TestTwoReplicasWithoutLeaderElection(t *testing.T) {
	for _, lag := range []time.Duration{0, 90 * time.Second} {
		t.Run("policyCacheLag="+lag.String(), func(t *testing.T) {
			var applies, statusErrs [2]atomic.Int32
			w := newWorld(t, worldOptions{})
			var stale *staleClient
			a := &replica{ctl: w.newController(func(c client.Client) client.Client {
				return &countingClient{Client: c, applies: &applies[0], statusErrs: &statusErrs[0]}
			})}
			b := &replica{ctl: w.newController(func(c client.Client) client.Client {
				stale = &staleClient{Client: &countingClient{Client: c, applies: &applies[1], statusErrs: &statusErrs[1]}, key: w.pKey, applies: new(atomic.Int32)}
				return stale
			})}
			w.runReplicas(12*time.Minute, a, b)
			require.Empty(t, w.rescales())
			gen := w.deployment().GetGeneration()
			w.live.SetRate(3000)
			end := w.job.Now().Add(12 * time.Minute)
			var frozenAt time.Time
			for w.job.Now().Before(end) {
				w.runReplicas(time.Second, a, b)
				if lag == 0 {
					continue
				}
				if frozenAt.IsZero() && stale.frozen.Load() == nil {
					if rs := w.rescales(); len(rs) == 0 {
						// B's cache keeps the policy as it was before
						// any rescale.
						require.NoError(t, stale.freeze(w.ctx))
					} else {
						t.Fatal("the rescale started before B's cache froze")
					}
				}
				if frozenAt.IsZero() && w.policy().Status.Rescale != nil {
					frozenAt = w.job.Now()
				}
				if !frozenAt.IsZero() && w.job.Now().Sub(frozenAt) >= lag && stale.frozen.Load() != nil {
					stale.frozen.Store(nil)
				}
			}
			rs := w.rescales()
			t.Logf("lag %s: applies A=%d B=%d, failed status patches A=%d B=%d, generation %d→%d, rescales %d, operator upgrades %d",
				lag, applies[0].Load(), applies[1].Load(), statusErrs[0].Load(), statusErrs[1].Load(), gen, w.deployment().GetGeneration(),
				len(rs), w.rec.count(kindDeployment, fakeoperator.ReasonSpecChanged))
			t.Logf("events: ScalingRecommended %d, RescaleStarted %d, RescaleCompleted %d, RescaleBlocked %d",
				w.rec.count(kindPolicy, controllers.EventScalingRecommended), w.rec.count(kindPolicy, controllers.EventRescaleStarted),
				w.rec.count(kindPolicy, controllers.EventRescaleCompleted), w.rec.count(kindPolicy, controllers.EventRescaleBlocked))
			// What keeps them from rescaling twice: the apply carries the
			// resource version read (a replica that read the deployment
			// before the other's apply conflicts), a deployment whose
			// generation the operator has not reconciled or that is not
			// STABLE blocks a rescale, and the status patch is optimistic
			// (a replica whose policy read is stale writes nothing, and
			// sends no event).
			require.Len(t, rs, 1, w.rec.dump())
			assert.Equal(t, scaling.OutcomeSucceeded, rs[0].Outcome)
			assert.Equal(t, int32(1), applies[0].Load()+applies[1].Load(), "one apply in all")
			assert.Equal(t, gen+1, w.deployment().GetGeneration())
			assert.Equal(t, 1, w.rec.count(kindDeployment, fakeoperator.ReasonSpecChanged))
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleStarted), w.rec.dump())
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleCompleted), w.rec.dump())
			if lag > 0 {
				// The price: the lagging replica's every cycle (each
				// a poll of Flink and Kafka) ends in a refused status
				// patch and is retried.
				assert.Positive(t, statusErrs[1].Load())
			}
			stats := w.job.Stats()
			assert.Equal(t, stats.Produced, stats.Consumed+stats.Lag)
			assert.Zero(t, stats.Reprocessed)
		})
	}
}
