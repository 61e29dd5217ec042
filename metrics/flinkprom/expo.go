package flinkprom

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exposition is one target's text exposition, parsed family by family.
type exposition struct {
	families map[string]*dto.MetricFamily
	// skipped lists the families that did not parse, in input order; a
	// family named "" stands for sample lines without a metric name.
	skipped []skippedFamily
}

// skippedFamily is a metric family left out of an exposition, and why
// (both bounded: maxNameLen, maxReasonLen).
type skippedFamily struct {
	name, reason string
}

// Bounds of what a skipped family's report carries.
const (
	maxNameLen   = 120
	maxReasonLen = 160
)

// famLines is the lines of one metric family, gathered from anywhere in the
// exposition.
type famLines struct {
	name     string
	typ      string // the first TYPE line's type, "" if none
	typeLine int    // its line number (1-based)
	bad      string // a reason to skip the family before parsing it
	lines    []int  // sample lines (0-based indices into the exposition's lines)
}

// parseExposition parses text format 0.0.4 as Flink's reporter writes it
// (simpleclient 0.8.1 in Flink 1.x, a newer client in 2.x: a comma before
// '}', Java doubles such as "1.2345678E7", "NaN", "+Inf", "-Inf"), one
// metric family at a time, so that a malformed family costs only itself:
//
//   - lines are gathered by family wherever they are (a family whose lines
//     are interleaved with another's is whole again); "_sum", "_count" and
//     "_bucket" samples go to the summary or histogram their TYPE line
//     declares, as expfmt assigns them;
//   - HELP lines and other comments are not used (a malformed HELP text
//     costs nothing); a TYPE line is moved before its samples; a second
//     TYPE line that says another type makes the family malformed;
//   - each family is parsed on its own by expfmt's TextParser; one that
//     fails (or, for expfmt v0.66.1, panics: a nil pointer in
//     startLabelName on some input) is skipped with the parser's reason;
//   - a series (label set) given twice with the same value is kept once;
//     with two values the family is malformed (which one is current
//     cannot be told);
//   - sample lines without a metric name (a '{' or '"' first, or a
//     character after the name that is neither '{' nor a blank) are skipped
//     together, as the family "".
//
// Every family returned is one whose samples are in the input under its
// name. parseExposition fails only when nothing parses in a body that is
// not empty of samples (an HTML error page, a truncated first line): the
// target is then as good as unreadable.
func parseExposition(b []byte) (*exposition, error) {
	lines := bytes.Split(b, []byte{'\n'})
	fams := map[string]*famLines{}
	var order []*famLines
	get := func(name string) *famLines {
		f := fams[name]
		if f == nil {
			f = &famLines{name: name}
			fams[name] = f
			order = append(order, f)
		}
		return f
	}
	type sample struct {
		idx  int
		name string
	}
	var samples []sample
	nameless, firstNameless := 0, 0
	for i, raw := range lines {
		line := bytes.TrimRight(trimBlank(raw), "\r")
		if len(line) == 0 {
			continue
		}
		lines[i] = line
		if line[0] == '#' {
			name, typ, ok := typeLine(line)
			if !ok {
				continue // HELP or another comment
			}
			f := get(name)
			switch {
			case f.typ == "":
				f.typ, f.typeLine = typ, i+1
			case !strings.EqualFold(f.typ, typ) && f.bad == "":
				f.bad = fmt.Sprintf("line %d: TYPE %s after TYPE %s in line %d", i+1, typ, f.typ, f.typeLine)
			}
			continue
		}
		name := metricName(line)
		if name == "" {
			if nameless == 0 {
				firstNameless = i + 1
			}
			nameless++
			continue
		}
		samples = append(samples, sample{i, name})
	}
	// Now that every TYPE line is known, give each sample its family.
	for _, s := range samples {
		f := get(familyOf(s.name, fams))
		f.lines = append(f.lines, s.idx)
	}

	out := &exposition{families: map[string]*dto.MetricFamily{}}
	p := expfmt.NewTextParser(model.LegacyValidation)
	var chunk bytes.Buffer
	for _, f := range order {
		if len(f.lines) == 0 {
			continue // a TYPE line without samples
		}
		if f.bad != "" {
			out.skip(f.name, f.bad)
			continue
		}
		chunk.Reset()
		if f.typ != "" {
			fmt.Fprintf(&chunk, "# TYPE %s %s\n", f.name, f.typ)
		}
		sampleLine := make([]int, len(f.lines)) // line numbers, 1-based
		for k, i := range f.lines {
			chunk.Write(lines[i])
			chunk.WriteByte('\n')
			sampleLine[k] = i + 1
		}
		mf, err := parseFamily(&p, f, chunk.Bytes(), sampleLine)
		if err != nil {
			out.skip(f.name, err.Error())
			p = expfmt.NewTextParser(model.LegacyValidation) // after a panic its state is unknown
			continue
		}
		if mf != nil {
			out.families[f.name] = mf
		}
	}
	if nameless > 0 {
		out.skip("", fmt.Sprintf("%d sample line(s) without a metric name, first line %d", nameless, firstNameless))
	}
	if len(out.families) == 0 && len(out.skipped) > 0 {
		s := out.skipped[0]
		return nil, fmt.Errorf("parsing the exposition: no metric family parsed; %d skipped, first %s", len(out.skipped), s)
	}
	return out, nil
}

