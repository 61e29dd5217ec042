package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// fidelityCmd plays a scenario on the simulator and on real Flink and
// Kafka (test/testbed) with the same samples and rescales, and prints the
// two side by side (docs/simulator.md, "Fidelity").
func fidelityCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("fidelity", flag.ContinueOnError)
	fl.SetOutput(stderr)
	file := fl.String("scenario", "test/testbed/scenarios/saturate-step.yaml", "scenario file (docs/scenarios.md)")
	version := fl.String("flink", string(testbed.Flink120), "Flink line: 1.20 or 2")
	output := fl.String("o", "table", "output: "+strings.Join(testbed.FidelityFormats, ", "))
	dir := fl.String("dir", "", "keep the real run's files (logs, configuration, checkpoints) here; default a temporary directory, removed at the end")
	recorded := fl.String("real", "", "a recorded run (-o json): judge it against the simulator as it is now, without running Flink")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed
		}
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("fidelity: unexpected argument %q", fl.Arg(0))
	}
	if !slices.Contains(testbed.FidelityFormats, *output) {
		return fmt.Errorf("fidelity: -o must be one of %s, got %q", strings.Join(testbed.FidelityFormats, ", "), *output)
	}
	s, err := scenario.Load(*file)
	if err != nil {
		return err
	}
	var f *testbed.Fidelity
	if *recorded != "" {
		var rec testbed.Fidelity
		if rec, err = readFidelity(*recorded); err == nil {
			f, err = testbed.Rejudge(ctx, &rec, s)
		}
	} else {
		f, err = testbed.RunFidelity(ctx, testbed.FidelityOptions{
			Scenario: s, Flink: testbed.Flink(*version), Dir: *dir, Progress: stderr,
		})
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("fidelity: interrupted")
		}
		return err
	}
	return f.Write(stdout, *output)
}

// readFidelity reads a comparison written with -o json.
func readFidelity(path string) (testbed.Fidelity, error) {
	var f testbed.Fidelity
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("fidelity: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("fidelity: %s: %w", path, err)
	}
	return f, nil
}
