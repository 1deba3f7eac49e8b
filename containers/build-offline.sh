#!/usr/bin/env bash
# Build the firedrill sandbox images without any image registry:
# debootstrap a minimal Debian root filesystem and `docker import` it.
#
#   containers/build-offline.sh [--force] ENGINE[:VERSION]...
#
#   postgres, mariadb     the versions Debian bookworm ships (15, 10.11)
#   postgres:13|15|17     PostgreSQL 13 (bullseye), 15 (bookworm), 17 (trixie)
#   mariadb:10.5|10.11|11.8  MariaDB 10.5 (bullseye), 10.11 (bookworm), 11.8 (trixie)
#   all                   postgres mariadb
#   matrix                every version above (the full test tier's matrix)
#   firedrill             the daemon's image
#
# A version picks the Debian suite that ships it; each image is built once and kept
# while what it is built from is unchanged (its firedrill.content label: the entrypoint
# script, this script, the suite; rebuild anyway with --force).
#
# Environment:
#   FIREDRILL_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   FIREDRILL_DEBIAN_SUITE   Debian suite  (default bookworm)
#   FIREDRILL_PG_MAJOR       PostgreSQL major shipped by that suite (default 15)
#   FIREDRILL_MARIADB_SERIES MariaDB series shipped by that suite (default 10.11);
#                            only used to find an existing image: the tag is
#                            taken from the installed package's version
#   FIREDRILL_SLIM           1 (default): drop message translations, the
#                            PostgreSQL LLVM JIT (~180 MB; sandboxes run with
#                            jit=off), MariaDB's Galera library and its
#                            offline Aria/MyISAM tools;
#                            0: keep the packages' files complete
#
# Produces firedrill-sandbox-<engine>:<major>, e.g. firedrill-sandbox-postgres:15,
# firedrill-sandbox-mariadb:10.11.
# Skips an image that is up to date unless --force is given. Must run as root
# (debootstrap).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${FIREDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${FIREDRILL_DEBIAN_SUITE:-bookworm}
pg_major=${FIREDRILL_PG_MAJOR:-15}
mariadb_series=${FIREDRILL_MARIADB_SERIES:-10.11}
slim=${FIREDRILL_SLIM:-1}

force=0
engines=()

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-offline: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<USAGE
usage: $0 [--force] ENGINE[:VERSION]...
engines: postgres, mariadb, all (= postgres mariadb); postgres:13|15|17,
         mariadb:10.5|10.11|11.8, matrix (= all six); firedrill (the daemon's image,
         firedrill:latest, from \$FIREDRILL_BIN or target/release/firedrill)
env: FIREDRILL_DEBIAN_MIRROR (default http://deb.debian.org/debian),
     FIREDRILL_DEBIAN_SUITE (default bookworm), FIREDRILL_PG_MAJOR (default 15),
     FIREDRILL_MARIADB_SERIES (default 10.11), FIREDRILL_SLIM (default 1)
USAGE
    exit 2
}

# suite_of ENGINE:VERSION: the Debian suite that ships that server version.
suite_of() {
    case $1 in
        postgres:13|mariadb:10.5) echo bullseye ;;
        postgres:15|mariadb:10.11) echo bookworm ;;
        postgres:17|mariadb:11.8) echo trixie ;;
        *) return 1 ;;
    esac
}

for arg in "$@"; do
    case $arg in
        -f|--force) force=1 ;;
        -h|--help) usage ;;
        all) engines+=(postgres mariadb) ;;
        matrix) engines+=(postgres:13 postgres:15 postgres:17 mariadb:10.5 mariadb:10.11 mariadb:11.8) ;;
        postgres|postgresql) engines+=(postgres) ;;
        mariadb|mysql) engines+=(mariadb) ;;
        postgres:*|mariadb:*)
            suite_of "$arg" >/dev/null || { printf 'build-offline: no Debian suite ships %s (PostgreSQL 13, 15, 17; MariaDB 10.5, 10.11, 11.8)\n' "$arg" >&2; exit 2; }
            engines+=("$arg") ;;
        firedrill) engines+=(firedrill) ;;
        *) printf 'build-offline: unknown engine or option: %s\n' "$arg" >&2; usage ;;
    esac
