// Package image builds the controller image as `make image` does (a static
// -tags controller binary, then hack/image) and checks it: the same inputs
// give the same bytes, the archive reads as an OCI layout and as a
// docker-save archive, the config agrees with the Helm chart, and the
// unpacked root filesystem runs `flinkscale version`.
//
// The binary and hack/image run as separate processes, built without the
// race detector: under `go test -race` compressing the 68 MB layer in the
// test's own process took over a minute a build.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/flinkscale/flinkscale/internal/ociimage"
	"github.com/flinkscale/flinkscale/test/helmtest"
)

const (
	version  = "v0.1.0-imagetest"
	revision = "0123456789abcdef0123456789abcdef01234567"
	ref      = "registry.example.com/flinkscale/flinkscale:" + version
	// sourceDateEpoch is the created time, as SOURCE_DATE_EPOCH.
	sourceDateEpoch = "1767225600" // 2026-01-01T00:00:00Z
	// maxImageBytes bounds the compressed image (measured in December
	// 2026: 22.0 MB for linux/amd64, 19.8 MB for arm64; 23.8 MB when the
	// controller tag still built the full binary). Over it, something large
	// joined the controller's binary, or the build lost -s -w.
	maxImageBytes = 35 << 20
)

// goBuild runs go build from the repository root with env added, writing
// out, and returns out.
func goBuild(t *testing.T, out string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", slices.Concat([]string{"build", "-o", out}, args)...)
	cmd.Dir = helmtest.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go build %s: %s, %.1f MB", args[len(args)-1], time.Since(start).Round(100*time.Millisecond), float64(fi.Size())/1e6)
	return out
}

// buildArchive runs hack/image as the Makefile's image target does, into
// dir, and returns the archive's bytes and the digest file's content.
func buildArchive(t *testing.T, hackImage, binary, dir string) (archive []byte, digest string) {
	t.Helper()
	out := filepath.Join(dir, "flinkscale.tar")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hackImage, "--binary", binary, "--image", ref, "--version", version,
		"--revision", revision, "--os", "linux", "--arch", runtime.GOARCH, "--out", out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+sourceDateEpoch)
	start := time.Now()
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/image: %v\n%s", err, stdout)
	}
	t.Logf("hack/image in %s:\n%s", time.Since(start).Round(100*time.Millisecond), stdout)
	archive, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile(filepath.Join(dir, "flinkscale.digest"))
	if err != nil {
		t.Fatal(err)
	}
	return archive, strings.TrimSpace(string(d))
}

