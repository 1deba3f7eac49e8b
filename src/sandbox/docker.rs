//! [`SandboxBackend`] on a Docker Engine, through its API (bollard).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, Mount, MountType, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, InspectContainerOptions, ListContainersOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StartContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::error::{Error, Result};

/// Most a command may print on stdout before we refuse it (fingerprints of huge schemas
/// fit easily).
const MAX_STDOUT: usize = 64 << 20;
/// How much of stderr to keep (the end).
const STDERR_TAIL: usize = 64 << 10;

pub struct DockerBackend {
    docker: Docker,
    endpoint: String,
}

/// Per run, held while its sandbox is being created. A create request already sent
/// completes in Docker even when the run is cancelled meanwhile (SIGTERM mid-provision), so
/// creation runs to its end in a task of its own, and removal waits for it: otherwise the
/// removal could list nothing yet and the container appear just after.
fn creation_lock(run_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    static CREATING: std::sync::LazyLock<
        std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut m = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    m.retain(|_, l| Arc::strong_count(l) > 1);
    m.entry(run_id.to_string()).or_default().clone()
}

/// Creates container `name` from `body`; `what` names the step in an error.
async fn create_named(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    what: &str,
) -> Result<()> {
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map(drop)
        .map_err(|e| docker_err(what, e))
}

fn docker_err(what: &str, e: DockerError) -> Error {
    match &e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let err = Error::infra(format!("{what}: Docker answered {status_code}: {message}"));
            if *status_code >= 500 {
                err.retryable(true)
            } else {
                err.retryable(false)
            }
        }
        _ => {
            let mut err = Error::infra(format!("{what}: cannot reach Docker: {e}"))
                .with_source(e)
                .with_hint("start the Docker daemon (dockerd), or point DOCKER_HOST / sandbox.docker_host at it")
                .retryable(true);
            // The client's words are "client error (Connect)"; the OS's reason (refused, no
            // socket, permission denied) is in the cause chain.
            if let Some((kind, why)) = err
                .find::<std::io::Error>()
                .map(|io| (io.kind(), io.to_string()))
            {
                err.message = format!("{what}: cannot reach Docker: {why}");
                if kind == std::io::ErrorKind::PermissionDenied {
                    err.hint = Some("this user may not use the Docker socket: run as root, or add the user to the docker group".into());
                }
            }
            err
        }
    }
}

fn not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerBackend {
    /// Prepares a client for `host` (`unix:///…`, `tcp://…`, `http://…`) or, when `None`,
    /// DOCKER_HOST or the local socket. Nothing is contacted yet.
    pub fn connect(host: Option<&str>) -> Result<Self> {
        let (docker, endpoint) = match host {
            None => (
                Docker::connect_with_local_defaults(),
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            ),
            Some(h) if h.starts_with("unix://") => (
                Docker::connect_with_unix(h, 120, bollard::API_DEFAULT_VERSION),
                h.to_string(),
            ),
            Some(h) => (
                Docker::connect_with_http(h, 120, bollard::API_DEFAULT_VERSION),
                h.to_string(),
            ),
        };
        let docker = docker.map_err(|e| {
            Error::config(format!(
                "cannot use Docker endpoint {}: {e}",
                host.unwrap_or("(default)")
            ))
            .with_hint(
                "write sandbox.docker_host as unix:///var/run/docker.sock or tcp://host:2375",
            )
        })?;
        Ok(DockerBackend { docker, endpoint })
    }

    /// Talks the engine's API version, so that newer calls are not refused by older
    /// engines.
    async fn client(&self) -> Result<Docker> {
        self.docker
            .clone()
            .negotiate_version()
            .await
            .map_err(|e| docker_err(&format!("Docker at {}", self.endpoint), e))
    }

    /// Removes the containers and volumes labelled with `run_id`; returns what it removed
    /// (`container NAME`, `volume NAME`).
    async fn remove_run(&self, docker: &Docker, run_id: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("label".into(), vec![format!("{LABEL_RUN}={run_id}")])]);
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|e| docker_err("list sandbox containers", e))?;
        for c in containers {
            let Some(id) = c.id else { continue };
            let name = c
                .names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
                .unwrap_or_else(|| id.clone());
            match docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
            {
                Ok(()) => removed.push(format!("container {name}")),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(docker_err(&format!("remove container {id}"), e)),
            }
        }
        let volumes = docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| docker_err("list sandbox volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            match docker
                .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => removed.push(format!("volume {}", v.name)),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(docker_err(&format!("remove volume {}", v.name), e)),
            }
        }
        Ok(removed)
    }

    /// Removes the sandbox of one run, kept (`run --keep`) or not: its container and its
    /// volumes (`firedrill reap --run`). Returns what was removed, empty when the run had
    /// no sandbox left.
    pub async fn reap_run(&self, run_id: &str) -> Result<Vec<String>> {
        let docker = self.client().await?;
        self.remove_run(&docker, run_id).await
    }
}

