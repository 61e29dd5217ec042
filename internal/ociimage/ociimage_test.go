package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testSpec() Spec {
	return Spec{
		Binary:   []byte("#!not really an ELF binary\n"),
		Version:  "v0.1.0-3-gabcdef0",
		Revision: "abcdef0123456789abcdef0123456789abcdef01",
		Created:  created,
		OS:       "linux",
		Arch:     "arm64",
	}
}

func mustBuild(t *testing.T, spec Spec) v1.Image {
	t.Helper()
	img, err := Build(spec)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func archive(t *testing.T, img v1.Image, ref string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img, mustTag(t, ref), created); err != nil {
		t.Fatalf("WriteArchive: %v", err)
	}
	return buf.Bytes()
}

// tarEntry is a header of a tar stream and its content.
type tarEntry struct {
	*tar.Header
	data []byte
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, b})
	}
}

// TestBuildDeterministic: the same spec gives the same digest and archive
// bytes; any input that changes gives another digest.
func TestBuildDeterministic(t *testing.T) {
	const ref = "registry.example.com/flinkscale:v0.1.0"
	a, b := mustBuild(t, testSpec()), mustBuild(t, testSpec())
	if da, db := digestOf(t, a), digestOf(t, b); da != db {
		t.Fatalf("two builds of one spec: digests %s and %s", da, db)
	}
	if !bytes.Equal(archive(t, a, ref), archive(t, b, ref)) {
		t.Fatal("two builds of one spec: archives differ")
	}

	base := digestOf(t, a)
	for _, c := range []struct {
		name   string
		modify func(*Spec)
	}{
		{"binary", func(s *Spec) { s.Binary = append(s.Binary, 0) }},
		{"created", func(s *Spec) { s.Created = s.Created.Add(time.Second) }},
		{"version", func(s *Spec) { s.Version = "v0.2.0" }},
		{"revision", func(s *Spec) { s.Revision = "0000000" }},
		{"arch", func(s *Spec) { s.Arch = "amd64" }},
		{"labels", func(s *Spec) { s.Labels = map[string]string{"x": "y"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := testSpec()
			c.modify(&spec)
			if d := digestOf(t, mustBuild(t, spec)); d == base {
				t.Errorf("changing the %s kept the digest %s", c.name, d)
			}
		})
	}
	// Below a second, the created time does not count (tar and the
	// config keep whole seconds).
	spec := testSpec()
	spec.Created = spec.Created.Add(999 * time.Millisecond)
	if d := digestOf(t, mustBuild(t, spec)); d != base {
		t.Errorf("a created time 999ms later: digest %s, want %s", d, base)
	}
}

func TestBuildNoBinary(t *testing.T) {
	if _, err := Build(Spec{Created: created}); err == nil {
		t.Fatal("Build with no binary succeeded")
	}
}

// TestConfig: the config's runtime settings, platform and labels.
func TestConfig(t *testing.T) {
	standard := map[string]string{
		LabelTitle:       "flinkscale",
		LabelDescription: Description,
		LabelSource:      "https://github.com/flinkscale/flinkscale",
		LabelURL:         "https://github.com/flinkscale/flinkscale",
		LabelVersion:     "v0.1.0-3-gabcdef0",
		LabelRevision:    "abcdef0123456789abcdef0123456789abcdef01",
		LabelCreated:     "2026-03-14T15:09:26Z",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	for _, c := range []struct {
		name             string
		modify           func(*Spec)
		wantOS, wantArch string
		wantLabels       map[string]string
	}{
		{"as given", func(*Spec) {}, "linux", "arm64", standard},
		{"default platform", func(s *Spec) { s.OS, s.Arch = "", "" }, "linux", runtime.GOARCH, standard},
		{"local time", func(s *Spec) { s.Created = created.In(time.FixedZone("CET", 3600)) }, "linux", "arm64", standard},
		{"no revision", func(s *Spec) { s.Revision = "" }, "linux", "arm64", with(standard, LabelRevision, "")},
		{"extra and overriding labels", func(s *Spec) {
			s.Labels = map[string]string{"org.opencontainers.image.vendor": "Example", LabelURL: "https://example.com", LabelTitle: ""}
		}, "linux", "arm64", with(standard, "org.opencontainers.image.vendor", "Example", LabelURL, "https://example.com", LabelTitle, "")},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := testSpec()
			c.modify(&spec)
			img := mustBuild(t, spec)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != c.wantOS || cf.Architecture != c.wantArch {
				t.Errorf("platform %s/%s, want %s/%s", cf.OS, cf.Architecture, c.wantOS, c.wantArch)
			}
			if !cf.Created.Time.Equal(created) || cf.Created.Location() != time.UTC {
				t.Errorf("created %v, want %v", cf.Created.Time, created)
			}
			cfg := cf.Config
			if cfg.User != "65532:65532" || !slices.Equal(cfg.Entrypoint, []string{"/flinkscale"}) ||
				!slices.Equal(cfg.Cmd, []string{"controller"}) || cfg.WorkingDir != "/" || !slices.Equal(cfg.Env, []string{"PATH=/"}) {
				t.Errorf("config %+v", cfg)
			}
			if !maps.Equal(cfg.Labels, c.wantLabels) {
				t.Errorf("labels %v\nwant %v", cfg.Labels, c.wantLabels)
			}
			if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 || !cf.History[0].Created.Time.Equal(created) {
				t.Errorf("rootfs %+v, history %+v: want one layer created %v", cf.RootFS, cf.History, created)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
				len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("media types: manifest %s, config %s, layers %+v: want OCI ones", m.MediaType, m.Config.MediaType, m.Layers)
			}
		})
	}
}