done
[ ${#engines[@]} -gt 0 ] || usage

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs it)"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"
[ -f "$here/firedrill-sandbox" ] || die "missing $here/firedrill-sandbox"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    log "installing debootstrap via apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends debootstrap
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

# --- shared build steps -----------------------------------------------------
# Each build: begin_build TAG (skip/--force logic) -> bootstrap_rootfs PKGS ->
# engine-specific checks and removals -> finish_rootfs -> import_rootfs.

old_id=

# content_key: what an image is built from, hashed: the entrypoint script, this
# script, the suite, the mirror's suite name and the slimming. An image is reused only
# while its firedrill.content label matches (so a changed entrypoint rebuilds it).
content_key() {
    { cat "$here/firedrill-sandbox" "$here/build-offline.sh"
      printf '%s\n' "$suite" "$slim"; } | sha256sum | cut -c1-16
}

# up_to_date TAG: TAG exists and was built from this content.
up_to_date() {
    local have
    have=$(docker image inspect -f '{{index .Config.Labels "firedrill.content"}}' "$1" 2>/dev/null) \
        || return 1
    if [ "$have" = "$(content_key)" ]; then return 0; fi
    log "$1 exists but was built from other content (${have:-unlabelled}, now $(content_key)): rebuilding"
    return 1
}

# begin_build TAG: returns 1 (skip) if TAG is up to date and --force was not given.
begin_build() {
    local tag=$1
    if [ "$force" = 0 ] && up_to_date "$tag"; then
        log "$tag is up to date (content $(content_key)), skipping (use --force to rebuild)"
        return 1
    fi
    old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    return 0
}

# bootstrap_rootfs INCLUDE: debootstrap a minbase $suite with INCLUDE
# (comma-separated packages) into a new $rootfs.
bootstrap_rootfs() {
    local include=$1 pid
    ensure_debootstrap
    rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/firedrill-rootfs.XXXXXX")
    chmod 0755 "$rootfs"
    log "debootstrap --variant=minbase $suite $rootfs $mirror (include: $include)"
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror"

    # A package postinst could in principle have started a daemon in the chroot.
    for pid in $(procs_in_rootfs "$rootfs"); do
        log "warning: killing process $pid left running inside the chroot"
        kill "$pid" 2>/dev/null || true
    done
}

# pkg_version PKG: the version of PKG installed in $rootfs.
pkg_version() {
    chroot "$rootfs" dpkg-query -W -f '${Version}' "$1" 2>/dev/null
}

# finish_rootfs: install the entrypoint, drop caches, logs and docs.
finish_rootfs() {
    log "installing firedrill-sandbox into /usr/local/bin"
    install -m 0755 "$here/firedrill-sandbox" "$rootfs/usr/local/bin/firedrill-sandbox"

    log "removing apt caches, logs and docs"
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
        rm -rf "$rootfs"/usr/share/locale/*
    fi
    # Docker provides these at run time.
    : > "$rootfs/etc/resolv.conf"
    : > "$rootfs/etc/hostname"
    mkdir -p "$rootfs/var/lib/firedrill/data" "$rootfs/run/firedrill"
    chmod 0700 "$rootfs/run/firedrill"
}

# import_rootfs TAG MESSAGE CHANGE...: docker import $rootfs as TAG with the
# given --change instructions, drop the image it replaced, remove $rootfs.
import_rootfs() {
    local tag=$1 message=$2 c
    shift 2
    local changes=()
    for c in "$@"; do changes+=(--change "$c"); done

    unmount_below "$rootfs"   # paranoia: nothing may be mounted while we tar

    log "docker import -> $tag"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        "${changes[@]}" --message "$message" - "$tag"
}

# add_stopsignal TAG SIGNAL: `docker import --change` rejects STOPSIGNAL on
# Docker 20.10, so add it with a one-line local build (no registry needed:
# the base is local).
add_stopsignal() {
    local tag=$1 sig=$2 out
    log "adding STOPSIGNAL $sig"
    if ! out=$(printf 'FROM %s\nSTOPSIGNAL %s\n' "$tag" "$sig" \
            | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1); then
        printf '%s\n' "$out" >&2
        return 1
    fi
}

# end_build TAG: drop the image TAG replaced (--force) unless a container
# uses it, remove $rootfs.
end_build() {
    local tag=$1
    if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
        docker image rm "$old_id" >/dev/null 2>&1 \
            && log "removed previous image ${old_id#sha256:}" || true
    fi
    old_id=

    log "removing $rootfs"
    unmount_below "$rootfs"
    rm -rf --one-file-system "$rootfs"
    rootfs=
    log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- engines ----------------------------------------------------------------
build_postgres() {
    local tag="firedrill-sandbox-postgres:${pg_major}"
    begin_build "$tag" || return 0
    bootstrap_rootfs "postgresql-${pg_major},pgbackrest,barman,age,zstd,util-linux,ca-certificates"

    [ -x "$rootfs/usr/lib/postgresql/${pg_major}/bin/postgres" ] \
        || die "postgresql-${pg_major} not installed in rootfs (wrong FIREDRILL_PG_MAJOR for $suite?)"

    log "removing default cluster ${pg_major}/main"
    rm -rf "$rootfs/var/lib/postgresql/${pg_major}/main" \
           "$rootfs/etc/postgresql/${pg_major}/main"
    if [ "$slim" = 1 ]; then
        # The sandbox runs with jit=off and English messages: drop the LLVM JIT
        # provider + libLLVM (only ever dlopen()ed by llvmjit.so) and the
        # translations. dpkg's file lists no longer match; fine for a sandbox.
        log "slimming: removing LLVM JIT and translations (FIREDRILL_SLIM=0 keeps them)"
        rm -rf "$rootfs/usr/lib/postgresql/${pg_major}/lib/llvmjit.so" \
               "$rootfs/usr/lib/postgresql/${pg_major}/lib/llvmjit_types.bc" \
               "$rootfs/usr/lib/postgresql/${pg_major}/lib/bitcode" \
               "$rootfs"/usr/lib/*-linux-gnu/libLLVM*.so*
    fi
    finish_rootfs

    import_rootfs "$tag" "firedrill sandbox: debootstrap $suite + postgresql-${pg_major}" \
        'ENTRYPOINT ["/usr/local/bin/firedrill-sandbox"]' \
        'CMD ["serve","postgres"]' \
        "ENV PATH=/usr/lib/postgresql/${pg_major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        'ENV LANG=C.UTF-8' \
        'LABEL firedrill.sandbox=postgres' \
        "LABEL firedrill.engine.major=${pg_major}" \
        "LABEL firedrill.content=$(content_key)"

    # SIGINT = PostgreSQL "fast" shutdown; SIGTERM ("smart") would wait for
    # every client session to end.
    add_stopsignal "$tag" SIGINT \
        || log "warning: could not add STOPSIGNAL; docker stop will use SIGTERM (smart shutdown)"
    end_build "$tag"
}

# MariaDB as the suite ships it (bookworm: 10.11). The tag is the series of the
# installed package (1:10.11.6-0+deb12u1 -> 10.11), known only after
# debootstrap, so an existing image is looked for under FIREDRILL_MARIADB_SERIES
# (default 10.11) before building.
build_mariadb() {
    local want_tag="firedrill-sandbox-mariadb:${mariadb_series}"
    begin_build "$want_tag" || return 0
    bootstrap_rootfs "mariadb-server,mariadb-client,mariadb-backup,age,zstd,util-linux,ca-certificates"

    [ -x "$rootfs/usr/sbin/mariadbd" ] || die "mariadb-server not installed in rootfs"
    local version series
    version=$(pkg_version mariadb-server) || die "cannot read the mariadb-server version"
    series=$(printf '%s\n' "$version" | sed -n 's/^\([0-9]*:\)\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\).*/\2/p')
    [ -n "$series" ] || die "cannot parse the mariadb-server version: $version"
    local tag="firedrill-sandbox-mariadb:${series}"
    if [ "$tag" != "$want_tag" ]; then
        log "warning: $suite ships MariaDB $series, not $mariadb_series (set FIREDRILL_MARIADB_SERIES=$series)"
        if [ "$force" = 0 ] && up_to_date "$tag"; then
            log "$tag is up to date, skipping (use --force to rebuild)"
            unmount_below "$rootfs"; rm -rf --one-file-system "$rootfs"; rootfs=
            return 0
        fi
        old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    fi
    log "mariadb-server $version -> $tag"

    # The package's postinst initialised /var/lib/mysql; the sandbox keeps its
    # data in the volume at /var/lib/firedrill/data, which must start empty.
    log "removing the package's data directory contents"
    rm -rf "$rootfs"/var/lib/mysql/* "$rootfs"/var/lib/mysql/.[!.]* \
           "$rootfs"/var/log/mysql/*
    mkdir -p "$rootfs/run/mysqld"
    chroot "$rootfs" chown mysql:mysql /run/mysqld
    if [ "$slim" = 1 ]; then
        # English server messages only; no Galera (the sandbox is a single
        # node: wsrep is never enabled). dpkg's file lists no longer match.
        log "slimming: removing message translations, Galera and offline table tools (FIREDRILL_SLIM=0 keeps them)"
        local d
        for d in "$rootfs"/usr/share/mysql/*/ "$rootfs"/usr/share/mariadb/*/; do
            [ -f "$d/errmsg.sys" ] || continue
            case ${d%/} in */english) ;; *) rm -rf "$d" ;; esac
        done
        rm -rf "$rootfs"/usr/lib/galera "$rootfs"/usr/share/galera
        # Offline Aria/MyISAM table tools and the load generator (~50 MB, 5 MB
        # each): a restore runs through the server, never through these.
        rm -f "$rootfs"/usr/bin/aria_* "$rootfs"/usr/bin/myisam* \
              "$rootfs"/usr/bin/mariadb-slap "$rootfs"/usr/bin/mysqlslap
    fi
    finish_rootfs

    import_rootfs "$tag" "firedrill sandbox: debootstrap $suite + mariadb-server $version" \
        'ENTRYPOINT ["/usr/local/bin/firedrill-sandbox"]' \
        'CMD ["serve","mariadb"]' \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV LANG=C.UTF-8' \
        'LABEL firedrill.sandbox=mariadb' \
        "LABEL firedrill.engine.major=${series}" \
        "LABEL firedrill.content=$(content_key)"
    # Docker's default stop signal, SIGTERM, is MariaDB's normal shutdown.
    end_build "$tag"
}

