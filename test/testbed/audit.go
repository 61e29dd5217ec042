package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Isolation is how an audit reads the output topic: Kafka's isolation.level.
type Isolation string

const (
	// ReadCommitted reads only committed transactions (and records written
	// outside transactions), up to the last stable offset: what a
	// downstream consumer of an exactly-once sink sees.
	ReadCommitted Isolation = "read_committed"
	// ReadUncommitted reads every record up to the high watermark,
	// aborted transactions' records and open transactions' included.
	ReadUncommitted Isolation = "read_uncommitted"
)

// AuditOptions say what an audit reads and what it compares it with.
type AuditOptions struct {
	// Topic is the output topic; it is read from its first offset.
	Topic string
	// Isolation; default ReadCommitted.
	Isolation Isolation
	// Expected returns the ids the topic must hold once each (the
	// producer's, Producer.IDs). It is called at every comparison, so the
	// records produced since count.
	Expected func() []uint64
}

// AuditResult compares an output topic with what was produced, id by id.
// Distinct = Produced − Missing + Unexpected and Read = Distinct +
// Duplicates.
type AuditResult struct {
	Isolation Isolation
	// Produced is the distinct ids expected.
	Produced int64
	// Read is the records read (transaction markers are not records).
	Read int64
	// Distinct is the distinct ids among them.
	Distinct int64
	// Duplicates is Read − Distinct: the copies read beyond the first.
	Duplicates int64
	// Missing is the expected ids not read.
	Missing int64
	// Unexpected is the distinct ids read that were not expected: a
	// record's id mangled, or a record whose produce failed (not
	// acknowledged) that reached the log all the same.
	Unexpected int64
	// MissingExamples are up to 5 missing ids, smallest first.
	MissingExamples []uint64
}

// Exact is true when the output holds every expected id exactly once and
// nothing else.
func (r AuditResult) Exact() bool {
	return r.Duplicates == 0 && r.Missing == 0 && r.Unexpected == 0
}

func (r AuditResult) String() string {
	s := fmt.Sprintf("%s: produced %d, read %d, distinct %d, duplicates %d, missing %d, unexpected %d",
		r.Isolation, r.Produced, r.Read, r.Distinct, r.Duplicates, r.Missing, r.Unexpected)
	if len(r.MissingExamples) > 0 {
		s += fmt.Sprintf(" (missing e.g. %#x)", r.MissingExamples)
	}
	return s
}

// missingExamples is how many missing ids a result names.
const missingExamples = 5

// auditQuiet is how long a read_committed audit waits for records of a
// partition still short of its end before concluding that what is left
// below the end are records of aborted transactions, which the consumer
// drops without saying how far it got (see Auditor.Read).
var auditQuiet = 2 * time.Second

// auditFetchWait bounds how long the broker holds a fetch with nothing to
// return, so that a quiet partition shows quickly.
const auditFetchWait = 200 * time.Millisecond

// Auditor reads an output topic incrementally: each Read continues where
// the last stopped, so waiting for a job to catch up reads each record
// once.
type Auditor struct {
	o    AuditOptions
	cl   *kgo.Client
	next map[int32]int64  // per partition, the offset after the last record read
	seen map[uint64]int32 // how many times each id was read
	read int64
}

// NewAuditor connects to the broker and starts reading o.Topic from its
// first offset with o.Isolation.
func NewAuditor(ctx context.Context, bootstrap string, o AuditOptions) (*Auditor, error) {
	if o.Isolation == "" {
		o.Isolation = ReadCommitted
	}
	level := kgo.ReadUncommitted()
	switch o.Isolation {
	case ReadCommitted:
		level = kgo.ReadCommitted()
	case ReadUncommitted:
	default:
		return nil, fmt.Errorf("testbed: audit: unknown isolation %q", o.Isolation)
	}
	if o.Expected == nil {
		return nil, errors.New("testbed: audit: no expected ids")
	}
	parts, err := topicPartitions(ctx, bootstrap, o.Topic)
	if err != nil {
		return nil, err
	}
	a := &Auditor{o: o, next: map[int32]int64{}, seen: map[uint64]int32{}}
	start := map[int32]kgo.Offset{}
	for _, p := range parts {
		start[p] = kgo.NewOffset().At(0)
		a.next[p] = 0
	}
	a.cl, err = kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: start}),
		kgo.FetchIsolationLevel(level),
		// Transaction markers take offsets too: kept, they tell how far
		// the reader got (and are not counted as records).
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(auditFetchWait),
	)
	if err != nil {
		return nil, fmt.Errorf("testbed: audit: kafka client: %w", err)
	}
	return a, nil
}

// topicPartitions lists a topic's partitions.
func topicPartitions(ctx context.Context, bootstrap, topic string) ([]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, fmt.Errorf("testbed: audit: kafka client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("testbed: audit: metadata of %q: %w", topic, err)
	}
	if len(resp.Topics) != 1 {
		return nil, fmt.Errorf("testbed: audit: metadata of %q: %d topics in the answer", topic, len(resp.Topics))
	}
	t := resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return nil, fmt.Errorf("testbed: audit: metadata of %q: %w", topic, err)
	}
	var parts []int32
	for _, p := range t.Partitions {
		parts = append(parts, p.Partition)
	}
	slices.Sort(parts)
	return parts, nil
}

// Close closes the client.
func (a *Auditor) Close() { a.cl.Close() }

