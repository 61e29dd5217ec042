package testbed

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flinkprom"
)

// EnvRealLong, with EnvReal, enables the long real-Flink runs of make
// test-real (minutes each).
const EnvRealLong = "FLINKSCALE_REAL_LONG"

func requireRealLong(t *testing.T) {
	t.Helper()
	RequireReal(t)
	if os.Getenv(EnvRealLong) != "1" {
		t.Skipf("a long real-Flink run: set %s=1 (make test-real does)", EnvRealLong)
	}
}

// capacityStep is one step of the sweep, measured over its last 30 s.
type capacityStep struct {
	Rate                 float64 // the scenario's arrival rate
	Produced, Consumed   float64 // records/s acknowledged by the broker, read by the sources
	Lag                  int64   // records between the brokers' end and the readers' positions
	Busy, Expected       map[string]float64
	CPU                  map[string]float64 // cores used by each process over the step
	RSS                  map[string]int64
	Faithful             bool
	Why                  string
	CPUTotal, RSSTotalMB float64
}

// TestRealCapacity plays scenarios/capacity-sweep.yaml with the testbed's
// limits lifted and prints, per load step, the produced and consumed
// rates, busy times against the configured costs, the lag, and each
// process's CPU and memory: the table of docs/testbed.md, "Limits". A step
// is faithful when the job keeps up (consumed within 5 % of produced,
// lag under 2 s of arrivals) and every vertex's busy time is within the
// collectors' tolerance of rate / parallelism / capacity.
func TestRealCapacity(t *testing.T) {
	requireRealLong(t)
	for _, v := range testedVersions(t) {
		t.Run("flink-"+string(v), func(t *testing.T) { realCapacity(t, v) })
	}
}

