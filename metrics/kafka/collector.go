package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flinkscale/flinkscale/metrics"
)

// Collector polls a Kafka cluster for consumer group offsets. It is safe
// for concurrent use.
type Collector struct {
	// Now stamps samples; nil is the wall clock. Tests and the simulator
	// set a virtual clock, so that arrival rates are per virtual second.
	Now     func() time.Time
	cl      *kgo.Client
	adm     *kadm.Client
	timeout time.Duration
	hooks   *hooks
	cfg     Config
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// hooks remembers the last connection failure, to
// explain a failed Collect.
type hooks struct {
	mu       sync.Mutex
	conn     error // last connection attempt's error
	saslRead error // last failed read of a SASL response
}

func (h *hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = err // nil on success: forget older failures
	if err == nil {
		h.saslRead = nil
	}
}

// OnBrokerRead notes a failed read of a SASL response: brokers close the
// connection on bad credentials (kfake without a response, Kafka after
// SASL_AUTHENTICATION_FAILED), so it is the sign of an authentication
// failure.
func (h *hooks) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil || (key != int16(kmsg.SASLHandshake) && key != int16(kmsg.SASLAuthenticate)) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saslRead = err
}

// saslFailed is whether the last connection attempt failed reading a SASL
// response.
func (h *hooks) saslFailed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.saslRead != nil && h.conn != nil
}

func (h *hooks) lastConnErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn
}

var (
	_ kgo.HookBrokerConnect = (*hooks)(nil)
	_ kgo.HookBrokerRead    = (*hooks)(nil)
)

// New validates cfg and creates the client. It does not connect: the first
// Collect does.
func New(cfg Config) (*Collector, error) {
	opts, err := cfg.kgoOpts()
	if err != nil {
		return nil, err
	}
	timeout := cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	h := &hooks{}
	opts = append(opts,
		kgo.WithHooks(h),
		kgo.ClientID("flinkscale"),
		kgo.DialTimeout(min(timeout, 10*time.Second)),
		kgo.RetryTimeout(timeout),
		kgo.RequestTimeoutOverhead(min(timeout, 10*time.Second)),
		// (Topic auto-creation stays off: asking about a deleted topic
		// must not recreate it.)
	)
	opts = append(opts, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client: %w", err)
	}
	return &Collector{cl: cl, adm: kadm.NewClient(cl), timeout: timeout, hooks: h, cfg: cfg}, nil
}

// Close closes the client.
func (c *Collector) Close() { c.cl.Close() }

