package sim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
)

// TaskManager memory. Every TaskManager of a job runs one memory model
// (scaling.TaskManagerMemory), derived as Flink derives it
// (scaling.DeriveTaskManagerMemory) from TaskManagerSpec.FlinkConfiguration
// and the process size (TaskManagerSpec.MemoryBytes, or 4 GiB), or given by
// a Submission (the operator's spec.flinkConfiguration and
// spec.taskManager.resource.memory). It decides:
//
//   - what /taskmanagers reports (memoryConfiguration) and the TaskManagers'
//     memory metrics: heap in use (a base plus, with the hashmap state
//     backend, the state of the slots the TaskManager holds), metaspace,
//     managed memory in use (RocksDB takes its share per busy slot), GC time
//     (growing as the heap fills), and the network segments in use (the
//     buffer pools' minimums of the subtasks it runs, scaling.NetworkNeed);
//   - whether the job deploys at all: a layout whose worst TaskManager needs
//     more network buffers than it has fails every attempt with Flink's
//     "Insufficient number of network buffers" (networkFailure).

// DefaultTaskManagerProcessBytes is the process size of a TaskManager whose
// spec gives none.
const DefaultTaskManagerProcessBytes = 4 << 30

// Heap model constants: what a TaskManager's heap holds besides state.
const (
	heapBaseBytes    = 96 << 20 // Flink's runtime, RPC and metric objects
	heapPerSlotBytes = 16 << 20 // per busy slot: task objects, serializers, record buffers
	metaspaceUsed    = 110 << 20
)

// DeriveTaskManagerMemory derives the TaskManager memory model of spec:
// its flinkConfiguration with MemoryBytes (default 4 GiB) as the process
// size, as Flink derives it.
func DeriveTaskManagerMemory(spec TaskManagerSpec) (scaling.TaskManagerMemory, error) {
	process := int64(spec.MemoryBytes)
	if process <= 0 {
		process = DefaultTaskManagerProcessBytes
	}
	m, err := scaling.DeriveTaskManagerMemory(spec.FlinkConfiguration, process)
	if err != nil {
		return scaling.TaskManagerMemory{}, fmt.Errorf("taskManager memory: %w", err)
	}
	return m, nil
}

// TaskManagerMemory is the memory model the job's TaskManagers run now
// (the last submission's, else the spec's).
func (j *Job) TaskManagerMemory() scaling.TaskManagerMemory {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mem
}

// networkConfig is the TaskManagers' network configuration: Flink's
// defaults for the job's version, with the network memory of j.mem and
// the buffer keys of the spec's flinkConfiguration.
func (j *Job) networkConfig() scaling.NetworkConfig {
	c := scaling.DefaultNetworkConfig(scaling.NetworkRules(j.spec.FlinkVersion))
	conf := j.spec.TaskManager.FlinkConfiguration
	if v, ok := conf["taskmanager.memory.segment-size"]; ok {
		if b, err := scaling.ParseMemorySize(v); err == nil && b > 0 {
			c.SegmentSize = b
		}
	}
	intKey := func(key string, dst *int) {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(conf[key]), &n); err == nil && n >= 0 {
			*dst = n
		}
	}
	intKey("taskmanager.network.memory.buffers-per-channel", &c.BuffersPerChannel)
	intKey("taskmanager.network.memory.floating-buffers-per-gate", &c.FloatingBuffersPerGate)
	intKey("taskmanager.network.memory.max-overdraft-buffers-per-gate", &c.MaxOverdraftBuffersPerGate)
	intKey("taskmanager.network.memory.read-buffer.required-per-gate.max", &c.RequiredPerGateMax)
	c.TotalFlinkMemory = j.mem.FlinkBytes()
	c.NetworkMemory = j.mem.NetworkBytes
	return c
}

// scalingVertices is the job graph as scaling.NetworkNeed reads it, at
// parallelism par.
func (j *Job) scalingVertices(par map[string]int) []scaling.Vertex {
	out := make([]scaling.Vertex, 0, len(j.g.vertices))
	for _, v := range j.g.vertices {
		sv := scaling.Vertex{ID: v.id, Name: v.spec.Name, Parallelism: par[v.id], MaxParallelism: v.maxP, SlotSharingGroup: v.group}
		for _, e := range v.ins {
			sv.Inputs = append(sv.Inputs, scaling.Input{ID: e.from.id, ShipStrategy: e.ship})
		}
		out = append(out, sv)
	}
	return out
}

// networkUse is the network buffers the deployment's worst TaskManager
// needs (slotsPerTM of its slots busy) against the segments it has.
func (j *Job) networkUse(r *deployment, slotsPerTM int) scaling.NetworkUse {
	tms := r.tms
	if j.pool != nil {
		tms, _ = j.pool.TaskManagers()
	}
	return scaling.NetworkNeed(j.scalingVertices(r.par), nil, max(slotsPerTM, 1), tms, j.networkConfig())
}

