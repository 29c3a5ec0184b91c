#!/usr/bin/env bash
# run.sh - the whole-loop benchmark (bench/README.md, "bench/loop"): N demo orders through
# `f3connect sandbox --until-done` with instant printers and no failures, cancellations or
# unmapped SKUs, on SQLite and on PostgreSQL; prints fulfilled orders/s (first order placed
# to last fulfilment), p50/p99 placed-to-fulfilled and the platform's peak RSS.
#
#   bench/loop/run.sh [--orders N] [--rate R] [--backends "sqlite postgres"] [--repeat R]
#                     [--timeout S] [--binary PATH] [--out FILE] [--quick]
#
# Builds the Release f3connect (build/) unless --binary names one. PostgreSQL runs get a
# throwaway server (scripts/test-postgres.sh; fsync and synchronous_commit checked on) and a
# fresh database per run; SQLite runs a fresh file per run. Every run must pass the
# sandbox's invariant checker, or the script fails: a figure from a broken loop is no
# figure. --quick (ctest's bench.loop_smoke): 20 orders on SQLite, no table, exit status
# only. The raw results (one JSON line per run, from --summary-json) go to FILE with --out.
# It must not touch any server or file it did not create.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
ORDERS=1000
RATE=200
BACKENDS="sqlite postgres"
REPEAT=1
TIMEOUT=900
BINARY=""
OUT=""
QUICK=0

die() {
    echo "run.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_count() {
    [[ "$1" =~ ^[1-9][0-9]{0,6}$ ]]
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick)
        QUICK=1
        shift
        continue
        ;;
    esac
    [[ $# -ge 2 ]] || usage
    case "$1" in
    --orders) ORDERS=$2 ;;
    --rate) RATE=$2 ;;
    --backends) BACKENDS=$2 ;;
    --repeat) REPEAT=$2 ;;
    --timeout) TIMEOUT=$2 ;;
    --binary) BINARY=$2 ;;
    --out) OUT=$2 ;;
    *) usage ;;
    esac
    shift 2
done
if [[ $QUICK == 1 ]]; then
    ORDERS=20
    BACKENDS=sqlite
    REPEAT=1
    TIMEOUT=300
fi
for n in "$ORDERS" "$RATE" "$REPEAT" "$TIMEOUT"; do
    is_count "$n" || die "not a positive count: '$n'"
done
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die "unknown backend '$b' (sqlite, postgres)"
done

# ---- the binary ---------------------------------------------------------------------------
if [[ -z "$BINARY" ]]; then
    BUILD="$ROOT/build"
    echo "== building f3connect (Release, $BUILD)" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target f3connect >/dev/null
    BINARY="$BUILD/f3connect"
    BUILD_TYPE=Release
else
    BUILD_TYPE="as given ($BINARY)"
fi
[[ -x "$BINARY" ]] || die "no f3connect binary at $BINARY"

