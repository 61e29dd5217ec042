package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func startTestProc(t *testing.T, script string) *proc {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	p, err := startProc(Process{Name: "sh", Output: filepath.Join(dir, "sh.out"), Log: filepath.Join(dir, "sh.log")},
		dir, []string{"/bin/sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(time.Second) })
	return p
}

func TestStopTerminatesGracefully(t *testing.T) {
	p := startTestProc(t, "exec sleep 300")
	began := time.Now()
	if err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("SIGTERM took %s to stop sleep", d)
	}
	assertGroupGone(t, p.Process)
}

// A process that ignores SIGTERM, and a child it forked (which inherits the
// ignored signal), are killed once the grace period is over.
func TestStopKillsTheGroupAfterTheGrace(t *testing.T) {
	p := startTestProc(t, `trap "" TERM; sleep 300 & echo started; wait`)
	waitUntil(t, func() bool { return strings.Contains(tailFile(p.Output, 1), "started") })
	grace := 300 * time.Millisecond
	began := time.Now()
	if err := p.stop(grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < grace {
		t.Errorf("stopped after %s, before the %s grace: did it ignore SIGTERM?", d, grace)
	}
	assertGroupGone(t, p.Process)         // and the forked sleep
	if err := p.stop(grace); err != nil { // again: nothing to do
		t.Errorf("second stop: %v", err)
	}
}

func TestExitedEarlyShowsTheOutput(t *testing.T) {
	p := startTestProc(t, `echo "Error: Could not find or load main class Nope" >&2; exit 3`)
	waitUntil(t, p.exited)
	err := p.exitError()
	for _, want := range []string{"sh (pid ", "exit status 3", "Could not find or load main class Nope", "sh.out"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("exitError() = %q, missing %q", err, want)
		}
	}
}

func TestStartProcMissingBinary(t *testing.T) {
	dir := t.TempDir()
	_, err := startProc(Process{Name: "java", Output: filepath.Join(dir, "x.out")}, dir, []string{filepath.Join(dir, "no-java")})
	if err == nil || !strings.Contains(err.Error(), "starting java") {
		t.Errorf("startProc of a missing binary: %v", err)
	}
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc", 0, ""},
		{"", 3, ""},
		{"only\n\n\n", 2, "only"},
	} {
		if got := lastLines([]byte(c.in), c.n); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers are the processes of process group pgid that have not
// ended, from /proc (a killed child is a zombie until init reaps it, and in
// a container that can take a while).
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertGroupGone fails when p or anything in its process group still runs.
func assertGroupGone(t *testing.T, p Process) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID)); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); !strings.Contains(string(b), ") Z ") {
			t.Errorf("%s (pid %d) still runs after it was stopped", p.Name, p.PID)
		}
	}
	// SIGKILL takes effect when the killed process next runs: give the
	// kernel a moment.
	left := groupMembers(t, p.PID)
	for deadline := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		left = groupMembers(t, p.PID)
	}
	if len(left) > 0 {
		slices.Sort(left)
		t.Errorf("%s (pid %d): its process group still has processes %v after it was stopped", p.Name, p.PID, left)
	}
}
