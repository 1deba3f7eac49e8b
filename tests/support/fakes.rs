//! In-memory fakes of the world a drill talks to, for the stage machine's failure table:
//! a canned source, an in-memory store and a scripted sandbox, handed to the real
//! [`Runner`](firedrill::Runner) and the real daemon through a [`Connector`]. Each drill
//! (by its name) gets a [`Script`]: which stage misbehaves, and how. Nothing here needs
//! Docker, a database or the network.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use firedrill::drill::Parts;
use firedrill::engine::postgres::{FINGERPRINT_SQL, OBJECTS_SQL};
use firedrill::engine::{DumpMeta, DumpSource, Engine, NoInspection, StartedDump};
use firedrill::fingerprint::{ChecksumPlan, Fingerprint, TableFingerprint};
use firedrill::sandbox::{
    ExecOutput, ExecStdin, Sandbox, SandboxBackend, SandboxRequest, SandboxState,
};
use firedrill::store::{ArtifactStore, ByteStream, StoreFault, Upload};
use firedrill::{Connector, Drill, Error, Result, Stage};
use futures::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// How a stage misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It fails on its own terms: the dump tool exits 1, pg_restore errors, the restored
    /// data does not match, the store is full, the image is missing, removal is refused.
    Fails,
    /// It never ends (the drill's timeout must end it).
    Hangs,
    /// Its infrastructure goes away once (a connection refused, Docker restarting), then
    /// works.
    FlakesOnce,
    /// Its infrastructure is gone for good.
    FlakesAlways,
    /// It takes half a second, then works (long enough to be cancelled meanwhile).
    Slow,
}

/// What one drill's world does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Script {
    pub stage: Option<Stage>,
    pub fault: Option<Fault>,
    /// The source trickles its dump out over a few seconds (so that a sibling's failure
    /// finds the dump still running).
    pub slow_dump: bool,
    /// The fingerprint read beside the dump fails (as a query in the dump's snapshot can).
    pub fingerprint_fails: bool,
}

impl Script {
    pub fn at(stage: Stage, fault: Fault) -> Self {
        Script {
            stage: Some(stage),
            fault: Some(fault),
            slow_dump: false,
            fingerprint_fails: false,
        }
    }

    pub fn with_failing_fingerprint(self) -> Self {
        Script {
            fingerprint_fails: true,
            ..self
        }
    }

    pub fn with_slow_dump(self) -> Self {
        Script {
            slow_dump: true,
            ..self
        }
    }
    fn fault(&self, stage: Stage) -> Option<Fault> {
        (self.stage == Some(stage)).then_some(self.fault).flatten()
    }
}

/// Tells a test that a drill entered a stage that hangs (so that it can cancel it there).
pub type Entered = tokio::sync::mpsc::UnboundedSender<(String, Stage)>;

/// The whole fake world: scripts by drill name, one store, one sandbox backend.
pub struct World {
    pub scripts: Mutex<HashMap<String, Script>>,
    pub store: Arc<MemoryStore>,
    pub sandboxes: Arc<ScriptedSandbox>,
    pub entered: Entered,
    /// How many times each drill's source was started.
    pub dumps: Mutex<HashMap<String, u32>>,
}

impl World {
    pub fn new(entered: Entered) -> Arc<World> {
        Arc::new(World {
            scripts: Mutex::new(HashMap::new()),
            store: Arc::new(MemoryStore::default()),
            sandboxes: Arc::new(ScriptedSandbox::new(entered.clone())),
            entered,
            dumps: Mutex::new(HashMap::new()),
        })
    }

    pub fn script(&self, drill: &str, s: Script) {
        self.scripts.lock().unwrap().insert(drill.to_string(), s);
        self.sandboxes
            .scripts
            .lock()
            .unwrap()
            .insert(drill.to_string(), s);
        self.store
            .scripts
            .lock()
            .unwrap()
            .insert(drill.to_string(), s);
        *self.store.entered.lock().unwrap() = Some(self.entered.clone());
    }
}

/// The connector handed to the runner and the daemon.
pub struct FakeConnector(pub Arc<World>);

