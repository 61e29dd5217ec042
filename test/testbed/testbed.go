package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Options configure Start: a scenario played on real Flink and Kafka.
type Options struct {
	// Scenario is the workload, in its own units; Scale shrinks it (see
	// Realise).
	Scenario *scenario.Scenario
	Scale    Scale
	// Flink is the Flink line; default Flink120.
	Flink Flink
	// Scheduler overrides the scenario's jobmanager.scheduler.
	Scheduler string
	// StateBackend is state.backend.type: "hashmap" (default) or "rocksdb".
	StateBackend string
	// SpareTaskManagers are started beyond those the job needs, so an
	// in-place scale-up finds free slots.
	SpareTaskManagers int
	// TaskManagerMemory is taskmanager.memory.process.size (default the
	// cluster's).
	TaskManagerMemory string
	// Config is more Flink configuration for the cluster.
	Config map[string]string
	// Dir is the run's directory (kafka/, flink/, job.properties); empty:
	// a temporary one, removed by Stop.
	Dir string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// SkipJavaTests builds the workload jar without its JUnit tests.
	SkipJavaTests bool
	// Sink, if set, puts a Kafka sink behind the workload's terminal
	// vertices, writing to an output topic that Start creates and Audit
	// reads.
	Sink *SinkOptions
	// NoJob: Start does not submit the workload (JobID stays empty); a
	// Deployer's first Submit does, as the Flink Kubernetes Operator
	// deploys a FlinkDeployment. The producer still starts.
	NoJob bool
}

// Testbed is a scenario running on a real Kafka broker and a real Flink
// session cluster: the broker holds the scenario's topics, the workload
// job runs on the cluster, and the producer plays the load.
type Testbed struct {
	Realised *Realised
	Kafka    *Kafka
	Flink    *Cluster
	Producer *Producer
	// JobID is the workload job's id.
	JobID string
	// Started is the wall time of the scaled scenario's t = 0, when the
	// producer started.
	Started time.Time

	specFile string
	sink     *SinkOptions
	flinkCP  string
	jar      string
	dir      string
	ownDir   bool

	cancel  context.CancelFunc
	done    chan struct{}
	loadErr error
	stopMu  sync.Mutex
	stopped bool
}

