#!/usr/bin/env bash
# bench-operator-rto.sh: failover RTO through the operator, with default group settings.
# Runs the ignored bench_operator_rto test on the real API server that
# scripts/kube-apiserver-test.sh starts: TRIALS times a fresh MySQL pair, namespace and group,
# `bloodraven serve --controllers on`, a client writing every 10 ms, kill -9 of the primary.
# Prints each trial and the median and p95 (nearest rank).
#   scripts/bench-operator-rto.sh PATH/TO/crd-apiserver.sh [TRIALS (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${1:?usage: scripts/bench-operator-rto.sh PATH/TO/crd-apiserver.sh [TRIALS]}
export BLOODRAVEN_RTO_TRIALS=${2:-10}
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $BLOODRAVEN_RTO_TRIALS trials"
KUBE_TEST_FILTER='test(=bench_operator_rto::bench_operator_rto)' KUBE_TEST_ARGS=--no-capture \
  scripts/kube-apiserver-test.sh "$tool" 2>&1 | grep --line-buffered -E '^(trial|operator RTO)|FAIL|Error|panicked'
