package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/twmb/franz-go/pkg/kerr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/schedule"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

// Reasons of the Scaling condition when a recommended rescale is not
// started (besides target.Block* and the v1alpha1 reasons).
const (
	ReasonSpecAlreadyApplied = "SpecAlreadyApplied"
	ReasonApplyConflict      = "ApplyConflict"
	// ReasonMemoryNotSettable: a plan sets the TaskManagers' memory on a
	// target whose TaskManagers are not its own (never expected: the model
	// does not).
	ReasonMemoryNotSettable = "MemoryNotSettable"
)

// cycle is one reconcile of one policy.
type cycle struct {
	r   *PolicyReconciler
	ctx context.Context
	log logr.Logger
	pol *v1alpha1.FlinkScalingPolicy
	// orig is the policy as last written: the base of the status patch.
	orig *v1alpha1.FlinkScalingPolicy
	st   *policyState
	now  time.Time
	pm   policyMetrics

	// fd is the target object as read (events go to it too); d what
	// flinkscale reads of it.
	fd client.Object
	d  *target.Deployment
	// ctl rescales through Flink's REST API (kind Deployment).
	ctl FlinkControl

	// events are sent, and state updates made, only once the status that
	// records the same facts has been written.
	events  []pendingEvent
	commits []func()
	stalled bool // a Stalled condition was set this cycle
	// kafkaNote, when set, is why the brokers' lag is not used this cycle
	// and what stands in (see collect); the Ready condition says it.
	kafkaNote string
}

type pendingEvent struct {
	typ, reason, msg string
	// The event goes to the policy and, when it was read, the deployment.
	policyObj, targetObj runtime.Object
}

func (c *cycle) event(typ, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e := pendingEvent{typ: typ, reason: reason, msg: msg, policyObj: c.pol.DeepCopy()}
	if c.fd != nil {
		e.targetObj = c.fd.DeepCopyObject()
	}
	c.events = append(c.events, e)
}

func (c *cycle) commitEvents() {
	for _, f := range c.commits {
		f()
	}
	if c.r.Recorder == nil {
		return
	}
	for _, e := range c.events {
		c.r.Recorder.Event(e.policyObj, e.typ, e.reason, e.msg)
		if e.targetObj != nil {
			c.r.Recorder.Event(e.targetObj, e.typ, e.reason, e.msg)
		}
	}
}

func (c *cycle) commit(f func()) { c.commits = append(c.commits, f) }

func (c *cycle) condition(typ string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 32000 {
		msg = msg[:32000]
	}
	meta.SetStatusCondition(&c.pol.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.pol.Generation,
		LastTransitionTime: metav1.NewTime(c.now),
	})
}

func (c *cycle) setStalled(reason, msg string) {
	c.stalled = true
	c.condition(v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg)
}

