package scenario

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// doc is a scenario with one source on topic "t" (4 partitions); load is
// the YAML of the topic's segments, one flow mapping per line.
func doc(seed int64, duration string, load ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `name: tiny
seed: %d
duration: %s
job:
  name: tiny
  topics: [{name: t, partitions: 4}]
  vertices:
    - {name: "Source: t -> Sink: x", parallelism: 2, capacity: 10000, selectivity: 0, topics: [t]}
  taskManager: {cpu: 2}
load:
  - topic: t
    segments:
`, seed, duration)
	for _, l := range load {
		fmt.Fprintf(&b, "      - %s\n", l)
	}
	return b.String()
}

func mustParse(t *testing.T, yaml string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(yaml))
	require.NoError(t, err, "%s", yaml)
	return s
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, doc(1, "1h", "{kind: constant, rate: 100}", "{kind: noise, percent: 5}"))
	assert.Equal(t, time.Second, s.Tick)
	assert.Equal(t, 5*time.Minute, s.SLO.Lag)
	j := s.Job
	assert.Equal(t, "1.20", j.FlinkVersion)
	assert.Equal(t, "default", j.Scheduler)
	assert.Equal(t, "tiny", j.ConsumerGroup)
	assert.Equal(t, 1.0, j.BufferSeconds)
	assert.Equal(t, 2, j.TaskManager.Slots, "one slot per core")
	assert.Equal(t, 2.0*(4<<30), j.TaskManager.MemoryBytes, "4 GiB per core")
	assert.Equal(t, time.Minute, j.Checkpoints.Interval)
	assert.Equal(t, 10*time.Minute, j.Checkpoints.Timeout)
	assert.Equal(t, float64(100<<20), j.Checkpoints.Throughput)
	assert.Equal(t, time.Minute, j.Restart.Time)
	assert.Equal(t, 30*time.Second, j.Restart.TaskManagerStartup)
	assert.Equal(t, time.Minute, s.Load[0].Segments[1].Correlation)

	d := mustParse(t, doc(1, "1h", "{kind: diurnal, base: 10, amplitude: 5}"))
	assert.Equal(t, 24*time.Hour, d.Load[0].Segments[0].Period)
}

