// Package tooling tests the scripts under hack/ that make and CI run.
package tooling

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The coordinator's race as Go 1.26 prints it (go.dev/issue/75804).
const raceOutput = `fuzz: elapsed: 5s, execs: 64401 (11090/sec), new interesting: 5 (total: 264)
--- FAIL: FuzzFloat (5.47s)
    context deadline exceeded
FAIL
exit status 1
FAIL	example.com/m/scaling	5.482s
`

// fakeGo writes a `go` that answers each call with the next of the given
// behaviours ("pass", "race", "crash", "fatal") and counts its calls in
// <dir>/calls.
func fakeGo(t *testing.T, pkgDir string, behaviours ...string) (goBin, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "race.txt"), []byte(raceOutput), 0o600))
	script := `#!/usr/bin/env bash
n=$(( $(cat "` + calls + `" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "` + calls + `"
behaviours=(` + strings.Join(behaviours, " ") + `)
case "${behaviours[$((n - 1))]}" in
pass) echo "PASS"; exit 0 ;;
race) cat "` + filepath.Join(dir, "race.txt") + `"; exit 1 ;;
crash)
  mkdir -p "` + pkgDir + `/testdata/fuzz/FuzzX"
  echo "go test fuzz v1" > "` + pkgDir + `/testdata/fuzz/FuzzX/0123abcd"
  printf -- '--- FAIL: FuzzX (0.10s)\n    --- FAIL: FuzzX (0.00s)\n        x_test.go:9: boom\n\n    Failing input written to testdata/fuzz/FuzzX/0123abcd\nFAIL\n'
  exit 1 ;;
fatal) printf -- '--- FAIL: FuzzX (5.01s)\n    x_test.go:12: context deadline exceeded\nFAIL\n'; exit 1 ;;
esac
`
	goBin = filepath.Join(dir, "go")
	require.NoError(t, os.WriteFile(goBin, []byte(script), 0o700))
	return goBin, calls
}

func TestFuzzScriptTellsTheCoordinatorRaceFromAFailure(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	script, err := filepath.Abs("../../hack/fuzz.sh")
	require.NoError(t, err)

	tests := []struct {
		name       string
		behaviours []string
		wantOK     bool
		wantCalls  string // each target runs once, and once more after a race
		wantOut    string
	}{
		{"a clean run passes", []string{"pass"}, true, "1", "1 fuzz targets passed"},
		{"a race then a clean run passes", []string{"race", "pass"}, true, "2", "0 flaked"},
		{"two races are a flake, not a failure", []string{"race", "race"}, true, "2", "1 flaked"},
		{"a written failing input fails", []string{"crash"}, false, "1", "FUZZ FAILURE: package"},
		{"a race then a written failing input fails", []string{"race", "crash"}, false, "2", "FUZZ FAILURE"},
		{"the target's own deadline error fails", []string{"fatal"}, false, "1", "FUZZ FAILURE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkgDir := t.TempDir()
			goBin, calls := fakeGo(t, pkgDir, tc.behaviours...)
			cmd := exec.Command("bash", script, "5s", "-fuzzminimizetime=5s")
			cmd.Env = append(os.Environ(), "GO="+goBin)
			cmd.Stdin = strings.NewReader(pkgDir + " FuzzX\n")
			out, err := cmd.CombinedOutput()
			if tc.wantOK {
				require.NoError(t, err, "%s", out)
			} else {
				require.Error(t, err, "%s", out)
			}
			require.Contains(t, string(out), tc.wantOut)
			n, err := os.ReadFile(calls)
			require.NoError(t, err)
			require.Equal(t, tc.wantCalls, strings.TrimSpace(string(n)))
		})
	}
}

func TestFuzzScriptRefusesNoTargets(t *testing.T) {
	script, err := filepath.Abs("../../hack/fuzz.sh")
	require.NoError(t, err)
	cmd := exec.Command("bash", script, "5s")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "no fuzz targets found")
}