// networkFailure is Flink's exception when the deployment's tasks cannot
// get their buffers on some TaskManager ("" when they fit): the message of
// NetworkBufferPool.tryRedistributeBuffers / internalCreateBufferPool.
func (j *Job) networkFailure(r *deployment) string {
	u := j.networkUse(r, r.slotsPerTM)
	if u.Fits {
		return ""
	}
	c := j.networkConfig()
	return fmt.Sprintf("java.io.IOException: Insufficient number of network buffers: required %d, but only %d available. "+
		"The total number of network buffers is currently set to %d of %d bytes each. You can increase this number by setting "+
		"the configuration keys 'taskmanager.memory.network.fraction', 'taskmanager.memory.network.min', and 'taskmanager.memory.network.max'.",
		u.Required, u.Available, c.TotalSegments(), c.SegmentSize)
}

// Flink's default restart strategy with checkpointing (1.19+):
// exponential-delay, 1 s initial backoff, × 1.5, at most 1 min
// (restart-strategy.exponential-delay.*).
const (
	restartInitialBackoff = time.Second
	restartMaxBackoff     = time.Minute
	restartBackoffFactor  = 1.5
)

// failAttempt fails the deployment's attempt to run its tasks: the
// restart strategy restarts them after its backoff, and the job is
// RESTARTING meanwhile (the moments its tasks spend deploying before they
// fail are left out: the job never reports RUNNING). Nothing is read, so
// the sources stay where the attempt restored them.
func (r *deployment) failAttempt(j *Job, cause string) {
	r.numRestarts++
	r.failedAttempts++
	r.failureCause = cause
	r.setState(j, "RESTARTING")
	r.restartKind = "failover"
	backoff := float64(restartInitialBackoff) * math.Pow(restartBackoffFactor, float64(r.failedAttempts-1))
	r.readyAt = j.now.Add(time.Duration(math.Min(backoff, float64(restartMaxBackoff))))
	r.attempt++
}

// Abort ends the job as deleting its cluster does (the operator's rollback
// of an application cluster): CANCELED at once, without a savepoint. The
// sources keep the positions they hold; records in flight are dropped and
// will be read again from the last savepoint or committed offsets by the
// next submission. Meant for a job that does not run (a deployment that
// keeps failing); it works on any job.
func (j *Job) Abort(jobID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, err := j.job(jobID)
	if err != nil || terminal(r.state) {
		return err
	}
	j.gen++
	r.pendingRescale = nil
	r.setState(j, "CANCELED")
	r.endTime = j.now
	return nil
}

// tmUsage is what one TaskManager uses of its memory.
type tmUsage struct {
	heapUsed, managedUsed, metaspaceUsed int64
	gcMsPerSecond                        float64
	segmentsUsed                         int64
}

// taskManagerUsage is the memory use of a TaskManager with busy of its
// slots held by the running job.
func (j *Job) taskManagerUsage(busy int) tmUsage {
	m := j.mem
	u := tmUsage{metaspaceUsed: min(int64(metaspaceUsed), m.MetaspaceBytes)}
	heap := m.HeapBytes()
	used := int64(heapBaseBytes) + int64(busy)*heapPerSlotBytes
	r := j.run
	running := r != nil && !terminal(r.state)
	if running && busy > 0 {
		slots := max(r.slotsNeeded(j.g), 1)
		share := float64(min(busy, slots)) / float64(slots)
		switch j.stateBackend() {
		case "hashmap":
			used += int64(float64(j.stateSize()) * share)
		case "rocksdb", "forst":
			// RocksDB reserves its managed share per slot it runs in.
			u.managedUsed = m.ManagedBytes * int64(busy) / int64(max(r.slotsPerTM, 1))
		}
		if r.state == "RUNNING" {
			if r.netUsed == nil {
				r.netUsed = map[int]int64{}
			}
			n, ok := r.netUsed[busy]
			if !ok {
				n = j.networkUse(r, busy).Required
				r.netUsed[busy] = n
			}
			u.segmentsUsed = n
		}
	}
	u.heapUsed = min(used, heap)
	// GC time: a young collection's worth while the heap has room, growing
	// steeply once old-generation collections start (fill above 60 %), up
	// to a whole second per second at a full heap.
	fill := 0.0
	if heap > 0 {
		fill = float64(u.heapUsed) / float64(heap)
	}
	u.gcMsPerSecond = 0.5 + fill
	if fill > 0.6 {
		x := (fill - 0.6) / 0.4
		u.gcMsPerSecond += 999 * x * x * x
	}
	u.gcMsPerSecond = math.Min(u.gcMsPerSecond, 1000)
	return u
}

// stateBackend is the job's state backend, lower case ("hashmap" unless
// the spec says otherwise: Flink's default).
func (j *Job) stateBackend() string {
	b := strings.ToLower(strings.TrimSpace(j.spec.StateBackend))
	if b == "" || b == "filesystem" || b == "memory" {
		return "hashmap"
	}
	return b
}
