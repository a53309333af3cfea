#!/usr/bin/env bash
# bench-lint-serve.sh: /lint against admission and memory, with the release server.
#
# Starts `bloodraven serve` (default options, no cluster lookups) on loopback, then runs
# scripts/lint-serve-load.py: /validate at 200 req/s (the production-ready example's group,
# as benches/admission.rs sends it) while eight clients post (1) a 505 KB group with 8,000
# sites, (2) a 3 MiB bundle of the lint corpus as SARIF; then (3) three clients that send
# the 3 MiB bundle and never read the response, beside four that do. Prints /validate
# p50/p99/max, the /lint answers, and the server's VmRSS (sampled every 200 ms), VmHWM, and
# VmRSS after the clients are gone.
#
# Usage: scripts/bench-lint-serve.sh   (env: SECONDS_PER_PHASE=20 PORT=18444
#        BIN=path/to/bloodraven to measure another build, e.g. an older commit's;
#        BENCH=path/to/the lint bench executable, which writes the inputs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-18444}
if [ -z "${BIN:-}" ]; then
  cargo build -q --release --bin bloodraven
  BIN=$TARGET/release/bloodraven
fi
if [ -z "${BENCH:-}" ]; then
  cargo bench -q --bench lint --no-run
  BENCH=$(cargo bench --bench lint --no-run --message-format=json 2>/dev/null \
      | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
fi
W=$(mktemp -d)
PID=
cleanup() { [ -z "$PID" ] || kill "$PID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
"$BENCH" --write-groups "$W/groups.yaml" --groups 2000 >/dev/null
"$BENCH" --write-review "$W/review.json" >/dev/null
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
text = open(f"{w}/groups.yaml").read()
# The largest prefix of whole documents under the 3 MiB body limit.
cut = text.rfind("\n---\n", 0, 3 * 1024 * 1024 - 1024)
open(f"{w}/bundle.yaml", "w").write(text[: cut + 1])
sites = "".join(
    f"  - {{name: site-{i:05}, role: primary-candidate, storage: {{storageClassName: fast}}}}\n"
    for i in range(8000)
)
open(f"{w}/wide.yaml", "w").write(
    "apiVersion: shipstream.io/v1alpha1\nkind: MysqlFailoverGroup\n"
    "metadata: {name: wide, namespace: db}\nspec:\n  image: mysql:9.7\n  sites:\n" + sites
)
PY
"$BIN" certs generate --out "$W/certs" --ip 127.0.0.1 >/dev/null
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --cert-dir "$W/certs" --cluster-lookups off &
PID=$!
for _ in $(seq 100); do
  curl -sf --cacert "$W/certs/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
done
echo "server pid $PID, $(nproc) cores, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), binary $BIN"
python3 scripts/lint-serve-load.py "$PORT" "$W/certs/ca.crt" "$PID" "$W/bundle.yaml" "$W/wide.yaml" \
  "$W/review.json" "${SECONDS_PER_PHASE:-20}"
