package realbench

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// The race's scenarios are compressed, in the testbed's units, and the
// testbed plays them as written (rate and time scale 1) on the adaptive
// scheduler the rival needs.
func TestRealScenariosArePlayableAsWritten(t *testing.T) {
	all, err := scenario.All("../scenarios/real")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), 3, "three to five compressed scenarios")
	for _, s := range all {
		t.Run(s.Name, func(t *testing.T) {
			raw, err := os.ReadFile(s.File)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(raw), "# "+s.Name+": "), "a comment header naming the scenario")
			assert.Equal(t, 10.0, s.Compression)
			assert.Equal(t, "adaptive", s.Job.Scheduler, "the standalone autoscaler rescales in place only")
			assert.Equal(t, "1.20", s.Job.FlinkVersion, "the rival's release is built against Flink 1.20")
			assert.NotNil(t, s.Expect.MaxRescales)
			r, err := testbed.Realise(s, testbed.Scale{Rate: 1, Time: 1})
			require.NoError(t, err)
			assert.Equal(t, s.Duration, r.Scaled.Duration, "played as written")
			assert.LessOrEqual(t, r.PeakRate, 0.5*testbed.MaxSourceRate, "three testbeds share the machine")
		})
	}
}
