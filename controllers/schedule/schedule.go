// Package schedule evaluates the excluded periods of a FlinkScalingPolicy
// (spec.excludedPeriods): recurring windows in which no rescale starts.
//
// A period starts at every firing time f of its cron schedule, evaluated in
// its time zone, and lasts its duration: it is active at t iff some firing f
// satisfies f <= t < f+duration. The duration is elapsed time, so a 3h window
// that spans a daylight-saving change still lasts three real hours.
//
// Daylight-saving changes, in a zone such as Europe/Berlin:
//
//   - A firing time that does not exist on the day the clocks go forward
//     (02:30 when 02:00 becomes 03:00) fires at the change, 03:00 local time,
//     as cron daemons do, instead of being skipped.
//   - A firing time in the hour repeated when the clocks go back fires at both
//     occurrences; the two windows overlap and merge into one an hour longer.
//     Longer, never shorter: a period exists to keep rescales out.
//
// Like cron itself, a search for the next firing gives up after five years,
// so a schedule whose firings can be further apart (0 0 29 2 *, across 2100)
// is not found active in windows that start after such a gap.
//
// The package is pure: no clock. The controller calls Parse when it reads a
// policy and Active with its own clock.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones must load in a container without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

// parser reads the standard 5-field cron syntax and the @daily-style
// descriptors (the same parser as KEDA's cron scaler, without seconds).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxChain bounds how many overlapping windows Active follows to find where a
// run of them ends (see Active).
const maxChain = 1000

// maxSegments bounds the zone offset changes a search for the next firing
// crosses (a few a year; cron searches five years).
const maxSegments = 64

// Period is one parsed excluded period. The zero Period is never active.
type Period struct {
	// Name is the period's name, or "excludedPeriods[i]" when it has none.
	Name string

	schedule string // as written, for String
	sched    cron.Schedule
	dur      time.Duration
	loc      *time.Location
}

// Parse parses the excluded periods of a policy. The error names every bad
// period (by index and name), its field and why; it joins them all.
func Parse(ps []v1alpha1.ExcludedPeriod) ([]Period, error) {
	out := make([]Period, 0, len(ps))
	var errs []error
	for i, ep := range ps {
		p, err := parseOne(ep)
		if err != nil {
			where := fmt.Sprintf("excludedPeriods[%d]", i)
			if ep.Name != "" {
				where += fmt.Sprintf(" (%q)", ep.Name)
			}
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if p.Name == "" {
			p.Name = fmt.Sprintf("excludedPeriods[%d]", i)
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseOne(ep v1alpha1.ExcludedPeriod) (Period, error) {
	p := Period{Name: ep.Name, schedule: strings.TrimSpace(ep.Schedule), dur: ep.Duration.Duration}
	var errs []error

	sched, err := parseSchedule(p.schedule)
	if err != nil {
		errs = append(errs, fmt.Errorf("schedule %q: %w", ep.Schedule, err))
	}
	p.sched = sched

	if p.dur <= 0 {
		errs = append(errs, fmt.Errorf("duration %s: must be positive", p.dur))
	}

	switch tz := strings.TrimSpace(ep.TimeZone); tz {
	case "":
		p.loc = time.UTC
	case "Local":
		// LoadLocation would return the controller's own zone.
		errs = append(errs, fmt.Errorf("timeZone %q: not an IANA time zone name (such as Europe/Berlin or UTC)", ep.TimeZone))
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			errs = append(errs, fmt.Errorf("timeZone %q: unknown time zone: %w", ep.TimeZone, err))
		}
		p.loc = loc
	}

	if len(errs) > 0 {
		return Period{}, errors.Join(errs...)
	}
	return p, nil
}

func parseSchedule(s string) (cron.Schedule, error) {
	switch {
	case s == "":
		return nil, errors.New("empty: want a 5-field cron expression or a descriptor such as @daily")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return nil, errors.New("a time zone prefix is not allowed in the schedule: set timeZone instead")
	case len(s) >= len("@every") && strings.EqualFold(s[:len("@every")], "@every"):
		return nil, errors.New("@every is an interval from whenever the controller starts, not a calendar window: write a cron expression")
	}
	sched, err := parser.Parse(s)
	if err != nil {
		return nil, err
	}
	// The parser leaves the location to the time passed to Next (time.Local
	// means "the time's own zone"); Period.next passes times in its zone.
	if spec, ok := sched.(*cron.SpecSchedule); !ok || spec.Location != time.Local {
		return nil, errors.New("not a calendar schedule")
	}
	return sched, nil
}

// String describes the period: "nightly-batch (0 2 * * *, 3h0m0s, Europe/Berlin)".
func (p Period) String() string {
	loc := "UTC"
	if p.loc != nil {
		loc = p.loc.String()
	}
	return fmt.Sprintf("%s (%s, %s, %s)", p.Name, p.schedule, p.dur, loc)
}

// Active returns the period active at t and when it ends. If several are
// active, it returns the one that ends last (so no rescale starts before
// until).
//
// until is the end of the run of overlapping (or touching) windows of the
// period that contains t. For a schedule that fires more often than its
// windows last, at most maxChain windows are followed: until is then before
// the true end and the period is found active again at until.
func Active(ps []Period, t time.Time) (p Period, until time.Time, ok bool) {
	for _, q := range ps {
		end, active := q.activeUntil(t)
		if active && (!ok || end.After(until)) {
			p, until, ok = q, end, true
		}
	}
	return p, until, ok
}

func (p Period) activeUntil(t time.Time) (time.Time, bool) {
	if p.sched == nil || p.dur <= 0 || p.loc == nil {
		return time.Time{}, false
	}
	// The first firing strictly after t-dur; a window covers t iff it is
	// not after t.
	f := p.next(t.Add(-p.dur))
	if f.IsZero() || f.After(t) {
		return time.Time{}, false
	}
	end := f.Add(p.dur)
	for range maxChain {
		n := p.next(f)
		if n.IsZero() || n.After(end) {
			break
		}
		f, end = n, n.Add(p.dur)
	}
	return end, true
}

// next returns the first firing strictly after x, or the zero time if there
// is none within cron's search horizon (five years, e.g. for 30 February).
//
// The schedule is evaluated on the wall clock of p.loc, written as a UTC
// time (cron's own evaluation in a zone loops forever in zones that skipped
// a whole day, such as Pacific/Apia in 2011), one zone segment (a stretch
// with one UTC offset) at a time: within a segment the wall clock is the
// instant plus the offset. A firing time that a forward change skips fires
// at the change; one repeated by a backward change fires twice.
func (p Period) next(x time.Time) time.Time {
	from, inclusive := x, false
	for range maxSegments {
		local := from.In(p.loc)
		_, off := local.Zone()
		_, end := local.ZoneBounds()
		offset := time.Duration(off) * time.Second
		wall := from.Add(offset).UTC()
		if inclusive {
			wall = wall.Add(-time.Nanosecond)
		}
		c := p.sched.Next(wall)
		if c.IsZero() {
			return time.Time{}
		}
		f := c.Add(-offset)
		if end.IsZero() || f.Before(end) {
			return f
		}
		// c is at or after the wall clock at the change (end, in this
		// segment's offset). Does the change skip it?
		_, offAfter := end.In(p.loc).Zone()
		if offAfter > off && c.Before(end.Add(time.Duration(offAfter)*time.Second).UTC()) {
			return end
		}
		from, inclusive = end, true
	}
	return time.Time{}
}