// run is the cycle: validate, resolve the target, collect, then either
// follow the rescale in progress or decide and act.
func (c *cycle) run() ctrl.Result {
	spec := &c.pol.Spec
	interval := spec.EffectivePollingInterval()
	// A poll that primes the metric fetcher ahead decides its wait later
	// (PrimeAhead): the next is due that much sooner, so that decisions
	// are a polling interval apart, not an interval and a wait.
	wait := ctrl.Result{RequeueAfter: c.r.nextPollIn(client.ObjectKeyFromObject(c.pol), interval, c.st.primeWait, c.now)}

	policy, err := spec.ScalingPolicy()
	var periods []schedule.Period
	if err == nil {
		periods, err = schedule.Parse(spec.ExcludedPeriods)
	}
	if err != nil {
		// Only a spec change can fix it; the watch brings that.
		c.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidPolicy, err.Error())
		c.setStalled(v1alpha1.ReasonInvalidPolicy, err.Error())
		return ctrl.Result{}
	}

	if !c.load() {
		return wait
	}
	sample, collectErr := c.collect(policy)
	var primed primingWait
	if errors.As(collectErr, &primed) {
		// Only the metric fetcher was primed: nothing observed, nothing
		// decided; back after its wait.
		return ctrl.Result{RequeueAfter: primed.wait}
	}
	if c.d.Kind != target.KindDeployment || c.ctl != nil {
		// (A cluster without the operator's path is known only once Flink
		// told its scheduler: until then the last one stands.)
		c.pol.Status.RescalePath, c.pol.Status.RescalePathReason = c.d.Path()
	}
	if c.pol.Status.Rescale != nil {
		readyMsg := "target found; following the rescale in progress"
		if c.kafkaNote != "" {
			readyMsg += "; " + c.kafkaNote
		}
		c.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, readyMsg)
		c.track(sample, collectErr)
		c.settleStalled()
		if c.pol.Status.Rescale != nil {
			return ctrl.Result{RequeueAfter: min(interval, c.r.trackInterval())}
		}
		return wait
	}
	if collectErr != nil {
		msg := collectErr.Error()
		c.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonMetricsError, msg)
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonMetricsError, "no decision without metrics: "+msg)
		if !c.st.metricsFailed {
			c.event(corev1.EventTypeWarning, EventMetricsFailed, "Collecting metrics failed: %s", msg)
		}
		n := c.st.collectFailures + 1
		if c.d.JobID == "" {
			n = 0 // no job yet: nothing was polled, nothing to back off from
		}
		c.commit(func() { c.st.metricsFailed, c.st.collectFailures = true, n })
		c.settleStalled()
		// A job that keeps failing is polled less and less often (each
		// failed poll can hold a worker for a whole request timeout), so
		// that a tenth of a fleet failing does not delay the rest.
		return ctrl.Result{RequeueAfter: c.r.backoffJitter(collectBackoff(interval, n))}
	}
	c.commit(func() { c.st.metricsFailed, c.st.collectFailures = false, 0 })
	readyMsg := "target found and metrics collected"
	if c.kafkaNote != "" {
		readyMsg = c.kafkaNote
	}
	c.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, readyMsg)

	if c.pol.EffectiveMode() == v1alpha1.ModePaused {
		c.observe(sample)
		vs := c.pol.Status.Vertices
		c.commit(func() { c.pm.observed(vs) })
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonPaused, "paused: observing only, no decision")
		c.settleStalled()
		return wait
	}
	network, err := c.d.NetworkSettings()
	if err != nil {
		// The plan's network buffers would be counted for settings the
		// job does not run with: no decision on a half-read spec.
		msg := fmt.Sprintf("%s %s: %v", c.d.Kind, c.d.Name, err)
		c.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidTarget, msg)
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonInvalidTarget, "no decision: "+msg)
		c.setStalled(v1alpha1.ReasonInvalidTarget, msg)
		return wait
	}
	dec, snap := c.decide(policy, network)
	if c.pol.EffectiveMode() == v1alpha1.ModeDryRun || c.pol.Status.RescalePath == target.PathRecommendOnly {
		c.writeReport(dec, snap, policy)
	}
	if dec.Action == scaling.ActionScale {
		if requeueSoon := c.act(dec, snap, periods); requeueSoon {
			c.settleStalled()
			return ctrl.Result{RequeueAfter: time.Second}
		}
	} else {
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, holdReason(dec), dec.Summary)
		c.commit(func() { c.st.blocked = "" })
	}
	c.settleStalled()
	if c.pol.Status.Rescale != nil {
		return ctrl.Result{RequeueAfter: min(interval, c.r.trackInterval())}
	}
	return wait
}

// FailingProbeTimeout bounds the probe (GET /overview) that precedes a
// poll following a failed one: a JobManager that hangs costs a worker this
// long per backed-off poll instead of the whole Flink request timeout (10 s
// by default). One that answers within it is collected as usual.
const FailingProbeTimeout = 2 * time.Second

// MaxCollectBackoff bounds the polling interval of a policy whose metrics
// collection keeps failing: at most ten polling intervals, at most this.
const MaxCollectBackoff = 5 * time.Minute