impl Connector for FakeConnector {
    fn connect(&self, drill: &Drill) -> Result<Parts> {
        let w = &self.0;
        let script = w
            .scripts
            .lock()
            .unwrap()
            .get(&drill.name)
            .copied()
            .unwrap_or_default();
        let (identity, recipient) = firedrill::age_keys::generate_identity();
        // An encryption that cannot start: no recipient to encrypt to.
        let recipients = if script.fault(Stage::Encrypt) == Some(Fault::Fails) {
            Vec::new()
        } else {
            firedrill::age_keys::load_recipients(&[recipient], None)?
        };
        Ok(Parts {
            source: Box::new(CannedSource {
                drill: drill.name.clone(),
                script,
                starts: AtomicU32::new(0),
                world: w.clone(),
            }),
            store: w.store.clone(),
            sandbox: w.sandboxes.clone(),
            recipients,
            identity: firedrill::secret::Secret::new(identity),
            repo: None,
        })
    }

    fn store(&self, _: &Drill) -> Result<Arc<dyn ArtifactStore>> {
        Ok(self.0.store.clone())
    }

    fn sandboxes(&self) -> Result<Arc<dyn SandboxBackend>> {
        Ok(self.0.sandboxes.clone())
    }
}

/// The database every fake source holds and every healthy fake restore gives back.
pub fn shop_fingerprint() -> Fingerprint {
    let col = |n: &str, t: &str| (n.to_string(), t.to_string());
    Fingerprint {
        tables: vec![
            TableFingerprint::new(
                "public".into(),
                "customers".into(),
                50,
                vec![col("id", "integer"), col("name", "text")],
            ),
            TableFingerprint::new(
                "public".into(),
                "orders".into(),
                1000,
                vec![col("id", "bigint"), col("amount", "numeric(12,2)")],
            ),
        ],
        objects: BTreeMap::from([("views".to_string(), 1u64), ("indexes".to_string(), 3)]),
        ..Default::default()
    }
}

/// Plain bytes of the canned dump: enough to pass `min_dump_bytes`.
const DUMP_BYTES: usize = 256 << 10;

/// A source that "dumps" canned bytes with a known fingerprint.
pub struct CannedSource {
    drill: String,
    script: Script,
    starts: AtomicU32,
    world: Arc<World>,
}

/// A dump stream that trickles: the encryption waits on it (for the encrypt stage's
/// timeout), and it ends by itself a little later.
struct Trickle {
    left: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
        let n = buf.len().min(self.left).min(4096);
        buf[..n].fill(b'x');
        self.left -= n;
        Ok(n)
    }
}

#[async_trait]
impl DumpSource for CannedSource {
    async fn start(&self, _: &ChecksumPlan) -> Result<StartedDump> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        *self
            .world
            .dumps
            .lock()
            .unwrap()
            .entry(self.drill.clone())
            .or_default() += 1;
        let fault = self.script.fault(Stage::Dump);
        let lost = || {
            Error::infra("pg_dump lost its connection to the source (exit status: 1)")
                .with_hint("the source restarted, failed over or dropped the connection mid-dump")
        };
        let completion: futures::future::BoxFuture<'static, Result<()>> = match fault {
            Some(Fault::Fails) => async {
                Err(Error::backup("pg_dump failed (exit status: 1)")
                    .with_stderr(
                        "pg_dump: error: query failed: ERROR:  permission denied for table secrets",
                    )
                    .retryable(true))
            }
            .boxed(),
            Some(Fault::Hangs) => {
                let entered = self.world.entered.clone();
                let drill = self.drill.clone();
                async move {
                    let _ = entered.send((drill, Stage::Dump));
                    std::future::pending::<()>().await;
                    Ok(())
                }
                .boxed()
            }
            Some(Fault::FlakesOnce) if n == 1 => {
                let e = lost();
                async move { Err(e) }.boxed()
            }
            Some(Fault::FlakesAlways) => {
                let e = lost();
                async move { Err(e) }.boxed()
            }
            _ => async { Ok(()) }.boxed(),
        };
        let output: Box<dyn Read + Send> = if self.script.slow_dump {
            Box::new(Trickle { left: 40 * 4096 })
        } else {
            Box::new(std::io::Cursor::new(vec![b'x'; DUMP_BYTES]))
        };
        // An encryption stuck on its own work (not waiting for the dump or the upload):
        // the inspector it runs on every chunk takes seconds.
        let inspector: Box<dyn firedrill::engine::DumpInspector> =
            if self.script.fault(Stage::Encrypt) == Some(Fault::Hangs) {
                Box::new(SlowInspector {
                    entered: Some((self.world.entered.clone(), self.drill.clone())),
                })
            } else {
                Box::new(NoInspection)
            };
        Ok(StartedDump {
            meta: DumpMeta {
                engine: Engine::Postgres,
                server_version: "15.14".into(),
                server_major: "15".into(),
                databases: vec!["shop".into()],
                tool: "pg_dump".into(),
                tool_version: "15.14".into(),
                tool_place: None,
                format: "custom".into(),
                notes: Vec::new(),
            },
            // Read beside the dump, as PostgreSQL's is.
            fingerprint: Fingerprint::default(),
            beside: Some(if self.script.fingerprint_fails {
                async {
                    Err(Error::backup(
                        "the fingerprint's query failed: permission denied for table secrets",
                    ))
                }
                .boxed()
            } else {
                async {
                    Ok(firedrill::engine::Inspection {
                        fingerprint: Some(shop_fingerprint()),
                        notes: Vec::new(),
                    })
                }
                .boxed()
            }),
            output,
            completion,
            inspector,
        })
    }
}

