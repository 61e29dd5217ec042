package optin

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlbuilder "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// ControllerName is the name of the opt-in controller (in logs, metrics and
// as the source of its events).
const ControllerName = "flinkscale-optin"

// The label the controller puts on the policies it creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "flinkscale"
)

// Reasons of the events the Reconciler records on a FlinkDeployment.
const (
	ReasonPolicyCreated = "PolicyCreated"
	ReasonPolicyUpdated = "PolicyUpdated"
	ReasonPolicyDeleted = "PolicyDeleted"
	// ReasonPolicyConflict (Warning): a policy of the deployment's name
	// exists and is not the deployment's own.
	ReasonPolicyConflict = "PolicyConflict"
	// ReasonInvalidAnnotation (Warning): PolicySpec rejected the
	// annotations or the autoscaler options; the policy is left as it is.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	// ReasonInvalidFlinkConfiguration (Warning): spec.flinkConfiguration
	// could not be read at all.
	ReasonInvalidFlinkConfiguration = "InvalidFlinkConfiguration"
	// ReasonOptInWarning (Normal): a setting PolicySpec did not carry over,
	// one event per warning, recorded when the policy is created or
	// updated.
	ReasonOptInWarning = "OptInWarning"
)

// copiedAnnotations are the policy annotations the Reconciler owns: it sets
// or removes them to match PolicyAnnotations, and leaves every other
// annotation of the policy alone.
var copiedAnnotations = []string{AnnotationPausedScaleIn, AnnotationPausedScaleOut}

// Reconciler keeps, for every FlinkDeployment annotated
// flinkscale.io/enabled: "true", a FlinkScalingPolicy of the same name
// controlled by it and built by PolicySpec, and deletes that policy when the
// annotation goes. It never touches a policy the deployment does not
// control (a user's own), and never the status of a policy.
type Reconciler struct {
	Client   client.Client
	Recorder record.EventRecorder
	// Kind is the kind of the annotated objects: FlinkDeployment (the
	// default), FlinkSessionJob, or apps/v1 Deployment (the JobManager of
	// a cluster without the operator, watched by metadata only). Each kind
	// needs a Reconciler of its own.
	Kind schema.GroupVersionKind
	// CopyLabels are label keys copied from the deployment to its policy
	// (and kept in sync): the keys of the controller's shard selector, so
	// that the replica that owns a deployment also sees its policy.
	CopyLabels []string
	// Shards, when set, admits only the objects of the shards this replica
	// holds (a shard.Manager; keyed by the annotated object's
	// namespace/name, which is its policy's too). Nil admits all.
	Shards interface {
		Enter(key types.NamespacedName) (done func(), ok bool)
	}
	// Wake, when set, is a source of annotated objects to reconcile at
	// once (those of a shard this replica just acquired).
	Wake <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=flink.apache.org,resources=flinkdeployments,verbs=get;list;watch
// +kubebuilder:rbac:groups=flink.apache.org,resources=flinksessionjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch
// +kubebuilder:rbac:groups=flinkscale.io,resources=flinkscalingpolicies,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// SetupWithManager registers the Reconciler with mgr, taking the manager's
// client and an event recorder where the Reconciler has none.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor(ControllerName)
	}
	// The Flink operator rewrites a deployment's status often; only spec
	// and annotation changes matter here. A policy's status changes with
	// every decision; only its spec and annotations are reconciled.
	specOrAnnotations := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})
	gvk := r.kind()
	name := ControllerName
	var forOpts []ctrlbuilder.ForOption
	forOpts = append(forOpts, ctrlbuilder.WithPredicates(specOrAnnotations))
	if gvk != target.GVK {
		name += "-" + strings.ToLower(gvk.Kind)
	}
	if gvk == DeploymentGVK {
		// Only annotations matter: a metadata watch keeps every
		// Deployment's spec and status out of the cache.
		forOpts = append(forOpts, ctrlbuilder.OnlyMetadata)
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, &handler.EnqueueRequestForObject{}))
	}
	return b.
		Named(name).
		For(r.forObject(), forOpts...).
		Owns(&v1alpha1.FlinkScalingPolicy{}, ctrlbuilder.WithPredicates(specOrAnnotations)).
		// When a policy the deployment does not own goes (a conflict
		// resolved by deleting the user's policy), the deployment of the
		// same name may now get its own.
		Watches(&v1alpha1.FlinkScalingPolicy{},
			handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []ctrl.Request {
				return []ctrl.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
			}),
			ctrlbuilder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
				DeleteFunc:  func(e event.DeleteEvent) bool { return !controlledBy(e.Object, gvk) },
			})).
		WithOptions(controller.Options{SkipNameValidation: ptr(true)}).
		Complete(r)
}

