package scale

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/scaling"
)

// A policy's status history grows with every poll until it covers the
// model's longest window (scaling.Policy.HistoryKeep: by default 30
// minutes of scale-down stabilization, the 5-minute metrics window and a
// poll, 71 decisions at 30 s). The benchmark's warm-up is 5 minutes, so
// the histories would hold a seventh of that during the steady period,
// and the informer's cache, every status write and every conversion to
// the model's form would cost what a controller that has run for an hour
// does not. backfillHistory gives every policy the history it would have
// by then.

// Backfill is what the history backfill did.
type Backfill struct {
	// Policies whose history was extended (or held HistoryKeep already).
	Policies int `json:"policies"`
	// Decisions is the most decisions a history holds after it.
	Decisions int     `json:"decisions"`
	Seconds   float64 `json:"seconds"`
}

// backfillHistory extends the status history of every policy back to
// HistoryKeep with decisions one polling interval apart, each equal to the
// oldest it holds (a steady job's: the same required parallelism and
// arrival rates), written in the status form of this build (FromHistory),
// as a controller that had decided all along would have written them.
// A policy whose history has no decision yet (its first sized decision
// needs a full metrics window, which a fleet of thousands reaches a poll
// or two after the warm-up's first decisions) is backfilled at a later
// pass, every 10 s, until all are or wait has passed.
func backfillHistory(ctx context.Context, c client.Client, interval, wait time.Duration) (Backfill, error) {
	start := time.Now()
	var list v1alpha1.FlinkScalingPolicyList
	if err := c.List(ctx, &list); err != nil {
		return Backfill{}, fmt.Errorf("listing policies: %w", err)
	}
	pending := make([]client.ObjectKey, len(list.Items))
	for i := range list.Items {
		pending[i] = client.ObjectKeyFromObject(&list.Items[i])
	}
	var bf Backfill
	for {
		var err error
		if pending, err = backfillPass(ctx, c, pending, interval, &bf); err != nil {
			return bf, err
		}
		bf.Seconds = time.Since(start).Seconds()
		if len(pending) == 0 || time.Since(start) >= wait {
			return bf, nil
		}
		if err := sleep(ctx, 10*time.Second); err != nil {
			return bf, err
		}
	}
}

// backfillPass backfills the pending policies, 16 at a time, adds those
// done to bf and returns those without a decision yet.
func backfillPass(ctx context.Context, c client.Client, pending []client.ObjectKey, interval time.Duration, bf *Backfill) ([]client.ObjectKey, error) {
	var (
		mu       sync.Mutex
		later    []client.ObjectKey
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan client.ObjectKey)
	for range 16 {
		wg.Go(func() {
			for key := range work {
				n, err := backfillOne(ctx, c, key, interval)
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case n == 0:
					later = append(later, key)
				default:
					bf.Policies++
					bf.Decisions = max(bf.Decisions, n)
				}
				mu.Unlock()
			}
		})
	}
	for _, key := range pending {
		work <- key
	}
	close(work)
	wg.Wait()
	return later, firstErr
}

// backfillOne extends one policy's history (see backfillHistory) and
// returns how many decisions it holds then (0: none to extend from).
func backfillOne(ctx context.Context, c client.Client, key client.ObjectKey, interval time.Duration) (int, error) {
	n := 0
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var pol v1alpha1.FlinkScalingPolicy
		if err := c.Get(ctx, key, &pol); err != nil {
			return err
		}
		p, err := pol.Spec.ScalingPolicy()
		if err != nil {
			return fmt.Errorf("policy %s: %w", key, err)
		}
		h := pol.Status.History.ToHistory()
		recs := backfilled(h.Recommendations, p.HistoryKeep(interval), interval)
		if len(recs) == len(h.Recommendations) {
			n = len(recs)
			return nil
		}
		h.Recommendations = recs
		pol.Status.History = v1alpha1.FromHistory(h)
		n = len(recs)
		return c.Status().Update(ctx, &pol)
	})
	if err != nil {
		return 0, fmt.Errorf("backfilling the history of %s: %w", key, err)
	}
	return n, nil
}

// backfilled is recs preceded by copies of its oldest decision, one
// interval apart, back to keep before its newest (recs itself when it
// covers that, or is empty).
func backfilled(recs []scaling.RecommendationRecord, keep, interval time.Duration) []scaling.RecommendationRecord {
	if len(recs) == 0 || interval <= 0 {
		return recs
	}
	oldest, newest := recs[0], recs[len(recs)-1].At
	var before []scaling.RecommendationRecord
	for at := oldest.At.Add(-interval); newest.Sub(at) < keep; at = at.Add(-interval) {
		r := oldest
		r.At = at
		before = append(before, r)
	}
	if len(before) == 0 {
		return recs
	}
	out := make([]scaling.RecommendationRecord, 0, len(before)+len(recs))
	for i := len(before) - 1; i >= 0; i-- {
		out = append(out, before[i])
	}
	return append(out, recs...)
}
