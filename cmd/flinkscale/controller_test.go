package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// controllerCmd runs `flinkscale controller args` until ctx ends, logging
// to stderr.
func controllerCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cmd := newControllerCommand(&app{stdout: io.Discard, stderr: stderr})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(ctx)
}

// startController runs `flinkscale controller args` in the background;
// stop cancels it and fails t unless it returns nil within a minute.
func startController(t *testing.T, args ...string) (logs *fixtures.SyncBuffer, stop func()) {
	logs = &fixtures.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- controllerCmd(ctx, args, logs) }()
	return logs, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "logs:\n%s", logs)
		case <-time.After(60 * time.Second):
			t.Fatal("the controller did not stop")
		}
	}
}

// metricsBody is the metrics endpoint's text ("" when unreachable).
func metricsBody(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// `flinkscale controller` against a real API server: it becomes ready,
// takes the leader Lease, serves its probes and metrics, and stops cleanly
// (releasing the Lease) when its context ends.
func TestControllerCommandRunsAManager(t *testing.T) {
	env, _ := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "ctl")
	metrics, probes := fixtures.FreeAddr(t), fixtures.FreeAddr(t)
	ctx := context.Background()
	logs, stop := startController(t,
		"--kubeconfig", env.WriteKubeconfig(t),
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
		"--leader-election-namespace", ns, "--leader-election-id", "flinkscale-test",
		"--namespaces", ns+",other", "--shard-selector", "flinkscale.io/shard=a")

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool {
		code, _ := get("http://" + probes + "/readyz")
		return code == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "ready; logs:\n%s", logs)
	code, _ := get("http://" + probes + "/healthz")
	assert.Equal(t, http.StatusOK, code)

	var lease coordinationv1.Lease
	require.Eventually(t, func() bool {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "flinkscale-test"}, &lease)
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	}, 60*time.Second, 100*time.Millisecond, "the leader Lease is held")

	require.Eventually(t, func() bool {
		body := metricsBody(metrics)
		return strings.Contains(body, `controller_runtime_reconcile_total{controller="flinkscale-policy"`) &&
			strings.Contains(body, `controller="flinkscale-optin"`)
	}, 30*time.Second, 100*time.Millisecond, "both controllers report metrics")

	stop()
	assert.Contains(t, logs.String(), "starting the flinkscale controller")
	// Released on cancel: the next leader need not wait the lease out.
	require.NoError(t, env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "flinkscale-test"}, &lease))
	assert.True(t, lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "", "lease released: %v", lease.Spec.HolderIdentity)
}

func TestControllerCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--shard-selector", "a in (", "--kubeconfig", "/nonexistent"},
		{"--kubeconfig", "/nonexistent/kubeconfig"},
		{"--shards", "0"},
		{"stray"},
	} {
		var logs bytes.Buffer
		err := controllerCmd(context.Background(), args, &logs)
		assert.Error(t, err, fmt.Sprint(args))
	}
}

