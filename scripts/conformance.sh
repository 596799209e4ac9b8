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
# CONFORMANCE_MODE=upstream runs clt-storage in upstream mode instead, in
# front of a second Jaeger (the same binary) running the remote_storage
# extension over CONFORMANCE_BACKEND (memory, default, or badger) with the
# storage_cleaner extension for purges; that tier listens on 127.0.0.1:17281
# (storage v2 + OTLP), :17282 (purge), 127.0.0.1:17283 (health) and
# 127.0.0.1:17284 (its unused OTLP receiver).
#
# Env: JAEGER_BIN (default .cache/bin/jaeger), CONFORMANCE_TIMEOUT (default 15m),
# CONFORMANCE_MODE (embedded | upstream), CONFORMANCE_BACKEND (memory | badger).
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
MODE=${CONFORMANCE_MODE:-embedded}
BACKEND=${CONFORMANCE_BACKEND:-memory}
UPSTREAM_ADDR=127.0.0.1:17281
UPSTREAM_PURGE_PORT=17282
UPSTREAM_HEALTH=127.0.0.1:17283
UPSTREAM_OTLP=127.0.0.1:17284

log() { echo "conformance: $*"; }
die() { echo "conformance: FAIL: $*" >&2; exit 1; }

[ -x "$JAEGER_BIN" ] || die "no Jaeger binary at $JAEGER_BIN (run 'make jaeger')"
command -v curl >/dev/null || die "curl is required"

# Fixed ports the suite needs must be free, or it fails in confusing ways.
case "$MODE" in
  embedded) PORTS="" ;;
  upstream) PORTS="17281 17282 17283 17284"
    case "$BACKEND" in memory|badger) ;; *) die "CONFORMANCE_BACKEND: memory or badger, got $BACKEND" ;; esac ;;
  *) die "CONFORMANCE_MODE: embedded or upstream, got $MODE" ;;
esac
busy=""
for port in 4317 4318 16685 16686 13133 8888 17271 17270 $PORTS; do
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

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# 2. clt-storage with purge enabled, fresh data directory (upstream mode:
#    first the remote_storage tier it writes to and reads from).
log "building clt-storage"
go build -o "$CACHE/bin/clt-storage" ./plugin/cmd/clt-storage
rm -rf "$WORK/data" "$WORK/upstream-data"
UPSTREAM_YAML=""
if [ "$MODE" = upstream ]; then
  if [ "$BACKEND" = badger ]; then
    BACKEND_YAML="        badger:
          directories:
            keys: $WORK/upstream-data/keys
            values: $WORK/upstream-data/values
          ephemeral: false"
  else
    BACKEND_YAML="        memory:
          max_traces: 100000"
  fi
  cat >"$WORK/upstream.yaml" <<UPEOF
service:
  extensions: [jaeger_storage, remote_storage, storage_cleaner, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: $UPSTREAM_HEALTH
  jaeger_storage:
    backends:
      up:
$BACKEND_YAML
  remote_storage:
    endpoint: $UPSTREAM_ADDR
    storage: up
  storage_cleaner:
    trace_storage: up
    port: "$UPSTREAM_PURGE_PORT"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $UPSTREAM_OTLP
exporters:
  jaeger_storage_exporter:
    trace_storage: up
UPEOF
  log "starting the upstream tier: remote_storage over $BACKEND at $UPSTREAM_ADDR"
  OTEL_TRACES_SAMPLER=always_off "$JAEGER_BIN" --config "$WORK/upstream.yaml" >"$WORK/upstream.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 1 300); do
    curl -fsS "http://$UPSTREAM_HEALTH/status" >/dev/null 2>&1 && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/upstream.log" >&2; die "upstream Jaeger exited"; }
    [ "$i" -lt 300 ] || die "upstream Jaeger not healthy after 30s"
    sleep 0.1
  done
  UPSTREAM_YAML="upstream:
  endpoint: \"$UPSTREAM_ADDR\"
  purge_url: \"http://127.0.0.1:$UPSTREAM_PURGE_PORT/purge\"
  health_interval: 1s"
fi
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
$UPSTREAM_YAML
EOF
"$CACHE/bin/clt-storage" --config "$WORK/clt-storage.yaml" >"$WORK/clt-storage.log" 2>&1 &
PID=$!
PIDS=("$PID" "${PIDS[@]}") # clt-storage is stopped first

for i in $(seq 1 100); do
  curl -fsS "http://$ADMIN_ADDR/healthz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/clt-storage.log" >&2; die "clt-storage exited"; }
  [ "$i" -lt 100 ] || die "clt-storage not healthy after 10s"
  sleep 0.1
done
# The suite purges after each test, so start empty.
curl -fsS -X POST "http://$ADMIN_ADDR/purge" >/dev/null

# 3. The suite, unchanged.
log "running TestGRPCStorage (jaeger $JAEGER_VERSION) against clt-storage ($MODE mode${UPSTREAM_YAML:+ over $BACKEND}) at $STORAGE_ADDR"
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
