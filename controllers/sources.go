package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/flinkprom"
	"github.com/flinkscale/flinkscale/metrics/kafka"
)

// FlinkSource collects one job's Flink metrics (metrics/flink and, for the
// Prometheus sources, metrics/flinkprom behind it).
type FlinkSource interface {
	Collect(ctx context.Context, jobID string) (metrics.FlinkSample, error)
}

// KafkaSource collects one consumer group's offsets from the brokers.
type KafkaSource interface {
	Collect(ctx context.Context, group string, topics []string) (metrics.KafkaSample, error)
}

// Sources opens the metric sources a policy names. Implementations cache
// what they open between reconciles and must be safe for concurrent use.
type Sources interface {
	Flink(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy, d *target.Deployment) (FlinkSource, error)
	Kafka(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy, t v1alpha1.KafkaTrigger) (KafkaSource, error)
	// Forget closes and drops what was opened for a policy that is gone.
	Forget(policy types.NamespacedName)
}

// DefaultFlinkRESTPort is the JobManager REST port of the operator's
// <name>-rest Service.
const DefaultFlinkRESTPort = 8081

// ClientSources opens sources from the policy's triggers, reading Secrets
// (credentials) and Pods (Prometheus reporter endpoints) through Reader.
type ClientSources struct {
	// Reader reads Secrets and Pods. An uncached reader (the manager's
	// APIReader) keeps the controller from watching every Secret.
	Reader client.Reader
	// Timeout bounds each Flink HTTP request (default 10s); Kafka's is the
	// Secret's request.timeout or kafka.DefaultRequestTimeout.
	Timeout time.Duration
	// Now stamps Kafka samples; nil is the wall clock.
	Now func() time.Time
	// KafkaOpts are appended to every Kafka client's options (hooks for
	// instrumentation, a logger).
	KafkaOpts []kgo.Opt
	// FlinkOpts are passed to every Flink REST collector: the JobManager's
	// metrics.fetcher.update-interval when a cluster changed it, or, for a
	// simulated cluster, its clock and the wait after priming the metric
	// fetcher (see flink.Collector).
	FlinkOpts []flink.CollectorOption
	// HTTPClient serves every Flink REST source without TLS settings of its
	// own (nil: one shared client with pooled connections): a fleet of jobs
	// shares one connection pool instead of one per job.
	HTTPClient *http.Client

	mu    sync.Mutex
	flink map[string]cached[FlinkSource]
	// Kafka clients are shared by every trigger with the same brokers and
	// credentials (one connection pool and metadata cache per cluster, not
	// per policy); users counts who holds each.
	kafka map[string]*sharedKafka
	// kafkaOf maps a policy's trigger to the shared client it uses.
	kafkaOf map[string]kafkaUse
	hc      *http.Client
}

type sharedKafka struct {
	c     *kafka.Collector
	users map[string]bool // trigger ids
}

type kafkaUse struct {
	policy      types.NamespacedName
	fingerprint string
}

type cached[T any] struct {
	policy      types.NamespacedName
	fingerprint string
	source      T
}

func (s *ClientSources) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 10 * time.Second
}

// secret reads the Secret an authenticationRef names (nil ref: nil data).
func (s *ClientSources) secret(ctx context.Context, ns string, ref *v1alpha1.AuthenticationRef) (map[string][]byte, string, error) {
	if ref == nil {
		return nil, "", nil
	}
	if ref.Kind != "" && ref.Kind != "Secret" {
		return nil, "", fmt.Errorf("authenticationRef kind %q is not supported (only Secret)", ref.Kind)
	}
	var sec corev1.Secret
	if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &sec); err != nil {
		return nil, "", fmt.Errorf("reading Secret %s/%s: %w", ns, ref.Name, err)
	}
	return sec.Data, sec.ResourceVersion, nil
}

