package security

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/test/helmtest"
)

// grant is one allowed verb on one resource and why the controller needs it:
// the code that issues the request.
type grant struct {
	group, resource, verb string
	why                   string
}

// allowed is every verb the controller may hold, per resource. A verb in a
// role and not here fails TestRBACLeastPrivilege: either the code needs it
// (add it here, saying where) or the marker grants too much. Reads through
// the manager's cached client (client.Get/List on the informer) need list
// and watch; get is kept for them too, as the conventional verb of a
// client.Get (list already exposes the same data, so it adds nothing).
var allowed = []grant{
	{"flinkscale.io", "flinkscalingpolicies", "get", "controllers/policy_controller.go Reconcile: Client.Get (cached); controllers/optin/reconciler.go: Client.Get of the owned policy"},
	{"flinkscale.io", "flinkscalingpolicies", "list", "informer of For(&FlinkScalingPolicy{}) (controllers/setup.go); policiesWaitingOn: Client.List by TargetIndex"},
	{"flinkscale.io", "flinkscalingpolicies", "watch", "informer of For(&FlinkScalingPolicy{}) (controllers/setup.go) and Owns in controllers/optin"},
	{"flinkscale.io", "flinkscalingpolicies", "create", "controllers/optin/reconciler.go: Client.Create of the policy of an annotated FlinkDeployment"},
	{"flinkscale.io", "flinkscalingpolicies", "update", "controllers/optin/reconciler.go: Client.Update when the annotations change"},
	{"flinkscale.io", "flinkscalingpolicies", "delete", "controllers/optin/reconciler.go: Client.Delete (with preconditions) when the opt-in annotation goes"},
	{"flinkscale.io", "flinkscalingpolicies/status", "patch", "controllers/policy_controller.go: Client.Status().Patch (merge patch, optimistic lock), once per reconcile"},

	{"flink.apache.org", "flinkdeployments", "get", "controllers/cycle.go: Client.Get of the target (cached, unstructured); controllers/optin/reconciler.go: Client.Get"},
	{"flink.apache.org", "flinkdeployments", "list", "informer of Watches(target.New()) (controllers/setup.go) and For in controllers/optin"},
	{"flink.apache.org", "flinkdeployments", "watch", "informer of Watches(target.New()) (controllers/setup.go) and For in controllers/optin"},
	{"flink.apache.org", "flinkdeployments", "patch", "controllers/cycle.go and controllers/track.go: server-side apply of the plan and of its revert (never create: a missing deployment is not made up)"},

	{"", "configmaps", "create", "controllers/dryrun.go writeReport: server-side apply of <policy>-recommendation creates it the first time (the API server checks create then)"},
	{"", "configmaps", "patch", "controllers/dryrun.go writeReport: server-side apply of the DryRun report"},
	{"", "events", "create", "record.EventRecorder (mgr.GetEventRecorderFor) of both reconcilers, and the leader elector's"},
	{"", "events", "patch", "record.EventRecorder: repeats of an event patch its count"},
	{"", "pods", "list", "controllers/sources.go reporterTargets: APIReader List of the job's pods (uncached) for the Prometheus reporter source; controllers/restpath.go markIdlePods: APIReader List of a standalone cluster's TaskManager pods"},
	{"", "pods", "patch", "controllers/restpath.go markIdlePods: merge patch of controller.kubernetes.io/pod-deletion-cost on idle TaskManager pods before their Deployment is scaled down"},

	{"flink.apache.org", "flinksessionjobs", "get", "controllers/load.go loadSessionJob: Client.Get of the target (cached, unstructured); controllers/optin/reconciler.go: Client.Get"},
	{"flink.apache.org", "flinksessionjobs", "list", "informer of Watches(target.NewOf(SessionJobGVK)) (controllers/setup.go) and For in controllers/optin"},
	{"flink.apache.org", "flinksessionjobs", "watch", "informer of Watches(target.NewOf(SessionJobGVK)) (controllers/setup.go) and For in controllers/optin"},
	{"flink.apache.org", "flinksessionjobs", "patch", "controllers/cycle.go and controllers/track.go: server-side apply of the plan (flinkConfiguration overrides) and of its revert"},

	{"apps", "deployments", "get", "controllers/load.go loadCluster: APIReader Get (uncached) of the JobManager and TaskManager Deployments of a cluster without the operator; controllers/optin: Client.Get of the metadata"},
	{"apps", "deployments", "list", "metadata-only informer of For(Deployment, OnlyMetadata) in controllers/optin (the opt-in annotations)"},
	{"apps", "deployments", "watch", "metadata-only informer of For(Deployment, OnlyMetadata) in controllers/optin (the opt-in annotations)"},
	{"apps", "deployments/scale", "get", "controllers/restpath.go scaleTaskManagers: SubResource(\"scale\").Get of the TaskManager Deployment"},
	{"apps", "deployments/scale", "update", "controllers/restpath.go scaleTaskManagers: SubResource(\"scale\").Update of the TaskManager Deployment (never deployments themselves)"},
	{"", "secrets", "get", "controllers/sources.go secret: APIReader Get (uncached) of an authenticationRef; namespaced Roles only"},

	{"coordination.k8s.io", "leases", "get", "controller-runtime leader election (resourcelock.LeaseLock.Get), and the shard Leases (shard.Manager, uncached)"},
	{"coordination.k8s.io", "leases", "create", "controller-runtime leader election (LeaseLock.Create) the first time, and a shard's Lease"},
	{"coordination.k8s.io", "leases", "update", "controller-runtime leader election: renewals, and the release on shutdown (LeaderElectionReleaseOnCancel); shard Leases: renewals, takeovers, hand-back requests and releases"},
}

