package sim

// Flink's network stack at its defaults (taskmanager.network.memory.*,
// buffer debloating off): buffers are 32 KiB segments; a receiving subtask
// has 2 exclusive buffers per input channel and 8 floating ones per input
// gate (one gate per input edge); a sending subtask's pool for a result
// partition holds at most 2 per subpartition + 8, and at most 10 for any
// one subpartition.
const (
	networkSegmentBytes    = 32 << 10
	buffersPerChannel      = 2
	floatingBuffersPerGate = 8
	maxBuffersPerChannel   = 10
)

// networkBuffers is how many network buffers can hold records on their way
// into subtask k of v when everything upstream of it is backed up: the
// receiver's exclusive and floating buffers, and the share of each
// sender's pool that its subpartition for k can take. Backed-up buffers
// are full (a sender without credit fills a buffer before it starts the
// next), so a job with RecordBytes holds networkBuffers × 32 KiB /
// RecordBytes records in flight into the subtask: tens of thousands of
// small records, where Flink reports no backpressure for minutes. (The
// real-Flink testbed's 13 to 21-byte records showed exactly that: a
// saturated vertex let 200 records/s pile up in flight for a minute and
// more with no backpressure on its source, where a buffer of one second of
// capacity backpressured it at once.)
func (r *deployment) networkBuffers(v *gvertex, k int) float64 {
	n := 0.0
	for _, e := range v.ins {
		rt := r.routes[e]
		channels := 0
		if rt.allToAll {
			channels = r.par[e.from.id]
			n += float64(channels) * senderShare(r.par[v.id])
		} else {
			for _, tg := range rt.targets {
				for _, t := range tg {
					if t.j == k {
						channels++
						n += senderShare(len(tg))
					}
				}
			}
		}
		n += float64(buffersPerChannel*channels + floatingBuffersPerGate)
	}
	return n
}

// senderShare is the buffers one subpartition of a sender with q
// subpartitions can fill when all of them are backed up.
func senderShare(q int) float64 {
	return min(maxBuffersPerChannel, buffersPerChannel+float64(floatingBuffersPerGate)/float64(max(q, 1)))
}
