package flink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/scaling"
)

// Task-scope metric ids.
const (
	mBusy          = "busyTimeMsPerSecond"
	mBackPressured = "backPressuredTimeMsPerSecond"
	mIn            = "numRecordsIn"
	mOut           = "numRecordsOut"
	mInRate        = "numRecordsInPerSecond"
	mOutRate       = "numRecordsOutPerSecond"
	mPending       = "pendingRecords"
)

// DefaultInFlight bounds the requests a Collect has in flight unless
// WithInFlight says otherwise.
const DefaultInFlight = 4

// Defaults of the fetcher priming (see Collector).
const (
	// DefaultFetcherUpdateInterval is Flink's metrics.fetcher.update-interval
	// default: the JobManager refreshes its metric store at most this often.
	DefaultFetcherUpdateInterval = 10 * time.Second
	// DefaultFetcherWait is how long Collect waits after priming the
	// fetcher before it reads: the JobManager's RPCs to the TaskManagers'
	// metric query services usually answer in well under a second.
	DefaultFetcherWait = time.Second
)

// Collector polls one job into metrics.FlinkSample. Per Collect it makes:
// one job-details call; one id discovery per vertex (cached per job id for
// non-sources; every poll for sources, whose pendingRecords appears late);
// one aggregated-metrics call per vertex; one metric listing plus one get
// (more only for hundreds of partitions) per source vertex; one checkpoints,
// one TaskManagers and one cluster overview call (the Flink version and the
// task slots Flink reports); and, when its last metrics request is older
// than the fetcher's update interval, one priming call. The checkpoint
// configuration is read once per job id; jobID "" adds a job listing. A
// Collector is safe for concurrent use.
//
// # Fresh values from the JobManager's metric store
//
// Flink's REST API does not read metrics live: the JobManager answers every
// metrics request (…/metrics, …/subtasks/metrics, /taskmanagers/:id/metrics)
// from its MetricStore, which its MetricFetcher refreshes from the
// TaskManagers only when a metrics request arrives, at most once per
// metrics.fetcher.update-interval (10 s by default), and asynchronously: the
// request that triggers a refresh is answered from the old store, and so is
// every request until the TaskManagers have answered. A collector that read
// at once would get, on each poll, the values of the refresh its previous
// poll triggered (one poll interval old; right after a deployment, a store
// fetched as the tasks started: busy 1000 ms/s, no records, offsets -1).
//
// So before reading vertex metrics Collect primes the fetcher: one cheap
// metrics request (the first running vertex's numRecordsIn sum), then a
// wait (DefaultFetcherWait; WithFetcherWait), then the reads. It primes
// only when its previous metrics request is at least the update interval
// old (DefaultFetcherUpdateInterval; WithFetcherUpdateInterval): a poller
// faster than the interval is never delayed and reads a store refreshed by
// its own earlier requests, at most one update interval plus one poll
// period old. A Collect that primes lasts the wait longer. Job details,
// checkpoint statistics, the TaskManager list and the cluster overview are
// live (the JobManager reads them from the execution graph and the
// resource manager): all but the first are read during the wait. (Job
// details read running tasks' IO metrics through the fetcher too,
// MutableIOMetrics, so they may also trigger it; the priming does not rely
// on that.)
//
// A prime that fails is named in Missing ("metrics fetcher: …"; the values
// read may then be one poll old) and the reads go on; the priming never
// produces a value. What stays stale after priming: up to the wait (the
// store is as of the refresh), and what the TaskManagers' own metric views
// hold: busy and backpressured times change at their 5-second view
// updates, and *PerSecond meters average the last 60 s.
type Collector struct {
	c *Client

	interval time.Duration // the JobManager's metrics.fetcher.update-interval
	wait     time.Duration // after priming; 0: never prime
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error

	// slowRefresh: see WithSlowRefresh.
	slowRefresh time.Duration
	// inFlight: see WithInFlight.
	inFlight int

	mu        sync.Mutex
	slow      *slowRead           // the last reads of slowly changing state
	cachedJob string              // job id the caches below belong to
	ids       map[string][]string // vertex id → discovered ids (non-sources)
	// Sources' discovered ids and partition metric ids, each with when it
	// was listed: reused for the slow refresh (see discover, partitions).
	srcIDs      map[string]listed
	partIDs     map[string]listed
	tmIDs       []string // the TaskManagers' memory metric ids (nil: not discovered)
	version     string
	ckptConf    *ckptConf
	lastMetrics time.Time // the first metrics request of the latest Collect that made one
	primeVertex string    // the vertex the latest Collect of cachedJob primed with (PrimeAhead)
	// ahead is when PrimeAhead last primed the fetcher for aheadJob, until
	// a Collect of that job reads (zero: no priming pending).
	ahead    time.Time
	aheadJob string
}

// MaxPendingPrime bounds how long a priming request PrimeAhead sent stands
// for the Collect that follows it: a Collect that comes back later (its
// caller's queue was that long) reads the store that request refreshed,
// dated by it (FlinkSample.MetricsAge), instead of priming again; older
// than this, PrimeAhead primes again.
const MaxPendingPrime = time.Minute

type ckptConf struct {
	interval, timeout time.Duration
	missing           string
	// backend is the state backend (metrics.StateBackendType; "": not
	// reported).
	backend string
}

// DefaultSlowRefresh is how long a Collector reuses what it read of the
// cluster's slowly changing state: the overview (Flink version, slots),
// the checkpoint statistics and the TaskManagers (shape, memory).
const DefaultSlowRefresh = time.Minute

