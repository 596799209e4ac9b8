#!/usr/bin/env bash
# Soak of clt-storage alone (no Jaeger): a steady load of OTLP spans, IOAM
# record reports and FindTraces searches for SOAK_DURATION, printing every
# SOAK_EVERY the server's RSS (and its anonymous part), Go heap, goroutines,
# open fds and disk use (plugin/internal/soak). Bounded in time; loopback and
# free ports only. Not part of `make test` (TestSoakHeapFlat is its short CI
# version).
# Env: SOAK_DURATION (5m), SOAK_EVERY (30s), SOAK_SPANS (5000/s),
# SOAK_RECORDS (1000/s), SOAK_QUERIES (5/s), SOAK_MEMORY_LIMIT_MIB
# (store.memory_limit_mib; unset: the default), SOAK_SPAN_TTL (72h).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.cache/bin
WORK=$ROOT/.cache/soak
log() { echo "soak: $*" >&2; }

mkdir -p "$BIN"
rm -rf "$WORK" && mkdir -p "$WORK"
go build -o "$BIN/clt-storage" ./plugin/cmd/clt-storage
go build -o "$BIN/soak" ./plugin/internal/soak

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
SP=$(free_port) CP=$(free_port) AP=$(free_port)
cat >"$WORK/clt-storage.yaml" <<YAML
storage: {listen: "127.0.0.1:$SP"}
collector: {listen: "127.0.0.1:$CP"}
admin: {listen: "127.0.0.1:$AP", pprof: true}
store:
  dir: $WORK/data
  span_ttl: ${SOAK_SPAN_TTL:-72h}
  record_ttl: ${SOAK_SPAN_TTL:-72h}
YAML
[ -z "${SOAK_MEMORY_LIMIT_MIB:-}" ] || echo "  memory_limit_mib: $SOAK_MEMORY_LIMIT_MIB" >>"$WORK/clt-storage.yaml"
"$BIN/clt-storage" --config "$WORK/clt-storage.yaml" 2>"$WORK/clt-storage.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$AP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
log "clt-storage pid $PID, memory_limit_mib=${SOAK_MEMORY_LIMIT_MIB:-default}, ${SOAK_DURATION:-5m} at ${SOAK_SPANS:-5000} spans/s"
"$BIN/soak" -pid "$PID" -dir "$WORK/data" -storage "127.0.0.1:$SP" -collector "127.0.0.1:$CP" \
  -metrics "http://127.0.0.1:$AP/metrics" -duration "${SOAK_DURATION:-5m}" -every "${SOAK_EVERY:-30s}" \
  -spans "${SOAK_SPANS:-5000}" -records "${SOAK_RECORDS:-1000}" -queries "${SOAK_QUERIES:-5}"
