package demo

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

// WriteMarkdown writes the run's report in Markdown (summary.md): what ran,
// the summary and comparison tables, the events, and per job its chart
// (charts/<job>.svg beside it) and last decision.
func (r *Result) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# %s\n\n", r.title())
	fmt.Fprintf(w, "%s\n\n", r.intro())
	fmt.Fprintf(w, "## Summary\n\n")
	fmt.Fprintf(w, "| job | scaled by | rescales | downtime | max lag | time over the %s SLO | slot-hours | parallelism | records lost |\n", fmtSLO(r.slo()))
	fmt.Fprintf(w, "|---|---|--:|--:|--:|--:|--:|---|--:|\n")
	for _, row := range r.summaryRows() {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.1f | %s | %d |\n", row.Job, row.ScaledBy, row.Rescales,
			row.Downtime, row.MaxLag, row.OverSLO, row.SlotHours, row.Parallelism, row.Lost)
	}
	if len(r.Baselines) > 0 {
		fmt.Fprintf(w, "\n## The same days under the alternatives\n\n%s\n\n", comparisonNote)
		fmt.Fprintf(w, "| job | policy | rescales | max lag | time over SLO | slot-hours | records lost |\n|---|---|--:|--:|--:|--:|--:|\n")
		for _, row := range r.comparisonRows() {
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %.1f | %d |\n", row.Job, row.Policy, row.Rescales, row.MaxLag, row.OverSLO, row.SlotHours, row.Lost)
		}
	}
	fmt.Fprintf(w, "\n## What happened\n\n")
	for _, e := range r.Events {
		if e.Kind == EventPhase {
			fmt.Fprintf(w, "- **%s %s**\n", fmtClock(e.At), e.Text)
			continue
		}
		fmt.Fprintf(w, "- %s `%s` %s\n", fmtClock(e.At), e.Job, mdEscape(e.Text))
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n![%s: load and capacity, slots, lag and parallelism over the day](charts/%s.svg)\n\n",
			j.Name, j.describe(), j.Name, j.Name)
		if j.LastDecision != "" {
			fmt.Fprintf(w, "Last decision: %s\n", mdEscape(j.LastDecision))
			if len(j.Reasons) > 0 {
				fmt.Fprintf(w, "(reasons: `%s`)\n", strings.Join(j.Reasons, "`, `"))
			}
		}
		if j.Report != nil {
			fmt.Fprintf(w, "\nThe recommendation report the controller keeps in ConfigMap `%s%s`: [Markdown](%s-recommendation.md), [HTML](%s-recommendation.html).\n",
				j.Name, "-recommendation", j.Name, j.Name)
		}
	}
	fmt.Fprintf(w, "\n## Look around\n\n%s\n", r.lookAround("\n"))
}

// comparisonNote says what the offline rows are.
const comparisonNote = "The other policies did not run live: the benchmark harness (test/bench, `make bench`) replayed the same load " +
	"through the same simulator, with the Flink operator's autoscaler, KEDA's Kafka scaler (written from their documented " +
	"algorithms) and no autoscaler at the initial parallelism. The charts draw the Flink operator's run next to this one."

// summaryRow is one job's line of the summary, formatted for people.
type summaryRow struct {
	Job, ScaledBy, Rescales, Downtime, MaxLag, OverSLO, Parallelism string
	SlotHours                                                       float64
	Lost                                                            int64
}

func (r *Result) summaryRows() []summaryRow {
	rows := make([]summaryRow, 0, len(r.Jobs))
	for _, j := range r.Jobs {
		by := fmt.Sprintf("%s · %s", j.OptIn, j.Mode)
		if j.Flink != "" {
			by += " · Flink " + j.Flink
		}
		rows = append(rows, summaryRow{Job: j.Name, ScaledBy: by, Rescales: j.RescalesText(),
			Downtime: fmtDur(j.Downtime), MaxLag: fmtDur(seconds(j.MaxLagSeconds)), OverSLO: fmtDur(j.OverSLO),
			SlotHours: j.SlotHours, Parallelism: j.ParallelismText(), Lost: j.RecordsLost})
	}
	return rows
}

