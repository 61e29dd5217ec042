package controllers_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
)

// The controller's Flink requests time out after 300 ms of real time in
// these tests; a slow answer takes a second.
const faultFlinkTimeout = 300 * time.Millisecond

// faultWorld is a world whose Flink REST API sits behind fi.
func faultWorld(t *testing.T, fi *faultInjector, policy func(*v1alpha1.FlinkScalingPolicy)) *world {
	t.Helper()
	return newWorld(t, worldOptions{rest: fi.wrap, flinkTimeout: faultFlinkTimeout, policy: policy})
}

func (w *world) polLabels() []string {
	return []string{"namespace", w.ns, "policy", w.pKey.Name}
}

func condition(p *v1alpha1.FlinkScalingPolicy, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func reasonCodes(d *v1alpha1.DecisionStatus) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// assertUntouched checks that the FlinkDeployment's spec never changed and
// that flinkscale owns none of its fields.
func assertUntouched(t *testing.T, w *world, gen int64) {
	t.Helper()
	u := w.deployment()
	assert.Equal(t, gen, u.GetGeneration(), "the deployment's spec never changed")
	assert.Empty(t, managedBy(t, u, controllers.FieldManager), "flinkscale owns no field")
	assert.Empty(t, w.rescales())
	assert.Nil(t, w.policy().Status.Rescale)
}

// assertOneRescale runs until a rescale succeeds, then on, and checks it
// stays the only one.
func assertOneRescale(t *testing.T, w *world) {
	t.Helper()
	w.until("a rescale succeeds", 12*time.Minute, func() bool {
		rs := w.rescales()
		return len(rs) == 1 && rs[0].Outcome == scaling.OutcomeSucceeded
	})
	w.run(3 * time.Minute)
	assert.Len(t, w.rescales(), 1, w.rec.dump())
	assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventRescaleStarted))
}

// An unreachable, slow, failing or garbled Flink REST API holds the policy:
// Ready=False MetricsError naming the cause, one MetricsFailed event per
// outage, no decision, nothing patched, the error counted. Once the API
// answers again the policy recovers by itself, and a later load step gives
// exactly one rescale.
func TestFaultFlinkRESTOutageHoldsAndRecovers(t *testing.T) {
	for _, c := range []struct {
		fault fault
		cause string // in the Ready message
	}{
		{refuse, "EOF"},
		{slow, "no answer within 300ms"},
		{unavailable, "HTTP 503: Service temporarily unavailable due to an ongoing leader election"},
		{malformed, "decoding *flink.JobDetails: unexpected end of JSON input"},
	} {
		t.Run(c.fault.String(), func(t *testing.T) {
			fi := &faultInjector{}
			w := faultWorld(t, fi, nil)
			w.run(8 * time.Minute)
			p := w.policy()
			require.NotNil(t, p.Status.LastDecision, "decided before the outage")
			require.Equal(t, metav1.ConditionTrue, condition(p, v1alpha1.ConditionReady).Status)
			before := p.Status.LastDecision.Time
			gen := w.deployment().GetGeneration()
			flinkErrs := []string{"source", "flink"}
			errs0 := w.metric("flinkscale_collection_errors_total", append(w.polLabels(), flinkErrs...)...)
			require.Equal(t, 0.0, errs0)

			fi.set(c.fault, nil)
			w.run(3 * time.Minute)
			p = w.policy()
			ready := condition(p, v1alpha1.ConditionReady)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, v1alpha1.ReasonMetricsError, ready.Reason)
			assert.Contains(t, ready.Message, "collecting Flink metrics of job "+w.read().JobID)
			assert.Contains(t, ready.Message, c.cause)
			assert.Equal(t, v1alpha1.ReasonMetricsError, scalingReason(p))
			assert.Equal(t, before, p.Status.LastDecision.Time, "no decision during the outage")
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventMetricsFailed), w.rec.dump())
			// Every poll failed; failing polls back off (30 s, 1 min,
			// 2 min, …): at least three in three minutes.
			assert.GreaterOrEqual(t, w.metric("flinkscale_collection_errors_total", append(w.polLabels(), flinkErrs...)...), 3.0)
			assert.Positive(t, fi.hits.Load())
			assertUntouched(t, w, gen)

			fi.clear()
			cleared := w.job.Now()
			w.until("Ready again", controllers.MaxCollectBackoff+time.Minute, func() bool {
				return condition(w.policy(), v1alpha1.ConditionReady).Status == metav1.ConditionTrue
			})
			t.Logf("recovered %s after the fault was cleared", w.job.Now().Sub(cleared))
			p = w.policy()
			assert.Equal(t, metav1.ConditionTrue, condition(p, v1alpha1.ConditionReady).Status, condition(p, v1alpha1.ConditionReady).Message)
			assert.Equal(t, "target found and metrics collected", condition(p, v1alpha1.ConditionReady).Message)
			require.NotNil(t, p.Status.LastDecision)
			assert.True(t, p.Status.LastDecision.Time.After(before.Time), "decisions resume")
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventMetricsFailed), "still one event for the one outage")
			assertUntouched(t, w, gen)

			w.live.SetRate(3000)
			assertOneRescale(t, w)
		})
	}
}