// Reconcile brings the policy of one FlinkDeployment in line with its
// annotations. Errors are returned only for API failures (including
// conflicts), so that controller-runtime retries; bad annotations are
// reported as events and wait for the next edit of the deployment.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Shards != nil {
		done, ok := r.Shards.Enter(req.NamespacedName)
		if !ok {
			return ctrl.Result{}, nil // another replica's shard
		}
		defer done()
	}
	log := ctrllog.FromContext(ctx)

	gvk := r.kind()
	fd := r.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, fd); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted: garbage collection deletes the policy it owned.
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get %s %s: %w", gvk.Kind, req.NamespacedName, err)
	}
	if fd.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}

	policy := &v1alpha1.FlinkScalingPolicy{}
	exists := true
	if err := r.Client.Get(ctx, req.NamespacedName, policy); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get FlinkScalingPolicy %s: %w", req.NamespacedName, err)
		}
		exists = false
	}
	owned := exists && metav1.IsControlledBy(policy, fd)
	if owned && policy.DeletionTimestamp != nil {
		// Being deleted (finalizers): once it is gone, the delete event
		// brings the deployment back here.
		log.V(1).Info("the FlinkScalingPolicy is being deleted; waiting for it to go")
		return ctrl.Result{}, nil
	}

	annotations := fd.GetAnnotations()
	if !Enabled(annotations) {
		if !owned {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, r.delete(ctx, fd, policy)
	}

	if exists && !owned {
		r.Recorder.Event(fd, "Warning", ReasonPolicyConflict, conflictMessage(fd, policy))
		log.Info("a FlinkScalingPolicy of the deployment's name exists and is not managed by the annotation; leaving it alone",
			"policy", policy.Name, "policyTarget", policy.Spec.TargetRef.Name)
		return ctrl.Result{}, nil
	}

	conf := map[string]string{}
	var err error
	if u, ok := fd.(*unstructured.Unstructured); ok {
		conf, err = target.FlinkConfiguration(u)
	}
	if err != nil {
		r.Recorder.Event(fd, "Warning", ReasonInvalidFlinkConfiguration,
			fmt.Sprintf("FlinkScalingPolicy %q not created or changed: %v", fd.GetName(), err))
		log.Info("cannot read the FlinkDeployment's flinkConfiguration; the policy is left as it is", "error", err.Error())
		return ctrl.Result{}, nil
	}
	spec, warnings, err := PolicySpecFor(v1alpha1.TargetRef{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: fd.GetName()}, annotations, conf)
	if err != nil {
		r.Recorder.Event(fd, "Warning", ReasonInvalidAnnotation,
			fmt.Sprintf("FlinkScalingPolicy %q not created or changed: %v", fd.GetName(), err))
		log.Info("invalid flinkscale.io annotations or autoscaler options; the policy is left as it is", "error", err.Error())
		return ctrl.Result{}, nil
	}
	copied := PolicyAnnotations(annotations)

	if !exists {
		return ctrl.Result{}, r.create(ctx, fd, spec, copied, warnings)
	}
	return ctrl.Result{}, r.update(ctx, fd, policy, spec, copied, warnings)
}

