// Package scalingtest holds checks of scaling's contract for the tests of
// the packages that feed the model (collectors, history files): what every
// decision must satisfy whatever its input. scaling's own property tests
// check the model in full.
package scalingtest

import (
	"encoding/json"
	"testing"

	"github.com/flinkscale/flinkscale/scaling"
)

// CheckDecision fails t unless d, decided on s under p, keeps the model's
// basic contract: it encodes, its action is Scale or Hold, it has a summary
// and a reason, and every vertex it changes gets a parallelism within
// [1, maxParallelism] and the policy's bounds.
func CheckDecision(t testing.TB, s scaling.Snapshot, p scaling.Policy, d scaling.Decision) {
	t.Helper()
	if _, err := json.Marshal(d); err != nil {
		t.Fatalf("decision does not marshal: %v", err)
	}
	if d.Action != scaling.ActionScale && d.Action != scaling.ActionHold {
		t.Fatalf("action %q", d.Action)
	}
	if d.Summary == "" || len(d.Reasons) == 0 {
		t.Fatalf("decision without summary or reasons: %+v", d)
	}
	maxP := map[string]int{}
	for _, v := range s.Vertices {
		maxP[v.ID] = v.MaxParallelism
	}
	for _, vd := range d.Vertices {
		if vd.Recommended == vd.Current {
			continue
		}
		if vd.Recommended < 1 || vd.Recommended > maxP[vd.ID] || vd.Recommended < p.MinParallelism || vd.Recommended > p.MaxParallelism {
			t.Fatalf("%s: recommended p=%d outside [1, %d] or the policy's [%d, %d]",
				vd.ID, vd.Recommended, maxP[vd.ID], p.MinParallelism, p.MaxParallelism)
		}
	}
}
