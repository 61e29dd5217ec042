package testbed

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Usage is one testbed process's resource use, read from /proc.
type Usage struct {
	Name string
	PID  int
	// CPUSeconds is user + system time since the process started.
	CPUSeconds float64
	// RSSBytes is the resident set size now.
	RSSBytes int64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux the project runs on.
const clockTicks = 100

// Usage reads every process of the testbed (the broker, the JobManager,
// the TaskManagers). Linux only: elsewhere it returns an error.
func (tb *Testbed) Usage() ([]Usage, error) {
	procs := tb.Flink.Processes()
	if tb.Kafka != nil {
		procs = append([]Process{tb.Kafka.Process()}, procs...)
	}
	out := make([]Usage, 0, len(procs))
	for _, p := range procs {
		u, err := readUsage(p.PID)
		if err != nil {
			return nil, fmt.Errorf("testbed: usage of %s (pid %d): %w", p.Name, p.PID, err)
		}
		u.Name = p.Name
		out = append(out, u)
	}
	return out, nil
}

func readUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Usage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return Usage{}, err
	}
	return Usage{PID: pid, CPUSeconds: cpu, RSSBytes: rss}, nil
}

// parseStatCPU reads utime + stime (fields 14 and 15) of /proc/<pid>/stat,
// counting fields after the command name, which is in parentheses and may
// hold spaces.
func parseStatCPU(stat []byte) (float64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("malformed /proc stat %q", string(stat))
	}
	f := strings.Fields(string(stat[end+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat times %q %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// parseStatusRSS reads VmRSS (kB) of /proc/<pid>/status.
func parseStatusRSS(status []byte) (int64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("malformed VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("malformed VmRSS line %q", line)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc status")
}
