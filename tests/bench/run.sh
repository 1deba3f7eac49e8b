#!/usr/bin/env bash
# firedrill's benchmark: firedrill against the tools it wraps, side by side, on the same
# data and machine. Not part of the test run (it takes minutes and wants a quiet machine).
#
#   tests/bench/run.sh                 # two PostgreSQL data sets + MariaDB (~40 min)
#   FD_BENCH_PG_ROWS=40000000 tests/bench/run.sh   # a bigger mixed-type set (≈ rows × 300 bytes)
#
# It builds the data sets once (kept in $FD_BENCH_DIR, default /var/tmp/firedrill-bench,
# vacuumed and frozen so that no run pays for another's hint bits), warms the caches with
# one untimed dump, then measures each pipeline $FD_BENCH_REPEAT times (default 5), in
# turn, and reports the median with the spread (min–max) of every row. Two PostgreSQL
# data sets, because where the dump tool is cheap firedrill's own work shows:
#   mixed  $FD_BENCH_PG_ROWS events with numbers, timestamps, jsonb, arrays, uuids and
#          three secondary indexes, beside a customers table (~1 GB at 3.5 M events)
#   text   $FD_BENCH_TEXT_ROWS articles and their comments: long, repetitive text that
#          compresses about 50:1 (~800 MB on disk at 600 k articles)
# Rows, per data set:
#   backup   firedrill's dump→zstd→age→store pipeline (the dump stage of its report,
#            fingerprint included; the fingerprint's own time is reported apart, from the
#            stage's note) vs `pg_dump -Fc -Z0 | zstd -3 -T0 | age -r KEY > file`
#   restore  firedrill's restore stage (fetch, decrypt, decompress, restore in the sandbox)
#            vs `pg_restore -j N` of a local dump file (written by pg_dump -f, so with its
#            data offsets) in a fresh container of the same image, its data and the file on
#            Docker volumes like the sandbox's, with the sandbox's CPU and memory limits
#   floor    `pg_dump -Fc -Z0 > /dev/null` alone: no pipeline built on pg_dump beats it
# and the same for MariaDB against `mariadb-dump | zstd | age` and `mariadb < dump`, then:
#   overhead a drill of a near-empty database: provision + teardown beyond the server's start
#   memory   firedrill's peak RSS (GNU time) during every drill, and during drills of the
#            same one-table database at 1 GB and at $FD_BENCH_BIG_GB GB (default 10; 0
#            skips them)
# FD_BENCH_PERF=1 also records one firedrill drill of each data set under `perf record -g`
# (whole machine) and prints the hottest symbols.
# The table goes to stdout and to $FD_BENCH_OUT (default target/bench/<date>-<commit>.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/host-setup.sh

dir=${FD_BENCH_DIR:-/var/tmp/firedrill-bench}
rows=${FD_BENCH_PG_ROWS:-3500000}
my_rows=${FD_BENCH_MY_ROWS:-1200000}
jobs=${FD_BENCH_JOBS:-$(nproc)}
repeat=${FD_BENCH_REPEAT:-5}
text_rows=${FD_BENCH_TEXT_ROWS:-600000}
big_gb=${FD_BENCH_BIG_GB:-10} # the memory check's second drill; 0 skips it
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${FD_BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)-$commit.md}
mkdir -p "$dir" "$(dirname "$out")"

fd_ensure_packages time
[ "${FD_BENCH_PERF:-0}" = 1 ] && fd_ensure_packages linux-perf
fd_ensure_docker
containers/build-offline.sh postgres mariadb
cargo_target=$(cargo metadata --format-version 1 --no-deps | python3 -c "import json,sys; print(json.load(sys.stdin)['target_directory'])")


