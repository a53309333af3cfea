#!/usr/bin/env bash
# bench-backup.sh: `bloodraven backup` against MySQL's own tools on one generated dataset.
#
#   dump:    mysqldump --single-transaction | zstd -3   vs  bloodraven backup create (logical)
#   restore: zstd -dc | mysql (the dump replayed)       vs  bloodraven backup restore
#   physical: bloodraven backup create --method clone, then backup restore --target-datadir
#            and mysqld started on it (until it answers), against the logical restore
#
# One source server holds the dataset (4 tables of ROWS rows, ~120 bytes each, with a
# secondary index: about 1 GB of dump text at the default ROWS); every restore goes into a
# fresh server. All servers get the same settings (MYSQLD_EXTRA_ARGS below), so the two
# tools meet the same server. Throughput is the uncompressed mysqldump size divided by the
# wall time, the same dataset size for both, so the figures compare directly. Peak RSS of
# the client process comes from GNU time. Every client speaks plain TCP to the loopback
# server (mysqldump and mysql --ssl-mode=DISABLED, bloodraven --mysql-tls off): by default
# the MySQL clients negotiate TLS and bloodraven requires it, which would time the ciphers
# instead of the tools.
#
# Usage: scripts/bench-backup.sh [ROWS per table (default 2200000)]
# Needs MySQL from scripts/install-test-deps.sh, zstd and GNU time (/usr/bin/time).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-2200000}
THREADS=${THREADS:-4}
export MYSQL_PREFIX=${MYSQL_PREFIX:-$REPO/.deps/mysql}
"$MYSQL_PREFIX/usr/sbin/mysqld" --version >/dev/null 2>&1 \
    || { echo "bench-backup: MySQL missing: run scripts/install-test-deps.sh" >&2; exit 1; }
