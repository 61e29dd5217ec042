package controllers_test

import (
	"bytes"
	"os/exec"
	"strconv"
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
	header := []string{"NAME", "TARGET", "PATH", "MODE", "CURRENT", "RECOMMENDED", "LAG", "READY", "AGE"}
	assert.Equal(t, header, strings.Fields(lines[0]))
	// The cells by the header's columns: one may be empty (a lag of 0,
	// which the status omits: the readers keep up).
	row := map[string]string{}
	for i, name := range header {
		start, end := strings.Index(lines[0], name), len(lines[1])
		if i+1 < len(header) {
			end = min(end, strings.Index(lines[0], header[i+1]))
		}
		require.GreaterOrEqual(t, end, start, out)
		row[name] = strings.TrimSpace(lines[1][start:end])
	}
	// The orders deployment runs the default scheduler: the operator
	// upgrades it with a savepoint.
	for name, want := range map[string]string{"NAME": "orders", "TARGET": "orders", "PATH": "OperatorUpgrade", "MODE": "Apply", "CURRENT": "2/2", "RECOMMENDED": "2/2", "READY": "True"} {
		assert.Equal(t, want, row[name], "%s\n%s", name, out)
	}
	if lag := w.policy().Status.LagRecords; lag != 0 {
		assert.Equal(t, strconv.FormatInt(lag, 10), row["LAG"], out)
	} else {
		assert.Empty(t, row["LAG"], out)
	}
	assert.NotEmpty(t, row["AGE"], out)

	// -o wide adds the target's kind.
	wide := strings.Fields(strings.Split(kubectl(t, bin, cfg, "get", "fsp", "-n", w.ns, "-o", "wide"), "\n")[0])
	assert.Contains(t, wide, "KIND")

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
