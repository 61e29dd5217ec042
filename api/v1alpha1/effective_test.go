package v1alpha1

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEffectiveModeAndPollingInterval(t *testing.T) {
	for _, c := range []struct {
		name     string
		mode     Mode
		paused   string
		want     Mode
		interval *metav1.Duration
		every    time.Duration
	}{
		{"unset: DryRun, 30s", "", "", ModeDryRun, nil, DefaultPollingInterval},
		{"Apply, 15s", ModeApply, "", ModeApply, &metav1.Duration{Duration: 15 * time.Second}, 15 * time.Second},
		{"the annotation pauses Apply", ModeApply, "true", ModePaused, nil, DefaultPollingInterval},
		{"only \"true\" pauses", ModeApply, "yes", ModeApply, nil, DefaultPollingInterval},
		{"under a second: the default", ModeDryRun, "", ModeDryRun, &metav1.Duration{Duration: 500 * time.Millisecond}, DefaultPollingInterval},
	} {
		p := &FlinkScalingPolicy{Spec: FlinkScalingPolicySpec{Mode: c.mode, PollingInterval: c.interval}}
		if c.paused != "" {
			p.Annotations = map[string]string{AnnotationPaused: c.paused}
		}
		assert.Equal(t, c.want, p.EffectiveMode(), c.name)
		assert.Equal(t, c.every, p.Spec.EffectivePollingInterval(), c.name)
	}
}