// Each kind, at chosen instants, with the arithmetic.
func TestSegmentKinds(t *testing.T) {
	const m, h = time.Minute, time.Hour
	type at struct {
		t    time.Duration
		want float64
	}
	cases := []struct {
		name string
		load []string
		at   []at
	}{
		{"constant holds past its length and past the end",
			[]string{"{kind: constant, rate: 5000, for: 10m}"},
			[]at{{0, 5000}, {10 * m, 5000}, {5 * h, 5000}, {-m, 5000}}},
		{"ramp: from + (to−from)·τ/for, then the next segment",
			[]string{"{kind: ramp, from: 10000, to: 30000, for: 10m}", "{kind: constant, rate: 7000}"},
			[]at{
				{0, 10000},
				{150 * time.Second, 15000}, // 10000 + 20000·150/600
				{5 * m, 20000},             // 10000 + 20000·0.5
				{10*m - time.Second, 10000 + 20000*599.0/600},
				{10 * m, 7000}, // the constant starts
			}},
		{"a last ramp holds its 'to'",
			[]string{"{kind: ramp, from: 0, to: 600, for: 10m}"},
			[]at{{m, 60}, {10 * m, 600}, {2 * h, 600}}}, // 600·60/600 = 60
		{"step: from before at, to from at on",
			[]string{"{kind: step, from: 48000, to: 12000, at: 1h}"},
			[]at{{0, 48000}, {h - time.Second, 48000}, {h, 12000}, {3 * h, 12000}}},
		{"diurnal: base + amplitude·sin(2π(τ+phase)/period)",
			[]string{"{kind: diurnal, base: 30000, amplitude: 20000, period: 24h, phase: 14h}"},
			[]at{
				{0, 20000},                            // sin(2π·14/24) = sin(210°) = −0.5 → 30000 − 10000
				{4 * h, 10000},                        // sin(2π·18/24) = sin(270°) = −1
				{10 * h, 30000},                       // sin(2π·24/24) = 0
				{16 * h, 50000},                       // sin(2π·30/24) = sin(450°) = 1
				{28 * h, 10000},                       // the last segment keeps oscillating: = 4h
				{6 * h, 30000 - 20000*math.Sqrt(3)/2}, // sin(2π·20/24) = sin(300°) = −√3/2
			}},
		{"spike: peak during [at, at+width), rate otherwise",
			[]string{"{kind: spike, rate: 15000, peak: 60000, at: 40m, width: 3m}"},
			[]at{{0, 15000}, {40*m - time.Second, 15000}, {40 * m, 60000}, {43*m - time.Nanosecond, 60000}, {43 * m, 15000}}},
		{"segments follow one another; noise takes no place in the sequence",
			[]string{
				"{kind: constant, rate: 1000, for: 10m}",
				"{kind: noise, percent: 0}",
				"{kind: ramp, from: 1000, to: 2000, for: 10m}",
				"{kind: spike, rate: 2000, peak: 5000, at: 1m, width: 1m, for: 5m}",
				"{kind: step, from: 3000, to: 4000, at: 2m}",
			},
			[]at{
				{5 * m, 1000},
				{15 * m, 1500}, // ramp τ=5m: 1000 + 1000·0.5
				{20 * m, 2000}, // spike segment starts at 20m, τ=0 < at
				{21 * m, 5000}, // τ=1m: in the spike
				{22 * m, 2000}, // τ=2m: after it
				{25 * m, 3000}, // step starts at 25m, τ=0 < at
				{27 * m, 4000}, // τ=2m
				{9 * h, 4000},  // holds
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, doc(7, "10h", c.load...))
			for _, a := range c.at {
				assert.InDelta(t, a.want, s.Rate("t", a.t), 1e-6, "at %s", a.t)
			}
		})
	}
}

func TestNoise(t *testing.T) {
	const corr = time.Minute
	s := mustParse(t, doc(42, "24h", "{kind: constant, rate: 1000}", "{kind: noise, percent: 10, correlation: 1m}"))
	key := noiseKey(42, "t", 0)

	// At a lattice point k·corr the factor is 1 + 0.10·v_k.
	for k := range 5 {
		want := 1000 * (1 + 0.10*lattice(key, uint64(k)))
		assert.InDelta(t, want, s.Rate("t", time.Duration(k)*corr), 1e-9)
	}
	// Halfway, smoothstep(½) = ½: the mean of the two lattice values.
	v0, v1 := lattice(key, 3), lattice(key, 4)
	assert.InDelta(t, 1000*(1+0.10*(v0+v1)/2), s.Rate("t", 3*corr+corr/2), 1e-9)
	// A quarter of the way: smoothstep(¼) = 3/16 − 2/64 = 0.15625.
	assert.InDelta(t, 1000*(1+0.10*(v0+(v1-v0)*0.15625)), s.Rate("t", 3*corr+corr/4), 1e-9)

	// Bounded by ±percent, centered near 1, and it does move.
	lo, hi, sum, n := math.Inf(1), math.Inf(-1), 0.0, 0
	for at := time.Duration(0); at < 24*time.Hour; at += 7 * time.Second {
		r := s.Rate("t", at)
		lo, hi, sum, n = min(lo, r), max(hi, r), sum+r, n+1
	}
	assert.GreaterOrEqual(t, lo, 900.0)
	assert.LessOrEqual(t, hi, 1100.0)
	assert.Less(t, lo, 920.0, "the noise reaches near its bounds over a day")
	assert.Greater(t, hi, 1080.0)
	assert.InDelta(t, 1000, sum/float64(n), 5, "1440 lattice points average out to within 0.5 %")

	// Smooth: within one second the rate moves by at most
	// percent·rate·max|s'|/corr·1s = 0.1·1000·2·1.5/60 = 5 records/s.
	for at := time.Duration(0); at < time.Hour; at += time.Second {
		assert.LessOrEqual(t, math.Abs(s.Rate("t", at+time.Second)-s.Rate("t", at)), 5.0)
	}
}