// collectBackoff is the wait after the n-th consecutive failed collection:
// the polling interval, doubled per further failure, up to ten intervals
// or MaxCollectBackoff, whichever is shorter (never below the interval).
func collectBackoff(interval time.Duration, n int) time.Duration {
	limit := max(min(MaxCollectBackoff, 10*interval), interval)
	d := interval
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// holdReason is the first job-level reason of a hold, else the first
// vertex's (a NaN busy time, a vertex's missing metrics), else Idle.
func holdReason(d scaling.Decision) string {
	for _, r := range d.Reasons {
		if r.Vertex == "" {
			return string(r.Code)
		}
	}
	if len(d.Reasons) > 0 {
		return string(d.Reasons[0].Code)
	}
	return v1alpha1.ReasonIdle
}

// settleStalled clears Stalled unless this cycle set it or a failed rescale's
// backoff still runs.
func (c *cycle) settleStalled() {
	if c.stalled {
		return
	}
	if n, last := failures(c.pol.Status.History); n > 0 && last.CompletedAt != nil {
		until := last.CompletedAt.Add(c.r.backoff(n))
		if c.now.Before(until) {
			reason := v1alpha1.ReasonRescaleFailed
			if last.Outcome == scaling.OutcomeRolledBack {
				reason = v1alpha1.ReasonRolledBack
			}
			c.condition(v1alpha1.ConditionStalled, metav1.ConditionTrue, reason,
				fmt.Sprintf("%d consecutive rescale(s) failed; the next may start after %s", n, until.UTC().Format(time.RFC3339)))
			return
		}
	}
	c.condition(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "")
}

// failures counts the failed or rolled back rescales since the last success
// and returns the newest.
func failures(h *v1alpha1.HistoryStatus) (int, *v1alpha1.RescaleRecordStatus) {
	if h == nil {
		return 0, nil
	}
	n := 0
	var last *v1alpha1.RescaleRecordStatus
	for i := len(h.Rescales) - 1; i >= 0; i-- {
		r := &h.Rescales[i]
		if r.Outcome != scaling.OutcomeFailed && r.Outcome != scaling.OutcomeRolledBack {
			break
		}
		if last == nil {
			last = r
		}
		n++
	}
	return n, last
}

// collect polls Flink (and the Kafka triggers) into the policy's window.
// A Kafka trigger that cannot even be opened (its Secret is missing or
// misconfigured) or whose brokers reject the credentials fails the
// collection: only a fix of the Secret or the trigger helps, and the
// condition says which. When the brokers of every trigger are unreachable,
// the window drops its brokers' samples (they would describe another
// moment) and, if Flink reports pendingRecords for every source, the
// decision uses Flink's own lag (else it holds with MissingMetrics); a
// group without committed offsets takes its lag from Flink the same way
// (the brokers' arrival rates stand). c.kafkaNote says so for the Ready
// condition, with one KafkaUnavailable event per outage of the brokers.
// primingWait is what collect returns when it only primed Flink's metric
// fetcher (PolicyReconciler.PrimeAhead): the cycle ends and comes back
// after wait.
type primingWait struct{ wait time.Duration }

func (p primingWait) Error() string {
	return fmt.Sprintf("priming Flink's metric fetcher: collecting in %s", p.wait)
}

type primedHookKey struct{}

// WithPrimedHook returns a context whose reconciles call f when they polled
// nothing and requeued: they only primed Flink's metric fetcher, or waited
// for the policy's slot after a shard takeover (takeoverWait). For
// harnesses that count polls (test/scale).
func WithPrimedHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, primedHookKey{}, f)
}

// notePrimed calls ctx's WithPrimedHook hook, if any.
func notePrimed(ctx context.Context) {
	if hook, ok := ctx.Value(primedHookKey{}).(func()); ok {
		hook()
	}
}