// forbiddenVerbs are never granted, on anything: each lets the holder gain
// permissions it was not given.
var forbiddenVerbs = []string{"escalate", "bind", "impersonate"}

// rbacObject is the part of a Role, ClusterRole or binding the checks read.
type rbacObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Rules    []rbacv1.PolicyRule `json:"rules"`
	RoleRef  rbacv1.RoleRef      `json:"roleRef"`
	Subjects []rbacv1.Subject    `json:"subjects"`
	source   string
}

func (o rbacObject) String() string {
	return fmt.Sprintf("%s: %s %s/%s", o.source, o.Kind, o.Metadata.Namespace, o.Metadata.Name)
}

func repoRoot(t testing.TB) string { return helmtest.RepoRoot(t) }

// parseRBAC returns the RBAC objects of a multi-document YAML stream.
func parseRBAC(t testing.TB, source string, data []byte) []rbacObject {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []rbacObject
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: splitting YAML: %v", source, err)
		}
		var o rbacObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s: %v\n%s", source, err, doc)
		}
		switch o.Kind {
		case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
			o.source = source
			out = append(out, o)
		}
	}
}

func readRBAC(t testing.TB, rel string) []rbacObject {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs := parseRBAC(t, rel, b)
	if len(objs) == 0 {
		t.Fatalf("%s: no RBAC objects", rel)
	}
	return objs
}

func renderChart(t *testing.T, name, values string) []rbacObject {
	t.Helper()
	out, err := helmtest.Template(t, "flinkscale-system", values)
	if err != nil {
		t.Fatal(err)
	}
	return parseRBAC(t, "chart ("+name+")", []byte(out))
}

// chartValues render every RBAC shape the chart has.
var chartValues = []struct{ name, values string }{
	{"defaults", ""},
	{"secretNamespaces", "rbac: {secretNamespaces: [a, b]}\n"},
	{"watchNamespaces", "watchNamespaces: [a, b]\nrbac: {secretNamespaces: [a]}\nreplicaCount: 2\n"},
	{"no leader election", "leaderElection: {enabled: false}\n"},
	{"shards", "shards: 3\nleaderElection: {enabled: false}\n"},
}

