package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flinkscale/flinkscale/test/envtest"
)

// Flink is a Flink line the testbed runs: one Maven profile of
// test/testbed/java/pom.xml each.
type Flink string

// The Flink lines of the testbed (their exact versions are in pom.xml).
const (
	// Flink120 is Flink 1.20 LTS (1.20.3), profile flink-1.20.
	Flink120 Flink = "1.20"
	// Flink2 is the newest Flink 2.x with a Kafka connector (2.2.0),
	// profile flink-2.
	Flink2 Flink = "2"
)

// Versions are the Flink lines the testbed supports, oldest first.
var Versions = []Flink{Flink120, Flink2}

// ProfileKafka is the Maven profile of the Kafka broker's classpath.
const ProfileKafka = "kafka"

// SimFlinkVersion is the simulator's REST shape (sim.JobSpec.FlinkVersion)
// closest to Flink line v: "1.20", or "2.1" for the 2.x line.
func SimFlinkVersion(v Flink) string {
	if v == Flink2 {
		return "2.1"
	}
	return "1.20"
}

// Profile is v's Maven profile ("flink-1.20", "flink-2").
func (v Flink) Profile() string { return "flink-" + string(v) }

// Validate fails for a Flink line the testbed does not know.
func (v Flink) Validate() error {
	for _, w := range Versions {
		if v == w {
			return nil
		}
	}
	return fmt.Errorf("unknown Flink version %q (the testbed runs %q and %q)", string(v), Flink120, Flink2)
}

// Paths relative to the repository root.
const (
	javaDir = "test/testbed/java"
	// binDir holds the cached classpaths, the Maven locks and the build
	// directories target-<1.20|2|kafka> (pom.xml's <build><directory>).
	binDir = "bin/testbed"
	// workloadJarName is pom.xml's <artifactId>-<version>.jar.
	workloadJarName = "flinkscale-testbed-0.1.0.jar"
)

// mavenTailLines is how much of Maven's output an error shows.
const mavenTailLines = 40

var errMavenMissing = errors.New("mvn is not on the PATH (the testbed resolves Flink and Kafka with Maven 3.8 or newer; Debian: apt-get install maven)")

// RepoRoot is the repository's root directory, found from the working
// directory as test/envtest does (a test's working directory is its
// package's).
func RepoRoot() (string, error) { return envtest.RepoRoot() }

// Resolve returns the classpath of a Maven profile of test/testbed/java
// (Flink.Profile() or ProfileKafka): the jars of Maven's local repository,
// separated by the path list separator. It is cached in
// bin/testbed/<profile>.classpath and resolved again, with
// `mvn dependency:build-classpath`, when that file is missing, older than
// pom.xml or names a jar that is gone. The first resolution downloads the
// jars (about 15 s for all three profiles); a cached one costs a stat per jar.
func Resolve(ctx context.Context, repoRoot, profile string) (string, error) {
	if repoRoot == "" {
		return "", errors.New("testbed.Resolve: empty repository root")
	}
	bin := filepath.Join(repoRoot, binDir)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	cpFile := filepath.Join(bin, profile+".classpath")
	pom := filepath.Join(repoRoot, javaDir, "pom.xml")
	if cp, ok := cachedClasspath(cpFile, pom); ok {
		return cp, nil
	}
	unlock, err := lockFile(filepath.Join(bin, profile+".lock"))
	if err != nil {
		return "", fmt.Errorf("locking %s: %w", bin, err)
	}
	defer unlock()
	if cp, ok := cachedClasspath(cpFile, pom); ok { // resolved while we waited
		return cp, nil
	}
	tmp := cpFile + ".tmp"
	if err := runMaven(ctx, repoRoot, "-P", profile, "-Dmdep.includeScope=runtime", "-Dmdep.outputFile="+tmp, "dependency:build-classpath"); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, cpFile); err != nil {
		return "", err
	}
	// Not cachedClasspath: a pom.xml dated in the future must not fail
	// every resolution.
	cp, ok := readClasspath(cpFile)
	if !ok {
		return "", fmt.Errorf("mvn dependency:build-classpath -P %s wrote %s, but it is empty or names missing jars", profile, cpFile)
	}
	return cp, nil
}

// cachedClasspath returns the classpath in cpFile when it is still good:
// not older than pom.xml, not empty, and every jar it names exists.
func cachedClasspath(cpFile, pom string) (string, bool) {
	st, err := os.Stat(cpFile)
	if err != nil {
		return "", false
	}
	if pst, err := os.Stat(pom); err != nil || pst.ModTime().After(st.ModTime()) {
		return "", false
	}
	return readClasspath(cpFile)
}

