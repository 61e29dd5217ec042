package bench

import (
	"math"
	"strconv"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// Flinkscale is flinkscale's model driven as the controller drives it: the
// samples go into a metrics.Window, scaling.Decide decides with the history
// the controller would keep in the policy status, a decision made on a
// window with anything missing holds, and rescales are recorded with their
// measured downtime.
type Flinkscale struct {
	Policy          scaling.Policy
	PollingInterval time.Duration
	UpgradeMode     string

	// OnDecision, when set, sees every decision (tests and reports).
	OnDecision func(scaling.Decision)

	window *metrics.Window
	hist   scaling.History
	name   string
}

// NewFlinkscale is the default policy at the default 30s polling interval.
func NewFlinkscale() *Flinkscale {
	return &Flinkscale{Policy: scaling.DefaultPolicy(), PollingInterval: 30 * time.Second, UpgradeMode: "savepoint"}
}

// NewFlinkscaleMemory is the default policy with memory mode Apply: a plan
// that needs more TaskManager memory than there is gets it in the same
// restart.
func NewFlinkscaleMemory() *Flinkscale {
	f := NewFlinkscale()
	f.Policy.Memory.Mode = scaling.MemoryApply
	f.name = FlinkscaleMemoryName
	return f
}

// FlinkscaleMemoryName is NewFlinkscaleMemory's policy name.
const FlinkscaleMemoryName = "flinkscale-memory-apply"

func (f *Flinkscale) Name() string {
	if f.name != "" {
		return f.name
	}
	return "flinkscale"
}
func (f *Flinkscale) Interval() time.Duration { return f.PollingInterval }

func (f *Flinkscale) Observe(o Observation) *Plan {
	if f.window == nil {
		f.window = metrics.NewWindow(f.Policy.MetricsWindow.Duration)
	}
	if o.FlinkErr != nil {
		return nil // the controller skips the sample and holds
	}
	f.window.AddFlink(o.Flink)
	k := o.Kafka
	if o.KafkaErr != nil {
		k = metrics.KafkaSample{At: o.Now, Missing: []string{o.KafkaErr.Error()}}
	}
	k.At = o.Now
	f.window.AddKafka(k)
	if o.Deployment.Rescaling {
		return nil
	}
	snap, missing := f.window.Snapshot()
	snap.UpgradeMode = f.UpgradeMode
	snap.RescaleInPlace = o.Deployment.InPlace
	if !(snap.TaskManagers.CPU > 0) {
		snap.TaskManagers.CPU = scaling.Float(o.Deployment.CPUPerTaskManager)
	}
	d := scaling.Decide(snap, f.Policy, f.hist, o.Now)
	if d.Action == scaling.ActionScale {
		d = d.HoldForMissing(missing)
	}
	if f.OnDecision != nil {
		f.OnDecision(d)
	}
	keep := f.Policy.HistoryKeep(f.PollingInterval)
	f.hist = f.hist.Record(d, keep)
	if d.Action != scaling.ActionScale {
		return nil
	}
	// As the controller records it.
	rec := scaling.NewRescaleRecord(d, snap)
	f.hist.Rescales = append(f.hist.Rescales, rec)
	why := d.Summary
	for _, r := range d.Reasons {
		switch r.Code {
		case scaling.ReasonOverloaded, scaling.ReasonUnderutilized, scaling.ReasonCheckpointPressure:
			why += "; " + string(r.Code) + ": " + r.Message
		}
	}
	return &Plan{Parallelism: d.Recommended.Parallelism, SlotsPerTaskManager: d.Recommended.SlotsPerTaskManager,
		Memory: d.Recommended.Memory, Reason: why}
}

func (f *Flinkscale) Rescaled(r Rescale) {
	n := len(f.hist.Rescales)
	if n == 0 || f.hist.Rescales[n-1].Outcome != scaling.OutcomeInProgress {
		return
	}
	rec := &f.hist.Rescales[n-1]
	rec.CompletedAt = r.CompletedAt
	if r.Failed {
		rec.Outcome = scaling.OutcomeFailed
		return
	}
	rec.Outcome = scaling.OutcomeSucceeded
	rec.Downtime = scaling.D(r.Downtime)
}

// Static never rescales: the job keeps the parallelism it was deployed with.
type Static struct{}

func (Static) Name() string            { return "static" }
func (Static) Interval() time.Duration { return time.Minute }
func (Static) Observe(Observation) *Plan {
	return nil
}
func (Static) Rescaled(Rescale) {}

// KEDALag is KEDA's Kafka scaler driving the FlinkDeployment's scale
// subresource (spec.taskManager.replicas) through a HorizontalPodAutoscaler
// at their defaults: every 30 s the scaler reports the group's total lag,
// capped at lagThreshold × partitions; the HPA wants
// ceil(totalLag / lagThreshold) replicas (skipping changes within its 10 %
// tolerance), scales up at once by at most max(4 pods, 100 %) per 15 s, and
// down to the highest recommendation of the last 5 minutes. The job's
// parallelism follows the replicas: every vertex runs replicas × slots
// subtasks (as the operator does for a replicas change in standalone mode).
type KEDALag struct {
	// LagThreshold is the scaler's lagThreshold (KEDA's default 10 is
	// meaningless for a stream processor; 10000 records per replica is a
	// common setting for high-throughput topics).
	LagThreshold float64
	MinReplicas  int
	MaxReplicas  int
	// Tolerance is the HPA's (default 0.1); ScaleDownWindow its scale-down
	// stabilization (default 5m).
	Tolerance       float64
	ScaleDownWindow time.Duration

	recs []kedaRec
}

type kedaRec struct {
	at       time.Time
	replicas int
}

// NewKEDALag is KEDA's Kafka scaler with the HPA defaults and a
// lagThreshold of 10000 records per replica.
func NewKEDALag() *KEDALag {
	return &KEDALag{LagThreshold: 10000, MinReplicas: 1, MaxReplicas: 100, Tolerance: 0.1, ScaleDownWindow: 5 * time.Minute}
}

// NewKEDALagFor is KEDA's Kafka scaler with a lagThreshold calibrated to the
// scenario, as a careful user would set it: Flink commits offsets on
// checkpoints, so the committed lag of a healthy job is a sawtooth averaging
// half a checkpoint interval of arrivals; the threshold makes that lag at
// the starting load ask for the replicas the job was deployed with. Lag
// then drives replicas in proportion to the load (and to any backlog).
func NewKEDALagFor(s *scenario.Scenario) *KEDALag {
	k := NewKEDALag()
	rate := 0.0
	for _, t := range s.Job.Topics {
		rate += s.Rate(t.Name, 0)
	}
	slots := 0
	groups := map[string]int{}
	for _, v := range s.Job.Vertices {
		groups[v.SlotSharingGroup] = max(groups[v.SlotSharingGroup], v.Parallelism)
	}
	for _, n := range groups {
		slots += n
	}
	replicas := math.Ceil(float64(slots) / float64(max(s.Job.TaskManager.Slots, 1)))
	if t := rate * s.Job.Checkpoints.Interval.Seconds() / 2 / math.Max(replicas, 1); t > 0 {
		k.LagThreshold = t
	}
	return k
}

func (k *KEDALag) Name() string            { return "keda-lag" }
func (k *KEDALag) Interval() time.Duration { return 30 * time.Second }

func (k *KEDALag) Observe(o Observation) *Plan {
	if o.KafkaErr != nil || o.Deployment.Rescaling || o.Deployment.SlotsPerTaskManager < 1 {
		return nil
	}
	lag := 0.0
	parts := 0
	for _, p := range o.Kafka.Partitions {
		parts++
		if p.Committed >= 0 {
			lag += float64(max(p.End-p.Committed, 0))
		} else {
			lag += float64(max(p.End-p.Start, 0))
		}
	}
	// The scaler caps the lag so that lag/threshold ≤ partitions
	// (allowIdleConsumers off): more consumers than partitions idle.
	if parts > 0 {
		lag = math.Min(lag, k.LagThreshold*float64(parts))
	}
	cur := o.Deployment.TaskManagers
	desired := int(math.Ceil(lag / k.LagThreshold))
	if cur > 0 && math.Abs(float64(desired)/float64(cur)-1) <= k.Tolerance {
		desired = cur
	}
	desired = min(max(desired, k.MinReplicas), k.MaxReplicas)
	// Scale-down stabilization: the highest recommendation in the window.
	k.recs = append(k.recs, kedaRec{o.Now, desired})
	cut := o.Now.Add(-k.ScaleDownWindow)
	i := 0
	for i < len(k.recs) && k.recs[i].at.Before(cut) {
		i++
	}
	k.recs = k.recs[i:]
	if desired < cur {
		for _, r := range k.recs {
			desired = max(desired, r.replicas)
		}
		desired = min(desired, cur)
	}
	// Scale-up policy: at most max(4, 100 %) more per step.
	if desired > cur {
		desired = min(desired, cur+max(4, cur))
	}
	if desired == cur {
		return nil
	}
	p := desired * o.Deployment.SlotsPerTaskManager
	// A source reads at most one subtask per partition: the rest idle,
	// but the replicas (and slots) are held all the same.
	plan := map[string]int{}
	for id := range o.Deployment.Parallelism {
		plan[id] = p
	}
	return &Plan{Parallelism: plan, Reason: "replicas " + strconv.Itoa(cur) + " → " + strconv.Itoa(desired)}
}

func (k *KEDALag) Rescaled(Rescale) {}
