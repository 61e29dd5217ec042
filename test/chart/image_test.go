package chart

// The container image the chart runs is built from the repository's
// Dockerfile (`make image`). No Docker here or in CI: these tests read the
// Dockerfile, .dockerignore, go.mod, the Makefile and the chart, and check
// that they agree:
//
//   - the final stage's USER is the chart's runAsUser/runAsGroup, numeric
//     (the kubelet checks runAsNonRoot on a numeric uid only);
//   - the ENTRYPOINT is the flinkscale binary alone (the chart sets no
//     command, and its args start with `controller`), the very file `go
//     build ./cmd/flinkscale` writes in the build stage;
//   - the build stage's Go is go.mod's major.minor (and no older patch:
//     with GOTOOLCHAIN=local an older Go refuses to build), static
//     (CGO_ENABLED=0), -trimpath, with main.version stamped from ARG VERSION;
//   - every directory COPYed exists, and every file `go build
//     ./cmd/flinkscale` reads from this module (its packages' Go files and
//     embedded files) is COPYed and not dropped by .dockerignore;
//   - the Makefile's default IMAGE names the chart's image.repository.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ---------------------------------------------------------------------------
// A small Dockerfile parser: enough for our own Dockerfile, not a general one.

// instruction is one Dockerfile instruction, continuations joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string // the rest of the line, comments and continuations removed
	Line int    // where it starts, 1-based
}

func (in instruction) String() string { return fmt.Sprintf("line %d: %s %s", in.Line, in.Cmd, in.Args) }

