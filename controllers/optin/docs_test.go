package optin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The module root, from this package's directory (go test runs in it).
const moduleRoot = "../.."

// TestDocsListEveryAnnotation: every exported Annotation* constant of this
// package, found in its source (not in a hand-kept list), has a row in the
// Annotations table of docs/configuration.md, and every row there is one of
// them.
func TestDocsListEveryAnnotation(t *testing.T) {
	consts := annotationConstants(t)
	if len(consts) < 10 {
		t.Fatalf("found only %d Annotation* constants (%v): the source scan is broken", len(consts), consts)
	}
	rows := annotationTableRows(t, filepath.Join(moduleRoot, "docs/configuration.md"))

	var missing []string
	documented := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(consts)) {
		value := consts[name]
		documented[value] = true
		if !slices.Contains(rows, value) {
			missing = append(missing, name+" ("+value+")")
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md's Annotations table has no row for %d annotation constant(s) of controllers/optin; add one for each:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
	for _, r := range rows {
		if !documented[r] {
			t.Errorf("docs/configuration.md's Annotations table has a row for %s, which is no Annotation* constant of controllers/optin", r)
		}
	}
}

// annotationConstants parses the package's non-test Go files and returns
// its exported Annotation* constants by name, with their values (resolving
// references to other constants, of this package or of an imported package
// of this module).
func annotationConstants(t *testing.T) map[string]string {
	t.Helper()
	modulePath := readModulePath(t)
	pkgs := map[string]*constPackage{} // by directory
	load := func(dir string) *constPackage {
		if p, ok := pkgs[dir]; ok {
			return p
		}
		p := parseConstPackage(t, dir)
		pkgs[dir] = p
		return p
	}

	var resolve func(p *constPackage, file *ast.File, e ast.Expr, depth int) (string, bool)
	resolve = func(p *constPackage, file *ast.File, e ast.Expr, depth int) (string, bool) {
		if depth > 10 {
			return "", false
		}
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind != token.STRING {
				return "", false
			}
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		case *ast.ParenExpr:
			return resolve(p, file, e.X, depth+1)
		case *ast.BinaryExpr:
			if e.Op != token.ADD {
				return "", false
			}
			x, ok1 := resolve(p, file, e.X, depth+1)
			y, ok2 := resolve(p, file, e.Y, depth+1)
			return x + y, ok1 && ok2
		case *ast.Ident:
			c, ok := p.consts[e.Name]
			if !ok {
				return "", false
			}
			return resolve(p, c.file, c.value, depth+1)
		case *ast.SelectorExpr:
			pkgIdent, ok := e.X.(*ast.Ident)
			if !ok {
				return "", false
			}
			for _, imp := range file.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				name := filepath.Base(path)
				if imp.Name != nil {
					name = imp.Name.Name
				}
				if name != pkgIdent.Name {
					continue
				}
				rel, ok := strings.CutPrefix(path, modulePath+"/")
				if !ok {
					return "", false // outside the module
				}
				q := load(filepath.Join(moduleRoot, filepath.FromSlash(rel)))
				c, ok := q.consts[e.Sel.Name]
				if !ok {
					return "", false
				}
				return resolve(q, c.file, c.value, depth+1)
			}
		}
		return "", false
	}

	self := load(".")
	out := map[string]string{}
	for name, c := range self.consts {
		if !strings.HasPrefix(name, "Annotation") || !ast.IsExported(name) {
			continue
		}
		v, ok := resolve(self, c.file, c.value, 0)
		if !ok {
			t.Fatalf("%s: cannot work out the value of constant %s", self.fset.Position(c.value.Pos()), name)
		}
		out[name] = v
	}
	return out
}

type constDecl struct {
	file  *ast.File
	value ast.Expr
}

type constPackage struct {
	fset   *token.FileSet
	consts map[string]constDecl
}

// parseConstPackage parses the non-test .go files of dir and indexes their
// package-level constants that have an explicit value.
func parseConstPackage(t *testing.T, dir string) *constPackage {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	p := &constPackage{fset: token.NewFileSet(), consts: map[string]constDecl{}}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(p.fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						p.consts[n.Name] = constDecl{file: file, value: vs.Values[i]}
					}
				}
			}
		}
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return p
}

func readModulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	t.Fatal("no module line in go.mod")
	return ""
}

// annotationTableRows returns the first cells (backticks removed) of the
// table in the "## Annotations" section of the Markdown file.
func annotationTableRows(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	in, header := false, true
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			if in {
				break
			}
			in = strings.TrimSpace(strings.TrimLeft(l, "#")) == "Annotations"
			continue
		}
		if !in || !strings.HasPrefix(l, "|") {
			continue
		}
		cells := strings.Split(l, "|")
		first := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if header {
			header = false // the header row
			continue
		}
		if strings.Trim(first, "-: ") == "" {
			continue // the delimiter row
		}
		rows = append(rows, first)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table under a heading \"Annotations\"", path)
	}
	return rows
}
