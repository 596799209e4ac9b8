# Cross Layer Telemetry. `make test` is what CI runs (as root): everything.
SHELL := /bin/bash
GO ?= go
ROOT := $(CURDIR)
CACHE := $(ROOT)/.cache
BIN := $(CACHE)/bin
JAEGER_BIN ?= $(BIN)/jaeger
FUZZTIME ?= 10s
export JAEGER_BIN

.PHONY: all build test test-unit test-unit-nojaeger test-unit-jaeger integration fuzz fuzz-short lint lint-tools proto proto-tools jaeger chromium conformance e2e demo bench bench-storage clean conformance-upstream

all: build

## build: compile every package and the binaries into .cache/bin
build:
	$(GO) build ./...
	$(GO) build -o $(BIN)/clt-storage ./plugin/cmd/clt-storage
	$(GO) build -o $(BIN)/clt-agent ./agent/cmd/clt-agent

## test: everything CI must run: lint, unit (race), privileged namespace tests,
## fuzz replay + a short fuzz pass, Jaeger's conformance suite, end-to-end.
test: lint test-unit integration fuzz-short conformance conformance-upstream e2e

## test-unit: all packages with the race detector; the privileged namespace tests
## are left to `integration`. Only the packages in JAEGER_UNIT_PKGS run the real
## Jaeger binary, so only they wait on `make jaeger`.
MODULE := github.com/cross-layer-telemetry/clt
JAEGER_UNIT_PKGS := ./examples/demo/internal/stack
test-unit: test-unit-nojaeger test-unit-jaeger

test-unit-nojaeger:
	$(GO) test -race -count=1 -skip 'TestIntegration|TestSoakHeapFlat' $$($(GO) list ./... | grep -vxF $(foreach p,$(JAEGER_UNIT_PKGS),-e $(MODULE)/$(p:./%=%)))

test-unit-jaeger: jaeger
	$(GO) test -race -count=1 -skip 'TestIntegration' $(JAEGER_UNIT_PKGS)

## integration: privileged network-namespace tests (root); fail rather than skip
integration:
	CLT_REQUIRE_PRIVILEGED=1 $(GO) test -count=1 -run 'TestIntegration' ./kernel/... ./agent/...

## fuzz: each fuzz target for FUZZTIME (default 10s)
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz-short:
	FUZZTIME=5s ./scripts/fuzz.sh

## lint: gofmt, go vet and staticcheck (config: staticcheck.conf), with
## `-tags e2e` so the end-to-end test files are checked too; the second
## staticcheck pass leaves the tests out, so code only tests use counts as
## unused; then the layout rules of docs/contracts.md (internal/boundaries);
## bpf-check (below) adds the eBPF object check
lint: lint-tools
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/jaeger/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(STATICCHECK) -tags e2e ./...
	$(STATICCHECK) -tags e2e -tests=false -checks U1000 ./...
	$(GO) test -count=1 ./internal/boundaries

## lint-tools: staticcheck, pinned, built once into .cache/bin (the version is in
## the file name, so changing the pin rebuilds it)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)
lint-tools: $(STATICCHECK)

$(STATICCHECK):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $@

## proto: regenerate committed stubs with the tools of proto-tools
proto: proto-tools
	./scripts/proto.sh

## proto-tools: protoc (Debian's protobuf-compiler, apt) and the pinned Go plugins
## protoc-gen-go and protoc-gen-go-grpc in .cache/bin (versions in the file
## names, so changing a pin rebuilds); each is installed once
PROTOC_GEN_GO_VERSION := v1.36.10
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOC_GEN_GO := $(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
export PROTOC_GEN_GO PROTOC_GEN_GO_GRPC
proto-tools: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	@command -v protoc >/dev/null || { echo "proto-tools: installing protoc (apt)"; apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }

$(PROTOC_GEN_GO):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	mv $(BIN)/protoc-gen-go $@

$(PROTOC_GEN_GO_GRPC):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	mv $(BIN)/protoc-gen-go-grpc $@

## jaeger: build the real Jaeger v2.13.0 (module v1.76.0) once into .cache/bin
jaeger: $(JAEGER_BIN)

$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	mkdir -p $(BIN)
	cd tools/jaeger && $(GO) build -o $(BIN)/jaeger.tmp github.com/jaegertracing/jaeger/cmd/jaeger
	mv $(BIN)/jaeger.tmp $(BIN)/jaeger

## conformance: Jaeger's own TestGRPCStorage against clt-storage
conformance: jaeger
	./scripts/conformance.sh

## conformance-upstream: the same suite with clt-storage in upstream mode over a
## Jaeger remote_storage tier on its memory backend (over badger, Jaeger's
## badger lacks span kinds in GetOperations, jaeger#1922: CONFORMANCE_BACKEND=badger
## shows it)
conformance-upstream: jaeger
	CONFORMANCE_MODE=upstream ./scripts/conformance.sh

## chromium: the system browser the UI end-to-end test drives (Debian's package)
chromium:
	@command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }

