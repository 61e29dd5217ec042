// Package kafka runs the simulator's Kafka on a real, in-process Kafka
// protocol implementation: franz-go's kfake cluster, listening on 127.0.0.1.
// flinkscale's collectors connect to Addrs (with ClientOpts) and see, over
// the wire, exactly the end offsets, committed offsets and lag the simulator
// produced and committed.
//
// The simulator's volumes are fluid (tens of thousands of records per
// partition per virtual second for virtual days), so Produce never sends
// real records: it sends one "sparse" record batch per partition whose
// header claims the count and whose records section is empty (see
// batch.go). kfake advances the high watermark by the claimed count without
// decoding records, so a Produce costs one request whatever the count.
// Fetching these batches is not supported: consumers of the simulated topics
// are the simulator itself, which consumes fluidly and only commits offsets.
package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/flinkscale/flinkscale/test/sim"
)

// SASL mechanisms accepted by WithSASL.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// DefaultSegmentBytes is the segment size of the simulated topics. Trim
// frees a partition's stored batches a whole segment at a time, so small
// segments keep memory close to what the untrimmed tail needs. A sparse
// batch takes 61 bytes, so a 16 KiB segment holds about 270 Produce calls.
const DefaultSegmentBytes = 16 << 10

// Option configures Start.
type Option func(*config)

type config struct {
	brokers      int
	users        []user
	tls          bool
	blackhole    bool
	segmentBytes int64
}

type user struct{ mechanism, name, password string }

// WithBrokers runs n brokers (default 1); partition leaders are spread over
// them and Produce sends each partition's batch to its leader.
func WithBrokers(n int) Option { return func(c *config) { c.brokers = n } }

// WithSASL requires SASL authentication and adds a user with the mechanism
// (SASLPlain, SASLScramSHA256 or SASLScramSHA512). It may be given several
// times; the Broker's own client and ClientOpts authenticate as the first
// user. Users are kfake superusers (no ACLs are enforced).
func WithSASL(mechanism, name, password string) Option {
	return func(c *config) { c.users = append(c.users, user{mechanism, name, password}) }
}

// WithTLS makes the listeners speak TLS with a throwaway self-signed
// certificate for 127.0.0.1; ClientOpts and TLSConfig trust it.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithBlackhole makes the brokers keep no batches at all (kfake's
// BlackholeProduce): offsets still advance and memory stays O(partitions)
// without Trim, but the log holds nothing. Trim still moves the log start
// offset; kfake still adds the dropped bytes to the partition sizes it
// reports (DescribeLogDirs), and never subtracts them.
func WithBlackhole() Option { return func(c *config) { c.blackhole = true } }

// WithSegmentBytes sets the topics' segment.bytes (default
// DefaultSegmentBytes).
func WithSegmentBytes(n int64) Option { return func(c *config) { c.segmentBytes = n } }

// Broker is a kfake cluster holding the simulated topics. It implements
// sim.Kafka over the Kafka protocol and is safe for concurrent use.
type Broker struct {
	cluster   *kfake.Cluster
	cl        *kgo.Client
	adm       *kadm.Client
	addrs     []string
	clientTLS *tls.Config
	mech      sasl.Mechanism

	mu      sync.Mutex
	topics  map[string]*topic
	byID    map[[16]byte]string
	end     map[sim.TopicPartition]int64 // highest end offset seen
	trimmed map[sim.TopicPartition]int64 // log start offset we set

	trimMu    sync.Mutex // serializes Trim: DeleteRecords must not go backwards
	closeOnce sync.Once
}

type topic struct {
	id      [16]byte
	leaders []int32 // by partition
}

var _ sim.Kafka = (*Broker)(nil)

