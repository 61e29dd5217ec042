package sim

// Flink's MeterView keeps the counter's value at each update (every 5
// seconds) over the last 60 seconds and reports (now − oldest) / 60: during
// the first minute after a (re)start the rate reads low because the oldest
// value is the zero it started from. Time gauges (busy, idle, backpressured
// per second) are averaged the same way here.
const (
	meterUpdateSeconds = 5
	meterSpanSeconds   = 60
	meterSlots         = meterSpanSeconds/meterUpdateSeconds + 1
)

// meter is a MeterView over a monotonically growing total.
type meter struct {
	values [meterSlots]float64
	at     int     // index of the newest value
	rate   float64 // the value reported until the next update
}

// update records the total at an update instant (every 5 s).
func (m *meter) update(total float64) {
	m.at = (m.at + 1) % meterSlots
	m.values[m.at] = total
	oldest := m.values[(m.at+1)%meterSlots]
	m.rate = (total - oldest) / meterSpanSeconds
}

// meters updates every task's meters at each 5-second boundary since the
// attempt started, as Flink's MeterView update thread does.
func (r *deployment) meters(j *Job) {
	for !j.now.Before(r.nextMeter) {
		for _, ts := range r.tasks {
			for _, t := range ts {
				t.mIn.update(t.in)
				t.mOut.update(t.out)
				t.mSrcIn.update(t.srcIn)
				t.mBusy.update(t.busyMs)
				t.mIdle.update(t.idleMs)
				t.mSoft.update(t.softMs)
				t.mHard.update(t.hardMs)
			}
		}
		r.nextMeter = r.nextMeter.Add(meterUpdateSeconds * 1e9)
	}
}
