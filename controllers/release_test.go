package controllers_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// Deleting an Apply policy after it rescaled hands its fields over with
// their values: the FlinkDeployment's spec does not change (no restart, the
// job keeps its parallelism), flinkscale owns nothing any more, and the
// user's next edit of those fields meets no conflict.
func TestDeletingThePolicyReleasesItsFields(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.run(2 * time.Minute)
	require.True(t, controllerutil.ContainsFinalizer(w.policy(), controllers.FinalizerRelease), "an Apply policy carries the finalizer")

	stepped(t, w)
	w.until("the rescale completes", 20*time.Minute, func() bool {
		r := w.rescales()
		return len(r) == 1 && r[0].Outcome == "Succeeded"
	})
	before := w.read()
	gen := w.deployment().GetGeneration()
	running := w.running()
	require.ElementsMatch(t, []string{target.FieldOverrides}, managedBy(t, w.deployment(), controllers.FieldManager))

	require.NoError(t, w.c.Delete(w.ctx, w.policy()))
	w.run(time.Minute)
	err := w.c.Get(w.ctx, w.pKey, &v1alpha1.FlinkScalingPolicy{})
	require.True(t, apierrors.IsNotFound(err), "the policy is gone once its fields are released: %v", err)

	u := w.deployment()
	assert.Equal(t, gen, u.GetGeneration(), "the spec did not change: no restart")
	after := w.read()
	assert.Equal(t, before.Overrides, after.Overrides, "the parallelism overrides keep their values")
	assert.Empty(t, managedBy(t, u, controllers.FieldManager), "flinkscale owns nothing")
	assert.ElementsMatch(t, []string{target.FieldOverrides}, managedBy(t, u, controllers.ReleasedFieldManager))
	assert.Equal(t, 1, w.rec.count(kindDeployment, controllers.EventFieldsReleased), w.rec.dump())
	w.run(2 * time.Minute)
	assert.Equal(t, running, w.running(), "the job runs on at its parallelism")

	// The user changes the overrides as kubectl edit or patch would (an
	// update): accepted, and flinkscale does not come back.
	u = w.deployment()
	orig := u.DeepCopy()
	require.NoError(t, unstructured.SetNestedField(u.Object, "user-chosen:3", "spec", "flinkConfiguration", target.KeyOverrides))
	require.NoError(t, w.c.Patch(w.ctx, u, client.MergeFrom(orig), client.FieldOwner("kubectl-edit")))
	w.run(2 * time.Minute)
	assert.Equal(t, "user-chosen:3", w.read().Configuration[target.KeyOverrides])
	assert.Empty(t, managedBy(t, w.deployment(), controllers.FieldManager))
}

// A DryRun policy never writes to the deployment: no finalizer, and its
// deletion is immediate. A policy whose deployment is gone is deleted too.
func TestDeletionWithoutFieldsToRelease(t *testing.T) {
	w := newWorld(t, worldOptions{mode: v1alpha1.ModeDryRun})
	w.run(2 * time.Minute)
	assert.False(t, controllerutil.ContainsFinalizer(w.policy(), controllers.FinalizerRelease))

	w = newWorld(t, worldOptions{})
	w.run(2 * time.Minute)
	require.True(t, controllerutil.ContainsFinalizer(w.policy(), controllers.FinalizerRelease))
	require.NoError(t, w.c.Delete(w.ctx, w.deployment()))
	require.NoError(t, w.c.Delete(w.ctx, w.policy()))
	w.run(time.Minute)
	err := w.c.Get(w.ctx, w.pKey, &v1alpha1.FlinkScalingPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
}
