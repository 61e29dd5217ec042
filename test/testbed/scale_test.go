package testbed

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim/scenario"
)

func loadScenario(t *testing.T, path string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(path)
	require.NoError(t, err)
	return s
}

func TestRealiseScalesRatesAndCapacitiesAlike(t *testing.T) {
	s := loadScenario(t, "../scenarios/step-up-3x.yaml")
	r, err := Realise(s, Scale{Time: 12})
	require.NoError(t, err)
	// The peak is 60,000 records/s with ±3 % noise, at most 61,800; the
	// testbed plays at most 2,000: 2,000 / 61,800 = 0.0324, rounded down
	// to two digits.
	assert.Equal(t, 0.032, r.Scale.Rate)
	assert.LessOrEqual(t, r.PeakRate, float64(MaxSourceRate))
	// Every vertex is exactly as busy as in the scenario: rate and
	// capacity scale together.
	for i, v := range r.Scaled.Job.Vertices {
		assert.InDelta(t, s.Job.Vertices[i].Capacity*0.032, v.Capacity, 1e-9, v.Name)
	}
	for _, at := range []time.Duration{0, 30 * time.Minute, 2 * time.Hour} {
		orig := s.Rate("orders", at)
		got := r.Scaled.Rate("orders", time.Duration(float64(at)/12))
		assert.InDelta(t, orig*0.032, got, orig*0.032*1e-9, "at %s", at)
	}
	// Time ÷ 12: 3 h → 15 min, the 5 min SLO → 25 s; the 30 s checkpoint
	// interval → 2.5 s, floored at 5 s.
	assert.Equal(t, 15*time.Minute, r.Scaled.Duration)
	assert.Equal(t, 25*time.Second, r.Scaled.SLO.Lag)
	assert.Equal(t, 5*time.Second, r.Scaled.Job.Checkpoints.Interval)
	// 1 GiB of dedupe state is over the 64 MiB default: scaled by 1/16.
	assert.Equal(t, 1.0/16, r.Scale.State)
	assert.Equal(t, float64(64<<20), r.Scaled.Job.Vertices[1].StateBytes)
	// Slots: one group, largest parallelism 4, on 2-slot TaskManagers.
	assert.Equal(t, 4, r.Slots)
	assert.Equal(t, 2, r.TaskManagers)
	// The original is untouched.
	assert.Equal(t, 3*time.Hour, s.Duration)
	assert.Equal(t, 20000.0, s.Job.Vertices[0].Capacity)
}

func TestRealiseKeepsAScenarioInTestbedUnits(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	r, err := Realise(s, Scale{})
	require.NoError(t, err)
	assert.Equal(t, Scale{Rate: 1, Time: 1, State: 1, MinCheckpointInterval: 5 * time.Second}, r.Scale)
	assert.Equal(t, 1000.0, r.PeakRate)
	// One slot sharing group whose largest parallelism is 2: 2 slots, one
	// 2-slot TaskManager.
	assert.Equal(t, 2, r.Slots)
	assert.Equal(t, 1, r.TaskManagers)
}

// cannotRealise are the library scenarios the testbed's workload job does not
// build, and why; each must still be refused for that reason, so the list
// shrinks when the testbed learns the shape.
var cannotRealise = map[string]string{
	// A keyed join with a broadcast side input needs a
	// KeyedBroadcastProcessFunction; the workload job's keyed vertices
	// read only HASH inputs.
	"keyed-join-broadcast": "mixes HASH inputs with other ship strategies",
}

func TestRealiseEveryLibraryScenario(t *testing.T) {
	all, err := scenario.All("../scenarios")
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for _, s := range all {
		r, err := Realise(s, Scale{Time: 12})
		if why, ok := cannotRealise[s.Name]; ok {
			if assert.Error(t, err, s.Name) {
				assert.Contains(t, err.Error(), why, s.Name)
			}
			continue
		}
		if !assert.NoError(t, err, s.Name) {
			continue
		}
		assert.LessOrEqual(t, r.PeakRate, MaxSourceRate*1.0001, s.Name)
		for _, v := range r.Scaled.Job.Vertices {
			assert.LessOrEqual(t, v.Capacity, MaxSubtaskCapacity*1.0001, "%s %s", s.Name, v.Name)
		}
		assert.LessOrEqual(t, r.Slots, MaxSlots, s.Name)
	}
}

