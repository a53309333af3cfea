#!/usr/bin/env bash
# mysql-instance.sh: run throw-away MySQL 9.7 servers from the private prefix that
# scripts/install-test-deps.sh installs (tests, the local playground, benchmarks).
#
# Commands:
#   template DIR                 Initialise a template data directory once (initialize-insecure),
#                                create the users below, and remove data/auto.cnf so every copy
#                                gets its own server_uuid. No-op when DIR/READY exists.
#   start DIR PORT SERVER_ID [TEMPLATE]
#                                If DIR has no data yet, copy TEMPLATE (default: $MYSQL_TEMPLATE,
#                                else a template in DIR/../template, created on demand). Start
#                                mysqld under a supervisor that restarts it when it exits with
#                                code 16 (the end of CLONE INSTANCE, or RESTART). Returns when the
#                                server answers on 127.0.0.1:PORT (or fails after 60 s).
#   stop DIR                     Kill the supervisor and mysqld (SIGKILL, whole process group).
#   kill DIR                     SIGKILL mysqld only: the supervisor then exits too (rc != 16).
#   restart DIR                  stop, then start again with the same data, port and server id.
#   status DIR                   Print "running PID" or "stopped"; rc 0 when running.
#   sql DIR SQL                  Run SQL as root over TCP on the instance's port.
#
# Every instance listens on 127.0.0.1 only, with gtid_mode=ON, enforce_gtid_consistency, the
# binary log, a relay log, report-host/port, the clone plugin loaded at start-up, a small
# buffer pool, and performance_schema and the X protocol off.
#
# Users in the template (passwords are for throw-away local servers only):
#   root@localhost, root@127.0.0.1   no password, ALL WITH GRANT OPTION
#   repl@'%'                         password 'repl', REPLICATION SLAVE, REPLICATION CLIENT,
#                                    BACKUP_ADMIN, CLONE_ADMIN
#
# Files in DIR: data/, tmp/, files/ (secure-file-priv), error.log, supervisor.log,
# supervisor.pid, mysqld.pid, port, mysql.sock.
#
# Environment: MYSQL_PREFIX (default <repo>/.deps/mysql), MYSQLD_EXTRA_ARGS (appended to the
# mysqld command line), MYSQL_TEMPLATE.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO_ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"
P=${MYSQL_PREFIX:-$REPO_ROOT/.deps/mysql}
MYSQLD=$P/usr/sbin/mysqld
MYSQL=$P/usr/bin/mysql

die() { printf 'mysql-instance: %s\n' "$*" >&2; exit 1; }

require_prefix() {
    if ! "$MYSQLD" --version >/dev/null 2>&1; then
        die "MySQL is not installed in $P: run scripts/install-test-deps.sh"
    fi
}

# Flags shared by --initialize and the running server.
common_args() {
    local d=$1
    printf '%s\n' --no-defaults --user=root --basedir="$P/usr" \
        --lc-messages-dir="$P/usr/share/mysql" \
        --character-sets-dir="$P/usr/share/mysql/charsets" \
        --plugin-dir="$P/usr/lib/mysql/plugin" \
        --datadir="$d/data" --tmpdir="$d/tmp" --secure-file-priv="$d/files" \
        --innodb-buffer-pool-size=32M --innodb-log-buffer-size=4M \
        --innodb-redo-log-capacity=32M --performance-schema=OFF --mysqlx=OFF
}

cmd_template() {
    local d=${1:?usage: template DIR}
    require_prefix
    [ -f "$d/READY" ] && return 0
    rm -rf "$d" && mkdir -p "$d/tmp" "$d/files"
    local args
    mapfile -t args < <(common_args "$d")
    "$MYSQLD" "${args[@]}" --initialize-insecure --log-error="$d/init.err" \
        || die "mysqld --initialize-insecure failed, see $d/init.err"
    # Start once on a socket only to create the users, then shut down cleanly.
    "$MYSQLD" "${args[@]}" --skip-networking --socket="$d/init.sock" \
        --pid-file="$d/init.pid" --log-error="$d/init.err" &
    local pid=$! _
    for _ in $(seq 1 300); do
        "$MYSQL" --no-defaults -uroot --socket="$d/init.sock" -e 'SELECT 1' >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || die "template server died, see $d/init.err"
        sleep 0.1
    done
    "$MYSQL" --no-defaults -uroot --socket="$d/init.sock" <<'SQL' || die "creating template users"
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
GRANT PROXY ON ''@'' TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN, CLONE_ADMIN ON *.* TO 'repl'@'%';
RESET BINARY LOGS AND GTIDS;
SHUTDOWN;
SQL
    wait "$pid" || true
    rm -f "$d/data/auto.cnf" "$d/init.sock" "$d/init.sock.lock" "$d/init.pid"
    touch "$d/READY"
}

