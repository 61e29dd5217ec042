package flinkprom

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
)

const srcID = "cbc357ccb763df2852fee8c4fc7d55f2"

// onSubtask moves reference labels to another subtask.
func onSubtask(labels string, i int) string {
	return strings.Replace(labels, `subtask_index="0"`, fmt.Sprintf(`subtask_index="%d"`, i), 1)
}

// badFamily is a family whose one sample has a value that is no number.
func badFamily(name string) string {
	return "# TYPE " + name + " gauge\n" + name + `{job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718",} 1,0` + "\n"
}

// scrapeTargets aggregates expositions as Scrape does, each under its
// target name ("taskmanager tm-<i>" for tms[i], "jobmanager jm").
func scrapeTargets(t *testing.T, jm string, tms ...string) metrics.FlinkSample {
	t.Helper()
	a := newAggregator("")
	for i, tm := range tms {
		e, err := parseExposition([]byte(tm))
		require.NoError(t, err)
		a.addTaskManager(fmt.Sprintf("taskmanager tm-%d", i), e)
	}
	if jm != "" {
		e, err := parseExposition([]byte(jm))
		require.NoError(t, err)
		a.addJobManager("jobmanager jm", e)
	}
	s, err := a.sample(time.Time{}, nil, false, jm != "")
	require.NoError(t, err)
	return s
}

// TestMalformedFamilyCostsOnlyItself: through HTTP, a TaskManager whose
// exposition has a malformed family the scraper reads and one it does not
// read still counts; only the numRecordsOut of its subtask is lost.
func TestMalformedFamilyCostsOnlyItself(t *testing.T) {
	tm0 := taskFamily(mBusy, sourceTask+` 100.0`) +
		strings.Replace(taskFamily(mRecordsOut, sourceTask+` 7.0`), ` 7.0`, ` 7,0`, 1) +
		badFamily("flink_taskmanager_Status_JVM_CPU_Load") +
		opFamily(mRecordsIn, sourceOp+` 50.0`)
	tm1 := taskFamily(mBusy, onSubtask(sourceTask, 1)+` 300.0`) +
		taskFamily(mRecordsOut, onSubtask(sourceTask, 1)+` 7.0`) +
		opFamily(mRecordsIn, onSubtask(sourceOp, 1)+` 60.0`)
	jm := family(prefixJMJob+mCompleted, "jobmanager_job", jmJob+` 3.0`) +
		family(prefixJMJob+mFailed, "jobmanager_job", jmJob+` 0.0`) +
		family(prefixJMJob+mInProgress, "jobmanager_job", jmJob+` 0.0`)
	var urls []string
	var targets []Target
	for i, body := range []string{jm, tm0, tm1} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
		role := TaskManager
		if i == 0 {
			role = JobManager
		}
		targets = append(targets, Target{URL: srv.URL, Role: role})
	}
	s, err := (&Scraper{}).Scrape(context.Background(), targets)
	require.NoError(t, err)
	v := vertexOf(s, srcID)
	require.NotNil(t, v)
	assert.Equal(t, 2, v.Parallelism, "both TaskManagers count")
	assert.Equal(t, &metrics.Agg{Avg: 200, Max: 300}, v.BusyTimeMsPerSecond, "(100+300)/2, max 300")
	assert.Equal(t, 110.0, *v.NumRecordsIn, "50 + 60")
	assert.Nil(t, v.NumRecordsOut, "subtask 0's family did not parse")
	tm0Where := "taskmanager " + urls[1]
	assert.Contains(t, s.Missing, srcID+": numRecordsOut: 1 of 2 subtasks reported (1 in a metric family on "+tm0Where+" that did not parse)")
	assert.Contains(t, s.Missing, srcID+": subtasks: 2 reported; a TaskManager's exposition had metric families that did not parse")
	for _, m := range s.Missing {
		assert.NotContains(t, m, "JVM", "a family the scraper does not read costs nothing")
		assert.NotContains(t, m, "parsing the exposition", "no target failed")
	}
	assert.Equal(t, []string{
		tm0Where + `: family flink_taskmanager_job_task_numRecordsOut skipped: line 6: expected float as value, got "7,0"`,
		tm0Where + `: family flink_taskmanager_Status_JVM_CPU_Load skipped: line 8: expected float as value, got "1,0"`,
	}, s.Dropped)
	require.NotNil(t, s.Checkpoints)
	assert.Equal(t, 3, s.Checkpoints.Completed)
}