// readClasspath returns the classpath in cpFile when it is not empty and
// every jar it names exists.
func readClasspath(cpFile string) (string, bool) {
	b, err := os.ReadFile(cpFile)
	if err != nil {
		return "", false
	}
	cp := strings.TrimSpace(string(b))
	if cp == "" {
		return "", false
	}
	for _, jar := range filepath.SplitList(cp) {
		if _, err := os.Stat(jar); err != nil {
			return "", false
		}
	}
	return cp, true
}

// BuildOptions configure BuildWorkload.
type BuildOptions struct {
	// SkipTests skips the module's JUnit tests (mvn -DskipTests).
	SkipTests bool
	// Force builds even when the jar looks up to date.
	Force bool
}

// WorkloadJar is where `mvn package -P <v.Profile()>` puts the workload jar:
// bin/testbed/target-<v>/flinkscale-testbed-0.1.0.jar.
func WorkloadJar(repoRoot string, v Flink) string {
	return filepath.Join(repoRoot, binDir, "target-"+string(v), workloadJarName)
}

// BuildWorkload builds the workload jar of Flink line v with `mvn package`
// (which also runs the module's JUnit tests, unless opts.SkipTests) when the
// jar is missing or older than pom.xml or any file under
// test/testbed/java/src, and returns its path.
func BuildWorkload(ctx context.Context, repoRoot string, v Flink, opts BuildOptions) (string, error) {
	if err := v.Validate(); err != nil {
		return "", err
	}
	jar := WorkloadJar(repoRoot, v)
	fresh := func() (bool, error) {
		return workloadFresh(jar, filepath.Join(repoRoot, javaDir))
	}
	if ok, err := fresh(); err != nil || (ok && !opts.Force) {
		return jar, err
	}
	bin := filepath.Join(repoRoot, binDir)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(bin, v.Profile()+".lock"))
	if err != nil {
		return "", fmt.Errorf("locking %s: %w", bin, err)
	}
	defer unlock()
	if ok, err := fresh(); err != nil || (ok && !opts.Force) { // built while we waited
		return jar, err
	}
	args := []string{"-P", v.Profile()}
	if opts.SkipTests {
		args = append(args, "-DskipTests")
	}
	if err := runMaven(ctx, repoRoot, append(args, "package")...); err != nil {
		return "", err
	}
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("mvn package -P %s succeeded but did not write %s", v.Profile(), jar)
	}
	// maven-jar-plugin leaves an up-to-date jar alone, mtime and all: mark
	// it as built now, or a touched-but-unchanged source would make every
	// later call build again.
	now := time.Now()
	if err := os.Chtimes(jar, now, now); err != nil {
		return "", err
	}
	return jar, nil
}

// workloadFresh reports whether jar exists and is not older than pom.xml
// nor any file under src of the Maven module in moduleDir.
func workloadFresh(jar, moduleDir string) (bool, error) {
	st, err := os.Stat(jar)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	built := st.ModTime()
	pom, err := os.Stat(filepath.Join(moduleDir, "pom.xml"))
	if err != nil {
		return false, err
	}
	if pom.ModTime().After(built) {
		return false, nil
	}
	errNewer := errors.New("newer than the jar")
	err = filepath.WalkDir(filepath.Join(moduleDir, "src"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(built) {
			return errNewer
		}
		return nil
	})
	switch {
	case errors.Is(err, errNewer):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	return true, nil
}

// runMaven runs mvn on test/testbed/java/pom.xml, quietly. On failure the
// error names the command and shows the last lines of its output. Maven
// and any JVM it forks (surefire) run in their own process group, killed
// as a whole when ctx ends.
func runMaven(ctx context.Context, repoRoot string, args ...string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return errMavenMissing
	}
	dir := filepath.Join(repoRoot, javaDir)
	full := append([]string{"-B", "-q", "-Dstyle.color=never", "-f", filepath.Join(dir, "pom.xml")}, args...)
	cmd := exec.CommandContext(ctx, mvn, full...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if t := lastLines(out.Bytes(), mavenTailLines); t != "" {
			return fmt.Errorf("mvn %s: %w; last lines of its output:\n%s", strings.Join(full, " "), err, t)
		}
		return fmt.Errorf("mvn %s: %w", strings.Join(full, " "), err)
	}
	return nil
}
