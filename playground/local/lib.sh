# shellcheck shell=bash
# Shared by up.sh, chaos.sh and down.sh (sourced, not run).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUN=$HERE/.run
export INSTANCE=$REPO/scripts/mysql-instance.sh
export MYSQL_PREFIX=${MYSQL_PREFIX:-$REPO/.deps/mysql}
# Every server starts fenced (a crashed primary must not come back writable); up.sh
# unfences the first primary once, after that only bloodraven decides.
export MYSQLD_EXTRA_ARGS="--super-read-only=ON"
SITES=(iad pdx)

die() { printf 'playground: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

site_dir() {
    case $1 in
        iad|pdx) printf '%s/%s\n' "$RUN" "$1" ;;
        *) die "unknown site '$1' (sites: ${SITES[*]})" ;;
    esac
}

mysql_root() {
    local port=$1; shift
    "$MYSQL_PREFIX/usr/bin/mysql" --no-defaults -uroot -h127.0.0.1 -P"$port" -N -B "$@"
}

# GET a path from the standalone API; prints the body.
http_get() {
    local port=$1 path=$2
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 2 "http://127.0.0.1:$port$path"
    else
        exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
        sed '1,/^\r$/d' <&3
        exec 3<&-
    fi
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
