#!/usr/bin/env bash
# deploy/stack.yml on a real Docker Swarm, end to end (the full tier: tests/run --full).
#
#   tests/swarm.sh          # as root, on a machine with Docker
#
# Joins nothing: on an engine in no swarm it runs `docker swarm init` and leaves the
# swarm at the end; an engine that is a swarm manager already is used as it is (and
# stays in its swarm). Builds firedrill:latest and firedrill-sandbox-postgres:15 offline
# (containers/build-offline.sh; skipped when up to date), creates the secrets, deploys
# the stack `firedrill-test` with tests/swarm/stack-test.yml on top (a seeded source
# PostgreSQL and one drill), waits for three healthy daemons, the catalog and the
# source, starts the drill through the API (POST /api/v1/drills/fdswarm-shop/runs),
# follows it on another replica (GET /api/v1/runs/{id}) to `passed`, asks every replica
# and the catalog's `runs` table for it (the catalog is shared); then starts the drill
# again, kills the daemon that took it (SIGKILL) and waits for a survivor to record that
# run lost (lease 60s) and remove its sandbox; then removes the stack, its volumes,
# network, configs and secrets and the drill's sandboxes, and checks that nothing of them
# is left. About 5 minutes once the images exist.
#
# Environment:
#   FIREDRILL_BIN   the firedrill binary put into the image (default: the newer of
#                   target/release/firedrill and target/debug/firedrill)
#   FDSWARM_STACK   the stack's name (default firedrill-test); secrets are named after it
#   FDSWARM_PORT    the port the stack publishes the API on (default 19797)
#   FDSWARM_KEEP=1  leave everything running on failure, to look around (then run
#                   `FDSWARM_CLEAN_ONLY=1 tests/swarm.sh` to remove it)
#   FDSWARM_COMPOSE a third Compose file deployed on top (absolute path), e.g. to try
#                   another main config: configs: { firedrill-config: { file: … } }
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

stack=${FDSWARM_STACK:-firedrill-test}
port=${FDSWARM_PORT:-19797}
drill=fdswarm-shop
ns_label="com.docker.stack.namespace=$stack"
secrets=(api-token catalog-password age-identity source-password)

log() { printf '==> swarm: %s\n' "$*" >&2; }
fail() { printf 'swarm test FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (the offline image build needs debootstrap)"
for t in docker curl jq; do
    command -v "$t" >/dev/null || fail "$t not found (apt-get install -y $t)"
done
docker info >/dev/null 2>&1 || fail "the Docker daemon does not answer"

work=
# Made when this test creates the swarm, removed when it leaves it: a run kept with
# FDSWARM_KEEP=1 hands the swarm to the clean-up that follows.
state_file=/tmp/$stack.swarm-created

# --- clean-up ---------------------------------------------------------------------------

# wait_gone WHAT SECONDS CMD...: poll until CMD prints nothing.
wait_gone() {
    local what=$1 secs=$2 i out
    shift 2
    for ((i = 0; i < secs; i++)); do
        out=$("$@" 2>/dev/null || true)
        [ -z "$out" ] && return 0
        sleep 1
    done
    log "still there after ${secs}s: $what: $(echo $out)"
    return 1
}

stack_containers() { docker ps -aq --filter "label=$ns_label"; }
sandbox_containers() { docker ps -aq --filter "label=firedrill.drill=$drill"; }
sandbox_volumes() { docker volume ls -q --filter "label=firedrill.drill=$drill"; }
stack_volumes() { docker volume ls -q --filter "label=$ns_label"; }
stack_networks() { docker network ls -q --filter "label=$ns_label"; }
stack_configs() { docker config ls -q --filter "label=$ns_label" 2>/dev/null; }
stack_secrets() {
    local s
    for s in "${secrets[@]}"; do
        docker secret inspect -f '{{.ID}}' "$stack-$s" 2>/dev/null || true
    done
}

# Removes everything this test made (and, with `final`, leaves the swarm when a run of
# this test created it); returns non-zero when something would not go.
clean() {
    local ok=0 ids final=${1:-}
    if docker stack ls --format '{{.Name}}' 2>/dev/null | grep -qx "$stack"; then
        log "docker stack rm $stack"
        docker stack rm "$stack" >/dev/null || ok=1
    fi
    wait_gone "containers of the stack" 120 stack_containers || ok=1
    # A daemon stopped mid-drill removes its sandbox; one killed leaves it (labelled).
    ids=$(sandbox_containers)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null || ok=1
    ids=$(sandbox_volumes)
    [ -z "$ids" ] || docker volume rm $ids >/dev/null || ok=1
    # The stack's named volumes outlive `stack rm`; they go once no container holds them.
    ids=$(stack_volumes)
    [ -z "$ids" ] || docker volume rm $ids >/dev/null || ok=1
    wait_gone "networks of the stack" 60 stack_networks || ok=1
    ids=$(stack_configs)
    [ -z "$ids" ] || docker config rm $ids >/dev/null || ok=1
    ids=$(stack_secrets)
    [ -z "$ids" ] || docker secret rm $ids >/dev/null || ok=1
    if [ "$final" = final ] && [ -f "$state_file" ]; then
        log "leaving the swarm this test created"
        docker swarm leave --force >/dev/null || ok=1
        if grep -qx gwbridge=absent "$state_file"; then
            docker network rm docker_gwbridge >/dev/null 2>&1 || true
        fi
        rm -f "$state_file"
    fi
    [ -z "$work" ] || rm -rf "$work"
    # What is left, if anything.
    local left
    left="$(stack_containers)$(sandbox_containers)$(sandbox_volumes)$(stack_volumes)$(stack_networks)$(stack_configs)$(stack_secrets)"
    if [ -n "$left" ]; then
        log "left behind: $(echo $left)"
        ok=1
    fi
    return $ok
}

if [ "${FDSWARM_CLEAN_ONLY:-}" = 1 ]; then
    rm -rf /tmp/"$stack".??????   # work directories a kept run left
    clean final && log "clean" && exit 0
    fail "could not remove everything"
fi

diagnose() {
    log "--- services"
    docker stack ps --no-trunc "$stack" 2>&1 | head -40 >&2 || true
    local s
    for s in firedrill catalog source; do
        log "--- logs of ${stack}_$s (tail)"
        docker service logs --no-task-ids --tail 40 "${stack}_$s" 2>&1 | tail -40 >&2 || true
    done
}

on_exit() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        diagnose
        if [ "${FDSWARM_KEEP:-}" = 1 ]; then
            log "FDSWARM_KEEP=1: left running; FDSWARM_CLEAN_ONLY=1 tests/swarm.sh removes it"
            exit "$rc"
        fi
    fi
    trap - EXIT
    clean final || rc=1
    exit "$rc"
}

