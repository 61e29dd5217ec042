package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/test/envtest"
	"github.com/flinkscale/flinkscale/test/fixtures"
)

// Vertex ids of the fixture's jobs.
const (
	vSource = "bc764cd8ddf7a0cff126f51c16239658"
	vWindow = "90bea66de1c231edf33913ecd54406c1"
	vClick1 = "0a448493b4782967b150582570326227"
	vClick2 = "ea632d67b7d595e5b851708ae9ad79d6"
)

// statusFixture is a control plane with FlinkScalingPolicies in two
// namespaces (and an empty third), their statuses written as the controller
// would, and a clock fixed for stable ages.
type statusFixture struct {
	env              *envtest.Env
	c                client.Client
	kubeconfig       string
	nsA, nsB, nsNone string
	now              time.Time
	created          map[string]metav1.Time // "ns/name" → creationTimestamp
}

func newStatusFixture(t *testing.T) *statusFixture {
	t.Helper()
	env, c := fixtures.StartEnv(t)
	f := &statusFixture{
		env: env, c: c, kubeconfig: env.WriteKubeconfig(t),
		nsA: env.CreateNamespace(t, "status-a"), nsB: env.CreateNamespace(t, "status-b"), nsNone: env.CreateNamespace(t, "status-none"),
		// Whole seconds (the API keeps times to the second), a little
		// ahead so that every object is older than now; close to the real
		// clock for the plugin test, which cannot fix it.
		now:     time.Now().Add(5 * time.Second).Truncate(time.Second),
		created: map[string]metav1.Time{},
	}
	old := statusNow
	statusNow = func() time.Time { return f.now }
	t.Cleanup(func() { statusNow = old })

	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(f.now.Add(-d)) }
	cond := func(typ string, st metav1.ConditionStatus, reason, msg string, age time.Duration) metav1.Condition {
		return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, LastTransitionTime: ago(age)}
	}

	completed := ago(26*time.Hour - 3*time.Minute)
	orders := v1alpha1.FlinkScalingPolicyStatus{
		ObservedGeneration: 1,
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "target found and metrics collected", 3*time.Hour),
			cond(v1alpha1.ConditionScaling, metav1.ConditionTrue, v1alpha1.ReasonRescaling, "restarting at the new parallelism", 2*time.Minute),
			cond(v1alpha1.ConditionLimited, metav1.ConditionFalse, v1alpha1.ReasonNotLimited, "", 3*time.Hour),
			cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonProgressing, "", 3*time.Hour),
		},
		CurrentParallelism: "2/4", RecommendedParallelism: "4/8", LagRecords: 120000,
		Vertices: []v1alpha1.VertexStatus{
			{ID: vSource, Name: "Source: orders", Current: 2, Recommended: 4},
			{ID: vWindow, Name: "Window(orders_per_customer)", Current: 4, Recommended: 8},
		},
		LastDecision: &v1alpha1.DecisionStatus{
			Time: ago(3 * time.Minute), Action: "Scale",
			Summary: "scale up 6 → 12 slots: the window is overloaded and 120000 records behind",
			Reasons: []v1alpha1.ReasonStatus{
				{Code: "Overloaded", Vertex: vWindow, Message: "busy 920 ms/s, above the 0.85 band"},
				{Code: "Bottleneck", Vertex: vWindow, Message: "the slowest vertex sets the job's rate"},
				{Code: "Overloaded", Vertex: vSource, Message: "busy 880 ms/s, above the 0.85 band"},
				{Code: "FreeSlots", Message: "2 free slots used first"},
			},
		},
		Rescale: &v1alpha1.RescaleStatus{
			Phase: v1alpha1.RescaleRestarting, StartTime: ago(2 * time.Minute),
			AppliedParallelism: map[string]int32{vWindow: 8, vSource: 4},
			FromJobID:          "3b9d1e0a6a4a4d6f9e2c3c1b5d7e8f90", TargetGeneration: 3,
			Message: "waiting for the job to run at the new parallelism",
		},
		History: &v1alpha1.HistoryStatus{Rescales: []v1alpha1.RescaleRecordStatus{
			{
				DecidedAt: ago(26 * time.Hour), CompletedAt: &completed,
				Downtime: metav1.Duration{Duration: 45 * time.Second}, Outcome: "Succeeded",
				Vertices: []v1alpha1.RescaleVertexStatus{{ID: vWindow, From: 2, To: 4, TrueRateBefore: 9000, TrueRateAfter: 17500}},
			},
			{
				DecidedAt: ago(3 * time.Minute), Outcome: "InProgress",
				Vertices: []v1alpha1.RescaleVertexStatus{{ID: vSource, From: 2, To: 4}, {ID: vWindow, From: 4, To: 8}},
			},
		}},
	}
	clicks := v1alpha1.FlinkScalingPolicyStatus{
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "target found and metrics collected", time.Hour),
			cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonDryRun, "", time.Hour),
		},
		CurrentParallelism: "4/4", RecommendedParallelism: "2/2",
		Vertices: []v1alpha1.VertexStatus{
			{ID: vClick1, Name: "Source: clicks", Current: 4, Recommended: 2},
			{ID: vClick2, Name: "Sink: enriched", Current: 4, Recommended: 2},
		},
		LastDecision: &v1alpha1.DecisionStatus{
			Time: ago(20 * time.Second), Action: "Hold", Summary: "hold: the scale-down is stabilizing (12m of 30m)",
			Reasons: []v1alpha1.ReasonStatus{
				{Code: "ScaleDownStabilizing", Vertex: vClick1, Message: "4 → 2 once the 30m window is covered"},
				{Code: "ScaleDownStabilizing", Vertex: vClick2, Message: "4 → 2 once the 30m window is covered"},
				{Code: "WithinBand", Message: "every vertex is within its utilization band"},
			},
		},
	}
	payments := v1alpha1.FlinkScalingPolicyStatus{
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonMetricsError, "collecting from Flink: connection refused", 10*time.Minute),
			cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonMetricsError, "no metrics for 10m", 10*time.Minute),
		},
		CurrentParallelism: "8", RecommendedParallelism: "8", LagRecords: 5000,
		LastDecision: &v1alpha1.DecisionStatus{
			Time: ago(5 * time.Hour), Action: "Hold", Summary: "hold: metrics are missing",
			Reasons: []v1alpha1.ReasonStatus{
				{Code: "MissingMetrics"}, {Code: "TooFewSamples"}, {Code: "WindowTooShort"}, {Code: "StaleSnapshot"},
			},
		},
	}
	audit := v1alpha1.FlinkScalingPolicyStatus{
		Conditions:         []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonPaused, "paused by annotation", 5*time.Minute)},
		CurrentParallelism: "3", RecommendedParallelism: "3",
	}
	for _, p := range []struct {
		ns, name string
		mode     v1alpha1.Mode
		ann      map[string]string
		status   *v1alpha1.FlinkScalingPolicyStatus
	}{
		{f.nsA, "orders", v1alpha1.ModeApply, nil, &orders},
		{f.nsA, "clicks", v1alpha1.ModeDryRun, nil, &clicks},
		{f.nsB, "payments", v1alpha1.ModeApply, nil, &payments},
		{f.nsB, "audit", v1alpha1.ModeApply, map[string]string{v1alpha1.AnnotationPaused: "true"}, &audit},
		{f.nsB, "fresh", v1alpha1.ModeDryRun, nil, nil},
	} {
		pol := &v1alpha1.FlinkScalingPolicy{}
		pol.Namespace, pol.Name, pol.Annotations = p.ns, p.name, p.ann
		pol.Spec.TargetRef.Name = p.name + "-fd"
		pol.Spec.Mode = p.mode
		pol.Spec.PollingInterval = &metav1.Duration{Duration: 15 * time.Second}
		require.NoError(t, c.Create(t.Context(), pol))
		if p.status != nil {
			pol.Status = *p.status
			require.NoError(t, c.Status().Update(t.Context(), pol), "%s/%s", p.ns, p.name)
		}
		f.created[p.ns+"/"+p.name] = pol.CreationTimestamp
	}
	return f
}

