package scaling

import "fmt"

// memoryPressure is why a rescale waits for memory: the busiest
// TaskManager spent more than the policy's share of its time in garbage
// collection over the window, or the heap in use stayed above its share.
// More subtasks on TaskManagers of the same size do not fix a GC-bound
// job, and fewer put more state on each; the reason says how much heap the
// TaskManagers use against what they have. Nil when the TaskManagers did
// not report the figures or the policy turns the checks off.
func (m *model) memoryPressure() *Reason {
	mem := m.j.s.TaskManagers.Memory
	if mem == nil {
		return nil
	}
	heap := ""
	if u, hm := mem.HeapUsedBytes, mem.HeapMaxBytes; u != nil && u.Max != nil && hm != nil && *hm > 0 {
		heap = fmt.Sprintf("; heap in use peaked at %.0f%% of %.0f MiB", 100*float64(*u.Max)/float64(*hm), float64(*hm)/(1<<20))
	}
	if limit := m.p.Memory.MaxGCTimeRatio; limit > 0 {
		if gc := mem.GCTimeMsPerSecond; gc != nil && gc.Avg != nil && float64(*gc.Avg)/1000 > limit {
			return &Reason{Code: ReasonMemoryPressure, Message: fmt.Sprintf(
				"the busiest TaskManager spent %.0f%% of its time in garbage collection over the window (maxGCTimeRatio %.0f%%)%s: a rescale would not help; give the TaskManagers more memory",
				float64(*gc.Avg)/10, 100*limit, heap)}
		}
	}
	if limit := m.p.Memory.MaxHeapUsage; limit > 0 {
		if u, hm := mem.HeapUsedBytes, mem.HeapMaxBytes; u != nil && u.Avg != nil && hm != nil && *hm > 0 && float64(*u.Avg)/float64(*hm) > limit {
			return &Reason{Code: ReasonMemoryPressure, Message: fmt.Sprintf(
				"the TaskManagers' heap in use averaged %.0f%% of %.0f MiB over the window (maxHeapUsage %.0f%%): a rescale would not help; give the TaskManagers more memory",
				100*float64(*u.Avg)/float64(*hm), float64(*hm)/(1<<20), 100*limit)}
		}
	}
	return nil
}
