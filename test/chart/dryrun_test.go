package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/helmtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// TestServerSideDryRun applies the rendered chart, CRDs included, to a real
// kube-apiserver with `kubectl apply --server-side --dry-run=server`: the
// API server validates every object (schemas, RBAC rules, label syntax, the
// CRD's structural schema, the monitoring objects against minimal
// monitoring.coreos.com CRDs from test/crds/monitoring) without persisting.
func TestServerSideDryRun(t *testing.T) {
	helmtest.Helm(t)
	kubectl := envtest.Kubectl(t)
	root := repoRoot(t)
	env := envtest.Start(t, envtest.WithCRDPaths(
		filepath.Join(root, "config/crd"),
		filepath.Join(root, "test/crds/monitoring"),
	))
	kubeconfig := env.WriteKubeconfig(t)

	for _, tc := range []struct {
		name, ns, values string
		namespaces       []string
	}{
		{name: "defaults", ns: "flinkscale-system"},
		{name: "all features", ns: "flinkscale", values: allFeatures, namespaces: []string{"a", "b"}},
		{name: "shards", ns: "flinkscale-shards", values: shardedValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ns := range append([]string{tc.ns}, tc.namespaces...) {
				createNamespace(t, env, ns)
			}
			rendered := mustRender(t, tc.ns, tc.values, "--include-crds")
			objs := parse(t, rendered)
			file := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(file, []byte(rendered), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := helmtest.Run(t, kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--dry-run=server",
				"--field-manager", "flinkscale-chart-test", "-f", file)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kubectl apply --server-side --dry-run=server:\n%s", out)

			kinds := map[string]bool{}
			for _, o := range objs {
				kinds[o.Kind] = true
				// kubectl prints <kind>[.<group>]/<name> serverside-applied (server dry run).
				ref := strings.ToLower(o.Kind)
				if g := o.group(); g != "" {
					ref += "." + g
				}
				ref += "/" + o.Metadata.Name
				if !containsLine(out, ref+" serverside-applied (server dry run)") {
					t.Errorf("%s: %q not in the kubectl output", o, ref)
				}
			}
			want := []string{"ServiceAccount", "Service", "ConfigMap", "Role", "RoleBinding", "CustomResourceDefinition"}
			switch tc.values {
			case "":
				want = append(want, "Deployment", "ClusterRole", "ClusterRoleBinding")
			case shardedValues:
				want = append(want, "StatefulSet", "ClusterRole", "ClusterRoleBinding", "PodDisruptionBudget")
			default:
				want = append(want, "Deployment", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget")
			}
			for _, k := range want {
				if !kinds[k] {
					t.Errorf("no %s rendered", k)
				}
			}
			// Same count: nothing kubectl applied that we did not see.
			if n := strings.Count(out, "(server dry run)"); n != len(objs) {
				t.Errorf("kubectl applied %d objects, %d rendered", n, len(objs))
			}
		})
	}
}

func containsLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// createNamespace creates ns unless it exists (the Env is shared by the
// package's tests).
func createNamespace(t *testing.T, env *envtest.Env, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(fmt.Errorf("create namespace %s: %w", ns, err))
	}
}
