package scalingtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flinkscale/flinkscale/scaling"
)

// recorder is the part of testing.TB CheckDecision uses, recording the
// first failure instead of stopping the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.failed == "" {
		r.failed = fmt.Sprintf(format, args...)
	}
}

// Each broken promise is caught, and a sound decision passes.
func TestCheckDecision(t *testing.T) {
	s := scaling.Snapshot{Vertices: []scaling.Vertex{{ID: "a", MaxParallelism: 128}}}
	p := scaling.DefaultPolicy()
	ok := scaling.Decision{Action: scaling.ActionScale, Summary: "Scale", Reasons: []scaling.Reason{{Code: scaling.ReasonOverloaded}},
		Vertices: []scaling.VertexDecision{{ID: "a", Current: 2, Recommended: 4}}}
	for _, c := range []struct {
		name string
		edit func(d *scaling.Decision)
		want string // "" passes
	}{
		{"sound", func(*scaling.Decision) {}, ""},
		{"unknown action", func(d *scaling.Decision) { d.Action = "Maybe" }, `action "Maybe"`},
		{"no reason", func(d *scaling.Decision) { d.Reasons = nil }, "without summary or reasons"},
		{"no summary", func(d *scaling.Decision) { d.Summary = "" }, "without summary or reasons"},
		{"above max parallelism", func(d *scaling.Decision) { d.Vertices[0].Recommended = 129 }, "outside [1, 128]"},
		{"zero", func(d *scaling.Decision) { d.Vertices[0].Recommended = 0 }, "outside [1, 128]"},
		{"unchanged is not checked", func(d *scaling.Decision) {
			d.Vertices[0] = scaling.VertexDecision{ID: "a", Current: 500, Recommended: 500}
		}, ""},
	} {
		d := ok
		d.Vertices = append([]scaling.VertexDecision(nil), ok.Vertices...)
		c.edit(&d)
		r := &recorder{}
		CheckDecision(r, s, p, d)
		if c.want == "" && r.failed != "" || c.want != "" && !strings.Contains(r.failed, c.want) {
			t.Errorf("%s: failure %q, want %q", c.name, r.failed, c.want)
		}
	}
}
