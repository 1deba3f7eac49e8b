//! Docker Compose as shipped: the firedrill image built offline
//! (`containers/build-offline.sh firedrill`, from this build's binary), `deploy/` as it
//! is in the repository (docker-compose.yml, compose.toml, compose-init.sh), and what a
//! user adds: the database password and a drills directory with one drill whose store is
//! a local directory in the container's volume. The daemon comes up healthy, and a drill
//! triggered through the published port restores in a sandbox on the host's Docker and
//! passes.
//!
//! The source is the PostgreSQL tests/run started on the host's loopback, which a
//! container cannot reach: the test relays it on the Docker bridge's gateway address, as
//! a user gives a source's address on the Docker network.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Relays connections from `listen` to the host's `127.0.0.1:to`; returns the port.
async fn relay(listen: &str, to: u16) -> u16 {
    let l = TcpListener::bind((listen, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = l.accept().await {
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    port
}

/// `docker-compose` (what tests/run installs) or `docker compose`, in `dir`, for
/// `project`, with the shipped file.
fn compose(dir: &Path, project: &str, drills: &Path) -> Command {
    let mut c = support::compose();
    let gid = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .expect("the Docker socket at /var/run/docker.sock");
    c.current_dir(dir)
        .args(["-p", project, "-f", "docker-compose.yml"])
        .env("DOCKER_GID", gid.to_string())
        .env("FIREDRILL_DRILLS_DIR", drills)
        .env_remove("FIREDRILL_CONFIG_FILE")
        .env_remove("COMPOSE_FILE");
    c
}

/// `docker-compose down -v` however the test ends.
struct Down<'a>(&'a Path, String, &'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let mut c = compose(self.0, &self.1, self.2);
        let _ = c.args(["down", "-v", "-t", "60"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_as_shipped_runs_a_drill_through_its_api() {
    let t0 = Instant::now();
    let pg = support::pg();
    support::create_db("fd_compose", support::SHOP).await;

    // The image, from this build's binary, with no registry.
    run(Command::new(repo().join("containers/build-offline.sh"))
        .arg("firedrill")
        .env("FIREDRILL_BIN", env!("CARGO_BIN_EXE_firedrill"))
        .env("FIREDRILL_IMAGE", "firedrill:latest"));
    eprintln!("image ready after {:?}", t0.elapsed());

    // deploy/ as shipped, copied so that its secrets/ stay out of the checkout.
    let tmp = tempfile::tempdir().unwrap();
    let deploy = tmp.path().join("deploy");
    std::fs::create_dir(&deploy).unwrap();
    for f in ["docker-compose.yml", "compose.toml", "compose-init.sh"] {
        std::fs::copy(repo().join("deploy").join(f), deploy.join(f)).unwrap();
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_firedrill")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let init = run(Command::new("bash")
        .arg(deploy.join("compose-init.sh"))
        .env("PATH", &path));
    let said = format!("{}{}", stdout(&init), String::from_utf8_lossy(&init.stderr));
    let recipient = said
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap_or_else(|| panic!("compose-init.sh printed no recipient:\n{said}"))
        .trim()
        .to_string();
    let secrets = deploy.join("secrets");
    for f in ["api-token.txt", "age-identity.txt", "evidence-key.pem"] {
        assert!(secrets.join(f).is_file(), "compose-init.sh made no {f}");
    }
    std::fs::write(secrets.join("db-password.txt"), &pg.password).unwrap();
    run(Command::new("chown")
        .arg("10001")
        .arg(secrets.join("db-password.txt")));
    let token = std::fs::read_to_string(secrets.join("api-token.txt"))
        .unwrap()
        .trim()
        .to_string();

    // The source, on the Docker bridge's IPv4 gateway (the bridge may list an IPv6
    // subnet first, or none for a moment after Docker restarted).
    let gateway = {
        let mut found = None;
        for _ in 0..30 {
            let all = stdout(&run(Command::new("docker").args([
                "network",
                "inspect",
                "bridge",
                "-f",
                "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
            ])));
            found = all
                .split_whitespace()
                .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
                .map(str::to_string);
            if found.is_some() {
                break;
            }
            // The bridge's IPAM can list no gateway for a while after the engine
            // restarted (or a swarm was left); its interface still has the address.
            let ip = Command::new("ip")
                .args(["-4", "-o", "addr", "show", "docker0"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            found = ip
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
                .map(str::to_string);
            if found.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        found.expect("the Docker bridge network has no IPv4 gateway")
    };
    let port = relay(&gateway, pg.port).await;
    let drills = tmp.path().join("drills");
    std::fs::create_dir(&drills).unwrap();
    std::fs::write(
        drills.join("composed.toml"),
        format!(
            r#"[source]
type = "postgres"
host = "host.docker.internal"
port = {port}
database = "fd_compose"
user = "postgres"
password = {{ file = "/run/secrets/firedrill-db-password" }}

[storage]
type = "local"
path = "/var/lib/firedrill/store"

[encryption]
recipients = ["{recipient}"]
identity = {{ file = "/run/secrets/firedrill-age-identity" }}

[sandbox]
type = "docker"
memory = "512MiB"
"#
        ),
    )
    .unwrap();
    // A user's override, the one thing the shipped file cannot know: where the source is.
    std::fs::write(
        deploy.join("docker-compose.override.yml"),
        format!(
            "services:\n  firedrill:\n    extra_hosts:\n      - \"host.docker.internal:{gateway}\"\n"
        ),
    )
    .unwrap();

    let project = format!("fdcompose{}", std::process::id());
    let _down = Down(&deploy, project.clone(), &drills);
    run(compose(&deploy, &project, &drills).args([
        "-f",
        "docker-compose.override.yml",
        "up",
        "-d",
        "--no-build",
    ]));

    // Healthy: the healthcheck reached the daemon at the container's own address.
    let id = stdout(&run(compose(&deploy, &project, &drills).args([
        "ps",
        "-q",
        "firedrill",
    ])));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health = stdout(&run(Command::new("docker").args([
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            &id,
        ])));
        if health == "healthy" {
            break;
        }
        if Instant::now() > deadline {
            let logs = run(Command::new("docker").args(["logs", &id]));
            panic!(
                "the daemon is {health} after 2 minutes:\n{}{}",
                stdout(&logs),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("healthy after {:?}", t0.elapsed());

    // A drill through the published port.
    let http = reqwest::Client::new();
    let base = "http://127.0.0.1:9797";
    let resp = http
        .post(format!("{base}/api/v1/drills/composed/runs"))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let run_id = resp.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let run = loop {
        let r: serde_json::Value = http
            .get(format!("{base}/api/v1/runs/{run_id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["report"].is_object() {
            break r;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {r:#}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(run["status"], "passed", "{run:#}\n{}", run_logs(&id));
    eprintln!("compose drill passed after {:?}", t0.elapsed());
}

fn run_logs(id: &str) -> String {
    let out = Command::new("docker").args(["logs", id]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