// slowRead is what one Collect read of the slowly changing state, and of
// which job: reused while the job runs the same attempt at the same
// parallelism, for at most the slow refresh.
type slowRead struct {
	at          time.Time // c.now() when read
	job         string
	running     time.Time // the job's RUNNING timestamp
	parallelism string    // every vertex's parallelism, in order
	version     string
	slots       *metrics.SlotsSample
	checkpoints *metrics.CheckpointSample
	backend     string
	tms         *metrics.TaskManagerSample
	missing     []string // what those reads could not read, named again
}

// clone is a shallow copy of *p.
func clone[T any](p *T) *T {
	v := *p
	return &v
}

// WithSlowRefresh sets how long (default DefaultSlowRefresh) Collect reuses
// the overview, checkpoint statistics and TaskManagers it read, as long as
// the job runs the same attempt (job id, RUNNING timestamp) at the same
// parallelism: three to four requests a poll fewer at a 30 s polling
// interval for values that change at a checkpoint interval or a rescale.
// d ≤ 0 reads them at every Collect.
func WithSlowRefresh(d time.Duration) CollectorOption {
	return func(c *Collector) { c.slowRefresh = max(d, 0) }
}

// CollectorOption configures a Collector.
type CollectorOption func(*Collector)

// WithInFlight bounds the requests a Collect has in flight (default
// DefaultInFlight; n < 1 is 1). Against an HTTP/1.1 server such as
// Flink's, each needs a connection of its own: a client that keeps one
// idle connection per JobManager between polls sends one at a time.
func WithInFlight(n int) CollectorOption {
	return func(c *Collector) { c.inFlight = max(n, 1) }
}

// WithFetcherUpdateInterval is the JobManager's
// metrics.fetcher.update-interval (default DefaultFetcherUpdateInterval):
// Collect primes the fetcher when its previous metrics request is at least
// this old. d ≤ 0 primes before every read.
func WithFetcherUpdateInterval(d time.Duration) CollectorOption {
	return func(c *Collector) { c.interval = max(d, 0) }
}

// WithFetcherWait is the wait between priming the fetcher and reading
// (default DefaultFetcherWait). d ≤ 0 disables priming: every poll then
// reads what the previous metrics request made the JobManager fetch.
func WithFetcherWait(d time.Duration) CollectorOption {
	return func(c *Collector) { c.wait = max(d, 0) }
}

// WithClock sets the clock that dates metrics requests to decide whether
// to prime (default time.Now). A harness whose JobManager runs on a virtual
// clock passes that clock.
func WithClock(now func() time.Time) CollectorOption {
	return func(c *Collector) {
		if now != nil {
			c.now = now
		}
	}
}

