#!/usr/bin/env bash
# kube-apiserver-test.sh: the tests that need a real API server serving built-in kinds
# (Leases, Deployments, Services, ...), run against the standalone apiextensions-apiserver
# in built-in kinds mode, through the real kube client.
#   scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh
# (The real-server tests include the operator end to end, which also needs MySQL from
# scripts/install-test-deps.sh.)
# CRD_WORK (default /tmp/bloodraven-crd-apiserver) is shared with the other API-server
# checks; the built-in kinds binary is added to it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/crds.sh
. scripts/lib/crds.sh
tool=${1:?usage: scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh}
tool=$(cd "$(dirname "$tool")" && pwd)/$(basename "$tool")
export CRD_WORK=${CRD_WORK:-/tmp/bloodraven-crd-apiserver}
export CRD_BUILTINS=1
# Ports of their own, so this can run beside the other API-server checks.
export CRD_ETCD_PORT=${KUBE_TEST_ETCD_PORT:-42379} CRD_API_PORT=${KUBE_TEST_API_PORT:-46443}
export CRD_CORE_PORT=${KUBE_TEST_CORE_PORT:-46080} CRD_HOOK_PORT=${KUBE_TEST_HOOK_PORT:-46444}

if [ ! -x "$CRD_WORK/bin/apiextensions-apiserver-builtins" ]; then
  "$tool" setup
fi
trap '"$tool" stop || true' EXIT
if ! crd_start "$tool"; then
  # A binary left by an earlier run (an interrupted build, say) must not fail the run for
  # good: rebuild it and try once more.
  echo "kube-apiserver-test: rebuilding the built-in kinds binary and trying once more" >&2
  rm -f "$CRD_WORK/bin/apiextensions-apiserver-builtins"
  "$tool" setup
  crd_start "$tool"
fi
eval "$("$tool" env)"
export KUBECONFIG
# The operator's own kinds beside the built-in ones: the generated CRDs, Established
# before any test creates a MysqlFailoverGroup.
kubectl apply -f crds/ >/dev/null
crds_established 20 || { echo "kube-apiserver-test: the CRDs are not Established" >&2; exit 1; }
# KUBE_TEST_FILTER / KUBE_TEST_ARGS: another selection (scripts/bench-operator-rto.sh).
# shellcheck disable=SC2086
cargo nextest run --no-fail-fast --run-ignored only -E "${KUBE_TEST_FILTER:-test(/kube_real/)}" ${KUBE_TEST_ARGS:-}
