#!/usr/bin/env bash
# firedrill's benchmark: firedrill against the tools it wraps, side by side, on the same
# data and machine. Not part of the test run (it takes minutes and wants a quiet machine).
#
#   tests/bench/run.sh                 # ~1.2 GB PostgreSQL + ~400 MB MariaDB
#   FD_BENCH_PG_ROWS=40000000 tests/bench/run.sh   # bigger (≈ rows × 170 bytes)
#
# It builds the data sets once (kept in $FD_BENCH_DIR, default /var/tmp/firedrill-bench,
# vacuumed and frozen so that no run pays for another's hint bits), warms the caches with
# one untimed dump, then measures each pipeline $FD_BENCH_REPEAT times (default 3), in
# turn, and keeps the median:
#   backup   firedrill's dump→zstd→age→store pipeline (the dump stage of its report)
#            vs `pg_dump -Fc -Z0 | zstd -3 -T0 | age -r KEY > file`
#            vs `pg_dump | restic backup --stdin` into a new local repository
#   restore  firedrill's restore stage (fetch, decrypt, decompress, restore in the sandbox)
#            vs `pg_restore -j N` of a plain local dump file in a container of the same image
#   overhead a drill of a near-empty database: provision + teardown beyond the server's start
#   memory   firedrill's peak RSS (GNU time) during every drill, and during drills of the
#            same one-table database at 1 GB and at $FD_BENCH_BIG_GB GB (default 10; 0
#            skips them), medians of $FD_BENCH_REPEAT runs each
#   floor    `pg_dump -Fc -Z0 > /dev/null` alone: no pipeline built on pg_dump beats it;
#            and the machine's busy CPU seconds during it and during the zstd|age pipeline,
#            over the cores: the least wall time that work can take, however parallel
# and the same for MariaDB against `mariadb-dump | zstd | age` and `mariadb < dump`.
# The table goes to stdout and to $FD_BENCH_OUT (default target/bench/<date>-<commit>.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/host-setup.sh

dir=${FD_BENCH_DIR:-/var/tmp/firedrill-bench}
rows=${FD_BENCH_PG_ROWS:-7000000}
my_rows=${FD_BENCH_MY_ROWS:-2500000}
jobs=${FD_BENCH_JOBS:-$(nproc)}
repeat=${FD_BENCH_REPEAT:-3}
big_gb=${FD_BENCH_BIG_GB:-10} # the memory check's second drill; 0 skips it
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${FD_BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)-$commit.md}
mkdir -p "$dir" "$(dirname "$out")"

fd_ensure_packages restic time
fd_ensure_docker
containers/build-offline.sh postgres mariadb

fd_log "building firedrill (release)"
cargo build --release --quiet
fd=$PWD/target/release/firedrill

pg_port=55488 my_port=53388
export FD_BENCH_PG_PASSWORD=bench-pg FD_BENCH_MY_PASSWORD=bench-my
export FD_KEEP_DATA=1 # the data sets stay between runs
fd_start_pg "$dir/pg" "$pg_port" "$FD_BENCH_PG_PASSWORD"
fd_start_mariadb "$dir/mariadb" "$my_port" "$FD_BENCH_MY_PASSWORD"
peer_pg=fd-bench-peer-pg peer_my=fd-bench-peer-my
cleanup() {
  docker rm -f "$peer_pg" "$peer_my" >/dev/null 2>&1 || true
  fd_stop_pg "$dir/pg"
  fd_stop_mariadb "$dir/mariadb"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGPASSWORD=$FD_BENCH_PG_PASSWORD
pg_bin=$(fd_pg_bin)

# --- data sets -----------------------------------------------------------------------
if [ "$(psql -XAtqc "SELECT count(*) FROM pg_database WHERE datname = 'bench'" postgres)" != 1 ]; then
  fd_log "generating the PostgreSQL data set: $rows events (mixed types, indexes)"
  psql -Xq -v ON_ERROR_STOP=1 postgres -c "CREATE DATABASE bench"
  psql -Xq -v ON_ERROR_STOP=1 bench <<SQL
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, country char(2), created_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', (ARRAY['de','fr','us','jp','br'])[1 + g % 5], now() - (g || ' minutes')::interval FROM generate_series(1, 200000) g;
CREATE TABLE events (
  id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), at timestamptz NOT NULL,
  kind text NOT NULL, amount numeric(12,2), ok boolean, score double precision,
  payload jsonb, tags text[], ref uuid);
