#!/usr/bin/env bash
# Side-by-side ingest benchmark through Jaeger v1 (issue 14):
#   badger) Jaeger v1.76 all-in-one with its own badger (SPAN_STORAGE_TYPE=badger)
#   clt)    the same Jaeger v1.76 -> storage_v1 remote API -> clt-storage
#           (SPAN_STORAGE_TYPE=grpc --grpc-storage.server; unary WriteSpan,
#           clt-storage's default)
#   memory) (only when named in BENCH_V1_SIDES) Jaeger v1.76 on its memory
#           store: the ceiling of any backend behind this Jaeger
#   clt-stream) (only when named) clt with storage.v1_streaming_writer: true,
#           i.e. Jaeger's streaming writer, which v1.76 loses spans on
#           (docs/jaeger.md §8): the read back shows how many
# The same load each run: Jaeger's own tracegen (jaeger v1.76.0 module) over
# OTLP gRPC into Jaeger's collector, BENCH_V1_TRACES traces per worker.
# The sides alternate (badger, clt, badger, clt, ...) BENCH_V1_ROUNDS times
# so that the load of the shared machine falls on both. Per run: spans
# sent (tracegen's count), spans saved (Jaeger's own
# jaeger_collector_spans_saved_by_svc_total{result="ok"}, the same counter
# for both sides), spans READ BACK through Jaeger's HTTP search (every span
# of the run's time range, counted by ID), stored spans/s (read back / time
# from the load's start until the saved count stopped moving), CPU seconds
# per 1k spans and peak RSS of Jaeger and of clt-storage.
#
# Everything runs on 127.0.0.1 with free ports, bounded in count and time.
# Env: JAEGER_V1_BIN, BENCH_V1_TRACES (per worker; default 5000: 200k spans
# with the defaults), BENCH_V1_ROUNDS (3), BENCH_WORKERS (4), BENCH_SPANS (9
# child spans per trace), BENCH_V1_SIDES ("badger clt"), BENCH_V1_CLT_BIN (a
# clt-storage binary to run instead of building this tree's, e.g. to
# compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
BIN=$CACHE/bin
WORK=$CACHE/bench-v1
JAEGER_V1_BIN=${JAEGER_V1_BIN:-$BIN/jaeger-v1}
TRACES=${BENCH_V1_TRACES:-5000}
ROUNDS=${BENCH_V1_ROUNDS:-3}
WORKERS=${BENCH_WORKERS:-4}
CHILD_SPANS=${BENCH_SPANS:-9}
SIDES=${BENCH_V1_SIDES:-badger clt}
HZ=$(getconf CLK_TCK)

log() { echo "bench-v1: $*" >&2; }
die() { echo "bench-v1: FAIL: $*" >&2; exit 1; }
[ -x "$JAEGER_V1_BIN" ] || die "no Jaeger v1 binary at $JAEGER_V1_BIN (run 'make jaeger-v1')"
command -v curl >/dev/null || die "curl is required"

