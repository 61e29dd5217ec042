//go:build !controller

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

func newFidelityCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fidelity [--scenario FILE] [--flink 1.20|2] [-o table|json|markdown] [--dir DIR] [--real FILE]",
		Short: "Play a scenario on the simulator and on real Flink with the same rescales; compare them",
		Long: `Play a scenario on the simulator and on real Flink with the same rescales;
print both, metric by metric (docs/simulator.md). --real judges a recorded
run against the simulator without Flink.`,
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	fl := cmd.Flags()
	var file, flinkLine, output, dir, recorded string
	fl.StringVar(&file, "scenario", "test/testbed/scenarios/saturate-step.yaml", "scenario file (docs/scenarios.md)")
	fl.StringVar(&flinkLine, "flink", string(testbed.Flink120), "Flink line: 1.20 or 2")
	fl.StringVarP(&output, "output", "o", "table", "output: "+strings.Join(testbed.FidelityFormats, ", "))
	fl.StringVar(&dir, "dir", "", "keep the real run's files (logs, configuration, checkpoints) here; default a temporary directory, removed at the end")
	fl.StringVar(&recorded, "real", "", "a recorded run (-o json): judge it against the simulator as it is now, without running Flink")
	filesWith(cmd, "yaml", "scenario")
	jsonFiles(cmd, "real")
	directories(cmd, "dir")
	fixedValues(cmd, "flink", "1.20", "2")
	fixedValues(cmd, "output", testbed.FidelityFormats...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return fidelityCmd(cmd.Context(), file, flinkLine, output, dir, recorded, a.stdout, a.stderr)
	}
	return cmd
}

// fidelityCmd plays a scenario on the simulator and on real Flink and
// Kafka (test/testbed) with the same samples and rescales, and prints the
// two side by side (docs/simulator.md, "Fidelity").
func fidelityCmd(ctx context.Context, file, flinkLine, output, dir, recorded string, stdout, stderr io.Writer) error {
	if !slices.Contains(testbed.FidelityFormats, output) {
		return fmt.Errorf("fidelity: -o must be one of %s, got %q", strings.Join(testbed.FidelityFormats, ", "), output)
	}
	s, err := scenario.Load(file)
	if err != nil {
		return err
	}
	var f *testbed.Fidelity
	if recorded != "" {
		var rec testbed.Fidelity
		if rec, err = readFidelity(recorded); err == nil {
			f, err = testbed.Rejudge(ctx, &rec, s)
		}
	} else {
		f, err = testbed.RunFidelity(ctx, testbed.FidelityOptions{
			Scenario: s, Flink: testbed.Flink(flinkLine), Dir: dir, Progress: stderr,
		})
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("fidelity: interrupted")
		}
		return err
	}
	return f.Write(stdout, output)
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
