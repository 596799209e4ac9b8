#!/usr/bin/env bash
# Scale curve (issue 13): the same load into Jaeger v2 with its built-in
# badger storage and into Jaeger v2 -> grpc backend -> clt-storage, measured
# at growing stored sizes (SCALE_SIZES, default 1M 5M 10M spans) in one
# cumulative run per backend: ingest the spans up to the next size with
# Jaeger's tracegen over OTLP gRPC into Jaeger's receiver, wait until they
# are stored, then print one line with
#   ingest spans/s and CPU s per 1k spans of that segment (the storage
#   process: Jaeger for badger, clt-storage for clt), disk bytes per span
#   (allocated, live), RSS now / peak (VmHWM) / RssAnon of the storage
#   process, the load average,
# followed by query latencies through Jaeger's HTTP API (and direct gRPC for
# clt-storage): FindTraces by service, service + rare tag, GetTrace(s).
# A query over SCALE_QUERY_TIMEOUT is printed as a timeout (a result); a
# size not reached within SCALE_BUDGET is printed as such. At the largest
# size reached, clt-storage's CPU profile (during the last segment's load)
# and heap profile (after it) go to .cache/bench-scale/.
#
# Env: JAEGER_BIN; SCALE_SIZES ("1000000 5000000 10000000"); SCALE_BACKENDS
# ("badger clt"); SCALE_BUDGET (wall-clock seconds per backend, 1800);
# SCALE_WORKERS (4); SCALE_CLT_INGEST (jaeger: through Jaeger's receiver
# like badger; direct: tracegen straight into clt-storage's OTLP port, the
# queries still through Jaeger); SCALE_QUERIES (100 per measurement),
# SCALE_QUERY_BUDGET (30 s per measurement), SCALE_QUERY_TIMEOUT (15 s);
# SCALE_STORE_YAML (extra lines under clt-storage's store:, e.g.
# "  memory_limit_mib: 256"); SCALE_WORK (.cache/bench-scale: logs, results,
# profiles).
# Everything on 127.0.0.1 with free ports, bounded in time. Not in make test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.cache/bin
WORK=${SCALE_WORK:-$ROOT/.cache/bench-scale}
JAEGER_BIN=${JAEGER_BIN:-$BIN/jaeger}
SIZES=${SCALE_SIZES:-1000000 5000000 10000000}
BACKENDS=${SCALE_BACKENDS:-badger clt}
BUDGET=${SCALE_BUDGET:-1800}
WORKERS=${SCALE_WORKERS:-4}
INGEST=${SCALE_CLT_INGEST:-jaeger}
QUERIES=${SCALE_QUERIES:-100}
QBUDGET=${SCALE_QUERY_BUDGET:-30}
QTIMEOUT=${SCALE_QUERY_TIMEOUT:-15}
CHILD_SPANS=9 # tracegen -spans: children per trace, so 10 spans per trace
PER_TRACE=$((CHILD_SPANS + 1))
HZ=$(getconf CLK_TCK)

log() { echo "bench-scale: $*" >&2; }
die() { echo "bench-scale: FAIL: $*" >&2; exit 1; }
[ -x "$JAEGER_BIN" ] || die "no Jaeger binary at $JAEGER_BIN (run 'make jaeger')"
command -v curl >/dev/null || die "curl is required"
case $INGEST in jaeger | direct) ;; *) die "SCALE_CLT_INGEST must be jaeger or direct" ;; esac

