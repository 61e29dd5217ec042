package scenario

import (
	"hash/fnv"
	"time"
)

// valueNoise is smooth noise in [−1, 1] at offset t: value noise on a
// lattice with spacing corr. Lattice point k = ⌊t/corr⌋ gets a value
// uniform in [−1, 1] from a hash of (seed, topic, overlay, k), and between
// two lattice points the values are blended with the smoothstep
// 3f² − 2f³, f the fraction of the way. No state: the same arguments give
// the same value whatever was asked before, so the noise does not depend
// on the order or the frequency of the calls.
func valueNoise(seed int64, topic string, overlay int, t, corr time.Duration) float64 {
	if corr <= 0 {
		return 0
	}
	t = max(t, 0)
	k := t / corr
	f := float64(t-k*corr) / float64(corr)
	key := noiseKey(seed, topic, overlay)
	v0 := lattice(key, uint64(k))
	if f == 0 {
		return v0
	}
	v1 := lattice(key, uint64(k)+1)
	s := f * f * (3 - 2*f)
	return v0 + (v1-v0)*s
}

// noiseKey mixes the seed, the topic and the overlay's index into one key.
func noiseKey(seed int64, topic string, overlay int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(topic))
	key := splitmix64(uint64(seed))
	key = splitmix64(key ^ h.Sum64())
	return splitmix64(key ^ uint64(overlay))
}

// lattice is the value at lattice point k: uniform in [−1, 1).
func lattice(key, k uint64) float64 {
	x := splitmix64(key ^ splitmix64(k))
	return float64(x>>11)/(1<<52) - 1
}

// splitmix64 is the SplitMix64 finaliser (Steele, Lea and Flood, 2014): a
// bijective mix of 64 bits whose outputs pass statistical tests.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
