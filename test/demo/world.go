package demo

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// The demo's jobs: one scenario file each, all playing the same day.
//
//go:embed scenarios/*.yaml
var scenarioFiles embed.FS

// OptIn is how a demo job is handed to flinkscale.
type OptIn string

const (
	// OptInAnnotations: flinkscale.io/* annotations on the FlinkDeployment;
	// the controller creates the policy.
	OptInAnnotations OptIn = "annotations"
	// OptInPolicy: a FlinkScalingPolicy written by hand.
	OptInPolicy OptIn = "policy"
)

// JobSetup says which scenario a demo job plays and how it is scaled.
type JobSetup struct {
	Scenario string
	OptIn    OptIn
	Mode     v1alpha1.Mode
}

// Jobs are the demo's three jobs: an annotated job in Apply mode whose
// rescales are savepoint restarts, a FlinkScalingPolicy in Apply mode on
// the adaptive scheduler (in-place rescales), and an over-provisioned job
// in DryRun mode, where flinkscale only recommends.
var Jobs = []JobSetup{
	{Scenario: "orders", OptIn: OptInAnnotations, Mode: v1alpha1.ModeApply},
	{Scenario: "clicks", OptIn: OptInPolicy, Mode: v1alpha1.ModeApply},
	{Scenario: "payments", OptIn: OptInAnnotations, Mode: v1alpha1.ModeDryRun},
}

// Phase is a named part of the demo's day.
type Phase struct {
	Start time.Duration
	Name  string
}

// Phases of the day every demo scenario plays (see test/demo/scenarios).
var Phases = []Phase{
	{0, "steady load"},
	{40 * time.Minute, "surge"},
	{100 * time.Minute, "quiet night"},
}

// PhaseAt names the phase at offset t.
func PhaseAt(t time.Duration) string { return phaseAt(t).Name }

// phaseAt is the phase at offset t.
func phaseAt(t time.Duration) Phase {
	at := Phases[0]
	for _, p := range Phases {
		if t >= p.Start {
			at = p
		}
	}
	return at
}

