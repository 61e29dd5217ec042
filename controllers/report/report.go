// Package report turns one scaling decision into the recommendation report
// people read before they let flinkscale act: per vertex the current and
// recommended parallelism, how busy and backpressured it is, the utilization
// expected after, its true rate against its target, the limit that binds and
// one sentence with the numbers; per job the resource plan, the lag, the
// predicted downtime and catch-up, and the exact patch Apply mode would send
// to the FlinkDeployment. It renders the report as a terminal table, JSON,
// YAML, Markdown and a self-contained HTML page with charts (gonum/plot).
// It does no I/O beyond writing to the given writer.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics"
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
	// Sized is false when the model held on bad or missing data: the
	// per-vertex figures are then only the current parallelism.
	Sized bool `json:"sized"`

	Vertices []Vertex `json:"vertices"`
	Before   Shape    `json:"before"`
	After    Shape    `json:"after"`

	// TargetKind, RescalePath and RescalePathReason say what the policy
	// scales and how a rescale of it happens (status.rescalePath), when
	// the report comes from a policy.
	TargetKind        string `json:"targetKind,omitempty"`
	RescalePath       string `json:"rescalePath,omitempty"`
	RescalePathReason string `json:"rescalePathReason,omitempty"`
	// Actions are what Apply mode does on a cluster without the operator,
	// where there is no patch: the REST call and the scale of the
	// TaskManager Deployment.
	Actions []string `json:"actions,omitempty"`

	LagRecords        float64 `json:"lagRecords"`
	LagSeconds        float64 `json:"lagSeconds"`
	PredictedDowntime string  `json:"predictedDowntime"`
	PredictedCatchUp  string  `json:"predictedCatchUp"`
	// LagGrows is true when a limit leaves some vertex short of its target
	// rate even at the recommendation.
	LagGrows bool `json:"lagGrows,omitempty"`
	// Utilization is the policy's band of busy fractions, when known.
	Utilization *Band `json:"utilization,omitempty"`
	// Observed is the job over the observation window (live and cluster
	// modes), for the charts.
	Observed []Point `json:"observed,omitempty"`

	// Memory is the TaskManager memory recommendation (nil: the
	// TaskManagers' memory was not reported, or the policy's memory mode is
	// Off).
	Memory *Memory `json:"memory,omitempty"`

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
	// subtask's busy time, the most backpressured subtask's).
	BusyMsPerSecond          float64 `json:"busyMsPerSecond"`
	BackpressuredMsPerSecond float64 `json:"backpressuredMsPerSecond"`
	// UtilizationNow and UtilizationAfter are the busiest subtask's busy
	// fraction at the target rate, now and at the recommendation.
	UtilizationNow   float64 `json:"utilizationNow"`
	UtilizationAfter float64 `json:"utilizationAfter"`
	// TrueRate is the capacity now (records/s at 100 % busy, DS2),
	// CapacityAfter the predicted capacity at the recommendation, TargetRate
	// the rate to sustain (for a source: the arrival rate).
	TrueRate      float64 `json:"trueRate"`
	CapacityAfter float64 `json:"capacityAfter"`
	TargetRate    float64 `json:"targetRate"`
	CatchUpRate   float64 `json:"catchUpRate,omitempty"`
	// Source is true for a vertex without inputs; LagRecords is its lag.
	Source     bool    `json:"source,omitempty"`
	LagRecords float64 `json:"lagRecords,omitempty"`
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

// Memory is one TaskManager's memory, now and recommended, in MiB, and the
// network buffers of the recommended plan.
type Memory struct {
	// Parts lists process, heap, managed, network, metaspace, JVM
	// overhead and the framework and task off-heap memory.
	Parts []MemoryPart `json:"parts"`
	// Applied is true when the plan sets the recommended memory in the
	// same restart (memory mode Apply); otherwise it is advice.
	Applied bool `json:"applied"`
	// BuffersRequired is what the plan's worst TaskManager must reserve,
	// BuffersMaxUse the most its pools can take, BuffersAvailable what a
	// TaskManager has now (network segments).
	BuffersRequired  int64 `json:"buffersRequired"`
	BuffersMaxUse    int64 `json:"buffersMaxUse"`
	BuffersAvailable int64 `json:"buffersAvailable"`
	// SavingMiB is the process memory the recommendation frees over the
	// plan's TaskManagers (negative: it adds memory).
	SavingMiB float64  `json:"savingMiB"`
	Reasons   []Reason `json:"reasons,omitempty"`
}

// MemoryPart is one part of the TaskManager memory model.
type MemoryPart struct {
	Name           string  `json:"name"`
	CurrentMiB     float64 `json:"currentMiB"`
	RecommendedMiB float64 `json:"recommendedMiB"`
}

