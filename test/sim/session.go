package sim

import "time"

// Session is a session cluster: jobs sharing one Pool (each called
// UsePool with it) under one JobManager. Their job ids must differ (Submit
// refuses a job id another job of the pool runs). Advance moves them
// together, so that the pool's time and every job's stay within one Step.
type Session struct {
	Jobs []*Job
	// Step is how far each job moves before the next one does (default
	// 1 s).
	Step time.Duration
}

// Advance moves every job forward by d, all of them one Step at a time in
// turn. It returns the first error a job returns, after which nothing
// moves.
func (s Session) Advance(d time.Duration) error {
	step := s.Step
	if step <= 0 {
		step = time.Second
	}
	for d > 0 {
		dt := min(d, step)
		for _, j := range s.Jobs {
			if err := j.Advance(dt); err != nil {
				return err
			}
		}
		d -= dt
	}
	return nil
}

// Clusters is the jobs as the Clusters a session REST handler serves.
func (s Session) Clusters() []Cluster {
	out := make([]Cluster, len(s.Jobs))
	for i, j := range s.Jobs {
		out[i] = j
	}
	return out
}
