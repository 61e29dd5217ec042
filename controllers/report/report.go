// Package report turns one scaling decision into the recommendation report
// people read before they let flinkscale act: per vertex the current and
// recommended parallelism, how busy and backpressured it is, the utilization
// expected after, its true rate against its target, the limit that binds and
// one sentence with the numbers; per job the resource plan, the lag, the
// predicted downtime and catch-up, and the exact patch Apply mode would send
// to the FlinkDeployment. It renders the report as a terminal table, JSON,
// YAML and Markdown. It does no I/O beyond writing to the given writer.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
)

// Version identifies the report format.
const Version = "flinkscale.io/report/v1"

// FieldManager is the server-side apply field manager of the patch (the
// controller's).
const FieldManager = "flinkscale"

// Report is one recommendation.
type Report struct {
	Version string `json:"version"`
	// Job is the job's name; Source says where the observation came from
	// (a snapshot file, a live job, a cluster object).
	Job    string    `json:"job"`
	JobID  string    `json:"jobId,omitempty"`
	Source string    `json:"source"`
	At     time.Time `json:"at"`
	// Action is Scale or Hold; Change is true when a rescale is
	// recommended.
	Action  string `json:"action"`
	Change  bool   `json:"change"`
	Summary string `json:"summary"`

	Vertices []Vertex `json:"vertices"`
	Before   Shape    `json:"before"`
	After    Shape    `json:"after"`

	LagRecords        float64 `json:"lagRecords"`
	LagSeconds        float64 `json:"lagSeconds"`
	PredictedDowntime string  `json:"predictedDowntime"`
	PredictedCatchUp  string  `json:"predictedCatchUp"`

	Reasons []Reason `json:"reasons"`
	// Patch is the server-side apply patch Apply mode would send; nil when
	// nothing changes.
	Patch *Patch `json:"patch,omitempty"`
}

// Vertex is one vertex's row.
type Vertex struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Current     int    `json:"current"`
	Recommended int    `json:"recommended"`
	// BusyMsPerSecond and BackpressuredMsPerSecond are now (the busiest
	// subtask's busy time, the average backpressure).
	BusyMsPerSecond          float64 `json:"busyMsPerSecond"`
	BackpressuredMsPerSecond float64 `json:"backpressuredMsPerSecond"`
	// UtilizationNow and UtilizationAfter are the busiest subtask's busy
	// fraction at the target rate, now and at the recommendation.
	UtilizationNow   float64 `json:"utilizationNow"`
	UtilizationAfter float64 `json:"utilizationAfter"`
	TrueRate         float64 `json:"trueRate"`
	TargetRate       float64 `json:"targetRate"`
	CatchUpRate      float64 `json:"catchUpRate,omitempty"`
	// Limit is the bound that stopped the vertex from getting what it
	// needs (partitions, key groups, policy, quota...), if any.
	Limit       string `json:"limit,omitempty"`
	Partitions  int    `json:"partitions,omitempty"`
	KeyGroups   int    `json:"keyGroups,omitempty"`
	Bottleneck  bool   `json:"bottleneck,omitempty"`
	Explanation string `json:"explanation"`
}

// Shape is the job's resources.
type Shape struct {
	Slots               int     `json:"slots"`
	SlotsPerTaskManager int     `json:"slotsPerTaskManager"`
	TaskManagers        int     `json:"taskManagers"`
	Cores               float64 `json:"cores"`
}

// Reason is a machine-readable reason with its sentence.
type Reason struct {
	Code    string `json:"code"`
	Vertex  string `json:"vertex,omitempty"`
	Message string `json:"message"`
}

// Patch is what Apply mode sends.
type Patch struct {
	FieldManager string `json:"fieldManager"`
	// YAML is the apply configuration, as `kubectl apply --server-side
	// --field-manager flinkscale` would take it.
	YAML string `json:"yaml"`
}

// Options describe where the decision came from.
type Options struct {
	// Source is a short description ("snapshot orders.json").
	Source string
	// Namespace and Name of the FlinkDeployment, for the patch (default
	// "<job>" in no namespace).
	Namespace, Name string
	// Mode is the deployment mode (native, the default, or standalone):
	// it decides which fields the patch carries.
	Mode string
}

