#!/usr/bin/env bash
# Jaeger v1's own storage integration suite for gRPC storage plugins
# (TestGRPCStorage of github.com/jaegertracing/jaeger v1.57.0,
# plugin/storage/integration), run UNCHANGED against clt-storage as Jaeger's
# go-plugin sidecar (--grpc-storage-plugin.binary): span store, large spans,
# FindTraces cases, archive. Every case must pass. No fixed ports: the suite
# talks to the plugin over go-plugin's socket.
#
# The suite's package needs test-only modules, so it runs from a scratch copy
# of tools/jaeger-v157's go.mod under .cache/ (the tools module stays as is).
# Each of the suite's clean-ups restarts the plugin, so the plugin runs on an
# in-memory store, with the unary writer as upstream's TestGRPCStorage does
# (the in-memory store refuses values over 64 KiB, which a streamed batch of
# the suite's 10,008-span trace exceeds; on disk they go to the value log).
#
# Env: INTEGRATION_TIMEOUT (default 15m).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.cache/integration-v1
VERSION=$(cd tools/jaeger-v157 && go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
PKG=github.com/jaegertracing/jaeger/plugin/storage/integration
TIMEOUT=${INTEGRATION_TIMEOUT:-15m}
log() { echo "integration-v1: $*"; }
die() { echo "integration-v1: FAIL: $*" >&2; exit 1; }

mkdir -p "$WORK/mod"
log "building clt-storage"
go build -o "$WORK/clt-storage" ./plugin/cmd/clt-storage
cat >"$WORK/clt-storage.yaml" <<YAML
storage:
  listen: 127.0.0.1:0
collector:
  listen: ""
admin:
  listen: ""
store:
  in_memory: true
archive:
  enabled: true
log:
  level: warn
YAML
cp tools/jaeger-v157/go.mod tools/jaeger-v157/go.sum "$WORK/mod/"
sed -i 's|^module .*|module clt-integration-v1|; /^tool /d' "$WORK/mod/go.mod"
(cd "$WORK/mod" && GOFLAGS=-mod=mod go get -t "$PKG@$VERSION" >/dev/null 2>&1) || die "go get $PKG@$VERSION"

log "running TestGRPCStorage (jaeger $VERSION) against clt-storage as its plugin"
set +e
(cd "$WORK/mod" && STORAGE=grpc PLUGIN_BINARY_PATH="$WORK/clt-storage" PLUGIN_CONFIG_PATH="$WORK/clt-storage.yaml" \
  nice -n 10 go test -count=1 -v -timeout "$TIMEOUT" -run 'TestGRPCStorage$' "$PKG") 2>&1 | tee "$WORK/test.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -c -- '--- PASS' "$WORK/test.log" || true)
failed=$(grep -c -- '--- FAIL' "$WORK/test.log" || true)
skipped=$(grep -c -- '--- SKIP' "$WORK/test.log" || true)
log "$passed passed, $failed failed, $skipped skipped (log: $WORK/test.log)"
[ "$rc" -eq 0 ] || die "go test exited $rc"
[ "$failed" -eq 0 ] || die "$failed case(s) failed"
grep -q -- '--- PASS: TestGRPCStorage ' "$WORK/test.log" || die "TestGRPCStorage did not run"
log "OK"