func (e *exposition) skip(name, reason string) {
	e.skipped = append(e.skipped, skippedFamily{name: truncate(name, maxNameLen), reason: truncate(reason, maxReasonLen)})
}

func (s skippedFamily) String() string {
	if s.name == "" {
		return s.reason
	}
	return s.name + ": " + s.reason
}

// parseFamily parses the chunk of one family f: its TYPE line, if it has
// one, then its sample lines, which are the exposition's lines sampleLine.
func parseFamily(p *expfmt.TextParser, f *famLines, chunk []byte, sampleLine []int) (mf *dto.MetricFamily, err error) {
	defer func() {
		if r := recover(); r != nil {
			mf, err = nil, fmt.Errorf("parser panic: %v", r)
		}
	}()
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(chunk))
	if err != nil {
		var pe expfmt.ParseError
		if errors.As(err, &pe) {
			line := pe.Line
			if f.typ != "" {
				line-- // the chunk's first line is the TYPE line
			}
			switch {
			case line == 0:
				return nil, fmt.Errorf("line %d: %s", f.typeLine, pe.Msg)
			case line >= 1 && line <= len(sampleLine):
				return nil, fmt.Errorf("line %d: %s", sampleLine[line-1], pe.Msg)
			}
		}
		return nil, err
	}
	for n := range mfs {
		if n != f.name {
			// Not expected (the lines were gathered by name); never
			// return a family the input does not hold under its name.
			return nil, fmt.Errorf("the parser read a family %q from its lines", truncate(n, maxNameLen))
		}
	}
	mf = mfs[f.name]
	if mf == nil {
		return nil, nil
	}
	switch mf.GetType() {
	case dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM:
		// expfmt folds their lines into one metric per label set.
		return mf, nil
	}
	if len(mf.GetMetric()) != len(sampleLine) {
		// expfmt reads one metric per sample line of the other types.
		return nil, fmt.Errorf("the parser read %d series from %d lines", len(mf.GetMetric()), len(sampleLine))
	}
	return dedupe(mf, sampleLine)
}

// dedupe keeps one of each series given more than once with the same
// value, and fails when a series has two values. line[i] is the line of
// metric i.
func dedupe(mf *dto.MetricFamily, line []int) (*dto.MetricFamily, error) {
	type first struct {
		line  int
		value float64
	}
	seen := make(map[string]first, len(mf.GetMetric()))
	kept := mf.Metric[:0:0]
	for i, m := range mf.GetMetric() {
		k := seriesKey(m)
		v, _ := valueOf(m)
		if f, ok := seen[k]; ok {
			if f.value == v || math.IsNaN(f.value) && math.IsNaN(v) {
				continue
			}
			return nil, fmt.Errorf("line %d: the series of line %d again with another value (%v, %v)", line[i], f.line, f.value, v)
		}
		seen[k] = first{line[i], v}
		kept = append(kept, m)
	}
	mf.Metric = kept
	return mf, nil
}

// seriesKey identifies a metric's label set, whatever the labels' order.
func seriesKey(m *dto.Metric) string {
	pairs := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		pairs = append(pairs, l.GetName()+"\x00"+l.GetValue())
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "\xff")
}

// typeLine reads "# TYPE <name> <type>"; ok is false for any other line
// (HELP, other comments, a TYPE line without a legacy name or a type).
func typeLine(line []byte) (name, typ string, ok bool) {
	rest := trimBlank(line[1:])
	kw, rest, found := cutBlank(rest)
	if !found || string(kw) != "TYPE" {
		return "", "", false
	}
	n, rest, found := cutBlank(trimBlank(rest))
	if !found || metricName(n) != string(n) || len(n) == 0 {
		return "", "", false
	}
	t := strings.TrimSpace(string(rest))
	if t == "" {
		return "", "", false
	}
	return string(n), t, true
}

// metricName is the legacy metric name a sample line starts with, or ""
// when the line does not start with one followed by '{', a blank or its
// end.
func metricName(line []byte) string {
	n := 0
	for n < len(line) {
		c := line[n]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || n > 0 && c >= '0' && c <= '9' {
			n++
			continue
		}
		break
	}
	if n == 0 || n < len(line) && line[n] != '{' && line[n] != ' ' && line[n] != '\t' {
		return ""
	}
	return string(line[:n])
}

// familyOf is the family a sample name belongs to: its own when it has a
// TYPE line or no summary/histogram claims it, else that summary's or
// histogram's (x_sum, x_count; x_bucket for a histogram).
func familyOf(name string, fams map[string]*famLines) string {
	if f := fams[name]; f != nil && f.typ != "" {
		return name
	}
	for _, suffix := range []string{"_sum", "_count", "_bucket"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || base == "" {
			continue
		}
		f := fams[base]
		if f == nil {
			continue
		}
		switch strings.ToLower(f.typ) {
		case "histogram":
			return base
		case "summary":
			if suffix != "_bucket" {
				return base
			}
		}
	}
	return name
}

func trimBlank(b []byte) []byte {
	return bytes.TrimLeft(b, " \t")
}

// cutBlank splits b at its first blank or tab.
func cutBlank(b []byte) (before, after []byte, found bool) {
	if i := bytes.IndexAny(b, " \t"); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