# --- the swarm --------------------------------------------------------------------------

case $(docker info -f '{{.Swarm.LocalNodeState}}') in
    inactive)
        log "docker swarm init (left again at the end)"
        # docker_gwbridge, made by the init, outlives `swarm leave`: removed then unless
        # it was there before.
        gw=absent
        docker network inspect docker_gwbridge >/dev/null 2>&1 && gw=present
        docker swarm init >/dev/null 2>&1 \
            || docker swarm init --advertise-addr 127.0.0.1 >/dev/null \
            || fail "docker swarm init failed"
        echo "gwbridge=$gw" > "$state_file"
        ;;
    active)
        [ "$(docker info -f '{{.Swarm.ControlAvailable}}')" = true ] \
            || fail "this engine is a swarm worker: run the test on a manager"
        ;;
    *) fail "the engine's swarm state is $(docker info -f '{{.Swarm.LocalNodeState}}'): neither in a swarm nor out" ;;
esac
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an earlier, interrupted run.
clean || fail "could not remove what an earlier run left"

if ss -Hltn "sport = :$port" | grep -q .; then
    fail "port $port is taken (FDSWARM_PORT=… picks another)"
fi

# --- images -----------------------------------------------------------------------------

bin=${FIREDRILL_BIN:-}
if [ -z "$bin" ]; then
    for b in target/release/firedrill target/debug/firedrill; do
        [ -x "$b" ] || continue
        if [ -z "$bin" ] || [ "$b" -nt "$bin" ]; then bin=$b; fi
    done
fi
[ -n "$bin" ] && [ -x "$bin" ] || fail "no firedrill binary: cargo build --bin firedrill, or set FIREDRILL_BIN"
bin=$(realpath "$bin")
log "images: firedrill:latest from $bin, firedrill-sandbox-postgres:15"
FIREDRILL_BIN=$bin containers/build-offline.sh firedrill postgres

# --- secrets and files ------------------------------------------------------------------