// age is the AGE the table shows for a fixture policy.
func (f *statusFixture) age(ns, name string) string {
	return duration.HumanDuration(f.now.Sub(f.created[ns+"/"+name].Time))
}

func (f *statusFixture) run(args ...string) (int, string, string) {
	return runCLI(append(args, "--kubeconfig", f.kubeconfig)...)
}

// parseTable splits tabwriter output at the header's column starts, as a
// reader of kubectl's tables would: the header's names and, per row, the
// cells by name. A row whose cells do not start where the header's do
// fails the test.
func parseTable(t *testing.T, out string) ([]string, []map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	head := []rune(lines[0])
	var starts []int
	for i, r := range head {
		if r != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	names := strings.Fields(lines[0])
	require.Len(t, names, len(starts))
	var rows []map[string]string
	for _, line := range lines[1:] {
		rs := []rune(line)
		row := map[string]string{}
		for i, s := range starts {
			end := len(rs)
			if i+1 < len(starts) {
				end = min(starts[i+1], len(rs))
			}
			require.Less(t, s, len(rs), "row %q is shorter than the header", line)
			require.True(t, s == 0 || rs[s-1] == ' ', "column %s misaligned in %q", names[i], line)
			row[names[i]] = strings.TrimSpace(string(rs[s:end]))
		}
		rows = append(rows, row)
	}
	return names, rows
}

func TestStatusList(t *testing.T) {
	f := newStatusFixture(t)
	head := []string{"NAME", "TARGET", "MODE", "STATUS", "CURRENT", "RECOMMENDED", "LAG", "LAST-DECISION", "REASONS", "AGE"}
	row := func(ns string, cells ...string) map[string]string {
		m := map[string]string{}
		for i, c := range cells {
			m[head[i]] = c
		}
		m["AGE"] = f.age(ns, cells[0])
		return m
	}
	clicks := row(f.nsA, "clicks", "clicks-fd", "DryRun", "DryRun", "4/4", "2/2", "0", "Hold 20s ago", "ScaleDownStabilizing,WithinBand")
	orders := row(f.nsA, "orders", "orders-fd", "Apply", "Rescaling(Restarting)", "2/4", "4/8", "120000", "Scale 3m ago", "Overloaded,Bottleneck,FreeSlots")
	audit := row(f.nsB, "audit", "audit-fd", "Paused", "Paused", "3", "3", "0", "<none>", "<none>")
	fresh := row(f.nsB, "fresh", "fresh-fd", "DryRun", "NotReady", "<none>", "<none>", "0", "<none>", "<none>")
	payments := row(f.nsB, "payments", "payments-fd", "Apply", "Stalled", "8", "8", "5000", "Hold 5h ago", "MissingMetrics,TooFewSamples,WindowTooS…")
	with := func(m map[string]string, kv ...string) map[string]string {
		n := map[string]string{}
		for k, v := range m {
			n[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			n[kv[i]] = kv[i+1]
		}
		return n
	}

	// A kubeconfig whose context's namespace is nsB.
	kc, err := clientcmd.LoadFromFile(f.kubeconfig)
	require.NoError(t, err)
	kc.Contexts[kc.CurrentContext].Namespace = f.nsB
	nsConfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, nsConfig))

	for _, tc := range []struct {
		name string
		args []string
		head []string
		rows []map[string]string
		// only keeps the rows of these namespaces (-A sees other tests' too)
		only []string
	}{
		{name: "namespace", args: []string{"status", "-n", f.nsA, "--kubeconfig", f.kubeconfig}, head: head, rows: []map[string]string{clicks, orders}},
		{name: "flags after the command, long names", args: []string{"status", "--kubeconfig", f.kubeconfig, "--namespace", f.nsB, "--output", "table"}, head: head, rows: []map[string]string{audit, fresh, payments}},
		{name: "context namespace", args: []string{"status", "--kubeconfig", nsConfig}, head: head, rows: []map[string]string{audit, fresh, payments}},
		{
			name: "all namespaces", args: []string{"status", "-A", "--kubeconfig", f.kubeconfig},
			head: append([]string{"NAMESPACE"}, head...), only: []string{f.nsA, f.nsB},
			rows: []map[string]string{
				with(clicks, "NAMESPACE", f.nsA), with(orders, "NAMESPACE", f.nsA),
				with(audit, "NAMESPACE", f.nsB), with(fresh, "NAMESPACE", f.nsB), with(payments, "NAMESPACE", f.nsB),
			},
		},
		{
			name: "wide", args: []string{"status", "-n", f.nsA, "-o", "wide", "--kubeconfig", f.kubeconfig},
			head: append(append([]string{}, head...), "REPORT", "SUMMARY"),
			rows: []map[string]string{
				with(clicks, "REPORT", "clicks-recommendation", "SUMMARY", "hold: the scale-down is stabilizing (12m of 30m)"),
				with(orders, "REPORT", "<none>", "SUMMARY", "scale up 6 → 12 slots: the window is overloaded and 120000 records behind"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			require.Equal(t, exitNoChange, code, "stderr: %s", errOut)
			assert.Empty(t, errOut)
			t.Logf("%s:\n%s", strings.Join(tc.args, " "), out)
			names, rows := parseTable(t, out)
			assert.Equal(t, tc.head, names)
			if tc.only != nil {
				var kept []map[string]string
				for _, r := range rows {
					if r["NAMESPACE"] == tc.only[0] || r["NAMESPACE"] == tc.only[1] {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			assert.Equal(t, tc.rows, rows, out)
		})
	}

	t.Run("empty namespace", func(t *testing.T) {
		code, out, errOut := f.run("status", "-n", f.nsNone)
		require.Equal(t, exitNoChange, code, errOut)
		assert.Equal(t, "No FlinkScalingPolicies found in namespace "+f.nsNone+".\n", out)
		assert.Empty(t, errOut)
		code, out, _ = f.run("status", "-n", f.nsNone, "-o", "json")
		require.Equal(t, exitNoChange, code)
		assert.Equal(t, "[]\n", out)
	})
}

func TestStatusJSONAndYAML(t *testing.T) {
	f := newStatusFixture(t)
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := f.run("status", "-n", f.nsA, "-o", format)
			require.Equal(t, exitNoChange, code, errOut)
			var got []policySummary
			if format == "json" {
				dec := json.NewDecoder(strings.NewReader(out))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(&got))
			} else {
				require.NoError(t, yaml.UnmarshalStrict([]byte(out), &got))
			}
			require.Len(t, got, 2)
			want := []policySummary{
				{
					Namespace: f.nsA, Name: "clicks", Target: "clicks-fd", Mode: "DryRun", Status: "DryRun",
					Current: "4/4", Recommended: "2/2", ReportConfigMap: "clicks-recommendation",
					LastDecision: &decisionSummary{
						Time: metav1.NewTime(f.now.Add(-20 * time.Second)), Action: "Hold",
						Summary: "hold: the scale-down is stabilizing (12m of 30m)", Reasons: []string{"ScaleDownStabilizing", "WithinBand"},
					},
					CreationTimestamp: f.created[f.nsA+"/clicks"],
				},
				{
					Namespace: f.nsA, Name: "orders", Target: "orders-fd", Mode: "Apply", Status: "Rescaling(Restarting)",
					Current: "2/4", Recommended: "4/8", LagRecords: 120000,
					LastDecision: &decisionSummary{
						Time: metav1.NewTime(f.now.Add(-3 * time.Minute)), Action: "Scale",
						Summary: "scale up 6 → 12 slots: the window is overloaded and 120000 records behind",
						Reasons: []string{"Overloaded", "Bottleneck", "FreeSlots"},
					},
					CreationTimestamp: f.created[f.nsA+"/orders"],
				},
			}
			for i := range want {
				// Compare instants (the decoded times are UTC).
				assert.True(t, want[i].LastDecision.Time.Equal(&got[i].LastDecision.Time), "%s: %v", want[i].Name, got[i].LastDecision.Time)
				assert.True(t, want[i].CreationTimestamp.Equal(&got[i].CreationTimestamp))
				want[i].LastDecision.Time, want[i].CreationTimestamp = got[i].LastDecision.Time, got[i].CreationTimestamp
			}
			assert.Equal(t, want, got)
			// Stable lower-camel names.
			for _, key := range []string{"namespace", "name", "target", "mode", "status", "current", "recommended", "lagRecords", "lastDecision", "reasons", "summary", "action", "time"} {
				assert.Contains(t, out, key)
			}
		})
	}

	t.Run("detail", func(t *testing.T) {
		code, out, errOut := f.run("status", "orders", "-n", f.nsA, "-o", "json")
		require.Equal(t, exitNoChange, code, errOut)
		var d policyDetail
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&d))
		assert.Equal(t, "orders", d.Name)
		assert.Equal(t, "Rescaling(Restarting)", d.Status)
		assert.Equal(t, "15s", d.PollingInterval)
		require.Len(t, d.Conditions, 4)
		assert.Equal(t, "Scaling", d.Conditions[1].Type)
		assert.Equal(t, metav1.ConditionTrue, d.Conditions[1].Status)
		require.Len(t, d.Vertices, 2)
		assert.Equal(t, v1alpha1.VertexStatus{ID: vWindow, Name: "Window(orders_per_customer)", Current: 4, Recommended: 8}, d.Vertices[1])
		require.NotNil(t, d.Rescale)
		assert.Equal(t, v1alpha1.RescaleRestarting, d.Rescale.Phase)
		assert.Equal(t, map[string]int32{vWindow: 8, vSource: 4}, d.Rescale.AppliedParallelism)
		require.Len(t, d.History, 2)
		assert.Equal(t, "Succeeded", d.History[0].Outcome)
		assert.Equal(t, 45*time.Second, d.History[0].Downtime.Duration)
		require.NotNil(t, d.LastDecision)
		assert.Equal(t, []string{"Overloaded", "Bottleneck", "FreeSlots"}, d.LastDecision.Reasons)
		require.Len(t, d.LastDecision.Details, 4)
		assert.Equal(t, v1alpha1.ReasonStatus{Code: "Overloaded", Vertex: vWindow, Message: "busy 920 ms/s, above the 0.85 band"}, d.LastDecision.Details[0])

		code, out, errOut = f.run("status", "payments", "-n", f.nsB, "-o", "yaml")
		require.Equal(t, exitNoChange, code, errOut)
		var y policyDetail
		require.NoError(t, yaml.UnmarshalStrict([]byte(out), &y))
		assert.Equal(t, "Stalled", y.Status)
		assert.Nil(t, y.Rescale)
		assert.Empty(t, y.History)
		assert.Contains(t, out, "status: Stalled\n")
	})
}

