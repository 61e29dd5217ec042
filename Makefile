# flinkscale build entry points. `make help` lists the targets.
#
# Build tools are pinned in small Go modules under hack/tools/<tool>/ (go.mod
# and go.sum are committed; re-pin with hack/tools/bump.sh). They are built
# from source into bin/ with the installed Go toolchain, once: each binary is
# stored under a versioned name (bin/controller-gen-v0.19.0) with a stable
# symlink next to it (bin/controller-gen), so a rebuild happens only when the
# binary is missing or its tools module changed.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

GO ?= go

# Build with the installed Go; never download a toolchain.
export GOTOOLCHAIN ?= local

# GOFLAGS (from the environment or `go env -w`, e.g. -buildvcs=false) is left
# untouched for the project's own go commands. Tool builds below use a fixed
# set instead, so they come out the same whatever the caller's GOFLAGS.

comma := ,
BIN := $(abspath bin)
TOOLS := hack/tools

# --------------------------------------------------------------------------
# Pinned tool versions, read back from the tools modules' go.mod files.

# $(call mod-version,<tool dir>,<module path>)
mod-version = $(shell awk '($$1 == "$(2)") { print $$2; exit } ($$1 == "require" && $$2 == "$(2)") { print $$3; exit }' $(TOOLS)/$(1)/go.mod 2>/dev/null)

CONTROLLER_TOOLS_VERSION := $(call mod-version,controller-gen,sigs.k8s.io/controller-tools)
GOLANGCI_LINT_VERSION    := $(call mod-version,golangci-lint,github.com/golangci/golangci-lint/v2)
HELM_VERSION             := $(call mod-version,helm,helm.sh/helm/v3)
HELM_K8S_VERSION         := $(call mod-version,helm,k8s.io/client-go)
KUBERNETES_VERSION       := $(call mod-version,k8s,k8s.io/kubernetes)
ETCD_VERSION             := $(call mod-version,etcd,go.etcd.io/etcd/server/v3)

