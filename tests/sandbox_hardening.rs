//! The sandbox as the engine builds it, inspected from outside (Docker) and probed from
//! inside: no network egress, not privileged, capabilities dropped, read-only root, resource
//! limits, no Docker socket. Real Docker and PostgreSQL (started by `tests/run`).

mod support;

use firedrill::{load_drill, run_drill, RunOptions, Silent, Verdict};
use support::*;

async fn inside(container: &str, script: &str) -> (i32, String) {
    let out = tokio::process::Command::new("docker")
        .args(["exec", container, "bash", "-c", script])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_no_network_no_privileges_and_a_read_only_root() {
    create_db("fd_hardening", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("hardening", "fd_hardening", "");
    let drill = load_drill(&path).unwrap();
    let r = run_drill(
        &drill,
        &RunOptions {
            keep: true,
            ..Default::default()
        },
        &Silent,
        &firedrill::Stop::new(),
    )
    .await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    let container = format!("firedrill-hardening-{}", r.run_id.to_ascii_lowercase());
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let info = docker
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap_or_else(|e| panic!("kept sandbox {container}: {e}"));
    let hc = info.host_config.clone().unwrap();
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert!(!hc
            .cap_add
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|c| c.contains("SYS_ADMIN") || c.contains("NET_")));
        assert!(hc
            .security_opt
            .clone()
            .unwrap_or_default()
            .contains(&"no-new-privileges".to_string()));
        assert!(
            hc.memory.unwrap_or(0) > 0
                && hc.nano_cpus.unwrap_or(0) > 0
                && hc.pids_limit.unwrap_or(0) > 0,
            "{hc:?}"
        );
        let mounts = info.mounts.clone().unwrap_or_default();
        assert!(
            !mounts
                .iter()
                .any(|m| m.source.as_deref().unwrap_or("").contains("docker.sock")),
            "{mounts:?}"
        );

        // From inside: only the loopback interface, no route, no way out.
        let (_, ifaces) = inside(&container, "ls /sys/class/net").await;
        assert_eq!(
            ifaces.split_whitespace().collect::<Vec<_>>(),
            ["lo"],
            "{ifaces}"
        );
        let (code, out) = inside(
            &container,
            "timeout 5 bash -c 'exec 3<>/dev/tcp/1.1.1.1/53' && echo CONNECTED",
        )
        .await;
        assert!(code != 0 && !out.contains("CONNECTED"), "{code} {out}");
        assert!(
            out.contains("unreachable") || out.contains("resolve"),
            "{out}"
        );
        let (code, out) = inside(&container, "timeout 5 getent hosts deb.debian.org").await;
        assert_ne!(code, 0, "DNS answered inside the sandbox: {out}");
        // The root file system is read-only; the socket is not there; not root-equivalent.
        let (code, out) = inside(&container, "touch /usr/local/bin/x").await;
        assert_ne!(code, 0);
        assert!(out.contains("Read-only file system"), "{out}");
        let (code, _) = inside(
            &container,
            "test -e /var/run/docker.sock || test -e /run/docker.sock",
        )
        .await;
        assert_ne!(code, 0, "a Docker socket inside the sandbox");
        let (_, caps) = inside(&container, "grep CapEff /proc/self/status").await;
        assert!(
            !caps.contains("0000003fffffffff") && !caps.contains("000001ffffffffff"),
            "{caps}"
        );
    }))
    .await;
    let sandbox = firedrill::sandbox::DockerBackend::connect(None).unwrap();
    firedrill::sandbox::SandboxBackend::destroy(&sandbox, &r.run_id)
        .await
        .unwrap();
    assert!(leftovers(&r.run_id).await.is_empty());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
