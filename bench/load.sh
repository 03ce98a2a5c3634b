#!/usr/bin/env bash
# Load benchmark: mist-otel (verification, translation, buffer, OTLP export to a fast in-process
# sink) against a bare axum handler answering 200 to the same signed bodies, same machine, same
# run. Loopback only; every step is bounded in time.
#
#   bench/load.sh                      # 3 runs × 10 s per configuration, 32 connections
#   RUNS=5 DURATION=20 CONNECTIONS=64 bench/load.sh
#   MEMORY_BUFFER_ENV="MIST_OTEL__BUFFER__DURABLE=false" bench/load.sh   # adds configuration (c)
#   FSYNC_ALWAYS=0 bench/load.sh       # skips configuration (d), `buffer.fsync: always`
#   INGEST_ONLY=0 bench/load.sh        # skips configuration (e), the ingest-only ceiling
#
# Per run: bare at full speed, mist-otel at full speed, then both paced at half the bare
# handler's rate (the "p99 at half load" figure), and mist-otel at half its own maximum. The table and the ratio are printed at the end;
# the raw JSON lines stay in $OUT (default: a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
SAMPLES=${MIST_SAMPLES_DIR:-../shared/mist-samples}
SECRET=bench-secret-not-for-production
OUT=${OUT:-$(mktemp -d /tmp/mist-otel-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

echo "== building release binaries"
cargo build --release --locked --bin mist-otel --example loadgen
BIN=target/release/mist-otel
LG=target/release/examples/loadgen

SAMPLE_ARGS=()
for d in "$SAMPLES/webhooks" "$SAMPLES/webhooks/spec-2509.1.2" "$SAMPLES/webhooks/variants" fixtures/webhooks; do
  [ -d "$d" ] && SAMPLE_ARGS+=(--samples "$d")
done

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

stop() { # pid: SIGTERM, then wait for it (bounded)
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

load() { # label url pid [extra loadgen args...]
  local label=$1 url=$2 pid=$3; shift 3
  "$LG" run --label "$label" --url "$url" --secret "$SECRET" --pid "$pid" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    "${SAMPLE_ARGS[@]}" --out "$RESULTS" "$@" > /dev/null
}

start_mist_otel() { # label port admin_port sink_port [extra env...]; sets MIST_PID
  local label=$1 port=$2 admin=$3 sink=$4; shift 4
  local data="$OUT/data-$label-$run-$RANDOM"
  rm -rf "$data"; mkdir -p "$data"
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=info \
    MIST_WEBHOOK_SECRET="$SECRET" \
    MIST_OTEL_LISTEN="127.0.0.1:$port" MIST_OTEL_ADMIN_LISTEN="127.0.0.1:$admin" \
    MIST_OTEL_DATA_DIR="$data" \
    MIST_OTEL_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink" \
    OTEL_EXPORTER_OTLP_PROTOCOL=grpc "$@" \
    "$BIN" serve > "$OUT/$label-$run.log" 2>&1 &
  MIST_PID=$!
  PIDS+=("$MIST_PID")
  "$LG" wait "127.0.0.1:$port"
}

rate_of() { # label: the last full-speed deliveries/s of that label
  grep "\"label\":\"$1\"" "$RESULTS" | grep '"rate":null' | tail -1 \
    | sed -E 's/.*"deliveries_per_s":([0-9.]+).*/\1/'
}

echo "== machine: $(nproc) cores, $(uptime)"
for run in $(seq 1 "$RUNS"); do
  read -r P_BARE P_MIST P_ADMIN P_SINK P_MEM P_MEMADMIN P_DEAD <<< "$("$LG" ports 7 | tr "\n" " ")"
  echo "== run $run/$RUNS (load: $(cut -d' ' -f1-3 /proc/loadavg))"

  # (b) bare axum handler: the HTTP stack's own limit.
  "$LG" bare --listen "127.0.0.1:$P_BARE" > "$OUT/bare-$run.log" 2>&1 &
  BARE_PID=$!; PIDS+=("$BARE_PID")
  "$LG" wait "127.0.0.1:$P_BARE"
  load bare "http://127.0.0.1:$P_BARE/mist/webhook" "$BARE_PID"
  HALF=$(awk -v r="$(rate_of bare)" 'BEGIN { printf "%.0f", r / 2 }')
  load bare "http://127.0.0.1:$P_BARE/mist/webhook" "$BARE_PID" --rate "$HALF"
  stop "$BARE_PID"

  # (a) mist-otel, exporting to the fast sink.
  "$LG" sink --grpc "127.0.0.1:$P_SINK" > "$OUT/sink-$run.log" 2>&1 &
  SINK_PID=$!; PIDS+=("$SINK_PID")
  "$LG" wait "127.0.0.1:$P_SINK"
  # A fresh process (empty buffer, own peak RSS) for each load level.
  start_mist_otel mist-otel "$P_MIST" "$P_ADMIN" "$P_SINK"
  load mist-otel "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID"
  stop "$MIST_PID"
  start_mist_otel mist-otel "$P_MIST" "$P_ADMIN" "$P_SINK"
  load mist-otel "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID" --rate "$HALF"
  stop "$MIST_PID"
  # Also at half of mist-otel's own maximum: its latency when not overloaded, whatever the ratio.
  HALF_OWN=$(awk -v r="$(rate_of mist-otel)" 'BEGIN { printf "%.0f", r / 2 }')
  start_mist_otel mist-otel "$P_MIST" "$P_ADMIN" "$P_SINK"
  load mist-otel "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID" --rate "$HALF_OWN"
  stop "$MIST_PID"

  # (d) mist-otel with `buffer.fsync: always` (an fdatasync before every 200, shared by
  # concurrent requests): full speed, then half of its own maximum.
  if [ "${FSYNC_ALWAYS:-1}" = 1 ]; then
    start_mist_otel mist-otel-fsync-always "$P_MIST" "$P_ADMIN" "$P_SINK" MIST_OTEL__BUFFER__FSYNC=always
    load mist-otel-fsync-always "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID"
    stop "$MIST_PID"
    HALF_ALWAYS=$(awk -v r="$(rate_of mist-otel-fsync-always)" 'BEGIN { printf "%.0f", r / 2 }')
    start_mist_otel mist-otel-fsync-always "$P_MIST" "$P_ADMIN" "$P_SINK" MIST_OTEL__BUFFER__FSYNC=always
    load mist-otel-fsync-always "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID" --rate "$HALF_ALWAYS"
    stop "$MIST_PID"
  fi

  # (e) the ceiling of ingest alone: mist-otel with its exporter pointed at a closed port, so
  # every delivery is verified, checked and appended to the durable buffer, and answered, but
  # (after the first batch) none is translated or exported. Whatever the pipeline's cost, the
  # full configuration cannot beat this row. The buffer cap is raised so it never answers 503.
  if [ "${INGEST_ONLY:-1}" = 1 ]; then
    start_mist_otel mist-otel-ingest-only "$P_MIST" "$P_ADMIN" "$P_SINK" \
      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$P_DEAD" MIST_OTEL__BUFFER__MAX_BYTES=4294967296
    load mist-otel-ingest-only "http://127.0.0.1:$P_MIST/mist/webhook" "$MIST_PID"
    stop "$MIST_PID"
    rm -rf "$OUT"/data-mist-otel-ingest-only-*  # a few hundred MB of never-exported deliveries
  fi

  # (c) optional: mist-otel with the buffer in memory (env given by the caller).
  if [ -n "${MEMORY_BUFFER_ENV:-}" ]; then
    # shellcheck disable=SC2086 # a list of VAR=value words on purpose
    start_mist_otel mist-otel-membuf "$P_MEM" "$P_MEMADMIN" "$P_SINK" $MEMORY_BUFFER_ENV
    load mist-otel-membuf "http://127.0.0.1:$P_MEM/mist/webhook" "$MIST_PID"
    stop "$MIST_PID"
  fi
  stop "$SINK_PID"
  echo "   $(tail -1 "$OUT/sink-$run.log")"
done

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)); raw: $RESULTS"
"$LG" table "$RESULTS"
