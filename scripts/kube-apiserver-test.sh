#!/usr/bin/env bash
# kube-apiserver-test.sh: the tests that need a real API server serving built-in kinds
# (Leases, Deployments, Services, ...), run against the standalone apiextensions-apiserver
# in built-in kinds mode, through the real kube client.
#   scripts/kube-apiserver-test.sh PATH/TO/crd-apiserver.sh
# CRD_WORK (default /tmp/bloodraven-crd-apiserver) is shared with the other API-server
# checks; the built-in kinds binary is added to it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
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
"$tool" start
trap '"$tool" stop || true' EXIT
eval "$("$tool" env)"
export KUBECONFIG
cargo nextest run --no-fail-fast --run-ignored only -E 'test(/kube_real/)'
