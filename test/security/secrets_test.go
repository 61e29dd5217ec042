package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fakeoperator"
	"github.com/flinkscale/flinkscale/test/fixtures"
	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/flinkrest"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
)

// The passwords the tests look for: distinctive, so that no other text
// contains them by chance.
const (
	brokerUser     = "flinkscale-sasl-user"
	brokerPassword = "s3cr3t-Pa55-7f3c9e1d-broker"
	wrongPassword  = "s3cr3t-Pa55-0a4b8c2e-wrong"
)

// capture collects everything the controller says: log lines (its own, and
// franz-go's at debug level) and events.
type capture struct {
	mu     sync.Mutex
	logs   bytes.Buffer
	events []string
}

func (c *capture) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(&c.logs, format, args...)
	c.logs.WriteByte('\n')
}

func (c *capture) logger() logr.Logger {
	return funcr.New(func(prefix, args string) { c.logf("%s %s", prefix, args) },
		funcr.Options{Verbosity: 10})
}

func (c *capture) Event(obj runtime.Object, typ, reason, msg string) {
	name := ""
	if o, ok := obj.(client.Object); ok {
		name = o.GetName()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, fmt.Sprintf("%s %s %s: %s", name, typ, reason, msg))
}

func (c *capture) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	c.Event(obj, typ, reason, fmt.Sprintf(format, args...))
}

func (c *capture) AnnotatedEventf(obj runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	c.Eventf(obj, typ, reason, format, args...)
}

// kgoLogger sends franz-go's own log lines into the capture.
type kgoLogger struct{ c *capture }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelDebug }
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.c.logf("kgo %s %s %v", level, msg, keyvals)
}

func (c *capture) text() (logs, events string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String(), strings.Join(c.events, "\n")
}

// leaks reports where text holds secret, as itself or base64-encoded.
func leaks(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
			if i := strings.Index(text, form); i >= 0 {
				lo, hi := max(0, i-200), min(len(text), i+len(form)+200)
				t.Errorf("%s holds the password %q:\n...%s...", where, form, text[lo:hi])
			}
		}
	}
}

// setup is one scenario: the Kafka trigger's bootstrap servers and the data
// of the Secret its authenticationRef names.
type setup struct {
	name   string
	broker []simkafka.Option // the job's brokers (the sim produces as the first user)
	// secret builds the Secret data (and may replace the bootstrap servers).
	secret func(b *simkafka.Broker) (bootstrap []string, data map[string][]byte)
	// healthy: the Kafka trigger collects; else want is the event reason
	// that shows its failure.
	healthy bool
	want    string
	run     time.Duration
}

func saslSecret(mech, user, pw string) map[string][]byte {
	return map[string][]byte{
		kafka.KeySASLMechanism: []byte(mech),
		kafka.KeySASLUsername:  []byte(user),
		kafka.KeySASLPassword:  []byte(pw),
	}
}

// TestCredentialsNeverLeak runs a DryRun policy whose Kafka trigger reads
// SASL credentials from a Secret, through a PolicyReconciler against a real
// API server, and looks for the password in every log line (the
// controller's and franz-go's at debug level), every event, the policy
// (status included) and every ConfigMap of the namespace (the DryRun
// report): when the broker accepts the credentials, when it rejects them,
// when it cannot be reached, and when the Secret is malformed.
func TestCredentialsNeverLeak(t *testing.T) {
	env, c := fixtures.StartEnv(t)

	sasl := simkafka.WithSASL(simkafka.SASLScramSHA512, brokerUser, brokerPassword)
	for _, sc := range []setup{
		{
			name: "accepted", broker: []simkafka.Option{sasl}, healthy: true, run: 25 * time.Minute,
			secret: func(b *simkafka.Broker) ([]string, map[string][]byte) {
				return b.Addrs(), saslSecret(kafka.MechanismScramSHA512, brokerUser, brokerPassword)
			},
		},
		{
			name: "rejected", broker: []simkafka.Option{sasl}, run: time.Minute, want: controllers.EventMetricsFailed,
			secret: func(b *simkafka.Broker) ([]string, map[string][]byte) {
				return b.Addrs(), saslSecret(kafka.MechanismScramSHA512, brokerUser, wrongPassword)
			},
		},
		{
			name: "rejected PLAIN", broker: []simkafka.Option{simkafka.WithSASL(simkafka.SASLPlain, brokerUser, brokerPassword)}, run: time.Minute,
			want: controllers.EventMetricsFailed,
			secret: func(b *simkafka.Broker) ([]string, map[string][]byte) {
				return b.Addrs(), saslSecret(kafka.MechanismPlain, brokerUser, wrongPassword)
			},
		},
		{
			name: "unreachable", run: 2 * time.Minute, want: controllers.EventKafkaUnavailable,
			secret: func(*simkafka.Broker) ([]string, map[string][]byte) {
				return []string{fixtures.FreeAddr(t)}, saslSecret(kafka.MechanismScramSHA256, brokerUser, brokerPassword)
			},
		},
		{
			name: "malformed secret", run: time.Minute, want: controllers.EventMetricsFailed,
			secret: func(b *simkafka.Broker) ([]string, map[string][]byte) {
				d := saslSecret("GSSAPI-"+brokerPassword, brokerUser, brokerPassword)
				d[kafka.KeyRequestTimeout] = []byte(brokerPassword)
				d[kafka.KeyTLSEnabled] = []byte(brokerPassword)
				return b.Addrs(), d
			},
		},
	} {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			runScenario(t, env, c, sc)
		})
	}
}

