package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// TargetIndex indexes FlinkScalingPolicies by spec.targetRef.name.
const TargetIndex = "spec.targetRef.name"

// Options tune the controller's registration.
type Options struct {
	// MaxConcurrentReconciles bounds the policies reconciled at once
	// (default 4): collection is I/O bound and per-job timeouts keep a slow
	// job from holding a worker long.
	MaxConcurrentReconciles int
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
	// Wrap, when set, wraps the reconciler the controller runs (to time or
	// count reconciles in benchmarks); watches and index are unchanged.
	Wrap func(reconcile.Reconciler) reconcile.Reconciler
	// Wake, when set, is a source of policies to reconcile at once (those
	// of a shard this replica just acquired: shard.Manager.Watch).
	Wake <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=flinkscale.io,resources=flinkscalingpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=flinkscale.io,resources=flinkscalingpolicies/status,verbs=patch
// +kubebuilder:rbac:groups=flink.apache.org,resources=flinkdeployments,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=flink.apache.org,resources=flinksessionjobs,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get
// +kubebuilder:rbac:groups=apps,resources=deployments/scale,verbs=get;update
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create;patch

// SetupWithManager registers the reconciler: it reconciles policies on spec
// and annotation changes (and on its own requeues, every polling interval),
// and a FlinkDeployment's changes wake the policies that target it while
// they follow a rescale or wait for the deployment to appear.
func (r *PolicyReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.Sources == nil {
		return fmt.Errorf("PolicyReconciler.Sources is required")
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("flinkscale")
	}
	if r.Metrics == nil {
		r.Metrics = DefaultMetrics()
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.FlinkScalingPolicy{}, TargetIndex,
		func(o client.Object) []string {
			return []string{o.(*v1alpha1.FlinkScalingPolicy).Spec.TargetRef.Name}
		}); err != nil {
		return fmt.Errorf("indexing policies by target: %w", err)
	}
	n := opts.MaxConcurrentReconciles
	if n <= 0 {
		n = 4
	}
	skip := opts.SkipNameValidation
	var rec reconcile.Reconciler = r
	if opts.Wrap != nil {
		rec = opts.Wrap(r)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("flinkscale-policy").
		For(&v1alpha1.FlinkScalingPolicy{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: n, SkipNameValidation: &skip})
	if opts.Wake != nil {
		b = b.WatchesRawSource(source.Channel(opts.Wake, &handler.EnqueueRequestForObject{}))
	}
	// The operator's kinds wake the policies that follow them; a cluster
	// without the operator may have neither CRD installed. Deployments
	// are not watched (polling follows them): a watch would cache every
	// Deployment of the cluster.
	for _, gvk := range []schema.GroupVersionKind{target.GVK, target.SessionJobGVK} {
		if KindServed(mgr, gvk) {
			b = b.Watches(target.NewOf(gvk), handler.EnqueueRequestsFromMapFunc(r.policiesWaitingOn))
		}
	}
	return b.Complete(rec)
}

// KindServed reports whether the API server serves the kind (its CRD is
// installed).
func KindServed(mgr ctrl.Manager, gvk schema.GroupVersionKind) bool {
	_, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}

// policiesWaitingOn maps a FlinkDeployment to the policies that target it
// and follow a rescale (so phases are seen as they happen) or have not found
// it yet. Other policies wait for their polling interval: the operator
// writes the status often, and each reconcile polls Flink.
func (r *PolicyReconciler) policiesWaitingOn(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.FlinkScalingPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{TargetIndex: o.GetName()}); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, p := range list.Items {
		ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		missing := ready != nil && ready.Reason == v1alpha1.ReasonTargetNotFound
		if p.Status.Rescale != nil || missing {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
	}
	return out
}
