package flinkprom

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
)

// Lines as in shared/reference/flink-rest-and-metrics.md §3, with the
// {…} placeholders written out.
const (
	refJob     = `job_id="3f2a9c1e8b7d4f60a1b2c3d4e5f60718"`
	refWindow  = `task_id="90bea66de1c231edf33913ecd54406c1"`
	refSource  = `task_id="cbc357ccb763df2852fee8c4fc7d55f2"`
	windowTask = `{` + refJob + `,` + refWindow + `,task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_90bea66de1c231edf33913ecd54406c1_1_0",host="10_244_1_17",task_name="Window_TumblingEventTimeWindows_60000______Sink:_Print",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="1",}`
	sourceTask = `{` + refJob + `,` + refSource + `,task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",}`
	sourceOp   = `{` + refJob + `,` + refSource + `,task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",operator_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_name="Source:_Kafka_Source",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",}`
	// mapOp is the chained Map of the source vertex: not the head.
	mapOp  = `{` + refJob + `,` + refSource + `,task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",operator_id="0a448493b4782967b150582570326227",operator_name="Map",task_name="Source:_Kafka_Source____Map",task_attempt_num="0",job_name="orders_agg",tm_id="orders_agg_taskmanager_1_1",subtask_index="0",}`
	offset = `{task_attempt_id="7c1d5e2f3a4b5c6d7e8f9a0b1c2d3e4f_cbc357ccb763df2852fee8c4fc7d55f2_0_0",host="10_244_1_17",task_attempt_num="0",tm_id="orders_agg_taskmanager_1_1",partition="3",topic="orders_v1",` + refJob + `,` + refSource + `,operator_id="cbc357ccb763df2852fee8c4fc7d55f2",operator_name="Source:_Kafka_Source",task_name="Source:_Kafka_Source____Map",job_name="orders_agg",subtask_index="0",}`
	jmJob  = `{job_name="orders_agg",host="orders_agg_jobmanager",` + refJob + `,}`
)

func family(name, scope string, lines ...string) string {
	metric := name[len("flink_"+scope+"_"):]
	var b strings.Builder
	b.WriteString("# HELP " + name + " " + metric + " (scope: " + scope + ")\n# TYPE " + name + " gauge\n")
	for _, l := range lines {
		b.WriteString(name + l + "\n")
	}
	return b.String()
}

func taskFamily(metric string, lines ...string) string {
	return family(prefixTask+metric, "taskmanager_job_task", lines...)
}

func opFamily(metric string, lines ...string) string {
	return family(prefixOperator+metric, "taskmanager_job_task_operator", lines...)
}

// scrapeText aggregates one TaskManager and one JobManager exposition.
func scrapeText(t *testing.T, tm, jm string) metrics.FlinkSample {
	t.Helper()
	a := newAggregator("")
	mfs, err := parseExposition([]byte(tm))
	require.NoError(t, err)
	a.addTaskManager("taskmanager tm", mfs)
	jmScraped := jm != ""
	if jmScraped {
		mfs, err = parseExposition([]byte(jm))
		require.NoError(t, err)
		a.addJobManager("jobmanager jm", mfs)
	}
	s, err := a.sample(time.Time{}, nil, false, jmScraped)
	require.NoError(t, err)
	return s
}

func TestParsesFlinkExpositionQuirks(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       float64
	}{
		{"trailing comma and .0", sourceTask + ` 734.0`, 734},
		{"Java exponent", sourceTask + ` 1.2345678E7`, 12345678},
		{"small exponent", sourceTask + ` 1.0E-4`, 0.0001},
		{"NaN", sourceTask + ` NaN`, math.NaN()},
		{"+Inf", sourceTask + ` +Inf`, math.Inf(1)},
		{"-Inf", sourceTask + ` -Inf`, math.Inf(-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mfs, err := parseExposition([]byte(taskFamily(mBusy, tc.line)))
			require.NoError(t, err)
			mf := mfs.families[prefixTask+mBusy]
			require.NotNil(t, mf)
			require.Len(t, mf.GetMetric(), 1)
			got, ok := valueOf(mf.GetMetric()[0])
			require.True(t, ok)
			if math.IsNaN(tc.want) {
				assert.True(t, math.IsNaN(got))
			} else {
				assert.Equal(t, tc.want, got)
			}
			assert.Equal(t, "cbc357ccb763df2852fee8c4fc7d55f2", labelsOf(mf.GetMetric()[0])[lTaskID])
		})
	}
}

