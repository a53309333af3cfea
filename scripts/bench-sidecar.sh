#!/usr/bin/env bash
# bench-sidecar.sh: the sidecar's idle footprint and self-fence latency at the default
# intervals (leaseTimeout 20s, peerCheckInterval 5s), against a real MySQL 9.7.
#
#   1. starts one throw-away MySQL (scripts/mysql-instance.sh), a stand-in operator
#      endpoint answering {"activeSite": "a"} (python3), and `bloodraven sidecar` (release
#      build) for site a with one peer that never answers;
#   2. lets it idle for IDLE_SECS (default 60) and reports its RSS and CPU (utime+stime from
#      /proc over the window);
#   3. lifts the fence as the operator would, stops the operator endpoint and reports the
#      time until MySQL is super_read_only (target: <= leaseTimeout + 1 s) and the
#      sidecar's own fence timestamp.
#
# Environment: IDLE_SECS, PROFILE (release, or debug to skip a release build),
# CARGO_TARGET_DIR, MYSQL_PREFIX. Prints a small report.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MYSQL_PREFIX=${MYSQL_PREFIX:-$REPO/.deps/mysql}
INSTANCE=$REPO/scripts/mysql-instance.sh
IDLE_SECS=${IDLE_SECS:-60}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    bash "$INSTANCE" stop "$WORK/mysql" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { printf 'bench-sidecar: %s\n' "$*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mysql_q() { "$MYSQL_PREFIX/usr/bin/mysql" --no-defaults -uroot -h127.0.0.1 -P"$MYSQL_PORT" -N -B -e "$1"; }
now_ms() { date +%s%3N; }

PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
    (cd "$REPO" && cargo build --quiet --release --bin bloodraven)
else
    (cd "$REPO" && cargo build --quiet --bin bloodraven)
fi
BIN=${CARGO_TARGET_DIR:-$REPO/target}/$([ "$PROFILE" = release ] && echo release || echo debug)/bloodraven

MYSQL_PORT=$(free_port)
bash "$INSTANCE" template "$WORK/template" >/dev/null
bash "$INSTANCE" start "$WORK/mysql" "$MYSQL_PORT" 1 "$WORK/template" >/dev/null

OP_PORT=$(free_port)
cat > "$WORK/op.py" <<'PY'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"activeSite": "a"}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/op.py" "$OP_PORT" & OP_PID=$!; PIDS+=("$OP_PID")

SC_PORT=$(free_port)
DEAD_PORT=$(free_port)
printf 'bench-token\n' > "$WORK/token"
cat > "$WORK/sidecar.yaml" <<YAML
site: a
mysql: {address: "127.0.0.1:$MYSQL_PORT", credentials: {user: root}}
operator: {url: "http://127.0.0.1:$OP_PORT/active-site"}
peers: [{name: b, url: "http://127.0.0.1:$DEAD_PORT"}]
listen: 127.0.0.1:$SC_PORT
auth: {tokenFile: token}
YAML
"$BIN" sidecar --config "$WORK/sidecar.yaml" > "$WORK/sidecar.log" 2>&1 & SC_PID=$!; PIDS+=("$SC_PID")
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SC_PORT") 2>/dev/null && break
    sleep 0.1
done
sleep 6   # one tick, so the steady state is measured

ticks() { awk '{print $14 + $15}' "/proc/$SC_PID/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s%N)
sleep "$IDLE_SECS"
t1=$(ticks); s1=$(date +%s%N)
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$SC_PID/status")
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$SC_PID/status")
ANON_KB=$(awk '/^RssAnon:/ {print $2}' "/proc/$SC_PID/status")
FILE_KB=$(awk '/^RssFile:/ {print $2}' "/proc/$SC_PID/status")
THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$SC_PID/status")
CPU_PCT=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v ns="$((s1 - s0))" 'BEGIN {printf "%.3f", 100 * (t / hz) / (ns / 1e9)}')

# Self-fence latency: the operator lifts the fence, then disappears.
mysql_q "SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF"
sleep 6
[ "$(mysql_q 'SELECT @@GLOBAL.super_read_only')" = 0 ] || die "the sidecar re-fenced a cleared site"
kill "$OP_PID"; CUT=$(now_ms)
while [ "$(mysql_q 'SELECT @@GLOBAL.super_read_only')" != 1 ]; do
    [ $(( $(now_ms) - CUT )) -lt 40000 ] || die "no self-fence 40 s after the operator went away"
    sleep 0.05
done
SEEN=$(now_ms)
FENCED_AT=$(grep -o 'fenced_at_ms=[0-9]*' "$WORK/sidecar.log" | tail -1 | cut -d= -f2)

cat <<EOT
sidecar benchmark (leaseTimeout 20s, peerCheckInterval 5s, $PROFILE build)
  idle RSS:           $((RSS_KB / 1024)) MiB ($RSS_KB KiB; peak $HWM_KB KiB; heap and stacks $ANON_KB KiB,
                      mapped binary and libraries $FILE_KB KiB; $THREADS threads)
  idle CPU:           ${CPU_PCT}% of one core over ${IDLE_SECS}s
  self-fence latency: $((FENCED_AT - CUT)) ms from the operator going away to super_read_only=ON
                      (observed by a poller after $((SEEN - CUT)) ms; the last contact was up to
                      one interval before the cut, so the lease bound is 20000 ms + 1000 ms)
EOT