work=$(mktemp -d "/tmp/$stack.XXXXXX")
chmod 0700 "$work"
random() { head -c 24 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_'; }
random > "$work/api-token"
random > "$work/catalog-password"
random > "$work/source-password"
recipient=$("$bin" keygen --output "$work/age-identity" 2>/dev/null | grep -o 'age1[0-9a-z]*' | head -1)
[ -n "$recipient" ] || fail "firedrill keygen printed no recipient"
for s in "${secrets[@]}"; do
    docker secret create --label "fdswarm=$stack" "$stack-$s" "$work/$s" >/dev/null
done

cat > "$work/$drill.toml" <<EOF
# Written by tests/swarm.sh: the seeded source service of tests/swarm/stack-test.yml.
description = "Swarm test: a source PostgreSQL service drilled by one of three daemons"

[source]
type = "postgres"
host = "source"
port = 5432
database = "shop"
user = "shop"
password = { file = "/run/secrets/firedrill-source-password" }

[storage]
type = "local"
path = "/var/lib/firedrill/store"

[encryption]
recipients = ["$recipient"]
identity = { file = "/run/secrets/firedrill-age-identity" }

[sandbox]
type = "docker"
memory = "1GiB"
cpus = 1

[timeouts]
dump = "5m"
provision = "3m"
restore = "5m"
verify = "5m"

[[assertion]]
name = "every order has a customer"
sql = "select count(*) from orders o left join customers c on c.id = o.customer_id where c.id is null"
expect = "= 0"

[[assertion]]
name = "the orders are all there"
sql = "select count(*) from orders"
expect = "= 5000"
EOF
"$bin" validate "$work/$drill.toml" >/dev/null 2>&1 \
    || { "$bin" validate "$work/$drill.toml" || true; fail "the generated drill does not validate"; }

# --- deploy -----------------------------------------------------------------------------

log "docker stack deploy $stack (port $port)"
DOCKER_GID=$(stat -c %g /var/run/docker.sock) \
FIREDRILL_PORT=$port \
FIREDRILL_SECRET_PREFIX=$stack \
FDSWARM_DIR=$work \
FDSWARM_TESTS=$repo/tests/swarm \
    docker stack deploy --detach=true \
        --resolve-image never -c deploy/stack.yml -c tests/swarm/stack-test.yml \
        ${FDSWARM_COMPOSE:+-c "$FDSWARM_COMPOSE"} "$stack" >/dev/null

healthy() {
    docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_$1" \
        --filter health=healthy | wc -l
}
log "waiting for 3 healthy daemons, the catalog and the source"
deadline=$((SECONDS + ${FDSWARM_START_TIMEOUT:-300}))
while :; do
    d=$(healthy firedrill) c=$(healthy catalog) s=$(healthy source)
    [ "$d" -ge 3 ] && [ "$c" -ge 1 ] && [ "$s" -ge 1 ] && break
    [ "$SECONDS" -lt "$deadline" ] \
        || fail "after ${FDSWARM_START_TIMEOUT:-300}s: $d/3 daemons, $c/1 catalog, $s/1 source healthy"
    sleep 3
done
log "up: 3 daemons, catalog, source"

# The API of one replica, asked in its container at its loopback with the token it reads
# from its own secret (no token on any command line): api_in CONTAINER METHOD PATH
# prints the HTTP status, a newline and the body.
api_in() {
    docker exec "$1" bash -c '
        exec 3<>/dev/tcp/127.0.0.1/9797 || exit 1
        printf "%s %s HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n" \
            "$1" "$2" "$(cat /run/secrets/firedrill-api-token)" >&3
        cat <&3' _ "$2" "$3" | tr -d '\r' | awk 'NR == 1 { print $2; next } body { print } /^$/ { body = 1 }'
}
mapfile -t daemons < <(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_firedrill")
[ "${#daemons[@]}" = 3 ] || fail "expected 3 daemon containers, found ${#daemons[@]}"

# The published port goes through the routing mesh, which needs IPVS in the kernel: asked
# where there is one; elsewhere (this kind of test machine) said so, and skipped.
if [ -e /proc/net/ip_vs ]; then
    ok=0
    for ((i = 0; i < 30; i++)); do
        curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '^ok' && { ok=1; break; }
        sleep 1
    done
    [ "$ok" = 1 ] || fail "the published port $port does not answer /healthz"
    log "the routing mesh answers on port $port"
else
    log "no IPVS in this kernel (/proc/net/ip_vs): the routing mesh cannot work here; not asking the published port"
fi

# --- the drill --------------------------------------------------------------------------

# Started on one replica, followed on another, checked on all three: a run lives in the
# shared catalog, not in the daemon that took the request.
log "POST /api/v1/drills/$drill/runs (replica ${daemons[0]})"
started=$(api_in "${daemons[0]}" POST "/api/v1/drills/$drill/runs")
code=$(printf '%s\n' "$started" | head -1)
body=$(printf '%s\n' "$started" | tail -n +2)
[ "$code" = 202 ] || fail "starting the drill: HTTP ${code:-none}: $body"
run_id=$(printf '%s' "$body" | jq -er .run_id) || fail "no run_id in $body"
log "run $run_id; following it on replica ${daemons[1]}"

deadline=$((SECONDS + ${FDSWARM_RUN_TIMEOUT:-600}))
status=
while :; do
    view=$(api_in "${daemons[1]}" GET "/api/v1/runs/$run_id" | tail -n +2) || view=
    status=$(printf '%s' "$view" | jq -r '.status // empty' 2>/dev/null || true)
    case $status in
        passed|failed|error|cancelled|interrupted|lost) break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "run $run_id still ${status:-unknown} after ${FDSWARM_RUN_TIMEOUT:-600}s"
    sleep 3
done
printf '%s' "$view" | jq -r '.stages[]? | "  \(.stage)\t\(.outcome)\t\(.duration_ms)ms"' >&2 2>/dev/null || true
if [ "$status" != passed ]; then
    printf '%s' "$view" | jq . >&2 2>/dev/null || printf '%s\n' "$view" >&2
    fail "run $run_id ended $status, not passed"
fi
log "run $run_id passed"

for c in "${daemons[@]}"; do
    got=$(api_in "$c" GET "/api/v1/runs/$run_id" | tail -n +2 | jq -r .status 2>/dev/null || true)
    [ "$got" = passed ] || fail "replica $c says run $run_id is '${got:-nothing}', not passed"
done
log "all 3 replicas report run $run_id passed"

# The run's sandbox is gone (teardown), before the stack is.
left=$(sandbox_containers)$(sandbox_volumes)
[ -z "$left" ] || fail "the drill's sandbox is still there after the run: $(echo $left)"

# The run is a row of the PostgreSQL catalog (not of some file a daemon kept), with the
# daemon that ran it as its owner. Asked as postgres over the catalog's socket.
catalog_sql() {
    local c
    c=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_catalog" | head -1)
    [ -n "$c" ] || fail "no catalog container"
    docker exec "$c" setpriv --reuid=postgres --regid=postgres --init-groups -- \
        psql -X -qAt -h /run/postgresql -U postgres -d firedrill -c "$1"
}
row=$(catalog_sql "select status || ' ' || coalesce(owner, '-') from runs where run_id = '$run_id'") \
    || fail "cannot read the catalog's runs table"
case $row in
    "passed "*) log "the catalog holds run $run_id: $row" ;;
    *) fail "the catalog's row of run $run_id: '${row:-none}', expected passed" ;;
