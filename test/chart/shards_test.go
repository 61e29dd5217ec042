package chart

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/flinkscale/flinkscale/test/helmtest"
)

// shardedValues deploy three shards, with a PodDisruptionBudget.
const shardedValues = `
shards: 3
podDisruptionBudget:
  enabled: true
`

// shards: 3 renders a StatefulSet of 3 pods instead of the Deployment,
// each pod named by the downward API as its shard identity, with a
// headless Service, leader election off, and a Role on exactly the three
// shard Leases.
func TestShards(t *testing.T) {
	const ns = "flinkscale-system"
	objs := parse(t, mustRender(t, ns, shardedValues))
	if d := ofKind(objs, "Deployment"); len(d) != 0 {
		t.Errorf("shards: 3 renders a Deployment too: %v", d)
	}
	var st appsv1.StatefulSet
	one(t, objs, "StatefulSet").into(t, &st)
	if st.Spec.Replicas == nil || *st.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", st.Spec.Replicas)
	}
	if st.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel", st.Spec.PodManagementPolicy)
	}
	for k, v := range st.Spec.Selector.MatchLabels {
		if st.Spec.Template.Labels[k] != v {
			t.Errorf("pod labels %v do not match the selector %v", st.Spec.Template.Labels, st.Spec.Selector.MatchLabels)
		}
	}
	c := st.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"controller", "--shards=3", "--shard-identity=$(POD_NAME)", "--leader-elect=false",
		"--leader-election-id=" + releaseName, "--leader-election-namespace=" + ns} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(c.Args), func(a string) bool { return !strings.HasPrefix(a, "--leader-elect=") })); n != 1 {
		t.Errorf("%d --leader-elect args: %v", n, c.Args)
	}
	podName := corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return reflect.DeepEqual(e, podName) }) {
		t.Errorf("env %+v lacks POD_NAME from metadata.name", c.Env)
	}

	// The governing Service: headless, selecting the pods.
	var headless corev1.Service
	for _, o := range ofKind(objs, "Service") {
		if o.Metadata.Name == st.Spec.ServiceName {
			o.into(t, &headless)
		}
	}
	if headless.Name == "" || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("no headless Service %q: %+v", st.Spec.ServiceName, headless)
	}
	if !reflect.DeepEqual(headless.Spec.Selector, st.Spec.Selector.MatchLabels) {
		t.Errorf("headless Service selector %v, StatefulSet selector %v", headless.Spec.Selector, st.Spec.Selector.MatchLabels)
	}

	// The PodDisruptionBudget covers the shards' pods (one down at a time:
	// its shard is taken over meanwhile).
	var pdb policyv1.PodDisruptionBudget
	one(t, objs, "PodDisruptionBudget").into(t, &pdb)
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, st.Spec.Selector.MatchLabels) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}

	// Leases: get and update on the shard Leases only, create.
	roles := ofKind(objs, "Role")
	if len(roles) != 1 {
		t.Fatalf("want only the Lease Role, got %v", roles)
	}
	checkBinding(t, objs, "RoleBinding", ns, roles[0].Metadata.Name, "Role", ns)
	var named []string
	for _, r := range rulesOf(t, roles[0]) {
		if slices.Contains(r.Resources, "leases") && len(r.ResourceNames) > 0 {
			named = append(named, r.ResourceNames...)
			if !reflect.DeepEqual(r.Verbs, []string{"get", "update"}) {
				t.Errorf("verbs on the named Leases %v", r.Verbs)
			}
		}
	}
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("%s-shard-%d", releaseName, i))
	}
	if !reflect.DeepEqual(named, want) {
		t.Errorf("Lease names %v, want %v", named, want)
	}
	checkNoWildcards(t, objs)
}

// One shard is today's Deployment; the templates reject a sharded
// replicaCount, and the schema a shard count below 1.
func TestShardsValues(t *testing.T) {
	d := deployment(t, parse(t, mustRender(t, "flinkscale-system", "shards: 1")))
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--shard") {
			t.Errorf("shards: 1 passes %s", a)
		}
	}
	for _, tc := range []struct{ values, want string }{
		{"shards: 0", "/shards"},
		{`shards: "3"`, "/shards"},
		{"{shards: 3, replicaCount: 2}", "leave replicaCount at 1"},
	} {
		if out, err := helmtest.Template(t, "flinkscale-system", tc.values); err == nil {
			t.Errorf("values %q rendered:\n%.400s", tc.values, out)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %q: error does not mention %q:\n%v", tc.values, tc.want, err)
		}
	}
}