// LoadScenarios reads the embedded scenario of every job in Jobs.
func LoadScenarios() ([]*scenario.Scenario, error) {
	out := make([]*scenario.Scenario, 0, len(Jobs))
	for _, j := range Jobs {
		s, err := loadScenario(j.Scenario)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// loadScenario reads one embedded scenario.
func loadScenario(name string) (*scenario.Scenario, error) {
	b, err := fs.ReadFile(scenarioFiles, "scenarios/"+name+".yaml")
	if err != nil {
		return nil, err
	}
	s, err := scenario.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("demo scenario %s: %w", name, err)
	}
	if len(s.InitialLag) > 0 {
		return nil, fmt.Errorf("demo scenario %s: initialLag is not supported by the demo", s.Name)
	}
	return s, nil
}

// simJob is a simulated Flink job of the demo: the job the view and the
// result read (its backend is the simJob itself), the simulated cluster,
// and its REST API on 127.0.0.1.
type simJob struct {
	*job
	w   *world
	sim *sim.Job
	srv *http.Server
	url string
}

var _ backend = (*simJob)(nil)

func (s *simJob) View() sim.View                      { return s.sim.View() }
func (s *simJob) VertexID(name string) (string, bool) { return s.sim.VertexID(name) }

// Capacity is the simulator's ground truth for its own job.
func (s *simJob) Capacity(par map[string]int, slotsPerTM int, rates map[string]float64) float64 {
	return modelCapacity(s.sim, par, slotsPerTM, rates)
}

func (s *simJob) Rates(at time.Duration) map[string]float64 { return scenarioRates(s.sc, at) }

// Records are the simulator's counts; a record neither consumed nor in
// Kafka is lost.
func (s *simJob) Records(context.Context) (Records, error) {
	st := s.sim.Stats()
	return Records{Produced: st.Produced, Consumed: st.Consumed, Lag: st.Lag, Reprocessed: st.Reprocessed,
		Lost: st.Produced - st.Consumed - st.Lag}, nil
}

// Elapsed and Offset read the world's virtual clock, which every job
// shares.
func (s *simJob) Elapsed() time.Duration           { return s.w.Elapsed() }
func (s *simJob) Offset(t time.Time) time.Duration { return t.Sub(s.w.start) }

// world is the simulated side of the demo: every job on one kfake cluster,
// advanced together on one virtual clock.
type world struct {
	start time.Time // virtual time of the scenario's start
	speed float64
	jobs  []*simJob
	kafka *simkafka.Broker

	now atomic.Int64 // virtual time, unix ns: every job has reached it

	// record is the timeline's resolution in virtual time.
	record     time.Duration
	nextRecord time.Duration
}

// Now is the virtual time every job has reached: the clock the controller,
// the collectors and the fake operator share.
func (w *world) Now() time.Time { return time.Unix(0, w.now.Load()).UTC() }

// Since is the virtual time elapsed since t.
func (w *world) Since(t time.Time) time.Duration { return w.Now().Sub(t) }

// Elapsed is the virtual time since the scenario's start.
func (w *world) Elapsed() time.Duration { return w.Now().Sub(w.start) }

// newWorld starts kfake with every job's topics, creates the simulated jobs
// (not yet deployed: the fake operator submits them when it sees their
// FlinkDeployments) and serves each job's REST API on 127.0.0.1.
func newWorld(scs []*scenario.Scenario, setups []JobSetup, start time.Time, speed float64) (_ *world, err error) {
	w := &world{start: start, speed: speed, record: 30 * time.Second}
	w.now.Store(start.UnixNano())
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	var topics []sim.TopicSpec
	seen := map[string]bool{}
	for _, s := range scs {
		for _, t := range s.Job.Topics {
			if seen[t.Name] {
				return nil, fmt.Errorf("topic %q is used by two demo jobs", t.Name)
			}
			seen[t.Name] = true
			topics = append(topics, t)
		}
	}
	if w.kafka, err = simkafka.Start(topics); err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	for i, s := range scs {
		// Producers append every 5 s of virtual time: at 60× that is 12
		// produce requests per wall second per job.
		j, err := sim.NewJob(s.Job, sim.Options{Start: start, Seed: uint64(s.Seed), Load: s, Kafka: w.kafka,
			Step: s.Tick, ProduceEvery: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("demo job %s: %w", s.Name, err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo job %s: REST listener: %w", s.Name, err)
		}
		srv := &http.Server{Handler: flinkrest.NewHandler(j), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		sj := &simJob{job: &job{setup: setups[i], sc: s, slo: s.SLO.Lag}, w: w, sim: j, srv: srv, url: "http://" + ln.Addr().String()}
		sj.run = sj
		w.jobs = append(w.jobs, sj)
	}
	return w, nil
}

func (w *world) close() {
	for _, j := range w.jobs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = j.srv.Shutdown(ctx)
		cancel()
	}
	if w.kafka != nil {
		w.kafka.Close()
	}
}

// run advances every job with the wall clock, speed virtual seconds per
// wall second, until ctx ends or, when until > 0, the scenario offset
// until is reached. Each tick moves every job to the same virtual time and
// only then publishes it as Now, so Now never runs ahead of a job. It
// accounts each step into the jobs' integrals and records a timeline point
// every w.record of virtual time.
func (w *world) run(ctx context.Context, until time.Duration, speed float64) error {
	const interval = 50 * time.Millisecond
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wallStart := time.Now()
	virtStart := w.Elapsed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		target := virtStart + time.Duration(float64(time.Since(wallStart))*speed).Truncate(time.Millisecond)
		if until > 0 && target > until {
			target = until
		}
		if target <= w.Elapsed() {
			continue
		}
		if err := w.advance(target, target >= w.nextRecord); err != nil {
			return err
		}
		for w.nextRecord <= target {
			w.nextRecord += w.record
		}
		if until > 0 && target >= until {
			return nil
		}
	}
}

// advanceTo moves every job to virtual time t, if it is ahead.
func (w *world) advanceTo(t time.Time) error {
	target := t.Sub(w.start).Truncate(time.Millisecond)
	if target <= w.Elapsed() {
		return nil
	}
	return w.advance(target, false)
}

// advance moves every job to scenario offset target (ahead of Now), then
// publishes it as Now and accounts the step, recording a timeline point
// when record is set.
func (w *world) advance(target time.Duration, record bool) error {
	prev := w.Elapsed()
	for _, j := range w.jobs {
		if err := j.sim.Advance(w.start.Add(target).Sub(j.sim.Now())); err != nil {
			return fmt.Errorf("simulated job %s at %s: %w", j.sc.Name, target, err)
		}
	}
	w.now.Store(w.start.Add(target).UnixNano())
	for _, j := range w.jobs {
		if err := j.account(context.Background(), target, target-prev, record); err != nil {
			return fmt.Errorf("simulated job %s at %s: %w", j.sc.Name, target, err)
		}
	}
	return nil
}

// views are the world's jobs as the live view and the result read them.
func (w *world) views() []*job {
	out := make([]*job, len(w.jobs))
	for i, j := range w.jobs {
		out[i] = j.job
	}
	return out
}

// deploymentSpec is the FlinkDeployment spec of a demo job: native mode,
// its Flink version, TaskManagers of the scenario's cores and slots, the
// scenario's initial parallelism per vertex as overrides, savepoint
// upgrades, and the adaptive scheduler when the scenario runs it.
func (j *simJob) deploymentSpec() (map[string]any, error) {
	s := j.sc.Job
	major, minor, ok := strings.Cut(s.FlinkVersion, ".")
	if !ok {
		return nil, fmt.Errorf("demo job %s: flinkVersion %q is not major.minor", s.Name, s.FlinkVersion)
	}
	var overrides []string
	minP := 0
	for _, v := range s.Vertices {
		id, ok := j.sim.VertexID(v.Name)
		if !ok {
			return nil, fmt.Errorf("demo job %s: no id for vertex %q", s.Name, v.Name)
		}
		overrides = append(overrides, id+":"+strconv.Itoa(v.Parallelism))
		if minP == 0 || v.Parallelism < minP {
			minP = v.Parallelism
		}
	}
	conf := map[string]any{
		"taskmanager.numberOfTaskSlots":            strconv.Itoa(s.TaskManager.Slots),
		"pipeline.jobvertex-parallelism-overrides": strings.Join(overrides, ","),
		"state.savepoints.dir":                     "s3://flink-state/savepoints/" + s.Name,
		"state.checkpoints.dir":                    "s3://flink-state/checkpoints/" + s.Name,
		"execution.checkpointing.interval":         s.Checkpoints.Interval.String(),
		// Only one autoscaler may act on a job.
		"job.autoscaler.enabled": "false",
	}
	if s.Scheduler == "adaptive" {
		conf["jobmanager.scheduler"] = "adaptive"
	}
	return map[string]any{
		"flinkVersion":       "v" + major + "_" + minor,
		"mode":               "native",
		"image":              "flink:" + s.FlinkVersion,
		"serviceAccount":     "flink",
		"flinkConfiguration": conf,
		"job": map[string]any{
			"jarURI":      "local:///opt/flink/usrlib/" + s.Name + ".jar",
			"parallelism": int64(minP),
			"upgradeMode": "savepoint",
			"state":       "running",
		},
		"jobManager":  map[string]any{"replicas": int64(1), "resource": map[string]any{"cpu": int64(1), "memory": "2048m"}},
		"taskManager": map[string]any{"resource": map[string]any{"cpu": s.TaskManager.CPU, "memory": "4096m"}},
	}, nil
}
