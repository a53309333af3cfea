#!/usr/bin/env bash
# bench-operator-scale.sh: the operator with GROUPS groups (default 1,000) on the real API
# server that scripts/kube-apiserver-test.sh starts: resident memory, CPU while idle and API
# writes per idle resync of `bloodraven serve --controllers on` (see
# tests/it/bench_operator_scale.rs).
#   scripts/bench-operator-scale.sh PATH/TO/crd-apiserver.sh [GROUPS]
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${1:?usage: scripts/bench-operator-scale.sh PATH/TO/crd-apiserver.sh [GROUPS]}
export BLOODRAVEN_SCALE_GROUPS=${2:-1000}
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $BLOODRAVEN_SCALE_GROUPS groups"
KUBE_TEST_FILTER='test(=bench_operator_scale::bench_operator_scale)' KUBE_TEST_ARGS=--no-capture \
  scripts/kube-apiserver-test.sh "$tool" 2>&1 |
  grep --line-buffered -E '^(created|settled|[0-9]+ groups idle|requests while idle|bloodraven_kube)|FAIL|Error|panicked'
