package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flinkscale/flinkscale/controllers/report"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/scaling"
)

// recommend writes the recommendation report of a saved snapshot, or of a
// live job observed over a window (the in-cluster mode comes next). Exit
// codes: 0 no change, 3 a rescale is recommended, 1 an error.
func recommend(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
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
	var live liveFlags
	fl.StringVar(&live.flinkURL, "flink-url", "", "live mode: the JobManager REST API (http://host:8081)")
	fl.StringVar(&live.jobID, "job-id", "", "live mode: the job (default: the only running job)")
	fl.StringVar(&live.brokers, "kafka-brokers", "", "live mode: comma-separated Kafka bootstrap servers (lag and arrival rates from the brokers)")
	fl.StringVar(&live.group, "kafka-group", "", "live mode: the job's Kafka consumer group")
	fl.StringVar(&live.topics, "kafka-topics", "", "live mode: comma-separated topics (default: every topic the group has offsets for)")
	fl.DurationVar(&live.observe, "observe", 2*time.Minute, "live mode: how long to sample")
	fl.DurationVar(&live.interval, "interval", 15*time.Second, "live mode: time between samples")
	saveSnapshot := fl.String("save-snapshot", "", "write what was observed to this file (for replay with --snapshot and bug reports)")
	quiet := fl.Bool("quiet", false, "live mode: no progress bar")
	if err := fl.Parse(args); err != nil {
		return exitError, fmt.Errorf("recommend: %w", err)
	}
	if (*snapPath == "") == (live.flinkURL == "") {
		return exitError, errors.New("recommend: give either --snapshot FILE (replay) or --flink-url URL (live)")
	}
	switch *output {
	case "table", "json", "yaml", "markdown":
	default:
		return exitError, fmt.Errorf("recommend: -o must be table, json, yaml or markdown, got %q", *output)
	}
	if *mode != "native" && *mode != "standalone" {
		return exitError, fmt.Errorf("recommend: --mode must be native or standalone, got %q", *mode)
	}
	var snap scaling.Snapshot
	var d scaling.Decision
	source := "snapshot " + filepath.Base(*snapPath)
	if *snapPath != "" {
		var err error
		if snap, d, err = decideFiles(*snapPath, *policyPath, *historyPath, *nowFlag); err != nil {
			return exitError, fmt.Errorf("recommend: %w", err)
		}
	} else {
		var bar *progressBar
		if !*quiet {
			bar = &progressBar{w: stderr, width: 30}
		}
		var err error
		if snap, d, err = observeLive(ctx, live, *policyPath, *historyPath, bar); err != nil {
			return exitError, fmt.Errorf("recommend: %w", err)
		}
		source = fmt.Sprintf("job %s at %s, observed for %s", snap.JobID, live.flinkURL, live.observe)
	}
	if *saveSnapshot != "" {
		b, err := json.MarshalIndent(snap, "", "  ")
		if err == nil {
			err = os.WriteFile(*saveSnapshot, append(b, '\n'), 0o644)
		}
		if err != nil {
			return exitError, fmt.Errorf("recommend: --save-snapshot: %w", err)
		}
	}
	r := report.New(d, snap, report.Options{Source: source, Name: *name, Namespace: *namespace, Mode: *mode})
	if err := r.Write(stdout, *output); err != nil {
		return exitError, fmt.Errorf("recommend: writing the report: %w", err)
	}
	if r.Change {
		return exitScale, nil
	}
	return exitNoChange, nil
}

// liveFlags are the live mode's flags.
type liveFlags struct {
	flinkURL, jobID        string
	brokers, group, topics string
	observe, interval      time.Duration
}

// observeLive samples a running job through the collectors the controller
// uses for the observation window and decides on the snapshot. The policy's
// metrics window becomes the span observed (a short look is still a
// decision, on the samples there are).
func observeLive(ctx context.Context, f liveFlags, policyPath, historyPath string, bar *progressBar) (scaling.Snapshot, scaling.Decision, error) {
	if f.interval <= 0 || f.observe < f.interval {
		return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("--observe (%s) must be at least one --interval (%s)", f.observe, f.interval)
	}
	if (f.brokers == "") != (f.group == "") {
		return scaling.Snapshot{}, scaling.Decision{}, errors.New("--kafka-brokers and --kafka-group go together")
	}
	policy := scaling.DefaultPolicy()
	if policyPath != "" {
		var err error
		if policy, err = readFile(policyPath, scaling.ReadPolicy); err != nil {
			return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("reading the policy: %w", err)
		}
	}
	var history scaling.History
	if historyPath != "" {
		var err error
		if history, err = readFile(historyPath, readHistory); err != nil {
			return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("reading the history: %w", err)
		}
	}
	rc, err := flink.New(f.flinkURL)
	if err != nil {
		return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("--flink-url: %w", err)
	}
	fc := flink.NewCollector(rc)
	var kc *kafka.Collector
	var topics []string
	if f.brokers != "" {
		if kc, err = kafka.New(kafka.Config{BootstrapServers: splitList(f.brokers)}); err != nil {
			return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("--kafka-brokers: %w", err)
		}
		defer kc.Close()
		topics = splitList(f.topics)
	}
	w := metrics.NewWindow(f.observe)
	n := int(f.observe/f.interval) + 1
	jobID := f.jobID
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return scaling.Snapshot{}, scaling.Decision{}, ctx.Err()
			case <-time.After(f.interval):
			}
		}
		fs, err := fc.Collect(ctx, jobID)
		if err != nil {
			return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("collecting from Flink at %s: %w", f.flinkURL, err)
		}
		jobID = fs.JobID
		w.AddFlink(fs)
		if kc != nil {
			ks, err := kc.Collect(ctx, f.group, topics)
			if err != nil {
				return scaling.Snapshot{}, scaling.Decision{}, fmt.Errorf("collecting from Kafka: %w", err)
			}
			w.AddKafka(ks)
		}
		if bar != nil {
			bar.update(i+1, n, "sampling job "+jobID)
		}
	}
	if bar != nil {
		bar.finish()
	}
	snap, missing := w.Snapshot()
	// The decision's window is what was observed.
	if span := snap.WindowEnd.Sub(snap.WindowStart); span > 0 {
		policy.MetricsWindow = scaling.D(span)
	}
	d := scaling.Decide(snap, policy, history, time.Now())
	if d.Action == scaling.ActionScale {
		d = d.HoldForMissing(missing)
	}
	return snap, d, nil
}