pg_port=55488 my_port=53388
export FD_BENCH_PG_PASSWORD=bench-pg FD_BENCH_MY_PASSWORD=bench-my
export FD_KEEP_DATA=1 # the data sets stay between runs
fd_start_pg "$dir/pg" "$pg_port" "$FD_BENCH_PG_PASSWORD"
fd_start_mariadb "$dir/mariadb" "$my_port" "$FD_BENCH_MY_PASSWORD"
peer_pg=fd-bench-peer-pg peer_my=fd-bench-peer-my
cleanup() {
  docker rm -f "$peer_pg" "$peer_my" >/dev/null 2>&1 || true
  docker volume rm -f "$peer_pg-data" "$peer_pg-staging" "$peer_my-data" "$peer_my-staging" >/dev/null 2>&1 || true
  fd_stop_pg "$dir/pg"
  fd_stop_mariadb "$dir/mariadb"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGPASSWORD=$FD_BENCH_PG_PASSWORD
pg_bin=$(fd_pg_bin)

# --- data sets -----------------------------------------------------------------------
has_db() { [ "$(psql -XAtqc "SELECT count(*) FROM pg_database WHERE datname = '$1'" postgres)" = 1 ]; }
# A data set of another size (FD_BENCH_*_ROWS changed) is made again.
sized() { # DATABASE TABLE ROWS
  has_db "$1" || return 1
  [ "$(psql -XAtqc "SELECT count(*) FROM $2" "$1" 2>/dev/null)" = "$3" ] && return 0
  psql -Xq postgres -c "DROP DATABASE $1"; return 1
}
if ! sized bench events "$rows"; then
  fd_log "generating the mixed-type PostgreSQL data set: $rows events (mixed types, indexes)"
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
# Text-heavy: articles whose bodies repeat a few paragraphs (under the TOAST threshold,
# stored as they are), and their comments; a dump of it compresses about 100:1.
if ! sized text articles "$text_rows"; then
  fd_log "generating the text-heavy PostgreSQL data set: $text_rows articles and their comments"
  psql -Xq -v ON_ERROR_STOP=1 postgres -c "CREATE DATABASE text"
  psql -Xq -v ON_ERROR_STOP=1 text <<SQL
CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL, bio text NOT NULL);
INSERT INTO authors SELECT g, 'Author number ' || g, repeat('Writes about databases, backups and the restores nobody tested. ', 1 + g % 5) FROM generate_series(1, 5000) g;
CREATE TABLE articles (id bigint PRIMARY KEY, author_id int NOT NULL REFERENCES authors(id), title text NOT NULL,
  body text NOT NULL, published_at timestamptz NOT NULL, slug text NOT NULL UNIQUE);
INSERT INTO articles SELECT g, 1 + g % 5000, 'On restoring backup number ' || g,
  repeat('A backup that was never restored is a hope, not a backup. Restore drills turn it into evidence. ', 3 + g % 5)
    || ' Article ' || g || '. ' || repeat('Every table, every row, every index comes back or the drill fails. ', 2 + g % 3),
  timestamptz '2020-01-01' + (g || ' minutes')::interval, 'restoring-backup-' || g
  FROM generate_series(1, $text_rows) g;
CREATE TABLE comments (id bigint PRIMARY KEY, article_id bigint NOT NULL REFERENCES articles(id), author text NOT NULL, body text NOT NULL);
INSERT INTO comments SELECT g, 1 + g % $text_rows, 'reader ' || (g % 977),
  repeat('Thanks, this saved our Tuesday. ', 1 + g % 4) || 'Comment ' || g
  FROM generate_series(1, $text_rows * 2) g;
CREATE INDEX articles_author ON articles (author_id, published_at);
CREATE INDEX comments_article ON comments (article_id);
SQL
  psql -Xq -v ON_ERROR_STOP=1 text -c "VACUUM (FREEZE, ANALYZE)"
