package chart

// The container image the chart runs is built by `make image` (hack/image,
// internal/ociimage; no container engine). test/image builds it and checks
// its config against the chart; these tests check the chart's side: how it
// names the image (tag or digest), that it runs the image's entrypoint with
// args starting with `controller`, as a non-root user with only /tmp
// writable, and that `make image` builds the image the chart pulls by
// default.

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/internal/ociimage"
	"github.com/flinkscale/flinkscale/test/helmtest"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestImageReference: the container's image is repository:tag, or
// repository@digest when image.digest is set; the version label is the tag
// (else appVersion) either way.
func TestImageReference(t *testing.T) {
	for _, c := range []struct {
		name, values         string
		wantImage, wantLabel string
	}{
		{"defaults", "", "ghcr.io/flinkscale/flinkscale:0.1.0", "0.1.0"},
		{"tag", "image: {repository: registry.example.com/flinkscale, tag: v0.2.0}",
			"registry.example.com/flinkscale:v0.2.0", "v0.2.0"},
		{"digest", "image: {digest: " + testDigest + "}",
			"ghcr.io/flinkscale/flinkscale@" + testDigest, "0.1.0"},
		{"digest and tag", "image: {repository: registry.example.com/flinkscale, tag: v0.2.0, digest: " + testDigest + "}",
			"registry.example.com/flinkscale@" + testDigest, "v0.2.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := deployment(t, parse(t, mustRender(t, "flinkscale-system", c.values)))
			if got := d.Spec.Template.Spec.Containers[0].Image; got != c.wantImage {
				t.Errorf("image %s, want %s", got, c.wantImage)
			}
			for what, labels := range map[string]map[string]string{"deployment": d.Labels, "pod": d.Spec.Template.Labels} {
				if got := labels["app.kubernetes.io/version"]; got != c.wantLabel {
					t.Errorf("%s label app.kubernetes.io/version %q, want %q", what, got, c.wantLabel)
				}
			}
		})
	}
}

// TestImageDigestSchema: image.digest is a sha256 digest or empty.
func TestImageDigestSchema(t *testing.T) {
	for _, digest := range []string{
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", // no algorithm
		"sha256:0123", // too short
		"sha512:" + strings.Repeat("0", 64),
		strings.ToUpper(testDigest),
		testDigest + " ",
	} {
		t.Run(digest, func(t *testing.T) {
			out, err := helmtest.Template(t, "flinkscale-system", "image: {digest: '"+digest+"'}")
			if err == nil {
				t.Fatalf("digest %q rendered:\n%.400s", digest, out)
			}
			if !strings.Contains(err.Error(), "/image/digest") {
				t.Errorf("digest %q: error does not mention /image/digest:\n%v", digest, err)
			}
		})
	}
}

// TestImageMatchesChart: the chart runs the image's entrypoint (it sets no
// command) with args that replace its Cmd and start with `controller`, as
// the image's numeric user (the kubelet checks runAsNonRoot on a numeric
// uid only), with a read-only root and /tmp mounted.
func TestImageMatchesChart(t *testing.T) {
	d := deployment(t, parse(t, mustRender(t, "flinkscale-system", "")))
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Errorf("the chart sets command %q: it would replace the image's entrypoint %q", c.Command, ociimage.Entrypoint)
	}
	if len(c.Args) == 0 || c.Args[0] != ociimage.Cmd[0] {
		t.Errorf("the chart's args %q do not start with %s", c.Args, ociimage.Cmd[0])
	}
	psc, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("the chart sets no pod or container securityContext")
	}
	for _, x := range []struct {
		name string
		got  *int64
		want int64
	}{
		{"podSecurityContext.runAsUser", psc.RunAsUser, ociimage.UID},
		{"securityContext.runAsUser", sc.RunAsUser, ociimage.UID},
		{"podSecurityContext.runAsGroup", psc.RunAsGroup, ociimage.GID},
		{"securityContext.runAsGroup", sc.RunAsGroup, ociimage.GID},
	} {
		if x.got == nil || *x.got != x.want {
			t.Errorf("chart %s = %v, the image's user is %d:%d", x.name, derefOr(x.got), ociimage.UID, ociimage.GID)
		}
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("securityContext.runAsNonRoot %v, want true", sc.RunAsNonRoot)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
		t.Errorf("want readOnlyRootFilesystem with a /tmp mount, got %v and %+v", sc.ReadOnlyRootFilesystem, c.VolumeMounts)
	}
}

func derefOr(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// TestImageRepository: `make image` with no IMAGE builds the chart's
// default image, image.repository with the chart's appVersion as tag, and
// the image's source label is the chart's home.
func TestImageRepository(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not found")
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
		} `json:"image"`
	}
	readYAML(t, chartDir+"/values.yaml", &values)
	var chart struct {
		AppVersion string `json:"appVersion"`
		Home       string `json:"home"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chart)

	// IMAGE as make evaluates it, with IMAGE unset in the environment.
	cmd := exec.Command(makeBin, "--no-print-directory", "-s", "--eval", "print-image: ; @echo $(IMAGE)", "print-image")
	cmd.Dir = repoRoot(t)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "IMAGE=") || strings.HasPrefix(kv, "MAKEFLAGS=")
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make print-image: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), values.Image.Repository+":"+chart.AppVersion; got != want {
		t.Errorf("make image builds %s by default; the chart pulls %s", got, want)
	}
	if ociimage.Source != chart.Home {
		t.Errorf("the image's source label is %s, Chart.yaml home %s", ociimage.Source, chart.Home)
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(repoRoot(t) + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
