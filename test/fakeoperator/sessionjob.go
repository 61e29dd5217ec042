package fakeoperator

import (
	"context"
	"errors"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flinkscale/flinkscale/test/sim"
)

// ReconcileSessionJob runs one step of the operator for a FlinkSessionJob: a
// job submitted to the session cluster its spec.deploymentName names (a
// FlinkDeployment without spec.job, in the same namespace), whose simulated
// job SessionJobs holds under the session job's own namespace and name.
//
// The state machine is Reconcile's, with what the operator (1.15) does
// differently for session jobs:
//
//   - No session cluster: a Warning UnsupportedFlinkVersion event ("Flink
//     version null ...", as the operator's version check reads the version of
//     a missing cluster) and a retry; the status is not written. The same for
//     a cluster older than Flink 1.15.
//   - Until the cluster's JobManager is READY, the job is neither observed nor
//     reconciled (SessionJobReconciler.readyToReconcile): it waits, silently.
//   - Validation errors (status.error, ValidationError event, nothing done):
//     no spec.job; a cluster that runs an application (spec.job set); a
//     spec.deploymentName changed after the first deployment.
//   - The job runs with the cluster's Flink version, mode, scheduler and
//     slots, and the cluster's flinkConfiguration under its own (the
//     operator's getSessionJobConfig): the spec diff's mode, the in-place
//     scaling conditions (adaptive scheduler, Flink ≥ 1.18, native mode,
//     kubernetes.operator.job.upgrade.inplace-scaling.enabled not false in
//     the merged configuration) and the savepoint directory come from there.
//     lastReconciledSpec records the session job's own spec.
//   - The status has no jobManagerDeploymentStatus or taskManager (the
//     FlinkSessionJob CRD has neither); a job stopped at once (stop-with-
//     savepoint) is FINISHED with no jobId until the resubmission gives it a
//     new one; a last-state upgrade cancels the job and restores it from its
//     latest checkpoint when the simulated job can cancel (Canceler), and
//     takes a stop-with-savepoint otherwise.
func (o *Operator) ReconcileSessionJob(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	u, err := o.load(ctx, FlinkSessionJobGVK, req.NamespacedName)
	if u == nil {
		return ctrl.Result{}, err
	}
	var cluster *unstructured.Unstructured
	if name, _, _ := unstructured.NestedString(u.Object, "spec", "deploymentName"); name != "" {
		c := &unstructured.Unstructured{}
		c.SetGroupVersionKind(FlinkDeploymentGVK)
		switch err := o.Client.Get(ctx, types.NamespacedName{Namespace: req.Namespace, Name: name}, c); {
		case err == nil:
			cluster = c
		case !apierrors.IsNotFound(err):
			return ctrl.Result{}, err
		}
	}
	version := "null"
	if cluster != nil {
		version, _, _ = unstructured.NestedString(cluster.Object, "spec", "flinkVersion")
	}
	if !versionAtLeast(version, 1, 15) {
		// ValidatorUtils.validateSupportedVersion, before anything else.
		o.event(u, corev1.EventTypeWarning, ReasonUnsupportedFlinkVersion, "Flink version %s is not supported by this operator version", version)
		return ctrl.Result{RequeueAfter: o.resync()}, nil
	}
	var d sim.Deployer
	if o.SessionJobs != nil {
		d, _ = o.SessionJobs.Get(req.NamespacedName)
	}
	if d == nil {
		o.event(u, corev1.EventTypeWarning, ReasonClusterMissing, "No simulated Flink job is registered for session job %s", req.NamespacedName)
		return ctrl.Result{RequeueAfter: o.resync()}, nil
	}
	return o.runStep(&run{o: o, ctx: ctx, kind: sessionJobKind, key: req.NamespacedName, obj: u, d: d, cluster: cluster, now: o.now()})
}

// sessionJobsOf maps a FlinkDeployment to the FlinkSessionJobs that name it
// as their session cluster.
func (o *Operator) sessionJobsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(FlinkSessionJobGVK.GroupVersion().WithKind(FlinkSessionJobGVK.Kind + "List"))
	if err := o.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "listing the session jobs of a session cluster", "cluster", obj.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for _, sj := range list.Items {
		if name, _, _ := unstructured.NestedString(sj.Object, "spec", "deploymentName"); name == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&sj)})
		}
	}
	return reqs
}

