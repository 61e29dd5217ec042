// Package assign reproduces the rules by which Flink spreads work over the
// subtasks of a vertex: Kafka partitions over source readers (on a fresh start
// and on restore from a savepoint), and key groups over keyed subtasks. The
// scaling model uses them to predict the busiest subtask at a candidate
// parallelism; the simulator uses them to behave as Flink does.
//
// Every function is pure and follows the Java code it names, including Java's
// 32-bit integer overflow.
package assign

import (
	"fmt"
	"sort"
	"unicode"
	"unicode/utf16"
)

// TopicPartition names one Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// JavaStringHashCode is java.lang.String.hashCode: s[0]*31^(n-1) + … over the
// string's UTF-16 code units, in 32-bit two's complement arithmetic.
func JavaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
			h = 31*(31*h+r1) + r2 // a surrogate pair is two UTF-16 units
		} else {
			h = 31*h + r
		}
	}
	return h
}

// KafkaSplitOwner is the reader index that KafkaSourceEnumerator.getSplitOwner
// gives a partition on a fresh start (and for newly discovered partitions):
// startIndex = ((topic.hashCode() * 31) & 0x7FFFFFFF) % numReaders, owner =
// (startIndex + partition) % numReaders.
func KafkaSplitOwner(topic string, partition, numReaders int) int {
	if numReaders < 1 {
		panic(fmt.Sprintf("assign: numReaders must be positive, got %d", numReaders))
	}
	return (TopicHash(topic)%numReaders + partition) % numReaders
}

// TopicHash is the topic's part of KafkaSplitOwner,
// (topic.hashCode() * 31) & 0x7FFFFFFF, for callers that assign many
// partitions of one topic.
func TopicHash(topic string) int {
	return int((JavaStringHashCode(topic) * 31) & 0x7FFFFFFF)
}

// SortSplits sorts partitions by topic, then partition, the order in which
// the enumerator assigns them.
func SortSplits(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

// FreshAssignment returns each reader's splits on a fresh start at the given
// parallelism, each reader's list in assignment order.
func FreshAssignment(tps []TopicPartition, parallelism int) [][]TopicPartition {
	sorted := append([]TopicPartition(nil), tps...)
	SortSplits(sorted)
	out := make([][]TopicPartition, parallelism)
	for _, tp := range sorted {
		o := KafkaSplitOwner(tp.Topic, tp.Partition, parallelism)
		out[o] = append(out[o], tp)
	}
	return out
}

// RestoreAssignment is how a KafkaSource's splits are spread when the job is
// restored from a savepoint or checkpoint at a new parallelism: reader splits
// are operator list state, which RoundRobinOperatorStateRepartitioner
// concatenates in old-subtask order and cuts into contiguous chunks of
// total/newParallelism, the first total%newParallelism subtasks taking one
// extra.
func RestoreAssignment(current [][]TopicPartition, newParallelism int) [][]TopicPartition {
	if newParallelism < 1 {
		panic(fmt.Sprintf("assign: parallelism must be positive, got %d", newParallelism))
	}
	var all []TopicPartition
	for _, s := range current {
		all = append(all, s...)
	}
	out := make([][]TopicPartition, newParallelism)
	base, extra := len(all)/newParallelism, len(all)%newParallelism
	at := 0
	for i := range out {
		n := base
		if i < extra {
			n++
		}
		out[i] = all[at : at+n : at+n]
		at += n
	}
	return out
}

// DefaultMaxParallelism is KeyGroupRangeAssignment.computeDefaultMaxParallelism:
// min(max(roundUpToPowerOfTwo(p + p/2), 128), 32768).
func DefaultMaxParallelism(parallelism int) int {
	n := 1
	for n < parallelism+parallelism/2 {
		n <<= 1
	}
	return min(max(n, 1<<7), 1<<15)
}

// KeyGroupRange is the inclusive range of key groups one subtask owns
// (computeKeyGroupRangeForOperatorIndex).
func KeyGroupRange(maxParallelism, parallelism, index int) (first, last int) {
	first = (index*maxParallelism + parallelism - 1) / parallelism
	last = ((index+1)*maxParallelism - 1) / parallelism
	return first, last
}

// MaxKeyGroupsPerSubtask is the size of the largest key-group range at a
// parallelism: ceil(maxParallelism/parallelism), as the ranges differ by at
// most one.
func MaxKeyGroupsPerSubtask(maxParallelism, parallelism int) int {
	return (maxParallelism + parallelism - 1) / parallelism
}

// OperatorIndexForKeyGroup is computeOperatorIndexForKeyGroup.
func OperatorIndexForKeyGroup(maxParallelism, parallelism, keyGroup int) int {
	return keyGroup * parallelism / maxParallelism
}

// KeyGroupForHash is assignToKeyGroup for a key whose Java hashCode() is h:
// murmurHash(h) % maxParallelism.
func KeyGroupForHash(h int32, maxParallelism int) int {
	return int(MurmurHash(h)) % maxParallelism
}

// MurmurHash is org.apache.flink.util.MathUtils.murmurHash: one round of
// Murmur3 over an int, made non-negative.
func MurmurHash(code int32) int32 {
	c := uint32(code)
	c *= 0xcc9e2d51
	c = c<<15 | c>>17
	c *= 0x1b873593
	c = c<<13 | c>>19
	c = c*5 + 0xe6546b64
	c ^= 4
	c ^= c >> 16
	c *= 0x85ebca6b
	c ^= c >> 13
	c *= 0xc2b2ae35
	c ^= c >> 16
	r := int32(c)
	switch {
	case r >= 0:
		return r
	case r != -1<<31:
		return -r
	default:
		return 0
	}
}
