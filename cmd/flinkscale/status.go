package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/report"
)

// statusNow is the clock `status` renders ages with; tests fix it.
var statusNow = time.Now

// Width of the REASONS column.
const reasonsWidth = 40

// historyShown is how many of the last rescales the detail view shows.
const historyShown = 5

// statusOptions are status's flags.
type statusOptions struct {
	namespace, output, kubeconfig string
	all                           bool
}

// newStatusCommand is `flinkscale status`: the FlinkScalingPolicies of a
// namespace as a table (or JSON/YAML), or one policy described.
func newStatusCommand(a *app) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [NAME] [-n NAMESPACE | -A] [--kubeconfig FILE] [-o table|wide|json|yaml]",
		Short: "The FlinkScalingPolicies of a namespace, or one policy described",
		Long: `Without NAME, list the FlinkScalingPolicies of a namespace (-n, else the
kubeconfig context's namespace, else "default"; -A: every namespace) with
their status, parallelism, lag and last decision. With NAME, describe one
policy: conditions, last decision and its reasons, vertices, the rescale in
progress and the last rescales. Flags may come before or after NAME.`,
		Example: examplesFor(`  flinkscale status -n flink-jobs
  flinkscale status orders -n flink-jobs -ojson
  flinkscale status -A`),
		GroupID: groupOperate,
		RunE: func(cmd *cobra.Command, args []string) error {
			return statusCmd(cmd.Context(), o, args, a.stdout, statusNow)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.namespace, "namespace", "n", "", "the namespace (default: the kubeconfig context's, else default)")
	fl.BoolVarP(&o.all, "all-namespaces", "A", false, "list every namespace (not with NAME)")
	fl.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVarP(&o.output, "output", "o", "table", "output: table, wide, json or yaml")
	fixedValues(cmd, "output", "table", "wide", "json", "yaml")
	anyFiles(cmd, "kubeconfig")
	clusterCompletion(cmd, policyNames)
	return cmd
}

// statusCmd lists or describes the policies; now gives the time ages are
// computed against.
func statusCmd(ctx context.Context, o statusOptions, names []string, stdout io.Writer, now func() time.Time) error {
	namespace, output, kubeconfig, all := o.namespace, o.output, o.kubeconfig, o.all
	if len(names) > 1 {
		return fmt.Errorf("status: one FlinkScalingPolicy name at most, got %q", names)
	}
	switch output {
	case "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("status: -o must be table, wide, json or yaml, got %q", output)
	}
	if len(names) == 1 && all {
		return fmt.Errorf("status: -A lists every namespace; describe %s with -n NAMESPACE instead", names[0])
	}
	c, ns, err := clusterClient(kubeconfig, namespace)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	t := now()
	if len(names) == 1 {
		return describePolicy(ctx, c, ns, names[0], output, stdout, t)
	}
	if all {
		ns = ""
	}
	return listPolicies(ctx, c, ns, output, stdout, t)
}

// clusterClient is the shared helper of the commands that talk to a cluster
// (status, recommend): a controller-runtime client with the core Kubernetes
// types and flinkscale's API registered, built like kubectl builds its own
// from kubeconfig (when empty: $KUBECONFIG, ~/.kube/config, then the
// in-cluster configuration), and the namespace to work in: ns when given,
// else the kubeconfig context's namespace, else "default".
func clusterClient(kubeconfig, ns string) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client configuration: %w", err)
	}
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	return c, ns, nil
}

// policySummary is one policy in `status -o json|yaml`; policyDetail adds
// the details of `status NAME -o json|yaml`.
type policySummary struct {
	Namespace         string           `json:"namespace"`
	Name              string           `json:"name"`
	Target            string           `json:"target"`
	Mode              string           `json:"mode"`
	Status            string           `json:"status"`
	Current           string           `json:"current,omitempty"`
	Recommended       string           `json:"recommended,omitempty"`
	LagRecords        int64            `json:"lagRecords"`
	LastDecision      *decisionSummary `json:"lastDecision,omitempty"`
	ReportConfigMap   string           `json:"reportConfigMap,omitempty"`
	CreationTimestamp metav1.Time      `json:"creationTimestamp"`
}

// decisionSummary is a policy's last decision; Reasons are the distinct
// reason codes, Details (detail view only) every reason.
type decisionSummary struct {
	Time    metav1.Time             `json:"time"`
	Action  string                  `json:"action"`
	Summary string                  `json:"summary,omitempty"`
	Reasons []string                `json:"reasons"`
	Details []v1alpha1.ReasonStatus `json:"details,omitempty"`
}

