package controllers_test

import (
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim"
)

// buffersPerChannel makes the orders job's network buffers the bottleneck.
// Its TaskManagers (4096 MiB of process memory) have 343 MiB of network
// memory, 10977 segments of 32 KiB. With 2500 exclusive buffers per
// channel the two enrichment subtasks of a TaskManager need 10008 of them
// at 2/2, and a plan that reads from three source subtasks needs 15014.
const buffersPerChannel = 2500

// userMetaspace is a memory key the user set before flinkscale came.
const userMetaspace = "256m"

// memoryWorld is the orders job with buffersPerChannel and a policy in
// memory mode mode.
func memoryWorld(t *testing.T, mode v1alpha1.MemoryMode) *world {
	return newWorld(t, worldOptions{
		conf: map[string]any{
			target.KeyBuffersPerChannel: strconv.Itoa(buffersPerChannel),
			scaling.KeyMetaspace:        userMetaspace,
		},
		policy: func(p *v1alpha1.FlinkScalingPolicy) {
			p.Spec.Memory = &v1alpha1.MemoryPolicy{Mode: mode}
		},
	})
}

// networkNeed is the network buffers the worst TaskManager of the orders
// job needs at parallelism par (vertex id → p), 2 slots per TaskManager,
// with Flink 1.18's rules and the deployment's buffersPerChannel.
func networkNeed(w *world, par map[string]int32) int64 {
	src, enrich := w.vertexID("Source: orders"), w.vertexID("Enrich -> Sink")
	vs := []scaling.Vertex{{ID: src, Parallelism: 2}, {ID: enrich, Parallelism: 2, MaxParallelism: 128,
		Inputs: []scaling.Input{{ID: src, ShipStrategy: "HASH"}}}}
	c := scaling.DefaultNetworkConfig(scaling.Flink120)
	c.BuffersPerChannel = buffersPerChannel
	p := map[string]int{}
	for id, n := range par {
		p[id] = int(n)
	}
	return scaling.NetworkNeed(vs, p, 2, 0, c).Required
}

// segments is the network segments of a TaskManager with the network
// memory the decision reports.
func segments(t *testing.T, d *v1alpha1.DecisionStatus) int64 {
	t.Helper()
	require.NotNil(t, d.Memory, "the decision carries the memory recommendation")
	require.Positive(t, d.Memory.CurrentNetworkBytes)
	return d.Memory.CurrentNetworkBytes >> 15
}

