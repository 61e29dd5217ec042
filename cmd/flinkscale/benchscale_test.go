//go:build !controller

package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bad bench-scale arguments fail before anything starts, with what to fix.
func TestBenchScaleRejectsBadArguments(t *testing.T) {
	ok := benchScaleArgs{jobs: 10, concurrency: 8, replicas: 1, duration: time.Minute, flinkTimeout: 10 * time.Second,
		pollingInterval: 30 * time.Second, out: "table"}
	for _, tc := range []struct {
		edit func(*benchScaleArgs)
		want string
	}{
		{func(o *benchScaleArgs) { o.containerMemory = "lots" }, `--container-memory-limit "lots": a positive quantity such as 256Mi`},
		{func(o *benchScaleArgs) { o.containerMemory = "0" }, `--container-memory-limit "0"`},
		{func(o *benchScaleArgs) { o.containerMemory, o.fleetInProcess = "256Mi", true }, "needs the fleet in a process of its own"},
		{func(o *benchScaleArgs) { o.out = "yaml" }, "-o must be table or json"},
	} {
		o := ok
		tc.edit(&o)
		err := benchScaleCmd(context.Background(), o, io.Discard, io.Discard)
		require.ErrorContains(t, err, tc.want)
	}
}
