// Package kafka collects a consumer group's offsets from the Kafka brokers
// into metrics.KafkaSample: for every partition of the group's topics, the
// log end offset (high watermark), the log start offset and the group's
// committed offset, plus the group's state. A Collector polls with a
// bounded number of requests whatever the partition count: one Metadata
// (never served from franz-go's cache, so deletions and new partitions show
// at once), two ListOffsets (end, start) per partition-leader broker, one
// OffsetFetch and one DescribeGroups to the group coordinator — 5 requests
// against one broker, 9 against three — plus, on the first Collect only,
// connection set-up and the coordinator look-up. The pure helpers in lag.go
// turn samples into
// lag and arrival rates.
//
// # Connection Secret
//
// ConfigFromSecret reads the connection settings from the data of a
// Kubernetes Secret (the bootstrap servers come from the resource that
// names the Secret). All keys are optional; an empty or absent Secret means
// plaintext without authentication. Values are used as given, except that
// surrounding white space is trimmed from every key but the PEM ones.
//
//	sasl.mechanism            PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (case-
//	                          insensitive). Required when sasl.username is set.
//	sasl.username             SASL user. Required with sasl.mechanism.
//	sasl.password             SASL password. Required with sasl.mechanism
//	                          (may not be empty).
//	tls.enabled               "true" or "false": speak TLS to the brokers.
//	                          TLS is also on whenever any other tls.* key or
//	                          ca.crt is present; "false" with such keys is an
//	                          error.
//	tls.ca.crt (or ca.crt)    PEM CA certificate(s) to trust instead of the
//	                          system roots. Both keys present is an error
//	                          unless they are equal.
//	tls.crt                   PEM client certificate (mutual TLS); requires
//	                          tls.key.
//	tls.key                   PEM private key of tls.crt; requires tls.crt.
//	tls.server-name           Name to verify the brokers' certificates
//	                          against (default: the host of each address).
//	tls.insecure-skip-verify  "true" to skip verifying the brokers'
//	                          certificates (testing only).
//	request.timeout           Go duration bounding one Collect (default
//	                          10s), e.g. "5s".
//
// Other keys are ignored, so a Secret may be shared with other consumers
// (for example Flink's own properties). Errors name the offending key and
// never include a value.
//
// # What a sample reports
//
// Committed is -1 for a partition the group has no commit for (never
// committed, or expired); it is reported, never turned into zero lag. A
// topic that does not exist (deleted, or never created) and a partition
// whose offsets could not be listed go into KafkaSample.Missing as
// "<topic>: <KAFKA_ERROR_NAME>" or "<topic>-<partition>: <KAFKA_ERROR_NAME>"
// (e.g. "orders: UNKNOWN_TOPIC_OR_PARTITION"), and their partitions are not
// in Partitions. When Collect is given no topics it uses those the group
// has commits for; brokers drop a deleted topic's commits with it, so only
// a caller that names its topics learns that one was deleted. GroupState is the coordinator's state for the group (Empty,
// Stable, PreparingRebalance, CompletingRebalance, Dead; a group the
// coordinator does not know is Dead); during a
// rebalance the committed offsets are still the last ones committed, so a
// consumer should treat the lag of a sample whose state is
// PreparingRebalance or CompletingRebalance as possibly stale.
package kafka
