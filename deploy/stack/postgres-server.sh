#!/bin/sh
# postgres-server.sh - runs the offline sandbox image (firedrill-sandbox-postgres:15, built
# by containers/build-offline.sh postgres) as a plain, networked PostgreSQL server.
#
# deploy/stack.yml mounts this file into the `catalog` service as a swarm config and runs
# it as the entrypoint (`sh /usr/local/bin/postgres-server`): no image beyond the ones the
# offline build makes, and no registry. The sandbox's own entrypoint is not usable as a
# server: it listens on a unix socket only and trusts every local connection.
#
# Environment:
#   POSTGRES_DB             the database to create on first start (required)
#   POSTGRES_USER           its owner, a login role (required)
#   POSTGRES_PASSWORD_FILE  the file holding that role's password, e.g. a swarm secret
#                           (required; the password never goes on a command line)
#   POSTGRES_INIT_SQL       optional: files (space-separated) run as POSTGRES_USER in
#                           POSTGRES_DB on first start, e.g. a seed
#   PGDATA                  the data directory (default /var/lib/firedrill/data: mount a
#                           volume there)
#
# First start: initdb (superuser `postgres`, peer authentication over the socket only),
# the role and the database, the init SQL, all on a server that listens on a private
# socket directory, so the healthcheck (pg_isready on /run/postgresql) stays red until
# the real server runs. Then the server runs as PID 1 (as user postgres) on every
# interface, with scram-sha-256 passwords for network clients. Later starts reuse the
# data directory; changing POSTGRES_* then changes nothing.
set -eu

prog=postgres-server
die() { echo "$prog: $*" >&2; exit 1; }

: "${POSTGRES_DB:?$prog: set POSTGRES_DB}"
: "${POSTGRES_USER:?$prog: set POSTGRES_USER}"
: "${POSTGRES_PASSWORD_FILE:?$prog: set POSTGRES_PASSWORD_FILE}"
PGDATA=${PGDATA:-/var/lib/firedrill/data}
[ "$(id -u)" = 0 ] || die "must start as root (it prepares the data directory, then runs the server as postgres)"
[ -s "$POSTGRES_PASSWORD_FILE" ] || die "no password in $POSTGRES_PASSWORD_FILE"
case $POSTGRES_DB$POSTGRES_USER in
    *[!a-z0-9_]*) die "POSTGRES_DB and POSTGRES_USER: lower-case letters, digits and _ only" ;;
esac

bindir=
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && bindir=$d
done
[ -n "$bindir" ] || die "no PostgreSQL server under /usr/lib/postgresql/*/bin"
PATH=$bindir:$PATH
export PATH
unset PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD 2>/dev/null || true
cd /

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
chmod 2775 /run/postgresql

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$PGDATA" "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "$prog: initdb in $PGDATA" >&2
    as_postgres initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 --no-instructions >&2
    # Network clients by password; the socket stays peer-only (root in the container
    # reaches it as `postgres` through setpriv, nobody else).
    printf '%s\n' "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" \
        >> "$PGDATA/pg_hba.conf"

    init_sock=$(mktemp -d /run/postgresql-init.XXXXXX)
    chown postgres:postgres "$init_sock"
    # The password goes through a file only the server's user reads, into psql's \set
    # (backquotes): never on a command line.
    pwcopy=$init_sock/password
    cp "$POSTGRES_PASSWORD_FILE" "$pwcopy"
    chown postgres:postgres "$pwcopy"
    chmod 0400 "$pwcopy"

    as_postgres pg_ctl -D "$PGDATA" -w -s -l "$init_sock/log" \
        -o "-c listen_addresses='' -c unix_socket_directories='$init_sock'" start \
        || { cat "$init_sock/log" >&2; die "the initialising server did not start"; }
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$init_sock" -U postgres -d postgres <<SQL
\\set pw \`cat $pwcopy\`
create role $POSTGRES_USER login password :'pw';
create database $POSTGRES_DB owner $POSTGRES_USER;
SQL
    for f in ${POSTGRES_INIT_SQL:-}; do
        echo "$prog: running $f" >&2
        # SET ROLE: the objects belong to POSTGRES_USER, as if it had made them.
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$init_sock" -U postgres -d "$POSTGRES_DB" \
            -c "set role $POSTGRES_USER" -f "$f" >&2
    done
    as_postgres pg_ctl -D "$PGDATA" -w -s -m fast stop
    rm -rf "$init_sock"
fi

echo "$prog: starting $(postgres --version)" >&2
exec setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$PGDATA" \
    postgres -D "$PGDATA" \
    -c listen_addresses='*' \
    -c unix_socket_directories=/run/postgresql \
    -c logging_collector=off \
    -c password_encryption=scram-sha-256
