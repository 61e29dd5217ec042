// Package chart tests the Helm chart charts/flinkscale: helm lint, the
// values schema, the rendered objects (RBAC, the Deployment, the monitoring
// objects, the dashboards) and, in dryrun_test.go, a server-side dry run of
// the rendered manifests against a real kube-apiserver (envtest).
//
// helm is bin/helm (`make helm`). Without it the tests skip, unless CI=true:
// then they fail, as envtest's do.
package chart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/test/helmtest"
)

const (
	chartDir    = helmtest.ChartDir
	releaseName = helmtest.ReleaseName
	// rulesFile and dashboardsGlob are relative to the chart.
	rulesFile      = "rules/flinkscale-rules.yaml"
	dashboardsGlob = "dashboards/*.json"
)

// allFeatures turns every optional part of the chart on.
const allFeatures = `
replicaCount: 2
watchNamespaces: [a, b]
rbac:
  secretNamespaces: [a]
shardSelector: flinkscale.io/shard=a
optIn:
  enabled: false
serviceMonitor:
  enabled: true
  interval: 1m
  scrapeTimeout: 20s
  labels: {release: prometheus}
prometheusRule:
  enabled: true
  labels: {release: prometheus}
podDisruptionBudget:
  enabled: true
dashboards:
  annotations: {grafana_folder: Flink}
priorityClassName: system-cluster-critical
podLabels: {team: streaming}
podAnnotations: {example.com/note: "yes"}
nodeSelector: {kubernetes.io/os: linux}
tolerations:
  - {key: dedicated, operator: Equal, value: flink, effect: NoSchedule}
imagePullSecrets: [{name: regcred}]
controller:
  logLevel: debug
  logEncoder: console
  gracefulShutdownTimeout: 1m
  extraArgs: [--zap-stacktrace-level=panic]
`

func repoRoot(t testing.TB) string { return helmtest.RepoRoot(t) }

func mustRender(t testing.TB, ns, values string, flags ...string) string {
	t.Helper()
	out, err := helmtest.Template(t, ns, values, flags...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// object is one rendered manifest: its identity, and its YAML to decode
// into a typed object.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	raw []byte
}

func (o object) group() string {
	if g, _, ok := strings.Cut(o.APIVersion, "/"); ok {
		return g
	}
	return ""
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Metadata.Namespace, o.Metadata.Name)
}

// into decodes the object into v (a typed Kubernetes object or a map).
func (o object) into(t testing.TB, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, v); err != nil {
		t.Fatalf("decoding %s: %v\n%s", o, err, o.raw)
	}
}

// splitYAML splits a multi-document YAML stream, dropping empty documents.
func splitYAML(t testing.TB, s string) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(s)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("splitting YAML: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("parsing a YAML document: %v\n%s", err, doc)
		}
		if len(m) > 0 {
			docs = append(docs, doc)
		}
	}
}

func parse(t testing.TB, rendered string) []object {
	t.Helper()
	var objs []object
	for _, doc := range splitYAML(t, rendered) {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("parsing a manifest: %v\n%s", err, doc)
		}
		if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
			t.Fatalf("manifest without apiVersion, kind or name:\n%s", doc)
		}
		o.raw = doc
		objs = append(objs, o)
	}
	return objs
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func one(t testing.TB, objs []object, kind string) object {
	t.Helper()
	got := ofKind(objs, kind)
	if len(got) != 1 {
		t.Fatalf("want exactly one %s, got %d: %v", kind, len(got), got)
	}
	return got[0]
}

// normalize sorts each rule's lists and then the rules, so that rule sets
// compare regardless of order.
func normalize(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		r = *r.DeepCopy()
		for _, l := range [][]string{r.APIGroups, r.Resources, r.ResourceNames, r.Verbs, r.NonResourceURLs} {
			slices.Sort(l)
		}
		b, _ := json.Marshal(r)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// generatedRules are config/rbac/role.yaml's rules, which the chart grants
// exactly: the generated ClusterRole grants no Secrets (the chart grants
// them per namespace, as config/rbac/secrets_role.yaml does).
func generatedRules(t testing.TB) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "config/rbac/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := one(t, parse(t, string(b)), "ClusterRole")
	var cr rbacv1.ClusterRole
	role.into(t, &cr)
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "secrets") {
			t.Fatalf("config/rbac/role.yaml grants Secrets cluster-wide (remove the marker): %+v", r)
		}
	}
	return cr.Rules
}

