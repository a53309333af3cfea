#!/usr/bin/env bash
# bench-lint-context.sh: lint time stays linear in the context objects (docs/performance.md,
# "Cross-object lookups").
#
#   1. `cargo bench --bench lint -- --context-scaling`: groups that each bring their own five
#      Secrets, NetworkPolicy and PDB, in one namespace and in a namespace each, against the
#      same groups without them, at GROUPS/4, GROUPS/2 and GROUPS; on-CPU, best of ROUNDS.
#   2. The release CLI on the one-namespace corpus of GROUPS groups (wall, peak RSS).
#
# Environment: GROUPS_N (10000), ROUNDS (3), WORK_DIR (<repo>/.work/bench-lint-context).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${WORK_DIR:-$ROOT/.work/bench-lint-context}
GROUPS_N=${GROUPS_N:-10000}
ROUNDS=${ROUNDS:-3}
ONE_CORE=()
if command -v taskset >/dev/null; then ONE_CORE=(taskset -c 0); fi
mkdir -p "$WORK"
cargo build -q --release --bin bloodraven
cargo bench -q --bench lint --no-run
BENCH=$(cargo bench --bench lint --no-run --message-format=json 2>/dev/null \
    | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
"${ONE_CORE[@]}" "$BENCH" --context-scaling --groups "$GROUPS_N" --rounds "$ROUNDS" | tee "$WORK/scaling.txt"
"$BENCH" --write-context-groups "$WORK/one-namespace.yaml" --groups "$GROUPS_N" >/dev/null
rc=0
/usr/bin/time -f '%e s wall, %M KiB peak RSS' "${ONE_CORE[@]}" \
  "${CARGO_TARGET_DIR:-$ROOT/target}/release/bloodraven" lint --format json "$WORK/one-namespace.yaml" \
  >/dev/null 2>"$WORK/cli.txt" || rc=$?
[ "$rc" -le 1 ] || { cat "$WORK/cli.txt"; exit 1; }
echo "bloodraven lint, $GROUPS_N groups with their own context objects in one namespace: $(tail -1 "$WORK/cli.txt")"