func TestAggregatesReferenceLines(t *testing.T) {
	tm := taskFamily(mBusy, windowTask+` 734.0`, sourceTask+` 188.0`) +
		taskFamily("idleTimeMsPerSecond", windowTask+` 266.0`) +
		taskFamily(mBackPressured, sourceTask+` 412.0`, windowTask+` 0.0`) +
		taskFamily("isBackPressured", sourceTask+` 1.0`) +
		taskFamily(mRecordsInRate, windowTask+` 15234.55`, sourceTask+` 0.0`) +
		taskFamily(mRecordsOutRate, windowTask+` 0.0`, sourceTask+` 15234.55`) +
		taskFamily(mRecordsIn, windowTask+` 1.2345678E7`, sourceTask+` 0.0`) +
		taskFamily(mRecordsOut, windowTask+` 0.0`, sourceTask+` 1.2345678E7`) +
		opFamily(mRecordsInRate, sourceOp+` 15234.55`, mapOp+` 99.0`) +
		opFamily(mRecordsOutRate, sourceOp+` 15234.55`) +
		opFamily(mRecordsIn, sourceOp+` 1.2345678E7`, mapOp+` 5.0`) +
		opFamily(mPending, sourceOp+` 48210.0`) +
		opFamily("KafkaSourceReader_topic_partition_currentOffset", offset+` 4.5231007E7`) +
		opFamily("KafkaSourceReader_topic_partition_committedOffset", offset+` 4.5E7`) +
		opFamily("KafkaSourceReader_KafkaConsumer_records_lag_max", sourceOp+` 812.0`)
	jm := family(prefixJMJob+mCheckpointDuration, "jobmanager_job", jmJob+` 1834.0`) +
		family(prefixJMJob+mCheckpointSize, "jobmanager_job", jmJob+` 5.24288E7`) +
		family(prefixJMJob+mCompleted, "jobmanager_job", jmJob+` 42.0`) +
		family(prefixJMJob+mFailed, "jobmanager_job", jmJob+` 1.0`) +
		family(prefixJMJob+mInProgress, "jobmanager_job", jmJob+` 0.0`) +
		family(prefixJMJob+mRestarts, "jobmanager_job", jmJob+` 2.0`)
	s := scrapeText(t, tm, jm)
	assert.Equal(t, "3f2a9c1e8b7d4f60a1b2c3d4e5f60718", s.JobID)
	assert.Equal(t, "orders_agg", s.JobName)

	src := vertexOf(s, "cbc357ccb763df2852fee8c4fc7d55f2")
	require.NotNil(t, src)
	assert.Equal(t, "Source:_Kafka_Source____Map", src.Name)
	assert.Equal(t, &metrics.Agg{Avg: 188, Max: 188}, src.BusyTimeMsPerSecond)
	assert.Equal(t, &metrics.Agg{Avg: 412, Max: 412}, src.BackPressuredTimeMsPerSecond)
	assert.Equal(t, 15234.55, *src.NumRecordsInPerSecond, "the head operator's, not the task's 0 nor the Map's")
	assert.Equal(t, 12345678.0, *src.NumRecordsIn)
	assert.Equal(t, 12345678.0, *src.NumRecordsOut)
	assert.Equal(t, 48210.0, *src.PendingRecords)
	assert.Equal(t, []metrics.PartitionOwner{{Topic: "orders_v1", Partition: 3, Subtask: 0, CurrentOffset: 45231007, CommittedOffset: 45000000}}, src.Partitions)

	win := vertexOf(s, "90bea66de1c231edf33913ecd54406c1")
	require.NotNil(t, win)
	assert.Equal(t, &metrics.Agg{Avg: 734, Max: 734}, win.BusyTimeMsPerSecond)
	assert.Equal(t, 15234.55, *win.NumRecordsInPerSecond, "the task's")
	assert.Nil(t, win.PendingRecords)
	assert.Empty(t, win.Partitions)
	// The window reports subtask 1 only: a gap, flagged.
	assert.Contains(t, s.Missing, win.ID+": subtasks: 1 reported, highest subtask_index 1")

	require.NotNil(t, s.Checkpoints)
	assert.Equal(t, metrics.CheckpointSample{LastDuration: 1834 * time.Millisecond, LastStateSize: 52428800, Completed: 42, Failed: 1}, *s.Checkpoints)
}

