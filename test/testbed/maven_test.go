package testbed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeMaven puts an mvn on the PATH that logs its arguments, writes
// $FAKE_CP to -Dmdep.outputFile, touches the workload jar on package, and
// fails with 50 lines of output when $FAKE_MVN_FAIL is set. It returns a
// function that reads the invocations so far.
func fakeMaven(t *testing.T, repo string) (calls func() []string) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	bin := t.TempDir()
	log := filepath.Join(bin, "calls")
	script := `#!/bin/sh
echo "$*" >> "$FAKE_MVN_LOG"
if [ -n "$FAKE_MVN_FAIL" ]; then
  i=0; while [ $i -lt 50 ]; do echo "line $i"; i=$((i+1)); done
  echo "[ERROR] BUILD FAILURE"; exit 1
fi
for a in "$@"; do
  case "$a" in -Dmdep.outputFile=*) printf '%s\n' "$FAKE_CP" > "${a#-Dmdep.outputFile=}";; esac
done
case " $* " in *" package"*) mkdir -p "$(dirname "$FAKE_JAR")" && : > "$FAKE_JAR";; esac
`
	if err := os.WriteFile(filepath.Join(bin, "mvn"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_MVN_LOG", log)
	t.Setenv("FAKE_MVN_FAIL", "")
	t.Setenv("FAKE_JAR", WorkloadJar(repo, Flink120))
	return func() []string {
		b, _ := os.ReadFile(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")[:strings.Count(string(b), "\n")]
	}
}

// fakeRepo is a repository with test/testbed/java/pom.xml and one source
// file, both two hours old.
func fakeRepo(t *testing.T) (root, pom, src string) {
	t.Helper()
	root = t.TempDir()
	pom = filepath.Join(root, javaDir, "pom.xml")
	src = filepath.Join(root, javaDir, "src/main/java/io/flinkscale/testbed/Job.java")
	old := time.Now().Add(-2 * time.Hour)
	for _, f := range []string{pom, src} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		setMtime(t, f, old)
	}
	return root, pom, src
}

func setMtime(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestResolveCachesTheClasspath(t *testing.T) {
	root, pom, _ := fakeRepo(t)
	calls := fakeMaven(t, root)
	jars := t.TempDir()
	a, b := filepath.Join(jars, "a.jar"), filepath.Join(jars, "b.jar")
	for _, j := range []string{a, b} {
		if err := os.WriteFile(j, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FAKE_CP", a+string(os.PathListSeparator)+b)
	ctx := t.Context()

	resolve := func(wantCalls int) string {
		t.Helper()
		cp, err := Resolve(ctx, root, ProfileKafka)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(calls()); got != wantCalls {
			t.Fatalf("mvn ran %d times, want %d: %q", got, wantCalls, calls())
		}
		return cp
	}
	if cp := resolve(1); cp != a+string(os.PathListSeparator)+b {
		t.Errorf("classpath %q", cp)
	}
	for _, want := range []string{"-f " + pom, "-P kafka", "-Dmdep.includeScope=runtime", "dependency:build-classpath"} {
		if !strings.Contains(calls()[0], want) {
			t.Errorf("mvn %s: missing %q", calls()[0], want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, binDir, "kafka.classpath")); err != nil {
		t.Errorf("no cache file: %v", err)
	}
	resolve(1) // cached

	setMtime(t, pom, time.Now().Add(time.Hour)) // pom.xml changed
	resolve(2)
	setMtime(t, pom, time.Now().Add(-time.Hour))
	resolve(2)

	if err := os.Remove(b); err != nil { // ~/.m2 lost a jar
		t.Fatal(err)
	}
	t.Setenv("FAKE_CP", a)
	if cp := resolve(3); cp != a {
		t.Errorf("classpath %q after re-resolving, want %q", cp, a)
	}
}

func TestMavenErrors(t *testing.T) {
	root, _, _ := fakeRepo(t)
	fakeMaven(t, root)
	t.Setenv("FAKE_MVN_FAIL", "1")
	_, err := Resolve(t.Context(), root, Flink2.Profile())
	if err == nil {
		t.Fatal("Resolve succeeded with a failing mvn")
	}
	for _, want := range []string{"mvn -B -q", "-P flink-2", "exit status 1", "line 49", "[ERROR] BUILD FAILURE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: missing %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "line 5\n") {
		t.Errorf("error shows more than the last %d lines: %q", mavenTailLines, err)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := Resolve(t.Context(), root, Flink2.Profile()); !errors.Is(err, errMavenMissing) {
		t.Errorf("Resolve without mvn: %v", err)
	}
	if _, err := BuildWorkload(t.Context(), root, Flink120, BuildOptions{}); !errors.Is(err, errMavenMissing) {
		t.Errorf("BuildWorkload without mvn: %v", err)
	}
}

func TestMavenCancelled(t *testing.T) {
	root, _, _ := fakeRepo(t)
	fakeMaven(t, root)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Resolve(ctx, root, ProfileKafka); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context: %v", err)
	}
}

func TestBuildWorkloadWhenStale(t *testing.T) {
	root, pom, src := fakeRepo(t)
	calls := fakeMaven(t, root)
	ctx := t.Context()
	build := func(opts BuildOptions, wantCalls int) {
		t.Helper()
		jar, err := BuildWorkload(ctx, root, Flink120, opts)
		if err != nil {
			t.Fatal(err)
		}
		if jar != WorkloadJar(root, Flink120) {
			t.Errorf("jar %q", jar)
		}
		if got := len(calls()); got != wantCalls {
			t.Fatalf("mvn ran %d times, want %d: %q", got, wantCalls, calls())
		}
	}
	build(BuildOptions{}, 1) // no jar yet
	if c := calls()[0]; !strings.Contains(c, "-P flink-1.20") || !strings.HasSuffix(c, " package") || strings.Contains(c, "-DskipTests") {
		t.Errorf("mvn %s", c)
	}
	build(BuildOptions{}, 1) // up to date

	jarTime := func() time.Time {
		st, err := os.Stat(WorkloadJar(root, Flink120))
		if err != nil {
			t.Fatal(err)
		}
		return st.ModTime()
	}
	setMtime(t, src, jarTime().Add(time.Second)) // a source changed
	build(BuildOptions{SkipTests: true}, 2)
	if c := calls()[1]; !strings.Contains(c, "-DskipTests") {
		t.Errorf("mvn %s: no -DskipTests", c)
	}
	setMtime(t, src, time.Now().Add(-time.Hour))
	build(BuildOptions{}, 2)

	setMtime(t, pom, jarTime().Add(time.Second)) // pom.xml changed
	build(BuildOptions{}, 3)
	setMtime(t, pom, time.Now().Add(-time.Hour))
	build(BuildOptions{}, 3)
	build(BuildOptions{Force: true}, 4)

	if _, err := BuildWorkload(ctx, root, "1.19", BuildOptions{}); err == nil {
		t.Error("BuildWorkload of Flink 1.19 succeeded")
	}
}
