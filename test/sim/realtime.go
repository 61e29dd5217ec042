package sim

import (
	"context"
	"time"
)

// RunRealtime advances the job with the wall clock, speed virtual seconds per
// wall second, every interval, until ctx ends or the job errs. It serves the
// demo and end-to-end tests, where a controller polls the job over HTTP and
// Kafka while it runs.
func (j *Job) RunRealtime(ctx context.Context, speed float64, interval time.Duration) error {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	owed := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			owed += time.Duration(float64(now.Sub(last)) * speed)
			last = now
			// Advance in whole milliseconds; keep the remainder for later.
			step := owed.Truncate(time.Millisecond)
			owed -= step
			if err := j.Advance(step); err != nil {
				return err
			}
		}
	}
}
