package v1alpha1_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// The samples in config/samples are accepted by the API server as written,
// and convert to a valid model policy with the values they show.
func TestSamplesAreAccepted(t *testing.T) {
	c, ns := startAPI(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "samples", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var p v1alpha1.FlinkScalingPolicy
		require.NoError(t, yaml.UnmarshalStrict(raw, &p), f)
		p.Namespace = ns
		require.NoError(t, c.Create(ctx(t), &p), f)
		var got v1alpha1.FlinkScalingPolicy
		require.NoError(t, c.Get(ctx(t), client.ObjectKeyFromObject(&p), &got))
		policy, err := got.Spec.ScalingPolicy()
		require.NoError(t, err, f)
		if filepath.Base(f) == "flinkscalingpolicy.yaml" {
			assert.Equal(t, 64, policy.MaxParallelism)
			assert.Equal(t, 4.0, policy.Behavior.ScaleUp.MaxFactor)
			assert.Equal(t, 48.0, policy.Resources.MaxCores)
			assert.Equal(t, scaling.MemoryRecommend, policy.Memory.Mode)
			assert.Equal(t, 0.25, policy.Memory.Headroom)
			require.Len(t, policy.Vertices, 1)
			assert.True(t, policy.Vertices[0].Exclude)
		}
	}
}
