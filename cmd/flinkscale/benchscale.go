//go:build !controller

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flinkscale/flinkscale/test/scale"
)

func newBenchScaleCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench-scale [--jobs 1000] [--duration 5m] [--concurrency 8] [-o table|json]",
		Short: "Measure one controller replica's cost with a fleet of simulated FlinkDeployments",
		Long: `Measure one controller replica's CPU, memory, calls and decision latency
with a fleet of simulated FlinkDeployments polled every 30 s (needs make
envtest-bins).`,
		Example: examplesFor("  flinkscale bench-scale --jobs 1000 --duration 5m --warmup 5m --faulty 0.1"),
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	var o benchScaleArgs
	fs := cmd.Flags()
	fs.IntVar(&o.jobs, "jobs", 1000, "FlinkDeployments (simulated jobs of 10 vertices, one topic of 10 partitions each)")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "measured steady period, after the warm-up")
	fs.IntVar(&o.concurrency, "concurrency", 8, "the policy controller's MaxConcurrentReconciles")
	fs.DurationVar(&o.warmup, "warmup", 0, "least warm-up after the controller starts (default two polling intervals; 5m makes every measured decision see a full metrics window)")
	fs.Float64Var(&o.faulty, "faulty", 0, "fraction of jobs whose Flink REST API fails (half hang past the timeout, half answer 503), e.g. 0.1")
	fs.DurationVar(&o.flinkTimeout, "flink-timeout", 10*time.Second, "the controller's per-request Flink timeout")
	fs.IntVar(&o.replicas, "replicas", 1, "controller replicas sharing the fleet through as many shard Leases (as flinkscale controller --shards)")
	fs.DurationVar(&o.killAfter, "kill-after", 0, "with --replicas above 1: kill the last replica this long into the steady period (no Lease released, as a crashed pod)")
	fs.DurationVar(&o.pollingInterval, "polling-interval", 30*time.Second, "every policy's pollingInterval")
	fs.BoolVar(&o.vertexDetail, "vertex-detail-metrics", true, "every policy exports its per-vertex detail metrics (as flinkscale controller's flag)")
	fs.BoolVar(&o.sharedHost, "shared-jobmanager-host", false, "every job's REST URL names the fleet's one address (the method before 2026-12-06); by default each JobManager has a host name of its own, so the controller's HTTP client keeps its connections per JobManager as against real clusters")
	fs.BoolVar(&o.fleetInProcess, "fleet-in-process", false, "run the simulated fleet in the controller's process (the method before 2026-12-06: the controller's cost is then the process's less the simulator measured alone)")
	fs.BoolVar(&o.backfill, "backfill-history", true, "after the warm-up, extend every policy's status history to what 35 minutes of polls leave (the model's longest window), so that the steady period costs what it does for a controller that has run for an hour")
	fs.StringVar(&o.containerMemory, "container-memory-limit", "", "run the controller as in a container with this memory limit (e.g. 256Mi): its Go memory limit is 90% of it, as flinkscale controller sets it (the fleet's process is not limited)")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile (go tool pprof) at the end of the steady period")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the steady period")
	fs.StringVarP(&o.out, "output", "o", "table", "output: table or json")
	fixedValues(cmd, "output", "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.command = commandLine(cmd)
		return benchScaleCmd(cmd.Context(), o, a.stdout, a.stderr)
	}
	return cmd
}

// newBenchScaleFleetCommand is the process bench-scale starts to serve
// its simulated fleet (scale.ServeFleet), apart from the controller's.
func newBenchScaleFleetCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "bench-scale-fleet --jobs N [--faulty F]",
		Short:  "Serve bench-scale's simulated fleet until stdin closes (started by bench-scale)",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	var jobs int
	var faulty float64
	cmd.Flags().IntVar(&jobs, "jobs", 1000, "simulated jobs")
	cmd.Flags().Float64Var(&faulty, "faulty", 0, "fraction of jobs whose Flink REST API fails")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return scale.ServeFleet(cmd.Context(), jobs, faulty, a.stdin, a.stdout)
	}
	return cmd
}

// benchScaleArgs are bench-scale's flags, and the command line to record.
type benchScaleArgs struct {
	jobs, concurrency, replicas                        int
	duration, warmup, flinkTimeout                     time.Duration
	killAfter, pollingInterval                         time.Duration
	vertexDetail, fleetInProcess, sharedHost, backfill bool
	faulty                                             float64
	memprofile, cpuprofile, out, command               string
	containerMemory                                    string
}

// benchScaleCmd measures one controller replica managing a fleet of
// simulated FlinkDeployments (test/scale).
func benchScaleCmd(ctx context.Context, o benchScaleArgs, stdout, stderr io.Writer) error {
	if o.out != "table" && o.out != "json" {
		return fmt.Errorf("bench-scale: -o must be table or json, not %q", o.out)
	}
	if o.faulty < 0 || o.faulty >= 1 || o.flinkTimeout <= 0 {
		return fmt.Errorf("bench-scale: --faulty must be in [0, 1) and --flink-timeout positive")
	}
	if o.jobs < 1 || o.duration <= 0 || o.concurrency < 1 || o.replicas < 1 || o.pollingInterval <= 0 {
		return fmt.Errorf("bench-scale: --jobs, --concurrency and --replicas must be positive, --duration and --polling-interval longer than 0")
	}
	if o.killAfter < 0 || (o.killAfter > 0 && (o.replicas < 2 || o.killAfter >= o.duration)) {
		return fmt.Errorf("bench-scale: --kill-after needs --replicas above 1 and must fall inside --duration")
	}
	var memoryLimit int64
	if o.containerMemory != "" {
		q, err := resource.ParseQuantity(o.containerMemory)
		if err != nil || q.Value() <= 0 {
			return fmt.Errorf("bench-scale: --container-memory-limit %q: a positive quantity such as 256Mi", o.containerMemory)
		}
		if o.fleetInProcess {
			return fmt.Errorf("bench-scale: --container-memory-limit needs the fleet in a process of its own (not --fleet-in-process)")
		}
		memoryLimit = int64(float64(q.Value()) * memoryLimitFraction)
	}
	var fleetCommand []string
	if !o.fleetInProcess {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench-scale: the fleet process: %w", err)
		}
		fleetCommand = []string{self, "bench-scale-fleet"}
	}
	rep, err := scale.Run(ctx, scale.Config{
		FleetCommand:    fleetCommand,
		FleetStderr:     stderr,
		SharedHost:      o.sharedHost,
		MemoryLimit:     memoryLimit,
		Jobs:            o.jobs,
		Replicas:        o.replicas,
		KillAfter:       o.killAfter,
		PollingInterval: o.pollingInterval,
		NoVertexDetail:  !o.vertexDetail,
		NoBackfill:      !o.backfill,
		Duration:        o.duration,
		Concurrency:     o.concurrency,
		MinWarmup:       o.warmup,
		Faulty:          o.faulty,
		FlinkTimeout:    o.flinkTimeout,
		HeapProfile:     o.memprofile,
		CPUProfile:      o.cpuprofile,
		Command:         o.command,
		Progress:        stderr,
	})
	if err != nil {
		return fmt.Errorf("bench-scale: %w", err)
	}
	if o.out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(stdout)
}

// commandLine is the command as given: its path and the flags set.
func commandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) { parts = append(parts, "--"+f.Name+"="+f.Value.String()) })
	return strings.Join(parts, " ")
}
