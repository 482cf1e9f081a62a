#!/usr/bin/env bash
# Install and start the reference OpenStack Placement (PyPI) on MariaDB (Debian), for
# bench/bench_nova_flow.py. Idempotent: re-running reuses what is already there.
#   setup.sh STATE_DIR [PLACEMENT_PORT] [WORKERS]
# Env: MARIADB_PORT (3307), PLACEMENT_VERSION (16.0.0), PYTHON (python3),
#      PLACEMENT_RESET=1 to stop gunicorn and start from an empty database.
# Nothing goes into the project's .venv; everything lives under STATE_DIR.
set -euo pipefail

STATE=${1:?usage: setup.sh STATE_DIR [PLACEMENT_PORT] [WORKERS]}
PORT=${2:-8780}
WORKERS=${3:-4}
DB_PORT=${MARIADB_PORT:-3307}
VERSION=${PLACEMENT_VERSION:-16.0.0}
PYTHON=${PYTHON:-python3}

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
DATADIR=$STATE/mariadb
SOCK=$STATE/mariadb.sock
VENV=$STATE/venv
CONF=$STATE/etc
LOGS=$STATE/log
mkdir -p "$CONF" "$LOGS"

log() { echo "[placement-ref] $*" >&2; }

# --- MariaDB -----------------------------------------------------------------
if ! command -v mariadbd >/dev/null 2>&1; then
    log "installing mariadb-server"
    export DEBIAN_FRONTEND=noninteractive
    # The package's postinst may try to start a service; there is no init here, so
    # a failure of that step is tolerated as long as the binaries are in place.
    apt-get install -y -q mariadb-server >"$LOGS/apt.log" 2>&1 || {
        apt-get update -q >>"$LOGS/apt.log" 2>&1
        apt-get install -y -q mariadb-server >>"$LOGS/apt.log" 2>&1 || true
    }
    command -v mariadbd >/dev/null || { log "mariadb-server did not install"; exit 1; }
fi

if [ ! -d "$DATADIR/mysql" ]; then
    log "initialising $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --user=root --auth-root-authentication-method=normal \
        --skip-test-db >"$LOGS/install-db.log" 2>&1
fi

db_up() { mariadb-admin --socket="$SOCK" -uroot ping >/dev/null 2>&1; }
if ! db_up; then
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    # Plain process, no systemd. Settings close to a stock Debian server: InnoDB,
    # REPEATABLE READ, durable commits (what a Placement deployment runs with).
    setsid mariadbd --no-defaults --datadir="$DATADIR" --socket="$SOCK" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --user=root \
        --pid-file="$STATE/mariadb.pid" --max-connections=500 \
        --innodb-buffer-pool-size=256M --log-error="$LOGS/mariadb.err" \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 60); do db_up && break; sleep 0.5; done
    db_up || { log "mariadbd did not come up, see $LOGS/mariadb.err"; exit 1; }
fi
if [ "${PLACEMENT_RESET:-0}" = 1 ]; then
    if [ -f "$STATE/gunicorn.pid" ]; then
        log "stopping gunicorn for a reset"
        pid=$(cat "$STATE/gunicorn.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        rm -f "$STATE/gunicorn.pid"
    fi
    mariadb --socket="$SOCK" -uroot -e "DROP DATABASE IF EXISTS placement;"
fi
mariadb --socket="$SOCK" -uroot -e "
    CREATE DATABASE IF NOT EXISTS placement;
    CREATE USER IF NOT EXISTS 'placement'@'127.0.0.1' IDENTIFIED BY 'placement';
    GRANT ALL PRIVILEGES ON placement.* TO 'placement'@'127.0.0.1';
    FLUSH PRIVILEGES;"

# --- Placement venv ----------------------------------------------------------
if ! "$VENV/bin/python" -c "import placement, pymysql, gunicorn" >/dev/null 2>&1 \
    || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openstack-placement"))' 2>/dev/null)" != "$VERSION" ]; then
    log "creating $VENV with openstack-placement==$VERSION"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >"$LOGS/pip.log" 2>&1
    "$VENV/bin/pip" install -q "openstack-placement==$VERSION" pymysql gunicorn >>"$LOGS/pip.log" 2>&1
fi

cat >"$CONF/placement.conf" <<CONFEOF
[DEFAULT]
debug = false
log_file = $LOGS/placement.log

[api]
auth_strategy = noauth2

[placement_database]
connection = mysql+pymysql://placement:placement@127.0.0.1:$DB_PORT/placement?charset=utf8
# Room for 4 workers x 8 concurrent clients without queueing on the pool.
max_pool_size = 20
max_overflow = 20
CONFEOF

export OS_PLACEMENT_CONFIG_DIR=$CONF
log "placement-manage db sync"
"$VENV/bin/placement-manage" --config-file "$CONF/placement.conf" db sync >"$LOGS/db-sync.log" 2>&1

api_up() { "$VENV/bin/python" - "$PORT" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2)
PYEOF
}
if ! api_up; then
    log "starting gunicorn -w $WORKERS on 127.0.0.1:$PORT"
    OS_PLACEMENT_CONFIG_DIR=$CONF setsid "$VENV/bin/gunicorn" -w "$WORKERS" \
        -b "127.0.0.1:$PORT" --pid "$STATE/gunicorn.pid" --timeout 120 \
        --error-logfile "$LOGS/gunicorn.err" \
        placement.wsgi.api:application </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 120); do api_up && break; sleep 0.5; done
    api_up || { log "placement did not come up, see $LOGS/gunicorn.err"; exit 1; }
fi
echo "http://127.0.0.1:$PORT"
