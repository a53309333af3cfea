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

# crd_start TOOL: `TOOL start`, tried up to three times.
#
# The tool checks that the server it spawned is alive by reading /proc/PID/cmdline right
# after the spawn; on a loaded machine that can happen before the spawned shell has exec'd
# the server, and the start then fails with "apiextensions-apiserver exited" and an empty
# log while the server itself comes up a moment later. So a failed start is retried, after
# showing the logs and stopping anything left running from $CRD_WORK/bin (an orphan would
# hold the ports).
crd_start() {
  local tool=$1 attempt
  for attempt in 1 2 3; do
    bash "$tool" start && return 0
    echo "crd_start: the API server did not start (attempt $attempt of 3); its logs:" >&2
    tail -n 20 "$CRD_WORK"/run/*.log >&2 2>/dev/null || true
    bash "$tool" stop >/dev/null 2>&1 || true
    pkill -f "$CRD_WORK/bin/" 2>/dev/null || true
    sleep 2
  done
  return 1
}
