package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// architectureDoc is docs/architecture.md, relative to the repository root.
const architectureDoc = "docs/architecture.md"

// archDocRoot walks up from the working directory to the directory holding
// go.mod: the repository root.
func archDocRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// archDocModule is the module path named by go.mod's module directive.
func archDocModule(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	t.Fatal("go.mod has no module directive")
	return ""
}

// goCommand is the go command on the PATH (go test runs with the
// toolchain's bin directory first on it).
func goCommand() string { return "go" }

// Every package of the module appears in docs/architecture.md as its path
// relative to the module, in backquotes (`controllers/optin`), so the
// package table cannot fall behind the code. A package that does not exist
// yet is not required.
func TestArchitectureDocNamesEveryPackage(t *testing.T) {
	root := archDocRoot(t)
	module := archDocModule(t, root)
	doc, err := os.ReadFile(filepath.Join(root, architectureDoc))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// -e: a package another change leaves broken is still listed, not fatal.
	cmd := exec.CommandContext(ctx, goCommand(), "list", "-e", "-f", "{{.ImportPath}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}

	var missing []string
	n := 0
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, module+"/")
		if !ok {
			if pkg != module {
				t.Errorf("go list gave %q, outside module %s", pkg, module)
				continue
			}
			rel = module // a package at the module root is named by the module path
		}
		n++
		if !bytes.Contains(doc, []byte("`"+rel+"`")) {
			missing = append(missing, rel)
		}
	}
	if n == 0 {
		t.Fatal("go list ./... listed no package")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%s does not name these packages (as `path` in backquotes, relative to %s); add a row to its package table for each:\n  %s",
			architectureDoc, module, strings.Join(missing, "\n  "))
	}
}

var (
	// archDocFence matches a fenced code block; links inside are not links.
	archDocFence = regexp.MustCompile("(?ms)^```.*?^```[^\n]*$")
	// archDocCode matches an inline code span.
	archDocCode = regexp.MustCompile("`[^`\n]*`")
	// archDocLink matches an inline link or image, [text](target) or
	// ![alt](target "title"); group 1 is the target.
	archDocLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// archDocRef matches a reference definition, [name]: target.
	archDocRef = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
)

// Every relative link and image of docs/architecture.md points to a file or
// directory that exists (anchors are not checked; absolute URLs are skipped).
func TestArchitectureDocLinksResolve(t *testing.T) {
	root := archDocRoot(t)
	b, err := os.ReadFile(filepath.Join(root, architectureDoc))
	if err != nil {
		t.Fatal(err)
	}
	text := archDocFence.ReplaceAllString(string(b), "")
	text = archDocCode.ReplaceAllString(text, "``")

	var targets []string
	for _, m := range archDocLink.FindAllStringSubmatch(text, -1) {
		targets = append(targets, m[1])
	}
	for _, m := range archDocRef.FindAllStringSubmatch(text, -1) {
		targets = append(targets, m[1])
	}
	if len(targets) == 0 {
		t.Fatalf("%s has no links: the parse is broken", architectureDoc)
	}

	dir := filepath.Dir(filepath.Join(root, architectureDoc))
	images := 0
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			t.Errorf("link %q: %v", target, err)
			continue
		}
		if u.Scheme != "" || u.Host != "" || u.Path == "" {
			continue // an absolute URL, or an anchor in this page
		}
		if strings.HasPrefix(u.Path, "/") {
			t.Errorf("link %q is absolute to the site root; make it relative to docs/", target)
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(u.Path))
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				t.Errorf("link %q in %s: %s does not exist", target, architectureDoc, p)
			} else {
				t.Errorf("link %q: %v", target, err)
			}
			continue
		}
		if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("link %q leaves the repository", target)
		}
		if strings.HasPrefix(u.Path, "images/") {
			images++
		}
	}
	if images == 0 {
		t.Errorf("%s shows no image from docs/images/ (the data-flow diagram)", architectureDoc)
	}
}