// Start realises the scenario and starts everything: Maven resolves the
// jars (cached in ~/.m2 and bin/testbed), the broker starts and gets the
// topics and the initial backlog, the cluster starts with the TaskManagers
// the job needs, the job is submitted and runs, then the producer plays
// the load in the background. On error nothing is left running.
func Start(ctx context.Context, o Options) (_ *Testbed, err error) {
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	r, err := Realise(o.Scenario, o.Scale)
	if err != nil {
		return nil, err
	}
	if o.Flink == "" {
		o.Flink = Flink120
	}
	if err := o.Flink.Validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.Sink != nil {
		if err := o.Sink.validate(r.Scaled.Job); err != nil {
			return nil, err
		}
	}
	tb := &Testbed{Realised: r, dir: o.Dir, sink: o.Sink, done: make(chan struct{})}
	if tb.dir == "" {
		if tb.dir, err = os.MkdirTemp("", "flinkscale-testbed-"); err != nil {
			return nil, err
		}
		tb.ownDir = true
	}
	defer func() {
		if err != nil {
			close(tb.done)
			_ = tb.stop(false)
		}
	}()
	s := r.Scaled
	say("scenario %s scaled: rates ×%g, time ÷%g, state ×%.3g; peak %.0f records/s, %d slots on %d TaskManagers",
		s.Name, r.Scale.Rate, r.Scale.Time, r.Scale.State, r.PeakRate, r.Slots, r.TaskManagers)

	start := time.Now()
	kafkaCP, err := Resolve(ctx, root, ProfileKafka)
	if err != nil {
		return nil, err
	}
	if tb.flinkCP, err = Resolve(ctx, root, o.Flink.Profile()); err != nil {
		return nil, err
	}
	if tb.jar, err = BuildWorkload(ctx, root, o.Flink, BuildOptions{SkipTests: o.SkipJavaTests}); err != nil {
		return nil, err
	}
	say("classpaths and workload jar ready in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if tb.Kafka, err = StartKafka(ctx, KafkaOptions{Dir: filepath.Join(tb.dir, "kafka"), Classpath: kafkaCP}); err != nil {
		return nil, err
	}
	if err := CreateTopics(ctx, tb.Kafka.Bootstrap(), s, o.Sink); err != nil {
		return nil, err
	}
	if tb.Producer, err = NewProducer(tb.Kafka.Bootstrap(), s); err != nil {
		return nil, err
	}
	if err := tb.Producer.ProduceInitialLag(ctx); err != nil {
		return nil, err
	}
	say("Kafka %s up with %d topics in %s", tb.Kafka.Bootstrap(), len(s.Job.Topics), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	sched := o.Scheduler
	if sched == "" {
		sched = s.Job.Scheduler
	}
	cfg := map[string]string{
		"execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
		"state.backend.type": stateBackend(o.StateBackend),
	}
	for k, v := range o.Config {
		cfg[k] = v
	}
	tb.Flink, err = StartFlink(ctx, FlinkOptions{
		Version:           o.Flink,
		Scheduler:         sched,
		TaskManagers:      r.TaskManagers + o.SpareTaskManagers,
		Slots:             s.Job.TaskManager.Slots,
		TaskManagerMemory: o.TaskManagerMemory,
		Config:            cfg,
		UserJar:           tb.jar,
		Dir:               filepath.Join(tb.dir, "flink"),
		RepoRoot:          root,
		Classpath:         tb.flinkCP,
	})
	if err != nil {
		return nil, err
	}
	say("Flink %s session cluster at %s with %d TaskManagers in %s", o.Flink, tb.Flink.RESTURL(), tb.Flink.TaskManagers(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	tb.specFile = filepath.Join(tb.dir, "job.properties")
	f, err := os.Create(tb.specFile)
	if err != nil {
		return nil, err
	}
	err = WorkloadSpecWithSink(f, s.Job, tb.Kafka.Bootstrap(), o.Sink)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: writing %s: %w", tb.specFile, err)
	}
	if !o.NoJob {
		if tb.JobID, err = tb.Submit(ctx, nil); err != nil {
			return nil, err
		}
		if err := tb.WaitRunning(ctx, tb.JobID); err != nil {
			return nil, err
		}
		say("job %s (%s) running in %s", s.Job.Name, tb.JobID, time.Since(start).Round(time.Millisecond))
	}

	lctx, cancel := context.WithCancel(context.Background())
	tb.cancel = cancel
	tb.Started = time.Now()
	go func() {
		defer close(tb.done)
		err := tb.Producer.Run(lctx, tb.Started)
		if err != nil && !errors.Is(err, context.Canceled) {
			tb.loadErr = err
		}
	}()
	return tb, nil
}

func stateBackend(s string) string {
	if s == "" {
		return "hashmap"
	}
	return s
}

// Submit submits the workload again (after a stop-with-savepoint, say)
// with extra Flink options, and returns the new job's id.
func (tb *Testbed) Submit(ctx context.Context, config map[string]string) (string, error) {
	return Submit(ctx, SubmitOptions{
		Classpath: tb.flinkCP, JarPath: tb.jar, SpecFile: tb.specFile,
		REST: strings.TrimPrefix(tb.Flink.RESTURL(), "http://"), Config: config,
	})
}

// WaitRunning waits until the job and every one of its vertices run.
func (tb *Testbed) WaitRunning(ctx context.Context, jobID string) error {
	return tb.Flink.poll(ctx, "job "+jobID+" to run", func(ctx context.Context) (bool, string, error) {
		var j struct {
			State    string `json:"state"`
			Vertices []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"vertices"`
		}
		if err := tb.Flink.getJSON(ctx, "/jobs/"+jobID, &j); err != nil {
			return false, "", err
		}
		if j.State == "FAILED" {
			return false, "", fmt.Errorf("job %s FAILED (see %s)", jobID, tb.Flink.Dir())
		}
		running := j.State == "RUNNING" && len(j.Vertices) > 0
		var states []string
		for _, v := range j.Vertices {
			running = running && v.Status == "RUNNING"
			states = append(states, v.Name+": "+v.Status)
		}
		return running, j.State + " [" + strings.Join(states, ", ") + "]", nil
	})
}

// Now is the time since the scaled scenario's t = 0.
func (tb *Testbed) Now() time.Duration { return time.Since(tb.Started) }

// Wait blocks until the producer has played the whole scenario, or ctx
// ends, and returns the producer's error if it failed.
func (tb *Testbed) Wait(ctx context.Context) error {
	select {
	case <-tb.done:
		return tb.loadErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopLoad stops the producer before the scenario's end and waits until
// it has stopped: every record it produced is acknowledged by then, so an
// audit knows exactly what the job must emit. It returns the producer's
// error if it failed before.
func (tb *Testbed) StopLoad() error {
	if tb.cancel != nil {
		tb.cancel()
	}
	<-tb.done
	return tb.loadErr
}

// Dir is the run's directory: logs, configuration, checkpoints.
func (tb *Testbed) Dir() string { return tb.dir }

// Stop stops the producer, the cluster and the broker, and removes a
// temporary directory. It is idempotent.
func (tb *Testbed) Stop() error { return tb.stop(true) }

func (tb *Testbed) stop(removeDir bool) error {
	tb.stopMu.Lock()
	defer tb.stopMu.Unlock()
	if tb.stopped {
		return nil
	}
	tb.stopped = true
	if tb.cancel != nil {
		tb.cancel()
	}
	<-tb.done
	var errs []error
	if tb.Producer != nil {
		tb.Producer.Close()
	}
	if tb.Flink != nil {
		errs = append(errs, tb.Flink.Stop())
	}
	if tb.Kafka != nil {
		errs = append(errs, tb.Kafka.Stop())
	}
	err := errors.Join(errs...)
	if err == nil && removeDir && tb.ownDir {
		err = os.RemoveAll(tb.dir)
	}
	return err
}
