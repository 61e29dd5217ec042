//go:build unix && !linux

package testbed

import "syscall"

// sysProcAttr starts a child as the leader of its own process group. Outside
// Linux there is no parent-death signal: a test binary killed before its
// cleanup can leave the JVMs running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
