package testbed

import "syscall"

// sysProcAttr starts a child as the leader of its own process group (so
// Stop can signal it and anything it forked at once, and a terminal's
// Ctrl-C reaches only the Go program, which then stops it in order) and has
// the kernel SIGKILL it when the Go program dies without stopping it: a
// crashed or killed test binary leaves no JVM behind.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process. The Go runtime only ends a thread when a goroutine exits while
// locked to it (runtime.LockOSThread), which nothing here does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
