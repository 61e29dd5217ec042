package testbed

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// The sink's delivery guarantees, as the workload's spec names them.
const (
	// GuaranteeExactlyOnce is Flink's transactional Kafka sink: a
	// transaction per subtask and checkpoint, committed when the checkpoint
	// completes, so read_committed consumers see each record once, and only
	// then.
	GuaranteeExactlyOnce = "exactly-once"
	// GuaranteeAtLeastOnce flushes on checkpoints, without transactions:
	// what a restore from a checkpoint replays is written again.
	GuaranteeAtLeastOnce = "at-least-once"
)

// SinkOptions put a Kafka sink behind every terminal vertex of the workload
// (a vertex no other reads), chained into it, writing every record's id to
// Topic, so that Audit can compare the output with what the producer wrote.
// For that each record must reach the sink exactly once: every non-terminal
// vertex needs selectivity 1 and exactly one outgoing edge, and no edge may
// be BROADCAST (WorkloadSpecWithSink refuses other jobs); a terminal vertex then
// forwards every record it processes, its selectivity only having shaped
// output no one consumed.
type SinkOptions struct {
	// Topic is the output topic; Start creates it.
	Topic string
	// Guarantee is GuaranteeExactlyOnce (the default) or
	// GuaranteeAtLeastOnce.
	Guarantee string
	// Partitions of the output topic; default 1.
	Partitions int
}

// guarantee is the guarantee with its default.
func (o *SinkOptions) guarantee() string {
	if o.Guarantee == "" {
		return GuaranteeExactlyOnce
	}
	return o.Guarantee
}

func (o *SinkOptions) partitions() int {
	if o.Partitions == 0 {
		return 1
	}
	return o.Partitions
}

// validate checks the options against the job: a known guarantee, a topic
// the job does not read, and a graph that delivers each record to the sink
// exactly once.
func (o *SinkOptions) validate(j sim.JobSpec) error {
	var problems []string
	if o.Topic == "" {
		problems = append(problems, "no topic")
	}
	for _, t := range j.Topics {
		if t.Name == o.Topic {
			problems = append(problems, fmt.Sprintf("topic %q is one the job reads: it would read its own output", o.Topic))
		}
	}
	if g := o.guarantee(); g != GuaranteeExactlyOnce && g != GuaranteeAtLeastOnce {
		problems = append(problems, fmt.Sprintf("guarantee %q is not %s or %s", g, GuaranteeExactlyOnce, GuaranteeAtLeastOnce))
	}
	if o.Partitions < 0 {
		problems = append(problems, fmt.Sprintf("%d partitions", o.Partitions))
	}
	problems = append(problems, auditProblems(j)...)
	if len(problems) > 0 {
		return fmt.Errorf("testbed: sink of job %q:\n  %s", j.Name, strings.Join(problems, "\n  "))
	}
	return nil
}

// auditProblems names every vertex and edge that would drop or copy
// records on their way to the sink: a vertex with consumers whose
// selectivity is not 1 or that has more than one outgoing edge, and
// BROADCAST edges.
func auditProblems(j sim.JobSpec) []string {
	const why = "each record must reach the sink exactly once"
	outs := map[string][]string{}
	var problems []string
	for _, v := range j.Vertices {
		for _, e := range v.Inputs {
			outs[e.From] = append(outs[e.From], v.Name)
			if strings.EqualFold(e.Ship, "BROADCAST") {
				problems = append(problems, fmt.Sprintf("the BROADCAST edge from %q to %q copies each record to every subtask: %s", e.From, v.Name, why))
			}
		}
	}
	for _, v := range j.Vertices {
		to := outs[v.Name]
		if len(to) == 0 {
			continue // terminal: the sink follows it
		}
		if len(to) > 1 {
			problems = append(problems, fmt.Sprintf("vertex %q has %d outgoing edges (to %s): %s, so a vertex with consumers has exactly one",
				v.Name, len(to), strings.Join(quoteAll(to), ", "), why))
		}
		if v.Selectivity != 1 {
			problems = append(problems, fmt.Sprintf("vertex %q has consumers and selectivity %g: %s, so only a terminal vertex may drop or multiply records",
				v.Name, v.Selectivity, why))
		}
	}
	return problems
}

func quoteAll(ss []string) []string {
	out := slices.Clone(ss)
	for i, s := range out {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