func TestNoiseOverlaysHaveTheirOwnWindowAndMultiply(t *testing.T) {
	s := mustParse(t, doc(3, "3h",
		"{kind: constant, rate: 1000}",
		"{kind: noise, percent: 20, correlation: 5m, start: 1h, for: 30m}",
		"{kind: noise, percent: 10, correlation: 1m, start: 1h15m}",
	))
	assert.Equal(t, 1000.0, s.Rate("t", 59*time.Minute), "before the first overlay")
	at := 70 * time.Minute // only the first overlay (index 0)
	assert.InDelta(t, 1000*(1+0.2*valueNoise(3, "t", 0, at, 5*time.Minute)), s.Rate("t", at), 1e-9)
	at = 80 * time.Minute // both
	want := 1000 * (1 + 0.2*valueNoise(3, "t", 0, at, 5*time.Minute)) * (1 + 0.1*valueNoise(3, "t", 1, at, time.Minute))
	assert.InDelta(t, want, s.Rate("t", at), 1e-9)
	at = 2 * time.Hour // the first has ended, the second runs to the end
	assert.InDelta(t, 1000*(1+0.1*valueNoise(3, "t", 1, at, time.Minute)), s.Rate("t", at), 1e-9)
}

func TestSameSeedSameTrace(t *testing.T) {
	y := doc(11, "24h", "{kind: diurnal, base: 30000, amplitude: 20000}", "{kind: noise, percent: 15, correlation: 5m}")
	a, b := mustParse(t, y), mustParse(t, y)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		at := time.Duration(rng.Int64N(int64(24 * time.Hour)))
		require.Equal(t, a.Rate("t", at), b.Rate("t", at), "at %s", at)
		require.Equal(t, a.PartitionRates("t", at), b.PartitionRates("t", at))
	}
}

func TestDifferentSeedDifferentNoise(t *testing.T) {
	a := mustParse(t, doc(11, "24h", "{kind: constant, rate: 1000}", "{kind: noise, percent: 15}"))
	b := mustParse(t, doc(12, "24h", "{kind: constant, rate: 1000}", "{kind: noise, percent: 15}"))
	differ, n := 0, 0
	for at := time.Duration(0); at < 24*time.Hour; at += 37 * time.Second {
		n++
		if a.Rate("t", at) != b.Rate("t", at) {
			differ++
		}
	}
	assert.Equal(t, n, differ, "every sample differs")

	// Topics and overlays get independent noise too.
	assert.NotEqual(t, valueNoise(11, "t", 0, 90*time.Second, time.Minute), valueNoise(11, "u", 0, 90*time.Second, time.Minute))
	assert.NotEqual(t, valueNoise(11, "t", 0, 90*time.Second, time.Minute), valueNoise(11, "t", 1, 90*time.Second, time.Minute))
}

// Sampling every 1 s or every 7 s, forwards or backwards, gives the same
// values at the same instants: nothing depends on the calls before.
func TestRateIndependentOfSamplingStep(t *testing.T) {
	s, err := Load(libraryDir + "/steady-noise-24h.yaml")
	require.NoError(t, err)
	const span = 2 * time.Hour
	fine := map[time.Duration]float64{}
	for at := time.Duration(0); at <= span; at += time.Second {
		fine[at] = s.Rate("page-views", at)
	}
	checked := 0
	for at := span - span%(7*time.Second); at >= 0; at -= 7 * time.Second {
		require.Equal(t, fine[at], s.Rate("page-views", at), "at %s", at)
		checked++
	}
	assert.Greater(t, checked, 1000)

	// The scenario's own tick plays no part either.
	s7 := *s
	s7.Tick = 7 * time.Second
	for at := time.Duration(0); at <= span; at += 13 * time.Second {
		require.Equal(t, fine[at], s7.Rate("page-views", at))
	}
}

