#!/usr/bin/env bash
# firedrill across three daemons sharing a PostgreSQL catalog: 3,000 drill definitions
# loaded by each, 30 small PostgreSQL drills fired by their schedules at the same second,
# while a client reads GET /api/v1/drills on every daemon at a steady rate. Not part of the
# test run (it takes minutes).
#
#   tests/bench/cluster.sh
#   FD_CLUSTER_DRILLS=3000 FD_CLUSTER_RUNNING=30 FD_CLUSTER_DAEMONS=3 tests/bench/cluster.sh
#
# Every small drill is a whole drill (pg_dump, zstd, age, store, a sandbox, pg_restore,
# verify, teardown); each daemon runs at most FD_CLUSTER_CONCURRENT (default 4) at once,
# the rest wait for room on some daemon. It measures:
#   claim      each firing's claim in the catalog minus the time it was due (the firings
#              table); a firing never claimed counts as missed
#   once       runs per firing (1 each), and how the firings spread over the daemons
#   api        latency of GET /api/v1/drills (all definitions with their last runs) on each
#              daemon, $FD_CLUSTER_RATE requests per second each while the drills run
# The table goes to stdout and to $FD_BENCH_OUT (default target/bench/cluster-<date>-<commit>.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/host-setup.sh

dir=${FD_BENCH_DIR:-/var/tmp/firedrill-bench}/cluster
defs=${FD_CLUSTER_DRILLS:-3000}
small=${FD_CLUSTER_RUNNING:-30}
daemons=${FD_CLUSTER_DAEMONS:-3}
concurrent=${FD_CLUSTER_CONCURRENT:-4}
rate=${FD_CLUSTER_RATE:-10}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${FD_BENCH_OUT:-target/bench/cluster-$(date -u +%Y%m%dT%H%M%SZ)-$commit.md}
pg_port=55491 api_base=59810
mkdir -p "$dir" "$(dirname "$out")"

fd_ensure_docker
containers/build-offline.sh postgres
fd=${FIREDRILL_BIN:-}
if [ -z "$fd" ]; then
  fd_log "building firedrill (release)"
  cargo build --release --quiet
  fd=$PWD/target/release/firedrill
fi

export FD_CLUSTER_PG_PASSWORD=cluster-pg
fd_start_pg "$dir/pg" "$pg_port" "$FD_CLUSTER_PG_PASSWORD"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$fd" reap --all >/dev/null 2>&1 || true
  fd_stop_pg "$dir/pg"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGPASSWORD=$FD_CLUSTER_PG_PASSWORD
psql -Xq postgres -c "DROP DATABASE IF EXISTS small" -c "CREATE DATABASE small" \
  -c "DROP DATABASE IF EXISTS catalog" -c "CREATE DATABASE catalog"
psql -Xq -v ON_ERROR_STOP=1 small <<'SQL'
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
SQL

rm -rf "$dir/work"; mkdir -p "$dir/work/drills" "$dir/work/store"
"$fd" keygen --output "$dir/work/identity.txt" > "$dir/work/recipient.txt"
recipient=$(cat "$dir/work/recipient.txt")
# The firing: a whole minute at least 90 s away (the daemons load 3,000 drills first).
first=$(python3 -c 'import time; n = time.time() + 90; print(int(n // 60 + 1) * 60)')
fd_log "writing $defs drill definitions ($small fire at $(date -u -d @"$first" +%T))"
python3 - "$dir/work" "$defs" "$small" "$first" "$pg_port" "$recipient" <<'PY'
import sys, time
work, defs, small, first, port, recipient = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
t = time.gmtime(first)
for i in range(defs):
    if i < small:
        name, cron = f"small-{i:04}", f"0 {t.tm_min} {t.tm_hour} * * *"
    else:  # valid and scheduled, but not firing during the benchmark
        name, cron = f"idle-{i:04}", f"0 {i % 60} {i % 24} 29 2 *"
    open(f"{work}/drills/{name}.toml", "w").write(f'''description = "cluster benchmark drill {i}"

[source]
type = "postgres"
host = "127.0.0.1"
port = {port}
database = "small"
user = "postgres"
password = {{ env = "FD_CLUSTER_PG_PASSWORD" }}

[storage]
type = "local"
path = "{work}/store"

[encryption]
recipients = ["{recipient}"]
identity = {{ file = "{work}/identity.txt" }}

[sandbox]
memory = "512MiB"
cpus = 1

[schedule]
cron = "{cron}"
''')
PY
for i in $(seq 1 "$daemons"); do
  cat > "$dir/work/d$i.toml" <<TOML