type policyDetail struct {
	policySummary   `json:",inline"`
	PollingInterval string                         `json:"pollingInterval"`
	Conditions      []metav1.Condition             `json:"conditions,omitempty"`
	Vertices        []v1alpha1.VertexStatus        `json:"vertices,omitempty"`
	Rescale         *v1alpha1.RescaleStatus        `json:"rescale,omitempty"`
	History         []v1alpha1.RescaleRecordStatus `json:"history,omitempty"`
}

// statusWord is one word for a policy's state, the first that applies of:
// Rescaling(<phase>) while a rescale is in progress, Stalled, NotReady
// (Ready is not True, or not reported yet), Paused, DryRun, Limited (an Apply
// policy capped by a bound) and Ready.
func statusWord(p *v1alpha1.FlinkScalingPolicy) string {
	conds := p.Status.Conditions
	switch {
	case p.Status.Rescale != nil:
		return "Rescaling(" + string(p.Status.Rescale.Phase) + ")"
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled):
		return "Stalled"
	case !meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReady):
		return "NotReady"
	}
	switch m := p.EffectiveMode(); m {
	case v1alpha1.ModePaused, v1alpha1.ModeDryRun:
		return string(m)
	}
	if meta.IsStatusConditionTrue(conds, v1alpha1.ConditionLimited) {
		return "Limited"
	}
	return "Ready"
}

// reasonCodes are the distinct reason codes of a decision, in order.
func reasonCodes(d *v1alpha1.DecisionStatus) []string {
	codes := []string{}
	seen := map[string]bool{}
	for _, r := range d.Reasons {
		if !seen[r.Code] {
			seen[r.Code] = true
			codes = append(codes, r.Code)
		}
	}
	return codes
}

func summarize(p *v1alpha1.FlinkScalingPolicy) policySummary {
	s := policySummary{
		Namespace: p.Namespace, Name: p.Name, Target: p.Spec.TargetRef.Name,
		Mode: string(p.EffectiveMode()), Status: statusWord(p),
		Current: p.Status.CurrentParallelism, Recommended: p.Status.RecommendedParallelism,
		LagRecords: p.Status.LagRecords, CreationTimestamp: p.CreationTimestamp,
	}
	if d := p.Status.LastDecision; d != nil {
		s.LastDecision = &decisionSummary{Time: d.Time, Action: d.Action, Summary: d.Summary, Reasons: reasonCodes(d)}
	}
	if p.EffectiveMode() == v1alpha1.ModeDryRun {
		s.ReportConfigMap = p.Name + controllers.ReportSuffix
	}
	return s
}

