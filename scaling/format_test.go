package scaling

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/scaling/examples"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFloatJSON(t *testing.T) {
	for in, want := range map[string]float64{
		`734.0`: 734, `"734.0"`: 734, `1.2345678E7`: 1.2345678e7, `"1.2345678E7"`: 1.2345678e7, `" 5 "`: 5,
	} {
		var f Float
		require.NoError(t, json.Unmarshal([]byte(in), &f), in)
		assert.Equal(t, want, float64(f), in)
	}
	for _, in := range []string{`"NaN"`, `"Infinity"`, `"+Inf"`, `"-Inf"`} {
		var f Float
		require.NoError(t, json.Unmarshal([]byte(in), &f), in)
		assert.True(t, math.IsNaN(float64(f)) || math.IsInf(float64(f), 0), in)
		b, err := json.Marshal(f)
		require.NoError(t, err)
		var back Float
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, math.IsNaN(float64(f)), math.IsNaN(float64(back)))
	}
	for _, in := range []string{`"abc"`, `true`, `[1]`, `""`} {
		var f Float
		assert.Error(t, json.Unmarshal([]byte(in), &f), in)
	}
}

func TestSlotCountAndDurationJSON(t *testing.T) {
	var r Resources
	require.NoError(t, json.Unmarshal([]byte(`{"slotsPerTaskManager":"auto"}`), &r))
	assert.Equal(t, SlotCount(0), r.SlotsPerTaskManager)
	require.NoError(t, json.Unmarshal([]byte(`{"slotsPerTaskManager":4}`), &r))
	assert.Equal(t, SlotCount(4), r.SlotsPerTaskManager)
	assert.Error(t, json.Unmarshal([]byte(`{"slotsPerTaskManager":0}`), &r))
	assert.Error(t, json.Unmarshal([]byte(`{"slotsPerTaskManager":"four"}`), &r))
	b, _ := json.Marshal(Resources{})
	assert.Contains(t, string(b), `"slotsPerTaskManager":"auto"`)

	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"1h30m"`), &d))
	assert.Equal(t, 90*time.Minute, d.Duration)
	assert.Error(t, json.Unmarshal([]byte(`"soon"`), &d))
	assert.Error(t, json.Unmarshal([]byte(`90`), &d))
}

func TestReadPolicy(t *testing.T) {
	// Absent fields keep their defaults; an explicit zero stays zero.
	p, err := ReadPolicy(strings.NewReader(`{"utilization":{"target":0.6},"catchUpDuration":"0s","behavior":{"scaleDown":{"maxFactor":4}}}`))
	require.NoError(t, err)
	def := DefaultPolicy()
	assert.Equal(t, 0.6, p.Utilization.Target)
	assert.Equal(t, def.Utilization.Max, p.Utilization.Max)
	assert.Equal(t, time.Duration(0), p.CatchUpDuration.Duration)
	assert.Equal(t, 4.0, p.Behavior.ScaleDown.MaxFactor)
	assert.Equal(t, def.Behavior.ScaleDown.StabilizationWindow, p.Behavior.ScaleDown.StabilizationWindow)

	for in, msg := range map[string]string{
		`{"utilizaton":{}}`:                          "unknown field",
		`{"utilization":{"target":1.5}}`:             "utilization.target must be in (0,1]",
		`{"minParallelism":5,"maxParallelism":2}`:    "1 ≤ minParallelism ≤ maxParallelism",
		`{"cooldownPeriod":"-1m"}`:                   "cooldownPeriod must not be negative",
		`{"vertices":[{"maxParallelism":3}]}`:        "needs an id or a name",
		`{"behavior":{"scaleUp":{"maxFactor":0.5}}}`: "maxFactor must be a finite number ≥ 1",
	} {
		_, err := ReadPolicy(strings.NewReader(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), msg, in)
	}
}

// The example snapshots are the documented format: they read
// strictly, decide as documented, and survive a round trip unchanged.
func TestSnapshotFiles(t *testing.T) {
	files, err := fs.Glob(examples.FS, "*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			raw, err := examples.FS.ReadFile(f)
			require.NoError(t, err)
			s, err := ReadSnapshot(bytes.NewReader(raw))
			require.NoError(t, err)
			out, err := json.Marshal(s)
			require.NoError(t, err)
			back, err := ReadSnapshot(bytes.NewReader(out))
			require.NoError(t, err)
			again, err := json.Marshal(back)
			require.NoError(t, err)
			assert.JSONEq(t, string(out), string(again))
			d := Decide(s, DefaultPolicy(), History{}, s.WindowEnd)
			assert.NotEmpty(t, d.Summary)
		})
	}
}

func TestReadSnapshotIsStrict(t *testing.T) {
	_, err := ReadSnapshot(strings.NewReader(`{"jobState":"RUNNING","vertices":[{"id":"a","busyTime":{}}]}`))
	assert.ErrorContains(t, err, "unknown field")
	_, err = ReadSnapshot(strings.NewReader(`{"jobState":"RUNNING"} {}`))
	assert.ErrorContains(t, err, "trailing data")
	_, err = ReadSnapshot(strings.NewReader(`{"vertices":[{"id":"a","busyTimeMsPerSecond":{"max":"lots"}}]}`))
	assert.ErrorContains(t, err, "not a number")
	_, err = ReadSnapshot(strings.NewReader(`{"version":"flinkscale.io/snapshot/v9","jobState":"RUNNING"}`))
	assert.ErrorContains(t, err, "not supported")
}

// A NaN that reached a saved snapshot replays as the same Hold.
func TestNaNSurvivesASavedSnapshot(t *testing.T) {
	s := snapshot(1, vtx{id: "a", p: 1, busy: 500, in: 10, out: 10})
	s.Vertices[0].BusyTimeMsPerSecond.Max = F(math.NaN())
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"max":"NaN"`)
	back, err := ReadSnapshot(bytes.NewReader(b))
	require.NoError(t, err)
	d := Decide(back, testPolicy(), History{}, t0)
	assert.Equal(t, []ReasonCode{ReasonNonFiniteMetric}, codes(d.Reasons))
}

// The example in docs/snapshot.md, decided with the default policy.
func TestDocumentedExample(t *testing.T) {
	f, err := examples.FS.Open("orders-surge.json")
	require.NoError(t, err)
	defer f.Close()
	s, err := ReadSnapshot(f)
	require.NoError(t, err)
	d := Decide(s, DefaultPolicy(), History{}, s.WindowEnd)
	t.Log(d.Summary)
	for _, v := range d.Vertices {
		t.Log(v.Explanation)
	}
	require.Equal(t, ActionScale, d.Action)
	assert.Equal(t, "90bea66de1c231edf33913ecd54406c1", d.Bottleneck)
}