// TestLostFamilies: what a family that did not parse would have said is
// unknown, never taken from elsewhere.
func TestLostFamilies(t *testing.T) {
	offsetFamily := func(metric, value string) string {
		return opFamily("KafkaSourceReader_topic_partition_"+metric, offset+" "+value)
	}
	jmOK := func(name, v string) string { return family(prefixJMJob+name, "jobmanager_job", jmJob+" "+v) }
	for _, tc := range []struct {
		name, tm, jm string
		check        func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample)
	}{{
		name: "a source's operator-scope input lost: missing, not the task's 0",
		tm:   taskFamily(mRecordsIn, sourceTask+` 0.0`) + badFamily(prefixOperator+mRecordsIn) + opFamily(mPending, sourceOp+` 5.0`),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			assert.Nil(t, v.NumRecordsIn)
			assert.Contains(t, s.Missing, srcID+": numRecordsIn: 0 of 1 subtasks reported (1 in a metric family on taskmanager tm-0 that did not parse)")
		},
	}, {
		name: "both offset families lost: the partitions are unknown",
		tm:   opFamily(mPending, sourceOp+` 5.0`) + badFamily(familyOffsets+mCurrentOffset) + badFamily(familyOffsets+mCommitted),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			assert.Nil(t, v.Partitions)
			assert.Equal(t, 5.0, *v.PendingRecords)
			assert.Contains(t, s.Missing, srcID+": partitions: the KafkaSourceReader offsets of 1 of 1 subtasks are in metric families on taskmanager tm-0 that did not parse")
		},
	}, {
		name: "one offset family lost: the owners are known (each partition has both gauges), that offset is -1",
		tm:   opFamily(mPending, sourceOp+` 5.0`) + offsetFamily(mCurrentOffset, "4.5231007E7") + badFamily(familyOffsets+mCommitted),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			assert.Equal(t, []metrics.PartitionOwner{{Topic: "orders_v1", Partition: 3, Subtask: 0, CurrentOffset: 45231007, CommittedOffset: -1}}, v.Partitions)
		},
	}, {
		name: "a family the scraper does not read costs nothing",
		tm:   taskFamily(mBusy, sourceTask+` 10.0`) + badFamily(prefixTask+"idleTimeMsPerSecond"),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			assert.Equal(t, &metrics.Agg{Avg: 10, Max: 10}, v.BusyTimeMsPerSecond)
			for _, m := range s.Missing {
				assert.NotContains(t, m, "subtasks:", "not partial")
				assert.NotContains(t, m, "idleTime")
			}
			assert.Len(t, s.Dropped, 1)
		},
	}, {
		name: "a checkpoint gauge lost is missing, with where",
		tm:   taskFamily(mBusy, sourceTask+` 10.0`),
		jm:   jmOK(mCompleted, "3.0") + badFamily(prefixJMJob+mFailed) + jmOK(mInProgress, "0.0") + jmOK(mCheckpointDuration, "-1.0"),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			require.NotNil(t, s.Checkpoints)
			assert.Equal(t, 3, s.Checkpoints.Completed)
			assert.Contains(t, s.Missing, "checkpoints: numberOfFailedCheckpoints: its metric family on jobmanager jm did not parse")
			assert.Contains(t, s.Missing, "checkpoints: lastCheckpointDuration: -1 (none yet)")
			assert.Contains(t, s.Missing, "checkpoints: lastCheckpointSize")
		},
	}, {
		name: "every checkpoint gauge lost: no checkpoints",
		tm:   taskFamily(mBusy, sourceTask+` 10.0`),
		jm:   badFamily(prefixJMJob+mCompleted) + badFamily(prefixJMJob+mFailed) + badFamily(prefixJMJob+mInProgress) + family("flink_jobmanager_numRegisteredTaskManagers", "jobmanager", `{host="h",} 2.0`),
		check: func(t *testing.T, v *metrics.VertexSample, s metrics.FlinkSample) {
			assert.Nil(t, s.Checkpoints)
			assert.Contains(t, s.Missing, "checkpoints: numberOfCompletedCheckpoints: its metric family on jobmanager jm did not parse")
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := scrapeTargets(t, tc.jm, tc.tm)
			v := vertexOf(s, srcID)
			require.NotNil(t, v)
			tc.check(t, v, s)
		})
	}
}