// ago is a kubectl-style age ("3m", "2d4h") of t at now.
func ago(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func listPolicies(ctx context.Context, c client.Client, ns, output string, w io.Writer, now time.Time) error {
	var list v1alpha1.FlinkScalingPolicyList
	var opts []client.ListOption
	where := "in all namespaces"
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
		where = "in namespace " + ns
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		return fmt.Errorf("status: listing FlinkScalingPolicies %s: %w", where, explainAPIError(err))
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	switch output {
	case "json", "yaml":
		sums := make([]policySummary, 0, len(items))
		for i := range items {
			sums = append(sums, summarize(&items[i]))
		}
		return writeData(w, output, sums)
	}
	if len(items) == 0 {
		if ns == "" {
			fmt.Fprintln(w, "No FlinkScalingPolicies found.")
		} else {
			fmt.Fprintf(w, "No FlinkScalingPolicies found in namespace %s.\n", ns)
		}
		return nil
	}
	wide := output == "wide"
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	var head []string
	if ns == "" {
		head = append(head, "NAMESPACE")
	}
	head = append(head, "NAME", "TARGET", "MODE", "STATUS", "CURRENT", "RECOMMENDED", "LAG", "LAST-DECISION", "REASONS", "AGE")
	if wide {
		head = append(head, "REPORT", "SUMMARY")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i := range items {
		s := summarize(&items[i])
		var row []string
		if ns == "" {
			row = append(row, s.Namespace)
		}
		last, reasons, summary := "<none>", "<none>", "<none>"
		if d := s.LastDecision; d != nil {
			last = d.Action + " " + ago(d.Time, now) + " ago"
			if len(d.Reasons) > 0 {
				reasons = truncate(strings.Join(d.Reasons, ","), reasonsWidth)
			}
			summary = orNone(d.Summary)
		}
		row = append(row, s.Name, s.Target, s.Mode, s.Status, orNone(s.Current), orNone(s.Recommended),
			fmt.Sprint(s.LagRecords), last, reasons, ago(s.CreationTimestamp, now))
		if wide {
			row = append(row, orNone(s.ReportConfigMap), summary)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func describePolicy(ctx context.Context, c client.Client, ns, name, output string, w io.Writer, now time.Time) error {
	var p v1alpha1.FlinkScalingPolicy
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("status: FlinkScalingPolicy %q not found in namespace %s", name, ns)
		}
		return fmt.Errorf("status: reading FlinkScalingPolicy %s/%s: %w", ns, name, explainAPIError(err))
	}
	d := policyDetail{
		policySummary:   summarize(&p),
		PollingInterval: p.Spec.EffectivePollingInterval().String(),
		Conditions:      p.Status.Conditions,
		Vertices:        p.Status.Vertices,
		Rescale:         p.Status.Rescale,
	}
	if h := p.Status.History; h != nil {
		d.History = h.Rescales
	}
	if ld := p.Status.LastDecision; ld != nil {
		d.LastDecision.Details = ld.Reasons
	}
	switch output {
	case "json", "yaml":
		return writeData(w, output, d)
	}
	report := ""
	if d.ReportConfigMap != "" {
		var cm corev1.ConfigMap
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: d.ReportConfigMap}, &cm)
		switch {
		case apierrors.IsNotFound(err):
			report = "not written yet"
		case err == nil:
			t := lastWrite(&cm)
			if t.IsZero() {
				t = cm.CreationTimestamp
			}
			report = "written " + ago(t, now) + " ago"
		}
	}
	printDetail(w, &p, d, report, now)
	return nil
}

// lastWrite is the time of the last managed-fields write of an object.
func lastWrite(o metav1.Object) metav1.Time {
	var t metav1.Time
	for _, f := range o.GetManagedFields() {
		if f.Time != nil && f.Time.After(t.Time) {
			t = *f.Time
		}
	}
	return t
}

// printDetail writes the describe-like view of one policy.
func printDetail(w io.Writer, p *v1alpha1.FlinkScalingPolicy, d policyDetail, report string, now time.Time) {
	at := func(t metav1.Time) string {
		if t.IsZero() {
			return "<unknown>"
		}
		return fmt.Sprintf("%s ago (%s)", ago(t, now), t.UTC().Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	field := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	field("Name", p.Name)
	field("Namespace", p.Namespace)
	field("Target", p.Spec.TargetRef.EffectiveKind()+" "+p.Spec.TargetRef.Name)
	if p.Status.RescalePath != "" {
		field("Rescale path", p.Status.RescalePath+": "+p.Status.RescalePathReason)
	}
	mode := d.Mode
	if p.Annotations[v1alpha1.AnnotationPaused] == "true" && p.Spec.Mode != v1alpha1.ModePaused {
		mode += fmt.Sprintf(" (annotation %s=true; spec.mode %s)", v1alpha1.AnnotationPaused, orNone(string(p.Spec.Mode)))
	}
	field("Mode", mode)
	for _, a := range []string{v1alpha1.AnnotationPausedScaleIn, v1alpha1.AnnotationPausedScaleOut} {
		if p.Annotations[a] == "true" {
			field("Paused", a+"=true")
		}
	}
	field("Status", d.Status)
	field("Polling Interval", d.PollingInterval)
	field("Current", orNone(d.Current))
	field("Recommended", orNone(d.Recommended))
	field("Lag", fmt.Sprintf("%d records", d.LagRecords))
	field("Age", ago(p.CreationTimestamp, now))
	tw.Flush()

	fmt.Fprintln(w, "\nConditions:")
	if len(d.Conditions) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
		for _, c := range d.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, ago(c.LastTransitionTime, now), c.Message)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nLast Decision:")
	if ld := d.LastDecision; ld == nil {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  Action:\t%s\n", ld.Action)
		fmt.Fprintf(tw, "  Time:\t%s\n", at(ld.Time))
		fmt.Fprintf(tw, "  Summary:\t%s\n", orNone(ld.Summary))
		tw.Flush()
		if len(ld.Details) > 0 {
			fmt.Fprintln(w, "  Reasons:")
			tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "    CODE\tVERTEX\tMESSAGE")
			for _, r := range ld.Details {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", r.Code, vertexLabel(d.Vertices, r.Vertex, "-"), r.Message)
			}
			tw.Flush()
		}
	}

	fmt.Fprintln(w, "\nVertices:")
	if len(d.Vertices) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tNAME\tPARALLELISM")
		for _, v := range d.Vertices {
			par := fmt.Sprint(v.Current)
			if v.Recommended != 0 && v.Recommended != v.Current {
				par = fmt.Sprintf("%d → %d", v.Current, v.Recommended)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.ID, truncate(orNone(v.Name), 48), par)
		}
		tw.Flush()
	}

	if r := d.Rescale; r != nil {
		fmt.Fprintln(w, "\nRescale In Progress:")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  Phase:\t%s\n", r.Phase)
		fmt.Fprintf(tw, "  Started:\t%s\n", at(r.StartTime))
		if r.Message != "" {
			fmt.Fprintf(tw, "  Message:\t%s\n", r.Message)
		}
		if len(r.AppliedParallelism) > 0 {
			ids := make([]string, 0, len(r.AppliedParallelism))
			for id := range r.AppliedParallelism {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return vertexOrder(d.Vertices, ids[i]) < vertexOrder(d.Vertices, ids[j]) })
			var parts []string
			for _, id := range ids {
				parts = append(parts, fmt.Sprintf("%s=%d", vertexLabel(d.Vertices, id, id), r.AppliedParallelism[id]))
			}
			fmt.Fprintf(tw, "  Applied:\t%s\n", strings.Join(parts, ", "))
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nRecent Rescales:")
	if len(d.History) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  DECIDED\tOUTCOME\tDOWNTIME\tVERTICES")
		shown := 0
		for i := len(d.History) - 1; i >= 0 && shown < historyShown; i-- {
			h := d.History[i]
			shown++
			down := "-"
			if h.Downtime.Duration > 0 {
				down = h.Downtime.Duration.String()
			}
			var vs []string
			for _, v := range h.Vertices {
				vs = append(vs, fmt.Sprintf("%s %d→%d", vertexLabel(d.Vertices, v.ID, v.ID), v.From, v.To))
			}
			fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%s\n", ago(h.DecidedAt, now), h.Outcome, down, orNone(strings.Join(vs, ", ")))
		}
		tw.Flush()
		if older := len(d.History) - shown; older > 0 {
			fmt.Fprintf(w, "  (%d older in status.history.rescales)\n", older)
		}
	}

	if d.ReportConfigMap != "" {
		fmt.Fprintf(w, "\nRecommendation Report: ConfigMap %s", d.ReportConfigMap)
		if report != "" {
			fmt.Fprintf(w, " (%s)", report)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  kubectl get configmap %s -n %s -o jsonpath='{.data.report\\.md}'\n", d.ReportConfigMap, p.Namespace)
		fmt.Fprintf(w, "  %s recommend %s -n %s    (observe the job now)\n", progName, p.Name, p.Namespace)
	}
}

// vertexLabel names a vertex id by its name in the status when known, else
// returns fallback for an empty id and the id itself otherwise.
func vertexLabel(vs []v1alpha1.VertexStatus, id, fallback string) string {
	if id == "" {
		return fallback
	}
	for _, v := range vs {
		if v.ID == id || v.Name == id {
			if v.Name != "" {
				return truncate(v.Name, 40)
			}
			return v.ID
		}
	}
	return id
}

// vertexOrder is a vertex's topological index in the status (unknown ids
// last).
func vertexOrder(vs []v1alpha1.VertexStatus, id string) int {
	for i, v := range vs {
		if v.ID == id {
			return i
		}
	}
	return len(vs)
}

// writeData writes v as indented JSON or as YAML.
func writeData(w io.Writer, output string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("status: encoding: %w", err)
	}
	if output == "yaml" {
		if b, err = report.JSONToYAML(b); err != nil {
			return fmt.Errorf("status: encoding: %w", err)
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}

// explainAPIError adds a hint to errors with a known cause.
func explainAPIError(err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("the FlinkScalingPolicy CRD (flinkscale.io/v1alpha1) is not installed in this cluster: %w", err)
	}
	return err
}
