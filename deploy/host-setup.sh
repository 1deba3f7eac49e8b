# Shell functions that prepare a Debian/Ubuntu host for firedrill's demo and tests:
# packages, a running Docker engine, the offline sandbox images, and a throwaway
# PostgreSQL server to act as a drill's source. Sourced by deploy/demo.sh and tests/run.

FIREDRILL_PACKAGES="curl openssl postgresql mariadb-server mariadb-client age zstd debootstrap ca-certificates python3-aiosmtpd prometheus-alertmanager systemd docker-compose python3-yaml python3-jsonschema libxml2-utils python3-pip python3-venv chromium prometheus restic borgbackup openssh-server openssh-client pgbackrest stunnel4 mariadb-backup barman chromium-driver python3-jwt python3-cryptography"

# What the demo alone needs (deploy/demo.sh installs only these): a PostgreSQL to drill,
# debootstrap for the offline sandbox image, certificates for the crates registry.
FIREDRILL_DEMO_PACKAGES="postgresql debootstrap ca-certificates curl"

# The Rust that Cargo.lock builds with (its newest dependency's rust-version).
FIREDRILL_RUST_MIN=1.95

fd_log() { printf '==> %s\n' "$*" >&2; }

# apt-get that waits (up to 10 minutes) for a lock another apt holds, as
# unattended-upgrades does on many fresh machines, instead of failing at once.
fd_apt() {
  local err waited=0
  err=$(mktemp)
  while :; do
    if fd_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" 2>"$err"; then
      rm -f "$err"
      return 0
    fi
    if grep -qE "Could not get lock|Unable to lock|another process using it" "$err" && [ "$waited" -lt 600 ]; then
      [ "$waited" = 0 ] && fd_log "another apt holds the package lock (unattended-upgrades?); waiting for it, up to 10 minutes"
      sleep 5
      waited=$((waited + 5))
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return 1
  done
}

fd_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages firedrill's demo and tests use, when missing.
fd_ensure_packages() {
  local missing=()
  for p in $FIREDRILL_PACKAGES "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    fd_log "installing ${missing[*]}"
    fd_apt update -qq
    fd_apt install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Makes sure cargo and rustc are at least $FIREDRILL_RUST_MIN: Debian's rustc-web and
# cargo-web (bookworm-security carries a recent one) when there is none, or says exactly
# what to install.
fd_rust_ok() {
  local v
  v=$(rustc --version 2>/dev/null | awk '{print $2}') || return 1
  command -v cargo >/dev/null 2>&1 || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$FIREDRILL_RUST_MIN" "${v%%-*}" | sort -V | head -1)" = "$FIREDRILL_RUST_MIN" ]
}
fd_ensure_rust() {
  fd_rust_ok && return 0
  if [ -n "$(rustc --version 2>/dev/null)" ]; then
    fd_log "$(rustc --version) is older than the $FIREDRILL_RUST_MIN firedrill needs"
  fi
  if command -v apt-get >/dev/null 2>&1 && apt-cache show cargo-web >/dev/null 2>&1; then
    fd_log "installing Debian's rustc-web and cargo-web (Rust for building firedrill)"
    fd_apt install -y -qq --no-install-recommends rustc-web cargo-web gcc libc6-dev pkg-config >/dev/null || true
    hash -r
    fd_rust_ok && return 0
  fi
  fd_log "firedrill needs Rust $FIREDRILL_RUST_MIN or newer (cargo and rustc) and none is installed here."
  fd_log "On Debian bookworm: enable bookworm-security and 'apt-get install rustc-web cargo-web'; elsewhere: https://rustup.rs ('curl --proto =https -sSf https://sh.rustup.rs | sh'), then run this again."
  return 1
}

# Makes sure a Docker engine answers; installs and starts one if not.
fd_ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    fd_log "installing docker.io"
    fd_apt update -qq
    fd_apt install -y -qq docker.io >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    fd_log "starting dockerd"
    fd_as_root sh -c 'nohup dockerd >/var/log/firedrill-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      sleep 1
    done
    fd_log "dockerd did not start; see /var/log/firedrill-dockerd.log"
    return 1
  fi
}