INSERT INTO events SELECT g, 1 + g % 200000, now() - (g || ' seconds')::interval,
  (ARRAY['view','click','buy','refund'])[1 + g % 4], (g % 10007) * 0.37, g % 3 = 0, random(),
  jsonb_build_object('sku', g % 9973, 'qty', 1 + g % 7, 'note', md5(g::text)),
  ARRAY['t' || g % 11, 't' || g % 13], md5(g::text)::uuid
  FROM generate_series(1, $rows) g;
CREATE INDEX events_customer ON events (customer_id);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_kind_amount ON events (kind, amount);
SQL
  psql -Xq -v ON_ERROR_STOP=1 bench -c "VACUUM (FREEZE, ANALYZE)"
fi
pg_size=$(psql -XAtqc "SELECT pg_database_size('bench')" postgres)
# The memory check's pair: the same table at 1 GB and at $big_gb GB, so that the two
# drills differ in size only. ~1.9 kB rows (under the TOAST threshold: stored as they
# are), 1 GiB per 512 Ki rows.
blobs_db() { # GB
  [ "$(psql -XAtqc "SELECT count(*) FROM pg_database WHERE datname = 'big$1'" postgres)" = 1 ] && return 0
  fd_log "generating the $1 GB PostgreSQL data set for the memory check"
  psql -Xq -v ON_ERROR_STOP=1 postgres -c "CREATE DATABASE big$1"
  psql -Xq -v ON_ERROR_STOP=1 "big$1" <<SQL
CREATE TABLE blobs (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO blobs SELECT g, repeat(md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text), 19)
  FROM generate_series(1, $1 * 512 * 1024) g;
VACUUM (FREEZE, ANALYZE) blobs;
SQL
}
if [ "$big_gb" -gt 0 ]; then blobs_db 1; blobs_db "$big_gb"; fi
psql -Xq postgres -c "DROP DATABASE IF EXISTS tiny" -c "CREATE DATABASE tiny"
psql -Xq tiny -c "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)"

my() { mariadb --protocol=TCP -h 127.0.0.1 -P "$my_port" -u firedrill -p"$FD_BENCH_MY_PASSWORD" "$@"; }
if [ "$(my -N -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'bench'")" != 1 ]; then
  fd_log "generating the MariaDB data set: $my_rows events"
  my -e "CREATE DATABASE bench CHARACTER SET utf8mb4"
  my bench -e "CREATE TABLE events (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, at DATETIME(6) NOT NULL, kind VARCHAR(10) NOT NULL, amount DECIMAL(12,2), payload JSON, note VARCHAR(64), KEY (customer_id), KEY (at)) ENGINE=InnoDB;
    INSERT INTO events SELECT seq, 1 + seq % 200000, NOW(6) - INTERVAL seq SECOND, ELT(1 + seq % 4, 'view','click','buy','refund'), (seq % 10007) * 0.37, JSON_OBJECT('sku', seq % 9973, 'qty', 1 + seq % 7), MD5(seq) FROM seq_1_to_$my_rows;"
fi
my -N -e "ANALYZE TABLE bench.events" >/dev/null
my_size=$(my -N -e "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bench'")

