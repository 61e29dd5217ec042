// Command flinkscale is the flinkscale command line: the Kubernetes
// controller (`controller`), recommendation reports of saved snapshots, live
// jobs and cluster objects (`recommend`, `render`), the policies' state
// (`status`; the binary is also the kubectl plugin kubectl-flinkscale), the
// replay of saved snapshots through the scaling model (`decide`), the model
// on the bundled examples (`demo`), simulated Flink jobs (`sim`), and the
// benchmarks (`bench`, `bench-scale`).
//
// Built with -tags controller (the container image, `make image`) it has
// only what a pod needs: controller, status, recommend, render, decide,
// version and completion; the simulator, the demo, the benchmarks and the
// testbed, which live under test/, are not linked in (devcommands.go).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	// Mozilla's root certificates, used when the system has none (the
	// image has no CA bundle): HTTPS to Flink or Prometheus, Kafka TLS.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/flinkscale/flinkscale/scaling"
)

func main() {
	args := os.Args[1:]
	switch base := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe"); {
	case strings.HasPrefix(base, "kubectl_complete-flinkscale"):
		// kubectl's plugin completion runs kubectl_complete-<plugin> with
		// the words to complete; cobra answers them under __complete.
		progName = "kubectl flinkscale"
		args = append([]string{cobra.ShellCompRequestCmd}, args...)
	case strings.HasPrefix(base, "kubectl-flinkscale"):
		progName = "kubectl flinkscale"
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// decideOptions are decide's flags.
type decideOptions struct {
	snapshot, policy, history, now, output string
}

func newDecideCommand(a *app) *cobra.Command {
	var o decideOptions
	cmd := &cobra.Command{
		Use:   "decide --snapshot FILE [--policy FILE] [--history FILE] [--now TIME] [-o text|json]",
		Short: "Replay a saved snapshot through the scaling model and print the decision",
		Long: `Replay a saved snapshot through the scaling model and print the decision.

Exit code 0: hold; 3: rescale recommended; 1: error.`,
		Example: examplesFor("  flinkscale decide --snapshot scaling/examples/orders-surge.json -o json"),
		GroupID: groupInspect,
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.setCode(decide(o, a.stdout))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.snapshot, "snapshot", "", "snapshot JSON file (docs/snapshot.md)")
	fl.StringVar(&o.policy, "policy", "", "policy JSON file; default: the default policy")
	fl.StringVar(&o.history, "history", "", "history JSON file; default: none")
	fl.StringVar(&o.now, "now", "", "decision time (RFC 3339); default: the snapshot's windowEnd")
	fl.StringVarP(&o.output, "output", "o", "text", "output: text or json")
	jsonFiles(cmd, "snapshot", "policy", "history")
	fixedValues(cmd, "output", "text", "json")
	return cmd
}

func decide(o decideOptions, stdout io.Writer) (int, error) {
	if o.snapshot == "" {
		return exitError, errors.New("decide: --snapshot is required")
	}
	if o.output != "text" && o.output != "json" {
		return exitError, fmt.Errorf("decide: -o must be text or json, got %q", o.output)
	}
	snap, _, d, err := decideFiles(o.snapshot, o.policy, o.history, o.now)
	if err != nil {
		return exitError, fmt.Errorf("decide: %w", err)
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return exitError, fmt.Errorf("writing the decision: %w", err)
		}
	} else {
		printDecision(stdout, snap.JobName, d)
	}
	if d.Action == scaling.ActionScale {
		return exitScale, nil
	}
	return exitNoChange, nil
}

// decideFiles reads a snapshot, an optional policy and history, and decides
// at now (RFC 3339; default the snapshot's windowEnd).
func decideFiles(snapPath, policyPath, historyPath, now string) (scaling.Snapshot, scaling.Policy, scaling.Decision, error) {
	fail := func(err error) (scaling.Snapshot, scaling.Policy, scaling.Decision, error) {
		return scaling.Snapshot{}, scaling.Policy{}, scaling.Decision{}, err
	}
	snap, err := readFile(snapPath, scaling.ReadSnapshot)
	if err != nil {
		return fail(fmt.Errorf("reading the snapshot: %w", err))
	}
	policy, history, err := readPolicyHistory(policyPath, historyPath)
	if err != nil {
		return fail(err)
	}
	at := snap.WindowEnd
	if now != "" {
		if at, err = time.Parse(time.RFC3339, now); err != nil {
			return fail(fmt.Errorf("--now: %w", err))
		}
	}
	return snap, policy, scaling.Decide(snap, policy, history, at), nil
}

// readPolicyHistory reads an optional policy (default: the default policy)
// and an optional history.
func readPolicyHistory(policyPath, historyPath string) (scaling.Policy, scaling.History, error) {
	policy := scaling.DefaultPolicy()
	var history scaling.History
	var err error
	if policyPath != "" {
		if policy, err = readFile(policyPath, scaling.ReadPolicy); err != nil {
			return policy, history, fmt.Errorf("reading the policy: %w", err)
		}
	}
	if historyPath != "" {
		if history, err = readFile(historyPath, readHistory); err != nil {
			return policy, history, fmt.Errorf("reading the history: %w", err)
		}
	}
	return policy, history, nil
}

func readFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func readHistory(r io.Reader) (scaling.History, error) {
	var h scaling.History
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("decoding history: %w", err)
	}
	return h, nil
}

// printDecision writes a decision for a terminal.
func printDecision(w io.Writer, job string, d scaling.Decision) {
	if job == "" {
		job = "job"
	}
	fmt.Fprintf(w, "%s: %s — %s\n\n", job, d.Action, d.Summary)
	if len(d.Vertices) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERTEX\tP\tBUSY ms/s\tTRUE RATE\tTARGET\tUTIL NOW→AFTER\tLIMIT")
		for _, v := range d.Vertices {
			p := fmt.Sprint(v.Current)
			if v.Recommended != v.Current {
				p = fmt.Sprintf("%d→%d", v.Current, v.Recommended)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f%%→%.0f%%\t%s\n", truncate(nameOr(v), 40), p,
				v.BusyTimeMsPerSecond, v.TrueProcessingRate, v.TargetRate, 100*v.UtilizationNow, 100*v.UtilizationAfter, v.Limit)
		}
		tw.Flush()
		fmt.Fprintln(w)
		for _, v := range d.Vertices {
			fmt.Fprintf(w, "  %s: %s\n", truncate(nameOr(v), 40), v.Explanation)
		}
	}
	c, r := d.Current, d.Recommended
	fmt.Fprintf(w, "\nplan: %d slots on %d TaskManagers × %d slots (%.3g cores) → %d slots on %d × %d (%.3g cores)\n",
		c.Slots, c.TaskManagers, c.SlotsPerTaskManager, c.Cores, r.Slots, r.TaskManagers, r.SlotsPerTaskManager, r.Cores)
	if d.LagRecords > 0 {
		fmt.Fprintf(w, "lag: %.0f records (%.0f s of arrivals)\n", d.LagRecords, d.LagSeconds)
	}
	fmt.Fprintln(w, "reasons:")
	for _, rs := range d.Reasons {
		fmt.Fprintf(w, "  - %s\n", rs)
	}
}

func nameOr(v scaling.VertexDecision) string {
	if v.Name != "" {
		return v.Name
	}
	return v.ID
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
