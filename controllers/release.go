package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// FinalizerRelease is on every policy in Apply mode: before the policy goes,
// the controller releases the FlinkDeployment fields it owns.
const FinalizerRelease = "flinkscale.io/release-fields"

// ReleasedFieldManager owns, after a policy is deleted, the FlinkDeployment
// fields flinkscale owned, with the values they had: the job keeps running
// as it is (no spec change, no restart) and whoever edits them next does so
// without a conflict with flinkscale.
const ReleasedFieldManager = "flinkscale-released"

// EventFieldsReleased is the event on the FlinkDeployment when a policy's
// deletion released its fields.
const EventFieldsReleased = "FieldsReleased"

// ensureFinalizer adds FinalizerRelease to a policy that may write to its
// FlinkDeployment (Apply mode). It updates pol in place.
func (r *PolicyReconciler) ensureFinalizer(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy) error {
	if pol.EffectiveMode() != v1alpha1.ModeApply || controllerutil.ContainsFinalizer(pol, FinalizerRelease) {
		return nil
	}
	controllerutil.AddFinalizer(pol, FinalizerRelease)
	if err := r.Client.Update(ctx, pol); err != nil {
		return fmt.Errorf("adding finalizer %s: %w", FinalizerRelease, err)
	}
	return nil
}

// finalize releases the fields of a policy being deleted and removes its
// finalizer. An error leaves the finalizer: the next reconcile retries.
func (r *PolicyReconciler) finalize(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy) error {
	if !controllerutil.ContainsFinalizer(pol, FinalizerRelease) {
		return nil
	}
	if err := r.release(ctx, pol); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(pol, FinalizerRelease)
	if err := r.Client.Update(ctx, pol); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s: %w", FinalizerRelease, err)
	}
	return nil
}

// release hands the FlinkDeployment fields flinkscale owns over to
// ReleasedFieldManager, values unchanged: first that manager applies the
// same values (becoming a co-owner, which never conflicts), then flinkscale
// applies nothing, which drops its ownership without removing a field that
// has another owner. The deployment's spec, and so the job, do not change.
func (r *PolicyReconciler) release(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy) error {
	key := types.NamespacedName{Namespace: pol.Namespace, Name: pol.Spec.TargetRef.Name}
	u := target.New()
	switch pol.Spec.TargetRef.EffectiveKind() {
	case v1alpha1.KindFlinkSessionJob:
		u = target.NewOf(target.SessionJobGVK)
	case v1alpha1.KindDeployment:
		// Nothing was applied: the requirements live in Flink and the
		// replicas in the TaskManager Deployment, which stay as they are.
		return nil
	}
	kind := u.GetKind()
	if err := r.Client.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s %s to release its fields: %w", kind, key, err)
	}
	owned, err := target.OwnedFields(u, FieldManager)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, key, err)
	}
	if len(owned) == 0 {
		return nil
	}
	read := target.Read
	if kind == target.SessionJobGVK.Kind {
		read = func(u *unstructured.Unstructured) (*target.Deployment, error) { return target.ReadSessionJob(u, nil) }
	}
	d, err := read(u)
	if err != nil {
		return fmt.Errorf("%s %s: %w (its fields stay owned by %s; remove the finalizer %s to delete the policy anyway)",
			kind, key, err, FieldManager, FinalizerRelease)
	}
	keep := d.Managed().Only(target.OwnedMask(owned))
	handover := d.ApplyObject(keep)
	if err := r.Client.Patch(ctx, handover, client.Apply, client.FieldOwner(ReleasedFieldManager)); err != nil {
		return fmt.Errorf("handing the fields of %s %s over to %s: %w", kind, key, ReleasedFieldManager, err)
	}
	d.ResourceVersion = handover.GetResourceVersion()
	drop := d.ApplyObject(target.Fields{})
	delete(drop.Object, "spec")
	if err := r.Client.Patch(ctx, drop, client.Apply, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("releasing the fields of %s %s: %w", kind, key, err)
	}
	paths := make([]string, 0, len(owned))
	for p := range owned {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if r.Recorder != nil {
		r.Recorder.Eventf(drop, corev1.EventTypeNormal, EventFieldsReleased,
			"FlinkScalingPolicy %s deleted: released %s (values kept, now owned by field manager %s)",
			pol.Name, strings.Join(paths, ", "), ReleasedFieldManager)
	}
	return nil
}
