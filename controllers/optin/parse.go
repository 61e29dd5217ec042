package optin

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// flinkUnits are the duration units Flink's TimeUtils.parseDuration accepts
// (matched case-insensitively), with their long forms.
var flinkUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nano": time.Nanosecond, "nanos": time.Nanosecond, "nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
	"µs": time.Microsecond, "us": time.Microsecond, "micro": time.Microsecond, "micros": time.Microsecond, "microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// ParseDuration reads a duration the way Flink's configuration does: an
// integer, optional spaces and an optional unit (ms when absent): "300000",
// "30 s", "5 min", "1h", "2 days". Units are ns, µs/us, ms, s, min/m, h and d
// with their long forms (milli, millis, second, seconds, minute, hours, day,
// ...), case-insensitive. It also accepts an ISO-8601 duration of days, hours,
// minutes and seconds ("PT5M", "P1DT2H") and Go's syntax ("1h30m", "1.5s"),
// which annotations users may find more natural. A leading "-" gives a
// negative duration; callers decide whether that is allowed.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	neg := false
	body := t
	if body[0] == '-' {
		neg, body = true, strings.TrimSpace(body[1:])
	} else if body[0] == '+' {
		body = strings.TrimSpace(body[1:])
	}
	d, ok, err := parseFlinkDuration(body)
	if !ok {
		d, ok, err = parseISODuration(body)
	}
	if !ok {
		g, gerr := time.ParseDuration(body)
		if gerr == nil && g >= 0 {
			d, ok, err = g, true, nil
		}
	}
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%q is not a duration (use e.g. \"30 s\", \"5 min\", \"1 h\", \"300000 ms\" or \"PT5M\")", s)
	}
	if neg {
		d = -d
	}
	return d, nil
}

// parseFlinkDuration parses "<digits>[ ]*[unit]". ok is false when s does not
// have that shape; err is set when it does but overflows.
func parseFlinkDuration(s string) (time.Duration, bool, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false, nil
	}
	unitStr := strings.ToLower(strings.TrimSpace(s[i:]))
	unit := time.Millisecond
	if unitStr != "" {
		u, found := flinkUnits[unitStr]
		if !found {
			return 0, false, nil
		}
		unit = u
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, true, fmt.Errorf("duration %q is too large", s)
	}
	return time.Duration(n) * unit, true, nil
}

// parseISODuration parses P[nD][T[nH][nM][n[.f]S]] (case-insensitive).
func parseISODuration(s string) (time.Duration, bool, error) {
	u := strings.ToUpper(s)
	if len(u) < 2 || u[0] != 'P' {
		return 0, false, nil
	}
	u = u[1:]
	var total float64
	inTime := false
	seen := false
	for len(u) > 0 {
		if u[0] == 'T' {
			if inTime {
				return 0, false, nil
			}
			inTime = true
			u = u[1:]
			continue
		}
		j := 0
		for j < len(u) && (u[j] >= '0' && u[j] <= '9' || u[j] == '.') {
			j++
		}
		if j == 0 || j == len(u) {
			return 0, false, nil
		}
		v, err := strconv.ParseFloat(u[:j], 64)
		if err != nil {
			return 0, false, nil
		}
		var unit time.Duration
		switch {
		case !inTime && u[j] == 'D':
			unit = 24 * time.Hour
		case inTime && u[j] == 'H':
			unit = time.Hour
		case inTime && u[j] == 'M':
			unit = time.Minute
		case inTime && u[j] == 'S':
			unit = time.Second
		default:
			return 0, false, nil
		}
		if unit != time.Second && strings.Contains(u[:j], ".") {
			return 0, false, nil
		}
		total += v * float64(unit)
		seen = true
		u = u[j+1:]
	}
	if !seen {
		return 0, false, nil
	}
	if total >= math.MaxInt64 {
		return 0, true, fmt.Errorf("duration %q is too large", s)
	}
	return time.Duration(total), true, nil
}

// parseFloat reads a finite number.
func parseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// parseBool reads true or false, case-insensitive.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither \"true\" nor \"false\"", s)
}