// WithSleep sets how Collect waits after priming (default: a timer that
// ctx cancels). It must return ctx's error if ctx ends first. A harness
// whose JobManager's clock stands still during a Collect, and whose fetcher
// completes at once, passes one that returns at once.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) CollectorOption {
	return func(c *Collector) {
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// NewCollector returns a Collector reading through c.
func NewCollector(c *Client, opts ...CollectorOption) *Collector {
	col := &Collector{
		c: c, ids: map[string][]string{},
		interval: DefaultFetcherUpdateInterval, wait: DefaultFetcherWait, slowRefresh: DefaultSlowRefresh, inFlight: DefaultInFlight,
		now: time.Now, sleep: sleepCtx,
	}
	for _, o := range opts {
		o(col)
	}
	return col
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Collect polls the job (jobID "": the single job that is not finished,
// cancelled or failed). It fails only when the job's details cannot be
// read; everything else that cannot be read is named in Missing.
func (c *Collector) Collect(ctx context.Context, jobID string) (metrics.FlinkSample, error) {
	if jobID == "" {
		id, err := c.runningJob(ctx)
		if err != nil {
			return metrics.FlinkSample{}, err
		}
		jobID = id
	}
	d, err := c.c.JobDetails(ctx, jobID)
	if err != nil {
		return metrics.FlinkSample{}, err
	}
	c.resetFor(d.ID)

	s := metrics.FlinkSample{JobID: d.ID, JobName: d.Name, State: d.State, RunningSince: d.RunningSince()}
	s.At = time.Now().UTC()
	if d.Now > 0 {
		s.At = time.UnixMilli(d.Now).UTC()
	}
	var mu sync.Mutex
	missing := func(format string, args ...any) {
		mu.Lock()
		s.Missing = append(s.Missing, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	if s.RunningSince.IsZero() {
		missing("runningSince: job has never been RUNNING")
	}

	inputs := map[string][]scaling.Input{}
	for _, n := range d.Plan.Nodes {
		for _, in := range n.Inputs {
			inputs[n.ID] = append(inputs[n.ID], scaling.Input{ID: in.ID, ShipStrategy: in.ShipStrategy})
		}
	}
	s.Vertices = make([]metrics.VertexSample, len(d.Vertices))

	sem := make(chan struct{}, c.inFlight)
	var wg sync.WaitGroup
	// inFlight runs f, which sends requests one after the other, in one of
	// the Collect's slots for requests in flight.
	inFlight := func(f func()) {
		sem <- struct{}{}
		defer func() { <-sem }()
		f()
	}
	// run queues f for the Collect's workers: as many goroutines as slots,
	// started at the first run, not one per request (each new goroutine
	// grows its stack through the HTTP client again: 7 % of a fleet's
	// CPU). Every run is at most one of the three slow reads, one per
	// vertex and one more per vertex (a source's partitions), so the
	// queue never blocks.
	tasks := make(chan func(), 3+2*len(d.Vertices))
	started := false // set before the first worker starts; read-only then
	run := func(f func()) {
		wg.Add(1)
		tasks <- f
		if !started {
			started = true
			for range c.inFlight {
				go func() {
					for f := range tasks {
						inFlight(f)
						wg.Done()
					}
				}()
			}
		}
	}
	defer close(tasks)
	running := d.State == "RUNNING"
	if !running {
		missing("vertex metrics: job is %s", d.State)
	}
	var readable []int // the vertices whose metrics to read
	for i, v := range d.Vertices {
		s.Vertices[i] = metrics.VertexSample{
			ID: v.ID, Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism,
			SlotSharingGroup: v.SlotSharingGroupID, Inputs: inputs[v.ID],
		}
		// Before Flink 1.20 the vertices have no slotSharingGroupId: the
		// groups, and so the slots a plan needs, are not known.
		s.SlotSharingUnknown = s.SlotSharingUnknown || !v.SlotSharingGroupReported
		if !running {
			continue
		}
		if v.Status != "" && v.Status != "RUNNING" {
			missing("%s: metrics: vertex is %s", v.ID, v.Status)
			continue
		}
		readable = append(readable, i)
	}
	// Live answers first: they are read while the fetcher refreshes. The
	// slowly changing ones are reused when recent (WithSlowRefresh).
	par := make([]byte, 0, 4*len(d.Vertices))
	for _, v := range d.Vertices {
		par = strconv.AppendInt(append(par, ' '), int64(v.Parallelism), 10)
	}
	now := c.now()
	c.mu.Lock()
	prev := c.slow
	c.mu.Unlock()
	var read *slowRead // what this Collect reads, to keep
	if prev != nil && prev.job == d.ID && prev.running.Equal(s.RunningSince) && prev.parallelism == string(par) &&
		now.Sub(prev.at) < c.slowRefresh && !now.Before(prev.at) {
		// Copies: a caller may modify its sample.
		s.FlinkVersion, s.StateBackend = prev.version, prev.backend
		s.Slots, s.Checkpoints, s.TaskManagers = clone(prev.slots), clone(prev.checkpoints), clone(prev.tms)
		if m := prev.tms.Memory; m != nil {
			s.TaskManagers.Memory = clone(m)
		}
	} else {
		read = &slowRead{at: now, job: d.ID, running: s.RunningSince, parallelism: string(par)}
		var gaps atomic.Int32
		slowMissing := func(format string, args ...any) {
			gaps.Add(1)
			missing(format, args...)
		}
		run(func() {
			ver, slots, err := c.overview(ctx)
			if err != nil && ver == "" {
				slowMissing("flinkVersion: %v", err)
			}
			mu.Lock()
			s.FlinkVersion, s.Slots = ver, slots
			mu.Unlock()
		})
		run(func() {
			cp, backend := c.checkpoints(ctx, d.ID, slowMissing)
			mu.Lock()
			s.Checkpoints, s.StateBackend = cp, backend
			mu.Unlock()
		})
		run(func() {
			tm := c.taskManagers(ctx, slowMissing)
			mu.Lock()
			s.TaskManagers = tm
			mu.Unlock()
		})
		defer func() {
			// Kept only when read whole (no gap, no slots or memory
			// left unknown): a gap is read again at the next Collect.
			if gaps.Load() > 0 || ctx.Err() != nil || s.Slots == nil || s.TaskManagers == nil || s.Checkpoints == nil {
				return
			}
			read.version, read.slots, read.checkpoints, read.backend, read.tms = s.FlinkVersion, s.Slots, s.Checkpoints, s.StateBackend, s.TaskManagers
			c.mu.Lock()
			c.slow = read
			c.mu.Unlock()
		}()
	}
	if len(readable) > 0 && c.prime(ctx, d.ID, d.Vertices[readable[0]].ID, inFlight, missing, &s.MetricsAge) == nil {
		for _, i := range readable {
			v, vs := d.Vertices[i], &s.Vertices[i]
			run(func() { c.vertex(ctx, d.ID, v, vs, missing, run) })
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return metrics.FlinkSample{}, fmt.Errorf("flink: collecting job %s: %w", d.ID, err)
	}
	sort.Strings(s.Missing)
	return s, nil
}

// prime makes the JobManager's MetricFetcher refresh its store before the
// vertex reads when the store may be older than the update interval: one
// metrics request, then the wait (see Collector). A priming PrimeAhead
// sent for the job stands for it, however late this Collect comes (up to
// MaxPendingPrime). It dates the metrics requests of this Collect, and sets
// *age to the time since that priming request (left 0 otherwise: a store
// primed here is as of the sample's time, one not primed at most the
// update interval old). It fails only when ctx ends; a failed prime is
// named in Missing and the reads go on.
func (c *Collector) prime(ctx context.Context, jobID, vertexID string, inFlight func(func()), missing func(string, ...any), age *time.Duration) error {
	now := c.now()
	c.mu.Lock()
	last := c.lastMetrics
	c.lastMetrics = now
	if jobID == c.cachedJob {
		c.primeVertex = vertexID
	}
	ahead, pending := c.ahead, c.pendingAhead(jobID, now)
	c.ahead, c.aheadJob = time.Time{}, ""
	c.mu.Unlock()
	if pending {
		*age = now.Sub(ahead)
		return nil
	}
	if c.wait <= 0 {
		return nil
	}
	if c.storeFresh(now, last) {
		return nil
	}
	// Any metrics handler triggers the fetcher; this one answers a few
	// bytes (or [] when the vertex has no numRecordsIn yet).
	var err error
	inFlight(func() { _, err = c.c.AggregatedSubtaskMetrics(ctx, jobID, vertexID, []string{mIn}, []string{AggSum}) })
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		missing("metrics fetcher: priming failed, values may be one poll old: %v", err)
		return nil
	}
	if err := c.sleep(ctx, c.wait); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		missing("metrics fetcher: waiting after priming: %v", err)
	}
	return nil
}

// pendingAhead reports whether PrimeAhead primed for jobID, no Collect of
// it has read since, and that was less than MaxPendingPrime before now.
// c.mu is held.
func (c *Collector) pendingAhead(jobID string, now time.Time) bool {
	return !c.ahead.IsZero() && c.aheadJob == jobID && !now.Before(c.ahead) && now.Sub(c.ahead) < MaxPendingPrime
}

// PrimeAhead primes the fetcher for the next Collect of jobID without
// waiting: a caller that can come back later (the controller requeues the
// policy) sends the priming request now, frees its worker, and collects
// after the returned wait, when Collect reads at once from the refreshed
// store instead of priming and sleeping itself. It sends nothing and
// returns 0 when that Collect would not prime: priming disabled, a
// metrics request less than the update interval ago, or a priming it sent
// that no Collect has read yet.
//
// That last case is a caller that came back later than the update
// interval: its queue held it (a controller with a backlog). Priming again
// would send it back to the queue, to come back late again: at most one
// priming per Collect, whose store the Collect reads, dated by the priming
// (FlinkSample.MetricsAge). A failed priming request is returned: the
// JobManager did not answer.
func (c *Collector) PrimeAhead(ctx context.Context, jobID string) (time.Duration, error) {
	now := c.now()
	c.mu.Lock()
	last, vertex := c.lastMetrics, c.primeVertex
	known := jobID != "" && jobID == c.cachedJob && vertex != ""
	pending := c.pendingAhead(jobID, now)
	c.mu.Unlock()
	if c.wait <= 0 || jobID == "" || pending || c.storeFresh(now, last) {
		return 0, nil
	}
	// Any metrics handler triggers the fetcher. Before the first Collect
	// of the job no vertex is known: the TaskManagers' aggregated heap
	// gauge, a few bytes, primes it as well (a fleet that a new replica
	// takes over, or that starts, is polled without a worker waiting).
	var err error
	if known {
		_, err = c.c.AggregatedSubtaskMetrics(ctx, jobID, vertex, []string{mIn}, []string{AggSum})
	} else {
		_, err = c.c.AggregatedTaskManagerMetrics(ctx, []string{"Status.JVM.Memory.Heap.Used"}, []string{AggMax})
	}
	if err != nil {
		return 0, fmt.Errorf("flink: priming the metric fetcher of job %s: %w", jobID, err)
	}
	c.mu.Lock()
	c.lastMetrics = now
	c.ahead, c.aheadJob = now, jobID
	c.mu.Unlock()
	return c.wait, nil
}

// storeFresh reports whether a metrics request at last, less than the
// fetcher's update interval before now, left the JobManager's store fresh
// enough not to prime. A clock that went back (a harness's virtual clock)
// tells nothing: prime.
func (c *Collector) storeFresh(now, last time.Time) bool {
	since := now.Sub(last)
	return !last.IsZero() && since >= 0 && since < c.interval
}

// runningJob is the id of the single job that is not globally terminal.
func (c *Collector) runningJob(ctx context.Context) (string, error) {
	jobs, err := c.c.Jobs(ctx)
	if err != nil {
		return "", err
	}
	var live []string
	for _, j := range jobs {
		switch j.State {
		case "FINISHED", "CANCELED", "FAILED":
		default:
			live = append(live, j.ID)
		}
	}
	switch len(live) {
	case 1:
		return live[0], nil
	case 0:
		return "", fmt.Errorf("flink: no job running (%d finished)", len(jobs))
	}
	return "", fmt.Errorf("flink: %d jobs running (%s); name one", len(live), strings.Join(live, ", "))
}

// resetFor drops the caches of another job id: vertex ids survive a
// restart, but their metric ids (operator names, parallelism) may not.
func (c *Collector) resetFor(jobID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cachedJob != jobID {
		c.cachedJob, c.ids, c.version, c.ckptConf, c.tmIDs, c.primeVertex = jobID, map[string][]string{}, "", nil, nil, ""
		c.srcIDs, c.partIDs = nil, nil
	}
}

// overview reads the cluster overview: the Flink version (cached per job
// id, so that an overview that fails later costs nothing) and the task
// slots the resource manager reports now ("slots-total",
// "slots-available"; nil when the overview fails or they are not
// plausible: unknown, never a gap).
func (c *Collector) overview(ctx context.Context) (string, *metrics.SlotsSample, error) {
	o, err := c.c.Overview(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return c.version, nil, err
	}
	c.version = o.FlinkVersion
	return o.FlinkVersion, metrics.NewSlotsSample(float64(o.SlotsTotal), float64(o.SlotsAvailable)), nil
}

// listed is a list of metric ids and when it was listed (c.now()).
type listed struct {
	at  time.Time
	ids []string
	// parsed is ids parsed (ParsePartitionMetricID), for the partition
	// gauges' lists.
	parsed []PartitionMetric
}

// partitionList is the partition gauges among a source vertex's listed
// ids, kept (listed.ids, listed.parsed) in one string they are all cut
// from, with slices at their length: a source lists two gauges per
// partition and subtask, so the list is cached for the slow refresh, and
// its ids as the listing decoded them (a string each) and slices grown by
// append were 7 kB per job in make bench-scale's heap profile.
func partitionList(list []string) listed {
	var kept []string
	size := 0
	for _, id := range list {
		if _, ok := ParsePartitionMetricID(id); ok {
			kept, size = append(kept, id), size+len(id)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, id := range kept {
		b.WriteString(id)
	}
	all := b.String()
	l := listed{ids: make([]string, len(kept)), parsed: make([]PartitionMetric, len(kept))}
	for i, id := range kept {
		// Parsed again from the copy: the topic is cut from it.
		l.ids[i], all = all[:len(id)], all[len(id):]
		l.parsed[i], _ = ParsePartitionMetricID(l.ids[i])
		l.parsed[i].Kind = partitionKind(l.parsed[i].Kind)
	}
	return l
}

// partitionKind is kind as one of the constants (no copy of the id's).
func partitionKind(kind string) string {
	if kind == kindCurrent {
		return kindCurrent
	}
	return kindCommitted
}

// The kinds of partition gauges (PartitionMetric.Kind).
const (
	kindCurrent   = "currentOffset"
	kindCommitted = "committedOffset"
)

// cachedList returns the list of m[vid] if it was listed less than the slow
// refresh ago.
func (c *Collector) cachedList(m map[string]listed, vid string) ([]string, bool) {
	l, ok := c.cached(m, vid)
	return l.ids, ok
}

// cached returns m[vid] if it was listed less than the slow refresh ago.
func (c *Collector) cached(m map[string]listed, vid string) (listed, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := m[vid]
	if !ok || now.Sub(l.at) >= c.slowRefresh || now.Before(l.at) {
		return listed{}, false
	}
	return l, true
}

// keepList records ids as vertex vid's list in *m, listed now.
func (c *Collector) keepList(m *map[string]listed, vid string, ids []string) {
	c.keep(m, vid, listed{ids: ids})
}

// keep records l as vertex vid's list in *m, listed now.
func (c *Collector) keep(m *map[string]listed, vid string, l listed) {
	l.at = c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[string]listed{}
	}
	(*m)[vid] = l
}

// dropList forgets vertex vid's list in *m (its ids changed).
func (c *Collector) dropList(m *map[string]listed, vid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(*m, vid)
}

// discover returns the vertex's aggregated metric ids: cached for
// non-sources; for sources, reused for the slow refresh once Flink has
// registered their pendingRecords (before the first record it has not,
// and the list is read again at every poll).
func (c *Collector) discover(ctx context.Context, jobID, vid string, source bool) ([]string, error) {
	if !source {
		c.mu.Lock()
		ids, ok := c.ids[vid]
		c.mu.Unlock()
		if ok {
			return ids, nil
		}
	} else if ids, ok := c.cachedList(c.srcIDs, vid); ok {
		return ids, nil
	}
	ids, err := c.c.VertexMetricIDs(ctx, jobID, vid)
	if err != nil {
		return nil, err
	}
	if source {
		if ids = sourceMetricIDs(ids); slices.ContainsFunc(ids, func(id string) bool { return strings.HasSuffix(id, "."+mPending) }) {
			c.keepList(&c.srcIDs, vid, ids)
		}
		return ids, nil
	}
	// A vertex that has not registered its task metrics yet (just
	// deployed) is not cached, so that the next poll looks again.
	if !source && contains(ids, mBusy) {
		ids = taskMetricIDs(ids)
		c.mu.Lock()
		c.ids[vid] = ids
		c.mu.Unlock()
	}
	return ids, nil
}

// sourceMetricIDs keeps of a source vertex's discovered ids those vertex
// and sourceOperator read: the task's, and every operator's records
// counters and rates and pendingRecords.
func sourceMetricIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		name := id
		if i := strings.LastIndexByte(id, '.'); i >= 0 {
			name = id[i+1:]
		}
		switch name {
		case mBusy, mBackPressured, mIn, mOut, mInRate, mOutRate, mPending:
			out = append(out, id)
		}
	}
	return out
}

// taskMetricIDs keeps of a non-source vertex's discovered ids those vertex
// reads. Flink registers tens to hundreds of metrics per task (buffers,
// bytes, checkpoint timings, every chained operator's counters); caching
// them all cost 16 kB per job of 10 vertices (make bench-scale's heap
// profile at 1,000 jobs: 16 MB). What is kept is one of the shared lists
// of taskMetricSets, in their order: which of the six a vertex has is all
// that differs between vertices, so the cache holds no strings of its own
// (copies of the listing's strings and a slice per vertex were still 6 kB
// per job of 10 vertices in that profile).
func taskMetricIDs(ids []string) []string {
	var set int
	for _, id := range ids {
		if i := slices.Index(taskMetrics[:], id); i >= 0 {
			set |= 1 << i
		}
	}
	return taskMetricSets[set]
}

// taskMetrics are the task-scope metrics a non-source vertex is read by.
var taskMetrics = [...]string{mBusy, mBackPressured, mIn, mOut, mInRate, mOutRate}

// taskMetricSets[set] lists the taskMetrics whose bit set has, at full
// capacity (an append copies; the lists are shared, never written).
var taskMetricSets = func() (sets [1 << len(taskMetrics)][]string) {
	for set := range sets {
		var l []string
		for i, id := range taskMetrics {
			if set&(1<<i) != 0 {
				l = append(l, id)
			}
		}
		sets[set] = slices.Clip(l)
	}
	return sets
}()

func (c *Collector) forget(vid string) {
	c.mu.Lock()
	delete(c.ids, vid)
	c.mu.Unlock()
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// sourceOperator picks the source operator's scope among the discovered
// ids: the one with both numRecordsIn and numRecordsInPerSecond, preferring
// "Source__…" and then the vertex name's head operator.
func sourceOperator(ids []string, vertexName string) string {
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	var cands []string
	for _, id := range ids {
		if op, ok := strings.CutSuffix(id, "."+mInRate); ok && have[op+"."+mIn] {
			cands = append(cands, op)
		}
	}
	if len(cands) == 0 {
		return ""
	}
	sort.Strings(cands)
	head, _, _ := strings.Cut(vertexName, " -> ")
	if want := SanitizeScope(head); len(want) > 0 {
		for _, op := range cands {
			if op == want {
				return op
			}
		}
	}
	for _, op := range cands {
		if strings.HasPrefix(op, "Source__") {
			return op
		}
	}
	return cands[0]
}

// SanitizeScope writes a scope component as REST metric ids do: ' ', '.',
// ':' and ',' become '_', and operator names are cut to 80 characters.
func SanitizeScope(s string) string {
	if r := []rune(s); len(r) > 80 {
		s = string(r[:80])
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', ':', ',':
			return '_'
		}
		return r
	}, s)
}

// vertex fills one vertex's metrics: discovery, one aggregated query and,
// for sources, the partition owners (queued with run).
func (c *Collector) vertex(ctx context.Context, jobID string, v JobVertex, vs *metrics.VertexSample, missing func(string, ...any), run func(func())) {
	source := len(vs.Inputs) == 0
	ids, err := c.discover(ctx, jobID, v.ID, source)
	if err != nil {
		missing("%s: metrics: %v", v.ID, err)
		return
	}
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	var want []string
	ask := func(name, id string) string {
		if have[id] {
			want = append(want, id)
			return id
		}
		missing("%s: %s: not reported", v.ID, name)
		return ""
	}
	busy := ask(mBusy, mBusy)
	bp := ask(mBackPressured, mBackPressured)
	inID, outID, inRateID, outRateID := mIn, mOut, mInRate, mOutRate
	var pending []string
	if source {
		op := sourceOperator(ids, v.Name)
		if op != "" {
			inID, inRateID = op+"."+mIn, op+"."+mInRate
			if !have[mOut] && have[op+"."+mOut] {
				outID = op + "." + mOut
			}
			if !have[mOutRate] && have[op+"."+mOutRate] {
				outRateID = op + "." + mOutRate
			}
		} else {
			inID, inRateID = "<source operator>."+mIn, "<source operator>."+mInRate
		}
		for _, id := range ids {
			if strings.HasSuffix(id, "."+mPending) {
				pending = append(pending, id)
				want = append(want, id)
			}
		}
		if len(pending) == 0 {
			missing("%s: %s: not registered yet", v.ID, mPending)
		}
		run(func() { c.partitions(ctx, jobID, v.ID, vs, missing) })
	}
	in := ask(mIn, inID)
	out := ask(mOut, outID)
	inRate := ask(mInRate, inRateID)
	outRate := ask(mOutRate, outRateID)
	if len(want) == 0 {
		return
	}
	agg, err := c.c.AggregatedSubtaskMetrics(ctx, jobID, v.ID, want, []string{AggAvg, AggMax, AggSum})
	if err != nil {
		missing("%s: metrics: %v", v.ID, err)
		return
	}
	if len(agg) == 0 {
		// A discovered id vanished (the vertex restarted or rescaled):
		// discover again next poll.
		c.forget(v.ID)
		c.dropList(&c.srcIDs, v.ID)
		missing("%s: metrics: Flink returned no values for discovered ids %s", v.ID, strings.Join(want, ","))
		return
	}
	gauge := func(name, id string) *metrics.Agg {
		if id == "" {
			return nil
		}
		m, ok := agg[id]
		if !ok || m.Avg == nil || m.Max == nil {
			missing("%s: %s: no avg/max", v.ID, name)
			return nil
		}
		return &metrics.Agg{Avg: float64(*m.Avg), Max: float64(*m.Max)}
	}
	sum := func(name, id string) *float64 {
		if id == "" {
			return nil
		}
		m, ok := agg[id]
		if !ok || m.Sum == nil {
			missing("%s: %s: no sum", v.ID, name)
			return nil
		}
		return m.Sum.Ptr()
	}
	vs.BusyTimeMsPerSecond = gauge(mBusy, busy)
	vs.BackPressuredTimeMsPerSecond = gauge(mBackPressured, bp)
	vs.NumRecordsIn = sum(mIn, in)
	vs.NumRecordsOut = sum(mOut, out)
	vs.NumRecordsInPerSecond = sum(mInRate, inRate)
	vs.NumRecordsOutPerSecond = sum(mOutRate, outRate)
	if len(pending) > 0 {
		total := 0.0
		complete := true
		for _, id := range pending {
			p := sum(mPending, id)
			if p == nil {
				complete = false
				break
			}
			total += *p
		}
		if complete {
			vs.PendingRecords = &total
		}
	}
}

// partitions reads the KafkaSourceReader partition gauges of a source
// vertex: which subtask owns which partition, at which offsets.
func (c *Collector) partitions(ctx context.Context, jobID, vid string, vs *metrics.VertexSample, missing func(string, ...any)) {
	// The partition gauges' ids are listed again after the slow refresh
	// (a topic that gained partitions) or when one vanished.
	// A cached list is kept parsed.
	l, cached := c.cached(c.partIDs, vid)
	if !cached {
		list, err := c.c.VertexMetricList(ctx, jobID, vid)
		if err != nil {
			missing("%s: partitions: %v", vid, err)
			return
		}
		l = partitionList(list)
	}
	type key struct {
		topic          string
		partition, sub int
	}
	ids := l.ids
	if len(ids) == 0 {
		missing("%s: partitions: no KafkaSourceReader partition metrics", vid)
		return
	}
	values, err := c.c.VertexMetrics(ctx, jobID, vid, ids)
	if err != nil {
		missing("%s: partitions: %v", vid, err)
		return
	}
	if len(values) < len(ids) {
		c.dropList(&c.partIDs, vid)
	} else if !cached {
		c.keep(&c.partIDs, vid, l)
	}
	owners := map[key]*metrics.PartitionOwner{}
	for i, id := range ids {
		pm := l.parsed[i]
		k := key{pm.Topic, pm.Partition, pm.Subtask}
		o := owners[k]
		if o == nil {
			o = &metrics.PartitionOwner{Topic: pm.Topic, Partition: pm.Partition, Subtask: pm.Subtask, CurrentOffset: -1, CommittedOffset: -1}
			owners[k] = o
		}
		raw, ok := values[id]
		if !ok {
			continue // gone between listing and get: stays -1
		}
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			if f, ferr := ParseMetricValue(raw); ferr == nil && f == f && f >= -1<<63 && f < 1<<63 {
				n, err = int64(f), nil
			}
		}
		if err != nil {
			missing("%s: %s: value %q is not an offset", vid, id, raw)
			continue
		}
		if pm.Kind == kindCurrent {
			o.CurrentOffset = n
		} else {
			o.CommittedOffset = n
		}
	}
	out := make([]metrics.PartitionOwner, 0, len(owners))
	for _, o := range owners {
		out = append(out, *o)
	}
	vs.Partitions = liveOwners(out)
}

// liveOwners keeps one owner per partition, sorted by topic and partition.
// After an in-place rescale the job keeps its id, and the JobManager's
// metric store keeps the gauges of the subtasks that are gone beside the
// new ones (real Flink 1.20 and 2.2 both do), so a partition can be listed
// under its old and its new subtask: the one reading it now is the one
// whose current offset is ahead (the old gauge stopped at the rescale, the
// new reader moves past it within seconds, inside the warm-up); a tie goes
// to the higher committed offset, then to the lower subtask.
func liveOwners(out []metrics.PartitionOwner) []metrics.PartitionOwner {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		if a.CurrentOffset != b.CurrentOffset {
			return a.CurrentOffset > b.CurrentOffset
		}
		if a.CommittedOffset != b.CommittedOffset {
			return a.CommittedOffset > b.CommittedOffset
		}
		return a.Subtask < b.Subtask
	})
	live := out[:0]
	for _, o := range out {
		if n := len(live); n > 0 && live[n-1].Topic == o.Topic && live[n-1].Partition == o.Partition {
			continue // a stale gauge of a subtask that read it before
		}
		live = append(live, o)
	}
	return live
}