impl DockerBackend {
    /// How many processes the kernel killed in the sandbox for its memory limit, from the
    /// sandbox's own cgroup (v2 `memory.events`, v1 `memory.oom_control`); 0 when unknown.
    /// OOM kills in the sandbox's cgroup; `None` when the probe could not run in it (the
    /// sandbox is going away).
    async fn oom_kills(&self, sandbox: &Sandbox) -> Option<u64> {
        let cmd = [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; true",
        ]
        .map(String::from);
        match self.exec_with(sandbox, &cmd, None, None).await {
            Ok(out) if out.exit_code == 0 => Some(
                out.stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .max()
                    .unwrap_or(0),
            ),
            _ => None,
        }
    }

    /// Runs `cmd`; stdout goes to `sink` when given, else into the output (bounded).
    async fn exec_with(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        stdin: Option<ExecStdin>,
        mut sink: Option<&mut dyn OutputSink>,
    ) -> Result<ExecOutput> {
        let docker = self.client().await?;
        let what = cmd.first().map(String::as_str).unwrap_or("command");
        let t0 = std::time::Instant::now();
        let exec = docker
            .create_exec(
                &sandbox.name,
                ExecConfig {
                    attach_stdin: Some(stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_err(&format!("exec {what} in {}", sandbox.name), e))?
            .id;
        let started = docker
            .start_exec(
                &exec,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(1 << 20),
                }),
            )
            .await
            .map_err(|e| docker_err(&format!("start {what} in {}", sandbox.name), e))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(Error::internal("exec started detached"));
        };
        let feeder = async move {
            if let Some(mut src) = stdin {
                // The command may exit before reading everything (that is its business:
                // its exit code says what happened), so a broken pipe is not an error here.
                let copied = tokio::io::copy(&mut src, &mut input).await;
                let _ = input.shutdown().await;
                copied.map(|_| ())
            } else {
                Ok(())
            }
        };
        let reader = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        if let Some(sink) = sink.as_mut() {
                            sink.take(&message);
                            continue;
                        }
                        if stdout.len() + message.len() > MAX_STDOUT {
                            return Err(Error::internal(format!(
                                "{what} printed more than {MAX_STDOUT} bytes"
                            )));
                        }
                        stdout.extend_from_slice(&message);
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.extend_from_slice(&message);
                        if stderr.len() > 2 * STDERR_TAIL {
                            stderr.drain(..stderr.len() - STDERR_TAIL);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Err(docker_err(&format!("output of {what}"), e)),
                }
            }
            Ok((stdout, stderr))
        };
        let (fed, read) = tokio::join!(feeder, reader);
        let (stdout, mut stderr) = read?;
        if stderr.len() > STDERR_TAIL {
            stderr.drain(..stderr.len() - STDERR_TAIL);
        }
        let inspect = docker
            .inspect_exec(&exec)
            .await
            .map_err(|e| docker_err(&format!("inspect {what}"), e))?;
        let exit_code = inspect.exit_code.unwrap_or(-1);
        if let Err(e) = fed {
            if exit_code == 0 {
                return Err(Error::infra(format!(
                    "feeding {what} in {}: {e}",
                    sandbox.name
                )));
            }
        }
        // Where a stage's time went, exec by exec (RUST_LOG=firedrill=debug): a script
        // run as `bash -c SCRIPT NAME` by its name.
        let label = match cmd {
            [sh, c, _, name, ..] if c == "-c" && (sh == "bash" || sh == "sh") => name.as_str(),
            _ => what,
        };
        tracing::debug!(
            sandbox = %sandbox.name,
            command = label,
            exit_code,
            ms = t0.elapsed().as_millis() as u64,
            "exec"
        );
        Ok(ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

#[async_trait]
impl SandboxBackend for DockerBackend {
    fn describe(&self) -> String {
        format!("Docker at {}", self.endpoint)
    }

    async fn check_image(&self, image: &str, build_hint: &str) -> Result<String> {
        let docker = self.client().await?;
        match docker.inspect_image(image).await {
            Ok(i) => Ok(i.id.unwrap_or_default()),
            Err(e) if not_found(&e) => Err(Error::infra(format!(
                "sandbox image {image} is not present on {}",
                self.describe()
            ))
            .with_hint(build_hint.to_string())
            .retryable(false)),
            Err(e) => Err(docker_err(&format!("inspect image {image}"), e)),
        }
    }

    async fn provision(&self, req: &SandboxRequest) -> Result<Sandbox> {
        // A fresh sandbox every time: whatever an earlier attempt of this run left (a
        // container holding the name, a half-restored data volume that `create_volume`
        // would hand back as is) goes first.
        self.destroy(&req.run_id).await?;
        let docker = self.client().await?;
        let image_id = match docker.inspect_image(&req.image).await {
            Ok(i) => i.id.unwrap_or_default(),
            Err(e) => return Err(docker_err(&format!("inspect image {}", req.image), e)),
        };
        let labels: HashMap<String, String> = req.labels().into_iter().collect();
        let name = format!(
            "firedrill-{}-{}",
            req.drill,
            req.run_id.to_ascii_lowercase()
        );
        let guard = creation_lock(&req.run_id).lock_owned().await;
        let owned = req.clone();
        let task_name = name.clone();
        let docker = docker.clone();
        let create = async move {
            let _creating = guard;
            let name = task_name;
            let req = &owned;
            let mut mounts = Vec::new();
            for (suffix, target) in [("data", DATA_DIR), ("staging", STAGING_DIR)] {
                let vol = docker
                    .create_volume(VolumeCreateRequest {
                        name: Some(format!("{name}-{suffix}")),
                        labels: Some(labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| docker_err("create sandbox volume", e))?;
                mounts.push(Mount {
                    target: Some(target.into()),
                    source: Some(vol.name),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(false),
                    ..Default::default()
                });
            }
            if let Some(repo) = &req.repository {
                // Read-only: the sandbox restores from the repository and cannot change it.
                mounts.push(Mount {
                    target: Some(super::REPO_MOUNT.into()),
                    source: Some(repo.display().to_string()),
                    typ: Some(MountType::BIND),
                    read_only: Some(true),
                    ..Default::default()
                });
            }
            let memory = i64::try_from(req.memory_bytes).unwrap_or(i64::MAX);
            let host_config = HostConfig {
                // No network at all: the restore cannot reach anything, and nothing reaches it.
                network_mode: Some("none".into()),
                memory: Some(memory),
                memory_swap: Some(memory),
                nano_cpus: Some((req.cpus * 1e9) as i64),
                pids_limit: Some(2048),
                shm_size: Some(256 << 20),
                mounts: Some(mounts),
                tmpfs: Some(HashMap::from([
                    // The identity lives here: memory only, gone with the container.
                    (
                        "/run/firedrill".to_string(),
                        "mode=0700,size=16m".to_string(),
                    ),
                    (
                        "/run/postgresql".to_string(),
                        "mode=0775,size=16m".to_string(),
                    ),
                    ("/run/mysqld".to_string(), "mode=0777,size=16m".to_string()),
                    ("/tmp".to_string(), "mode=1777,size=256m".to_string()),
                ])),
                // Nothing in the image can be changed: the server writes only to its volumes
                // and the tmpfs mounts above.
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: Some(
                    [
                        "CHOWN",
                        "DAC_OVERRIDE",
                        "FOWNER",
                        "SETUID",
                        "SETGID",
                        "KILL",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                ),
                security_opt: Some(vec!["no-new-privileges".into()]),
                privileged: Some(false),
                init: Some(false),
                ..Default::default()
            };
            let body = ContainerCreateBody {
                image: Some(req.image.clone()),
                cmd: Some(req.command.clone()),
                labels: Some(labels),
                env: Some(vec![format!("FIREDRILL_DATA={DATA_DIR}")]),
                // network_mode none already cuts every route; NetworkDisabled would also
                // leave the container without a hostname, which breaks database installers.
                hostname: Some("sandbox".into()),
                host_config: Some(host_config),
                ..Default::default()
            };
            create_named(&docker, &name, body, "create sandbox container").await?;
            docker
                .start_container(&name, None::<StartContainerOptions>)
                .await
                .map_err(|e| docker_err("start sandbox container", e))?;
            Ok::<(), Error>(())
        };
        tokio::spawn(create)
            .await
            .map_err(|e| Error::internal(format!("creating the sandbox: {e}")))??;
        Ok(Sandbox {
            run_id: req.run_id.clone(),
            name,
            image_id,
        })
    }

    async fn exec(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        stdin: Option<ExecStdin>,
    ) -> Result<ExecOutput> {
        self.exec_with(sandbox, cmd, stdin, None).await
    }

    async fn exec_stdout_to(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        sink: &mut dyn OutputSink,
    ) -> Result<ExecOutput> {
        self.exec_with(sandbox, cmd, None, Some(sink)).await
    }

    async fn ping(&self) -> Result<String> {
        let docker = self.client().await?;
        let v = docker
            .version()
            .await
            .map_err(|e| docker_err(&format!("Docker at {}", self.endpoint), e))?;
        Ok(format!(
            "Docker {} at {}",
            v.version.unwrap_or_default(),
            self.endpoint
        ))
    }

    async fn state(&self, sandbox: &Sandbox) -> Result<SandboxState> {
        let docker = self.client().await?;
        let inspect = || async {
            docker
                .inspect_container(&sandbox.name, None::<InspectContainerOptions>)
                .await
                .map(|i| i.state.unwrap_or_default())
                .map_err(|e| docker_err(&format!("inspect {}", sandbox.name), e))
        };
        let mut st = inspect().await?;
        let mut running = st.running.unwrap_or(false);
        // Asked right after a command of the sandbox died, Docker may still say running
        // while the container is being killed (`docker kill`, the daemon restarting): the
        // probe below cannot run in it then. Ask again for a little while, so that the
        // sandbox's death is seen as what failed the command.
        let mut oom_kills = None;
        if running {
            oom_kills = self.oom_kills(sandbox).await;
            let mut asked = 0;
            while oom_kills.is_none() && running && asked < 10 {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                st = inspect().await?;
                running = st.running.unwrap_or(false);
                if running {
                    oom_kills = self.oom_kills(sandbox).await;
                }
                asked += 1;
            }
        }
        let mut log_tail = String::new();
        if !running {
            let mut logs = docker.logs(
                &sandbox.name,
                Some(LogsOptions {
                    stdout: true,
                    stderr: true,
                    tail: "30".into(),
                    ..Default::default()
                }),
            );
            while let Some(Ok(l)) = logs.next().await {
                log_tail.push_str(&l.to_string());
            }
        }
        // Docker reports OOMKilled only when the container's main process dies of it; a
        // restore tool or a database backend killed by the limit leaves the server up.
        let oom_killed = st.oom_killed.unwrap_or(false) || (running && oom_kills.unwrap_or(0) > 0);
        Ok(SandboxState {
            running,
            oom_killed,
            exit_code: st.exit_code,
            log_tail,
        })
    }

    async fn destroy(&self, run_id: &str) -> Result<()> {
        let _created = creation_lock(run_id).lock_owned().await;
        let docker = self.client().await?;
        self.remove_run(&docker, run_id).await.map(drop)
    }

    async fn run_tool(&self, req: &ToolRequest) -> Result<ToolProcess> {
        let docker = self.client().await?;
        let tool = req.argv.first().cloned().unwrap_or_default();
        let id = format!("dump-{:016x}", rand::random::<u64>());
        let name = format!("firedrill-{}-{id}", req.drill);
        let labels: HashMap<String, String> = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_RUN.to_string(), id.clone()),
            (LABEL_DRILL.to_string(), req.drill.clone()),
            (
                LABEL_EXPIRES.to_string(),
                req.expires_at.as_second().to_string(),
            ),
        ]);
        let mut input = Vec::new();
        let script = match &req.secret_env {
            Some((var, secret)) => {
                if secret.expose().contains('\n') {
                    return Err(
                        Error::config(format!("the secret for {var} holds a line break"))
                            .with_hint("a password is one line"),
                    );
                }
                input.extend_from_slice(secret.expose().as_bytes());
                input.push(b'\n');
                format!("IFS= read -r v; {var}=\"$v\"; export {var}; unset v; exec \"$@\"")
            }
            None => "exec \"$@\"".to_string(),
        };
        input.extend_from_slice(&req.stdin);
        let mounts = req
            .files
            .iter()
            .map(|f| Mount {
                target: Some(f.display().to_string()),
                source: Some(f.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            })
            .collect();
        let host_config = HostConfig {
            // The source is reached as this host reaches it.
            network_mode: Some("host".into()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            pids_limit: Some(256),
            mounts: Some(mounts),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "mode=1777,size=64m".to_string(),
            )])),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(req.image.clone()),
            entrypoint: Some(vec!["sh".into(), "-c".into(), script, "sh".into()]),
            cmd: Some(req.argv.clone()),
            env: Some(
                req.env
                    .iter()
                    .cloned()
                    .chain(["HOME=/tmp".to_string()])
                    .collect(),
            ),
            // As firedrill's own user: the tool reads the TLS files mounted in as
            // firedrill may (a key of mode 0600 included), and nothing more.
            user: Some(format!(
                "{}:{}",
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw()
            )),
            labels: Some(labels),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        };
        create_named(
            &docker,
            &name,
            body,
            &format!("create the {tool} container"),
        )
        .await?;
        let remove = |docker: Docker, name: String| async move {
            let _ = docker
                .remove_container(
                    &name,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
        };
        let attached = docker
            .attach_container(
                &name,
                Some(AttachContainerOptions {
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    stream: true,
                    ..Default::default()
                }),
            )
            .await;
        let attached = match attached {
            Ok(a) => a,
            Err(e) => {
                remove(docker.clone(), name.clone()).await;
                return Err(docker_err(&format!("attach to the {tool} container"), e));
            }
        };
        if let Err(e) = docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
        {
            remove(docker.clone(), name.clone()).await;
            return Err(docker_err(&format!("start the {tool} container"), e));
        }
        let bollard::container::AttachContainerResults {
            mut output,
            input: mut stdin,
        } = attached;
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let task_name = name.clone();
        tokio::spawn(async move {
            let name = task_name;
            // The tool may exit before reading all of it: its exit code says why.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
            drop(input);
            let mut stderr = Vec::new();
            let mut abandoned = false;
            loop {
                let item = tokio::select! {
                    item = output.next() => item,
                    _ = tx.closed() => { abandoned = true; break; }
                };
                match item {
                    None => break,
                    Some(Ok(bollard::container::LogOutput::StdOut { message })) => {
                        if tx.send(message).await.is_err() {
                            abandoned = true;
                            break;
                        }
                    }
                    Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
                        stderr.extend_from_slice(&message);
                        if stderr.len() > 2 * STDERR_TAIL {
                            stderr.drain(..stderr.len() - STDERR_TAIL);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        remove(docker.clone(), name.clone()).await;
                        let _ = done_tx.send(Err(docker_err(&format!("output of {tool}"), e)));
                        return;
                    }
                }
            }
            drop(tx);
            if abandoned {
                // Nobody reads the dump any more (the run was stopped): stop the tool.
                remove(docker.clone(), name.clone()).await;
                let _ = done_tx.send(Err(Error::infra(format!("{tool} was stopped"))));
                return;
            }
            let code = match docker
                .wait_container(
                    &name,
                    None::<bollard::query_parameters::WaitContainerOptions>,
                )
                .next()
                .await
            {
                Some(Ok(r)) => Ok(r.status_code),
                Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(docker_err(&format!("wait for {tool}"), e)),
                None => Err(Error::infra(format!("{tool}'s container vanished"))),
            };
            remove(docker.clone(), name.clone()).await;
            if stderr.len() > STDERR_TAIL {
                stderr.drain(..stderr.len() - STDERR_TAIL);
            }
            let _ = done_tx.send(code.map(|c| (c, String::from_utf8_lossy(&stderr).into_owned())));
        });
        Ok(ToolProcess {
            stdout: rx,
            exit: done_rx,
            name,
        })
    }

    async fn reap(&self, now: jiff::Timestamp, all: bool) -> Result<Vec<String>> {
        let docker = self.client().await?;
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("label".into(), vec![format!("{LABEL_MANAGED}=true")])]);
        let mut runs: Vec<(String, HashMap<String, String>)> = Vec::new();
        for c in docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|e| docker_err("list sandbox containers", e))?
        {
            let labels = c.labels.unwrap_or_default();
            if let Some(run) = labels.get(LABEL_RUN) {
                runs.push((run.clone(), labels));
            }
        }
        for v in docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| docker_err("list sandbox volumes", e))?
            .volumes
            .unwrap_or_default()
        {
            if let Some(run) = v.labels.get(LABEL_RUN) {
                runs.push((run.clone(), v.labels.clone()));
            }
        }
        let mut removed = Vec::new();
        for (run, labels) in runs {
            if removed.contains(&run) {
                continue;
            }
            let kept = labels.get(LABEL_KEEP).is_some_and(|v| v == "true");
            let expired = labels
                .get(LABEL_EXPIRES)
                .and_then(|v| v.parse::<i64>().ok())
                .is_none_or(|t| t <= now.as_second());
            if !kept && (all || expired) {
                self.remove_run(&docker, &run).await?;
                removed.push(run);
            }
        }
        Ok(removed)
    }
}