WORK=$(mktemp -d /tmp/f3loop.XXXXXX)
PGDIR="$WORK/pg"
PG_STARTED=0
cleanup() {
    if [[ $PG_STARTED == 1 ]]; then
        "$ROOT/scripts/test-postgres.sh" stop "$PGDIR" >/dev/null 2>&1 || true
    fi
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib/ports.sh
. "$ROOT/scripts/lib/ports.sh"

# ---- PostgreSQL ---------------------------------------------------------------------------
if [[ " $BACKENDS " == *" postgres "* ]]; then
    command -v psql >/dev/null || die "psql is needed to create the benchmark databases"
    echo "== starting a throwaway PostgreSQL" >&2
    PG_STARTED=1
    "$ROOT/scripts/test-postgres.sh" start "$PGDIR" >&2
    ADMIN_URL=$(cat "$PGDIR/url")
    BASE_URL=${ADMIN_URL%/postgres}
    SYNC=$(psql "$ADMIN_URL" -XAtc "SHOW synchronous_commit")
    FSYNC=$(psql "$ADMIN_URL" -XAtc "SHOW fsync")
    [[ "$SYNC" == on && "$FSYNC" == on ]] ||
        die "PostgreSQL runs with synchronous_commit=$SYNC fsync=$FSYNC; the benchmark needs both on"
    PG_VERSION=$(psql "$ADMIN_URL" -XAtc "SHOW server_version")
fi

# ---- the runs -----------------------------------------------------------------------------
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
# One sandbox run on backend $1 (run number $2); its summary line is appended to RESULTS.
run_one() {
    local backend=$1 r=$2 dir="$WORK/run-$1-$2" summary="$WORK/summary-$1-$2.json"
    local db_args=()
    if [[ $backend == postgres ]]; then
        local name="f3loop_$r"
        psql "$ADMIN_URL" -XqAtc "CREATE DATABASE $name" >/dev/null
        db_args=(--database-url "$BASE_URL/$name")
    fi
    local start end port status=0
    port=$(pick_free_port) || die "no free TCP port found on 127.0.0.1"
    start=$(date +%s.%N)
    "$BINARY" sandbox --orders "$ORDERS" --until-done --rate "$RATE" --print-ms 0 \
        --print-fail-rate 0 --cancel-rate 0 --unmapped-rate 0 --seed "$r" \
        --data-dir "$dir" --port "$port" --timeout "$TIMEOUT" \
        --summary-json "$summary" "${db_args[@]}" >"$WORK/out-$backend-$r.txt" 2>&1 || status=$?
    end=$(date +%s.%N)
    if [[ $status != 0 ]]; then
        tail -n 40 "$WORK/out-$backend-$r.txt" >&2
        [[ -f "$dir/platform.log" ]] && tail -n 20 "$dir/platform.log" >&2
        die "the $backend run $r failed (exit $status): see above"
    fi
    [[ -s "$summary" ]] || die "the $backend run $r wrote no summary"
    # The summary plus the wall time of the whole run (start-up and the final check too).
    sed "s/}\$/,\"wall_s\":$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')}/" \
        "$summary" >>"$RESULTS"
    rm -rf -- "$dir"
}

for r in $(seq 1 "$REPEAT"); do
    for b in $BACKENDS; do
        echo "== $b, run $r/$REPEAT: $ORDERS orders at up to $RATE/s, instant printers" >&2
        run_one "$b" "$r"
    done
done
[[ -n "$OUT" ]] && cp -- "$RESULTS" "$OUT"
[[ $QUICK == 1 ]] && exit 0

# ---- the table ----------------------------------------------------------------------------
field() { # field NAME LINE: a number or string of the flat summary object
    sed -n "s/.*\"$1\":\"\{0,1\}\([^,}\"]*\).*/\1/p" <<<"$2"
}
printf '%-9s %6s %9s %10s %9s %9s %12s %12s %7s\n' backend orders fulfilled "orders/s" \
    "p50 ms" "p99 ms" "platform MB" "sandbox MB" "wall s"
while IFS= read -r line; do
    printf '%-9s %6s %9s %10.2f %9s %9s %12.1f %12.1f %7s\n' "$(field backend "$line")" \
        "$(field orders "$line")" "$(field fulfilled "$line")" "$(field orders_per_s "$line")" \
        "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
        "$(awk -v k="$(field platform_peak_rss_kb "$line")" 'BEGIN{print k/1024}')" \
        "$(awk -v k="$(field sandbox_peak_rss_kb "$line")" 'BEGIN{print k/1024}')" \
        "$(field wall_s "$line")"
done <"$RESULTS"
echo
echo "orders/s: fulfilled orders from the first order placed to the last fulfilment;"
echo "p50/p99: order placed in the Shopify simulator to its order.fulfilled event;"
echo "platform MB: peak RSS of the f3connect serve process; sandbox MB: the simulators' process"
echo "orders at up to $RATE/s, 1-3 line items x 1-2 copies each, 8 instant printers; build: $BUILD_TYPE"
echo "SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo '?'): WAL, synchronous=FULL (the platform's setting)"
[[ -n "${PG_VERSION:-}" ]] && echo "PostgreSQL $PG_VERSION: synchronous_commit=$SYNC fsync=$FSYNC"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
    "$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MB RAM; at the end:" \
    "$(uptime | sed 's/.*\(load average\)/\1/')"
