package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/report"
	"github.com/flinkscale/flinkscale/test/bench"
	"github.com/flinkscale/flinkscale/test/sim/scenario"
	"github.com/flinkscale/flinkscale/test/testbed"
)

// Result is one demo run: what each job went through, as the simulator
// (or, on real Flink, the testbed and the brokers) measured it and the
// controller recorded it.
type Result struct {
	Started time.Time `json:"started"`
	// Wall is the run's wall time, SetupTime the part before the day
	// started (control plane, Kafka, jobs deployed).
	Wall      time.Duration `json:"wall"`
	SetupTime time.Duration `json:"setupTime"`
	Speed     float64       `json:"speed"`
	// Day is the job time played.
	Day          time.Duration `json:"day"`
	PollInterval time.Duration `json:"pollInterval"`
	Namespace    string        `json:"namespace"`
	Out          string        `json:"out"`
	Kubeconfig   string        `json:"kubeconfig"`
	MetricsURL   string        `json:"metricsURL,omitempty"`
	Log          string        `json:"log"`

	Jobs   []*JobResult `json:"jobs"`
	Events []Event      `json:"events"`
	// Baselines are the same days replayed offline under other policies
	// (when Config.Compare): test/bench results, one per job and policy.
	Baselines []*bench.Result `json:"baselines,omitempty"`
	// Files are the reports written, relative to Out.
	Files []string `json:"files"`

	// Real: the day played on real Flink and Kafka (make demo-real),
	// compressed Speed times. Times of day (events, timelines) map the
	// wall clock onto the day; durations (downtime, lag, time over the
	// SLO, itself compressed), rates and slot-hours are real.
	Real bool `json:"real,omitempty"`
	// LeftOut names the demo's jobs the run left out, and why.
	LeftOut []string `json:"leftOut,omitempty"`
}

// JobResult is one job's day: the embedded bench.Result is the day as the
// benchmark harness records runs (rescales and failed ones, max lag, time
// over the SLO, slot- and core-hours, records lost, the timeline every 30 s
// and the rescales), the same shape as the offline baselines'.
type JobResult struct {
	Name  string        `json:"name"`
	OptIn OptIn         `json:"optIn"`
	Mode  v1alpha1.Mode `json:"mode"`
	SLO   time.Duration `json:"slo"`

	// InPlace rescales kept the Flink job (adaptive scheduler).
	InPlace int `json:"inPlace"`
	// Downtime is the measured downtime of every rescale, summed.
	Downtime time.Duration `json:"downtime"`

	// Parallelism per vertex at the start and at the end ("2/4/2").
	StartParallelism string `json:"startParallelism"`
	EndParallelism   string `json:"endParallelism"`
	// Recommended is the controller's last recommendation; LastDecision
	// its summary, Reasons its codes.
	Recommended  string   `json:"recommended,omitempty"`
	LastDecision string   `json:"lastDecision,omitempty"`
	Reasons      []string `json:"reasons,omitempty"`

	// Report is the DryRun recommendation report the controller wrote into
	// the ConfigMap <policy>-recommendation (DryRun jobs only).
	Report *report.Report `json:"-"`

	// On real Flink: the Flink release, the scale of the day's rates, and
	// the audit of the exactly-once sink's output, whose missing records
	// are RecordsLost.
	Flink     string               `json:"flink,omitempty"`
	RateScale float64              `json:"rateScale,omitempty"`
	Audit     *testbed.AuditResult `json:"audit,omitempty"`

	*bench.Result
}

// Succeeded is how many rescales completed.
func (j *JobResult) Succeeded() int { return j.Rescales - j.Failed }

