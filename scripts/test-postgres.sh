#!/usr/bin/env bash
# test-postgres.sh start DIR | stop DIR - a throwaway PostgreSQL server for one test run.
#
# start: initialises a cluster in DIR/data (as the unprivileged `postgres` user when run as
#        root, because initdb refuses root), listens only on 127.0.0.1 on a free port with its
#        unix socket inside DIR, durable settings (fsync, synchronous_commit), trust auth for
#        the superuser role `f3test`, and writes postgres://f3test@127.0.0.1:PORT/postgres to
#        DIR/url. A stale DIR from an earlier run is stopped and removed first.
# stop:  stops the server (fast shutdown) and removes DIR.
# It must never touch a server it did not start: everything it owns lives under DIR.
set -euo pipefail

PG_USER=postgres
ROLE=f3test
MAX_PORT_TRIES=20

die() {
    echo "test-postgres.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: test-postgres.sh start DIR | stop DIR" >&2
    exit 2
}

# The bin directory of the newest PostgreSQL installed under /usr/lib/postgresql.
pg_bindir() {
    local best=""
    best=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -n "$best" && -x "$best/initdb" && -x "$best/pg_ctl" ]] ||
        die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install the postgresql package)"
    echo "$best"
}

is_root() {
    [[ $(id -u) -eq 0 ]]
}

# Runs a command as the server's owner: the postgres system user when we are root, else ourselves.
as_owner() {
    if is_root; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_pg_user() {
    is_root || return 0
    id -u "$PG_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_USER" || die "cannot create system user '$PG_USER'"
}

# Where the cluster lives: DIR/data, unless the server's owner cannot reach DIR (a parent
# directory closed to it), then a private directory under /tmp recorded in DIR/datadir.
data_dir_for() {
    local dir=$1
    if [[ -f "$dir/datadir" ]]; then
        cat "$dir/datadir"
    else
        echo "$dir/data"
    fi
}

sock_dir_for() {
    local dir=$1
    if [[ -f "$dir/sockdir" ]]; then
        cat "$dir/sockdir"
    else
        echo "$dir/sock"
    fi
}

stop_server() {
    local dir=$1 bindir data sock
    bindir=$(pg_bindir)
    data=$(data_dir_for "$dir")
    sock=$(sock_dir_for "$dir")
    if [[ -f "$data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # Directories outside DIR were made by us (see data_dir_for / sock_dir_for).
    [[ "$data" != "$dir/data" ]] && rm -rf -- "$(dirname "$data")"
    [[ "$sock" != "$dir/sock" ]] && rm -rf -- "$sock"
    rm -rf -- "$dir"
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

start_server() {
    local dir=$1 bindir data sock port log
    bindir=$(pg_bindir)
    [[ -e "$dir" ]] && stop_server "$dir"
    ensure_pg_user
    mkdir -p -- "$dir"
    dir=$(cd "$dir" && pwd -P)
    is_root && chown "$PG_USER:" "$dir"

    data="$dir/data"
    if ! as_owner test -w "$dir"; then
        local priv
        priv=$(mktemp -d /tmp/f3pg.XXXXXX)
        is_root && chown "$PG_USER:" "$priv"
        data="$priv/data"
        echo "$data" >"$dir/datadir"
    fi
    # A unix socket path must fit in sun_path (108 bytes with the file name).
    sock="$dir/sock"
    if [[ ${#sock} -gt 80 ]] || [[ "$data" != "$dir/data" ]]; then
        sock=$(mktemp -d /tmp/f3pgsock.XXXXXX)
        echo "$sock" >"$dir/sockdir"
    fi
    mkdir -p -- "$sock"
    is_root && chown "$PG_USER:" "$sock"

    log="$dir/server.log"
    as_owner touch "$log" 2>/dev/null || {
        log="$(dirname "$data")/server.log"
        as_owner touch "$log"
    }

    # initdb's own fsync is skipped (-N): the cluster is thrown away; the server runs durable.
    as_owner "$bindir/initdb" -D "$data" -U "$ROLE" --auth=trust -E UTF8 --locale=C -N \
        >"$dir/initdb.log" 2>&1 || die "initdb failed, see $dir/initdb.log"

    local try
    for try in $(seq 1 "$MAX_PORT_TRIES"); do
        port=$(pick_free_port) || die "no free TCP port found on 127.0.0.1"
        local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$sock"
        opts+=" -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        opts+=" -c max_connections=300 -c shared_buffers=64MB"
        if as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "$opts" start >/dev/null 2>&1; then
            echo "postgres://$ROLE@127.0.0.1:$port/postgres" >"$dir/url.tmp"
            mv -f -- "$dir/url.tmp" "$dir/url"
            return 0
        fi
        # Lost a race for the port (or another failure): retry on a fresh port unless the log
        # says something else went wrong.
        if ! grep -q -E "could not bind|Address already in use|could not create any TCP/IP sockets" "$log"; then
            tail -n 20 "$log" >&2 || true
            die "server failed to start (attempt $try), see $log"
        fi
        : >"$log"
    done
    die "server failed to start: no free port after $MAX_PORT_TRIES attempts"
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) start_server "$2" ;;
stop) [[ -e "$2" ]] && stop_server "$2"; exit 0 ;;
*) usage ;;
esac
