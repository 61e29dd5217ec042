// Package testbed runs a real Apache Flink session cluster and a real Kafka
// broker on this machine, as plain JVM processes on 127.0.0.1, for the
// tests that need the real thing and for the CLI. No Flink distribution,
// no container, no start script: Maven resolves the jars of
// test/testbed/java/pom.xml into ~/.m2 and the testbed starts `java` on
// them.
//
// # Processes
//
// StartKafka formats a KRaft log directory and starts one JVM that is both
// broker and controller. StartFlink starts a JobManager
// (StandaloneSessionClusterEntrypoint) and its TaskManagers
// (TaskManagerRunner), each its own JVM, as a Kubernetes deployment of the
// Flink operator has one pod per process. That is the point of the exercise:
// each process has its own Prometheus reporter endpoint (per-process port,
// see Cluster.ReporterTargets), its own memory, its own heartbeats and its
// own exit; a TaskManager added or removed (Cluster.AddTaskManager,
// Cluster.RemoveTaskManager) is a process starting or deregistering, as a
// pod would. A MiniCluster in one JVM would have none of that.
//
// The memory of each Flink process is split by Flink itself: BashJavaUtils,
// the helper class Flink's start scripts call, turns the configured process
// size into JVM options (-Xmx, -Xms, -XX:MaxDirectMemorySize, metaspace) and
// dynamic properties (-D key=value program arguments), so the JVMs get
// exactly what flink/bin/jobmanager.sh and taskmanager.sh would give them,
// in both Flink lines, without reimplementing Flink's memory model here.
// The JVMs also get the --add-opens/--add-exports options the scripts pass on
// Java 17, and a log4j2 configuration that writes one log per process.
//
// # Directories
//
// Classpaths are cached in bin/testbed/<profile>.classpath and the workload
// jar is built into bin/testbed/target-<version>/ (Resolve, BuildWorkload;
// both hold a file lock, so concurrent test binaries run Maven once). Each
// cluster and broker lives in its own work directory: configuration,
// data, checkpoints, savepoints and logs (log/<process>.log for log4j,
// log/<process>.out for stdout and stderr).
//
// # Supervision
//
// Every JVM is the leader of its own process group. Stop sends SIGTERM to
// the group (Flink and Kafka shut down cleanly in about a second), waits up
// to StopGrace, then sends SIGKILL to the group. On Linux the kernel also
// kills every JVM when the Go program dies without stopping them
// (Pdeathsig), so a crashed test binary leaves nothing behind. Starting
// waits, bounded, for the JobManager to count its TaskManagers (GET
// /overview) or for the broker to answer a metadata request, and fails as
// soon as a process exits, with the last lines of its output and log.
//
// # Output and audit
//
// With Options.Sink, every terminal vertex of the workload ends in Flink's
// Kafka sink (exactly-once: transactional; or at-least-once), chained into
// it, writing each record's 8-byte id, the producer's, to an output topic.
// Audit and Testbed.AwaitAudit read that topic back (read_committed or
// read_uncommitted) and compare it id by id with what the producer got
// acknowledged (Producer.IDs): duplicates, missing and unexpected ids, the
// proof that a rescale lost or repeated nothing.
//
// Tests that start real processes call RequireReal first: they run only
// with FLINKSCALE_REAL=1 (make test runs them in a step of their own, not
// competing with the rest of the tests for the cores) and not with -short;
// without java or mvn they skip, unless CI=true, where they fail
// (SkipUnlessAvailable).
package testbed
