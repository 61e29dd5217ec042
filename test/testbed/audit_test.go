package testbed

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flinkscale/flinkscale/test/sim"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

// fakeKafka is an in-process broker (kfake) with the given topics, each of
// two partitions.
func fakeKafka(t *testing.T, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topics...))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func idRecords(topic string, part int32, ids ...uint64) []*kgo.Record {
	var rs []*kgo.Record
	for _, id := range ids {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, id)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: part, Value: v})
	}
	return rs
}

func client(t *testing.T, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// transaction writes records in one transaction and commits or aborts it
// (or, with end nil, leaves it open).
func transaction(t *testing.T, cl *kgo.Client, end *kgo.TransactionEndTry, recs ...*kgo.Record) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	if end != nil {
		require.NoError(t, cl.EndTransaction(ctx, *end))
	}
}

func ids(from, to uint64) []uint64 {
	var out []uint64
	for id := from; id <= to; id++ {
		out = append(out, id)
	}
	return out
}

func expect(xs []uint64) func() []uint64 { return func() []uint64 { return xs } }

func TestAuditReadCommittedSeesOnlyCommittedTransactions(t *testing.T) {
	addr := fakeKafka(t, "out")
	ctx := context.Background()
	commit, abort := kgo.TryCommit, kgo.TryAbort
	tx := client(t, addr, kgo.TransactionalID("sink-0"))
	// Ids 1 to 10 were produced.
	transaction(t, tx, &commit, append(idRecords("out", 0, 1, 2, 3), idRecords("out", 1, 4, 5, 6)...)...) // T1
	transaction(t, tx, &abort, idRecords("out", 0, 7, 8, 1)...)                                           // T2
	transaction(t, tx, &commit, idRecords("out", 1, 7, 8)...)                                             // T3
	transaction(t, tx, nil, idRecords("out", 0, 9)...)                                                    // T4, open

	committed, err := Audit(ctx, addr, AuditOptions{Topic: "out", Isolation: ReadCommitted, Expected: expect(ids(1, 10))})
	require.NoError(t, err)
	// T1 and T3: 6 + 2 = 8 records, ids 1 to 8, each once; 9 (open) and
	// 10 (never written) missing.
	assert.Equal(t, AuditResult{
		Isolation: ReadCommitted, Produced: 10, Read: 8, Distinct: 8, Duplicates: 0, Missing: 2, Unexpected: 0,
		MissingExamples: []uint64{9, 10},
	}, committed)

	uncommitted, err := Audit(ctx, addr, AuditOptions{Topic: "out", Isolation: ReadUncommitted, Expected: expect(ids(1, 10))})
	require.NoError(t, err)
	// Every record: 6 + 3 + 2 + 1 = 12, ids 1 to 9; 1, 7 and 8 twice, so
	// 12 − 9 = 3 duplicates; 10 missing.
	assert.Equal(t, AuditResult{
		Isolation: ReadUncommitted, Produced: 10, Read: 12, Distinct: 9, Duplicates: 3, Missing: 1, Unexpected: 0,
		MissingExamples: []uint64{10},
	}, uncommitted)
}

func TestAuditCountsDuplicatesMissingAndUnexpected(t *testing.T) {
	for _, c := range []struct {
		name     string
		p0, p1   []uint64 // written to partitions 0 and 1
		expected []uint64
		want     AuditResult
	}{{
		name: "exact", p0: []uint64{1, 2}, p1: []uint64{3}, expected: ids(1, 3),
		want: AuditResult{Produced: 3, Read: 3, Distinct: 3},
	}, {
		// 6 records of 3 ids: one extra 2 and two extra 3s.
		name: "duplicates", p0: []uint64{1, 2, 3}, p1: []uint64{2, 3, 3}, expected: ids(1, 3),
		want: AuditResult{Produced: 3, Read: 6, Distinct: 3, Duplicates: 3},
	}, {
		name: "missing", p0: []uint64{1}, p1: []uint64{3}, expected: ids(1, 4),
		want: AuditResult{Produced: 4, Read: 2, Distinct: 2, Missing: 2, MissingExamples: []uint64{2, 4}},
	}, {
		// 5 was never produced, and read twice: one unexpected id, one
		// duplicate.
		name: "unexpected", p0: []uint64{1, 5}, p1: []uint64{2, 5}, expected: ids(1, 2),
		want: AuditResult{Produced: 2, Read: 4, Distinct: 3, Duplicates: 1, Unexpected: 1},
	}, {
		// The producer's ids are a set: an id listed twice is expected once.
		name: "expected twice", p0: []uint64{1}, expected: []uint64{1, 1},
		want: AuditResult{Produced: 1, Read: 1, Distinct: 1},
	}, {
		name: "empty topic", expected: ids(1, 7),
		want: AuditResult{Produced: 7, Missing: 7, MissingExamples: ids(1, 5)},
	}} {
		t.Run(c.name, func(t *testing.T) {
			addr := fakeKafka(t, "out")
			cl := client(t, addr)
			recs := append(idRecords("out", 0, c.p0...), idRecords("out", 1, c.p1...)...)
			if len(recs) > 0 {
				require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
			}
			got, err := Audit(context.Background(), addr, AuditOptions{Topic: "out", Expected: expect(c.expected)})
			require.NoError(t, err)
			c.want.Isolation = ReadCommitted // the default
			assert.Equal(t, c.want, got)
		})
	}
}