/// Takes four seconds over the first chunk, on the encryption's thread.
struct SlowInspector {
    entered: Option<(Entered, String)>,
}

impl firedrill::engine::DumpInspector for SlowInspector {
    fn update(&mut self, _: &[u8]) {
        if let Some((tx, drill)) = self.entered.take() {
            let _ = tx.send((drill, Stage::Encrypt));
            std::thread::sleep(Duration::from_secs(4));
        }
    }
    fn finish(self: Box<Self>, _: &Fingerprint) -> Result<firedrill::engine::Inspection> {
        Ok(Default::default())
    }
}

/// An object store in memory. The upload of a scripted drill fails, hangs or flakes.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    scripts: Mutex<HashMap<String, Script>>,
    uploads: Mutex<HashMap<String, u32>>,
    entered: Mutex<Option<Entered>>,
}

impl MemoryStore {
    /// The drill a key belongs to (`<drill>/<run>/<file>`).
    fn script_of(&self, key: &str) -> Script {
        let drill = key.split('/').next().unwrap_or("");
        self.scripts
            .lock()
            .unwrap()
            .get(drill)
            .copied()
            .unwrap_or_default()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    fn missing(key: &str) -> Error {
        Error::backup(format!("read {key}: not found")).with_source(StoreFault::NotFound)
    }
}

#[async_trait]
impl ArtifactStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn put_stream(&self, key: &str, mut chunks: mpsc::Receiver<Upload>) -> Result<u64> {
        let drill = key.split('/').next().unwrap_or("").to_string();
        let n = {
            let mut u = self.uploads.lock().unwrap();
            let e = u.entry(drill.clone()).or_default();
            *e += 1;
            *e
        };
        match self.script_of(key).fault(Stage::Upload) {
            Some(Fault::Fails) => {
                return Err(Error::infra(format!("write {key}: the storage is full"))
                    .with_source(StoreFault::NoSpace)
                    .retryable(false));
            }
            Some(Fault::Hangs) => {
                if let Some(tx) = self.entered.lock().unwrap().as_ref() {
                    let _ = tx.send((drill.clone(), Stage::Upload));
                }
                std::future::pending::<()>().await;
            }
            Some(Fault::FlakesOnce) if n == 1 => {
                let _ = chunks.recv().await;
                return Err(Error::infra(format!(
                    "write {key}: 503 Service Unavailable"
                )));
            }
            Some(Fault::FlakesAlways) => {
                let _ = chunks.recv().await;
                return Err(Error::infra(format!(
                    "write {key}: 503 Service Unavailable"
                )));
            }
            _ => {}
        }
        let mut body = Vec::new();
        loop {
            match chunks.recv().await {
                Some(Upload::Chunk(b)) => body.extend_from_slice(&b),
                Some(Upload::Finish) => break,
                Some(Upload::Abort(e)) => return Err(e),
                None => return Err(Error::internal("the producer went away")),
            }
        }
        let n = body.len() as u64;
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_string(), Bytes::from(body));
        Ok(n)
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.objects.lock().unwrap().insert(key.to_string(), data);
        Ok(())
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let b = self.get(key).await?;
        Ok(Box::pin(futures::stream::iter([Ok(b)])))
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| Self::missing(key))
    }

    async fn size(&self, key: &str) -> Result<u64> {
        Ok(self.get(key).await?.len() as u64)
    }

    async fn modified(&self, _: &str) -> Result<Option<jiff::Timestamp>> {
        Ok(Some(jiff::Timestamp::now()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

/// A sandbox backend that answers the engine's commands as a healthy PostgreSQL 15
/// sandbox would, except where a drill's script says otherwise.
pub struct ScriptedSandbox {
    scripts: Mutex<HashMap<String, Script>>,
    /// Run id → drill, of sandboxes that exist now.
    live: Mutex<HashMap<String, String>>,
    /// How many times each (drill, stage) was attempted.
    attempts: Mutex<HashMap<(String, Stage), u32>>,
    /// Runs whose sandbox was destroyed at least once.
    destroyed: Mutex<HashSet<String>>,
    entered: Entered,
}

impl ScriptedSandbox {
    fn new(entered: Entered) -> Self {
        ScriptedSandbox {
            scripts: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
            destroyed: Mutex::new(HashSet::new()),
            entered,
        }
    }

    /// Sandboxes still up.
    pub fn live(&self) -> Vec<String> {
        self.live.lock().unwrap().keys().cloned().collect()
    }

    pub fn was_destroyed(&self, run: &str) -> bool {
        self.destroyed.lock().unwrap().contains(run)
    }

    fn drill_of_run(&self, run: &str) -> String {
        self.live
            .lock()
            .unwrap()
            .get(run)
            .cloned()
            .unwrap_or_else(|| run.split('@').next().unwrap_or("").to_string())
    }

    fn script(&self, drill: &str) -> Script {
        self.scripts
            .lock()
            .unwrap()
            .get(drill)
            .copied()
            .unwrap_or_default()
    }

    /// Counts an attempt of `stage` for `drill` and says how it should go.
    fn attempt(&self, drill: &str, stage: Stage) -> (Option<Fault>, u32) {
        let mut a = self.attempts.lock().unwrap();
        let n = a.entry((drill.to_string(), stage)).or_default();
        *n += 1;
        (self.script(drill).fault(stage), *n)
    }

    /// The fault's effect, for stages the infrastructure can lose.
    async fn misbehave(&self, drill: &str, stage: Stage) -> Option<Result<ExecOutput>> {
        match self.attempt(drill, stage) {
            (Some(Fault::Hangs), _) => {
                let _ = self.entered.send((drill.to_string(), stage));
                std::future::pending::<()>().await;
                None
            }
            (Some(Fault::FlakesOnce), 1) | (Some(Fault::FlakesAlways), _) => Some(Err(
                Error::infra("Docker answered 500: the engine is restarting"),
            )),
            _ => None,
        }
    }
}

fn out(code: i64, stdout: &str, stderr: &str) -> ExecOutput {
    ExecOutput {
        exit_code: code,
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
    }
}

/// What psql prints for FINGERPRINT_SQL and OBJECTS_SQL on a database holding `fp`.
fn fingerprint_json(fp: &Fingerprint) -> String {
    let rows: Vec<serde_json::Value> = fp
        .tables
        .iter()
        .map(|t| serde_json::json!([t.schema, t.name, t.rows, t.columns, 8192]))
        .collect();
    serde_json::Value::Array(rows).to_string()
}

#[async_trait]
impl SandboxBackend for ScriptedSandbox {
    fn describe(&self) -> String {
        "scripted sandbox".into()
    }

    async fn check_image(&self, image: &str, hint: &str) -> Result<String> {
        Ok(format!("sha256:{image}:{}", hint.len()))
    }

    async fn provision(&self, req: &SandboxRequest) -> Result<Sandbox> {
        match self.attempt(&req.drill, Stage::Provision) {
            (Some(Fault::Fails), _) => {
                return Err(
                    Error::infra(format!("sandbox image {} is not present", req.image))
                        .with_hint("build it offline with containers/build-offline.sh")
                        .retryable(false),
                )
            }
            (Some(Fault::Hangs), _) => {
                let _ = self.entered.send((req.drill.clone(), Stage::Provision));
                std::future::pending::<()>().await;
            }
            (Some(Fault::FlakesOnce), 1) | (Some(Fault::FlakesAlways), _) => {
                return Err(Error::infra(
                    "Docker answered 500: the engine is restarting",
                ))
            }
            _ => {}
        }
        self.live
            .lock()
            .unwrap()
            .insert(req.run_id.clone(), req.drill.clone());
        Ok(Sandbox {
            run_id: req.run_id.clone(),
            name: format!("fd-{}", req.run_id),
            image_id: "sha256:fake".into(),
        })
    }

    async fn exec(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        stdin: Option<ExecStdin>,
    ) -> Result<ExecOutput> {
        let drill = self.drill_of_run(&sandbox.run_id);
        let arg = |i: usize| cmd.get(i).map(String::as_str).unwrap_or("");
        if !self.live.lock().unwrap().contains_key(&sandbox.run_id) {
            return Err(Error::infra(format!(
                "Docker answered 404: No such container {}",
                sandbox.name
            )));
        }
        // What the command is, from its shape.
        if arg(0) == "firedrill-sandbox" && arg(1) == "ready" {
            return Ok(out(0, "", ""));
        }
        if arg(0) == "firedrill-sandbox" && arg(1) == "version" {
            return Ok(out(0, "15\n", ""));
        }
        if arg(3) == "firedrill-stage" {
            if let Some(r) = self.misbehave(&drill, Stage::Restore).await {
                return r;
            }
            let mut input = stdin.expect("the artifact on stdin");
            let mut buf = Vec::new();
            input
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Error::infra(format!("staging: {e}")))?;
            return Ok(out(0, &format!("{}\n", buf.len()), ""));
        }
        if arg(3) == "firedrill-restore" {
            if self.script(&drill).fault(Stage::Restore) == Some(Fault::Fails) {
                return Ok(out(
                    1,
                    "",
                    "pg_restore: error: could not execute query: ERROR:  relation \"orders\" does not exist",
                ));
            }
            return Ok(out(0, "", ""));
        }
        if arg(0) == "psql" {
            let sql = cmd
                .iter()
                .find(|a| a.contains("SELECT"))
                .cloned()
                .unwrap_or_default();
            if sql == FINGERPRINT_SQL {
                if let Some(r) = self.misbehave(&drill, Stage::Verify).await {
                    return r;
                }
                let mut fp = shop_fingerprint();
                if self.script(&drill).fault(Stage::Verify) == Some(Fault::Fails) {
                    // The restore lost rows of a table.
                    fp.tables[1].rows = 990;
                }
                return Ok(out(0, &fingerprint_json(&fp), ""));
            }
            if sql == OBJECTS_SQL {
                let objects = serde_json::to_string(&shop_fingerprint().objects).unwrap();
                return Ok(out(0, &objects, ""));
            }
            if sql == firedrill::engine::pg_holdings::HOLDINGS_SQL {
                // What the shop holds besides its tables: nothing the source compared.
                return Ok(out(
                    0,
                    r#"{"sequences": [], "matviews": {}, "large_objects": 0, "definitions": {}}"#,
                    "",
                ));
            }
            return Ok(out(0, "[]", ""));
        }
        // The identity handed over, then taken away.
        if let Some(mut input) = stdin {
            let mut sink = Vec::new();
            let _ = input.read_to_end(&mut sink).await;
        }
        Ok(out(0, "", ""))
    }

    async fn state(&self, sandbox: &Sandbox) -> Result<SandboxState> {
        Ok(SandboxState {
            running: self.live.lock().unwrap().contains_key(&sandbox.run_id),
            ..Default::default()
        })
    }

    async fn destroy(&self, run_id: &str) -> Result<()> {
        let drill = self.drill_of_run(run_id);
        // A drill scripted to misbehave at teardown has no earlier removal (no retry).
        if self.script(&drill).stage == Some(Stage::Teardown) {
            match self.attempt(&drill, Stage::Teardown) {
                (Some(Fault::Fails), _) => {
                    return Err(
                        Error::infra("Docker answered 409: removal refused").retryable(false)
                    )
                }
                (Some(Fault::Hangs), _) => {
                    let _ = self.entered.send((drill.clone(), Stage::Teardown));
                    std::future::pending::<()>().await;
                }
                (Some(Fault::FlakesOnce), 1) | (Some(Fault::FlakesAlways), _) => {
                    return Err(Error::infra(
                        "Docker answered 500: the engine is restarting",
                    ))
                }
                (Some(Fault::Slow), _) => {
                    let _ = self.entered.send((drill.clone(), Stage::Teardown));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => {}
            }
        }
        self.live.lock().unwrap().remove(run_id);
        self.destroyed.lock().unwrap().insert(run_id.to_string());
        Ok(())
    }

    async fn reap(&self, _: jiff::Timestamp, _: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}