func TestDroppedIsBounded(t *testing.T) {
	var tm strings.Builder
	tm.WriteString(taskFamily(mBusy, sourceTask+` 10.0`))
	for i := range 7 {
		tm.WriteString(badFamily(fmt.Sprintf("flink_taskmanager_user_%d", i)))
	}
	s := scrapeTargets(t, "", tm.String())
	require.Len(t, s.Dropped, maxDroppedPerTarget+1, "5 families, then a count")
	assert.Equal(t, "taskmanager tm-0: 2 more metric families skipped", s.Dropped[5], "7 − 5")

	// 5 targets × 6 entries = 30: 19 listed, then "11 more".
	s = scrapeTargets(t, "", tm.String(), tm.String(), tm.String(), tm.String(), tm.String())
	require.Len(t, s.Dropped, maxDropped)
	assert.Equal(t, "11 more entries not listed", s.Dropped[maxDropped-1])
}

func TestOffsetsSentinelsAreUnknown(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want int64
	}{
		{45231007, 45231007},
		{0, 0},
		{-1, -1},            // KafkaSourceReader before the first fetch or commit
		{-915623761776, -1}, // the legacy consumer's OFFSET_NOT_SET
		{-2, -1},            // KafkaPartitionSplit.EARLIEST_OFFSET
		{-3, -1},            // KafkaPartitionSplit.COMMITTED_OFFSET
		{math.MinInt64, -1}, // NO_STOPPING_OFFSET, Long.MIN_VALUE
		{math.NaN(), -1},    // not measured
		{math.Inf(1), -1},   // not an offset
		{math.MaxInt64, -1}, // beyond what a float says exactly
		{1 << 52, 1 << 52},  // still exact
		{-0.5, -1},          // no offset is fractional and negative
		{4.5231007e7, 4.5231007e7},
	} {
		assert.Equal(t, tc.want, toOffset(tc.in), "%v", tc.in)
	}
	// Through the scraper: a committed offset before the first commit.
	tm := opFamily("KafkaSourceReader_topic_partition_currentOffset", offset+` 4.5231007E7`) +
		opFamily("KafkaSourceReader_topic_partition_committedOffset", offset+` -9.15623761776E11`)
	v := vertexOf(scrapeTargets(t, "", tm), srcID)
	require.NotNil(t, v)
	assert.Equal(t, []metrics.PartitionOwner{{Topic: "orders_v1", Partition: 3, Subtask: 0, CurrentOffset: 45231007, CommittedOffset: -1}}, v.Partitions)
}

func TestOutputFromSource(t *testing.T) {
	n := func(x float64) *float64 { return &x }
	for _, tc := range []struct {
		name                               string
		taskCount, srcCount, taskRate, src *float64
		count, rate                        bool
	}{
		{"task's present and not 0: the task's", n(150), n(300), n(15), n(30), false, false},
		{"task's 0, source's not (counters): the source's, both", n(0), n(300), n(15), n(30), true, true},
		{"both 0: nothing was emitted, the task's", n(0), n(0), n(0), n(0), false, false},
		{"task's absent: the source's", nil, n(300), nil, n(30), true, true},
		{"task's count absent, its rate 0 (rates decide): the source's, both", nil, n(300), n(0), n(30), true, true},
		{"task's count 0, source's count absent, rates 0 vs 30: the source's (missing count, not 0)", n(0), nil, n(0), n(30), true, true},
		{"counters decide over rates: task's 10 vs 300, rate 0 vs 30", n(10), n(300), n(0), n(30), false, false},
		{"source's absent: the task's", n(0), nil, n(0), nil, false, false},
		{"nothing: the task's (missing)", nil, nil, nil, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count, rate := outputFromSource(tc.taskCount, tc.srcCount, tc.taskRate, tc.src)
			assert.Equal(t, tc.count, count, "count from the source")
			assert.Equal(t, tc.rate, rate, "rate from the source")
		})
	}
}

