#!/usr/bin/env bash
# chaos.sh: inject faults into the local playground.
#   chaos.sh kill-site NAME      kill -9 the site's mysqld (a crash; the port refuses)
#   chaos.sh stop-site NAME      SIGSTOP mysqld (a hang; the port accepts, nothing answers)
#   chaos.sh resume-site NAME    SIGCONT a stopped mysqld
#   chaos.sh restart-site NAME   start a killed site again (it comes back fenced)
#   chaos.sh status              print /status
set -euo pipefail
# shellcheck source=playground/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -f "$RUN/up" ] || die "the playground is not up: run $HERE/up.sh"
# shellcheck disable=SC1091
. "$RUN/ports"

mysqld_pid() {
    local pid
    pid=$(cat "$(site_dir "$1")/mysqld.pid" 2>/dev/null) || die "$1 has no running mysqld"
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then die "$1's mysqld is not running"; fi
    printf '%s\n' "$pid"
}

case ${1:-} in
    kill-site)
        pid=$(mysqld_pid "${2:?kill-site NAME}")
        kill -KILL "$pid"
        say "killed $2 (mysqld $pid) at $(date -u +%T.%3N); watch: http://127.0.0.1:$HTTP_PORT/status"
        ;;
    stop-site)
        pid=$(mysqld_pid "${2:?stop-site NAME}")
        kill -STOP "$pid"
        say "stopped (SIGSTOP) $2 (mysqld $pid) at $(date -u +%T.%3N)"
        ;;
    resume-site)
        pid=$(mysqld_pid "${2:?resume-site NAME}")
        kill -CONT "$pid"
        say "resumed $2 (mysqld $pid)"
        ;;
    restart-site)
        dir=$(site_dir "${2:?restart-site NAME}")
        bash "$INSTANCE" restart "$dir" >/dev/null
        say "restarted $2 (fenced: super_read_only=ON until bloodraven decides)"
        ;;
    status)
        http_get "$HTTP_PORT" /status
        echo
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
