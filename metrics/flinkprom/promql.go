package flinkprom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"text/template"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/flinkscale/flinkscale/metrics"
)

// DefaultWindow is PromQL.Window's default.
const DefaultWindow = time.Minute

// PromQL collects a job's metrics from a Prometheus server that scrapes
// Flink's PrometheusReporter, with one instant query per metric (see
// Templates and DefaultTemplates). Like Scraper it fills the metric fields
// only; Merge combines its sample with REST's.
type PromQL struct {
	API v1.API
	// Templates overrides default queries by name; nil uses the defaults.
	Templates Templates
	// Window is the template's {{.Window}}; 0 means DefaultWindow.
	Window time.Duration
	// Concurrency bounds the queries in flight; 0 means 4.
	Concurrency int
}

// TemplateData is what a query template is executed with.
type TemplateData struct {
	JobID  string
	Window string
}

var jobIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// Render renders the query name for jobID: the override in p.Templates, or
// the default. It returns "" for a query that is skipped.
func (p *PromQL) Render(name, jobID string) (string, error) {
	if !jobIDPattern.MatchString(jobID) {
		return "", fmt.Errorf("flinkprom: job id %q is not an id", jobID)
	}
	text, ok := p.Templates[name]
	if !ok {
		text = defaultTemplates[name]
	}
	if text == "" {
		return "", nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("flinkprom: template %s: %w", name, err)
	}
	w := p.Window
	if w <= 0 {
		w = DefaultWindow
	}
	var b bytes.Buffer
	if err := t.Execute(&b, TemplateData{JobID: jobID, Window: model.Duration(w).String()}); err != nil {
		return "", fmt.Errorf("flinkprom: template %s: %w", name, err)
	}
	return b.String(), nil
}

// queryNames are the queries Collect runs, in order.
var queryNames = []string{
	QSubtasks, QBusyMax, QBusyAvg, QBackPressuredMax, QBackPressuredAvg,
	QRecordsInRateHead, QRecordsInRateTask, QRecordsOutRate, QRecordsOutRateSource,
	QRecordsInHead, QRecordsInTask, QRecordsOut, QRecordsOutSource,
	QPendingRecords, QCurrentOffset, QCommittedOffset,
	QCheckpointDuration, QCheckpointSize, QCheckpointsCompleted, QCheckpointsFailed, QCheckpointsInProg, QRestarts,
	QSlotsTotal, QSlotsAvailable,
}

// optionalQueries are the queries whose failure is no gap: it goes to the
// sample's Dropped, not its Missing.
var optionalQueries = map[string]bool{QSlotsTotal: true, QSlotsAvailable: true}