## e2e: real Jaeger v2 + clt-storage (+ the namespace demo scenario, one shot,
## and the real jaeger-ui in headless Chromium when JAEGER_UI_ASSETS or
## ../shared/jaeger-ui/build is there)
e2e: jaeger chromium
	CLT_REQUIRE_PRIVILEGED=1 $(GO) test -count=1 -tags e2e -timeout 20m ./plugin/e2e/... ./examples/demo/...

## demo: the one-command demo; Jaeger stays up on :16686 until Ctrl-C
demo: jaeger
	$(GO) build -o $(BIN)/clt-demo ./examples/demo
	$(BIN)/clt-demo $(DEMO_FLAGS)

## bench: micro-benchmarks of the wire format and the store
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./kernel/... ./ioamstore/... ./agent/...

## bench-storage: side-by-side Jaeger-badger vs clt-storage (see docs/benchmarks.md)
bench-storage: jaeger
	./scripts/bench-storage.sh

## bench-scale: the scale curve, Jaeger-badger vs clt-storage at 1M / 5M / 10M
## stored spans (SCALE_SIZES), each backend bounded by SCALE_BUDGET seconds
## (1800); see docs/benchmarks.md "Scale curve". Not part of `make test`.
.PHONY: bench-scale
bench-scale: jaeger
	./scripts/bench-scale.sh

clean:
	rm -rf $(CACHE)

## bpf: rebuild the committed eBPF object of kernel/bpfinsert with Debian's
## clang 14 (bpf-tools installs clang, llvm and libbpf-dev when missing)
BPF_DIR := kernel/bpfinsert/bpf
BPF_OBJ := $(BPF_DIR)/insert_bpfel.o
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I/usr/include/$(shell uname -m)-linux-gnu -fdebug-prefix-map=$(ROOT)=.
BPF_CLANG_MAJOR := 14
# bpf_build: compile the source into $(1) and strip its DWARF (BTF stays)
bpf_build = clang $(BPF_CFLAGS) -c $(BPF_DIR)/insert.bpf.c -o $(1) && llvm-strip -g $(1)
.PHONY: bpf bpf-tools bpf-check
bpf-tools:
	@command -v clang >/dev/null && command -v llvm-strip >/dev/null && test -f /usr/include/bpf/bpf_helpers.h || \
		{ apt-get update && apt-get install -y clang llvm libbpf-dev; }
	@v=$$(clang -dumpversion); [ "$${v%%.*}" = "$(BPF_CLANG_MAJOR)" ] || \
		{ echo "bpf-tools: clang $$v found; the committed object is built with clang $(BPF_CLANG_MAJOR) (Debian 12's)"; exit 1; }
bpf: bpf-tools
	$(call bpf_build,$(BPF_OBJ))

## bpf-check (part of lint): the committed object is exactly what `make bpf`
## builds from the committed source; rebuilt in a temporary directory
bpf-check: bpf-tools
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(call bpf_build,$$tmp/insert_bpfel.o) && \
		if ! cmp -s $$tmp/insert_bpfel.o $(BPF_OBJ); then \
			echo "bpf-check: $(BPF_OBJ) differs from what $(BPF_DIR)/insert.bpf.c builds ($$(clang --version | head -1)):"; \
			echo "bpf-check: run 'make bpf' and commit the object with its source"; exit 1; \
		fi
lint: bpf-check

## integration-deps: tools the privileged tests drive (kernel/bpfinsert runs
## curl, python3's http.client and ethtool inside namespaces)
.PHONY: integration-deps
integration-deps:
	@command -v curl >/dev/null && command -v ethtool >/dev/null && command -v python3 >/dev/null || \
		{ apt-get update && apt-get install -y curl ethtool python3; }
