package target

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

func obj(t testing.TB, gvkKind, js string) *unstructured.Unstructured {
	t.Helper()
	u := New()
	if gvkKind == SessionJobGVK.Kind {
		u = NewOf(SessionJobGVK)
	}
	require.NoError(t, u.UnmarshalJSON([]byte(js)))
	return u
}

const sessionJob = `{
  "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
  "metadata": {"namespace": "ns", "name": "clicks", "generation": 2},
  "spec": {
    "deploymentName": "shared",
    "flinkConfiguration": {"pipeline.jobvertex-parallelism-overrides": "aaa:2,bbb:3", "taskmanager.numberOfTaskSlots": "8"},
    "job": {"jarURI": "local:///a.jar", "parallelism": 2, "upgradeMode": "savepoint"}
  },
  "status": {"lifecycleState": "STABLE", "jobStatus": {"jobId": "s1", "state": "RUNNING"}}
}`

func sessionCluster(mode, scheduler, version string) string {
	return `{
  "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
  "metadata": {"namespace": "ns", "name": "shared"},
  "spec": {"flinkVersion": "` + version + `", "mode": "` + mode + `",
    "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "4", "jobmanager.scheduler": "` + scheduler + `"},
    "taskManager": {"replicas": 3, "resource": {"cpu": 2}}},
  "status": {"lifecycleState": "STABLE"}
}`
}

// A session job takes the cluster's version, mode, scheduler and slots
// (its own slot count cannot change the cluster's TaskManagers), and keeps
// its own overrides as the fields flinkscale manages.
func TestReadSessionJob(t *testing.T) {
	d, err := ReadSessionJob(obj(t, SessionJobGVK.Kind, sessionJob), obj(t, GVK.Kind, sessionCluster("native", "adaptive", "v1_20")))
	require.NoError(t, err)
	assert.Equal(t, SessionJobGVK.Kind, d.Kind)
	assert.Equal(t, "shared", d.Cluster, "the REST Service is the session cluster's")
	assert.Equal(t, 4, d.Slots, "slots are the cluster's TaskManagers', not the job's configuration")
	assert.Equal(t, 3, d.TaskManagerReplicas)
	assert.True(t, d.Adaptive)
	assert.Equal(t, map[string]int{"aaa": 2, "bbb": 3}, d.Overrides)
	assert.Equal(t, Fields{Overrides: "aaa:2,bbb:3", Parallelism: 2}, d.Managed())
	assert.True(t, d.SlotsFixed())
	assert.False(t, d.TaskManagersFixed(), "a native session cluster starts TaskManagers on demand")
	assert.True(t, d.SharedCluster())

	// The plan writes the overrides only: no slots, no replicas.
	f := d.PlanFields(scaling.Plan{Parallelism: map[string]int{"aaa": 4, "bbb": 6}, SlotsPerTaskManager: 2, TaskManagers: 3}, nil)
	assert.Equal(t, Fields{Overrides: "aaa:4,bbb:6"}, f)
	u := d.ApplyObject(f)
	assert.Equal(t, SessionJobGVK, u.GroupVersionKind())
	conf, _, _ := unstructured.NestedStringMap(u.Object, "spec", "flinkConfiguration")
	assert.Equal(t, map[string]string{KeyOverrides: "aaa:4,bbb:6"}, conf)

	_, err = ReadSessionJob(obj(t, SessionJobGVK.Kind, sessionJob), obj(t, GVK.Kind, stable))
	assert.ErrorContains(t, err, "runs an application", "an application deployment is no session cluster")
}

func TestSessionJobPath(t *testing.T) {
	cases := []struct {
		mode, scheduler, version string
		want                     string
	}{
		{"native", "adaptive", "v1_18", PathInPlace},
		{"native", "adaptive", "v1_17", PathOperatorUpgrade}, // no resource-requirements API
		{"native", "default", "v1_20", PathOperatorUpgrade},
		{"standalone", "adaptive", "v1_20", PathOperatorUpgrade}, // the operator 1.15 redeploys
	}
	for _, c := range cases {
		t.Run(c.mode+"/"+c.scheduler+"/"+c.version, func(t *testing.T) {
			d, err := ReadSessionJob(obj(t, SessionJobGVK.Kind, sessionJob), obj(t, GVK.Kind, sessionCluster(c.mode, c.scheduler, c.version)))
			require.NoError(t, err)
			p, why := d.Path()
			assert.Equal(t, c.want, p, why)
			assert.Equal(t, c.mode == "standalone", d.TaskManagersFixed())
		})
	}
}

func jobManager(labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wordcount", Generation: 3, Labels: labels}}
}

func taskManagers(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "wordcount-tm"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas}, Status: appsv1.DeploymentStatus{ReadyReplicas: replicas}}
}