// Collect reads, for every partition of topics (or, when topics is empty,
// of every topic the group has commits for), the end, start and committed
// offsets, and the group's state. It sends a bounded number of requests
// whatever the partition count, and returns within the RequestTimeout.
// Topics that do not exist and partitions whose offsets could not be read
// are in Missing; an error means nothing useful could be read (brokers
// unreachable, authentication failed, the group's offsets unreadable).
func (c *Collector) Collect(ctx context.Context, group string, topics []string) (metrics.KafkaSample, error) {
	if group == "" {
		return metrics.KafkaSample{}, errors.New("kafka: collect: empty consumer group")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s := metrics.KafkaSample{Group: group}
	topics = dedupe(topics)

	var (
		wg          sync.WaitGroup
		committed   kadm.OffsetResponses
		commitErr   error
		described   kadm.DescribedGroups
		describeErr error
		meta        map[string]topicMeta
		metaErr     error
	)
	given := len(topics) > 0
	wg.Go(func() { committed, commitErr = c.adm.FetchOffsets(ctx, group) })
	wg.Go(func() { described, describeErr = c.adm.DescribeGroups(ctx, group) })
	if given {
		wg.Go(func() { meta, metaErr = c.metadata(ctx, topics) })
	}
	wg.Wait()
	if commitErr != nil && !errors.Is(commitErr, kerr.GroupIDNotFound) {
		return s, c.explain("fetch committed offsets of group "+group, commitErr)
	}
	if !given {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				topics = append(topics, o.Topic)
			}
		})
		topics = dedupe(topics)
		if len(topics) > 0 {
			meta, metaErr = c.metadata(ctx, topics)
		}
	}
	if metaErr != nil {
		return s, c.explain("metadata", metaErr)
	}

	var missing []string
	switch g, ok := described[group]; {
	case describeErr != nil && !ok:
		if isFatal(describeErr) {
			return s, c.explain("describe group "+group, describeErr)
		}
		missing = append(missing, "group state: "+errName(describeErr))
	case errors.Is(g.Err, kerr.GroupIDNotFound):
		s.GroupState = "Dead" // no such group (newer brokers say so instead of Dead)
	case g.Err != nil:
		missing = append(missing, "group state: "+errName(g.Err))
	default:
		s.GroupState = g.State
	}
	if len(topics) == 0 {
		s.At = c.now()
		s.Missing = missing
		return s, nil
	}

	// One ListOffsets request each for the end and the start offsets;
	// franz-go splits each by partition leader.
	end := listOffsetsRequest()
	start := listOffsetsRequest()
	for _, t := range topics {
		td, ok := meta[t]
		switch {
		case !ok:
			missing = append(missing, t+": "+kerr.UnknownTopicOrPartition.Message)
			continue
		case td.err != nil:
			missing = append(missing, t+": "+errName(td.err))
			continue
		}
		et := kmsg.NewListOffsetsRequestTopic()
		et.Topic = t
		for _, pd := range td.partitions {
			if pd.leader < 0 {
				missing = append(missing, fmt.Sprintf("%s-%d: %s", t, pd.partition, errName(cmp.Or(pd.err, error(kerr.LeaderNotAvailable)))))
				continue
			}
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = pd.partition
			rp.CurrentLeaderEpoch = -1
			et.Partitions = append(et.Partitions, rp)
		}
		if len(et.Partitions) == 0 {
			continue
		}
		st := et
		st.Partitions = slices.Clone(et.Partitions)
		for i := range et.Partitions {
			et.Partitions[i].Timestamp = -1
			st.Partitions[i].Timestamp = -2
		}
		end.Topics = append(end.Topics, et)
		start.Topics = append(start.Topics, st)
	}

	var (
		ends, starts     map[tpKey]listed
		endErr, startErr error
		sent             = c.now()
		received         time.Time
	)
	if len(end.Topics) > 0 {
		wg.Go(func() {
			ends, endErr = c.listOffsets(ctx, end)
			received = c.now()
		})
		wg.Go(func() { starts, startErr = c.listOffsets(ctx, start) })
		wg.Wait()
	} else {
		received = sent
	}
	if err := cmp.Or(endErr, startErr); err != nil {
		return s, c.explain("list offsets", err)
	}
	s.At = sent.Add(received.Sub(sent) / 2)

	// Errors by topic, to report a topic once when all its partitions
	// failed alike (e.g. deleted after the metadata request).
	failed := map[string][]string{}
	for _, t := range end.Topics {
		var errs []string
		for _, rp := range t.Partitions {
			k := tpKey{t.Topic, rp.Partition}
			e, s0 := ends[k], starts[k]
			var why string
			switch {
			case e.err != nil:
				why = errName(e.err)
			case s0.err != nil:
				why = errName(s0.err)
			}
			var off int64 = -1
			if why == "" {
				if o, ok := committed.Lookup(t.Topic, rp.Partition); ok {
					if o.Err != nil {
						why = "committed offset: " + errName(o.Err)
					} else if o.At >= 0 {
						off = o.At
					}
				}
			}
			if why != "" {
				errs = append(errs, why)
				failed[t.Topic] = append(failed[t.Topic], fmt.Sprintf("%s-%d: %s", t.Topic, rp.Partition, why))
				continue
			}
			s.Partitions = append(s.Partitions, metrics.KafkaPartition{
				Topic: t.Topic, Partition: int(rp.Partition),
				End: e.offset, Start: s0.offset, Committed: off,
			})
		}
		if len(errs) == len(t.Partitions) && len(errs) > 1 && allSame(errs) {
			missing = append(missing, t.Topic+": "+errs[0])
		} else {
			missing = append(missing, failed[t.Topic]...)
		}
	}
	slices.Sort(missing)
	s.Missing = missing
	return s, nil
}

