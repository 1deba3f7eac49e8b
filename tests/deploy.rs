//! The deploy recipes, checked with the real tools: the systemd unit with
//! `systemd-analyze verify` and `security`, the Compose file with `docker-compose config`,
//! the Kubernetes manifests parsed as YAML (python3-yaml) and cross-checked, and the
//! config and drill in the ConfigMap validated by the built `firedrill`. Each check is
//! also run on a broken copy, to show that it can fail. A missing tool fails the test:
//! run the suite through `tests/run`, which installs them (deploy/host-setup.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIREDRILL: &str = env!("CARGO_BIN_EXE_firedrill");
/// The Debian interpreter, where python3-yaml installs (not a pyenv or venv one).
const PYTHON: &str = "/usr/bin/python3";

mod support;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn missing(tool: &str, package: &str) -> ! {
    panic!(
        "{tool} is not installed: run the tests through tests/run, which installs it \
         (Debian package {package}, deploy/host-setup.sh)"
    )
}

/// `name` on PATH, or a failing test that says how to get it.
fn tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing(name, package))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// stdout and stderr together.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every YAML document of `text`, as JSON, through python3-yaml's safe loader.
fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    if !Path::new(PYTHON).is_file() {
        missing(PYTHON, "python3");
    }
    let mut child = Command::new(PYTHON)
        .args([
            "-c",
            "import sys, json, yaml\n\
             json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout, default=str)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'yaml'") {
        missing("python3-yaml", "python3-yaml");
    }
    assert!(out.status.success(), "{what} is not valid YAML:\n{err}");
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("unexpected output for {what}: {other}"),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

// ---------------------------------------------------------------------------------------
// systemd

const UNIT: &str = "deploy/systemd/firedrill.service";

/// The unit, copied into `dir` as firedrill.service, with the binary and config paths
/// rewritten to the built firedrill and a valid config in `dir`; `edit` changes it more.
fn unit_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let unit = read(&repo().join(UNIT));
    let exec = "ExecStart=/usr/local/bin/firedrill --config /etc/firedrill/firedrill.toml daemon";
    assert!(
        unit.lines().any(|l| l == exec),
        "{UNIT} should have `{exec}`"
    );
    let config = dir.join("firedrill.toml");
    std::fs::write(
        &config,
        format!(
            "catalog = \"{0}/catalog.db\"\ndrills_dir = \"{0}/drills\"\n\n[daemon]\nlisten = \"127.0.0.1:9797\"\ngrace = \"30s\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let unit = unit
        .replace("/usr/local/bin/firedrill", FIREDRILL)
        .replace("/etc/firedrill/firedrill.toml", config.to_str().unwrap());
    let path = dir.join("firedrill.service");
    std::fs::write(&path, edit(unit)).unwrap();
    path
}

/// `systemd-analyze verify`: its status, and every line it printed about our unit
/// (parse errors are `<path>:<line>: …`, exec problems `firedrill.service: …`).
fn verify(unit: &Path) -> (bool, Vec<String>, String) {
    let sa = tool("systemd-analyze", "systemd");
    let out = output(Command::new(sa).args(["verify", "--man=no"]).arg(unit));
    let all = text(&out);
    let ours = all
        .lines()
        .filter(|l| l.contains("firedrill.service"))
        .map(str::to_string)
        .collect();
    (out.status.success(), ours, all)
}

#[test]
fn systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path(), |u| u);

    // The config the unit now points at is one firedrill accepts.
    let out = output(
        Command::new(FIREDRILL)
            .arg("--config")
            .arg(dir.path().join("firedrill.toml"))
            .arg("validate")
            .arg(repo().join("drills/demo-postgres.toml")),
    );
    assert!(out.status.success(), "{}", text(&out));

    let (ok, ours, all) = verify(&unit);
    eprintln!("systemd-analyze verify {}:\n{all}", unit.display());
    assert!(ok, "systemd-analyze verify failed:\n{all}");
    assert!(
        ours.is_empty(),
        "systemd-analyze verify complains about the unit:\n{}",
        ours.join("\n")
    );

    // A misspelt directive and an invalid value are only warnings (exit 0), which is
    // why the test reads what verify prints about the unit.
    let typo = unit_copy(dir.path(), |u| {
        u.replace("ProtectSystem=strict", "ProtectSystm=strict")
            .replace("RestrictNamespaces=yes", "RestrictNamespaces=sometimes")
    });
    let (_, ours, all) = verify(&typo);
    assert!(
        ours.iter().any(|l| l.contains("ProtectSystm")),
        "verify did not report the misspelt ProtectSystm:\n{all}"
    );
    assert!(
        ours.iter().any(|l| l.contains("sometimes")),
        "verify did not report RestrictNamespaces=sometimes:\n{all}"
    );

    // A binary that is not there fails verify outright.
    let gone = unit_copy(dir.path(), |u| {
        u.replace(FIREDRILL, "/nonexistent/bin/firedrill")
    });
    let (ok, ours, all) = verify(&gone);
    assert!(!ok, "verify accepted a missing ExecStart binary:\n{all}");
    assert!(!ours.is_empty(), "{all}");
}

