#!/usr/bin/env bash
# Side-by-side storage benchmark, one run, same load:
#   A) Jaeger v2 with its built-in badger storage
#   B) Jaeger v2 -> grpc backend -> clt-storage
# Load: Jaeger's own tracegen (built from the jaeger v1.76.0 module copy) over
# OTLP gRPC into Jaeger's receiver, for BENCH_DURATION. Reported per backend:
# spans/s accepted (Jaeger receiver) and stored, CPU seconds per 1k spans,
# query latency p50/p99 through Jaeger's HTTP API (and directly over gRPC for
# clt-storage), disk bytes per span. Then the Go benchmarks of clt-storage
# alone (Export without Jaeger, GetTraces with the IOAM join, FindTraces).
#
# Everything runs on 127.0.0.1 with free ports, bounded in time.
# Env: JAEGER_BIN, BENCH_TRACES (traces per worker; default 25000, i.e. 1M
# spans with the defaults; the same count goes to both backends),
# BENCH_DURATION (used instead of BENCH_TRACES when set, e.g. 30s),
# BENCH_WORKERS (4), BENCH_SPANS (9 child spans per trace), BENCH_QUERIES
# (200), BENCH_GO (1: also run the Go benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
BIN=$CACHE/bin
WORK=$CACHE/bench-storage
JAEGER_BIN=${JAEGER_BIN:-$BIN/jaeger}
TRACES=${BENCH_TRACES:-25000}
DURATION=${BENCH_DURATION:-}
WORKERS=${BENCH_WORKERS:-4}
CHILD_SPANS=${BENCH_SPANS:-9}
QUERIES=${BENCH_QUERIES:-200}
RUN_GO=${BENCH_GO:-1}
HZ=$(getconf CLK_TCK)

log() { echo "bench-storage: $*" >&2; }
die() { echo "bench-storage: FAIL: $*" >&2; exit 1; }
[ -x "$JAEGER_BIN" ] || die "no Jaeger binary at $JAEGER_BIN (run 'make jaeger')"
command -v curl >/dev/null || die "curl is required"

mkdir -p "$WORK" "$BIN"
SRC=$(./scripts/jaeger-src.sh)
log "building tracegen, clt-storage, benchquery"
(cd "$SRC" && go build -o "$BIN/tracegen" ./cmd/tracegen)
go build -o "$BIN/clt-storage" ./plugin/cmd/clt-storage
go build -o "$BIN/benchquery" ./plugin/internal/benchquery

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
metric_sum() { # url metric-name-prefix
  curl -fsS "$1" 2>/dev/null | awk -v m="$2" 'index($1, m) == 1 && $1 !~ /^#/ {s += $NF} END {printf "%d\n", s}'
}

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