// Flink returns the REST collector of the job, merged with the Prometheus
// reporter or a PromQL server when the policy says so.
func (s *ClientSources) Flink(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy, d *target.Deployment) (FlinkSource, error) {
	key := types.NamespacedName{Namespace: pol.Namespace, Name: pol.Name}
	var fm v1alpha1.FlinkMetricsSource
	if t := pol.Spec.Triggers; t != nil && t.FlinkMetrics != nil {
		fm = *t.FlinkMetrics
	}
	url := fmt.Sprintf("http://%s-rest.%s:%d", d.Cluster, d.Namespace, DefaultFlinkRESTPort)
	var restAuth *v1alpha1.AuthenticationRef
	if fm.REST != nil {
		if fm.REST.URL != "" {
			url = fm.REST.URL
		}
		restAuth = fm.REST.AuthenticationRef
	}
	restData, restRV, err := s.secret(ctx, pol.Namespace, restAuth)
	if err != nil {
		return nil, err
	}
	fp := []string{"rest", url, restRV}
	var promData map[string][]byte
	switch {
	case fm.PromQL != nil:
		var rv string
		promData, rv, err = s.secret(ctx, pol.Namespace, fm.PromQL.AuthenticationRef)
		if err != nil {
			return nil, err
		}
		fp = append(fp, "promql", fm.PromQL.URL, rv)
	case fm.Prometheus != nil:
		fp = append(fp, "reporter", strconv.Itoa(int(fm.Prometheus.Port)))
	}
	id := key.String()
	fingerprint := strings.Join(fp, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.flink[id]; ok && c.fingerprint == fingerprint {
		return c.source, nil
	}
	opts, err := httpOptions(restData)
	if err != nil {
		return nil, fmt.Errorf("Flink REST authenticationRef: %w", err)
	}
	opts = append(opts, flink.WithTimeout(s.timeout()))
	if !hasTLS(restData) {
		opts = append(opts, flink.WithHTTPClient(s.httpClient()))
	}
	rc, err := flink.New(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("Flink REST client for %s: %w", url, err)
	}
	copts := append([]flink.CollectorOption{flink.WithInFlight(RESTConnectionsPerJobManager)}, s.FlinkOpts...)
	src := &flinkSource{rest: flink.NewCollector(rc, copts...), client: rc}
	switch {
	case fm.PromQL != nil:
		api, err := promQLAPI(fm.PromQL.URL, promData, s.timeout())
		if err != nil {
			return nil, fmt.Errorf("PromQL source: %w", err)
		}
		q := &flinkprom.PromQL{API: api}
		src.prom = func(ctx context.Context, jobID string) (metrics.FlinkSample, error) {
			return q.Collect(ctx, jobID, time.Now())
		}
	case fm.Prometheus != nil:
		port := int(fm.Prometheus.Port)
		if port == 0 {
			port = 9249
		}
		reader, ns, app := s.Reader, d.Namespace, d.Cluster
		timeout := s.timeout()
		src.prom = func(ctx context.Context, jobID string) (metrics.FlinkSample, error) {
			targets, err := reporterTargets(ctx, reader, ns, app, port)
			if err != nil {
				return metrics.FlinkSample{}, err
			}
			sc := &flinkprom.Scraper{JobID: jobID, Timeout: timeout}
			return sc.Scrape(ctx, targets)
		}
	}
	if s.flink == nil {
		s.flink = map[string]cached[FlinkSource]{}
	}
	s.flink[id] = cached[FlinkSource]{policy: key, fingerprint: fingerprint, source: src}
	return src, nil
}

// httpClient is the shared client of REST sources without TLS settings.
// Called with s.mu held.
func (s *ClientSources) httpClient() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	if s.hc == nil {
		s.hc = &http.Client{Transport: NewRESTTransport()}
	}
	return s.hc
}

// NewRESTTransport is the transport of the shared client of REST sources
// without TLS settings: flink.Transport, which sends the polls' GETs on
// kept-alive connections without goroutines of their own, keeping
// RESTConnectionsPerJobManager idle per JobManager and
// MaxRESTIdleConnections in all; anything else (a rescale's PUT, a proxy's
// traffic) goes through a clone of net/http's default transport.
func NewRESTTransport() *flink.Transport {
	fb := http.DefaultTransport.(*http.Transport).Clone()
	return &flink.Transport{Fallback: fb, Proxy: fb.Proxy,
		MaxIdlePerHost: RESTConnectionsPerJobManager, MaxIdle: restIdleBound(openFileLimit())}
}

// restIdleBound is how many idle REST connections to keep under a limit of
// nofile open files (0: unknown): MaxRESTIdleConnections, or half the
// limit when that is less (the rest for Kafka, the API server, the
// connections in flight), but at least 1,000.
func restIdleBound(nofile uint64) int {
	if nofile == 0 || nofile/2 >= MaxRESTIdleConnections {
		return MaxRESTIdleConnections
	}
	return max(int(nofile/2), 1000)
}

// RESTConnectionsPerJobManager is how many requests a poll of a job has in
// flight to its JobManager, and how many idle connections to it the
// shared client keeps between polls. Flink's REST server speaks HTTP/1.1:
// a request in flight holds a connection. At 1,000 jobs of make
// bench-scale with a host per JobManager, one lane instead of four took
// net/http's dialling (6.8 % of the controller's CPU) and 32 MiB of RSS
// away, but a poll's 15 requests one after the other left 8 workers short
// of 5,000 jobs on that 2-core machine (a poll every 65 s, against 40 s
// with four; docs/benchmarks.md, 2026-12-06 night). flink.Transport keeps
// the four without that cost.
const RESTConnectionsPerJobManager = 4

