// Command image builds the flinkscale controller's container image from a
// static binary, without a container engine (internal/ociimage), and writes
// it as an archive that docker, podman, kind, containerd, skopeo and crane
// all read, with its manifest digest next to it; --push also uploads it.
// `make image` and `make image-push` run it after building the binary:
//
//	go run ./hack/image --binary bin/image/flinkscale-bin \
//	  --image ghcr.io/flinkscale/flinkscale:0.1.0 --version v0.1.0 [--push]
//
// The created time (the image's, and every file's in it) is
// SOURCE_DATE_EPOCH when set, else the commit time of HEAD, else 1970: the
// same binary and the same commit give the same bytes and digest.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/flinkscale/flinkscale/internal/ociimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "bin/image/flinkscale-bin", "the static flinkscale binary for --os/--arch")
	image := flag.String("image", "", "the image reference, with a tag (required): the archive's name, and where --push pushes")
	version := flag.String("version", "dev", "what the binary's `flinkscale version` prints: the org.opencontainers.image.version label")
	revision := flag.String("revision", "", "the org.opencontainers.image.revision label (default: git rev-parse HEAD)")
	goos := flag.String("os", "linux", "the binary's GOOS")
	goarch := flag.String("arch", runtime.GOARCH, "the binary's GOARCH")
	out := flag.String("out", "bin/image/flinkscale.tar", "the archive to write; the digest goes to the same name with .digest")
	push := flag.Bool("push", false, "also push the image to --image (credentials from the docker config)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *image == "" {
		return fmt.Errorf("--image is required")
	}
	ref, err := name.NewTag(*image, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--image %q: want registry/repository:tag: %w", *image, err)
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return fmt.Errorf("reading the binary: %w", err)
	}
	if *revision == "" {
		*revision, _ = git("rev-parse", "HEAD")
	}
	created, from, err := ociimage.CreatedTime(os.Getenv("SOURCE_DATE_EPOCH"), commitTime)
	if err != nil {
		return err
	}

	img, err := ociimage.Build(ociimage.Spec{
		Binary: bin, Version: *version, Revision: *revision, Created: created, OS: *goos, Arch: *goarch,
	})
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	if err := writeArchive(*out, img, ref, created); err != nil {
		return err
	}
	digestFile := strings.TrimSuffix(*out, filepath.Ext(*out)) + ".digest"
	if err := os.WriteFile(digestFile, []byte(digest.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing the digest: %w", err)
	}
	compressed, uncompressed, err := ociimage.Sizes(img)
	if err != nil {
		return err
	}
	fmt.Printf("image    %s (%s/%s, version %s, created %s from %s)\n", ref, *goos, *goarch, *version, created.Format(time.RFC3339), from)
	fmt.Printf("digest   %s (in %s)\n", digest, digestFile)
	fmt.Printf("size     %s compressed, %s unpacked\n", mb(compressed), mb(uncompressed))
	fmt.Printf("archive  %s\n", *out)

	if *push {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := ociimage.Push(ctx, img, ref); err != nil {
			return err
		}
		fmt.Printf("pushed   %s@%s\n", ref.Context(), digest)
	}
	return nil
}

// writeArchive writes the archive to a temporary file renamed to path, so
// that a failed build leaves no partial archive.
func writeArchive(path string, img v1.Image, ref name.Tag, created time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("creating the archive: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if err := ociimage.WriteArchive(f, img, ref, created); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// commitTime is the commit time of HEAD.
func commitTime() (time.Time, error) {
	s, err := git("log", "-1", "--format=%ct")
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git log -1 --format=%%ct: %q: %w", s, err)
	}
	return time.Unix(sec, 0), nil
}

// git runs git with args and returns its trimmed output.
func git(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("git", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// mb formats a size in bytes as MB with one decimal, and the exact count.
func mb(n int64) string { return fmt.Sprintf("%.1f MB (%d bytes)", float64(n)/1e6, n) }
