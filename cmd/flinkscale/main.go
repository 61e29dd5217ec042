// Command flinkscale is the flinkscale command line: the Kubernetes
// controller (`controller`), recommendation reports of saved snapshots, live
// jobs and cluster objects (`recommend`, `render`), the policies' state
// (`status`; the binary is also the kubectl plugin kubectl-flinkscale), the
// replay of saved snapshots through the scaling model (`decide`), the model
// on the bundled examples (`demo`), simulated Flink jobs (`sim`), and the
// benchmarks (`bench`, `bench-scale`).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitNoChange = 0 // the model holds
	exitError    = 1 // bad input or usage
	exitScale    = 3 // the model recommends a rescale
)

// progName is how the usage text names the command: "kubectl flinkscale"
// when the binary runs as the kubectl plugin kubectl-flinkscale.
var progName = "flinkscale"

func main() {
	if base := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe"); strings.HasPrefix(base, "kubectl-flinkscale") {
		progName = "kubectl flinkscale"
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `flinkscale autoscales Apache Flink jobs on Kubernetes.

Usage:
  flinkscale controller [--kubeconfig FILE] [--namespaces a,b] [--shard-selector SEL] [--leader-elect=true]
                        [--metrics-bind-address :8080] [--health-probe-bind-address :8081] [flags]
      Run the Kubernetes controller: FlinkScalingPolicy resources and FlinkDeployments
      annotated flinkscale.io/enabled. "flinkscale controller -h" lists every flag.
  flinkscale bench [--scenario FILE]... [--dir test/scenarios] [--policies a,b] [-o table|json] [--plot DIR] [--real]
      Compare flinkscale with the Flink operator's autoscaler, KEDA's Kafka scaler, no
      autoscaler and the oracle on the scenario library, side by side in virtual time.
      --real races flinkscale, the Flink operator's standalone autoscaler (real jar) and
      no autoscaler on real Flink and Kafka (make bench-real; java 17, mvn, bin/k8s).
  flinkscale bench-scale [--jobs 1000] [--duration 5m] [--concurrency 8] [-o table|json]
      Measure one controller replica's CPU, memory, calls and decision latency with a fleet
      of simulated FlinkDeployments polled every 30 s (needs make envtest-bins).
  flinkscale recommend --snapshot FILE | --flink-url URL [--kafka-brokers B --kafka-group G] [--observe 2m]
                       | NAME [-n NAMESPACE] [--kubeconfig FILE]
                       [--policy FILE] [--history FILE] [-o table|json|yaml|markdown|html] [--save-snapshot FILE]
                       [--name NAME] [-n NAMESPACE] [--mode native|standalone]
      The recommendation report of a saved snapshot, a live job, or a FlinkScalingPolicy or FlinkDeployment
      in a cluster: per vertex current → recommended parallelism and why, the resource plan, lag, predicted
      downtime, and the patch Apply mode would send.
      Exit code 0: no change; 3: a rescale is recommended; 1: error.
  flinkscale render [-o html|table|json|yaml|markdown] FILE|-
      Render a saved report (recommend -o json, or report.json of a DryRun policy's ConfigMap)
      in another format: by default the self-contained HTML page with charts.
  flinkscale status [NAME] [-n NAMESPACE | -A] [--kubeconfig FILE] [-o table|wide|json|yaml]
      The FlinkScalingPolicies of a namespace: status, parallelism, lag, last decision and its
      reasons; with NAME, one policy described: conditions, reasons, vertices, rescales.
  flinkscale decide --snapshot FILE [--policy FILE] [--history FILE] [--now TIME] [-o text|json]
      Replay a saved snapshot through the scaling model and print the decision.
      Exit code 0: hold; 3: rescale recommended; 1: error.
  flinkscale demo [--speed 60] [--out demo-report] [--metrics-addr 127.0.0.1:8080] [--hold] [--plain] [--real]
      The whole system on this machine (make demo): a kube-apiserver and etcd, Kafka (kfake),
      three simulated Flink jobs as FlinkDeployments and the controller scaling them through a
      day of steady load, a surge and a quiet night in ~3 minutes; a live view, then a summary
      and HTML and Markdown reports in --out. Needs bin/k8s (make envtest-bins).
      --real plays two of the jobs on real Flink and Kafka instead, the day compressed 24×
      (make demo-real, ~8 minutes; needs java 17 and mvn too).
  flinkscale sim --scenario FILE [--speed 60] [--rest ADDR] [--prometheus ADDR] [--duration D]
      Serve a scenario's simulated Flink job in real time: Kafka, Flink's REST API
      and Prometheus reporter on 127.0.0.1, for manual use and end-to-end tests.
  flinkscale testbed --scenario FILE [--flink 1.20|2] [--scheduler adaptive|default] [--rate-scale R]
                     [--time-scale T] [--state-backend hashmap|rocksdb] [--dir DIR] [--hold]
      Play a scenario on real Apache Flink and a real Kafka broker started here as plain JVM
      processes (needs java 17 and mvn; docs/testbed.md); prints the REST URL, the reporter
      endpoints and the bootstrap servers. Ctrl-C or the scenario's end stops every process.
  flinkscale fidelity [--scenario FILE] [--flink 1.20|2] [-o table|json|markdown] [--dir DIR] [--real FILE]
      Play a scenario on the simulator and on real Flink with the same rescales; print both, metric by
      metric (docs/simulator.md). --real judges a recorded run against the simulator without Flink.
  flinkscale version

Installed on the PATH as kubectl-flinkscale, the binary is a kubectl plugin: kubectl flinkscale status.
`

// usageText is the usage with the program name as invoked (progName), the
// flag continuation lines kept aligned.
func usageText() string {
	if progName == "flinkscale" {
		return usage
	}
	pad := strings.Repeat(" ", len(progName)-len("flinkscale"))
	var b strings.Builder
	for _, line := range strings.SplitAfter(usage, "\n") {
		switch indent := len(line) - len(strings.TrimLeft(line, " ")); {
		case strings.HasPrefix(line, "  flinkscale "):
			line = "  " + progName + strings.TrimPrefix(line, "  flinkscale")
		case indent > 6 && strings.HasPrefix(line[indent:], "["):
			line = pad + line
		}
		b.WriteString(strings.ReplaceAll(line, `"flinkscale `, `"`+progName+" "))
	}
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return exitError
	}
	var err error
	code := exitNoChange
	switch args[0] {
	case "controller":
		ctx, stop := interruptible()
		err = controllerCmd(ctx, args[1:], stderr)
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return exitNoChange
		}
	case "bench":
		ctx, stop := interruptible()
		err = benchCmd(ctx, args[1:], stdout, stderr)
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return exitNoChange
		}
	case "bench-scale":
		ctx, stop := interruptible()
		err = benchScaleCmd(ctx, args[1:], stdout, stderr)
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return exitNoChange
		}
	case "recommend":
		ctx, stop := interruptible()
		code, err = recommend(ctx, args[1:], stdout, stderr)
		stop()
	case "render":
		code, err = renderCmd(args[1:], os.Stdin, stdout)
	case "status":
		ctx, stop := interruptible()
		err = statusCmd(ctx, args[1:], stdout, statusNow)
		stop()
	case "decide":
		code, err = decide(args[1:], stdout)
	case "demo":
		ctx, stop := interruptible()
		err = demoCmd(ctx, args[1:], stdout, stderr)
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return exitNoChange
		}
	case "sim":
		ctx, stop := interruptible()
		err = simulate(ctx, args[1:], stdout)
		stop()
	case "testbed":
		ctx, stop := interruptible()
		err = testbedCmd(ctx, args[1:], stdout, stderr)
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return exitNoChange
		}
	case "fidelity":
		ctx, stop := interruptible()
		err = fidelityCmd(ctx, args[1:], stdout, stderr)
		stop()
	case "version":
		fmt.Fprintln(stdout, "flinkscale", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText())
	default:
		err = fmt.Errorf("unknown command %q\n\n%s", args[0], usageText())
	}
	if err != nil {
		fmt.Fprintln(stderr, "flinkscale:", err)
		return exitError
	}
	return code
}

func decide(args []string, stdout io.Writer) (int, error) {
	fl := flag.NewFlagSet("decide", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	snapPath := fl.String("snapshot", "", "snapshot JSON file (docs/snapshot.md)")
	policyPath := fl.String("policy", "", "policy JSON file; default: the default policy")
	historyPath := fl.String("history", "", "history JSON file; default: none")
	nowFlag := fl.String("now", "", "decision time (RFC 3339); default: the snapshot's windowEnd")
	output := fl.String("o", "text", "output: text or json")
	if err := fl.Parse(args); err != nil {
		return exitError, fmt.Errorf("decide: %w", err)
	}
	if *snapPath == "" {
		return exitError, errors.New("decide: --snapshot is required")
	}
	if *output != "text" && *output != "json" {
		return exitError, fmt.Errorf("decide: -o must be text or json, got %q", *output)
	}
	snap, _, d, err := decideFiles(*snapPath, *policyPath, *historyPath, *nowFlag)
	if err != nil {
		return exitError, fmt.Errorf("decide: %w", err)
	}
	if *output == "json" {
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