func newMemory(m *scaling.MemoryRecommendation) *Memory {
	if m == nil {
		return nil
	}
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	c, r := m.Current, m.Recommended
	out := &Memory{Applied: m.Applied, SavingMiB: mb(m.SavingBytes), Parts: []MemoryPart{
		{"process", mb(c.ProcessBytes), mb(r.ProcessBytes)},
		{"heap", mb(c.HeapBytes()), mb(r.HeapBytes())},
		{"managed", mb(c.ManagedBytes), mb(r.ManagedBytes)},
		{"network", mb(c.NetworkBytes), mb(r.NetworkBytes)},
		{"metaspace", mb(c.MetaspaceBytes), mb(r.MetaspaceBytes)},
		{"JVM overhead", mb(c.OverheadBytes), mb(r.OverheadBytes)},
		{"off-heap (framework + task)", mb(c.FrameworkOffHeapBytes + c.TaskOffHeapBytes), mb(r.FrameworkOffHeapBytes + r.TaskOffHeapBytes)},
	}}
	if n := m.Network; n != nil {
		out.BuffersRequired, out.BuffersMaxUse, out.BuffersAvailable = n.Required, n.MaxUse, n.Available
	}
	for _, x := range m.Reasons {
		out.Reasons = append(out.Reasons, Reason{Code: string(x.Code), Vertex: x.Vertex, Message: x.Message})
	}
	return out
}

// verb says whether the memory is applied or advice.
func (m *Memory) verb() string {
	if m.Applied {
		return "set in the same restart"
	}
	return "recommended, not applied (memory mode Apply applies it)"
}

// Reason is a machine-readable reason with its sentence.
type Reason struct {
	Code    string `json:"code"`
	Vertex  string `json:"vertex,omitempty"`
	Message string `json:"message"`
}

// Band is a utilization band (busy fractions).
type Band struct {
	Min    float64 `json:"min"`
	Target float64 `json:"target"`
	Max    float64 `json:"max"`
}

// Point is the job at one moment of the observation window. A field is
// absent when that sample did not measure it: ArrivalRate and LagRecords
// come from the brokers (or Flink's pendingRecords), ProcessedRate from
// Flink's source metrics.
type Point struct {
	At            time.Time `json:"at"`
	ArrivalRate   *float64  `json:"arrivalRate,omitempty"`
	ProcessedRate *float64  `json:"processedRate,omitempty"`
	LagRecords    *float64  `json:"lagRecords,omitempty"`
}

// Series turns a metrics window's series into report points.
func Series(ps []metrics.Point) []Point {
	out := make([]Point, 0, len(ps))
	for _, p := range ps {
		out = append(out, Point{At: p.At, ArrivalRate: p.ArrivalRate, ProcessedRate: p.ProcessedRate, LagRecords: p.LagRecords})
	}
	return out
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
	// Policy, when set, gives the report its utilization band.
	Policy *scaling.Policy
	// Observed is the job over the observation window, oldest first.
	Observed []Point
	// Target, when set, is the object the policy scales: the patch (or,
	// without the operator, the actions) are written for it.
	Target *target.Deployment
}

// New builds the report of decision d, made on snapshot s.
func New(d scaling.Decision, s scaling.Snapshot, o Options) Report {
	r := Report{
		Version: Version, Job: s.JobName, JobID: s.JobID, Source: o.Source, At: d.At,
		Action: string(d.Action), Change: d.Action == scaling.ActionScale, Summary: d.Summary, Sized: d.Sized,
		Before: shape(d.Current), After: shape(d.Recommended),
		LagRecords: d.LagRecords, LagSeconds: d.LagSeconds,
		PredictedDowntime: d.PredictedDowntime.Round(time.Second).String(),
		PredictedCatchUp:  d.PredictedCatchUp.Round(time.Second).String(),
		LagGrows:          d.LagGrows,
		Observed:          o.Observed,
	}
	if p := o.Policy; p != nil {
		r.Utilization = &Band{Min: p.Utilization.Min, Target: p.Utilization.Target, Max: p.Utilization.Max}
	}
	sources := map[string]bool{}
	for _, v := range s.Vertices {
		sources[v.ID] = len(v.Inputs) == 0
	}
	for _, v := range d.Vertices {
		r.Vertices = append(r.Vertices, Vertex{
			ID: v.ID, Name: v.Name, Current: v.Current, Recommended: v.Recommended,
			BusyMsPerSecond: v.BusyTimeMsPerSecond, BackpressuredMsPerSecond: v.BackPressuredMsPerSecond,
			UtilizationNow: v.UtilizationNow, UtilizationAfter: v.UtilizationAfter,
			TrueRate: v.TrueProcessingRate, CapacityAfter: v.ExpectedProcessingRate, TargetRate: v.TargetRate, CatchUpRate: v.CatchUpRate,
			Source: sources[v.ID], LagRecords: v.LagRecords,
			Limit: string(v.Limit), Partitions: v.Partitions, KeyGroups: v.KeyGroups, Bottleneck: v.Bottleneck,
			Explanation: v.Explanation,
		})
	}
	for _, x := range d.Reasons {
		r.Reasons = append(r.Reasons, Reason{Code: string(x.Code), Vertex: x.Vertex, Message: x.Message})
	}
	r.Memory = newMemory(d.Memory)
	if t := o.Target; t != nil {
		r.TargetKind = t.Kind
		r.RescalePath, r.RescalePathReason = t.Path()
	}
	switch {
	case !r.Change || r.RescalePath == target.PathRecommendOnly:
	case o.Target != nil && o.Target.Kind == target.KindDeployment:
		r.Actions = actions(d, o.Target, r.RescalePath)
	default:
		r.Patch = patch(d, s, o)
	}
	return r
}