func TestArrivals(t *testing.T) {
	s := mustParse(t, doc(5, "1h", "{kind: ramp, from: 0, to: 600, for: 10m}", "{kind: step, from: 500, to: 1000, at: 10m}"))
	// A linear ramp is integrated exactly: ½·600·600 s = 180000.
	assert.InDelta(t, 180000, s.Arrivals("t", 0, 10*time.Minute), 1e-6)
	// 500/s for 10 min then 1000/s (a step on a whole second is exact):
	// 60·500 + 30·1000 from 19 to 20.5 min.
	assert.InDelta(t, 60000, s.Arrivals("t", 19*time.Minute, 20*time.Minute+30*time.Second), 1e-6)
	// Part of a cell: 250 ms of the ramp's cell [1 s, 2 s), midpoint 1.5 s
	// where the rate is 1.5: 0.375 records.
	assert.InDelta(t, 0.375, s.Arrivals("t", 1250*time.Millisecond, 1500*time.Millisecond), 1e-12)

	// Additive whatever the step: the sums over 1 s, 7 s and 333 ms steps
	// agree with the integral over the whole hour.
	n := mustParse(t, doc(5, "1h", "{kind: step, from: 500, to: 1500, at: 20m}", "{kind: noise, percent: 15, correlation: 30s}"))
	whole := n.Arrivals("t", 0, time.Hour)
	for _, step := range []time.Duration{time.Second, 7 * time.Second, 333 * time.Millisecond} {
		sum := 0.0
		for at := time.Duration(0); at < time.Hour; at += step {
			sum += n.Arrivals("t", at, min(at+step, time.Hour))
		}
		assert.InDelta(t, whole, sum, whole*1e-12, "step %s", step)
	}
	assert.Zero(t, n.Arrivals("nope", 0, time.Hour))
	assert.Zero(t, n.Arrivals("t", time.Hour, time.Minute))
}

func TestSharesAndPartitionRates(t *testing.T) {
	s := mustParse(t, strings.Replace(doc(1, "1h", "{kind: constant, rate: 1900}"),
		"{name: t, partitions: 4}", "{name: t, partitions: 4, weights: [6, 3, 0, 10]}", 1))
	// Weights normalised: 6/19, 3/19, 0, 10/19 of 1900/s.
	assert.InDeltaSlice(t, []float64{600, 300, 0, 1000}, s.PartitionRates("t", time.Minute), 1e-9)

	z := mustParse(t, strings.Replace(doc(1, "1h", "{kind: constant, rate: 1100}"),
		"{name: t, partitions: 4}", "{name: t, partitions: 3, skew: 1}", 1))
	// Zipf s=1 over 3: 1, 1/2, 1/3, summing to 11/6 → 6/11, 3/11, 2/11.
	assert.InDeltaSlice(t, []float64{600, 300, 200}, z.PartitionRates("t", 0), 1e-9)

	u := mustParse(t, doc(1, "1h", "{kind: constant, rate: 1000}"))
	assert.InDeltaSlice(t, []float64{250, 250, 250, 250}, u.PartitionRates("t", 0), 1e-9)
	assert.Nil(t, u.PartitionRates("nope", 0))
	assert.Zero(t, u.Rate("nope", 0))
}

