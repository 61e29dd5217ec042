package controllers_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/test/envtest"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, APIVersion: "flink.apache.org/v1beta1",
		Time: &metav1.Time{Time: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)}, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

// The cache keeps flinkscale's apply entries of a FlinkDeployment (what
// target.OwnedFields reads) and nothing else; objects without entries, and
// tombstones, pass unchanged.
func TestTrimManagedFields(t *testing.T) {
	const ours = `{"f:spec":{"f:job":{"f:parallelism":{}}}}`
	fd := envtest.NewFlinkDeployment("ns", "orders")
	fd.SetManagedFields([]metav1.ManagedFieldsEntry{
		entry("kubectl-client-side-apply", metav1.ManagedFieldsOperationUpdate, `{"f:spec":{"f:image":{}}}`),
		entry(controllers.FieldManager, metav1.ManagedFieldsOperationApply, ours),
		entry("flink-kubernetes-operator", metav1.ManagedFieldsOperationUpdate, `{"f:status":{"f:jobStatus":{}}}`),
		entry(controllers.FieldManager, metav1.ManagedFieldsOperationUpdate, `{"f:metadata":{"f:annotations":{}}}`),
	})
	before, err := target.OwnedFields(fd, controllers.FieldManager)
	require.NoError(t, err)

	out, err := controllers.TrimManagedFields(fd)
	require.NoError(t, err)
	require.Same(t, fd, out)
	mf := fd.GetManagedFields()
	require.Len(t, mf, 1)
	assert.Equal(t, controllers.FieldManager, mf[0].Manager)
	assert.Equal(t, metav1.ManagedFieldsOperationApply, mf[0].Operation)
	assert.JSONEq(t, ours, string(mf[0].FieldsV1.Raw))
	after, err := target.OwnedFields(fd, controllers.FieldManager)
	require.NoError(t, err)
	assert.Equal(t, before, after, "what flinkscale owns reads the same")
	assert.Equal(t, map[string]bool{target.FieldParallelism: true}, after)

	// A typed object written only by updates keeps no entry, and the field
	// is gone (an Update without managedFields leaves the server's alone).
	pol := &v1alpha1.FlinkScalingPolicy{ObjectMeta: metav1.ObjectMeta{Name: "orders", ManagedFields: []metav1.ManagedFieldsEntry{
		entry(controllers.FieldManager, metav1.ManagedFieldsOperationUpdate, `{"f:status":{}}`),
		entry("kubectl", metav1.ManagedFieldsOperationUpdate, `{"f:spec":{}}`),
	}}}
	_, err = controllers.TrimManagedFields(pol)
	require.NoError(t, err)
	assert.Nil(t, pol.ManagedFields)

	// Nothing to trim, and not an object.
	bare := envtest.NewFlinkDeployment("ns", "bare")
	_, err = controllers.TrimManagedFields(bare)
	require.NoError(t, err)
	_, found := bare.Object["metadata"].(map[string]any)["managedFields"]
	assert.False(t, found)
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: fd}
	out, err = controllers.TrimManagedFields(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, out)
}
