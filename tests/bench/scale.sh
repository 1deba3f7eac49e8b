#!/usr/bin/env bash
# firedrill at scale on one host: the daemon with 1,000 drill definitions loaded, 20 small
# PostgreSQL drills fired by their schedules at the same second, twice, while a client
# reads GET /api/v1/drills at a steady rate. Not part of the test run (it takes minutes).
#
#   tests/bench/scale.sh
#   FD_SCALE_DRILLS=2000 FD_SCALE_RUNNING=30 tests/bench/scale.sh
#
# Every small drill is a whole drill: pg_dump, zstd, age, store, a sandbox container,
# pg_restore, verify, teardown. The other definitions are valid drills whose schedule does
# not fire during the benchmark (29 February). It measures:
#   lateness   each scheduled run's start minus the time its schedule fired (report's
#              started_at − scheduled_for); a firing skipped or never started counts as missed
#   api        latency of GET /api/v1/drills (all definitions with their last runs),
#              $FD_SCALE_RATE requests per second for the whole time the drills run
#   memory     the daemon's peak RSS (GNU time)
# The table goes to stdout and to $FD_BENCH_OUT (default target/bench/scale-<date>-<commit>.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/host-setup.sh

dir=${FD_BENCH_DIR:-/var/tmp/firedrill-bench}/scale
defs=${FD_SCALE_DRILLS:-1000}
small=${FD_SCALE_RUNNING:-20}
rounds=${FD_SCALE_ROUNDS:-2}
period=${FD_SCALE_PERIOD_MIN:-2}
rate=${FD_SCALE_RATE:-20}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${FD_BENCH_OUT:-target/bench/scale-$(date -u +%Y%m%dT%H%M%SZ)-$commit.md}
pg_port=55489 api_port=59797
mkdir -p "$dir" "$(dirname "$out")"

fd_ensure_packages time
fd_ensure_docker
containers/build-offline.sh postgres
fd_log "building firedrill (release)"
cargo build --release --quiet
fd=$PWD/target/release/firedrill

export FD_SCALE_PG_PASSWORD=scale-pg
fd_start_pg "$dir/pg" "$pg_port" "$FD_SCALE_PG_PASSWORD"
daemon_pid=
cleanup() {
  # $daemon_pid is GNU time's: the daemon is its child.
  [ -n "$daemon_pid" ] && pkill -TERM -P "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  "$fd" reap --all >/dev/null 2>&1 || true
  fd_stop_pg "$dir/pg"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGPASSWORD=$FD_SCALE_PG_PASSWORD
psql -Xq postgres -c "DROP DATABASE IF EXISTS small" -c "CREATE DATABASE small"
psql -Xq -v ON_ERROR_STOP=1 small <<'SQL'
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), total numeric(10,2));
INSERT INTO orders SELECT g, 1 + g % 2000, g * 0.5 FROM generate_series(1, 10000) g;
SQL

rm -rf "$dir/work"; mkdir -p "$dir/work/drills" "$dir/work/store"
"$fd" keygen --output "$dir/work/identity.txt" > "$dir/work/recipient.txt"
recipient=$(cat "$dir/work/recipient.txt")
fd_log "writing $defs drill definitions ($small fire every $period minutes)"
python3 - "$dir/work" "$defs" "$small" "$period" "$pg_port" "$recipient" <<'PY'
import sys
work, defs, small, period, port, recipient = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
for i in range(defs):
    if i < small:
        name, cron = f"small-{i:04}", f"0 */{period} * * * *"
    else:  # valid and scheduled, but not firing during the benchmark
        name, cron = f"idle-{i:04}", f"0 {i % 60} {i % 24} 29 2 *"
    open(f"{work}/drills/{name}.toml", "w").write(f'''description = "scale benchmark drill {i}"

[source]
type = "postgres"
host = "127.0.0.1"
port = {port}
database = "small"
user = "postgres"
password = {{ env = "FD_SCALE_PG_PASSWORD" }}

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

[[assertion]]
name = "orders have customers"
sql = "select count(*) from orders o left join customers c on c.id = o.customer_id where c.id is null"
expect = "= 0"
''')
PY
cat > "$dir/work/firedrill.toml" <<TOML
catalog = "$dir/work/catalog.db"
drills_dir = "$dir/work/drills"

[daemon]
listen = "127.0.0.1:$api_port"
max_concurrent_drills = $small
TOML

