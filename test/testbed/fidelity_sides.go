package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/flinkprom"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/promreporter"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// groupLag is the group's lag summed over want partitions (brokers' end
// offset minus the committed offset, kafka.Lag); nil unless every
// partition has an exact lag (a commit).
func groupLag(parts []metrics.KafkaPartition, want int) *float64 {
	if len(parts) != want {
		return nil
	}
	total := 0.0
	for _, p := range parts {
		n, ok := kafka.Lag(p)
		if !ok {
			return nil
		}
		total += float64(n)
	}
	return &total
}

func partitionCount(s *scenario.Scenario) int {
	n := 0
	for _, t := range s.Job.Topics {
		n += t.Partitions
	}
	return n
}

// realSide is the testbed: the REST API for the job and the rescales,
// the Prometheus reporters for the metrics (fresh values, unlike the REST
// metric store), the brokers for the lag.
type realSide struct {
	tb     *Testbed
	rest   *flink.Client
	kc     *kafka.Collector
	group  string
	topics []string
	parts  int
}

func newRealSide(tb *Testbed) (*realSide, error) {
	rest, err := flink.New(tb.Flink.RESTURL())
	if err != nil {
		return nil, fmt.Errorf("fidelity: REST client: %w", err)
	}
	kc, err := kafka.New(kafka.Config{BootstrapServers: []string{tb.Kafka.Bootstrap()}})
	if err != nil {
		return nil, fmt.Errorf("fidelity: Kafka collector: %w", err)
	}
	s := tb.Realised.Scaled
	r := &realSide{tb: tb, rest: rest, kc: kc, group: s.Job.ConsumerGroup, parts: partitionCount(s)}
	for _, t := range s.Job.Topics {
		r.topics = append(r.topics, t.Name)
	}
	return r, nil
}

func (r *realSide) close()             { r.kc.Close() }
func (r *realSide) name() string       { return "real" }
func (r *realSide) now() time.Duration { return r.tb.Now() }