// checkpoints reads the statistics and, once per job, the interval,
// timeout and state backend (checkpoint config, else the JobManager
// configuration).
func (c *Collector) checkpoints(ctx context.Context, jobID string, missing func(string, ...any)) (*metrics.CheckpointSample, string) {
	conf := c.checkpointConf(ctx, jobID)
	if conf.missing != "" {
		missing("checkpoints: interval: %s", conf.missing)
	}
	st, err := c.c.Checkpoints(ctx, jobID)
	if err != nil {
		missing("checkpoints: %v", err)
		return nil, conf.backend
	}
	cs := &metrics.CheckpointSample{
		Interval: conf.interval, Timeout: conf.timeout,
		Completed: st.Counts.Completed, Failed: st.Counts.Failed, InProgress: st.Counts.InProgress,
	}
	if lc := st.Latest.Completed; lc != nil {
		cs.LastDuration = time.Duration(lc.EndToEndDuration) * time.Millisecond
		cs.LastStateSize = lc.StateSize
	} else {
		missing("checkpoints: lastDuration: no completed checkpoint yet")
	}
	return cs, conf.backend
}

func (c *Collector) checkpointConf(ctx context.Context, jobID string) ckptConf {
	c.mu.Lock()
	cached := c.ckptConf
	c.mu.Unlock()
	if cached != nil {
		return *cached
	}
	var out ckptConf
	cfg, err := c.c.CheckpointConfig(ctx, jobID)
	switch {
	case err == nil:
		out.interval, out.timeout = cfg.Interval(), cfg.Timeout()
		out.backend = metrics.StateBackendType(cfg.StateBackend)
	default:
		// Not enabled (404) or an older/odd JobManager: read the
		// configuration instead.
		jm, jerr := c.c.JobManagerConfig(ctx)
		if jerr != nil {
			out.missing = fmt.Sprintf("%v; %v", err, jerr)
			return out // not cached: try again next poll
		}
		iv, ok := ParseFlinkDuration(jm["execution.checkpointing.interval"])
		if !ok || iv <= 0 {
			out.missing = "checkpointing is not enabled (" + errString(err) + ")"
		}
		out.interval = iv
		out.backend = metrics.ConfiguredStateBackend(jm)
		out.timeout = 10 * time.Minute
		if t, ok := ParseFlinkDuration(jm["execution.checkpointing.timeout"]); ok && t > 0 {
			out.timeout = t
		}
	}
	if ctx.Err() != nil {
		return out
	}
	c.mu.Lock()
	c.ckptConf = &out
	c.mu.Unlock()
	return out
}