fd_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# Starts a throwaway PostgreSQL cluster in DIR on 127.0.0.1:PORT with password
# authentication over TCP for user postgres, the password being $PGPASSWORD_FOR_SOURCE.
# Stops any cluster already running in DIR first.
fd_start_pg() {
  local dir=$1 port=$2 password=$3
  local bin; bin=$(fd_pg_bin)
  local run=()
  if [ "$(id -u)" = 0 ]; then run=(env -C / runuser -u postgres --); fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  # FD_KEEP_DATA=1 (the benchmark): start the cluster DIR already holds, with its data.
  if [ "${FD_KEEP_DATA:-}" = 1 ] && [ -f "$dir/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
    "${run[@]}" "$bin/psql" -XqAt -h "$dir" -p "$port" -U postgres postgres \
      -c "ALTER USER postgres PASSWORD '$password'" >/dev/null
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 0755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  local pwfile="$dir/pw"
  (umask 077; printf '%s\n' "$password" > "$pwfile")
  [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
  rm -f "$pwfile"
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
}

# Starts a throwaway PostgreSQL in DIR on 127.0.0.1:PORT (user postgres, trust) whose
# data checksums are on and whose WAL pgBackRest archives to a posix repository,
# DIR/repo, encrypted with CIPHER (aes-256-cbc; "" for none), as stanza `main`; then
# takes a full backup. pgBackRest's settings: DIR/pgbackrest.conf. For the physical
# drills' tests and demo; run as root it runs everything as postgres.
# FD_PGBR_S3="BUCKET HOST PORT REGION KEY SECRET CA_FILE PATH": the repository is in S3
# instead (pgBackRest speaks HTTPS only: HOST:PORT is a TLS endpoint CA_FILE signed).
fd_start_pgbackrest() {
  local dir=$1 port=$2 cipher=${3:-}
  local bin; bin=$(fd_pg_bin)
  local run=()
  if [ "$(id -u)" = 0 ]; then run=(env -C / runuser -u postgres --); fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  mkdir -p "$dir/repo" "$dir/lock" "$dir/log"
  chmod 0755 "$dir"
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --data-checksums --auth-local=trust \
    --auth-host=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
  {
    echo "[global]"
    if [ -n "${FD_PGBR_S3:-}" ]; then
      local bucket host s3port region key secret ca path
      read -r bucket host s3port region key secret ca path <<<"$FD_PGBR_S3"
      echo "repo1-type=s3"
      echo "repo1-s3-bucket=$bucket"
      echo "repo1-s3-endpoint=$host"
      echo "repo1-storage-port=$s3port"
      echo "repo1-s3-region=$region"
      echo "repo1-s3-key=$key"
      echo "repo1-s3-key-secret=$secret"
      echo "repo1-s3-uri-style=path"
      echo "repo1-storage-ca-file=$ca"
      echo "repo1-path=$path"
    else
      echo "repo1-path=$dir/repo"
    fi
    echo "repo1-retention-full=10"
    if [ -n "$cipher" ]; then
      echo "repo1-cipher-type=aes-256-cbc"
      echo "repo1-cipher-pass=$cipher"
    fi
    echo "lock-path=$dir/lock"
    echo "log-path=$dir/log"
    echo "log-level-console=warn"
    echo "start-fast=y"
    echo "archive-timeout=60"
    echo "[main]"
    echo "pg1-path=$dir/data"
    echo "pg1-port=$port"
    echo "pg1-socket-path=$dir"
  } > "$dir/pgbackrest.conf"
  chmod 0640 "$dir/pgbackrest.conf"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pgbackrest.conf"
  cat >> "$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
listen_addresses = '127.0.0.1'
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config=$dir/pgbackrest.conf --stanza=main archive-push %p'
max_wal_senders = 3
CONF
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  "${run[@]}" pgbackrest --config="$dir/pgbackrest.conf" --stanza=main stanza-create
  "${run[@]}" pgbackrest --config="$dir/pgbackrest.conf" --stanza=main --type=full backup
}

# Starts a throwaway PostgreSQL in DIR on PORT (unix socket in DIR, user postgres,
# trust) whose WAL a Barman server `pg` archives (archive_command into its incoming
# directory), with Barman's home in DIR/barman and its settings in DIR/barman.conf;
# then takes a Barman backup. As root, Barman runs as the barman user and PostgreSQL as
# postgres. For the physical drills' tests.
fd_start_barman() {
  local dir=$1 port=$2
  local bin; bin=$(fd_pg_bin)
  local run=() bm=() buser
  buser=$(id -un)
  if [ "$(id -u)" = 0 ]; then run=(env -C / runuser -u postgres --); bm=(env -C / runuser -u barman --); buser=barman; fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  # WAL lands whole in incoming (Barman takes any file there): written to a spool on
  # the same file system, readable by barman, then renamed in.
  mkdir -p "$dir/barman/pg/incoming" "$dir/pg" "$dir/spool"
  chmod 0755 "$dir" "$dir/barman"
  if [ "$(id -u)" = 0 ]; then chown -R barman:barman "$dir/barman"; chown postgres "$dir/pg"; fi
  chmod 1777 "$dir/barman/pg/incoming" "$dir/spool"
  "${run[@]}" "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1
  cat >> "$dir/pg/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir/pg'
listen_addresses = '127.0.0.1'
wal_level = replica
archive_mode = on
archive_command = 'install -m 0644 %p $dir/spool/%f && mv $dir/spool/%f $dir/barman/pg/incoming/%f'
CONF
  echo "local replication postgres trust" >> "$dir/pg/data/pg_hba.conf"
  "${run[@]}" "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w start >/dev/null
  cat > "$dir/barman.conf" <<CONF
[barman]
barman_home = $dir/barman
barman_user = $buser
log_file = $dir/barman/barman.log
compression = gzip
[pg]
description = firedrill test
conninfo = host=$dir/pg port=$port user=postgres dbname=postgres
streaming_conninfo = host=$dir/pg port=$port user=postgres
backup_method = postgres
archiver = on
CONF
  chmod 0644 "$dir/barman.conf"
  fd_barman "$dir" switch-wal --force --archive pg >/dev/null 2>&1 || true
  fd_barman "$dir" cron >/dev/null
  fd_barman "$dir" backup pg --wait >/dev/null
}

# fd_barman DIR ARGS...: Barman of fd_start_barman's DIR, as its user.
fd_barman() {
  local dir=$1; shift
  local bm=()
  if [ "$(id -u)" = 0 ]; then bm=(env -C / runuser -u barman --); fi
  "${bm[@]}" barman -c "$dir/barman.conf" "$@"
}

fd_stop_pg() {
  local dir=$1
  local bin; bin=$(fd_pg_bin)
  local run=()
  if [ "$(id -u)" = 0 ]; then run=(env -C / runuser -u postgres --); fi
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}

# Starts a throwaway MariaDB server in DIR on 127.0.0.1:PORT, with user `firedrill`
# (password PASSWORD, all privileges: for tests and the demo only).
# FD_MARIADB_ARGS: more server options (e.g. TLS: --ssl-cert=… --require-secure-transport=ON).
fd_start_mariadb() {
  local dir=$1 port=$2 password=$3
  fd_stop_mariadb "$dir"
  local user=() keep=
  if [ "$(id -u)" = 0 ]; then user=(--user=mysql); fi
  # FD_KEEP_DATA=1 (the benchmark): start the server DIR already holds, with its data.
  if [ "${FD_KEEP_DATA:-}" = 1 ] && [ -d "$dir/data/mysql" ]; then
    keep=1
  else
    rm -rf "$dir"
    mkdir -p "$dir/data"
    chmod 0755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql "$dir"; fi
    mariadb-install-db "${user[@]}" --datadir="$dir/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install.log" 2>&1
  fi
  (setsid mariadbd "${user[@]}" --datadir="$dir/data" --socket="$dir/sock" --port="$port" \
    --bind-address=127.0.0.1 --pid-file="$dir/pid" --log-error="$dir/error.log" \
    --max-allowed-packet=1G --skip-log-bin --innodb-buffer-pool-size=256M \
    --character-set-server=utf8mb4 ${FD_MARIADB_ARGS:-} >/dev/null 2>&1 &)
  for _ in $(seq 1 60); do
    mariadb-admin --socket="$dir/sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb --socket="$dir/sock" -uroot <<SQL
$([ -n "$keep" ] && echo "DROP USER IF EXISTS 'firedrill'@'127.0.0.1';")
CREATE USER 'firedrill'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'firedrill'@'127.0.0.1' WITH GRANT OPTION;
SQL
}

fd_stop_mariadb() {
  local dir=$1
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    for _ in $(seq 1 40); do [ -f "$dir/pid" ] || break; sleep 0.25; done
  fi
}

# Garage, a real S3-compatible server (from the crates registry; built once, cached).
FIREDRILL_TOOLS=${FIREDRILL_TOOLS:-/opt/firedrill-tools}

fd_ensure_garage() {
  mkdir -p "$FIREDRILL_TOOLS"
  # One build at a time: CI starts it early in the background, the tests wait for it.
  (
    flock 9
    if [ ! -x "$FIREDRILL_TOOLS/bin/garage" ]; then
      fd_log "building garage (S3 server for the tests) into $FIREDRILL_TOOLS; about 10 minutes, once"
      cargo install garage --locked --root "$FIREDRILL_TOOLS" --quiet
    fi
  ) 9>"$FIREDRILL_TOOLS/.garage.lock"
}

# cargo-deny, the supply-chain check in .ci/run (licenses, bans, sources, advisories),
# pinned so CI's verdict does not move under us; built from crates.io once (a few
# minutes) into $FIREDRILL_TOOLS/bin, rebuilt only when the pinned version changes.
FIREDRILL_CARGO_DENY_VERSION=0.20.2

fd_ensure_cargo_deny() {
  mkdir -p "$FIREDRILL_TOOLS"
  (
    flock 9
    local bin="$FIREDRILL_TOOLS/bin/cargo-deny"
    if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "cargo-deny $FIREDRILL_CARGO_DENY_VERSION" ]; then
      fd_log "building cargo-deny $FIREDRILL_CARGO_DENY_VERSION into $FIREDRILL_TOOLS; a few minutes, once"
      cargo install cargo-deny --version "=$FIREDRILL_CARGO_DENY_VERSION" --locked --force \
        --root "$FIREDRILL_TOOLS" --quiet
    fi
  ) 9>"$FIREDRILL_TOOLS/.cargo-deny.lock"
}

# schemathesis (PyPI), which fuzzes the daemon's HTTP API against its OpenAPI document
# (tests/openapi.rs), pinned, in a virtualenv under $FIREDRILL_TOOLS; installed once.
# Exports FIREDRILL_SCHEMATHESIS.
FIREDRILL_SCHEMATHESIS_VERSION=4.32.5

fd_ensure_schemathesis() {
  mkdir -p "$FIREDRILL_TOOLS"
  local venv="$FIREDRILL_TOOLS/schemathesis"
  (
    flock 9
    if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $FIREDRILL_SCHEMATHESIS_VERSION" ]; then
      fd_log "installing schemathesis $FIREDRILL_SCHEMATHESIS_VERSION into $venv"
      rm -rf "$venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$FIREDRILL_SCHEMATHESIS_VERSION"
    fi
  ) 9>"$FIREDRILL_TOOLS/.schemathesis.lock"
  export FIREDRILL_SCHEMATHESIS="$venv/bin/schemathesis"
}

# Jenkins' JUnit schema, junit-10.xsd (jenkinsci/xunit-plugin), which tests/reports.rs
# validates firedrill's JUnit output against. It is third-party, so not in the repository:
# it is taken once from pytest's source distribution on PyPI (pytest's own tests validate
# against the same file) into $FIREDRILL_TOOLS. Exports FIREDRILL_JUNIT_XSD.
FIREDRILL_JUNIT_PYTEST=8.3.3
FIREDRILL_JUNIT_SDIST_SHA256=70b98107bd648308a7952b06e6ca9a50bc660be218d53c257cc1fc94fda10181

fd_junit_schema() {
  local xsd="$FIREDRILL_TOOLS/junit-10.xsd"
  if [ ! -s "$xsd" ]; then
    mkdir -p "$FIREDRILL_TOOLS" || return 1
    local tmp; tmp=$(mktemp -d) || return 1
    local sdist="$tmp/pytest-$FIREDRILL_JUNIT_PYTEST.tar.gz"
    local member="pytest-$FIREDRILL_JUNIT_PYTEST/testing/example_scripts/junit-10.xsd"
    fd_log "fetching junit-10.xsd from the pytest $FIREDRILL_JUNIT_PYTEST source distribution (PyPI) into $FIREDRILL_TOOLS"
    if ! python3 -m pip download --quiet --disable-pip-version-check "pytest==$FIREDRILL_JUNIT_PYTEST" \
           --no-binary :all: --no-deps -d "$tmp" >"$tmp/pip.log" 2>&1; then
      fd_log "pip download failed (is python3-pip installed, PyPI reachable?):"
      cat "$tmp/pip.log" >&2; rm -rf "$tmp"; return 1
    fi
    if ! printf '%s  %s\n' "$FIREDRILL_JUNIT_SDIST_SHA256" "$sdist" | sha256sum -c --quiet - >&2; then
      fd_log "$sdist does not have the expected SHA-256"; rm -rf "$tmp"; return 1
    fi
    if ! tar -xzf "$sdist" -C "$tmp" "$member" || [ ! -s "$tmp/$member" ]; then
      fd_log "$member not found in $sdist"; rm -rf "$tmp"; return 1
    fi
    # Renamed into place: a concurrent or interrupted run never leaves half a file.
    install -m 0644 "$tmp/$member" "$xsd.$$" && mv -f "$xsd.$$" "$xsd"
    local rc=$?
    rm -rf "$tmp"
    [ "$rc" = 0 ] || return "$rc"
  fi
  export FIREDRILL_JUNIT_XSD="$xsd"
}

# Starts a single-node Garage in DIR with its S3 API on 127.0.0.1:S3PORT (RPC on
# S3PORT+1, admin on S3PORT+3), creates bucket `firedrill` and a key for it, and writes
# the key to DIR/env as FIREDRILL_TEST_S3_* variables.
fd_start_garage() {
  local dir=$1 port=$2
  local garage="$FIREDRILL_TOOLS/bin/garage"
  fd_stop_garage "$dir"
  rm -rf "$dir"
  mkdir -p "$dir/meta" "$dir/data"
  cat > "$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((port + 1))"
rpc_public_addr = "127.0.0.1:$((port + 1))"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((port + 3))"
TOML
  (setsid "$garage" -c "$dir/garage.toml" server >"$dir/server.log" 2>&1 & echo $! > "$dir/pid")
  local node=""
  for _ in $(seq 1 60); do
    node=$("$garage" -c "$dir/garage.toml" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
    sleep 0.5
  done
  [ -n "$node" ] || { fd_log "garage did not start; see $dir/server.log"; return 1; }
  # `node id` reads the node's key file and can answer before the server listens: the
  # first command that talks to it waits until it does.
  local assigned=""
  for _ in $(seq 1 60); do
    "$garage" -c "$dir/garage.toml" layout assign -z dc1 -c 1G "$node" >/dev/null 2>&1 && { assigned=1; break; }
    sleep 0.5
  done
  [ -n "$assigned" ] || { fd_log "garage did not accept its layout; see $dir/server.log"; return 1; }
  "$garage" -c "$dir/garage.toml" layout apply --version 1 >/dev/null
  for _ in $(seq 1 40); do
    "$garage" -c "$dir/garage.toml" bucket create firedrill >/dev/null 2>&1 && break
    sleep 0.5
  done
  local info
  info=$("$garage" -c "$dir/garage.toml" key create firedrill-key)
  "$garage" -c "$dir/garage.toml" bucket allow --read --write --owner firedrill --key firedrill-key >/dev/null
  local key_id secret
  key_id=$(printf '%s\n' "$info" | awk '/Key ID/ {print $NF}')
  secret=$(printf '%s\n' "$info" | awk '/Secret key/ {print $NF}')
  cat > "$dir/env" <<ENV
FIREDRILL_TEST_S3_ENDPOINT=http://127.0.0.1:$port
FIREDRILL_TEST_S3_BUCKET=firedrill
FIREDRILL_TEST_S3_REGION=garage
FIREDRILL_TEST_S3_KEY_ID=$key_id
FIREDRILL_TEST_S3_SECRET=$secret
ENV
}

fd_stop_garage() {
  local dir=$1
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

# A real SMTP server (aiosmtpd) on 127.0.0.1:PORT keeping every message in DIR/maildir.
fd_start_smtp() {
  local dir=$1 port=$2
  fd_stop_pidfile "$dir/smtp.pid"
  mkdir -p "$dir/maildir/tmp" "$dir/maildir/new" "$dir/maildir/cur"
  (setsid /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$dir/maildir" \
     >"$dir/smtp.log" 2>&1 & echo $! > "$dir/smtp.pid")
  for _ in $(seq 1 40); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.25
  done
  fd_log "aiosmtpd did not start; see $dir/smtp.log"; return 1
}

# A real Prometheus Alertmanager on 127.0.0.1:PORT (alerts go nowhere further).
fd_start_alertmanager() {
  local dir=$1 port=$2
  fd_stop_pidfile "$dir/am.pid"
  mkdir -p "$dir/am-data"
  cat > "$dir/alertmanager.yml" <<YML
route:
  receiver: "null"
  group_wait: 1s
receivers:
  - name: "null"
YML
  (setsid prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/am-data" \
     --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$dir/am.log" 2>&1 & echo $! > "$dir/am.pid")
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  fd_log "alertmanager did not start; see $dir/am.log"; return 1
}

fd_stop_pidfile() {
  if [ -f "$1" ]; then kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; fi
}
