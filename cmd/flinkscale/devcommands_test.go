//go:build !controller

package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad demo flags are refused before anything starts (test/demo runs the
// demo itself).
func TestDemoRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"demo", "--speed", "0.5"}, "speed 0.5: must be between 1 and 600"},
		{[]string{"demo", "--speed", "1000"}, "speed 1000: must be between 1 and 600"},
		{[]string{"demo", "--real", "--speed", "100"}, "speed 100: must be between 1 and 60 on real Flink"},
		{[]string{"demo", "--duration", "-1m"}, "must not be negative"},
		{[]string{"demo", "now"}, `unknown command "now" for "flinkscale demo"`},
		{[]string{"demo", "--bogus"}, "demo: unknown flag: --bogus\nRun 'flinkscale demo --help' for usage."},
	} {
		code, _, errOut := runCLI(tc.args...)
		assert.Equal(t, exitError, code, tc.args)
		assert.Contains(t, errOut, tc.msg, tc.args)
	}
}

func TestSimServesTheScenario(t *testing.T) {
	// A minute of step-up-3x at 600× speed for 300 ms of wall time, on
	// ephemeral ports.
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := simulate(ctx, "../../test/scenarios/step-up-3x.yaml", 600, "127.0.0.1:0", "127.0.0.1:0", 300*time.Millisecond, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "Kafka bootstrap servers: 127.0.0.1:")
	assert.Contains(t, out.String(), "Flink REST API:          http://127.0.0.1:")
	assert.Contains(t, out.String(), "stopped at")

	code, _, errOut := runCLI("sim", "--scenario", "nope.yaml")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "nope.yaml")
}