// In memory mode Apply, a rescale whose plan needs more network memory
// than the TaskManagers have writes the TaskManagers' memory in the same
// server-side apply as the overrides (every memory key, and the pods'
// memory as the process size); when it fails, the memory keys and
// spec.taskManager.resource.memory are written back exactly: the user's
// key at its value, those flinkscale added removed.
func TestMemoryApplyRescaleSetsAndRestoresTheTaskManagersMemory(t *testing.T) {
	w := memoryWorld(t, v1alpha1.MemoryApply)
	stepped(t, w)
	before := w.read()
	require.Equal(t, "4096m", before.TaskManagerMemory)
	firstJob := before.JobID
	genBefore := w.deployment().GetGeneration()
	w.job.Inject(sim.FaultSavepoint)

	w.until("a rescale starts", 10*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
	p := w.policy()
	rs := p.Status.Rescale
	dec := p.Status.LastDecision
	avail := segments(t, dec)
	require.Less(t, networkNeed(w, map[string]int32{w.vertexID("Source: orders"): 2, w.vertexID("Enrich -> Sink"): 2}), avail,
		"the job runs at 2/2 within its network memory")
	assert.True(t, dec.Memory.Applied, "%+v", dec)
	codes := reasonCodes(dec)
	assert.Contains(t, codes, string(scaling.ReasonMemoryTuning))
	assert.NotContains(t, codes, string(scaling.ReasonNetworkMemoryLimited), "Apply gives the memory instead of reducing the plan")
	// The plan needs more buffers than the TaskManagers' segments now.
	need := networkNeed(w, rs.AppliedParallelism)
	assert.Greater(t, need, avail, "the plan needs more network memory: %v", rs.AppliedParallelism)
	assert.GreaterOrEqual(t, dec.Memory.RecommendedNetworkBytes, need<<15, "the recommended network memory holds the plan's buffers")
	assert.Greater(t, dec.Memory.RecommendedProcessBytes, dec.Memory.CurrentProcessBytes)

	// The apply wrote the memory keys and the pods' memory.
	d := w.read()
	require.NotNil(t, rs.Applied)
	assert.Len(t, rs.Applied.MemoryConfiguration, len(scaling.MemoryKeys))
	for _, k := range scaling.MemoryKeys {
		assert.Equal(t, rs.Applied.MemoryConfiguration[k], d.Configuration[k], k)
	}
	assert.Equal(t, scaling.FormatMemorySize(dec.Memory.RecommendedProcessBytes), d.TaskManagerMemory)
	assert.Equal(t, d.TaskManagerMemory, d.Configuration[scaling.KeyProcessSize], "the pods and Flink agree on the process size")
	assert.Equal(t, d.Configuration[scaling.KeyNetworkMin], d.Configuration[scaling.KeyNetworkMax])
	net, err := scaling.ParseMemorySize(d.Configuration[scaling.KeyNetworkMin])
	require.NoError(t, err)
	assert.Equal(t, dec.Memory.RecommendedNetworkBytes, net)
	// The keys are consistent: Flink derives the process size they say,
	// the recommendation's (each key rounded up to whole KiB).
	derived, err := scaling.DeriveTaskManagerMemory(d.Configuration, 0)
	require.NoError(t, err)
	process, err := scaling.ParseMemorySize(d.TaskManagerMemory)
	require.NoError(t, err)
	assert.Equal(t, process, derived.ProcessBytes)
	assert.InDelta(t, dec.Memory.RecommendedProcessBytes, derived.ProcessBytes, float64(len(scaling.MemoryKeys)<<10))
	// What was there before is recorded to be written back.
	require.NotNil(t, rs.Previous)
	assert.Equal(t, "4096m", rs.Previous.TaskManagerMemory)
	assert.Equal(t, map[string]string{scaling.KeyMetaspace: userMetaspace}, rs.Previous.MemoryConfiguration)
	owned := managedBy(t, w.deployment(), controllers.FieldManager)
	want := []string{target.FieldOverrides, target.FieldResourceMemory}
	for _, k := range scaling.MemoryKeys {
		want = append(want, target.FieldConfig(k))
	}
	assert.ElementsMatch(t, want, owned)
	assert.Contains(t, w.rec.dump(), fmt.Sprintf("TaskManager memory %d MiB → ", dec.Memory.CurrentProcessBytes>>20))

	// The savepoint fails: everything is written back as it was.
	w.until("the rescale fails", 10*time.Minute, func() bool {
		r := w.rescales()
		return len(r) == 1 && r[0].Outcome == scaling.OutcomeFailed
	})
	p = w.policy()
	assert.Nil(t, p.Status.Rescale)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled))
	after := w.read()
	assert.Equal(t, firstJob, after.JobID, "the old job keeps running")
	assert.Empty(t, after.Overrides)
	assert.Equal(t, "4096m", after.TaskManagerMemory, "the pods' memory as it was")
	assert.Equal(t, userMetaspace, after.Configuration[scaling.KeyMetaspace], "the user's memory key at its value")
	for _, k := range scaling.MemoryKeys {
		if k != scaling.KeyMetaspace {
			assert.NotContains(t, after.Configuration, k, "a key flinkscale added is removed")
		}
	}
	assert.Equal(t, before.Configuration, after.Configuration, "the flinkConfiguration is what it was")
	assert.Greater(t, w.deployment().GetGeneration(), genBefore)
	assert.Equal(t, map[string]int{"Source: orders": 2, "Enrich -> Sink": 2}, w.running())

	// Writing them back left flinkscale owning the memory fields that
	// exist: deleting the policy hands them over, values unchanged.
	written := []string{target.FieldResourceMemory, target.FieldConfig(scaling.KeyMetaspace)}
	assert.ElementsMatch(t, written, managedBy(t, w.deployment(), controllers.FieldManager))
	gen := w.deployment().GetGeneration()
	require.NoError(t, w.c.Delete(w.ctx, w.policy()))
	w.run(time.Minute)
	u := w.deployment()
	assert.Empty(t, managedBy(t, u, controllers.FieldManager), "flinkscale owns nothing")
	assert.ElementsMatch(t, written, managedBy(t, u, controllers.ReleasedFieldManager))
	assert.Equal(t, gen, u.GetGeneration(), "released without a spec change")
	assert.Equal(t, before.Configuration, w.read().Configuration)
	assert.Equal(t, "4096m", w.read().TaskManagerMemory)
}