// New builds the report of decision d, made on snapshot s.
func New(d scaling.Decision, s scaling.Snapshot, o Options) Report {
	r := Report{
		Version: Version, Job: s.JobName, JobID: s.JobID, Source: o.Source, At: d.At,
		Action: string(d.Action), Change: d.Action == scaling.ActionScale, Summary: d.Summary,
		Before: shape(d.Current), After: shape(d.Recommended),
		LagRecords: d.LagRecords, LagSeconds: d.LagSeconds,
		PredictedDowntime: d.PredictedDowntime.Round(time.Second).String(),
		PredictedCatchUp:  d.PredictedCatchUp.Round(time.Second).String(),
	}
	for _, v := range d.Vertices {
		r.Vertices = append(r.Vertices, Vertex{
			ID: v.ID, Name: v.Name, Current: v.Current, Recommended: v.Recommended,
			BusyMsPerSecond: v.BusyTimeMsPerSecond, BackpressuredMsPerSecond: v.BackPressuredMsPerSecond,
			UtilizationNow: v.UtilizationNow, UtilizationAfter: v.UtilizationAfter,
			TrueRate: v.TrueProcessingRate, TargetRate: v.TargetRate, CatchUpRate: v.CatchUpRate,
			Limit: string(v.Limit), Partitions: v.Partitions, KeyGroups: v.KeyGroups, Bottleneck: v.Bottleneck,
			Explanation: v.Explanation,
		})
	}
	for _, x := range d.Reasons {
		r.Reasons = append(r.Reasons, Reason{Code: string(x.Code), Vertex: x.Vertex, Message: x.Message})
	}
	if r.Change {
		r.Patch = patch(d, s, o)
	}
	return r
}

func shape(p scaling.Plan) Shape {
	return Shape{Slots: p.Slots, SlotsPerTaskManager: p.SlotsPerTaskManager, TaskManagers: p.TaskManagers, Cores: p.Cores}
}