// Start starts a kfake cluster on 127.0.0.1 and creates the topics.
func Start(topics []sim.TopicSpec, opts ...Option) (*Broker, error) {
	cfg := config{brokers: 1, segmentBytes: DefaultSegmentBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.brokers < 1 {
		return nil, fmt.Errorf("kafka: %d brokers", cfg.brokers)
	}
	if cfg.segmentBytes < batchHeaderLen {
		return nil, fmt.Errorf("kafka: segment.bytes %d below one batch", cfg.segmentBytes)
	}
	seen := map[string]bool{}
	for _, t := range topics {
		switch {
		case t.Name == "":
			return nil, errors.New("kafka: topic without a name")
		case seen[t.Name]:
			return nil, fmt.Errorf("kafka: topic %q given twice", t.Name)
		case t.Partitions < 1 || t.Partitions > 1<<20:
			return nil, fmt.Errorf("kafka: topic %q has %d partitions", t.Name, t.Partitions)
		}
		seen[t.Name] = true
	}

	kopts := []kfake.Opt{kfake.NumBrokers(cfg.brokers), kfake.ClusterID("flinkscale-sim")}
	b := &Broker{
		topics:  map[string]*topic{},
		byID:    map[[16]byte]string{},
		end:     map[sim.TopicPartition]int64{},
		trimmed: map[sim.TopicPartition]int64{},
	}
	if cfg.blackhole {
		kopts = append(kopts, kfake.BlackholeProduce())
	}
	if len(cfg.users) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for i, u := range cfg.users {
			m, err := mechanism(u)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				b.mech = m
			}
			kopts = append(kopts, kfake.Superuser(u.mechanism, u.name, u.password))
		}
	}
	if cfg.tls {
		server, client, err := selfSigned()
		if err != nil {
			return nil, fmt.Errorf("kafka: %w", err)
		}
		kopts = append(kopts, kfake.TLS(server))
		b.clientTLS = client
	}

	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start kfake: %w", err)
	}
	b.cluster = c
	b.addrs = c.ListenAddrs()

	configs := map[string]string{
		"segment.bytes": strconv.FormatInt(cfg.segmentBytes, 10),
		// Sparse batches are stamped with wall-clock time; never let
		// retention drop them behind the simulator's back.
		"retention.ms":    "-1",
		"retention.bytes": "-1",
	}
	for _, t := range topics {
		if err := c.CreateTopic(t.Name, int32(t.Partitions), configs); err != nil {
			c.Close()
			return nil, fmt.Errorf("kafka: create topic %q: %w", t.Name, err)
		}
		if !b.refreshTopic(t.Name) {
			c.Close()
			return nil, fmt.Errorf("kafka: topic %q missing after creation", t.Name)
		}
	}

	b.cl, err = kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kafka: client: %w", err)
	}
	b.adm = kadm.NewClient(b.cl)
	return b, nil
}

func mechanism(u user) (sasl.Mechanism, error) {
	switch u.mechanism {
	case SASLPlain:
		return plain.Auth{User: u.name, Pass: u.password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: u.name, Pass: u.password}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: u.name, Pass: u.password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: unknown SASL mechanism %q", u.mechanism)
}

// Addrs returns the bootstrap servers (host:port on 127.0.0.1).
func (b *Broker) Addrs() []string { return slices.Clone(b.addrs) }

// ClientOpts returns what a franz-go client needs to connect: the seed
// brokers, the first SASL user's mechanism and the TLS config, if any.
func (b *Broker) ClientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(b.addrs...)}
	if b.mech != nil {
		opts = append(opts, kgo.SASL(b.mech))
	}
	if b.clientTLS != nil {
		opts = append(opts, kgo.DialTLSConfig(b.clientTLS.Clone()))
	}
	return opts
}

// TLSConfig returns a client TLS config trusting the brokers' certificate,
// or nil without WithTLS.
func (b *Broker) TLSConfig() *tls.Config {
	if b.clientTLS == nil {
		return nil
	}
	return b.clientTLS.Clone()
}

// Cluster returns the kfake cluster, for tests that inject faults or
// inspect partitions directly.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the client and the cluster. It is safe to call twice.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cl.Close()
		b.cluster.Close()
	})
}