// MaxRESTIdleConnections bounds the idle connections the shared REST
// client keeps: four for each of 10,000 JobManagers. An idle connection of
// flink.Transport is a socket and its file descriptor: under a lower limit
// of open files (Go raises the process's soft limit to the hard one at
// start; a container's is often 1,048,576, but can be 20,000) it keeps half
// the limit (restIdleBound), and polls beyond it dial some connections
// anew.
const MaxRESTIdleConnections = 40000

// hasTLS reports whether a REST Secret carries TLS material (which needs a
// client of its own).
func hasTLS(data map[string][]byte) bool {
	return len(data["ca"]) > 0 || len(data["cert"]) > 0 || len(data["key"]) > 0
}

// flinkSource is REST, optionally merged with a Prometheus sample (whose
// values win for complete vertices: that is why the user chose it).
type flinkSource struct {
	rest   *flink.Collector
	client *flink.Client
	prom   func(ctx context.Context, jobID string) (metrics.FlinkSample, error)
}

// FlinkControl reads and rescales a job through Flink's REST API: the path
// of clusters that run without the operator. The REST FlinkSource that
// Sources.Flink returns implements it.
type FlinkControl interface {
	// Observe reads the cluster's configuration and version, the job
	// (by name; "" the only one not finished, cancelled or failed) and,
	// under the adaptive scheduler, its resource requirements.
	Observe(ctx context.Context, jobName string) (target.FlinkView, error)
	// SetParallelism sets every vertex's resource requirements to
	// [1, parallelism] (Flink requires them all).
	SetParallelism(ctx context.Context, jobID string, par map[string]int) error
	// IdleTaskManagers are the hosts (IP addresses) of the TaskManagers
	// with every slot free.
	IdleTaskManagers(ctx context.Context) ([]string, error)
}

// FlinkPrimer is a FlinkSource that can prime Flink's metric fetcher ahead
// of a Collect (flink.Collector.PrimeAhead): the REST source, when it reads
// the metrics from the REST API. A wrapper of a FlinkSource passes it on.
type FlinkPrimer interface {
	PrimeAhead(ctx context.Context, jobID string) (time.Duration, error)
}

// FlinkProber is a FlinkSource that can check quickly that the JobManager
// answers at all: the REST source. A wrapper of a FlinkSource passes it on.
type FlinkProber interface {
	Probe(ctx context.Context) error
}

// Probe asks the JobManager for its cluster overview (GET /overview), a
// small answer it serves from memory.
func (f *flinkSource) Probe(ctx context.Context) error {
	_, err := f.client.Overview(ctx)
	return err
}

// PrimeAhead primes the JobManager's metric fetcher when the metrics come
// from its REST API (not from Prometheus) and the next Collect would.
func (f *flinkSource) PrimeAhead(ctx context.Context, jobID string) (time.Duration, error) {
	if f.prom != nil {
		return 0, nil
	}
	return f.rest.PrimeAhead(ctx, jobID)
}

func (f *flinkSource) Observe(ctx context.Context, jobName string) (target.FlinkView, error) {
	var v target.FlinkView
	conf, err := f.client.JobManagerConfig(ctx)
	if err != nil {
		return v, fmt.Errorf("reading /jobmanager/config: %w", err)
	}
	v.Configuration = conf
	o, err := f.client.Overview(ctx)
	if err != nil {
		return v, fmt.Errorf("reading /overview: %w", err)
	}
	v.Version = o.FlinkVersion
	if o.TaskManagers > 0 {
		v.Slots = o.SlotsTotal / o.TaskManagers
	}
	jobs, err := f.client.Jobs(ctx)
	if err != nil {
		return v, fmt.Errorf("listing jobs: %w", err)
	}
	j, err := pickJob(jobs, jobName)
	if err != nil {
		return v, err
	}
	v.JobID, v.JobState = j.ID, j.State
	if !strings.EqualFold(conf[target.KeyScheduler], "adaptive") || strings.EqualFold(conf[target.KeySchedulerMode], "reactive") || j.State != "RUNNING" {
		return v, nil
	}
	req, err := f.client.GetResourceRequirements(ctx, j.ID)
	if err != nil {
		return v, fmt.Errorf("reading the resource requirements of job %s: %w", j.ID, err)
	}
	v.Requirements = make(map[string]int, len(req))
	for id, b := range req {
		v.Requirements[id] = b.UpperBound
	}
	return v, nil
}