// collect reads every job's final state from its backend and its policy.
func (r *Result) collect(ctx context.Context, c client.Client, jobs []*job, mon *monitor) error {
	mon.mu.Lock()
	r.Events = slices.Clone(mon.events)
	mon.mu.Unlock()
	for _, j := range jobs {
		jr := &JobResult{Name: j.sc.Name, OptIn: j.setup.OptIn, Mode: j.setup.Mode, SLO: j.slo}
		var p v1alpha1.FlinkScalingPolicy
		if err := c.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: j.sc.Name}, &p); err != nil {
			return fmt.Errorf("reading policy %s: %w", j.sc.Name, err)
		}
		st := p.Status
		jr.Recommended = st.RecommendedParallelism
		if d := st.LastDecision; d != nil {
			jr.LastDecision = d.Summary
			for _, x := range d.Reasons {
				code := x.Code
				if x.Vertex != "" {
					code += " (" + x.Vertex + ")"
				}
				jr.Reasons = append(jr.Reasons, code)
			}
		}
		mon.mu.Lock()
		events := slices.Clone(mon.watches[j.sc.Name].rescales)
		mon.mu.Unlock()
		rec, err := j.run.Records(ctx)
		if err != nil {
			return fmt.Errorf("the records of %s: %w", j.sc.Name, err)
		}
		j.mu.Lock()
		jr.Result = &bench.Result{Scenario: j.sc.Name, Policy: "flinkscale", Duration: j.sc.Duration,
			Rescales: len(events), OverSLO: j.overSLO, MaxLag: j.maxLag, MaxLagSeconds: j.maxLagS,
			SlotHours: j.slotHours, CoreHours: j.coreHours,
			RecordsLost: rec.Lost, Reprocessed: rec.Reprocessed,
			Timeline: slices.Clone(j.timeline), Events: events}
		j.mu.Unlock()
		for _, e := range events {
			switch {
			case e.Failed:
				jr.Failed++
			default:
				jr.Downtime += e.Downtime
			}
			if e.InPlace {
				jr.InPlace++
			}
		}
		if tl := jr.Timeline; len(tl) > 0 {
			jr.StartParallelism = parallelismOf(tl[0], j.vertexNames())
			jr.EndParallelism = parallelismOf(tl[len(tl)-1], j.vertexNames())
		}
		if p.EffectiveMode() == v1alpha1.ModeDryRun {
			rep, err := readReport(ctx, c, p.Name)
			if err != nil {
				return err
			}
			jr.Report = rep
		}
		r.Jobs = append(r.Jobs, jr)
	}
	return nil
}

// readReport reads the recommendation report a DryRun policy keeps in its
// ConfigMap; nil when there is none yet.
func readReport(ctx context.Context, c client.Client, policy string) (*report.Report, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: policy + controllers.ReportSuffix}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the report of %s: %w", policy, err)
	}
	data, ok := cm.Data[controllers.ReportJSONKey]
	if !ok {
		return nil, nil
	}
	rep, err := report.Read(strings.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the report of %s: %w", policy, err)
	}
	return &rep, nil
}

// BaselinePolicies are the policies the same day is replayed under offline.
var BaselinePolicies = []string{"flink-operator", "keda-lag", "static"}

// compare replays every job's day offline (test/bench) under
// BaselinePolicies, parallel runs at once.
func (r *Result) compare(ctx context.Context, scs []*scenario.Scenario, parallel int) error {
	type run struct {
		s      *scenario.Scenario
		policy string
		i      int
	}
	var runs []run
	for _, s := range scs {
		for _, p := range BaselinePolicies {
			runs = append(runs, run{s, p, len(runs)})
		}
	}
	results := make([]*bench.Result, len(runs))
	errs := make([]error, len(runs))
	work := make(chan run)
	var wg sync.WaitGroup
	for range max(1, parallel) {
		wg.Go(func() {
			for x := range work {
				p, err := bench.NewPolicy(x.policy, x.s)
				if err != nil {
					errs[x.i] = err
					continue
				}
				res, err := bench.Run(ctx, x.s, p, bench.Options{})
				if err != nil {
					errs[x.i] = fmt.Errorf("replaying %s under %s: %w", x.s.Name, x.policy, err)
					continue
				}
				results[x.i] = res
			}
		})
	}
	for _, x := range runs {
		work <- x
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	r.Baselines = results
	return nil
}

// baseline is job's offline result under policy, or nil.
func (r *Result) baseline(job, policy string) *bench.Result {
	for _, b := range r.Baselines {
		if b != nil && b.Scenario == job && b.Policy == policy {
			return b
		}
	}
	return nil
}

// WriteSummary prints the summary tables.
func (r *Result) WriteSummary(w io.Writer) {
	if r.Real {
		fmt.Fprintf(w, "\nThe day is over: %s of the day, compressed %g×, in %s of wall time on real Flink (setup %s).\n",
			fmtDur(r.Day), r.Speed, fmtDur(r.Wall), fmtDur(r.SetupTime))
		fmt.Fprintf(w, "Times of day are the wall clock at %g×; downtime, lag, time over the SLO (%s, the day's compressed) and slot-hours are real.\n",
			r.Speed, fmtSLO(r.slo()))
		for _, l := range r.LeftOut {
			fmt.Fprintf(w, "%s.\n", l)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "\nThe day is over: %s of job time in %s of wall time (setup %s).\n\n",
			fmtDur(r.Day), fmtDur(r.Wall), fmtDur(r.SetupTime))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSCALED BY\tRESCALES\tDOWNTIME\tMAX LAG\tOVER SLO\tSLOT-HOURS\tPARALLELISM\tLOST")
	for _, row := range r.summaryRows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%d\n", row.Job, row.ScaledBy, row.Rescales,
			row.Downtime, row.MaxLag, row.OverSLO, row.SlotHours, row.Parallelism, row.Lost)
	}
	_ = tw.Flush()
	if r.Real {
		fmt.Fprintf(w, "\nRecords lost: each job's exactly-once sink output, read with read_committed, against every record produced:\n")
		for _, j := range r.Jobs {
			fmt.Fprintf(w, "  %-9s %s\n", j.Name, j.auditText())
		}
	}
	if len(r.Baselines) > 0 {
		fmt.Fprintf(w, "\nThe same days replayed offline (test/bench, the benchmark harness), next to this run:\n\n")
		r.writeComparison(w)
	}
	fmt.Fprintf(w, "\nReports in %s:\n", rel(r.Out))
	for _, f := range r.Files {
		fmt.Fprintf(w, "  %s\n", filepath.Join(rel(r.Out), f))
	}
}