func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the controller binary and its image")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs the linux image's binary")
	}
	tmp := t.TempDir()
	binary := goBuild(t, filepath.Join(tmp, "flinkscale-bin"),
		[]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH},
		"-tags", "controller", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "./cmd/flinkscale")
	hackImage := goBuild(t, filepath.Join(tmp, "hack-image"), []string{"CGO_ENABLED=0"}, "./hack/image")

	archive, digestFile := buildArchive(t, hackImage, binary, t.TempDir())

	// The image, as the OCI layout of the archive.
	dir := t.TempDir()
	var names []string
	for _, h := range untar(t, bytes.NewReader(archive), dir) {
		names = append(names, h.Name)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the archive as an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want one", len(im.Manifests))
	}
	digest := im.Manifests[0].Digest
	img, err := idx.Image(digest)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("reproducible", func(t *testing.T) {
		archive2, digestFile2 := buildArchive(t, hackImage, binary, t.TempDir())
		if digestFile != digest.String() || digestFile2 != digestFile || !bytes.Equal(archive, archive2) {
			t.Errorf("two builds: digest files %s and %s (index.json: %s), archives equal: %v",
				digestFile, digestFile2, digest, bytes.Equal(archive, archive2))
		}
	})

	t.Run("oci layout", func(t *testing.T) {
		if !slices.IsSorted(names) {
			t.Errorf("archive entries not sorted: %q", names)
		}
		ann := im.Manifests[0].Annotations
		if ann[ociimage.AnnotationImageName] != ref || ann[ociimage.AnnotationRefName] != version {
			t.Errorf("index.json annotations %v: want the image named %s, ref name %s", ann, ref, version)
		}
		if d, err := img.Digest(); err != nil || d != digest {
			t.Errorf("the manifest's content has digest %s (%v), index.json says %s", d, err, digest)
		}
	})

	// skopeo (containers/image, the library podman, buildah and CRI-O
	// use) is an independent reader of both formats: it inspects the
	// archive as oci-archive: and as docker-archive:, and copies it into
	// an OCI layout with the manifest, hence the digest, unchanged.
	t.Run("skopeo reads it", func(t *testing.T) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("skopeo not found; CI=true, so this fails instead of skipping (apt-get install skopeo)")
			}
			t.Skip("skopeo not found (apt-get install skopeo)")
		}
		path := filepath.Join(t.TempDir(), "flinkscale.tar")
		if err := os.WriteFile(path, archive, 0o600); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) []byte {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, skopeo, args...).Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, exit.Stderr)
				}
				t.Fatalf("skopeo %s: %v", strings.Join(args, " "), err)
			}
			return out
		}
		for _, transport := range []string{"oci-archive:", "docker-archive:"} {
			var cfg v1.ConfigFile
			if err := yaml.Unmarshal(run("inspect", "--config", transport+path), &cfg); err != nil {
				t.Fatalf("%s config: %v", transport, err)
			}
			if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, ociimage.Entrypoint) ||
				!slices.Equal(cfg.Config.Cmd, ociimage.Cmd) || cfg.Architecture != runtime.GOARCH ||
				cfg.Config.Labels[ociimage.LabelVersion] != version {
				t.Errorf("%s: skopeo reads user %q, entrypoint %q, cmd %q, architecture %s, version %q",
					transport, cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Architecture, cfg.Config.Labels[ociimage.LabelVersion])
			}
		}
		copied := filepath.Join(t.TempDir(), "layout")
		run("copy", "--quiet", "oci-archive:"+path, "oci:"+copied+":"+version)
		cidx, err := layout.ImageIndexFromPath(copied)
		if err != nil {
			t.Fatal(err)
		}
		cim, err := cidx.IndexManifest()
		if err != nil || len(cim.Manifests) != 1 {
			t.Fatalf("the copied layout's index: %v, %v", cim, err)
		}
		if cim.Manifests[0].Digest != digest {
			t.Errorf("skopeo copied the image to digest %s, want %s", cim.Manifests[0].Digest, digest)
		}
	})

	t.Run("docker manifest.json", func(t *testing.T) {
		// tarball reads manifest.json as docker load does.
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		fromDocker, err := tarball.Image(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(archive)), nil
		}, &tag)
		if err != nil {
			t.Fatalf("reading the archive's manifest.json: %v", err)
		}
		sameImage(t, "manifest.json", fromDocker, img)
	})

	// The layer, unpacked once: its content must have the config's diff ID.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v: want one", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	layerTar, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := layers[0].DiffID()
	if err != nil {
		t.Fatal(err)
	}
	if h, _, err := v1.SHA256(bytes.NewReader(layerTar)); err != nil || h != diffID {
		t.Fatalf("the unpacked layer has digest %s (%v), the config's diff ID is %s", h, err, diffID)
	}

	// The root filesystem, unpacked.
	root := t.TempDir()
	layerFiles := untar(t, bytes.NewReader(layerTar), root)

	t.Run("size", func(t *testing.T) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		compressed := m.Config.Size + m.Layers[0].Size
		t.Logf("image %s: %.1f MB compressed, %.1f MB unpacked, archive %.1f MB",
			digest, float64(compressed)/1e6, float64(len(layerTar))/1e6, float64(len(archive))/1e6)
		if compressed > maxImageBytes {
			t.Errorf("image of %d bytes, over the bound of %d", compressed, maxImageBytes)
		}
	})

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("config", func(t *testing.T) {
		var values struct {
			SecurityContext struct {
				RunAsUser  int64 `json:"runAsUser"`
				RunAsGroup int64 `json:"runAsGroup"`
			} `json:"securityContext"`
		}
		readYAML(t, helmtest.ChartDir+"/values.yaml", &values)
		var chart struct {
			Home string `json:"home"`
		}
		readYAML(t, helmtest.ChartDir+"/Chart.yaml", &chart)
		wantUser := fmt.Sprintf("%d:%d", values.SecurityContext.RunAsUser, values.SecurityContext.RunAsGroup)

		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"User (the chart's runAsUser:runAsGroup)", cf.Config.User, wantUser},
			{"Entrypoint", cf.Config.Entrypoint, []string{"/flinkscale"}},
			{"Cmd", cf.Config.Cmd, []string{"controller"}},
			{"WorkingDir", cf.Config.WorkingDir, "/"},
			{"OS", cf.OS, "linux"},
			{"Architecture", cf.Architecture, runtime.GOARCH},
			{"Created", cf.Created.UTC().Format(time.RFC3339), "2026-01-01T00:00:00Z"},
			{"version label", cf.Config.Labels["org.opencontainers.image.version"], version},
			{"revision label", cf.Config.Labels["org.opencontainers.image.revision"], revision},
			{"source label (Chart.yaml home)", cf.Config.Labels["org.opencontainers.image.source"], chart.Home},
			{"created label", cf.Config.Labels["org.opencontainers.image.created"], "2026-01-01T00:00:00Z"},
			{"no licenses label (no LICENSE file)", cf.Config.Labels["org.opencontainers.image.licenses"], ""},
		} {
			if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
				t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
			}
		}
	})

	t.Run("chart args replace Cmd", func(t *testing.T) {
		out, err := helmtest.Template(t, "flinkscale-system", "")
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		for doc := range strings.SplitSeq(out, "\n---\n") {
			if strings.Contains(doc, "\nkind: Deployment\n") {
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatalf("the chart's Deployment: %v", err)
				}
			}
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("the chart's Deployment has containers %+v: want one", d.Spec.Template.Spec.Containers)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != cf.Config.Cmd[0] {
			t.Errorf("the chart's container: command %q, args %q; want no command (the entrypoint runs) and args starting with %s",
				c.Command, c.Args, cf.Config.Cmd[0])
		}
	})

	t.Run("files", func(t *testing.T) {
		want := map[string]string{ // name: owner mode
			"etc/":          "0:0 drwxr-xr-x",
			"etc/group":     "0:0 -rw-r--r--",
			"etc/passwd":    "0:0 -rw-r--r--",
			"flinkscale":    "0:0 -rwxr-xr-x",
			"home/":         "0:0 drwxr-xr-x",
			"home/nonroot/": "65532:65532 drwx------",
			"tmp/":          "0:0 dtrwxrwxrwx",
		}
		got := map[string]string{}
		for _, h := range layerFiles {
			got[h.Name] = fmt.Sprintf("%d:%d %v", h.Uid, h.Gid, h.FileInfo().Mode())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("layer files\n got %v\nwant %v", got, want)
		}
		for _, ca := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/ssl/"} {
			if _, ok := got[ca]; ok {
				t.Errorf("the image has %s: the binary embeds its CA roots", ca)
			}
		}
	})

	t.Run("runs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "flinkscale"), "version")
		cmd.Dir = root
		cmd.Env = []string{"PATH=/"} // the image's environment
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("<root>/flinkscale version: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), version) {
			t.Errorf("<root>/flinkscale version printed %q, want the stamped %s", out, version)
		}
		passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
		if err != nil || !strings.Contains(string(passwd), "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") {
			t.Errorf("etc/passwd %q (%v): want the nonroot user 65532", passwd, err)
		}
	})
}

