package testbed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// taskManagerPool is what the Deployer does to the TaskManager processes:
// *Cluster does it for real, the unit tests with a fake.
type taskManagerPool interface {
	TaskManagerIDs() []string
	AddTaskManager(ctx context.Context) error
	StopTaskManager(ctx context.Context, id string) error
	KillTaskManager(id string) error
	ReapTaskManagers() map[string]error
	Slots() int
	SetSlots(n int) error
}

var _ taskManagerPool = (*Cluster)(nil)

// taskManagersFor is how many TaskManagers of slotsPerTM slots a job needs
// whose vertices run at parallelism par (by vertex id; absent: the
// plan's): Flink's slot sharing puts one subtask of every vertex of a slot
// sharing group into each of the group's slots, so a group needs as many
// slots as its widest vertex, and the groups add up.
func taskManagersFor(plan []PlannedVertex, par map[string]int, slotsPerTM int) int {
	widest := map[int]int{}
	for _, v := range plan {
		p, ok := par[v.ID]
		if !ok {
			p = v.Parallelism
		}
		widest[v.Group] = max(widest[v.Group], p)
	}
	slots := 0
	for _, w := range widest {
		slots += w
	}
	return (slots + slotsPerTM - 1) / slotsPerTM
}

// poolState is the Deployer's resource manager: how many TaskManagers it
// keeps, as Kubernetes keeps a deployment's replicas and Flink's active
// resource manager starts what the job's requirements need.
type poolState struct {
	// want is the TaskManagers to keep running.
	want int
	// floor, once an in-place rescale set it, arms the release of idle
	// TaskManagers (all slots free while the job runs) down to it.
	floor int
	// replaceAt holds when each lost TaskManager's replacement starts.
	replaceAt []time.Time
	idleSince map[string]time.Time
}

// startsDue is how many TaskManagers to start now with live running: the
// missing ones, less the replacements not yet due. It drops the
// replacements it starts, and those the pool no longer misses.
func (p *poolState) startsDue(live int, now time.Time) int {
	missing := p.want - live
	slices.SortFunc(p.replaceAt, func(a, b time.Time) int { return a.Compare(b) })
	if len(p.replaceAt) > max(missing, 0) {
		p.replaceAt = p.replaceAt[len(p.replaceAt)-max(missing, 0):]
	}
	waiting := slices.DeleteFunc(p.replaceAt, func(at time.Time) bool { return !at.After(now) })
	p.replaceAt = waiting
	return max(missing-len(waiting), 0)
}

// idleToRelease picks, among the TaskManagers idle now (all slots free
// while the job runs), those idle for timeout, as long as more than floor
// of the live ones remain. Busy TaskManagers leave the idle set.
func (p *poolState) idleToRelease(idle []string, live int, now time.Time, timeout time.Duration) []string {
	if p.idleSince == nil {
		p.idleSince = map[string]time.Time{}
	}
	for id := range p.idleSince {
		if !slices.Contains(idle, id) {
			delete(p.idleSince, id)
		}
	}
	var out []string
	for _, id := range idle {
		since, ok := p.idleSince[id]
		if !ok {
			p.idleSince[id] = now
			continue
		}
		if now.Sub(since) >= timeout && live-len(out) > p.floor {
			out = append(out, id)
		}
	}
	return out
}

