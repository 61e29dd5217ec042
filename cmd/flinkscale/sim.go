//go:build !controller

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	"github.com/flinkscale/flinkscale/test/sim/kafka"
	"github.com/flinkscale/flinkscale/test/sim/promreporter"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func newSimCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim --scenario FILE [--speed 60] [--rest ADDR] [--prometheus ADDR] [--duration D]",
		Short: "Serve a scenario's simulated Flink job: Kafka, Flink's REST API and Prometheus reporter",
		Long: `Serve a scenario's simulated Flink job in real time: Kafka, Flink's REST
API and Prometheus reporter on 127.0.0.1, for manual use and end-to-end
tests.`,
		Example: examplesFor("  flinkscale sim --scenario test/scenarios/backlog-at-start.yaml --speed 1"),
		GroupID: groupDevelop,
		Args:    cobra.NoArgs,
	}
	fl := cmd.Flags()
	var file, restAddr, promAddr string
	var speed float64
	var duration time.Duration
	fl.StringVar(&file, "scenario", "", "scenario file (docs/scenarios.md)")
	fl.Float64Var(&speed, "speed", 1, "virtual seconds per wall second")
	fl.StringVar(&restAddr, "rest", "127.0.0.1:8081", "address of Flink's REST API")
	fl.StringVar(&promAddr, "prometheus", "127.0.0.1:9249", "address of the Prometheus reporter: /metrics is the JobManager, /taskmanagers/<id>/metrics each TaskManager")
	fl.DurationVar(&duration, "duration", 0, "stop after this much wall time (0: the scenario's duration at --speed, or until interrupted)")
	filesWith(cmd, "yaml", "scenario")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return simulate(cmd.Context(), file, speed, restAddr, promAddr, duration, a.stdout)
	}
	return cmd
}

// simulate serves a scenario's simulated job in real time: Kafka (kfake) on
// 127.0.0.1, Flink's REST API, and the Prometheus reporter endpoints, so a
// controller, a collector or curl can be pointed at it.
func simulate(ctx context.Context, file string, speed float64, restAddr, promAddr string, duration time.Duration, stdout io.Writer) error {
	if file == "" {
		return errors.New("sim: --scenario is required")
	}
	if !(speed > 0) {
		return fmt.Errorf("sim: --speed must be positive, got %g", speed)
	}
	s, err := scenario.Load(file)
	if err != nil {
		return err
	}
	broker, err := kafka.Start(s.Job.Topics)
	if err != nil {
		return fmt.Errorf("sim: starting Kafka: %w", err)
	}
	defer broker.Close()
	job, err := s.NewJob(broker, time.Now(), 5*time.Second)
	if err != nil {
		return err
	}
	rest, err := listen(restAddr, flinkrest.NewHandler(job))
	if err != nil {
		return err
	}
	defer rest.Close()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promreporter.Handler(job.View, promreporter.JobManagerProcess))
	mux.HandleFunc("/taskmanagers/{id}/metrics", func(w http.ResponseWriter, r *http.Request) {
		promreporter.Handler(job.View, r.PathValue("id")).ServeHTTP(w, r)
	})
	prom, err := listen(promAddr, mux)
	if err != nil {
		return err
	}
	defer prom.Close()

	fmt.Fprintf(stdout, "scenario %s: job %q at %g× speed\n", s.Name, s.Job.Name, speed)
	fmt.Fprintf(stdout, "  Kafka bootstrap servers: %s (consumer group %q, topics %s)\n", strings.Join(broker.Addrs(), ","), job.Spec().ConsumerGroup, topicNames(s))
	fmt.Fprintf(stdout, "  Flink REST API:          http://%s\n", rest.Addr)
	fmt.Fprintf(stdout, "  Prometheus reporter:     http://%s/metrics (JobManager), /taskmanagers/<id>/metrics\n", prom.Addr)

	wall := duration
	if wall == 0 {
		wall = time.Duration(float64(s.Duration) / speed)
	}
	ctx, cancel := context.WithTimeout(ctx, wall)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- job.RunRealtime(ctx, speed, 100*time.Millisecond) }()
	status := time.NewTicker(5 * time.Second)
	defer status.Stop()
	for {
		select {
		case err := <-done:
			st := job.Stats()
			fmt.Fprintf(stdout, "stopped at %s: produced %d, lag %d\n", job.Now().Format(time.RFC3339), st.Produced, st.Lag)
			return err
		case <-status.C:
			v, st := job.View(), job.Stats()
			fmt.Fprintf(stdout, "%s  %-10s lag %d records\n", v.Now.Format(time.TimeOnly), v.Job.State, st.Lag)
		}
	}
}

func topicNames(s *scenario.Scenario) string {
	var names []string
	for _, t := range s.Job.Topics {
		names = append(names, fmt.Sprintf("%s (%d partitions)", t.Name, t.Partitions))
	}
	return strings.Join(names, ", ")
}

// server is an HTTP server on a bound listener.
type server struct {
	*http.Server
	Addr string
}

func listen(addr string, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &server{Server: srv, Addr: ln.Addr().String()}, nil
}

var _ sim.Cluster = (*sim.Job)(nil)
