# Sourced by the API-server scripts: wait for the project's CRDs to be Established.
#
# Polled rather than `kubectl wait`: right after the apply a CRD may have no conditions at
# all yet, which `kubectl wait` reports as an error instead of waiting.

# crds_established [SECONDS]: every CRD in crds/ Established within SECONDS (default 60);
# prints the ones that are not and returns 1 otherwise.
crds_established() {
  local limit=${1:-60} crd state waited=0 pending
  local names
  names=$(kubectl get -f crds/ -o name) || return 1
  while :; do
    pending=
    for crd in $names; do
      state=$(kubectl get "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null || true)
      [ "$state" = True ] || pending="$pending $crd"
    done
    [ -z "$pending" ] && return 0
    if [ "$waited" -ge $((limit * 5)) ]; then
      echo "not Established after ${limit} s:$pending" >&2
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}