// parseList splits a Flink list value ("a;b", or "[a, b]" as written by
// the YAML config) or an annotation's comma list into trimmed, non-empty
// items; sep lists the separator characters.
func parseList(s, sep string) []string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		t = t[1 : len(t)-1]
		sep += ","
	}
	var out []string
	for _, f := range strings.FieldsFunc(t, func(r rune) bool { return strings.ContainsRune(sep, r) }) {
		f = strings.Trim(strings.TrimSpace(f), `"'`)
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// quartzToCron converts a Quartz cron expression as the operator's
// excluded.periods uses it (a set of instants: the period is every second
// the expression matches) into a 5-field cron schedule firing every matched
// minute, which with a 1m duration covers the same time. ok is false (with
// the reason) when the expression cannot be converted exactly.
func quartzToCron(expr string) (string, string, bool) {
	f := strings.Fields(expr)
	if len(f) != 6 && len(f) != 7 {
		return "", "a Quartz cron expression has 6 or 7 fields", false
	}
	if f[0] != "*" {
		return "", "only a seconds field of * converts (otherwise the period is single seconds)", false
	}
	if len(f) == 7 && f[6] != "*" {
		return "", "a year field other than * has no equivalent", false
	}
	for _, fld := range f[1:6] {
		if strings.ContainsAny(fld, "LW#") {
			return "", "the Quartz L, W and # specials have no equivalent", false
		}
		for _, r := range fld {
			if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || strings.ContainsRune("*?,-/", r)) {
				return "", fmt.Sprintf("unexpected character %q", r), false
			}
		}
	}
	dom, dow := f[3], f[5]
	if dom == "?" {
		dom = "*"
	}
	if dow == "?" {
		dow = "*"
	}
	if strings.Contains(f[1]+f[2]+f[4], "?") || strings.Contains(dom+dow, "?") {
		return "", "? is only allowed alone in day-of-month or day-of-week", false
	}
	dow, ok := shiftQuartzDOW(dow)
	if !ok {
		return "", "day-of-week numbers must be 1-7 (Quartz: 1 is Sunday)", false
	}
	return strings.Join([]string{f[1], f[2], dom, f[4], dow}, " "), "", true
}

// shiftQuartzDOW maps Quartz day-of-week numbers (1-7, Sunday first) to
// cron's (0-6); names and step values are kept.
func shiftQuartzDOW(field string) (string, bool) {
	items := strings.Split(field, ",")
	for i, it := range items {
		rng, step, hasStep := strings.Cut(it, "/")
		parts := strings.Split(rng, "-")
		for j, p := range parts {
			if p == "" || p == "*" || p[0] < '0' || p[0] > '9' {
				continue
			}
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 7 {
				return "", false
			}
			parts[j] = strconv.Itoa(n - 1)
		}
		items[i] = strings.Join(parts, "-")
		if hasStep {
			items[i] += "/" + step
		}
	}
	return strings.Join(items, ","), true
}

// parseDailyRange converts "HH:mm[:ss]-HH:mm[:ss]" into a 5-field cron
// schedule starting at the first time and the window's length (through
// midnight when the end is earlier than the start).
func parseDailyRange(s string) (string, time.Duration, string, bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return "", 0, "not a HH:mm:ss-HH:mm:ss range", false
	}
	start, okA := parseClock(strings.TrimSpace(a))
	end, okB := parseClock(strings.TrimSpace(b))
	if !okA || !okB {
		return "", 0, "not a HH:mm:ss-HH:mm:ss range", false
	}
	if start%time.Minute != 0 {
		return "", 0, "a start time with seconds cannot be a cron schedule", false
	}
	d := end - start
	if d == 0 {
		return "", 0, "start and end are equal", false
	}
	if d < 0 {
		d += 24 * time.Hour
	}
	h, m := int(start/time.Hour), int(start%time.Hour/time.Minute)
	return fmt.Sprintf("%d %d * * *", m, h), d, "", true
}

func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return 0, false
	}
	limits := []int{23, 59, 59}
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, p := range parts {
		if len(p) != 2 || p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' {
			return 0, false
		}
		n, _ := strconv.Atoi(p)
		if n > limits[i] {
			return 0, false
		}
		d += time.Duration(n) * units[i]
	}
	return d, true
}
