package flinkrest

import (
	"html"
	"net/http"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// jobStatuses is Flink's JobStatus in declaration order.
var jobStatuses = []string{
	"INITIALIZING", "CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING",
	"CANCELED", "FINISHED", "RESTARTING", "SUSPENDED", "RECONCILING",
}

// executionStates is Flink's ExecutionState in declaration order.
var executionStates = []string{
	"CREATED", "SCHEDULED", "DEPLOYING", "RUNNING", "FINISHED", "CANCELING",
	"CANCELED", "FAILED", "RECONCILING", "INITIALIZING",
}

func globallyTerminal(jobState string) bool {
	switch jobState {
	case "FINISHED", "CANCELED", "FAILED":
		return true
	}
	return false
}

func terminalExecution(state string) bool {
	switch state {
	case "FINISHED", "CANCELED", "FAILED":
		return true
	}
	return false
}

func nowMillis(v sim.View) int64 { return v.Now.UnixMilli() }

// jobTimes are start-time, end-time and duration as JobDetails computes
// them: the end is -1 until the job is globally terminal.
func jobTimes(v sim.View) (start, end, duration int64) {
	j := v.Job
	start, end = j.StartTime, -1
	if globallyTerminal(j.State) {
		end = j.EndTime
		if end < 0 {
			end = j.Timestamps[j.State]
		}
	}
	if end >= 0 {
		duration = end - start
	} else {
		duration = nowMillis(v) - start
	}
	return start, end, duration
}

// vertexState is the state of a vertex's subtasks: the view keeps one state
// per vertex.
func vertexState(vx sim.VertexView) string {
	if vx.Status == "" {
		return "CREATED"
	}
	return vx.Status
}

// numTasks is the vertex's subtask count.
func numTasks(vx sim.VertexView) int {
	if len(vx.Subtasks) > 0 {
		return len(vx.Subtasks)
	}
	return vx.Parallelism
}

// ---- GET /jobs ----

type idStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (h *handler) jobIDs(req *request) response {
	return ok(jobIDsOf([]sim.View{req.view}))
}

// jobIDsOf is /jobs of a cluster running the jobs of views.
func jobIDsOf(views []sim.View) any {
	jobs := []idStatus{}
	for _, v := range views {
		if v.Job.ID != "" {
			jobs = append(jobs, idStatus{ID: v.Job.ID, Status: v.Job.State})
		}
	}
	return struct {
		Jobs []idStatus `json:"jobs"`
	}{jobs}
}

// ---- GET /jobs/overview ----

type jobOverview struct {
	JID              string `json:"jid"`
	Name             string `json:"name"`
	State            string `json:"state"`
	StartTime        int64  `json:"start-time"`
	EndTime          int64  `json:"end-time"`
	Duration         int64  `json:"duration"`
	LastModification int64  `json:"last-modification"`
	Tasks            omap   `json:"tasks"`
	PendingOperators *int   `json:"pending-operators,omitempty"`
}

func (h *handler) jobsOverview(req *request) response {
	return ok(jobsOverviewOf([]sim.View{req.view}, req.ver))
}

// jobsOverviewOf is /jobs/overview of a cluster running the jobs of views.
func jobsOverviewOf(views []sim.View, ver version) any {
	jobs := []jobOverview{}
	for _, v := range views {
		if v.Job.ID == "" {
			continue
		}
		start, end, duration := jobTimes(v)
		counts := map[string]int{}
		total := 0
		var lastModified int64
		for _, vx := range v.Job.Vertices {
			n := numTasks(vx)
			counts[vertexState(vx)] += n
			total += n
			lastModified = max(lastModified, vx.StartTime)
		}
		lastModified = max(lastModified, end)
		tasks := omap{{"total", total}}
		for _, s := range executionStates {
			tasks = append(tasks, kv{strings.ToLower(s), counts[s]})
		}
		o := jobOverview{
			JID: v.Job.ID, Name: v.Job.Name, State: v.Job.State,
			StartTime: start, EndTime: end, Duration: duration,
			LastModification: lastModified, Tasks: tasks,
		}
		if ver.hasPendingOperators() {
			o.PendingOperators = new(int)
		}
		jobs = append(jobs, o)
	}
	return struct {
		Jobs []jobOverview `json:"jobs"`
	}{jobs}
}

// ---- GET /jobs/:jobid/status ----

func (h *handler) jobStatus(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	return ok(struct {
		Status string `json:"status"`
	}{job.State})
}

// ---- GET /jobs/:jobid/plan ----

type planInput struct {
	Num          int    `json:"num"`
	ID           string `json:"id"`
	ShipStrategy string `json:"ship_strategy"`
	Exchange     string `json:"exchange"`
}

type planNode struct {
	ID                  string      `json:"id"`
	Parallelism         int         `json:"parallelism"`
	Operator            string      `json:"operator"`
	OperatorStrategy    string      `json:"operator_strategy"`
	Description         string      `json:"description"`
	Inputs              []planInput `json:"inputs,omitempty"`
	OptimizerProperties omap        `json:"optimizer_properties"`
}

type plan struct {
	JID   string     `json:"jid"`
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Nodes []planNode `json:"nodes"`
}

func planOf(job *sim.JobView) plan {
	p := plan{JID: job.ID, Name: job.Name, Type: "STREAMING", Nodes: []planNode{}}
	for _, vx := range job.Vertices {
		n := planNode{
			ID:          vx.ID,
			Parallelism: vx.Parallelism,
			// JsonPlanGenerator: the description HTML-escaped, line breaks
			// as <br/>.
			Description:         strings.ReplaceAll(html.EscapeString(vx.Name), "\n", "<br/>") + "<br/>",
			OptimizerProperties: omap{},
		}
		for i, in := range vx.Inputs {
			n.Inputs = append(n.Inputs, planInput{
				Num: i, ID: in.ID, ShipStrategy: in.Ship, Exchange: "pipelined_bounded",
			})
		}
		p.Nodes = append(p.Nodes, n)
	}
	return p
}

func (h *handler) jobPlan(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	return ok(struct {
		Plan plan `json:"plan"`
	}{planOf(job)})
}

// ---- GET /jobs/:jobid/config ----

type executionConfig struct {
	ExecutionMode   *string `json:"execution-mode,omitempty"`
	RestartStrategy string  `json:"restart-strategy"`
	JobParallelism  int     `json:"job-parallelism"`
	ObjectReuseMode bool    `json:"object-reuse-mode"`
	UserConfig      omap    `json:"user-config"`
}

func (h *handler) jobConfig(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	ec := executionConfig{
		RestartStrategy: "Cluster level default restart strategy",
		JobParallelism:  job.JobParallelism,
		ObjectReuseMode: configBool(req.view.JobManagerConfig, "pipeline.object-reuse", false),
		UserConfig:      omap{},
	}
	if req.ver.hasExecutionMode() {
		mode := "PIPELINED"
		ec.ExecutionMode = &mode
	}
	// The spec's JobConfigInfo{jobId,jobName,executionConfigInfo} is wrong:
	// JobConfigInfo has its own serializer writing these keys.
	return ok(struct {
		JID             string          `json:"jid"`
		Name            string          `json:"name"`
		ExecutionConfig executionConfig `json:"execution-config"`
	}{job.ID, job.Name, ec})
}

// ---- GET /jobs/:jobid ----

// ioMetrics is IOMetricsInfo.
type ioMetrics struct {
	ReadBytes                    int64   `json:"read-bytes"`
	ReadBytesComplete            bool    `json:"read-bytes-complete"`
	WriteBytes                   int64   `json:"write-bytes"`
	WriteBytesComplete           bool    `json:"write-bytes-complete"`
	ReadRecords                  int64   `json:"read-records"`
	ReadRecordsComplete          bool    `json:"read-records-complete"`
	WriteRecords                 int64   `json:"write-records"`
	WriteRecordsComplete         bool    `json:"write-records-complete"`
	AccumulatedBackpressuredTime int64   `json:"accumulated-backpressured-time"`
	AccumulatedIdleTime          int64   `json:"accumulated-idle-time"`
	AccumulatedBusyTime          jdouble `json:"accumulated-busy-time"`
}

// subtaskIO is one subtask's IOMetricsInfo, from its task-scope metrics as
// MutableIOMetrics reads them (read-records is the task's numRecordsIn: 0
// for a FLIP-27 source). The view has no byte counters.
func subtaskIO(st sim.SubtaskView) ioMetrics {
	return ioMetrics{
		ReadBytesComplete:            true,
		WriteBytesComplete:           true,
		ReadRecords:                  toLong(st.NumRecordsIn),
		ReadRecordsComplete:          true,
		WriteRecords:                 toLong(st.NumRecordsOut),
		WriteRecordsComplete:         true,
		AccumulatedBackpressuredTime: toLong(st.AccumulatedBackPressuredMs),
		AccumulatedIdleTime:          toLong(st.AccumulatedIdleTimeMs),
		AccumulatedBusyTime:          jdouble(st.AccumulatedBusyTimeMs),
	}
}

func vertexIO(vx sim.VertexView) ioMetrics {
	m := ioMetrics{ReadBytesComplete: true, WriteBytesComplete: true, ReadRecordsComplete: true, WriteRecordsComplete: true}
	for _, st := range vx.Subtasks {
		s := subtaskIO(st)
		m.ReadRecords += s.ReadRecords
		m.WriteRecords += s.WriteRecords
		m.AccumulatedBackpressuredTime += s.AccumulatedBackpressuredTime
		m.AccumulatedIdleTime += s.AccumulatedIdleTime
		m.AccumulatedBusyTime += s.AccumulatedBusyTime
	}
	return m
}

type jobVertexInfo struct {
	ID                 string    `json:"id"`
	SlotSharingGroupID *string   `json:"slotSharingGroupId,omitempty"`
	Name               string    `json:"name"`
	MaxParallelism     int       `json:"maxParallelism"`
	Parallelism        int       `json:"parallelism"`
	Status             string    `json:"status"`
	StartTime          int64     `json:"start-time"`
	EndTime            int64     `json:"end-time"`
	Duration           int64     `json:"duration"`
	Tasks              omap      `json:"tasks"`
	Metrics            ioMetrics `json:"metrics"`
}

type jobDetails struct {
	JID              string          `json:"jid"`
	Name             string          `json:"name"`
	IsStoppable      bool            `json:"isStoppable"`
	State            string          `json:"state"`
	JobType          *string         `json:"job-type,omitempty"`
	StartTime        int64           `json:"start-time"`
	EndTime          int64           `json:"end-time"`
	Duration         int64           `json:"duration"`
	MaxParallelism   int64           `json:"maxParallelism"`
	Now              int64           `json:"now"`
	Timestamps       omap            `json:"timestamps"`
	Vertices         []jobVertexInfo `json:"vertices"`
	StatusCounts     omap            `json:"status-counts"`
	Plan             plan            `json:"plan"`
	PendingOperators *int            `json:"pending-operators,omitempty"`
}

// vertexTimes follows JobDetailsHandler: the start is the earliest DEPLOYING
// timestamp, the end is -1 until every subtask is terminal.
func vertexTimes(v sim.View, vx sim.VertexView) (start, end, duration int64) {
	if vx.StartTime <= 0 {
		return -1, -1, -1
	}
	start = vx.StartTime
	if terminalExecution(vertexState(vx)) {
		end = v.Job.EndTime
		if end < start {
			end = nowMillis(v)
		}
		return start, end, end - start
	}
	return start, -1, nowMillis(v) - start
}

func statesMap(counts map[string]int) omap {
	m := make(omap, 0, len(executionStates))
	for _, s := range executionStates {
		m = append(m, kv{s, counts[s]})
	}
	return m
}

func (h *handler) jobDetails(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	v := req.view
	start, end, duration := jobTimes(v)
	d := jobDetails{
		JID: job.ID, Name: job.Name, State: job.State,
		StartTime: start, EndTime: end, Duration: duration,
		MaxParallelism: int64(job.MaxParallelism),
		Now:            nowMillis(v),
		Vertices:       []jobVertexInfo{},
		Plan:           planOf(job),
	}
	if d.MaxParallelism == 0 {
		d.MaxParallelism = -1 // ExecutionConfig's "not set"
	}
	if req.ver.hasJobType() {
		t := "STREAMING"
		d.JobType = &t
	}
	for _, s := range jobStatuses {
		d.Timestamps = append(d.Timestamps, kv{s, job.Timestamps[s]})
	}
	perState := map[string]int{}
	for _, vx := range job.Vertices {
		vs, ve, vd := vertexTimes(v, vx)
		state := vertexState(vx)
		perState[state]++
		info := jobVertexInfo{
			ID: vx.ID, Name: vx.Name, MaxParallelism: vx.MaxParallelism, Parallelism: vx.Parallelism,
			Status: state, StartTime: vs, EndTime: ve, Duration: vd,
			Tasks:   statesMap(map[string]int{state: numTasks(vx)}),
			Metrics: vertexIO(vx),
		}
		if req.ver.hasSlotSharingGroup() {
			ssg := vx.SlotSharingGroupID
			info.SlotSharingGroupID = &ssg
		}
		d.Vertices = append(d.Vertices, info)
	}
	d.StatusCounts = statesMap(perState)
	if req.ver.hasPendingOperators() {
		d.PendingOperators = new(int)
	}
	return ok(d)
}

// ---- GET /jobs/:jobid/vertices/:vertexid ----

type subtaskDetails struct {
	Subtask        int       `json:"subtask"`
	Status         string    `json:"status"`
	Attempt        int       `json:"attempt"`
	Endpoint       *string   `json:"endpoint,omitempty"`
	Host           *string   `json:"host,omitempty"`
	StartTime      int64     `json:"start-time"`
	EndTime        int64     `json:"end-time"`
	Duration       int64     `json:"duration"`
	Metrics        ioMetrics `json:"metrics"`
	TaskManagerID  string    `json:"taskmanager-id"`
	StatusDuration omap      `json:"status-duration"`
	// other-concurrent-attempts is NON_EMPTY: only with speculative
	// execution, which streaming jobs do not use.

	// start_time is a hidden duplicate of start-time that Jackson writes
	// after the creator properties.
	StartTimeCompat int64 `json:"start_time"`
}

type vertexDetailsBody struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	Parallelism    int              `json:"parallelism"`
	MaxParallelism int              `json:"maxParallelism"`
	Now            int64            `json:"now"`
	Subtasks       []subtaskDetails `json:"subtasks"`
	Aggregated     omap             `json:"aggregated"`
}

