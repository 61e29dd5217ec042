package testbed

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
)

func TestWorkloadSpecWritesTheSink(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	var b bytes.Buffer
	// Its sink has selectivity 0 and a REBALANCE input: fine, it is the
	// terminal vertex.
	require.NoError(t, WorkloadSpecWithSink(&b, s.Job, "b:1", &SinkOptions{Topic: "audit"}))
	assert.Contains(t, b.String(), "\nsink.topic=audit\nsink.guarantee=exactly-once\n")
	b.Reset()
	require.NoError(t, WorkloadSpecWithSink(&b, s.Job, "b:1", &SinkOptions{Topic: "audit", Guarantee: GuaranteeAtLeastOnce}))
	assert.Contains(t, b.String(), "\nsink.guarantee=at-least-once\n")
	b.Reset()
	require.NoError(t, WorkloadSpecWithSink(&b, s.Job, "b:1", nil))
	assert.NotContains(t, b.String(), "sink.")
}

func TestSinkNeedsEveryRecordToReachItOnce(t *testing.T) {
	// src → mid (HASH) → out (REBALANCE); out drops everything, and may.
	base := func() sim.JobSpec {
		return sim.JobSpec{
			Name:   "j",
			Topics: []sim.TopicSpec{{Name: "in", Partitions: 2}},
			Vertices: []sim.VertexSpec{
				{Name: "Source: in", Selectivity: 1, Topics: []string{"in"}},
				{Name: "mid", Selectivity: 1, Inputs: []sim.EdgeSpec{{From: "Source: in", Ship: "HASH"}}},
				{Name: "out", Selectivity: 0, Inputs: []sim.EdgeSpec{{From: "mid", Ship: "REBALANCE"}}},
			},
		}
	}
	for _, c := range []struct {
		name string
		edit func(*sim.JobSpec, *SinkOptions)
		want []string // every problem named; none: valid
	}{
		{name: "a chain", edit: func(*sim.JobSpec, *SinkOptions) {}},
		{name: "at-least-once", edit: func(_ *sim.JobSpec, o *SinkOptions) { o.Guarantee = GuaranteeAtLeastOnce }},
		{
			name: "a filter before the end",
			edit: func(j *sim.JobSpec, _ *SinkOptions) { j.Vertices[1].Selectivity = 0.9 },
			want: []string{`vertex "mid" has consumers and selectivity 0.9`},
		},
		{
			name: "a fan-out",
			edit: func(j *sim.JobSpec, _ *SinkOptions) {
				j.Vertices = append(j.Vertices, sim.VertexSpec{Name: "side", Inputs: []sim.EdgeSpec{{From: "Source: in", Ship: "FORWARD"}}})
			},
			want: []string{`vertex "Source: in" has 2 outgoing edges (to "mid", "side")`},
		},
		{
			name: "a broadcast",
			edit: func(j *sim.JobSpec, _ *SinkOptions) { j.Vertices[2].Inputs[0].Ship = "broadcast" },
			want: []string{`the BROADCAST edge from "mid" to "out" copies each record to every subtask`},
		},
		{
			name: "everything at once",
			edit: func(j *sim.JobSpec, o *SinkOptions) {
				j.Vertices[0].Selectivity = 2
				j.Vertices[2].Inputs[0].Ship = "BROADCAST"
				o.Topic, o.Guarantee, o.Partitions = "in", "twice", -1
			},
			want: []string{
				`topic "in" is one the job reads`,
				`guarantee "twice" is not exactly-once or at-least-once`,
				"-1 partitions",
				`the BROADCAST edge from "mid" to "out"`,
				`vertex "Source: in" has consumers and selectivity 2`,
			},
		},
		{name: "no topic", edit: func(_ *sim.JobSpec, o *SinkOptions) { o.Topic = "" }, want: []string{"no topic"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, o := base(), &SinkOptions{Topic: "audit"}
			c.edit(&j, o)
			var b bytes.Buffer
			err := WorkloadSpecWithSink(&b, j, "b:1", o)
			if len(c.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), `sink of job "j"`)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Zero(t, b.Len(), "nothing written")
		})
	}
}
