# The flinkscale controller image: ghcr.io/flinkscale/flinkscale, run by the
# Helm chart charts/flinkscale (docs/helm.md).
#
#   make image IMAGE=registry.example.com/flinkscale:v0.1.0   # docker build
#   make image-push IMAGE=...                                 # build, then docker push
#
# The entrypoint is the flinkscale binary itself: the chart passes
# `controller` and its flags as args. The image runs as uid/gid 65532
# (distroless "nonroot"), the chart's runAsUser/runAsGroup, and needs no
# writable path besides the /tmp emptyDir the chart mounts.
# test/chart/image_test.go keeps this file, go.mod, the Makefile and the
# chart consistent (without Docker).
#
# Needs BuildKit (Docker 23+ uses it by default, or podman/buildah): the
# build stage runs on the builder's own platform and cross-compiles, so
# `docker buildx build --platform linux/amd64,linux/arm64 .` works without
# emulation.

# The Go release of the build: major.minor must be go.mod's `go` line, and
# the patch at least go.mod's (GOTOOLCHAIN=local below refuses an older Go
# instead of downloading one).
ARG GO_VERSION=1.26.8

# ---------------------------------------------------------------------------
# Build stage.
# $BUILDPLATFORM: the builder's own platform (no QEMU); Go cross-compiles for
# $TARGETOS/$TARGETARCH below.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build

# Set by BuildKit from --platform (e.g. linux/arm64), by default the
# builder's platform; Go reads an empty value as "the build machine's".
ARG TARGETOS
ARG TARGETARCH

# GOTOOLCHAIN=local: build with this image's Go, never download another.
# CGO_ENABLED=0: a static binary, as the libc-less distroless/static needs.
ENV GOTOOLCHAIN=local \
    CGO_ENABLED=0

WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

# The packages ./cmd/flinkscale imports from this module (go list -deps
# ./cmd/flinkscale), one directory per COPY at its own path. Besides the
# controller, the binary carries the simulator, the demo and the benchmarks
# (`flinkscale sim`, `demo`, `bench`, `bench-scale`), which live under test/
# (test/sim, test/demo, test/bench, test/scale, test/envtest,
# test/fakeoperator); .dockerignore drops the rest of test/, and *_test.go
# and testdata/ everywhere.
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY metrics/ metrics/
COPY scaling/ scaling/
COPY test/ test/

# The version `flinkscale version` prints and the controller logs at start
# (main.version, "dev" when unset). `make image` passes git describe.
ARG VERSION=dev

# -trimpath: no build-machine paths in the binary (reproducible builds).
# -buildvcs=false: .git is not in the build context (.dockerignore).
# -s -w: no symbol table or DWARF (a smaller image; panics still have stacks).
# The cache mount keeps Go's build cache across builds; it is not in a layer.
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/flinkscale ./cmd/flinkscale

# ---------------------------------------------------------------------------
# Final stage: no shell, no package manager, no libc; CA certificates (for
# Kafka TLS and HTTPS to Flink or Prometheus) and /etc/passwd included (time
# zones are compiled in: controllers/schedule imports time/tzdata). The
# :nonroot tag's default user is 65532 too; USER below states it for anyone
# reading this file.
FROM gcr.io/distroless/static-debian12:nonroot

# ARGs do not cross stages: declare VERSION again for the label.
ARG VERSION=dev

# No licenses label: the repository has no LICENSE file yet.
LABEL org.opencontainers.image.title="flinkscale" \
      org.opencontainers.image.description="Kubernetes controller that autoscales Apache Flink jobs run by the Flink Kubernetes Operator" \
      org.opencontainers.image.source="https://github.com/flinkscale/flinkscale" \
      org.opencontainers.image.url="https://github.com/flinkscale/flinkscale" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/flinkscale /flinkscale

# Numeric, so that the kubelet can check runAsNonRoot without /etc/passwd;
# the chart's runAsUser/runAsGroup (values.yaml) must match.
USER 65532:65532

# Exec form: flinkscale is PID 1 and receives SIGTERM itself (graceful
# shutdown, leader Lease released).
ENTRYPOINT ["/flinkscale"]