func (c *cycle) collect(p scaling.Policy) (metrics.FlinkSample, error) {
	if c.st.window == nil || c.st.windowLength != p.MetricsWindow.Duration {
		c.st.window = metrics.NewWindow(p.MetricsWindow.Duration)
		c.st.windowLength = p.MetricsWindow.Duration
	}
	src, err := c.r.Sources.Flink(c.ctx, c.pol, c.d)
	if err != nil {
		c.pm.collection(SourceFlink, 0, err)
		return metrics.FlinkSample{}, fmt.Errorf("opening the Flink metrics source: %w", err)
	}
	if c.d.Kind == target.KindDeployment {
		if err := c.observeCluster(src); err != nil {
			c.pm.collection(SourceFlink, 0, err)
			return metrics.FlinkSample{}, err
		}
	}
	if c.d.JobID == "" {
		return metrics.FlinkSample{}, fmt.Errorf("the %s reports no job yet (status.jobStatus.jobId is empty)", c.d.Kind)
	}
	if prober, ok := src.(FlinkProber); ok && c.st.collectFailures > 0 {
		// After a failed poll, a probe with a short timeout first: a hung
		// JobManager holds a worker FailingProbeTimeout per backed-off
		// poll, not the whole request timeout.
		ctx, cancel := context.WithTimeout(c.ctx, FailingProbeTimeout)
		err := prober.Probe(ctx)
		cancel()
		if err != nil {
			c.pm.collection(SourceFlink, 0, err)
			return metrics.FlinkSample{}, fmt.Errorf("collecting Flink metrics of job %s: the JobManager does not answer: %w", c.d.JobID, err)
		}
	}
	if primer, ok := src.(FlinkPrimer); ok && c.r.PrimeAhead {
		wait, err := primer.PrimeAhead(c.ctx, c.d.JobID)
		if err != nil {
			c.pm.collection(SourceFlink, 0, err)
			return metrics.FlinkSample{}, fmt.Errorf("collecting Flink metrics of job %s: %w", c.d.JobID, err)
		}
		if wait > 0 {
			notePrimed(c.ctx)
			c.st.primeWait = wait
			return metrics.FlinkSample{}, primingWait{wait}
		}
	}
	start := time.Now()
	fs, err := src.Collect(c.ctx, c.d.JobID)
	c.pm.collection(SourceFlink, time.Since(start), err)
	if err != nil {
		return metrics.FlinkSample{}, fmt.Errorf("collecting Flink metrics of job %s: %w", c.d.JobID, err)
	}
	if len(fs.Dropped) > 0 {
		// Families of the reporters' expositions that did not parse and
		// that nothing reads: not a hold reason, but worth a look.
		c.log.V(1).Info("Prometheus reporter families skipped", "deployment", c.d.Name, "job", c.d.JobID, "dropped", fs.Dropped)
	}
	fs.At = c.now
	c.st.window.AddFlink(fs)
	t := c.pol.Spec.Triggers
	if t == nil || len(t.Kafka) == 0 {
		return fs, nil
	}
	ks, unreachable, err := c.collectKafka(t.Kafka)
	if err != nil {
		return fs, err
	}
	noPending := sourcesWithoutPending(fs)
	fallback := ": using Flink's pendingRecords for the lag"
	if len(noPending) > 0 {
		fallback = fmt.Sprintf(" and Flink reports no pendingRecords for %s: holding", strings.Join(noPending, ", "))
	}
	switch {
	case unreachable == len(t.Kafka):
		// No brokers' sample this poll: lag and arrival rates from the
		// samples before the outage would be mixed with Flink's view of
		// now. Drop them; the window is Flink's alone until the brokers
		// answer again.
		c.st.window.DropKafka()
		if len(noPending) > 0 {
			// Nothing to fall back on: keep the failed sample, whose
			// Missing names the triggers, so that the decision holds
			// with MissingMetrics.
			c.st.window.AddKafka(ks)
		}
		c.kafkaUnavailable(fmt.Sprintf("Kafka brokers unreachable (%s)%s", strings.Join(ks.Missing, "; "), fallback))
	default:
		c.st.window.AddKafka(ks)
		if c.st.window.BrokersUnavailable() {
			c.commit(func() { c.st.window.SetBrokersUnavailable(false) })
		}
		if groupUnknown(ks) {
			// The brokers answer but know no offsets of the group: a job
			// that has not committed yet (no checkpoint since it started),
			// that does not commit to Kafka, or the wrong group name. The
			// condition says so; no event (every new job starts so).
			c.kafkaNote = fmt.Sprintf("consumer group(s) %s have no committed offsets (group state %s)%s", ks.Group, orNone(ks.GroupState), fallback)
		}
	}
	return fs, nil
}

// EventKafkaUnavailable says, once per outage, that the brokers' view of
// the lag is unavailable and what the decision uses instead.
const EventKafkaUnavailable = "KafkaUnavailable"

// kafkaUnavailable notes the fallback for the Ready condition and sends one
// event per outage (the window remembers it is in one).
func (c *cycle) kafkaUnavailable(msg string) {
	c.kafkaNote = msg
	if !c.st.window.BrokersUnavailable() {
		c.event(corev1.EventTypeWarning, EventKafkaUnavailable, "%s", msg)
		c.commit(func() { c.st.window.SetBrokersUnavailable(true) })
	}
}

// sourcesWithoutPending names the source vertices whose sample has no
// pendingRecords.
func sourcesWithoutPending(fs metrics.FlinkSample) []string {
	var out []string
	for _, v := range fs.Vertices {
		if len(v.Inputs) == 0 && v.PendingRecords == nil {
			name := v.Name
			if name == "" {
				name = v.ID
			}
			out = append(out, name)
		}
	}
	return out
}

// groupUnknown says whether the brokers know partitions but the group has
// committed offsets for none of them (a group that never committed, or the
// wrong group name).
func groupUnknown(ks metrics.KafkaSample) bool {
	if len(ks.Partitions) == 0 {
		return false
	}
	for _, p := range ks.Partitions {
		if p.Committed >= 0 {
			return false
		}
	}
	return true
}

