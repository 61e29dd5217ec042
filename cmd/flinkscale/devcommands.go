//go:build !controller

package main

// The full build's commands beyond the controller image's: the simulator,
// the demo, the benchmarks and the testbed. They link test/ packages
// (test/sim, test/demo, test/bench, test/scale, test/testbed, …), which
// the controller image (-tags controller) must not carry.
func init() {
	extraCommands = append(extraCommands,
		newDemoCommand, newSimCommand, newBenchCommand, newBenchScaleCommand, newBenchScaleFleetCommand,
		newTestbedCommand, newFidelityCommand,
	)
}