// parseSessionJobSpec reads a FlinkSessionJob spec as the job it deploys to
// cluster, its session cluster: with the cluster's flinkVersion, mode and
// TaskManagers, and the cluster's flinkConfiguration with the job's own laid
// over it (the operator's FlinkConfigManager.getSessionJobConfig), except
// for the scheduler and the slots per TaskManager, which are the cluster's
// JobManager's and TaskManagers' whatever the job says. raw stays the
// session job's own spec: it is what spec diffs and lastReconciledSpec see.
// It validates what the operator's DefaultValidator.validateSessionJob does.
func parseSessionJobSpec(spec map[string]any, cluster *unstructured.Unstructured) (*deploymentSpec, error) {
	if _, ok := spec["job"]; !ok {
		return nil, validationError("The job spec should not be empty")
	}
	if cluster == nil {
		return nil, errors.New("the session cluster is not found")
	}
	cs, _, err := unstructured.NestedMap(cluster.Object, "spec")
	if err != nil {
		return nil, fmt.Errorf("session cluster spec: %w", err)
	}
	if _, ok := cs["job"]; ok {
		return nil, validationError("Can not submit session job to application cluster")
	}
	clusterConf, ownConf := map[string]string{}, map[string]string{}
	if m, ok := cs["flinkConfiguration"].(map[string]any); ok {
		flatten("", m, clusterConf)
	}
	if m, ok := spec["flinkConfiguration"].(map[string]any); ok {
		flatten("", m, ownConf)
	}
	conf := maps.Clone(clusterConf)
	maps.Copy(conf, ownConf)
	for _, k := range []string{KeyScheduler, KeySlots} {
		delete(conf, k)
		if v, ok := clusterConf[k]; ok {
			conf[k] = v
		}
	}
	merged := map[string]any{"job": spec["job"], "flinkConfiguration": toAny(conf)}
	for _, k := range []string{"flinkVersion", "mode", "taskManager"} {
		if v, ok := cs[k]; ok {
			merged[k] = v
		}
	}
	s, err := parseSpec(merged)
	if err != nil {
		return nil, err
	}
	// The session cluster's TaskManagers run already, with the cluster's
	// memory: a session job does not reshape them.
	s.memory = nil
	if s.raw, err = normalize(spec); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	return s, nil
}

// validationError is a validation failure in the operator's words.
type validationError string

func (e validationError) Error() string { return string(e) }

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseDesired reads the desired spec, validated as the operator validates
// it: a session job's spec.deploymentName cannot change once deployed.
func (r *run) parseDesired(spec map[string]any) (*deploymentSpec, error) {
	desired, err := r.parse(spec)
	rs := r.st.ReconciliationStatus
	if err != nil || !r.kind.session || rs.LastReconciledSpec == "" {
		return desired, err
	}
	last, err := ParseReconciledSpec(rs.LastReconciledSpec)
	if err != nil {
		return desired, nil // the step reports it
	}
	if last.Spec["deploymentName"] != desired.raw["deploymentName"] {
		return nil, validationError("The deploymentName can't be changed")
	}
	return desired, nil
}

// sessionCluster runs a session cluster, a FlinkDeployment without spec.job:
// its jobs are FlinkSessionJobs, each with its own simulated job, so it needs
// none. A new spec, or a change the operator would deploy (a SCALE or
// UPGRADE change), is deployed: DEPLOYED with the JobManager DEPLOYING; the
// next reconcile finds the JobManager READY and the spec stable (STABLE).
// An IGNORE change is only recorded.
func (r *run) sessionCluster(desired *deploymentSpec) (ctrl.Result, error) {
	rs := &r.st.ReconciliationStatus
	gen := r.obj.GetGeneration()
	first := rs.LastReconciledSpec == ""
	typ, changes := diffUpgrade, []string(nil)
	if !first {
		last, err := ParseReconciledSpec(rs.LastReconciledSpec)
		if err != nil {
			r.st.Error = err.Error()
			return ctrl.Result{}, err
		}
		typ, changes = specDiff(last.Spec, desired.raw, desired.mode)
	}
	switch {
	case typ == diffIgnore:
		wasStable := rs.LastStableSpec == rs.LastReconciledSpec
		rs.LastReconciledSpec = reconciledSpecJSON(desired.raw, gen, false)
		if wasStable {
			rs.LastStableSpec = rs.LastReconciledSpec
		}
	case typ != diffNone:
		if first {
			r.event(corev1.EventTypeNormal, ReasonSubmit, "Starting deployment")
		} else {
			r.event(corev1.EventTypeNormal, ReasonSpecChanged, "%s change(s) detected: %v", typ, changes)
		}
		rs.State = ReconDeployed
		rs.LastReconciledSpec = reconciledSpecJSON(desired.raw, gen, first)
		rs.ReconciliationTimestamp = r.ms()
		r.st.JobManagerDeploymentStatus = JMDeploying
		r.st.Error = ""
	default:
		r.st.JobManagerDeploymentStatus = JMReady
		rs.LastStableSpec = rs.LastReconciledSpec
		r.st.Error = ""
	}
	r.st.ObservedGeneration = gen
	return ctrl.Result{}, nil
}