func (r *Result) writeComparison(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tPOLICY\tRESCALES\tMAX LAG\tOVER SLO\tSLOT-HOURS\tLOST")
	for _, row := range r.comparisonRows() {
		job := ""
		if row.FirstOfJob {
			job = row.Job
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.1f\t%d\n", job, row.Policy, row.Rescales, row.MaxLag, row.OverSLO, row.SlotHours, row.Lost)
	}
	_ = tw.Flush()
}

func (j *JobResult) modeNote() string {
	if j.Mode == v1alpha1.ModeDryRun {
		return "(this run, DryRun: acted on nothing)"
	}
	return "(this run)"
}

func policyLabel(p string) string {
	switch p {
	case "flink-operator":
		return "Flink operator autoscaler"
	case "keda-lag":
		return "KEDA Kafka scaler"
	case "static":
		return "no autoscaler"
	}
	return p
}

// auditText says what the audit of a real job's output found.
func (j *JobResult) auditText() string {
	a := j.Audit
	if a == nil {
		return "not audited"
	}
	if a.Exact() {
		return fmt.Sprintf("%d records produced, each read once", a.Produced)
	}
	return fmt.Sprintf("%d records produced: %d missing, %d duplicate copies, %d unexpected", a.Produced, a.Missing, a.Duplicates, a.Unexpected)
}

// RescalesText is the rescales with how many were in place or failed.
func (j *JobResult) RescalesText() string {
	s := fmt.Sprint(j.Rescales)
	var notes []string
	if j.InPlace > 0 {
		notes = append(notes, fmt.Sprintf("%d in place", j.InPlace))
	}
	if j.Failed > 0 {
		notes = append(notes, fmt.Sprintf("%d failed", j.Failed))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// ParallelismText is the parallelism at the start and the end (and the
// recommendation a DryRun job was not given).
func (j *JobResult) ParallelismText() string {
	s := j.StartParallelism + " → " + j.EndParallelism
	if j.StartParallelism == j.EndParallelism {
		s = j.EndParallelism
	}
	if j.Mode == v1alpha1.ModeDryRun && j.Recommended != "" && j.Recommended != j.EndParallelism {
		s += " (recommended " + j.Recommended + ")"
	}
	return s
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// write writes the reports into r.Out: index.html (with the charts),
// summary.md, charts/<job>.svg, result.json, and the DryRun jobs'
// recommendation reports (<job>-recommendation.html and .md).
func (r *Result) write() error {
	charts := filepath.Join(r.Out, "charts")
	svgs := map[string][]byte{}
	for _, j := range r.Jobs {
		runs := []*bench.Result{j.Result}
		if b := r.baseline(j.Name, "flink-operator"); b != nil {
			runs = append(runs, b)
		}
		path, err := bench.PlotScenario(charts, j.Name, j.SLO, runs)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		svgs[j.Name] = b
		r.Files = append(r.Files, filepath.Join("charts", filepath.Base(path)))
		if j.Report != nil {
			for _, f := range []struct{ ext, format string }{{".html", "html"}, {".md", "markdown"}} {
				var buf bytes.Buffer
				if err := j.Report.Write(&buf, f.format); err != nil {
					return fmt.Errorf("the recommendation report of %s: %w", j.Name, err)
				}
				name := j.Name + "-recommendation" + f.ext
				if err := os.WriteFile(filepath.Join(r.Out, name), buf.Bytes(), 0o644); err != nil {
					return err
				}
				r.Files = append(r.Files, name)
			}
		}
	}
	var md bytes.Buffer
	r.WriteMarkdown(&md)
	if err := os.WriteFile(filepath.Join(r.Out, "summary.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := r.WriteHTML(&page, svgs); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.Out, "index.html"), page.Bytes(), 0o644); err != nil {
		return err
	}
	r.Files = append([]string{"index.html", "summary.md"}, r.Files...)
	r.Files = append(r.Files, "result.json", "kubeconfig", "controller.log")
	if r.MetricsURL != "" {
		r.Files = append(r.Files, "prometheus.yml")
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Out, "result.json"), append(js, '\n'), 0o644)
}
