#!/usr/bin/env bash
# Jaeger's own storage conformance suite (TestGRPCStorage of
# github.com/jaegertracing/jaeger v1.76.0 = Jaeger v2.13.0), run UNCHANGED
# against clt-storage: every case must pass.
#
# The harness runs <module root>/cmd/jaeger/jaeger and writes into the module
# root, so it runs from a writable copy of the module source under .cache/.
# The Jaeger binary is the one `make jaeger` built (or $JAEGER_BIN). It needs
# Jaeger's fixed ports (4317, 4318, 16685, 16686, 13133, 8888) plus
# clt-storage on 127.0.0.1:17271 and its admin on 127.0.0.1:17270.
#
# Env: JAEGER_BIN (default .cache/bin/jaeger), CONFORMANCE_TIMEOUT (default 15m).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JAEGER_VERSION=$(cd tools/jaeger && go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
CACHE=$ROOT/.cache
WORK=$CACHE/conformance
JAEGER_BIN=${JAEGER_BIN:-$CACHE/bin/jaeger}
STORAGE_ADDR=127.0.0.1:17271
ADMIN_ADDR=127.0.0.1:17270
TIMEOUT=${CONFORMANCE_TIMEOUT:-15m}

log() { echo "conformance: $*"; }
die() { echo "conformance: FAIL: $*" >&2; exit 1; }

[ -x "$JAEGER_BIN" ] || die "no Jaeger binary at $JAEGER_BIN (run 'make jaeger')"
command -v curl >/dev/null || die "curl is required"

# Fixed ports the suite needs must be free, or it fails in confusing ways.
busy=""
for port in 4317 4318 16685 16686 13133 8888 17271 17270; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy="$busy $port"; fi
done
[ -z "$busy" ] || die "ports in use:$busy (another Jaeger, demo or clt-storage running?)"

mkdir -p "$WORK"
# 1. A writable copy of the Jaeger module source (downloaded if the module
#    cache is cold). The copy is rebuilt when the version changes.
SRC=$(./scripts/jaeger-src.sh)
# The harness runs ./cmd/jaeger/jaeger from the module root; the binary
# `make jaeger` built is the same cmd/jaeger of the same version.
cp "$JAEGER_BIN" "$SRC/cmd/jaeger/jaeger"

# 2. clt-storage with purge enabled, fresh data directory.
log "building clt-storage"
go build -o "$CACHE/bin/clt-storage" ./plugin/cmd/clt-storage
rm -rf "$WORK/data"
cat >"$WORK/clt-storage.yaml" <<EOF
storage:
  listen: "$STORAGE_ADDR"
collector:
  listen: ""
admin:
  listen: "$ADMIN_ADDR"
  purge: true
store:
  dir: "$WORK/data"
  block_cache_mb: 64
  memtable_mb: 16
log:
  level: warn
EOF
"$CACHE/bin/clt-storage" --config "$WORK/clt-storage.yaml" >"$WORK/clt-storage.log" 2>&1 &
PID=$!
cleanup() {
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
}
trap cleanup EXIT

for i in $(seq 1 100); do
  curl -fsS "http://$ADMIN_ADDR/healthz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/clt-storage.log" >&2; die "clt-storage exited"; }
  [ "$i" -lt 100 ] || die "clt-storage not healthy after 10s"
  sleep 0.1
done
# The suite purges after each test, so start empty.
curl -fsS -X POST "http://$ADMIN_ADDR/purge" >/dev/null

# 3. The suite, unchanged.
log "running TestGRPCStorage (jaeger $JAEGER_VERSION) against clt-storage at $STORAGE_ADDR"
set +e
(cd "$SRC" && STORAGE=grpc CUSTOM_STORAGE=true \
  REMOTE_STORAGE_ENDPOINT=$STORAGE_ADDR REMOTE_STORAGE_WRITER_ENDPOINT=$STORAGE_ADDR \
  PURGER_ENDPOINT=http://$ADMIN_ADDR/purge \
  go test -count=1 -v -timeout "$TIMEOUT" -run TestGRPCStorage ./cmd/jaeger/internal/integration/) \
  2>&1 | tee "$WORK/test.log"
rc=${PIPESTATUS[0]}
set -e

passed=$(grep -c -- '--- PASS' "$WORK/test.log" || true)
failed=$(grep -c -- '--- FAIL' "$WORK/test.log" || true)
skipped=$(grep -c -- '--- SKIP' "$WORK/test.log" || true)
log "$passed passed, $failed failed, $skipped skipped (log: $WORK/test.log, server log: $WORK/clt-storage.log)"
[ "$rc" -eq 0 ] || die "go test exited $rc"
[ "$failed" -eq 0 ] || die "$failed case(s) failed"
[ "$skipped" -eq 0 ] || die "$skipped case(s) skipped"
grep -q -- '--- PASS: TestGRPCStorage ' "$WORK/test.log" || die "TestGRPCStorage did not run"
log "OK"