// rulesOf returns the rules of a ClusterRole or Role.
func rulesOf(t testing.TB, o object) []rbacv1.PolicyRule {
	t.Helper()
	switch o.Kind {
	case "ClusterRole":
		var r rbacv1.ClusterRole
		o.into(t, &r)
		return r.Rules
	case "Role":
		var r rbacv1.Role
		o.into(t, &r)
		return r.Rules
	}
	t.Fatalf("%s is not a role", o)
	return nil
}

// checkNoWildcards fails on "*" in any role's apiGroups, resources, verbs
// or resourceNames, and on Secrets in a ClusterRole.
func checkNoWildcards(t *testing.T, objs []object) {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "ClusterRole" && o.Kind != "Role" {
			continue
		}
		for _, r := range rulesOf(t, o) {
			for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
				for _, s := range l {
					if strings.Contains(s, "*") {
						t.Errorf("%s: wildcard in rule %+v", o, r)
					}
				}
			}
			if o.Kind == "ClusterRole" && slices.Contains(r.Resources, "secrets") {
				t.Errorf("%s grants Secrets cluster-wide: %+v", o, r)
			}
			if len(r.NonResourceURLs) > 0 {
				t.Errorf("%s: nonResourceURLs %v", o, r.NonResourceURLs)
			}
		}
	}
}

// secretRoles maps namespace to the Roles there that mention Secrets, and
// checks they grant get alone.
func secretRoles(t *testing.T, objs []object) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, o := range ofKind(objs, "Role") {
		for _, r := range rulesOf(t, o) {
			if !slices.Contains(r.Resources, "secrets") {
				continue
			}
			if !reflect.DeepEqual(r.Resources, []string{"secrets"}) || !reflect.DeepEqual(r.Verbs, []string{"get"}) ||
				!reflect.DeepEqual(r.APIGroups, []string{""}) {
				t.Errorf("%s: Secrets rule is not core secrets/get alone: %+v", o, r)
			}
			out[o.Metadata.Namespace] = append(out[o.Metadata.Namespace], o.Metadata.Name)
		}
	}
	return out
}

// checkBinding checks that the RoleBinding or ClusterRoleBinding (kind)
// name in ns binds the roleKind name to the chart's ServiceAccount.
func checkBinding(t *testing.T, objs []object, kind, ns, name, roleKind, saNamespace string) {
	t.Helper()
	for _, o := range ofKind(objs, kind) {
		if o.Metadata.Name != name || o.Metadata.Namespace != ns {
			continue
		}
		var b rbacv1.RoleBinding // same shape as ClusterRoleBinding
		o.into(t, &b)
		if b.RoleRef.Kind != roleKind || b.RoleRef.Name != name {
			t.Errorf("%s: roleRef %+v, want %s %s", o, b.RoleRef, roleKind, name)
		}
		sa := serviceAccount(t, objs)
		want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: saNamespace}}
		if !reflect.DeepEqual(b.Subjects, want) {
			t.Errorf("%s: subjects %+v, want %+v", o, b.Subjects, want)
		}
		return
	}
	t.Errorf("no %s %s/%s", kind, ns, name)
}

func serviceAccount(t testing.TB, objs []object) string {
	t.Helper()
	return one(t, objs, "ServiceAccount").Metadata.Name
}

func deployment(t testing.TB, objs []object) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	one(t, objs, "Deployment").into(t, &d)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	return d
}