stop() { # pid: SIGTERM and wait (bounded), so badger flushes before du
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

wait_http() { # url seconds
  for _ in $(seq 1 $(($2 * 10))); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

jaeger_config() { # backend-yaml
  cat <<EOF
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $P_METRICS
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$P_HEALTH
  jaeger_query:
    storage:
      traces: store
    http:
      endpoint: 127.0.0.1:$P_QUERY
    grpc:
      endpoint: 127.0.0.1:$P_QUERY_GRPC
  jaeger_storage:
    backends:
      store:
$1
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$P_OTLP
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: store
EOF
}

RESULTS=$WORK/results.txt
: >"$RESULTS"

run_backend() { # name
  local name=$1 data=$WORK/$1-data
  rm -rf "$data" && mkdir -p "$data"
  P_METRICS=$(free_port) P_HEALTH=$(free_port) P_QUERY=$(free_port) P_QUERY_GRPC=$(free_port) P_OTLP=$(free_port)
  local clt_pid="" clt_grpc="" stored_url stored_metric backend
  if [ "$name" = clt ]; then
    clt_grpc=127.0.0.1:$(free_port)
    local clt_admin=127.0.0.1:$(free_port)
    cat >"$WORK/clt-storage.yaml" <<EOF
storage:
  listen: "$clt_grpc"
collector:
  listen: ""
admin:
  listen: "$clt_admin"
store:
  dir: "$data"
log:
  level: warn
EOF
    "$BIN/clt-storage" --config "$WORK/clt-storage.yaml" >"$WORK/clt-storage.log" 2>&1 &
    clt_pid=$!
    PIDS+=("$clt_pid")
    wait_http "http://$clt_admin/healthz" 10 || die "clt-storage not healthy"
    backend="        grpc:
          endpoint: $clt_grpc
          tls:
            insecure: true"
    stored_url=http://$clt_admin/metrics
    stored_metric=clt_storage_spans_written_total
  else
    backend="        badger:
          directories:
            keys: $data/keys
            values: $data/values
          ephemeral: false
          ttl:
            spans: 48h"
    stored_url=http://127.0.0.1:$P_METRICS/metrics
    stored_metric=otelcol_exporter_sent_spans
  fi
  jaeger_config "$backend" >"$WORK/jaeger-$name.yaml"
  OTEL_TRACES_SAMPLER=always_off "$JAEGER_BIN" --config "$WORK/jaeger-$name.yaml" >"$WORK/jaeger-$name.log" 2>&1 &
  local jpid=$!
  PIDS+=("$jpid")
  wait_http "http://127.0.0.1:$P_HEALTH/status" 60 || { tail -20 "$WORK/jaeger-$name.log" >&2; die "jaeger ($name) not healthy"; }

  local j0 c0 t0 t1
  j0=$(cpu_ticks "$jpid")
  c0=0
  [ -n "$clt_pid" ] && c0=$(cpu_ticks "$clt_pid")
  local amount=(-traces "$TRACES")
  [ -n "$DURATION" ] && amount=(-duration "$DURATION")
  log "$name: tracegen -workers $WORKERS -spans $CHILD_SPANS ${amount[*]}"
  t0=$(date +%s.%N)
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$P_OTLP OTEL_EXPORTER_OTLP_INSECURE=true \
    timeout 900 "$BIN/tracegen" -trace-exporter otlp-grpc -workers "$WORKERS" -spans "$CHILD_SPANS" \
    -pause 0s "${amount[@]}" -services 1 >"$WORK/tracegen-$name.log" 2>&1 || die "tracegen failed or took over 900s ($name)"
  t1=$(date +%s.%N)
  # Drain: wait until the stored count stops moving (bounded to 120 s).
  local accepted stored prev=-1 tstored=$t1
  for _ in $(seq 1 240); do
    stored=$(metric_sum "$stored_url" "$stored_metric")
    accepted=$(metric_sum "http://127.0.0.1:$P_METRICS/metrics" otelcol_receiver_accepted_spans)
    if [ "$stored" -ge "$accepted" ] && [ "$stored" -eq "$prev" ]; then break; fi
    [ "$stored" -ne "$prev" ] && tstored=$(date +%s.%N)
    prev=$stored
    sleep 0.5
  done
  local j1 c1
  j1=$(cpu_ticks "$jpid")
  c1=0
  [ -n "$clt_pid" ] && c1=$(cpu_ticks "$clt_pid")

  log "$name: queries"
  local grpc_flag=()
  [ -n "$clt_grpc" ] && grpc_flag=(-grpc "$clt_grpc")
  "$BIN/benchquery" -jaeger "http://127.0.0.1:$P_QUERY" -service tracegen -label "$name" -n "$QUERIES" "${grpc_flag[@]}" >"$WORK/queries-$name.txt" ||
    die "benchquery failed ($name)"

  stop "$jpid"
  [ -n "$clt_pid" ] && stop "$clt_pid"
  PIDS=()
  local disk
  disk=$(du -sb "$data" | awk '{print $1}')
  python3 - "$name" "$t0" "$t1" "$tstored" "$accepted" "$stored" "$j0" "$j1" "$c0" "$c1" "$HZ" "$disk" >>"$RESULTS" <<'EOF'
import sys
name, t0, t1, ts, acc, st, j0, j1, c0, c1, hz, disk = sys.argv[1:]
t0, t1, ts = float(t0), float(t1), float(ts)
acc, st, hz, disk = int(acc), int(st), int(hz), int(disk)
jcpu = (int(j1) - int(j0)) / hz
ccpu = (int(c1) - int(c0)) / hz
k = max(st, 1) / 1000
print(f"{name} spans_accepted={acc} spans_stored={st} load_s={t1-t0:.1f} "
      f"accepted_per_s={acc/(t1-t0):.0f} stored_per_s={st/max(ts-t0,1e-9):.0f} "
      f"cpu_s_per_1k_jaeger={jcpu/k:.3f} cpu_s_per_1k_storage={(ccpu if name=='clt' else jcpu)/k:.3f} "
      f"cpu_s_per_1k_total={(jcpu+ccpu)/k:.3f} disk_bytes={disk} bytes_per_span={disk/max(st,1):.0f}")
EOF
  cat "$WORK/queries-$name.txt" >>"$RESULTS"
}

run_backend badger
run_backend clt
echo "== side by side (tracegen ${DURATION:-$TRACES traces} x $WORKERS workers, $((CHILD_SPANS + 1)) spans/trace, load avg $(cut -d' ' -f1-3 /proc/loadavg))"
cat "$RESULTS"
echo "(cpu_s_per_1k_storage: badger = the whole Jaeger process; clt = the clt-storage process only)"

if [ "$RUN_GO" = 1 ]; then
  echo "== clt-storage alone (Go benchmarks, loopback gRPC, real badger)"
  go test -run '^$' -bench 'Export' -benchtime 5x ./plugin/ | grep -E '^Benchmark'
  go test -run '^$' -bench 'GetTraces|FindTraces' -benchtime 300x ./plugin/ | grep -E '^Benchmark'
fi
