//go:build !controller

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/realbench"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// A saved race is printed again, judged by this binary: the oracle is
// added, the goals and the scenario's expectations judged, the
// cross-check and the audits shown; nothing runs.
func TestBenchRealReplay(t *testing.T) {
	started := time.Date(2026, 12, 5, 6, 16, 0, 0, time.UTC)
	saved := realReport{
		Report: &bench.Report{Started: started, Elapsed: 13 * time.Minute, Policies: []string{"flinkscale", "static"}, Results: []*bench.Result{
			{Scenario: "real-step-up", Policy: "flinkscale", Duration: 10 * time.Minute, Rescales: 2, SlotHours: 1.151, CoreHours: 1.151, UsedSlotHours: 1.087, MaxLagSeconds: 26.7},
			{Scenario: "real-step-up", Policy: "static", Duration: 10 * time.Minute, SlotHours: 0.627, CoreHours: 0.627, OverSLO: 436 * time.Second, MaxLagSeconds: 246.9},
		}},
		Flink: "1.20", Rival: "flink-autoscaler-standalone 1.15.0",
		CrossCheck: map[string]*realbench.CrossCheck{"real-step-up": {Evaluations: 57, Agree: 56, RivalRescales: 2, AdvisorRescales: 1, Matched: 1}},
		Audits: map[string]map[string]testbed.AuditResult{"real-step-up": {
			"flinkscale": {Isolation: testbed.ReadCommitted, Produced: 311768, Read: 311768, Distinct: 311768},
			"static":     {Isolation: testbed.ReadCommitted, Produced: 311768, Read: 197176, Distinct: 197176, Missing: 114592},
		}},
		Load: map[string]string{"real-step-up": "3.40 4.90 8.02"},
	}
	b, err := json.Marshal(saved)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))

	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--real", "--replay", path, "--scenario", "../../test/scenarios/real/real-step-up.yaml"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	got := out.String()
	assert.Contains(t, got, "flinkscale bench --real: 1 scenario(s) × flinkscale, static on Flink 1.20, 2026-12-05 (13m0s)")
	assert.Regexp(t, `real-step-up\s+oracle\s+\(1\)`, got, "the oracle is added")
	// flinkscale: 2 rescales > 1 ✗, 0s ≤ 2m ✓; static: 0 ≤ 1 ✓, 7m16s > 2m ✗.
	assert.Contains(t, got, "expectations met (the scenarios' expect fields): flinkscale 1/2, static 1/2")
	assert.Contains(t, got, "56 of 57 evaluations agree (98 %)")
	assert.Contains(t, got, "missing 114592")

	code = run([]string{"bench", "--real", "--replay", filepath.Join(t.TempDir(), "none.json")}, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "bench --real --replay")
}
