package flink

import (
	"encoding/json"
	"strconv"
	"strings"
)

// JobDetails (GET /jobs/:jobid, once per poll) decodes itself too: with
// encoding/json it was the REST client's largest decoding cost at 1,000
// jobs (make bench-scale's profile, 2.75 s of the controller's 42 s): the
// answer carries the plan and every vertex's task counts, each vertex was
// validated twice (JobVertex.UnmarshalJSON) and the plan again
// (Plan.UnmarshalJSON). decodeFast reads the fields JobDetails has and
// skips the others; whatever it does not handle exactly as encoding/json
// would (null for a field, a key matching a field only case-insensitively,
// a field given twice, a number that is not an integer, the plan as a
// string, invalid JSON) makes it give up and encoding/json decide.
// FuzzJobDetailsDecode checks the results are the same.
func (d *JobDetails) decodeFast(b []byte) bool {
	p := fastParser{b: b}
	var out JobDetails
	p.ws()
	ok := p.fields(jobDetailsKeys, func(k string) bool {
		switch k {
		case "jid":
			return p.strv(&out.ID)
		case "name":
			return p.strv(&out.Name)
		case "state":
			return p.strv(&out.State)
		case "isStoppable":
			return p.boolv(&out.IsStoppable)
		case "job-type":
			return p.strv(&out.JobType)
		case "start-time":
			return p.int64v(&out.StartTime)
		case "end-time":
			return p.int64v(&out.EndTime)
		case "duration":
			return p.int64v(&out.Duration)
		case "maxParallelism":
			return p.int64v(&out.MaxParallelism)
		case "now":
			return p.int64v(&out.Now)
		case "timestamps":
			return p.timestamps(&out.Timestamps)
		case "vertices":
			return arrayOf(&p, &out.Vertices, p.vertex)
		case "plan":
			return p.plan(&out.Plan)
		}
		return false
	})
	p.ws()
	if !ok || p.i != len(b) {
		return false
	}
	*d = out
	return true
}

var (
	jobDetailsKeys = []string{"jid", "name", "state", "isStoppable", "job-type", "start-time", "end-time", "duration",
		"maxParallelism", "now", "timestamps", "vertices", "plan"}
	vertexKeys = []string{"id", "name", "parallelism", "maxParallelism", "slotSharingGroupId", "status",
		"start-time", "end-time", "duration", "metrics"}
	vertexMetricsKeys = []string{"read-records", "write-records"}
	planKeys          = []string{"jid", "name", "type", "nodes"}
	planNodeKeys      = []string{"id", "parallelism", "description", "inputs"}
	planInputKeys     = []string{"num", "id", "ship_strategy", "exchange"}
)

func (p *fastParser) vertex(v *JobVertex) bool {
	return p.fields(vertexKeys, func(k string) bool {
		switch k {
		case "id":
			return p.strv(&v.ID)
		case "name":
			return p.strv(&v.Name)
		case "parallelism":
			return p.intv(&v.Parallelism)
		case "maxParallelism":
			return p.intv(&v.MaxParallelism)
		case "slotSharingGroupId":
			v.SlotSharingGroupReported = true
			return p.strv(&v.SlotSharingGroupID)
		case "status":
			return p.strv(&v.Status)
		case "start-time":
			return p.int64v(&v.StartTime)
		case "end-time":
			return p.int64v(&v.EndTime)
		case "duration":
			return p.int64v(&v.Duration)
		case "metrics":
			return p.fields(vertexMetricsKeys, func(k string) bool {
				if k == "read-records" {
					return p.int64v(&v.Metrics.ReadRecords)
				}
				return p.int64v(&v.Metrics.WriteRecords)
			})
		}
		return false
	})
}

func (p *fastParser) plan(pl *Plan) bool {
	return p.fields(planKeys, func(k string) bool {
		switch k {
		case "jid":
			return p.strv(&pl.ID)
		case "name":
			return p.strv(&pl.Name)
		case "type":
			return p.strv(&pl.Type)
		case "nodes":
			return arrayOf(p, &pl.Nodes, p.planNode)
		}
		return false
	})
}

func (p *fastParser) planNode(n *PlanNode) bool {
	return p.fields(planNodeKeys, func(k string) bool {
		switch k {
		case "id":
			return p.strv(&n.ID)
		case "parallelism":
			return p.intv(&n.Parallelism)
		case "description":
			return p.strv(&n.Description)
		case "inputs":
			return arrayOf(p, &n.Inputs, p.planInput)
		}
		return false
	})
}

func (p *fastParser) planInput(in *PlanInput) bool {
	return p.fields(planInputKeys, func(k string) bool {
		switch k {
		case "num":
			return p.intv(&in.Num)
		case "id":
			return p.strv(&in.ID)
		case "ship_strategy":
			return p.strv(&in.ShipStrategy)
		case "exchange":
			return p.strv(&in.Exchange)
		}
		return false
	})
}