// comparisonRow is one policy's line of the comparison, formatted for
// people; the live run comes first for each job.
type comparisonRow struct {
	Job, Policy      string
	Rescales         int
	MaxLag, OverSLO  string
	SlotHours        float64
	Lost             int64
	Live, FirstOfJob bool
}

func (r *Result) comparisonRows() []comparisonRow {
	var rows []comparisonRow
	for _, j := range r.Jobs {
		rows = append(rows, comparisonRow{Job: j.Name, Policy: "flinkscale " + j.modeNote(), Rescales: j.Rescales,
			MaxLag: fmtDur(seconds(j.MaxLagSeconds)), OverSLO: fmtDur(j.OverSLO), SlotHours: j.SlotHours, Lost: j.RecordsLost,
			Live: true, FirstOfJob: true})
		for _, p := range BaselinePolicies {
			if b := r.baseline(j.Name, p); b != nil {
				rows = append(rows, comparisonRow{Job: j.Name, Policy: policyLabel(p), Rescales: b.Rescales,
					MaxLag: fmtDur(seconds(b.MaxLagSeconds)), OverSLO: fmtDur(b.OverSLO), SlotHours: b.SlotHours, Lost: b.RecordsLost})
			}
		}
	}
	return rows
}

// fmtSLO is an SLO for people: as fmtDur, but to the tenth of a second
// below a minute (a compressed 5 minutes is 12.5 s).
func fmtSLO(d time.Duration) string {
	if d < time.Minute && d%time.Second != 0 {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmtDur(d)
}

func (r *Result) slo() time.Duration {
	if len(r.Jobs) > 0 {
		return r.Jobs[0].SLO
	}
	return 0
}

// title heads both reports.
func (r *Result) title() string {
	what := "flinkscale demo"
	if r.Real {
		what += " on real Flink"
	}
	return what + ", " + r.Started.UTC().Format("2006-01-02 15:04 UTC")
}

func (r *Result) intro() string {
	if r.Real {
		return r.realIntro()
	}
	return fmt.Sprintf("Three simulated Flink jobs played %s of one day (steady load, a surge, a quiet night) at %g× in %s of wall time, "+
		"on a real kube-apiserver and etcd, with Kafka in kfake, the fake Flink operator deploying, savepointing and restarting them, "+
		"and the flinkscale controller polling every %s of wall time (%s of job time). Times below are offsets in the day.",
		fmtDur(r.Day), r.Speed, fmtDur(r.Wall), r.PollInterval, fmtDur(time.Duration(float64(r.PollInterval)*r.Speed)))
}

// realIntro says what ran on real Flink, and in which units the report
// counts.
func (r *Result) realIntro() string {
	var jobs []string
	for _, j := range r.Jobs {
		jobs = append(jobs, fmt.Sprintf("%s on Flink %s", j.Name, j.Flink))
	}
	text := fmt.Sprintf("%s played %s of one day (steady load, a surge, a quiet night) on real Apache Flink (%s) and real Kafka brokers "+
		"started on this machine, the day compressed %g× into %s of wall time and its rates scaled to at most %s records/s per job, "+
		"on a real kube-apiserver and etcd, with the fake Flink operator deploying, savepointing and rescaling them and the flinkscale "+
		"controller polling every %s. Times of day (h:mm) are the wall clock mapped onto the day; durations, rates and slot-hours are real, "+
		"and the lag SLO is the day's, compressed to %s. Capacity is the simulator's model of the same scaled jobs; lag is the consumer "+
		"groups' on the brokers; records lost are those an audit of each job's exactly-once sink output (read_committed) did not find.",
		countJobs(len(r.Jobs)), fmtDur(r.Day), strings.Join(jobs, ", "), r.Speed, fmtDur(time.Duration(float64(r.Day)/r.Speed)),
		fmtRate(realRateBudget), r.PollInterval, fmtSLO(r.slo()))
	for _, l := range r.LeftOut {
		text += " " + l + "."
	}
	return text
}

// countJobs is "Two Flink jobs" for 2.
func countJobs(n int) string {
	words := []string{"No", "One Flink job", "Two Flink jobs", "Three Flink jobs"}
	if n < len(words) {
		return words[n]
	}
	return fmt.Sprintf("%d Flink jobs", n)
}

func (j *JobResult) describe() string {
	how := map[OptIn]string{
		OptInAnnotations: "opted in with `flinkscale.io/*` annotations on its FlinkDeployment",
		OptInPolicy:      "scaled by a FlinkScalingPolicy written by hand",
	}[j.OptIn]
	mode := "mode Apply: flinkscale rescales it"
	if j.Mode == v1alpha1.ModeDryRun {
		mode = "mode DryRun: flinkscale recommends and changes nothing"
	}
	text := fmt.Sprintf("`%s`, %s, %s. %s rescales, %s of downtime in all, lag at most %s, %.1f slot-hours, %d records lost.",
		j.Name, how, mode, j.RescalesText(), fmtDur(j.Downtime), fmtDur(seconds(j.MaxLagSeconds)), j.SlotHours, j.RecordsLost)
	if j.Flink != "" {
		text += fmt.Sprintf(" On Flink %s, at %g× the day's rates; its exactly-once sink's output: %s.", j.Flink, j.RateScale, j.auditText())
	}
	return text
}

func (r *Result) lookAround(sep string) string {
	lines := []string{
		fmt.Sprintf("While `%s` runs (or with `--hold` after the day), `kubectl --kubeconfig %s get fsp,flinkdeployments -n %s` lists the policies and deployments, "+
			"`kubectl --kubeconfig %s get events -n %s` the controller's and the operator's events, and `flinkscale status -A --kubeconfig %s` the policies' state.",
			r.makeTarget(), rel(r.Kubeconfig), r.Namespace, rel(r.Kubeconfig), r.Namespace, rel(r.Kubeconfig)),
	}
	if r.MetricsURL != "" {
		lines = append(lines, fmt.Sprintf("The controller's metrics were served at %s: point Prometheus at it and load the Grafana dashboards of charts/flinkscale/dashboards (docs/observability.md).", r.MetricsURL))
	}
	lines = append(lines, fmt.Sprintf("The controller's log is %s.", rel(r.Log)))
	return strings.Join(lines, sep)
}

// makeTarget is the make target that runs this kind of demo.
func (r *Result) makeTarget() string {
	if r.Real {
		return "make demo-real"
	}
	return "make demo"
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;").Replace(s)
}

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("demo").Funcs(template.FuncMap{
	"clock": fmtClock,
	"dur":   fmtDur,
	"secs":  func(s float64) string { return fmtDur(seconds(s)) },
	// plain drops Markdown's code quotes from text shared with summary.md.
	"plain": func(s string) string { return strings.ReplaceAll(s, "`", "") },
	"mark":  eventMark,
}).Parse(pageTemplate))

type chartView struct {
	Job  *JobResult
	Text string
	URL  template.URL
}

// WriteHTML writes the run's report as one self-contained page: the same
// content as the Markdown report, with every job's chart embedded (svgs by
// job name).
func (r *Result) WriteHTML(w io.Writer, svgs map[string][]byte) error {
	var charts []chartView
	for _, j := range r.Jobs {
		var url template.URL
		if b, ok := svgs[j.Name]; ok {
			// The SVG is ours (gonum/plot), embedded as a data URL.
			url = template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(b)) //nolint:gosec // generated above, not user input
		}
		charts = append(charts, chartView{Job: j, Text: j.describe(), URL: url})
	}
	return page.Execute(w, map[string]any{
		"R":           r,
		"Title":       r.title(),
		"Intro":       r.intro(),
		"SLO":         fmtSLO(r.slo()),
		"Summary":     r.summaryRows(),
		"Comparison":  r.comparisonRows(),
		"CompareNote": comparisonNote,
		"Charts":      charts,
		"LookAround":  strings.Split(r.lookAround("\x00"), "\x00"),
	})
}