func TestInitialPartitionLag(t *testing.T) {
	y := doc(1, "1h", "{kind: constant, rate: 1000}") + "initialLag: {t: 10}\n"
	s := mustParse(t, strings.Replace(y, "partitions: 4", "partitions: 3", 1))
	// 10/3 = 3.33 each: 3 apiece, the one left over to the lowest partition.
	assert.Equal(t, []int64{4, 3, 3}, s.InitialPartitionLag("t"))

	w := mustParse(t, strings.Replace(y, "{name: t, partitions: 4}", "{name: t, partitions: 4, weights: [6, 3, 0, 10]}", 1))
	// 60/19 = 3.16, 30/19 = 1.58, 0, 100/19 = 5.26 → 3, 1, 0, 5 (9), the
	// last record to the largest remainder, partition 1 (0.58).
	assert.Equal(t, []int64{3, 2, 0, 5}, w.InitialPartitionLag("t"))
	assert.Equal(t, []int64{0, 0, 0, 0}, mustParse(t, doc(1, "1h", "{kind: constant, rate: 1}")).InitialPartitionLag("t"))
}

func TestStrictDecoding(t *testing.T) {
	good := doc(1, "1h", "{kind: constant, rate: 1000}")
	cases := []struct {
		name, from, to string
		want           []string
	}{
		{"misspelled vertex field", "capacity: 10000", "capcity: 10000",
			[]string{`job.vertices[0]: unknown field "capcity" (did you mean "capacity"?)`}},
		{"wrong case", "capacity: 10000", "Capacity: 10000",
			[]string{`job.vertices[0]: unknown field "Capacity" (did you mean "capacity"?)`}},
		{"top-level typo", "duration: 1h", "durration: 1h",
			[]string{`(top): unknown field "durration" (did you mean "duration"?)`}},
		{"unknown segment field", "rate: 1000}", "rate: 1000, rat: 5}",
			[]string{`load[0].segments[0]: unknown field "rat" (did you mean "rate"?)`}},
		{"duration as a number", "duration: 1h", "duration: 3600",
			[]string{`duration: a duration must be a string such as "90s" or "1h30m", not the number 3600`}},
		{"bad duration", "duration: 1h", "duration: 1 hour",
			[]string{`duration: "1 hour" is not a duration`}},
		{"string for a number", "capacity: 10000", "capacity: lots",
			[]string{`job.vertices[0].capacity: want a number, not the string "lots"`}},
		{"fraction for an integer", "parallelism: 2", "parallelism: 2.5",
			[]string{`job.vertices[0].parallelism: want a whole number`}},
		{"duplicate key", "seed: 1", "seed: 1\nseed: 2",
			[]string{`"seed" already set`}},
		{"several problems at once", "capacity: 10000, selectivity: 0", "capcity: 10000, selectivity: none",
			[]string{`unknown field "capcity"`, `selectivity: want a number, not the string "none"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := strings.Replace(good, c.from, c.to, 1)
			require.NotEqual(t, good, y)
			_, err := Parse([]byte(y))
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSegmentFieldsPerKind(t *testing.T) {
	cases := []struct{ seg, want string }{
		{"{kind: constant, rate: 5, to: 7}", `load[0].segments[1] (constant).to: is not a field of constant (it takes rate, for)`},
		{"{kind: ramp, to: 7, for: 1m}", `load[0].segments[1] (ramp): ramp needs from`},
		{"{kind: spike, rate: 1, peak: 2, at: 1m}", `spike needs width`},
		{"{kind: noise, percent: 5, rate: 3}", `(noise).rate: is not a field of noise`},
		{"{kind: wave, rate: 3}", `load[0].segments[1].kind: must be one of constant, diurnal, noise, ramp, spike, step, not "wave"`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(doc(1, "1h", "{kind: constant, rate: 1, for: 1m}", c.seg)))
		require.Error(t, err, c.seg)
		assert.Contains(t, err.Error(), c.want)
	}
	// "from: 0" is given, not missing.
	mustParse(t, doc(1, "1h", "{kind: ramp, from: 0, to: 7, for: 1m}"))
}

func TestValidationListsEveryProblem(t *testing.T) {
	y := `name: Bad_Name
duration: 1h
job:
  flinkVersion: "1.17"
  scheduler: reactive
  topics:
    - {name: t, partitions: 0}
    - {name: u, partitions: 3, weights: [1, 2]}
  vertices:
    - {name: "Source: t", parallelism: 2, capacity: 0, selectivity: 1, topics: [t, nope]}
    - {name: "Map", parallelism: 3, capacity: 10, selectivity: 1, inputs: [{from: "Source: t", ship: FORWARD}, {from: "Ghost", ship: SHUFFLE}]}
    - {name: "Map", parallelism: 1, capacity: 10, selectivity: 0, keySkew: 1, inputs: [{from: "Source: t", ship: REBALANCE}]}
  taskManager: {cpu: 0}
load:
  - topic: t
    segments:
      - {kind: ramp, from: -5, to: 10, for: 10m}
      - {kind: constant, rate: 3}
      - {kind: diurnal, base: 10, amplitude: 20, for: 1h}
      - {kind: constant, rate: 1}
      - {kind: noise, percent: 150}
  - topic: v
    segments:
      - {kind: noise, percent: 5}
initialLag: {w: 5}
expect: {maxRescales: -1}
compression: 0.5
`
	_, err := Parse([]byte(y))
	require.Error(t, err)
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	msg := err.Error()
	for _, w := range []string{
		`name: must be lowercase letters, digits and dashes, not "Bad_Name"`,
		`job.flinkVersion: must be one of 1.18, 1.20, 2.1, not "1.17"`,
		`job.scheduler: must be default or adaptive, not "reactive"`,
		`job.topics[0].partitions: must be between 1 and 100000, not 0`,
		`job.topics[1].weights: has 2 weights for 3 partitions`,
		`job.taskManager.cpu: must be a finite number > 0, not 0`,
		`job.taskManager.slots: must be at least 1, not 0`,
		`job.vertices[0] ("Source: t").capacity: must be a finite number > 0, not 0`,
		`job.vertices[0] ("Source: t").topics: no topic "nope" in job.topics`,
		`job.vertices[1] ("Map").inputs[0]: a FORWARD edge needs equal parallelism on both ends, not 2 → 3`,
		`job.vertices[1] ("Map").inputs[1].from: no vertex "Ghost"`,
		`job.vertices[1] ("Map").inputs[1].ship: must be FORWARD, HASH, REBALANCE, RESCALE or BROADCAST, not "SHUFFLE"`,
		`job.vertices[2] ("Map").name: vertex names must be unique: "Map" is used twice`,
		`job.vertices[2] ("Map").keySkew: only a keyed vertex (one with a HASH input) has key skew`,
		`job.topics: no source reads topic "u"`,
		`load[0].segments[0] (ramp).from: must be a rate between 0 and 1e+12 records/s, not -5`,
		`load[0].segments[1] (constant).for: only the last segment may leave out its length`,
		`load[0].segments[2] (diurnal).amplitude: |20| exceeds base 10: the rate would go negative`,
		`load[0].segments[3] (constant): starts at 1h10m, not before the end of the scenario (1h)`,
		`load[0].segments[4] (noise).percent: must be in [0, 100), not 150`,
		`load[1].topic: no topic "v" in job.topics`,
		`load[1].segments: need at least one segment that is not noise`,
		`load: topic "u" has no load`,
		`initialLag.w: no topic "w" in job.topics`,
		`expect.maxRescales: must not be negative, not -1`,
		`compression: must be between 1 and 1000, not 0.5`,
	} {
		assert.Contains(t, msg, w)
	}
	assert.GreaterOrEqual(t, len(joined.Unwrap()), 26)
}

func TestValidationGraph(t *testing.T) {
	cyc := `name: cyc
duration: 1h
job:
  topics: [{name: t, partitions: 4}]
  vertices:
    - {name: A, parallelism: 1, capacity: 10, selectivity: 1, topics: [t]}
    - {name: B, parallelism: 1, capacity: 10, selectivity: 1, inputs: [{from: A, ship: HASH}, {from: C, ship: HASH}]}
    - {name: C, parallelism: 1, capacity: 10, selectivity: 1, inputs: [{from: B, ship: HASH}]}
    - {name: D, parallelism: 1, capacity: 10, selectivity: 1, topics: [t]}
    - {name: E, parallelism: 1, capacity: 10, selectivity: 1}
    - {name: F, parallelism: 1, capacity: 10, selectivity: 1, topics: [t], inputs: [{from: A, ship: HASH}, {from: A, ship: HASH}]}
  taskManager: {cpu: 2}
load: [{topic: t, segments: [{kind: constant, rate: 1}]}]
`
	_, err := Parse([]byte(cyc))
	require.Error(t, err)
	for _, w := range []string{
		`job.vertices: the graph has a cycle through "B", "C"`,
		`job.vertices[3] ("D").topics: topic "t" is also read by "A"`,
		`job.vertices[4] ("E").topics: a source (a vertex without inputs) must read a topic`,
		`job.vertices[5] ("F").inputs[1].from: "A" is an input twice`,
		`job.vertices[5] ("F").topics: only sources (vertices without inputs) read topics`,
	} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestLoadNamesFromFileAndAllReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	body := doc(1, "1h", "{kind: constant, rate: 1}")
	unnamed := strings.Replace(body, "name: tiny\n", "", 1)
	write := func(name, s string) {
		require.NoError(t, os.WriteFile(dir+"/"+name, []byte(s), 0o644))
	}
	write("b-second.yaml", unnamed)
	write("a-first.yaml", strings.Replace(unnamed, "seed: 1", "seed: 2", 1))
	write("notes.txt", "not a scenario")
	all, err := All(dir)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "a-first", all[0].Name)
	assert.Equal(t, "b-second", all[1].Name)
	assert.Equal(t, dir+"/a-first.yaml", all[0].File)

	write("c-broken.yaml", strings.Replace(unnamed, "capacity: 10000", "capacity: -1", 1))
	write("d-broken.yaml", strings.Replace(unnamed, "rate: 1", "rate: 1, wat: 2", 1))
	_, err = All(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "c-broken.yaml: job.vertices[0]")
	assert.Contains(t, err.Error(), `d-broken.yaml: load[0].segments[0]: unknown field "wat"`)
}

func TestGoBuiltScenarioValidates(t *testing.T) {
	s := mustParse(t, doc(1, "1h", "{kind: constant, rate: 1}"))
	s.Load[0].Segments = []Segment{
		{Kind: KindRamp, From: 0, To: 100, For: time.Minute},
		{Kind: KindConstant, Rate: 100, To: 3},
	}
	err := s.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(constant).to: is not a field of constant")
	s.Load[0].Segments[1].To = 0
	require.NoError(t, s.Validate())
	assert.Equal(t, 50.0, s.Rate("t", 30*time.Second))
}

// maxTimeOverSLO: 0s is a bound (never over the SLO), not "no
// expectation"; leaving it out is none. It survives Marshal.
func TestMaxTimeOverSLOZeroIsABound(t *testing.T) {
	s, err := Load("../../scenarios/step-down.yaml")
	require.NoError(t, err)
	require.NotNil(t, s.Expect.MaxTimeOverSLO)
	assert.Equal(t, time.Duration(0), *s.Expect.MaxTimeOverSLO)
	out, err := s.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(out), "maxTimeOverSLO: 0s")
	back, err := Parse(out)
	require.NoError(t, err)
	require.NotNil(t, back.Expect.MaxTimeOverSLO)

	s.Expect.MaxTimeOverSLO = nil
	out, err = s.Marshal()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "maxTimeOverSLO")
}
