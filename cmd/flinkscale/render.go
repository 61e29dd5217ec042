package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

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
func renderCmd(args []string, stdin io.Reader, stdout io.Writer) (int, error) {
	fl := flag.NewFlagSet("render", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	output := fl.String("o", "html", "output: "+strings.Join(report.Formats, ", "))
	var files []string
	for rest := args; ; {
		if err := fl.Parse(rest); err != nil {
			return exitError, fmt.Errorf("render: %w", err)
		}
		if fl.NArg() == 0 {
			break
		}
		files = append(files, fl.Arg(0))
		rest = fl.Args()[1:]
	}
	if len(files) != 1 {
		return exitError, errors.New("render: give one report JSON file (or - for standard input)")
	}
	if !slices.Contains(report.Formats, *output) {
		return exitError, fmt.Errorf("render: -o must be one of %s, got %q", strings.Join(report.Formats, ", "), *output)
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
	if err := r.Write(stdout, *output); err != nil {
		return exitError, fmt.Errorf("render: %w", err)
	}
	if r.Change {
		return exitScale, nil
	}
	return exitNoChange, nil
}
