// Package v1alpha1 holds the flinkscale.io/v1alpha1 API: FlinkScalingPolicy,
// the custom resource that tells flinkscale how to autoscale one Flink job.
//
// The spec's model knobs use the JSON field names and meanings of
// scaling.Policy, so a policy file (flinkscale decide --policy) and the custom
// resource read the same; FlinkScalingPolicySpec.ScalingPolicy converts one
// into the other. The status keeps a bounded scaling.History (ToHistory,
// FromHistory) so that what the model learned survives controller restarts.
//
// Fractions (utilization, step factors, minChange, maxCores) are float64. The
// Kubernetes API conventions discourage floats, so controller-gen needs
// crd:allowDangerousTypes=true (see `make generate`); they are kept because
// the quantities are naturally fractional, scaling.Policy uses fractions, and
// Flink operator users already write `0.7` for a utilization target.
//
// +kubebuilder:object:generate=true
// +groupName=flinkscale.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "flinkscale.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
