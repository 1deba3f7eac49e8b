#!/usr/bin/env bash
# Renders the Kubernetes manifests with `kubectl kustomize`: deploy/k8s (one daemon) and
# deploy/k8s-cluster (three daemons on a PostgreSQL catalog), failing on any error, and
# checks what the overlay must change (3 replicas, no PersistentVolumeClaim, the catalog
# Secret wired in, a postgres:// catalog). No cluster is needed.
#
#   tests/k8s-render.sh        # as root the first time (it installs kubectl)
#
# kubectl: $KUBECTL when set; else /opt/firedrill-tools/kubectl, made on first use from
# Debian trixie's kubectl package (bookworm's kubernetes-client, kubectl 1.20, is too old
# for the overlay; trixie's kubernetes-client is a transitional package for `kubectl`,
# 1.32, which runs on bookworm): `apt-get download` through a private apt
# directory that knows only trixie (the system's sources, lists and packages are left
# alone), then `dpkg -x`, with no installation. FIREDRILL_DEBIAN_MIRROR picks the
# mirror (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=/opt/firedrill-tools
mirror=${FIREDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '==> k8s-render: %s\n' "$*" >&2; }
fail() { printf 'k8s render FAILED: %s\n' "$*" >&2; exit 1; }

# Unpacks trixie's kubectl package into $tools/kubectl; prints kubectl's path.
install_kubectl() {
    local root=$tools/kubectl bin=$tools/kubectl/usr/bin/kubectl
    if [ -x "$bin" ]; then
        echo "$bin"
        return
    fi
    [ "$(id -u)" = 0 ] || fail "kubectl is not in $root yet: run once as root (or set KUBECTL)"
    command -v apt-get >/dev/null && command -v dpkg >/dev/null \
        || fail "needs apt-get and dpkg (Debian/Ubuntu), or KUBECTL"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -s "$keyring" ] || fail "no $keyring (apt-get install debian-archive-keyring)"
    local apt=$tools/apt
    rm -rf "$apt"
    mkdir -p "$apt/etc/sources.list.d" "$apt/etc/preferences.d" "$apt/lists/partial" \
        "$apt/cache/archives/partial" "$apt/debs"
    printf 'deb [signed-by=%s] %s trixie main\n' "$keyring" "$mirror" > "$apt/etc/sources.list"
    : > "$apt/status"
    local opts=(
        -o "Dir::Etc::SourceList=$apt/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$apt/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
        -o "Dir::State::Lists=$apt/lists"
        # An empty package database: what this host has installed (another kubectl, say)
        # must not be taken for the candidate.
        -o "Dir::State::status=$apt/status"
        -o "Dir::Cache=$apt/cache"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
        -o "APT::Get::List-Cleanup=false"
        -o "DPkg::Lock::Timeout=600"
    )
    # apt downloads as _apt where that user exists.
    if id _apt >/dev/null 2>&1; then chown _apt "$apt/debs"; fi
    log "fetching trixie's kubectl package (private apt directory $apt)"
    apt-get "${opts[@]}" -qq update || fail "apt-get update of trixie failed"
    (cd "$apt/debs" && apt-get "${opts[@]}" -qq download kubectl) \
        || fail "apt-get download kubectl failed"
    local deb
    deb=$(ls "$apt"/debs/kubectl_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || fail "no kubectl .deb downloaded"
    log "unpacking $(basename "$deb") into $root"
    rm -rf "$root.new"
    dpkg -x "$deb" "$root.new"
    [ -x "$root.new/usr/bin/kubectl" ] || fail "$deb holds no usr/bin/kubectl"
    "$root.new/usr/bin/kubectl" version --client >/dev/null 2>&1 \
        || fail "trixie's kubectl does not run here"
    rm -rf "$root"
    mv "$root.new" "$root"
    rm -rf "$apt"
    echo "$bin"
}

kubectl=${KUBECTL:-$(install_kubectl)}
log "$("$kubectl" version --client 2>&1 | head -2 | tr '\n' ' ')($kubectl)"

command -v python3 >/dev/null || fail "python3 not found"
# Debian's interpreter, where python3-yaml installs (as tests/deploy.rs), else any.
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c 'import yaml' 2>/dev/null || py=python3
"$py" -c 'import yaml' 2>/dev/null || fail "python3-yaml missing (apt-get install -y python3-yaml)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for dir in deploy/k8s deploy/k8s-cluster; do
    name=$(echo "$dir" | tr / -)
    if ! "$kubectl" kustomize "$dir" > "$out/$name.yaml" 2> "$out/$name.err"; then
        cat "$out/$name.err" >&2
        fail "kubectl kustomize $dir"
    fi
    [ ! -s "$out/$name.err" ] || { log "warnings from $dir:"; cat "$out/$name.err" >&2; }
    log "rendered $dir: $(grep -c '^kind:' "$out/$name.yaml") objects"
done

# What each rendering must hold. The ConfigMap's firedrill.toml is parsed as TOML (tomllib,
# Python 3.11+) when the interpreter has it.
if ! "$py" - "$out/deploy-k8s.yaml" "$out/deploy-k8s-cluster.yaml" <<'PY'
import sys, yaml

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]

def toml_of(cm):
    text = cm["data"]["firedrill.toml"]
    try:
        import tomllib
    except ImportError:
        return None, text
    return tomllib.loads(text), text

