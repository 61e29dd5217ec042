package flinkprom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
)

// Role is the kind of Flink process a Target is.
type Role string

// Roles of targets.
const (
	JobManager  Role = "jobmanager"
	TaskManager Role = "taskmanager"
)

// Target is one PrometheusReporter endpoint. URL is the endpoint, e.g.
// "http://10.244.1.17:9249"; an empty path or "/" becomes "/metrics" (the
// reporter answers every path with the whole registry).
type Target struct {
	URL  string
	Role Role
}

// Defaults of Scraper.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 8
	// MaxBodyBytes bounds one exposition (a TaskManager with many subtasks
	// and Kafka partitions serves a few MiB at most).
	MaxBodyBytes = 64 << 20
)

// Scraper reads the PrometheusReporter endpoints of a Flink job's
// processes and aggregates them into a metrics.FlinkSample (metric fields
// only: see the package documentation and Merge).
type Scraper struct {
	// Client does the requests; nil uses http.DefaultClient.
	Client *http.Client
	// Timeout bounds each target's request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency bounds the requests in flight; 0 means
	// DefaultConcurrency.
	Concurrency int
	// JobID keeps only this job's metrics (a session cluster runs
	// several); empty accepts one job and fails when the targets report
	// more.
	JobID string
	// Now stamps the sample; nil means time.Now.
	Now func() time.Time
}

// Scrape fetches every target in parallel and aggregates the job's
// metrics per vertex (label task_id):
//
//   - busyTimeMsPerSecond and backPressuredTimeMsPerSecond: avg and max
//     over subtasks;
//   - numRecordsIn and numRecordsInPerSecond: sums of the head operator's
//     (operator_id == task_id) operator-scope metric where the vertex
//     exports it, which for a FLIP-27 source is the only real input (its
//     task-level numRecordsIn is 0), else of the task's;
//   - numRecordsOut and numRecordsOutPerSecond: sums of the task's. For a
//     source vertex (its head operator is named "Source: …" or is a Kafka
//     reader) the source operator's operator-scope
//     flink_taskmanager_job_task_operator_numRecordsOut(PerSecond) stands
//     in where the task's is absent, and for both when the task's is 0
//     while the source operator's is not (the counters decide, else the
//     rates), as metrics/flink does for REST. The source operator is the
//     head (operator_id == task_id) or, for a subtask with no series of
//     that id, its only operator named "Source: …". A source vertex whose
//     chain really emits nothing (everything filtered) then reports the
//     source operator's output;
//   - pendingRecords: sum over the subtasks of a source vertex;
//   - KafkaSourceReader topic/partition currentOffset and committedOffset:
//     one PartitionOwner per partition, with the reporting subtask;
//     negative values (-1 until known, Flink's sentinels) are -1: unknown;
//   - from the JobManager: the checkpoint gauges, and the resource
//     manager's flink_jobmanager_taskSlotsTotal and taskSlotsAvailable
//     (no job label: the JobManager target is the job's cluster's). They
//     set the sample's Slots when every JobManager that reports them
//     agrees and they are plausible; otherwise the slots are unknown,
//     never a Missing entry.
//
// A metric is set for a vertex only when every reported subtask has a
// finite value for it (NaN, e.g. busyTimeMsPerSecond not measured, is
// missing, never zero); otherwise it is nil and named in Missing. A target
// that cannot be read is named in Missing with its error and the others
// are used. When a TaskManager failed, or the subtask indices have a gap,
// each vertex gets a "<id>: subtasks: …" Missing entry, as its aggregates
// may be over only part of its subtasks: Merge, which knows the
// parallelism, keeps complete vertices and drops partial ones.
//
// Each exposition is parsed one metric family at a time (see
// parseExposition): a family that does not parse is skipped, reported in
// the sample's Dropped list ("<role> <url>: family <name> skipped: <why>",
// at most 5 per target and 20 in all), and the rest of the target is used.
// A skipped family the scraper reads is lost to every subtask the target
// reports: its metrics are missing for them (the Missing entry says how
// many were lost so), never taken from elsewhere (a source's task-level
// input instead of its operator's); a source subtask whose currentOffset
// and committedOffset families were both lost leaves its vertex's
// partitions unknown (nil, named in Missing); and the vertices get the
// "subtasks" entry as for a failed TaskManager. A skipped family the
// scraper does not read costs nothing and is only in Dropped. A target
// none of whose families parses is a failed target.
//
// Scrape returns an error only when ctx ends, when no target is given, or
// when the targets report several jobs and JobID is not set; a sample
// with every target failed has no vertices and says why in Missing.
func (s *Scraper) Scrape(ctx context.Context, targets []Target) (metrics.FlinkSample, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if len(targets) == 0 {
		return metrics.FlinkSample{At: now()}, errors.New("flinkprom: no targets")
	}
	at := now()
	results := make([]*exposition, len(targets))
	errs := make([]error, len(targets))
	conc := s.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			results[i], errs[i] = s.fetch(ctx, t)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return metrics.FlinkSample{At: at}, err
	}

	agg := newAggregator(s.JobID)
	var failed []string
	tmFailed, jmScraped := false, false
	for i, t := range targets {
		if errs[i] != nil {
			failed = append(failed, fmt.Sprintf("%s %s: %v", t.Role, t.URL, errs[i]))
			tmFailed = tmFailed || t.Role != JobManager
			continue
		}
		where := fmt.Sprintf("%s %s", t.Role, t.URL)
		if t.Role == JobManager {
			jmScraped = true
			agg.addJobManager(where, results[i])
		} else {
			agg.addTaskManager(where, results[i])
		}
	}
	return agg.sample(at, failed, tmFailed, jmScraped)
}

// fetch reads and parses one target's exposition.
func (s *Scraper) fetch(ctx context.Context, t Target) (*exposition, error) {
	if t.Role != JobManager && t.Role != TaskManager {
		return nil, fmt.Errorf("unknown role %q", t.Role)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the URL: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the exposition: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("exposition larger than %d bytes", MaxBodyBytes)
	}
	return parseExposition(body)
}
