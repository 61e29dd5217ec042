package flinkprom

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// series of the exposition tests: short label sets in Flink's style
// (trailing comma).
const (
	sub0 = `{job_id="j",task_id="t",subtask_index="0",}`
	sub1 = `{job_id="j",task_id="t",subtask_index="1",}`
)

func gauge(name string, lines ...string) string {
	var b strings.Builder
	b.WriteString("# HELP " + name + " " + name + " (scope: x)\n# TYPE " + name + " gauge\n")
	for _, l := range lines {
		b.WriteString(name + l + "\n")
	}
	return b.String()
}

func TestParseExpositionFamilyByFamily(t *testing.T) {
	type skip struct{ name, reason string }
	for _, tc := range []struct {
		name string
		text string
		// want: family → its values in input order (NaN compares as NaN).
		want map[string][]float64
		skip []skip // reason: a substring
	}{
		{
			name: "Flink's quirks: trailing comma, Java doubles, NaN and infinities, CRLF",
			text: strings.ReplaceAll(gauge("a", sub0+" 1.2345678E7", sub1+" 1.0E-4")+gauge("b", sub0+" NaN", sub1+" +Inf")+gauge("c", sub0+" -Inf"), "\n", "\r\n"),
			want: map[string][]float64{"a": {12345678, 0.0001}, "b": {math.NaN(), math.Inf(1)}, "c": {math.Inf(-1)}},
		},
		{
			name: "a bad value costs its family only (line 7: b's second sample)",
			text: gauge("a", sub0+" 1.0") + gauge("b", sub0+" 2.0", sub1+" 2,5") + gauge("c", sub0+" 3.0"),
			want: map[string][]float64{"a": {1}, "c": {3}},
			skip: []skip{{"b", `line 7: expected float as value, got "2,5"`}},
		},
		{
			name: "a truncated last line (no value) costs its family only",
			text: gauge("a", sub0+" 1.0") + "b" + sub0,
			want: map[string][]float64{"a": {1}},
			skip: []skip{{"b", "line 4:"}},
		},
		{
			name: "interleaved families are whole again",
			text: "# TYPE a gauge\n# TYPE b gauge\na" + sub0 + " 1\nb" + sub0 + " 10\na" + sub1 + " 2\nb" + sub1 + " 20\n",
			want: map[string][]float64{"a": {1, 2}, "b": {10, 20}},
		},
		{
			name: "a TYPE line after the samples is moved before them; the same TYPE twice is one",
			text: "a" + sub0 + " 1\n# TYPE a gauge\n# TYPE a gauge\na" + sub1 + " 2\n",
			want: map[string][]float64{"a": {1, 2}},
		},
		{
			name: "two TYPE lines that disagree make the family malformed",
			text: "# TYPE a gauge\na" + sub0 + " 1\n# TYPE a counter\n" + gauge("b", sub0+" 5"),
			want: map[string][]float64{"b": {5}},
			skip: []skip{{"a", "line 3: TYPE counter after TYPE gauge in line 1"}},
		},
		{
			name: "an unknown TYPE makes the family malformed",
			text: "# TYPE a stateset\na" + sub0 + " 1\n" + gauge("b", sub0+" 5"),
			want: map[string][]float64{"b": {5}},
			skip: []skip{{"a", `line 1: unknown metric type "stateset"`}},
		},
		{
			name: "a malformed HELP line costs nothing (HELP is not read)",
			text: "# HELP a bad \\escape\n# TYPE a gauge\na" + sub0 + " 1\n",
			want: map[string][]float64{"a": {1}},
		},
		{
			name: "a series twice with the same value is kept once",
			text: gauge("a", sub0+" 1.0", sub1+" 2.0", sub0+" 1.0"),
			want: map[string][]float64{"a": {1, 2}},
		},
		{
			name: "a series twice with two values: which is current cannot be told",
			text: gauge("a", sub0+" 1.0", sub1+" 2.0", `{subtask_index="0",task_id="t",job_id="j"} 7.0`) + gauge("b", sub0+" 5"),
			want: map[string][]float64{"b": {5}},
			skip: []skip{{"a", "line 5: the series of line 3 again with another value (1, 7)"}},
		},
		{
			name: "sample lines without a metric name are skipped together",
			text: gauge("a", sub0+" 1") + "{job_id=\"j\"} 3\n\"quoted\"{} 4\nbad-name 5\n",
			want: map[string][]float64{"a": {1}},
			skip: []skip{{"", "3 sample line(s) without a metric name, first line 4"}},
		},
		{
			name: "a label value that is not UTF-8 costs its family only",
			text: gauge("a", `{l="`+"\xff"+`",} 1`) + gauge("b", sub0+" 2"),
			want: map[string][]float64{"b": {2}},
			skip: []skip{{"a", "line 3: invalid label value"}},
		},
		{
			name: "a summary's _sum and _count lines, interleaved, are one family; an undeclared x_count is its own",
			text: "# TYPE s summary\ns{quantile=\"0.5\",} 1\ng_count 9\ns_count 2\n" + gauge("a", sub0+" 1") + "s_sum 3\n",
			want: map[string][]float64{"a": {1}, "g_count": {9}, "s": nil},
		},
		{
			name: "no sample at all is no error",
			text: "# HELP a nothing\n# TYPE a gauge\n\n",
			want: map[string][]float64{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseExposition([]byte(tc.text))
			require.NoError(t, err)
			var names []string
			for n := range e.families {
				names = append(names, n)
			}
			var wantNames []string
			for n := range tc.want {
				wantNames = append(wantNames, n)
			}
			sort.Strings(names)
			sort.Strings(wantNames)
			assert.Equal(t, wantNames, names)
			for n, want := range tc.want {
				mf := e.families[n]
				require.NotNil(t, mf, n)
				if want == nil {
					continue // a summary: not read by value
				}
				require.Len(t, mf.GetMetric(), len(want), n)
				for i, m := range mf.GetMetric() {
					got, ok := valueOf(m)
					require.True(t, ok)
					if math.IsNaN(want[i]) {
						assert.True(t, math.IsNaN(got), "%s[%d]", n, i)
					} else {
						assert.Equal(t, want[i], got, "%s[%d]", n, i)
					}
				}
			}
			require.Len(t, e.skipped, len(tc.skip), "%v", e.skipped)
			for i, s := range tc.skip {
				assert.Equal(t, s.name, e.skipped[i].name)
				assert.Contains(t, e.skipped[i].reason, s.reason)
			}
		})
	}
}

