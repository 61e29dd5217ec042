package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func TestChangePoints(t *testing.T) {
	const h, m = time.Hour, time.Minute
	constant := func(rate float64, d time.Duration) scenario.Segment {
		return scenario.Segment{Kind: scenario.KindConstant, Rate: rate, For: d}
	}
	ramp := func(from, to float64, d time.Duration) scenario.Segment {
		return scenario.Segment{Kind: scenario.KindRamp, From: from, To: to, For: d}
	}
	step := func(from, to float64, at, d time.Duration) scenario.Segment {
		return scenario.Segment{Kind: scenario.KindStep, From: from, To: to, At: at, For: d}
	}
	spike := func(rate, peak float64, at, width, d time.Duration) scenario.Segment {
		return scenario.Segment{Kind: scenario.KindSpike, Rate: rate, Peak: peak, At: at, Width: width, For: d}
	}
	diurnal := func(d time.Duration) scenario.Segment {
		return scenario.Segment{Kind: scenario.KindDiurnal, Base: 300, Amplitude: 100, Period: 24 * h, For: d}
	}
	noise := scenario.Segment{Kind: scenario.KindNoise, Percent: 5, Correlation: m}
	for _, c := range []struct {
		name   string
		topics [][]scenario.Segment
		want   []time.Duration
	}{
		{"one constant: none", [][]scenario.Segment{{constant(100, 0), noise}}, nil},
		// step-up-3x: a constant hands over to another rate.
		{"constant to constant", [][]scenario.Segment{{constant(100, h), constant(300, 0)}}, []time.Duration{h}},
		{"constant to the same constant: none", [][]scenario.Segment{{constant(100, h), constant(100, 0)}}, nil},
		// A step jumps at its At.
		{"step", [][]scenario.Segment{{step(400, 100, h, 0)}}, []time.Duration{h}},
		// A step at its segment's start runs at its To from there.
		{"step at its start", [][]scenario.Segment{{constant(100, h), step(100, 300, 0, 0)}}, []time.Duration{h}},
		{"step at its start, to the previous rate: none", [][]scenario.Segment{{constant(100, h), step(300, 100, 0, 0)}}, nil},
		{"step past its segment's end: none", [][]scenario.Segment{{step(100, 300, 2*h, h), constant(100, 0)}}, nil},
		// A spike starts and ends.
		{"spike", [][]scenario.Segment{{spike(100, 400, 40*m, 3*m, 0)}}, []time.Duration{40 * m, 43 * m}},
		// A ramp's end; its start only when the rate jumps there.
		{"continuous ramp: its end", [][]scenario.Segment{{constant(100, h), ramp(100, 300, h), constant(300, 0)}}, []time.Duration{2 * h}},
		{"ramp off the previous rate: its start and end", [][]scenario.Segment{{constant(100, h), ramp(200, 300, h), constant(300, 0)}},
			[]time.Duration{h, 2 * h}},
		{"a constant off a ramp's end", [][]scenario.Segment{{ramp(100, 300, h), constant(500, 0)}}, []time.Duration{h}},
		// A diurnal segment's start and end, whatever the rates there; the
		// changes next to it count (they were lost before).
		{"constant then diurnal: its start", [][]scenario.Segment{{constant(300, h), diurnal(0)}}, []time.Duration{h}},
		{"diurnal then constant: its end", [][]scenario.Segment{{diurnal(2 * h), constant(300, 0)}}, []time.Duration{2 * h}},
		{"diurnal then a step: its end and the step", [][]scenario.Segment{{diurnal(2 * h), step(300, 600, 30*m, 0)}},
			[]time.Duration{2 * h, 2*h + 30*m}},
		{"a spike then diurnal", [][]scenario.Segment{{spike(300, 900, 10*m, 5*m, h), diurnal(h), constant(100, 0)}},
			[]time.Duration{10 * m, 15 * m, h, 2 * h}},
		{"a diurnal day from the start: none", [][]scenario.Segment{{diurnal(0), noise}}, nil},
		// Topics merge; offsets at or past the end (4h) are left out.
		{"two topics", [][]scenario.Segment{{constant(100, h), constant(200, 0)}, {constant(50, h), ramp(50, 80, 4*h)}},
			[]time.Duration{h}},
		{"at the end: none", [][]scenario.Segment{{constant(100, 4*h), constant(200, 0)}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &scenario.Scenario{Duration: 4 * h}
			for _, segs := range c.topics {
				s.Load = append(s.Load, scenario.TopicLoad{Topic: "t", Segments: segs})
			}
			assert.Equal(t, c.want, changePoints(s))
		})
	}
}
