package scaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Float is a metric value as Flink reports it. In JSON it is a number or,
// because Flink's REST API quotes numbers and writes NaN as a string, a string
// holding a number, "NaN", "Infinity", "+Inf" or "-Inf". Non-finite values
// survive a round trip so that a snapshot saved from a live job replays the
// same decision (usually a Hold).
type Float float64

// F returns a pointer to a Float; handy for optional snapshot fields.
func F(v float64) *Float { f := Float(v); return &f }

// MarshalJSON writes finite values as numbers and the rest as strings.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON accepts a number or a quoted number, NaN or infinity.
func (f *Float) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := parseFloat(s)
		if err != nil {
			return err
		}
		*f = Float(v)
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("metric value %s is not a number", b)
	}
	*f = Float(v)
	return nil
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf", "infinity", "+infinity":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("metric value %q is not a number", s)
	}
	return v, nil
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("90s", "5m", "1h30m"), the way Kubernetes APIs write metav1.Duration.
type Duration struct{ time.Duration }

// D wraps a time.Duration.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// SlotCount is the number of task slots per TaskManager. Zero means "auto":
// one slot per TaskManager CPU core. In JSON it is a positive integer or the
// string "auto".
type SlotCount int

// MarshalJSON writes "auto" for zero.
func (s SlotCount) MarshalJSON() ([]byte, error) {
	if s == 0 {
		return []byte(`"auto"`), nil
	}
	return strconv.AppendInt(nil, int64(s), 10), nil
}

// UnmarshalJSON reads a positive integer or "auto".
func (s *SlotCount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == `"auto"` || string(b) == "null" {
		*s = 0
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 1 {
		return fmt.Errorf("slotsPerTaskManager must be a positive integer or \"auto\", got %s", b)
	}
	*s = SlotCount(n)
	return nil
}
