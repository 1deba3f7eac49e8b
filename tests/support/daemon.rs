//! The daemon binary as the tests run it: its config says `listen = "127.0.0.1:0"` and the
//! daemon binds a free port itself and prints which (no `free_port()` race between two
//! tests); a webhook receiver on a port bound up front, for its pages.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `firedrill daemon`.
pub struct DaemonProc {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
    /// Everything it wrote on stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl DaemonProc {
    /// Starts `firedrill --config CONFIG daemon` with `env`, and waits until it says where
    /// its API listens. Its stderr goes on to the test's.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> DaemonProc {
        Self::start_with_args(config, &[], env)
    }

    /// The same with more arguments after `daemon` (e.g. `--insecure-no-auth`).
    pub fn start_with_args(config: &Path, args: &[&str], env: &[(&str, &str)]) -> DaemonProc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        cmd.arg("--config").arg(config).arg("daemon").args(args);
        Self::spawn(cmd, env)
    }

    /// The same, under a file descriptor limit of `nofile` (`ulimit -n`).
    pub fn start_with_fd_limit(config: &Path, env: &[(&str, &str)], nofile: u32) -> DaemonProc {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                r#"ulimit -n {nofile} && exec "$0" --config "$1" daemon"#
            ))
            .arg(env!("CARGO_BIN_EXE_firedrill"))
            .arg(config);
        Self::spawn(cmd, env)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)]) -> DaemonProc {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log: Arc<Mutex<String>> = Arc::default();
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let captured = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                if let Ok(mut l) = captured.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if !sent {
                    if let Some(at) = line.split("API on ").nth(1) {
                        let _ = tx.send(at.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let t = Instant::now();
        let base = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(b) => break b,
                Err(_) if t.elapsed() > Duration::from_secs(60) => {
                    let _ = child.kill();
                    panic!("the daemon did not say where it listens within 60s");
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("the daemon exited before it listened: {status}");
                    }
                }
            }
        };
        DaemonProc { child, base, log }
    }

    /// Sends SIGTERM and waits for the exit code (none if it had to be killed).
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        self.signal("TERM");
        self.wait(limit)
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for DaemonProc {
    /// SIGTERM first, so that a test ending while a drill runs leaves no sandbox behind
    /// (the daemon tears it down); killed if it is not gone in 30 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None))
            && self.terminate(Duration::from_secs(30)).is_none()
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Pages a webhook receiver got, as JSON.
pub type Received = Arc<Mutex<Vec<serde_json::Value>>>;

/// A port taken now for a webhook receiver that starts later (a channel that is down
/// first, then up): bound, not listening, so that until then connections are refused,
/// and no other test can take the port meanwhile.
pub fn reserve_port() -> tokio::net::TcpSocket {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    s
}

/// A webhook receiver serving `/hook` on `socket` (now listening), keeping every body.
pub async fn receiver_on(socket: tokio::net::TcpSocket) -> (String, Received) {
    let addr: SocketAddr = socket.local_addr().unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or_default());
                (axum::http::StatusCode::ACCEPTED, "ok")
            }
        }),
    );
    let l = socket.listen(64).unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// A webhook receiver on a port of its own, up now.
pub async fn receiver() -> (String, Received) {
    receiver_on(reserve_port()).await
}
