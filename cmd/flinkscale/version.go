package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// version is set at build time with -ldflags "-X main.version=…" (make
// image: git describe). Unset, the module version from the build info
// stands in: v0.2.0 for `go install …@v0.2.0`, a pseudo-version for a
// build in a git checkout.
var version = "dev"

// versionInfo is what `flinkscale version` prints.
type versionInfo struct {
	Version    string `json:"version"`
	Module     string `json:"module"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commitTime,omitempty"`
	// Modified: built from a working tree with uncommitted changes.
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// Build: "full" (every command) or "controller" (the image's).
	Build string `json:"build"`
}

// readVersion reads the version stamped at build time and the build info
// Go records in every binary.
func readVersion() versionInfo {
	v := versionInfo{
		Version:   version,
		Module:    "github.com/flinkscale/flinkscale",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Build:     buildFlavour,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json|yaml]",
		Short: "Print the version, the commit and the Go release of this binary",
		Long: `Print the version of this binary (stamped by make image, or the module's
version), the commit it was built from, the Go release and the platform, and
which build it is: "full" has every command, "controller" (the image's)
only those a pod needs.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return writeVersion(a.stdout, readVersion(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text, json or yaml")
	fixedValues(cmd, "output", "text", "json", "yaml")
	return cmd
}

func writeVersion(w io.Writer, v versionInfo, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "text":
		fmt.Fprintf(w, "flinkscale %s\n", v.Version)
		if v.Commit != "" {
			dirty := ""
			if v.Modified {
				dirty = ", modified"
			}
			fmt.Fprintf(w, "  commit:   %s (%s%s)\n", v.Commit, v.CommitTime, dirty)
		}
		fmt.Fprintf(w, "  go:       %s %s\n", v.GoVersion, v.Platform)
		fmt.Fprintf(w, "  build:    %s\n", v.Build)
		return nil
	default:
		return fmt.Errorf("version: -o must be text, json or yaml, got %q", output)
	}
}
