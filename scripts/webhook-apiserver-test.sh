#!/usr/bin/env bash
# webhook-apiserver-test.sh: prove the admission contract against a real API server's own
# webhook client (the standalone apiextensions-apiserver built by the given crd-apiserver.sh).
#
#   - apply crds/ and wait until Established;
#   - start the webhook server on loopback with certificates from `generate_certs`;
#   - register /validate (specs and the status guard) and /mutate as file-based webhook
#     configurations (clientConfig.url + caBundle) in the fake core API's webhook dir;
#   - kubectl apply --dry-run=server of an unsafe MysqlFailoverGroup: refused with our
#     message and rule IDs; a production-ready one: accepted and defaulted by /mutate;
#   - a status write by a non-operator user (client certificate CN=alice): refused;
#     by the operator's ServiceAccount name: accepted;
#   - the operator namespace is excluded by the namespaceSelector.
#
# Usage: scripts/webhook-apiserver-test.sh [PATH/TO/crd-apiserver.sh]
#   default: $CRD_APISERVER_SH, else $SHARED/tools/crd-apiserver.sh, else ../shared/tools/.
# Environment: CRD_WORK (default /tmp/crd-apiserver-webhook; `setup` caches there, ~4 min the
# first time), WEBHOOK_PORT (16454). Ports differ from crd-conformance.sh's so both can run.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/crds.sh
. scripts/lib/crds.sh
ROOT=$PWD
SERVER=${1:-${CRD_APISERVER_SH:-${SHARED:-$ROOT/../shared}/tools/crd-apiserver.sh}}
[ -f "$SERVER" ] || { echo "webhook-apiserver-test: no crd-apiserver script at $SERVER" >&2; exit 2; }
export CRD_WORK=${CRD_WORK:-/tmp/crd-apiserver-webhook}
export CRD_ETCD_PORT=${CRD_ETCD_PORT:-12389} CRD_API_PORT=${CRD_API_PORT:-16453} CRD_CORE_PORT=${CRD_CORE_PORT:-16090}
PORT=${WEBHOOK_PORT:-16454}
OPERATOR_SA=system:serviceaccount:bloodraven-system:bloodraven
WORK=$(mktemp -d)
HOOK_PID=
cleanup() {
  if [ -n "$HOOK_PID" ]; then kill "$HOOK_PID" 2>/dev/null || true; wait "$HOOK_PID" 2>/dev/null || true; fi
  bash "$SERVER" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

bash "$SERVER" setup
bash "$SERVER" stop >/dev/null 2>&1 || true
crd_start "$SERVER"
eval "$(bash "$SERVER" env)"
RUN=$CRD_WORK/run

PASS=0 FAIL=0
ok()  { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; echo "$2" | sed 's/^/     /'; }
# expect_ok DESC CMD... / expect_err DESC REGEX CMD... (must fail and print REGEX)
expect_ok()  { local d=$1 out; shift; if out=$("$@" 2>&1); then ok "$d"; else bad "$d" "$out"; fi; }
expect_err() { local d=$1 re=$2 out; shift 2
  if out=$("$@" 2>&1); then bad "$d (unexpectedly accepted)" "$out"
  elif grep -qE -- "$re" <<<"$out"; then ok "$d"; else bad "$d (wrong error)" "$out"; fi; }
expect_out() { local d=$1 want=$2 out; shift 2
  out=$("$@" 2>&1) || true; if [ "$out" = "$want" ]; then ok "$d"; else bad "$d (want '$want')" "$out"; fi; }

# --- the webhook server
cargo build -q --bin bloodraven
HOOK_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/bloodraven
"$HOOK_BIN" certs generate --out "$WORK/certs" --ip 127.0.0.1 --dns localhost >/dev/null
RUST_LOG=warn "$HOOK_BIN" serve --listen "127.0.0.1:$PORT" --cert-dir "$WORK/certs" > "$WORK/webhook.log" 2>&1 &
HOOK_PID=$!
for _ in $(seq 100); do
  curl -sf --cacert "$WORK/certs/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
done
expect_out "webhook server is ready over TLS" "ok" curl -sf --cacert "$WORK/certs/ca.crt" "https://127.0.0.1:$PORT/readyz"

# --- CRDs
expect_ok "crds/ applied" kubectl apply -f crds/
expect_ok "CRDs Established" crds_established 60

# --- objects: the production-ready example's group, and an unsafe variant that passes the
#     CRD schema (so only the webhook can refuse it)
awk '/^---/{exit} {print}' docs/examples/production-ready.yaml > "$WORK/good.yaml"
sed -e 's|^  image: .*|  image: mysql:latest|' -e '/^  tls:/,/^      kind:/d' -e 's/^  name: orders$/  name: unsafe/' \
    -e '/^  imagePullPolicy:/d' "$WORK/good.yaml" > "$WORK/bad.yaml"
sed -e 's/^  namespace: orders$/  namespace: bloodraven-system/' "$WORK/bad.yaml" > "$WORK/bad-operator-ns.yaml"

# --- users: client certificates from the API server's CA; system:masters so that RBAC
#     (which this server cannot evaluate for other groups) allows them, and distinct
#     user names so the webhook sees who is writing
client_cert() {  # client_cert NAME CN
  openssl req -newkey rsa:2048 -nodes -keyout "$WORK/$1.key" -out "$WORK/$1.csr" -subj "/O=system:masters/CN=$2" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > "$WORK/$1.ext"
  openssl x509 -req -in "$WORK/$1.csr" -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" -CAcreateserial \
    -out "$WORK/$1.crt" -days 1 -extfile "$WORK/$1.ext" 2>/dev/null
}
client_cert alice alice
client_cert operator "$OPERATOR_SA"
as() { local who=$1; shift; kubectl --client-certificate="$WORK/$who.crt" --client-key="$WORK/$who.key" "$@"; }

# --- register the webhooks (file-based configurations, read by the fake core API)
CA=$(base64 -w0 "$WORK/certs/ca.crt")
webhook() {  # webhook NAME PATH OPERATIONS RESOURCES FAILURE_POLICY
  printf '{"name": "%s", "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "%s",
    "matchPolicy": "Equivalent", "timeoutSeconds": 5,
    "clientConfig": {"url": "https://127.0.0.1:%s%s", "caBundle": "%s"},
    "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["bloodraven-system"]}]},
    "rules": [{"apiGroups": ["shipstream.io"], "apiVersions": ["*"], "operations": %s, "resources": %s, "scope": "Namespaced"}]}' \
    "$1" "$5" "$PORT" "$2" "$CA" "$3" "$4"
}
RES='["mysqlfailovergroups", "mysqlbackups", "mysqlbackupverifications"]'
STATUS='["mysqlfailovergroups/status", "mysqlbackups/status", "mysqlbackupverifications/status"]'
cat > "$RUN/webhooks/.bloodraven.json.tmp" <<JSON
{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
 "metadata": {"name": "bloodraven"},
 "webhooks": [$(webhook validate.shipstream.io /validate '["CREATE", "UPDATE"]' "$RES" Fail),
              $(webhook status-guard.shipstream.io /validate '["UPDATE"]' "$STATUS" Fail)]}