// ends is where each partition's readable records end now: the last
// stable offset for read_committed (offsets of open transactions lie
// beyond), the high watermark for read_uncommitted.
func (a *Auditor) ends(ctx context.Context) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if a.o.Isolation == ReadCommitted {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = a.o.Topic
	for p := range a.next {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // the end
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return nil, fmt.Errorf("testbed: audit: end offsets of %q: %w", a.o.Topic, err)
	}
	ends := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("testbed: audit: end offset of %s/%d: %w", t.Topic, p.Partition, err)
			}
			ends[p.Partition] = p.Offset
		}
	}
	if len(ends) != len(a.next) {
		return nil, fmt.Errorf("testbed: audit: end offsets of %q: %d of %d partitions answered", a.o.Topic, len(ends), len(a.next))
	}
	return ends, nil
}

// Read reads on from where the last Read stopped to the end of every
// partition as it is now (records arriving meanwhile may be read too).
//
// With read_committed, the consumer drops the records of aborted
// transactions without telling how far it got, so a partition whose last
// records below the end are aborted ones (their abort marker written after
// an open transaction began, so beyond the end) never seems to reach it:
// once no record of any unfinished partition arrived for auditQuiet, Read
// concludes that what is left is aborted. A later Read rereads from the
// last record it got.
func (a *Auditor) Read(ctx context.Context) error {
	ends, err := a.ends(ctx)
	if err != nil {
		return err
	}
	lastRecord := time.Now()
	for {
		behind := map[int32]bool{}
		for p, end := range ends {
			if a.next[p] < end {
				behind[p] = true
			}
		}
		if len(behind) == 0 {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, auditQuiet/4)
		fs := a.cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testbed: audit: reading %q: %w", a.o.Topic, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("testbed: audit: reading %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		got := false
		fs.EachRecord(func(r *kgo.Record) {
			got = got || behind[r.Partition]
			a.next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			if len(r.Value) != 8 && ferr == nil {
				ferr = fmt.Errorf("testbed: audit: %s/%d at offset %d holds %d bytes, not an 8-byte id", r.Topic, r.Partition, r.Offset, len(r.Value))
				return
			}
			a.seen[binary.BigEndian.Uint64(r.Value)]++
			a.read++
		})
		if ferr != nil {
			return ferr
		}
		switch {
		case got:
			lastRecord = time.Now()
		case a.o.Isolation == ReadCommitted && time.Since(lastRecord) >= auditQuiet:
			return nil
		}
	}
}

// Result compares what was read so far with o.Expected().
func (a *Auditor) Result() AuditResult {
	expected := map[uint64]struct{}{}
	for _, id := range a.o.Expected() {
		expected[id] = struct{}{}
	}
	r := AuditResult{
		Isolation: a.o.Isolation,
		Produced:  int64(len(expected)),
		Read:      a.read,
		Distinct:  int64(len(a.seen)),
	}
	r.Duplicates = r.Read - r.Distinct
	var missing []uint64
	for id := range expected {
		if a.seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id := range a.seen {
		if _, ok := expected[id]; !ok {
			r.Unexpected++
		}
	}
	r.Missing = int64(len(missing))
	slices.Sort(missing)
	r.MissingExamples = missing[:min(len(missing), missingExamples)]
	return r
}

// Audit reads an output topic from its first offset to its end and
// compares it with the ids expected.
func Audit(ctx context.Context, bootstrap string, o AuditOptions) (AuditResult, error) {
	a, err := NewAuditor(ctx, bootstrap, o)
	if err != nil {
		return AuditResult{}, err
	}
	defer a.Close()
	if err := a.Read(ctx); err != nil {
		return AuditResult{}, err
	}
	return a.Result(), nil
}

// auditOptions are the testbed's: its sink's topic, the producer's ids.
func (tb *Testbed) auditOptions(iso Isolation) (AuditOptions, error) {
	if tb.sink == nil {
		return AuditOptions{}, errors.New("testbed: audit: the workload has no sink (Options.Sink)")
	}
	return AuditOptions{Topic: tb.sink.Topic, Isolation: iso, Expected: tb.Producer.IDs}, nil
}

// Audit compares the sink's output topic, as it is now, with every record
// produced so far. While the job runs, records not yet through it (and,
// with an exactly-once sink, not yet committed) are missing; duplicates
// and unexpected ids are final.
func (tb *Testbed) Audit(ctx context.Context, iso Isolation) (AuditResult, error) {
	o, err := tb.auditOptions(iso)
	if err != nil {
		return AuditResult{}, err
	}
	return Audit(ctx, tb.Kafka.Bootstrap(), o)
}

// AwaitAudit audits the output topic every second, reading only what is
// new, until nothing produced is missing, and returns that result; after
// within it returns the last result and an error. Call it once the
// producer has stopped (Wait): then it waits for the job to catch up and,
// with an exactly-once sink, for the checkpoint that commits its last
// transaction.
func (tb *Testbed) AwaitAudit(ctx context.Context, iso Isolation, within time.Duration) (AuditResult, error) {
	o, err := tb.auditOptions(iso)
	if err != nil {
		return AuditResult{}, err
	}
	a, err := NewAuditor(ctx, tb.Kafka.Bootstrap(), o)
	if err != nil {
		return AuditResult{}, err
	}
	defer a.Close()
	deadline := time.Now().Add(within)
	for {
		if err := a.Read(ctx); err != nil {
			return AuditResult{}, err
		}
		r := a.Result()
		if r.Missing == 0 {
			return r, nil
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("testbed: audit: after %s, %d of %d records produced are still missing from %q", within, r.Missing, r.Produced, o.Topic)
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("testbed: audit: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