// In memory mode Recommend, the same load rescales with the overrides
// only: a plan the TaskManagers' network memory cannot hold is reduced
// until it fits, and the recommendation is reported, never written.
func TestMemoryRecommendRescaleWritesOnlyTheOverrides(t *testing.T) {
	w := memoryWorld(t, v1alpha1.MemoryRecommend)
	stepped(t, w)
	before := w.read()

	w.until("a rescale starts", 10*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
	p := w.policy()
	dec := p.Status.LastDecision
	avail := segments(t, dec)
	assert.False(t, dec.Memory.Applied)
	assert.Contains(t, reasonCodes(dec), string(scaling.ReasonNetworkMemoryLimited), "the plan was reduced to fit")
	rs := p.Status.Rescale
	assert.LessOrEqual(t, networkNeed(w, rs.AppliedParallelism), avail, "the applied plan fits the network memory: %v", rs.AppliedParallelism)
	assert.Empty(t, rs.Applied.MemoryConfiguration)
	assert.Empty(t, rs.Applied.TaskManagerMemory)

	w.until("the rescale completes", 10*time.Minute, func() bool { return w.policy().Status.Rescale == nil })
	require.Equal(t, scaling.OutcomeSucceeded, w.rescales()[0].Outcome, w.rec.dump())
	assert.Equal(t, []string{target.FieldOverrides}, managedBy(t, w.deployment(), controllers.FieldManager), "nothing but the overrides is written")
	after := w.read()
	assert.Equal(t, before.TaskManagerMemory, after.TaskManagerMemory)
	withoutOverrides := func(c map[string]string) map[string]string {
		c = maps.Clone(c)
		delete(c, target.KeyOverrides)
		return c
	}
	assert.Equal(t, withoutOverrides(before.Configuration), withoutOverrides(after.Configuration))
	assert.NotContains(t, w.rec.dump(), "TaskManager memory")
}

// A network buffer setting the controller cannot read holds the policy
// with InvalidTarget: no decision on a half-read spec.
func TestBadNetworkSettingHolds(t *testing.T) {
	w := newWorld(t, worldOptions{conf: map[string]any{target.KeySegmentSize: "lots"}})
	stepped(t, w)
	w.run(5 * time.Minute)
	p := w.policy()
	assertNotReady(t, p, v1alpha1.ReasonInvalidTarget, target.KeySegmentSize)
	assert.True(t, meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled))
	assert.Nil(t, p.Status.LastDecision)
	assert.Empty(t, w.rescales())
	assert.Empty(t, w.read().Overrides)

	// Fixed: the next cycles decide and rescale.
	u := w.deployment()
	unstructured.RemoveNestedField(u.Object, "spec", "flinkConfiguration", target.KeySegmentSize)
	require.NoError(t, w.c.Update(w.ctx, u))
	w.until("a rescale starts", 10*time.Minute, func() bool { return w.policy().Status.Rescale != nil })
}

// assertNotReady checks that p's Ready condition has reason, with a
// message that names what.
func assertNotReady(t *testing.T, p *v1alpha1.FlinkScalingPolicy, reason, what string) {
	t.Helper()
	ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionFalse, ready.Status)
	assert.Equal(t, reason, ready.Reason)
	assert.Contains(t, ready.Message, what)
}
