package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// Segment kinds.
const (
	KindConstant = "constant"
	KindRamp     = "ramp"
	KindStep     = "step"
	KindDiurnal  = "diurnal"
	KindSpike    = "spike"
	KindNoise    = "noise"
)

// Segment is one piece of a topic's load. The base kinds (constant, ramp,
// step, diurnal, spike) follow one another: each starts where the previous
// one ends, lasts For, and the last one holds to the end of the scenario
// (its For may be left out). Noise segments are overlays instead: they take
// no place in the sequence, apply from Start for For (default: to the end),
// and multiply the base rate by 1 + Percent/100 × n(t), n a smooth noise in
// [−1, 1]. Rates are records per second for the whole topic; τ below is the
// time since the segment started.
type Segment struct {
	Kind string `json:"kind"`
	// For is the segment's length (an overlay's too).
	For time.Duration `json:"for,omitempty"`

	// Rate: constant's rate; spike's rate outside the spike.
	Rate float64 `json:"rate,omitempty"`
	// From, To: ramp goes linearly from From to To over For; step is From
	// before At and To from At on.
	From float64 `json:"from,omitempty"`
	To   float64 `json:"to,omitempty"`
	// At: when a step jumps or a spike starts, after the segment's start.
	At time.Duration `json:"at,omitempty"`
	// Diurnal: Base + Amplitude·sin(2π(τ+Phase)/Period); Period defaults
	// to 24h.
	Base      float64       `json:"base,omitempty"`
	Amplitude float64       `json:"amplitude,omitempty"`
	Period    time.Duration `json:"period,omitempty"`
	Phase     time.Duration `json:"phase,omitempty"`
	// Spike: Peak during [At, At+Width), Rate otherwise.
	Peak  float64       `json:"peak,omitempty"`
	Width time.Duration `json:"width,omitempty"`
	// Noise: ±Percent (0 ≤ Percent < 100), with a correlation time
	// (default 1m), from Start (an offset from the scenario's start).
	Percent     float64       `json:"percent,omitempty"`
	Correlation time.Duration `json:"correlation,omitempty"`
	Start       time.Duration `json:"start,omitempty"`

	// set names the fields a decoded segment had; nil for a segment built
	// in Go.
	set map[string]bool
}

// kindFields lists, per kind, the fields it requires and those it accepts.
var kindFields = map[string]struct{ required, optional []string }{
	KindConstant: {required: []string{"rate"}, optional: []string{"for"}},
	KindRamp:     {required: []string{"from", "to", "for"}},
	KindStep:     {required: []string{"from", "to", "at"}, optional: []string{"for"}},
	KindDiurnal:  {required: []string{"base", "amplitude"}, optional: []string{"period", "phase", "for"}},
	KindSpike:    {required: []string{"rate", "peak", "at", "width"}, optional: []string{"for"}},
	KindNoise:    {required: []string{"percent"}, optional: []string{"correlation", "start", "for"}},
}

// Kinds returns the segment kinds, sorted.
func Kinds() []string {
	var ks []string
	for k := range kindFields {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// field returns a field's value by its YAML name: a float64 or a
// time.Duration; nil for a name that is not a segment field.
func (g *Segment) field(name string) any {
	switch name {
	case "for":
		return g.For
	case "rate":
		return g.Rate
	case "from":
		return g.From
	case "to":
		return g.To
	case "at":
		return g.At
	case "base":
		return g.Base
	case "amplitude":
		return g.Amplitude
	case "period":
		return g.Period
	case "phase":
		return g.Phase
	case "peak":
		return g.Peak
	case "width":
		return g.Width
	case "percent":
		return g.Percent
	case "correlation":
		return g.Correlation
	case "start":
		return g.Start
	}
	return nil
}

func isZero(v any) bool {
	switch x := v.(type) {
	case float64:
		return x == 0
	case time.Duration:
		return x == 0
	}
	return v == nil
}

var segmentFields = []string{"for", "rate", "from", "to", "at", "base", "amplitude", "period", "phase", "peak", "width", "percent", "correlation", "start"}

// present says whether a field was given: in the file for a decoded
// segment, by a non-zero value for one built in Go.
func (g *Segment) present(name string) bool {
	if g.set != nil {
		return g.set[name]
	}
	return !isZero(g.field(name))
}

// mark records that a decoded segment now has the field (a default).
func (g *Segment) mark(name string) {
	if g.set != nil {
		g.set[name] = true
	}
}

// UnmarshalJSON decodes strictly and remembers which fields were given, so
// that validation can tell a missing "from" from "from: 0".
func (g *Segment) UnmarshalJSON(b []byte) error {
	type plain Segment
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	*g = Segment(p)
	g.set = map[string]bool{}
	for k, v := range keys {
		if string(v) != "null" {
			g.set[k] = true
		}
	}
	return nil
}

// MarshalJSON writes the kind and the fields it uses: the required ones
// always (so that "from: 0" survives), the optional ones when given.
func (g Segment) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	k, _ := json.Marshal(g.Kind)
	b.Write(k)
	spec, known := kindFields[g.Kind]
	names := segmentFields
	if known {
		names = append(append([]string(nil), spec.required...), spec.optional...)
	}
	for _, name := range names {
		v := g.field(name)
		req := known && contains(spec.required, name)
		if !req && !g.present(name) && isZero(v) {
			continue
		}
		x, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("segment field %s: %w", name, err)
		}
		fmt.Fprintf(&b, ",%q:%s", name, x)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// value is a base segment's rate τ after its start (τ ≥ 0; past For only
// for the last segment, which holds).
func (g *Segment) value(tau time.Duration) float64 {
	switch g.Kind {
	case KindConstant:
		return g.Rate
	case KindRamp:
		if g.For <= 0 || tau >= g.For {
			return g.To
		}
		return g.From + (g.To-g.From)*(float64(tau)/float64(g.For))
	case KindStep:
		if tau < g.At {
			return g.From
		}
		return g.To
	case KindDiurnal:
		if g.Period <= 0 {
			return g.Base
		}
		// Reduce modulo the period in integers, so that the sine's
		// argument stays small and equal instants give equal values.
		x := (satAdd(tau%g.Period, g.Phase%g.Period)) % g.Period
		if x < 0 {
			x += g.Period
		}
		return g.Base + g.Amplitude*math.Sin(2*math.Pi*float64(x)/float64(g.Period))
	case KindSpike:
		if tau >= g.At && tau < satAdd(g.At, g.Width) {
			return g.Peak
		}
		return g.Rate
	}
	return 0
}
