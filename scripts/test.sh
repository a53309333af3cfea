#!/usr/bin/env bash
# test.sh: the project's test command (README "Tests"). Installs the real test peers into
# .deps/ when missing (MySQL 9.7, promtool, the SARIF schema, kubernetes-validate, helm, hadolint), checks the crypto-provider
# rule, then runs every test with cargo-nextest.
#   scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

# One rustls crypto provider (ring): aws-lc-rs must never enter the dependency graph.
if cargo tree -e normal,build -i aws-lc-rs >/dev/null 2>&1; then
  echo "test.sh: aws-lc-rs is in the dependency graph; keep every TLS crate on ring" >&2
  cargo tree -e normal,build -i aws-lc-rs >&2
  exit 1
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: cargo-nextest is missing: cargo install cargo-nextest --locked" >&2
  exit 1
fi
cargo nextest run --no-fail-fast "$@"