func (r *realSide) sleepUntil(ctx context.Context, t time.Duration) error {
	d := t - r.tb.Now()
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (r *realSide) observe(ctx context.Context, jobID string) (metrics.FlinkSample, *float64, error) {
	sc := flinkprom.Scraper{JobID: jobID}
	fs, err := sc.Scrape(ctx, r.tb.Flink.ReporterTargets())
	if err != nil {
		return fs, nil, fmt.Errorf("scraping the reporters: %w", err)
	}
	ks, err := r.kc.Collect(ctx, r.group, r.topics)
	if err != nil {
		return fs, nil, fmt.Errorf("reading the group's offsets: %w", err)
	}
	return fs, groupLag(ks.Partitions, r.parts), nil
}

func (r *realSide) job(ctx context.Context, jobID string) (jobStatus, error) {
	d, err := r.rest.JobDetails(ctx, jobID)
	if err != nil {
		return jobStatus{}, err
	}
	js := jobStatus{State: d.State}
	for _, v := range d.Vertices {
		js.Vertices = append(js.Vertices, jobVertex{ID: v.ID, Name: v.Name, Status: v.Status, Parallelism: v.Parallelism})
	}
	return js, nil
}

func (r *realSide) requirements(ctx context.Context, jobID string) (map[string]flink.Bounds, error) {
	return r.rest.GetResourceRequirements(ctx, jobID)
}

func (r *realSide) setRequirements(ctx context.Context, jobID string, req map[string]flink.Bounds) error {
	return r.rest.PutResourceRequirements(ctx, jobID, req)
}

func (r *realSide) stopWithSavepoint(ctx context.Context, jobID string) (string, error) {
	return r.rest.StopWithSavepoint(ctx, jobID, "", false)
}

func (r *realSide) savepoint(ctx context.Context, jobID, trigger string) (bool, string, error) {
	st, err := r.rest.SavepointStatus(ctx, jobID, trigger)
	if err != nil {
		return false, "", err
	}
	if st.Status.ID != "COMPLETED" {
		return false, "", nil
	}
	if st.Operation == nil {
		return false, "", fmt.Errorf("savepoint %s completed without an operation", trigger)
	}
	if fc := st.Operation.FailureCause; fc != nil {
		return false, "", fmt.Errorf("savepoint %s failed: %s: %s", trigger, fc.Class, firstLine(fc.StackTrace))
	}
	return true, st.Operation.Location, nil
}

// submit resubmits the workload from the savepoint with
// pipeline.jobvertex-parallelism-overrides, as the Flink operator does. On
// Flink 2 it also writes the parallelism into the workload's spec, so that
// the job graph has it: Flink 2.2's Dispatcher applies the overrides only
// to a submitted JobGraph, and a DataStream client submits a StreamGraph
// since Flink 2.1 (found by this run: the job came back at its old
// parallelism).
func (r *realSide) submit(ctx context.Context, savepoint string, vertices []jobVertex) <-chan submitted {
	ch := make(chan submitted, 1)
	overrides := map[string]int{}
	for _, v := range vertices {
		overrides[v.ID] = v.Parallelism
	}
	cfg := map[string]string{
		"execution.savepoint.path":                 savepoint,
		"pipeline.jobvertex-parallelism-overrides": overridesString(overrides),
	}
	spec := r.tb.specFile
	if r.tb.Flink.Version() != Flink120 {
		var err error
		if spec, err = r.respec(vertices); err != nil {
			ch <- submitted{err: err}
			return ch
		}
	}
	go func() {
		id, err := Submit(ctx, SubmitOptions{
			Classpath: r.tb.flinkCP, JarPath: r.tb.jar, SpecFile: spec,
			REST: strings.TrimPrefix(r.tb.Flink.RESTURL(), "http://"), Config: cfg,
		})
		ch <- submitted{id, err}
	}()
	return ch
}

// respec writes the workload's spec with the vertices' parallelism, by
// name, next to the testbed's.
func (r *realSide) respec(vertices []jobVertex) (string, error) {
	j := r.tb.Realised.Scaled.Job
	j.Vertices = append([]sim.VertexSpec(nil), j.Vertices...)
	for i := range j.Vertices {
		for _, v := range vertices {
			if v.Name == j.Vertices[i].Name {
				j.Vertices[i].Parallelism = v.Parallelism
			}
		}
	}
	path := filepath.Join(r.tb.Dir(), "job-resubmitted.properties")
	var b bytes.Buffer
	if err := WorkloadSpecWithSink(&b, j, r.tb.Kafka.Bootstrap(), r.tb.sink); err != nil {
		return "", fmt.Errorf("fidelity: the resubmitted workload's spec: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("fidelity: writing %s: %w", path, err)
	}
	return path, nil
}

// overridesString writes pipeline.jobvertex-parallelism-overrides:
// "<vertex id>:<parallelism>,…", ids sorted.
func overridesString(o map[string]int) string {
	var parts []string
	for _, id := range sortedKeys(o) {
		parts = append(parts, fmt.Sprintf("%s:%d", id, o[id]))
	}
	return strings.Join(parts, ",")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// WorkloadRecordBytes is the size of the workload's records on Flink's
// network: a Long with the Kafka record's timestamp, as Flink's
// StreamElementSerializer writes it (a tag byte, 8 bytes of timestamp, 8
// of value) behind the 4-byte length every record has in a buffer. The
// simulator plays a scenario with it (sim.JobSpec.RecordBytes) unless the
// scenario sets its own, so its network buffers hold what Flink's hold.
const WorkloadRecordBytes = 21

// simStep is the simulator's step in a fidelity run: fine enough that a
// downtime is measured to the poll (200 ms), as on real Flink.
const simStep = 100 * time.Millisecond

// simSide is the simulator playing the same scenario, sampled through its
// Prometheus reporter (test/sim/promreporter, served in-process) and the
// same flinkprom.Scraper as real Flink, its lag from its brokers' offsets.
type simSide struct {
	sj    *sim.Job
	kafka *sim.MemoryKafka
	zero  time.Time // the scenario's t = 0
	group string
	tps   []sim.TopicPartition
	tms   int
}

// delayedLoad is a scenario's load starting when the job runs (lead set),
// as the testbed starts its producer once the job runs.
type delayedLoad struct {
	s       *scenario.Scenario
	started bool
	lead    time.Duration
}

func (l *delayedLoad) PartitionRates(topic string, t time.Duration) []float64 {
	if !l.started || t < l.lead {
		return nil
	}
	return l.s.PartitionRates(topic, t-l.lead)
}

func (l *delayedLoad) Arrivals(topic string, from, to time.Duration) float64 {
	if !l.started || to <= l.lead {
		return 0
	}
	return l.s.Arrivals(topic, max(from-l.lead, 0), to-l.lead)
}

// simVersion is the simulator's Flink line closest to a testbed's.
func simVersion(v Flink) string {
	if v == Flink120 {
		return "1.20"
	}
	return "2.1"
}

// newSimSide creates the scenario's job in the simulator on taskManagers
// TaskManagers (the testbed's, spares included), submits it as to a
// session cluster (its TaskManagers run already, as the testbed's do), and
// runs it until it is RUNNING; the load starts then.
func newSimSide(s *scenario.Scenario, v Flink, taskManagers int) (*simSide, error) {
	spec := s.Job
	spec.FlinkVersion = simVersion(v)
	if spec.RecordBytes == 0 {
		spec.RecordBytes = WorkloadRecordBytes
	}
	k := sim.NewMemoryKafka(spec.Topics)
	backlog := map[sim.TopicPartition]int64{}
	side := &simSide{kafka: k, group: spec.ConsumerGroup, tms: taskManagers}
	for _, t := range spec.Topics {
		lag := s.InitialPartitionLag(t.Name)
		for p := range t.Partitions {
			tp := sim.TopicPartition{Topic: t.Name, Partition: int32(p)}
			side.tps = append(side.tps, tp)
			if p < len(lag) && lag[p] > 0 {
				backlog[tp] = lag[p]
			}
		}
	}
	if len(backlog) > 0 {
		if _, err := k.Produce(context.Background(), backlog); err != nil {
			return nil, fmt.Errorf("fidelity: simulator: producing the initial lag: %w", err)
		}
	}
	load := &delayedLoad{s: s}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	job, err := sim.NewJob(spec, sim.Options{Start: start, Seed: uint64(s.Seed), Load: load, Kafka: k, Step: simStep})
	if err != nil {
		return nil, fmt.Errorf("fidelity: simulator: %w", err)
	}
	if err := job.Submit(sim.Submission{TaskManagers: taskManagers, Session: true}); err != nil {
		return nil, fmt.Errorf("fidelity: simulator: submitting: %w", err)
	}
	for job.View().Job.State != "RUNNING" {
		if job.Now().Sub(start) > 10*time.Minute {
			return nil, fmt.Errorf("fidelity: simulator: the job is %s after 10 minutes", job.View().Job.State)
		}
		if err := job.Advance(simStep); err != nil {
			return nil, fmt.Errorf("fidelity: simulator: %w", err)
		}
	}
	load.started, load.lead = true, job.Now().Sub(start)
	side.sj, side.zero = job, job.Now()
	return side, nil
}

func (s *simSide) name() string       { return "sim" }
func (s *simSide) now() time.Duration { return s.sj.Now().Sub(s.zero) }
func (s *simSide) jobID() string      { return s.sj.View().Job.ID }

func (s *simSide) sleepUntil(ctx context.Context, t time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := t - s.now(); d > 0 {
		if err := s.sj.Advance(d); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
	}
	return nil
}

// simTransport serves the simulated processes' reporter endpoints
// in-process: http://sim/<process>, process "jobmanager" or a
// TaskManager id.
type simTransport struct{ job *sim.Job }

func (t simTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	promreporter.Handler(t.job.View, strings.TrimPrefix(req.URL.Path, "/")).ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (s *simSide) observe(ctx context.Context, jobID string) (metrics.FlinkSample, *float64, error) {
	targets := []flinkprom.Target{{URL: "http://sim/" + promreporter.JobManagerProcess, Role: flinkprom.JobManager}}
	for _, tm := range s.sj.View().TaskManagers {
		targets = append(targets, flinkprom.Target{URL: "http://sim/" + tm.ID, Role: flinkprom.TaskManager})
	}
	sc := flinkprom.Scraper{JobID: jobID, Client: &http.Client{Transport: simTransport{s.sj}}, Now: s.sj.Now}
	fs, err := sc.Scrape(ctx, targets)
	if err != nil {
		return fs, nil, fmt.Errorf("scraping the simulated reporters: %w", err)
	}
	ends, err := s.kafka.EndOffsets(ctx, s.tps)
	if err != nil {
		return fs, nil, err
	}
	committed, err := s.kafka.Committed(ctx, s.group)
	if err != nil {
		return fs, nil, err
	}
	var parts []metrics.KafkaPartition
	for _, tp := range s.tps {
		c, ok := committed[tp]
		if !ok {
			c = -1
		}
		parts = append(parts, metrics.KafkaPartition{Topic: tp.Topic, Partition: int(tp.Partition), End: ends[tp], Committed: c})
	}
	return fs, groupLag(parts, len(s.tps)), nil
}

func (s *simSide) job(_ context.Context, jobID string) (jobStatus, error) {
	v := s.sj.View()
	if v.Job.ID != jobID {
		return jobStatus{}, fmt.Errorf("job %s: %w", jobID, errNoJob)
	}
	js := jobStatus{State: v.Job.State}
	for _, x := range v.Job.Vertices {
		js.Vertices = append(js.Vertices, jobVertex{ID: x.ID, Name: x.Name, Status: x.Status, Parallelism: x.Parallelism})
	}
	return js, nil
}

func (s *simSide) requirements(_ context.Context, jobID string) (map[string]flink.Bounds, error) {
	req, err := s.sj.ResourceRequirements(jobID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]flink.Bounds, len(req))
	for id, b := range req {
		out[id] = flink.Bounds{LowerBound: b.LowerBound, UpperBound: b.UpperBound}
	}
	return out, nil
}

func (s *simSide) setRequirements(_ context.Context, jobID string, req map[string]flink.Bounds) error {
	in := make(map[string]sim.Bounds, len(req))
	for id, b := range req {
		in[id] = sim.Bounds{LowerBound: b.LowerBound, UpperBound: b.UpperBound}
	}
	return s.sj.UpdateResourceRequirements(jobID, in)
}

func (s *simSide) stopWithSavepoint(_ context.Context, jobID string) (string, error) {
	return s.sj.TriggerSavepoint(sim.SavepointRequest{JobID: jobID, Stop: true, FormatType: "CANONICAL"})
}

func (s *simSide) savepoint(_ context.Context, jobID, trigger string) (bool, string, error) {
	st, err := s.sj.SavepointStatus(jobID, trigger)
	if err != nil {
		return false, "", err
	}
	if st.Status != "COMPLETED" {
		return false, "", nil
	}
	if st.FailureCause != "" {
		return false, "", fmt.Errorf("savepoint %s failed: %s", trigger, st.FailureCause)
	}
	return true, st.Location, nil
}

func (s *simSide) submit(_ context.Context, savepoint string, vertices []jobVertex) <-chan submitted {
	ch := make(chan submitted, 1)
	overrides := map[string]int{}
	for _, v := range vertices {
		overrides[v.ID] = v.Parallelism
	}
	err := s.sj.Submit(sim.Submission{Overrides: overrides, SavepointPath: savepoint, TaskManagers: s.tms, Session: true})
	ch <- submitted{s.jobID(), err}
	return ch
}
