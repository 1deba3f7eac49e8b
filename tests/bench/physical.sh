#!/usr/bin/env bash
# The physical drill's benchmark: firedrill's restore stage of a pgBackRest drill (verify
# beside the restore, then recovery from the archived WAL to its end and promotion)
# against the same done by hand in a container of the same image, with the repository
# mounted read-only and the data on a volume as in firedrill's sandbox: `pgbackrest
# restore`, then the server's recovery until promotion. And firedrill's peak RSS during
# the drill (GNU time). Not part of the test run: it takes minutes and wants a quiet
# machine.
#
#   tests/bench/physical.sh                          # pgbench scale 150: ≈ 2.3 GB
#   FD_BENCH_PGBENCH_SCALE=300 tests/bench/physical.sh
#
# The cluster and its repository (encrypted, one full backup, then a few minutes of
# pgbench whose WAL the recovery replays) are built once in $FD_BENCH_DIR (default
# /var/tmp/firedrill-bench-physical). Each side runs $FD_BENCH_REPEAT times (default 3),
# in turn; the table has the medians and goes to stdout and $FD_BENCH_OUT (default
# target/bench/physical-<date>-<commit>.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/host-setup.sh

dir=${FD_BENCH_DIR:-/var/tmp/firedrill-bench-physical}
scale=${FD_BENCH_PGBENCH_SCALE:-150}
repeat=${FD_BENCH_REPEAT:-3}
port=${FD_BENCH_PORT:-55450}
wal_seconds=${FD_BENCH_WAL_SECONDS:-60}
cipher=bench-cipher-passphrase
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${FD_BENCH_OUT:-target/bench/physical-$(date -u +%Y%m%dT%H%M%SZ)-$commit.md}
image=firedrill-sandbox-postgres:15
mkdir -p "$dir" "$(dirname "$out")"

fd_ensure_packages time bc
fd_ensure_docker
containers/build-offline.sh postgres
fd_log "building firedrill (release)"
cargo build --release --quiet
fd=$PWD/target/release/firedrill

run=()
if [ "$(id -u)" = 0 ]; then run=(env -C / runuser -u postgres --); fi
bin=$(fd_pg_bin)
pg="$dir/pg"
if [ ! -f "$dir/built-$scale" ]; then
  fd_log "building the cluster: pgbench scale $scale, a full backup, ${wal_seconds}s of WAL"
  fd_start_pgbackrest "$pg" "$port" "$cipher"
  "${run[@]}" "$bin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$port" -U postgres postgres
  "${run[@]}" pgbackrest --config="$pg/pgbackrest.conf" --stanza=main --type=full backup
  "${run[@]}" "$bin/pgbench" -T "$wal_seconds" -c 2 -j 2 -h 127.0.0.1 -p "$port" -U postgres postgres >/dev/null
  "${run[@]}" "$bin/psql" -XqAt -h 127.0.0.1 -p "$port" -U postgres -c "select pg_switch_wal()" >/dev/null
  sleep 5
  fd_stop_pg "$pg"
  touch "$dir/built-$scale"
fi
trap 'fd_stop_pg "$pg"' EXIT
"${run[@]}" "$bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w start >/dev/null
size=$(du -sh "$pg/data" | cut -f1)
repo_size=$(du -sh "$pg/repo" | cut -f1)

