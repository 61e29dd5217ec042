package controllers_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/envtest"
)

func kubectl(t *testing.T, bin, config string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--kubeconfig", config}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "kubectl %s: %s", strings.Join(args, " "), errb.String())
	return out.String()
}

// The real kubectl shows a policy's printer columns with the controller's
// status, and explains the fields from the CRD's schema.
func TestKubectlGetAndExplain(t *testing.T) {
	bin := envtest.Kubectl(t)
	w := newWorld(t, worldOptions{})
	w.run(8 * time.Minute)
	cfg := w.env.WriteKubeconfig(t)

	out := kubectl(t, bin, cfg, "get", "fsp", "-n", w.ns)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, []string{"NAME", "TARGET", "MODE", "CURRENT", "RECOMMENDED", "LAG", "READY", "AGE"}, strings.Fields(lines[0]))
	row := strings.Fields(lines[1])
	require.Len(t, row, 8, out)
	assert.Equal(t, []string{"orders", "orders", "Apply", "2/2", "2/2"}, row[:5])
	assert.Equal(t, "True", row[6])

	// The category and the long name work too.
	assert.Contains(t, kubectl(t, bin, cfg, "get", "flinkscale", "-n", w.ns), "orders")
	assert.Contains(t, kubectl(t, bin, cfg, "get", "flinkscalingpolicies.flinkscale.io", "-n", w.ns, "-o", "name"), "flinkscalingpolicy.flinkscale.io/orders")

	explain := kubectl(t, bin, cfg, "explain", "fsp.spec")
	for _, want := range []string{"targetRef", "pollingInterval", "cooldownPeriod", "allowStatelessUpgrade", "excludedPeriods", "triggers"} {
		assert.Contains(t, explain, want)
	}
	mode := kubectl(t, bin, cfg, "explain", "fsp.spec.mode")
	assert.Contains(t, mode, "DryRun")
	assert.Contains(t, kubectl(t, bin, cfg, "explain", "fsp.status.rescale.phase"), "Savepointing")
}
