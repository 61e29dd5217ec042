package flink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Overview is GET /overview.
type Overview struct {
	TaskManagers   int    `json:"taskmanagers"`
	SlotsTotal     int    `json:"slots-total"`
	SlotsAvailable int    `json:"slots-available"`
	JobsRunning    int    `json:"jobs-running"`
	JobsFinished   int    `json:"jobs-finished"`
	JobsCancelled  int    `json:"jobs-cancelled"`
	JobsFailed     int    `json:"jobs-failed"`
	FlinkVersion   string `json:"flink-version"`
	FlinkCommit    string `json:"flink-commit"`
}

func (o *Overview) validate() error {
	if o.FlinkVersion == "" {
		return errors.New("no flink-version")
	}
	return nil
}

// JobOverview is one entry of GET /jobs/overview.
type JobOverview struct {
	ID               string `json:"jid"`
	Name             string `json:"name"`
	State            string `json:"state"`
	StartTime        int64  `json:"start-time"`
	EndTime          int64  `json:"end-time"`
	Duration         int64  `json:"duration"`
	LastModification int64  `json:"last-modification"`
}

// JobDetails is GET /jobs/:jobid.
type JobDetails struct {
	ID             string `json:"jid"`
	Name           string `json:"name"`
	State          string `json:"state"`
	IsStoppable    bool   `json:"isStoppable"`
	JobType        string `json:"job-type"` // 1.20+
	StartTime      int64  `json:"start-time"`
	EndTime        int64  `json:"end-time"`
	Duration       int64  `json:"duration"`
	MaxParallelism int64  `json:"maxParallelism"`
	// Now is the JobManager's clock at the answer, epoch ms.
	Now int64 `json:"now"`
	// Timestamps maps a JobStatus to the epoch ms it was last entered (0:
	// never).
	Timestamps map[string]int64 `json:"timestamps"`
	Vertices   []JobVertex      `json:"vertices"`
	Plan       Plan             `json:"plan"`
}

func (d *JobDetails) validate() error {
	switch {
	case d.ID == "":
		return errors.New("no jid")
	case d.State == "":
		return errors.New("no state")
	case d.Vertices == nil:
		return errors.New("no vertices")
	}
	for i, v := range d.Vertices {
		if v.ID == "" {
			return fmt.Errorf("vertex %d has no id", i)
		}
	}
	return nil
}

// RunningSince is timestamps.RUNNING (zero if the job never ran).
func (d *JobDetails) RunningSince() time.Time {
	if ms := d.Timestamps["RUNNING"]; ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

// JobVertex is one entry of JobDetails.Vertices.
type JobVertex struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Parallelism        int    `json:"parallelism"`
	MaxParallelism     int    `json:"maxParallelism"`
	SlotSharingGroupID string `json:"slotSharingGroupId"` // 1.20+
	// SlotSharingGroupReported is whether the answer had
	// slotSharingGroupId (a string, even empty): the REST API reports it
	// only from Flink 1.20, and an empty SlotSharingGroupID without it
	// means "not reported", not the default group.
	SlotSharingGroupReported bool   `json:"-"`
	Status                   string `json:"status"`
	StartTime                int64  `json:"start-time"`
	EndTime                  int64  `json:"end-time"`
	Duration                 int64  `json:"duration"`
	Metrics                  struct {
		ReadRecords  int64 `json:"read-records"`
		WriteRecords int64 `json:"write-records"`
	} `json:"metrics"`
}