// collectKafka polls every trigger and merges their partitions into one
// sample; a trigger whose brokers cannot be read is listed in Missing (the
// decision holds unless every trigger failed and Flink's lag stands in) and
// counted in unreachable. A trigger that cannot be opened (Secret missing or
// invalid) or whose brokers reject its credentials is an error that names
// the trigger and its Secret.
func (c *cycle) collectKafka(triggers []v1alpha1.KafkaTrigger) (out metrics.KafkaSample, unreachable int, err error) {
	out = metrics.KafkaSample{At: c.now}
	var groups []string
	for _, t := range triggers {
		name := t.Name
		if name == "" {
			name = t.ConsumerGroup
		}
		secret := ""
		if t.AuthenticationRef != nil {
			secret = fmt.Sprintf(" (Secret %s/%s)", c.pol.Namespace, t.AuthenticationRef.Name)
		}
		groups = append(groups, t.ConsumerGroup)
		src, err := c.r.Sources.Kafka(c.ctx, c.pol, t)
		if err != nil {
			c.pm.collection(SourceKafka, 0, err)
			// (Sources names the trigger too: once is enough.)
			msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("Kafka trigger %q: ", t.Name))
			return out, 0, fmt.Errorf("Kafka trigger %q%s is misconfigured: %s", name, secret, msg)
		}
		start := time.Now()
		ks, err := src.Collect(c.ctx, t.ConsumerGroup, t.Topics)
		c.pm.collection(SourceKafka, time.Since(start), err)
		if err != nil {
			if kafkaMisconfigured(err) {
				return out, 0, fmt.Errorf("Kafka trigger %q%s: %w", name, secret, err)
			}
			unreachable++
			out.Missing = append(out.Missing, fmt.Sprintf("trigger %s: %v", name, err))
			continue
		}
		out.Partitions = append(out.Partitions, ks.Partitions...)
		out.Missing = append(out.Missing, ks.Missing...)
		if ks.GroupState != "" && ks.GroupState != "Stable" && ks.GroupState != "Empty" || out.GroupState == "" {
			out.GroupState = ks.GroupState
		}
	}
	out.Group = strings.Join(groups, ",")
	return out, unreachable, nil
}

// kafkaMisconfigured says whether a Collect error is the brokers refusing
// the trigger's credentials or certificates (a fix of the Secret is needed)
// rather than the brokers being unreachable.
func kafkaMisconfigured(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		certVerif *tls.CertificateVerificationError
	)
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) || errors.As(err, &certVerif)
}

// observe writes the current parallelism from a sample (no decision).
func (c *cycle) observe(fs metrics.FlinkSample) {
	st := &c.pol.Status
	var cur []string
	var vs []v1alpha1.VertexStatus
	for _, v := range fs.Vertices {
		vs = append(vs, v1alpha1.VertexStatus{ID: v.ID, Name: v.Name, Current: int32(v.Parallelism)})
		cur = append(cur, strconv.Itoa(v.Parallelism))
	}
	if len(vs) > 0 {
		st.Vertices = vs
		st.CurrentParallelism = strings.Join(cur, "/")
		st.RecommendedParallelism = ""
	}
}

// decide assembles the snapshot, runs the model, and records the decision
// in the status (last decision, vertices, history). network is the
// TaskManagers' network buffer settings (nil: Flink's defaults).
func (c *cycle) decide(p scaling.Policy, network *scaling.NetworkSettings) (scaling.Decision, scaling.Snapshot) {
	snap, missing := c.st.window.Snapshot()
	targetFacts(&snap, c.d, network)
	snap.UpgradeMode = c.d.UpgradeMode
	snap.RescaleInPlace = c.d.RescaleInPlace()
	snap.Reactive = c.d.Reactive
	snap.TaskManagers.FixedSlots = c.d.SlotsFixed()
	snap.TaskManagers.FixedTaskManagers = c.d.TaskManagersFixed()
	snap.TaskManagers.Shared = c.d.SharedCluster()
	if !(snap.TaskManagers.CPU > 0) && c.d.TaskManagerCPU > 0 {
		snap.TaskManagers.CPU = scaling.Float(c.d.TaskManagerCPU)
	}
	hist := c.pol.Status.History.ToHistory()
	dec := scaling.Decide(snap, p, hist, c.now)
	if dec.Action == scaling.ActionScale {
		dec = dec.HoldForMissing(missing)
	}
	keep := p.HistoryKeep(c.pol.Spec.EffectivePollingInterval())
	hist = hist.Record(dec, keep)
	c.pol.Status.History = v1alpha1.FromHistory(hist)

	st := &c.pol.Status
	st.LastDecision = decisionStatus(dec)
	st.LagRecords = int64(dec.LagRecords)
	var cur, rec []string
	var vs []v1alpha1.VertexStatus
	for _, v := range dec.Vertices {
		vs = append(vs, v1alpha1.VertexStatus{ID: v.ID, Name: v.Name, Current: int32(v.Current), Recommended: int32(v.Recommended)})
		cur = append(cur, strconv.Itoa(v.Current))
		rec = append(rec, strconv.Itoa(v.Recommended))
	}
	if len(vs) > 0 {
		st.Vertices = vs
		st.CurrentParallelism = strings.Join(cur, "/")
		st.RecommendedParallelism = strings.Join(rec, "/")
	}
	c.limited(dec)
	arrival := 0.0
	for _, v := range snap.Vertices {
		if len(v.Inputs) == 0 && v.ArrivalRatePerSecond != nil {
			arrival += float64(*v.ArrivalRatePerSecond)
		}
	}
	c.commit(func() { c.pm.decision(dec, p.Utilization, arrival) })
	if dec.Action == scaling.ActionScale {
		key := planKey(dec.Recommended)
		if key != c.st.announced {
			c.event(corev1.EventTypeNormal, EventScalingRecommended, "Recommend parallelism %s → %s (%s): %s",
				st.CurrentParallelism, st.RecommendedParallelism, coresChange(dec), dec.Summary)
			c.commit(func() { c.st.announced = key })
		}
	} else if dec.Sized {
		c.commit(func() { c.st.announced = "" })
	}
	return dec, snap
}