// pickJob is the job named name, or without a name the only one that is
// not globally terminal; a newer job of the name wins over an older one.
func pickJob(jobs []flink.JobOverview, name string) (flink.JobOverview, error) {
	var live []flink.JobOverview
	for _, j := range jobs {
		if name != "" && j.Name != name {
			continue
		}
		switch j.State {
		case "FINISHED", "CANCELED", "FAILED":
		default:
			live = append(live, j)
		}
	}
	switch {
	case len(live) == 1:
		return live[0], nil
	case len(live) == 0 && name != "":
		return flink.JobOverview{}, fmt.Errorf("no job named %q is running on the cluster (%d jobs known)", name, len(jobs))
	case len(live) == 0:
		return flink.JobOverview{}, fmt.Errorf("no job is running on the cluster (%d finished)", len(jobs))
	case name != "":
		return flink.JobOverview{}, fmt.Errorf("%d jobs named %q run on the cluster: rename one", len(live), name)
	}
	names := make([]string, 0, len(live))
	for _, j := range live {
		names = append(names, strconv.Quote(j.Name))
	}
	return flink.JobOverview{}, fmt.Errorf("%d jobs run on the cluster (%s): set targetRef.jobName", len(live), strings.Join(names, ", "))
}

func (f *flinkSource) SetParallelism(ctx context.Context, jobID string, par map[string]int) error {
	req := make(map[string]flink.Bounds, len(par))
	for id, p := range par {
		req[id] = flink.Bounds{LowerBound: 1, UpperBound: p}
	}
	return f.client.PutResourceRequirements(ctx, jobID, req)
}

