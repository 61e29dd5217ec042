package scaling

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TaskManagerMemory is one TaskManager's memory model, in bytes, with every
// component Flink derives (TaskExecutorFlinkMemory and JvmMetaspaceAndOverhead):
//
//	process = flink + metaspace + overhead
//	flink   = frameworkHeap + taskHeap + frameworkOffHeap + taskOffHeap + managed + network
//
// The JVM heap (-Xmx) is frameworkHeap + taskHeap.
type TaskManagerMemory struct {
	ProcessBytes          int64 `json:"processBytes"`
	FrameworkHeapBytes    int64 `json:"frameworkHeapBytes"`
	TaskHeapBytes         int64 `json:"taskHeapBytes"`
	FrameworkOffHeapBytes int64 `json:"frameworkOffHeapBytes"`
	TaskOffHeapBytes      int64 `json:"taskOffHeapBytes"`
	ManagedBytes          int64 `json:"managedBytes"`
	NetworkBytes          int64 `json:"networkBytes"`
	MetaspaceBytes        int64 `json:"metaspaceBytes"`
	OverheadBytes         int64 `json:"overheadBytes"`
}

// FlinkBytes is the total Flink memory.
func (t TaskManagerMemory) FlinkBytes() int64 {
	return t.FrameworkHeapBytes + t.TaskHeapBytes + t.FrameworkOffHeapBytes + t.TaskOffHeapBytes + t.ManagedBytes + t.NetworkBytes
}

// HeapBytes is the JVM heap: framework plus task heap.
func (t TaskManagerMemory) HeapBytes() int64 { return t.FrameworkHeapBytes + t.TaskHeapBytes }

// withProcess sets ProcessBytes to the sum of the parts.
func (t TaskManagerMemory) withProcess() TaskManagerMemory {
	t.ProcessBytes = t.FlinkBytes() + t.MetaspaceBytes + t.OverheadBytes
	return t
}

// Flink's memory configuration keys.
const (
	KeyProcessSize      = "taskmanager.memory.process.size"
	KeyFlinkSize        = "taskmanager.memory.flink.size"
	KeyFrameworkHeap    = "taskmanager.memory.framework.heap.size"
	KeyTaskHeap         = "taskmanager.memory.task.heap.size"
	KeyFrameworkOffHeap = "taskmanager.memory.framework.off-heap.size"
	KeyTaskOffHeap      = "taskmanager.memory.task.off-heap.size"
	KeyManagedSize      = "taskmanager.memory.managed.size"
	KeyManagedFraction  = "taskmanager.memory.managed.fraction"
	KeyNetworkMin       = "taskmanager.memory.network.min"
	KeyNetworkMax       = "taskmanager.memory.network.max"
	KeyNetworkFraction  = "taskmanager.memory.network.fraction"
	KeyMetaspace        = "taskmanager.memory.jvm-metaspace.size"
	KeyOverheadMin      = "taskmanager.memory.jvm-overhead.min"
	KeyOverheadMax      = "taskmanager.memory.jvm-overhead.max"
	KeyOverheadFraction = "taskmanager.memory.jvm-overhead.fraction"
)

// MemoryKeys are the flinkConfiguration keys FlinkConfiguration writes.
var MemoryKeys = []string{
	KeyProcessSize, KeyFlinkSize, KeyFrameworkHeap, KeyTaskHeap, KeyFrameworkOffHeap, KeyTaskOffHeap,
	KeyManagedSize, KeyNetworkMin, KeyNetworkMax, KeyMetaspace, KeyOverheadMin, KeyOverheadMax,
}

// Normalized is t with every part rounded down to a whole KiB and the
// process size their sum: what FlinkConfiguration writes and Flink then
// derives (Flink's parts, from fractions, are seldom whole KiB).
func (t TaskManagerMemory) Normalized() TaskManagerMemory {
	kib := func(b int64) int64 { return max(b, 0) / 1024 * 1024 }
	t.FrameworkHeapBytes, t.TaskHeapBytes = kib(t.FrameworkHeapBytes), kib(t.TaskHeapBytes)
	t.FrameworkOffHeapBytes, t.TaskOffHeapBytes = kib(t.FrameworkOffHeapBytes), kib(t.TaskOffHeapBytes)
	t.ManagedBytes, t.NetworkBytes = kib(t.ManagedBytes), kib(t.NetworkBytes)
	t.MetaspaceBytes, t.OverheadBytes = kib(t.MetaspaceBytes), kib(t.OverheadBytes)
	return t.withProcess()
}