// The resource manager's slot gauges of the JobManager (jobmanager scope,
// label host only, as the reporter writes them) give the cluster's slots;
// anything else leaves them unknown without a Missing entry.
func TestJobManagerSlots(t *testing.T) {
	jmHost := `{host="orders_agg_jobmanager",}`
	gauge := func(metric, value string) string {
		return family(prefixJM+metric, "jobmanager", jmHost+" "+value)
	}
	checkpoints := family(prefixJMJob+mCompleted, "jobmanager_job", jmJob+` 42.0`)
	for _, tc := range []struct {
		name string
		jms  []string // JobManager expositions
		want *metrics.SlotsSample
	}{
		{"as the reporter writes them", []string{gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "1.0")}, &metrics.SlotsSample{Total: 4, Available: 1}},
		{"no gauges (the JobManager does not report them)", []string{checkpoints}, nil},
		{"only the total", []string{gauge(mSlotsTotal, "4.0")}, nil},
		{"NaN", []string{gauge(mSlotsTotal, "NaN") + gauge(mSlotsAvailable, "1.0")}, nil},
		{"more available than there are", []string{gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "5.0")}, nil},
		{"not whole", []string{gauge(mSlotsTotal, "4.5") + gauge(mSlotsAvailable, "1.0")}, nil},
		{"no TaskManager: 0 of 0", []string{gauge(mSlotsTotal, "0.0") + gauge(mSlotsAvailable, "0.0")}, nil},
		{"a family that does not parse", []string{gauge(mSlotsTotal, "4,0") + gauge(mSlotsAvailable, "1.0")}, nil},
		{"two JobManagers that agree", []string{gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "1.0"), gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "1.0")}, &metrics.SlotsSample{Total: 4, Available: 1}},
		{"two JobManagers that disagree", []string{gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "1.0"), gauge(mSlotsTotal, "8.0") + gauge(mSlotsAvailable, "1.0")}, nil},
		{"one JobManager without them, one with", []string{checkpoints, gauge(mSlotsTotal, "4.0") + gauge(mSlotsAvailable, "1.0")}, &metrics.SlotsSample{Total: 4, Available: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAggregator("")
			for i, jm := range tc.jms {
				e, err := parseExposition([]byte(jm + checkpoints))
				require.NoError(t, err)
				a.addJobManager("jobmanager jm"+itoa(i), e)
			}
			s, err := a.sample(time.Time{}, nil, false, true)
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.Slots)
			for _, m := range s.Missing {
				assert.NotContains(t, m, "taskSlots")
			}
		})
	}
}

func TestNaNAndPartialMetricsAreMissing(t *testing.T) {
	sub := func(i int) string {
		return strings.Replace(sourceTask, `subtask_index="0"`, `subtask_index="`+itoa(i)+`"`, 1)
	}
	subOp := func(i int) string {
		return strings.Replace(sourceOp, `subtask_index="0"`, `subtask_index="`+itoa(i)+`"`, 1)
	}
	tm := taskFamily(mBusy, sub(0)+` NaN`, sub(1)+` 200.0`) +
		taskFamily(mBackPressured, sub(0)+` 10.0`, sub(1)+` 30.0`) +
		taskFamily(mRecordsOutRate, sub(0)+` 1.0`) + // subtask 1 lacks it
		opFamily(mPending, subOp(1)+` 7.0`) // registered on one reader only
	s := scrapeText(t, tm, "")
	v := vertexOf(s, "cbc357ccb763df2852fee8c4fc7d55f2")
	require.NotNil(t, v)
	assert.Equal(t, 2, v.Parallelism)
	assert.Nil(t, v.BusyTimeMsPerSecond, "NaN is not zero")
	assert.Equal(t, &metrics.Agg{Avg: 20, Max: 30}, v.BackPressuredTimeMsPerSecond)
	assert.Nil(t, v.NumRecordsOutPerSecond)
	assert.Nil(t, v.PendingRecords)
	assert.Contains(t, s.Missing, v.ID+": busyTimeMsPerSecond: 1 of 2 subtasks not finite (NaN: not measured)")
	assert.Contains(t, s.Missing, v.ID+": numRecordsOutPerSecond: 1 of 2 subtasks reported")
	assert.Contains(t, s.Missing, v.ID+": pendingRecords: 1 of 2 subtasks reported")
	assert.Contains(t, s.Missing, "checkpoints: no JobManager target")
	assert.Nil(t, s.Checkpoints)
}

func TestStaleAttemptAndOtherJobs(t *testing.T) {
	old := strings.Replace(sourceTask, `task_attempt_num="0"`, `task_attempt_num="0"`, 1)
	cur := strings.Replace(sourceTask, `task_attempt_num="0"`, `task_attempt_num="1"`, 1)
	other := strings.Replace(sourceTask, refJob, `job_id="00000000000000000000000000000001"`, 1)
	tm := taskFamily(mBusy, old+` 900.0`, cur+` 100.0`)
	s := scrapeText(t, tm, "")
	v := vertexOf(s, "cbc357ccb763df2852fee8c4fc7d55f2")
	require.NotNil(t, v)
	assert.Equal(t, &metrics.Agg{Avg: 100, Max: 100}, v.BusyTimeMsPerSecond, "the newer attempt wins")

	a := newAggregator("")
	mfs, err := parseExposition([]byte(taskFamily(mBusy, sourceTask+` 1.0`, other+` 2.0`)))
	require.NoError(t, err)
	a.addTaskManager("taskmanager tm", mfs)
	_, err = a.sample(time.Time{}, nil, false, false)
	assert.ErrorContains(t, err, "2 jobs")

	a = newAggregator("00000000000000000000000000000001")
	a.addTaskManager("taskmanager tm", mfs)
	s, err = a.sample(time.Time{}, nil, false, false)
	require.NoError(t, err)
	require.Len(t, s.Vertices, 1)
	assert.Equal(t, 2.0, s.Vertices[0].BusyTimeMsPerSecond.Max)
}

