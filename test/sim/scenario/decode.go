package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Parse decodes a scenario from YAML (or JSON), applies the defaults and
// validates it. Decoding is strict: duplicate keys, unknown fields (names
// are case-sensitive), values of the wrong type, and durations not written
// as Go duration strings ("90s", "1h30m") are errors naming the field. All
// decoding problems, or else all validation problems, come back together.
func Parse(data []byte) (*Scenario, error) { return parse(data, "") }

// parse is Parse with a name for a scenario that has none.
func parse(data []byte, name string) (*Scenario, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("reading YAML: %w", err)
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("reading YAML: %w", err)
	}
	if raw == nil {
		return nil, errors.New("empty scenario")
	}
	if m, ok := raw.(map[string]any); ok && name != "" && m["name"] == nil {
		m["name"] = name
	}
	var errs []error
	raw = fromWire(raw, reflect.TypeFor[Scenario](), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	j, err = json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var s Scenario
	dec = json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	s.Default()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Load reads a scenario file. The name defaults to the file's base name
// without its extension.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s, err := parse(data, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.File = path
	return s, nil
}

// All loads every *.yaml file in dir, sorted by file name. It reports every
// file's problems together, and two scenarios with one name.
func All(dir string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*Scenario
	var errs []error
	seen := map[string]string{}
	for _, p := range paths {
		s, err := Load(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := seen[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name %q is also the name of %s", p, s.Name, other))
		}
		seen[s.Name] = p
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Marshal writes the scenario as YAML that Parse reads back to an equal
// scenario, durations as Go duration strings.
func (s *Scenario) Marshal() ([]byte, error) {
	j, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	raw = toWire(raw, reflect.TypeFor[Scenario]())
	j, err = json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

var durationType = reflect.TypeFor[time.Duration]()

// jsonFields maps a struct type's JSON names to its fields' types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// fromWire checks a decoded YAML value against the Go type it will fill,
// collecting an error per unknown field or mistyped value, and turns
// duration strings into nanoseconds.
func fromWire(v any, t reflect.Type, path string, errs *[]error) any {
	bad := func(format string, a ...any) {
		p := path
		if p == "" {
			p = "(top)"
		}
		*errs = append(*errs, fmt.Errorf("%s: %s", p, fmt.Sprintf(format, a...)))
	}
	if v == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			bad("a duration must be a string such as \"90s\" or \"1h30m\", not %s", describe(v))
			return v
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			bad("%q is not a duration such as \"90s\" or \"1h30m\"", s)
			return v
		}
		return json.Number(strconv.FormatInt(int64(d), 10))
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("want a mapping, not %s", describe(v))
			return v
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				if hint := closest(k, fields); hint != "" {
					bad("unknown field %q (did you mean %q?)", k, hint)
				} else {
					bad("unknown field %q", k)
				}
				continue
			}
			m[k] = fromWire(m[k], ft, join(path, k), errs)
		}
		return m
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			bad("want a list, not %s", describe(v))
			return v
		}
		for i := range a {
			a[i] = fromWire(a[i], t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		return a
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("want a mapping, not %s", describe(v))
			return v
		}
		for _, k := range sortedKeys(m) {
			m[k] = fromWire(m[k], t.Elem(), join(path, k), errs)
		}
		return m
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("want a string, not %s (quote it)", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("want true or false, not %s", describe(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			bad("want a whole number, not %s", describe(v))
		} else if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			bad("want a whole number that fits %d bits, not %s", t.Bits(), n)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			bad("want a number, not %s", describe(v))
		} else if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			bad("%s is out of range", n)
		}
	}
	return v
}

// toWire turns the nanoseconds of every time.Duration into a duration
// string.
func toWire(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return formatDuration(time.Duration(i))
			}
		}
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			fields := jsonFields(t)
			for k := range m {
				if ft, ok := fields[k]; ok {
					m[k] = toWire(m[k], ft)
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if a, ok := v.([]any); ok {
			for i := range a {
				a[i] = toWire(a[i], t.Elem())
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k := range m {
				m[k] = toWire(m[k], t.Elem())
			}
		}
	}
	return v
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a decoded YAML value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return fmt.Sprintf("%t", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%v", v)
}

// closest suggests the known field a misspelled one probably meant: the same
// name in another case, or one within two edits.
func closest(name string, fields map[string]reflect.Type) string {
	best, bestD, bestP := "", 3, 0
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	lower := strings.ToLower(name)
	for _, f := range names {
		if strings.EqualFold(f, name) {
			return f
		}
		// The closest, then the longest common prefix ("rat": "rate",
		// not "at").
		d, p := editDistance(lower, strings.ToLower(f)), commonPrefix(lower, strings.ToLower(f))
		if d < bestD || d == bestD && p > bestP {
			best, bestD, bestP = f, d, p
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// formatDuration is d.String() without the zero units at its end: "2h",
// "10m", "1h30m", "90ms".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