func runScenario(t *testing.T, env *envtest.Env, c client.Client, sc setup) {
	ctx := context.Background()
	ns := env.CreateNamespace(t, "secrets")
	spec := fixtures.OrdersJob()
	broker, err := simkafka.Start(spec.Topics, sc.broker...)
	require.NoError(t, err)
	t.Cleanup(broker.Close)

	var load atomic.Value
	load.Store(1500.0)
	j, err := sim.NewJob(spec, sim.Options{
		Start: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), Seed: 7, Kafka: broker, ProduceEvery: 5 * time.Second,
		Load: sim.TopicRates(spec.Topics, func(string, time.Duration) float64 { return load.Load().(float64) }),
	})
	require.NoError(t, err)
	rest := newServer(t, flinkrest.NewHandler(j))
	clock := clocktesting.NewFakeClock(j.Now())

	capt := &capture{}
	// Everything controller-runtime logs through its global logger too.
	ctrllog.SetLogger(capt.logger())
	t.Cleanup(func() { ctrllog.SetLogger(logr.Discard()) })
	ctx = ctrllog.IntoContext(ctx, capt.logger().WithName("test"))

	fdKey := types.NamespacedName{Namespace: ns, Name: "orders"}
	reg := fakeoperator.NewRegistry()
	reg.Register(fdKey, j)
	var seq atomic.Int64
	op := &fakeoperator.Operator{
		Client: c, Clusters: reg, Clock: clock, Recorder: capt,
		NewJobID: func() string { return fmt.Sprintf("%032x", 0xb0+seq.Add(1)) },
	}
	ctl := &controllers.PolicyReconciler{
		Client:   c,
		Recorder: capt,
		Sources: &controllers.ClientSources{
			Reader: c, Now: j.Now, Timeout: 2 * time.Second,
			KafkaOpts: []kgo.Opt{kgo.WithLogger(kgoLogger{capt})},
		},
		Clock:        clock,
		FixedRequeue: true,
	}

	bootstrap, data := sc.secret(broker)
	sec := &corev1.Secret{Data: data}
	sec.Namespace, sec.Name = ns, "kafka-credentials"
	require.NoError(t, c.Create(ctx, sec))

	fd := envtest.NewFlinkDeployment(ns, fdKey.Name)
	require.NoError(t, unstructured.SetNestedField(fd.Object, fixtures.OrdersDeploymentSpec(target.UpgradeSavepoint), "spec"))
	require.NoError(t, c.Create(ctx, fd))
	pol := &v1alpha1.FlinkScalingPolicy{}
	pol.Namespace, pol.Name = ns, "orders"
	pol.Spec = v1alpha1.FlinkScalingPolicySpec{
		TargetRef: v1alpha1.TargetRef{Name: fdKey.Name},
		Mode:      v1alpha1.ModeDryRun,
		Triggers: &v1alpha1.Triggers{
			Kafka: []v1alpha1.KafkaTrigger{{
				Name: "orders", BootstrapServers: bootstrap, ConsumerGroup: "orders", Topics: []string{"orders"},
				AuthenticationRef: &v1alpha1.AuthenticationRef{Name: sec.Name},
			}},
			FlinkMetrics: &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: rest}},
		},
	}
	require.NoError(t, c.Create(ctx, pol))
	pKey := types.NamespacedName{Namespace: ns, Name: pol.Name}

	// Virtual time, as controllers' tests run it: the job second by
	// second, the operator every 2 s, the controller when it asked.
	var nextOp, nextFS time.Time
	end := j.Now().Add(sc.run)
	for j.Now().Before(end) {
		if sc.healthy && end.Sub(j.Now()) < 12*time.Minute {
			load.Store(3000.0) // a recommendation to report
		}
		require.NoError(t, j.Advance(time.Second))
		now := j.Now()
		clock.SetTime(now)
		if !now.Before(nextOp) {
			_, err := op.Reconcile(ctx, ctrl.Request{NamespacedName: fdKey})
			require.NoError(t, err)
			nextOp = now.Add(2 * time.Second)
		}
		if !now.Before(nextFS) {
			res, err := ctl.Reconcile(ctx, ctrl.Request{NamespacedName: pKey})
			next := 30 * time.Second
			if err != nil {
				capt.logf("reconcile error: %v", err) // what a manager would log
				next = time.Second
			} else if res.RequeueAfter > 0 {
				next = res.RequeueAfter
			}
			nextFS = now.Add(next)
		}
	}

	require.NoError(t, c.Get(ctx, pKey, pol))
	polJSON, err := json.Marshal(pol)
	require.NoError(t, err)
	var cms corev1.ConfigMapList
	require.NoError(t, c.List(ctx, &cms, client.InNamespace(ns)))
	cmJSON, err := json.Marshal(cms)
	require.NoError(t, err)
	logs, events := capt.text()

	// The scenario did what it says: else the checks below prove little.
	ready := meta.FindStatusCondition(pol.Status.Conditions, v1alpha1.ConditionReady)
	require.NotNil(t, ready, "policy status: %+v", pol.Status)
	if sc.healthy {
		assert.Equal(t, "True", string(ready.Status), "policy status: %+v", pol.Status)
		assert.Positive(t, pol.Status.LagRecords, "the Kafka trigger collected")
		found := false
		for _, cm := range cms.Items {
			found = found || cm.Name == pol.Name+controllers.ReportSuffix
		}
		assert.True(t, found, "the DryRun report ConfigMap was written")
	} else {
		assert.Contains(t, events, " "+sc.want+": ", "the Kafka failure is announced")
		assert.Contains(t, ready.Message, "Kafka", "the Ready condition names the Kafka failure")
	}
	t.Logf("captured %d bytes of logs, %d events; Ready=%s %s: %s", len(logs), strings.Count(events, "\n")+1, ready.Status, ready.Reason, ready.Message)

	secrets := []string{brokerPassword, wrongPassword}
	leaks(t, "the log", logs, secrets...)
	leaks(t, "the events", events, secrets...)
	leaks(t, "the policy", string(polJSON), secrets...)
	leaks(t, "the ConfigMaps", string(cmJSON), secrets...)
}