// Partial metrics during a load step that would otherwise rescale hold the
// policy with the reason code in the decision and the Scaling condition,
// and patch nothing; once the data is whole again it rescales exactly once.
func TestPartialMetricsHold(t *testing.T) {
	const enrich = "Enrich -> Sink"
	for _, c := range []struct {
		name string
		// noKafka: no Kafka trigger, the lag is Flink's alone.
		noKafka bool
		inject  func(w *world, fi *faultInjector)
		code    scaling.ReasonCode
		// inSummary is in the decision's summary.
		inSummary string
	}{
		{name: "vertex metrics missing", code: scaling.ReasonMissingMetrics, inSummary: "busyTimeMsPerSecond",
			inject: func(w *world, fi *faultInjector) { fi.rewriting(dropVertexMetrics(w.vertexID(enrich))) }},
		{name: "vertex metrics malformed", code: scaling.ReasonMissingMetrics, inSummary: "busyTimeMsPerSecond is missing",
			inject: func(w *world, fi *faultInjector) { fi.set(malformed, onVertexMetrics(w.vertexID(enrich))) }},
		{name: "NaN busy time", code: scaling.ReasonNonFiniteMetric, inSummary: "busyTimeMsPerSecond.avg is NaN",
			inject: func(_ *world, fi *faultInjector) { fi.rewriting(nanBusyTime()) }},
		{name: "pendingRecords not registered", noKafka: true, code: scaling.ReasonMissingMetrics, inSummary: "lagRecords is missing",
			inject: func(_ *world, fi *faultInjector) { fi.rewriting(dropPendingRecords()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			fi := &faultInjector{}
			w := faultWorld(t, fi, func(p *v1alpha1.FlinkScalingPolicy) {
				if c.noKafka {
					p.Spec.Triggers.Kafka = nil
				}
			})
			w.run(8 * time.Minute)
			p := w.policy()
			require.NotNil(t, p.Status.LastDecision)
			require.Equal(t, "Hold", p.Status.LastDecision.Action)
			gen := w.deployment().GetGeneration()

			c.inject(w, fi)
			w.live.SetRate(3000)
			start := w.job.Now()
			for w.job.Now().Sub(start) < 6*time.Minute {
				w.run(30 * time.Second)
				d := w.policy().Status.LastDecision
				require.Equal(t, "Hold", d.Action, d.Summary)
			}
			p = w.policy()
			d := p.Status.LastDecision
			assert.True(t, d.Time.After(start), "decisions go on during the fault")
			assert.Contains(t, reasonCodes(d), string(c.code), d.Summary)
			assert.Contains(t, d.Summary, c.inSummary)
			assert.Equal(t, string(c.code), scalingReason(p), condition(p, v1alpha1.ConditionScaling).Message)
			assert.Equal(t, metav1.ConditionTrue, condition(p, v1alpha1.ConditionReady).Status, "collected, partially")
			assert.Zero(t, w.rec.count(kindPolicy, controllers.EventScalingRecommended))
			assert.Positive(t, fi.hits.Load())
			assertUntouched(t, w, gen)

			fi.clear()
			assertOneRescale(t, w)
		})
	}
}

// After a failover (a TaskManager lost) the window starts over: the next
// decisions hold with TooFewSamples, WindowTooShort and WarmingUp however
// overloaded the job is, and the rescale that follows is decided on
// samples of the new attempt only.
func TestPartialWindowAfterRestartHolds(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.run(8 * time.Minute)
	gen := w.deployment().GetGeneration()
	pol, err := w.policy().Spec.ScalingPolicy()
	require.NoError(t, err)

	w.live.SetRate(3000)
	w.run(30 * time.Second)
	restarts := w.job.View().Job.NumRestarts
	w.job.Inject(sim.FaultTaskManagerLoss)
	failedAt := w.job.Now()
	require.Equal(t, restarts+1, w.job.View().Job.NumRestarts, "failed over")

	seen := map[string]int{}
	for w.job.Now().Sub(failedAt) < 5*time.Minute {
		w.run(30 * time.Second)
		d := w.policy().Status.LastDecision
		if d.Time.After(failedAt) {
			require.Equal(t, "Hold", d.Action, d.Summary)
			for _, code := range reasonCodes(d) {
				seen[code]++
			}
		}
	}
	t.Logf("hold reasons after the failover: %v", seen)
	for _, code := range []scaling.ReasonCode{scaling.ReasonTooFewSamples, scaling.ReasonWindowTooShort, scaling.ReasonWarmingUp} {
		assert.Positive(t, seen[string(code)], code)
	}
	p := w.policy()
	assert.Contains(t, []string{string(scaling.ReasonWindowTooShort), string(scaling.ReasonWarmingUp)}, scalingReason(p))
	assertUntouched(t, w, gen)
	running := time.UnixMilli(w.job.View().Job.Timestamps["RUNNING"])
	require.True(t, running.After(failedAt), "the new attempt's RUNNING time")

	assertOneRescale(t, w)
	r := w.rescales()[0]
	// The window of the decision held only the new attempt's samples, past
	// its warm-up, and covered (90 % of) a whole window.
	earliest := running.Add(pol.WarmUp.Duration).Add(pol.MetricsWindow.Duration * 9 / 10)
	assert.False(t, r.DecidedAt.Time.Before(earliest), "decided at %s, before %s", r.DecidedAt.Time, earliest)
}

// kafkaSecret creates a Secret for a trigger's authenticationRef.
func (w *world) kafkaSecret(name string, data map[string]string) {
	w.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name}, StringData: data}
	require.NoError(w.t, w.c.Create(w.ctx, s))
}