func TestLint(t *testing.T) {
	helm := helmtest.Helm(t)
	for _, args := range [][]string{
		{"lint", chartDir},
		{"lint", "--strict", chartDir},
		{"lint", "--strict", chartDir, "-f", helmtest.ValuesFile(t, allFeatures)},
	} {
		out, err := helmtest.Run(t, helm, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestSchemaRejects: values.schema.json rejects wrong types, unknown keys
// and bad enums; the templates reject inconsistent settings.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"string replicaCount", `replicaCount: "x"`, "/replicaCount"},
		{"unknown top-level key", "replicaCounts: 1", "replicaCounts"},
		{"unknown nested key", "controller: {maxConcurentReconciles: 2}", "maxConcurentReconciles"},
		{"negative replicas", "replicaCount: -1", "/replicaCount"},
		{"bad pull policy", "image: {pullPolicy: Sometimes}", "/image/pullPolicy"},
		{"bad duration", "controller: {rescaleTimeout: 15 minutes}", "/controller/rescaleTimeout"},
		{"bad log level", "controller: {logLevel: verbose}", "/controller/logLevel"},
		{"bad encoder", "controller: {logEncoder: text}", "/controller/logEncoder"},
		{"zero concurrency", "controller: {maxConcurrentReconciles: 0}", "/controller/maxConcurrentReconciles"},
		{"bad namespace", "watchNamespaces: [Not_A_Namespace]", "/watchNamespaces/0"},
		{"secret namespace not a list", "rbac: {secretNamespaces: a}", "/rbac/secretNamespaces"},
		{"port out of range", "metrics: {port: 70000}", "/metrics/port"},
		{"unknown securityContext field", "securityContext: {runAsNonroot: true}", "runAsNonroot"},
		{"grace period below shutdown timeout", "terminationGracePeriodSeconds: 10", "terminationGracePeriodSeconds (10)"},
		{"replicas without leader election", "{replicaCount: 2, leaderElection: {enabled: false}}", "requires leaderElection.enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helmtest.Template(t, "flinkscale-system", tc.values)
			if err == nil {
				t.Fatalf("values %q rendered:\n%.400s", tc.values, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %q: error does not mention %q:\n%v", tc.values, tc.want, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	const ns = "flinkscale-system"
	objs := parse(t, mustRender(t, ns, ""))

	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
		if o.Kind != "ClusterRole" && o.Kind != "ClusterRoleBinding" && o.Metadata.Namespace != ns {
			t.Errorf("%s: not in the release namespace %s", o, ns)
		}
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if o.Metadata.Labels[k] == "" {
				t.Errorf("%s: no label %s", o, k)
			}
		}
	}
	for _, k := range []string{"ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "CustomResourceDefinition"} {
		if kinds[k] != 0 {
			t.Errorf("default values render a %s", k)
		}
	}

	// RBAC: exactly the generated rules, cluster-wide; no Secrets
	// anywhere; leader election in the release namespace.
	checkNoWildcards(t, objs)
	cr := one(t, objs, "ClusterRole")
	if got, want := normalize(rulesOf(t, cr)), normalize(generatedRules(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole rules differ from config/rbac/role.yaml (update flinkscale.managerRules in templates/_helpers.tpl):\n got %v\nwant %v", got, want)
	}
	checkBinding(t, objs, "ClusterRoleBinding", "", cr.Metadata.Name, "ClusterRole", ns)
	if got := secretRoles(t, objs); len(got) != 0 {
		t.Errorf("default values grant Secrets: %v", got)
	}
	roles := ofKind(objs, "Role")
	if len(roles) != 1 || roles[0].Metadata.Namespace != ns {
		t.Fatalf("want only the leader election Role in %s, got %v", ns, roles)
	}
	le := roles[0]
	checkBinding(t, objs, "RoleBinding", ns, le.Metadata.Name, "Role", ns)
	leaseVerbs := map[string]bool{}
	for _, r := range rulesOf(t, le) {
		if slices.Contains(r.Resources, "leases") {
			if !reflect.DeepEqual(r.APIGroups, []string{"coordination.k8s.io"}) {
				t.Errorf("leases rule in %v", r.APIGroups)
			}
			for _, v := range r.Verbs {
				leaseVerbs[v] = true
			}
		}
	}
	if want := map[string]bool{"get": true, "create": true, "update": true}; !reflect.DeepEqual(leaseVerbs, want) {
		t.Errorf("lease verbs %v, want get, create, update", leaseVerbs)
	}

	// The Deployment.
	d := deployment(t, objs)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", d.Spec.Replicas)
	}
	if c.Image != "ghcr.io/flinkscale/flinkscale:0.1.0" {
		t.Errorf("image %s", c.Image)
	}
	if len(c.Args) == 0 || c.Args[0] != "controller" {
		t.Errorf("args %v do not start with controller", c.Args)
	}
	for _, a := range []string{
		"--leader-elect=true", "--leader-election-namespace=" + ns, "--leader-election-id=" + releaseName,
		"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--max-concurrent-reconciles=4", "--flink-timeout=10s", "--rescale-timeout=15m", "--rescale-backoff=10m",
		"--graceful-shutdown-timeout=30s", "--zap-log-level=info", "--zap-encoder=json",
	} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--namespaces") || strings.HasPrefix(a, "--shard-selector") || strings.HasPrefix(a, "--disable-opt-in") {
			t.Errorf("default args include %s", a)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.RunAsGroup == nil || *sc.RunAsGroup != 65532 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("container securityContext is not restricted: %+v", sc)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.RunAsGroup == nil || *psc.RunAsGroup != 65532 || psc.FSGroup == nil || *psc.FSGroup != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext is not restricted: %+v", psc)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not true")
	}
	if pod.ServiceAccountName != serviceAccount(t, objs) {
		t.Errorf("serviceAccountName %s", pod.ServiceAccountName)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 30 {
		t.Errorf("terminationGracePeriodSeconds %v < the 30s graceful shutdown", pod.TerminationGracePeriodSeconds)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http-metrics"] != 8080 || ports["health"] != 8081 {
		t.Errorf("container ports %v", ports)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "health" {
		t.Errorf("liveness probe %+v", p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "health" {
		t.Errorf("readiness probe %+v", p)
	}
	if got := c.Resources.Requests.Cpu().String(); got != "100m" {
		t.Errorf("cpu request %s", got)
	}
	if got := c.Resources.Requests.Memory().String(); got != "128Mi" {
		t.Errorf("memory request %s", got)
	}
	if got := c.Resources.Limits.Memory().String(); got != "512Mi" {
		t.Errorf("memory limit %s", got)
	}
	if _, ok := c.Resources.Limits["cpu"]; ok {
		t.Error("a CPU limit by default")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod labels %v do not match the selector %v", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
		}
	}

	// The metrics Service.
	var svc struct {
		Spec struct {
			Type     string            `json:"type"`
			Selector map[string]string `json:"selector"`
			Ports    []struct {
				Name       string `json:"name"`
				Port       int    `json:"port"`
				TargetPort string `json:"targetPort"`
			} `json:"ports"`
		} `json:"spec"`
	}
	s := one(t, objs, "Service")
	if err := yaml.Unmarshal(s.raw, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != "ClusterIP" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http-metrics" ||
		svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort != "http-metrics" {
		t.Errorf("metrics Service spec %+v", svc.Spec)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, Deployment selector %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}

	checkDashboards(t, objs, ns, nil)
}

func TestAllFeatures(t *testing.T) {
	const ns = "flinkscale"
	objs := parse(t, mustRender(t, ns, allFeatures))
	checkNoWildcards(t, objs)

	// watchNamespaces: no ClusterRole; the generated rules
	// in a Role per watched namespace.
	if got := ofKind(objs, "ClusterRole"); len(got) != 0 {
		t.Errorf("watchNamespaces set, yet ClusterRoles %v", got)
	}
	if got := ofKind(objs, "ClusterRoleBinding"); len(got) != 0 {
		t.Errorf("watchNamespaces set, yet ClusterRoleBindings %v", got)
	}
	want := normalize(generatedRules(t))
	for _, wns := range []string{"a", "b"} {
		found := false
		for _, o := range ofKind(objs, "Role") {
			if o.Metadata.Namespace == wns && reflect.DeepEqual(normalize(rulesOf(t, o)), want) {
				found = true
				checkBinding(t, objs, "RoleBinding", wns, o.Metadata.Name, "Role", ns)
			}
		}
		if !found {
			t.Errorf("no Role in %s with the generated rules %v", wns, want)
		}
	}
	// Secrets: get, in a only.
	sr := secretRoles(t, objs)
	if len(sr) != 1 || len(sr["a"]) != 1 {
		t.Errorf("Secrets granted in %v, want one Role in a", sr)
	}
	for _, name := range sr["a"] {
		checkBinding(t, objs, "RoleBinding", "a", name, "Role", ns)
	}

	d := deployment(t, objs)
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{
		"--namespaces=a,b", "--shard-selector=flinkscale.io/shard=a", "--disable-opt-in=true", "--leader-elect=true",
		"--zap-log-level=debug", "--zap-encoder=console", "--graceful-shutdown-timeout=1m", "--zap-stacktrace-level=panic",
	} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *d.Spec.Replicas)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 60 {
		t.Errorf("terminationGracePeriodSeconds %v < the 1m graceful shutdown", g)
	}
	if l := d.Spec.Template.Labels; l["team"] != "streaming" || l["app.kubernetes.io/name"] != "flinkscale" {
		t.Errorf("pod labels %v", l)
	}

	// ServiceMonitor: the metrics Service's port, in the release namespace.
	var sm struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []map[string]any `json:"endpoints"`
		} `json:"spec"`
	}
	smo := one(t, objs, "ServiceMonitor")
	if err := yaml.Unmarshal(smo.raw, &sm); err != nil {
		t.Fatal(err)
	}
	svc := one(t, objs, "Service")
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0]["port"] != "http-metrics" || sm.Spec.Endpoints[0]["path"] != "/metrics" ||
		sm.Spec.Endpoints[0]["interval"] != "1m" || sm.Spec.Endpoints[0]["scrapeTimeout"] != "20s" {
		t.Errorf("ServiceMonitor endpoints %v", sm.Spec.Endpoints)
	}
	if sm.Metadata.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v", sm.Metadata.Labels)
	}

	// PrometheusRule: the rules file's groups, verbatim.
	var pr struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	pro := one(t, objs, "PrometheusRule")
	if err := yaml.Unmarshal(pro.raw, &pr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(file.Groups) == 0 {
		t.Errorf("%s has no groups", rulesFile)
	}
	if !reflect.DeepEqual(pr.Spec.Groups, file.Groups) {
		t.Errorf("PrometheusRule groups differ from %s:\n got %v\nwant %v", rulesFile, pr.Spec.Groups, file.Groups)
	}
	if pr.Metadata.Labels["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels %v", pr.Metadata.Labels)
	}

	// PodDisruptionBudget: selects the controller pods.
	var pdb struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			MaxUnavailable any `json:"maxUnavailable"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(one(t, objs, "PodDisruptionBudget").raw, &pdb); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) || pdb.Spec.MaxUnavailable == nil {
		t.Errorf("PodDisruptionBudget spec %+v", pdb.Spec)
	}

	checkDashboards(t, objs, ns, map[string]string{"grafana_folder": "Flink"})
}

// TestDashboardLabel: the sidecar's label key and value are configurable,
// and dashboards.enabled=false drops the ConfigMaps.
func TestDashboardLabel(t *testing.T) {
	objs := parse(t, mustRender(t, "monitoring", "dashboards: {namespace: grafana, label: {key: grafana.com/dashboard, value: flinkscale}}"))
	cms := ofKind(objs, "ConfigMap")
	if len(cms) == 0 {
		t.Fatal("no dashboard ConfigMaps")
	}
	for _, o := range cms {
		if o.Metadata.Labels["grafana.com/dashboard"] != "flinkscale" || o.Metadata.Namespace != "grafana" {
			t.Errorf("%s: labels %v", o, o.Metadata.Labels)
		}
	}
	objs = parse(t, mustRender(t, "monitoring", "dashboards: {enabled: false}"))
	if cms := ofKind(objs, "ConfigMap"); len(cms) != 0 {
		t.Errorf("dashboards.enabled=false, yet %v", cms)
	}
}

// checkDashboards: every dashboards/*.json, verbatim and valid JSON, in a
// ConfigMap with the sidecar's default label.
func checkDashboards(t *testing.T, objs []object, ns string, annotations map[string]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), chartDir, dashboardsGlob))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no %s in the chart", dashboardsGlob)
	}
	data := map[string]string{}
	for _, o := range ofKind(objs, "ConfigMap") {
		var cm struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal(o.raw, &cm); err != nil {
			t.Fatal(err)
		}
		if o.Metadata.Labels["grafana_dashboard"] != "1" {
			t.Errorf("%s: no grafana_dashboard=1 label: %v", o, o.Metadata.Labels)
		}
		if o.Metadata.Namespace != ns {
			t.Errorf("%s: not in %s", o, ns)
		}
		for k, v := range annotations {
			if cm.Metadata.Annotations[k] != v {
				t.Errorf("%s: annotations %v lack %s=%s", o, cm.Metadata.Annotations, k, v)
			}
		}
		for k, v := range cm.Data {
			if _, dup := data[k]; dup {
				t.Errorf("dashboard %s in two ConfigMaps", k)
			}
			data[k] = v
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Errorf("%s is not valid JSON", f)
		}
		name := filepath.Base(f)
		got, ok := data[name]
		if !ok {
			t.Errorf("dashboard %s is in no ConfigMap (have %v)", name, slices.Sorted(maps.Keys(data)))
			continue
		}
		if got != string(b) {
			t.Errorf("ConfigMap data %s differs from %s", name, f)
		}
	}
	if len(data) != len(files) {
		t.Errorf("%d dashboards in ConfigMaps, %d files", len(data), len(files))
	}
}

// TestCRDsInSync: the chart's crds/ are byte-identical copies of config/crd
// (`make generate` runs `make chart-crds`).
func TestCRDsInSync(t *testing.T) {
	root := repoRoot(t)
	src, err := filepath.Glob(filepath.Join(root, "config/crd/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := filepath.Glob(filepath.Join(root, chartDir, "crds/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if len(src) == 0 || !reflect.DeepEqual(base(src), base(dst)) {
		t.Fatalf("config/crd has %v, %s/crds has %v: run make generate", base(src), chartDir, base(dst))
	}
	for i := range src {
		a, err := os.ReadFile(src[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: run make generate", dst[i], src[i])
		}
	}
}
