package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SubmitOptions is one submission of the workload to a session cluster.
type SubmitOptions struct {
	// Classpath is the Flink line's classpath (Resolve), JarPath the
	// workload jar (BuildWorkload).
	Classpath, JarPath string
	// SpecFile is the workload spec (WorkloadSpec).
	SpecFile string
	// REST is the JobManager's host:port.
	REST string
	// Config holds Flink options of the submission: execution.savepoint.path
	// to resume from a savepoint, pipeline.jobvertex-parallelism-overrides,
	// state.backend.type, ...
	Config map[string]string
	// Timeout bounds the client (default 2 minutes).
	Timeout time.Duration
}

var jobIDLine = regexp.MustCompile(`(?m)^JOB_ID ([0-9a-f]{32})$`)

// Submit runs the workload's client (io.flinkscale.testbed.Submit), which
// builds the job graph from the spec and submits it detached, and returns
// the job id. A refused spec or submission is an error with the client's
// last lines.
func Submit(ctx context.Context, o SubmitOptions) (string, error) {
	java, err := JavaPath()
	if err != nil {
		return "", err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append([]string{}, javaOpens...)
	args = append(args, "-Xmx256m", "-Dlog4j2.level=WARN", "-cp", o.Classpath+string(os.PathListSeparator)+o.JarPath,
		"io.flinkscale.testbed.Submit", "--spec", o.SpecFile, "--rest", o.REST)
	keys := make([]string, 0, len(o.Config))
	for k := range o.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-D", k+"="+o.Config[k])
	}
	cmd := exec.CommandContext(ctx, java, args...)
	cmd.SysProcAttr = sysProcAttr()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if m := jobIDLine.FindSubmatch(out.Bytes()); err == nil && m != nil {
		return string(m[1]), nil
	}
	if err == nil {
		err = fmt.Errorf("no JOB_ID line")
	}
	return "", fmt.Errorf("testbed: submitting the workload (%s): %w\n%s", o.SpecFile, err, lastLines(out.Bytes(), tailLines))
}

// PlannedVertex is one job vertex of the workload as Flink builds it from a
// spec (io.flinkscale.testbed.Plan): its id, parallelism, max parallelism,
// slot sharing group (numbered from 0 in order of first appearance) and
// name, the scenario vertex's.
type PlannedVertex struct {
	ID             string
	Parallelism    int
	MaxParallelism int
	Group          int
	Name           string
}

// plans caches PlanWorkload's answers by spec content, jar and classpath:
// a job vertex id depends on none of what a resubmission changes (Flink
// hashes the chain head's uid), and each answer costs a JVM start.
var plans struct {
	sync.Mutex
	m map[string][]PlannedVertex
}

// PlanWorkload returns the job vertices of the workload of specFile, sources
// first, as Flink's own graph generator makes them, without a cluster: the
// ids a FlinkDeployment's pipeline.jobvertex-parallelism-overrides names
// before the job first runs.
func PlanWorkload(ctx context.Context, classpath, jar, specFile string) ([]PlannedVertex, error) {
	spec, err := os.ReadFile(specFile)
	if err != nil {
		return nil, fmt.Errorf("testbed: planning the workload: %w", err)
	}
	st, err := os.Stat(jar)
	if err != nil {
		return nil, fmt.Errorf("testbed: planning the workload: %w", err)
	}
	sum := sha256.Sum256(spec)
	key := strings.Join([]string{hex.EncodeToString(sum[:]), jar, st.ModTime().String(), classpath}, "\x00")
	plans.Lock()
	cached, ok := plans.m[key]
	plans.Unlock()
	if ok {
		return slices.Clone(cached), nil
	}
	java, err := JavaPath()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append(slices.Clone(javaOpens), "-Xmx256m", "-Dlog4j2.level=WARN",
		"-cp", classpath+string(os.PathListSeparator)+jar, "io.flinkscale.testbed.Plan", "--spec", specFile)
	cmd := exec.CommandContext(ctx, java, args...)
	cmd.SysProcAttr = sysProcAttr()
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	err = cmd.Run()
	var vs []PlannedVertex
	if err == nil {
		vs, err = parsePlan(out.Bytes())
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: planning the workload (%s): %w\n%s", specFile, err, lastLines(append(out.Bytes(), stderr.Bytes()...), tailLines))
	}
	plans.Lock()
	if plans.m == nil {
		plans.m = map[string][]PlannedVertex{}
	}
	plans.m[key] = vs
	plans.Unlock()
	return slices.Clone(vs), nil
}

// parsePlan reads Plan's "VERTEX\tid\tparallelism\tmaxParallelism\tgroup\tname"
// lines; other lines (logging) are ignored.
func parsePlan(out []byte) ([]PlannedVertex, error) {
	var vs []PlannedVertex
	for line := range strings.Lines(string(out)) {
		f := strings.SplitN(strings.TrimRight(line, "\r\n"), "\t", 6)
		if f[0] != "VERTEX" {
			continue
		}
		if len(f) != 6 || !jobIDPattern.MatchString(f[1]) {
			return nil, fmt.Errorf("bad plan line %q", line)
		}
		var n [3]int
		for i := range n {
			var err error
			if n[i], err = strconv.Atoi(f[2+i]); err != nil {
				return nil, fmt.Errorf("bad plan line %q: %w", line, err)
			}
		}
		vs = append(vs, PlannedVertex{ID: f[1], Parallelism: n[0], MaxParallelism: n[1], Group: n[2], Name: f[5]})
	}
	if len(vs) == 0 {
		return nil, errors.New("no VERTEX lines")
	}
	return vs, nil
}

// jobIDPattern is a job or job vertex id: 32 lower-case hex digits.
var jobIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
