// Package e2e holds flinkscale's end-to-end tests against real third-party
// servers. prometheus_test.go runs a real Prometheus that scrapes a
// controller-runtime manager running the flinkscale controllers against
// envtest and a simulated Flink job, loads charts/flinkscale/rules, and
// proves that every expression of the Grafana dashboards
// (charts/flinkscale/dashboards) and every alert returns data once a rescale
// has happened (docs/observability.md).
//
// The package has no non-test code.
package e2e