integration: integration-deps
## jaeger-v1: the real Jaeger v1.76.0 all-in-one (tools/jaeger-v1; the last v1
## release), built once into .cache/bin
JAEGER_V1_BIN ?= $(BIN)/jaeger-v1
export JAEGER_V1_BIN
.PHONY: jaeger-v1 e2e-v1
jaeger-v1: $(JAEGER_V1_BIN)

## e2e-v1: only the Jaeger v1 end-to-end tests (v1.76 all-in-one over remote
## jaeger.storage.v1; v1.57 with clt-storage as go-plugin sidecar, embedded and
## forward), on free ports; `make e2e` runs them with the others
e2e-v1: jaeger-v1 jaeger-v157
	CLT_REQUIRE_PRIVILEGED=1 $(GO) test -count=1 -tags e2e -timeout 10m -run 'TestJaegerV1' ./plugin/e2e/
e2e: jaeger-v1 jaeger-v157

$(BIN)/jaeger-v1: tools/jaeger-v1/go.mod tools/jaeger-v1/go.sum
	mkdir -p $(BIN)
	cd tools/jaeger-v1 && nice -n 10 $(GO) build -o $(BIN)/jaeger-v1.tmp github.com/jaegertracing/jaeger/cmd/all-in-one
	mv $(BIN)/jaeger-v1.tmp $(BIN)/jaeger-v1

## jaeger-v157: the real Jaeger v1.57.0 all-in-one (tools/jaeger-v157; the last
## release with go-plugin sidecars), built once into .cache/bin
JAEGER_V157_BIN ?= $(BIN)/jaeger-v157
export JAEGER_V157_BIN
.PHONY: jaeger-v157
jaeger-v157: $(JAEGER_V157_BIN)

$(BIN)/jaeger-v157: tools/jaeger-v157/go.mod tools/jaeger-v157/go.sum
	mkdir -p $(BIN)
	cd tools/jaeger-v157 && nice -n 10 $(GO) build -o $(BIN)/jaeger-v157.tmp github.com/jaegertracing/jaeger/cmd/all-in-one
	mv $(BIN)/jaeger-v157.tmp $(BIN)/jaeger-v157

## integration-v1: Jaeger v1.57's own storage integration suite (TestGRPCStorage,
## unchanged) against clt-storage as its go-plugin sidecar; no fixed ports
.PHONY: integration-v1
integration-v1:
	./scripts/integration-v1.sh
test: integration-v1

## jaeger-v162: the real Jaeger v2.0.0-rc2 (module v1.62.0; its grpc backend speaks
## jaeger.storage.v1, as v2.0-v2.5 do), built once into .cache/bin
JAEGER_V162_BIN ?= $(BIN)/jaeger-v162
export JAEGER_V162_BIN
.PHONY: jaeger-v162
jaeger-v162: $(JAEGER_V162_BIN)
e2e-v1 e2e: jaeger-v162

$(BIN)/jaeger-v162: tools/jaeger-v162/go.mod tools/jaeger-v162/go.sum
	mkdir -p $(BIN)
	cd tools/jaeger-v162 && nice -n 10 $(GO) build -o $(BIN)/jaeger-v162.tmp github.com/jaegertracing/jaeger/cmd/jaeger
	mv $(BIN)/jaeger-v162.tmp $(BIN)/jaeger-v162

## bench-v1: side-by-side ingest through Jaeger v1.76 (its own badger vs
## clt-storage over storage_v1), alternating, BENCH_V1_ROUNDS (3) each; see
## docs/benchmarks.md. Free ports only; not part of `make test`.
.PHONY: bench-v1
bench-v1: jaeger-v1
	./scripts/bench-v1.sh

## soak: clt-storage under a steady load of spans, IOAM reports and searches
## for SOAK_DURATION (5m), printing RSS, goroutines, fds and disk every
## SOAK_EVERY (30s); see docs/benchmarks.md "Memory". Not part of `make test`.
.PHONY: soak soak-guard
soak:
	./scripts/soak.sh

## soak-guard (part of `make test`): the short version (plugin TestSoakHeapFlat,
## ~60 s): the live heap's trend under a steady load must stay within 10 %. Run
## on its own, after the unit tests, so no other suite shares the cores.
soak-guard:
	$(GO) test -race -count=1 -run 'TestSoakHeapFlat' -v ./plugin/
test: soak-guard
