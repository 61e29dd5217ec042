package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flinkscale/flinkscale/controllers/report"
)

// renderCmd renders a saved recommendation report (`recommend -o json`, or
// the report.json key of a DryRun policy's ConfigMap) in another format,
// typically the HTML page with charts:
//
//	kubectl get configmap orders-recommendation -o jsonpath='{.data.report\.json}' |
//	  flinkscale render -o html - > orders.html
//
// Exit codes as recommend's: 0 the report recommends no change, 3 it
// recommends a rescale, 1 an error.
func newRenderCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "render [-o html|table|json|yaml|markdown] FILE|-",
		Short: "Render a saved recommendation report in another format, by default HTML with charts",
		Long: `Render a saved report (recommend -o json, or report.json of a DryRun
policy's ConfigMap) in another format: by default the self-contained HTML
page with charts.

Exit code 0: the report recommends no change; 3: a rescale; 1: error.`,
		Example: examplesFor(`  kubectl get configmap orders-recommendation -o jsonpath='{.data.report\.json}' |
    flinkscale render -o html - > orders.html`),
		GroupID: groupInspect,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setCode(renderCmd(output, args, cmd.InOrStdin(), a.stdout))
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "html", "output: "+strings.Join(report.Formats, ", "))
	fixedValues(cmd, "output", report.Formats...)
	return cmd
}

// renderCmd renders the report file (or - for stdin) in the output format.
func renderCmd(output string, files []string, stdin io.Reader, stdout io.Writer) (int, error) {
	if len(files) != 1 {
		return exitError, errors.New("render: give one report JSON file (or - for standard input)")
	}
	if !slices.Contains(report.Formats, output) {
		return exitError, fmt.Errorf("render: -o must be one of %s, got %q", strings.Join(report.Formats, ", "), output)
	}
	var r report.Report
	var err error
	if files[0] == "-" {
		r, err = report.Read(stdin)
	} else {
		r, err = readFile(files[0], report.Read)
	}
	if err != nil {
		return exitError, fmt.Errorf("render: %w", err)
	}
	if err := r.Write(stdout, output); err != nil {
		return exitError, fmt.Errorf("render: %w", err)
	}
	if r.Change {
		return exitScale, nil
	}
	return exitNoChange, nil
}
