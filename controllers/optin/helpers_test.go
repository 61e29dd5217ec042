package optin

import (
	"encoding/json"
	"math"
	"reflect"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
)

func near(p *float64, want float64) bool {
	return p != nil && math.Abs(*p-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func equal(a, b v1alpha1.FlinkScalingPolicySpec) bool { return reflect.DeepEqual(a, b) }

func show(s v1alpha1.FlinkScalingPolicySpec) string {
	b, _ := json.Marshal(s)
	return string(b)
}