func TestParseExpositionFailsWhenNothingParses(t *testing.T) {
	for _, text := range []string{
		"<html><body>502 Bad Gateway</body></html>\n",
		gauge("a", sub0+" x"),
	} {
		_, err := parseExposition([]byte(text))
		assert.ErrorContains(t, err, "no metric family parsed; 1 skipped, first ")
	}
}

func TestSkippedReportsAreBounded(t *testing.T) {
	long := strings.Repeat("x", 500)
	e, err := parseExposition([]byte(gauge("a", sub0+" 1") + gauge(long, sub0+" "+long)))
	require.NoError(t, err)
	require.Len(t, e.skipped, 1)
	assert.Len(t, e.skipped[0].name, maxNameLen, "cut to %d bytes with a mark", maxNameLen)
	assert.True(t, strings.HasSuffix(e.skipped[0].name, "…"))
	assert.LessOrEqual(t, len(e.skipped[0].reason), maxReasonLen)
	assert.Equal(t, "ab…", truncate("abcdef", 5), "5 bytes: 2 + the 3-byte mark")
	assert.Equal(t, "a…", truncate("aé"+"xyz", 5), "not inside é")
}

// FuzzParseExposition: the parser never panics; every family it returns
// has samples in the input under its name (a sample line starting with the
// name, or for a summary or histogram with its _sum, _count or _bucket); a
// family is either returned or skipped; the reports are bounded; and a
// well-formed family survives whatever else the body holds.
func FuzzParseExposition(f *testing.F) {
	f.Add(gauge("a", sub0+" 1.2345678E7", sub1+" NaN"))
	f.Add(gauge("a", sub0+" 1", sub0+" 2") + "# TYPE a counter\n")
	f.Add("# TYPE s summary\ns{quantile=\"0.5\",} 1\ns_count 2\ns_sum 3\n# TYPE h histogram\nh_bucket{le=\"+Inf\",} 1\nh_count 1\n")
	f.Add("#0000000000000000\n{}")
	f.Add("a{b=\"c\",} 1 123\nx\"y\"{} 1\n:{a=\"\\n\"} -Inf\n")
	f.Add("a{\"b\"=\"c\"} 1\n{\"a\",b=\"c\"} 2\n")
	const keep = "flink_fuzz_sentinel_family"
	f.Fuzz(func(t *testing.T, text string) {
		e, err := parseExposition([]byte(text))
		if err == nil {
			checkExposition(t, text, e)
		}
		if strings.Contains(text, keep) {
			return
		}
		body := gauge(keep, sub0+" 42.0") + text
		e, err = parseExposition([]byte(body))
		require.NoError(t, err, "a family parses")
		checkExposition(t, body, e)
		mf := e.families[keep]
		require.NotNil(t, mf, "the well-formed family survives")
		require.Len(t, mf.GetMetric(), 1)
		v, _ := valueOf(mf.GetMetric()[0])
		assert.Equal(t, 42.0, v)
	})
}

func checkExposition(t *testing.T, text string, e *exposition) {
	t.Helper()
	lines := strings.Split(text, "\n")
	hasSamples := func(name string) bool {
		for _, l := range lines {
			l = strings.TrimLeft(l, " \t")
			if rest, ok := strings.CutPrefix(l, name); ok && (rest == "" || strings.ContainsAny(rest[:1], "{ \t\r")) {
				return true
			}
		}
		return false
	}
	for name, mf := range e.families {
		assert.Equal(t, name, mf.GetName())
		assert.NotEmpty(t, mf.GetMetric(), name)
		ok := hasSamples(name)
		for _, suffix := range []string{"_sum", "_count", "_bucket"} {
			ok = ok || hasSamples(name+suffix)
		}
		assert.True(t, ok, "family %q has no sample line in the input", name)
	}
	for _, s := range e.skipped {
		assert.Nil(t, e.families[s.name], "%q both returned and skipped", s.name)
		assert.LessOrEqual(t, len(s.name), maxNameLen)
		assert.LessOrEqual(t, len(s.reason), maxReasonLen)
	}
}
