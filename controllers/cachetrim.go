package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimManagedFields is the informer cache's transform
// (cache.Options.DefaultTransform) for flinkscale controller: every cached
// object keeps only the managedFields entries that flinkscale reads,
// its own server-side apply entries (target.OwnedFields: which fields of a
// FlinkDeployment it owns). The others, the operator's status updates,
// kubectl's and every other writer's, are what a FlinkDeployment's cache
// entry is mostly made of once decoded as an unstructured object (each
// field set a map of maps), and nothing reads them.
//
// A trimmed object must not be written back whole with Update: the API
// server would take its managedFields as the new list. flinkscale writes
// FlinkDeployments only by apply and merge patches; the objects it
// updates (policies, Leases) keep no entry, and an Update without
// managedFields leaves the server's as they are.
func TrimManagedFields(obj any) (any, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil // a tombstone (cache.DeletedFinalStateUnknown)
	}
	mf := o.GetManagedFields()
	if len(mf) == 0 {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	for _, e := range mf {
		if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply {
			kept = append(kept, e)
		}
	}
	if len(kept) < len(mf) {
		o.SetManagedFields(kept)
	}
	return obj, nil
}