// statusDurationStates are the states whose durations the REST API reports.
var statusDurationStates = []string{"CREATED", "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING"}

// subtaskStatusDuration follows getExecutionStateDuration: each state lasts
// until the next one is entered (the state the subtask is in lasts until
// now), -1 when never entered. The view has one timestamp per attempt, so
// the states before the current one took no time.
func subtaskStatusDuration(now int64, vx sim.VertexView) map[string]int64 {
	state := vertexState(vx)
	d := map[string]int64{}
	reached := true
	for _, s := range statusDurationStates {
		switch {
		case !reached || vx.StartTime <= 0:
			d[s] = -1
		case s == state:
			d[s] = now - vx.StartTime
			reached = false
		case s == "RUNNING" && terminalExecution(state):
			d[s] = -1
		default:
			d[s] = 0
		}
	}
	return d
}

func (h *handler) vertexDetails(req *request) response {
	job, errResp := req.job()
	if errResp != nil {
		return *errResp
	}
	vid, errResp := req.vertexParam()
	if errResp != nil {
		return *errResp
	}
	vx := findVertex(job, vid)
	if vx == nil {
		return errorResponse(http.StatusNotFound, "JobVertex "+vid+" not found")
	}
	v := req.view
	now := nowMillis(v)
	state := vertexState(*vx)
	body := vertexDetailsBody{
		ID: vx.ID, Name: vx.Name, Parallelism: vx.Parallelism, MaxParallelism: vx.MaxParallelism,
		Now: now, Subtasks: []subtaskDetails{},
	}
	var ios []ioMetrics
	var durations []map[string]int64
	for _, st := range vx.Subtasks {
		start, end, duration := int64(-1), int64(-1), int64(-1)
		if vx.StartTime > 0 {
			start = vx.StartTime
			if terminalExecution(state) {
				_, end, _ = vertexTimes(v, *vx)
				duration = end - start
			} else {
				duration = now - start
			}
		}
		tmID, hostname, endpoint := "(unassigned)", "(unassigned)", "(unassigned)"
		if st.TaskManagerID != "" {
			tmID = st.TaskManagerID
			hostname = st.Host
			endpoint = st.Host
			for _, tm := range v.TaskManagers {
				if tm.ID == st.TaskManagerID {
					endpoint = st.Host + ":" + itoa(tm.DataPort)
				}
			}
		}
		sd := subtaskStatusDuration(now, *vx)
		io := subtaskIO(st)
		d := subtaskDetails{
			Subtask: st.Index, Status: state, Attempt: st.Attempt,
			StartTime: start, EndTime: end, Duration: duration,
			Metrics: io, TaskManagerID: tmID,
			StatusDuration:  orderedDurations(sd),
			StartTimeCompat: start,
		}
		if req.ver.hasEndpoint() {
			d.Endpoint = &endpoint
		}
		if req.ver.hasHost() {
			d.Host = &hostname
		}
		body.Subtasks = append(body.Subtasks, d)
		ios = append(ios, io)
		durations = append(durations, sd)
	}
	body.Aggregated = aggregatedTaskDetails(ios, durations)
	return ok(body)
}