type topicMeta struct {
	err        error
	partitions []partitionMeta // sorted
}

type partitionMeta struct {
	partition, leader int32
	err               error
}

// metadata asks the brokers about the topics, bypassing franz-go's cache
// (kadm.Metadata would reuse metadata up to MetadataMinAge old, hiding
// deletions and new partitions); the response refreshes that cache, which
// the ListOffsets requests then use to find the leaders.
func (c *Collector) metadata(ctx context.Context, topics []string) (map[string]topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, err
	}
	out := make(map[string]topicMeta, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		tm := topicMeta{err: kerr.ErrorForCode(t.ErrorCode)}
		if isAuth(tm.err) {
			return nil, tm.err
		}
		for _, p := range t.Partitions {
			tm.partitions = append(tm.partitions, partitionMeta{p.Partition, p.Leader, kerr.ErrorForCode(p.ErrorCode)})
		}
		slices.SortFunc(tm.partitions, func(a, b partitionMeta) int { return cmp.Compare(a.partition, b.partition) })
		out[*t.Topic] = tm
	}
	return out, nil
}

type tpKey struct {
	topic     string
	partition int32
}

type listed struct {
	offset int64
	err    error
}

func listOffsetsRequest() *kmsg.ListOffsetsRequest {
	r := kmsg.NewPtrListOffsetsRequest()
	r.ReplicaID = -1
	r.IsolationLevel = 0 // read uncommitted: the high watermark
	return r
}

// listOffsets sends req, split by leader, and returns each partition's
// offset or error. A shard that failed as a whole fails its partitions
// with its Kafka error; a connection or authentication failure is returned.
func (c *Collector) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (map[tpKey]listed, error) {
	out := map[tpKey]listed{}
	for _, sh := range c.cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			if isFatal(sh.Err) {
				return nil, sh.Err
			}
			r, ok := sh.Req.(*kmsg.ListOffsetsRequest)
			if !ok {
				return nil, sh.Err
			}
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					out[tpKey{t.Topic, p.Partition}] = listed{-1, sh.Err}
				}
			}
			continue
		}
		resp, ok := sh.Resp.(*kmsg.ListOffsetsResponse)
		if !ok {
			return nil, fmt.Errorf("unexpected response %T", sh.Resp)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				err := kerr.ErrorForCode(p.ErrorCode)
				if isAuth(err) {
					return nil, err
				}
				out[tpKey{t.Topic, p.Partition}] = listed{p.Offset, err}
			}
		}
	}
	// Partitions asked for but absent from every response.
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			k := tpKey{t.Topic, p.Partition}
			if _, ok := out[k]; !ok {
				out[k] = listed{-1, errors.New("NO_RESPONSE")}
			}
		}
	}
	return out, nil
}

func allSame(s []string) bool {
	for _, x := range s[1:] {
		if x != s[0] {
			return false
		}
	}
	return true
}

func dedupe(topics []string) []string {
	out := slices.Clone(topics)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	return out
}