// refreshTopic reloads a topic's ID and partition leaders from the cluster;
// false if the topic does not exist.
func (b *Broker) refreshTopic(name string) bool {
	info := b.cluster.TopicInfo(name)
	if info == nil {
		return false
	}
	parts := b.cluster.PartitionInfos(name)
	t := &topic{id: info.TopicID, leaders: make([]int32, len(parts))}
	for i, p := range parts {
		if p.Partition != int32(i) {
			return false
		}
		t.leaders[i] = p.Leader
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.topics[name]; old != nil && old.id != t.id {
		delete(b.byID, old.id)
	}
	b.topics[name] = t
	b.byID[t.id] = name
	return true
}

// known says whether tp exists, asking the cluster once if the topic or
// partition is new to us (created behind our back).
func (b *Broker) known(tp sim.TopicPartition) bool {
	b.mu.Lock()
	ok := b.knownLocked(tp)
	b.mu.Unlock()
	if ok {
		return true
	}
	if tp.Partition < 0 || !b.refreshTopic(tp.Topic) {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.knownLocked(tp)
}

// knownLocked says whether tp is one of our partitions; b.mu is held.
func (b *Broker) knownLocked(tp sim.TopicPartition) bool {
	t := b.topics[tp.Topic]
	return t != nil && tp.Partition >= 0 && int(tp.Partition) < len(t.leaders)
}

// noteEnd records an end offset seen from the broker (they only grow).
func (b *Broker) noteEnd(tp sim.TopicPartition, end int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if end > b.end[tp] {
		b.end[tp] = end
	}
}

func sortedTPs[V any](m map[sim.TopicPartition]V) []sim.TopicPartition {
	return slices.SortedFunc(maps.Keys(m), compareTP)
}

func compareTP(a, b sim.TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Produce implements sim.Kafka: one produce request per leader broker
// (acks -1) carries one sparse batch per partition (more rounds only for
// counts above 2³¹−1), and the base offsets in the response give the new
// end offsets. Partitions with a zero count get theirs from EndOffsets. It
// validates every partition and count before sending anything. If the
// broker rejects some partitions, the others have advanced; the error names
// each rejected partition. Produce requests are not retried, so a lost
// response cannot produce twice.
func (b *Broker) Produce(ctx context.Context, counts map[sim.TopicPartition]int64) (map[sim.TopicPartition]int64, error) {
	var unknown, negative, zero []sim.TopicPartition
	remaining := make(map[sim.TopicPartition]int64, len(counts))
	b.mu.Lock()
	for tp, n := range counts {
		switch {
		case !b.knownLocked(tp):
			unknown = append(unknown, tp)
		case n < 0:
			negative = append(negative, tp)
		case n == 0:
			zero = append(zero, tp)
		default:
			remaining[tp] = n
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, tp := range unknown {
		switch n := counts[tp]; {
		case !b.known(tp):
			errs = append(errs, fmt.Errorf("produce to %s: unknown topic or partition", tp))
		case n < 0:
			negative = append(negative, tp)
		case n == 0:
			zero = append(zero, tp)
		default:
			remaining[tp] = n
		}
	}
	for _, tp := range negative {
		errs = append(errs, fmt.Errorf("produce to %s: negative count %d", tp, counts[tp]))
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}

	out := make(map[sim.TopicPartition]int64, len(counts))
	retries := 0
	for len(remaining) > 0 {
		ends, retry, err := b.produceRound(ctx, remaining)
		if err != nil {
			return nil, err
		}
		for tp, end := range ends {
			n := min(remaining[tp], maxBatchRecords)
			if remaining[tp] -= n; remaining[tp] == 0 {
				delete(remaining, tp)
			}
			out[tp] = end
			b.noteEnd(tp, end)
		}
		if len(retry) > 0 {
			// Leadership moved (only if a test moved it): reload and
			// resend those partitions.
			if retries++; retries > 3 {
				return nil, fmt.Errorf("produce: leaders of %v keep moving", retry)
			}
			for t := range retry {
				b.refreshTopic(t)
			}
		}
	}
	if len(zero) > 0 {
		ends, err := b.EndOffsets(ctx, zero)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, ends)
	}
	return out, nil
}

// produceRound sends at most maxBatchRecords of each partition's remaining
// count, one request per leader, and returns the new end offsets of the
// partitions that took their batch and the topics whose leader moved.
func (b *Broker) produceRound(ctx context.Context, remaining map[sim.TopicPartition]int64) (map[sim.TopicPartition]int64, map[string]bool, error) {
	type leaderReq struct {
		req   *kmsg.ProduceRequest
		index map[string]int // topic → index in req.Topics
	}
	reqs := map[int32]*leaderReq{}
	buf := make([]byte, 0, batchHeaderLen*len(remaining)) // never grows: batches alias it
	now := time.Now().UnixMilli()

	b.mu.Lock()
	for tp, n := range remaining {
		t := b.topics[tp.Topic]
		leader := t.leaders[tp.Partition]
		lr := reqs[leader]
		if lr == nil {
			req := kmsg.NewPtrProduceRequest()
			req.Acks = -1
			req.TimeoutMillis = 30_000
			lr = &leaderReq{req: req, index: map[string]int{}}
			reqs[leader] = lr
		}
		i, ok := lr.index[tp.Topic]
		if !ok {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = tp.Topic
			rt.TopicID = t.id // v13+ names topics by ID
			lr.req.Topics = append(lr.req.Topics, rt)
			i = len(lr.req.Topics) - 1
			lr.index[tp.Topic] = i
		}
		start := len(buf)
		buf = appendSparseBatch(buf, int32(min(n, maxBatchRecords)), now)
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.Records = buf[start:len(buf):len(buf)]
		lr.req.Topics[i].Partitions = append(lr.req.Topics[i].Partitions, rp)
	}
	b.mu.Unlock()

	type result struct {
		sent *kmsg.ProduceRequest
		resp *kmsg.ProduceResponse
		err  error
	}
	results := make([]result, 0, len(reqs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for leader, lr := range reqs {
		wg.Go(func() {
			kr, err := b.cl.Broker(int(leader)).Request(ctx, lr.req)
			r := result{sent: lr.req, err: err}
			if err == nil {
				r.resp = kr.(*kmsg.ProduceResponse)
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		})
	}
	wg.Wait()

	ends := map[sim.TopicPartition]int64{}
	retry := map[string]bool{}
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("produce: %w", r.err))
			continue
		}
		answered := map[sim.TopicPartition]bool{}
		for _, rt := range r.resp.Topics {
			name := rt.Topic
			if name == "" {
				b.mu.Lock()
				name = b.byID[rt.TopicID]
				b.mu.Unlock()
			}
			for _, rp := range rt.Partitions {
				tp := sim.TopicPartition{Topic: name, Partition: rp.Partition}
				if _, sent := remaining[tp]; !sent || answered[tp] {
					continue
				}
				answered[tp] = true
				switch err := kerr.ErrorForCode(rp.ErrorCode); {
				case err == nil:
					ends[tp] = rp.BaseOffset + min(remaining[tp], maxBatchRecords)
				case errors.Is(err, kerr.NotLeaderForPartition):
					retry[tp.Topic] = true
				default:
					msg := ""
					if rp.ErrorMessage != nil {
						msg = " (" + *rp.ErrorMessage + ")"
					}
					errs = append(errs, fmt.Errorf("produce to %s: %w%s", tp, err, msg))
				}
			}
		}
		for _, rt := range r.sent.Topics {
			for _, rp := range rt.Partitions {
				if tp := (sim.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}); !answered[tp] {
					errs = append(errs, fmt.Errorf("produce to %s: missing from the response", tp))
				}
			}
		}
	}
	if len(errs) > 0 {
		// Record what did advance before reporting the failures.
		for tp, end := range ends {
			b.noteEnd(tp, end)
		}
		return nil, nil, errors.Join(errs...)
	}
	return ends, retry, nil
}

// Commit implements sim.Kafka with a standalone ("simple") offset commit
// through kadm: generation -1, no member ID, as a consumer with manually
// assigned partitions commits (Flink's KafkaSource). The group never joins,
// so it stays Empty; kfake, like Kafka, accepts such commits only while the
// group has no members (a live consumer group of the same name would make
// them fail with UNKNOWN_MEMBER_ID). Every offset is checked first, as
// MemoryKafka does (a broker does not check offsets against the log), and
// nothing is committed if one is invalid.
func (b *Broker) Commit(ctx context.Context, group string, offsets map[sim.TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	tps := sortedTPs(offsets)
	var errs []error
	var check []sim.TopicPartition
	for _, tp := range tps {
		if !b.known(tp) {
			errs = append(errs, fmt.Errorf("commit %s: unknown topic or partition", tp))
			continue
		}
		b.mu.Lock()
		end := b.end[tp]
		b.mu.Unlock()
		if o := offsets[tp]; o < 0 || o > end {
			check = append(check, tp)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(check) > 0 {
		// Someone else may have produced: ask the broker before refusing.
		ends, err := b.EndOffsets(ctx, check)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		for _, tp := range check {
			if o := offsets[tp]; o < 0 || o > ends[tp] {
				errs = append(errs, fmt.Errorf("commit %s: offset %d outside [0, %d]", tp, o, ends[tp]))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}

	os := kadm.Offsets{}
	for _, tp := range tps {
		os.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: offsets[tp], LeaderEpoch: -1})
	}
	resp, err := b.adm.CommitOffsets(ctx, group, os)
	if err != nil {
		return fmt.Errorf("commit for group %q: %w", group, err)
	}
	for _, tp := range tps {
		r, ok := resp.Lookup(tp.Topic, tp.Partition)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("commit %s: missing from the response", tp))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("commit %s: %w", tp, r.Err))
		}
	}
	return errors.Join(errs...)
}

// EndOffsets implements sim.Kafka with kadm's ListEndOffsets (ListOffsets,
// latest, read uncommitted: the high watermarks).
func (b *Broker) EndOffsets(ctx context.Context, tps []sim.TopicPartition) (map[sim.TopicPartition]int64, error) {
	var errs []error
	topics := map[string]bool{}
	for _, tp := range tps {
		if !b.known(tp) {
			errs = append(errs, fmt.Errorf("end offset of %s: unknown topic or partition", tp))
		}
		topics[tp.Topic] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make(map[sim.TopicPartition]int64, len(tps))
	if len(tps) == 0 {
		return out, nil
	}
	listed, err := b.adm.ListEndOffsets(ctx, slices.Sorted(maps.Keys(topics))...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	for _, tp := range tps {
		l, ok := listed.Lookup(tp.Topic, tp.Partition)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("end offset of %s: not listed", tp))
		case l.Err != nil:
			errs = append(errs, fmt.Errorf("end offset of %s: %w", tp, l.Err))
		default:
			out[tp] = l.Offset
			b.noteEnd(tp, l.Offset)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Committed implements sim.Kafka with kadm's FetchOffsets (OffsetFetch);
// partitions without a commit are absent.
func (b *Broker) Committed(ctx context.Context, group string) (map[sim.TopicPartition]int64, error) {
	resp, err := b.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[sim.TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %q: %w", group, err)
	}
	out := map[sim.TopicPartition]int64{}
	var errs []error
	resp.Each(func(r kadm.OffsetResponse) {
		tp := sim.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		switch {
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("committed offset of %s in group %q: %w", tp, group, r.Err))
		case r.At >= 0:
			out[tp] = r.At
		}
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Trim implements sim.Kafka with kadm's DeleteRecords: each partition's log
// start offset moves up to below (never down: offsets at or under an
// earlier Trim are skipped), and kfake drops the segments wholly below it.
// Offsets above the end offset, negative ones and unknown partitions are
// errors.
func (b *Broker) Trim(ctx context.Context, below map[sim.TopicPartition]int64) error {
	b.trimMu.Lock()
	defer b.trimMu.Unlock()
	var errs []error
	os := kadm.Offsets{}
	for _, tp := range sortedTPs(below) {
		o := below[tp]
		switch {
		case !b.known(tp):
			errs = append(errs, fmt.Errorf("trim %s: unknown topic or partition", tp))
			continue
		case o < 0:
			errs = append(errs, fmt.Errorf("trim %s: negative offset %d", tp, o))
			continue
		}
		b.mu.Lock()
		done := b.trimmed[tp]
		b.mu.Unlock()
		if o > done {
			os.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: o, LeaderEpoch: -1})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(os) == 0 {
		return nil
	}
	resp, err := b.adm.DeleteRecords(ctx, os)
	if err != nil && len(resp) == 0 {
		return fmt.Errorf("trim: %w", err)
	}
	os.Each(func(o kadm.Offset) {
		tp := sim.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		r, ok := resp.Lookup(o.Topic, o.Partition)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("trim %s: missing from the response", tp))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("trim %s below %d: %w", tp, o.At, r.Err))
		default:
			b.mu.Lock()
			b.trimmed[tp] = max(b.trimmed[tp], r.LowWatermark)
			b.mu.Unlock()
		}
	})
	return errors.Join(errs...)
}
