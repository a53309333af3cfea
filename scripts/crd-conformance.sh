#!/usr/bin/env bash
# crd-conformance.sh: prove crds/ against a real Kubernetes API server.
#
# Runs the standalone apiextensions-apiserver (built from Debian packages by a
# crd-apiserver.sh script; see docs/crd-apiserver.md), then:
#   - applies crds/ and waits for every CRD to be Established (structural schemas, CEL that
#     compiles, CEL cost budget);
#   - `kubectl apply --dry-run=server` of the production-ready example: accepted, defaults
#     filled in;
#   - one violating object per CEL rule: rejected with that rule's message;
#   - every manifest in tests/compat/ (written the way the original's examples write them):
#     accepted unchanged, meaning the same (spot-checked fields), `kubectl get mb` columns.
#
# Usage: scripts/crd-conformance.sh [PATH/TO/crd-apiserver.sh]
#   default: $CRD_APISERVER_SH, else ../shared/tools/crd-apiserver.sh next to the repo.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/crds.sh
. scripts/lib/crds.sh
ROOT=$PWD
SERVER=${1:-${CRD_APISERVER_SH:-$ROOT/../shared/tools/crd-apiserver.sh}}
[ -f "$SERVER" ] || { echo "crd-conformance: no crd-apiserver script at $SERVER" >&2; exit 2; }
export CRD_WORK=${CRD_WORK:-/tmp/crd-apiserver}
WORK=$(mktemp -d)
cleanup() { bash "$SERVER" stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

bash "$SERVER" setup
bash "$SERVER" stop >/dev/null 2>&1 || true
crd_start "$SERVER"
eval "$(bash "$SERVER" env)"

PASS=0 FAIL=0
ok()  { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; echo "$2" | sed 's/^/     /'; }

# --- CRDs are accepted and Established, without a warning (e.g. an unknown format)
if out=$(kubectl apply -f crds/ 2>&1); then ok "crds/ applied"; else bad "crds/ applied" "$out"; fi
if grep -qi 'warning' <<<"$out"; then bad "crds/ applied without warnings" "$out"
else ok "crds/ applied without warnings"; fi
if out=$(crds_established 60 2>&1); then ok "CRDs Established"; else bad "CRDs Established" "$out"; fi
for short in mfg mb mbv; do
  if out=$(kubectl get "$short" -A 2>&1); then ok "short name $short resolves"; else bad "short name $short" "$out"; fi
done

# --- the production-ready example is accepted with defaults filled in
# Keep only the shipstream.io documents: this server serves CRDs, not Secrets or Services.
awk -v dir="$WORK" 'BEGIN{n=0; f=dir"/doc0.yaml"} /^---/{n++; f=dir"/doc"n".yaml"; next} {print > f}' \
  docs/examples/production-ready.yaml
good=$(grep -l '^apiVersion: shipstream.io/' "$WORK"/doc*.yaml | sed -n 1p)
if out=$(kubectl apply --dry-run=server -f "$good" -o json 2>&1); then
  ok "production-ready group accepted (--dry-run=server)"
  for field in '.spec.pollInterval=2s' '.spec.failureThreshold=3' '.spec.recoveryThreshold=2' \
               '.spec.connectionDrainTimeout=30s' '.spec.sites[0].role=primary-candidate' \
               '.spec.backup.schedules[0].concurrencyPolicy=Forbid' '.spec.dns.ttl=60'; do
    path=${field%%=*} want=${field#*=}
    got=$(kubectl apply --dry-run=server -f "$good" -o "jsonpath={$path}" 2>&1 || true)
    if [ "$got" = "$want" ]; then ok "default $path = $want"; else bad "default $path" "got '$got', want '$want'"; fi
  done
else
  bad "production-ready group accepted" "$out"
fi
if out=$(kubectl get mfg -n orders -o name 2>&1) && [ -z "$out" ]; then
  ok "dry run stored nothing"; else bad "dry run stored nothing" "$out"; fi

# --- every CEL rule rejects a violating object with its message
base() {  # base NAME SPEC-EXTRA : a valid group plus extra spec lines
  cat <<YAML
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: $1, namespace: cel}
spec:
  dns: {hostname: db.example.com}
$2
YAML
}
SITES='  sites:
  - {name: iad, lbIP: 10.0.0.1, taintNodeSelector: {a: b}}
  - {name: pdx, lbIP: 10.0.0.2, taintNodeSelector: {a: c}}'
CREDS='  credentials: {operatorSecret: op}'
reject() {  # reject DESC MESSAGE-REGEX YAML
  local f=$WORK/cel.yaml out
  printf '%s\n' "$3" > "$f"
  if out=$(kubectl apply --dry-run=server -f "$f" 2>&1); then
    bad "CEL rejects: $1 (accepted)" "$out"
  elif grep -qE "$2" <<<"$out"; then ok "CEL rejects: $1"
  else bad "CEL rejects: $1 (wrong error)" "$out"; fi
}
accept() {
  local f=$WORK/ok.yaml out
  printf '%s\n' "$2" > "$f"
  if out=$(kubectl apply --dry-run=server -f "$f" 2>&1); then ok "accepted: $1"; else bad "accepted: $1" "$out"; fi
}
accept "minimal valid group" "$(base minimal "$SITES
$CREDS")"
reject "both secretName and credentials" "exactly one of spec.secretName and spec.credentials" \
  "$(base both "$SITES
$CREDS
  secretName: dsn")"
reject "neither secretName nor credentials" "exactly one of spec.secretName and spec.credentials" \
  "$(base neither "$SITES")"
reject "duplicate site names" "site names must be unique" "$(base dup "  sites:
  - {name: iad, lbIP: 10.0.0.1, taintNodeSelector: {a: b}}
  - {name: iad, lbIP: 10.0.0.2, taintNodeSelector: {a: c}}
  - {name: pdx, lbIP: 10.0.0.3, taintNodeSelector: {a: d}}
$CREDS")"
reject "fewer than 2 primary candidates" "at least 2 sites must have role primary-candidate" "$(base one "  sites:
  - {name: iad, lbIP: 10.0.0.1, taintNodeSelector: {a: b}}
  - {name: dr, role: dr-only, lbIP: 10.0.0.2, taintNodeSelector: {a: c}}
$CREDS")"
reject "sitePriorities names a non-candidate" "sitePriorities must name primary-candidate sites" "$(base prio "$SITES
$CREDS
  splitBrainPolicy: {sitePriorities: [sea]}")"
reject "candidate without lbIP" "need lbIP and taintNodeSelector" "$(base nolb "  sites:
  - {name: iad, taintNodeSelector: {a: b}}
  - {name: pdx, lbIP: 10.0.0.2, taintNodeSelector: {a: c}}
$CREDS")"
reject "storage type without its block" "storage.type must match exactly one" "$(base sto "$SITES
$CREDS
  backup:
    profiles:
    - {name: p, storage: {type: S3, pvc: {claimName: x}}, retentionPolicy: {count: 3}}")"
# The original's schema accepted these; BR-API-003 and BR-API-002 report them instead.
accept "schedule names an unknown profile (a lint finding, not a rejection)" "$(base sch "$SITES
$CREDS
  backup:
    profiles:
    - {name: p, storage: {type: PVC, pvc: {claimName: x}}}
    schedules:
    - {name: nightly, profileName: q, schedule: '0 2 * * *'}")"
accept "pitr names an unknown profile (a lint finding, not a rejection)" "$(base pitr "$SITES
$CREDS
  backup:
    profiles:
    - {name: p, storage: {type: PVC, pvc: {claimName: x}}}
    pitr: {enabled: true, profileName: q}")"
accept "duplicate profile names (a lint finding, not a rejection)" "$(base dupp "$SITES
$CREDS
  backup:
    profiles:
    - {name: p, storage: {type: PVC, pvc: {claimName: x}}}
    - {name: p, storage: {type: PVC, pvc: {claimName: other}}}")"
reject "dragonfly enabled without image" "dragonfly.image is required" "$(base df "$SITES
$CREDS
  dragonfly: {enabled: true}")"
reject "restore source with two kinds" "exactly one of mysqlBackupRef, s3 and pvc" "$(base rs "$SITES
$CREDS
  initFromBackup:
    source: {mysqlBackupRef: {name: b}, pvc: {claimName: c}}")"
reject "enum: unknown site role" "Unsupported value" "$(base role "  sites:
  - {name: iad, role: leader, lbIP: 10.0.0.1, taintNodeSelector: {a: b}}
  - {name: pdx, lbIP: 10.0.0.2, taintNodeSelector: {a: c}}
$CREDS")"
accept "unparseable duration (a lint finding, not a rejection)" "$(base dur "$SITES
$CREDS
  failoverCooldown: five minutes")"
reject "unknown field" "unknown field" "$(base unk "$SITES
$CREDS
  colour: red")"
accept "MysqlBackup" 'apiVersion: shipstream.io/v1alpha1
kind: MysqlBackup
metadata: {name: b1, namespace: cel}
spec: {failoverGroupRef: {name: orders}, profileName: offsite, triggeredBy: manual}'
accept "MysqlBackupVerification" 'apiVersion: shipstream.io/v1alpha1
kind: MysqlBackupVerification
metadata: {name: v1, namespace: cel}
spec:
  failoverGroupRef: {name: orders}
  profileName: offsite
  sanityCheck: {query: "SELECT COUNT(*) FROM orders.orders", expect: {minRows: 1}}'

reject "Secret name as an object (the legacy bloodraven shape)" "operatorSecret" "$(base legacy "$SITES
  credentials: {operatorSecret: {name: op}}")"

# --- the compatibility corpus: manifests written the way the original's examples write
# them are accepted unchanged. A manifest with metadata.generateName cannot be applied,
# only created.
for f in tests/compat/*.yaml; do
  if grep -q '^  generateName:' "$f"; then verb=create; else verb=apply; fi
  if out=$(kubectl "$verb" --dry-run=server -f "$f" 2>&1); then ok "corpus accepted: $f"
  else bad "corpus accepted: $f" "$out"; fi
done
for field in '.spec.backup.schedules[0].concurrencyPolicy=Allow' \
             '.spec.backup.profiles[0].verification.concurrencyPolicy=Replace' \
             '.spec.backup.profiles[0].verification.storage.size=53687091200' \
             '.spec.backup.profiles[0].dump.bytesPerChunk=64M' \
             '.spec.backup.retry.maxBackoffSeconds=1800'; do
  path=${field%%=*} want=${field#*=}
  got=$(kubectl apply --dry-run=server -f tests/compat/s3-backups-verification.yaml -o "jsonpath={$path}" 2>&1 || true)
  if [ "$got" = "$want" ]; then ok "corpus keeps $path = $want"; else bad "corpus $path" "got '$got', want '$want'"; fi
done
got=$(kubectl apply --dry-run=server -f tests/compat/pvc-backups.yaml -o 'jsonpath={.spec.sites[0].storage.size} {.spec.initFromBackup.pointInTime.stopDatetime}' 2>&1 || true)
if [ "$got" = "21474836480 2026-11-30 23:59:59" ]; then ok "integer quantity and pointInTime.stopDatetime kept"
else bad "integer quantity and pointInTime" "got '$got'"; fi

# --- kubectl get mb shows the columns tools read
kubectl create -f tests/compat/adhoc-backup.yaml >/dev/null 2>&1 || true
# The whole listing is read before its first line is taken: `| head -1` would end the
# pipe early, and under pipefail kubectl's SIGPIPE (141) would end the script.
listing=$(kubectl get mb -n inventory 2>&1 || true)
header=$(printf '%s\n' "$listing" | sed -n 1p | tr -s ' ')
if [ "$header" = "NAME GROUP PROFILE PHASE STARTED COMPLETED LOCATION SIZE AGE" ]; then ok "kubectl get mb columns"
else bad "kubectl get mb columns" "$header"; fi
kubectl delete mb -n inventory --all >/dev/null 2>&1 || true

echo "crd-conformance: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