// UnmarshalJSON decodes a vertex and notes whether slotSharingGroupId was
// there (SlotSharingGroupReported): absent or null is not reported.
func (v *JobVertex) UnmarshalJSON(b []byte) error {
	type plain JobVertex
	var aux struct {
		plain
		// Shallower than plain's field of the same name: it takes the key.
		SlotSharingGroupID *string `json:"slotSharingGroupId"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*v = JobVertex(aux.plain)
	if aux.SlotSharingGroupID != nil {
		v.SlotSharingGroupID, v.SlotSharingGroupReported = *aux.SlotSharingGroupID, true
	}
	return nil
}

// Plan is the job plan (JobDetails.Plan, GET /jobs/:jobid/plan's "plan").
type Plan struct {
	ID    string     `json:"jid"`
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Nodes []PlanNode `json:"nodes"`
}

// UnmarshalJSON takes the plan as an object or as a string holding one
// (older JobDetailsInfo serialized the raw plan JSON).
func (p *Plan) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	type plain Plan
	return json.Unmarshal(b, (*plain)(p))
}

// PlanNode is a vertex of the plan.
type PlanNode struct {
	ID          string      `json:"id"`
	Parallelism int         `json:"parallelism"`
	Description string      `json:"description"`
	Inputs      []PlanInput `json:"inputs"` // omitted for sources
}

// PlanInput is an input edge.
type PlanInput struct {
	Num          int    `json:"num"`
	ID           string `json:"id"` // upstream vertex
	ShipStrategy string `json:"ship_strategy"`
	Exchange     string `json:"exchange"`
}

// metricList is a MetricCollectionResponseBody: a bare array.
type metricList []metricEntry

// metricEntry is one metric of a metricList: its id, and its value when
// asked for with get (Flink writes every value as a string).
type metricEntry struct {
	ID    string  `json:"id"`
	Value *string `json:"value"`
}

func (l *metricList) validate() error {
	for i, m := range *l {
		if m.ID == "" {
			return fmt.Errorf("metric %d has no id", i)
		}
	}
	return nil
}

func (l metricList) ids() []string {
	out := make([]string, 0, len(l))
	for _, m := range l {
		out = append(out, m.ID)
	}
	return out
}

// AggregatedMetric is one entry of an aggregated metrics answer; an
// aggregate not requested is nil, NaN stays NaN.
type AggregatedMetric struct {
	ID   string `json:"id"`
	Min  *Float `json:"min"`
	Max  *Float `json:"max"`
	Avg  *Float `json:"avg"`
	Sum  *Float `json:"sum"`
	Skew *Float `json:"skew"`
}

// Float is a metric value as Flink writes it: a JSON number, or a string
// holding one (Java's Double.toString, "NaN", "Infinity", "-Infinity").
type Float float64

// UnmarshalJSON implements json.Unmarshaler. JSON null leaves f unchanged
// (a *Float stays nil).
func (f *Float) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := ParseMetricValue(s)
	if err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Ptr returns f as a *float64 (nil for nil).
func (f *Float) Ptr() *float64 {
	if f == nil {
		return nil
	}
	v := float64(*f)
	return &v
}

// ParseMetricValue parses a REST metric value: a decimal number in Java's or
// JSON's notation ("734.0", "1.2345678E7", "266", "-1") or Java's "NaN",
// "Infinity", "-Infinity". Booleans and other text are errors.
func ParseMetricValue(s string) (float64, error) {
	t := strings.TrimSpace(s)
	switch t {
	case "NaN":
		return math.NaN(), nil
	case "Infinity", "+Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	if t == "" || !decimal(t) {
		return 0, fmt.Errorf("metric value %q is not a number", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return v, nil // ±Inf or 0, as Java's Double.parseDouble rounds
		}
		return 0, fmt.Errorf("metric value %q is not a number", s)
	}
	return v, nil
}

// decimal reports whether s only has the characters of a decimal float
// (no hex, no underscores, no "inf"/"nan" spellings Go would accept).
func decimal(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// PartitionMetric is a KafkaSourceReader partition gauge of a vertex
// metric listing.
type PartitionMetric struct {
	Subtask   int
	Topic     string // sanitized, as in the id
	Partition int
	Kind      string // currentOffset or committedOffset
}

var partitionRe = regexp.MustCompile(`^(\d+)\..*KafkaSourceReader\.topic\.(.+)\.partition\.(\d+)\.(currentOffset|committedOffset)$`)

// ParsePartitionMetricID parses a vertex-level id such as
// "0.Source__Kafka_Source.KafkaSourceReader.topic.orders_v1.partition.3.currentOffset".
func ParsePartitionMetricID(id string) (PartitionMetric, bool) {
	m := partitionRe.FindStringSubmatch(id)
	if m == nil {
		return PartitionMetric{}, false
	}
	sub, err1 := strconv.Atoi(m[1])
	part, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || sub > math.MaxInt32 || part > math.MaxInt32 {
		return PartitionMetric{}, false
	}
	return PartitionMetric{Subtask: sub, Topic: m[2], Partition: part, Kind: m[4]}, true
}

// CheckpointStatistics is GET /jobs/:jobid/checkpoints.
type CheckpointStatistics struct {
	Counts *struct {
		Restored   int `json:"restored"`
		Total      int `json:"total"`
		InProgress int `json:"in_progress"`
		Completed  int `json:"completed"`
		Failed     int `json:"failed"`
	} `json:"counts"`
	Latest struct {
		Completed *CheckpointStat `json:"completed"`
		Savepoint *CheckpointStat `json:"savepoint"`
		Failed    *CheckpointStat `json:"failed"`
		Restored  *struct {
			ID               int64  `json:"id"`
			RestoreTimestamp int64  `json:"restore_timestamp"`
			IsSavepoint      bool   `json:"is_savepoint"`
			ExternalPath     string `json:"external_path"`
		} `json:"restored"`
	} `json:"latest"`
	History []CheckpointStat `json:"history"`
}

func (s *CheckpointStatistics) validate() error {
	if s.Counts == nil {
		return errors.New("no counts")
	}
	return nil
}

// CheckpointStat is one checkpoint's statistics.
type CheckpointStat struct {
	ClassName          string `json:"className"`
	ID                 int64  `json:"id"`
	Status             string `json:"status"`
	IsSavepoint        bool   `json:"is_savepoint"`
	TriggerTimestamp   int64  `json:"trigger_timestamp"`
	LatestAckTimestamp int64  `json:"latest_ack_timestamp"`
	CheckpointedSize   int64  `json:"checkpointed_size"`
	StateSize          int64  `json:"state_size"`
	EndToEndDuration   int64  `json:"end_to_end_duration"` // ms
	CheckpointType     string `json:"checkpoint_type"`
	ExternalPath       string `json:"external_path"`
	FailureMessage     string `json:"failure_message"`
	FailureTimestamp   int64  `json:"failure_timestamp"`
	// Unaligned checkpoints' in-flight data and the subtasks' progress.
	AlignmentBuffered int64 `json:"alignment_buffered"`
	ProcessedData     int64 `json:"processed_data"`
	PersistedData     int64 `json:"persisted_data"`
	NumSubtasks       int   `json:"num_subtasks"`
	NumAcknowledged   int   `json:"num_acknowledged_subtasks"`
}

// CheckpointConfig is GET /jobs/:jobid/checkpoints/config (ms values).
type CheckpointConfig struct {
	Mode          string `json:"mode"`
	IntervalMs    *int64 `json:"interval"`
	TimeoutMs     *int64 `json:"timeout"`
	MinPauseMs    int64  `json:"min_pause"`
	MaxConcurrent int64  `json:"max_concurrent"`
	// StateBackend is the job's state backend's class name
	// ("HashMapStateBackend", "EmbeddedRocksDBStateBackend",
	// "ForStStateBackend"), the same in 1.18, 1.20 and 2.x.
	StateBackend string `json:"state_backend"`
}

func (c *CheckpointConfig) validate() error {
	if c.IntervalMs == nil || c.TimeoutMs == nil {
		return errors.New("no interval or timeout")
	}
	return nil
}

// Interval is the checkpoint interval.
func (c CheckpointConfig) Interval() time.Duration { return msDuration(c.IntervalMs) }

// Timeout is the checkpoint timeout.
func (c CheckpointConfig) Timeout() time.Duration { return msDuration(c.TimeoutMs) }

func msDuration(ms *int64) time.Duration {
	if ms == nil {
		return 0
	}
	return time.Duration(*ms) * time.Millisecond
}

// TaskManagerInfo is one entry of GET /taskmanagers.
type TaskManagerInfo struct {
	ID            string `json:"id"`
	Path          string `json:"path"`
	DataPort      int    `json:"dataPort"`
	SlotsNumber   int    `json:"slotsNumber"`
	FreeSlots     int    `json:"freeSlots"`
	TotalResource struct {
		CPUCores Float `json:"cpuCores"`
	} `json:"totalResource"`
	Hardware struct {
		CPUCores       Float `json:"cpuCores"`
		PhysicalMemory int64 `json:"physicalMemory"`
	} `json:"hardware"`
	// MemoryConfiguration is the TaskManager's memory model in bytes, as
	// its configuration resolved it (Flink 1.15+; absent before).
	MemoryConfiguration *MemoryConfiguration `json:"memoryConfiguration"`
}

// MemoryConfiguration is a TaskManager's memory model (bytes).
type MemoryConfiguration struct {
	FrameworkHeap      int64 `json:"frameworkHeap"`
	TaskHeap           int64 `json:"taskHeap"`
	FrameworkOffHeap   int64 `json:"frameworkOffHeap"`
	TaskOffHeap        int64 `json:"taskOffHeap"`
	NetworkMemory      int64 `json:"networkMemory"`
	ManagedMemory      int64 `json:"managedMemory"`
	JVMMetaspace       int64 `json:"jvmMetaspace"`
	JVMOverhead        int64 `json:"jvmOverhead"`
	TotalFlinkMemory   int64 `json:"totalFlinkMemory"`
	TotalProcessMemory int64 `json:"totalProcessMemory"`
}

// Bounds are a vertex's parallelism bounds in resource requirements (-1:
// 1 for the lower, maxParallelism for the upper bound).
type Bounds struct {
	LowerBound int `json:"lowerBound"`
	UpperBound int `json:"upperBound"`
}

// SavepointStatus is GET /jobs/:jobid/savepoints/:triggerid.
type SavepointStatus struct {
	Status struct {
		ID string `json:"id"` // IN_PROGRESS or COMPLETED
	} `json:"status"`
	Operation *struct {
		Location     string `json:"location"`
		FailureCause *struct {
			Class      string `json:"class"`
			StackTrace string `json:"stack-trace"`
		} `json:"failure-cause"`
	} `json:"operation"`
}

func (s *SavepointStatus) validate() error {
	if s.Status.ID == "" {
		return errors.New("no status.id")
	}
	return nil
}

// Done reports whether the operation finished (successfully or not).
func (s SavepointStatus) Done() bool { return s.Status.ID == "COMPLETED" }

// Location is the savepoint's path once completed successfully.
func (s SavepointStatus) Location() string {
	if s.Operation == nil {
		return ""
	}
	return s.Operation.Location
}

// Err is the failure of a completed operation, nil otherwise.
func (s SavepointStatus) Err() error {
	if !s.Done() || s.Operation == nil || s.Operation.FailureCause == nil {
		if s.Done() && s.Location() == "" {
			return errors.New("flink: savepoint completed without a location")
		}
		return nil
	}
	fc := s.Operation.FailureCause
	first, _, _ := strings.Cut(fc.StackTrace, "\n")
	if first == "" {
		first = fc.Class
	}
	return fmt.Errorf("flink: savepoint failed: %s", first)
}
