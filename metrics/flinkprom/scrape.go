package flinkprom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
//   - numRecordsIn/Out and numRecordsIn/OutPerSecond: sums. "In" is the
//     head operator's (operator_id == task_id) operator-scope metric where
//     it is exported, which for a FLIP-27 source is the only real input
//     (its task-level numRecordsIn is 0), else the task's;
//   - pendingRecords: sum over the subtasks of a source vertex;
//   - KafkaSourceReader topic/partition currentOffset and committedOffset:
//     one PartitionOwner per partition, with the reporting subtask;
//   - from the JobManager: the checkpoint gauges.
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
	results := make([]map[string]*dto.MetricFamily, len(targets))
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
		if t.Role == JobManager {
			jmScraped = true
			agg.addJobManager(results[i])
		} else {
			agg.addTaskManager(results[i])
		}
	}
	return agg.sample(at, failed, tmFailed, jmScraped)
}

// fetch reads and parses one target's exposition.
func (s *Scraper) fetch(ctx context.Context, t Target) (map[string]*dto.MetricFamily, error) {
	if t.Role != JobManager && t.Role != TaskManager {
		return nil, fmt.Errorf("unknown role %q", t.Role)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
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
		return nil, err
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
		return nil, err
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("exposition larger than %d bytes", MaxBodyBytes)
	}
	return parseExposition(body)
}

// parseExposition parses text format 0.0.4 as Flink's reporter writes it
// (simpleclient 0.8.1: a comma before '}', Java doubles such as
// "1.2345678E7", "NaN", "+Inf").
//
// expfmt v0.66.1's parser panics on some malformed input (a line starting
// with '{' after a comment: nil pointer in startLabelName); a target must
// not crash the caller, so a panic is returned as a parse error.
func parseExposition(b []byte) (mfs map[string]*dto.MetricFamily, err error) {
	defer func() {
		if r := recover(); r != nil {
			mfs, err = nil, fmt.Errorf("parsing the exposition: parser panic: %v", r)
		}
	}()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err = p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parsing the exposition: %w", err)
	}
	return mfs, nil
}