// targetFacts fills in what the target says of the job's memory model:
// the Flink version its spec says (spec.flinkVersion, the session
// cluster's, or what REST /overview reports of a cluster without the
// operator; else the collected one stays), the state backend from its
// configuration when Flink did not report one, and the network buffer
// settings.
func targetFacts(snap *scaling.Snapshot, d *target.Deployment, network *scaling.NetworkSettings) {
	if v := metrics.FlinkMinorVersion(d.FlinkVersion); v != "" {
		snap.FlinkVersion = v
	}
	if snap.StateBackend == "" {
		snap.StateBackend = metrics.ConfiguredStateBackend(d.Configuration)
	}
	snap.TaskManagers.Network = network
}

func coresChange(d scaling.Decision) string {
	s := fmt.Sprintf("%d → %d slots, %.4g → %.4g cores", d.Current.Slots, d.Recommended.Slots, d.Current.Cores, d.Recommended.Cores)
	if m := d.Recommended.Memory; m != nil && d.Memory != nil {
		s += fmt.Sprintf(", TaskManager memory %s → %s", mib(d.Memory.Current.ProcessBytes), mib(m.ProcessBytes))
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// planKey identifies a plan: its parallelism, shape and the TaskManager
// memory it sets (a memory-only restart keeps the parallelism).
func planKey(p scaling.Plan) string {
	key := target.FormatOverrides(p.Parallelism) + "/" + strconv.Itoa(p.SlotsPerTaskManager) + "/" + strconv.Itoa(p.TaskManagers)
	if p.Memory != nil {
		key += "/" + strconv.FormatInt(p.Memory.ProcessBytes, 10)
	}
	return key
}

func decisionStatus(d scaling.Decision) *v1alpha1.DecisionStatus {
	out := &v1alpha1.DecisionStatus{Time: metav1.NewTime(d.At), Action: string(d.Action), Summary: d.Summary}
	for _, r := range d.Reasons {
		if len(out.Reasons) == 64 {
			break
		}
		out.Reasons = append(out.Reasons, v1alpha1.ReasonStatus{Code: string(r.Code), Vertex: r.Vertex, Message: r.Message})
	}
	if m := d.Memory; m != nil {
		out.Memory = &v1alpha1.MemoryDecisionStatus{
			CurrentProcessBytes: m.Current.ProcessBytes, RecommendedProcessBytes: m.Recommended.ProcessBytes,
			CurrentNetworkBytes: m.Current.NetworkBytes, RecommendedNetworkBytes: m.Recommended.NetworkBytes,
			Applied: m.Applied && d.Action == scaling.ActionScale && d.Recommended.Memory != nil, SavingBytes: m.SavingBytes,
		}
	}
	return out
}

// limited sets the Limited condition from the vertices' binding limits.
func (c *cycle) limited(d scaling.Decision) {
	var parts []string
	reason := ""
	for _, v := range d.Vertices {
		if v.Limit == "" {
			continue
		}
		if reason == "" {
			reason = string(v.Limit)
		}
		name := v.Name
		if name == "" {
			name = v.ID
		}
		parts = append(parts, fmt.Sprintf("%s: %s at p=%d", name, v.Limit, v.Recommended))
	}
	if reason == "" {
		c.condition(v1alpha1.ConditionLimited, metav1.ConditionFalse, v1alpha1.ReasonNotLimited, "")
		c.commit(func() { c.st.limited = false })
		return
	}
	msg := strings.Join(parts, "; ")
	if d.LagGrows {
		msg += "; the backlog keeps growing at the recommended parallelism"
	}
	c.condition(v1alpha1.ConditionLimited, metav1.ConditionTrue, reason, msg)
	if !c.st.limited {
		c.event(corev1.EventTypeWarning, EventScalingLimited, "Scaling is limited: %s", msg)
		c.commit(func() { c.st.limited = true })
	}
}

// act starts the rescale a Scale decision recommends, if every gate lets
// it. It returns true when the apply met a conflict and should be retried
// at once on a fresh read. snap is the snapshot the decision was made on.
func (c *cycle) act(dec scaling.Decision, snap scaling.Snapshot, periods []schedule.Period) bool {
	m := c.pol.EffectiveMode()
	if m != v1alpha1.ModeApply {
		c.commit(func() { c.pm.blocked(v1alpha1.ReasonDryRun) })
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonDryRun,
			fmt.Sprintf("DryRun: would rescale %s → %s", c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism))
		return false
	}
	if path, why := c.d.Path(); path == target.PathRecommendOnly {
		c.block(v1alpha1.ReasonRecommendOnly, why)
		return false
	}
	up, down := direction(dec)
	if up && c.pol.Annotations[v1alpha1.AnnotationPausedScaleOut] == "true" {
		c.block(v1alpha1.ReasonPausedDirection, "scale-up paused by the "+v1alpha1.AnnotationPausedScaleOut+" annotation")
		return false
	}
	if down && !up && c.pol.Annotations[v1alpha1.AnnotationPausedScaleIn] == "true" {
		c.block(v1alpha1.ReasonPausedDirection, "scale-down paused by the "+v1alpha1.AnnotationPausedScaleIn+" annotation")
		return false
	}
	if p, until, ok := schedule.Active(periods, c.now); ok {
		c.block(v1alpha1.ReasonExcludedPeriod, fmt.Sprintf("excluded period %s: no rescale until %s", p, until.UTC().Format(time.RFC3339)))
		return false
	}
	if b := c.d.Blocked(c.pol.Spec.AllowStatelessUpgrade); b != nil {
		c.block(b.Reason, b.Message)
		return false
	}
	if n, last := failures(c.pol.Status.History); n > 0 && last.CompletedAt != nil {
		if until := last.CompletedAt.Add(c.r.backoff(n)); c.now.Before(until) {
			c.block(v1alpha1.ReasonBackoff, fmt.Sprintf("%d rescale(s) failed in a row: backing off until %s", n, until.UTC().Format(time.RFC3339)))
			return false
		}
	}
	if dec.Recommended.Memory != nil && !c.d.SetsMemory() {
		// The model sets memory only where the TaskManagers are the job's
		// own (FixedSlots is set for the other kinds): never write part of
		// a plan.
		c.block(ReasonMemoryNotSettable, fmt.Sprintf("the plan sets the TaskManagers' memory, which a %s's plan cannot", c.d.Kind))
		return false
	}
	if c.d.Kind == target.KindDeployment {
		return c.actREST(dec, snap)
	}
	owned, err := target.OwnedFields(c.fd, FieldManager)
	if err != nil {
		c.block(v1alpha1.ReasonInvalidTarget, err.Error())
		return false
	}
	fields := c.d.PlanFields(dec.Recommended, owned)
	if c.d.Says(fields) {
		c.block(ReasonSpecAlreadyApplied, "the FlinkDeployment's spec already holds the recommended plan but the job does not run it yet")
		return false
	}
	// What the fields about to be applied say now: a failed rescale writes
	// these back (and removes those that did not exist).
	prev := c.d.Managed().Only(fields)
	before, retry, ok := c.recordIntent(dec, snap, fields, prev)
	if !ok {
		return retry
	}
	obj := c.d.ApplyObject(fields)
	err = c.r.Client.Patch(c.ctx, obj, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership)
	switch {
	case apierrors.IsConflict(err):
		// Someone changed the deployment since it was read: drop the
		// intent and decide again on what it is now.
		c.pol.Status.Rescale, c.pol.Status.History = before.Rescale, before.History
		c.log.Info("FlinkDeployment changed while applying the plan; retrying", "deployment", c.d.Name)
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, ReasonApplyConflict, "the FlinkDeployment changed while the plan was applied; deciding again")
		return true
	case err != nil:
		c.pol.Status.Rescale, c.pol.Status.History = before.Rescale, before.History
		msg := fmt.Sprintf("applying the plan to FlinkDeployment %s: %v", c.d.Name, err)
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, msg)
		c.setStalled(v1alpha1.ReasonApplyFailed, msg)
		c.event(corev1.EventTypeWarning, EventRescaleFailed, "%s", msg)
		return false
	}
	c.fd = obj
	c.pol.Status.Rescale.TargetGeneration = obj.GetGeneration()
	c.pol.Status.Rescale.Message = "applied; waiting for the operator to stop the job with a savepoint (or rescale it in place)"
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionTrue, v1alpha1.ReasonRescaling,
		fmt.Sprintf("rescaling %s → %s", c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism))
	c.event(corev1.EventTypeNormal, EventRescaleStarted, "Rescaling %s → %s (%s), predicted downtime %s: %s",
		c.pol.Status.CurrentParallelism, c.pol.Status.RecommendedParallelism, coresChange(dec),
		dec.PredictedDowntime.Round(time.Second), dec.Summary)
	c.log.Info("rescale started", "deployment", c.d.Name, "from", c.pol.Status.CurrentParallelism,
		"to", c.pol.Status.RecommendedParallelism, "overrides", fields.Overrides, "slots", fields.Slots,
		"taskManagerMemory", fields.ResourceMemory)
	c.commit(func() {
		c.st.blocked = ""
		c.pm.rescaleStarted()
	})
	return false
}