secret="$dir/cipher"
(umask 077; printf '%s\n' "$cipher" > "$secret")
command=
[ "$(id -u)" = 0 ] && command='command = ["runuser", "-u", "postgres", "--", "pgbackrest"]'
cat > "$dir/bench-physical.toml" <<EOF
name = "bench-physical"
[source]
type = "pgbackrest"
stanza = "main"
repo_path = "$pg/repo"
$command
cipher_pass = { file = "$secret" }
target = "latest"
[storage]
type = "local"
path = "$dir/store"
[sandbox]
memory = "4GiB"
cpus = $(nproc)
[timeouts]
restore = "1h"
verify = "1h"
EOF

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# By hand: the same image, mounts and settings as firedrill's sandbox; pgbackrest restore,
# then the server until it leaves recovery.
by_hand() {
  local name=fd-bench-physical-hand
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm "$name-data" "$name-staging" >/dev/null 2>&1 || true
  docker run -d --name "$name" --network none --read-only \
    --tmpfs /run/firedrill:mode=0700 --tmpfs /run/postgresql:mode=0775 --tmpfs /tmp:mode=1777 \
    -v "$name-data:/var/lib/firedrill/data" -v "$name-staging:/var/lib/firedrill/staging" \
    --mount "type=bind,src=$pg/repo,dst=/var/lib/firedrill/repo,readonly" \
    --memory 4g --cpus "$(nproc)" "$image" recover postgres >/dev/null
  until docker exec "$name" test -d /run/firedrill/tool; do sleep 0.1; done
  printf '[global]\nrepo1-path=/var/lib/firedrill/repo\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\nlock-path=/tmp/pgbackrest\nlog-path=/tmp\nlog-level-file=off\nspool-path=/tmp\n[main]\npg1-path=/var/lib/firedrill/data\n' "$cipher" \
    | docker exec -i "$name" sh -c 'umask 077; cat > /run/firedrill/tool/pgbackrest.conf; chown postgres /run/firedrill/tool/pgbackrest.conf'
  local t0 t1
  t0=$(date +%s.%N)
  docker exec "$name" firedrill-sandbox as-server postgres pgbackrest --config=/run/firedrill/tool/pgbackrest.conf \
    --stanza=main --pg1-path=/var/lib/firedrill/data --type=default restore >/dev/null
  docker exec "$name" touch /run/firedrill/start
  until [ "$(docker exec "$name" firedrill-sandbox as-server postgres psql -XAtq -h /run/postgresql -U postgres -d postgres -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    sleep 0.2
  done
  t1=$(date +%s.%N)
  docker rm -f "$name" >/dev/null
  docker volume rm "$name-data" "$name-staging" >/dev/null
  printf '%.2f\n' "$(echo "$t1 - $t0" | bc)"
}

# firedrill: the restore stage (verify beside restore, recovery, promotion) and its RSS.
firedrill_run() {
  /usr/bin/time -v -o "$dir/time.txt" "$fd" run "$dir/bench-physical.toml" --json --quiet > "$dir/report.json" || true
  python3 - "$dir/report.json" "$dir/time.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
assert r["verdict"] == "passed", r.get("error")
restore = next(s for s in r["stages"] if s["stage"] == "restore")["duration_ms"] / 1000
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read()).group(1)) / 1024
print(f"{restore:.2f} {rss:.1f} {r['recovery']['segments_replayed']}")
PY
}

fd_log "warming the caches (one untimed run of each)"
by_hand >/dev/null
firedrill_run >/dev/null

hand=() fdr=() rss=() segs=
for i in $(seq 1 "$repeat"); do
  fd_log "run $i of $repeat"
  hand+=("$(by_hand)")
  read -r t r s < <(firedrill_run)
  fdr+=("$t"); rss+=("$r"); segs=$s
done
h=$(printf '%s\n' "${hand[@]}" | median)
f=$(printf '%s\n' "${fdr[@]}" | median)
m=$(printf '%s\n' "${rss[@]}" | median)
ratio=$(printf '%.2f' "$(echo "$f / $h" | bc -l)")
{
  echo "## Physical drill benchmark ($commit, $(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Cluster: pgbench scale $scale, $size on disk; repository $repo_size (encrypted, compressed); $segs WAL segments replayed. Medians of $repeat."
  echo
  echo "| what | firedrill | by hand | ratio |"
  echo "|---|---|---|---|"
  echo "| restore + recovery to promotion (s) | $f | $h | $ratio |"
  echo "| firedrill peak RSS (MiB) | $m | | |"
  echo
  echo "firedrill runs: ${fdr[*]}; by hand: ${hand[*]}; RSS: ${rss[*]}"
} | tee "$out"
