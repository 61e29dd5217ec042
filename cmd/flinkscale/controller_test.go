package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// `flinkscale controller` against a real API server: it becomes ready,
// takes the leader Lease, serves its probes and metrics, and stops cleanly
// (releasing the Lease) when its context ends.
func TestControllerCommandRunsAManager(t *testing.T) {
	env, _ := fixtures.StartEnv(t)
	ns := env.CreateNamespace(t, "ctl")
	metrics, probes := fixtures.FreeAddr(t), fixtures.FreeAddr(t)
	var logs fixtures.SyncBuffer

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- controllerCmd(ctx, []string{
			"--kubeconfig", env.WriteKubeconfig(t),
			"--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
			"--leader-election-namespace", ns, "--leader-election-id", "flinkscale-test",
			"--namespaces", ns + ",other", "--shard-selector", "flinkscale.io/shard=a",
		}, &logs)
	}()

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
	}, 60*time.Second, 100*time.Millisecond, "ready; logs:\n%s", &logs)
	code, _ := get("http://" + probes + "/healthz")
	assert.Equal(t, http.StatusOK, code)

	var lease coordinationv1.Lease
	require.Eventually(t, func() bool {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "flinkscale-test"}, &lease)
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	}, 60*time.Second, 100*time.Millisecond, "the leader Lease is held")

	require.Eventually(t, func() bool {
		code, body := get("http://" + metrics + "/metrics")
		return code == http.StatusOK && strings.Contains(body, `controller_runtime_reconcile_total{controller="flinkscale-policy"`) &&
			strings.Contains(body, `controller="flinkscale-optin"`)
	}, 30*time.Second, 100*time.Millisecond, "both controllers report metrics")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "logs:\n%s", &logs)
	case <-time.After(60 * time.Second):
		t.Fatal("the controller did not stop")
	}
	assert.Contains(t, logs.String(), "starting the flinkscale controller")
	// Released on cancel: the next leader need not wait the lease out.
	require.NoError(t, env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "flinkscale-test"}, &lease))
	assert.True(t, lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "", "lease released: %v", lease.Spec.HolderIdentity)
}

func TestControllerCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--shard-selector", "a in (", "--kubeconfig", "/nonexistent"},
		{"--kubeconfig", "/nonexistent/kubeconfig"},
		{"stray"},
	} {
		var logs bytes.Buffer
		err := controllerCmd(context.Background(), args, &logs)
		assert.Error(t, err, fmt.Sprint(args))
	}
}
