package controllers

import (
	"bytes"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/report"
	"github.com/flinkscale/flinkscale/scaling"
)

// ReportSuffix names the ConfigMap a DryRun policy writes its
// recommendation report into: <policy>-recommendation.
const ReportSuffix = "-recommendation"

// Keys of the report ConfigMap.
const (
	ReportMarkdownKey = "report.md"
	ReportJSONKey     = "report.json"
)

// reportRefresh is how often an unchanged recommendation's report is
// rewritten anyway (its lag and rates move).
const reportRefresh = 10 * time.Minute

// writeReport writes the recommendation report (Markdown and JSON, as
// `flinkscale recommend` renders it) into the policy's report ConfigMap,
// owned by the policy, when the recommendation changes and otherwise every
// reportRefresh. A failure is logged and retried at the next poll: the
// report never holds up the decision.
func (c *cycle) writeReport(d scaling.Decision, snap scaling.Snapshot, p scaling.Policy) {
	key := string(d.Action) + "/" + planKey(d.Recommended)
	if key == c.st.reportKey && c.now.Sub(c.st.reportAt) < reportRefresh {
		return
	}
	mode := "DryRun"
	if c.pol.EffectiveMode() != v1alpha1.ModeDryRun {
		mode = "recommendations only"
	}
	r := report.New(d, snap, report.Options{
		Source:    fmt.Sprintf("FlinkScalingPolicy %s/%s (%s)", c.pol.Namespace, c.pol.Name, mode),
		Namespace: c.d.Namespace, Name: c.d.Name, Mode: c.d.Mode,
		Policy: &p, Observed: report.Series(c.st.window.Series()), Target: c.d,
	})
	var md, js bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		c.log.Error(err, "rendering the report")
		return
	}
	if err := r.WriteJSON(&js); err != nil {
		c.log.Error(err, "rendering the report")
		return
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.pol.Namespace, Name: c.pol.Name + ReportSuffix,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "flinkscale", "flinkscale.io/policy": c.pol.Name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "FlinkScalingPolicy", Name: c.pol.Name, UID: c.pol.UID,
				Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true),
			}},
		},
		Data: map[string]string{ReportMarkdownKey: md.String(), ReportJSONKey: js.String()},
	}
	if err := c.r.Client.Patch(c.ctx, cm, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		c.log.Error(err, "writing the recommendation report", "configMap", cm.Name)
		return
	}
	now := c.now
	c.commit(func() { c.st.reportKey, c.st.reportAt = key, now })
}

func ptrTo[T any](v T) *T { return &v }
