package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The module root, from this package's directory (go test runs in it).
const root = "../.."

func readCRD(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, defaultCRD))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func generated(t *testing.T) string {
	t.Helper()
	out, err := generate(readCRD(t), defaultCRD)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestReferenceUpToDate: the committed docs/reference.md is what the
// generator writes from the committed CRD.
func TestReferenceUpToDate(t *testing.T) {
	want := generated(t)
	got, err := os.ReadFile(filepath.Join(root, defaultOut))
	if err != nil {
		t.Fatalf("%v: run make generate (or go run ./hack/apidocs) and commit %s", err, defaultOut)
	}
	if string(got) == want {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s is stale: run make generate (or go run ./hack/apidocs) and commit it\nfirst difference, line %d:\n  committed: %q\n  generated: %q", defaultOut, i+1, g, w)
		}
	}
	t.Fatalf("%s is stale: run make generate (or go run ./hack/apidocs) and commit it", defaultOut)
}

// specLeaves walks the CRD's spec schema as plain YAML, independently of
// the generator: the paths of the fields with no fields of their own.
func specLeaves(t *testing.T) []string {
	t.Helper()
	var crd map[string]any
	if err := yaml.Unmarshal(readCRD(t), &crd); err != nil {
		t.Fatal(err)
	}
	get := func(m any, keys ...any) any {
		for _, k := range keys {
			switch k := k.(type) {
			case string:
				mm, _ := m.(map[string]any)
				m = mm[k]
			case int:
				l, _ := m.([]any)
				if k >= len(l) {
					return nil
				}
				m = l[k]
			}
		}
		return m
	}
	spec := get(crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec")
	if spec == nil {
		t.Fatal("no spec schema in the CRD")
	}
	var leaves []string
	var walk func(path string, s any)
	walk = func(path string, s any) {
		if get(s, "type") == "array" {
			path += "[]"
			s = get(s, "items")
		}
		props, _ := get(s, "properties").(map[string]any)
		if len(props) == 0 {
			leaves = append(leaves, path)
			return
		}
		for name, p := range props {
			walk(path+"."+name, p)
		}
	}
	walk("spec", spec)
	slices.Sort(leaves)
	return leaves
}

// TestReferenceListsEverySpecLeaf: every leaf field of the spec has a row.
func TestReferenceListsEverySpecLeaf(t *testing.T) {
	out := generated(t)
	leaves := specLeaves(t)
	if len(leaves) < 30 {
		t.Fatalf("only %d leaves found in the spec schema: the walk is broken", len(leaves))
	}
	t.Logf("%d leaf fields in the spec", len(leaves))
	for _, l := range leaves {
		if !strings.Contains(out, "\n| `"+l+"` |") {
			t.Errorf("no row for %s", l)
		}
	}
	for _, l := range []string{"spec.triggers.kafka[].bootstrapServers[]", "spec.utilization.target", "spec.excludedPeriods[].schedule"} {
		if !slices.Contains(leaves, l) {
			t.Errorf("the walk missed %s: %v", l, leaves)
		}
	}
}

// TestReferenceTablesWellFormed: every row of a table has as many cells as
// its header (no pipe or newline in a description breaks a table), and the
// table of contents links to headings that exist.
func TestReferenceTablesWellFormed(t *testing.T) {
	out := generated(t)
	if !strings.HasSuffix(out, "|\n") || strings.HasSuffix(out, "\n\n") {
		t.Errorf("the output should end with one newline after the last row")
	}
	cells := func(line string) int {
		n := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '|':
				n++
			}
		}
		return n
	}
	header := 0
	var anchors []string
	for i, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "|"):
			if header == 0 {
				header = cells(line)
			} else if c := cells(line); c != header {
				t.Errorf("line %d has %d cell separators, its table's header %d: %s", i+1, c, header, line)
			}
		default:
			header = 0
		}
		if strings.HasPrefix(line, "#") {
			anchors = append(anchors, anchor(strings.TrimLeft(line, "# ")))
		}
	}
	links := 0
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, "](#")
		if !ok {
			continue
		}
		links++
		a, _, _ := strings.Cut(rest, ")")
		if !slices.Contains(anchors, a) {
			t.Errorf("link to #%s, no such heading", a)
		}
	}
	if links < 10 {
		t.Errorf("only %d links to sections", links)
	}
	for _, want := range []string{
		"make generate", "go run ./hack/apidocs", "[configuration.md](configuration.md)",
		"## Printer columns", "| Ready | `.status.conditions[?(@.type==\"Ready\")].status` |",
		"| short names | `fsp` |",
		"### spec.targetRef", "### spec.utilization", "### spec.behavior", "### spec.triggers", "## status",
		"**Validation:** `self.kind in ['FlinkDeployment', 'FlinkSessionJob', 'Deployment']` — targetRef.kind must be FlinkDeployment, FlinkSessionJob or Deployment",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func schema(t *testing.T, j string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	var s apiextensionsv1.JSONSchemaProps
	if err := yaml.UnmarshalStrict([]byte(j), &s); err != nil {
		t.Fatalf("%s: %v", j, err)
	}
	return s
}

func TestFormatType(t *testing.T) {
	for _, c := range []struct{ name, schema, want string }{
		{"plain string", `type: string`, "string"},
		{"int32 with bounds", `{type: integer, format: int32, minimum: 1, maximum: 65535}`,
			"integer (int32)<br>minimum: 1<br>maximum: 65535"},
		{"exclusive bound", `{type: number, minimum: 0, exclusiveMinimum: true, maximum: 1}`,
			"number<br>minimum: 0 (exclusive)<br>maximum: 1"},
		{"enum", `{type: string, enum: [Apply, DryRun, Paused]}`,
			"string<br>one of: `Apply`, `DryRun`, `Paused`"},
		{"enum that YAML would read as booleans", `{type: string, enum: ["True", "False"]}`,
			"string<br>one of: `True`, `False`"},
		{"lengths and pattern with pipes", `{type: string, minLength: 1, maxLength: 63, pattern: "^(a|b)$"}`,
			"string<br>minLength: 1<br>maxLength: 63<br>pattern: `^(a\\|b)$`"},
		{"pattern with a backtick", "{type: string, pattern: \"^`x\"}",
			"string<br>pattern: ``^`x``"},
		{"pattern starting with a backtick", "{type: string, pattern: \"`x\"}",
			"string<br>pattern: `` `x ``"},
		{"date-time", `{type: string, format: date-time}`, "string (date-time)"},
		{"array of strings with item constraints", `{type: array, minItems: 1, maxItems: 32, x-kubernetes-list-type: atomic, items: {type: string, maxLength: 255}}`,
			"[]string<br>minItems: 1<br>maxItems: 32<br>list type: atomic<br>items: maxLength: 255"},
		{"array of objects", `{type: array, x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [type], items: {type: object, properties: {type: {type: string}}}}`,
			"[]object<br>list type: map (keys: `type`)"},
		{"map", `{type: object, additionalProperties: {type: integer, format: int32, minimum: 0}}`,
			"map[string]integer (int32)<br>values: minimum: 0"},
		{"int or string", `{anyOf: [{type: integer}, {type: string}], x-kubernetes-int-or-string: true}`,
			"integer or string"},
		{"anyOf without the extension", `{anyOf: [{type: integer}, {type: string}]}`,
			"integer or string"},
		{"object", `{type: object, properties: {a: {type: string}}}`, "object"},
		{"untyped", `{x-kubernetes-preserve-unknown-fields: true}`, "any<br>unknown fields kept"},
		{"fractional bound", `{type: number, minimum: 0.5, multipleOf: 0.25}`,
			"number<br>minimum: 0.5<br>multipleOf: 0.25"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := formatType(schema(t, c.schema)); got != c.want {
				t.Errorf("formatType(%s)\n got %q\nwant %q", c.schema, got, c.want)
			}
		})
	}
}

