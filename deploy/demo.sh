#!/usr/bin/env bash
# The firedrill demo, on a fresh machine: installs what it needs, builds the offline
# sandbox image, starts a local PostgreSQL with seeded data, makes an age key pair, and
# runs drills/demo-postgres.toml end to end, printing the report.
#
#   deploy/demo.sh           human report
#   deploy/demo.sh --json    the JSON report
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/host-setup.sh

demo=/var/tmp/firedrill-demo
fd_ensure_packages
fd_ensure_docker
containers/build-offline.sh postgres

fd_log "building firedrill"
cargo build --quiet
fd=target/debug/firedrill

mkdir -p "$demo"
if [ ! -f "$demo/identity.txt" ]; then
  fd_log "generating an age key pair in $demo"
  "$fd" keygen --output "$demo/identity.txt" > "$demo/recipients.txt"
fi

export FIREDRILL_DEMO_PG_PASSWORD
FIREDRILL_DEMO_PG_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
fd_log "starting a local PostgreSQL on 127.0.0.1:55499 and seeding database shop"
fd_start_pg "$demo/pg" 55499 "$FIREDRILL_DEMO_PG_PASSWORD"
trap 'fd_stop_pg "$demo/pg"' EXIT
PGPASSWORD=$FIREDRILL_DEMO_PG_PASSWORD psql -q -h 127.0.0.1 -p 55499 -U postgres -v ON_ERROR_STOP=1 <<'SQL'
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
"$fd" run drills/demo-postgres.toml "$@"
code=$?
set -e
fd_log "exit code $code (0 passed, 1 the backup failed verification, 2 the drill could not run)"
exit "$code"