$(foreach v,CONTROLLER_TOOLS_VERSION GOLANGCI_LINT_VERSION HELM_VERSION HELM_K8S_VERSION KUBERNETES_VERSION ETCD_VERSION,\
  $(if $($(v)),,$(error $(v) not found in $(TOOLS)/*/go.mod; re-pin with hack/tools/bump.sh)))

CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT  := $(BIN)/golangci-lint
HELM           := $(BIN)/helm
# envtest's BinaryAssetsDirectory / KUBEBUILDER_ASSETS.
ENVTEST_DIR    := $(BIN)/k8s
KUBE_APISERVER := $(ENVTEST_DIR)/kube-apiserver
ETCD           := $(ENVTEST_DIR)/etcd
KUBECTL        := $(ENVTEST_DIR)/kubectl

# controller-runtime's envtest looks for kube-apiserver and etcd here.
# (Until `make envtest-bins` has run the directory may not exist: tests that
# need it should skip when $KUBEBUILDER_ASSETS/kube-apiserver is missing.)
export KUBEBUILDER_ASSETS ?= $(ENVTEST_DIR)

# $(call build-tool,<tools module dir>,<package>,<output file>,<extra go build flags>)
# Static (CGO_ENABLED=0), stripped, -trimpath build from the committed go.sum
# (-mod=readonly); any go.work and the caller's GOFLAGS are ignored.
define build-tool
@mkdir -p $(dir $(3))
@echo ">> building $(notdir $(3)) from $(2) ($(TOOLS)/$(1))"
@start=$$(date +%s); \
  cd $(TOOLS)/$(1) && \
  GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local \
  $(GO) build -trimpath -buildvcs=false $(4) -o $(3).tmp $(2); \
  mv -f $(3).tmp $(3); \
  echo ">> built $(3) in $$(( $$(date +%s) - start ))s ($$(du -m $(3) | cut -f1) MB)"
endef

# $(call link-tool,<versioned binary>,<stable symlink>)
define link-tool
@ln -sfn $(notdir $(1)) $(2)
endef

##@ Build

.PHONY: build
build: flinkscale-bin ## Compile every package and build bin/flinkscale (and bin/kubectl-flinkscale, the kubectl plugin, with its completion bin/kubectl_complete-flinkscale)
	$(GO) build ./...
	$(GO) vet -tags controller ./cmd/flinkscale

# bin/flinkscale is the full command line (the simulator, the demo, the
# benchmarks and the testbed included); hard-linked as kubectl-flinkscale it
# is the kubectl plugin, and as kubectl_complete-flinkscale it answers
# kubectl's plugin completion. The controller image's binary is built with
# -tags controller (make image).
.PHONY: flinkscale-bin
flinkscale-bin:
	$(GO) build -o $(BIN)/flinkscale ./cmd/flinkscale
	ln -f $(BIN)/flinkscale $(BIN)/kubectl-flinkscale
	ln -f $(BIN)/flinkscale $(BIN)/kubectl_complete-flinkscale

# The demo needs kube-apiserver and etcd (built once into bin/k8s, about 4
# minutes cold) and bin/flinkscale (about 2); kubectl is not required (`make
# envtest-bins` builds it too). One build after the other: side by side on 2
# cores they took longer (6m52s against 6m10s, measured).
# DEMO_ARGS are flinkscale demo's flags, e.g. DEMO_ARGS='--hold --speed 30'.
DEMO_ARGS ?=
.PHONY: demo
demo: $(KUBE_APISERVER) $(ETCD) flinkscale-bin ## Run the demo: the controller scaling three simulated Flink jobs through a day in ~3 minutes [DEMO_ARGS=...]
	$(BIN)/flinkscale demo $(DEMO_ARGS)

# The same day on real Apache Flink and Kafka (flinkscale demo --real): what
# `make demo` needs, plus a JDK 17 and Maven. As with `make testbed`, the
# testbed resolves Flink's and Kafka's jars into ~/.m2 and builds its
# workload for both Flink lines itself on first use (JUnit tests skipped:
# `make test-java` runs them), then caches them in bin/testbed.
.PHONY: demo-real
demo-real: $(KUBE_APISERVER) $(ETCD) flinkscale-bin ## Run the demo on real Flink and Kafka: two jobs through the day compressed 24×, in ~8 minutes [DEMO_ARGS=...]
	$(BIN)/flinkscale demo --real $(DEMO_ARGS)

##@ Test

# Prerequisites of `make test`: the integration tests (test/envtest users)
# need kube-apiserver, etcd and kubectl in bin/k8s, the chart tests bin/helm;
# all are built from source once and cached. `make test TEST_DEPS=` skips
# building them (those tests then skip, or fail under CI=true).
TEST_DEPS ?= envtest-bins helm
# Extra flags for go test, e.g. make test GO_TEST_FLAGS='-v -run TestFoo'.
GO_TEST_FLAGS ?=

# The real-Flink testbed (docs/testbed.md): its Maven module's JUnit tests
# and jars for both Flink lines, then, after the Go tests, its smoke tests
# against real Flink 1.20 and 2.x and a real Kafka broker, alone so that
# nothing else competes with the JVMs for the 2 cores (FLINKSCALE_REAL=1
# enables them; `go test ./...` skips them). Maven's ~/.m2 is the only
# cache; the first run downloads about 300 MB of jars.
MVN ?= mvn
MVN_FLAGS ?= -B -q
TESTBED_POM := test/testbed/java/pom.xml
REAL_TEST_TIMEOUT ?= 30m
# The real tests' packages: the testbed's own, the whole stack
# (controller, fake operator, real Flink) in test/realstack, and the demo on
# real Flink (test/demo, a long run). -p 1 runs them one package at a time,
# never two stacks at once.
REAL_TEST_PKGS := ./test/testbed/ ./test/realstack/ ./test/demo/

.PHONY: test
test: $(TEST_DEPS) test-java ## Run all tests: Java, Go with the race detector, record conservation, then real Flink and Kafka
	$(GO) test -race -count=1 $(if $(GO_TEST_FLAGS),$(GO_TEST_FLAGS) )./...
	$(GO) test -count=1 -timeout 30m -run '^TestEveryScenarioConservesRecords$$' ./test/bench/
	FLINKSCALE_REAL=1 $(GO) test -p 1 -count=1 -timeout $(REAL_TEST_TIMEOUT) -v -run '^TestReal' $(REAL_TEST_PKGS)

.PHONY: test-java
test-java: ## Build the testbed's workload for Flink 1.20 and 2.x and run its JUnit tests (Maven)
	$(MVN) $(MVN_FLAGS) -f $(TESTBED_POM) -P flink-1.20 package
	$(MVN) $(MVN_FLAGS) -f $(TESTBED_POM) -P flink-2 package

.PHONY: test-real
test-real: test-java flinkscale-bin ## Long runs on real Flink and Kafka: the collectors, the simulator judged against real Flink, rescales and faults end to end (FLINK=1.20|2)
	FLINKSCALE_REAL=1 FLINKSCALE_REAL_LONG=1 $(if $(FLINK),FLINKSCALE_TESTBED_FLINK=$(FLINK) )$(GO) test -p 1 -count=1 -timeout 90m -v -run '^TestReal|^TestFidelity' $(REAL_TEST_PKGS)

# SCENARIO and FLINK for `make testbed`; TESTBED_ARGS are more flags.
SCENARIO ?= test/testbed/scenarios/saturate-step.yaml
FLINK ?=
TESTBED_ARGS ?=
.PHONY: testbed
testbed: flinkscale-bin ## Play SCENARIO on real Flink (FLINK=1.20|2) and Kafka until it ends or Ctrl-C [TESTBED_ARGS=...]
	$(BIN)/flinkscale testbed --scenario $(SCENARIO) $(if $(FLINK),--flink $(FLINK) )$(TESTBED_ARGS)

BENCH ?= .
BENCH_PKGS ?= ./scaling/... ./test/sim/... ./metrics/...
BENCH_PLOTS ?= docs/benchmarks
BENCH_FLAGS ?=
# The rival of `make bench-real`: the Flink Kubernetes Operator's standalone
# autoscaler. Maven Central does not serve flink-autoscaler-standalone, so it
# is built from the operator's release tag (its dependencies come from Maven
# Central) out of a clone named by OPERATOR_SRC (a work tree or a bare git
# directory). Cached in bin/rival; never committed.
RIVAL_RELEASE ?= 1.15.0
RIVAL_JAR := $(BIN)/rival/flink-autoscaler-standalone-$(RIVAL_RELEASE).jar
OPERATOR_SRC ?=
.PHONY: rival-jar
rival-jar: $(RIVAL_JAR) ## Build the Flink operator's standalone autoscaler $(RIVAL_RELEASE) from OPERATOR_SRC (a clone of apache/flink-kubernetes-operator) into bin/rival
$(RIVAL_JAR):
	@test -n "$(OPERATOR_SRC)" || { echo "rival-jar: set OPERATOR_SRC to a clone of apache/flink-kubernetes-operator (Maven Central does not serve flink-autoscaler-standalone)"; exit 2; }
	rm -rf $(BIN)/rival/src-$(RIVAL_RELEASE) && mkdir -p $(BIN)/rival/src-$(RIVAL_RELEASE)
	git --git-dir="$$(git -C "$(OPERATOR_SRC)" rev-parse --absolute-git-dir)" archive release-$(RIVAL_RELEASE) | tar -x -C $(BIN)/rival/src-$(RIVAL_RELEASE)
	cd $(BIN)/rival/src-$(RIVAL_RELEASE) && mvn -B -q -pl flink-autoscaler-standalone -am package -DskipTests \
		-Dspotless.check.skip -Dspotless.apply.skip -Dcheckstyle.skip -Drat.skip -Denforcer.skip -Djapicmp.skip
	cp $(BIN)/rival/src-$(RIVAL_RELEASE)/flink-autoscaler-standalone/target/flink-autoscaler-standalone-$(RIVAL_RELEASE).jar $@

.PHONY: bench bench-go bench-scale
bench: ## Compare flinkscale, the Flink operator's autoscaler, KEDA, static and the oracle on the scenario library (charts in BENCH_PLOTS)
	$(GO) run ./cmd/flinkscale bench --plot $(BENCH_PLOTS) $(BENCH_FLAGS)

.PHONY: bench-real
bench-real: $(KUBE_APISERVER) $(ETCD) $(RIVAL_JAR) ## Race flinkscale, the Flink operator's standalone autoscaler (real jar) and no autoscaler on real Flink 1.20 and Kafka, on the compressed scenarios of test/scenarios/real (~45 min; charts in BENCH_PLOTS/real)
	$(GO) run ./cmd/flinkscale bench --real --plot $(BENCH_PLOTS)/real $(BENCH_FLAGS)

bench-go: ## Run the Go benchmarks of the model, the simulator and the collectors (BENCH=regexp, BENCH_PKGS=packages)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(BENCH_PKGS)

JOBS ?= 1000
DURATION ?= 5m
WARMUP ?= 5m
FAULTY ?= 0
REPLICAS ?= 1
KILL_AFTER ?= 0s
bench-scale: envtest-bins ## Controller cost with 1,000 FlinkDeployments at a 30 s polling interval (JOBS=, DURATION=, FAULTY=0.1 for failing Flink endpoints, REPLICAS=2 KILL_AFTER=150s for shards and a crashed replica)
	$(GO) run ./cmd/flinkscale bench-scale --jobs $(JOBS) --duration $(DURATION) --warmup $(WARMUP) --faulty $(FAULTY) --replicas $(REPLICAS) --kill-after $(KILL_AFTER)

# Fuzz targets: every `func FuzzXxx(` in a *_test.go file of the module
# (bin/, hack/ and testdata/ aside), found with grep so that new targets are
# run without listing them here. One `go test -fuzz` per target: Go fuzzes
# one target per invocation.
FIND_FUZZ_TARGETS := grep -rE --include='*_test.go' --exclude-dir=bin --exclude-dir=hack --exclude-dir=testdata --exclude-dir=.git \
  -o '^func Fuzz[A-Za-z0-9_]+\(' . | sed -E 's|^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]+)\($$|./\1 \2|' | sort -u

# $(call run-fuzz,<fuzztime>): run every target for fuzztime with
# hack/fuzz.sh; stop at the first failure, naming the package and the target
# (the failing input is in <package>/testdata/fuzz/<target>/: commit it as a
# regression seed). The script runs a target again when Go's fuzzing
# coordinator reports its end-of-run deadline race with no failing input
# (go.dev/issue/75804, not fixed in Go 1.26).
define run-fuzz
@$(FIND_FUZZ_TARGETS) | GO="$(GO)" hack/fuzz.sh $(1) $(FUZZ_FLAGS)
endef

FUZZTIME ?= 30s
FUZZTIME_CI ?= 5s
# Extra go test flags for the fuzz runs. The default bounds the minimization
# of each new interesting input (60 s by default) to 5 s: the targets that
# run a collection over HTTP (FuzzCollect, FuzzPromQLResponses) find new
# coverage often and otherwise spend most of the run minimizing.
FUZZ_FLAGS ?= -fuzzminimizetime=5s
.PHONY: fuzz fuzz-ci fuzz-list
fuzz: ## Run every Fuzz* target of the module for FUZZTIME each (default 30s)
	$(call run-fuzz,$(FUZZTIME))

fuzz-ci: ## Run every Fuzz* target for FUZZTIME_CI each (default 5s; what CI runs after make test)
	$(call run-fuzz,$(FUZZTIME_CI))

fuzz-list: ## List the fuzz targets fuzz and fuzz-ci run (package and name)
	@$(FIND_FUZZ_TARGETS)

##@ Generate

# controller-gen writes the deepcopy functions (api/**/zz_generated.deepcopy.go)
# and the CRDs (config/crd). allowDangerousTypes: the API keeps float64
# fractions (utilization, step factors) with the same meaning as
# scaling.Policy; see api/v1alpha1/groupversion_info.go.
CRD_OPTIONS ?= crd:allowDangerousTypes=true

.PHONY: generate
generate: controller-gen ## Generate deepcopy code (api/), CRDs (config/crd), the RBAC role (config/rbac) and the chart's CRDs
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) $(CRD_OPTIONS) paths=./api/... output:crd:artifacts:config=config/crd
	$(GO) run ./hack/apidocs
	$(CONTROLLER_GEN) rbac:roleName=flinkscale-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac
	@$(MAKE) --no-print-directory chart-crds

# The Helm chart ships the CRDs in crds/ (installed by `helm install`, never
# upgraded by Helm): byte-identical copies of config/crd, stale ones removed.
CHART_CRDS := charts/flinkscale/crds
.PHONY: chart-crds
chart-crds: ## Copy config/crd/*.yaml into the Helm chart (charts/flinkscale/crds)
	@mkdir -p $(CHART_CRDS)
	@rm -f $(CHART_CRDS)/*.yaml
	cp config/crd/*.yaml $(CHART_CRDS)/

# Paths `make generate` writes, checked by verify-generate.
GENERATED_PATHS := api config $(CHART_CRDS) docs/reference.md

.PHONY: verify-generate
verify-generate: generate ## Fail if `make generate` changes or adds files under api/, config/ or charts/flinkscale/crds
	@git diff --exit-code -- $(GENERATED_PATHS) || { echo "generated files are stale: run 'make generate' and commit the result"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- $(GENERATED_PATHS)); \
	if [[ -n "$$untracked" ]]; then \
	  echo "untracked files under $(GENERATED_PATHS) (run 'make generate' and commit them):"; echo "$$untracked"; exit 1; \
	fi

##@ Code quality

# Go files to format-check: everything but bin/, .git/, vendor/ and testdata/.
FIND_GO_FILES := find . \( -path ./bin -o -path ./.git -o -path ./vendor -o -name testdata \) -prune -o -name '*.go' -type f -print0

.PHONY: lint-fast
lint-fast: ## Cheap checks (what CI runs): gofmt -s check, go vet, go.mod tidy
	@unformatted=$$($(FIND_GO_FILES) | xargs -0 -r gofmt -s -l); \
	if [[ -n "$$unformatted" ]]; then \
	  echo "gofmt -s would change these files (run 'make fmt'):"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) vet -tags controller ./cmd/flinkscale
	$(GO) mod tidy -diff

.PHONY: lint
lint: lint-fast ## lint-fast, then golangci-lint (if it builds here)
	@if $(MAKE) --no-print-directory golangci-lint; then \
	  echo "$(GOLANGCI_LINT) run ./..."; \
	  $(GOLANGCI_LINT) run ./...; \
	else \
	  echo "!! SKIPPING golangci-lint: $(GOLANGCI_LINT_VERSION) did not build with $$($(GO) env GOVERSION) (see above); gofmt and go vet passed."; \
	fi

.PHONY: fmt
fmt: ## Format all Go files (gofmt -s -w)
	@$(FIND_GO_FILES) | xargs -0 -r gofmt -s -w

.PHONY: tidy
tidy: ## go mod tidy the project module and every tools module
	$(GO) mod tidy
	@for d in $(TOOLS)/*/; do \
	  [[ -f $$d/go.mod ]] || continue; \
	  echo "go mod tidy ($$d)"; (cd $$d && GOWORK=off $(GO) mod tidy); \
	done

.PHONY: tidy-check
tidy-check: ## Fail if go.mod/go.sum of the project or a tools module is not tidy
	$(GO) mod tidy -diff
	@for d in $(TOOLS)/*/; do \
	  [[ -f $$d/go.mod ]] || continue; \
	  (cd $$d && GOWORK=off $(GO) mod tidy -diff) || { echo "not tidy: $$d (make tidy)"; exit 1; }; \
	done

##@ Tools (built from source into bin/, cached)

.PHONY: tools
tools: controller-gen golangci-lint envtest-bins ## controller-gen + golangci-lint + envtest-bins

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## bin/controller-gen (sigs.k8s.io/controller-tools)
$(CONTROLLER_GEN): $(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION)
	$(call link-tool,$<,$@)
CONTROLLER_GEN_FLAGS := -ldflags '-s -w -X sigs.k8s.io/controller-tools/pkg/version.version=$(CONTROLLER_TOOLS_VERSION)'
$(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION): $(TOOLS)/controller-gen/go.mod $(TOOLS)/controller-gen/go.sum
	@rm -f $(CONTROLLER_GEN)-v*
	$(call build-tool,controller-gen,sigs.k8s.io/controller-tools/cmd/controller-gen,$@,$(CONTROLLER_GEN_FLAGS))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## bin/golangci-lint (v2)
$(GOLANGCI_LINT): $(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION)
	$(call link-tool,$<,$@)
# golangci-lint takes its version from these (as goreleaser sets them).
GOLANGCI_LINT_FLAGS := -ldflags '-s -w -X main.version=$(GOLANGCI_LINT_VERSION:v%=%) -X main.commit=$(GOLANGCI_LINT_VERSION) -X main.date=n/a'
$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION): $(TOOLS)/golangci-lint/go.mod $(TOOLS)/golangci-lint/go.sum
	@rm -f $(GOLANGCI_LINT)-v*
	$(call build-tool,golangci-lint,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$@,$(GOLANGCI_LINT_FLAGS))

.PHONY: helm
helm: $(HELM) ## bin/helm (not part of `make tools`)
$(HELM): $(HELM)-$(HELM_VERSION)
	$(call link-tool,$<,$@)
# The k8s version ldflags are what helm's own Makefile sets: the default
# .Capabilities.KubeVersion for `helm template`/`helm lint` (else 1.20).
HELM_K8S_MINOR := $(word 2,$(subst ., ,$(HELM_K8S_VERSION)))
HELM_FLAGS := -ldflags '-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  $(foreach p,helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules,-X $(p).k8sVersionMajor=1 -X $(p).k8sVersionMinor=$(HELM_K8S_MINOR))'
$(HELM)-$(HELM_VERSION): $(TOOLS)/helm/go.mod $(TOOLS)/helm/go.sum
	@rm -f $(HELM)-v*
	$(call build-tool,helm,helm.sh/helm/v3/cmd/helm,$@,$(HELM_FLAGS))

.PHONY: envtest-bins
envtest-bins: $(KUBE_APISERVER) $(ETCD) $(KUBECTL) ## bin/k8s/{kube-apiserver,etcd,kubectl} for envtest (~6 min cold on 2 cores)

$(KUBE_APISERVER): $(KUBE_APISERVER)-$(KUBERNETES_VERSION)
	$(call link-tool,$<,$@)
# Tags and version ldflags as in Kubernetes' hack/lib/golang.sh and version.sh.
KUBERNETES_MINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
KUBERNETES_VERSION_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBERNETES_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBERNETES_MINOR))
KUBE_APISERVER_FLAGS := -tags selinux$(comma)notest$(comma)grpcnotrace -ldflags '-s -w $(KUBERNETES_VERSION_LDFLAGS)'
$(KUBE_APISERVER)-$(KUBERNETES_VERSION): $(TOOLS)/k8s/go.mod $(TOOLS)/k8s/go.sum
	@rm -f $(KUBE_APISERVER)-v*
	$(call build-tool,k8s,k8s.io/kubernetes/cmd/kube-apiserver,$@,$(KUBE_APISERVER_FLAGS))

$(KUBECTL): $(KUBECTL)-$(KUBERNETES_VERSION)
	$(call link-tool,$<,$@)
KUBECTL_FLAGS := -ldflags '-s -w $(KUBERNETES_VERSION_LDFLAGS)'
$(KUBECTL)-$(KUBERNETES_VERSION): $(TOOLS)/k8s/go.mod $(TOOLS)/k8s/go.sum
	@rm -f $(KUBECTL)-v*
	$(call build-tool,k8s,k8s.io/kubernetes/cmd/kubectl,$@,$(KUBECTL_FLAGS))

$(ETCD): $(ETCD)-$(ETCD_VERSION)
	$(call link-tool,$<,$@)
ETCD_FLAGS := -ldflags '-s -w'
$(ETCD)-$(ETCD_VERSION): $(TOOLS)/etcd/go.mod $(TOOLS)/etcd/go.sum
	@rm -f $(ETCD)-v*
	$(call build-tool,etcd,go.etcd.io/etcd/server/v3,$@,$(ETCD_FLAGS))

##@ Image

# The controller image the Helm chart runs (docs/helm.md), built without a
# container engine: a static binary (-tags controller: the controller's
# commands only) and hack/image, which puts it FROM scratch with
# /etc/passwd, /etc/group, /home/nonroot and /tmp (user 65532) and writes
# bin/image/flinkscale.tar, an OCI layout that is also a docker-save archive
# (docker/podman load, kind load image-archive, ctr images import, skopeo
# oci-archive:, crane push), and its digest in bin/image/flinkscale.digest.
# Reproducible: the created time is SOURCE_DATE_EPOCH, else HEAD's commit
# time, so the same commit and Go release give the same digest. test/image
# builds it in `make test`.
#
# The default IMAGE is the chart's default image: image.repository and, as
# tag, the chart's appVersion.
CHART_APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/flinkscale/Chart.yaml)
IMAGE ?= ghcr.io/flinkscale/flinkscale:$(CHART_APP_VERSION)
# The image's platform, linux and the Go toolchain's architecture by
# default (IMAGE_ARCH=arm64 for arm64 nodes: Go cross-compiles).
IMAGE_OS ?= linux
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
# What `flinkscale version` prints (main.version) and the image's version
# label: the git description of HEAD, "dev" outside a git checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_DIR := $(BIN)/image

HACK_IMAGE = $(GO) run ./hack/image --binary $(IMAGE_DIR)/flinkscale-bin --image $(IMAGE) --version $(VERSION) \
  --os $(IMAGE_OS) --arch $(IMAGE_ARCH) --out $(IMAGE_DIR)/flinkscale.tar

.PHONY: image image-push image-bin
image: image-bin ## Build the controller image IMAGE (default: the chart's) into bin/image/flinkscale.tar, no Docker needed [IMAGE_ARCH=arm64]
	$(HACK_IMAGE)

image-push: image-bin ## Build the image, then push it to IMAGE (credentials from the docker config: docker login or crane auth login)
	$(HACK_IMAGE) --push

image-bin:
	@mkdir -p $(IMAGE_DIR)
	CGO_ENABLED=0 GOOS=$(IMAGE_OS) GOARCH=$(IMAGE_ARCH) $(GO) build -tags controller -trimpath \
	  -ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_DIR)/flinkscale-bin ./cmd/flinkscale

##@ Housekeeping

.PHONY: clean
clean: ## Remove build and test outputs (keeps the cached tools in bin/)
	rm -f $(BIN)/flinkscale $(BIN)/kubectl-flinkscale $(BIN)/kubectl_complete-flinkscale cover*.out coverage.* *.prof *.test
	rm -rf $(BIN)/image

.PHONY: distclean
distclean: clean ## clean, and also remove every cached tool (all of bin/)
	rm -rf $(BIN)

.PHONY: help
help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@awk 'BEGIN { FS = ":.*## " } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5); next } \
	  /^[a-zA-Z0-9_-]+:.*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Pinned tools (hack/tools/*/go.mod): controller-gen $(CONTROLLER_TOOLS_VERSION), golangci-lint $(GOLANGCI_LINT_VERSION),"
	@echo "  helm $(HELM_VERSION), kube-apiserver $(KUBERNETES_VERSION), etcd $(ETCD_VERSION)"
	@echo "Variables: FUZZTIME=$(FUZZTIME) BENCH=$(BENCH) TEST_DEPS=$(TEST_DEPS) KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS)"