command -v zstd >/dev/null || { echo "bench-backup: zstd missing: apt-get install zstd" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-backup: GNU time missing: apt-get install time" >&2; exit 1; }
cd "$REPO"
cargo build --release --quiet --bin bloodraven
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/bloodraven
MYSQL=$REPO/.deps/bin/mysql
MYSQLDUMP=$REPO/.deps/bin/mysqldump
WORK=$REPO/.work/bench-backup
INSTANCE=$REPO/scripts/mysql-instance.sh
export MYSQLD_EXTRA_ARGS="--innodb-buffer-pool-size=2G --innodb-redo-log-capacity=2G --local-infile=ON --max-allowed-packet=256M"
export MYSQL_TEMPLATE=$WORK/template
export BLOODRAVEN_MYSQL_USER=root BLOODRAVEN_MYSQL_PASSWORD=
mkdir -p "$WORK"

cleanup() { for d in source peer-restore ours-restore phys-restore; do "$INSTANCE" stop "$WORK/$d" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

fresh() { # DIR PORT ID
    "$INSTANCE" stop "$WORK/$1" >/dev/null 2>&1 || true
    rm -rf "${WORK:?}/$1"
    "$INSTANCE" start "$WORK/$1" "$2" "$3" >/dev/null
}
sql() { "$MYSQL" --no-defaults -uroot -h127.0.0.1 -P"$1" -N -B -e "$2"; }
seconds() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
peak_mib() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores; $("$MYSQL_PREFIX/usr/sbin/mysqld" --version | sed 's/.*Ver/Ver/')"
echo "# dataset: 4 tables x $ROWS rows; bloodraven threads=$THREADS; mysqld $MYSQLD_EXTRA_ARGS"

if [ ! -f "$WORK/source/.rows-$ROWS" ]; then
    fresh source 47301 1
    echo "# generating the dataset ..."
    sql 47301 "CREATE DATABASE bench"
    pids=()
    for t in 1 2 3 4; do
        sql 47301 "CREATE TABLE bench.t$t (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL,
                   c DECIMAL(12,2), d DATETIME NOT NULL, e VARCHAR(80), KEY ia (a))" 
        sql 47301 "USE bench; SET SESSION cte_max_recursion_depth = 100000000;
                   INSERT INTO bench.t$t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
                   SELECT i, i * 7919 % 1000003, LEFT(SHA2(i, 256), 40), i % 100000 / 7, '2026-01-01' + INTERVAL i SECOND,
                          IF(i % 5 = 0, NULL, REPEAT(CHAR(65 + i % 26), 40 + i % 40)) FROM n" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || { echo "bench-backup: generating the dataset failed" >&2; exit 1; }; done
    touch "$WORK/source/.rows-$ROWS"
else
    "$INSTANCE" start "$WORK/source" 47301 1 >/dev/null
fi

# --- dump ---
rm -f "$WORK/dump.sql.zst"; rm -rf "$WORK/repo"
t0=$(seconds)
/usr/bin/time -v -o "$WORK/peer-dump.time" bash -c \
    "'$MYSQLDUMP' --no-defaults --ssl-mode=DISABLED -uroot -h127.0.0.1 -P47301 --single-transaction --set-gtid-purged=ON --databases bench | zstd -3 -q -T0 > '$WORK/dump.sql.zst'"
t1=$(seconds)
peer_dump=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
dump_bytes=$(zstd -dc "$WORK/dump.sql.zst" | wc -c)
t0=$(seconds)
/usr/bin/time -v -o "$WORK/ours-dump.time" "$BIN" backup create --source 127.0.0.1:47301 \
    --to "file://$WORK/repo" --threads "$THREADS" --mysql-tls off > "$WORK/manifest.json"
t1=$(seconds)
ours_dump=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
id=$(sed -n 's/^  "id": "\(.*\)",$/\1/p' "$WORK/manifest.json" | head -1)
rows=$(sql 47301 "SELECT SUM(c) FROM (SELECT COUNT(*) c FROM bench.t1 UNION ALL SELECT COUNT(*) FROM bench.t2 UNION ALL SELECT COUNT(*) FROM bench.t3 UNION ALL SELECT COUNT(*) FROM bench.t4) x")
[ "$rows" = "$((4 * ROWS))" ] || { echo "bench-backup: the dataset has $rows rows, expected $((4 * ROWS))" >&2; exit 1; }
stored=$(du -sb "$WORK/repo" | cut -f1)

# --- restore ---
fresh peer-restore 47302 2
t0=$(seconds)
/usr/bin/time -v -o "$WORK/peer-restore.time" bash -c \
    "zstd -dc '$WORK/dump.sql.zst' | '$MYSQL' --no-defaults --ssl-mode=DISABLED -uroot -h127.0.0.1 -P47302"
t1=$(seconds)
peer_restore=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
fresh ours-restore 47303 3
t0=$(seconds)
/usr/bin/time -v -o "$WORK/ours-restore.time" "$BIN" backup restore --from "file://$WORK/repo" \
    --id "$id" --target 127.0.0.1:47303 --threads "$THREADS" --mysql-tls off > "$WORK/restore.json"
t1=$(seconds)
ours_restore=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
same=$(for p in 47301 47303; do sql $p "CHECKSUM TABLE bench.t1, bench.t2, bench.t3, bench.t4" | awk '{print $2}' | tr '\n' ' '; echo; done | uniq | wc -l)
[ "$same" = 1 ] || { echo "bench-backup: the restored tables differ from the source" >&2; exit 1; }

# --- physical: a clone, unpacked, and mysqld started on it ---
rm -rf "$WORK/clone-repo" "$WORK/clone-tmp"
t0=$(seconds)
/usr/bin/time -v -o "$WORK/clone-dump.time" "$BIN" backup create --method clone --source 127.0.0.1:47301 \
    --to "file://$WORK/clone-repo" --clone-dir "$WORK/clone-tmp" --mysql-tls off > "$WORK/clone-manifest.json"
t1=$(seconds)
clone_dump=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
clone_id=$(sed -n 's/^  "id": "\(.*\)",$/\1/p' "$WORK/clone-manifest.json" | head -1)
clone_stored=$(du -sb "$WORK/clone-repo" | cut -f1)
"$INSTANCE" stop "$WORK/phys-restore" >/dev/null 2>&1 || true
rm -rf "$WORK/phys-restore"
t0=$(seconds)
/usr/bin/time -v -o "$WORK/clone-restore.time" "$BIN" backup restore --from "file://$WORK/clone-repo" \
    --id "$clone_id" --target-datadir "$WORK/phys-restore/data" --threads "$THREADS" > /dev/null
"$INSTANCE" start "$WORK/phys-restore" 47304 4 >/dev/null
t1=$(seconds)
clone_restore=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
same=$(for p in 47301 47304; do sql $p "CHECKSUM TABLE bench.t1, bench.t2, bench.t3, bench.t4" | awk '{print $2}' | tr '\n' ' '; echo; done | uniq | wc -l)
[ "$same" = 1 ] || { echo "bench-backup: the tables of the restored clone differ from the source" >&2; exit 1; }

printf '\n| step | tool | seconds | MB/s (of %s MB dump text) | peak RSS MiB | stored MB |\n|---|---|---|---|---|---|\n' "$((dump_bytes / 1000000))"
printf '| dump | mysqldump --single-transaction \\| zstd -3 | %.1f | %s | %s | %s |\n' "$peer_dump" "$(rate "$dump_bytes" "$peer_dump")" "$(peak_mib "$WORK/peer-dump.time")" "$(( $(stat -c %s "$WORK/dump.sql.zst") / 1000000 ))"
printf '| dump | bloodraven backup create (logical, %s threads) | %.1f | %s | %s | %s |\n' "$THREADS" "$ours_dump" "$(rate "$dump_bytes" "$ours_dump")" "$(peak_mib "$WORK/ours-dump.time")" "$((stored / 1000000))"
printf '| restore | zstd -dc \\| mysql | %.1f | %s | %s | |\n' "$peer_restore" "$(rate "$dump_bytes" "$peer_restore")" "$(peak_mib "$WORK/peer-restore.time")"
printf '| restore | bloodraven backup restore (%s threads) | %.1f | %s | %s | |\n' "$THREADS" "$ours_restore" "$(rate "$dump_bytes" "$ours_restore")" "$(peak_mib "$WORK/ours-restore.time")"
printf '| dump | bloodraven backup create --method clone | %.1f | %s | %s | %s |\n' "$clone_dump" "$(rate "$dump_bytes" "$clone_dump")" "$(peak_mib "$WORK/clone-dump.time")" "$((clone_stored / 1000000))"
printf '| restore | bloodraven backup restore --target-datadir, then mysqld started | %.1f | %s | %s | |\n' "$clone_restore" "$(rate "$dump_bytes" "$clone_restore")" "$(peak_mib "$WORK/clone-restore.time")"
printf '\nspeed-up: physical restore %.2fx the logical restore, %.2fx the replay\n' \
    "$(awk -v a="$ours_restore" -v b="$clone_restore" 'BEGIN { print a / b }')" "$(awk -v a="$peer_restore" -v b="$clone_restore" 'BEGIN { print a / b }')"
printf '\nspeed-up: dump %.2fx, restore %.2fx (restored tables checksum-equal to the source)\n' \
    "$(awk -v a="$peer_dump" -v b="$ours_dump" 'BEGIN { print a / b }')" "$(awk -v a="$peer_restore" -v b="$ours_restore" 'BEGIN { print a / b }')"