cmd_start() {
    local d=${1:?usage: start DIR PORT SERVER_ID [TEMPLATE]} port=${2:?PORT} id=${3:?SERVER_ID}
    local template=${4:-${MYSQL_TEMPLATE:-$(dirname "$d")/template}}
    require_prefix
    if cmd_status "$d" >/dev/null; then die "an instance is already running in $d"; fi
    if [ ! -d "$d/data/mysql" ]; then
        [ -f "$template/READY" ] || cmd_template "$template"
        mkdir -p "$d/tmp" "$d/files"
        cp -a "$template/data" "$d/data" || die "copying the template into $d"
    fi
    mkdir -p "$d/tmp" "$d/files"
    printf '%s\n' "$port" > "$d/port"
    printf '%s\n' "$id" > "$d/server_id"
    # setsid: the supervisor leads its own process group, so stop can kill mysqld with it.
    setsid "$SELF" supervise "$d" "$port" "$id" >> "$d/supervisor.log" 2>&1 < /dev/null &
    printf '%s\n' "$!" > "$d/supervisor.pid"
    wait_ready "$d" "$port" 60
}

wait_ready() {
    local d=$1 port=$2 secs=$3 _
    for _ in $(seq 1 $((secs * 20))); do
        if "$MYSQL" --no-defaults -uroot -h127.0.0.1 -P"$port" --connect-timeout=1 \
                -e 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        if ! cmd_status "$d" >/dev/null; then
            die "mysqld in $d exited during start-up, see $d/error.log"
        fi
        sleep 0.05
    done
    die "mysqld in $d did not answer on port $port within ${secs}s"
}

# The supervisor: mysqld exits with 16 when it wants to be restarted (after CLONE INSTANCE or
# RESTART) and refuses to do so unless MYSQLD_PARENT_PID names its parent. `set +e` because a
# non-zero exit of mysqld is exactly the case we handle.
cmd_supervise() {
    local d=$1 port=$2 id=$3 args rc
    set +e
    export MYSQLD_PARENT_PID=$$
    mapfile -t args < <(common_args "$d")
    while true; do
        # shellcheck disable=SC2086 # MYSQLD_EXTRA_ARGS is a word list on purpose
        "$MYSQLD" "${args[@]}" --port="$port" --bind-address=127.0.0.1 \
            --socket="$d/mysql.sock" --pid-file="$d/mysqld.pid" --log-error="$d/error.log" \
            --server-id="$id" --gtid-mode=ON --enforce-gtid-consistency=ON \
            --log-bin="$d/data/binlog" --relay-log="$d/data/relay" \
            --report-host=127.0.0.1 --report-port="$port" \
            --plugin-load-add=mysql_clone.so ${MYSQLD_EXTRA_ARGS:-}
        rc=$?
        echo "$(date -u +%FT%TZ) mysqld exited rc=$rc"
        [ "$rc" -eq 16 ] || exit "$rc"
    done
}

cmd_status() {
    local d=${1:?usage: status DIR} pid
    pid=$(cat "$d/supervisor.pid" 2>/dev/null) || { echo stopped; return 1; }
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && grep -q supervise "/proc/$pid/cmdline" 2>/dev/null; then
        echo "running $pid"
        return 0
    fi
    echo stopped
    return 1
}

cmd_stop() {
    local d=${1:?usage: stop DIR} pid
    pid=$(cat "$d/supervisor.pid" 2>/dev/null) || return 0
    if [ -n "$pid" ] && grep -q supervise "/proc/$pid/cmdline" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    # A mysqld left over from a supervisor killed alone still holds the pid file.
    local mpid
    mpid=$(cat "$d/mysqld.pid" 2>/dev/null) || true
    if [ -n "$mpid" ] && grep -q mysqld "/proc/$mpid/cmdline" 2>/dev/null \
            && grep -qF -- "$d/data" "/proc/$mpid/cmdline" 2>/dev/null; then
        kill -KILL "$mpid" 2>/dev/null || true
    fi
    rm -f "$d/supervisor.pid"
}

cmd_restart() {
    local d=${1:?usage: restart DIR} port id
    port=$(cat "$d/port" 2>/dev/null) || die "$d was never started (no port file)"
    id=$(cat "$d/server_id" 2>/dev/null) || die "$d has no server_id file"
    cmd_stop "$d"
    cmd_start "$d" "$port" "$id"
}

cmd_kill() {
    local d=${1:?usage: kill DIR} mpid
    mpid=$(cat "$d/mysqld.pid" 2>/dev/null) || die "no mysqld.pid in $d"
    kill -KILL "$mpid"
}

cmd_sql() {
    local d=${1:?usage: sql DIR SQL}; shift
    "$MYSQL" --no-defaults -uroot -h127.0.0.1 -P"$(cat "$d/port")" -e "$*"
}

case ${1:-} in
    template) shift; cmd_template "$@" ;;
    start) shift; cmd_start "$@" ;;
    supervise) shift; cmd_supervise "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    kill) shift; cmd_kill "$@" ;;
    status) shift; cmd_status "$@" ;;
    sql) shift; cmd_sql "$@" ;;
    restart) shift; cmd_restart "$@" ;;
    *) sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
