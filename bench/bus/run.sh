#!/usr/bin/env bash
# run.sh - the event bus benchmark (bench/README.md): f3connect on SQLite, f3connect on
# PostgreSQL and graphile-worker on the same PostgreSQL, at each concurrency, with a table
# of events/s, p50/p99 publish->handler latency and the ratio f3connect-PG / graphile-worker.
#
#   bench/bus/run.sh [--sqlite-events N] [--pg-events N] [--concurrency "1 5 50"]
#                    [--publishers "4 16"] [--repeat R] [--rate R] [--rate-events N] [--out FILE]
#
# Every configuration (concurrency x publishing threads) runs R times, interleaved (f3connect SQLite, f3connect PostgreSQL,
# graphile-worker, then again), and the table shows the run with the median events/s and
# the range: on a shared machine one run alone says little. First a commit probe per
# backend prints what one durable one-row transaction costs on this disk. Last, a latency
# table: the same three at a fixed publish rate (--rate, default 200 events/s, below what
# each of them handles), where p50/p99 show the wake-up path instead of a backlog.
# Builds the Release bench_bus if needed, installs the peer's npm packages on demand,
# starts a throwaway PostgreSQL (scripts/test-postgres.sh: fsync and synchronous_commit on,
# checked here again) and stops it at the end. Every f3connect/graphile-worker run gets a
# fresh database (SQLite: a temporary file). The raw results (one JSON line per run) go
# to FILE when --out is given. It must not touch any server or file it did not create.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
SQLITE_EVENTS=10000
PG_EVENTS=5000
CONCURRENCY="1 5 50"
PUBLISHERS="4 16"
REPEAT=3
RATE=200
RATE_EVENTS=600
PROBE_COMMITS=1000
OUT=""

die() {
    echo "run.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_count() {
    [[ "$1" =~ ^[1-9][0-9]{0,7}$ ]]
}

while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || usage
    case "$1" in
    --sqlite-events) SQLITE_EVENTS=$2 ;;
    --pg-events) PG_EVENTS=$2 ;;
    --concurrency) CONCURRENCY=$2 ;;
    --publishers) PUBLISHERS=$2 ;;
    --repeat) REPEAT=$2 ;;
    --rate) RATE=$2 ;;
    --rate-events) RATE_EVENTS=$2 ;;
    --out) OUT=$2 ;;
    *) usage ;;
    esac
    shift 2
done
for n in "$SQLITE_EVENTS" "$PG_EVENTS" "$REPEAT" "$RATE" "$RATE_EVENTS" $CONCURRENCY $PUBLISHERS; do
    is_count "$n" || die "not a positive count: '$n'"
done

command -v node >/dev/null || die "node is needed for the graphile-worker peer"
command -v npm >/dev/null || die "npm is needed for the graphile-worker peer"
command -v psql >/dev/null || die "psql is needed to create the benchmark databases"

# ---- build and peer ---------------------------------------------------------------------
BUILD="$ROOT/build"
echo "== building bench_bus (Release, $BUILD)" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target bench_bus >/dev/null
BENCH="$BUILD/bench/bench_bus"
[[ -x "$BENCH" ]] || die "bench_bus was not built at $BENCH"

PEER="$HERE/peer"
if [[ ! -d "$PEER/node_modules/graphile-worker" ||
    "$PEER/package-lock.json" -nt "$PEER/node_modules/.package-lock.json" ]]; then
    echo "== installing the peer (npm ci in $PEER)" >&2
    (cd "$PEER" && npm ci --silent --no-audit --no-fund) || die "npm ci failed in $PEER"
fi

