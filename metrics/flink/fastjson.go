package flink

// aggregatedList is the answer of Flink's aggregated subtask metrics
// (GET …/subtasks/metrics?get=…&agg=…), the request a poll sends once per
// vertex: [{"id":"busyTimeMsPerSecond","min":0.0,"max":1.0,"avg":0.5,
// "sum":2.0}, …]. It decodes that shape itself (decodeFast): encoding/json
// first validates the whole answer, then decodes it by reflection, calling
// Float.UnmarshalJSON per value, and was 60 % of the REST client's CPU at
// 1,000 jobs (make bench-scale's profile). Anything else (an unknown field,
// an escape in a string, a non-ASCII byte, a value of another type, invalid
// JSON) makes decodeFast give up and encoding/json decide, so the result is
// always encoding/json's (FuzzAggregatedDecode checks it).
type aggregatedList []AggregatedMetric

// fastDecoder is an answer type with a decoder of its own for the common
// shape; false hands the answer to encoding/json.
type fastDecoder interface{ decodeFast(b []byte) bool }

func (l *aggregatedList) decodeFast(b []byte) bool {
	p := fastParser{b: b}
	out := aggregatedList{}
	p.ws()
	ok := p.list('[', ']', func() bool {
		m, ok := p.metric()
		out = append(out, m)
		return ok
	})
	p.ws()
	if !ok || p.i != len(b) {
		return false
	}
	*l = out
	return true
}

// decodeFast decodes a metric listing or metric values answer, the
// request a source's partition gauges take every poll:
// [{"id":"0.KafkaSourceReader…currentOffset","value":"1234"}, …], or
// without values. It gives up (encoding/json decides) on anything but
// that shape: a key other than id and value, a value other than a string
// or null, invalid JSON; a string with escapes or non-ASCII bytes is
// decoded by encoding/json (FuzzMetricListDecode).
func (l *metricList) decodeFast(b []byte) bool {
	p := fastParser{b: b}
	out := metricList{}
	p.ws()
	ok := p.list('[', ']', func() bool {
		var e metricEntry
		ok := p.list('{', '}', func() bool {
			key, ok := p.str()
			if !ok || !p.colon() {
				return false
			}
			switch string(key) {
			case "id":
				return p.strv(&e.ID)
			case "value":
				if p.literal("null") {
					e.Value = nil
					return true
				}
				var v string
				e.Value = &v
				return p.strv(&v)
			}
			return false
		})
		out = append(out, e)
		return ok
	})
	p.ws()
	if !ok || p.i != len(b) {
		return false
	}
	*l = out
	return true
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// metric parses one {"id":…, "min":…, …} object.
func (p *fastParser) metric() (AggregatedMetric, bool) {
	var m AggregatedMetric
	vals := new([5]Float) // the values share one allocation
	ok := p.list('{', '}', func() bool {
		key, ok := p.str()
		if !ok || !p.colon() {
			return false
		}
		var dst **Float
		var slot *Float
		switch string(key) {
		case "id":
			s, ok := p.str()
			m.ID = string(s)
			return ok
		case "min":
			dst, slot = &m.Min, &vals[0]
		case "max":
			dst, slot = &m.Max, &vals[1]
		case "avg":
			dst, slot = &m.Avg, &vals[2]
		case "sum":
			dst, slot = &m.Sum, &vals[3]
		case "skew":
			dst, slot = &m.Skew, &vals[4]
		default:
			return false
		}
		return p.value(dst, slot)
	})
	return m, ok
}

// str parses a string of printable ASCII without escapes (anything else:
// false); the bytes are the input's.
func (p *fastParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// value parses a metric value as Float.UnmarshalJSON reads it: null (dst
// unchanged), a JSON number, or a string holding one (or NaN, ±Infinity);
// the value is stored in slot, and *dst points to it.
func (p *fastParser) value(dst **Float, slot *Float) bool {
	if p.literal("null") {
		return true
	}
	var text []byte
	if p.i < len(p.b) && p.b[p.i] == '"' {
		s, ok := p.str()
		if !ok {
			return false
		}
		text = s
	} else {
		start := p.i
		if !p.number() {
			return false
		}
		text = p.b[start:p.i]
	}
	v, err := ParseMetricValue(string(text))
	if err != nil {
		return false
	}
	*slot = Float(v)
	*dst = slot
	return true
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') && !p.digits() {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits scans [0-9]* and reports whether there was at least one.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
