// Package scaling is flinkscale's parallelism model: a pure function from what
// was observed of a Flink job (a Snapshot), what the user asked for (a Policy)
// and what past rescales taught (a History) to a Decision.
//
// The package does no I/O, reads no clock and keeps no global state: the
// caller passes "now". Everything it needs to explain itself is in the
// Decision: per-vertex current, required and recommended parallelism, the
// expected utilization after the change, the resource plan, and the reasons
// as machine-readable codes plus one sentence with the numbers.
//
// The model, in the order Decide applies it:
//
//  1. validate the snapshot and the policy; hold on anything missing,
//     non-finite, too old or measured during warm-up;
//  2. true processing rate per vertex (DS2): records in per second divided by
//     the busiest subtask's busy fraction;
//  3. target rate per vertex: the Kafka arrival rate at the sources,
//     propagated downstream through each edge's observed output/input ratio;
//  4. backlog: the current lag plus what arrives during the predicted restart,
//     drained within the catch-up duration;
//  5. act only when some vertex is outside the utilization band, then size
//     every vertex for the target utilization, against a Universal
//     Scalability Law curve fitted to history when there is enough of it;
//  6. align sources to partitions and keyed vertices to key groups, predicting
//     the busiest subtask with Flink's own assignment rules;
//  7. stabilize (scale up at once, scale down on the highest recommendation
//     of a window), bound each step, respect quotas, and turn the result into
//     slots per TaskManager, TaskManagers and cores.
//
// docs/model.md gives the formulas; docs/snapshot.md the JSON formats, which
// are a public interface.
package scaling