func errString(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d: %s", ae.Status, ae.Summary())
	}
	return err.Error()
}

// ParseFlinkDuration reads a Flink duration option ("30 s", "500ms",
// "1min", "2 h"; a bare number is milliseconds). Go's "1m30s" form is
// accepted too.
func ParseFlinkDuration(s string) (time.Duration, bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, false
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i > 0 && i <= 18 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err == nil {
			units := map[string]time.Duration{
				"": time.Millisecond, "ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
				"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
				"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
				"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
				"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
			}
			if u, ok := units[strings.TrimSpace(t[i:])]; ok {
				if n > int64(1<<62)/int64(u) {
					return 0, false
				}
				return time.Duration(n) * u, true
			}
		}
	}
	if d, err := time.ParseDuration(t); err == nil {
		return d, true
	}
	return 0, false
}

// taskManagers reads the TaskManagers' shape: slots and CPU of one (the
// largest, should they differ) and how many there are.
func (c *Collector) taskManagers(ctx context.Context, missing func(string, ...any)) *metrics.TaskManagerSample {
	tms, err := c.c.TaskManagers(ctx)
	if err != nil {
		missing("taskmanagers: %v", err)
		return nil
	}
	if len(tms) == 0 {
		missing("taskmanagers: none registered")
		return nil
	}
	out := &metrics.TaskManagerSample{Replicas: len(tms)}
	for _, tm := range tms {
		out.Slots = max(out.Slots, tm.SlotsNumber)
		cpu := float64(tm.TotalResource.CPUCores)
		if !(cpu > 0) {
			cpu = float64(tm.Hardware.CPUCores)
		}
		if cpu > out.CPU {
			out.CPU = cpu
		}
	}
	if !(out.CPU > 0) {
		missing("taskmanagers: cpu: not reported")
	}
	out.Memory = c.memory(ctx, tms)
	return out
}