// An aborted transaction whose abort marker comes after an open one began
// lies below the last stable offset, and the consumer drops it without a
// word: the read ends after a quiet spell, and a later one goes on.
func TestAuditorReadsPastAbortedRecordsAndOnLater(t *testing.T) {
	defer func(q time.Duration) { auditQuiet = q }(auditQuiet)
	auditQuiet = 300 * time.Millisecond
	addr := fakeKafka(t, "out")
	ctx := context.Background()
	a, b := client(t, addr, kgo.TransactionalID("sink-0")), client(t, addr, kgo.TransactionalID("sink-1"))
	require.NoError(t, a.BeginTransaction())
	require.NoError(t, a.ProduceSync(ctx, idRecords("out", 0, 1)...).FirstErr()) // offset 0
	commit, abort := kgo.TryCommit, kgo.TryAbort
	transaction(t, b, nil, idRecords("out", 0, 2)...) // offset 1, open: the last stable offset
	require.NoError(t, a.EndTransaction(ctx, abort))  // its marker at offset 2

	aud, err := NewAuditor(ctx, addr, AuditOptions{Topic: "out", Expected: expect(ids(1, 2))})
	require.NoError(t, err)
	defer aud.Close()
	start := time.Now()
	require.NoError(t, aud.Read(ctx))
	assert.Less(t, time.Since(start), 10*auditQuiet, "the read ends")
	assert.Equal(t, AuditResult{Isolation: ReadCommitted, Produced: 2, Missing: 2, MissingExamples: []uint64{1, 2}}, aud.Result())

	require.NoError(t, b.EndTransaction(ctx, commit))
	require.NoError(t, aud.Read(ctx))
	// Id 2 committed; id 1's transaction was aborted.
	assert.Equal(t, AuditResult{Isolation: ReadCommitted, Produced: 2, Read: 1, Distinct: 1, Missing: 1, MissingExamples: []uint64{1}}, aud.Result())
}

func TestAuditRefusesWhatItCannotRead(t *testing.T) {
	addr := fakeKafka(t, "out")
	ctx := context.Background()
	_, err := Audit(ctx, addr, AuditOptions{Topic: "nope", Expected: expect(nil)})
	assert.ErrorContains(t, err, `metadata of "nope"`)
	_, err = Audit(ctx, addr, AuditOptions{Topic: "out", Isolation: "read_dirty", Expected: expect(nil)})
	assert.ErrorContains(t, err, `unknown isolation "read_dirty"`)
	cl := client(t, addr)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte("hello")}).FirstErr())
	_, err = Audit(ctx, addr, AuditOptions{Topic: "out", Expected: expect(nil)})
	assert.ErrorContains(t, err, "out/0 at offset 0 holds 5 bytes, not an 8-byte id")
}

func testScenario(partitions int) *scenario.Scenario {
	return &scenario.Scenario{Seed: 7, Job: sim.JobSpec{Topics: []sim.TopicSpec{{Name: "events", Partitions: partitions}}}}
}

// The producer's ids are what it got acknowledged: a batch the broker
// refused leaves a hole in the sequence numbers, not in the ids expected,
// and an audit of a faithful copy finds nothing missing.
func TestProducerCountsOnlyAcknowledgedRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events", "out"))
	require.NoError(t, err)
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx := context.Background()
	p, err := NewProducer(addr, testScenario(2))
	require.NoError(t, err)
	defer p.Close()

	require.NoError(t, p.produce(ctx, "events", 0, 5)) // seq 0–4
	// The broker refuses the next produce request, not retriably.
	c.ControlKey(kmsg.Produce.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	assert.Error(t, p.produce(ctx, "events", 0, 3))    // seq 5–7, refused
	require.NoError(t, p.produce(ctx, "events", 0, 2)) // seq 8–9
	require.NoError(t, p.produce(ctx, "events", 1, 4)) // seq 0–3

	// 5 + 2 records on partition 0, 4 on partition 1.
	assert.Equal(t, []int64{7, 4}, p.Produced("events"))
	assert.Equal(t, [][]SeqRange{{{0, 5}, {8, 10}}, {{0, 4}}}, p.Acked("events"))
	got := p.IDs()
	require.Len(t, got, 11)
	assert.Equal(t, p.ID("events", 0, 8), got[5], "after seq 0–4 comes seq 8")
	assert.NotContains(t, got, p.ID("events", 0, 5))

	// A faithful copy of the topic, as a sink would write it.
	cl := client(t, addr)
	var copied []*kgo.Record
	for _, id := range got {
		copied = append(copied, idRecords("out", int32(id%2), id)...)
	}
	require.NoError(t, cl.ProduceSync(ctx, copied...).FirstErr())
	r, err := Audit(ctx, addr, AuditOptions{Topic: "out", Expected: p.IDs})
	require.NoError(t, err)
	assert.True(t, r.Exact(), "%s", r)
	assert.Equal(t, int64(11), r.Produced)
}

func TestAddSeqsMergesNeighbours(t *testing.T) {
	rs := addSeqs(nil, []uint64{2, 0, 1, 5})
	assert.Equal(t, []SeqRange{{0, 3}, {5, 6}}, rs)
	assert.Equal(t, []SeqRange{{0, 3}, {5, 8}, {9, 10}}, addSeqs(rs, []uint64{6, 7, 9}))
}