// stage is a FROM and the instructions up to the next FROM.
type stage struct {
	Image  string // the FROM image, global ARGs expanded
	Name   string // the AS name, or ""
	From   instruction
	Instrs []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM (their
// defaults; only FROM lines see them) and the stages.
type dockerfile struct {
	GlobalArgs map[string]string
	Stages     []stage
}

// parseDockerfile splits src into instructions: a line ending in `\`
// continues on the next one; lines starting with `#` are comments (also
// inside a continuation, as Docker treats them), and so are the parser
// directives (`# syntax=…`); blank lines are skipped.
func parseDockerfile(src string) (dockerfile, error) {
	df := dockerfile{GlobalArgs: map[string]string{}}
	var instrs []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		} else {
			cur.WriteByte(' ')
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(strings.TrimSpace(body))
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		instrs = append(instrs, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return df, err
	}
	if cur.Len() > 0 {
		return df, fmt.Errorf("line %d: the file ends in a line continuation", start)
	}
	for _, in := range instrs {
		switch {
		case in.Cmd == "FROM":
			// FROM [--platform=…] image [AS name]
			var words []string
			for _, w := range strings.Fields(in.Args) {
				if !strings.HasPrefix(w, "--") {
					words = append(words, w)
				}
			}
			if len(words) != 1 && (len(words) != 3 || !strings.EqualFold(words[1], "AS")) {
				return df, fmt.Errorf("%s: want FROM image [AS name]", in)
			}
			st := stage{Image: expand(words[0], df.GlobalArgs), From: in}
			if len(words) == 3 {
				st.Name = words[2]
			}
			df.Stages = append(df.Stages, st)
		case len(df.Stages) == 0:
			if in.Cmd != "ARG" {
				return df, fmt.Errorf("%s: only ARG may come before the first FROM", in)
			}
			for _, w := range strings.Fields(in.Args) {
				k, v, _ := strings.Cut(w, "=")
				df.GlobalArgs[k] = v
			}
		default:
			st := &df.Stages[len(df.Stages)-1]
			st.Instrs = append(st.Instrs, in)
		}
	}
	if len(df.Stages) == 0 {
		return df, fmt.Errorf("no FROM")
	}
	return df, nil
}

// expand substitutes $NAME, ${NAME} and ${NAME:-default} from vars (unset:
// empty), as Docker does in FROM, USER, COPY and friends.
func expand(s string, vars map[string]string) string {
	return os.Expand(s, func(name string) string {
		name, def, hasDef := strings.Cut(name, ":-")
		if v := vars[name]; v != "" || !hasDef {
			return v
		}
		return def
	})
}

// all returns the stage's instructions of kind cmd.
func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instrs {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the stage's last instruction of kind cmd (the one that
// counts for USER, ENTRYPOINT, WORKDIR), and false if there is none.
func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

// stage returns the stage named name.
func (df dockerfile) stage(name string) (stage, bool) {
	for _, s := range df.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return stage{}, false
}

// words splits s at blanks, keeping "double quoted" runs together (quotes
// removed): the syntax of ENV and LABEL key="value" pairs.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// keyValues returns the key=value pairs of the stage's instructions of kind
// cmd (ENV, LABEL, ARG), later ones winning. The legacy `ENV KEY value` form
// is read too.
func (s stage) keyValues(cmd string) map[string]string {
	out := map[string]string{}
	for _, in := range s.all(cmd) {
		ws := words(in.Args)
		if len(ws) >= 2 && !strings.Contains(ws[0], "=") && cmd == "ENV" {
			out[ws[0]] = strings.Join(ws[1:], " ")
			continue
		}
		for _, w := range ws {
			k, v, _ := strings.Cut(w, "=")
			out[k] = v
		}
	}
	return out
}

// copyArgs is a COPY's flags, sources and destination.
type copyArgs struct {
	From string // --from=<stage>, "" for the build context
	Srcs []string
	Dest string
}

func parseCopy(in instruction) (copyArgs, error) {
	var c copyArgs
	var rest []string
	if strings.HasPrefix(in.Args, "[") { // exec form: COPY ["src", …, "dest"]
		if err := json.Unmarshal([]byte(in.Args), &rest); err != nil {
			return c, fmt.Errorf("%s: %v", in, err)
		}
	} else {
		for _, w := range strings.Fields(in.Args) {
			if v, ok := strings.CutPrefix(w, "--from="); ok {
				c.From = v
			} else if !strings.HasPrefix(w, "--") || len(rest) > 0 {
				rest = append(rest, w)
			}
		}
	}
	if len(rest) < 2 {
		return c, fmt.Errorf("%s: want COPY src... dest", in)
	}
	c.Srcs, c.Dest = rest[:len(rest)-1], rest[len(rest)-1]
	return c, nil
}

// ---------------------------------------------------------------------------
// .dockerignore, with the semantics of Docker's pattern matcher
// (github.com/moby/patternmatcher): patterns are relative to the context
// root (a leading / is dropped, the pattern cleaned); `*` matches within a
// path element, `?` one character, `**` any number of elements (none
// included); a pattern excludes a path when it matches the path or one of
// its parent directories; `!` re-includes; the last matching line wins.

type ignorePattern struct {
	text      string
	re        *regexp.Regexp
	exclusion bool // a `!` line
}

func parseDockerignore(src string) ([]ignorePattern, error) {
	var out []ignorePattern
	for line := range strings.Lines(src) {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		ip := ignorePattern{text: p}
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			ip.exclusion, p = true, strings.TrimSpace(rest)
		}
		p = path.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
		var re strings.Builder
		re.WriteByte('^')
		for i := 0; i < len(p); i++ {
			switch ch := p[i]; {
			case ch == '*' && i+1 < len(p) && p[i+1] == '*':
				i++
				if i+1 < len(p) && p[i+1] == '/' { // `**/` is `**`
					i++
				}
				if i+1 == len(p) {
					re.WriteString(".*") // `**` at the end: everything below
				} else {
					re.WriteString("(.*/)?") // zero or more whole elements
				}
			case ch == '*':
				re.WriteString("[^/]*")
			case ch == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(ch)))
			}
		}
		re.WriteByte('$')
		rx, err := regexp.Compile(re.String())
		if err != nil {
			return nil, fmt.Errorf(".dockerignore %q: %v", ip.text, err)
		}
		ip.re = rx
		out = append(out, ip)
	}
	return out, nil
}

// ignored reports whether the patterns drop file (slash-separated, relative
// to the context root) from the build context, and the deciding pattern.
func ignored(patterns []ignorePattern, file string) (bool, string) {
	dirs := strings.Split(path.Dir(file), "/")
	matched, by := false, ""
	for _, p := range patterns {
		m := p.re.MatchString(file)
		for i := 0; !m && dirs[0] != "." && i < len(dirs); i++ {
			m = p.re.MatchString(strings.Join(dirs[:i+1], "/"))
		}
		if m {
			matched, by = !p.exclusion, p.text
		}
	}
	return matched, by
}

