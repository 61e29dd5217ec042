//go:build unix

package controllers

import "syscall"

// openFileLimit is the process's limit on open files (RLIMIT_NOFILE; Go
// raises the soft limit to the hard one at start), 0 when unknown.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