fi
# The memory check's pair: the same table at 1 GB and at $big_gb GB, so that the two
# drills differ in size only. ~1.9 kB rows (under the TOAST threshold: stored as they
# are), 1 GiB per 512 Ki rows.
blobs_db() { # GB
  has_db "big$1" && return 0
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
if [ "$(my -N -e "SELECT COUNT(*) FROM bench.events" 2>/dev/null)" != "$my_rows" ]; then
  my -e "DROP DATABASE IF EXISTS bench"
  fd_log "generating the MariaDB data set: $my_rows events"
  my -e "CREATE DATABASE bench CHARACTER SET utf8mb4"
  my bench -e "CREATE TABLE events (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, at DATETIME(6) NOT NULL, kind VARCHAR(10) NOT NULL, amount DECIMAL(12,2), payload JSON, note VARCHAR(64), KEY (customer_id), KEY (at)) ENGINE=InnoDB;
    INSERT INTO events SELECT seq, 1 + seq % 200000, NOW(6) - INTERVAL seq SECOND, ELT(1 + seq % 4, 'view','click','buy','refund'), (seq % 10007) * 0.37, JSON_OBJECT('sku', seq % 9973, 'qty', 1 + seq % 7), MD5(seq) FROM seq_1_to_$my_rows;"
fi
my -N -e "ANALYZE TABLE bench.events" >/dev/null
my_size=$(my -N -e "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bench'")

# FD_BENCH_PREPARE=1: only the data sets (and images), e.g. while something else builds.
if [ "${FD_BENCH_PREPARE:-0}" = 1 ]; then fd_log "data sets ready in $dir"; exit 0; fi

fd_log "building firedrill (release)"
cargo build --release --quiet
fd=$cargo_target/release/firedrill

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
pg_drill() { # NAME DATABASE
  drill "$1" "[source]
type = \"postgres\"
host = \"127.0.0.1\"
port = $pg_port
database = \"$2\"
user = \"postgres\"
password = { env = \"FD_BENCH_PG_PASSWORD\" }"
}
pg_drill pg-bench bench
pg_drill pg-text text
pg_drill tiny tiny
for gb in 1 "$big_gb"; do pg_drill "big$gb" "big$gb"; done
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
# The fingerprint's own time, from the dump stage's note ("fingerprint … in 1.23 s").
fingerprint_s() { # REPORT
  python3 -c '
import json, re, sys
r = json.load(open(sys.argv[1]))
notes = [n for s in r["stages"] if s["stage"] == "dump" for n in s.get("notes", [])]
m = [re.search(r"fingerprint .* in ([0-9.]+) s", n) for n in notes]
m = [x for x in m if x]
print(m[0].group(1) if m else "0")' "$1"
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
# A container of the sandbox image to restore into with the tools themselves, set up as
# the sandbox is: fresh volumes for its data and for the staged dump, the same CPU,
# memory and shared-memory limits, no network.
peer_container() { # NAME IMAGE ENGINE
  docker rm -f "$1" >/dev/null 2>&1 || true
  docker volume rm -f "$1-data" "$1-staging" >/dev/null 2>&1 || true
  docker volume create "$1-data" >/dev/null; docker volume create "$1-staging" >/dev/null
  docker run -d --name "$1" --network none --cpus "$jobs" --memory 6g --memory-swap 6g --shm-size 256m \
    -v "$1-data:/var/lib/firedrill/data" -v "$1-staging:/var/lib/firedrill/staging" \
    --tmpfs /run/firedrill --tmpfs /run/postgresql:mode=0775 --tmpfs /run/mysqld:mode=0777 \
    "$2" serve "$3" >/dev/null
  local i; for i in $(seq 1 120); do docker exec "$1" firedrill-sandbox ready "$3" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fd_log "peer container $1 did not become ready"; docker logs "$1" >&2; return 1
}
peer_gone() { docker rm -f "$1" >/dev/null; docker volume rm -f "$1-data" "$1-staging" >/dev/null; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }
# "median (min–max)"
spread() { echo "$(median "$@") ($(minof "$@")–$(maxof "$@"))"; }
perf_top() { # NAME: one drill under perf, the hottest symbols and commands (whole machine)
  [ "${FD_BENCH_PERF:-0}" = 1 ] || return 0
  fd_log "profiling a drill of $1 (perf record -a -g)"
  perf record -q -a -g -F 499 -o "$dir/work/$1.perf" -- bash -c "cd '$dir/work' && '$fd' --catalog '$dir/work/catalog.db' run '$1.toml' --quiet >/dev/null" || true
  {
    perf report -q -i "$dir/work/$1.perf" --no-children -g none --sort comm --stdio 2>/dev/null | sed 's/ *$//' | grep -v '^$' | head -12
    echo
    perf report -q -i "$dir/work/$1.perf" --no-children -g none --sort comm,dso,symbol --percent-limit 1 --stdio 2>/dev/null | sed -E 's/ +- +- *$//; s/ *$//' | grep -v '^$' | head -30
  } > "$dir/work/$1.perf.txt" || true
  perf_out+=("### perf: drill $1 (share of all samples, idle included)" "" '```' "$(cat "$dir/work/$1.perf.txt")" '```' "")
}

rows_md=() perf_out=() sets_md=()
# | what | firedrill median (min–max) | peer median (min–max) | ratio of medians | peak RSS | target |
row() { # WHAT FD-VALUES PEER-VALUES RSS TARGET (value lists space-separated)
  local -a a b; read -ra a <<< "$2"; read -ra b <<< "$3"
  local ma mb; ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  rows_md+=("| $1 | $(spread "${a[@]}") | $(spread "${b[@]}") | $(awk -v a="$ma" -v b="$mb" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') | $4 | $5 |")
}

# --- PostgreSQL ------------------------------------------------------------------------
pg_set() { # DATABASE DRILL LABEL
  local db=$1 name=$2 label=$3 i
  local size; size=$(psql -XAtqc "SELECT pg_database_size('$db')" postgres)
  fd_log "PostgreSQL $label: warming the caches (one untimed pg_dump)"
  "$pg_bin/pg_dump" -Fc -Z0 "$db" > /dev/null
  local fd_b=() fd_r=() fd_f=() fd_m=() peer_b=() peer_r=() floor_b=()
  "$pg_bin/pg_dump" -Fc -Z0 -f "$dir/work/peer.dump" "$db"
  local dump_bytes; dump_bytes=$(stat -c %s "$dir/work/peer.dump")
  for i in $(seq 1 "$repeat"); do
    fd_log "PostgreSQL $label $i/$repeat: pg_dump -Fc -Z0 > /dev/null (the floor)"
    sync; t0=$(now)
    "$pg_bin/pg_dump" -Fc -Z0 "$db" > /dev/null
    floor_b+=("$(secs "$t0" "$(now)")")

    fd_log "PostgreSQL $label $i/$repeat: firedrill drill of $(numfmt --to=iec "$size")"
    sync; run_drill "$name"
    fd_b+=("$(stage_s "$dir/work/$name.json" dump)")
    fd_f+=("$(fingerprint_s "$dir/work/$name.json")")
    fd_r+=("$(stage_s "$dir/work/$name.json" restore)")
    fd_m+=("$(rss_mib "$dir/work/$name.time")")

    fd_log "PostgreSQL $label $i/$repeat: pg_dump -Fc -Z0 | zstd | age"
    sync; t0=$(now)
    "$pg_bin/pg_dump" -Fc -Z0 "$db" | zstd -3 -T0 -q | age -r "$recipient" > "$dir/work/peer.dump.zst.age"
    peer_b+=("$(secs "$t0" "$(now)")")

    fd_log "PostgreSQL $label $i/$repeat: pg_restore -j $jobs from a local file, data on a volume"
    peer_container "$peer_pg" firedrill-sandbox-postgres:15 postgres
    docker cp "$dir/work/peer.dump" "$peer_pg:/var/lib/firedrill/staging/peer.dump"
    docker exec "$peer_pg" createdb -h /run/postgresql -U postgres -T template0 -E UTF8 "$db"
    sync; t0=$(now)
    docker exec "$peer_pg" pg_restore -h /run/postgresql -U postgres --no-owner --no-privileges --exit-on-error -j "$jobs" -d "$db" /var/lib/firedrill/staging/peer.dump
    peer_r+=("$(secs "$t0" "$(now)")")
    peer_gone "$peer_pg"
  done
  perf_top "$name"
  sets_md+=("- $label: database \`$db\`, $(numfmt --to=iec "$size") on disk, a $(numfmt --to=iec "$dump_bytes") dump (pg_dump -Fc -Z0) that firedrill stores as $(numfmt --to=iec "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s.get("bytes") or 0 for s in r["stages"] if s["stage"] == "upload"][0])' "$dir/work/$name.json")")")
  row "postgres $label: backup (fingerprint included) vs pg_dump -Fc -Z0 \\| zstd -3 -T0 \\| age" "${fd_b[*]}" "${peer_b[*]}" "$(maxof "${fd_m[@]}")" "≤ 1.10"
  row "postgres $label: the fingerprint's own time (beside the dump) vs the backup" "${fd_f[*]}" "${fd_b[*]}" "" "(reported apart)"
  row "postgres $label: restore stage vs pg_restore -j $jobs from a local file (volume)" "${fd_r[*]}" "${peer_r[*]}" "" "≤ 1.15"
  row "postgres $label: pg_dump -Fc -Z0 > /dev/null (floor) vs the peer backup" "${floor_b[*]}" "${peer_b[*]}" "" "(context)"
}
pg_set bench pg-bench mixed
pg_set text pg-text text-heavy

fd_log "PostgreSQL: fixed overhead (near-empty database)"
ov=() st=()
for i in $(seq 1 "$repeat"); do
  run_drill tiny
  ov+=("$(awk -v a="$(stage_s "$dir/work/tiny.json" provision)" -v b="$(stage_s "$dir/work/tiny.json" teardown)" 'BEGIN { printf "%.2f", a + b }')")
  t0=$(now); peer_container "$peer_pg" firedrill-sandbox-postgres:15 postgres; st+=("$(secs "$t0" "$(now)")")
  peer_gone "$peer_pg"
done
over=$(awk -v a="$(median "${ov[@]}")" -v b="$(median "${st[@]}")" 'BEGIN { printf "%+.2f", a - b }')
row "fixed overhead: provision+teardown vs the server's start (difference of medians $over s)" "${ov[*]}" "${st[*]}" "$(rss_mib "$dir/work/tiny.time")" "difference ≤ 3 s"

if [ "$big_gb" -gt 0 ]; then
  # Peak RSS moves by a few MiB from run to run (allocator, thread timing): each size is
  # drilled $mem_repeat times, in turn, and the medians are compared.
  small_m=() big_m=()
  mem_repeat=$(( repeat < 3 ? repeat : 3 ))
  for i in $(seq 1 "$mem_repeat"); do
    for gb in 1 "$big_gb"; do
      fd_log "PostgreSQL $i/$mem_repeat: memory during a drill of the $gb GB database"
      sync; run_drill "big$gb"
      if [ "$gb" = 1 ]; then small_m+=("$(rss_mib "$dir/work/big1.time")"); else big_m+=("$(rss_mib "$dir/work/big$gb.time")"); fi
    done
  done
  dump_size() { numfmt --to=iec "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s.get("bytes") or 0 for s in r["stages"] if s["stage"] == "dump"][0])' "$1")"; }
  rows_md+=("| memory: peak RSS MiB, drill of a $(dump_size "$dir/work/big$big_gb.json") dump (backup $(stage_s "$dir/work/big$big_gb.json" dump) s, restore $(stage_s "$dir/work/big$big_gb.json" restore) s) vs the same table's $(dump_size "$dir/work/big1.json") dump | $(spread "${big_m[@]}") | $(spread "${small_m[@]}") | $(awk -v a="$(median "${big_m[@]}")" -v b="$(median "${small_m[@]}")" 'BEGIN { printf "%.2f", a / b }') | $(maxof "${big_m[@]}" "${small_m[@]}") | ≤ 64 MiB, ratio 0.90–1.10 |")
fi

# --- MariaDB ---------------------------------------------------------------------------
fd_log "MariaDB: warming the caches (one untimed mariadb-dump)"
mariadb-dump --protocol=TCP -h 127.0.0.1 -P "$my_port" -u firedrill -p"$FD_BENCH_MY_PASSWORD" --single-transaction --databases bench > /dev/null
my_fd_b=() my_fd_r=() my_fd_m=() my_peer_b=() my_peer_r=()
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

  fd_log "MariaDB $i/$repeat: mariadb < dump, data on a volume"
  age -d -i "$dir/work/identity.txt" "$dir/work/peer.sql.zst.age" | zstd -d -q > "$dir/work/peer.sql"
  peer_container "$peer_my" firedrill-sandbox-mariadb:10.11 mariadb
  docker cp "$dir/work/peer.sql" "$peer_my:/var/lib/firedrill/staging/peer.sql"
  sync; t0=$(now)
  docker exec "$peer_my" sh -c 'firedrill-sandbox client mariadb < /var/lib/firedrill/staging/peer.sql'
  my_peer_r+=("$(secs "$t0" "$(now)")")
  peer_gone "$peer_my"
done
perf_top my
row "mariadb: backup vs mariadb-dump \\| zstd -3 -T0 \\| age" "${my_fd_b[*]}" "${my_peer_b[*]}" "$(maxof "${my_fd_m[@]}")" "≤ 1.10"
row "mariadb: restore stage vs mariadb < dump (volume)" "${my_fd_r[*]}" "${my_peer_r[*]}" "" "≤ 1.15"

{
  echo "# firedrill benchmark $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
  echo "Command: \`tests/bench/run.sh\` (FD_BENCH_REPEAT=$repeat FD_BENCH_JOBS=$jobs FD_BENCH_BIG_GB=$big_gb). Each cell: median (min–max) of $repeat runs; the ratio is of the medians."
  echo
  printf '%s\n' "${sets_md[@]}"
  echo "- MariaDB: $(numfmt --to=iec "${my_size%.*}") ($my_rows events)"
  echo
  echo "| row | firedrill s | peer s | ratio | firedrill peak RSS MiB | target |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows_md[@]}"
  echo
  if [ "${#perf_out[@]}" -gt 0 ]; then printf '%s\n' "${perf_out[@]}"; fi
} | tee "$out"
fd_log "written to $out"
