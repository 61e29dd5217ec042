package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The controller sets the Go runtime's memory limit to 90 % of its
// container's (cgroup v2 or v1); GOMEMLIMIT, no limit ("max", v1's huge
// number) or no cgroup file leave the runtime as it is.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	noEnv := func(string) string { return "" }
	write := func(t *testing.T, name, content string) string {
		root := t.TempDir()
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return root
	}

	set, why := setMemoryLimit(write(t, "memory.max", "536870912\n"), noEnv)
	assert.Equal(t, int64(483183820), set, "0.9 × 512 MiB; %s", why)
	assert.Equal(t, set, debug.SetMemoryLimit(-1), "the runtime's limit")

	set, _ = setMemoryLimit(write(t, "memory/memory.limit_in_bytes", "1073741824"), noEnv)
	assert.Equal(t, int64(966367641), set, "cgroup v1: 0.9 × 1 GiB")

	before := debug.SetMemoryLimit(-1)
	for name, root := range map[string]string{
		"v2 max":       write(t, "memory.max", "max\n"),
		"v1 unlimited": write(t, "memory/memory.limit_in_bytes", "9223372036854771712"),
		"no cgroup":    t.TempDir(),
	} {
		set, why := setMemoryLimit(root, noEnv)
		assert.Zero(t, set, "%s: %s", name, why)
		assert.Equal(t, before, debug.SetMemoryLimit(-1), name)
	}
	set, why = setMemoryLimit(write(t, "memory.max", "536870912"), func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	})
	assert.Zero(t, set)
	assert.Contains(t, why, "GOMEMLIMIT=300MiB")
}
