#!/usr/bin/env bash
# up.sh: start the local playground: two MySQL 9.7 servers as sites iad (primary) and pdx
# (replica), one `bloodraven sidecar` per site (fence-first, self-fencing; they poll
# standalone's /active-site and each other), `bloodraven standalone` watching them, and a
# counter app writing a row every 10 ms to whichever site is writable. Prints the /status
# URL on a line of its own.
#
# Then try:  chaos.sh kill-site iad      (and watch activeSite become pdx in /status)
#            chaos.sh restart-site iad   (iad comes back fenced and rejoins as a replica)
#            down.sh                     (tears everything down, prints the counter's RPO/RTO)
#
# Environment: PLAYGROUND_HTTP_PORT (default 8080 if free, else a free port),
# CARGO_TARGET_DIR, MYSQL_PREFIX.
set -euo pipefail
# shellcheck source=playground/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -e "$RUN" ] && die "already up (or a partial run is left in $RUN): run $HERE/down.sh first"
mkdir -p "$RUN/secrets"

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "no free port found"
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! "$MYSQL_PREFIX/usr/sbin/mysqld" --version >/dev/null 2>&1; then
    say "installing MySQL 9.7 into $MYSQL_PREFIX (scripts/install-test-deps.sh)"
    bash "$REPO/scripts/install-test-deps.sh"
fi

say "building bloodraven and the counter app"
(cd "$REPO" && cargo build --quiet --bin bloodraven --example counter)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET/debug/bloodraven
COUNTER=$TARGET/debug/examples/counter

IAD_PORT=$(free_port)
PDX_PORT=$(free_port)
while [ "$PDX_PORT" = "$IAD_PORT" ]; do PDX_PORT=$(free_port); done
HTTP_PORT=${PLAYGROUND_HTTP_PORT:-8080}
port_free "$HTTP_PORT" || HTTP_PORT=$(free_port)
printf 'IAD_PORT=%s\nPDX_PORT=%s\nHTTP_PORT=%s\n' "$IAD_PORT" "$PDX_PORT" "$HTTP_PORT" > "$RUN/ports"

say "starting MySQL: iad on $IAD_PORT, pdx on $PDX_PORT"
bash "$INSTANCE" template "$RUN/template" >/dev/null
bash "$INSTANCE" start "$RUN/iad" "$IAD_PORT" 1 "$RUN/template" & IAD_START=$!
bash "$INSTANCE" start "$RUN/pdx" "$PDX_PORT" 2 "$RUN/template" & PDX_START=$!
if ! wait "$IAD_START" || ! wait "$PDX_START"; then
    die "a MySQL server did not start (see $RUN/*/error.log); run $HERE/down.sh"
fi

gen_password() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# One sidecar per site, started before the first primary is unfenced: a sidecar's boot
# fences its server (a no-op here, they start fenced), and it never lifts a fence itself,
# so starting it beside an already writable primary would leave the group without one until
# standalone re-asserts it. Plain HTTP with a bearer token, on loopback only.
IAD_SIDECAR_PORT=$(free_port)
PDX_SIDECAR_PORT=$(free_port)
while [ "$PDX_SIDECAR_PORT" = "$IAD_SIDECAR_PORT" ]; do PDX_SIDECAR_PORT=$(free_port); done
printf 'IAD_SIDECAR_PORT=%s\nPDX_SIDECAR_PORT=%s\n' "$IAD_SIDECAR_PORT" "$PDX_SIDECAR_PORT" >> "$RUN/ports"
gen_password > "$RUN/secrets/sidecar.token"
chmod 600 "$RUN/secrets/sidecar.token"
start_sidecar() {
    local site=$1 mysql_port=$2 port=$3 peer=$4 peer_port=$5
    cat > "$RUN/sidecar-$site.yaml" <<YAML
# Written by playground/local/up.sh; see docs/sidecar.md.
site: $site
mysql: {address: "127.0.0.1:$mysql_port", credentials: {user: root}}
operator: {url: "http://127.0.0.1:$HTTP_PORT/active-site"}
peers: [{name: $peer, url: "http://127.0.0.1:$peer_port"}]
leaseTimeout: 20s
peerCheckInterval: 5s
listen: 127.0.0.1:$port
auth: {tokenFile: secrets/sidecar.token}
YAML
    NO_COLOR=1 setsid "$BIN" sidecar --config "$RUN/sidecar-$site.yaml" \
        > "$RUN/sidecar-$site.log" 2>&1 < /dev/null &
    echo $! > "$RUN/sidecar-$site.pid"
}
say "starting one sidecar per site: iad on $IAD_SIDECAR_PORT, pdx on $PDX_SIDECAR_PORT"
start_sidecar iad "$IAD_PORT" "$IAD_SIDECAR_PORT" pdx "$PDX_SIDECAR_PORT"
start_sidecar pdx "$PDX_PORT" "$PDX_SIDECAR_PORT" iad "$IAD_SIDECAR_PORT"
for site in iad pdx; do
    port_var=${site^^}_SIDECAR_PORT
    for _ in $(seq 1 100); do
        http_get "${!port_var}" /health >/dev/null 2>&1 && break
        pid_alive "$(cat "$RUN/sidecar-$site.pid")" || die "the $site sidecar exited, see $RUN/sidecar-$site.log"
        sleep 0.1
    done
done
OPERATOR_PW=$(gen_password)
COUNTER_PW=$(gen_password)
printf '%s\n' "$OPERATOR_PW" > "$RUN/secrets/operator.password"
printf 'repl\n' > "$RUN/secrets/repl.password"
printf '%s\n' "$COUNTER_PW" > "$RUN/secrets/counter.password"
chmod 600 "$RUN/secrets/"*

