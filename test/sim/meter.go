package sim

import "time"

// Flink's MeterView keeps the counter's value at each update (every 5
// seconds) over the last 60 seconds and reports (now − oldest) / 60: during
// the first minute after a (re)start the rate reads low because the oldest
// value is the zero it started from.
//
// The time gauges (idle, soft and hard backpressured time per second) are
// Flink's TimerGauge: the same 5-second updates over 60 seconds, but the
// average is over the updates the window holds, so a restarted task reports
// its true share from its first update on (before it, 0). Flink derives
// busyTimeMsPerSecond from them as 1000 − min(idle + backpressured, 1000):
// 1000 during a task's first 5 seconds. (Checked against
// org.apache.flink.runtime.metrics.TimerGauge and TaskIOMetricGroup in
// Flink 1.20.3 and 2.2.0: the real-Flink testbed's fidelity run showed the
// simulator's busy time ramping for a minute where Flink's did not.)
const (
	meterUpdateSeconds = 5
	meterSpanSeconds   = 60
	meterSlots         = meterSpanSeconds/meterUpdateSeconds + 1
)

// meter is a MeterView over a monotonically growing total, or a TimerGauge
// (updateTimer).
type meter struct {
	values [meterSlots]float64
	at     int     // index of the newest value
	n      int     // updates so far, at most meterSlots − 1 (TimerGauge)
	rate   float64 // the value reported until the next update
}

// update records the total at an update instant (every 5 s), as MeterView.
func (m *meter) update(total float64) {
	m.at = (m.at + 1) % meterSlots
	m.values[m.at] = total
	oldest := m.values[(m.at+1)%meterSlots]
	m.rate = (total - oldest) / meterSpanSeconds
}

// updateTimer records the total at an update instant, as TimerGauge: the
// rate is over the updates held so far (up to the 60 s span).
func (m *meter) updateTimer(total float64) {
	m.at = (m.at + 1) % meterSlots
	m.values[m.at] = total
	m.n = min(m.n+1, meterSlots-1)
	m.rate = (total - m.values[(m.at-m.n+meterSlots)%meterSlots]) / float64(m.n*meterUpdateSeconds)
}

// startMeters starts every task's meters afresh when the tasks run: Flink
// creates a task's metrics when it deploys the task, not when the restart
// or submission that makes it begins.
func (r *deployment) startMeters(j *Job) {
	for _, ts := range r.tasks {
		for _, t := range ts {
			t.mIn, t.mOut, t.mSrcIn = meter{}, meter{}, meter{}
			t.mIdle, t.mSoft, t.mHard = meter{}, meter{}, meter{}
		}
	}
	r.nextMeter = j.now.Add(meterUpdateSeconds * time.Second)
}

// meters updates every task's meters at each 5-second boundary since the
// tasks started running, as Flink's MeterView update thread does.
func (r *deployment) meters(j *Job) {
	for !j.now.Before(r.nextMeter) {
		for _, ts := range r.tasks {
			for _, t := range ts {
				t.mIn.update(t.in)
				t.mOut.update(t.out)
				t.mSrcIn.update(t.srcIn)
				t.mIdle.updateTimer(t.idleMs)
				t.mSoft.updateTimer(t.softMs)
				t.mHard.updateTimer(t.hardMs)
			}
		}
		r.nextMeter = r.nextMeter.Add(meterUpdateSeconds * time.Second)
	}
}
