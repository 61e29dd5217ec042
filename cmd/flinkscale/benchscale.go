package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/test/scale"
)

// benchScaleCmd measures one controller replica managing a fleet of
// simulated FlinkDeployments (test/scale).
func benchScaleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jobs := fs.Int("jobs", 1000, "FlinkDeployments (simulated jobs of 10 vertices, one topic of 10 partitions each)")
	duration := fs.Duration("duration", 5*time.Minute, "measured steady period, after the warm-up")
	concurrency := fs.Int("concurrency", 8, "the policy controller's MaxConcurrentReconciles")
	warmup := fs.Duration("warmup", 0, "least warm-up after the controller starts (default two polling intervals; 5m makes every measured decision see a full metrics window)")
	faultyFrac := fs.Float64("faulty", 0, "fraction of jobs whose Flink REST API fails (half hang past the timeout, half answer 503), e.g. 0.1")
	flinkTimeout := fs.Duration("flink-timeout", 10*time.Second, "the controller's per-request Flink timeout")
	memprofile := fs.String("memprofile", "", "write a heap profile (go tool pprof) at the end of the steady period")
	out := fs.String("o", "table", "output: table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench-scale: unexpected arguments %q", fs.Args())
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("bench-scale: -o must be table or json, not %q", *out)
	}
	if *faultyFrac < 0 || *faultyFrac >= 1 || *flinkTimeout <= 0 {
		return fmt.Errorf("bench-scale: --faulty must be in [0, 1) and --flink-timeout positive")
	}
	if *jobs < 1 || *duration <= 0 || *concurrency < 1 {
		return fmt.Errorf("bench-scale: --jobs and --concurrency must be positive and --duration longer than 0")
	}
	rep, err := scale.Run(ctx, scale.Config{
		Jobs:         *jobs,
		Duration:     *duration,
		Concurrency:  *concurrency,
		MinWarmup:    *warmup,
		Faulty:       *faultyFrac,
		FlinkTimeout: *flinkTimeout,
		HeapProfile:  *memprofile,
		Command:      strings.Join(append([]string{"flinkscale", "bench-scale"}, args...), " "),
		Progress:     stderr,
	})
	if err != nil {
		return fmt.Errorf("bench-scale: %w", err)
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(stdout)
}
