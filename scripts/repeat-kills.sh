#!/usr/bin/env bash
# repeat-kills.sh N BACKEND [OUT] - runs the kill-and-restart scenario (the one behind
# ctest e2e.sandbox_kills.*) N times in a row on BACKEND (sqlite or postgres), one run at a
# time, and prints PASS/FAIL with the duration of every run and the totals.
#
# Each run is `f3connect sandbox --until-done` with the test's flags on a fresh database and
# data directory under OUT (default: a new directory under ${TMPDIR:-/tmp}). A passing run's
# directory is removed; a failing one's is kept - its stdout (the summary and what the
# invariant checker found), stderr and the platform's log (sandbox/platform.log) - and its
# path printed. Exit status: 0 when every run passed, 1 otherwise, 2 on bad usage.
#
# PostgreSQL: F3_PG_URL (a superuser URL such as postgres://f3test@127.0.0.1:5432/postgres)
# names the server; without it a throwaway server is started with scripts/test-postgres.sh
# in OUT/pg and stopped at the end. Each run gets a database of its own, dropped when the
# run passed.
#
# Environment (defaults are the ctest scenario's): F3_BINARY (build-debug/f3connect),
# KILLS (20), ORDERS (16), RATE (0.5 orders/s), TIMEOUT_S (285, the sandbox's --timeout),
# SEED (the sandbox's --seed; unset = a new random seed per run, printed with its result so
# a failing run can be repeated).
# It only reads the tree; it never touches a server or directory it did not create.
set -uo pipefail

usage() {
    echo "usage: repeat-kills.sh N sqlite|postgres [OUT]" >&2
    exit 2
}

[[ $# -ge 2 && $# -le 3 ]] || usage
runs=$1
backend=$2
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$backend" == sqlite || "$backend" == postgres ]] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
binary=${F3_BINARY:-$root/build-debug/f3connect}
kills=${KILLS:-20}
orders=${ORDERS:-16}
rate=${RATE:-0.5}
timeout_s=${TIMEOUT_S:-285}
[[ -x "$binary" ]] || {
    echo "repeat-kills.sh: no binary at $binary (build first, or set F3_BINARY)" >&2
    exit 2
}
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/repeat-kills.XXXXXX")}
mkdir -p "$out" || exit 2

pg_started=""
pg_url=""
run_pid=""
cleanup() {
    # timeout(1) leads a process group of its own: the sandbox and the platform it runs.
    # The run is abandoned: SIGKILL, not the sandbox's graceful stop and final check.
    [[ -n "$run_pid" ]] && kill -KILL -- "-$run_pid" 2>/dev/null
    [[ -n "$pg_started" ]] && "$root/scripts/test-postgres.sh" stop "$pg_started" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "$backend" == postgres ]]; then
    if [[ -n "${F3_PG_URL:-}" ]]; then
        pg_url=$F3_PG_URL
    else
        "$root/scripts/test-postgres.sh" start "$out/pg" >/dev/null || exit 1
        pg_started="$out/pg"
        pg_url=$(cat "$out/pg/url")
    fi
fi

# shellcheck source=scripts/lib/ports.sh
. "$root/scripts/lib/ports.sh"

passed=0
failed=0
for i in $(seq 1 "$runs"); do
    dir="$out/run-$i"
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(pick_free_port) || {
        echo "repeat-kills.sh: no free port" >&2
        exit 1
    }
    seed=${SEED:-$((RANDOM * 32768 + RANDOM + 1))}
    args=(sandbox --until-done --orders "$orders" --rate "$rate" --kills "$kills"
        --port "$port" --data-dir "$dir/sandbox" --timeout "$timeout_s" --seed "$seed")
    db=""
    if [[ -n "$pg_url" ]]; then
        db="kills_$$_$i"
        psql -q -X "$pg_url" -c "CREATE DATABASE $db" >/dev/null || exit 1
        args+=(--database-url "${pg_url%/*}/$db")
    fi
    start=$(date +%s)
    (cd "$dir" && LOG_LEVEL=warn exec timeout $((timeout_s + 45)) "$binary" "${args[@]}" \
        >"$dir/stdout.txt" 2>"$dir/stderr.txt") &
    run_pid=$!
    wait "$run_pid"
    status=$?
    run_pid=""
    took=$(($(date +%s) - start))
    if [[ $status -eq 0 ]] && grep -q "invariants: all hold" "$dir/stdout.txt"; then
        passed=$((passed + 1))
        echo "run $i/$runs $backend seed $seed: PASS in ${took} s"
        rm -rf "$dir"
        [[ -n "$db" ]] && psql -q -X "$pg_url" -c "DROP DATABASE $db" >/dev/null
    else
        failed=$((failed + 1))
        echo "run $i/$runs $backend seed $seed: FAIL (exit $status) in ${took} s - kept in $dir${db:+ (database $db)}"
        grep -iE "violat|not hold|^  " "$dir/stdout.txt" | head -20 | sed 's/^/    /'
    fi
done
echo "$backend: $passed passed, $failed failed of $runs (kept failures under $out)"
[[ $failed -eq 0 ]]