// errName is a Kafka error's name (UNKNOWN_TOPIC_OR_PARTITION), or the
// error's text.
func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// isAuth says whether err is a Kafka authentication or authorization error.
func isAuth(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// isFatal says whether err fails a whole Collect rather than a partition:
// anything that is not a Kafka protocol error (connection, TLS, context),
// and authentication or authorization failures.
func isFatal(err error) bool {
	var ke *kerr.Error
	return !errors.As(err, &ke) || isAuth(err)
}

// explain wraps a failed request's error with what most likely went wrong,
// using the last connection failure the client saw (franz-go retries dial
// and handshake failures until the deadline, which then hides them).
func (c *Collector) explain(what string, err error) error {
	conn := c.hooks.lastConnErr()
	errs := []error{err}
	if conn != nil && !errors.Is(err, conn) {
		errs = append(errs, conn)
	}
	joined := errors.Join(errs...)
	brokers := strings.Join(c.cfg.BootstrapServers, ",")
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
		alert     tls.AlertError
		certVerif *tls.CertificateVerificationError
	)
	anyAs := func(target any) bool {
		for _, e := range errs {
			if errors.As(e, target) {
				return true
			}
		}
		return false
	}
	anyIs := func(target error) bool {
		for _, e := range errs {
			if errors.Is(e, target) {
				return true
			}
		}
		return false
	}
	var netErr net.Error
	switch {
	case anyIs(kerr.SaslAuthenticationFailed):
		return fmt.Errorf("kafka: %s: SASL authentication failed with brokers %s (check %s, %s and %s): %w",
			what, brokers, KeySASLMechanism, KeySASLUsername, KeySASLPassword, joined)
	case c.cfg.SASL != nil && c.hooks.saslFailed():
		// The broker closed the connection during the SASL exchange (what
		// it does on bad credentials, before or instead of an error code):
		// say so in the chain too, so that errors.Is(err,
		// kerr.SaslAuthenticationFailed) holds for callers (the controller
		// fails the collection instead of treating it as an outage).
		return fmt.Errorf("kafka: %s: SASL authentication failed with brokers %s (check %s, %s and %s): %w",
			what, brokers, KeySASLMechanism, KeySASLUsername, KeySASLPassword, errors.Join(kerr.SaslAuthenticationFailed, joined))
	case anyIs(kerr.UnsupportedSaslMechanism), anyIs(kerr.IllegalSaslState):
		return fmt.Errorf("kafka: %s: SASL misconfiguration: brokers %s do not accept the mechanism in %s (or do not use SASL): %w",
			what, brokers, KeySASLMechanism, joined)
	case anyIs(kerr.TopicAuthorizationFailed), anyIs(kerr.GroupAuthorizationFailed), anyIs(kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("kafka: %s: not authorized (ACLs of user in %s): %w", what, KeySASLUsername, joined)
	case anyAs(&unknownCA), anyAs(&hostErr), anyAs(&certErr), anyAs(&certVerif):
		return fmt.Errorf("kafka: %s: TLS: the brokers' certificate was not accepted (check %s/%s and %s): %w",
			what, KeyTLSCA, KeyCA, KeyTLSServerName, joined)
	case anyAs(&recErr):
		return fmt.Errorf("kafka: %s: TLS handshake failed: brokers %s do not seem to speak TLS (remove the tls.* keys?): %w", what, brokers, joined)
	case anyAs(&alert):
		return fmt.Errorf("kafka: %s: TLS handshake rejected by brokers %s (client certificate in %s/%s?): %w", what, brokers, KeyTLSCert, KeyTLSKey, joined)
	case c.cfg.TLS == nil && c.cfg.TLSConfig == nil && (anyIs(io.EOF) || anyIs(io.ErrUnexpectedEOF) || anyIs(syscall.ECONNRESET)):
		return fmt.Errorf("kafka: %s: brokers %s closed the connection during setup (do they require TLS or SASL?): %w", what, brokers, joined)
	case c.cfg.SASL == nil && (anyIs(io.EOF) || anyIs(io.ErrUnexpectedEOF) || anyIs(syscall.ECONNRESET)):
		return fmt.Errorf("kafka: %s: brokers %s closed the connection during setup (do they require SASL?): %w", what, brokers, joined)
	case (c.cfg.TLS != nil || c.cfg.TLSConfig != nil) && anyAs(&netErr) && netErr.Timeout():
		return fmt.Errorf("kafka: %s: brokers %s unreachable or not answering within %s (a TLS handshake that never completes: do the brokers speak TLS on this port?): %w",
			what, brokers, c.timeout, joined)
	}
	return fmt.Errorf("kafka: %s: brokers %s unreachable or not answering within %s: %w", what, brokers, c.timeout, joined)
}