// hasLine reports whether out has a line whose whitespace-separated fields
// are want's.
func hasLine(out string, want ...string) bool {
	w := strings.Fields(strings.Join(want, " "))
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(w, " ") {
			return true
		}
	}
	return false
}

func TestStatusDescribe(t *testing.T) {
	f := newStatusFixture(t)
	rfc := func(d time.Duration) string { return f.now.Add(-d).UTC().Format(time.RFC3339) }

	for _, tc := range []struct {
		name  string
		args  []string
		lines [][]string
		not   []string
	}{
		{
			name: "Apply, rescaling",
			// The name between flags, kubectl style.
			args: []string{"status", "-n", f.nsA, "orders", "-o", "table"},
			lines: [][]string{
				{"Name:", "orders"}, {"Namespace:", f.nsA}, {"Target:", "FlinkDeployment orders-fd"}, {"Mode:", "Apply"},
				{"Status:", "Rescaling(Restarting)"}, {"Polling Interval:", "15s"},
				{"Current:", "2/4"}, {"Recommended:", "4/8"}, {"Lag:", "120000 records"}, {"Age:", f.age(f.nsA, "orders")},
				{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"},
				{"Ready", "True", "Ready", "3h", "target found and metrics collected"},
				{"Scaling", "True", "Rescaling", "2m", "restarting at the new parallelism"},
				{"Limited", "False", "NotLimited", "3h"},
				{"Stalled", "False", "Progressing", "3h"},
				{"Action:", "Scale"}, {"Time:", "3m ago (" + rfc(3*time.Minute) + ")"},
				{"Summary:", "scale up 6 → 12 slots: the window is overloaded and 120000 records behind"},
				{"CODE", "VERTEX", "MESSAGE"},
				{"Overloaded", "Window(orders_per_customer)", "busy 920 ms/s, above the 0.85 band"},
				{"Bottleneck", "Window(orders_per_customer)", "the slowest vertex sets the job's rate"},
				{"Overloaded", "Source: orders", "busy 880 ms/s, above the 0.85 band"},
				{"FreeSlots", "-", "2 free slots used first"},
				{"ID", "NAME", "PARALLELISM"},
				{vSource, "Source: orders", "2 → 4"},
				{vWindow, "Window(orders_per_customer)", "4 → 8"},
				{"Rescale In Progress:"},
				{"Phase:", "Restarting"}, {"Started:", "2m ago (" + rfc(2*time.Minute) + ")"},
				{"Message:", "waiting for the job to run at the new parallelism"},
				{"Applied:", "Source: orders=4, Window(orders_per_customer)=8"},
				{"DECIDED", "OUTCOME", "DOWNTIME", "VERTICES"},
				{"3m ago", "InProgress", "-", "Source: orders 2→4, Window(orders_per_customer) 4→8"},
				{"26h ago", "Succeeded", "45s", "Window(orders_per_customer) 2→4"},
			},
			not: []string{"Recommendation Report", "<none>"},
		},
		{
			name: "DryRun, holding",
			args: []string{"status", "clicks", "-n", f.nsA},
			lines: [][]string{
				{"Mode:", "DryRun"}, {"Status:", "DryRun"}, {"Lag:", "0 records"},
				{"Action:", "Hold"}, {"Time:", "20s ago (" + rfc(20*time.Second) + ")"},
				{"ScaleDownStabilizing", "Source: clicks", "4 → 2 once the 30m window is covered"},
				{"ScaleDownStabilizing", "Sink: enriched", "4 → 2 once the 30m window is covered"},
				{"WithinBand", "-", "every vertex is within its utilization band"},
				{vClick1, "Source: clicks", "4 → 2"},
				{"Recommendation Report: ConfigMap clicks-recommendation (not written yet)"},
				{`kubectl get configmap clicks-recommendation -n ` + f.nsA + ` -o jsonpath='{.data.report\.md}'`},
				{"flinkscale recommend clicks -n " + f.nsA + " (observe the job now)"},
			},
			not: []string{"Rescale In Progress"},
		},
		{
			name: "stalled",
			args: []string{"status", "payments", "-n", f.nsB},
			lines: [][]string{
				{"Status:", "Stalled"},
				{"Ready", "False", "MetricsError", "10m", "collecting from Flink: connection refused"},
				{"Stalled", "True", "MetricsError", "10m", "no metrics for 10m"},
				{"MissingMetrics", "-"}, {"StaleSnapshot", "-"},
				{"Vertices:"}, {"<none>"}, {"Recent Rescales:"},
			},
		},
		{
			name: "paused by annotation, no status",
			args: []string{"status", "audit", "-n", f.nsB},
			lines: [][]string{
				{"Mode:", "Paused (annotation flinkscale.io/paused=true; spec.mode Apply)"}, {"Status:", "Paused"},
				{"Last Decision:"}, {"<none>"},
			},
		},
		{
			name:  "never reconciled",
			args:  []string{"status", "fresh", "-n", f.nsB},
			lines: [][]string{{"Status:", "NotReady"}, {"Current:", "<none>"}, {"Conditions:"}, {"Recommendation Report: ConfigMap fresh-recommendation (not written yet)"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := f.run(tc.args...)
			require.Equal(t, exitNoChange, code, errOut)
			assert.Empty(t, errOut)
			t.Logf("%s:\n%s", strings.Join(tc.args, " "), out)
			for _, l := range tc.lines {
				assert.True(t, hasLine(out, l...), "no line %q in\n%s", l, out)
			}
			for _, s := range tc.not {
				assert.NotContains(t, out, s)
			}
		})
	}

	t.Run("report written", func(t *testing.T) {
		cm := &corev1.ConfigMap{}
		cm.Namespace, cm.Name = f.nsA, "clicks-recommendation"
		cm.Data = map[string]string{"report.md": "# clicks\n"}
		require.NoError(t, f.c.Create(t.Context(), cm))
		_, out, _ := f.run("status", "clicks", "-n", f.nsA)
		assert.Regexp(t, `Recommendation Report: ConfigMap clicks-recommendation \(written \d+s ago\)`, out)
	})
}

func TestStatusErrors(t *testing.T) {
	f := newStatusFixture(t)
	// A kubeconfig for a server nobody listens on.
	kc, err := clientcmd.LoadFromFile(f.kubeconfig)
	require.NoError(t, err)
	for _, c := range kc.Clusters {
		c.Server = "https://" + fixtures.FreeAddr(t)
	}
	down := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, down))

	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"unknown name", []string{"status", "nope", "-n", f.nsA, "--kubeconfig", f.kubeconfig}, `status: FlinkScalingPolicy "nope" not found in namespace ` + f.nsA},
		{"bad output", []string{"status", "-n", f.nsA, "-o", "xml", "--kubeconfig", f.kubeconfig}, `status: -o must be table, wide, json or yaml, got "xml"`},
		{"bad output with a name", []string{"status", "orders", "-o", "markdown", "--kubeconfig", f.kubeconfig}, `status: -o must be table, wide, json or yaml, got "markdown"`},
		{"two names", []string{"status", "orders", "clicks", "-n", f.nsA, "--kubeconfig", f.kubeconfig}, `status: one FlinkScalingPolicy name at most, got ["orders" "clicks"]`},
		{"name and -A", []string{"status", "orders", "-A", "--kubeconfig", f.kubeconfig}, "status: -A lists every namespace; describe orders with -n NAMESPACE instead"},
		{"unknown flag", []string{"status", "--watch", "--kubeconfig", f.kubeconfig}, "status: unknown flag: --watch"},
		{"missing kubeconfig", []string{"status", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, "status: kubernetes client configuration:"},
		{"unreachable server", []string{"status", "-n", "x", "--kubeconfig", down}, "status: listing FlinkScalingPolicies in namespace x: "},
		{"unreachable server, all namespaces", []string{"status", "-A", "--kubeconfig", down}, "status: listing FlinkScalingPolicies in all namespaces: "},
		{"unreachable server, a name", []string{"status", "orders", "-n", "x", "--kubeconfig", down}, "status: reading FlinkScalingPolicy x/orders: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			assert.Equal(t, exitError, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, "flinkscale: "+tc.err)
		})
	}

	t.Run("help", func(t *testing.T) {
		code, out, errOut := runCLI("status", "-h")
		assert.Equal(t, exitNoChange, code, errOut)
		assert.Contains(t, out, "flinkscale status [NAME] [-n NAMESPACE | -A] [--kubeconfig FILE] [-o table|wide|json|yaml]")
	})
}