// TestLayer: the files, their owners, modes and times, in order.
func TestLayer(t *testing.T) {
	spec := testSpec()
	layers, err := mustBuild(t, spec).Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v: want one", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	type file struct {
		name     string
		typ      byte
		mode     int64
		uid, gid int
		content  string
	}
	want := []file{
		{"etc/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/group", tar.TypeReg, 0o644, 0, 0, "root:x:0:\nnonroot:x:65532:\n"},
		{"etc/passwd", tar.TypeReg, 0o644, 0, 0, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{"flinkscale", tar.TypeReg, 0o755, 0, 0, string(spec.Binary)},
		{"home/", tar.TypeDir, 0o755, 0, 0, ""},
		{"home/nonroot/", tar.TypeDir, 0o700, 65532, 65532, ""},
		{"tmp/", tar.TypeDir, 0o1777, 0, 0, ""},
	}
	var got []file
	for _, e := range readTar(t, rc) {
		h := e.Header
		got = append(got, file{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, string(e.data)})
		if !h.ModTime.Equal(created) || h.Uname != "" || h.Gname != "" || h.Format != tar.FormatUSTAR || len(h.PAXRecords) != 0 {
			t.Errorf("%s: mtime %v, uname %q, gname %q, format %v, PAX %v: want %v, no names, USTAR",
				h.Name, h.ModTime, h.Uname, h.Gname, h.Format, h.PAXRecords, created)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("layer\n got %+v\nwant %+v", got, want)
	}
}

// TestArchive: the archive's entries, and both its indexes pointing at
// blobs whose content has their digest.
func TestArchive(t *testing.T) {
	img := mustBuild(t, testSpec())
	digest := digestOf(t, img)
	files := map[string][]byte{}
	var names []string
	for _, e := range readTar(t, bytes.NewReader(archive(t, img, "registry.example.com/team/flinkscale:v0.1.0"))) {
		names = append(names, e.Name)
		files[e.Name] = e.data
		if !e.ModTime.Equal(created) || e.Uid != 0 || e.Gid != 0 {
			t.Errorf("%s: mtime %v, owner %d:%d", e.Name, e.ModTime, e.Uid, e.Gid)
		}
	}
	if !slices.IsSorted(names) || len(names) != 8 || names[0] != "blobs/" || names[1] != "blobs/sha256/" {
		t.Errorf("entries %q: want blobs/, blobs/sha256/, three blobs, index.json, manifest.json, oci-layout, sorted", names)
	}
	blob := func(path string) []byte {
		t.Helper()
		b, ok := files[path]
		if !ok {
			t.Fatalf("no %s in the archive (entries %q)", path, names)
		}
		if sum := sha256.Sum256(b); "blobs/sha256/"+hex.EncodeToString(sum[:]) != path {
			t.Errorf("%s: content has digest sha256:%x", path, sum)
		}
		return b
	}

	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %s", got)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	wantAnn := map[string]string{
		"io.containerd.image.name":          "registry.example.com/team/flinkscale:v0.1.0",
		"org.opencontainers.image.ref.name": "v0.1.0",
	}
	if index.MediaType != types.OCIImageIndex || len(index.Manifests) != 1 || index.Manifests[0].Digest != digest ||
		!maps.Equal(index.Manifests[0].Annotations, wantAnn) {
		t.Fatalf("index.json %s: want the manifest %s annotated %v", files["index.json"], digest, wantAnn)
	}
	var m v1.Manifest
	if err := json.Unmarshal(blob("blobs/sha256/"+digest.Hex), &m); err != nil {
		t.Fatal(err)
	}
	blob("blobs/sha256/" + m.Config.Digest.Hex)
	blob("blobs/sha256/" + m.Layers[0].Digest.Hex)

	var docker []DockerManifest
	if err := json.Unmarshal(files["manifest.json"], &docker); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	want := []DockerManifest{{
		Config:   "blobs/sha256/" + m.Config.Digest.Hex,
		RepoTags: []string{"registry.example.com/team/flinkscale:v0.1.0"},
		Layers:   []string{"blobs/sha256/" + m.Layers[0].Digest.Hex},
	}}
	if fmt.Sprint(docker) != fmt.Sprint(want) {
		t.Errorf("manifest.json %+v, want %+v", docker, want)
	}
}