# The first measured firing: the next multiple of $period minutes. The daemon fires every
# multiple from its start, so it starts just after one when the next is under 30 s away:
# an earlier, unmeasured firing would add load and runs.
read -r wait_s first <<<"$(python3 -c '
import sys, time
p = int(sys.argv[1]) * 60
now = time.time()
left = p - now % p
wait = left + 1 if left < 30 else 0
print(f"{wait:.1f}", (int(now + wait) // p + 1) * p)' "$period")"
[ "$wait_s" = 0.0 ] || { fd_log "waiting ${wait_s}s for a schedule boundary to pass"; sleep "$wait_s"; }
t0=$(date +%s.%N)
/usr/bin/time -v -o "$dir/work/daemon.time" "$fd" --config "$dir/work/firedrill.toml" daemon --insecure-no-auth > "$dir/work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null || { cat "$dir/work/daemon.log" >&2; exit 1; }
load_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
loaded=$(curl -fsS "http://127.0.0.1:$api_port/api/v1/drills" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["drills"]))')
[ "$loaded" = "$defs" ] || { fd_log "the daemon loaded $loaded drills, not $defs"; exit 1; }

last=$((first + (rounds - 1) * period * 60))
fd_log "daemon up in ${load_s}s with $loaded drills; firings at $(date -u -d @"$first" +%T) … $(date -u -d @"$last" +%T)"

# Reads the API until every scheduled run of the last firing has finished.
python3 - "$api_port" "$rate" "$dir/work/catalog.db" "$small" "$last" > "$dir/work/api.txt" <<'PY'
import http.client, sqlite3, sys, time
port, rate, db, small, last = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
lat, deadline, nxt = [], last + 1800, time.time()
def done():
    if time.time() < last + 5:
        return False
    c = sqlite3.connect(db, timeout=10)
    n = c.execute("SELECT count(*) FROM runs WHERE drill LIKE 'small-%' AND status != 'running' AND started_at >= ?",
                  (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last)),)).fetchone()[0]
    c.close()
    return n >= small
checked = 0
while time.time() < deadline:
    t = time.perf_counter()
    conn.request("GET", "/api/v1/drills")
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"GET /api/v1/drills: {r.status}")
    lat.append((time.perf_counter() - t) * 1000)
    nxt += 1 / rate
    if time.time() - checked > 2:
        checked = time.time()
        if done():
            break
    time.sleep(max(0, nxt - time.time()))
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(len(lat), f"{q(0.5):.1f}", f"{q(0.99):.1f}", f"{lat[-1]:.1f}")
PY
read -r api_n api_p50 api_p99 api_max < "$dir/work/api.txt"
pkill -TERM -P "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=

# Lateness and misses from the catalog: every small drill, every firing.
read -r runs passed late_max late_p50 missed <<<"$(python3 - "$dir/work/catalog.db" "$small" "$first" "$last" "$period" <<'PY'
import json, sqlite3, sys
from datetime import datetime
db, small, first, last, period = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
fired = {}
runs = passed = 0
for drill, status, report in sqlite3.connect(db).execute("SELECT drill, status, report FROM runs WHERE drill LIKE 'small-%'"):
    r = json.loads(report or "{}")
    if "scheduled_for" not in r:
        continue
    runs += 1
    passed += status == "passed"
    fired[(drill, round(ts(r["scheduled_for"])))] = ts(r["started_at"]) - ts(r["scheduled_for"])
late = sorted(fired.values()) or [float("inf")]
expected = [(f"small-{i:04}", t) for i in range(small) for t in range(first, last + 1, period * 60)]
missed = sum(1 for k in expected if k not in fired)
print(runs, passed, f"{late[-1]:.3f}", f"{late[len(late) // 2]:.3f}", missed)
PY
)"
rss=$(awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$dir/work/daemon.time")
skipped=$(grep -c "still runs; skipped" "$dir/work/daemon.log" || true)
ok() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "✓" : "✗" }'; }

{
  echo "# firedrill scale benchmark $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
  echo "$defs drill definitions, $small fire together every $period min, $rounds firings; daemon max_concurrent_drills = $small; API read at $rate/s"
  echo
  echo "| measure | value | target |"
  echo "|---|---|---|"
  echo "| daemon start to serving, $defs definitions loaded | ${load_s} s | |"
  echo "| scheduled runs finished / passed (expected $((small * rounds))) | $runs / $passed | all $(ok "$((small * rounds))" "$passed") |"
  echo "| firings missed (not started, or skipped while a run overlapped: $skipped) | $missed | 0 $(ok "$missed" 0) |"
  echo "| schedule lateness, max (median) | ${late_max} s (${late_p50} s) | ≤ 1 s $(ok "$late_max" 1) |"
  echo "| GET /api/v1/drills p99 (p50, max; $api_n requests) | ${api_p99} ms (${api_p50}, ${api_max}) | < 50 ms $(ok "$api_p99" 49.999) |"
  echo "| daemon peak RSS | ${rss} MiB | |"
} | tee "$out"
fd_log "written to $out"
