//go:build !controller

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/realbench"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

type benchRealArgs struct {
	dir      string
	files    []string
	policies string // "": realbench.Policies
	out      string
	plot     string
	logs     string
	replay   string // a saved report.json to print again
}

// realReport is `flinkscale bench --real -o json`: the table's report and,
// per scenario, the rival cross-check and the sink audits.
type realReport struct {
	*bench.Report
	Flink      string                                    `json:"flink"`
	Rival      string                                    `json:"rival"`
	CrossCheck map[string]*realbench.CrossCheck          `json:"crossCheck,omitempty"`
	Audits     map[string]map[string]testbed.AuditResult `json:"audits"`
	Load       map[string]string                         `json:"loadAverage"`
}

// benchRealCmd races flinkscale, the Flink project's standalone
// autoscaler and no autoscaler on real Flink and Kafka, one scenario after
// the other, the three policies of a scenario at once.
func benchRealCmd(ctx context.Context, a benchRealArgs, stdout, stderr io.Writer) error {
	scenarios, err := bench.Library(a.dir, a.files)
	if err != nil {
		return fmt.Errorf("bench --real: %w", err)
	}
	policies := realbench.Policies
	if a.policies != "" {
		policies = nil
		for _, p := range strings.Split(a.policies, ",") {
			if p = strings.TrimSpace(p); p != "" {
				policies = append(policies, p)
			}
		}
	}
	if a.replay != "" {
		return replayReal(a, scenarios, stdout, stderr)
	}
	if err := testbed.Available(); err != nil {
		return fmt.Errorf("bench --real needs java and mvn: %w", err)
	}
	root, err := envtest.RepoRoot()
	if err != nil {
		return err
	}
	if _, err := testbed.RivalJar(root); err != nil {
		return fmt.Errorf("bench --real: %w", err)
	}
	started := time.Now()
	logs := filepath.Join(a.logs, started.UTC().Format("20060102-150405"))
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	// The controller's, controller-runtime's and client-go's logs go to a
	// file beside the rival's.
	logFile, err := os.Create(filepath.Join(logs, "controller.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := zap.New(zap.WriteTo(logFile), zap.UseDevMode(false))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger.WithName("client-go"))
	fmt.Fprintf(stderr, "Starting kube-apiserver and etcd (bin/k8s) ...\n")
	env, err := envtest.StartControlPlane(envtest.WithCRDPaths(filepath.Join(root, "config", "crd")))
	if err != nil {
		return fmt.Errorf("bench --real: %w", err)
	}
	defer env.Stop()
	rr := &realReport{Flink: string(testbed.Flink120), Rival: "flink-autoscaler-standalone " + testbed.RivalRelease,
		CrossCheck: map[string]*realbench.CrossCheck{}, Audits: map[string]map[string]testbed.AuditResult{}, Load: map[string]string{}}
	var results []*bench.Result
	for _, s := range scenarios {
		fmt.Fprintf(stderr, "== %s (%s, compressed %g×)\n", s.Name, s.Duration, s.Compression)
		race, err := realbench.Run(ctx, s, realbench.Options{Env: env, Policies: policies, Dir: logs, Progress: stderr, Logger: logger})
		if err != nil {
			return fmt.Errorf("bench --real: %s: %w", s.Name, err)
		}
		results = append(results, race.Results...)
		// Each scenario's race is kept as it ends: a later failure
		// loses nothing measured.
		if err := writeJSON(filepath.Join(logs, s.Name+".json"), race); err != nil {
			return fmt.Errorf("bench --real: %w", err)
		}
		rr.Audits[s.Name], rr.Load[s.Name] = race.Audits, race.Load
		if race.CrossCheck != nil {
			rr.CrossCheck[s.Name] = race.CrossCheck
			fmt.Fprintf(stderr, "cross-check on %s: %s\n", s.Name, race.CrossCheck)
		}
	}
	if rr.Report, err = bench.Assemble(scenarios, policies, results, started); err != nil {
		return fmt.Errorf("bench --real: %w", err)
	}
	if err := writeJSON(filepath.Join(logs, "report.json"), rr); err != nil {
		return fmt.Errorf("bench --real: %w", err)
	}
	return printReal(rr, scenarios, a, logs, stdout, stderr)
}

// replayReal prints a saved run again: its results re-assembled (oracles,
// goals, expectations) by this binary.
func replayReal(a benchRealArgs, scenarios []*scenario.Scenario, stdout, stderr io.Writer) error {
	b, err := os.ReadFile(a.replay)
	if err != nil {
		return fmt.Errorf("bench --real --replay: %w", err)
	}
	var saved realReport
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("bench --real --replay: %s: %w", a.replay, err)
	}
	if saved.Report == nil {
		return fmt.Errorf("bench --real --replay: %s holds no report", a.replay)
	}
	var results []*bench.Result
	for _, r := range saved.Results {
		if r.Policy != bench.OracleName {
			results = append(results, r)
		}
	}
	elapsed := saved.Elapsed
	if saved.Report, err = bench.Assemble(scenarios, saved.Policies, results, saved.Started); err != nil {
		return fmt.Errorf("bench --real --replay: %w", err)
	}
	saved.Elapsed = elapsed
	return printReal(&saved, scenarios, a, filepath.Dir(a.replay), stdout, stderr)
}

// printReal writes the charts, then the report as JSON or as the table
// with each scenario's cross-check and audits.
func printReal(rr *realReport, scenarios []*scenario.Scenario, a benchRealArgs, logs string, stdout, stderr io.Writer) error {
	if a.plot != "" {
		paths, err := bench.PlotAll(a.plot, rr.SLO, rr.Results)
		if err != nil {
			return fmt.Errorf("bench --real: plots: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %d chart(s) into %s\n", len(paths), a.plot)
	}
	if a.out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rr)
	}
	policies := rr.Policies
	fmt.Fprintf(stdout, "flinkscale bench --real: %d scenario(s) × %s on Flink %s, %s (%s); logs and JSON in %s\n\n",
		len(scenarios), strings.Join(policies, ", "), rr.Flink, rr.Started.Format("2006-01-02"), rr.Elapsed.Round(time.Second), logs)
	if err := rr.WriteTable(stdout); err != nil {
		return err
	}
	for _, s := range scenarios {
		fmt.Fprintf(stdout, "\n%s: load average %s\n", s.Name, rr.Load[s.Name])
		if c := rr.CrossCheck[s.Name]; c != nil {
			fmt.Fprintf(stdout, "  cross-check (bench's flink-operator next to the real autoscaler): %s\n", c)
			for _, l := range c.Lines {
				fmt.Fprintf(stdout, "    %s\n", l)
			}
		}
		for _, p := range policies {
			fmt.Fprintf(stdout, "  audit %-24s %s\n", p, rr.Audits[s.Name][p])
		}
	}
	return nil
}

// writeJSON writes v, indented, to path.
func writeJSON(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	err = enc.Encode(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