// sameImage fails unless got has want's config and layers (the manifest
// itself may differ: tarball.Image writes a docker one).
func sameImage(t *testing.T, what string, got, want v1.Image) {
	t.Helper()
	gc, err1 := got.RawConfigFile()
	wc, err2 := want.RawConfigFile()
	if err1 != nil || err2 != nil || !bytes.Equal(gc, wc) {
		t.Errorf("%s: config differs (%v, %v)", what, err1, err2)
	}
	gl, err1 := got.Layers()
	wl, err2 := want.Layers()
	if err1 != nil || err2 != nil || len(gl) != len(wl) {
		t.Fatalf("%s: %d layers (%v), want %d (%v)", what, len(gl), err1, len(wl), err2)
	}
	for i := range gl {
		gd, err1 := gl[i].Digest()
		wd, err2 := wl[i].Digest()
		if err1 != nil || err2 != nil || gd != wd {
			t.Errorf("%s: layer %d digest %s (%v), want %s (%v)", what, i, gd, err1, wd, err2)
		}
	}
}

// untar unpacks directories and regular files of r into dir, with their
// permission bits, and returns the headers in order.
func untar(t *testing.T, r io.Reader, dir string) []*tar.Header {
	t.Helper()
	var headers []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
		if !fs.ValidPath(strings.TrimSuffix(h.Name, "/")) {
			t.Fatalf("tar entry %q: not a clean relative path", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			// 0700 at least, so that the test can write into it.
			err = os.MkdirAll(p, h.FileInfo().Mode().Perm()|0o700)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, h.FileInfo().Mode().Perm()); err == nil {
				_, err = io.Copy(f, tr)
				err = errors.Join(err, f.Close())
			}
		default:
			err = fmt.Errorf("unexpected type %c", h.Typeflag)
		}
		if err != nil {
			t.Fatalf("unpacking %s: %v", h.Name, err)
		}
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(helmtest.RepoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