// Clusters without the operator: the path follows from what Kubernetes and
// Flink say.
func TestClusterPath(t *testing.T) {
	native := map[string]string{"type": LabelFlinkNativeType, "app": "wc-cluster", "component": "jobmanager"}
	adaptive := map[string]string{KeyScheduler: "adaptive"}
	reactive := map[string]string{KeyScheduler: "adaptive", KeySchedulerMode: "reactive"}
	cases := []struct {
		name    string
		labels  map[string]string
		tm      *appsv1.Deployment
		conf    map[string]string
		version string
		want    string
		fixed   bool
	}{
		{"native adaptive", native, nil, adaptive, "1.20.1", PathInPlace, false},
		{"native default scheduler", native, nil, map[string]string{}, "1.20.1", PathRecommendOnly, false},
		{"native Flink 1.17", native, nil, adaptive, "1.17.2", PathRecommendOnly, false},
		{"standalone adaptive with TaskManagers", nil, taskManagers(2), adaptive, "1.20.1", PathInPlaceAndTaskManagers, false},
		{"standalone adaptive, TaskManagers not named", nil, nil, adaptive, "2.1.0", PathInPlace, true},
		{"standalone reactive", nil, taskManagers(2), reactive, "1.20.1", PathTaskManagers, false},
		{"reactive, TaskManagers not named", nil, nil, reactive, "1.20.1", PathRecommendOnly, true},
		{"standalone default scheduler", nil, taskManagers(2), map[string]string{}, "1.20.1", PathRecommendOnly, false},
		{"execution.target says native", nil, nil, map[string]string{KeyScheduler: "adaptive", KeyExecutionTarget: "kubernetes-application"}, "1.19.0", PathInPlace, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ReadCluster(jobManager(c.labels), c.tm, v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wordcount"})
			d.ObserveFlink(FlinkView{Configuration: c.conf, Version: c.version, JobID: "j", JobState: "RUNNING", Slots: 2})
			p, why := d.Path()
			assert.Equal(t, c.want, p, why)
			assert.NotEmpty(t, why)
			assert.Equal(t, c.fixed, d.TaskManagersFixed())
			assert.Equal(t, p != PathRecommendOnly, d.RescaleInPlace(), "every path but RecommendOnly is in place")
			assert.Nil(t, d.Blocked(false), "a running job without the operator is never blocked by lifecycle or upgrade mode")
		})
	}
}

// The resource requirements stand in for the overrides: a plan already
// sent is recognised, and the TaskManager Deployment's replicas are a
// managed field when one is named.
func TestClusterFields(t *testing.T) {
	d := ReadCluster(jobManager(nil), taskManagers(2), v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wordcount", TaskManagerDeployment: "wordcount-tm"})
	assert.Equal(t, "wordcount", d.Cluster)
	d.ObserveFlink(FlinkView{Configuration: map[string]string{KeyScheduler: "adaptive"}, Version: "1.20.3", JobID: "j", JobState: "RUNNING",
		Requirements: map[string]int{"aaa": 2, "bbb": 4}, Slots: 2})
	assert.Equal(t, Fields{Overrides: "aaa:2,bbb:4", Slots: "2", TaskManagerReplicas: 2}, d.Managed())
	plan := scaling.Plan{Parallelism: map[string]int{"aaa": 3, "bbb": 6}, TaskManagers: 3, SlotsPerTaskManager: 2}
	f := d.PlanFields(plan, nil)
	assert.Equal(t, Fields{Overrides: "aaa:3,bbb:6", TaskManagerReplicas: 3}, f)
	assert.False(t, d.Says(f))
	assert.True(t, d.Says(Fields{Overrides: "bbb:4,aaa:2", TaskManagerReplicas: 2}))

	// Native mode: Flink's ResourceManager starts TaskManagers; only the
	// requirements are written.
	n := ReadCluster(jobManager(map[string]string{"type": LabelFlinkNativeType, "app": "wc"}), nil, v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wordcount"})
	assert.Equal(t, "wc", n.Cluster, "the native cluster id names the REST Service")
	assert.Equal(t, Fields{Overrides: "aaa:3,bbb:6"}, n.PlanFields(plan, nil))
}

func TestFlinkVersionTag(t *testing.T) {
	for in, want := range map[string]string{"1.20.3": "v1_20", "2.1.0": "v2_1", "1.18": "v1_18", "": "", "x": ""} {
		assert.Equal(t, want, flinkVersionTag(in), in)
	}
}

// FuzzObserveFlink: whatever a cluster's REST API says (configuration,
// version, requirements), reading it never panics, the path is one of the
// five, and every path but RecommendOnly is in place.
func FuzzObserveFlink(f *testing.F) {
	f.Add("adaptive", "reactive", "kubernetes-application", "1.20.3", "2", true, "aaa", 3)
	f.Add("default", "", "remote", "2.1", "x", false, "", 0)
	f.Add("ADAPTIVE ", "Reactive", "", "v1_18", "-1", true, "b", -4)
	f.Fuzz(func(t *testing.T, scheduler, mode, execTarget, version, slots string, tmDeployment bool, vertex string, p int) {
		var tm *appsv1.Deployment
		if tmDeployment {
			tm = taskManagers(2)
		}
		d := ReadCluster(jobManager(nil), tm, v1alpha1.TargetRef{Kind: v1alpha1.KindDeployment, Name: "wc"})
		d.ObserveFlink(FlinkView{
			Configuration: map[string]string{KeyScheduler: scheduler, KeySchedulerMode: mode, KeyExecutionTarget: execTarget, KeySlots: slots},
			Version:       version, JobID: "j", JobState: "RUNNING", Requirements: map[string]int{vertex: p},
		})
		path, why := d.Path()
		switch path {
		case PathInPlace, PathInPlaceAndTaskManagers, PathTaskManagers, PathRecommendOnly:
		default:
			t.Fatalf("path %q", path)
		}
		if why == "" {
			t.Fatal("no reason")
		}
		if d.RescaleInPlace() != (path != PathRecommendOnly) {
			t.Fatalf("path %s but in place %v", path, d.RescaleInPlace())
		}
		if d.Slots < 1 {
			t.Fatalf("%d slots", d.Slots)
		}
	})
}