// FlinkConfiguration is the flinkConfiguration that makes a TaskManager
// derive exactly t.Normalized(): every component explicit (network and JVM overhead
// with min = max), so that no fraction or other key a user set can change
// the outcome, and Flink's consistency checks (total Flink memory = the
// sum of its parts, process = Flink + metaspace + overhead) pass. Sizes
// are written in whole KiB ("1048576k"), which Flink and the operator both
// parse; each part is rounded down first, and the process is their sum. The pod's memory (spec.taskManager.resource.memory) must say
// ProcessBytes too.
func (t TaskManagerMemory) FlinkConfiguration() map[string]string {
	t = t.Normalized()
	return map[string]string{
		KeyProcessSize:      FormatMemorySize(t.ProcessBytes),
		KeyFlinkSize:        FormatMemorySize(t.FlinkBytes()),
		KeyFrameworkHeap:    FormatMemorySize(t.FrameworkHeapBytes),
		KeyTaskHeap:         FormatMemorySize(t.TaskHeapBytes),
		KeyFrameworkOffHeap: FormatMemorySize(t.FrameworkOffHeapBytes),
		KeyTaskOffHeap:      FormatMemorySize(t.TaskOffHeapBytes),
		KeyManagedSize:      FormatMemorySize(t.ManagedBytes),
		KeyNetworkMin:       FormatMemorySize(t.NetworkBytes),
		KeyNetworkMax:       FormatMemorySize(t.NetworkBytes),
		KeyMetaspace:        FormatMemorySize(t.MetaspaceBytes),
		KeyOverheadMin:      FormatMemorySize(t.OverheadBytes),
		KeyOverheadMax:      FormatMemorySize(t.OverheadBytes),
	}
}

// FormatMemorySize writes bytes in Flink's MemorySize syntax, in KiB
// (rounded up).
func FormatMemorySize(b int64) string {
	if b <= 0 {
		return "0"
	}
	return strconv.FormatInt((b+1023)/1024, 10) + "k"
}

// ParseMemorySize parses a size as Flink's MemorySize does ("1024m",
// "1 gb", "64mb", "100", all units binary) and also Kubernetes quantities
// in binary units ("2Gi", "512Mi"), which the operator accepts for
// spec.taskManager.resource.memory.
func ParseMemorySize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("memory size %q: no number", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1, "bytes": 1,
		"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "ki": 1 << 10, "kibibytes": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "mi": 1 << 20, "mebibytes": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "gi": 1 << 30, "gibibytes": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40, "ti": 1 << 40, "tebibytes": 1 << 40,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("memory size %q: unknown unit %q", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v*mult, 0) || v*mult >= math.MaxInt64/2 {
		return 0, fmt.Errorf("memory size %q: not a size", s)
	}
	return int64(v * mult), nil
}