// ---------------------------------------------------------------------------
// Helpers reading the repository.

func readRepoFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadDockerfile(t testing.TB) dockerfile {
	t.Helper()
	df, err := parseDockerfile(readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return df
}

// binaryBuild is what the image's binary comes from: the final stage, the
// COPY --from that brings the binary, the stage it comes from, and that
// stage's RUN with `go build`.
type binaryBuild struct {
	final, build stage
	copyInstr    instruction
	copied       copyArgs
	goBuild      instruction
}

// findBinaryBuild follows ENTRYPOINT ["/flinkscale"] back to the `go build
// -o … ./cmd/flinkscale` that produced it.
func findBinaryBuild(t *testing.T, df dockerfile) (binaryBuild, []string) {
	t.Helper()
	var b binaryBuild
	b.final = df.Stages[len(df.Stages)-1]
	ep, ok := b.final.last("ENTRYPOINT")
	if !ok {
		t.Fatal("the final stage has no ENTRYPOINT")
	}
	// Exec (JSON) form only: the shell form runs /bin/sh -c, which
	// distroless has not, and makes the shell PID 1 (no SIGTERM for the
	// controller).
	var entrypoint []string
	if err := json.Unmarshal([]byte(ep.Args), &entrypoint); err != nil || len(entrypoint) == 0 {
		t.Fatalf("%s: not the exec form [\"/binary\"]: %v", ep, err)
	}
	for _, in := range b.final.all("COPY") {
		c, err := parseCopy(in)
		if err != nil {
			t.Fatal(err)
		}
		if c.From != "" && path.Clean(c.Dest) == entrypoint[0] {
			b.copyInstr, b.copied = in, c
		}
	}
	if b.copied.From == "" {
		t.Fatalf("no COPY --from=<stage> in the final stage puts the ENTRYPOINT %s in place", entrypoint[0])
	}
	if b.build, ok = df.stage(b.copied.From); !ok {
		t.Fatalf("%s: no stage named %q", b.copyInstr, b.copied.From)
	}
	for _, in := range b.build.all("RUN") {
		if strings.Contains(in.Args, "go build") {
			b.goBuild = in
		}
	}
	if b.goBuild.Cmd == "" {
		t.Fatalf("stage %s has no RUN … go build", b.build.Name)
	}
	return b, entrypoint
}

// goVersion parses "1.26" or "1.26.8" (the patch -1 when absent).
var goVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

func goVersion(s string) (major, minor, patch int, ok bool) {
	m := goVersionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	patch = -1
	if m[3] != "" {
		patch, _ = strconv.Atoi(m[3])
	}
	return major, minor, patch, true
}

// goModDirective returns go.mod's module path and its `go` line's version.
func goModDirectives(t testing.TB) (module, goLine string) {
	t.Helper()
	mod := readRepoFile(t, "go.mod")
	if m := regexp.MustCompile(`(?m)^module\s+(\S+)\s*$`).FindStringSubmatch(mod); m != nil {
		module = m[1]
	}
	if m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindStringSubmatch(mod); m != nil {
		goLine = m[1]
	}
	if module == "" || goLine == "" {
		t.Fatalf("go.mod: no module or go line")
	}
	return module, goLine
}

// splitImageRef splits registry/repo:tag into registry/repo and tag (a
// colon before the last / is a registry port, not a tag).
func splitImageRef(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// ---------------------------------------------------------------------------
// The tests.

// TestDockerfileParser pins the parser's reading of continuations,
// comments, ARG expansion, stages and COPY forms on a small example.
func TestDockerfileParser(t *testing.T) {
	df, err := parseDockerfile(`# syntax=docker/dockerfile:1
ARG V=1.2.3
FROM --platform=$BUILDPLATFORM golang:${V}-x AS b
ENV A=1 \
    # a comment inside a continuation is dropped
    B="two words"
RUN go build \
      -o /out/x ./cmd/x
FROM scratch
COPY --from=b --chmod=0755 /out/x /x
COPY ["a b", "c/"]
USER 1:2
ENTRYPOINT ["/x"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Stages) != 2 || df.Stages[0].Image != "golang:1.2.3-x" || df.Stages[0].Name != "b" || df.Stages[1].Image != "scratch" {
		t.Fatalf("stages %+v", df.Stages)
	}
	b := df.Stages[0]
	if env := b.keyValues("ENV"); env["A"] != "1" || env["B"] != "two words" || len(env) != 2 {
		t.Errorf("ENV %v", env)
	}
	if run, _ := b.last("RUN"); run.Args != "go build -o /out/x ./cmd/x" || run.Line != 7 {
		t.Errorf("RUN %+v", run)
	}
	for i, want := range []copyArgs{
		{From: "b", Srcs: []string{"/out/x"}, Dest: "/x"},
		{Srcs: []string{"a b"}, Dest: "c/"},
	} {
		got, err := parseCopy(df.Stages[1].all("COPY")[i])
		if err != nil || !slices.Equal(got.Srcs, want.Srcs) || got.From != want.From || got.Dest != want.Dest {
			t.Errorf("COPY %d: %+v, %v; want %+v", i, got, err, want)
		}
	}
	for _, bad := range []string{"RUN x", "FROM a b", "FROM a\nRUN x \\"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestDockerignoreMatcher pins the matcher to Docker's semantics on the
// cases .dockerignore relies on.
func TestDockerignoreMatcher(t *testing.T) {
	patterns, err := parseDockerignore("# comment\n/docs\nflinkscale\n*.md\n**/*_test.go\n**/testdata\ntest/e2e\ndrop/*\n!drop/keep.go\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		want bool
	}{
		{"docs/images/a.png", true},           // a directory drops its contents
		{"flinkscale", true},                  // the root binary…
		{"cmd/flinkscale/main.go", false},     // …but not the package: patterns are anchored at the root
		{"README.md", true},                   // *.md: root only
		{"scaling/README.md", false},          //
		{"main_test.go", true},                // **/ matches zero elements
		{"controllers/optin/x_test.go", true}, // and several
		{"scaling/testdata/fuzz/F/x", true},   // a parent directory matches
		{"test/e2e/e2e.go", true},             //
		{"test/sim/sim.go", false},            //
		{"drop/x.go", true},                   //
		{"drop/keep.go", false},               // ! re-includes: the last match wins
		{"scaling/examples/a.json", false},    //
	} {
		if got, by := ignored(patterns, c.file); got != c.want {
			t.Errorf("%s: ignored %v (by %q), want %v", c.file, got, by, c.want)
		}
	}
}

// TestImageMatchesChart: the image runs as the chart's user, and the
// chart's container runs the image's ENTRYPOINT (no command) with args that
// start with `controller`.
func TestImageMatchesChart(t *testing.T) {
	df := loadDockerfile(t)
	b, entrypoint := findBinaryBuild(t, df)

	// ENTRYPOINT ["/flinkscale"]: the binary alone; `controller` comes from
	// the chart's args.
	if len(entrypoint) != 1 || path.Base(entrypoint[0]) != "flinkscale" {
		t.Errorf("ENTRYPOINT %q: want the flinkscale binary alone (the chart passes `controller` and flags as args)", entrypoint)
	}
	if cmd, ok := b.final.last("CMD"); ok {
		t.Errorf("%s: the final stage's CMD would run `flinkscale %s` when no args are given; leave it out", cmd, cmd.Args)
	}
	// The copied file is what `go build -o <file> ./cmd/flinkscale` wrote.
	f := strings.Fields(b.goBuild.Args)
	if i := slices.Index(f, "-o"); i < 0 || i+1 >= len(f) || !slices.Contains(b.copied.Srcs, f[i+1]) {
		t.Errorf("%s: its -o output is not what %s copies (%v)", b.goBuild, b.copyInstr, b.copied.Srcs)
	}
	if f[len(f)-1] != "./cmd/flinkscale" {
		t.Errorf("%s: does not build ./cmd/flinkscale", b.goBuild)
	}

	// USER uid:gid, numeric: the kubelet verifies runAsNonRoot against a
	// numeric uid only (a name needs the image's /etc/passwd, and a pod
	// without runAsUser is then refused).
	user, ok := b.final.last("USER")
	if !ok {
		t.Fatal("the final stage has no USER")
	}
	uidS, gidS, hasGID := strings.Cut(expand(user.Args, nil), ":")
	uid, err := strconv.ParseInt(uidS, 10, 64)
	if err != nil || uid == 0 {
		t.Fatalf("%s: want a numeric non-root uid", user)
	}
	gid := int64(-1)
	if hasGID {
		if gid, err = strconv.ParseInt(gidS, 10, 64); err != nil {
			t.Fatalf("%s: want a numeric gid", user)
		}
	}

	// The chart with its default values (what `helm install` runs).
	d := deployment(t, parse(t, mustRender(t, "flinkscale-system", "")))
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Errorf("the chart sets command %q: it would replace the image's ENTRYPOINT %q", c.Command, entrypoint)
	}
	if len(c.Args) == 0 || c.Args[0] != "controller" {
		t.Errorf("the chart's args %q do not start with controller", c.Args)
	}
	psc, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("the chart sets no pod or container securityContext")
	}
	for _, x := range []struct {
		name string
		got  *int64
		want int64
	}{
		{"podSecurityContext.runAsUser", psc.RunAsUser, uid},
		{"securityContext.runAsUser", sc.RunAsUser, uid},
		{"podSecurityContext.runAsGroup", psc.RunAsGroup, gid},
		{"securityContext.runAsGroup", sc.RunAsGroup, gid},
	} {
		if x.want < 0 { // USER without a group: nothing to compare
			continue
		}
		if x.got == nil || *x.got != x.want {
			t.Errorf("chart %s = %v, Dockerfile %s: want %d", x.name, derefOr(x.got), user, x.want)
		}
	}
	// The image needs nothing writable but /tmp, which the chart mounts.
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
		t.Errorf("want readOnlyRootFilesystem with a /tmp mount, got %v and %+v", sc.ReadOnlyRootFilesystem, c.VolumeMounts)
	}
}

func derefOr(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// TestImageBuild: the build stage uses go.mod's Go, statically, with the
// flags and the version stamping the Makefile's image target relies on.
func TestImageBuild(t *testing.T) {
	df := loadDockerfile(t)
	b, _ := findBinaryBuild(t, df)

	// golang:<version>-<variant>: e.g. go.mod `go 1.26.8` and golang:1.26.8-bookworm
	// (major.minor equal, patch ≥ go.mod's) or golang:1.26-bookworm (the
	// newest 1.26.x).
	_, goLine := goModDirectives(t)
	repo, tag := splitImageRef(b.build.Image)
	if path.Base(repo) != "golang" {
		t.Fatalf("build stage FROM %s: want a golang image", b.build.Image)
	}
	iMaj, iMin, iPatch, ok1 := goVersion(tag)
	mMaj, mMin, mPatch, ok2 := goVersion(goLine)
	switch {
	case !ok1 || !ok2:
		t.Errorf("cannot read the Go versions of FROM %s and go.mod's go %s", b.build.Image, goLine)
	case iMaj != mMaj || iMin != mMin:
		t.Errorf("build stage FROM %s: Go %d.%d, go.mod says go %s", b.build.Image, iMaj, iMin, goLine)
	case iPatch >= 0 && iPatch < mPatch:
		t.Errorf("build stage FROM %s is older than go.mod's go %s (GOTOOLCHAIN=local refuses it)", b.build.Image, goLine)
	}

	// The environment of `go build`: the stage's ENV, then VAR=value words
	// in front of the command in the RUN itself.
	env := b.build.keyValues("ENV")
	for _, w := range strings.Fields(b.goBuild.Args) {
		if k, v, ok := strings.Cut(w, "="); ok && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			env[k] = v
		}
	}
	for _, want := range []struct{ key, value, why string }{
		{"CGO_ENABLED", "0", "a static binary for distroless/static (no libc)"},
		{"GOTOOLCHAIN", "local", "build with the image's Go, never download one"},
	} {
		if env[want.key] != want.value {
			t.Errorf("build stage: %s=%q, want %q: %s", want.key, env[want.key], want.value, want.why)
		}
	}
	for _, flag := range []string{"-trimpath", "-s -w", "-X main.version=${VERSION}"} {
		if !strings.Contains(b.goBuild.Args, flag) {
			t.Errorf("%s: lacks %s", b.goBuild, flag)
		}
	}
	// Layer caching: COPY go.mod go.sum, RUN go mod download, and only
	// then the sources, so a source edit does not download the modules
	// again. Instruction indexes in the build stage, -1 until seen.
	copyMod, download, firstSource := -1, -1, -1
	for i, in := range b.build.Instrs {
		switch {
		case in.Cmd == "COPY" && copyMod < 0 && strings.Contains(in.Args, "go.mod") && strings.Contains(in.Args, "go.sum"):
			copyMod = i
		case in.Cmd == "COPY" && firstSource < 0 && !strings.Contains(in.Args, "--from"):
			firstSource = i
		case in.Cmd == "RUN" && download < 0 && strings.Contains(in.Args, "go mod download"):
			download = i
		}
	}
	if copyMod < 0 || download < copyMod || (firstSource >= 0 && firstSource < download) {
		t.Errorf("build stage: want COPY go.mod go.sum, then RUN go mod download, then the sources (instructions %d, %d, %d)",
			copyMod, download, firstSource)
	}
	if _, ok := b.build.keyValues("ARG")["VERSION"]; !ok {
		t.Errorf("build stage: no ARG VERSION (make image passes --build-arg VERSION=…)")
	}
	// What -X main.version sets must exist: a package-level string var.
	if !regexp.MustCompile(`(?m)^var version = "`).MatchString(readRepoFile(t, "cmd/flinkscale/main.go")) {
		t.Errorf("cmd/flinkscale/main.go: no `var version = \"…\"` for -X main.version")
	}
	if !regexp.MustCompile(`(?m)^\t\$\(DOCKER\) build .*--build-arg VERSION=\$\(VERSION\)`).MatchString(readRepoFile(t, "Makefile")) {
		t.Errorf("Makefile: the image target does not pass --build-arg VERSION=$(VERSION)")
	}
}

// modulePackage is a package of this module the binary is built from.
type modulePackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	EmbedFiles []string
}

// TestImageCopiesEveryPackage: every file `go build ./cmd/flinkscale`
// reads from this module is in the build stage: under a directory it
// COPYs, at the same path, and not dropped by .dockerignore.
func TestImageCopiesEveryPackage(t *testing.T) {
	root := repoRoot(t)
	df := loadDockerfile(t)
	b, _ := findBinaryBuild(t, df)
	patterns, err := parseDockerignore(readRepoFile(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}

	// The context COPYs before the go build: each source must exist and
	// land at the same path under WORKDIR (import paths resolve from
	// go.mod's directory), e.g. `COPY api/ api/`, `COPY go.mod go.sum ./`.
	var copiedDirs, copiedFiles []string
	for _, in := range b.build.all("COPY") {
		if in.Line > b.goBuild.Line {
			continue
		}
		c, err := parseCopy(in)
		if err != nil {
			t.Fatal(err)
		}
		if c.From != "" {
			continue
		}
		for _, src := range c.Srcs {
			src = path.Clean(src)
			fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(src)))
			if err != nil {
				t.Errorf("%s: %v", in, err)
				continue
			}
			if ig, by := ignored(patterns, src); ig {
				t.Errorf("%s: .dockerignore drops %s (pattern %q): the build fails", in, src, by)
			}
			if fi.IsDir() {
				if len(c.Srcs) != 1 || path.Clean(c.Dest) != src {
					t.Errorf("%s: copy directory %s to %s/ (its own path), one per COPY", in, src, src)
				}
				copiedDirs = append(copiedDirs, src)
			} else {
				if !strings.HasSuffix(c.Dest, "/") || (path.Clean(c.Dest) != "." && path.Clean(c.Dest) != path.Dir(src)) {
					t.Errorf("%s: copy file %s into its own directory", in, src)
				}
				copiedFiles = append(copiedFiles, src)
			}
		}
	}
	if wd, ok := b.build.last("WORKDIR"); !ok || wd.Line > b.goBuild.Line {
		t.Errorf("build stage: no WORKDIR before %s", b.goBuild)
	}
	covered := func(file string) bool {
		return slices.Contains(copiedFiles, file) ||
			slices.ContainsFunc(copiedDirs, func(d string) bool { return strings.HasPrefix(file, d+"/") })
	}

	// go list, for the platform of the image (linux, no cgo: the file set
	// can depend on both), every package in the binary; this module's are
	// those whose import path is the module path or below it.
	module, _ := goModDirectives(t)
	pkgs := goListDeps(t, root, module)
	if !slices.ContainsFunc(pkgs, func(p modulePackage) bool { return p.ImportPath == module+"/cmd/flinkscale" }) {
		t.Fatalf("go list found no %s/cmd/flinkscale among %d packages", module, len(pkgs))
	}

	need := []string{"go.mod", "go.sum"}
	usedDirs := map[string]bool{}
	for _, p := range pkgs {
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s: directory %s outside the repository", p.ImportPath, p.Dir)
			continue
		}
		rel = filepath.ToSlash(rel)
		for _, d := range copiedDirs {
			if rel == d || strings.HasPrefix(rel, d+"/") {
				usedDirs[d] = true
			}
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles) {
			need = append(need, path.Join(rel, filepath.ToSlash(f)))
		}
	}
	t.Logf("%d packages of %s, %d files; COPYed directories %v", len(pkgs), module, len(need), copiedDirs)
	for _, f := range need {
		if !covered(f) {
			t.Errorf("%s is needed by go build ./cmd/flinkscale but no COPY of the Dockerfile's build stage brings it (COPY %s/ %s/)", f, path.Dir(f), path.Dir(f))
		}
		if ig, by := ignored(patterns, f); ig {
			t.Errorf("%s is needed by go build ./cmd/flinkscale but .dockerignore drops it (pattern %q)", f, by)
		}
	}
	// A COPY nothing needs is a stale leftover (the binary stopped
	// importing it): drop it, it only costs context and cache misses.
	for _, d := range copiedDirs {
		if !usedDirs[d] {
			t.Errorf("the Dockerfile copies %s/ but ./cmd/flinkscale imports no package under it", d)
		}
	}
}

