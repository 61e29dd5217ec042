package e2e

import (
	"testing"

	"github.com/flinkscale/flinkscale/test/envtest"
)

// The simulated world: the job, its deployment and the clock come from
// test/fixtures, shared with the controllers' tests.

// The tests share one control plane.
func TestMain(m *testing.M) { envtest.Main(m) }