// Brokers that do not answer make the policy fall back to Flink's own
// pendingRecords, without the brokers' samples from before the outage: the
// Ready condition and one KafkaUnavailable event say so, and a load step
// still gives exactly one rescale. Without pendingRecords either, it holds
// with MissingMetrics.
func TestKafkaUnreachableFallsBackToFlink(t *testing.T) {
	for _, c := range []struct {
		name      string
		noPending bool
	}{{name: "pendingRecords"}, {name: "no pendingRecords", noPending: true}} {
		t.Run(c.name, func(t *testing.T) {
			fi := &faultInjector{}
			w := faultWorld(t, fi, nil)
			// Quick failures: the brokers' request timeout from the Secret.
			w.kafkaSecret("kafka-fast", map[string]string{"request.timeout": "200ms"})
			w.run(8 * time.Minute)
			require.Equal(t, "Hold", w.policy().Status.LastDecision.Action)
			gen := w.deployment().GetGeneration()
			kafkaErrs := append(w.polLabels(), "source", "kafka")
			require.Equal(t, 0.0, w.metric("flinkscale_collection_errors_total", kafkaErrs...))

			p := w.policy()
			good := p.Spec.Triggers.Kafka[0]
			p.Spec.Triggers.Kafka[0].BootstrapServers = []string{fixtures.FreeAddr(t)}
			p.Spec.Triggers.Kafka[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "kafka-fast"}
			require.NoError(t, w.c.Update(w.ctx, p))
			if c.noPending {
				fi.rewriting(dropPendingRecords())
			}
			w.run(2 * time.Minute)

			p = w.policy()
			ready := condition(p, v1alpha1.ConditionReady)
			assert.Equal(t, metav1.ConditionTrue, ready.Status, ready.Message)
			assert.Contains(t, ready.Message, "Kafka brokers unreachable (trigger orders: kafka:")
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventKafkaUnavailable), w.rec.dump())
			assert.Positive(t, w.metric("flinkscale_collection_errors_total", kafkaErrs...))
			assert.Zero(t, w.rec.count(kindPolicy, controllers.EventMetricsFailed))

			w.live.SetRate(3000)
			if c.noPending {
				assert.Contains(t, ready.Message, "and Flink reports no pendingRecords for Source: orders: holding")
				w.run(6 * time.Minute)
				p = w.policy()
				d := p.Status.LastDecision
				assert.Equal(t, "Hold", d.Action)
				assert.Contains(t, reasonCodes(d), string(scaling.ReasonMissingMetrics), d.Summary)
				assert.Equal(t, string(scaling.ReasonMissingMetrics), scalingReason(p))
				assertUntouched(t, w, gen)
				fi.clear()
			} else {
				assert.Contains(t, ready.Message, "): using Flink's pendingRecords for the lag")
				// The decision is Flink's alone: its lag is pendingRecords.
				w.until("a rescale succeeds on Flink's lag", 12*time.Minute, func() bool {
					rs := w.rescales()
					return len(rs) == 1 && rs[0].Outcome == scaling.OutcomeSucceeded
				})
				// The poll that saw the restarted job read Flink's metric
				// store as fetched when its tasks started, before any
				// record: no pendingRecords yet. The next poll has them.
				w.run(30 * time.Second)
				assert.Contains(t, condition(w.policy(), v1alpha1.ConditionReady).Message, "): using Flink's pendingRecords for the lag")
			}
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventKafkaUnavailable), "one event for the one outage\n%s", w.rec.dump())

			// The brokers answer again: the note goes.
			p = w.policy()
			p.Spec.Triggers.Kafka[0] = good
			require.NoError(t, w.c.Update(w.ctx, p))
			if c.noPending {
				assertOneRescale(t, w)
			} else {
				w.run(3 * time.Minute)
				assert.Len(t, w.rescales(), 1, w.rec.dump())
			}
			assert.Equal(t, "target found and metrics collected", condition(w.policy(), v1alpha1.ConditionReady).Message)
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventKafkaUnavailable))
		})
	}
}

