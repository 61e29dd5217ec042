package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
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
