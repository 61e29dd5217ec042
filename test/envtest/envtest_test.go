package envtest

import (
	"context"
	"fmt"
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

	// The CRD installed is FLINKSCALE_FLINKDEPLOYMENT_CRD's, else ours.
	t.Logf("FlinkDeployment CRD: %s", env.FlinkDeploymentCRD)
	if p := os.Getenv(EnvFlinkDeploymentCRD); p != "" {
		want, err := filepath.Abs(p)
		require.NoError(t, err)
		assert.Equal(t, want, env.FlinkDeploymentCRD)
	} else {
		assert.Equal(t, crdFile, filepath.ToSlash(env.FlinkDeploymentCRD[len(env.FlinkDeploymentCRD)-len(crdFile):]))
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	require.NoError(t, env.Client.Get(ctx, types.NamespacedName{Name: "flinkdeployments.flink.apache.org"}, crd))
	assert.Equal(t, []string{"flinkdep"}, crd.Spec.Names.ShortNames)
	assert.Equal(t, "v1beta1", crd.Spec.Versions[0].Name)

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

func TestFlinkDeploymentCRDChoice(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	own := filepath.Join(root, crdFile)
	assert.FileExists(t, own)

	t.Setenv(EnvFlinkDeploymentCRD, "")
	p, note := flinkDeploymentCRD(root)
	assert.Equal(t, own, p)
	assert.Empty(t, note)

	t.Setenv(EnvFlinkDeploymentCRD, filepath.Join(t.TempDir(), "missing.yaml"))
	p, note = flinkDeploymentCRD(root)
	assert.Equal(t, own, p)
	assert.Contains(t, note, "not readable")

	other := filepath.Join(t.TempDir(), "crd.yaml")
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
	t.Setenv(EnvFlinkDeploymentCRD, other)
	p, note = flinkDeploymentCRD(root)
	assert.Equal(t, other, p)
	assert.Empty(t, note)
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
