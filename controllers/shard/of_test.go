package shard

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"
)

// Of is FNV-1a 32 of "namespace/name" mod n: these values are what any
// FNV-1a implementation gives (users compute shards with it), so a change
// of hash fails here.
func TestShardOfIsStable(t *testing.T) {
	for _, c := range []struct {
		ns, name string
		n, want  int
	}{
		{"streaming", "orders", 3, 1637158021 % 3},
		{"streaming", "orders", 10, 1637158021 % 10},
		{"default", "clicks", 3, 1953258450 % 3},
		{"a", "b", 10, 982414785 % 10},
		{"a", "b", 1, 0},
		{"a", "b", 0, 0},
	} {
		assert.Equal(t, c.want, Of(types.NamespacedName{Namespace: c.ns, Name: c.name}, c.n), "%s/%s mod %d", c.ns, c.name, c.n)
	}
}

// 10,000 keys of realistic shapes spread within a few percent of uniform:
// every shard within 7 % of its share, and the counts pass a chi-squared
// test of uniformity at the 0.1 % level (a sampling error of 2 standard
// deviations is 5 % of a shard's share at 8 shards).
func TestShardOfSpreadsUniformly(t *testing.T) {
	const keys = 10000
	// chi-squared 0.999 quantiles by degrees of freedom (n-1)
	critical := map[int]float64{1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 7: 24.32, 9: 27.88}
	shapes := map[string]func(i int) types.NamespacedName{
		"37 namespaces": func(i int) types.NamespacedName {
			return types.NamespacedName{Namespace: fmt.Sprintf("team-%d", i%37), Name: fmt.Sprintf("job-%d", i)}
		},
		"one namespace": func(i int) types.NamespacedName {
			return types.NamespacedName{Namespace: "streaming", Name: fmt.Sprintf("orders-%05d", i)}
		},
	}
	for shape, key := range shapes {
		for _, n := range []int{2, 3, 4, 5, 8, 10} {
			counts := make([]int, n)
			for i := range keys {
				counts[Of(key(i), n)]++
			}
			want := float64(keys) / float64(n)
			chi2 := 0.0
			for s, c := range counts {
				assert.InEpsilon(t, want, float64(c), 0.07, "%s: shard %d of %d holds %d keys (uniform: %.0f)", shape, s, n, c, want)
				chi2 += (float64(c) - want) * (float64(c) - want) / want
			}
			assert.Less(t, chi2, critical[n-1], "%s, %d shards: %v", shape, n, counts)
		}
	}
}

func TestShardHomeOrdinal(t *testing.T) {
	for _, c := range []struct {
		id   string
		n    int
		want int
	}{
		{"flinkscale-0", 3, 0},
		{"flinkscale-2", 3, 2},
		{"my-release-flinkscale-1", 3, 1},
		{"flinkscale-3", 3, -1}, // spare replica: no home, no tug of war
		{"flinkscale-7d9f8b6c5-x2x4z", 3, -1},
		{"flinkscale", 3, -1},
		{"flinkscale-", 3, -1},
		{"flinkscale-01", 3, -1},
		{"host.example.com", 3, -1},
	} {
		assert.Equal(t, c.want, Home(c.id, c.n), c.id)
	}
}