func realCapacity(t *testing.T, v Flink) {
	s := loadScenario(t, "scenarios/capacity-sweep.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), s.Duration+5*time.Minute)
	defer cancel()
	tb, err := Start(ctx, Options{Scenario: s, Scale: Scale{Rate: 1, IgnoreLimits: true}, Flink: v, SkipJavaTests: true, Progress: testWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tb.Stop() })
	idle, err := tb.Usage()
	require.NoError(t, err)
	scraper := &flinkprom.Scraper{JobID: tb.JobID}
	j := tb.Realised.Scaled.Job

	var steps []capacityStep
	prevUsage := idle
	prevAt := time.Now()
	for i, seg := range s.Load[0].Segments {
		end := time.Duration(i+1) * 90 * time.Second
		sleepUntil(ctx, tb, end-30*time.Second)
		a, aAt, aProd := sampleSource(t, ctx, scraper, tb)
		sleepUntil(ctx, tb, end-time.Second)
		b, bAt, bProd := sampleSource(t, ctx, scraper, tb)
		usage, err := tb.Usage()
		require.NoError(t, err)
		now := time.Now()
		st := capacityStep{Rate: seg.Rate, Busy: map[string]float64{}, CPU: map[string]float64{}, RSS: map[string]int64{}}
		dt := bAt.Sub(aAt).Seconds()
		st.Produced = float64(bProd-aProd) / dt
		st.Consumed = (sourceIn(b) - sourceIn(a)) / dt
		st.Lag = bProd - int64(sourcePosition(b))
		want := ExpectedRates(j, map[string]float64{"load": seg.Rate})
		st.Expected = map[string]float64{}
		st.Faithful = true
		var why []string
		for _, vx := range b.Vertices {
			for _, sv := range j.Vertices {
				if flinkprom.PromSanitize(sv.Name) == vx.Name && vx.BusyTimeMsPerSecond != nil {
					got, exp := vx.BusyTimeMsPerSecond.Avg, want[sv.Name].Busy
					st.Busy[sv.Name], st.Expected[sv.Name] = got, exp
					if math.Abs(got-exp) > math.Max(busyAbsTol, exp*busyRelTol) {
						st.Faithful = false
						why = append(why, fmt.Sprintf("%s busy %.0f vs %.0f", sv.Name, got, exp))
					}
				}
			}
		}
		if math.Abs(st.Consumed-st.Produced) > 0.05*st.Produced {
			st.Faithful = false
			why = append(why, fmt.Sprintf("consumed %.0f/s of %.0f/s", st.Consumed, st.Produced))
		}
		if float64(st.Lag) > 2*seg.Rate {
			st.Faithful = false
			why = append(why, fmt.Sprintf("lag %d", st.Lag))
		}
		st.Why = strings.Join(why, "; ")
		wall := now.Sub(prevAt).Seconds()
		for k, u := range usage {
			cores := (u.CPUSeconds - prevUsage[k].CPUSeconds) / wall
			st.CPU[u.Name], st.RSS[u.Name] = cores, u.RSSBytes
			st.CPUTotal += cores
			st.RSSTotalMB += float64(u.RSSBytes) / (1 << 20)
		}
		prevUsage, prevAt = usage, now
		steps = append(steps, st)
		t.Logf("step %.0f/s: produced %.0f, consumed %.0f, lag %d, CPU %.2f cores, RSS %.0f MiB, faithful %v %s",
			st.Rate, st.Produced, st.Consumed, st.Lag, st.CPUTotal, st.RSSTotalMB, st.Faithful, st.Why)
	}
	var idleRSS float64
	for _, u := range idle {
		idleRSS += float64(u.RSSBytes) / (1 << 20)
	}
	table := capacityTable(v, idle, steps)
	t.Logf("idle (job running, no load yet): RSS %.0f MiB\n%s", idleRSS, table)
	if out := os.Getenv("FLINKSCALE_CAPACITY_OUT"); out != "" {
		require.NoError(t, os.WriteFile(fmt.Sprintf("%s-flink-%s.md", out, v), []byte(table), 0o644))
	}
}

func sampleSource(t *testing.T, ctx context.Context, sc *flinkprom.Scraper, tb *Testbed) (metrics.FlinkSample, time.Time, int64) {
	s, err := sc.Scrape(ctx, tb.Flink.ReporterTargets())
	require.NoError(t, err)
	return s, time.Now(), tb.Producer.Total()
}

// sourceIn is the source vertex's records read (its numRecordsIn).
func sourceIn(s metrics.FlinkSample) float64 {
	for _, v := range s.Vertices {
		if len(v.Partitions) > 0 && v.NumRecordsIn != nil {
			return *v.NumRecordsIn
		}
	}
	return math.NaN()
}

// sourcePosition is the sum of the readers' positions.
func sourcePosition(s metrics.FlinkSample) float64 {
	n := 0.0
	for _, v := range s.Vertices {
		for _, p := range v.Partitions {
			if p.CurrentOffset > 0 {
				n += float64(p.CurrentOffset)
			}
		}
	}
	return n
}

func capacityTable(v Flink, idle []Usage, steps []capacityStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Flink %s, scenarios/capacity-sweep.yaml, %s\n\n", v, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| load (records/s) | produced | consumed | lag | busy source / keyed / sink (ms/s, expected) | CPU (cores) | RSS (MiB) | faithful |\n|---|---|---|---|---|---|---|---|\n")
	var idleRSS float64
	for _, u := range idle {
		idleRSS += float64(u.RSSBytes) / (1 << 20)
	}
	fmt.Fprintf(&b, "| idle | | | | | | %.0f | |\n", idleRSS)
	for _, s := range steps {
		var busy []string
		for _, name := range []string{"Source: load", "KeyedProcess: work", "Sink: out"} {
			busy = append(busy, fmt.Sprintf("%.0f (%.0f)", s.Busy[name], s.Expected[name]))
		}
		verdict := "yes"
		if !s.Faithful {
			verdict = "no: " + s.Why
		}
		fmt.Fprintf(&b, "| %.0f | %.0f | %.0f | %d | %s | %.2f | %.0f | %s |\n",
			s.Rate, s.Produced, s.Consumed, s.Lag, strings.Join(busy, " / "), s.CPUTotal, s.RSSTotalMB, verdict)
	}
	return b.String()
}