func (r *Reconciler) create(ctx context.Context, fd client.Object, spec v1alpha1.FlinkScalingPolicySpec, annotations map[string]string, warnings []Warning) error {
	policy := &v1alpha1.FlinkScalingPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       fd.GetNamespace(),
			Name:            fd.GetName(),
			Labels:          r.labels(fd, map[string]string{LabelManagedBy: ManagedBy}),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(fd, r.kind())},
		},
		Spec: spec,
	}
	if err := r.Client.Create(ctx, policy); err != nil {
		// AlreadyExists included: the cache had not seen the policy yet;
		// the retry reads it.
		return fmt.Errorf("create FlinkScalingPolicy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	ctrllog.FromContext(ctx).Info("created the FlinkScalingPolicy", "policy", policy.Name, "mode", spec.Mode, "warnings", len(warnings))
	r.Recorder.Eventf(fd, "Normal", ReasonPolicyCreated,
		"Created FlinkScalingPolicy %q from the flinkscale.io annotations", policy.Name)
	r.warn(fd, warnings)
	return nil
}

func (r *Reconciler) update(ctx context.Context, fd client.Object, policy *v1alpha1.FlinkScalingPolicy, spec v1alpha1.FlinkScalingPolicySpec, annotations map[string]string, warnings []Warning) error {
	log := ctrllog.FromContext(ctx)
	updated := policy.DeepCopy()
	var changed []string
	if !equality.Semantic.DeepEqual(defaulted(spec), defaulted(policy.Spec)) {
		updated.Spec = spec
		changed = append(changed, "spec")
	}
	for _, k := range copiedAnnotations {
		v, want := annotations[k]
		old, has := updated.Annotations[k]
		switch {
		case want && (!has || old != v):
			if updated.Annotations == nil {
				updated.Annotations = map[string]string{}
			}
			updated.Annotations[k] = v
			changed = append(changed, "annotation "+k)
		case !want && has:
			delete(updated.Annotations, k)
			changed = append(changed, "annotation "+k)
		}
	}
	for _, k := range r.CopyLabels {
		v, want := fd.GetLabels()[k]
		old, has := updated.Labels[k]
		switch {
		case want && (!has || old != v):
			if updated.Labels == nil {
				updated.Labels = map[string]string{}
			}
			updated.Labels[k] = v
			changed = append(changed, "label "+k)
		case !want && has:
			delete(updated.Labels, k)
			changed = append(changed, "label "+k)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	// The resource version read makes this fail with a conflict if the
	// policy changed since; the status subresource keeps the status out of
	// the write.
	if err := r.Client.Update(ctx, updated); err != nil {
		return fmt.Errorf("update FlinkScalingPolicy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	if updated.ResourceVersion == policy.ResourceVersion {
		// The API server found nothing to change: the local defaults
		// disagree with the CRD's.
		log.V(1).Info("the FlinkScalingPolicy update changed nothing", "policy", policy.Name, "changed", changed)
		return nil
	}
	log.Info("updated the FlinkScalingPolicy", "policy", policy.Name, "changed", changed, "warnings", len(warnings))
	r.Recorder.Eventf(fd, "Normal", ReasonPolicyUpdated,
		"Updated FlinkScalingPolicy %q from the flinkscale.io annotations (%s)", policy.Name, strings.Join(changed, ", "))
	r.warn(fd, warnings)
	return nil
}

// labels adds the deployment's CopyLabels to base.
func (r *Reconciler) labels(fd client.Object, base map[string]string) map[string]string {
	for _, k := range r.CopyLabels {
		if v, ok := fd.GetLabels()[k]; ok {
			base[k] = v
		}
	}
	return base
}

func (r *Reconciler) delete(ctx context.Context, fd client.Object, policy *v1alpha1.FlinkScalingPolicy) error {
	err := r.Client.Delete(ctx, policy, client.Preconditions{UID: &policy.UID, ResourceVersion: &policy.ResourceVersion})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete FlinkScalingPolicy %s/%s: %w", policy.Namespace, policy.Name, err)
	}
	ctrllog.FromContext(ctx).Info("deleted the FlinkScalingPolicy: the deployment no longer opts in", "policy", policy.Name)
	r.Recorder.Eventf(fd, "Normal", ReasonPolicyDeleted,
		"Deleted FlinkScalingPolicy %q: the %s is no longer annotated %s: \"true\"", policy.Name, r.kind().Kind, AnnotationEnabled)
	return nil
}

func (r *Reconciler) warn(fd client.Object, warnings []Warning) {
	for _, w := range warnings {
		r.Recorder.Event(fd, "Normal", ReasonOptInWarning, w.String())
	}
}

func conflictMessage(fd client.Object, policy *v1alpha1.FlinkScalingPolicy) string {
	msg := fmt.Sprintf("FlinkScalingPolicy %q already exists and is not managed by the %s annotation", policy.Name, AnnotationEnabled)
	kind := fd.GetObjectKind().GroupVersionKind().Kind
	if ref := policy.Spec.TargetRef; ref.Name == fd.GetName() && ref.EffectiveKind() == kind {
		return msg + ": it targets this " + kind + ", so it is your own policy and it scales the job; " +
			"the flinkscale.io annotations are ignored (remove " + AnnotationEnabled + ", or delete that policy to have one made from the annotations)"
	}
	return msg + fmt.Sprintf(": it targets %s %q, and no policy is created for this one until it is renamed or deleted", policy.Spec.TargetRef.EffectiveKind(), policy.Spec.TargetRef.Name)
}

// controlledBy reports whether o has an object of the kind as its
// controller.
func controlledBy(o client.Object, gvk schema.GroupVersionKind) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.Kind == gvk.Kind && strings.HasPrefix(ref.APIVersion, gvk.Group+"/")
}

// DeploymentGVK is apps/v1 Deployment, the JobManager of a cluster without
// the operator.
var DeploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// kind is the Reconciler's kind, FlinkDeployment by default.
func (r *Reconciler) kind() schema.GroupVersionKind {
	if r.Kind.Kind == "" {
		return target.GVK
	}
	return r.Kind
}

// forObject is the object the controller is built For: a typed Deployment
// (the builder watches its metadata only, and can still name it as the
// owner of the policies), else an unstructured object of the kind.
func (r *Reconciler) forObject() client.Object {
	if r.kind() == DeploymentGVK {
		return &appsv1.Deployment{}
	}
	return target.NewOf(r.kind())
}

// newObject is an empty object of the kind to read into: unstructured for
// the operator's kinds, metadata only for Deployments.
func (r *Reconciler) newObject() client.Object {
	gvk := r.kind()
	if gvk == DeploymentGVK {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		return m
	}
	return target.NewOf(gvk)
}

// defaulted returns s with the defaults of the FlinkScalingPolicy CRD
// (config/crd, from the kubebuilder markers in api/v1alpha1) filled in, so
// that the spec PolicySpec builds compares equal to the same spec read back
// from the API server. The envtest tests check it against the CRD.
func defaulted(s v1alpha1.FlinkScalingPolicySpec) v1alpha1.FlinkScalingPolicySpec {
	s = *s.DeepCopy()
	dur := func(p **metav1.Duration, d time.Duration) {
		if *p == nil {
			*p = &metav1.Duration{Duration: d}
		}
	}
	f64 := func(p **float64, v float64) {
		if *p == nil {
			*p = &v
		}
	}
	i32 := func(p **int32, v int32) {
		if *p == nil {
			*p = &v
		}
	}
	if s.TargetRef.Kind == "" {
		s.TargetRef.Kind = target.GVK.Kind
	}
	if s.Mode == "" {
		s.Mode = v1alpha1.ModeDryRun
	}
	dur(&s.PollingInterval, 30*time.Second)
	if s.Utilization == nil {
		s.Utilization = &v1alpha1.Utilization{}
	}
	f64(&s.Utilization.Target, 0.7)
	f64(&s.Utilization.Min, 0.4)
	f64(&s.Utilization.Max, 0.85)
	dur(&s.MetricsWindow, 5*time.Minute)
	i32(&s.MinSamples, 3)
	dur(&s.WarmUp, 2*time.Minute)
	dur(&s.MaxSnapshotAge, 2*time.Minute)
	dur(&s.CooldownPeriod, 5*time.Minute)
	dur(&s.CatchUpDuration, 15*time.Minute)
	dur(&s.RestartTime, 90*time.Second)
	dur(&s.TaskManagerStartup, time.Minute)
	dur(&s.RestartCost, 20*time.Minute)
	dur(&s.PlanningHorizon, time.Hour)
	i32(&s.MinParallelism, 1)
	i32(&s.MaxParallelism, 1000)
	if s.Behavior == nil {
		s.Behavior = &v1alpha1.Behavior{}
	}
	if s.Behavior.ScaleUp == nil {
		s.Behavior.ScaleUp = &v1alpha1.ScaleUpRules{}
	}
	dur(&s.Behavior.ScaleUp.StabilizationWindow, 0)
	f64(&s.Behavior.ScaleUp.MaxFactor, 10)
	if s.Behavior.ScaleDown == nil {
		s.Behavior.ScaleDown = &v1alpha1.ScaleDownRules{}
	}
	dur(&s.Behavior.ScaleDown.StabilizationWindow, 30*time.Minute)
	f64(&s.Behavior.ScaleDown.MaxFactor, 4)
	if t := s.Triggers; t != nil {
		for i := range t.Kafka {
			defaultAuthKind(t.Kafka[i].AuthenticationRef)
		}
		if m := t.FlinkMetrics; m != nil {
			if m.REST != nil {
				defaultAuthKind(m.REST.AuthenticationRef)
			}
			if m.Prometheus != nil && m.Prometheus.Port == 0 {
				m.Prometheus.Port = 9249
			}
			if m.PromQL != nil {
				defaultAuthKind(m.PromQL.AuthenticationRef)
			}
		}
	}
	if s.Resources == nil {
		s.Resources = &v1alpha1.Resources{}
	}
	if s.Resources.SlotsPerTaskManager == nil {
		auto := intstr.FromString("auto")
		s.Resources.SlotsPerTaskManager = &auto
	}
	f64(&s.MinChange, 0.1)
	if s.Checkpoints == nil {
		s.Checkpoints = &v1alpha1.CheckpointPolicy{}
	}
	f64(&s.Checkpoints.MaxDurationRatio, 0.5)
	if s.Memory == nil {
		s.Memory = &v1alpha1.MemoryPolicy{}
	}
	if s.Memory.Mode == "" {
		s.Memory.Mode = v1alpha1.MemoryRecommend
	}
	f64(&s.Memory.Headroom, 0.2)
	f64(&s.Memory.MinSaving, 0.3)
	f64(&s.Memory.MaxGCTimeRatio, 0.3)
	return s
}

func defaultAuthKind(ref *v1alpha1.AuthenticationRef) {
	if ref != nil && ref.Kind == "" {
		ref.Kind = "Secret"
	}
}
