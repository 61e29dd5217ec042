package envtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

func TestMain(m *testing.M) { Main(m) }

func TestStart(t *testing.T) {
	env := Start(t)
	ctx := context.Background()
	ns := env.CreateNamespace(t, "envtest")

	// Shared: a second Start returns the same control plane.
	assert.Same(t, env, Start(t))

	// Each CRD installed is its environment variable's file, else ours.
	for _, c := range []struct{ env, got, own, name, short string }{
		{EnvFlinkDeploymentCRD, env.FlinkDeploymentCRD, crdFile, "flinkdeployments.flink.apache.org", "flinkdep"},
		{EnvFlinkSessionJobCRD, env.FlinkSessionJobCRD, sessionJobCRDFile, "flinksessionjobs.flink.apache.org", "sessionjob"},
	} {
		t.Logf("%s CRD: %s", c.name, c.got)
		if p := os.Getenv(c.env); p != "" {
			want, err := filepath.Abs(p)
			require.NoError(t, err)
			assert.Equal(t, want, c.got)
		} else {
			assert.Equal(t, filepath.Join(root(t), c.own), c.got)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		require.NoError(t, env.Client.Get(ctx, types.NamespacedName{Name: c.name}, crd))
		assert.Equal(t, []string{c.short}, crd.Spec.Names.ShortNames)
		assert.Equal(t, "v1beta1", crd.Spec.Versions[0].Name)
		assert.Equal(t, []string{"Job Status", "Lifecycle State"}, printerColumns(crd))
	}

	nss := &corev1.NamespaceList{}
	require.NoError(t, env.Client.List(ctx, nss))
	assert.NotEmpty(t, nss.Items)

	fd := NewFlinkDeployment(ns, "orders")
	require.NoError(t, unstructured.SetNestedMap(fd.Object, map[string]any{
		"flinkVersion":       "v1_18",
		"flinkConfiguration": map[string]any{"taskmanager.numberOfTaskSlots": "2"},
		"job":                map[string]any{"jarURI": "local:///job.jar", "parallelism": int64(2), "upgradeMode": "savepoint"},
		"taskManager":        map[string]any{"replicas": int64(1)},
	}, "spec"))
	require.NoError(t, env.Client.Create(ctx, fd))

	// Status goes through the status subresource only.
	require.NoError(t, unstructured.SetNestedMap(fd.Object, map[string]any{
		"lifecycleState": "STABLE",
		"jobStatus":      map[string]any{"state": "RUNNING", "jobId": "0123456789abcdef0123456789abcdef"},
		"taskManager":    map[string]any{"replicas": int64(1), "labelSelector": "component=taskmanager,app=orders"},
	}, "status"))
	require.NoError(t, env.Client.Status().Update(ctx, fd))
	got := NewFlinkDeployment(ns, "orders")
	require.NoError(t, env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orders"}, got))
	state, _, _ := unstructured.NestedString(got.Object, "status", "lifecycleState")
	assert.Equal(t, "STABLE", state)

	// The scale subresource maps spec.taskManager.replicas.
	// (An unstructured object's subresource is read as unstructured too.)
	scale := &unstructured.Unstructured{}
	scale.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	require.NoError(t, env.Client.SubResource("scale").Get(ctx, got, scale))
	replicas, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	assert.Equal(t, int64(1), replicas)
	selector, _, _ := unstructured.NestedString(scale.Object, "status", "selector")
	assert.Equal(t, "component=taskmanager,app=orders", selector)
}

// TestFlinkSessionJob: a FlinkSessionJob's spec and status (the fields the
// fake operator writes) round-trip, through the status subresource, and a
// field the operator's CRD does not have in the status is pruned.
func TestFlinkSessionJob(t *testing.T) {
	env := Start(t)
	ctx := context.Background()
	ns := env.CreateNamespace(t, "envtest")
	key := types.NamespacedName{Namespace: ns, Name: "orders"}

	sj := NewFlinkSessionJob(ns, key.Name)
	spec := map[string]any{
		"deploymentName":     "session",
		"flinkConfiguration": map[string]any{"pipeline.jobvertex-parallelism-overrides": "bc764cd8ddf7a0cff126f51c16239658:4"},
		"job":                map[string]any{"jarURI": "local:///job.jar", "parallelism": int64(2), "upgradeMode": "savepoint", "state": "running"},
	}
	require.NoError(t, unstructured.SetNestedMap(sj.Object, spec, "spec"))
	require.NoError(t, env.Client.Create(ctx, sj))

	status := map[string]any{
		"lifecycleState":     "STABLE",
		"observedGeneration": int64(1),
		"error":              "",
		"jobStatus": map[string]any{
			"state": "RUNNING", "jobId": "0123456789abcdef0123456789abcdef", "jobName": "orders",
			"startTime": "1700000000000", "updateTime": "1700000001000", "upgradeSavepointPath": "s3://sp/savepoint-1",
			"savepointInfo": map[string]any{
				"triggerId": "", "formatType": "CANONICAL",
				"lastSavepoint": map[string]any{"location": "s3://sp/savepoint-1", "timeStamp": int64(1700000000500), "triggerType": "UPGRADE", "formatType": "CANONICAL"},
			},
		},
		"reconciliationStatus": map[string]any{
			"state": "DEPLOYED", "lastReconciledSpec": `{"spec":{}}`, "lastStableSpec": `{"spec":{}}`, "reconciliationTimestamp": int64(1700000000000),
		},
	}
	withExtra := maps.Clone(status)
	withExtra["jobManagerDeploymentStatus"] = "READY"
	require.NoError(t, unstructured.SetNestedMap(sj.Object, withExtra, "status"))
	require.NoError(t, env.Client.Status().Update(ctx, sj))

	got := NewFlinkSessionJob(ns, key.Name)
	require.NoError(t, env.Client.Get(ctx, key, got))
	gotSpec, _, _ := unstructured.NestedMap(got.Object, "spec")
	assert.Equal(t, spec, gotSpec)
	gotStatus, _, _ := unstructured.NestedMap(got.Object, "status")
	assert.Equal(t, status, gotStatus, "a session job's status has no jobManagerDeploymentStatus")
}

func printerColumns(crd *apiextensionsv1.CustomResourceDefinition) []string {
	var names []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		names = append(names, c.Name)
	}
	return names
}

func root(t *testing.T) string {
	t.Helper()
	r, err := RepoRoot()
	require.NoError(t, err)
	return r
}

func TestBinaries(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	_, missing := binaries(filepath.Join(dir, "no-repo"))
	assert.Contains(t, missing, "KUBEBUILDER_ASSETS")

	for _, n := range []string{"kube-apiserver", "etcd"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755))
	}
	got, missing := binaries(filepath.Join(dir, "no-repo"))
	assert.Empty(t, missing)
	assert.Equal(t, dir, got)
}