// recordIntent records the rescale about to be applied (status.rescale
// and its history record) and writes it before the target is touched, so
// that no rescale can happen without the status knowing (a crash or a lost
// status patch after the apply would otherwise leave it unrecorded). It
// returns the status before, to restore if the apply fails; ok false when
// the status could not be written (retry: at once, on a conflict).
func (c *cycle) recordIntent(dec scaling.Decision, snap scaling.Snapshot, fields, prev target.Fields) (before *v1alpha1.FlinkScalingPolicyStatus, retry, ok bool) {
	applied := make(map[string]int32, len(dec.Recommended.Parallelism))
	for id, n := range dec.Recommended.Parallelism {
		applied[id] = int32(n)
	}
	before = c.pol.Status.DeepCopy()
	c.pol.Status.Rescale = &v1alpha1.RescaleStatus{
		Phase:              v1alpha1.RescaleSavepointing,
		StartTime:          metav1.NewTime(c.now),
		AppliedParallelism: applied,
		Applied:            managedStatus(fields),
		Previous:           managedStatus(prev),
		FromJobID:          c.d.JobID,
		// TargetGeneration stays 0 until the apply succeeded: an intent.
		Message: "applying the plan to the " + c.d.Kind,
	}
	rec := scaling.NewRescaleRecord(dec, snap)
	rec.DecidedAt = c.now
	h := c.pol.Status.History.ToHistory()
	h.Rescales = append(h.Rescales, rec)
	c.pol.Status.History = v1alpha1.FromHistory(h)
	if err := c.persistIntent(); err != nil {
		c.pol.Status = *before
		if apierrors.IsConflict(err) {
			c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, ReasonApplyConflict, "the policy changed while the rescale was recorded; deciding again")
			return nil, true, false
		}
		msg := fmt.Sprintf("recording the rescale in the policy's status: %v", err)
		c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, msg)
		return nil, false, false
	}
	return before, false, true
}

