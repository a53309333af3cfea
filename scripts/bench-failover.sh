#!/usr/bin/env bash
# bench-failover.sh: measure failover on real MySQL 9.7 with DEFAULT settings.
#
# For each trial: a fresh pair (iad primary, pdx replica) from scripts/mysql-instance.sh,
# `bloodraven standalone` (release build) with only sites/credentials/listen configured, and
# a client writing one row every 10 ms to whichever site accepts it. Then one fault:
#   kill     kill -9 of the primary's mysqld   -> RTO: kill -> first acknowledged write on pdx
#   hang     SIGSTOP of the primary's mysqld   -> RTO: stop -> first acknowledged write on pdx
#   planned  POST /planned-failover?target=pdx -> write-unavailability window, writes lost
# Prints every trial, then median and p95 per kind (nearest rank).
#
# Usage: scripts/bench-failover.sh [TRIALS (default 20)] [KINDS (default kill,hang,planned)]
# Needs MySQL from scripts/install-test-deps.sh. Logs of each trial: .work/bench-failover/logs/.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRIALS=${1:-20}
KINDS=${2:-kill,hang,planned}
export MYSQL_PREFIX=${MYSQL_PREFIX:-$REPO/.deps/mysql}
"$MYSQL_PREFIX/usr/sbin/mysqld" --version >/dev/null 2>&1 \
    || { echo "bench-failover: MySQL missing: run scripts/install-test-deps.sh" >&2; exit 1; }
cd "$REPO"
# bloodraven under test: release. The measuring client (the example): the dev profile,
# whose dependencies are optimised (opt-level 1), which is plenty for 100 writes/s.
cargo build --release --quiet --bin bloodraven
cargo build --quiet --example failover_bench
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores; $("$MYSQL_PREFIX/usr/sbin/mysqld" --version)"
exec "$TARGET/debug/examples/failover_bench" --bloodraven "$TARGET/release/bloodraven" \
    --trials "$TRIALS" --kinds "$KINDS" --work "$REPO/.work/bench-failover"
