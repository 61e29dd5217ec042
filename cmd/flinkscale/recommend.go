package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/flinkscale/flinkscale/controllers/report"
)

// recommend writes the recommendation report of a saved snapshot (the live
// and in-cluster modes come next). Exit codes: 0 no change, 3 a rescale is
// recommended, 1 an error.
func recommend(args []string, stdout io.Writer) (int, error) {
	fl := flag.NewFlagSet("recommend", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	snapPath := fl.String("snapshot", "", "snapshot JSON file to replay (docs/snapshot.md)")
	policyPath := fl.String("policy", "", "policy JSON file; default: the default policy")
	historyPath := fl.String("history", "", "history JSON file; default: none")
	nowFlag := fl.String("now", "", "decision time (RFC 3339); default: the snapshot's windowEnd")
	output := fl.String("o", "table", "output: table, json, yaml or markdown")
	name := fl.String("name", "", "the FlinkDeployment's name, for the patch (default: the job name)")
	namespace := fl.String("n", "", "the FlinkDeployment's namespace, for the patch")
	mode := fl.String("mode", "native", "the deployment mode (native or standalone): which fields the patch sets")
	if err := fl.Parse(args); err != nil {
		return exitError, fmt.Errorf("recommend: %w", err)
	}
	if *snapPath == "" {
		return exitError, errors.New("recommend: --snapshot is required (live and in-cluster modes are not built yet)")
	}
	switch *output {
	case "table", "json", "yaml", "markdown":
	default:
		return exitError, fmt.Errorf("recommend: -o must be table, json, yaml or markdown, got %q", *output)
	}
	if *mode != "native" && *mode != "standalone" {
		return exitError, fmt.Errorf("recommend: --mode must be native or standalone, got %q", *mode)
	}
	snap, d, err := decideFiles(*snapPath, *policyPath, *historyPath, *nowFlag)
	if err != nil {
		return exitError, fmt.Errorf("recommend: %w", err)
	}
	r := report.New(d, snap, report.Options{Source: "snapshot " + filepath.Base(*snapPath), Name: *name, Namespace: *namespace, Mode: *mode})
	if err := r.Write(stdout, *output); err != nil {
		return exitError, fmt.Errorf("recommend: writing the report: %w", err)
	}
	if r.Change {
		return exitScale, nil
	}
	return exitNoChange, nil
}
