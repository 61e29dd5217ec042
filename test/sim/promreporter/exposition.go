package promreporter

import (
	"bytes"
	"math"
	"strings"
	"unicode/utf16"
)

// Logical scopes of the metric groups the renderer uses (AbstractMetricGroup
// logical scope with '_' as the delimiter).
const (
	scopeTaskManager = "taskmanager"
	scopeTask        = "taskmanager_job_task"
	scopeOperator    = "taskmanager_job_task_operator"
	scopeJobManager  = "jobmanager"
	scopeJMJob       = "jobmanager_job"
)

// labelPair is one label of a sample, already sanitized.
type labelPair struct{ name, value string }

type sample struct {
	labels []labelPair
	value  float64
}

// family is one Prometheus collector: simpleclient's Gauge with its
// children. Children are keyed by their label values, so a second metric
// whose sanitized label values equal an earlier one's replaces it
// (Gauge.setChild), as in Flink.
type family struct {
	name, help string
	samples    []sample
	byValues   map[string]int
}

// exposition is the CollectorRegistry of one process.
type exposition struct {
	families []*family
	byName   map[string]*family
}

func newExposition() *exposition { return &exposition{byName: map[string]*family{}} }

// add registers a metric as AbstractPrometheusReporter.notifyOfAddedMetric
// does: name "flink_<logical scope>_<sanitized metric name>", help
// "<metric name> (scope: <logical scope>)", labels from the group's
// variables in map order with '<' and '>' stripped, values sanitized.
func (e *exposition) add(logicalScope, metricName string, vars *varMap, value float64) {
	name := "flink_" + logicalScope + "_" + sanitize(metricName)
	f := e.byName[name]
	if f == nil {
		f = &family{
			name:     name,
			help:     metricName + " (scope: " + logicalScope + ")",
			byValues: map[string]int{},
		}
		e.byName[name] = f
		e.families = append(e.families, f)
	}
	var labels []labelPair
	var key strings.Builder
	vars.each(func(k, v string) {
		lv := sanitize(v)
		labels = append(labels, labelPair{sanitize(k[1 : len(k)-1]), lv})
		key.WriteString(lv)
		key.WriteByte(0)
	})
	s := sample{labels: labels, value: value}
	if i, ok := f.byValues[key.String()]; ok {
		f.samples[i] = s
		return
	}
	f.byValues[key.String()] = len(f.samples)
	f.samples = append(f.samples, s)
}

// write renders the registry in text format 0.0.4 exactly as simpleclient
// 0.8.1's TextFormat.write004 does, including the comma after the last
// label. names, when non-empty, keeps only those families (the name[]
// query parameter of simpleclient's HTTPServer).
func (e *exposition) write(b *bytes.Buffer, names []string) {
	for _, f := range e.families {
		if len(names) > 0 && !contains(names, f.name) {
			continue
		}
		b.WriteString("# HELP ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		writeEscaped(b, f.help, false)
		b.WriteString("\n# TYPE ")
		b.WriteString(f.name)
		b.WriteString(" gauge\n")
		for _, s := range f.samples {
			b.WriteString(f.name)
			if len(s.labels) > 0 {
				b.WriteByte('{')
				for _, l := range s.labels {
					b.WriteString(l.name)
					b.WriteString(`="`)
					writeEscaped(b, l.value, true)
					b.WriteString(`",`)
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(javaDouble(s.value))
			b.WriteByte('\n')
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeEscaped applies simpleclient's escaping: backslash and newline in
// HELP text; backslash, newline and double quote in label values. Sanitized
// values never need it, but it keeps the output parseable whatever comes in.
func writeEscaped(b *bytes.Buffer, s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}

// sanitize is AbstractPrometheusReporter.replaceInvalidChars: every
// character outside [a-zA-Z0-9:_] becomes '_'. Java's regex works on code
// points, so one '_' replaces each rune (and each invalid UTF-8 byte).
func sanitize(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !validChar(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < 0x80 && validChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func validChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_'
}

// operatorNameMaxLength is TaskMetricGroup's METRICS_OPERATOR_NAME_MAX_LENGTH:
// longer operator names are cut (String.substring, in UTF-16 units).
const operatorNameMaxLength = 80

func truncateOperatorName(s string) string {
	units := utf16.Encode([]rune(s))
	if len(units) <= operatorNameMaxLength {
		return s
	}
	// A cut through a surrogate pair leaves a lone surrogate, which the
	// sanitizer turns into '_' like U+FFFD.
	return string(utf16.Decode(units[:operatorNameMaxLength]))
}

// javaLong is a Java (long) cast of x as a double: the value a Counter or a
// Gauge<Long> holds. NaN becomes 0, the rest truncates toward zero and
// saturates at the long range.
func javaLong(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case x >= math.MaxInt64:
		return float64(math.MaxInt64)
	case x <= math.MinInt64:
		return float64(math.MinInt64)
	}
	return float64(int64(x))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