mkdir -p "$WORK" "$BIN"
SRC=$(./scripts/jaeger-src.sh)
log "building tracegen, clt-storage, benchquery"
(cd "$SRC" && go build -o "$BIN/tracegen" ./cmd/tracegen)
CLT_BIN=${BENCH_V1_CLT_BIN:-$BIN/clt-storage}
[ -n "${BENCH_V1_CLT_BIN:-}" ] || go build -o "$CLT_BIN" ./plugin/cmd/clt-storage
go build -o "$BIN/benchquery" ./plugin/internal/benchquery

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
peak_rss_mib() { awk '/^VmHWM:/ {printf "%.0f\n", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
metric_sum() { # url metric-name-prefix [label-filter]
  curl -fsS "$1" 2>/dev/null | awk -v m="$2" -v f="${3:-}" \
    'index($1, m) == 1 && $1 !~ /^#/ && (f == "" || index($1, f) > 0) {s += $NF} END {printf "%d\n", s}'
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

stop() { # pid: SIGTERM and wait (bounded)
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

wait_http() { # url seconds
  for _ in $(seq 1 $(($2 * 10))); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

RESULTS=$WORK/results.txt
: >"$RESULTS"

run_side() { # name round
  local name=$1 round=$2 data=$WORK/$1-data
  rm -rf "$data" && mkdir -p "$data"
  local p_admin p_query p_otlp
  p_admin=$(free_port) p_query=$(free_port) p_otlp=$(free_port)
  local clt_pid="" clt_admin="" env=() args=()
  if [ "$name" = clt ] || [ "$name" = clt-stream ]; then
    local clt_grpc=127.0.0.1:$(free_port)
    clt_admin=127.0.0.1:$(free_port)
    cat >"$WORK/clt-storage.yaml" <<EOF
storage:
  listen: "$clt_grpc"
  v1_streaming_writer: $([ "$name" = clt-stream ] && echo true || echo false)
collector:
  listen: ""
admin:
  listen: "$clt_admin"
store:
  dir: "$data"
log:
  level: warn
EOF
    "$CLT_BIN" --config "$WORK/clt-storage.yaml" >"$WORK/clt-storage-$round.log" 2>&1 &
    clt_pid=$!
    PIDS+=("$clt_pid")
    wait_http "http://$clt_admin/healthz" 10 || die "clt-storage not healthy"
    env=(SPAN_STORAGE_TYPE=grpc)
    args=(--grpc-storage.server="$clt_grpc")
  elif [ "$name" = memory ]; then
    env=(SPAN_STORAGE_TYPE=memory)
  else
    env=(SPAN_STORAGE_TYPE=badger)
    args=(--badger.ephemeral=false --badger.directory-key="$data/keys" --badger.directory-value="$data/values"
      --badger.span-store-ttl=48h)
  fi
  env "${env[@]}" OTEL_TRACES_SAMPLER=always_off "$JAEGER_V1_BIN" \
    --log-level=warn \
    --admin.http.host-port=127.0.0.1:"$p_admin" \
    --collector.grpc-server.host-port=127.0.0.1:"$(free_port)" \
    --collector.http-server.host-port=127.0.0.1:"$(free_port)" \
    --collector.otlp.grpc.host-port=127.0.0.1:"$p_otlp" \
    --collector.otlp.http.host-port=127.0.0.1:"$(free_port)" \
    --query.grpc-server.host-port=127.0.0.1:"$(free_port)" \
    --query.http-server.host-port=127.0.0.1:"$p_query" \
    "${args[@]}" >"$WORK/jaeger-$name-$round.log" 2>&1 &
  local jpid=$!
  PIDS+=("$jpid")
  wait_http "http://127.0.0.1:$p_admin/" 60 || { tail -20 "$WORK/jaeger-$name-$round.log" >&2; die "jaeger v1 ($name) not healthy"; }
  local metrics=http://127.0.0.1:$p_admin/metrics

  local j0 c0=0 t0 t1 from to
  j0=$(cpu_ticks "$jpid")
  [ -n "$clt_pid" ] && c0=$(cpu_ticks "$clt_pid")
  log "$name #$round: tracegen -workers $WORKERS -spans $CHILD_SPANS -traces $TRACES (load avg $(cut -d' ' -f1-3 /proc/loadavg))"
  from=$(($(date +%s%6N) - 1000000))
  t0=$(date +%s.%N)
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$p_otlp OTEL_EXPORTER_OTLP_INSECURE=true \
    timeout 900 "$BIN/tracegen" -trace-exporter otlp-grpc -workers "$WORKERS" -spans "$CHILD_SPANS" \
    -pause 0s -traces "$TRACES" -services 1 >"$WORK/tracegen-$name-$round.log" 2>&1 || die "tracegen failed or took over 900s ($name)"
  t1=$(date +%s.%N)
  to=$(($(date +%s%6N) + 1000000)) # every span started while tracegen ran
  # Drain: until everything sent is saved, or the saved count stood still
  # for 3 s (bounded to 120 s).
  local sent=$((TRACES * WORKERS * (CHILD_SPANS + 1))) saved prev=-1 still=0 tsaved=$t1
  for _ in $(seq 1 600); do
    saved=$(metric_sum "$metrics" jaeger_collector_spans_saved_by_svc_total 'result="ok"')
    if [ "$saved" -ne "$prev" ]; then tsaved=$(date +%s.%N) still=0; else still=$((still + 1)); fi
    prev=$saved
    if [ "$saved" -ge "$sent" ] || [ "$still" -ge 15 ]; then break; fi
    sleep 0.2
  done
  local j1 c1=0 jrss crss=0 failed dropped written=0
  j1=$(cpu_ticks "$jpid")
  jrss=$(peak_rss_mib "$jpid")
  failed=$(metric_sum "$metrics" jaeger_collector_spans_saved_by_svc_total 'result="err"')
  dropped=$(metric_sum "$metrics" jaeger_collector_spans_dropped_total)
  if [ -n "$clt_pid" ]; then
    c1=$(cpu_ticks "$clt_pid")
    crss=$(peak_rss_mib "$clt_pid")
    written=$(metric_sum "http://$clt_admin/metrics" clt_storage_spans_written_total)
  fi

  log "$name #$round: reading back"
  local rb
  rb=$("$BIN/benchquery" -count -jaeger "http://127.0.0.1:$p_query" -service tracegen -label "$name" \
    -from "$from" -to "$to" -windows $((sent / (CHILD_SPANS + 1) / 500 + 1)) -timeout 15m) || die "read back failed ($name)"
  local read_back=${rb#*spans=}
  read_back=${read_back%% *}

  stop "$jpid"
  [ -n "$clt_pid" ] && stop "$clt_pid"
  PIDS=()
  python3 - "$name" "$round" "$t0" "$t1" "$tsaved" "$sent" "$failed" "$dropped" "$saved" "$read_back" "$written" \
    "$j0" "$j1" "$c0" "$c1" "$HZ" "$jrss" "$crss" >>"$RESULTS" <<'EOF'
import sys
(name, rnd, t0, t1, ts, sent, failed, drop, saved, rb, written, j0, j1, c0, c1, hz, jrss, crss) = sys.argv[1:]
t0, t1, ts = float(t0), float(t1), float(ts)
sent, failed, drop, saved, rb, written, hz = map(int, (sent, failed, drop, saved, rb, written, hz))
jcpu = (int(j1) - int(j0)) / hz
ccpu = (int(c1) - int(c0)) / hz
k = max(rb, 1) / 1000
print(f"{name} round={rnd} sent={sent} saved={saved} save_failed={failed} dropped={drop} read_back={rb}"
      + (f" clt_written={written}" if name.startswith("clt") else "")
      + f" load_s={t1-t0:.1f} stored_s={ts-t0:.1f} stored_per_s={rb/max(ts-t0,1e-9):.0f}"
      f" cpu_s_per_1k_jaeger={jcpu/k:.3f} cpu_s_per_1k_clt={ccpu/k:.3f} cpu_s_per_1k_total={(jcpu+ccpu)/k:.3f}"
      f" peak_rss_mib_jaeger={jrss} peak_rss_mib_clt={crss}")
EOF
  tail -1 "$RESULTS" >&2
}

echo "== Jaeger v1.76 side by side: tracegen $TRACES traces x $WORKERS workers, $((CHILD_SPANS + 1)) spans/trace, $ROUNDS rounds of: $SIDES"
echo "uptime at start: $(uptime)"
for round in $(seq 1 "$ROUNDS"); do
  for side in $SIDES; do
    run_side "$side" "$round"
  done
done
echo "uptime at end: $(uptime)"
cat "$RESULTS"
python3 - "$RESULTS" <<'EOF'
import sys, statistics
rates = {}
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=", 1) for x in f[1:])
    rates.setdefault(f[0], []).append(float(kv["stored_per_s"]))
    if kv["read_back"] != kv["sent"]:
        print(f"NOTE: {f[0]} round {kv['round']}: read back {kv['read_back']} of {kv['sent']} spans sent")
for name, r in rates.items():
    print(f"{name}: stored spans/s median {statistics.median(r):.0f} (runs: {', '.join(f'{x:.0f}' for x in r)})")
if "badger" in rates and "clt" in rates:
    print(f"ratio clt/badger (medians): {statistics.median(rates['clt']) / statistics.median(rates['badger']):.2f}x")
EOF
