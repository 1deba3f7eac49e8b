#!/usr/bin/env bash
# The README's first command on a fresh machine: a clean Debian bookworm made with
# debootstrap (minbase, the archive and its security updates as a new install has them),
# this checkout copied in, and nothing else but the host's Docker engine through its
# socket. deploy/demo.sh must install what it needs (Rust from Debian's rustc-web and
# cargo-web, PostgreSQL, the Docker CLI), wait for an apt that holds the lock, build
# firedrill with its progress shown, pass the demo drill, print the binary's path and the
# next commands; then the drill runs again by hand, and the demo runs again.
#
# Part of `tests/run --full` (about 25 minutes on 2 cores: the build is from nothing);
# also on its own, as root: tests/fresh-machine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/host-setup.sh

mirror=${FIREDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=firedrill-fresh-bookworm:test
name=firedrill-fresh-$$
rootfs=$(mktemp -d /var/tmp/firedrill-fresh.XXXXXX)
log=$(mktemp /tmp/firedrill-fresh-log.XXXXXX)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker image rm "$image" >/dev/null 2>&1 || true
  rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

fd_ensure_packages
fd_ensure_docker
containers/build-offline.sh postgres   # the sandbox image the demo's drill uses

fd_log "debootstrap --variant=minbase bookworm (a fresh machine)"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
: > "$rootfs/etc/resolv.conf"
# The certificate authorities this host adds locally (a proxy's, a company's) go in too:
# a machine of the same network trusts them. Debian's ca-certificates, which the demo
# installs, takes them into the system's bundle.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi
mkdir -p "$rootfs/root/firedrill"
# The checkout as committed plus what is changed in it, without target/ or .git.
tar -C . --exclude=./target --exclude=./.git -c . | tar -C "$rootfs/root/firedrill" -x
tar --numeric-owner -C "$rootfs" -c . | docker import - "$image" >/dev/null

fd_log "deploy/demo.sh in the fresh machine (its output follows)"
set +e
docker run --name "$name" -v /var/run/docker.sock:/var/run/docker.sock \
  -w /root/firedrill "$image" bash -c '
    set -u
    # An apt that holds the lock when the demo starts, as unattended-upgrades does.
    apt-get -qq update >/dev/null 2>&1 &
    deploy/demo.sh; echo "demo exit $?"
    echo "--- by hand"
    target/debug/firedrill --catalog /var/tmp/firedrill-demo/catalog.db run drills/demo-postgres.toml >/dev/null; echo "by hand exit $?"
    echo "--- again"
    deploy/demo.sh >/dev/null 2>&1; echo "again exit $?"
    echo "--- the quick-start daemon, as the README says"
    target/debug/firedrill --config deploy/quickstart.toml daemon > /tmp/daemon.log 2>&1 &
    for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:9797/healthz >/dev/null 2>&1 && break; sleep 1; done
    token=$(cat /var/tmp/firedrill-demo/token)
    id=$(curl -fsS -X POST -H "Authorization: Bearer $token" \
      http://127.0.0.1:9797/api/v1/drills/shop-every-5-minutes/runs | sed -n "s/.*\"run_id\": *\"\([^\"]*\)\".*/\1/p")
    echo "daemon run id $id"
    status=none
    for _ in $(seq 1 120); do
      got=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:9797/api/v1/runs/$id" || true)
      case $got in *\"report\":\{*) status=$(printf "%s" "$got" | sed -n "s/^{\"run_id\":\"[^\"]*\",\"drill\":\"[^\"]*\",\"status\":\"\([a-z_]*\)\".*/\1/p"); break ;; esac
      sleep 2
    done
    echo "daemon run $status"
    curl -fsS http://127.0.0.1:9797/ | grep -o "shop-every-5-minutes" | head -1
    kill %1; wait
    deploy/demo.sh --stop
  ' 2>&1 | tee "$log"
set -e

fail=0
check() {
  if grep -qE "$1" "$log"; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi
}
check_not() {
  if grep -qE "$1" "$log"; then echo "FAIL $2"; fail=1; else echo "ok   $2"; fi
}
echo "=== fresh bookworm machine"
check '^demo exit 0$' "the demo passes"
check 'PASSED: the backup restored' "the drill's verdict is shown"
check "installing Debian's rustc-web and cargo-web" "Rust is installed from Debian"
check 'Compiling firedrill' "the build shows its progress"
check 'the first build takes [0-9]' "the build's duration is estimated"
check '^The binary: /root/firedrill/target/debug/firedrill' "the binary's path is printed"
check 'quickstart.toml daemon' "the next commands are printed"
check '^by hand exit 0$' "the drill runs again by hand"
check '^again exit 0$' "the demo runs again"
check '^daemon run passed$' "the quick-start daemon drills its shipped drill through the API"
check_not 'could not change directory' "runuser starts in a directory postgres can read"
check_not 'Could not get lock' "apt's lock is waited for"
check_not 'chromium|alertmanager|mariadb-server' "only the demo's packages are installed"
exit "$fail"