// Names complete from the cluster: the policies of the namespace for
// status, the policies and FlinkDeployments for recommend, namespaces
// for -n.
func TestCompletionFromTheCluster(t *testing.T) {
	f := newStatusFixture(t)
	names, d := complete(t, "status", "--kubeconfig", f.kubeconfig, "-n", f.nsA, "")
	assert.Equal(t, []string{"clicks", "orders"}, names)
	assert.Equal(t, cobra.ShellCompDirectiveNoFileComp, d)
	names, _ = complete(t, "status", "--kubeconfig", f.kubeconfig, "-n", f.nsA, "o")
	assert.Equal(t, []string{"orders"}, names)
	names, _ = complete(t, "status", "orders", "--kubeconfig", f.kubeconfig, "-n", f.nsA, "")
	assert.Empty(t, names, "one name at most")
	names, _ = complete(t, "status", "--kubeconfig", f.kubeconfig, "-n", "")
	assert.Contains(t, names, f.nsA)
	assert.Contains(t, names, "default")
	names, _ = complete(t, "recommend", "--kubeconfig", f.kubeconfig, "-n", f.nsA, "")
	assert.Subset(t, names, []string{"clicks", "orders"})
}

// The help names the command as kubectl runs the plugin, examples
// included.
func TestPluginUsage(t *testing.T) {
	old := progName
	t.Cleanup(func() { progName = old })
	code, plain, _ := runCLI("help")
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, plain, "Usage:\n  flinkscale [command]\n")
	progName = "kubectl flinkscale"
	code, out, _ := runCLI("--help")
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "Usage:\n  kubectl flinkscale [command]\n")
	assert.Contains(t, out, `Use "kubectl flinkscale [command] --help"`)
	code, out, _ = runCLI("status", "-h")
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "Usage:\n  kubectl flinkscale status [NAME] [-n NAMESPACE | -A]")
	assert.Contains(t, out, "\n  kubectl flinkscale status orders -n flink-jobs -ojson\n")
	assert.NotContains(t, out, "\n  flinkscale ")
}

