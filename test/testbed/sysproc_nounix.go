//go:build !unix

package testbed

import (
	"errors"
	"syscall"
)

var errNotUnix = errors.New("testbed: starting Flink and Kafka processes needs a Unix system")

func sysProcAttr() *syscall.SysProcAttr          { return nil }
func signalGroup(int, syscall.Signal) error      { return errNotUnix }
func lockFile(string) (unlock func(), err error) { return nil, errNotUnix }