func TestRealiseRefusesWhatItCannotPlay(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	s.Job.Vertices[0].Name = "events-reader" // not "Source: …"
	s.Job.Vertices[1].Inputs[0].From = "events-reader"
	s.Job.Vertices[0].USL.Sigma = 0.1
	s.Job.Vertices[2].StateBytes = 1 << 20 // state behind a REBALANCE edge
	_, err := Realise(s, Scale{Rate: 1})
	require.Error(t, err)
	for _, want := range []string{
		`vertex "events-reader" reads topics but its name does not start with "Source: "`,
		`vertex "events-reader": USL on a source is not realised`,
		`vertex "Sink: counts" has state but no HASH input`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	fast := loadScenario(t, "../scenarios/step-up-3x.yaml")
	_, err = Realise(fast, Scale{Rate: 1})
	require.Error(t, err)
	// 61,800 records/s at the noisy peak, 20,000 a source subtask.
	assert.Contains(t, err.Error(), "over the testbed's 2000: use a smaller rate scale")
	assert.Contains(t, err.Error(), `vertex "Source: orders -> Filter -> Map": a subtask capacity of 20000 records/s`)

	_, err = Realise(fast, Scale{Rate: 2})
	assert.ErrorContains(t, err, "rate scale 2 outside (0, 1]")
	_, err = Realise(fast, Scale{Time: 0.5})
	assert.ErrorContains(t, err, "time scale 0.5 must be at least 1")
}

func TestWorkloadSpecIsTheScenariosJob(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	var b bytes.Buffer
	require.NoError(t, WorkloadSpec(&b, s.Job, "127.0.0.1:9092"))
	got := b.String()
	for _, line := range []string{
		"job.name=saturate-step",
		"kafka.bootstrap=127.0.0.1:9092",
		"kafka.group=saturate-step",
		"checkpoint.interval.ms=10000",
		"checkpoint.timeout.ms=120000",
		"job.costFactor=1",
		"vertex.count=3",
		"vertex.0.name=Source: events -> Map",
		"vertex.0.costNanos=1e+06", // 1e9 / 1,000 records/s
		"vertex.0.topics=events",
		"vertex.1.costNanos=2.5e+06", // 1e9 / 400
		"vertex.1.inputs=0:HASH",
		"vertex.1.maxParallelism=128",
		"vertex.1.stateBytesPerKeyGroup=65536", // 8 MiB / 128 key groups
		"vertex.2.inputs=1:REBALANCE",
		"vertex.2.maxParallelism=128", // Flink's default rule at p=1
		"vertex.2.selectivity=0",
	} {
		assert.Contains(t, got, line+"\n")
	}
	// 128 key-group weights summing to 1 (key skew 0: all equal).
	for _, l := range strings.Split(got, "\n") {
		if w, ok := strings.CutPrefix(l, "vertex.1.keyGroupWeights="); ok {
			parts := strings.Split(w, ",")
			assert.Len(t, parts, 128)
			assert.Equal(t, "0.0078125", parts[0])
		}
	}
}

func TestWorkloadSpecOrdersInputsFirstAndEscapes(t *testing.T) {
	s := loadScenario(t, filepath.Join("..", "scenarios", "fan-out-fan-in.yaml"))
	var b bytes.Buffer
	require.NoError(t, WorkloadSpec(&b, s.Job, "b:1"))
	pos := map[string]int{}
	for _, l := range strings.Split(b.String(), "\n") {
		rest, ok := strings.CutPrefix(l, "vertex.")
		idx, name, named := strings.Cut(rest, ".name=")
		if !ok || !named {
			continue
		}
		i, err := strconv.Atoi(idx)
		require.NoError(t, err, l)
		pos[strings.ReplaceAll(name, `\\`, `\`)] = i
	}
	require.Len(t, pos, len(s.Job.Vertices))
	for _, v := range s.Job.Vertices {
		for _, in := range v.Inputs {
			assert.Less(t, pos[in.From], pos[v.Name], "%q before %q", in.From, v.Name)
		}
	}
	assert.Equal(t, `\ a\\b\u00e9\ud83d\ude00`, escape(` a\bé😀`))
}

func TestCostFactorIsSlotsPerCore(t *testing.T) {
	s := loadScenario(t, "scenarios/saturate-step.yaml")
	tm := s.Job.TaskManager
	assert.Equal(t, 1.0, CostFactor(tm))
	tm.Slots = 4 // 4 slots on 2 cores: each subtask gets half a core
	assert.Equal(t, 2.0, CostFactor(tm))
	tm.Slots = 1 // fewer slots than cores: no contention, no bonus either
	assert.Equal(t, 1.0, CostFactor(tm))
}