// persistIntent writes the status as it is now (the rescale about to be
// applied, with the decision that led to it) and makes it the base of the
// cycle's final status patch.
func (c *cycle) persistIntent() error {
	c.pol.Status.ObservedGeneration = c.pol.Generation
	if err := c.r.Client.Status().Patch(c.ctx, c.pol, client.MergeFromWithOptions(c.orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	c.orig = c.pol.DeepCopy()
	return nil
}

// block records why a recommended rescale does not start, with one event
// per new blocker.
func (c *cycle) block(reason, msg string) {
	c.commit(func() { c.pm.blocked(reason) })
	c.condition(v1alpha1.ConditionScaling, metav1.ConditionFalse, reason, "rescale recommended but not started: "+msg)
	if c.st.blocked != reason {
		c.event(corev1.EventTypeNormal, EventRescaleBlocked, "Rescale recommended but not started: %s", msg)
		c.commit(func() { c.st.blocked = reason })
	}
}

// direction says whether a plan adds and/or removes parallelism.
func direction(d scaling.Decision) (up, down bool) {
	for _, v := range d.Vertices {
		up = up || v.Recommended > v.Current
		down = down || v.Recommended < v.Current
	}
	return up, down
}

func managedStatus(f target.Fields) *v1alpha1.ManagedFields {
	return &v1alpha1.ManagedFields{Overrides: f.Overrides, Slots: f.Slots, Parallelism: int32(f.Parallelism), TaskManagerReplicas: int32(f.TaskManagerReplicas),
		MemoryConfiguration: maps.Clone(f.Memory), TaskManagerMemory: f.ResourceMemory}
}

func managedFields(m *v1alpha1.ManagedFields) target.Fields {
	if m == nil {
		return target.Fields{}
	}
	return target.Fields{Overrides: m.Overrides, Slots: m.Slots, Parallelism: int(m.Parallelism), TaskManagerReplicas: int(m.TaskManagerReplicas),
		Memory: maps.Clone(m.MemoryConfiguration), ResourceMemory: m.TaskManagerMemory}
}