JSON
mv "$RUN/webhooks/.bloodraven.json.tmp" "$RUN/webhooks/bloodraven.json"
cat > "$RUN/webhooks/.bloodraven-mutating.json.tmp" <<JSON
{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
 "metadata": {"name": "bloodraven"},
 "webhooks": [$(webhook mutate.shipstream.io /mutate '["CREATE", "UPDATE"]' "$RES" Ignore)]}
JSON
mv "$RUN/webhooks/.bloodraven-mutating.json.tmp" "$RUN/webhooks/bloodraven-mutating.json"
for i in $(seq 60); do
  out=$(kubectl apply --dry-run=server -f "$WORK/bad.yaml" 2>&1 || true)
  grep -q "denied the request" <<<"$out" && break; sleep 1
done
echo "webhook configuration picked up after ${i} s"

# --- admission through the API server's webhook client
expect_err "unsafe group refused (--dry-run=server) with our message and rule IDs" \
  'admission webhook "validate.shipstream.io" denied the request: [0-9]+ required findings?: BR-[A-Z]+-[0-9]{3} at /spec' \
  kubectl apply --dry-run=server -f "$WORK/bad.yaml"
expect_err "unsafe group refused (real apply)" 'denied the request: .*BR-[A-Z]+-[0-9]{3}' kubectl apply -f "$WORK/bad.yaml"
expect_out "nothing was stored for the refused group" "" kubectl get mfg -A -o name
expect_ok  "production-ready group accepted (--dry-run=server)" kubectl apply --dry-run=server -f "$WORK/good.yaml"
expect_ok  "production-ready group created" kubectl apply -f "$WORK/good.yaml"
expect_ok  "operator namespace is excluded by the namespaceSelector" kubectl apply --dry-run=server -f "$WORK/bad-operator-ns.yaml"
# /mutate's fixes reach the stored object: remove a defaultable field and let the webhook add it
sed '/^  imagePullPolicy:/d' "$WORK/good.yaml" > "$WORK/no-pull-policy.yaml"
expect_out "/mutate patch applied by the API server (imagePullPolicy)" "IfNotPresent" \
  kubectl apply --dry-run=server -f "$WORK/no-pull-policy.yaml" -o 'jsonpath={.spec.imagePullPolicy}'

# --- status guard
expect_err "status write by another user refused" \
  "denied the request: status guard: .*may only be changed by the operator \\($OPERATOR_SA\\), not by \"alice\"" \
  as alice patch mfg orders -n orders --subresource=status --type=merge -p '{"status":{"activeSite":"pdx"}}'
expect_ok  "status write by the operator's ServiceAccount accepted" \
  as operator patch mfg orders -n orders --subresource=status --type=merge -p '{"status":{"activeSite":"iad"}}'
expect_out "  ... status is the operator's" "iad" kubectl get mfg orders -n orders -o 'jsonpath={.status.activeSite}'
expect_ok  "spec update by another user still goes through /validate and passes" \
  as alice patch mfg orders -n orders --type=merge -p '{"metadata":{"labels":{"team":"payments"}}}'

grep -q 'panicked' "$WORK/webhook.log" && bad "webhook server log has no panic" "$(cat "$WORK/webhook.log")" || ok "webhook server log has no panic"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
