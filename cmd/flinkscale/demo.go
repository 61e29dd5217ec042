package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/flinkscale/flinkscale/test/demo"
	"github.com/flinkscale/flinkscale/test/envtest"
)

// demoCmd runs the embedded demo (test/demo): `make demo`.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	onReal := fs.Bool("real", false, "play the day on real Apache Flink and Kafka started here (needs java 17 and mvn; make demo-real): orders and clicks, the day compressed --speed times")
	speed := fs.Float64("speed", 0, fmt.Sprintf("seconds of job time per wall second (1-600; default %d: the 3 h day in 3 minutes); with --real how much the day is compressed (1-%d; default %d)",
		demo.DefaultSpeed, demo.MaxRealSpeed, demo.DefaultRealSpeed))
	duration := fs.Duration("duration", 0, "play only the first part of the day (e.g. 1h); default: all of it")
	out := fs.String("out", demo.DefaultOut, "folder for the reports (index.html, summary.md, charts), the kubeconfig and the controller's log")
	metricsAddr := fs.String("metrics-addr", demo.DefaultMetricsAddr, `address of the controller's Prometheus metrics ("0" disables them)`)
	hold := fs.Bool("hold", false, "after the day, keep everything running for kubectl and Prometheus until Ctrl-C")
	plain := fs.Bool("plain", false, "append events and status lines instead of redrawing the live view (the default when stdout is not a terminal)")
	compare := fs.Bool("compare", true, "replay the same day offline under the Flink operator's autoscaler, KEDA and no autoscaler for the summary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected arguments %q", fs.Args())
	}
	cfg := demo.Config{
		Real: *onReal, Speed: *speed, Duration: *duration, Out: *out, MetricsAddr: *metricsAddr,
		Terminal: stdout, Compare: *compare, Hold: *hold,
	}
	if f, ok := stdout.(*os.File); ok && !*plain && term.IsTerminal(int(f.Fd())) {
		cfg.Redraw = true
		cfg.Width = func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return w
		}
	}
	began := time.Now()
	_, err := demo.Run(ctx, cfg)
	if errors.Is(err, envtest.ErrNoBinaries) {
		target := "make demo"
		if *onReal {
			target = "make demo-real"
		}
		return fmt.Errorf("demo: %w\n(`%s` builds them first; about 4 minutes the first time)", err, target)
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stdout, "Stopped after %s.\n", time.Since(began).Round(time.Second))
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