func TestSanitize(t *testing.T) {
	assert.Equal(t, "Source:_Kafka_Source____Map", PromSanitize("Source: Kafka Source -> Map"))
	for _, tc := range []struct {
		label, kafka string // the reporter's topic label, a Kafka topic
		same         bool
	}{
		{"orders_v1", "orders.v1", true},                           // '.' → '_'
		{"orders_v1", "orders-v1", true},                           // '-' → '_' (REST keeps it)
		{"orders_v1", "orders_v1", true},                           // a topic with '_' of its own
		{"orders_v1", metrics.SanitizedTopic("orders.v1"), true},   // REST's spelling
		{"orders_v1", metrics.SanitizedTopic("orders-v1"), true},   // REST's "orders-v1"
		{"a_b_c_d", "a.b-c_d", true},                               // all three at once
		{PromSanitize("a:b"), metrics.SanitizedTopic("a:b"), true}, // "a:b" and "a_b": REST replaces ':', Prometheus keeps it
		{"orders_v1", "orders_v2", false},
		{"orders_v1", "ordersv1", false},
		{"orders", "orders_v1", false},
	} {
		assert.Equal(t, tc.same, SameTopic(tc.label, tc.kafka), "%s ~ %s", tc.label, tc.kafka)
	}
}

// FuzzScrapeText: any exposition text parses or fails, and aggregates,
// without a panic.
func FuzzScrapeText(f *testing.F) {
	f.Add(taskFamily(mBusy, sourceTask+` 734.0`, windowTask+` NaN`))
	f.Add(opFamily("KafkaSourceReader_topic_partition_currentOffset", offset+` 4.5231007E7`))
	f.Add(opFamily(mPending, sourceOp+` +Inf`) + taskFamily(mRecordsIn, sourceTask+` -1.0E300`))
	f.Add(family(prefixJMJob+mCheckpointDuration, "jobmanager_job", jmJob+` -1.0`))
	f.Add(family(prefixJM+mSlotsTotal, "jobmanager", `{host="jm",} 9.3E18`) + family(prefixJM+mSlotsAvailable, "jobmanager", `{host="jm",} -0.0`))
	f.Add("flink_taskmanager_job_task_busyTimeMsPerSecond{task_id=\"a\",subtask_index=\"-3\",job_id=\"j\",} 1\n")
	f.Add("# TYPE x summary\nx{quantile=\"0.5\",} 1\nx_count 2\n")
	f.Fuzz(func(t *testing.T, text string) {
		mfs, err := parseExposition([]byte(text))
		if err != nil {
			return
		}
		a := newAggregator("")
		a.addTaskManager("taskmanager tm", mfs)
		a.addJobManager("jobmanager jm", mfs)
		s, err := a.sample(time.Time{}, nil, true, true)
		if err != nil {
			return
		}
		for _, v := range s.Vertices {
			if v.BusyTimeMsPerSecond != nil && (math.IsNaN(v.BusyTimeMsPerSecond.Avg) || math.IsNaN(v.BusyTimeMsPerSecond.Max)) {
				t.Fatalf("NaN aggregate for %s", v.ID)
			}
		}
		if sl := s.Slots; sl != nil && (sl.Total <= 0 || sl.Available < 0 || sl.Available > sl.Total) {
			t.Fatalf("implausible slots: %+v", *sl)
		}
		_ = Merge(metrics.FlinkSample{Vertices: []metrics.VertexSample{{ID: "a", Parallelism: 1}}}, s)
	})
}

// expfmt v0.66.1 panics on this input (a line starting with '{' after a
// comment: a nil pointer in startLabelName). parseExposition never hands
// the parser such a line (it has no metric name), and parseFamily's guard
// turns a panic into the family's error.
func TestParserPanicIsAnError(t *testing.T) {
	_, err := parseExposition([]byte("#0000000000000000\n{}"))
	assert.ErrorContains(t, err, "1 sample line(s) without a metric name, first line 2")
	p := expfmt.NewTextParser(model.LegacyValidation)
	_, err = parseFamily(&p, &famLines{name: "x"}, []byte("#0000000000000000\n{}"), []int{2})
	assert.ErrorContains(t, err, "parser panic")
}