esac

# --- a daemon killed mid-run ------------------------------------------------------------

# A run whose daemon dies is recorded lost by a survivor once its lease has expired
# (stack/firedrill.toml: lease 60s, poll 5s), and the survivor removes its sandbox (all
# replicas share this node's engine here). The daemon is killed right after it accepts
# the run: SIGKILL, no shutdown, no hand-over.
victim=${daemons[2]}
log "failover: POST on replica $victim, then docker kill it"
started=$(api_in "$victim" POST "/api/v1/drills/$drill/runs")
code=$(printf '%s\n' "$started" | head -1)
body=$(printf '%s\n' "$started" | tail -n +2)
[ "$code" = 202 ] || fail "starting the second run: HTTP ${code:-none}: $body"
docker kill --signal KILL "$victim" >/dev/null
lost_id=$(printf '%s' "$body" | jq -er .run_id) || fail "no run_id in $body"
log "run $lost_id, its daemon killed; waiting for a survivor to record it lost"
deadline=$((SECONDS + ${FDSWARM_LOST_TIMEOUT:-180}))
while :; do
    status=$(api_in "${daemons[0]}" GET "/api/v1/runs/$lost_id" | tail -n +2 | jq -r '.status // empty' 2>/dev/null || true)
    case $status in
        lost) break ;;
        passed|failed|error|cancelled|interrupted)
            fail "run $lost_id of the killed daemon ended $status, not lost" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "run $lost_id still ${status:-unknown} ${FDSWARM_LOST_TIMEOUT:-180}s after its daemon was killed"
    sleep 3
done
log "run $lost_id recorded lost by a survivor after $((SECONDS - deadline + ${FDSWARM_LOST_TIMEOUT:-180}))s"
wait_gone "the killed daemon's sandbox" 30 sh -c "docker ps -aq --filter label=firedrill.run=$lost_id; docker volume ls -q --filter label=firedrill.run=$lost_id" \
    || fail "the sandbox of lost run $lost_id was not removed by the survivor"

# --- tear down --------------------------------------------------------------------------

trap - EXIT
if ! clean final; then
    fail "the stack did not go away completely"
fi
log "PASSED: 3 daemons sharing one catalog drilled $drill, and a survivor recorded the run of a killed daemon lost; nothing left behind"
