// Package helmtest runs the Helm binary `make helm` builds (bin/helm) on
// the project's chart, for the tests that render it (test/chart,
// test/security).
package helmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/test/envtest"
)

// The chart, relative to the repository root, and the release name the
// tests render it as.
const (
	ChartDir    = "charts/flinkscale"
	ReleaseName = "flinkscale"
)

// RepoRoot is the repository root (envtest.RepoRoot), failing t if none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// Helm is bin/helm, built by `make helm`; missing, t skips, or fails under
// CI=true.
func Helm(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "bin", "helm")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: run make helm (CI=true, so this fails instead of skipping)", p)
	}
	t.Skipf("%s not found: run make helm", p)
	return ""
}

// Run runs a command (helm, kubectl) from the repository root, with Helm's
// cache, config and data in a temporary directory rather than $HOME, and
// returns its stdout; the error carries its stderr.
func Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = RepoRoot(t)
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"HELM_DATA_HOME="+filepath.Join(tmp, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// ValuesFile writes values into a temporary file and returns its path.
func ValuesFile(t testing.TB, values string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Template runs helm template on the chart in namespace ns with values
// (YAML; "" for the defaults) and extra flags, and returns the manifests.
func Template(t testing.TB, ns, values string, flags ...string) (string, error) {
	t.Helper()
	args := []string{"template", ReleaseName, ChartDir, "--namespace", ns}
	if values != "" {
		args = append(args, "-f", ValuesFile(t, values))
	}
	return Run(t, Helm(t), append(args, flags...)...)
}