// buildBinary builds ./cmd/flinkscale into dir as `make image` does
// (static, -trimpath, stripped, the version stamped) with the build tags,
// and returns its path.
func buildBinary(t *testing.T, dir, versionStamp string, tags ...string) string {
	t.Helper()
	root, err := envtest.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(dir, "flinkscale")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=" + versionStamp, "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.CommandContext(t.Context(), "go", append(args, "./cmd/flinkscale")...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// The controller image's binary (-tags controller): the commands a pod
// needs and nothing from test/; a SIGTERM, as the kubelet sends on a
// rolling update, stops it gracefully: exit 0 and the Lease released.
func TestControllerBinary(t *testing.T) {
	root, err := envtest.RepoRoot()
	require.NoError(t, err)
	list := exec.Command("go", "list", "-deps", "-tags", "controller", "./cmd/flinkscale")
	list.Dir = root
	deps, err := list.Output()
	require.NoError(t, err)
	for _, p := range strings.Fields(string(deps)) {
		assert.False(t, strings.HasPrefix(p, "github.com/flinkscale/flinkscale/test/"), "the controller build links %s", p)
		assert.NotEqual(t, "testing", p, "the controller build links the testing package")
	}

	bin := buildBinary(t, t.TempDir(), "v0.0.0-test", "controller")
	st, err := os.Stat(bin)
	require.NoError(t, err)
	t.Logf("controller binary (-tags controller, -s -w): %.1f MiB", float64(st.Size())/(1<<20))

	runBin := func(args ...string) (int, string, string) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), out.String(), errOut.String()
		}
		require.NoError(t, err)
		return 0, out.String(), errOut.String()
	}
	code, out, errOut := runBin("version", "-ojson")
	require.Equal(t, 0, code, errOut)
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "v0.0.0-test", v.Version)
	assert.Equal(t, "controller", v.Build)

	code, out, _ = runBin("--help")
	require.Equal(t, 0, code)
	for _, c := range []string{"controller", "status", "recommend", "render", "decide", "version", "completion"} {
		assert.Contains(t, out, "\n  "+c+" ", c)
	}
	for _, c := range []string{"sim", "demo", "bench", "bench-scale", "testbed", "fidelity"} {
		assert.NotContains(t, out, "\n  "+c+" ", c)
		code, _, errOut := runBin(c, "--help")
		assert.Equal(t, exitError, code, c)
		assert.Contains(t, errOut, `unknown command "`+c+`" for "flinkscale"`)
	}
	// Exit codes as the full build's: 3 for a recommended rescale.
	code, _, errOut = runBin("decide", "--snapshot", filepath.Join(root, "scaling/examples/orders-surge.json"))
	assert.Equal(t, exitScale, code, errOut)

	env, _ := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "sigterm")
	kubeconfig := env.WriteKubeconfig(t)
	// controller runs `flinkscale controller args` with env added, waits
	// until the Lease key names a holder, runs held, then sends SIGTERM
	// and expects exit 0 and the Lease released.
	controller := func(key types.NamespacedName, env2 []string, held func(logs fmt.Stringer), args ...string) *fixtures.SyncBuffer {
		ctl := exec.Command(bin, append([]string{"controller", "--kubeconfig", kubeconfig,
			"--health-probe-bind-address", fixtures.FreeAddr(t), "--leader-election-namespace", ns, "--namespaces", ns}, args...)...)
		ctl.Env = append(os.Environ(), env2...)
		logs := &fixtures.SyncBuffer{}
		ctl.Stdout, ctl.Stderr = logs, logs
		require.NoError(t, ctl.Start())
		exited := make(chan error, 1)
		go func() { exited <- ctl.Wait() }()
		t.Cleanup(func() {
			_ = ctl.Process.Kill()
			<-exited
		})
		var lease coordinationv1.Lease
		require.Eventually(t, func() bool {
			err := env.Client.Get(t.Context(), key, &lease)
			return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
		}, 60*time.Second, 100*time.Millisecond, "the Lease %s is held; logs:\n%s", key.Name, logs)
		if held != nil {
			held(logs)
		}

		require.NoError(t, ctl.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			require.NoError(t, err, "exit code 0 after SIGTERM; logs:\n%s", logs)
		case <-time.After(45 * time.Second):
			t.Fatalf("the controller did not stop on SIGTERM; logs:\n%s", logs)
		}
		require.NoError(t, env.Client.Get(t.Context(), key, &lease))
		assert.True(t, lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "", "lease %s released on SIGTERM: %v", key.Name, lease.Spec.HolderIdentity)
		return logs
	}
	controller(types.NamespacedName{Namespace: ns, Name: "flinkscale-sigterm"}, nil, nil,
		"--metrics-bind-address", "0", "--leader-election-id", "flinkscale-sigterm")

	// As the chart's StatefulSet runs it (--shards 2, the identity from
	// $POD_NAME): the pod ordinal's shard Lease, not the leader's, and
	// flinkscale_shard_owned says so while it holds it.
	metrics := fixtures.FreeAddr(t)
	owned := func(logs fmt.Stringer) {
		require.Eventually(t, func() bool {
			b := metricsBody(metrics)
			return strings.Contains(b, `flinkscale_shard_owned{shard="1"} 1`) && strings.Contains(b, `flinkscale_shard_owned{shard="0"} 0`)
		}, 30*time.Second, 100*time.Millisecond, "flinkscale_shard_owned; logs:\n%s", logs)
	}
	logs := controller(types.NamespacedName{Namespace: ns, Name: "flinkscale-shards-shard-1"}, []string{"POD_NAME=flinkscale-1"}, owned,
		"--metrics-bind-address", metrics, "--leader-election-id", "flinkscale-shards", "--shards", "2")
	err = env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "flinkscale-shards"}, &coordinationv1.Lease{})
	assert.True(t, apierrors.IsNotFound(err), "no leader election with --shards 2: %v", err)
	assert.Contains(t, logs.String(), `"identity":"flinkscale-1"`)
}
