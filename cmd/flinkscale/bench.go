package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/test/bench"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// benchCmd runs the scaling-quality benchmark: every policy on every
// scenario, side by side in one run.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files multiFlag
	fs.Var(&files, "scenario", "a scenario file (repeatable; default: every scenario in --dir)")
	dir := fs.String("dir", "test/scenarios", "the scenario library")
	policies := fs.String("policies", strings.Join(bench.Policies, ","), "comma-separated policies to compare (the oracle always runs)")
	out := fs.String("o", "table", "output: table or json")
	plot := fs.String("plot", "", "write one chart per scenario (SVG: load and capacity, slots, lag, parallelism per policy) into this directory")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "runs at once")
	quiet := fs.Bool("quiet", false, "no progress bar")
	real := fs.Bool("real", false, "race on real Flink and Kafka (test/realbench): flinkscale, the Flink operator's standalone autoscaler and no autoscaler at once, on each scenario of --dir (default test/scenarios/real)")
	logs := fs.String("logs", "bench-real", "with --real: where the rival's logs and the run's JSON go")
	replay := fs.String("replay", "", "with --real: print the table (and --plot the charts) of a saved run's report.json again, judged by this binary, without running anything")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *real {
		d := *dir
		if !flagSet(fs, "dir") {
			d = "test/scenarios/real"
		}
		pol := ""
		if flagSet(fs, "policies") {
			pol = *policies
		}
		return benchRealCmd(ctx, benchRealArgs{dir: d, files: files, policies: pol, out: *out, plot: *plot, logs: *logs, replay: *replay}, stdout, stderr)
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("bench: -o must be table or json, not %q", *out)
	}
	scenarios, err := bench.Library(*dir, files)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var names []string
	for _, p := range strings.Split(*policies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			names = append(names, p)
		}
	}
	var bar *progressBar
	if !*quiet {
		bar = &progressBar{w: stderr, width: 30}
	}
	rep, err := bench.Compare(ctx, scenarios, names, *parallel, func(done, total int, what string) {
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
	if *plot != "" {
		paths, err := bench.PlotAll(*plot, rep.SLO, rep.Results)
		if err != nil {
			return fmt.Errorf("bench: plots: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %d chart(s) into %s\n", len(paths), *plot)
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "flinkscale bench: %d scenario(s) × %s, %s (%s)\n\n", len(scenarios), strings.Join(names, ", "),
		rep.Started.Format("2006-01-02"), rep.Elapsed.Round(time.Second))
	return rep.WriteTable(stdout)
}

// progressBar draws "[=====>    ] 12/55 step-up-3x/keda-lag" on one line.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	start time.Time
	drawn bool
}

func (b *progressBar) update(done, total int, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	n := 0
	if total > 0 {
		n = b.width * done / total
	}
	bar := strings.Repeat("=", n)
	if n < b.width {
		bar += ">" + strings.Repeat(" ", b.width-n-1)
	}
	fmt.Fprintf(b.w, "\r[%s] %d/%d %-40.40s %s", bar, done, total, what, time.Since(b.start).Round(time.Second))
	b.drawn = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