func orderedDurations(d map[string]int64) omap {
	m := make(omap, 0, len(statusDurationStates))
	for _, s := range statusDurationStates {
		m = append(m, kv{s, d[s]})
	}
	return m
}

// aggregatedTaskDetails is AggregatedTaskDetailsInfo: per IO metric and per
// state duration, min/max/avg/sum/median/p25/p75/p95 over the subtasks, all
// longs, in HashMap order.
func aggregatedTaskDetails(ios []ioMetrics, durations []map[string]int64) omap {
	metricNames := []string{
		"read-bytes", "write-bytes", "read-records", "write-records",
		"accumulated-backpressured-time", "accumulated-busy-time", "accumulated-idle-time",
	}
	values := map[string][]int64{}
	for _, io := range ios {
		values["read-bytes"] = append(values["read-bytes"], io.ReadBytes)
		values["write-bytes"] = append(values["write-bytes"], io.WriteBytes)
		values["read-records"] = append(values["read-records"], io.ReadRecords)
		values["write-records"] = append(values["write-records"], io.WriteRecords)
		values["accumulated-idle-time"] = append(values["accumulated-idle-time"], io.AccumulatedIdleTime)
		values["accumulated-backpressured-time"] = append(values["accumulated-backpressured-time"], io.AccumulatedBackpressuredTime)
		busy := float64(io.AccumulatedBusyTime)
		if busy != busy { // NaN
			values["accumulated-busy-time"] = append(values["accumulated-busy-time"], -1)
		} else {
			values["accumulated-busy-time"] = append(values["accumulated-busy-time"], toLong(busy))
		}
	}
	stateValues := map[string][]int64{}
	for _, d := range durations {
		for _, s := range statusDurationStates {
			stateValues[s] = append(stateValues[s], d[s])
		}
	}
	section := func(names []string, vals map[string][]int64) omap {
		out := omap{}
		for _, n := range javaHashOrder(names, 0) {
			out = append(out, kv{n, statistics(vals[n])})
		}
		return out
	}
	return omap{
		{"metrics", section(metricNames, values)},
		{"status-duration", section(statusDurationStates, stateValues)},
	}
}

func statistics(vals []int64) omap {
	minV, maxV, sum, avg, fs := describe(vals)
	stats := map[string]int64{
		"min": minV, "max": maxV, "avg": avg, "sum": sum,
		"median": toLong(percentile(fs, 50)), "p25": toLong(percentile(fs, 25)),
		"p75": toLong(percentile(fs, 75)), "p95": toLong(percentile(fs, 95)),
	}
	out := omap{}
	for _, k := range javaHashOrder([]string{"min", "max", "avg", "sum", "median", "p25", "p75", "p95"}, 0) {
		out = append(out, kv{k, stats[k]})
	}
	return out
}
