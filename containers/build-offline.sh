#!/usr/bin/env bash
# Build the firedrill sandbox images without any image registry:
# debootstrap a minimal Debian root filesystem and `docker import` it.
#
#   containers/build-offline.sh [--force] postgres|all
#
# Environment:
#   FIREDRILL_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   FIREDRILL_DEBIAN_SUITE   Debian suite  (default bookworm)
#   FIREDRILL_PG_MAJOR       PostgreSQL major shipped by that suite (default 15)
#   FIREDRILL_SLIM           1 (default): drop message translations and the
#                            LLVM JIT (~180 MB; sandboxes run with jit=off);
#                            0: keep the packages' files complete
#
# Produces firedrill-sandbox-<engine>:<major>, e.g. firedrill-sandbox-postgres:15.
# Skips an image that already exists unless --force is given. Must run as root
# (debootstrap).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${FIREDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${FIREDRILL_DEBIAN_SUITE:-bookworm}
pg_major=${FIREDRILL_PG_MAJOR:-15}
slim=${FIREDRILL_SLIM:-1}

force=0
engines=()

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-offline: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<USAGE
usage: $0 [--force] ENGINE...
engines: postgres, all (= postgres)
env: FIREDRILL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
     FIREDRILL_DEBIAN_SUITE (default bookworm), FIREDRILL_PG_MAJOR (default 15)
USAGE
    exit 2
}

for arg in "$@"; do
    case $arg in
        -f|--force) force=1 ;;
        -h|--help) usage ;;
        all) engines+=(postgres) ;;
        postgres|postgresql) engines+=(postgres) ;;
        *) printf 'build-offline: unknown engine or option: %s\n' "$arg" >&2; usage ;;
    esac
done
[ ${#engines[@]} -gt 0 ] || usage

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs it)"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"
[ -f "$here/firedrill-sandbox" ] || die "missing $here/firedrill-sandbox"

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    log "installing debootstrap via apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
}

# --- temp rootfs handling ---------------------------------------------------
rootfs=

# Unmount anything still mounted below $1 (deepest first), e.g. proc/sys/dev
# left behind by an interrupted debootstrap, so rm never walks into them.
unmount_below() {
    local dir=$1 mnt
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts \
        | sort -r | while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        done
}

cleanup() {
    local rc=$?
    if [ -n "$rootfs" ] && [ -d "$rootfs" ]; then
        log "removing $rootfs"
        unmount_below "$rootfs"
        rm -rf --one-file-system "$rootfs" || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PIDs of processes whose root directory is inside $1.
procs_in_rootfs() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case $r in "$1"|"$1"/*) echo "${p#/proc/}" ;; esac
    done
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# --- engines ----------------------------------------------------------------
build_postgres() {
    local tag="firedrill-sandbox-postgres:${pg_major}"
    if image_exists "$tag" && [ "$force" = 0 ]; then
        log "$tag already exists, skipping (use --force to rebuild)"
        return 0
    fi
    local old_id
    old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    ensure_debootstrap

    rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/firedrill-rootfs.XXXXXX")
    chmod 0755 "$rootfs"
    local include="postgresql-${pg_major},age,zstd,util-linux,ca-certificates"
    log "debootstrap --variant=minbase $suite $rootfs $mirror (include: $include)"
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror"

    [ -x "$rootfs/usr/lib/postgresql/${pg_major}/bin/postgres" ] \
        || die "postgresql-${pg_major} not installed in rootfs (wrong FIREDRILL_PG_MAJOR for $suite?)"

    # A package postinst could in principle have started a daemon in the chroot.
    local pid
    for pid in $(procs_in_rootfs "$rootfs"); do
        log "warning: killing process $pid left running inside the chroot"
        kill "$pid" 2>/dev/null || true
    done

    log "installing firedrill-sandbox into /usr/local/bin"
    install -m 0755 "$here/firedrill-sandbox" "$rootfs/usr/local/bin/firedrill-sandbox"

    log "removing default cluster ${pg_major}/main and apt caches"
    rm -rf "$rootfs/var/lib/postgresql/${pg_major}/main" \
           "$rootfs/etc/postgresql/${pg_major}/main"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/var/cache/apt/*.bin \
           "$rootfs"/var/cache/debconf/*-old \
           "$rootfs"/var/log/apt/* \
           "$rootfs"/var/log/dpkg.log \
           "$rootfs"/var/log/bootstrap.log \
           "$rootfs"/usr/share/doc/* \
           "$rootfs"/usr/share/man/* \
           "$rootfs"/usr/share/info/*
    if [ "$slim" = 1 ]; then
        # The sandbox runs with jit=off and English messages: drop the LLVM JIT
        # provider + libLLVM (only ever dlopen()ed by llvmjit.so) and the
        # translations. dpkg's file lists no longer match; fine for a sandbox.
        log "slimming: removing LLVM JIT and translations (FIREDRILL_SLIM=0 keeps them)"
        rm -rf "$rootfs/usr/lib/postgresql/${pg_major}/lib/llvmjit.so" \
               "$rootfs/usr/lib/postgresql/${pg_major}/lib/llvmjit_types.bc" \
               "$rootfs/usr/lib/postgresql/${pg_major}/lib/bitcode" \
               "$rootfs"/usr/lib/*-linux-gnu/libLLVM-*.so* \
               "$rootfs"/usr/share/locale/*
    fi
    # Docker provides these at run time.
    : > "$rootfs/etc/resolv.conf"
    : > "$rootfs/etc/hostname"
    mkdir -p "$rootfs/var/lib/firedrill/data" "$rootfs/run/firedrill"
    chmod 0700 "$rootfs/run/firedrill"

    unmount_below "$rootfs"   # paranoia: nothing may be mounted while we tar

    log "docker import -> $tag"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENTRYPOINT ["/usr/local/bin/firedrill-sandbox"]' \
        --change 'CMD ["serve","postgres"]' \
        --change "ENV PATH=/usr/lib/postgresql/${pg_major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL firedrill.sandbox=postgres' \
        --change "LABEL firedrill.engine.major=${pg_major}" \
        --message "firedrill sandbox: debootstrap $suite + postgresql-${pg_major}" \
        - "$tag"

    # `docker import --change` rejects STOPSIGNAL on Docker 20.10, so add it
    # with a one-line local build (no registry needed: the base is local).
    # SIGINT = PostgreSQL "fast" shutdown; SIGTERM ("smart") would wait for
    # every client session to end.
    log "adding STOPSIGNAL SIGINT"
    local out
    if ! out=$(printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$tag" \
            | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1); then
        printf '%s\n' "$out" >&2
        log "warning: could not add STOPSIGNAL; docker stop will use SIGTERM (smart shutdown)"
    fi

    # Drop the image this one replaced (--force), unless a container uses it.
    if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
        docker image rm "$old_id" >/dev/null 2>&1 \
            && log "removed previous image ${old_id#sha256:}" || true
    fi

    log "removing $rootfs"
    unmount_below "$rootfs"
    rm -rf --one-file-system "$rootfs"
    rootfs=
    log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

for engine in "${engines[@]}"; do
    "build_$engine"
done
