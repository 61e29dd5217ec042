package main

import (
	"context"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
)

// Shell completion: `flinkscale completion bash|zsh|fish|powershell` writes
// the script (cobra's); through kubectl, kubectl_complete-flinkscale answers
// kubectl's plugin completion (main). Flag values complete from fixed
// lists and file extensions; object names and namespaces from the cluster
// the command's --kubeconfig and -n point at, within completionTimeout.
// Errors go to cobra's debug log ($BASH_COMP_DEBUG_FILE), not the terminal.

// completionTimeout bounds a completion's calls to the API server: a shell
// waiting on a down cluster is worse than no suggestion.
const completionTimeout = 5 * time.Second

// fixedValues completes the flag with values.
func fixedValues(cmd *cobra.Command, flag string, values ...string) {
	mustRegister(cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)))
}

// filesWith completes the flags with file names of that extension.
func filesWith(cmd *cobra.Command, ext string, flags ...string) {
	for _, f := range flags {
		mustRegister(cmd.MarkFlagFilename(f, ext))
	}
}

// anyFiles completes the flags with any file name.
func anyFiles(cmd *cobra.Command, flags ...string) {
	for _, f := range flags {
		mustRegister(cmd.MarkFlagFilename(f))
	}
}

// jsonFiles completes the flags with JSON file names.
func jsonFiles(cmd *cobra.Command, flags ...string) { filesWith(cmd, "json", flags...) }

// directories completes the flags with directory names.
func directories(cmd *cobra.Command, flags ...string) {
	for _, f := range flags {
		mustRegister(cmd.MarkFlagDirname(f))
	}
}

// mustRegister panics on a completion registered for a flag the command
// does not have: a programming error every test run finds.
func mustRegister(err error) {
	if err != nil {
		panic(err)
	}
}

// clusterCompletion completes -n with the cluster's namespaces; names
// (when not nil) completes the command's first argument.
func clusterCompletion(cmd *cobra.Command, names func(ctx context.Context, c client.Client, ns string) []string) {
	mustRegister(cmd.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return completeFromCluster(cmd, toComplete, func(ctx context.Context, c client.Client, _ string) []string {
			var list corev1.NamespaceList
			if err := c.List(ctx, &list); err != nil {
				return nil
			}
			out := make([]string, 0, len(list.Items))
			for _, n := range list.Items {
				out = append(out, n.Name)
			}
			return out
		})
	}))
	if names == nil {
		return
	}
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeFromCluster(cmd, toComplete, names)
	}
}

// completeFromCluster lists with the command's --kubeconfig and
// --namespace, keeping the words that start with toComplete.
func completeFromCluster(cmd *cobra.Command, toComplete string, list func(ctx context.Context, c client.Client, ns string) []string) ([]string, cobra.ShellCompDirective) {
	kubeconfig, _ := cmd.Flags().GetString("kubeconfig")
	namespace, _ := cmd.Flags().GetString("namespace")
	c, ns, err := clusterClient(kubeconfig, namespace)
	if err != nil {
		cobra.CompDebugln("flinkscale: "+err.Error(), false)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	var out []string
	for _, w := range list(ctx, c, ns) {
		if strings.HasPrefix(w, toComplete) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), cobra.ShellCompDirectiveNoFileComp
}

// policyNames lists the FlinkScalingPolicies of ns.
func policyNames(ctx context.Context, c client.Client, ns string) []string {
	var list v1alpha1.FlinkScalingPolicyList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		cobra.CompDebugln("flinkscale: listing FlinkScalingPolicies: "+err.Error(), false)
		return nil
	}
	out := make([]string, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

// policyAndDeploymentNames lists what `recommend NAME` takes: the
// FlinkScalingPolicies and the FlinkDeployments of ns.
func policyAndDeploymentNames(ctx context.Context, c client.Client, ns string) []string {
	out := policyNames(ctx, c, ns)
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(target.GVK.GroupVersion().WithKind(target.GVK.Kind + "List"))
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		cobra.CompDebugln("flinkscale: listing FlinkDeployments: "+err.Error(), false)
		return out
	}
	for _, d := range list.Items {
		out = append(out, d.Name)
	}
	return out
}
