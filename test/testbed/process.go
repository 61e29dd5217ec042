package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Bounds of the supervisor.
const (
	// StopGrace is how long a process has to exit after SIGTERM before its
	// process group gets SIGKILL. A JobManager or TaskManager shuts down in
	// one to three seconds, Kafka in a few.
	StopGrace = 20 * time.Second
	// killWait bounds the wait for a process after SIGKILL.
	killWait = 10 * time.Second
	// tailLines is how much of a log an error shows.
	tailLines = 30
)

// Process describes one JVM of the testbed.
type Process struct {
	// Name is "kafka", "jobmanager" or "taskmanager-<n>".
	Name string
	// PID is the process id, also its process group id.
	PID int
	// Log is the file its log4j log goes to.
	Log string
	// Output is the file its stdout and stderr go to (JVM errors before
	// log4j is up, a crash's last words).
	Output string
}

// proc is a started process under supervision.
type proc struct {
	Process
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait returned (cmd.ProcessState is set)
}

// startProc starts argv in dir as the leader of a new process group, its
// stdout and stderr to p.Output (truncated), after removing an old p.Log.
func startProc(p Process, dir string, argv []string) (*proc, error) {
	if p.Log != "" {
		// The log4j configuration appends (a JVM may reconfigure log4j
		// while it shuts down, and truncating would lose the log): start
		// from an empty file.
		if err := os.Remove(p.Log); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("starting %s: %w", p.Name, err)
		}
	}
	out, err := os.OpenFile(p.Output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.Name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", p.Name, argv[0], err)
	}
	p.PID = cmd.Process.Pid
	pr := &proc{Process: p, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is in cmd.ProcessState
		out.Close()
		close(pr.done)
	}()
	return pr, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an ended process, with the last lines of its output
// and its log.
func (p *proc) exitError() error {
	how := "exited"
	if p.cmd.ProcessState != nil {
		how = p.cmd.ProcessState.String()
	}
	return fmt.Errorf("%s (pid %d) ended early (%s)%s", p.Name, p.PID, how, p.tails())
}

// tails is the last lines of the process's output and log, for an error.
func (p *proc) tails() string {
	var b strings.Builder
	for _, f := range []string{p.Output, p.Log} {
		if f == "" {
			continue
		}
		if t := tailFile(f, tailLines); t != "" {
			fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", f, t)
		}
	}
	return b.String()
}

// stop ends the process: SIGTERM to its group, up to grace for it to exit,
// then SIGKILL to the group. Once the leader is gone, whatever else remains
// in its group is killed too. It returns an error only when the process
// survives SIGKILL.
func (p *proc) stop(grace time.Duration) error {
	if !p.exited() {
		if err := signalGroup(p.PID, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stopping %s (pid %d): %w", p.Name, p.PID, err)
		}
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = signalGroup(p.PID, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) still runs %s after SIGKILL", p.Name, p.PID, killWait)
	}
}

// tailFile returns the last n lines of a file (read from its last 64 KiB),
// or "" when it cannot be read.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxRead {
		if _, err := f.Seek(st.Size()-maxRead, io.SeekStart); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	return lastLines(b, n)
}

// lastLines returns the last n lines of b, without a trailing newline.
func lastLines(b []byte, n int) string {
	if n <= 0 {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	for i, at := 0, len(b); i < n; i++ {
		j := bytes.LastIndexByte(b[:at], '\n')
		if j < 0 {
			return string(b)
		}
		if i == n-1 {
			return string(b[j+1:])
		}
		at = j
	}
	return string(b)
}

// stopAll stops processes concurrently and joins their errors.
func stopAll(ps []*proc, grace time.Duration) error {
	errs := make([]error, len(ps))
	done := make(chan struct{})
	for i, p := range ps {
		go func() {
			errs[i] = p.stop(grace)
			done <- struct{}{}
		}()
	}
	for range ps {
		<-done
	}
	return errors.Join(errs...)
}