# --- keys and drills -------------------------------------------------------------------
rm -rf "$dir/work"; mkdir -p "$dir/work/store"
"$fd" keygen --output "$dir/work/identity.txt" > "$dir/work/recipient.txt"
recipient=$(cat "$dir/work/recipient.txt")
drill() { # NAME ENGINE-SOURCE
  cat > "$dir/work/$1.toml" <<TOML
$2

[storage]
type = "local"
path = "$dir/work/store"

[encryption]
recipients = ["$recipient"]
identity = { file = "identity.txt" }

[sandbox]
memory = "6GiB"
cpus = $jobs

[timeouts]
dump = "1h"
encrypt = "1h"
upload = "1h"
restore = "2h"
verify = "1h"
TOML
}
drill pg "[source]
type = \"postgres\"
host = \"127.0.0.1\"
port = $pg_port
database = \"bench\"
user = \"postgres\"
password = { env = \"FD_BENCH_PG_PASSWORD\" }"
drill tiny "[source]
type = \"postgres\"
host = \"127.0.0.1\"
port = $pg_port
database = \"tiny\"
user = \"postgres\"
password = { env = \"FD_BENCH_PG_PASSWORD\" }"
for gb in 1 "$big_gb"; do
  drill "big$gb" "[source]
type = \"postgres\"
host = \"127.0.0.1\"
port = $pg_port
database = \"big$gb\"
user = \"postgres\"
password = { env = \"FD_BENCH_PG_PASSWORD\" }"
done
drill my "[source]
type = \"mariadb\"
host = \"127.0.0.1\"
port = $my_port
user = \"firedrill\"
database = \"bench\"
password = { env = \"FD_BENCH_MY_PASSWORD\" }"

now() { date +%s.%N; }
# CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal),
# the database server's included: a pipeline's CPU over the cores bounds its wall time.
clk_tck=$(getconf CLK_TCK)
cpu_busy() { awk -v t="$clk_tck" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
stage_s() { # REPORT STAGE
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.2f" % (sum(s["duration_ms"] for s in r["stages"] if s["stage"] == sys.argv[2]) / 1000))' "$1" "$2"
}
rss_mib() { awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
check_passed() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["verdict"] == "passed" else 1)' "$1" \
    || { fd_log "the drill did not pass:"; cat "$1" >&2; exit 1; }
}
run_drill() { # NAME -> $dir/work/NAME.json, NAME.time
  (cd "$dir/work" && /usr/bin/time -v -o "$1.time" "$fd" --catalog "$dir/work/catalog.db" run "$1.toml" --json --quiet --report-dir "$dir/work/reports" > "$1.json") || true
  check_passed "$dir/work/$1.json"
}
# A sandbox-image container to restore into with the tools themselves.
peer_container() { # NAME IMAGE ENGINE
  docker rm -f "$1" >/dev/null 2>&1 || true
  docker run -d --name "$1" --network none --cpus "$jobs" --memory 6g --tmpfs /run/firedrill "$2" serve "$3" >/dev/null
  local i; for i in $(seq 1 120); do docker exec "$1" firedrill-sandbox ready "$3" && return 0; sleep 0.5; done
  fd_log "peer container $1 did not become ready"; return 1
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

rows_md=()
row() { rows_md+=("| $1 | $2 | $3 | $(awk -v a="$2" -v b="$3" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') | $4 | $5 |"); }

# --- PostgreSQL ------------------------------------------------------------------------
fd_log "PostgreSQL: warming the caches (one untimed pg_dump)"
"$pg_bin/pg_dump" -Fc -Z0 bench > /dev/null
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$dir/work/restic"
fd_b=() fd_r=() fd_m=() peer_b=() restic_b=() floor_b=() floor_cpu=() peer_cpu=()
for i in $(seq 1 "$repeat"); do
  fd_log "PostgreSQL $i/$repeat: pg_dump -Fc -Z0 > /dev/null (the floor)"
  sync; t0=$(now) c0=$(cpu_busy)
  "$pg_bin/pg_dump" -Fc -Z0 bench > /dev/null
  floor_b+=("$(secs "$t0" "$(now)")") floor_cpu+=("$(secs "$c0" "$(cpu_busy)")")

  fd_log "PostgreSQL $i/$repeat: firedrill drill of $(numfmt --to=iec "$pg_size")"
  sync; run_drill pg
  fd_b+=("$(stage_s "$dir/work/pg.json" dump)")
  fd_r+=("$(stage_s "$dir/work/pg.json" restore)")
  fd_m+=("$(rss_mib "$dir/work/pg.time")")

  fd_log "PostgreSQL $i/$repeat: pg_dump -Fc -Z0 | zstd | age"
  sync; t0=$(now) c0=$(cpu_busy)
  "$pg_bin/pg_dump" -Fc -Z0 bench | zstd -3 -T0 -q | age -r "$recipient" > "$dir/work/peer.dump.zst.age"
  peer_b+=("$(secs "$t0" "$(now)")") peer_cpu+=("$(secs "$c0" "$(cpu_busy)")")

  fd_log "PostgreSQL $i/$repeat: pg_dump | restic backup --stdin (new repository)"
  rm -rf "$RESTIC_REPOSITORY"; restic init -q >/dev/null
  sync; t0=$(now)
  "$pg_bin/pg_dump" bench | restic backup -q --stdin --stdin-filename bench.sql >/dev/null
  restic_b+=("$(secs "$t0" "$(now)")")
done
fd_backup=$(median "${fd_b[@]}") fd_restore=$(median "${fd_r[@]}") fd_rss=$(maxof "${fd_m[@]}")
peer_backup=$(median "${peer_b[@]}") restic_backup=$(median "${restic_b[@]}") floor_backup=$(median "${floor_b[@]}")

fd_log "PostgreSQL: pg_restore -j $jobs from a local file"
"$pg_bin/pg_dump" -Fc -Z0 -f "$dir/work/peer.dump" bench
peer_container "$peer_pg" firedrill-sandbox-postgres:15 postgres
docker cp "$dir/work/peer.dump" "$peer_pg:/var/lib/firedrill/peer.dump"
docker exec "$peer_pg" createdb -h /run/postgresql -U postgres bench
t0=$(now)
docker exec "$peer_pg" pg_restore -h /run/postgresql -U postgres --no-owner --no-privileges -j "$jobs" -d bench /var/lib/firedrill/peer.dump
peer_restore=$(secs "$t0" "$(now)")
docker rm -f "$peer_pg" >/dev/null

fd_log "PostgreSQL: fixed overhead (near-empty database)"
run_drill tiny
tiny_prov=$(stage_s "$dir/work/tiny.json" provision)
tiny_down=$(stage_s "$dir/work/tiny.json" teardown)
t0=$(now); peer_container "$peer_pg" firedrill-sandbox-postgres:15 postgres; server_start=$(secs "$t0" "$(now)")
docker rm -f "$peer_pg" >/dev/null

row "postgres backup vs pg_dump\\|zstd\\|age" "$fd_backup" "$peer_backup" "$fd_rss" "≤ 1.05"
row "postgres backup vs pg_dump\\|restic" "$fd_backup" "$restic_backup" "" "≤ 0.50"
row "postgres: pg_dump -Fc -Z0 alone (floor) vs pg_dump\\|restic" "$floor_backup" "$restic_backup" "" "(what ≤ 0.50 would need)"
cores=$(nproc)
row "postgres: CPU of pg_dump alone, server included, ÷ $cores cores (${floor_cpu[*]} CPU s) vs pg_dump\\|restic" "$(awk -v c="$(median "${floor_cpu[@]}")" -v n="$cores" 'BEGIN { printf "%.2f", c / n }')" "$restic_backup" "" "(wall-time bound of pg_dump at any -j)"
row "postgres: CPU of pg_dump\\|zstd\\|age ÷ $cores cores (${peer_cpu[*]} CPU s) vs pg_dump\\|restic" "$(awk -v c="$(median "${peer_cpu[@]}")" -v n="$cores" 'BEGIN { printf "%.2f", c / n }')" "$restic_backup" "" "(wall-time bound of dump+zstd+age)"
row "postgres restore vs pg_restore -j $jobs" "$fd_restore" "$peer_restore" "" "≤ 1.15"
fixed=$(awk -v a="$tiny_prov" -v b="$tiny_down" 'BEGIN { printf "%.2f", a + b }')
if [ "$big_gb" -gt 0 ]; then
  # Peak RSS moves by a few MiB from run to run (allocator, thread timing): each size is
  # drilled $repeat times, in turn, and the medians are compared.
  small_m=() big_m=()
  for i in $(seq 1 "$repeat"); do
    for gb in 1 "$big_gb"; do
      fd_log "PostgreSQL $i/$repeat: memory during a drill of the $gb GB database"
      sync; run_drill "big$gb"
      if [ "$gb" = 1 ]; then small_m+=("$(rss_mib "$dir/work/big1.time")"); else big_m+=("$(rss_mib "$dir/work/big$gb.time")"); fi
    done
  done
  dump_size() { numfmt --to=iec "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s.get("bytes") or 0 for s in r["stages"] if s["stage"] == "dump"][0])' "$1")"; }
  small_rss=$(median "${small_m[@]}") big_rss=$(median "${big_m[@]}")
  rows_md+=("| memory: peak RSS, drill of a $(dump_size "$dir/work/big$big_gb.json") dump (runs: ${big_m[*]}; backup $(stage_s "$dir/work/big$big_gb.json" dump) s, restore $(stage_s "$dir/work/big$big_gb.json" restore) s) vs the same table's $(dump_size "$dir/work/big1.json") dump (runs: ${small_m[*]}) | $big_rss MiB | $small_rss MiB | $(awk -v a="$big_rss" -v b="$small_rss" 'BEGIN { printf "%.2f", a / b }') | $(maxof "${big_m[@]}" "${small_m[@]}") | ≤ 64 MiB, ratio 0.90–1.10 |")
fi
row "fixed overhead: provision+teardown vs the server's start ($(awk -v a="$fixed" -v b="$server_start" 'BEGIN { printf "%+.2f", a - b }') s)" "$fixed" "$server_start" "$(rss_mib "$dir/work/tiny.time")" "difference ≤ 3 s"

# --- MariaDB ---------------------------------------------------------------------------
fd_log "MariaDB: warming the caches (one untimed mariadb-dump)"
mariadb-dump --protocol=TCP -h 127.0.0.1 -P "$my_port" -u firedrill -p"$FD_BENCH_MY_PASSWORD" --single-transaction --databases bench > /dev/null
my_fd_b=() my_fd_r=() my_fd_m=() my_peer_b=()
for i in $(seq 1 "$repeat"); do
  fd_log "MariaDB $i/$repeat: firedrill drill of $(numfmt --to=iec "$my_size")"
  sync; run_drill my
  my_fd_b+=("$(stage_s "$dir/work/my.json" dump)")
  my_fd_r+=("$(stage_s "$dir/work/my.json" restore)")
  my_fd_m+=("$(rss_mib "$dir/work/my.time")")

  fd_log "MariaDB $i/$repeat: mariadb-dump | zstd | age"
  sync; t0=$(now)
  mariadb-dump --protocol=TCP -h 127.0.0.1 -P "$my_port" -u firedrill -p"$FD_BENCH_MY_PASSWORD" --single-transaction --routines --triggers --events --hex-blob --databases bench \
    | zstd -3 -T0 -q | age -r "$recipient" > "$dir/work/peer.sql.zst.age"
  my_peer_b+=("$(secs "$t0" "$(now)")")
done
my_fd_backup=$(median "${my_fd_b[@]}") my_fd_restore=$(median "${my_fd_r[@]}") my_rss=$(maxof "${my_fd_m[@]}")
my_peer_backup=$(median "${my_peer_b[@]}")

fd_log "MariaDB: mariadb < dump"
age -d -i "$dir/work/identity.txt" "$dir/work/peer.sql.zst.age" | zstd -d -q > "$dir/work/peer.sql"
peer_container "$peer_my" firedrill-sandbox-mariadb:10.11 mariadb
docker cp "$dir/work/peer.sql" "$peer_my:/var/lib/firedrill/peer.sql"
t0=$(now)
docker exec "$peer_my" sh -c 'firedrill-sandbox client mariadb < /var/lib/firedrill/peer.sql'
my_peer_restore=$(secs "$t0" "$(now)")
docker rm -f "$peer_my" >/dev/null

row "mariadb backup vs mariadb-dump\\|zstd\\|age" "$my_fd_backup" "$my_peer_backup" "$my_rss" "≤ 1.05"
row "mariadb restore vs mariadb < dump" "$my_fd_restore" "$my_peer_restore" "" "≤ 1.15"

{
  echo "# firedrill benchmark $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
  echo "PostgreSQL data set: $(numfmt --to=iec "$pg_size") ($rows events); MariaDB: $(numfmt --to=iec "${my_size%.*}") ($my_rows events); jobs $jobs; medians of $repeat runs (restores: firedrill's median, the peer's one run)"
  echo
  echo "| stage | firedrill s | peer s | ratio | firedrill peak RSS MiB | target |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows_md[@]}"
} | tee "$out"
fd_log "written to $out"