func TestCreatedTime(t *testing.T) {
	commit := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -7200))
	ok := func() (time.Time, error) { return commit, nil }
	fail := func() (time.Time, error) { return time.Time{}, errors.New("not a git repository") }
	for _, c := range []struct {
		name, epoch string
		commit      func() (time.Time, error)
		want        time.Time
		wantFrom    string
		wantErr     bool
	}{
		{"SOURCE_DATE_EPOCH wins", "1700000000", ok, time.Unix(1700000000, 0), "SOURCE_DATE_EPOCH", false},
		{"SOURCE_DATE_EPOCH 0", "0", ok, time.Unix(0, 0), "SOURCE_DATE_EPOCH", false},
		{"commit time", "", ok, commit, "the commit time of HEAD", false},
		{"blank is unset", "  ", ok, commit, "the commit time of HEAD", false},
		{"no git", "", fail, time.Unix(0, 0), "the Unix epoch (no SOURCE_DATE_EPOCH, no git commit)", false},
		{"no git function", "", nil, time.Unix(0, 0), "the Unix epoch (no SOURCE_DATE_EPOCH, no git commit)", false},
		{"not a number", "yesterday", ok, time.Time{}, "", true},
		{"fractional", "1.5", ok, time.Time{}, "", true},
		{"negative", "-1", ok, time.Time{}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, from, err := CreatedTime(c.epoch, c.commit)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want error %v", err, c.wantErr)
			}
			if !got.Equal(c.want) || from != c.wantFrom || (!c.wantErr && got.Location() != time.UTC) {
				t.Errorf("%v from %q, want %v from %q, in UTC", got, from, c.want, c.wantFrom)
			}
		})
	}
}

// TestPush pushes to go-containerregistry's in-process registry and pulls
// the image back: the same digest, config and layer.
func TestPush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials: anonymous
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://") // 127.0.0.1:<port>: plain HTTP

	img := mustBuild(t, testSpec())
	ref, err := name.NewTag(host + "/flinkscale/flinkscale:v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Push(ctx, img, ref); err != nil {
		t.Fatal(err)
	}

	pulled, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pulling %s back: %v", ref, err)
	}
	if got, want := digestOf(t, pulled), digestOf(t, img); got != want {
		t.Errorf("pulled digest %s, pushed %s", got, want)
	}
	for _, part := range []struct {
		name string
		raw  func(v1.Image) ([]byte, error)
	}{
		{"manifest", v1.Image.RawManifest},
		{"config", v1.Image.RawConfigFile},
	} {
		got, err1 := part.raw(pulled)
		want, err2 := part.raw(img)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: pulled %s (%v), pushed %s (%v)", part.name, got, err1, want, err2)
		}
	}
	pl, err := pulled.Layers()
	if err != nil || len(pl) != 1 {
		t.Fatalf("pulled layers %v, %v", pl, err)
	}
	rc, err := pl[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, n, err := v1.SHA256(rc)
	if want, _ := pl[0].Digest(); err != nil || h != want {
		t.Errorf("pulled layer: %d bytes of digest %s (%v), want %s", n, h, err, want)
	}

	// The registry does answer by repository: one never pushed is not there.
	if _, err := remote.Head(mustTag(t, host+"/flinkscale/other:v0.1.0"), remote.WithContext(ctx)); err == nil {
		t.Error("an image never pushed was found")
	}
}

func mustTag(t *testing.T, ref string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
