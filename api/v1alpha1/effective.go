package v1alpha1

import "time"

// DefaultPollingInterval is spec.pollingInterval when unset (the CRD's
// default; objects written before defaulting may lack it).
const DefaultPollingInterval = 30 * time.Second

// EffectiveMode is the mode the controller acts in: Paused while the
// flinkscale.io/paused annotation is "true", else spec.mode (DryRun when
// unset).
func (p *FlinkScalingPolicy) EffectiveMode() Mode {
	if p.Annotations[AnnotationPaused] == "true" {
		return ModePaused
	}
	if p.Spec.Mode == "" {
		return ModeDryRun
	}
	return p.Spec.Mode
}

// EffectivePollingInterval is spec.pollingInterval, or
// DefaultPollingInterval when unset or under a second.
func (s *FlinkScalingPolicySpec) EffectivePollingInterval() time.Duration {
	if s.PollingInterval != nil && s.PollingInterval.Duration >= time.Second {
		return s.PollingInterval.Duration
	}
	return DefaultPollingInterval
}
