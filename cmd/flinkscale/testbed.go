//go:build !controller

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

func newTestbedCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testbed --scenario FILE [--flink 1.20|2] [--scheduler adaptive|default] [--rate-scale R] [--time-scale T] [--state-backend hashmap|rocksdb] [--dir DIR] [--hold]",
		Short: "Play a scenario on real Apache Flink and a real Kafka broker started here",
		Long: `Play a scenario on real Apache Flink and a real Kafka broker started here
as plain JVM processes (needs java 17 and mvn; docs/testbed.md); prints the
REST URL, the reporter endpoints and the bootstrap servers. Ctrl-C or the
scenario's end stops every process.`,
		Example: examplesFor("  flinkscale testbed --scenario test/testbed/scenarios/saturate-step.yaml --flink 2 --hold"),
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	fl := cmd.Flags()
	var file, flinkLine string
	var hold bool
	var opts testbed.Options
	fl.StringVar(&file, "scenario", "", "scenario file (docs/scenarios.md)")
	fl.StringVar(&flinkLine, "flink", string(testbed.Flink120), "Flink line: 1.20 or 2")
	fl.StringVar(&opts.Scheduler, "scheduler", "", "jobmanager.scheduler: adaptive or default (default: the scenario's)")
	fl.StringVar(&opts.StateBackend, "state-backend", "hashmap", "state.backend.type: hashmap or rocksdb")
	fl.Float64Var(&opts.Scale.Rate, "rate-scale", 0, "multiply arrival rates and capacities by this (0: the largest the testbed realises)")
	fl.Float64Var(&opts.Scale.Time, "time-scale", 1, "play the scenario this many times faster (load, duration, checkpoint interval)")
	fl.Float64Var(&opts.Scale.State, "state-scale", 0, "multiply state sizes by this (0: fit 64 MiB)")
	fl.IntVar(&opts.SpareTaskManagers, "spare-taskmanagers", 0, "TaskManagers to start beyond those the job needs")
	fl.StringVar(&opts.Dir, "dir", "", "keep the run's files (logs, configuration, checkpoints) here; default a temporary directory, removed at the end")
	fl.BoolVar(&hold, "hold", false, "keep everything running after the scenario ends, until interrupted")
	filesWith(cmd, "yaml", "scenario")
	directories(cmd, "dir")
	fixedValues(cmd, "flink", "1.20", "2")
	fixedValues(cmd, "scheduler", "adaptive", "default")
	fixedValues(cmd, "state-backend", "hashmap", "rocksdb")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		opts.Flink = testbed.Flink(flinkLine)
		return testbedCmd(cmd.Context(), file, opts, hold, a.stdout, a.stderr)
	}
	return cmd
}

// testbedCmd plays a scenario on real Apache Flink and a real Kafka broker
// (test/testbed, docs/testbed.md) and prints where to reach them.
func testbedCmd(ctx context.Context, file string, opts testbed.Options, hold bool, stdout, stderr io.Writer) error {
	if file == "" {
		return errors.New("testbed: --scenario is required")
	}
	s, err := scenario.Load(file)
	if err != nil {
		return err
	}
	opts.Scenario, opts.Progress = s, stdout
	tb, err := testbed.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "stopping every process of the testbed")
		if serr := tb.Stop(); serr != nil {
			fmt.Fprintln(stderr, "testbed: stopping:", serr)
		}
	}()
	fmt.Fprintf(stdout, "\n  Flink REST API:           %s\n", tb.Flink.RESTURL())
	for _, t := range tb.Flink.ReporterTargets() {
		fmt.Fprintf(stdout, "  Prometheus reporter:      %s/metrics (%s)\n", t.URL, t.Role)
	}
	fmt.Fprintf(stdout, "  Kafka bootstrap servers:  %s (consumer group %q)\n", tb.Kafka.Bootstrap(), tb.Realised.Scaled.Job.ConsumerGroup)
	fmt.Fprintf(stdout, "  job %s, files in %s\n\n", tb.JobID, tb.Dir())
	fmt.Fprintf(stdout, "playing %s for %s; Ctrl-C stops\n", s.Name, tb.Realised.Scaled.Duration)

	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.Wait(waitCtx) }()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			if ctx.Err() != nil {
				fmt.Fprintf(stdout, "interrupted at t=%s: %d records produced\n", tb.Now().Round(time.Second), tb.Producer.Total())
				return nil
			}
			fmt.Fprintf(stdout, "scenario played: %d records produced\n", tb.Producer.Total())
			if hold && ctx.Err() == nil {
				fmt.Fprintln(stdout, "holding until interrupted")
				<-ctx.Done()
			}
			return nil
		case <-tick.C:
			fmt.Fprintf(stdout, "  t=%s  %d records produced\n", tb.Now().Round(time.Second), tb.Producer.Total())
		}
	}
}
