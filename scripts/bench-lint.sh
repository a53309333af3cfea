#!/usr/bin/env bash
# bench-lint.sh: the lint figures of docs/performance.md (section "Linting"). Rerunnable.
#
#   1. `cargo bench --bench lint`: MysqlFailoverGroup and Deployment throughput on one core,
#      end to end from YAML, and the peak memory of one pass in a fresh process.
#   2. The same Deployment corpus, one file per Deployment, linted by this project and by
#      checkov (all its Kubernetes checks, and only the image and securityContext checks
#      that match ours), each pinned to one core; prints wall time, peak RSS and the ratio.
#   3. When the release `bloodraven` binary has a `lint` subcommand, it is timed too.
#
# Environment: LINT_GROUPS (10000), DEPLOYMENTS (10000 in-process), CHECKOV_DEPLOYMENTS (2000),
# ROUNDS (5), CHECKOV_VERSION (3.3.30), WORK_DIR (<repo>/.work/bench-lint),
# CARGO_TARGET_DIR (cargo's default).
# Needs python3 (venv) for checkov; installs checkov into .deps/checkov on first use.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
WORK=${WORK_DIR:-$REPO_ROOT/.work/bench-lint}
GROUPS_N=${LINT_GROUPS:-10000}
DEPLOYMENTS=${DEPLOYMENTS:-10000}
CHECKOV_DEPLOYMENTS=${CHECKOV_DEPLOYMENTS:-2000}
ROUNDS=${ROUNDS:-5}
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
CHECKOV_VENV=$REPO_ROOT/.deps/checkov
# checkov's counterparts of our image-pinning and securityContext rules.
CHECKOV_COMPARABLE=CKV_K8S_14,CKV_K8S_43,CKV_K8S_16,CKV_K8S_20,CKV_K8S_23,CKV_K8S_28,CKV_K8S_29,CKV_K8S_30,CKV_K8S_31,CKV_K8S_37

log() { printf '[bench-lint] %s\n' "$*" >&2; }
die() { printf '[bench-lint] FAILED: %s\n' "$*" >&2; exit 1; }

ONE_CORE=()
if command -v taskset >/dev/null; then ONE_CORE=(taskset -c 0); fi
command -v /usr/bin/time >/dev/null || die "/usr/bin/time is needed (apt-get install time)"

mkdir -p "$WORK"

calc() { awk "BEGIN { print $1 }"; }

# Runs a command on one core under /usr/bin/time; prints "<wall s> <peak RSS KiB> <CPU s>"
# (CPU = user + system, which a busy shared machine does not inflate the way it does wall).
# Exit codes 0 and 1 both mean "ran" (1 = findings); anything else fails the script.
measure() {
    local out=$1; shift
    local rc=0
    /usr/bin/time -o "$WORK/time.txt" -f '%e %M %U %S' "${ONE_CORE[@]}" "$@" >"$out" 2>"$out.err" || rc=$?
    [ "$rc" -le 1 ] || { cat "$out.err" >&2; die "$* exited $rc"; }
    tail -1 "$WORK/time.txt" | awk '{ print $1, $2, $3 + $4 }'
}