func TestCRDChoice(t *testing.T) {
	root := root(t)
	for _, c := range []struct {
		env, own string
		pick     func(root string) (string, string)
	}{
		{EnvFlinkDeploymentCRD, crdFile, flinkDeploymentCRD},
		{EnvFlinkSessionJobCRD, sessionJobCRDFile, flinkSessionJobCRD},
	} {
		t.Run(c.env, func(t *testing.T) {
			own := filepath.Join(root, c.own)
			assert.FileExists(t, own)

			t.Setenv(c.env, "")
			p, note := c.pick(root)
			assert.Equal(t, own, p)
			assert.Empty(t, note)

			t.Setenv(c.env, filepath.Join(t.TempDir(), "missing.yaml"))
			p, note = c.pick(root)
			assert.Equal(t, own, p)
			assert.Contains(t, note, "not readable")
			assert.Contains(t, note, c.env)

			other := filepath.Join(t.TempDir(), "crd.yaml")
			require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
			t.Setenv(c.env, other)
			p, note = c.pick(root)
			assert.Equal(t, other, p)
			assert.Empty(t, note)

			// Both choices together, with one note per unusable variable.
			t.Setenv(EnvFlinkDeploymentCRD, "/nonexistent/fd.yaml")
			t.Setenv(EnvFlinkSessionJobCRD, "/nonexistent/sj.yaml")
			files, notes := flinkCRDs(root)
			assert.Equal(t, []string{filepath.Join(root, crdFile), filepath.Join(root, sessionJobCRDFile)}, files.paths())
			assert.Len(t, notes, 2)
		})
	}
}

// tbSpy records Skipf/Fatalf and ends the goroutine, as testing.T does.
type tbSpy struct {
	testing.TB
	skipped, failed string
}

func (s *tbSpy) Helper()                   {}
func (s *tbSpy) Log(...any)                {}
func (s *tbSpy) Skipf(f string, a ...any)  { s.skipped = fmt.Sprintf(f, a...); runtime.Goexit() }
func (s *tbSpy) Fatalf(f string, a ...any) { s.failed = fmt.Sprintf(f, a...); runtime.Goexit() }

func TestMissingBinaries(t *testing.T) {
	repo := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module github.com/flinkscale/flinkscale\n"), 0o644))
	t.Chdir(repo)
	t.Setenv("KUBEBUILDER_ASSETS", "")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		spy := &tbSpy{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(spy)
		}()
		<-done
		if ci == "true" {
			assert.Contains(t, spy.failed, "CI=true")
			assert.Empty(t, spy.skipped)
		} else {
			assert.Contains(t, spy.skipped, "make envtest-bins")
			assert.Empty(t, spy.failed)
		}
		assert.Contains(t, spy.skipped+spy.failed, filepath.Join(repo, "bin/k8s"))
	}
}
