#!/usr/bin/env bash
# The firedrill demo, on a fresh Debian machine with Docker: installs what the demo needs
# (and Rust, from Debian, when there is none), builds the offline sandbox image and
# firedrill, starts a local PostgreSQL with seeded data, makes an age key pair, and runs
# drills/demo-postgres.toml end to end, printing the report. It can be run again: the
# database is seeded afresh, the keys and the stored artifacts are kept.
#
#   deploy/demo.sh           human report
#   deploy/demo.sh --json    the JSON report
#   deploy/demo.sh --stop    stops the demo's PostgreSQL (left running for you to try
#                            `firedrill run` and the quick-start daemon by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/host-setup.sh

demo=/var/tmp/firedrill-demo
port=55499

if [ "${1:-}" = --stop ]; then
  fd_stop_pg "$demo/pg"
  fd_log "stopped the demo's PostgreSQL; $demo keeps the keys, the artifacts and the catalog (rm -rf it to start over)"
  exit 0
fi

FIREDRILL_PACKAGES=$FIREDRILL_DEMO_PACKAGES fd_ensure_packages
fd_ensure_rust
fd_ensure_docker
containers/build-offline.sh postgres

# The first build compiles some 430 crates: 15 to 20 minutes on 2 cores, about 5 on 8.
if [ -x target/debug/firedrill ]; then
  fd_log "building firedrill (changes since the last build only)"
else
  fd_log "building firedrill: the first build takes 15 to 20 minutes on 2 cores (about 5 on 8); cargo shows its progress"
fi
cargo build --bin firedrill
fd=$PWD/target/debug/firedrill

mkdir -p "$demo"
if [ ! -f "$demo/identity.txt" ]; then
  fd_log "generating an age key pair in $demo"
  "$fd" keygen --output "$demo/identity.txt" > "$demo/recipients.txt" 2>/dev/null
  fd_log "its recipient (public key), which drills/demo-postgres.toml encrypts to, is in $demo/recipients.txt"
fi
# The drill's database password: a file the drill reads (`password = { file = … }`), so
# that the drill runs again by hand after the demo.
if [ ! -s "$demo/pg-password" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$demo/pg-password")
fi
password=$(cat "$demo/pg-password")
# The quick-start daemon's API token (deploy/quickstart.toml).
if [ ! -s "$demo/token" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$demo/token")
fi

fd_log "starting a local PostgreSQL on 127.0.0.1:$port and seeding database shop"
fd_start_pg "$demo/pg" "$port" "$password"
PGPASSWORD=$password psql -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 <<'SQL'
DROP DATABASE IF EXISTS shop;
CREATE DATABASE shop;
\c shop
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 10000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), amount numeric(12,2), items jsonb, placed_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (customer_id, amount, items, placed_at)
  SELECT 1 + g % 10000, (g % 997) * 1.25, jsonb_build_object('sku', g % 113, 'qty', 1 + g % 4), now() - (g || ' minutes')::interval
  FROM generate_series(1, 50000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW daily_revenue AS SELECT date_trunc('day', placed_at) AS day, sum(amount) FROM orders GROUP BY 1;
CREATE SCHEMA audit;
CREATE TABLE audit.events (at timestamptz NOT NULL DEFAULT now(), actor text, payload bytea);
INSERT INTO audit.events (actor, payload) SELECT 'user' || (g % 50), decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
SQL

fd_log "running the drill"
set +e
"$fd" --catalog "$demo/catalog.db" run drills/demo-postgres.toml "$@"
code=$?
set -e
fd_log "exit code $code (0 passed, 1 the backup failed verification, 2 the drill could not run)"
rel=${fd#"$PWD"/}
cat >&2 <<EOF

The binary: $fd (cargo install --path . puts it in ~/.cargo/bin)
The demo's PostgreSQL keeps running on 127.0.0.1:$port; deploy/demo.sh --stop stops it.
Next:
  $rel --catalog $demo/catalog.db run drills/demo-postgres.toml   # the drill again
  $rel --catalog $demo/catalog.db history                         # its runs
  $rel --config deploy/quickstart.toml daemon
      # the daemon: drills/quickstart/ every 5 minutes, in the same catalog; dashboard and
      # API on http://127.0.0.1:9797/ (token in $demo/token); Ctrl-C stops it
EOF
exit "$code"
