package optin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/test/envtest"
)

// The JobManager Deployment's annotations name its TaskManagers and its
// job; on the operator's kinds they mean nothing and are ignored with a
// warning.
func TestPolicySpecForEachKind(t *testing.T) {
	ann := map[string]string{AnnotationEnabled: "true", AnnotationTaskManagerDeployment: " wc-taskmanager ", AnnotationJobName: "WordCount"}
	spec, warns, err := PolicySpecFor(v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: v1alpha1.KindDeployment, Name: "wc-jobmanager"}, ann, nil)
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "wc-jobmanager", TaskManagerDeployment: "wc-taskmanager", JobName: "WordCount"}, spec.TargetRef)
	assert.Empty(t, warns)

	spec, warns, err = PolicySpecFor(v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: v1alpha1.KindFlinkSessionJob, Name: "clicks"}, ann, nil)
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: "FlinkSessionJob", Name: "clicks"}, spec.TargetRef)
	require.Len(t, warns, 2)
	assert.Equal(t, AnnotationJobName, warns[0].Key)
	assert.Contains(t, warns[0].Message, "applies only to a JobManager Deployment")

	_, _, err = PolicySpecFor(v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: v1alpha1.KindDeployment, Name: "wc"},
		map[string]string{AnnotationTaskManagerDeployment: "  "}, nil)
	assert.ErrorContains(t, err, AnnotationTaskManagerDeployment)
}

// An annotated FlinkSessionJob and an annotated JobManager Deployment each
// get a policy owned by them, targeting their kind; the API server accepts
// both (the CRD's CEL rules).
func TestReconcileEveryKind(t *testing.T) {
	g := newRig(t)

	sj := envtest.NewFlinkSessionJob(g.ns, "clicks")
	sj.Object["spec"] = map[string]any{
		"deploymentName":     "shared",
		"flinkConfiguration": map[string]any{"job.autoscaler.target.utilization": "0.6"},
		"job":                map[string]any{"jarURI": "local:///a.jar", "parallelism": int64(2), "upgradeMode": "savepoint"},
	}
	sj.SetAnnotations(map[string]string{AnnotationEnabled: "true", AnnotationMode: "Apply"})
	require.NoError(t, g.c.Create(g.ctx, sj))
	g.r = &Reconciler{Client: g.c, Recorder: g.rec, Kind: target.SessionJobGVK}
	g.reconcile("clicks")
	p := g.policy("clicks")
	require.NotNil(t, p)
	assert.Equal(t, v1alpha1.TargetRef{APIVersion: "flink.apache.org/v1beta1", Kind: "FlinkSessionJob", Name: "clicks"}, p.Spec.TargetRef)
	require.NotNil(t, p.Spec.Utilization)
	assert.InDelta(t, 0.6, *p.Spec.Utilization.Target, 1e-9, "the session job's own autoscaler options carry over")
	assert.True(t, metav1.IsControlledBy(p, sj))

	labels := map[string]string{"app": "wc", "component": "jobmanager"}
	jm := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "wc-jobmanager", Labels: labels, Annotations: map[string]string{
			AnnotationEnabled: "true", AnnotationTaskManagerDeployment: "wc-taskmanager", AnnotationFlinkRESTURL: "http://wc-rest:8081"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "jobmanager", Image: "flink:1.20"}}}},
		},
	}
	require.NoError(t, g.c.Create(g.ctx, jm))
	g.r = &Reconciler{Client: g.c, Recorder: g.rec, Kind: DeploymentGVK}
	g.reconcile("wc-jobmanager")
	p = g.policy("wc-jobmanager")
	require.NotNil(t, p)
	assert.Equal(t, v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "wc-jobmanager", TaskManagerDeployment: "wc-taskmanager"}, p.Spec.TargetRef)
	assert.Equal(t, v1alpha1.ModeDryRun, p.Spec.Mode)
	ref := metav1.GetControllerOf(p)
	require.NotNil(t, ref)
	assert.Equal(t, "Deployment", ref.Kind)
	assert.Equal(t, jm.UID, ref.UID)

	// Opting out deletes it.
	jm.Annotations[AnnotationEnabled] = "false"
	require.NoError(t, g.c.Update(g.ctx, jm))
	g.reconcile("wc-jobmanager")
	assert.Nil(t, g.policy("wc-jobmanager"))
}

// Under a manager, the Deployment opt-in watches metadata only, and a
// policy it owns that is deleted by hand comes back (Owns works with a
// metadata watch).
func TestDeploymentOptInUnderManager(t *testing.T) {
	g := newRig(t)
	g.underManager(&Reconciler{Recorder: record.NewFakeRecorder(100), Kind: DeploymentGVK})
	labels := map[string]string{"app": "wc", "component": "jobmanager"}
	jm := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "wc", Labels: labels, Annotations: map[string]string{AnnotationEnabled: "true"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "jobmanager", Image: "flink:1.20"}}}},
		},
	}
	require.NoError(t, g.c.Create(g.ctx, jm))
	require.Eventually(t, func() bool {
		p := g.policy("wc")
		return p != nil && p.Spec.TargetRef.Kind == v1alpha1.KindDeployment
	}, 30*time.Second, 100*time.Millisecond, "the policy appears")
	require.NoError(t, g.c.Delete(g.ctx, g.policy("wc")))
	require.Eventually(t, func() bool {
		p := g.policy("wc")
		return p != nil && p.DeletionTimestamp == nil
	}, 30*time.Second, 100*time.Millisecond, "the policy is recreated")
}

// The operator's GC and heap thresholds carry over to spec.memory; its
// default 1.0 (never exceeded) is flinkscale's 0 (off).
func TestMemoryThresholdsCarryOver(t *testing.T) {
	spec, warns, err := PolicySpec("job", nil, map[string]string{
		FlinkPrefix + "memory.gc-pressure.threshold": "0.2",
		FlinkPrefix + "memory.heap-usage.threshold":  "1.0",
		FlinkPrefix + "memory.tuning.enabled":        "true",
	})
	require.NoError(t, err)
	require.NotNil(t, spec.Memory)
	assert.InDelta(t, 0.2, *spec.Memory.MaxGCTimeRatio, 1e-12)
	assert.Zero(t, *spec.Memory.MaxHeapUsage)
	require.Len(t, warns, 1, "memory tuning has no equivalent yet")
	assert.Equal(t, FlinkPrefix+"memory.tuning.enabled", warns[0].Key)

	_, _, err = PolicySpec("job", nil, map[string]string{FlinkPrefix + "memory.gc-pressure.threshold": "1.5"})
	assert.ErrorContains(t, err, "must be a number in [0,1]")
}
