package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Across random loads and random rescales through stop-with-savepoint, no
// record is lost or read twice: at every step produced = consumed + lag, and
// (all selectivities being 1) everything consumed has left the sinks or sits
// in a buffer.
func TestConservationAcrossRandomRescales(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 8 {
		spec := pipeline()
		spec.Vertices = append(spec.Vertices, VertexSpec{Name: "Enrich", Parallelism: 2, MaxParallelism: 16, Capacity: 3000,
			Selectivity: 1, Inputs: []EdgeSpec{{From: "KeyedAgg -> Sink: Print", Ship: "FORWARD"}}})
		spec.Vertices[2].Name = "KeyedAgg"
		spec.Vertices[3].Inputs[0].From = "KeyedAgg"
		spec.Topics[0].Partitions = 3 + r.IntN(10)
		spec.Topics[0].Skew = r.Float64()
		rate := func(_ string, at time.Duration) float64 {
			return 500 + 3000*float64((int(at/time.Minute)*7919+round)%5)/4
		}
		j, _ := start(t, spec, TopicRates(spec.Topics, rate))
		ids := map[string]string{}
		for _, v := range spec.Vertices {
			ids[v.Name], _ = j.VertexID(v.Name)
		}
		check := func(when string) {
			s := j.Stats()
			require.Equal(t, s.Produced, s.Consumed+s.Lag, "round %d %s: produced = consumed + lag", round, when)
			require.InDelta(t, float64(s.Consumed), s.Delivered+s.InFlight, 1e-6*float64(s.Consumed)+1e-6, "round %d %s: consumed = delivered + in flight", round, when)
			require.Zero(t, s.Reprocessed, "round %d %s", round, when)
		}
		for step := range 6 {
			for range 1 + r.IntN(5) {
				require.NoError(t, j.Advance(time.Duration(10+r.IntN(50))*time.Second))
				check("running")
			}
			v := j.View()
			if v.Job.State != "RUNNING" {
				require.NoError(t, j.Advance(time.Minute))
				continue
			}
			trig, err := j.TriggerSavepoint(SavepointRequest{JobID: v.Job.ID, Stop: true, TargetDirectory: "s3://sp"})
			require.NoError(t, err)
			var st SavepointStatus
			for range 300 {
				require.NoError(t, j.Advance(time.Second))
				check("stopping")
				if st, _ = j.SavepointStatus(v.Job.ID, trig); st.Status == "COMPLETED" {
					break
				}
			}
			require.Equal(t, "COMPLETED", st.Status, "round %d step %d", round, step)
			before := j.Stats()
			p := 1 + r.IntN(6)
			require.NoError(t, j.Submit(Submission{SavepointPath: st.Location, SlotsPerTaskManager: 1 + r.IntN(4), Overrides: map[string]int{
				ids["Source: orders"]: 1 + r.IntN(spec.Topics[0].Partitions), ids["Map"]: 1 + r.IntN(12), ids["KeyedAgg"]: p, ids["Enrich"]: p,
			}}))
			after := j.Stats()
			require.Equal(t, before.Consumed, after.Consumed, "round %d: the restore resumes at the savepoint", round)
			check("restored")
		}
	}
}
