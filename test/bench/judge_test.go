package bench

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func TestFewer(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		met  bool
	}{
		{0, 0, true},  // none of it on either side: as good as it gets
		{0, 1, true},  // less
		{1, 2, true},  // less
		{1, 1, false}, // as much is not fewer
		{2, 1, false}, // more
	} {
		assert.Equal(t, c.met, fewer(c.a, c.b), "%g vs %g", c.a, c.b)
	}
}

// A "less than" goal with both sides at zero is met.
func TestJudgeZeroAgainstZero(t *testing.T) {
	s := &scenario.Scenario{Name: "quiet"}
	rep := &Report{Policies: []string{"flinkscale", "flink-operator", "keda-lag"}, Results: []*Result{
		{Scenario: "quiet", Policy: OracleName, SlotHours: 10},
		{Scenario: "quiet", Policy: "flinkscale", SlotHours: 10},
		{Scenario: "quiet", Policy: "flink-operator", SlotHours: 12},
		{Scenario: "quiet", Policy: "keda-lag", SlotHours: 20},
	}}
	met := map[string]bool{}
	for _, g := range judge([]*scenario.Scenario{s}, rep) {
		met[g.Name] = g.Met
	}
	assert.Equal(t, map[string]bool{
		// 0 rescales vs 0.
		"fewer rescales than flink-operator (library)": true,
		// 10 < 12.
		"fewer slot-hours than flink-operator (library)": true,
		// 0 s vs 0 s.
		"less time over the SLO than keda-lag (library)": true,
		// 0 vs 1.2 × 0.
		"time over the lag SLO ≤ 1.2× the unavoidable minimum, every scenario": true,
		"no record lost, any policy": true,
	}, met)
}

// The scenarios' expect fields are judged on every policy and reported in
// the table and the JSON.
func TestJudgeExpectations(t *testing.T) {
	one, five := 1, 5*time.Minute
	ss := []*scenario.Scenario{
		{Name: "bounded", Expect: scenario.Expect{MaxRescales: &one, MaxSlotHoursRatio: 1.10, MaxTimeOverSLO: &five,
			Notes: "one rescale"}},
		{Name: "free"}, // no expectation
	}
	rep := &Report{Policies: []string{"flinkscale", "static"}, Results: []*Result{
		{Scenario: "bounded", Policy: OracleName, SlotHours: 10},
		// 2 rescales > 1 ✗; 11/10 = 1.10 ≤ 1.10 ✓; 4m ≤ 5m ✓: 2 of 3.
		{Scenario: "bounded", Policy: "flinkscale", Rescales: 2, SlotHours: 11, OverSLO: 4 * time.Minute},
		// 0 ≤ 1 ✓; 12/10 = 1.20 > 1.10 ✗; 6m > 5m ✗: 1 of 3.
		{Scenario: "bounded", Policy: "static", SlotHours: 12, OverSLO: 6 * time.Minute},
		{Scenario: "free", Policy: OracleName, SlotHours: 1},
		{Scenario: "free", Policy: "flinkscale", Rescales: 9, SlotHours: 5},
		{Scenario: "free", Policy: "static", SlotHours: 1},
	}, SLO: map[string]time.Duration{}, Notes: map[string]string{"bounded": "one rescale"}}
	rep.Expectations, rep.ExpectationsMet = judgeExpectations(ss, rep)
	assert.Equal(t, []ExpectationTally{{Policy: "flinkscale", Met: 2, Total: 3}, {Policy: "static", Met: 1, Total: 3}}, rep.ExpectationsMet)
	assert.Equal(t, []Expectation{
		{Scenario: "bounded", Policy: "flinkscale", Name: "maxRescales", Want: "≤ 1 rescale(s)", Got: "2 rescale(s)", Met: false},
		{Scenario: "bounded", Policy: "flinkscale", Name: "maxSlotHoursRatio", Want: "≤ 1.10× the oracle's slot-hours", Got: "1.10×", Met: true},
		{Scenario: "bounded", Policy: "flinkscale", Name: "maxTimeOverSLO", Want: "≤ 5m0s over the SLO", Got: "4m0s", Met: true},
		{Scenario: "bounded", Policy: "static", Name: "maxRescales", Want: "≤ 1 rescale(s)", Got: "0 rescale(s)", Met: true},
		{Scenario: "bounded", Policy: "static", Name: "maxSlotHoursRatio", Want: "≤ 1.10× the oracle's slot-hours", Got: "1.20×", Met: false},
		{Scenario: "bounded", Policy: "static", Name: "maxTimeOverSLO", Want: "≤ 5m0s over the SLO", Got: "6m0s", Met: false},
	}, rep.Expectations)

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	out := table.String()
	t.Log("\n" + out)
	assert.Contains(t, out, "expectations met (the scenarios' expect fields): flinkscale 2/3, static 1/3\n")
	assert.Contains(t, out, "MISSED  bounded under flinkscale: 2 rescale(s), expected ≤ 1 rescale(s) (maxRescales)\n")
	assert.Contains(t, out, "MISSED  bounded under static: 1.20×, expected ≤ 1.10× the oracle's slot-hours (maxSlotHoursRatio)\n")
	assert.Contains(t, out, "MISSED  bounded under static: 6m0s, expected ≤ 5m0s over the SLO (maxTimeOverSLO)\n")
	assert.NotContains(t, out, "under flinkscale: 1.10×", "a met expectation has no line")
	assert.Regexp(t, `flinkscale +2 +0 .* 2/3 *\n`, out, "the expect column")
	assert.Regexp(t, `free +oracle .* - *\n`, out, "no expectation: -")

	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Len(t, back["expectations"], 6)
	assert.Equal(t, []any{map[string]any{"policy": "flinkscale", "met": 2.0, "total": 3.0}, map[string]any{"policy": "static", "met": 1.0, "total": 3.0}},
		back["expectationsMet"])
	assert.Equal(t, map[string]any{"bounded": "one rescale"}, back["notes"])
}

// Results carry both slot counts in the JSON.
func TestResultJSONSlotHours(t *testing.T) {
	b, err := json.Marshal(&Result{SlotHours: 8, UsedSlotHours: 5, CoreHours: 8,
		Timeline: []Point{{Slots: 8, UsedSlots: 5}}, Unavoidable: []Event{{T: time.Hour, Downtime: 2 * time.Minute}}})
	require.NoError(t, err)
	for _, f := range []string{`"slotHours":8`, `"usedSlotHours":5`, `"coreHours":8`, `"slots":8`, `"usedSlots":5`, `"unavoidable":[{`} {
		assert.Contains(t, string(b), f)
	}
}
