package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commandFlags lists the flags each command defines (help aside), read from
// the command tree itself: command path → flags.
func commandFlags(t *testing.T) map[string][]*pflag.Flag {
	t.Helper()
	root := newRootCommand(&app{stdout: io.Discard, stderr: io.Discard})
	out := map[string][]*pflag.Flag{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "completion" || c.Name() == "help" {
			return
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "version" {
				out[c.CommandPath()] = append(out[c.CommandPath()], f)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// docs/cli.md documents every flag of every command: each appears there
// as `--name`, and a flag with a shorthand as `-x` too, in a table or an
// example.
func TestEveryFlagIsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/cli.md")
	require.NoError(t, err)
	doc := string(b)
	flags := commandFlags(t)
	total := 0
	for cmd, fs := range flags {
		for _, f := range fs {
			total++
			assert.Contains(t, doc, "`--"+f.Name, "%s defines --%s", cmd, f.Name)
			if f.Shorthand != "" {
				assert.Contains(t, doc, "`-"+f.Shorthand, "%s defines -%s", cmd, f.Shorthand)
			}
		}
	}
	assert.Greater(t, total, 70)
	for _, cmd := range []string{"recommend", "status", "controller", "render", "decide", "version", "bench", "bench-scale", "sim", "demo", "testbed", "fidelity"} {
		assert.NotEmpty(t, flags["flinkscale "+cmd], cmd)
	}
}

// Every command prints its help the same way with -h and --help, exits 0,
// and every flag of the same name means the same thing: one style.
func TestEveryCommandHasHelp(t *testing.T) {
	shorthands := map[string]string{}
	for cmd, fs := range commandFlags(t) {
		name := strings.TrimPrefix(cmd, "flinkscale")
		args := strings.Fields(name)
		for _, h := range []string{"-h", "--help"} {
			code, out, errOut := runCLI(append(args, h)...)
			assert.Equal(t, exitNoChange, code, "%s %s: %s", cmd, h, errOut)
			assert.Empty(t, errOut, "%s %s", cmd, h)
			assert.Contains(t, out, "Usage:\n  "+cmd, "%s %s", cmd, h)
			assert.Contains(t, out, "\nFlags:\n", "%s %s", cmd, h)
			assert.Contains(t, out, "  -h, --help ", "%s %s", cmd, h)
		}
		for _, f := range fs {
			if prev, ok := shorthands[f.Name]; ok {
				assert.Equal(t, prev, f.Shorthand, "--%s has two shorthands", f.Name)
			}
			shorthands[f.Name] = f.Shorthand
		}
	}
	// kubectl's conventions for the flags it shares.
	assert.Equal(t, "o", shorthands["output"])
	assert.Equal(t, "n", shorthands["namespace"])
	assert.Equal(t, "A", shorthands["all-namespaces"])
}