// Collect runs the queries at time at (zero: the server's now) and builds
// the job's sample. The vertices are those QSubtasks returns, and each
// vertex's Parallelism is its count of reporting subtasks (Merge compares
// it with REST's). A query that fails, or returns nothing for a vertex,
// leaves its fields nil and is named in Missing ("promql <name>: <error>",
// "<vertex id>: <metric>"). NaN and infinite results are missing, never
// zero. A vertex's output is the task's (records_out, records_out_rate),
// else its source operators' (records_out_source,
// records_out_rate_source): where the task's is absent, and for both when
// the task's is 0 while the source operators' is not, as Scraper.Scrape
// does. The cluster's slots (QSlotsTotal, QSlotsAvailable) are set when
// each query returns one plausible value; otherwise they are unknown, and a
// failed slot query is named in Dropped, not Missing: the slots are never
// a gap. Collect returns an error when jobID is not an id, a template does
// not render, ctx ends, or QSubtasks fails (then nothing is known about
// the vertices).
func (p *PromQL) Collect(ctx context.Context, jobID string, at time.Time) (metrics.FlinkSample, error) {
	out := metrics.FlinkSample{At: at, JobID: jobID}
	if p.API == nil {
		return out, errors.New("flinkprom: PromQL.API is nil")
	}
	queries := make(map[string]string, len(queryNames))
	for _, n := range queryNames {
		q, err := p.Render(n, jobID)
		if err != nil {
			return out, err
		}
		queries[n] = q
	}
	results := make(map[string]model.Vector, len(queryNames))
	errs := make(map[string]error)
	var mu sync.Mutex
	conc := p.Concurrency
	if conc <= 0 {
		conc = 4
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, n := range queryNames {
		if queries[n] == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			vec, err := p.query(ctx, queries[n], at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[n] = err
				return
			}
			results[n] = vec
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if err, ok := errs[QSubtasks]; ok {
		return out, fmt.Errorf("flinkprom: query %s: %w", QSubtasks, err)
	}
	if queries[QSubtasks] == "" {
		return out, fmt.Errorf("flinkprom: the %s query cannot be skipped", QSubtasks)
	}
	for _, n := range queryNames {
		if err, ok := errs[n]; ok && optionalQueries[n] {
			out.Dropped = append(out.Dropped, fmt.Sprintf("promql %s: %v", n, err))
		} else if ok {
			out.Missing = append(out.Missing, fmt.Sprintf("promql %s: %v", n, err))
		}
	}

	byTask := func(name string) map[string]float64 {
		m := map[string]float64{}
		for _, s := range results[name] {
			if id := string(s.Metric[lTaskID]); id != "" {
				m[id] = float64(s.Value)
			}
		}
		return m
	}
	subtasks := byTask(QSubtasks)
	ids := make([]string, 0, len(subtasks))
	for id := range subtasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	get := map[string]map[string]float64{}
	for _, n := range queryNames {
		get[n] = byTask(n)
	}
	sources := map[string]bool{}
	for _, n := range []string{QPendingRecords, QCurrentOffset, QCommittedOffset} {
		for _, s := range results[n] {
			sources[string(s.Metric[lTaskID])] = true
		}
	}
	for _, id := range ids {
		v := metrics.VertexSample{ID: id, Parallelism: int(subtasks[id])}
		// value reads one query's result for the vertex; missing names
		// the metric when the query ran (a failed query is listed once).
		value := func(metric string, names ...string) (float64, bool) {
			ran := false
			for _, n := range names {
				if x, ok := get[n][id]; ok {
					if math.IsNaN(x) || math.IsInf(x, 0) {
						out.Missing = append(out.Missing, fmt.Sprintf("%s: %s: not finite (%s)", id, metric, n))
						return 0, false
					}
					return x, true
				}
				_, failed := errs[n]
				ran = ran || (queries[n] != "" && !failed)
			}
			if ran || allSkipped(queries, names) {
				out.Missing = append(out.Missing, id+": "+metric)
			}
			return 0, false
		}
		agg := func(metric, maxQ, avgQ string) *metrics.Agg {
			mx, ok1 := value(metric, maxQ)
			if !ok1 {
				return nil
			}
			avg, ok2 := value(metric, avgQ)
			if !ok2 {
				return nil
			}
			return &metrics.Agg{Avg: avg, Max: mx}
		}
		ptr := func(metric string, names ...string) *float64 {
			x, ok := value(metric, names...)
			if !ok {
				return nil
			}
			return &x
		}
		v.BusyTimeMsPerSecond = agg(mBusy, QBusyMax, QBusyAvg)
		v.BackPressuredTimeMsPerSecond = agg(mBackPressured, QBackPressuredMax, QBackPressuredAvg)
		v.NumRecordsInPerSecond = ptr(mRecordsInRate, QRecordsInRateHead, QRecordsInRateTask)
		v.NumRecordsIn = ptr(mRecordsIn, QRecordsInHead, QRecordsInTask)
		// A source vertex's output: the task's, else its source
		// operators' (outputFromSource).
		found := func(name string) *float64 {
			if x, ok := get[name][id]; ok && finite(x) {
				return &x
			}
			return nil
		}
		srcCount, srcRate := found(QRecordsOutSource), found(QRecordsOutRateSource)
		useCount, useRate := outputFromSource(found(QRecordsOut), srcCount, found(QRecordsOutRate), srcRate)
		v.NumRecordsOutPerSecond, v.NumRecordsOut = srcRate, srcCount
		if !useRate {
			v.NumRecordsOutPerSecond = ptr(mRecordsOutRate, QRecordsOutRate)
		} else if srcRate == nil {
			out.Missing = append(out.Missing, fmt.Sprintf("%s: %s: %s", id, mRecordsOutRate, zeroOutput))
		}
		if !useCount {
			v.NumRecordsOut = ptr(mRecordsOut, QRecordsOut)
		} else if srcCount == nil {
			out.Missing = append(out.Missing, fmt.Sprintf("%s: %s: %s", id, mRecordsOut, zeroOutput))
		}
		if sources[id] {
			v.PendingRecords = ptr(mPending, QPendingRecords)
		}
		v.Partitions = partitions(id, results[QCurrentOffset], results[QCommittedOffset])
		out.Vertices = append(out.Vertices, v)
	}

	// The JobManager's gauges.
	jm := func(name string) (float64, bool) {
		if len(results[name]) == 0 {
			return 0, false
		}
		s := results[name][0] // one series per job
		if out.JobName == "" {
			out.JobName = string(s.Metric[lJobName])
		}
		x := float64(s.Value)
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	}
	completed, okC := jm(QCheckpointsCompleted)
	failed, okF := jm(QCheckpointsFailed)
	inProg, okI := jm(QCheckpointsInProg)
	if !okC && !okF && !okI {
		out.Missing = append(out.Missing, "checkpoints: no checkpoint gauges")
	} else {
		cp := &metrics.CheckpointSample{Completed: int(completed), Failed: int(failed), InProgress: int(inProg)}
		for _, c := range []struct {
			ok   bool
			name string
		}{{okC, mCompleted}, {okF, mFailed}, {okI, mInProgress}} {
			if !c.ok {
				out.Missing = append(out.Missing, "checkpoints: "+c.name)
			}
		}
		if d, ok := jm(QCheckpointDuration); ok && d >= 0 {
			cp.LastDuration = time.Duration(d) * time.Millisecond
		} else {
			out.Missing = append(out.Missing, "checkpoints: "+mCheckpointDuration)
		}
		if sz, ok := jm(QCheckpointSize); ok && sz >= 0 {
			cp.LastStateSize = int64(sz)
		} else {
			out.Missing = append(out.Missing, "checkpoints: "+mCheckpointSize)
		}
		out.Checkpoints = cp
	}
	// The slots: one value each, else unknown (NewSlotsSample refuses
	// what is not plausible).
	single := func(name string) (float64, bool) {
		if len(results[name]) != 1 {
			return 0, false
		}
		return float64(results[name][0].Value), true
	}
	if total, ok := single(QSlotsTotal); ok {
		if available, ok := single(QSlotsAvailable); ok {
			out.Slots = metrics.NewSlotsSample(total, available)
		}
	}
	return out, nil
}

func allSkipped(queries map[string]string, names []string) bool {
	for _, n := range names {
		if queries[n] != "" {
			return false
		}
	}
	return true
}

// partitions joins the offset results of a vertex.
func partitions(id string, current, committed model.Vector) []metrics.PartitionOwner {
	byKey := map[partKey]*metrics.PartitionOwner{}
	var keys []partKey
	add := func(vec model.Vector, isCurrent bool) {
		for _, s := range vec {
			if string(s.Metric[lTaskID]) != id {
				continue
			}
			p, err := strconv.Atoi(string(s.Metric[lPartition]))
			topic := string(s.Metric[lTopic])
			if err != nil || topic == "" {
				continue
			}
			k := partKey{topic, p}
			po := byKey[k]
			if po == nil {
				sub, _ := strconv.Atoi(string(s.Metric[lSubtask]))
				po = &metrics.PartitionOwner{Topic: topic, Partition: p, Subtask: sub, CurrentOffset: -1, CommittedOffset: -1}
				byKey[k] = po
				keys = append(keys, k)
			}
			if isCurrent {
				po.CurrentOffset = toOffset(float64(s.Value))
			} else {
				po.CommittedOffset = toOffset(float64(s.Value))
			}
		}
	}
	add(current, true)
	add(committed, false)
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	var out []metrics.PartitionOwner
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

// query runs one instant query; it must return a vector.
func (p *PromQL) query(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	val, _, err := p.API.Query(ctx, q, at)
	if err != nil {
		return nil, err
	}
	if val == nil {
		return nil, errors.New("no result")
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("result is a %s, not a vector", val.Type())
	}
	return vec, nil
}
