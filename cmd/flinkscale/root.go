package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on.
const (
	exitNoChange = 0 // the model holds
	exitError    = 1 // bad input or usage
	exitScale    = 3 // the model recommends a rescale
)

// progName is how the help names the command: "kubectl flinkscale" when
// the binary runs as the kubectl plugin kubectl-flinkscale.
var progName = "flinkscale"

// Command groups of the help, in this order.
const (
	groupOperate = "operate"
	groupInspect = "inspect"
	groupDevelop = "develop"
)

// app is what a command run shares: its streams, and the exit code a
// command sets when it succeeds with something to report (exitScale).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	code           int
}

// setCode records a command's exit code and passes its error on.
func (a *app) setCode(code int, err error) error {
	a.code = code
	return err
}

// extraCommands add the commands of the full build (the simulator, the
// demo, the benchmarks and the testbed; devcommands.go). The controller
// image's build (-tags controller) has none.
var extraCommands []func(*app) *cobra.Command

// buildFlavour names the build in `version`: "full" or "controller".
var buildFlavour = "full"

const rootLong = `flinkscale autoscales Apache Flink jobs on Kubernetes.

Installed on the PATH as kubectl-flinkscale, the binary is a kubectl plugin
("kubectl flinkscale status"); kubectl_complete-flinkscale next to it
completes its arguments through kubectl.`

// examplesFor names the program in examples as it runs (progName).
func examplesFor(text string) string {
	return strings.ReplaceAll("\n"+text, "\n  flinkscale ", "\n  "+progName+" ")[1:]
}

// newRootCommand builds the command tree.
func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:     "flinkscale",
		Short:   "flinkscale autoscales Apache Flink jobs on Kubernetes",
		Long:    rootLong,
		Version: readVersion().Version,
		// Errors are printed once, by run, with the exit code it picks;
		// a failing command does not repeat its usage.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	if progName != "flinkscale" {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: progName}
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	// --version as kubectl's and helm's: no -v, which kubectl uses for
	// log verbosity.
	root.Flags().Bool("version", false, "print the version (the version command prints more)")
	root.SetVersionTemplate("{{.DisplayName}} {{.Version}}\n")
	root.AddGroup(
		&cobra.Group{ID: groupOperate, Title: "Run and inspect in a cluster:"},
		&cobra.Group{ID: groupInspect, Title: "Recommendations from snapshots and reports:"},
	)
	if len(extraCommands) > 0 {
		root.AddGroup(&cobra.Group{ID: groupDevelop, Title: "Simulate, benchmark and test (not in the controller image):"})
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w\nRun '%s --help' for usage.", cmd.Name(), err, cmd.CommandPath())
	})
	root.AddCommand(
		newControllerCommand(a),
		newStatusCommand(a),
		newRecommendCommand(a),
		newRenderCommand(a),
		newDecideCommand(a),
		newVersionCommand(a),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(a))
	}
	return root
}

// run executes the command line args and returns the process's exit code:
// 0, or 3 when a recommendation is a rescale, or 1 on an error (printed on
// stderr). Interrupt and SIGTERM cancel the command's context: the
// controller shuts down gracefully and releases its Lease.
func run(args []string, stdout, stderr io.Writer) int {
	return runIO(args, os.Stdin, stdout, stderr)
}

// runIO is run with standard input.
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(a)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "flinkscale:", err)
		return exitError
	}
	return a.code
}
