package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitFraction of the container's memory limit is the Go runtime's
// soft memory limit: the garbage collector works harder as the heap nears
// it, instead of letting the heap grow to twice the live data (GOGC=100)
// and the container be OOM-killed; the rest is for stacks, the binary and
// what the runtime does not count.
const memoryLimitFraction = 0.9

// cgroupMemoryFiles are where a container's memory limit is, cgroup v2
// first, then v1, relative to the cgroup file system's root.
var cgroupMemoryFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// setMemoryLimit sets the Go runtime's soft memory limit to 90 % of the
// container's memory limit (read under root, normally /sys/fs/cgroup),
// unless GOMEMLIMIT is set (the runtime has applied it) or there is no
// limit. It returns the limit set (0: none) and what it did, for the log.
func setMemoryLimit(root string, getenv func(string) string) (int64, string) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v + " from the environment"
	}
	limit, err := cgroupMemoryLimit(root)
	if err != nil {
		return 0, "no container memory limit: " + err.Error()
	}
	set := int64(float64(limit) * memoryLimitFraction)
	debug.SetMemoryLimit(set)
	return set, fmt.Sprintf("%.0f%% of the container's memory limit of %d bytes", 100*memoryLimitFraction, limit)
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup.
func cgroupMemoryLimit(root string) (int64, error) {
	for _, name := range cgroupMemoryFiles {
		b, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, errors.New(name + " is max")
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		// cgroup v1 writes "no limit" as a huge page-rounded number.
		if n <= 0 || n >= 1<<62 {
			return 0, fmt.Errorf("%s: no limit (%d)", name, n)
		}
		return n, nil
	}
	return 0, errors.New("no cgroup memory file")
}