log "building the benchmark (release profile)"
cargo bench --bench lint --no-run >/dev/null 2>&1 || cargo bench --bench lint --no-run
BENCH=$(cargo bench --bench lint --no-run --message-format=json 2>/dev/null \
    | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$BENCH" ] || die "cannot find the benchmark executable"

log "1. in-process throughput and peak memory ($GROUPS_N groups, $DEPLOYMENTS Deployments, $ROUNDS rounds)"
"${ONE_CORE[@]}" "$BENCH" --groups "$GROUPS_N" --deployments "$DEPLOYMENTS" --rounds "$ROUNDS" \
    | tee "$WORK/bench.txt"

log "2. Deployment corpus for the checkov comparison ($CHECKOV_DEPLOYMENTS files)"
rm -rf "$WORK/deployments"
"$BENCH" --write-deployments "$WORK/deployments" --deployments "$CHECKOV_DEPLOYMENTS" >/dev/null

if ! "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
    log "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install -q "checkov==$CHECKOV_VERSION"
fi
CHECKOV=("$CHECKOV_VENV/bin/checkov" --framework kubernetes --skip-download --compact --quiet
         -d "$WORK/deployments")

read -r ours_s ours_kib ours_cpu < <(measure "$WORK/ours.txt" "$BENCH" --lint-dir "$WORK/deployments")
cat "$WORK/ours.txt"
# /usr/bin/time has centisecond resolution; keep the ratios finite.
ours_s=$(calc "($ours_s < 0.01) ? 0.01 : $ours_s")
ours_cpu=$(calc "($ours_cpu < 0.01) ? 0.01 : $ours_cpu")
read -r all_s all_kib all_cpu < <(measure "$WORK/checkov-all.txt" "${CHECKOV[@]}")
read -r cmp_s cmp_kib cmp_cpu < <(measure "$WORK/checkov-comparable.txt" "${CHECKOV[@]}" --check "$CHECKOV_COMPARABLE")
grep -m1 -i 'failed checks' "$WORK/checkov-comparable.txt" || true

BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/bloodraven
cli_line=""
# Only a CLI that really has the subcommand (its help names --format) is timed.
if [ -x "$BIN" ] && "$BIN" lint --help 2>/dev/null | grep -q -- '--format'; then
    read -r cli_s cli_kib _ < <(measure "$WORK/cli.txt" "$BIN" lint --format json "$WORK/deployments")
    cli_line=$(printf 'bloodraven lint (release binary)  %8.2f s %8.0f /s %8.1f MiB' \
        "$cli_s" "$(calc "$CHECKOV_DEPLOYMENTS / $cli_s")" "$(calc "$cli_kib / 1024")")
    "$BENCH" --write-groups "$WORK/groups.yaml" --groups "$GROUPS_N" >/dev/null
    read -r g_s g_kib _ < <(measure "$WORK/cli-groups.txt" "$BIN" lint --format json "$WORK/groups.yaml")
    cli_line+=$(printf '\nbloodraven lint on %s groups   %8.2f s %8.0f /s %8.1f MiB' \
        "$GROUPS_N" "$g_s" "$(calc "$GROUPS_N / $g_s")" "$(calc "$g_kib / 1024")")
else
    log "the release binary has no lint subcommand yet; only the in-process figures are shown"
fi

rate() { calc "$CHECKOV_DEPLOYMENTS / $1"; }
{
    echo
    echo "## $CHECKOV_DEPLOYMENTS Deployments, one file each, one core (wall time includes start-up)"
    printf '%-34s %10s %10s %10s %12s\n' tool wall CPU Deployments/s "peak RSS"
    printf '%-34s %8.2f s %8.2f s %10.0f %8.1f MiB\n' "bloodraven (bench --lint-dir)" "$ours_s" "$ours_cpu" "$(rate "$ours_s")" "$(calc "$ours_kib / 1024")"
    [ -z "$cli_line" ] || echo "$cli_line"
    printf '%-34s %8.2f s %8.2f s %10.0f %8.1f MiB\n' "checkov, all kubernetes checks" "$all_s" "$all_cpu" "$(rate "$all_s")" "$(calc "$all_kib / 1024")"
    printf '%-34s %8.2f s %8.2f s %10.0f %8.1f MiB\n' "checkov, comparable checks" "$cmp_s" "$cmp_cpu" "$(rate "$cmp_s")" "$(calc "$cmp_kib / 1024")"
    printf 'ratio (wall): bloodraven is %.0fx faster than checkov with all checks, %.0fx with the comparable checks\n' \
        "$(calc "$all_s / $ours_s")" "$(calc "$cmp_s / $ours_s")"
    printf 'ratio (CPU):  %.0fx and %.0fx\n' "$(calc "$all_cpu / $ours_cpu")" "$(calc "$cmp_cpu / $ours_cpu")"
    echo "checkov: $("${CHECKOV_VENV}/bin/checkov" --version)"
} | tee "$WORK/comparison.txt"