// tend is one round of the pool: TaskManagers that ended on their own are
// replaced after TaskManagerRestart, missing ones start, and once an
// in-place rescale armed it, TaskManagers idle for IdleTaskManagerTimeout
// while the job runs are stopped. It holds poolMu: a submission's resize
// waits for it and it for the resize.
func (d *Deployer) tend(ctx context.Context) {
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	now := time.Now()
	for id, err := range d.pool.ReapTaskManagers() {
		d.say("%s ended: %s", id, firstLine(err.Error()))
		d.lost(now)
	}
	live := d.pool.TaskManagerIDs()
	d.mu.Lock()
	start := d.ps.startsDue(len(live), now)
	var release []string
	if d.ps.floor > 0 && Steady(d.cur.rest) {
		var idle []string
		for _, tm := range d.tms {
			if tm.SlotsNumber > 0 && tm.FreeSlots == tm.SlotsNumber && slices.Contains(live, tm.ID) {
				idle = append(idle, tm.ID)
			}
		}
		release = d.ps.idleToRelease(idle, len(live), now, d.o.IdleTaskManagerTimeout)
	} else {
		d.ps.idleSince = nil
	}
	d.mu.Unlock()

	if start > 0 {
		d.say("starting %d TaskManager(s)", start)
		if err := addTaskManagers(ctx, d.pool, start); err != nil {
			d.say("starting TaskManagers: %v", err)
		}
	}
	for _, id := range release {
		d.say("stopping idle %s", id)
		if err := d.pool.StopTaskManager(ctx, id); err != nil {
			d.say("stopping idle %s: %v", id, err)
			continue
		}
		d.mu.Lock()
		d.ps.want = max(d.ps.floor, d.ps.want-1)
		delete(d.ps.idleSince, id)
		d.mu.Unlock()
	}
}

// lost notes a TaskManager gone without being asked: Kubernetes starts its
// replacement TaskManagerRestart later (with a negative TaskManagerRestart,
// never). d.mu is not held.
func (d *Deployer) lost(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.o.TaskManagerRestart < 0 {
		d.ps.want = max(d.ps.want-1, 0)
		return
	}
	d.ps.replaceAt = append(d.ps.replaceAt, at.Add(d.o.TaskManagerRestart))
}

// resize makes the pool n TaskManagers of slots slots, as a new
// deployment's pods: with another slot count every TaskManager is
// replaced (a TaskManager's slots are fixed at its start). The pool's
// targets start over from n. poolMu is held.
func (d *Deployer) resize(ctx context.Context, n, slots int) error {
	for id := range d.pool.ReapTaskManagers() {
		d.say("%s had ended", id)
	}
	d.mu.Lock()
	d.ps = poolState{want: n}
	d.mu.Unlock()
	ids := d.pool.TaskManagerIDs()
	var stop []string
	if slots != d.pool.Slots() {
		stop, ids = ids, nil
	} else if len(ids) > n {
		stop, ids = ids[n:], ids[:n]
	}
	if len(stop) > 0 {
		d.say("stopping %v", stop)
		if err := stopTaskManagers(ctx, d.pool, stop); err != nil {
			return err
		}
	}
	if err := d.pool.SetSlots(slots); err != nil {
		return err
	}
	d.mu.Lock()
	d.slots = slots
	d.mu.Unlock()
	if add := n - len(ids); add > 0 {
		d.say("starting %d TaskManager(s) of %d slots", add, slots)
		return addTaskManagers(ctx, d.pool, add)
	}
	return nil
}

// addTaskManagers starts n TaskManagers at once, as pods start in parallel.
func addTaskManagers(ctx context.Context, p taskManagerPool, n int) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = p.AddTaskManager(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("starting TaskManagers: %w", err)
	}
	return nil
}

// stopTaskManagers stops the TaskManagers ids at once.
func stopTaskManagers(ctx context.Context, p taskManagerPool, ids []string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = p.StopTaskManager(ctx, id) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping TaskManagers: %w", err)
	}
	return nil
}

// ScaleTaskManagers keeps n TaskManagers of the current slot count, as a
// standalone cluster's TaskManager Deployment does when its replicas
// change: new ones start (and register with the JobManager on their own),
// the newest of those beyond n stop. Nothing else sizes the pool then: an
// adaptive job takes the slots that register, as Flink does without an
// active resource manager.
func (d *Deployer) ScaleTaskManagers(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("testbed: %d TaskManagers", n)
	}
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	d.mu.Lock()
	slots := d.slots
	d.mu.Unlock()
	d.say("TaskManager Deployment scaled to %d", n)
	return d.resize(ctx, n, slots)
}

// TaskManagerCount is the number of TaskManager processes the pool runs.
func (d *Deployer) TaskManagerCount() int {
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	return len(d.pool.TaskManagerIDs())
}
