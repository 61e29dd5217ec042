package testbed

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/flinkscale/flinkscale/scaling/assign"
	"github.com/flinkscale/flinkscale/test/sim"
)

// WorkloadSpec writes the Java workload's job description (a properties
// file read by io.flinkscale.testbed.Spec) for a scenario already in
// testbed units (Realised.Scaled): one Flink operator per vertex, its cost
// 1e9 / capacity nanoseconds a record, its selectivity, inputs, key-group
// shares (the simulator's, sim.KeyGroupShares) and state per key group.
func WorkloadSpec(w io.Writer, j sim.JobSpec, bootstrap string) error {
	return WorkloadSpecWithSink(w, j, bootstrap, nil)
}

// WorkloadSpecWithSink is WorkloadSpec with, when sink is not nil, the
// Kafka sink behind the terminal vertices (the sink.* keys), once the job
// is checked to deliver every record to it exactly once (see SinkOptions).
func WorkloadSpecWithSink(w io.Writer, j sim.JobSpec, bootstrap string, sink *SinkOptions) error {
	if sink != nil {
		if err := sink.validate(j); err != nil {
			return err
		}
	}
	index := map[string]int{}
	for i, v := range j.Vertices {
		index[v.Name] = i
	}
	var b strings.Builder
	p := func(k string, v any) { fmt.Fprintf(&b, "%s=%s\n", k, escape(fmt.Sprint(v))) }
	b.WriteString("# Written by flinkscale's test/testbed from a scenario; read by io.flinkscale.testbed.Spec.\n")
	p("job.name", j.Name)
	p("kafka.bootstrap", bootstrap)
	p("kafka.group", j.ConsumerGroup)
	p("checkpoint.interval.ms", j.Checkpoints.Interval.Milliseconds())
	p("checkpoint.timeout.ms", j.Checkpoints.Timeout.Milliseconds())
	p("job.costFactor", fmtFloat(CostFactor(j.TaskManager)))
	p("vertex.count", len(j.Vertices))
	// Vertices in an order where every input comes first (the Java side
	// builds streams in file order).
	order, err := topological(j)
	if err != nil {
		return err
	}
	pos := map[string]int{}
	for i, vi := range order {
		pos[j.Vertices[vi].Name] = i
	}
	for i, vi := range order {
		v := j.Vertices[vi]
		k := "vertex." + strconv.Itoa(i) + "."
		maxP := v.MaxParallelism
		if maxP == 0 {
			maxP = assign.DefaultMaxParallelism(v.Parallelism)
		}
		p(k+"name", v.Name)
		p(k+"parallelism", v.Parallelism)
		p(k+"maxParallelism", maxP)
		p(k+"costNanos", fmtFloat(1e9/v.Capacity))
		p(k+"selectivity", fmtFloat(v.Selectivity))
		if v.USL.Sigma != 0 || v.USL.Kappa != 0 {
			p(k+"usl.sigma", fmtFloat(v.USL.Sigma))
			p(k+"usl.kappa", fmtFloat(v.USL.Kappa))
		}
		if len(v.Topics) > 0 {
			p(k+"topics", strings.Join(v.Topics, ","))
		}
		if v.SlotSharingGroup != "" {
			p(k+"slotSharingGroup", v.SlotSharingGroup)
		}
		var ins []string
		keyed := false
		for _, e := range v.Inputs {
			ins = append(ins, fmt.Sprintf("%d:%s", pos[e.From], e.Ship))
			keyed = keyed || e.Ship == "HASH"
		}
		if len(ins) > 0 {
			p(k+"inputs", strings.Join(ins, ","))
		}
		if keyed {
			shares := sim.KeyGroupShares(v)
			ws := make([]string, len(shares))
			for g, s := range shares {
				ws[g] = fmtFloat(s)
			}
			p(k+"keyGroupWeights", strings.Join(ws, ","))
			if v.StateBytes > 0 {
				p(k+"stateBytesPerKeyGroup", int64(math.Ceil(v.StateBytes/float64(maxP))))
			}
		}
	}
	if sink != nil {
		p("sink.topic", sink.Topic)
		p("sink.guarantee", sink.guarantee())
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// CostFactor is how much slower each subtask runs where a TaskManager has
// more slots than cores, as the simulator models CPU contention
// (capacity × cpu/slots).
func CostFactor(tm sim.TaskManagerSpec) float64 {
	if tm.CPU > 0 && float64(tm.Slots) > tm.CPU {
		return float64(tm.Slots) / tm.CPU
	}
	return 1
}

// topological orders the vertices so that inputs come first, keeping the
// file's order where it allows (Kahn's algorithm, smallest index first).
func topological(j sim.JobSpec) ([]int, error) {
	index := map[string]int{}
	for i, v := range j.Vertices {
		index[v.Name] = i
	}
	indeg := make([]int, len(j.Vertices))
	outs := make([][]int, len(j.Vertices))
	for i, v := range j.Vertices {
		for _, e := range v.Inputs {
			from, ok := index[e.From]
			if !ok {
				return nil, fmt.Errorf("vertex %q: input %q is not a vertex", v.Name, e.From)
			}
			indeg[i]++
			outs[from] = append(outs[from], i)
		}
	}
	var ready, order []int
	for i, d := range indeg {
		if d == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		sort.Ints(ready)
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, o := range outs[i] {
			if indeg[o]--; indeg[o] == 0 {
				ready = append(ready, o)
			}
		}
	}
	if len(order) != len(j.Vertices) {
		return nil, fmt.Errorf("the job graph of %q has a cycle", j.Name)
	}
	return order, nil
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// escape writes a value as java.util.Properties reads it back: a
// backslash, a leading space and a newline escaped, and every character
// outside printable ASCII as \u escapes of its UTF-16 code units.
func escape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' && i == 0:
			b.WriteString(`\ `)
		case r == '\n':
			b.WriteString(`\n`)
		case r > 0x7e || r < 0x20:
			for _, u := range utf16(r) {
				fmt.Fprintf(&b, `\u%04x`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16(r rune) []uint16 {
	if r < 0x10000 {
		return []uint16{uint16(r)}
	}
	r -= 0x10000
	return []uint16{uint16(0xd800 + (r>>10)&0x3ff), uint16(0xdc00 + r&0x3ff)}
}