// newServer serves h for the test and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestKafkaConfigRedacted formats a Kafka config with credentials every way
// fmt can, and builds configs from Secrets that put the password where it
// does not belong: neither the text nor the errors hold it.
func TestKafkaConfigRedacted(t *testing.T) {
	cfg, err := kafka.ConfigFromSecret([]string{"broker:9092"}, saslSecret(kafka.MechanismScramSHA512, brokerUser, brokerPassword))
	require.NoError(t, err)
	cfg.TLS = &kafka.TLS{Key: []byte(brokerPassword), ServerName: "broker"}
	require.NotNil(t, cfg.SASL)
	for _, v := range []any{cfg, &cfg, *cfg.SASL, cfg.SASL, *cfg.TLS, cfg.TLS, []kafka.Config{cfg}, map[string]any{"c": cfg}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			leaks(t, fmt.Sprintf("%s of %T", verb, v), fmt.Sprintf(verb, v), brokerPassword)
		}
	}

	for name, data := range map[string]map[string][]byte{
		"bad mechanism":     saslSecret(brokerPassword, brokerUser, brokerPassword),
		"no username":       {kafka.KeySASLMechanism: []byte("PLAIN"), kafka.KeySASLPassword: []byte(brokerPassword)},
		"no mechanism":      {kafka.KeySASLUsername: []byte(brokerUser), kafka.KeySASLPassword: []byte(brokerPassword)},
		"password as bool":  {kafka.KeyTLSEnabled: []byte(brokerPassword)},
		"password as time":  {kafka.KeyRequestTimeout: []byte(brokerPassword)},
		"password as CA":    {kafka.KeyTLSCA: []byte(brokerPassword)},
		"password as key":   {kafka.KeyTLSCert: []byte(brokerPassword), kafka.KeyTLSKey: []byte(brokerPassword)},
		"password as skip":  {kafka.KeyTLSInsecureSkip: []byte(brokerPassword)},
		"password as names": {kafka.KeyCA: []byte(brokerPassword), kafka.KeyTLSCA: []byte("x" + brokerPassword)},
	} {
		_, err := kafka.ConfigFromSecret([]string{"broker:9092"}, data)
		require.Error(t, err, name)
		leaks(t, name+": "+err.Error(), err.Error(), brokerPassword)
	}
}
