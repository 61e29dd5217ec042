//go:build unix

package testbed

import (
	"errors"
	"os"
	"syscall"
)

// signalGroup sends sig to every process of the process group led by pid
// (each JVM is started as the leader of its own group). A group that no
// longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// lockFile takes an exclusive advisory lock on path (created if missing),
// held until the returned function is called: two test binaries, or a test
// and the CLI, must not run Maven into the same output at once.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