# The firedrill daemon's own image (firedrill:latest, what deploy/docker-compose.yml
# runs), from a binary built on this host: $FIREDRILL_BIN, or target/release/firedrill
# (built with `cargo build --release --locked` when missing). The rootfs is the same
# Debian suite as the sandboxes; build the binary on that suite (or an older glibc). The
# image is rebuilt when the binary changes (its SHA-256 is a label).
build_firedrill() {
    local tag=${FIREDRILL_IMAGE:-firedrill:latest}
    local bin=${FIREDRILL_BIN:-$here/../target/release/firedrill}
    if [ ! -x "$bin" ] && [ -z "${FIREDRILL_BIN:-}" ]; then
        log "building target/release/firedrill (cargo build --release --locked)"
        (cd "$here/.." && cargo build --release --locked --bin firedrill)
    fi
    [ -x "$bin" ] || die "no firedrill binary at $bin (set FIREDRILL_BIN)"
    local sha
    sha=$(sha256sum "$bin" | cut -d' ' -f1)
    if [ "$force" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "firedrill.binary.sha256"}}' "$tag" 2>/dev/null)" = "$sha" ]; then
        log "$tag already holds this binary, skipping (use --force to rebuild)"
        return 0
    fi
    old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    # pg_dump and mariadb-dump run on the daemon's side; tini is PID 1 (signals,
    # zombies); hostname for the healthcheck.
    bootstrap_rootfs "postgresql-client,mariadb-client,ca-certificates,tini,hostname"
    install -m 0755 "$bin" "$rootfs/usr/local/bin/firedrill"
    chroot "$rootfs" /usr/local/bin/firedrill --version >/dev/null \
        || die "$bin does not run on $suite (built against a newer glibc?)"
    chroot "$rootfs" groupadd --system --gid 10001 firedrill
    chroot "$rootfs" useradd --system --no-log-init -K SYS_UID_MAX=10001 --uid 10001 --gid 10001 --home-dir /var/lib/firedrill \
        --shell /usr/sbin/nologin firedrill
    install -d -o root -g 10001 -m 0750 "$rootfs/etc/firedrill" "$rootfs/etc/firedrill/drills"
    install -d -o 10001 -g 10001 -m 0750 "$rootfs/var/lib/firedrill"
    finish_rootfs
    mkdir -p "$rootfs/usr/share/doc/firedrill"
    install -m 0644 "$here/../LICENSE" "$rootfs/usr/share/doc/firedrill/LICENSE"
    rm -rf "$rootfs/usr/local/bin/firedrill-sandbox" "$rootfs/var/lib/firedrill/data" "$rootfs/run/firedrill"

    import_rootfs "$tag" "firedrill daemon: debootstrap $suite + $(basename "$bin") $sha" \
        'ENTRYPOINT ["tini", "--", "firedrill"]' \
        'CMD ["daemon"]' \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV LANG=C.UTF-8' \
        'ENV FIREDRILL_CONFIG=/etc/firedrill/firedrill.toml' \
        'ENV FIREDRILL_LOG=info' \
        'USER 10001:10001' \
        'WORKDIR /var/lib/firedrill' \
        'EXPOSE 9797' \
        "LABEL firedrill.binary.sha256=$sha"
    # SIGTERM (Docker's default) makes the daemon cancel drills and remove their
    # sandboxes within [daemon] grace.
    end_build "$tag"
}

for engine in "${engines[@]}"; do
    case $engine in
        postgres:*) suite=$(suite_of "$engine"); pg_major=${engine#*:}; build_postgres ;;
        mariadb:*) suite=$(suite_of "$engine"); mariadb_series=${engine#*:}; build_mariadb ;;
        *) "build_$engine" ;;
    esac
done
