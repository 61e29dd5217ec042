package target

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/flinkscale/flinkscale/scaling"
)

// Flink's network buffer keys (the settings that decide how many network
// buffers a job needs; scaling.NetworkSettings).
const (
	KeySegmentSize                = "taskmanager.memory.segment-size"
	KeyBuffersPerChannel          = "taskmanager.network.memory.buffers-per-channel"
	KeyFloatingBuffersPerGate     = "taskmanager.network.memory.floating-buffers-per-gate"
	KeyMaxOverdraftBuffersPerGate = "taskmanager.network.memory.max-overdraft-buffers-per-gate"
	KeyRequiredPerGateMax         = "taskmanager.network.memory.read-buffer.required-per-gate.max"
)

// minSegmentSize is the smallest memory segment Flink accepts.
const minSegmentSize = 4096

// NetworkSettings reads the network buffer keys of the flinkConfiguration
// (nil when none is set: Flink's defaults). A value Flink would not accept
// is an error naming the key, never a default: the plan's buffers would be
// counted for settings the job does not run with. A count of 0 takes the
// model's default, which needs at least as many buffers.
func (d *Deployment) NetworkSettings() (*scaling.NetworkSettings, error) {
	var n scaling.NetworkSettings
	var errs []error
	set := false
	count := func(key string, least int) int {
		v, ok := d.Configuration[key]
		if !ok || strings.TrimSpace(v) == "" {
			return 0
		}
		set = true
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || x < least {
			errs = append(errs, fmt.Errorf("flinkConfiguration %s: %q is not an integer ≥ %d", key, v, least))
			return 0
		}
		return x
	}
	if v, ok := d.Configuration[KeySegmentSize]; ok && strings.TrimSpace(v) != "" {
		set = true
		b, err := scaling.ParseMemorySize(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("flinkConfiguration %s: %w", KeySegmentSize, err))
		case b < minSegmentSize || b&(b-1) != 0:
			errs = append(errs, fmt.Errorf("flinkConfiguration %s: %q is not a power of two of at least 4 KiB", KeySegmentSize, v))
		default:
			n.SegmentSizeBytes = b
		}
	}
	n.BuffersPerChannel = count(KeyBuffersPerChannel, 0)
	n.FloatingBuffersPerGate = count(KeyFloatingBuffersPerGate, 0)
	n.MaxOverdraftBuffersPerGate = count(KeyMaxOverdraftBuffersPerGate, 0)
	n.RequiredPerGateMax = count(KeyRequiredPerGateMax, 1)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !set {
		return nil, nil
	}
	return &n, nil
}