// actions say what Apply mode does on a cluster without the operator.
func actions(d scaling.Decision, t *target.Deployment, path string) []string {
	var out []string
	if path != target.PathTaskManagers {
		out = append(out, fmt.Sprintf("PUT /jobs/%s/resource-requirements with upper bounds %s (lower bound 1)", t.JobID, target.FormatOverrides(d.Recommended.Parallelism)))
	}
	if t.TaskManagerDeployment != "" && d.Recommended.TaskManagers != t.TaskManagerReplicas {
		when := "first"
		if d.Recommended.TaskManagers < t.TaskManagerReplicas && path != target.PathTaskManagers {
			when = "once the job runs the plan, by no more than the TaskManagers with every slot free"
		}
		out = append(out, fmt.Sprintf("scale Deployment %s from %d to %d replicas (%s)", t.TaskManagerDeployment, t.TaskManagerReplicas, d.Recommended.TaskManagers, when))
	}
	return out
}

func shape(p scaling.Plan) Shape {
	return Shape{Slots: p.Slots, SlotsPerTaskManager: p.SlotsPerTaskManager, TaskManagers: p.TaskManagers, Cores: p.Cores}
}

// patch is the apply configuration the controller would send for d.
func patch(d scaling.Decision, s scaling.Snapshot, o Options) *Patch {
	dep := &target.Deployment{Namespace: o.Namespace, Name: o.Name, Mode: o.Mode, Slots: s.TaskManagers.Slots}
	if o.Target != nil {
		dep = o.Target
	}
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
	j, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b, err := JSONToYAML(j)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// JSONToYAML converts JSON to YAML like sigs.k8s.io/yaml, first escaping
// what YAML would refuse or fold (see yamlSafe): for any output that
// carries names from Flink.
func JSONToYAML(j []byte) ([]byte, error) {
	return yaml.JSONToYAML(yamlSafe(j))
}

// yamlSafe escapes, in JSON text, the characters YAML does not allow in a
// document (DEL, the C1 controls, U+FFFE and U+FFFF) or reads as line
// breaks in a plain scalar (NEL, U+2028, U+2029): Flink's
// vertex names are user input and may hold them. JSON escapes the C0
// controls itself, and its syntax is ASCII, so they can only be in strings,
// where a \u escape of four hex digits means the same to both.
func yamlSafe(j []byte) []byte {
	var b bytes.Buffer
	for _, r := range string(j) {
		if r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.Bytes()
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
	if !r.Sized {
		return r.writeUnsizedTable(w)
	}
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
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "TaskManager memory (%s); network buffers: the plan needs %d of %d per TaskManager (its pools take at most %d)\n",
			m.verb(), m.BuffersRequired, m.BuffersAvailable, m.BuffersMaxUse)
		mt := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(mt, "  PART\tNOW\tRECOMMENDED")
		for _, p := range m.Parts {
			fmt.Fprintf(mt, "  %s\t%.0f MiB\t%.0f MiB\n", p.Name, p.CurrentMiB, p.RecommendedMiB)
		}
		if err := mt.Flush(); err != nil {
			return err
		}
		for _, x := range m.Reasons {
			fmt.Fprintf(w, "  - %s\n", x.Message)
		}
	}
	fmt.Fprintln(w, "reasons:")
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", x)
	}
	if r.Patch != nil {
		fmt.Fprintf(w, "\npatch (server-side apply, field manager %s):\n%s", r.Patch.FieldManager, indent(r.Patch.YAML, "  "))
	}
	return nil
}

