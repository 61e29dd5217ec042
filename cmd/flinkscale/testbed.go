package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// testbedCmd plays a scenario on real Apache Flink and a real Kafka broker
// (test/testbed, docs/testbed.md) and prints where to reach them.
func testbedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("testbed", flag.ContinueOnError)
	fl.SetOutput(stderr)
	file := fl.String("scenario", "", "scenario file (docs/scenarios.md)")
	version := fl.String("flink", string(testbed.Flink120), "Flink line: 1.20 or 2")
	scheduler := fl.String("scheduler", "", "jobmanager.scheduler: adaptive or default (default: the scenario's)")
	backend := fl.String("state-backend", "hashmap", "state.backend.type: hashmap or rocksdb")
	rate := fl.Float64("rate-scale", 0, "multiply arrival rates and capacities by this (0: the largest the testbed realises)")
	timeScale := fl.Float64("time-scale", 1, "play the scenario this many times faster (load, duration, checkpoint interval)")
	stateScale := fl.Float64("state-scale", 0, "multiply state sizes by this (0: fit 64 MiB)")
	spare := fl.Int("spare-taskmanagers", 0, "TaskManagers to start beyond those the job needs")
	dir := fl.String("dir", "", "keep the run's files (logs, configuration, checkpoints) here; default a temporary directory, removed at the end")
	hold := fl.Bool("hold", false, "keep everything running after the scenario ends, until interrupted")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("testbed: --scenario is required")
	}
	s, err := scenario.Load(*file)
	if err != nil {
		return err
	}
	tb, err := testbed.Start(ctx, testbed.Options{
		Scenario: s,
		Scale:    testbed.Scale{Rate: *rate, Time: *timeScale, State: *stateScale},
		Flink:    testbed.Flink(*version), Scheduler: *scheduler, StateBackend: *backend,
		SpareTaskManagers: *spare, Dir: *dir, Progress: stdout,
	})
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
			if *hold && ctx.Err() == nil {
				fmt.Fprintln(stdout, "holding until interrupted")
				<-ctx.Done()
			}
			return nil
		case <-tick.C:
			fmt.Fprintf(stdout, "  t=%s  %d records produced\n", tb.Now().Round(time.Second), tb.Producer.Total())
		}
	}
}