#[test]
fn systemd_unit_is_hardened() {
    let sa = tool("systemd-analyze", "systemd");
    let unit = read(&repo().join(UNIT));
    let directives: BTreeMap<&str, Vec<&str>> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .fold(BTreeMap::new(), |mut m, l| {
            let (k, v) = l.split_once('=').unwrap();
            m.entry(k).or_default().push(v);
            m
        });
    let one = |k: &str| -> &str {
        match directives.get(k).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("{UNIT}: expected one {k}=, found {other:?}"),
        }
    };
    for (k, v) in [
        ("User", "firedrill"),
        ("SupplementaryGroups", "docker"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ReadWritePaths", "/var/lib/firedrill"),
        ("StateDirectory", "firedrill"),
        ("ConfigurationDirectory", "firedrill"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("LockPersonality", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "-/etc/firedrill/env"),
    ] {
        assert_eq!(one(k), v, "{UNIT}: {k}=");
    }
    assert!(
        directives["SystemCallFilter"].contains(&"@system-service"),
        "{UNIT}: SystemCallFilter=@system-service"
    );
    // Longer than the daemon's default grace (30s), so SIGTERM can tear sandboxes down.
    let stop = one("TimeoutStopSec");
    let secs: u64 = stop.trim_end_matches('s').parse().unwrap();
    assert!(
        secs > 30,
        "{UNIT}: TimeoutStopSec={stop} must exceed the 30s grace"
    );

    // systemd's own rating, 0 (locked down) to 10 (unsafe); --threshold is ×10. The
    // unit rates about 1.4; without its hardening the same unit rates over 9.
    let dir = tempfile::tempdir().unwrap();
    let rate = |path: &Path| {
        output(
            Command::new(&sa)
                .args(["security", "--offline=yes", "--threshold=20"])
                .arg(path),
        )
    };
    let path = unit_copy(dir.path(), |u| u);
    let out = rate(&path);
    let overall = text(&out)
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_string();
    eprintln!("systemd-analyze security: {overall}");
    assert!(
        out.status.success(),
        "the unit's exposure is above 2.0:\n{}",
        text(&out)
    );
    let soft = unit_copy(dir.path(), |u| {
        u.lines()
            .filter(|l| {
                ![
                    "Protect",
                    "Private",
                    "Restrict",
                    "NoNew",
                    "Capability",
                    "SystemCall",
                    "Memory",
                    "Lock",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let out = rate(&soft);
    assert!(
        !out.status.success(),
        "an unhardened copy passed the threshold:\n{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------
// Docker Compose

const COMPOSE: &str = "deploy/docker-compose.yml";

/// "60s", "1m30s", "1h": Compose durations, in seconds.
fn seconds(d: &str) -> u64 {
    let (mut total, mut n) = (0, String::new());
    for c in d.chars() {
        if c.is_ascii_digit() {
            n.push(c);
        } else {
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => panic!("unexpected duration {d}"),
            };
            total += n.parse::<u64>().unwrap() * unit;
            n.clear();
        }
    }
    assert!(n.is_empty(), "unexpected duration {d}");
    total
}

fn compose_config(file: &Path, docker_gid: Option<&str>) -> Output {
    let mut c = support::compose();
    c.arg("-f").arg(file).arg("config");
    for v in [
        "DOCKER_GID",
        "FIREDRILL_CONFIG_FILE",
        "FIREDRILL_DRILLS_DIR",
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
    ] {
        c.env_remove(v);
    }
    if let Some(gid) = docker_gid {
        c.env("DOCKER_GID", gid);
    }
    output(&mut c)
}

#[test]
fn compose_file_is_valid() {
    let file = repo().join(COMPOSE);
    let raw = read(&file);
    assert!(
        raw.contains("root-equivalent"),
        "{COMPOSE} should warn that the Docker socket is root-equivalent"
    );

    let out = compose_config(&file, Some("999"));
    eprintln!("{:?} config:\n{}", support::compose(), text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let docs = yaml_docs(
        &String::from_utf8_lossy(&out.stdout),
        "compose config output",
    );
    let cfg = &docs[0];
    let svc = &cfg["services"]["firedrill"];
    assert_eq!(str_at(svc, "/image"), "firedrill:latest");
    assert_eq!(str_at(svc, "/restart"), "unless-stopped");
    assert_eq!(
        str_at(svc, "/build/dockerfile"),
        "containers/firedrill/Dockerfile"
    );
    // docker-compose prints short syntax, `docker compose` long syntax.
    let volumes: Vec<String> = svc["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            long => format!(
                "{}:{}{}",
                str_at(long, "/source"),
                str_at(long, "/target"),
                if long["read_only"] == true { ":ro" } else { "" }
            ),
        })
        .collect();
    let mount = |target: &str| {
        volumes
            .iter()
            .find(|v| v.split(':').nth(1) == Some(target))
            .unwrap_or_else(|| panic!("no volume at {target}: {volumes:?}"))
            .to_string()
    };
    assert!(mount("/var/run/docker.sock").starts_with("/var/run/docker.sock:"));
    assert!(mount("/var/lib/firedrill").starts_with("catalog:"));
    assert!(
        cfg["volumes"].get("catalog").is_some(),
        "named volume catalog"
    );
    assert!(mount("/etc/firedrill/firedrill.toml").ends_with(":ro"));
    assert!(mount("/etc/firedrill/drills").ends_with(":ro"));
    let test = svc["healthcheck"]["test"].to_string();
    assert!(test.contains("/healthz"), "healthcheck: {test}");
    assert!(
        svc["ports"].to_string().contains("9797"),
        "{}",
        svc["ports"]
    );
    assert_eq!(svc["group_add"][0], "999");
    let used: BTreeSet<&str> = svc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().or(s.as_str()).unwrap())
        .collect();
    let defined: BTreeSet<&str> = cfg["secrets"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(!used.is_empty());
    assert_eq!(used, defined);
    let grace = str_at(svc, "/stop_grace_period");
    assert!(
        seconds(grace) > 30,
        "stop_grace_period {grace} must exceed the daemon's 30s grace"
    );

    // Without DOCKER_GID the file refuses to render, and says why.
    let out = compose_config(&file, None);
    assert!(!out.status.success(), "rendered without DOCKER_GID");
    assert!(text(&out).contains("DOCKER_GID"), "{}", text(&out));

    // A misspelt key fails.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("docker-compose.yml");
    std::fs::write(&broken, raw.replace("    healthcheck:", "    helthcheck:")).unwrap();
    let out = compose_config(&broken, Some("999"));
    assert!(
        !out.status.success(),
        "a broken copy passed:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("helthcheck"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------
// Kubernetes

const K8S: &str = "deploy/k8s";

/// Every manifest: file name → its documents.
fn manifests() -> BTreeMap<String, Vec<Value>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(repo().join(K8S)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            let docs = yaml_docs(&read(&p), &format!("{K8S}/{name}"));
            m.insert(name, docs);
        }
    }
    m
}

fn by_kind(all: &BTreeMap<String, Vec<Value>>, kind: &str) -> Value {
    let found: Vec<&Value> = all
        .values()
        .flatten()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} in {K8S}");
    found[0].clone()
}

/// Every `{ env = … }` and `{ file = … }` secret reference in a TOML value.
fn secret_refs(v: &toml::Value, env: &mut BTreeSet<String>, files: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            if t.len() == 1 {
                if let Some(toml::Value::String(s)) = t.get("env") {
                    env.insert(s.clone());
                }
                if let Some(toml::Value::String(s)) = t.get("file") {
                    files.insert(s.clone());
                }
            }
            t.values().for_each(|v| secret_refs(v, env, files));
        }
        toml::Value::Array(a) => a.iter().for_each(|v| secret_refs(v, env, files)),
        _ => {}
    }
}

#[test]
fn k8s_manifests_parse_and_agree() {
    let all = manifests();
    let mut kinds = BTreeSet::new();
    for (file, docs) in &all {
        assert!(!docs.is_empty(), "{file}: no document");
        for d in docs {
            for field in ["/apiVersion", "/kind", "/metadata/name"] {
                let s = d.pointer(field).and_then(Value::as_str).unwrap_or_default();
                assert!(!s.is_empty(), "{file}: a document without {field}: {d}");
            }
            kinds.insert(d["kind"].as_str().unwrap().to_string());
        }
    }
    for k in [
        "Namespace",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "Kustomization",
    ] {
        assert!(kinds.contains(k), "no {k} in {K8S}: {kinds:?}");
    }

    // kustomization.yaml lists every other manifest, and only existing ones.
    let kust = by_kind(&all, "Kustomization");
    let listed: BTreeSet<String> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = all
        .keys()
        .filter(|f| *f != "kustomization.yaml")
        .cloned()
        .collect();
    assert_eq!(listed, present, "kustomization.yaml resources");

    let secret = by_kind(&all, "Secret");
    let secret_name = str_at(&secret, "/metadata/name");
    let secret_keys: BTreeMap<String, String> = secret["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    for (k, v) in &secret_keys {
        assert!(
            v.contains("REPLACE_ME"),
            "secret key {k} is not a REPLACE_ME placeholder"
        );
    }

    let cm = by_kind(&all, "ConfigMap");
    let data = cm["data"].as_object().unwrap();
    let deploy = by_kind(&all, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(deploy["spec"]["replicas"], 1);
    let containers = pod["containers"].as_array().unwrap();
    let fd = containers
        .iter()
        .find(|c| c["name"] == "firedrill")
        .expect("a container named firedrill");
    let sc = &fd["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert!(sc["runAsUser"].as_u64().unwrap() > 0);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(fd[probe]["httpGet"]["path"], "/healthz", "{probe}");
    }
    for r in ["requests", "limits"] {
        assert!(fd["resources"][r]["memory"].is_string(), "resources.{r}");
    }
    let env: BTreeMap<&str, &Value> = fd["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert!(
        str_at(env["DOCKER_HOST"], "/value").starts_with("tcp://127.0.0.1:"),
        "DOCKER_HOST should point at the docker-in-docker sidecar"
    );
    assert!(
        containers.iter().any(|c| c["name"] == "dind"),
        "the dind sidecar"
    );
    let port = fd["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(port, 9797);

    // Volumes: the PVC, the ConfigMap's keys, the Secret, and where they are mounted.
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mounts: BTreeMap<&str, &str> = fd["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let pvc = by_kind(&all, "PersistentVolumeClaim");
    let catalog_vol = volumes
        .iter()
        .find(|(_, v)| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"])
        .map(|(n, _)| *n)
        .expect("a volume from the PVC");
    assert_eq!(mounts[catalog_vol], "/var/lib/firedrill");
    let (config_vol, cfg_volume) = volumes
        .iter()
        .find(|(_, v)| v["configMap"]["name"] == cm["metadata"]["name"])
        .expect("a volume from the ConfigMap");
    let config_dir = Path::new(mounts[config_vol]);
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for item in cfg_volume["configMap"]["items"].as_array().unwrap() {
        let key = str_at(item, "/key");
        let body = data
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("ConfigMap has no key {key}"));
        files.insert(config_dir.join(str_at(item, "/path")), body.to_string());
    }
    assert_eq!(files.len(), data.len(), "every ConfigMap key is mounted");
    let (secret_vol, _) = volumes
        .iter()
        .find(|(_, v)| v["secret"]["secretName"] == secret_name)
        .expect("a volume from the Secret");
    let secret_dir = mounts[secret_vol];
    let env_from_secret: BTreeSet<&str> = env
        .iter()
        .filter(|(_, e)| e["valueFrom"]["secretKeyRef"]["name"] == secret_name)
        .map(|(n, e)| {
            let key = str_at(e, "/valueFrom/secretKeyRef/key");
            assert!(
                secret_keys.contains_key(key),
                "env {n}: no secret key {key}"
            );
            *n
        })
        .collect();

    // The main config and the drills, written where the pod sees them (under a temp
    // root), validated by the built firedrill.
    let root = tempfile::tempdir().unwrap();
    let at = |p: &Path| root.path().join(p.strip_prefix("/").unwrap());
    let main = config_dir.join("firedrill.toml");
    assert!(files.contains_key(&main), "ConfigMap has firedrill.toml");
    let mut drills = Vec::new();
    let (mut env_refs, mut file_refs) = (BTreeSet::new(), BTreeSet::new());
    for (path, body) in &files {
        std::fs::create_dir_all(at(path.parent().unwrap())).unwrap();
        std::fs::write(at(path), body).unwrap();
        if *path != main {
            drills.push(at(path));
        }
        let value: toml::Value =
            toml::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        secret_refs(&value, &mut env_refs, &mut file_refs);
    }
    assert!(!drills.is_empty(), "the ConfigMap has an example drill");
    let main_cfg = firedrill::config::load_main_config(&at(&main)).unwrap();
    assert_eq!(
        main_cfg.daemon.listen,
        "0.0.0.0:9797".parse().unwrap(),
        "in a pod the daemon listens on every interface"
    );
    for path in files.keys().filter(|p| **p != main) {
        assert_eq!(
            main_cfg.drills_dir.as_deref(),
            path.parent(),
            "drills_dir is where the drill {} is mounted",
            path.display()
        );
    }
    let out = output(
        Command::new(FIREDRILL)
            .arg("--config")
            .arg(at(&main))
            .arg("validate")
            .args(&drills),
    );
    eprintln!("firedrill validate:\n{}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count(),
        drills.len()
    );
    // The same check fails on a broken main config.
    std::fs::write(
        at(&main),
        files[&main].replace("0.0.0.0:9797", "everywhere:9797"),
    )
    .unwrap();
    let out = output(
        Command::new(FIREDRILL)
            .arg("--config")
            .arg(at(&main))
            .arg("validate")
            .args(&drills),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("daemon.listen"), "{}", text(&out));

    // Every secret the config and drills name is provided: files from the Secret's
    // mount, variables from the container's env.
    for f in &file_refs {
        let key = f
            .strip_prefix(&format!("{secret_dir}/"))
            .unwrap_or_else(|| panic!("secret file {f} is not under {secret_dir}"));
        assert!(
            secret_keys.contains_key(key),
            "secret file {f}: no key {key} in the Secret"
        );
    }
    for v in &env_refs {
        assert!(
            env_from_secret.contains(v.as_str()),
            "env {v} is not set from the Secret in the firedrill container"
        );
    }
    assert!(!file_refs.is_empty());

    // Service → pod → ServiceMonitor.
    let svc = by_kind(&all, "Service");
    let labels = &deploy["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "Service selector {k}");
    }
    let svc_port = &svc["spec"]["ports"][0];
    assert!(
        svc_port["targetPort"] == fd["ports"][0]["name"]
            || svc_port["targetPort"].as_u64() == Some(port)
    );
    let sm = by_kind(&all, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], svc_port["name"]);
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selector {k}"
        );
    }
    // The FiredrillDown rule expects job="firedrill": the Service's name.
    assert_eq!(svc["metadata"]["name"], "firedrill");

    // The PrometheusRule carries deploy/prometheus-rules.yml unchanged.
    let rules = yaml_docs(
        &read(&repo().join("deploy/prometheus-rules.yml")),
        "deploy/prometheus-rules.yml",
    );
    let pr = by_kind(&all, "PrometheusRule");
    assert_eq!(pr["spec"]["groups"], rules[0]["groups"]);
}