// TestSourceOutputFallsBack: a source vertex of two subtasks; the task's
// and the source operator's output as the reporter exports them.
func TestSourceOutputFallsBack(t *testing.T) {
	task := func(metric string, v0, v1 string) string {
		return taskFamily(metric, sourceTask+" "+v0, onSubtask(sourceTask, 1)+" "+v1)
	}
	op := func(labels func(int) string, metric string, v0, v1 string) string {
		return opFamily(metric, labels(0)+" "+v0, labels(1)+" "+v1)
	}
	head := func(i int) string { return onSubtask(sourceOp, i) }
	// named: the source operator under an id that is not the task's.
	named := func(i int) string {
		return onSubtask(strings.Replace(sourceOp, `operator_id="`+srcID+`"`, `operator_id="feedfacefeedfacefeedfacefeedface"`, 1), i)
	}
	// notSource: a head operator that is no source, with a chained Map.
	notSource := func(i int) string { return onSubtask(strings.Replace(sourceOp, "Source:_Kafka_Source", "Map", 1), i) }
	for _, tc := range []struct {
		name           string
		tm             string
		count, rate    *float64 // want; nil: missing
		missingContain string
	}{{
		name:  "task-level absent: the source operator's (100+200, 10+20)",
		tm:    op(head, mRecordsOut, "100.0", "200.0") + op(head, mRecordsOutRate, "10.0", "20.0"),
		count: f64(300), rate: f64(30),
	}, {
		name:  "task-level 0 while the source operator's is not: the source operator's",
		tm:    task(mRecordsOut, "0.0", "0.0") + task(mRecordsOutRate, "0.0", "0.0") + op(head, mRecordsOut, "100.0", "200.0") + op(head, mRecordsOutRate, "10.0", "20.0"),
		count: f64(300), rate: f64(30),
	}, {
		name:  "task-level present and not 0: the task's (a chained filter halves it)",
		tm:    task(mRecordsOut, "50.0", "100.0") + task(mRecordsOutRate, "5.0", "10.0") + op(head, mRecordsOut, "100.0", "200.0") + op(head, mRecordsOutRate, "10.0", "20.0"),
		count: f64(150), rate: f64(15),
	}, {
		name:  "both 0: the task's 0",
		tm:    task(mRecordsOut, "0.0", "0.0") + task(mRecordsOutRate, "0.0", "0.0") + op(head, mRecordsOut, "0.0", "0.0") + op(head, mRecordsOutRate, "0.0", "0.0"),
		count: f64(0), rate: f64(0),
	}, {
		name:  "task-level absent on one subtask: the source operator's",
		tm:    taskFamily(mRecordsOut, sourceTask+" 100.0") + op(head, mRecordsOut, "100.0", "200.0") + op(head, mRecordsOutRate, "10.0", "20.0"),
		count: f64(300), rate: f64(30),
	}, {
		name:  "task count 0, source count absent, rates 0 vs 10+20: the count is missing, not 0",
		tm:    task(mRecordsOut, "0.0", "0.0") + task(mRecordsOutRate, "0.0", "0.0") + op(head, mRecordsOutRate, "10.0", "20.0"),
		count: nil, rate: f64(30),
		missingContain: srcID + ": numRecordsOut: 0 of 2 subtasks reported (" + zeroOutput + ")",
	}, {
		name:  "the only operator named Source: stands in for a head no series has the id of",
		tm:    task(mRecordsOut, "0.0", "0.0") + task(mRecordsOutRate, "0.0", "0.0") + op(named, mRecordsOut, "100.0", "200.0") + op(named, mRecordsOutRate, "10.0", "20.0"),
		count: f64(300), rate: f64(30),
	}, {
		name:  "not a source vertex: the task's 0 stands",
		tm:    task(mRecordsOut, "0.0", "0.0") + task(mRecordsOutRate, "0.0", "0.0") + op(notSource, mRecordsOut, "100.0", "200.0") + op(notSource, mRecordsOutRate, "10.0", "20.0"),
		count: f64(0), rate: f64(0),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := scrapeTargets(t, "", tc.tm)
			v := vertexOf(s, srcID)
			require.NotNil(t, v)
			assert.Equal(t, tc.count, v.NumRecordsOut, "numRecordsOut")
			assert.Equal(t, tc.rate, v.NumRecordsOutPerSecond, "numRecordsOutPerSecond")
			if tc.missingContain != "" {
				assert.Contains(t, s.Missing, tc.missingContain)
			}
		})
	}
}