problems = []
def check(ok, what):
    if not ok:
        problems.append(what)

base, cluster = load(sys.argv[1]), load(sys.argv[2])
for docs, where in ((base, "deploy/k8s"), (cluster, "deploy/k8s-cluster")):
    for d in docs:
        check(d["metadata"].get("namespace", "firedrill") == "firedrill" or d["kind"] == "Namespace",
              f"{where}: {d['kind']} {d['metadata']['name']} outside the firedrill namespace")

# The base: one daemon on a SQLite catalog on a PVC.
dep = one(base, "Deployment", "firedrill")
check(dep["spec"]["replicas"] == 1, "deploy/k8s: one replica")
one(base, "PersistentVolumeClaim", "firedrill-catalog")

# The overlay: three daemons, a PostgreSQL catalog, its Secret, no PVC.
dep = one(cluster, "Deployment", "firedrill")
spec = dep["spec"]
check(spec["replicas"] == 3, "cluster: replicas = 3")
check(spec["strategy"]["type"] == "RollingUpdate", "cluster: RollingUpdate")
check(not [d for d in cluster if d["kind"] == "PersistentVolumeClaim"], "cluster: no PersistentVolumeClaim")
pod = spec["template"]["spec"]
check(not [v for v in pod["volumes"] if "persistentVolumeClaim" in v], "cluster: no PVC volume in the pod")
names = {v["name"] for v in pod["volumes"]}
fd = next(c for c in pod["containers"] if c["name"] == "firedrill")
for m in fd["volumeMounts"]:
    check(m["name"] in names, f"cluster: mount {m['mountPath']} names a missing volume {m['name']}")
env = {e["name"]: e for e in fd.get("env", [])}
ref = env.get("FIREDRILL_CATALOG_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
secret = one(cluster, "Secret", "firedrill-catalog")
check(ref.get("name") == "firedrill-catalog" and ref.get("key") in secret.get("stringData", {}),
      "cluster: FIREDRILL_CATALOG_PASSWORD from the firedrill-catalog Secret")
check(any(c["name"] == "dind" for c in pod["containers"]), "cluster: the dind sidecar is kept")
pdb = one(cluster, "PodDisruptionBudget", "firedrill")
check(pdb["spec"]["selector"]["matchLabels"].items() <= spec["selector"]["matchLabels"].items()
      or spec["selector"]["matchLabels"].items() <= pdb["spec"]["selector"]["matchLabels"].items(),
      "cluster: the PodDisruptionBudget selects the daemons")
svc = one(cluster, "Service", "firedrill")
check(svc["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items(),
      "cluster: the Service selects the daemons")
conf, text = toml_of(one(cluster, "ConfigMap", "firedrill"))
if conf is None:
    check('catalog = "postgres://' in text, "cluster: catalog = postgres://…")
    check("catalog_password = { env = \"FIREDRILL_CATALOG_PASSWORD\" }" in text, "cluster: catalog_password from the env")
else:
    check(conf["catalog"].startswith("postgres://"), "cluster: catalog = postgres://…")
    check(conf.get("catalog_password") == {"env": "FIREDRILL_CATALOG_PASSWORD"}, "cluster: catalog_password from the env")
    check("@" in conf["catalog"] and ":" not in conf["catalog"].split("//", 1)[1].split("@", 1)[0],
          "cluster: no password inline in the catalog URL")
    d = conf["daemon"]
    check(d["listen"].startswith("0.0.0.0:"), "cluster: listen on every interface")
    check(all(k in d for k in ("lease", "heartbeat", "poll")), "cluster: lease, heartbeat and poll set")

if problems:
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
PY
then
    fail "the rendered manifests"
fi

# firedrill itself checks the overlay's main config when a binary is at hand (offline:
# `validate` reads the config, not the catalog). Needs the firedrill that knows
# postgres:// catalogs; an older one is reported, not failed.
bin=${FIREDRILL_BIN:-}
for b in target/debug/firedrill target/release/firedrill; do
    [ -n "$bin" ] || { [ -x "$b" ] && bin=$b; }
done
if [ -n "$bin" ]; then
    "$py" - "$out/deploy-k8s-cluster.yaml" "$out" <<'PY'
import sys, yaml, os
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "firedrill")
os.makedirs(os.path.join(sys.argv[2], "conf", "drills"))
for k, v in cm["data"].items():
    path = os.path.join(sys.argv[2], "conf", k if k == "firedrill.toml" else os.path.join("drills", k))
    open(path, "w").write(v)
PY
    # The container's paths become the copy's; the secrets are not read by `validate`.
    sed -i "s|/etc/firedrill/drills|$out/conf/drills|" "$out/conf/firedrill.toml"
    if FIREDRILL_CATALOG_PASSWORD=x "$bin" --config "$out/conf/firedrill.toml" validate \
        > "$out/validate.out" 2>&1; then
        log "firedrill validate: the overlay's config and drills validate ($bin)"
    elif grep -q "catalog_password" "$out/validate.out"; then
        log "firedrill validate: $bin predates the PostgreSQL catalog (catalog_password unknown); not checked"
    else
        cat "$out/validate.out" >&2
        fail "firedrill validate of the overlay's config"
    fi
fi
log "PASSED: deploy/k8s and deploy/k8s-cluster render"