// DeriveTaskManagerMemory derives a TaskManager's memory model from its
// flinkConfiguration as Flink 1.17+ does (TaskExecutorProcessUtils), for
// the usual ways of configuring it: a process size (processBytes when the
// key is absent, e.g. the operator's spec.taskManager.resource.memory) or a
// total Flink memory, with fractions, sizes, or min = max for managed,
// network and JVM overhead. Defaults: framework heap and off-heap 128 MiB,
// task off-heap 0, managed 0.4 of Flink memory, network 0.1 of it within
// [64 MiB, ∞), metaspace 256 MiB, overhead 0.1 of the process within
// [192 MiB, 1 GiB]. An explicit task heap takes its size and managed
// memory what its size or fraction says. It fails when the parts do not
// fit, as Flink does.
func DeriveTaskManagerMemory(conf map[string]string, processBytes int64) (TaskManagerMemory, error) {
	size := func(key string, def int64) (int64, bool, error) {
		v, ok := conf[key]
		if !ok || strings.TrimSpace(v) == "" {
			return def, false, nil
		}
		b, err := ParseMemorySize(v)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", key, err)
		}
		return b, true, nil
	}
	frac := func(key string, def float64) (float64, error) {
		v, ok := conf[key]
		if !ok || strings.TrimSpace(v) == "" {
			return def, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f >= 1 {
			return 0, fmt.Errorf("%s: %q is not a fraction in [0,1)", key, v)
		}
		return f, nil
	}
	var t TaskManagerMemory
	var errs []error
	get := func(key string, def int64) (int64, bool) {
		b, ok, err := size(key, def)
		if err != nil {
			errs = append(errs, err)
		}
		return b, ok
	}
	t.FrameworkHeapBytes, _ = get(KeyFrameworkHeap, 128<<20)
	t.FrameworkOffHeapBytes, _ = get(KeyFrameworkOffHeap, 128<<20)
	t.TaskOffHeapBytes, _ = get(KeyTaskOffHeap, 0)
	t.MetaspaceBytes, _ = get(KeyMetaspace, 256<<20)
	ovMin, _ := get(KeyOverheadMin, 192<<20)
	ovMax, _ := get(KeyOverheadMax, 1<<30)
	netMin, _ := get(KeyNetworkMin, 64<<20)
	netMax, netMaxSet := get(KeyNetworkMax, math.MaxInt64)
	if !netMaxSet {
		netMax = math.MaxInt64
	}
	managed, managedSet := get(KeyManagedSize, 0)
	taskHeap, taskHeapSet := get(KeyTaskHeap, 0)
	flink, flinkSet := get(KeyFlinkSize, 0)
	proc, procSet := get(KeyProcessSize, processBytes)
	ovFrac, err := frac(KeyOverheadFraction, 0.1)
	if err != nil {
		errs = append(errs, err)
	}
	mFrac, err := frac(KeyManagedFraction, 0.4)
	if err != nil {
		errs = append(errs, err)
	}
	nFrac, err := frac(KeyNetworkFraction, 0.1)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return TaskManagerMemory{}, errs[0]
	}
	clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
	if !flinkSet && !(taskHeapSet && managedSet) {
		if !procSet && proc <= 0 {
			return TaskManagerMemory{}, fmt.Errorf("none of %s, %s, or %s with %s is set", KeyProcessSize, KeyFlinkSize, KeyTaskHeap, KeyManagedSize)
		}
		t.OverheadBytes = clamp(int64(ovFrac*float64(proc)), ovMin, ovMax)
		flink = proc - t.MetaspaceBytes - t.OverheadBytes
		flinkSet = true
	}
	switch {
	case taskHeapSet && managedSet && !flinkSet:
		// Flink memory from its parts; network as a fraction of it:
		// n = f·(rest + n) → n = f·rest/(1−f), within [min, max].
		rest := t.FrameworkHeapBytes + taskHeap + t.FrameworkOffHeapBytes + t.TaskOffHeapBytes + managed
		t.NetworkBytes = clamp(int64(nFrac*float64(rest)/(1-nFrac)), netMin, netMax)
		t.TaskHeapBytes, t.ManagedBytes = taskHeap, managed
	default:
		if !managedSet {
			managed = int64(mFrac * float64(flink))
		}
		t.ManagedBytes = managed
		if taskHeapSet {
			t.TaskHeapBytes = taskHeap
			t.NetworkBytes = flink - t.FrameworkHeapBytes - taskHeap - t.FrameworkOffHeapBytes - t.TaskOffHeapBytes - managed
			if t.NetworkBytes < netMin || t.NetworkBytes > netMax {
				return TaskManagerMemory{}, fmt.Errorf("the network memory left (%d bytes) is outside [%d, %d]", t.NetworkBytes, netMin, netMax)
			}
		} else {
			t.NetworkBytes = clamp(int64(nFrac*float64(flink)), netMin, netMax)
			t.TaskHeapBytes = flink - t.FrameworkHeapBytes - t.FrameworkOffHeapBytes - t.TaskOffHeapBytes - managed - t.NetworkBytes
		}
	}
	if t.TaskHeapBytes < 0 {
		return TaskManagerMemory{}, fmt.Errorf("the memory parts exceed the total Flink memory (%d bytes): task heap would be %d bytes", flink, t.TaskHeapBytes)
	}
	if t.OverheadBytes == 0 {
		if procSet {
			t.OverheadBytes = proc - t.FlinkBytes() - t.MetaspaceBytes
		} else {
			// From the Flink memory: overhead = f·(flink + metaspace + o).
			base := float64(t.FlinkBytes() + t.MetaspaceBytes)
			t.OverheadBytes = clamp(int64(ovFrac*base/(1-ovFrac)), ovMin, ovMax)
		}
		if t.OverheadBytes < ovMin || t.OverheadBytes > ovMax {
			return TaskManagerMemory{}, fmt.Errorf("the JVM overhead left (%d bytes) is outside [%d, %d]", t.OverheadBytes, ovMin, ovMax)
		}
	}
	return t.withProcess(), nil
}
