package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flagMethods are the flag.FlagSet methods that define a flag, with the
// index of the argument that names it.
var flagMethods = map[string]int{
	"String": 0, "Bool": 0, "Int": 0, "Float64": 0, "Duration": 0, "Var": 1, "Func": 0,
	"StringVar": 1, "BoolVar": 1, "IntVar": 1, "Float64Var": 1, "DurationVar": 1,
}

// commandFlags lists the flags the command line defines, read from its
// source: every call of a defining method on a *flag.FlagSet named fl or
// fs, per file.
func commandFlags(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			recv, ok := sel.X.(*ast.Ident)
			i, known := flagMethods[sel.Sel.Name]
			if !ok || !known || (recv.Name != "fl" && recv.Name != "fs") || len(call.Args) <= i {
				return true
			}
			if lit, ok := call.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[path] = append(out[path], name)
			}
			return true
		})
	}
	return out
}

// docs/cli.md documents every flag of every command: each appears there
// as `--name` (or `-n` for one letter), in a table or an example.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	require.NoError(t, err)
	flags := commandFlags(t)
	total := 0
	for file, names := range flags {
		for _, name := range names {
			total++
			want := "`--" + name
			if len(name) == 1 {
				want = "`-" + name
			}
			assert.Contains(t, string(doc), want, "%s defines -%s", file, name)
		}
	}
	// The parse found the flag sets (a rename of fl/fs would hide them).
	assert.Greater(t, total, 50)
	for _, file := range []string{"recommend.go", "status.go", "controller.go", "bench.go", "benchscale.go", "sim.go", "render.go", "main.go"} {
		assert.NotEmpty(t, flags[file], file)
	}
}
