//go:build !controller

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flinkscale/flinkscale/test/bench"
)

func newBenchCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [--scenario FILE]... [--dir test/scenarios] [--policies a,b] [-o table|json] [--plot DIR] [--real]",
		Short: "Compare flinkscale with the Flink operator's autoscaler, KEDA, no autoscaler and the oracle",
		Long: `Compare flinkscale with the Flink operator's autoscaler, KEDA's Kafka scaler,
no autoscaler and the oracle on the scenario library, side by side in
virtual time. --real races flinkscale, the Flink operator's standalone
autoscaler (real jar) and no autoscaler on real Flink and Kafka (make
bench-real; java 17, mvn, bin/k8s).`,
		Example: examplesFor(`  flinkscale bench --plot docs/benchmarks
  flinkscale bench --scenario test/scenarios/step-up-3x.yaml --policies flinkscale,operator -ojson`),
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	var o benchArgs
	fs := cmd.Flags()
	fs.StringArrayVar(&o.files, "scenario", nil, "a scenario file (repeatable; default: every scenario in --dir)")
	fs.StringVar(&o.dir, "dir", "test/scenarios", "the scenario library")
	fs.StringVar(&o.policies, "policies", strings.Join(bench.Policies, ","), "comma-separated policies to compare (the oracle always runs)")
	fs.StringVarP(&o.out, "output", "o", "table", "output: table or json")
	fs.StringVar(&o.plot, "plot", "", "write one chart per scenario (SVG: load and capacity, slots, lag, parallelism per policy) into this directory")
	fs.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "runs at once")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.real, "real", false, "race on real Flink and Kafka (test/realbench): flinkscale, the Flink operator's standalone autoscaler and no autoscaler at once, on each scenario of --dir (default test/scenarios/real)")
	fs.StringVar(&o.logs, "logs", "bench-real", "with --real: where the rival's logs and the run's JSON go")
	fs.StringVar(&o.replay, "replay", "", "with --real: print the table (and --plot the charts) of a saved run's report.json again, judged by this binary, without running anything")
	filesWith(cmd, "yaml", "scenario")
	directories(cmd, "dir", "plot", "logs")
	jsonFiles(cmd, "replay")
	fixedValues(cmd, "output", "table", "json")
	mustRegister(cmd.RegisterFlagCompletionFunc("policies", cobra.FixedCompletions(bench.Policies, cobra.ShellCompDirectiveNoFileComp)))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return benchCmd(cmd.Context(), cmd.Flags(), o, a.stdout, a.stderr)
	}
	return cmd
}

// benchArgs are bench's flags.
type benchArgs struct {
	files                                  []string
	dir, policies, out, plot, logs, replay string
	parallel                               int
	quiet, real                            bool
}

// benchCmd runs the scaling-quality benchmark: every policy on every
// scenario, side by side in one run.
func benchCmd(ctx context.Context, fs *pflag.FlagSet, o benchArgs, stdout, stderr io.Writer) error {
	if o.real {
		d := o.dir
		if !fs.Changed("dir") {
			d = "test/scenarios/real"
		}
		pol := ""
		if fs.Changed("policies") {
			pol = o.policies
		}
		return benchRealCmd(ctx, benchRealArgs{dir: d, files: o.files, policies: pol, out: o.out, plot: o.plot, logs: o.logs, replay: o.replay}, stdout, stderr)
	}
	if o.out != "table" && o.out != "json" {
		return fmt.Errorf("bench: -o must be table or json, not %q", o.out)
	}
	scenarios, err := bench.Library(o.dir, o.files)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var names []string
	for _, p := range strings.Split(o.policies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			names = append(names, p)
		}
	}
	var bar *progressBar
	if !o.quiet {
		bar = &progressBar{w: stderr, width: 30}
	}
	rep, err := bench.Compare(ctx, scenarios, names, o.parallel, func(done, total int, what string) {
		if bar != nil {
			bar.update(done, total, what)
		}
	})
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.plot != "" {
		paths, err := bench.PlotAll(o.plot, rep.SLO, rep.Results)
		if err != nil {
			return fmt.Errorf("bench: plots: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %d chart(s) into %s\n", len(paths), o.plot)
	}
	if o.out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "flinkscale bench: %d scenario(s) × %s, %s (%s)\n\n", len(scenarios), strings.Join(names, ", "),
		rep.Started.Format("2006-01-02"), rep.Elapsed.Round(time.Second))
	return rep.WriteTable(stdout)
}
