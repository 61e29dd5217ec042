package flink

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flinkscale/flinkscale/metrics"
)

// After an in-place rescale of a source 2 → 1, real Flink's metric store
// still lists subtask 1's gauges for partition 1 (stopped at offset 900)
// beside subtask 0's, which read it now (offset 1,150): one owner per
// partition, the live one.
func TestLiveOwnersDropsStaleGaugesOfGoneSubtasks(t *testing.T) {
	po := func(p, sub int, cur, com int64) metrics.PartitionOwner {
		return metrics.PartitionOwner{Topic: "clicks", Partition: p, Subtask: sub, CurrentOffset: cur, CommittedOffset: com}
	}
	for _, tc := range []struct {
		name string
		in   []metrics.PartitionOwner
		want []metrics.PartitionOwner
	}{
		{"one owner each: unchanged, sorted",
			[]metrics.PartitionOwner{po(1, 1, 900, 880), po(0, 0, 1000, 990)},
			[]metrics.PartitionOwner{po(0, 0, 1000, 990), po(1, 1, 900, 880)}},
		{"scale-in: the stale subtask 1 (900) loses to subtask 0 (1,150)",
			[]metrics.PartitionOwner{po(0, 0, 1200, 1100), po(1, 1, 900, 880), po(1, 0, 1150, 1100)},
			[]metrics.PartitionOwner{po(0, 0, 1200, 1100), po(1, 0, 1150, 1100)}},
		{"scale-out: the new subtask 3 took partition 1 and is ahead",
			[]metrics.PartitionOwner{po(1, 0, 700, 650), po(1, 3, 760, 700)},
			[]metrics.PartitionOwner{po(1, 3, 760, 700)}},
		{"just after the restart, offsets equal: the higher commit, then the lower subtask",
			[]metrics.PartitionOwner{po(0, 2, 500, 400), po(0, 1, 500, 500), po(1, 3, 600, 600), po(1, 0, 600, 600)},
			[]metrics.PartitionOwner{po(0, 1, 500, 500), po(1, 0, 600, 600)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, liveOwners(tc.in))
		})
	}
}