// patch is the apply configuration the controller would send for d.
func patch(d scaling.Decision, s scaling.Snapshot, o Options) *Patch {
	dep := &target.Deployment{Namespace: o.Namespace, Name: o.Name, Mode: o.Mode, Slots: s.TaskManagers.Slots}
	if dep.Name == "" {
		dep.Name = s.JobName
	}
	if dep.Mode == "" {
		dep.Mode = "native"
	}
	if dep.Slots < 1 {
		dep.Slots = 1
	}
	obj := dep.ApplyObject(dep.PlanFields(d.Recommended, nil))
	unstructured.RemoveNestedField(obj.Object, "metadata", "resourceVersion")
	if o.Namespace == "" {
		unstructured.RemoveNestedField(obj.Object, "metadata", "namespace")
	}
	b, err := yaml.Marshal(obj.Object)
	if err != nil {
		return nil
	}
	return &Patch{FieldManager: FieldManager, YAML: string(b)}
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteYAML writes the report as YAML (the JSON field names).
func (r Report) WriteYAML(w io.Writer) error {
	b, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (v Vertex) label() string {
	if v.Name != "" {
		return v.Name
	}
	return v.ID
}

func (v Vertex) parallelism() string {
	if v.Recommended != v.Current {
		return fmt.Sprintf("%d → %d", v.Current, v.Recommended)
	}
	return fmt.Sprint(v.Current)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// WriteTable writes the report for a terminal (about 120 columns).
func (r Report) WriteTable(w io.Writer) error {
	job := r.Job
	if job == "" {
		job = "job"
	}
	fmt.Fprintf(w, "%s: %s — %s\n", job, r.Action, r.Summary)
	if r.Source != "" {
		fmt.Fprintf(w, "(%s, decided at %s)\n", r.Source, r.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERTEX\tPARALLELISM\tBUSY\tBACKPR.\tUTIL NOW → AFTER\tTRUE RATE\tTARGET\tLIMIT")
	for _, v := range r.Vertices {
		name := truncate(v.label(), 36)
		if v.Bottleneck {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f ms/s\t%.0f ms/s\t%.0f%% → %.0f%%\t%.0f/s\t%.0f/s\t%s\n", name, v.parallelism(),
			v.BusyMsPerSecond, v.BackpressuredMsPerSecond, 100*v.UtilizationNow, 100*v.UtilizationAfter, v.TrueRate, v.TargetRate, v.Limit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(* the bottleneck now)")
	fmt.Fprintln(w)
	for _, v := range r.Vertices {
		fmt.Fprintf(w, "  %s: %s\n", truncate(v.label(), 36), v.Explanation)
	}
	fmt.Fprintf(w, "\nresources: %s → %s\n", r.Before, r.After)
	fmt.Fprintf(w, "lag: %.0f records (%.0f s of arrivals); predicted downtime %s, backlog drained %s after the restart\n",
		r.LagRecords, r.LagSeconds, r.PredictedDowntime, r.PredictedCatchUp)
	fmt.Fprintln(w, "reasons:")
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", x)
	}
	if r.Patch != nil {
		fmt.Fprintf(w, "\npatch (server-side apply, field manager %s):\n%s", r.Patch.FieldManager, indent(r.Patch.YAML, "  "))
	}
	return nil
}

func (s Shape) String() string {
	return fmt.Sprintf("%d slots on %d TaskManagers × %d slots (%.3g cores)", s.Slots, s.TaskManagers, s.SlotsPerTaskManager, s.Cores)
}

func (x Reason) String() string {
	if x.Vertex != "" {
		return fmt.Sprintf("%s (%s): %s", x.Code, x.Vertex, x.Message)
	}
	return x.Code + ": " + x.Message
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}

// WriteMarkdown writes the report as a Markdown document.
func (r Report) WriteMarkdown(w io.Writer) error {
	job := r.Job
	if job == "" {
		job = "job"
	}
	fmt.Fprintf(w, "# flinkscale recommendation: %s\n\n", md(job))
	fmt.Fprintf(w, "**%s** — %s\n\n", r.Action, md(r.Summary))
	if r.Source != "" {
		fmt.Fprintf(w, "Observed from %s; decided at %s.\n\n", md(r.Source), r.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, "| vertex | parallelism | busy | backpressured | utilization now → after | true rate | target rate | limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, v := range r.Vertices {
		name := md(v.label())
		if v.Bottleneck {
			name = "**" + name + "** (bottleneck)"
		}
		fmt.Fprintf(w, "| %s | %s | %.0f ms/s | %.0f ms/s | %.0f %% → %.0f %% | %.0f rec/s | %.0f rec/s | %s |\n", name, v.parallelism(),
			v.BusyMsPerSecond, v.BackpressuredMsPerSecond, 100*v.UtilizationNow, 100*v.UtilizationAfter, v.TrueRate, v.TargetRate, v.Limit)
	}
	fmt.Fprintln(w)
	for _, v := range r.Vertices {
		fmt.Fprintf(w, "- **%s**: %s\n", md(v.label()), md(v.Explanation))
	}
	fmt.Fprintf(w, "\n## Plan\n\n| | before | after |\n|---|---|---|\n")
	fmt.Fprintf(w, "| slots | %d | %d |\n| slots per TaskManager | %d | %d |\n| TaskManagers | %d | %d |\n| cores | %.3g | %.3g |\n\n",
		r.Before.Slots, r.After.Slots, r.Before.SlotsPerTaskManager, r.After.SlotsPerTaskManager,
		r.Before.TaskManagers, r.After.TaskManagers, r.Before.Cores, r.After.Cores)
	fmt.Fprintf(w, "Lag: %.0f records (%.0f s of arrivals). Predicted downtime %s; the backlog drains %s after the restart.\n\n",
		r.LagRecords, r.LagSeconds, r.PredictedDowntime, r.PredictedCatchUp)
	fmt.Fprintln(w, "## Reasons")
	fmt.Fprintln(w)
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "- `%s`%s: %s\n", x.Code, vertexSuffix(x.Vertex), md(x.Message))
	}
	if r.Patch != nil {
		fmt.Fprintf(w, "\n## Patch\n\nWhat `Apply` mode sends (server-side apply, field manager `%s`):\n\n```yaml\n%s```\n", r.Patch.FieldManager, r.Patch.YAML)
	}
	return nil
}

func vertexSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + v + ")"
}

// md escapes the characters Markdown tables and emphasis would take.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Write renders the report in format: table, json, yaml or markdown.
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case "table", "":
		return r.WriteTable(w)
	case "json":
		return r.WriteJSON(w)
	case "yaml":
		return r.WriteYAML(w)
	case "markdown", "md":
		return r.WriteMarkdown(w)
	}
	return fmt.Errorf("unknown output format %q (table, json, yaml, markdown)", format)
}
