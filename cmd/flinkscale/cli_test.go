package main

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kubectl's flag conventions: shorthands glued to their value (-ojson,
// -nNS), --flag=value, flags after the arguments.
func TestKubectlStyleFlags(t *testing.T) {
	snap := example(t, "orders-surge.json")
	for _, args := range [][]string{
		{"recommend", "--snapshot", snap, "-ojson", "-nstreaming"},
		{"recommend", "--snapshot=" + snap, "-o=json", "--namespace=streaming"},
		{"recommend", "-o", "json", "--snapshot", snap, "-n", "streaming"},
		{"recommend", "--output", "json", "--snapshot", snap, "--namespace", "streaming"},
	} {
		code, out, errOut := runCLI(args...)
		require.Equal(t, exitScale, code, "%v: %s", args, errOut)
		var r struct {
			Patch struct {
				YAML string `json:"yaml"`
			} `json:"patch"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &r), "%v: JSON", args)
		assert.Contains(t, r.Patch.YAML, "namespace: streaming", args)
	}
	code, out, _ := runCLI("decide", "--snapshot", snap, "-ojson")
	require.Equal(t, exitScale, code)
	assert.True(t, json.Valid([]byte(out)))

	// A bad flag names the command and how to get its help.
	code, out, errOut := runCLI("status", "--watch")
	assert.Equal(t, exitError, code)
	assert.Empty(t, out)
	assert.Equal(t, "flinkscale: status: unknown flag: --watch\nRun 'flinkscale status --help' for usage.\n", errOut)
	code, _, errOut = runCLI("decide", "--snapshot")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "flag needs an argument: --snapshot")
	// An unknown command suggests the close one.
	code, _, errOut = runCLI("stauts")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, `unknown command "stauts" for "flinkscale"`)
	assert.Contains(t, errOut, "Did you mean this?\n\tstatus")
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCLI("version")
	require.Equal(t, exitNoChange, code, errOut)
	v := readVersion()
	assert.True(t, strings.HasPrefix(out, "flinkscale "+v.Version+"\n"), out)
	assert.Contains(t, out, "  go:       "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n")
	assert.Contains(t, out, "  build:    full\n")

	code, out, _ = runCLI("version", "-ojson")
	require.Equal(t, exitNoChange, code)
	var got versionInfo
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, v, got)
	assert.Equal(t, "github.com/flinkscale/flinkscale", got.Module)
	assert.Equal(t, runtime.Version(), got.GoVersion)

	code, out, _ = runCLI("version", "-o", "yaml")
	require.Equal(t, exitNoChange, code)
	assert.Contains(t, out, "goVersion: "+runtime.Version())

	code, out, _ = runCLI("--version")
	require.Equal(t, exitNoChange, code)
	assert.Equal(t, "flinkscale "+v.Version+"\n", out)

	code, _, errOut = runCLI("version", "-o", "xml")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, `version: -o must be text, json or yaml, got "xml"`)
}

// The ldflags version wins over the module's; the module's stands in for
// an unstamped binary; "(devel)" is no version.
func TestReadVersionPrefersTheStamp(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9"
	assert.Equal(t, "v9.9.9", readVersion().Version)
	version = "dev"
	assert.NotEqual(t, "(devel)", readVersion().Version)
	assert.NotEmpty(t, readVersion().Version)
}

// complete asks the command line what to complete, as a shell's script
// does, and returns the suggestions and the directive.
func complete(t *testing.T, words ...string) ([]string, cobra.ShellCompDirective) {
	t.Helper()
	code, out, errOut := runCLI(append([]string{cobra.ShellCompRequestCmd}, words...)...)
	require.Equal(t, exitNoChange, code, errOut)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, ":"), "directive line: %q", out)
	d, err := strconv.Atoi(last[1:])
	require.NoError(t, err)
	var names []string
	for _, l := range lines[:len(lines)-1] {
		names = append(names, strings.SplitN(l, "\t", 2)[0])
	}
	return names, cobra.ShellCompDirective(d)
}

func TestCompletion(t *testing.T) {
	for _, shell := range []struct{ name, marker string }{
		{"bash", "__start_flinkscale"},
		{"zsh", "#compdef flinkscale"},
		{"fish", "complete -c flinkscale"},
		{"powershell", "Register-ArgumentCompleter"},
	} {
		code, out, errOut := runCLI("completion", shell.name)
		require.Equal(t, exitNoChange, code, errOut)
		assert.Contains(t, out, shell.marker, shell.name)
	}

	names, _ := complete(t, "st")
	assert.Equal(t, []string{"status"}, names)
	names, _ = complete(t, "")
	for _, want := range []string{"controller", "recommend", "status", "render", "decide", "version", "completion", "sim", "bench"} {
		assert.Contains(t, names, want)
	}
	names, d := complete(t, "status", "-o", "")
	assert.Equal(t, []string{"table", "wide", "json", "yaml"}, names)
	assert.Equal(t, cobra.ShellCompDirectiveNoFileComp, d)
	// The shell filters fixed values by what is typed.
	names, _ = complete(t, "recommend", "--output", "m")
	assert.Equal(t, []string{"table", "json", "yaml", "markdown", "html"}, names)
	names, d = complete(t, "decide", "--snapshot", "")
	assert.Equal(t, []string{"json"}, names)
	assert.Equal(t, cobra.ShellCompDirectiveFilterFileExt, d)
	names, d = complete(t, "bench", "--scenario", "")
	assert.Equal(t, []string{"yaml"}, names)
	assert.Equal(t, cobra.ShellCompDirectiveFilterFileExt, d)
	names, d = complete(t, "render", "")
	assert.Equal(t, []string{"json"}, names)
	assert.Equal(t, cobra.ShellCompDirectiveFilterFileExt, d)
	names, _ = complete(t, "status", "--")
	assert.Contains(t, names, "--namespace")
	assert.Contains(t, names, "--all-namespaces")
	// No cluster: no names, no files, and no wait.
	names, d = complete(t, "status", "--kubeconfig", "/nonexistent/kubeconfig", "")
	assert.Empty(t, names)
	assert.Equal(t, cobra.ShellCompDirectiveNoFileComp, d)
}
