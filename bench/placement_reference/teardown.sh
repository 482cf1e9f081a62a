#!/usr/bin/env bash
# Stop the reference Placement (gunicorn) and its MariaDB started by setup.sh.
#   teardown.sh STATE_DIR [--purge]   (--purge also deletes STATE_DIR)
set -uo pipefail

STATE=${1:?usage: teardown.sh STATE_DIR [--purge]}
[ -d "$STATE" ] || exit 0

stop_pidfile() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_pidfile "$STATE/gunicorn.pid"
if [ -S "$STATE/mariadb.sock" ]; then
    mariadb-admin --socket="$STATE/mariadb.sock" -uroot shutdown 2>/dev/null || true
fi
stop_pidfile "$STATE/mariadb.pid"
if [ "${2:-}" = "--purge" ]; then
    rm -rf "$STATE"
fi