# ---- PostgreSQL ---------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/f3bench.XXXXXX)
PGDIR="$WORK/pg"
cleanup() {
    "$ROOT/scripts/test-postgres.sh" stop "$PGDIR" >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a throwaway PostgreSQL" >&2
"$ROOT/scripts/test-postgres.sh" start "$PGDIR"
ADMIN_URL=$(cat "$PGDIR/url")
BASE_URL=${ADMIN_URL%/postgres}
SYNC=$(psql "$ADMIN_URL" -XAtc "SHOW synchronous_commit")
FSYNC=$(psql "$ADMIN_URL" -XAtc "SHOW fsync")
[[ "$SYNC" == on && "$FSYNC" == on ]] ||
    die "PostgreSQL runs with synchronous_commit=$SYNC fsync=$FSYNC; the benchmark needs both on"

fresh_db() {
    psql "$ADMIN_URL" -XqAtc "CREATE DATABASE $1" >/dev/null
    echo "$BASE_URL/$1"
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
echo "== commit probes ($PROBE_COMMITS one-row transactions each)" >&2
{
    "$BENCH" --backend sqlite --commit-probe --events "$PROBE_COMMITS" --json
    "$BENCH" --backend postgres --url "$(fresh_db probe)" --commit-probe \
        --events "$PROBE_COMMITS" --json
} >>"$RESULTS"
# The three contenders with the same options ("$@"); TAG names their fresh databases.
run_three() {
    local tag=$1 sqlite_events=$2 pg_events=$3
    shift 3
    "$BENCH" --backend sqlite --events "$sqlite_events" "$@" --json
    "$BENCH" --backend postgres --url "$(fresh_db "f3_$tag")" --events "$pg_events" "$@" --json
    node "$PEER/bench_graphile.js" --url "$(fresh_db "gw_$tag")" --events "$pg_events" "$@" \
        --json
}

for p in $PUBLISHERS; do
    for c in $CONCURRENCY; do
        for r in $(seq 1 "$REPEAT"); do
            echo "== $p publishers, concurrency $c, run $r/$REPEAT: f3connect SQLite" \
                "($SQLITE_EVENTS events), f3connect PostgreSQL and graphile-worker" \
                "($PG_EVENTS events each)" >&2
            run_three "p${p}_c${c}_r$r" "$SQLITE_EVENTS" "$PG_EVENTS" --concurrency "$c" \
                --publishers "$p" >>"$RESULTS"
        done
    done
done
PACED_PUBLISHERS=${PUBLISHERS%% *}
for c in $CONCURRENCY; do
    echo "== concurrency $c, paced at $RATE events/s: all three ($RATE_EVENTS events each)" >&2
    run_three "c${c}_paced" "$RATE_EVENTS" "$RATE_EVENTS" --concurrency "$c" \
        --publishers "$PACED_PUBLISHERS" --rate "$RATE" >>"$RESULTS"
done
[[ -n "$OUT" ]] && cp -- "$RESULTS" "$OUT"

# ---- the table ----------------------------------------------------------------------------
node - "$RESULTS" "$(uptime)" <<'EOF'
const fs = require("fs");
const all = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const probes = all.filter((r) => r.impl === "commit-probe");
const rows = all.filter((r) => r.impl !== "commit-probe" && !r.rate);
const paced = all.filter((r) => r.impl !== "commit-probe" && r.rate);
const name = (r) => (r.impl === "f3connect" ? `f3connect ${r.backend}` : `${r.impl} ${r.version}`);
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
// One group per (implementation, publishers, concurrency), in the order they first ran.
const same = (a, b) => a.concurrency === b.concurrency && a.publishers === b.publishers;
const groups = [];
for (const r of rows) {
  let g = groups.find((x) => name(x.runs[0]) === name(r) && same(x.runs[0], r));
  if (!g) groups.push((g = { runs: [] }));
  g.runs.push(r);
}
for (const g of groups) {
  const sorted = [...g.runs].sort((a, b) => a.events_per_s - b.events_per_s);
  g.median = sorted[Math.floor((sorted.length - 1) / 2)];
  g.range = `${sorted[0].events_per_s}-${sorted[sorted.length - 1].events_per_s}`;
}
const lines = [
  `${pad("run", 24)} ${lpad("pubs", 4)} ${lpad("conc", 4)} ${lpad("events", 6)} ${lpad("events/s", 8)} ` +
    `${lpad("(range)", 11)} ${lpad("publish/s", 9)} ${lpad("p50 ms", 9)} ${lpad("p99 ms", 9)} ${lpad("vs gw", 6)}`,
];
for (const g of groups) {
  const r = g.median;
  let ratio = "";
  if (r.impl === "f3connect" && r.backend === "postgres") {
    const gw = groups.find((x) => x.median.impl === "graphile-worker" && same(x.median, r));
    if (gw) ratio = `${(r.events_per_s / gw.median.events_per_s).toFixed(2)}x`;
  }
  lines.push(
    `${pad(name(r), 24)} ${lpad(r.publishers, 4)} ${lpad(r.concurrency, 4)} ${lpad(r.events, 6)} ${lpad(r.events_per_s, 8)} ` +
      `${lpad(g.range, 11)} ${lpad(r.publish_per_s, 9)} ${lpad(r.p50_ms.toFixed(2), 9)} ` +
      `${lpad(r.p99_ms.toFixed(2), 9)} ${lpad(ratio, 6)}`,
  );
}
const m = (rows[0] || probes[0]).machine;
if (paced.length) {
  lines.push("");
  lines.push(`paced at ${paced[0].rate} events/s (${paced[0].events} events, ${paced[0].publishers} publishers, one run each): publish->handler latency`);
  lines.push(`${pad("run", 24)} ${lpad("conc", 4)} ${lpad("events/s", 8)} ${lpad("p50 ms", 9)} ${lpad("p99 ms", 9)}`);
  for (const r of paced)
    lines.push(`${pad(name(r), 24)} ${lpad(r.concurrency, 4)} ${lpad(r.events_per_s, 8)} ` +
      `${lpad(r.p50_ms.toFixed(2), 9)} ${lpad(r.p99_ms.toFixed(2), 9)}`);
}
lines.push("");
lines.push(`median of ${groups[0] ? groups[0].runs.length : 0} runs each; ` +
  `publishing threads: ${[...new Set(rows.map((r) => r.publishers))].join(", ")}; one transaction per event`);
for (const p of probes)
  lines.push(`commit probe ${p.backend}: ${p.commits_per_s} one-row durable commits/s from one thread ` +
    `(${Math.round(p.us_per_commit)} us each)`);
const sq = rows.find((r) => r.backend === "sqlite");
const pg = rows.find((r) => r.backend === "postgres");
if (sq) lines.push(`SQLite ${sq.server}: ${sq.durability}`);
if (pg) lines.push(`${pg.server}: ${pg.durability}`);
lines.push(`machine: ${m.nproc} CPUs, ${m.cpu}, ${m.mem_mb} MB RAM; at the end:${process.argv[3].replace(/^.*?(load)/, " $1")}`);
console.log(lines.join("\n"));
EOF
