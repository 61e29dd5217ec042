//go:build !controller

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flinkscale/flinkscale/test/demo"
	"github.com/flinkscale/flinkscale/test/envtest"
)

func newDemoCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [--speed 60] [--out demo-report] [--metrics-addr 127.0.0.1:8080] [--hold] [--plain] [--real]",
		Short: "The whole system on this machine: simulated Flink jobs scaled through a day in ~3 minutes",
		Long: `The whole system on this machine (make demo): a kube-apiserver and etcd,
Kafka (kfake), three simulated Flink jobs as FlinkDeployments and the
controller scaling them through a day of steady load, a surge and a quiet
night in ~3 minutes; a live view, then a summary and HTML and Markdown
reports in --out. Needs bin/k8s (make envtest-bins).

--real plays two of the jobs on real Flink and Kafka instead, the day
compressed 24× (make demo-real, ~8 minutes; needs java 17 and mvn too).`,
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	fs := cmd.Flags()
	var cfg demo.Config
	var plain bool
	fs.BoolVar(&cfg.Real, "real", false, "play the day on real Apache Flink and Kafka started here (needs java 17 and mvn; make demo-real): orders and clicks, the day compressed --speed times")
	fs.Float64Var(&cfg.Speed, "speed", 0, fmt.Sprintf("seconds of job time per wall second (1-600; default %d: the 3 h day in 3 minutes); with --real how much the day is compressed (1-%d; default %d)",
		demo.DefaultSpeed, demo.MaxRealSpeed, demo.DefaultRealSpeed))
	fs.DurationVar(&cfg.Duration, "duration", 0, "play only the first part of the day (e.g. 1h); default: all of it")
	fs.StringVar(&cfg.Out, "out", demo.DefaultOut, "folder for the reports (index.html, summary.md, charts), the kubeconfig and the controller's log")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", demo.DefaultMetricsAddr, `address of the controller's Prometheus metrics ("0" disables them)`)
	fs.BoolVar(&cfg.Hold, "hold", false, "after the day, keep everything running for kubectl and Prometheus until Ctrl-C")
	fs.BoolVar(&plain, "plain", false, "append events and status lines instead of redrawing the live view (the default when stdout is not a terminal)")
	fs.BoolVar(&cfg.Compare, "compare", true, "replay the same day offline under the Flink operator's autoscaler, KEDA and no autoscaler for the summary")
	directories(cmd, "out")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return demoCmd(cmd.Context(), cfg, plain, a.stdout)
	}
	return cmd
}

// demoCmd runs the embedded demo (test/demo): `make demo`.
func demoCmd(ctx context.Context, cfg demo.Config, plain bool, stdout io.Writer) error {
	cfg.Terminal = stdout
	if f, ok := stdout.(*os.File); ok && !plain && term.IsTerminal(int(f.Fd())) {
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
		if cfg.Real {
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
