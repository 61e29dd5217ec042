package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of the image in the archive's index.json, as `docker save`
// (Docker 25+) writes them: containerd's import reads the full reference,
// OCI tools (skopeo's oci-archive:) the ref name, the tag.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// DockerManifest is one entry of a docker-save manifest.json: paths inside
// the archive.
type DockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteArchive writes img as a tar archive that is both an OCI image layout
// (oci-layout, index.json, blobs/sha256/<hex>) and a docker-save archive
// (manifest.json, naming the same blobs), as `docker save` of Docker 25+
// writes it: docker and podman load it, kind load image-archive and ctr
// images import it, skopeo copies it as oci-archive:, crane pushes it.
// Entries are sorted, directories first, every time mtime: the bytes depend
// on img, ref and mtime only.
func WriteArchive(w io.Writer, img v1.Image, ref name.Tag, mtime time.Time) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("manifest digest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}

	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Annotations: map[string]string{
				AnnotationImageName: ref.Name(),
				AnnotationRefName:   ref.TagStr(),
			},
		}},
	}
	docker := []DockerManifest{{Config: blobPath(configName), RepoTags: []string{ref.Name()}}}

	// The blobs, then the small files; sorted by name below.
	type file struct {
		name string
		size int64
		open func() (io.ReadCloser, error)
	}
	bytesFile := func(name string, b []byte) file {
		return file{name, int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	files := []file{bytesFile(blobPath(digest), manifest), bytesFile(blobPath(configName), config)}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer %d digest: %w", i, err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer %d size: %w", i, err)
		}
		docker[0].Layers = append(docker[0].Layers, blobPath(d))
		if !slices.ContainsFunc(files, func(f file) bool { return f.name == blobPath(d) }) {
			files = append(files, file{blobPath(d), size, l.Compressed})
		}
	}
	for _, x := range []struct {
		name string
		v    any
	}{
		{"oci-layout", map[string]string{"imageLayoutVersion": "1.0.0"}}, // the layout format's version
		{"index.json", index},
		{"manifest.json", docker},
	} {
		b, err := json.Marshal(x.v)
		if err != nil {
			return fmt.Errorf("%s: %w", x.name, err)
		}
		files = append(files, bytesFile(x.name, b))
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })

	mtime = mtime.UTC().Truncate(time.Second)
	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, f.size, mtime, f.open); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing the archive: %w", err)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, size int64, mtime time.Time, open func() (io.ReadCloser, error)) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(tw, rc)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	return nil
}

// blobPath is where an OCI layout stores a blob.
func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// Sizes returns what a registry stores for img (the compressed layers, the
// config and the manifest) and the unpacked size of its layers.
func Sizes(img v1.Image) (compressed, uncompressed int64, err error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, fmt.Errorf("manifest: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, fmt.Errorf("manifest: %w", err)
	}
	compressed = m.Config.Size + int64(len(raw))
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, fmt.Errorf("layers: %w", err)
	}
	for i, l := range layers {
		size, err := l.Size()
		if err != nil {
			return 0, 0, fmt.Errorf("layer %d: %w", i, err)
		}
		compressed += size
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, fmt.Errorf("layer %d: %w", i, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("layer %d: %w", i, err)
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

// Push uploads img to ref with the credentials of the docker config
// (authn.DefaultKeychain: $DOCKER_CONFIG or ~/.docker/config.json, and its
// credential helpers; anonymous when none match). opts come after, and may
// replace the keychain or the transport.
func Push(ctx context.Context, img v1.Image, ref name.Reference, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(ref, img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// CreatedTime is the image's created time: sourceDateEpoch (the
// SOURCE_DATE_EPOCH convention, whole seconds since 1970) when set, else
// commitTime() (the commit time of HEAD), else the Unix epoch, when
// commitTime is nil or fails. from says which it was.
func CreatedTime(sourceDateEpoch string, commitTime func() (time.Time, error)) (created time.Time, from string, err error) {
	if s := strings.TrimSpace(sourceDateEpoch); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, "", fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970", sourceDateEpoch)
		}
		return time.Unix(sec, 0).UTC(), "SOURCE_DATE_EPOCH", nil
	}
	if commitTime != nil {
		if t, err := commitTime(); err == nil {
			return t.UTC().Truncate(time.Second), "the commit time of HEAD", nil
		}
	}
	return time.Unix(0, 0).UTC(), "the Unix epoch (no SOURCE_DATE_EPOCH, no git commit)", nil
}