func (f *flinkSource) IdleTaskManagers(ctx context.Context) ([]string, error) {
	tms, err := f.client.TaskManagers(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, tm := range tms {
		if tm.SlotsNumber > 0 && tm.FreeSlots == tm.SlotsNumber {
			if h := taskManagerHost(tm.Path); h != "" {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// taskManagerHost is the host of a TaskManager's RPC address
// ("pekko.tcp://flink@10.244.1.17:6122/user/rpc/taskmanager_0" → 10.244.1.17).
func taskManagerHost(path string) string {
	_, rest, ok := strings.Cut(path, "@")
	if !ok {
		return ""
	}
	hostPort, _, _ := strings.Cut(rest, "/")
	host := hostPort
	if i := strings.LastIndex(hostPort, ":"); i >= 0 {
		host = hostPort[:i]
	}
	host = strings.Trim(host, "[]")
	if strings.ContainsAny(host, "@/") {
		return "" // not an RPC address
	}
	return host
}

func (f *flinkSource) Collect(ctx context.Context, jobID string) (metrics.FlinkSample, error) {
	rs, err := f.rest.Collect(ctx, jobID)
	if err != nil || f.prom == nil {
		return rs, err
	}
	ps, err := f.prom(ctx, rs.JobID)
	if err != nil {
		// REST's own metrics still stand; say what is missing.
		rs.Missing = append(rs.Missing, "prometheus: "+err.Error())
		return rs, nil
	}
	return flinkprom.MergeWith(rs, ps, flinkprom.MergeOptions{PreferPrometheus: true}), nil
}

// reporterTargets lists the running pods of a FlinkDeployment (the operator
// labels them app=<name>, component=jobmanager|taskmanager) as reporter
// endpoints.
func reporterTargets(ctx context.Context, r client.Reader, ns, app string, port int) ([]flinkprom.Target, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		return nil, fmt.Errorf("listing pods of %s/%s: %w", ns, app, err)
	}
	var out []flinkprom.Target
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		role := flinkprom.TaskManager
		if p.Labels["component"] == "jobmanager" {
			role = flinkprom.JobManager
		}
		out = append(out, flinkprom.Target{URL: fmt.Sprintf("http://%s:%d", p.Status.PodIP, port), Role: role})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no running pod labeled app=%s in %s", app, ns)
	}
	slices.SortFunc(out, func(a, b flinkprom.Target) int { return strings.Compare(a.URL, b.URL) })
	return out, nil
}

// httpOptions turns a REST Secret (keys username, password, bearerToken,
// ca, cert, key) into client options.
func httpOptions(data map[string][]byte) ([]flink.Option, error) {
	if data == nil {
		return nil, nil
	}
	var opts []flink.Option
	user, pass := string(data["username"]), string(data["password"])
	switch {
	case len(data["bearerToken"]) > 0:
		opts = append(opts, flink.WithBearerToken(strings.TrimSpace(string(data["bearerToken"]))))
	case user != "":
		opts = append(opts, flink.WithBasicAuth(user, pass))
	}
	tc, err := tlsFromSecret(data)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, flink.WithTLSConfig(tc))
	}
	return opts, nil
}

func tlsFromSecret(data map[string][]byte) (*tls.Config, error) {
	ca, cert, key := data["ca"], data["cert"], data["key"]
	if len(ca) == 0 && len(cert) == 0 && len(key) == 0 {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("key ca: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	if (len(cert) > 0) != (len(key) > 0) {
		return nil, errors.New("keys cert and key must be set together")
	}
	if len(cert) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("keys cert and key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// promQLAPI is a Prometheus API client with the Secret's credentials.
func promQLAPI(url string, data map[string][]byte, timeout time.Duration) (promv1.API, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := tlsFromSecret(data)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	var rt http.RoundTripper = tr
	if tok := strings.TrimSpace(string(data["bearerToken"])); tok != "" {
		rt = headerRoundTripper{rt, "Authorization", "Bearer " + tok}
	} else if u := string(data["username"]); u != "" {
		rt = basicRoundTripper{rt, u, string(data["password"])}
	}
	c, err := promapi.NewClient(promapi.Config{Address: url, RoundTripper: timeoutRoundTripper{rt, timeout}})
	if err != nil {
		return nil, err
	}
	return promv1.NewAPI(c), nil
}

type headerRoundTripper struct {
	next        http.RoundTripper
	name, value string
}

func (h headerRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.next.RoundTrip(r)
}

type basicRoundTripper struct {
	next       http.RoundTripper
	user, pass string
}

func (b basicRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

type timeoutRoundTripper struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t timeoutRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), t.timeout)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	body   io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Read(p []byte) (int, error) { return c.body.Read(p) }
func (c cancelOnClose) Close() error {
	err := c.body.Close()
	c.cancel()
	return err
}

// Kafka returns the collector of one trigger's brokers, shared with every
// other trigger that has the same brokers and credentials.
func (s *ClientSources) Kafka(ctx context.Context, pol *v1alpha1.FlinkScalingPolicy, t v1alpha1.KafkaTrigger) (KafkaSource, error) {
	key := types.NamespacedName{Namespace: pol.Namespace, Name: pol.Name}
	data, rv, err := s.secret(ctx, pol.Namespace, t.AuthenticationRef)
	if err != nil {
		return nil, err
	}
	id := key.String() + "\x00" + t.Name + "\x00" + t.ConsumerGroup
	secret := ""
	if t.AuthenticationRef != nil {
		secret = pol.Namespace + "/" + t.AuthenticationRef.Name + "@" + rv
	}
	fingerprint := strings.Join(t.BootstrapServers, ",") + "\x00" + secret
	s.mu.Lock()
	defer s.mu.Unlock()
	if use, ok := s.kafkaOf[id]; ok {
		if use.fingerprint == fingerprint {
			return s.kafka[fingerprint].c, nil
		}
		s.release(id, use.fingerprint)
	}
	sh := s.kafka[fingerprint]
	if sh == nil {
		cfg, err := kafka.ConfigFromSecret(t.BootstrapServers, data)
		if err != nil {
			return nil, fmt.Errorf("Kafka trigger %q: %w", t.Name, err)
		}
		cfg.ClientOpts = append(cfg.ClientOpts, s.KafkaOpts...)
		kc, err := kafka.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("Kafka trigger %q: %w", t.Name, err)
		}
		kc.Now = s.Now
		sh = &sharedKafka{c: kc, users: map[string]bool{}}
		if s.kafka == nil {
			s.kafka = map[string]*sharedKafka{}
			s.kafkaOf = map[string]kafkaUse{}
		}
		s.kafka[fingerprint] = sh
	}
	sh.users[id] = true
	s.kafkaOf[id] = kafkaUse{policy: key, fingerprint: fingerprint}
	return sh.c, nil
}

// release drops trigger id from a shared client, closing it when nobody
// uses it. Called with s.mu held.
func (s *ClientSources) release(id, fingerprint string) {
	delete(s.kafkaOf, id)
	if sh := s.kafka[fingerprint]; sh != nil {
		delete(sh.users, id)
		if len(sh.users) == 0 {
			sh.c.Close()
			delete(s.kafka, fingerprint)
		}
	}
}

// Forget drops (and closes) what was opened for policy.
func (s *ClientSources) Forget(policy types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.flink {
		if c.policy == policy {
			delete(s.flink, id)
		}
	}
	for id, use := range s.kafkaOf {
		if use.policy == policy {
			s.release(id, use.fingerprint)
		}
	}
}