// A consumer group with no committed offsets (the wrong group, or a job
// that does not commit to Kafka): the brokers still give the arrival rates,
// Flink's pendingRecords the lag, the Ready condition says so, and a load
// step gives one rescale.
func TestKafkaUnknownGroupUsesFlinksLag(t *testing.T) {
	w := newWorld(t, worldOptions{policy: func(p *v1alpha1.FlinkScalingPolicy) {
		p.Spec.Triggers.Kafka[0].ConsumerGroup = "nobody"
	}})
	w.run(8 * time.Minute)
	p := w.policy()
	ready := condition(p, v1alpha1.ConditionReady)
	assert.Equal(t, metav1.ConditionTrue, ready.Status)
	assert.Contains(t, ready.Message, "consumer group(s) nobody have no committed offsets (group state Dead): using Flink's pendingRecords for the lag")
	require.NotNil(t, p.Status.LastDecision)
	assert.Equal(t, "Hold", p.Status.LastDecision.Action)
	assert.Equal(t, string(scaling.ReasonWithinBand), scalingReason(p), p.Status.LastDecision.Summary)
	assert.NotContains(t, p.Status.LastDecision.Summary, "no committed offset")
	// Every new job starts without commits: no event, the condition says it.
	assert.Zero(t, w.rec.count(kindPolicy, controllers.EventKafkaUnavailable), w.rec.dump())

	w.live.SetRate(3000)
	assertOneRescale(t, w)
}

// A trigger whose Secret is misconfigured holds the policy with Ready=False
// naming the trigger, the Secret and the key, one MetricsFailed event and
// no decision.
func TestKafkaSecretMisconfigured(t *testing.T) {
	for _, c := range []struct {
		name string
		data map[string]string
		want string
	}{
		{"unknown mechanism", map[string]string{"sasl.mechanism": "GSSAPI", "sasl.username": "flink", "sasl.password": "x"},
			`sasl.mechanism: unknown SASL mechanism`},
		{"missing password", map[string]string{"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "flink"},
			`key "sasl.password" is required with "sasl.mechanism"`},
		{"bad TLS flag", map[string]string{"tls.enabled": "yes please"},
			`key "tls.enabled": not a boolean`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{policy: func(p *v1alpha1.FlinkScalingPolicy) {
				p.Spec.Triggers.Kafka[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "kafka-creds"}
			}})
			w.kafkaSecret("kafka-creds", c.data)
			gen := w.deployment().GetGeneration()
			w.live.SetRate(3000)
			w.run(5 * time.Minute)
			p := w.policy()
			ready := condition(p, v1alpha1.ConditionReady)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, v1alpha1.ReasonMetricsError, ready.Reason)
			assert.Contains(t, ready.Message, `Kafka trigger "orders" (Secret `+w.ns+`/kafka-creds) is misconfigured`)
			assert.Contains(t, ready.Message, c.want)
			assert.Nil(t, p.Status.LastDecision, "no decision")
			assert.Equal(t, v1alpha1.ReasonMetricsError, scalingReason(p))
			assert.Equal(t, 1, w.rec.count(kindPolicy, controllers.EventMetricsFailed), w.rec.dump())
			assert.Positive(t, w.metric("flinkscale_collection_errors_total", append(w.polLabels(), "source", "kafka")...))
			assert.Equal(t, 0.0, w.metric("flinkscale_collection_errors_total", append(w.polLabels(), "source", "flink")...))
			assertUntouched(t, w, gen)
		})
	}
}
