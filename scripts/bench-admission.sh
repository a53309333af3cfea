#!/usr/bin/env bash
# bench-admission.sh: admission latency, throughput and memory over TLS keep-alive.
#
# Builds the server driver and the load generator in release mode, starts the server on
# loopback with generated certificates, then runs benches/admission.rs against /validate
# with the production-ready example's MysqlFailoverGroup (a full validation: every rule of
# the shipped catalog): closed loops at concurrency 1, 16 and 64, an open loop at a fixed
# rate (default 1,000 req/s over 16 connections), and a soak of TOTAL requests (default
# 1,000,000) reporting the server's RSS along the way.
#
# Usage: scripts/bench-admission.sh   (env: PHASE_SECONDS=10 TOTAL=1000000 RATE=1000 PORT=18443)
# The client runs on the same machine and shares its cores with the server, so req/s is a
# lower bound for the server alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-18443}
cargo build -q --release --bin bloodraven
cargo bench -q --bench admission --no-run
W=$(mktemp -d)
PID=
cleanup() { [ -z "$PID" ] || kill "$PID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
"$TARGET/release/bloodraven" certs generate --out "$W/certs" --ip 127.0.0.1 >/dev/null
RUST_LOG=warn "$TARGET/release/bloodraven" serve --listen "127.0.0.1:$PORT" --cert-dir "$W/certs" &
PID=$!
for _ in $(seq 100); do
  curl -sf --cacert "$W/certs/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
done
echo "server pid $PID, $(nproc) cores, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
cargo bench -q --bench admission -- --url "https://127.0.0.1:$PORT/validate" --ca "$W/certs/ca.crt" \
  --pid "$PID" --seconds "${PHASE_SECONDS:-10}" --total "${TOTAL:-1000000}" --rate "${RATE:-1000}"
