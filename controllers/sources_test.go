package controllers_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
)

// Policies reading the same Kafka cluster share one client (one connection
// pool and metadata cache per cluster, not per job); it is closed when the
// last of them is forgotten.
func TestKafkaClientsAreSharedPerCluster(t *testing.T) {
	ctx := context.Background()
	s := &controllers.ClientSources{}
	pol := func(name string) *v1alpha1.FlinkScalingPolicy {
		p := &v1alpha1.FlinkScalingPolicy{}
		p.Namespace, p.Name = "ns", name
		return p
	}
	trig := func(servers ...string) v1alpha1.KafkaTrigger {
		return v1alpha1.KafkaTrigger{Name: "k", BootstrapServers: servers, ConsumerGroup: "g"}
	}
	a, err := s.Kafka(ctx, pol("a"), trig("127.0.0.1:9092"))
	require.NoError(t, err)
	b, err := s.Kafka(ctx, pol("b"), trig("127.0.0.1:9092"))
	require.NoError(t, err)
	other, err := s.Kafka(ctx, pol("c"), trig("127.0.0.1:9093"))
	require.NoError(t, err)
	assert.Same(t, a, b, "same brokers, same client")
	assert.NotSame(t, a, other)

	s.Forget(types.NamespacedName{Namespace: "ns", Name: "a"})
	b2, err := s.Kafka(ctx, pol("b"), trig("127.0.0.1:9092"))
	require.NoError(t, err)
	assert.Same(t, b, b2, "still used by b")

	s.Forget(types.NamespacedName{Namespace: "ns", Name: "b"})
	a2, err := s.Kafka(ctx, pol("a"), trig("127.0.0.1:9092"))
	require.NoError(t, err)
	assert.NotSame(t, a, a2, "closed with its last user, a new one opened")

	// A trigger that moves to other brokers releases the old client.
	c2, err := s.Kafka(ctx, pol("c"), trig("127.0.0.1:9092"))
	require.NoError(t, err)
	assert.Same(t, a2, c2)
}
