package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/scaling"
)

// load reads the target of the policy by its kind into c.fd and c.d:
//
//	FlinkDeployment: the deployment (cached client, watched);
//	FlinkSessionJob: the session job and its session cluster (both watched);
//	Deployment: the JobManager Deployment and, when named, the TaskManager
//	  Deployment, through the uncached reader (no informer on every
//	  Deployment of the cluster); what only Flink knows is read in collect.
//
// It reports false, with the Ready and Stalled conditions set, when the
// target cannot be read; a rescale in progress whose target is gone fails.
func (c *cycle) load() bool {
	ref := c.pol.Spec.TargetRef
	kind := ref.EffectiveKind()
	key := types.NamespacedName{Namespace: c.pol.Namespace, Name: ref.Name}
	var err error
	var missing string
	switch kind {
	case v1alpha1.KindFlinkSessionJob:
		missing, err = c.loadSessionJob(key)
	case v1alpha1.KindDeployment:
		missing, err = c.loadCluster(key, ref)
	default:
		u := target.New()
		if err = c.r.Client.Get(c.ctx, key, u); err == nil {
			c.fd = u
			c.d, err = target.Read(u)
			if err != nil {
				err = invalid{err}
			}
		} else if apierrors.IsNotFound(err) {
			missing = fmt.Sprintf("FlinkDeployment %s not found", key)
		}
	}
	if missing != "" {
		c.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound, missing)
		c.setStalled(v1alpha1.ReasonTargetNotFound, missing)
		if c.pol.Status.Rescale != nil && c.fd == nil {
			c.finish(scaling.OutcomeFailed, fmt.Sprintf("the %s was deleted during the rescale", kind), false)
		}
		c.d = nil
		return false
	}
	if err != nil {
		msg := fmt.Sprintf("%s %s: %v", kind, key, err)
		if _, ok := err.(invalid); !ok {
			msg = fmt.Sprintf("reading %s %s: %v", kind, key, err)
		}
		c.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidTarget, msg)
		c.setStalled(v1alpha1.ReasonInvalidTarget, msg)
		c.d = nil
		return false
	}
	return true
}

// invalid marks an error in what the target says (not in reading it).
type invalid struct{ error }

func (c *cycle) loadSessionJob(key types.NamespacedName) (string, error) {
	sj := target.NewOf(target.SessionJobGVK)
	if err := c.r.Client.Get(c.ctx, key, sj); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("FlinkSessionJob %s not found", key), nil
		}
		return "", err
	}
	c.fd = sj
	d, err := target.ReadSessionJob(sj, nil)
	if err != nil {
		return "", invalid{err}
	}
	cluster := target.New()
	ckey := types.NamespacedName{Namespace: key.Namespace, Name: d.Cluster}
	if err := c.r.Client.Get(c.ctx, ckey, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("the session cluster of FlinkSessionJob %s, FlinkDeployment %s, is not found", key, ckey), nil
		}
		return "", fmt.Errorf("session cluster %s: %w", ckey, err)
	}
	d, err = target.ReadSessionJob(sj, cluster)
	if err != nil {
		return "", invalid{err}
	}
	c.d = d
	return "", nil
}

func (c *cycle) loadCluster(key types.NamespacedName, ref v1alpha1.TargetRef) (string, error) {
	var jm appsv1.Deployment
	if err := c.r.reader().Get(c.ctx, key, &jm); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("Deployment %s (the Flink JobManager) not found", key), nil
		}
		return "", err
	}
	jm.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	c.fd = &jm
	var tm *appsv1.Deployment
	if ref.TaskManagerDeployment != "" {
		tm = &appsv1.Deployment{}
		tkey := types.NamespacedName{Namespace: key.Namespace, Name: ref.TaskManagerDeployment}
		if err := c.r.reader().Get(c.ctx, tkey, tm); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Sprintf("the TaskManager Deployment %s is not found", tkey), nil
			}
			return "", fmt.Errorf("TaskManager Deployment %s: %w", tkey, err)
		}
	}
	c.d = target.ReadCluster(&jm, tm, ref)
	return "", nil
}

// reader reads what the controller does not watch (Deployments, Secrets,
// Pods): the uncached APIReader, else the client.
func (r *PolicyReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}