// reporter is the part of testing.T checkRules reports through.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkRules applies the least-privilege rules to every role of objs.
func checkRules(t reporter, objs []rbacObject, granted map[grant]bool) {
	t.Helper()
	allow := map[[3]string]bool{}
	for _, g := range allowed {
		allow[[3]string{g.group, g.resource, g.verb}] = true
	}
	roles := map[string]bool{} // kind/namespace/name
	for _, o := range objs {
		if o.Kind != "Role" && o.Kind != "ClusterRole" {
			continue
		}
		roles[o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name] = true
		if len(o.Rules) == 0 {
			t.Errorf("%s: no rules", o)
		}
		for _, r := range o.Rules {
			for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
				for _, s := range l {
					if strings.Contains(s, "*") {
						t.Errorf("%s: wildcard %q in rule %+v", o, s, r)
					}
				}
			}
			if len(r.NonResourceURLs) > 0 {
				t.Errorf("%s: nonResourceURLs %v", o, r.NonResourceURLs)
			}
			if len(r.APIGroups) == 0 || len(r.Resources) == 0 || len(r.Verbs) == 0 {
				t.Errorf("%s: incomplete rule %+v", o, r)
			}
			for _, v := range r.Verbs {
				if slices.Contains(forbiddenVerbs, strings.ToLower(v)) {
					t.Errorf("%s: verb %q (privilege escalation) in rule %+v", o, v, r)
				}
			}
			for _, res := range r.Resources {
				if o.Kind == "ClusterRole" && res == "secrets" {
					t.Errorf("%s grants Secrets cluster-wide: %+v", o, r)
				}
				for _, g := range r.APIGroups {
					for _, v := range r.Verbs {
						if !allow[[3]string{g, res, v}] {
							t.Errorf("%s: verb %q on %q (group %q) is not in the allow-list of test/security/rbac_test.go: %+v", o, v, res, g, r)
							continue
						}
						granted[grant{group: g, resource: res, verb: v}] = true
					}
				}
			}
		}
	}
	// Bindings bind the roles of the same source only, to a ServiceAccount.
	for _, o := range objs {
		if o.Kind != "RoleBinding" && o.Kind != "ClusterRoleBinding" {
			continue
		}
		ns := o.Metadata.Namespace
		if o.RoleRef.Kind == "ClusterRole" {
			ns = ""
		}
		if !roles[o.RoleRef.Kind+"/"+ns+"/"+o.RoleRef.Name] {
			t.Errorf("%s binds %s %s, which is not one of the project's roles", o, o.RoleRef.Kind, o.RoleRef.Name)
		}
		if len(o.Subjects) != 1 || o.Subjects[0].Kind != "ServiceAccount" {
			t.Errorf("%s: subjects %+v, want the controller's ServiceAccount alone", o, o.Subjects)
		}
	}
}

func TestRBACLeastPrivilege(t *testing.T) {
	granted := map[grant]bool{}
	t.Run("config/rbac", func(t *testing.T) {
		var objs []rbacObject
		for _, f := range []string{"config/rbac/role.yaml", "config/rbac/leader_election_role.yaml", "config/rbac/secrets_role.yaml"} {
			objs = append(objs, readRBAC(t, f)...)
		}
		checkRules(t, objs, granted)

		// Secrets: get, in the namespaced Role of secrets_role.yaml only.
		for _, o := range objs {
			for _, r := range o.Rules {
				if slices.Contains(r.Resources, "secrets") && (o.Kind != "Role" || o.source != "config/rbac/secrets_role.yaml") {
					t.Errorf("%s grants Secrets outside config/rbac/secrets_role.yaml", o)
				}
			}
		}
	})
	t.Run("chart", func(t *testing.T) {
		for _, cv := range chartValues {
			t.Run(strings.ReplaceAll(cv.name, " ", "_"), func(t *testing.T) {
				checkRules(t, renderChart(t, cv.name, cv.values), granted)
			})
		}
	})
	// The allow-list does not rot: every entry is granted somewhere (else
	// it documents a need the code no longer has: remove it).
	if t.Failed() || t.Skipped() {
		return
	}
	for _, g := range allowed {
		if !granted[grant{group: g.group, resource: g.resource, verb: g.verb}] {
			t.Errorf("allow-list entry %s %q %s is granted by no role: remove it if the code (%s) no longer needs it", g.verb, g.group, g.resource, g.why)
		}
	}
}

// TestRBACCheckerCatches makes sure checkRules fails on what it must: a
// check that passes everything proves nothing.
func TestRBACCheckerCatches(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
	}{
		{"wildcard verb", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: [pods], verbs: ['*']}]"},
		{"wildcard resource", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: ['*'], verbs: [list]}]"},
		{"wildcard group", "kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ['*'], resources: [pods], verbs: [list]}]"},
		{"wildcard name", "kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: [''], resources: [secrets], resourceNames: ['*'], verbs: [get]}]"},
		{"cluster secrets", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]"},
		{"secrets list", "kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get, list]}]"},
		{"unlisted verb", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: [configmaps], verbs: [get]}]"},
		{"escalate", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}]"},
		{"impersonate", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: [serviceaccounts], verbs: [impersonate]}]"},
		{"non-resource", "kind: ClusterRole\nmetadata: {name: x}\nrules: [{nonResourceURLs: [/metrics], verbs: [get]}]"},
		{"foreign binding", "kind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: x, namespace: y}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := &errorCounter{}
			checkRules(inner, parseRBAC(t, tc.name, []byte(tc.yaml)), map[grant]bool{})
			if inner.n == 0 {
				t.Errorf("checkRules passed %s", tc.yaml)
			}
		})
	}
}

// errorCounter counts the errors checkRules reports.
type errorCounter struct{ n int }

func (*errorCounter) Helper()                 {}
func (c *errorCounter) Errorf(string, ...any) { c.n++ }