// goListDeps runs `go list -deps ./cmd/flinkscale` from the repository root
// for GOOS=linux with CGO_ENABLED=0 and returns the packages of module.
func goListDeps(t *testing.T, root, module string) []modulePackage {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts $GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-deps", "-json=ImportPath,Dir,GoFiles,EmbedFiles", "./cmd/flinkscale")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/flinkscale: %v\n%s", err, stderr.String())
	}
	var pkgs []modulePackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p modulePackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

// TestImageRepository: `make image` with no IMAGE builds the repository the
// chart pulls by default (values.yaml image.repository), and the image's
// source label is the chart's home.
func TestImageRepository(t *testing.T) {
	var values struct {
		Image struct {
			Repository string `json:"repository"`
		} `json:"image"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, chartDir+"/values.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)\s*$`).FindStringSubmatch(readRepoFile(t, "Makefile"))
	if m == nil {
		t.Fatal("Makefile: no `IMAGE ?= <repository>:<tag>` line")
	}
	repo, tag := splitImageRef(m[1])
	if repo != values.Image.Repository || tag == "" {
		t.Errorf("Makefile IMAGE ?= %s (repository %s), values.yaml image.repository %s: want the same repository, with a tag",
			m[1], repo, values.Image.Repository)
	}

	var chart struct {
		Home string `json:"home"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, chartDir+"/Chart.yaml")), &chart); err != nil {
		t.Fatal(err)
	}
	df := loadDockerfile(t)
	labels := df.Stages[len(df.Stages)-1].keyValues("LABEL")
	if got := labels["org.opencontainers.image.source"]; got != chart.Home {
		t.Errorf("Dockerfile LABEL org.opencontainers.image.source=%q, Chart.yaml home %q", got, chart.Home)
	}
	if labels["org.opencontainers.image.description"] == "" {
		t.Errorf("Dockerfile: no org.opencontainers.image.description label")
	}
}
