package controllers

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The shared REST client keeps four idle connections for each of 10,000
// JobManagers, or half the open-file limit when that is less: a socket is
// a file descriptor.
func TestRESTIdleBound(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, MaxRESTIdleConnections},       // unknown
		{1 << 20, MaxRESTIdleConnections}, // a container's usual 1,048,576
		{80_000, MaxRESTIdleConnections},  // 80,000 / 2 = 40,000
		{79_998, 39_999},                  // half
		{20_000, 10_000},                  // this project's CI machines
		{1_024, 1_000},                    // 512 would be less than 1,000
	} {
		assert.Equal(t, tc.want, restIdleBound(tc.nofile), "RLIMIT_NOFILE %d", tc.nofile)
	}
	tr := NewRESTTransport()
	assert.Equal(t, RESTConnectionsPerJobManager, tr.MaxIdlePerHost)
	assert.Equal(t, restIdleBound(openFileLimit()), tr.MaxIdle)
	assert.Positive(t, openFileLimit(), "this is a unix machine")
}