func TestFormatDefault(t *testing.T) {
	for _, c := range []struct{ schema, want string }{
		{`{type: string}`, ""},
		{`{type: string, default: 30m}`, "`30m`"},
		{`{type: string, default: ""}`, "`\"\"`"},
		{`{type: number, default: 0.85}`, "`0.85`"},
		{`{type: boolean, default: false}`, "`false`"},
		{`{type: object, default: {}}`, "`{}`"},
		{`{type: object, default: {a: 1}}`, "`{\"a\":1}`"},
		{`{type: string, default: "a|b"}`, "`a\\|b`"},
	} {
		if got := formatDefault(schema(t, c.schema).Default); got != c.want {
			t.Errorf("formatDefault(%s) = %q, want %q", c.schema, got, c.want)
		}
	}
}

func TestFormatDescription(t *testing.T) {
	for _, c := range []struct{ name, schema, want string }{
		{"lines folded", "description: |-\n  one\n  two  three\n", "one two three"},
		{"pipes, HTML and emphasis escaped", `description: "a|b <name>-rest *x* in [0,1)"`,
			`a\|b &lt;name&gt;-rest \*x\* in \[0,1)`},
		{"code spans kept", "description: 'use `a|b` or `<x>`'", "use `a\\|b` or `<x>`"},
		{"validation rules", `{description: d., x-kubernetes-validations: [{rule: "self >= 1.0 || self == 0.0", message: must be at least 1}]}`,
			"d.<br>**Validation:** `self >= 1.0 \\|\\| self == 0.0` — must be at least 1"},
		{"rule without message", `{x-kubernetes-validations: [{rule: "self > 0", messageExpression: "'bad: ' + string(self)"}]}`,
			"**Validation:** `self > 0` — message: `'bad: ' + string(self)`"},
		{"array items", `{type: array, description: the list., items: {type: object, description: One item., properties: {a: {type: string}}, x-kubernetes-validations: [{rule: has(self.a), message: needs a}]}}`,
			"the list. Each item: One item.<br>**Validation** (each item): `has(self.a)` — needs a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := formatDescription(schema(t, c.schema)); got != c.want {
				t.Errorf("formatDescription(%s)\n got %q\nwant %q", c.schema, got, c.want)
			}
		})
	}
}

func TestApidocsColumnPath(t *testing.T) {
	for _, c := range []struct{ in, path, filter string }{
		{".spec.mode", "spec.mode", ""},
		{`.status.conditions[?(@.type=="Ready")].status`, "status.conditions[].status", "the `status.conditions[]` item where `type` is `Ready`"},
		{".status.vertices[0].current", "status.vertices[].current", ""},
	} {
		path, filters := columnPath(c.in)
		if path != c.path || strings.Join(filters, ";") != c.filter {
			t.Errorf("columnPath(%s) = %q, %q; want %q, %q", c.in, path, filters, c.path, c.filter)
		}
	}
}

func TestApidocsRejectsNonCRD(t *testing.T) {
	if _, err := generate([]byte("kind: ConfigMap\n"), "x.yaml"); err == nil {
		t.Error("generate accepted a ConfigMap")
	}
}