// timestamps parses an object of integers into a new map (encoding/json
// allocates one too; a key given twice keeps its last value, as there).
func (p *fastParser) timestamps(dst *map[string]int64) bool {
	m := map[string]int64{}
	ok := p.list('{', '}', func() bool {
		var k string
		var v int64
		if !p.strv(&k) || !p.colon() || !p.int64v(&v) {
			return false
		}
		m[k] = v
		return true
	})
	if ok {
		*dst = m
	}
	return ok
}

// fields parses an object whose known keys field decodes (each at most
// once); other keys' values are skipped, unless a key equals a known one
// but for case (encoding/json would decode it into that field).
func (p *fastParser) fields(known []string, field func(k string) bool) bool {
	var seen uint64 // bit i: known[i] was decoded
	return p.list('{', '}', func() bool {
		key, ok := p.str()
		if !ok || !p.colon() {
			return false
		}
		i := indexOf(known, key)
		switch {
		case i >= 0:
			if seen&(1<<i) != 0 || p.null() {
				return false
			}
			seen |= 1 << i
			return field(known[i])
		case foldsTo(known, key):
			return false
		default:
			return p.skip(0)
		}
	})
}

func indexOf(known []string, key []byte) int {
	for i, k := range known {
		if k == string(key) {
			return i
		}
	}
	return -1
}

func foldsTo(known []string, key []byte) bool {
	for _, k := range known {
		if strings.EqualFold(k, string(key)) {
			return true
		}
	}
	return false
}

// null reports whether a null literal is next (without consuming it).
func (p *fastParser) null() bool {
	return p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null"
}

// arrayOf parses [elem, …] into *dst, each element by elem; [] is an
// empty slice, not nil, as encoding/json makes it.
func arrayOf[T any](p *fastParser, dst *[]T, elem func(*T) bool) bool {
	*dst = []T{}
	return p.list('[', ']', func() bool {
		var x T
		if p.null() || !elem(&x) {
			return false
		}
		*dst = append(*dst, x)
		return true
	})
}

// list parses open item (, item)* close, or open close, whitespace
// allowed between (a JSON array or object); item parses one element or
// member.
func (p *fastParser) list(open, close byte, item func() bool) bool {
	if !p.eat(open) {
		return false
	}
	p.ws()
	if p.eat(close) {
		return true
	}
	for {
		p.ws()
		if !item() {
			return false
		}
		p.ws()
		if !p.eat(',') {
			return p.eat(close)
		}
	}
}

// colon parses the ':' between a member's key and value.
func (p *fastParser) colon() bool {
	p.ws()
	ok := p.eat(':')
	p.ws()
	return ok
}

// strv parses a string into *dst: plain ASCII as it is, anything with an
// escape or a non-ASCII byte as encoding/json decodes it.
func (p *fastParser) strv(dst *string) bool {
	start := p.i
	if s, ok := p.str(); ok {
		*dst = string(s)
		return true
	}
	p.i = start
	if !p.skipString() {
		return false
	}
	return json.Unmarshal(p.b[start:p.i], dst) == nil
}

func (p *fastParser) boolv(dst *bool) bool {
	switch {
	case p.literal("true"):
		*dst = true
	case p.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// int64v parses an integer: a JSON number without fraction or exponent
// that fits (encoding/json refuses the others for an integer field).
func (p *fastParser) int64v(dst *int64) bool {
	start := p.i
	if !p.number() {
		return false
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func (p *fastParser) intv(dst *int) bool {
	var n int64
	if !p.int64v(&n) || int64(int(n)) != n {
		return false
	}
	*dst = int(n)
	return true
}

// maxSkipDepth bounds the nesting skip follows (encoding/json's is 10000).
const maxSkipDepth = 100

// skip parses and skips one JSON value, checking it is valid.
func (p *fastParser) skip(depth int) bool {
	if p.i >= len(p.b) || depth > maxSkipDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '{':
		return p.list('{', '}', func() bool { return p.skipString() && p.colon() && p.skip(depth+1) })
	case c == '[':
		return p.list('[', ']', func() bool { return p.skip(depth + 1) })
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		return p.number()
	}
}

func (p *fastParser) literal(s string) bool {
	if p.i+len(s) <= len(p.b) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// skipString skips a valid JSON string: no control character, only JSON's
// escapes (any other byte, UTF-8 or not, encoding/json accepts).
func (p *fastParser) skipString() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if p.i+5 > len(p.b) {
					return false
				}
				for _, h := range p.b[p.i+1 : p.i+5] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 5
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