mkdir -p "$WORK" "$BIN"
SRC=$(./scripts/jaeger-src.sh)
log "building tracegen, clt-storage, benchquery"
(cd "$SRC" && go build -o "$BIN/tracegen" ./cmd/tracegen)
go build -o "$BIN/clt-storage" ./plugin/cmd/clt-storage
go build -o "$BIN/benchquery" ./plugin/internal/benchquery

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
metric_sum() { # url metric-name-prefix
  curl -fsS "$1" 2>/dev/null | awk -v m="$2" 'index($1, m) == 1 && $1 !~ /^#/ {s += $NF} END {printf "%d\n", s}'
}
allocated() { du -s --block-size=1 "$1" | awk '{print $1}'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/'; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

stop() { # pid: SIGTERM and wait (bounded), so badger flushes before du
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
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
out() { echo "$*" | tee -a "$RESULTS"; }

run_backend() { # name
  local name=$1 data=$WORK/$1-data
  rm -rf "$data" && mkdir -p "$data"
  P_METRICS=$(free_port) P_HEALTH=$(free_port) P_QUERY=$(free_port) P_QUERY_GRPC=$(free_port) P_OTLP=$(free_port)
  local clt_pid="" clt_grpc="" clt_admin="" stored_url stored_metric backend otlp_target
  local began
  began=$(date +%s)
  if [ "$name" = clt ]; then
    clt_grpc=127.0.0.1:$(free_port)
    clt_admin=127.0.0.1:$(free_port)
    {
      cat <<EOF
storage:
  listen: "$clt_grpc"
collector:
  listen: ""
admin:
  listen: "$clt_admin"
  pprof: true
store:
  dir: "$data"
EOF
      [ -z "${SCALE_STORE_YAML:-}" ] || echo "$SCALE_STORE_YAML"
      echo "log:"
      echo "  level: warn"
    } >"$WORK/clt-storage.yaml"
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
  otlp_target=http://127.0.0.1:$P_OTLP
  local store_pid=$jpid
  if [ "$name" = clt ]; then
    store_pid=$clt_pid
    if [ "$INGEST" = direct ]; then
      otlp_target=http://$clt_grpc
      stored_url=http://$clt_admin/metrics
    fi
  fi

  local total=0 size last_size=${SIZES##* } reached=0
  for size in $SIZES; do
    local elapsed=$(($(date +%s) - began))
    local left=$((BUDGET - elapsed))
    if [ "$left" -le 10 ]; then
      out "$name size=$size not_reached budget=${BUDGET}s"
      break
    fi
    local delta=$((size - total))
    local per_worker=$((delta / (WORKERS * PER_TRACE)))
    local s0 j0 c0 t0 t1
    s0=$(metric_sum "$stored_url" "$stored_metric")
    j0=$(cpu_ticks "$jpid")
    c0=0
    [ -n "$clt_pid" ] && c0=$(cpu_ticks "$clt_pid")
    log "$name: tracegen -workers $WORKERS -traces $per_worker (to $size spans, ${left}s of budget left)"
    local prof_pid=""
    if [ -n "$clt_pid" ] && [ "$size" = "$last_size" ]; then
      # CPU profile of clt-storage under the last segment's load (30 s,
      # starting 20 s in, when compactions of the large tree run).
      (sleep 20 && curl -fsS -o "$WORK/clt-cpu-$size.pprof" "http://$clt_admin/debug/pprof/profile?seconds=30") &
      prof_pid=$!
    fi
    t0=$(date +%s.%N)
    local tg_ok=1
    OTEL_EXPORTER_OTLP_ENDPOINT=$otlp_target OTEL_EXPORTER_OTLP_INSECURE=true \
      timeout "$left" "$BIN/tracegen" -trace-exporter otlp-grpc -workers "$WORKERS" -spans "$CHILD_SPANS" \
      -pause 0s -traces "$per_worker" -services 1 >>"$WORK/tracegen-$name.log" 2>&1 || tg_ok=0
    t1=$(date +%s.%N)
    # Drain: until the stored count stops moving (bounded to 120 s); the
    # segment ends when the last span was stored.
    local stored prev tstored=$t1 accepted
    prev=$(metric_sum "$stored_url" "$stored_metric")
    for _ in $(seq 1 240); do
      sleep 0.5
      stored=$(metric_sum "$stored_url" "$stored_metric")
      if [ "$name" = clt ] && [ "$INGEST" = direct ]; then accepted=$stored; else
        accepted=$(metric_sum "http://127.0.0.1:$P_METRICS/metrics" otelcol_receiver_accepted_spans)
      fi
      if [ "$stored" -ne "$prev" ]; then tstored=$(date +%s.%N); prev=$stored; continue; fi
      [ "$stored" -ge "$accepted" ] && break
    done
    local j1 c1 disk rss hwm anon jrss
    j1=$(cpu_ticks "$jpid")
    c1=0
    [ -n "$clt_pid" ] && c1=$(cpu_ticks "$clt_pid")
    disk=$(allocated "$data")
    rss=$(status_kb "$store_pid" VmRSS) hwm=$(status_kb "$store_pid" VmHWM) anon=$(status_kb "$store_pid" RssAnon)
    jrss=$(status_kb "$jpid" VmRSS)
    total=$stored
    python3 - "$name" "$size" "$tg_ok" "$t0" "$t1" "$tstored" "$s0" "$stored" "$j0" "$j1" "$c0" "$c1" "$HZ" "$disk" "$rss" "$hwm" "$anon" "$jrss" "$(loadavg)" <<'EOF' | tee -a "$RESULTS"
import sys
(name, size, ok, t0, t1, ts, s0, st, j0, j1, c0, c1, hz, disk, rss, hwm, anon, jrss, load) = sys.argv[1:]
t0, t1, ts = float(t0), float(t1), float(ts)
s0, st, hz, disk = int(s0), int(st), int(hz), int(disk)
seg = max(st - s0, 1)
jcpu = (int(j1) - int(j0)) / hz
ccpu = (int(c1) - int(c0)) / hz
store_cpu = ccpu if name == "clt" else jcpu
mib = lambda kb: int(kb or 0) / 1024
status = "" if ok == "1" else " not_reached=budget_during_load"
print(f"{name} size={size} stored={st}{status} segment_spans={seg} "
      f"ingest_per_s={seg / max(ts - t0, 1e-9):.0f} cpu_s_per_1k_storage={store_cpu / (seg / 1000):.4f} "
      f"cpu_s_per_1k_jaeger={jcpu / (seg / 1000):.4f} disk_bytes={disk} bytes_per_span={disk / max(st, 1):.1f} "
      f"rss_mib={mib(rss):.0f} peak_rss_mib={mib(hwm):.0f} rss_anon_mib={mib(anon):.0f} jaeger_rss_mib={mib(jrss):.0f} "
      f"load={load}")
EOF
    local grpc_flag=()
    [ -n "$clt_grpc" ] && grpc_flag=(-grpc "$clt_grpc")
    log "$name: queries at $stored spans"
    "$BIN/benchquery" -jaeger "http://127.0.0.1:$P_QUERY" -service tracegen -label "$name size=$size" \
      -n "$QUERIES" -budget "${QBUDGET}s" -query-timeout "${QTIMEOUT}s" -timeout 10m \
      -window "$(($(date +%s) - began + 60))s" -id-lookback 2m -tag attr_05=val_05 "${grpc_flag[@]}" 2>&1 | tee -a "$RESULTS" ||
      out "$name size=$size benchquery failed"
    [ -n "$prof_pid" ] && { wait "$prof_pid" 2>/dev/null || true; }
    [ "$tg_ok" = 1 ] || break
    reached=$size
  done
  if [ -n "$clt_pid" ]; then
    curl -fsS -o "$WORK/clt-heap-$reached.pprof" "http://$clt_admin/debug/pprof/heap?gc=1" || true
  fi
  stop "$jpid"
  [ -n "$clt_pid" ] && stop "$clt_pid"
  PIDS=()
  out "$name after_clean_shutdown disk_bytes=$(allocated "$data") stored=$total bytes_per_span=$(python3 -c "print(f'{$(allocated "$data")/max($total,1):.1f}')") load=$(loadavg)"
  rm -rf "$data"
}

log "sizes: $SIZES; backends: $BACKENDS; budget ${BUDGET}s per backend; clt ingest: $INGEST"
for b in $BACKENDS; do run_backend "$b"; done
echo "== scale curve (tracegen -workers $WORKERS, $PER_TRACE spans/trace; clt ingest: $INGEST)"
cat "$RESULTS"