// Memory metrics of the TaskManagers and how they are aggregated.
var memoryMetrics = []struct {
	id  string
	agg string
}{
	{"Status.JVM.Memory.Heap.Used", AggMax},
	{"Status.JVM.Memory.Heap.Used", AggAvg},
	{"Status.JVM.Memory.Heap.Max", AggMin},
	{"Status.JVM.Memory.Metaspace.Used", AggMax},
	{"Status.Flink.Memory.Managed.Used", AggMax},
	{"Status.Flink.Memory.Managed.Total", AggMin},
	{"Status.JVM.GarbageCollector.All.TimeMsPerSecond", AggMax},
	{"Status.Shuffle.Netty.TotalMemorySegments", AggMin},
	{"Status.Shuffle.Netty.UsedMemorySegments", AggMax},
}

// memory reads the TaskManagers' memory model (the largest TaskManager's)
// and their memory metrics, aggregated over TaskManagers. Which metrics a
// TaskManager has is discovered once per job (Flink answers nothing at all
// when one requested id is missing everywhere). Nothing here is ever a
// hold reason: nil fields are unknown.
func (c *Collector) memory(ctx context.Context, tms []TaskManagerInfo) *metrics.MemorySample {
	m := &metrics.MemorySample{}
	seen := false
	for _, tm := range tms {
		mc := tm.MemoryConfiguration
		if mc == nil || mc.TotalProcessMemory <= m.Process {
			continue
		}
		seen = true
		m.Process, m.Flink, m.Heap = mc.TotalProcessMemory, mc.TotalFlinkMemory, mc.FrameworkHeap+mc.TaskHeap
		m.Managed, m.Network, m.Metaspace = mc.ManagedMemory, mc.NetworkMemory, mc.JVMMetaspace
		m.FrameworkHeap, m.TaskHeap, m.FrameworkOffHeap, m.TaskOffHeap = mc.FrameworkHeap, mc.TaskHeap, mc.FrameworkOffHeap, mc.TaskOffHeap
		m.Overhead = mc.JVMOverhead
	}
	c.mu.Lock()
	ids := c.tmIDs
	c.mu.Unlock()
	if ids == nil {
		known, err := c.c.TaskManagerMetricIDs(ctx, tms[0].ID)
		if err != nil {
			return orNil(m, seen)
		}
		ids = []string{}
		for _, mm := range memoryMetrics {
			if contains(known, mm.id) && !contains(ids, mm.id) {
				ids = append(ids, mm.id)
			}
		}
		c.mu.Lock()
		c.tmIDs = ids
		c.mu.Unlock()
	}
	got, err := c.c.AggregatedTaskManagerMetrics(ctx, ids, []string{AggMin, AggMax, AggAvg})
	if err != nil || len(got) == 0 {
		return orNil(m, seen)
	}
	pick := func(id, agg string) *float64 {
		a, ok := got[id]
		if !ok {
			return nil
		}
		var f *Float
		switch agg {
		case AggMin:
			f = a.Min
		case AggMax:
			f = a.Max
		case AggAvg:
			f = a.Avg
		}
		if f == nil {
			return nil
		}
		v := f.Ptr()
		if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 {
			return nil
		}
		seen = true
		return v
	}
	m.HeapUsedMax, m.HeapUsedAvg = pick("Status.JVM.Memory.Heap.Used", AggMax), pick("Status.JVM.Memory.Heap.Used", AggAvg)
	m.HeapMax = pick("Status.JVM.Memory.Heap.Max", AggMin)
	m.MetaspaceUsedMax = pick("Status.JVM.Memory.Metaspace.Used", AggMax)
	m.ManagedUsedMax, m.ManagedTotal = pick("Status.Flink.Memory.Managed.Used", AggMax), pick("Status.Flink.Memory.Managed.Total", AggMin)
	m.GCTimeMsPerSecondMax = pick("Status.JVM.GarbageCollector.All.TimeMsPerSecond", AggMax)
	m.NetworkSegmentsTotal = pick("Status.Shuffle.Netty.TotalMemorySegments", AggMin)
	m.NetworkSegmentsUsedMax = pick("Status.Shuffle.Netty.UsedMemorySegments", AggMax)
	return orNil(m, seen)
}

func orNil(m *metrics.MemorySample, seen bool) *metrics.MemorySample {
	if !seen {
		return nil
	}
	return m
}
