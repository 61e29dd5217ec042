package assign

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJavaStringHashCode(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int32
	}{
		{"", 0},
		{"a", 97},
		{"orders", -1008770331},   // reference vector from Flink's docs of the enumerator
		{"user-42", -147182656},   // reference vector for key groups
		{"€", 0x20ac},             // one UTF-16 unit
		{"😀", 0xd83d*31 + 0xde00}, // a surrogate pair counts as two units
	} {
		assert.Equal(t, tc.want, JavaStringHashCode(tc.s), tc.s)
	}
}

func TestKafkaSplitOwnerReferenceVector(t *testing.T) {
	// "orders".hashCode()*31 & 0x7FFFFFFF = 1088887011; 1088887011 % 4 = 3, so
	// partitions 0..7 go to readers 3,0,1,2,3,0,1,2.
	var got []int
	for p := range 8 {
		got = append(got, KafkaSplitOwner("orders", p, 4))
	}
	assert.Equal(t, []int{3, 0, 1, 2, 3, 0, 1, 2}, got)
}

func TestFreshAssignmentBalancesOneTopic(t *testing.T) {
	tps := topic("orders", 10)
	got := FreshAssignment(tps, 4)
	// start index 3: readers 3,0,1,2,3,0,1,2,3,0 → reader 3 and 0 get three.
	assert.Equal(t, []int{3, 2, 2, 3}, sizes(got))
	assert.Equal(t, TopicPartition{"orders", 0}, got[3][0])
}

func TestRestoreAssignmentCutsContiguousChunks(t *testing.T) {
	current := FreshAssignment(topic("orders", 8), 4) // [1,5] [2,6] [3,7] [0,4]
	got := RestoreAssignment(current, 3)
	// concatenated: 1,5,2,6,3,7,0,4 → 8/3 = 2 rem 2 → chunks of 3,3,2.
	require.Equal(t, []int{3, 3, 2}, sizes(got))
	assert.Equal(t, []TopicPartition{{"orders", 1}, {"orders", 5}, {"orders", 2}}, got[0])
	assert.Equal(t, []TopicPartition{{"orders", 0}, {"orders", 4}}, got[2])
	// More subtasks than splits: the tail subtasks get nothing.
	assert.Equal(t, []int{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, sizes(RestoreAssignment(current, 10)))
}

func TestDefaultMaxParallelism(t *testing.T) {
	for p, want := range map[int]int{1: 128, 85: 128, 86: 256, 100: 256, 200: 512, 30000: 32768} {
		assert.Equal(t, want, DefaultMaxParallelism(p), "p=%d", p)
	}
}

func TestKeyGroupRanges(t *testing.T) {
	// maxP=128, p=3 → [0,42] [43,85] [86,127].
	var got [][2]int
	for i := range 3 {
		f, l := KeyGroupRange(128, 3, i)
		got = append(got, [2]int{f, l})
	}
	assert.Equal(t, [][2]int{{0, 42}, {43, 85}, {86, 127}}, got)
	assert.Equal(t, 43, MaxKeyGroupsPerSubtask(128, 3))
	assert.Equal(t, 0, OperatorIndexForKeyGroup(128, 3, 42))
	assert.Equal(t, 1, OperatorIndexForKeyGroup(128, 3, 43))
}

func TestKeyGroupForHashReferenceVector(t *testing.T) {
	// "user-42" → key group 20 at maxP=128 → operator 0 at p=3.
	kg := KeyGroupForHash(JavaStringHashCode("user-42"), 128)
	assert.Equal(t, 20, kg)
	assert.Equal(t, 0, OperatorIndexForKeyGroup(128, 3, kg))
}

// The ranges of every parallelism tile [0, maxP) exactly, agree with
// OperatorIndexForKeyGroup, and their largest size is MaxKeyGroupsPerSubtask.
func TestKeyGroupRangesTile(t *testing.T) {
	for _, maxP := range []int{1, 7, 128, 720} {
		for p := 1; p <= maxP; p++ {
			next, largest := 0, 0
			for i := range p {
				f, l := KeyGroupRange(maxP, p, i)
				require.Equal(t, next, f, "maxP=%d p=%d i=%d", maxP, p, i)
				require.Equal(t, i, OperatorIndexForKeyGroup(maxP, p, f))
				require.Equal(t, i, OperatorIndexForKeyGroup(maxP, p, l))
				largest = max(largest, l-f+1)
				next = l + 1
			}
			require.Equal(t, maxP, next)
			require.Equal(t, MaxKeyGroupsPerSubtask(maxP, p), largest)
		}
	}
}

func FuzzRestoreAssignment(f *testing.F) {
	f.Add(uint8(8), uint8(4), uint8(3))
	f.Add(uint8(1), uint8(1), uint8(9))
	f.Fuzz(func(t *testing.T, n, oldP, newP uint8) {
		if oldP == 0 || newP == 0 {
			return
		}
		got := RestoreAssignment(FreshAssignment(topic("t", int(n)), int(oldP)), int(newP))
		seen := map[TopicPartition]bool{}
		lo, hi := int(n), 0
		for _, s := range got {
			lo, hi = min(lo, len(s)), max(hi, len(s))
			for _, tp := range s {
				if seen[tp] {
					t.Fatalf("%v assigned twice", tp)
				}
				seen[tp] = true
			}
		}
		if len(seen) != int(n) || hi-lo > 1 {
			t.Fatalf("n=%d old=%d new=%d: %d assigned, sizes %v", n, oldP, newP, len(seen), sizes(got))
		}
	})
}

func topic(name string, n int) []TopicPartition {
	var out []TopicPartition
	for p := range n {
		out = append(out, TopicPartition{name, p})
	}
	return out
}

func sizes(a [][]TopicPartition) []int {
	var out []int
	for _, s := range a {
		out = append(out, len(s))
	}
	return out
}