say "bootstrapping: users and schema on iad, GTID replication iad -> pdx"
mysql_root "$IAD_PORT" <<SQL
SET GLOBAL super_read_only = OFF;
SET GLOBAL read_only = OFF;
CREATE USER 'bloodraven'@'127.0.0.1' IDENTIFIED BY '$OPERATOR_PW';
GRANT ALL ON *.* TO 'bloodraven'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE playground;
CREATE TABLE playground.counter (
    id BIGINT PRIMARY KEY,
    site VARCHAR(64) NOT NULL,
    at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);
CREATE USER 'counter'@'127.0.0.1' IDENTIFIED BY '$COUNTER_PW';
GRANT SELECT, INSERT ON playground.* TO 'counter'@'127.0.0.1';
SQL
mysql_root "$PDX_PORT" <<SQL
CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$IAD_PORT,
    SOURCE_USER='repl', SOURCE_PASSWORD='repl', SOURCE_AUTO_POSITION=1, SOURCE_SSL=1;
START REPLICA;
SQL

cat > "$RUN/hook.sh" <<'HOOK'
#!/usr/bin/env bash
# The playground's post-failover hook: where DNS or a proxy would be updated.
printf '%s new primary %s at %s (was %s)\n' "$(date -u +%FT%T.%3NZ)" \
    "$BLOODRAVEN_NEW_PRIMARY_SITE" "$BLOODRAVEN_NEW_PRIMARY_ADDRESS" \
    "${BLOODRAVEN_OLD_PRIMARY_SITE:-none}" >> "$(dirname "$0")/hooks.log"
HOOK
cat > "$RUN/group.yaml" <<YAML
# Written by playground/local/up.sh. Field names follow MysqlFailoverGroup.
sites:
  - {name: iad, role: primary-candidate, address: "127.0.0.1:$IAD_PORT", sidecar: "http://127.0.0.1:$IAD_SIDECAR_PORT"}
  - {name: pdx, role: primary-candidate, address: "127.0.0.1:$PDX_PORT", sidecar: "http://127.0.0.1:$PDX_SIDECAR_PORT"}
# A site standalone cannot probe is asked of its sidecar: one that says "writable" holds
# the failover back (docs/sidecar.md, "The operator's second opinion").
sidecarAuth: {tokenFile: secrets/sidecar.token}
pollInterval: 2s
failureThreshold: 3
recoveryThreshold: 2
# The playground uses a short cooldown so a second experiment does not wait 5 minutes.
failoverCooldown: 30s
splitBrainPolicy: {sitePriorities: [iad, pdx]}
replication: {maxLagSeconds: 300}
plannedFailover: {maxLagWait: 1m, drainTimeout: 30s, onCooldown: reject}
credentials:
  operator: {user: bloodraven, passwordFile: secrets/operator.password}
  replication: {user: repl, passwordFile: secrets/repl.password}
listen: 127.0.0.1:$HTTP_PORT
stateFile: state.json
hook: {command: [bash, $RUN/hook.sh], timeout: 10s}
# Backups into a directory (POST /backup, GET /backups), and the point-in-time archiver
# following the active primary's binary logs.
backup:
  repository: file://$RUN/backups
  retention: {count: 5}
binlogArchive:
  interval: 10s
  rotate: true
  mysqlbinlog: $REPO/.deps/bin/mysqlbinlog
  mysql: $REPO/.deps/bin/mysql
YAML

say "starting bloodraven standalone (log: $RUN/bloodraven.log)"
NO_COLOR=1 setsid "$BIN" standalone --config "$RUN/group.yaml" > "$RUN/bloodraven.log" 2>&1 < /dev/null &
echo $! > "$RUN/bloodraven.pid"

for _ in $(seq 1 100); do
    http_get "$HTTP_PORT" /status 2>/dev/null | grep -q '"activeSite":"iad"' && break
    pid_alive "$(cat "$RUN/bloodraven.pid")" || die "bloodraven exited, see $RUN/bloodraven.log"
    sleep 0.2
done
http_get "$HTTP_PORT" /status 2>/dev/null | grep -q '"activeSite":"iad"' \
    || die "bloodraven did not adopt iad as the primary within 20s, see $RUN/bloodraven.log"

say "starting the counter app (log: $RUN/counter.log, acks: $RUN/acks.log)"
COUNTER_PASSWORD=$COUNTER_PW setsid "$COUNTER" --site "iad=127.0.0.1:$IAD_PORT" \
    --site "pdx=127.0.0.1:$PDX_PORT" --user counter --password-env COUNTER_PASSWORD \
    --log "$RUN/acks.log" > "$RUN/counter.log" 2>&1 < /dev/null &
echo $! > "$RUN/counter.pid"
touch "$RUN/up"

cat <<EOT

The playground is up: iad is the primary, pdx replicates from it.
status: http://127.0.0.1:$HTTP_PORT/status
metrics: http://127.0.0.1:$HTTP_PORT/metrics
sidecars: http://127.0.0.1:$IAD_SIDECAR_PORT/status (iad), http://127.0.0.1:$PDX_SIDECAR_PORT/status (pdx)
          (bearer token in $RUN/secrets/sidecar.token)
Try:  $HERE/chaos.sh kill-site iad
      $BIN failover --to pdx --url http://127.0.0.1:$HTTP_PORT
      $HERE/down.sh
EOT
