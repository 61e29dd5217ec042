package scale_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/flinkscale/flinkscale/test/scale"
)

// fleetEnv makes the test binary serve a fleet (scale.ServeFleet) instead
// of running tests: the tests' scale.Config.FleetCommand.
const fleetEnv = "FLINKSCALE_SCALE_FLEET_CHILD"

// fleetCommand starts this test binary as a fleet process.
func fleetCommand() []string { return []string{"env", fleetEnv + "=1", os.Args[0]} }

func TestMain(m *testing.M) {
	if os.Getenv(fleetEnv) == "1" {
		fs := flag.NewFlagSet("fleet", flag.ExitOnError)
		jobs := fs.Int("jobs", 1, "")
		faulty := fs.Float64("faulty", 0, "")
		_ = fs.Parse(os.Args[1:])
		if err := scale.ServeFleet(context.Background(), *jobs, *faulty, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