catalog = "postgres://postgres@127.0.0.1:$pg_port/catalog"
catalog_password = { env = "FD_CLUSTER_PG_PASSWORD" }
drills_dir = "$dir/work/drills"
reports_dir = "$dir/work/reports"

[daemon]
listen = "127.0.0.1:$((api_base + i))"
max_concurrent_drills = $concurrent
TOML
  "$fd" --config "$dir/work/d$i.toml" daemon --insecure-no-auth > "$dir/work/d$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$daemons"); do
  port=$((api_base + i))
  for _ in $(seq 1 900); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$dir/work/d$i.log" >&2; exit 1; }
done
fd_log "$daemons daemons up; the firing at $(date -u -d @"$first" +%T)"

# Reads the API of every daemon until every small drill's run has finished.
python3 - "$api_base" "$daemons" "$rate" "$small" "$first" > "$dir/work/api.txt" <<'PY'
import http.client, subprocess, sys, time, threading
base, daemons, rate, small, first = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lat = {i: [] for i in range(1, daemons + 1)}
stop = threading.Event()
def reader(i):
    conn = http.client.HTTPConnection("127.0.0.1", base + i, timeout=30)
    nxt = time.time()
    while not stop.is_set():
        t = time.perf_counter()
        conn.request("GET", "/api/v1/drills")
        r = conn.getresponse(); r.read()
        if r.status != 200:
            sys.exit(f"GET /api/v1/drills on daemon {i}: {r.status}")
        if time.time() > first - 10:
            lat[i].append((time.perf_counter() - t) * 1000)
        nxt += 1 / rate
        time.sleep(max(0, nxt - time.time()))
threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in lat]
for t in threads: t.start()
deadline = first + 1800
while time.time() < deadline:
    time.sleep(3)
    if time.time() < first + 5:
        continue
    n = subprocess.run(["psql", "-XAtq", "catalog", "-c",
        "SELECT count(*) FROM runs WHERE drill LIKE 'small-%' AND status <> 'running'"],
        capture_output=True, text=True).stdout.strip()
    if n and int(n) >= small:
        break
stop.set()
for t in threads: t.join(timeout=35)
for i, l in lat.items():
    l.sort()
    q = lambda p: l[min(len(l) - 1, int(p * len(l)))] if l else float("nan")
    print(i, len(l), f"{q(0.5):.1f}", f"{q(0.99):.1f}", f"{l[-1] if l else float('nan'):.1f}")
PY

q() { psql -XAtq catalog -c "$1"; }
claims=$(q "SELECT count(*) FROM firings WHERE drill LIKE 'small-%'")
late_max=$(q "SELECT coalesce(round(max(extract(epoch FROM claimed_at) - scheduled_for / 1000.0)::numeric, 3), 'NaN') FROM firings WHERE drill LIKE 'small-%'")
late_p50=$(q "SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at) - scheduled_for / 1000.0))::numeric, 3), 'NaN') FROM firings WHERE drill LIKE 'small-%'")
runs=$(q "SELECT count(*) FROM runs WHERE drill LIKE 'small-%'")
passed=$(q "SELECT count(*) FROM runs WHERE drill LIKE 'small-%' AND status = 'passed'")
doubled=$(q "SELECT count(*) FROM (SELECT drill FROM runs WHERE drill LIKE 'small-%' GROUP BY drill HAVING count(*) > 1) d")
spread=$(q "SELECT string_agg(n::text, ' / ' ORDER BY n DESC) FROM (SELECT count(*) n FROM runs WHERE drill LIKE 'small-%' GROUP BY owner) o")
missed=$((small - claims))
ok() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "✓" : "✗" }'; }

{
  echo "# firedrill cluster benchmark $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
  echo "$daemons daemons on one PostgreSQL catalog, $defs drill definitions each, $small fire at the same second; max_concurrent_drills = $concurrent per daemon; API read at $rate/s on each"
  echo
  echo "| measure | value | target |"
  echo "|---|---|---|"
  echo "| firings claimed (expected $small) / missed | $claims / $missed | 0 missed $(ok "$missed" 0) |"
  echo "| runs / passed / drills run twice | $runs / $passed / $doubled | each once $(ok "$doubled" 0) |"
  echo "| runs per daemon | $spread | |"
  echo "| claim after due, max (median) | ${late_max} s (${late_p50} s) | ≤ 1 s $(ok "$late_max" 1) |"
  while read -r i n p50 p99 max; do
    echo "| daemon $i: GET /api/v1/drills p99 (p50, max; $n requests) | ${p99} ms (${p50}, ${max}) | < 50 ms $(ok "$p99" 49.999) |"
  done < "$dir/work/api.txt"
} | tee "$out"
fd_log "written to $out"
