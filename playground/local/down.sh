#!/usr/bin/env bash
# down.sh: tear the local playground down (also after a partial up.sh). Prints the counter
# app's RPO/RTO report first.
set -uo pipefail
# shellcheck source=playground/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -e "$RUN" ] || { say "nothing to tear down"; exit 0; }

stop_pid_file() {
    local file=$1 what=$2 pid
    pid=$(cat "$file" 2>/dev/null) || return 0
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
        pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
        say "stopped $what"
    fi
}

# Resume stopped servers so the counter's final check and the shutdown do not hang.
for site in "${SITES[@]}"; do
    pid=$(cat "$RUN/$site/mysqld.pid" 2>/dev/null) && kill -CONT "$pid" 2>/dev/null
done
stop_pid_file "$RUN/counter.pid" "the counter app"
if [ -f "$RUN/counter.log" ]; then
    grep -E '^(acknowledged|RTO|RPO|writes moved)' "$RUN/counter.log" | sed 's/^/    counter: /'
fi
stop_pid_file "$RUN/bloodraven.pid" "bloodraven standalone"
for site in "${SITES[@]}"; do
    stop_pid_file "$RUN/sidecar-$site.pid" "the $site sidecar"
done
for site in "${SITES[@]}"; do
    [ -d "$RUN/$site" ] && bash "$INSTANCE" stop "$RUN/$site" && say "stopped MySQL $site"
done
rm -rf "$RUN"
say "playground removed"
