#!/usr/bin/env bash
# chart-apiserver-test.sh: `helm install`, `helm upgrade` and `helm uninstall` of
# charts/bloodraven against a real API server: the standalone apiextensions-apiserver in its
# built-in-kinds mode (CRD_BUILTINS=1 of the given crd-apiserver.sh), which stores
# Deployments, RBAC, Services, webhook configurations and the rest with etcd semantics but
# runs no pods. So the webhook runs as a local process behind the chart's Service: that
# server resolves clientConfig.service through the Service's clusterIP, which is pointed at
# 127.0.0.1 after the install, on the chart's webhook Service port (`webhook.servicePort`,
# set to CHART_TEST_WEBHOOK_PORT, default 47445, so no privileged port is needed).
#
# Checks:
#   - install (self-managed certificate from `bloodraven certs generate`, monitoring off: the
#     server has no Prometheus Operator or cert-manager CRDs): every object is stored, the
#     CRDs come from the chart, both webhook configurations carry the CA that signed the
#     serving certificate;
#   - a bad MysqlFailoverGroup is denied through the installed webhook
#     (`kubectl apply --dry-run=server`), a good one is admitted;
#   - upgrade (replicaCount 3): the Deployment follows, the caBundle stays;
#   - uninstall: the release's objects are gone, the CRDs (Helm never deletes them) stay;
#   - install with tls.selfManaged: the binary, run with the Deployment's own arguments,
#     fills the chart's empty Secret and every caBundle of both configurations, serves a
#     certificate that bundle trusts, a bad group is denied through it, and an upgrade
#     leaves the caBundle the binary wrote alone.
#
# Usage: scripts/chart-apiserver-test.sh [PATH/TO/crd-apiserver.sh]
# Environment: CRD_WORK (default /tmp/crd-chart) and the CRD_*_PORT of crd-apiserver.sh
# (defaults here: etcd 43379, API 47443, core 47080, self-test hook 47444);
# BLOODRAVEN_BIN (default: target/debug/bloodraven, built with cargo when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/crds.sh
. scripts/lib/crds.sh

