package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

func ep(name, schedule string, d time.Duration, tz string) v1alpha1.ExcludedPeriod {
	return v1alpha1.ExcludedPeriod{Name: name, Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: tz}
}

// at parses an RFC 3339 time.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v
}

func mustParse(t *testing.T, eps ...v1alpha1.ExcludedPeriod) []Period {
	t.Helper()
	ps, err := Parse(eps)
	require.NoError(t, err)
	require.Len(t, ps, len(eps))
	return ps
}

// A check is one instant: active (and until when) or not.
type check struct {
	at     string // RFC 3339
	active bool
	until  string // RFC 3339, when active
	why    string
}

func runChecks(t *testing.T, ps []Period, checks []check) {
	t.Helper()
	for _, c := range checks {
		p, until, ok := Active(ps, at(t, c.at))
		if !assert.Equal(t, c.active, ok, "active at %s (%s)", c.at, c.why) {
			continue
		}
		if c.active {
			assert.True(t, at(t, c.until).Equal(until), "until at %s = %s, want %s (%s)", c.at, until.UTC().Format(time.RFC3339), c.until, c.why)
			assert.NotEmpty(t, p.Name)
		} else {
			assert.True(t, until.IsZero())
			assert.Equal(t, Period{}, p)
		}
	}
}

func TestActive(t *testing.T) {
	// 2024-01-01 is a Monday; 2024-01-06 and 2024-01-07 are a weekend.
	for _, tc := range []struct {
		name   string
		period v1alpha1.ExcludedPeriod
		checks []check
	}{{
		name:   "boundaries",
		period: ep("nightly", "0 2 * * *", 3*time.Hour, ""),
		// Fires 02:00 UTC daily; the window is [02:00, 05:00).
		checks: []check{
			{"2024-01-10T01:59:59Z", false, "", "before the firing"},
			{"2024-01-10T02:00:00Z", true, "2024-01-10T05:00:00Z", "exactly at f: active"},
			{"2024-01-10T04:59:59.999999999Z", true, "2024-01-10T05:00:00Z", "the last instant"},
			{"2024-01-10T05:00:00Z", false, "", "exactly f+duration: over"},
			{"2024-01-10T12:00:00Z", false, "", "midday"},
		},
	}, {
		name:   "@daily",
		period: ep("midnight", "@daily", time.Hour, ""),
		// @daily is 0 0 * * *: [00:00, 01:00) every day.
		checks: []check{
			{"2024-01-10T00:00:00Z", true, "2024-01-10T01:00:00Z", "at midnight"},
			{"2024-01-10T00:30:00Z", true, "2024-01-10T01:00:00Z", "inside"},
			{"2024-01-10T01:00:00Z", false, "", "end"},
			{"2024-01-09T23:59:59Z", false, "", "just before"},
		},
	}, {
		name:   "@hourly",
		period: ep("", "@hourly", 10*time.Minute, ""),
		// @hourly is 0 * * * *: the first 10 minutes of every hour.
		checks: []check{
			{"2024-01-10T13:05:00Z", true, "2024-01-10T13:10:00Z", "inside"},
			{"2024-01-10T13:10:00Z", false, "", "end"},
			{"2024-01-10T23:59:00Z", false, "", "late in the hour"},
			{"2024-01-11T00:00:00Z", true, "2024-01-11T00:10:00Z", "next day"},
		},
	}, {
		name:   "@weekly",
		period: ep("sunday", "@weekly", 24*time.Hour, ""),
		// @weekly is 0 0 * * 0: all of Sunday.
		checks: []check{
			{"2024-01-06T23:59:59Z", false, "", "Saturday"},
			{"2024-01-07T12:00:00Z", true, "2024-01-08T00:00:00Z", "Sunday"},
			{"2024-01-08T00:00:00Z", false, "", "Monday midnight"},
			{"2024-01-10T12:00:00Z", false, "", "Wednesday"},
		},
	}, {
		name:   "business hours",
		period: ep("office", "0 9 * * 1-5", 8*time.Hour, ""),
		// Monday to Friday, [09:00, 17:00).
		checks: []check{
			{"2024-01-08T08:59:00Z", false, "", "Monday before 9"},
			{"2024-01-08T09:00:00Z", true, "2024-01-08T17:00:00Z", "Monday 9:00"},
			{"2024-01-05T16:59:00Z", true, "2024-01-05T17:00:00Z", "Friday afternoon"},
			{"2024-01-05T17:00:00Z", false, "", "Friday 17:00"},
			{"2024-01-06T10:00:00Z", false, "", "Saturday"},
			{"2024-01-07T10:00:00Z", false, "", "Sunday"},
		},
	}, {
		name:   "time zone",
		period: ep("office-ny", "0 9 * * 1-5", 8*time.Hour, "America/New_York"),
		// 09:00 in New York is 14:00Z in winter (EST, -5) and 13:00Z in
		// summer (EDT, -4).
		checks: []check{
			{"2024-01-08T13:59:00Z", false, "", "08:59 EST"},
			{"2024-01-08T14:00:00Z", true, "2024-01-08T22:00:00Z", "09:00 EST"},
			{"2024-07-08T13:00:00Z", true, "2024-07-08T21:00:00Z", "09:00 EDT"},
			{"2024-07-08T21:00:00Z", false, "", "17:00 EDT"},
			{"2024-01-06T15:00:00Z", false, "", "Saturday in New York"},
		},
	}, {
		name:   "half-hour zone across midnight UTC",
		period: ep("kolkata", "30 1 * * 1", time.Hour, "Asia/Kolkata"),
		// Monday 01:30 IST (+05:30) is Sunday 20:00Z.
		checks: []check{
			{"2024-01-07T20:00:00Z", true, "2024-01-07T21:00:00Z", "Monday 01:30 IST"},
			{"2024-01-08T20:00:00Z", false, "", "Tuesday 01:30 IST"},
		},
	}, {
		name:   "overlapping windows of one schedule merge",
		period: ep("twice", "0 8,10 * * *", 3*time.Hour, ""),
		// [08:00, 11:00) and [10:00, 13:00) make one window [08:00, 13:00).
		checks: []check{
			{"2024-01-10T09:00:00Z", true, "2024-01-10T13:00:00Z", "inside the first, the second follows"},
			{"2024-01-10T12:00:00Z", true, "2024-01-10T13:00:00Z", "inside the second only"},
			{"2024-01-10T13:00:00Z", false, "", "end"},
		},
	}, {
		name:   "touching windows merge",
		period: ep("back-to-back", "0 8,10 * * *", 2*time.Hour, ""),
		// [08:00, 10:00) and [10:00, 12:00) leave no gap between them.
		checks: []check{
			{"2024-01-10T08:30:00Z", true, "2024-01-10T12:00:00Z", "first"},
			{"2024-01-10T10:00:00Z", true, "2024-01-10T12:00:00Z", "second starts"},
		},
	}, {
		name:   "never fires",
		period: ep("feb30", "0 0 30 2 *", 24*time.Hour, ""),
		// 30 February does not exist: never active.
		checks: []check{
			{"2024-02-29T12:00:00Z", false, "", "leap day"},
			{"2024-03-01T12:00:00Z", false, "", "1 March"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			runChecks(t, mustParse(t, tc.period), tc.checks)
		})
	}
}

func TestActiveDurationLongerThanPeriod(t *testing.T) {
	// Daily windows of 36h overlap without end. From 2024-01-10T06:00Z the
	// first firing after t-36h is 2024-01-09T00:00Z; Active follows maxChain
	// more firings, a day apart, and reports the end of the last window.
	ps := mustParse(t, ep("always", "@daily", 36*time.Hour, ""))
	now := at(t, "2024-01-10T06:00:00Z")
	p, until, ok := Active(ps, now)
	require.True(t, ok)
	assert.Equal(t, "always", p.Name)
	want := at(t, "2024-01-09T00:00:00Z").AddDate(0, 0, maxChain).Add(36 * time.Hour)
	assert.True(t, want.Equal(until), "until = %s, want %s", until, want)

	// At until itself the period is active again (the chain is only cut).
	_, _, ok = Active(ps, until)
	assert.True(t, ok)
}

func TestActiveOverlappingPeriods(t *testing.T) {
	ps := mustParse(t,
		ep("batch", "0 2 * * *", 3*time.Hour, ""),    // [02:00, 05:00)
		ep("backup", "0 1 * * *", 6*time.Hour, ""),   // [01:00, 07:00)
		ep("compact", "0 3 * * *", time.Hour, ""),    // [03:00, 04:00)
		ep("weekend", "0 0 * * 6", 48*time.Hour, ""), // Saturday and Sunday
	)
	for _, tc := range []struct {
		at, name, until, why string
	}{
		{"2024-01-10T01:30:00Z", "backup", "2024-01-10T07:00:00Z", "only backup"},
		{"2024-01-10T03:30:00Z", "backup", "2024-01-10T07:00:00Z", "all three daily ones: backup ends last"},
		{"2024-01-10T06:00:00Z", "backup", "2024-01-10T07:00:00Z", "backup alone again"},
		{"2024-01-06T03:30:00Z", "weekend", "2024-01-08T00:00:00Z", "Saturday: the weekend ends last"},
	} {
		// The answer does not depend on the order of the periods.
		for _, order := range [][]Period{ps, {ps[3], ps[2], ps[1], ps[0]}} {
			p, until, ok := Active(order, at(t, tc.at))
			require.True(t, ok, tc.why)
			assert.Equal(t, tc.name, p.Name, tc.why)
			assert.True(t, at(t, tc.until).Equal(until), "%s: until %s, want %s", tc.why, until, tc.until)
		}
	}
	_, _, ok := Active(ps, at(t, "2024-01-10T07:00:00Z"))
	assert.False(t, ok, "Wednesday 07:00: nothing")
}

func TestActiveDaylightSaving(t *testing.T) {
	// Europe/Berlin is CET (+01) in winter and CEST (+02) in summer. In
	// 2024 the clocks went forward on 31 March at 02:00 CET (01:00Z: 02:00
	// became 03:00) and back on 27 October at 03:00 CEST (01:00Z: 03:00
	// became 02:00, so 02:00-03:00 happened twice).
	t.Run("nightly at 02:00 for 3h", func(t *testing.T) {
		ps := mustParse(t, ep("nightly-batch", "0 2 * * *", 3*time.Hour, "Europe/Berlin"))
		runChecks(t, ps, []check{
			// 30 March, CET: 02:00 local is 01:00Z.
			{"2024-03-30T00:59:59Z", false, "", "01:59 CET"},
			{"2024-03-30T01:00:00Z", true, "2024-03-30T04:00:00Z", "02:00 CET"},
			// 31 March: 02:00 does not exist; the period starts at the
			// change, 03:00 CEST (01:00Z), and lasts 3 real hours.
			{"2024-03-31T00:59:59Z", false, "", "01:59 CET"},
			{"2024-03-31T01:00:00Z", true, "2024-03-31T04:00:00Z", "03:00 CEST, the skipped 02:00"},
			{"2024-03-31T03:59:59Z", true, "2024-03-31T04:00:00Z", "05:59 CEST"},
			{"2024-03-31T04:00:00Z", false, "", "06:00 CEST"},
			// 1 April, CEST: 02:00 local is 00:00Z.
			{"2024-04-01T00:00:00Z", true, "2024-04-01T03:00:00Z", "02:00 CEST"},
			{"2024-04-01T03:00:00Z", false, "", "05:00 CEST"},
			// 27 October: 02:00 CEST (00:00Z) and 02:00 CET (01:00Z) both
			// fire; the windows [00:00Z, 03:00Z) and [01:00Z, 04:00Z)
			// merge.
			{"2024-10-26T23:59:59Z", false, "", "01:59 CEST"},
			{"2024-10-27T00:00:00Z", true, "2024-10-27T04:00:00Z", "first 02:00 (CEST)"},
			{"2024-10-27T03:30:00Z", true, "2024-10-27T04:00:00Z", "04:30 CET"},
			{"2024-10-27T04:00:00Z", false, "", "05:00 CET"},
			// 28 October, CET.
			{"2024-10-28T01:00:00Z", true, "2024-10-28T04:00:00Z", "02:00 CET"},
		})
	})
	t.Run("skipped minute inside the gap", func(t *testing.T) {
		// 02:30 did not exist on 31 March either: the period starts at
		// the change (01:00Z) and lasts one hour.
		ps := mustParse(t, ep("half-past-two", "30 2 * * *", time.Hour, "Europe/Berlin"))
		runChecks(t, ps, []check{
			{"2024-03-30T01:30:00Z", true, "2024-03-30T02:30:00Z", "02:30 CET"},
			{"2024-03-31T01:00:00Z", true, "2024-03-31T02:00:00Z", "the change"},
			{"2024-03-31T02:00:00Z", false, "", "04:00 CEST"},
			{"2024-04-01T00:30:00Z", true, "2024-04-01T01:30:00Z", "02:30 CEST"},
		})
	})
	t.Run("a skipped day", func(t *testing.T) {
		// Pacific/Apia went from -10 to +14 at the end of 29 December 2011
		// (10:00Z): 30 December never happened there. Its noon firing
		// fires at the change; 31 December noon (+14) is 22:00Z on the
		// 30th.
		ps := mustParse(t, ep("apia-noon", "0 12 * * *", time.Hour, "Pacific/Apia"))
		runChecks(t, ps, []check{
			{"2011-12-28T22:00:00Z", true, "2011-12-28T23:00:00Z", "28 December noon (-10)"},
			{"2011-12-30T10:00:00Z", true, "2011-12-30T11:00:00Z", "the change: 30 December's noon"},
			{"2011-12-30T11:00:00Z", false, "", "31 December 01:00 (+14)"},
			{"2011-12-30T22:00:00Z", true, "2011-12-30T23:00:00Z", "31 December noon (+14)"},
		})
	})
	t.Run("business hours keep local time", func(t *testing.T) {
		// 09:00-17:00 local is 08:00Z-16:00Z on Friday 29 March (CET) and
		// 07:00Z-15:00Z on Tuesday 2 April (CEST): a zone-less schedule
		// would be an hour off on one side of the change.
		ps := mustParse(t, ep("office", "0 9 * * 1-5", 8*time.Hour, "Europe/Berlin"))
		runChecks(t, ps, []check{
			{"2024-03-29T07:59:00Z", false, "", "08:59 CET"},
			{"2024-03-29T08:00:00Z", true, "2024-03-29T16:00:00Z", "09:00 CET"},
			{"2024-04-02T07:00:00Z", true, "2024-04-02T15:00:00Z", "09:00 CEST"},
			{"2024-04-02T15:00:00Z", false, "", "17:00 CEST"},
		})
	})
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		period v1alpha1.ExcludedPeriod
		want   []string // substrings of the error
	}{
		{"bad cron", ep("nightly", "0 25 * * *", time.Hour, ""),
			[]string{`excludedPeriods[0] ("nightly")`, `schedule "0 25 * * *"`, "above maximum"}},
		{"six fields", ep("", "0 0 2 * * *", time.Hour, ""),
			[]string{"excludedPeriods[0]: ", `schedule "0 0 2 * * *"`, "expected exactly 5 fields"}},
		{"unknown descriptor", ep("", "@fortnightly", time.Hour, ""),
			[]string{`schedule "@fortnightly"`}},
		{"@every", ep("", "@every 1h", time.Minute, ""),
			[]string{`schedule "@every 1h"`, "@every is an interval"}},
		{"CRON_TZ prefix", ep("", "CRON_TZ=Europe/Berlin 0 2 * * *", time.Hour, ""),
			[]string{"time zone prefix", "set timeZone"}},
		{"TZ prefix", ep("", "TZ=UTC 0 2 * * *", time.Hour, ""),
			[]string{"time zone prefix"}},
		{"empty schedule", ep("", "  ", time.Hour, ""),
			[]string{"schedule", "empty"}},
		{"unknown time zone", ep("mars", "0 2 * * *", time.Hour, "Mars/Olympus_Mons"),
			[]string{`("mars")`, `timeZone "Mars/Olympus_Mons"`, "unknown time zone"}},
		{"Local", ep("", "0 2 * * *", time.Hour, "Local"),
			[]string{`timeZone "Local"`, "IANA"}},
		{"zero duration", ep("", "0 2 * * *", 0, ""),
			[]string{"duration 0s", "must be positive"}},
		{"negative duration", ep("", "0 2 * * *", -time.Hour, ""),
			[]string{"duration -1h0m0s", "must be positive"}},
		{"every field wrong", ep("all", "@every 5m", 0, "Nowhere/Atlantis"),
			[]string{"@every", "duration 0s", `timeZone "Nowhere/Atlantis"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Parse([]v1alpha1.ExcludedPeriod{tc.period})
			require.Error(t, err)
			assert.Nil(t, ps)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}

	t.Run("all bad periods are reported", func(t *testing.T) {
		_, err := Parse([]v1alpha1.ExcludedPeriod{
			ep("fine", "0 2 * * *", time.Hour, ""),
			ep("a", "nonsense", time.Hour, ""),
			ep("b", "0 2 * * *", 0, ""),
		})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "excludedPeriods[0]")
		assert.ErrorContains(t, err, `excludedPeriods[1] ("a"): schedule "nonsense"`)
		assert.ErrorContains(t, err, `excludedPeriods[2] ("b"): duration 0s: must be positive`)
	})
}

func TestParse(t *testing.T) {
	ps, err := Parse(nil)
	require.NoError(t, err)
	assert.Empty(t, ps)
	_, _, ok := Active(ps, time.Now())
	assert.False(t, ok)

	ps = mustParse(t,
		ep("nightly-batch", " 0 2 * * * ", 3*time.Hour, "Europe/Berlin"),
		ep("", "@weekly", time.Hour, ""),
		ep("names", "0 9 * JAN-MAR MON-FRI", time.Hour, "UTC"),
	)
	assert.Equal(t, "nightly-batch (0 2 * * *, 3h0m0s, Europe/Berlin)", ps[0].String())
	// An unnamed period is named after its index; the zone defaults to UTC.
	assert.Equal(t, "excludedPeriods[1] (@weekly, 1h0m0s, UTC)", ps[1].String())
	assert.Equal(t, "names (0 9 * JAN-MAR MON-FRI, 1h0m0s, UTC)", ps[2].String())

	// The zero Period is never active.
	_, _, ok = Active([]Period{{}}, time.Now())
	assert.False(t, ok)
}

func FuzzParse(f *testing.F) {
	// Seeds: schedule, duration (ns), time zone, name, time (Unix s, ns).
	f.Add("0 2 * * *", int64(3*time.Hour), "Europe/Berlin", "nightly", int64(1711846800), int64(0))
	f.Add("30 2 * * *", int64(time.Hour), "Europe/Berlin", "", int64(1729990800), int64(5))
	f.Add("0 9 * * 1-5", int64(8*time.Hour), "America/New_York", "office", int64(1704722400), int64(0))
	f.Add("@daily", int64(36*time.Hour), "", "always", int64(1704866400), int64(0))
	f.Add("@hourly", int64(time.Minute), "UTC", "", int64(0), int64(0))
	f.Add("* * * * *", int64(1<<62), "Asia/Kolkata", "", int64(-1<<40), int64(999999999))
	f.Add("0 0 30 2 *", int64(time.Hour), "Australia/Lord_Howe", "", int64(1<<40), int64(0))
	f.Add("*/7 1-23/3 ? * SUN", int64(time.Second), "Pacific/Apia", "", int64(1325239200), int64(0))
	f.Add("*/7 1-23/3 ? * SUN", int64(1000000014), "Pacific/Apia", "", int64(1325239200), int64(0)) // hung cron's own zone handling
	f.Add("@every 1h", int64(time.Hour), "", "", int64(0), int64(0))
	f.Add("CRON_TZ=UTC 0 2 * * *", int64(time.Hour), "", "", int64(0), int64(0))
	f.Add("0 2 * * *", int64(0), "Local", "", int64(0), int64(0))
	f.Add("0 0 1 1 *", int64(-1), "../../etc/passwd", "", int64(-1<<62), int64(0))
	f.Fuzz(func(t *testing.T, schedule string, dur int64, tz, name string, sec, nsec int64) {
		ps, err := Parse([]v1alpha1.ExcludedPeriod{{Name: name, Schedule: schedule, Duration: metav1.Duration{Duration: time.Duration(dur)}, TimeZone: tz}})
		if err != nil {
			if ps != nil {
				t.Fatalf("Parse returned periods and an error: %v", err)
			}
			return
		}
		if len(ps) != 1 {
			t.Fatalf("Parse returned %d periods for 1", len(ps))
		}
		_ = ps[0].String()
		now := time.Unix(sec, nsec)
		p, until, ok := Active(ps, now)
		if !ok {
			return
		}
		if p.Name != ps[0].Name {
			t.Fatalf("Active returned %q, not the one period %q", p.Name, ps[0].Name)
		}
		// Away from the ends of time (where time.Add saturates) the
		// active window must end after now.
		if y := now.Year(); y > 1 && y < 1_000_000 && !until.After(now) {
			t.Fatalf("active at %s until %s, not after it", now, until)
		}
	})
}