// The binary installed on the PATH as kubectl-flinkscale is a kubectl
// plugin: the real kubectl lists it and runs `kubectl flinkscale status`.
func TestStatusPlugin(t *testing.T) {
	kubectl := envtest.Kubectl(t)
	f := newStatusFixture(t)
	root, err := envtest.RepoRoot()
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	plugin := filepath.Join(dir, "kubectl-flinkscale")
	build := exec.CommandContext(ctx, "go", "build", "-o", plugin, "./cmd/flinkscale")
	build.Dir = root
	b, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	// kubectl's plugin completion runs kubectl_complete-flinkscale.
	require.NoError(t, os.Link(plugin, filepath.Join(dir, "kubectl_complete-flinkscale")))

	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	kc := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	out, errOut, err := kc("plugin", "list")
	// Another kubectl-flinkscale later on the PATH is only a warning about
	// ours shadowing it, which kubectl reports with exit code 1.
	if err != nil && !strings.Contains(errOut, "overshadowed") {
		require.NoError(t, err, "kubectl plugin list: %s", errOut)
	}
	assert.Contains(t, out, plugin)

	out, errOut, err = kc("flinkscale", "status", "--help")
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "\n  kubectl flinkscale status [NAME]")
	assert.NotContains(t, out, "\n  flinkscale ")

	out, errOut, err = kc("flinkscale", "status", "-n", f.nsA, "--kubeconfig", f.kubeconfig)
	require.NoError(t, err, errOut)
	t.Logf("kubectl flinkscale status:\n%s", out)
	names, rows := parseTable(t, out)
	assert.Equal(t, []string{"NAME", "TARGET", "MODE", "STATUS", "CURRENT", "RECOMMENDED", "LAG", "LAST-DECISION", "REASONS", "AGE"}, names)
	require.Len(t, rows, 2, out)
	// The clock is real here: ages may be a few seconds off the fixture's.
	for _, r := range rows {
		delete(r, "LAST-DECISION")
		delete(r, "AGE")
	}
	assert.Equal(t, []map[string]string{
		{"NAME": "clicks", "TARGET": "clicks-fd", "MODE": "DryRun", "STATUS": "DryRun", "CURRENT": "4/4", "RECOMMENDED": "2/2", "LAG": "0", "REASONS": "ScaleDownStabilizing,WithinBand"},
		{"NAME": "orders", "TARGET": "orders-fd", "MODE": "Apply", "STATUS": "Rescaling(Restarting)", "CURRENT": "2/4", "RECOMMENDED": "4/8", "LAG": "120000", "REASONS": "Overloaded,Bottleneck,FreeSlots"},
	}, rows)

	out, errOut, err = kc("flinkscale", "status", "orders", "-n", f.nsA, "--kubeconfig", f.kubeconfig)
	require.NoError(t, err, errOut)
	t.Logf("kubectl flinkscale status orders:\n%s", out)
	assert.True(t, hasLine(out, "Phase:", "Restarting"), out)

	// Completion through kubectl: commands, flag values, and the
	// policies of the namespace from the cluster.
	out, errOut, err = kc("__complete", "flinkscale", "st")
	require.NoError(t, err, errOut)
	assert.Equal(t, "status\tThe FlinkScalingPolicies of a namespace, or one policy described\n:4\n", out)
	out, errOut, err = kc("__complete", "flinkscale", "status", "-n", f.nsA, "--kubeconfig", f.kubeconfig, "")
	require.NoError(t, err, errOut)
	assert.Equal(t, "clicks\norders\n:4\n", out)
	out, errOut, err = kc("__complete", "flinkscale", "recommend", "-o", "")
	require.NoError(t, err, errOut)
	assert.Equal(t, "table\njson\nyaml\nmarkdown\nhtml\n:4\n", out)

	// Errors keep the exit code through kubectl.
	_, errOut, err = kc("flinkscale", "status", "nope", "-n", f.nsA, "--kubeconfig", f.kubeconfig)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, exitError, exit.ExitCode())
	assert.Contains(t, errOut, `FlinkScalingPolicy "nope" not found in namespace `+f.nsA)
}