// writeUnsizedTable is the table of a hold on data the model could not
// trust: the vertices as they run and the reasons, no figures.
func (r Report) writeUnsizedTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERTEX\tPARALLELISM")
	for _, v := range r.Vertices {
		fmt.Fprintf(tw, "%s\t%d\n", truncate(v.label(), 60), v.Current)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nnot sized: the observation cannot be trusted (see the reasons)")
	fmt.Fprintln(w, "reasons:")
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", x)
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
	if r.RescalePath != "" {
		fmt.Fprintf(w, "Target: %s; rescale path **%s**: %s.\n\n", md(r.TargetKind), r.RescalePath, md(r.RescalePathReason))
	}
	if !r.Sized {
		fmt.Fprintln(w, "Not sized: the observation cannot be trusted (see the reasons).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| vertex | parallelism |")
		fmt.Fprintln(w, "|---|---|")
		for _, v := range r.Vertices {
			fmt.Fprintf(w, "| %s | %d |\n", md(v.label()), v.Current)
		}
		fmt.Fprintln(w)
		r.writeMarkdownReasons(w)
		return nil
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
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "## TaskManager memory\n\nOne TaskManager, %s. Network buffers: the plan needs %d per TaskManager, which has %d; its pools take at most %d.\n\n",
			m.verb(), m.BuffersRequired, m.BuffersAvailable, m.BuffersMaxUse)
		fmt.Fprintln(w, "| part | now | recommended |\n|---|---|---|")
		for _, p := range m.Parts {
			fmt.Fprintf(w, "| %s | %.0f MiB | %.0f MiB |\n", p.Name, p.CurrentMiB, p.RecommendedMiB)
		}
		fmt.Fprintln(w)
		for _, x := range m.Reasons {
			fmt.Fprintf(w, "- %s\n", md(x.Message))
		}
		fmt.Fprintln(w)
	}
	r.writeMarkdownReasons(w)
	if r.Patch != nil {
		fmt.Fprintf(w, "\n## Patch\n\nWhat `Apply` mode sends (server-side apply, field manager `%s`):\n\n```yaml\n%s```\n", r.Patch.FieldManager, r.Patch.YAML)
	}
	if len(r.Actions) > 0 {
		fmt.Fprintf(w, "\n## Actions\n\nWhat `Apply` mode does (no operator: Flink's REST API and the TaskManager Deployment):\n\n")
		for _, a := range r.Actions {
			fmt.Fprintf(w, "1. %s\n", md(a))
		}
	}
	return nil
}

func (r Report) writeMarkdownReasons(w io.Writer) {
	fmt.Fprintln(w, "## Reasons")
	fmt.Fprintln(w)
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "- `%s`%s: %s\n", x.Code, vertexSuffix(x.Vertex), md(x.Message))
	}
}

func vertexSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + v + ")"
}

// md escapes the characters Markdown tables and emphasis would take.
func md(s string) string { return mdEscaper.Replace(s) }

// mdEscaper is md's replacer, built once: a Replacer builds its tables on
// first use, which per call was 3.5 % of what bench-scale's controller
// allocated at 1,000 jobs.
var mdEscaper = strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;")

// Formats are the output formats Write knows.
var Formats = []string{"table", "json", "yaml", "markdown", "html"}

// Write renders the report in format: table, json, yaml, markdown or html.
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
	case "html":
		return r.WriteHTML(w)
	}
	return fmt.Errorf("unknown output format %q (%s)", format, strings.Join(Formats, ", "))
}

// Read reads a report written as JSON (by WriteJSON: `flinkscale recommend
// -o json`, or the report.json key of a DryRun policy's ConfigMap), for
// rendering in another format. Unknown fields and other versions are
// errors.
func Read(r io.Reader) (Report, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		return Report{}, fmt.Errorf("reading the report: %w", err)
	}
	if dec.More() {
		return Report{}, errors.New("reading the report: more than one JSON value")
	}
	if rep.Version != Version {
		return Report{}, fmt.Errorf("reading the report: version %q, want %q", rep.Version, Version)
	}
	if rep.Action != string(scaling.ActionScale) && rep.Action != string(scaling.ActionHold) {
		return Report{}, fmt.Errorf("reading the report: action %q, want Scale or Hold", rep.Action)
	}
	if rep.Change != (rep.Action == string(scaling.ActionScale)) {
		return Report{}, fmt.Errorf("reading the report: change %t contradicts action %s", rep.Change, rep.Action)
	}
	return rep, nil
}