SERVER=${1:-../shared/tools/crd-apiserver.sh}
[ -f "$SERVER" ] || { echo "chart-apiserver-test: no crd-apiserver script at $SERVER" >&2; exit 2; }
export CRD_BUILTINS=1
export CRD_WORK=${CRD_WORK:-/tmp/crd-chart}
export CRD_ETCD_PORT=${CRD_ETCD_PORT:-43379} CRD_API_PORT=${CRD_API_PORT:-47443}
export CRD_CORE_PORT=${CRD_CORE_PORT:-47080} CRD_HOOK_PORT=${CRD_HOOK_PORT:-47444}
HELM=$PWD/.deps/bin/helm
[ -x "$HELM" ] || { echo "chart-apiserver-test: helm is missing: run scripts/install-test-deps.sh helm" >&2; exit 2; }
BIN=${BLOODRAVEN_BIN:-${CARGO_TARGET_DIR:-target}/debug/bloodraven}
[ -x "$BIN" ] || cargo build --locked
NS=bloodraven-system
WORK=$CRD_WORK/chart-test
PASS=0 FAIL=0
ok()  { PASS=$((PASS + 1)); printf 'ok   %s\n' "$1"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL %s\n%s\n' "$1" "$2" | sed '3,$s/^/     /'; }
expect_ok()  { local d=$1 out; shift; if out=$("$@" 2>&1); then ok "$d"; else bad "$d" "$out"; fi; }
expect_err() { local d=$1 re=$2 out; shift 2
  if out=$("$@" 2>&1); then bad "$d (unexpectedly succeeded)" "$out"
  elif grep -qE "$re" <<<"$out"; then ok "$d"; else bad "$d (wrong error)" "$out"; fi; }
expect_out() { local d=$1 want=$2 out; shift 2
  out=$("$@" 2>&1) || true; if [ "$out" = "$want" ]; then ok "$d"; else bad "$d (want '$want')" "$out"; fi; }

# This server requires metadata.resourceVersion on every update (a real API server takes an
# unconditional update of a Secret), so Helm's last step of an install or upgrade, updating
# its release record (pending-install -> deployed, the previous one -> superseded), is
# refused after the objects are applied (an install logs "failed to record the release" and
# exits 0; an upgrade exits 1 with that error: expect_helm accepts exactly that error and
# nothing else). settle_releases makes that same update with the resourceVersion; everything else Helm
# does here is unassisted.
settle_releases() {
  kubectl -n "$NS" get secrets -l owner=helm,name=bloodraven -o json | python3 -c '
import base64, gzip, json, sys
items = json.load(sys.stdin)["items"]
latest = max(int(s["metadata"]["labels"]["version"]) for s in items)
for secret in items:
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
    status = release["info"]["status"]
    want = "deployed" if release["version"] == latest else "superseded"
    if status == want or status in ("failed", "uninstalled"):
        continue
    release["info"]["status"] = want
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    secret["data"]["release"] = base64.b64encode(packed).decode()
    secret["metadata"]["labels"]["status"] = want
    print(json.dumps(secret))
' > "$WORK/releases.jsonl"
  local line
  while IFS= read -r line; do
    kubectl replace -f - <<<"$line" >/dev/null || return 1
  done < "$WORK/releases.jsonl"
}

expect_helm() { local d=$1 out; shift
  if out=$("$@" 2>&1); then ok "$d"
  elif grep -qE 'secrets "sh\.helm\.release\.v1\.bloodraven\.v[0-9]+" is invalid: metadata\.resourceVersion' <<<"$out" \
       && [ "$(grep -c '^Error' <<<"$out")" = 1 ]; then ok "$d (release record left to settle_releases)"
  else bad "$d" "$out"; fi; }

HOOK_PID=""
cleanup() {
  [ -z "$HOOK_PID" ] || kill "$HOOK_PID" 2>/dev/null || true
  "$SERVER" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$SERVER" setup
crd_start "$SERVER"
eval "$("$SERVER" env)"
rm -rf "$WORK" && mkdir -p "$WORK"

# --- install, self-managed certificate
"$BIN" certs generate --out "$WORK/certs" --dns "bloodraven-webhook.$NS.svc" >/dev/null
CA=$(base64 -w0 < "$WORK/certs/ca.crt")
expect_ok "namespace $NS" kubectl create namespace "$NS"
expect_ok "the serving certificate Secret (no CA key in it)" kubectl -n "$NS" create secret generic bloodraven-webhook-tls \
  --from-file="$WORK/certs/tls.crt" --from-file="$WORK/certs/tls.key" --from-file="$WORK/certs/ca.crt"
HOOK_PORT=${CHART_TEST_WEBHOOK_PORT:-47445}
INSTALL=(charts/bloodraven --namespace "$NS" --values charts/bloodraven/ci/monitoring-off-values.yaml
         --set certManager.enabled=false --set "tls.caBundle=$CA" --set "webhook.servicePort=$HOOK_PORT")
expect_helm "helm install" "$HELM" install bloodraven "${INSTALL[@]}"
expect_ok "  ... release record settled (see settle_releases)" settle_releases
expect_out "  ... deployed, revision 1" "deployed 1" \
  sh -c "'$HELM' -n $NS status bloodraven -o json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[\"info\"][\"status\"], r[\"version\"])'"
expect_ok "  ... NOTES name the Lease and the certificate source" sh -c \
  "'$HELM' -n $NS get notes bloodraven | grep -q 'get lease bloodraven-operator' && '$HELM' -n $NS get notes bloodraven | grep -q 'from Secret bloodraven-webhook-tls'"
expect_ok "  ... the CRDs from the chart" crds_established 60
for object in deployment/bloodraven serviceaccount/bloodraven service/bloodraven-webhook \
              poddisruptionbudget/bloodraven networkpolicy/bloodraven; do
  expect_ok "  ... $object stored" kubectl -n "$NS" get "$object"
done
for object in clusterrole/bloodraven-operator clusterrole/bloodraven-lookups clusterrole/bloodraven-storageclasses \
              clusterrolebinding/bloodraven-operator validatingwebhookconfiguration/bloodraven \
              mutatingwebhookconfiguration/bloodraven; do
  expect_ok "  ... $object stored" kubectl get "$object"
done
expect_out "  ... Deployment: 2 replicas, digest-pinned image, non-root" \
  "2 ghcr.io/shipstream/bloodraven@sha256:0000000000000000000000000000000000000000000000000000000000000000 true" \
  kubectl -n "$NS" get deployment bloodraven -o 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.securityContext.runAsNonRoot}'
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  for bundle in $(kubectl get "$kind" bloodraven -o 'jsonpath={.webhooks[*].clientConfig.caBundle}'); do
    expect_out "  ... $kind caBundle is the CA" "$CA" echo "$bundle"
  done
done
base64 -d <<<"$CA" > "$WORK/cabundle.pem"
expect_ok "  ... and that CA signed the serving certificate" \
  openssl verify -CAfile "$WORK/cabundle.pem" "$WORK/certs/tls.crt"

# --- the webhook behind the chart's Service: a local process, the Service pointed at it
expect_ok "Service clusterIP pointed at the local webhook" kubectl -n "$NS" patch service bloodraven-webhook \
  --type merge -p '{"spec":{"clusterIP":"127.0.0.1"}}'
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$HOOK_PORT" --cert-dir "$WORK/certs" --controllers off \
  --cluster-lookups off > "$WORK/webhook.log" 2>&1 &
HOOK_PID=$!
for _ in $(seq 50); do
  curl -sf --cacert "$WORK/certs/ca.crt" --resolve "bloodraven-webhook.$NS.svc:$HOOK_PORT:127.0.0.1" \
    "https://bloodraven-webhook.$NS.svc:$HOOK_PORT/readyz" >/dev/null && break
  sleep 0.2
done
expect_ok "webhook ready on 127.0.0.1:$HOOK_PORT" curl -sf --cacert "$WORK/certs/ca.crt" \
  --resolve "bloodraven-webhook.$NS.svc:$HOOK_PORT:127.0.0.1" "https://bloodraven-webhook.$NS.svc:$HOOK_PORT/readyz"

awk '/^---/{exit} {print}' docs/examples/production-ready.yaml > "$WORK/good.yaml"
sed -e 's|^  image: .*|  image: mysql:latest|' -e '/^  tls:/,/^      kind:/d' -e 's/^  name: orders$/  name: unsafe/' \
    -e '/^  imagePullPolicy:/d' "$WORK/good.yaml" > "$WORK/bad.yaml"
NS_OF_GROUP=$(awk '/^  namespace:/{print $2; exit}' "$WORK/good.yaml")
kubectl create namespace "$NS_OF_GROUP" >/dev/null 2>&1 || true
for _ in $(seq 40); do
  kubectl apply --dry-run=server -f "$WORK/bad.yaml" 2>&1 | grep -q "denied the request" && break
  sleep 0.5
done
expect_err "a bad MysqlFailoverGroup is denied through the installed webhook (--dry-run=server)" \
  'admission webhook "validate.shipstream.io" denied the request: [0-9]+ required findings?: BR-' \
  kubectl apply --dry-run=server -f "$WORK/bad.yaml"
expect_ok "a production-ready MysqlFailoverGroup is admitted (--dry-run=server)" \
  kubectl apply --dry-run=server -f "$WORK/good.yaml"

# --- upgrade
expect_helm "helm upgrade (replicaCount 3)" "$HELM" upgrade bloodraven "${INSTALL[@]}" --set replicaCount=3
expect_ok "  ... release records settled" settle_releases
expect_out "  ... the Deployment follows" "3" kubectl -n "$NS" get deployment bloodraven -o 'jsonpath={.spec.replicas}'
expect_out "  ... the caBundle stays" "$CA" kubectl get validatingwebhookconfiguration bloodraven \
  -o 'jsonpath={.webhooks[0].clientConfig.caBundle}'
expect_out "  ... revision 2" "2" \
  sh -c "'$HELM' -n $NS status bloodraven -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"version\"])'"
expect_err "  ... an unknown value is refused by the schema" "Additional property bogus is not allowed" \
  "$HELM" upgrade bloodraven "${INSTALL[@]}" --set bogus=1

# --- uninstall
expect_ok "helm uninstall" "$HELM" uninstall bloodraven --namespace "$NS" --wait
expect_err "  ... the Deployment is gone" "NotFound|not found" kubectl -n "$NS" get deployment bloodraven
expect_err "  ... the validating webhook configuration is gone" "NotFound|not found" \
  kubectl get validatingwebhookconfiguration bloodraven
expect_err "  ... the ClusterRoles are gone" "NotFound|not found" kubectl get clusterrole bloodraven-operator
expect_ok  "  ... the CRDs stay (Helm never deletes them)" kubectl get crd mysqlfailovergroups.shipstream.io

# --- install again, the certificate kept by the binary (tls.selfManaged)
[ -z "$HOOK_PID" ] || { kill "$HOOK_PID" 2>/dev/null || true; wait "$HOOK_PID" 2>/dev/null || true; HOOK_PID=""; }
kubectl -n "$NS" delete secret bloodraven-webhook-tls --ignore-not-found >/dev/null
SELF=(charts/bloodraven --namespace "$NS" --values charts/bloodraven/ci/monitoring-off-values.yaml
      --set certManager.enabled=false --set tls.selfManaged.enabled=true --set "webhook.servicePort=$HOOK_PORT")
expect_helm "helm install (tls.selfManaged)" "$HELM" install bloodraven "${SELF[@]}"
expect_ok "  ... release record settled (see settle_releases)" settle_releases
expect_out "  ... the chart creates the Secret empty" "" \
  kubectl -n "$NS" get secret bloodraven-webhook-tls -o 'jsonpath={.data}'
expect_out "  ... and renders no caBundle" "" \
  kubectl get validatingwebhookconfiguration bloodraven -o 'jsonpath={.webhooks[*].clientConfig.caBundle}'
expect_ok "  ... Service clusterIP pointed at the local webhook" kubectl -n "$NS" patch service bloodraven-webhook \
  --type merge -p '{"spec":{"clusterIP":"127.0.0.1"}}'
# The Deployment's own arguments, with the listener, the certificate directory and the
# settle time made local (no pod, no in-cluster credentials: the kubeconfig stands in).
kubectl -n "$NS" get deployment bloodraven -o 'jsonpath={.spec.template.spec.containers[0].args}' \
  | python3 -c '
import json, sys
args = [a for a in json.load(sys.stdin)[1:]
        if not a.startswith(("--listen=", "--cert-dir=", "--controllers=", "--cluster-lookups="))]
print("\n".join(args))' > "$WORK/self-args"
mapfile -t SELF_ARGS < "$WORK/self-args"
expect_ok "  ... the Deployment runs serve --self-managed-certs" grep -qx -- --self-managed-certs "$WORK/self-args"
RUST_LOG=info "$BIN" serve "${SELF_ARGS[@]}" --listen "127.0.0.1:$HOOK_PORT" --cert-dir "$WORK/self-certs" \
  --controllers off --cluster-lookups off --cert-settle 1s --reload-interval-secs 1 > "$WORK/self-webhook.log" 2>&1 &
HOOK_PID=$!
for _ in $(seq 120); do
  kubectl get validatingwebhookconfiguration bloodraven -o 'jsonpath={.webhooks[0].clientConfig.caBundle}' \
    | base64 -d > "$WORK/self-bundle.pem" 2>/dev/null || true
  [ -s "$WORK/self-bundle.pem" ] && curl -sf --cacert "$WORK/self-bundle.pem" \
    --resolve "bloodraven-webhook.$NS.svc:$HOOK_PORT:127.0.0.1" \
    "https://bloodraven-webhook.$NS.svc:$HOOK_PORT/readyz" >/dev/null && break
  sleep 0.5
done
expect_ok "the binary serves a certificate the published bundle trusts" curl -sf --cacert "$WORK/self-bundle.pem" \
  --resolve "bloodraven-webhook.$NS.svc:$HOOK_PORT:127.0.0.1" "https://bloodraven-webhook.$NS.svc:$HOOK_PORT/readyz"
SELF_BUNDLE=$(kubectl -n "$NS" get secret bloodraven-webhook-tls -o 'jsonpath={.data.ca-bundle\.crt}')
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  for bundle in $(kubectl get "$kind" bloodraven -o 'jsonpath={.webhooks[*].clientConfig.caBundle}'); do
    expect_out "  ... $kind caBundle is the Secret's bundle" "$SELF_BUNDLE" echo "$bundle"
  done
done
for _ in $(seq 40); do
  kubectl apply --dry-run=server -f "$WORK/bad.yaml" 2>&1 | grep -q "denied the request" && break
  sleep 0.5
done
expect_err "  ... a bad MysqlFailoverGroup is denied through it" \
  'admission webhook "validate.shipstream.io" denied the request' kubectl apply --dry-run=server -f "$WORK/bad.yaml"
expect_ok "  ... a production-ready one is admitted" kubectl apply --dry-run=server -f "$WORK/good.yaml"
# Stopped first, so it cannot re-publish what an upgrade might reset.
kill "$HOOK_PID" 2>/dev/null || true
wait "$HOOK_PID" 2>/dev/null || true
HOOK_PID=""
expect_helm "helm upgrade (tls.selfManaged, replicaCount 3)" "$HELM" upgrade bloodraven "${SELF[@]}" --set replicaCount=3
expect_ok "  ... release records settled" settle_releases
expect_out "  ... the caBundle the binary wrote stays" "$SELF_BUNDLE" \
  kubectl get validatingwebhookconfiguration bloodraven -o 'jsonpath={.webhooks[0].clientConfig.caBundle}'
expect_out "  ... and so does the Secret's data" "$SELF_BUNDLE" \
  kubectl -n "$NS" get secret bloodraven-webhook-tls -o 'jsonpath={.data.ca-bundle\.crt}'
expect_ok "helm uninstall (tls.selfManaged)" "$HELM" uninstall bloodraven --namespace "$NS" --wait

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
