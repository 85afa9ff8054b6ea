//! `shipper-emulator`: an Alibaba Cloud SLS (LogHub) look-alike that the unmodified official
//! SDKs cannot tell from the real service, for tests, demos and benchmarks
//! (docs/sls-protocol.md §13; acceptance items in §13.5). It serves projects, logstores and
//! shards, PutLogs/GetCursor/PullLogs (lz4, cursors, SPL subset), and consumer groups with
//! server-side assignment and checkpoints. It reuses `shipper-sls`'s `proto`, `codec`,
//! `cursor` and `sign`, so the client and the server share one implementation of the wire
//! format.
//!
//! Two ways to run it:
//! - [`run`] (mini-redis style): serve a bound listener until a shutdown future resolves;
//!   what `shipper emulator` uses;
//! - [`Emulator::start`]: in-process on `127.0.0.1:0`, returning an [`EmulatorHandle`] with
//!   the address, test helpers and a fast [`EmulatorHandle::preload`] for benchmarks.
//!
//! Layout:
//! - [`config`]: [`EmulatorConfig`], `PROJECT/LOGSTORE:SHARDS` specs, defaults;
//! - [`error`]: [`ApiError`] (SLS-shaped answers) and [`EmulatorError`];
//! - `server`: accept loop, responses, shutdown, the `--generate` task;
//! - `request`: request parsing (absolute-form targets, Host → project, query decoding);
//! - `auth`: v1 and v4 signature verification, tokens, the request time;
//! - [`sts`]: temporary credentials and the STS / metadata / credentials-URI endpoints;
//! - `routes/`: one file per API family;
//! - `store`: projects → logstores → shards of encoded LogGroups; cursors;
//! - `groups`: consumer-group assignment and checkpoints;
//! - `pull`: the PullLogs body builder (concatenation + lz4) and the reply cache;
//! - [`spl`]: the SPL subset of PullLogs `query`;
//! - `persist`: `--data-dir` files;
//! - [`generate`]: deterministic sample logs (audit JSON, nginx);
//! - [`faults`]: fault injection for tests ([`EmulatorHandle::faults`]).
#![deny(missing_docs)]

mod auth;
pub mod config;
pub mod error;
pub mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
mod groups;
mod persist;
mod pull;
pub mod quota;
mod request;
mod routes;
mod server;
pub mod spl;
mod store;
pub mod sts;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use shipper_sls::proto::LogGroupView;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{EmulatorConfig, GenerateConfig, LogstoreSpec};
pub use error::{ApiError, EmulatorError};
pub use faults::{Api, Fault, FaultRule, Faults, Injected};
pub use generate::{Generator, SampleKind};
pub use quota::ReadQuota;
pub use sts::{IssuedCredentials, StsConfig, StsStats};

use server::State;
use store::{Logstore, now_secs};

/// Serves SLS on `listener` until `shutdown` resolves, then stops accepting, lets open
/// requests finish (up to 5 s) and returns.
pub async fn run(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EmulatorError> {
    let state = State::build(&config)?;
    server::serve(listener, state, config.generate, shutdown).await
}

/// Starts emulators in-process.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts on `127.0.0.1:0` (any free port) in the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr` in the current tokio runtime.
    pub async fn start_on(
        addr: SocketAddr,
        config: EmulatorConfig,
    ) -> Result<EmulatorHandle, EmulatorError> {
        let state = State::build(&config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(
            listener,
            state.clone(),
            config.generate,
            async move {
                // Either an explicit shutdown or the handle being dropped.
                let _ = rx.await;
            },
        ));
        Ok(EmulatorHandle {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A running in-process emulator. Dropping it stops the server (without waiting);
/// [`EmulatorHandle::shutdown`] stops it and waits.
pub struct EmulatorHandle {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), EmulatorError>>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What one shard holds (see [`EmulatorHandle::shard_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    /// Shard id.
    pub shard: u32,
    /// `true` after a split/merge made it read-only.
    pub readonly: bool,
    /// LogGroups stored.
    pub groups: usize,
    /// Logs stored.
    pub logs: usize,
    /// Raw (uncompressed protobuf) bytes stored.
    pub raw_bytes: usize,
}

/// What [`EmulatorHandle::preload`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct PreloadSpec {
    /// Stop after this many logs (0: no limit by count).
    pub logs: u64,
    /// Stop after this many raw bytes (0: no limit by size).
    pub bytes: u64,
    /// Logs per LogGroup.
    pub logs_per_group: usize,
    /// Sample kind.
    pub kind: SampleKind,
    /// Generator seed.
    pub seed: u64,
}

impl Default for PreloadSpec {
    fn default() -> Self {
        Self {
            logs: 0,
            bytes: 0,
            logs_per_group: 100,
            kind: SampleKind::Mixed,
            seed: config::DEFAULT_SEED,
        }
    }
}

/// What [`EmulatorHandle::preload`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreloadStats {
    /// Logs written.
    pub logs: u64,
    /// LogGroups written.
    pub groups: u64,
    /// Raw bytes written (sum of LogGroup encodings).
    pub raw_bytes: u64,
}

impl EmulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the endpoint to give an SLS client.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// What the temporary-credentials issuer did; `None` when it is off.
    pub fn sts_stats(&self) -> Option<StsStats> {
        self.state.sts.as_ref().map(crate::sts::Issuer::stats)
    }

    /// Issues temporary credentials directly (what a test writes into a credentials file);
    /// `None` when temporary credentials are off.
    pub fn issue_credentials(&self) -> Option<IssuedCredentials> {
        self.state.sts.as_ref().map(crate::sts::Issuer::issue)
    }

    /// PullLogs answered with data or an empty page so far (refusals, for a quota or a fault,
    /// not counted), all shards together.
    pub fn pulls_served(&self) -> u64 {
        self.state
            .pulls_served
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fault injection: make chosen requests fail (500, 503, quota, dropped connection,
    /// corrupt PullLogs bodies). See [`faults`].
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    fn logstore(&self, project: &str, logstore: &str) -> Result<Arc<Logstore>, EmulatorError> {
        self.state
            .store
            .project(project)
            .and_then(|p| p.logstore(logstore))
            .map_err(|source| EmulatorError::Setup {
                what: format!("logstore {project}/{logstore}"),
                source,
            })
    }

    /// Creates a logstore (and its project) unless it exists.
    pub fn create_logstore(
        &self,
        project: &str,
        logstore: &str,
        shards: u32,
    ) -> Result<(), EmulatorError> {
        let spec =
            LogstoreSpec::try_new(project, logstore, shards).map_err(EmulatorError::Config)?;
        self.state.ensure_logstore(&spec).map(|_| ())
    }

    /// Per-shard counts, in shard id order.
    pub fn shard_stats(
        &self,
        project: &str,
        logstore: &str,
    ) -> Result<Vec<ShardStats>, EmulatorError> {
        let ls = self.logstore(project, logstore)?;
        Ok(ls
            .shards()
            .iter()
            .map(|s| {
                let groups = s.all();
                ShardStats {
                    shard: s.id,
                    readonly: s.is_readonly(),
                    groups: groups.len(),
                    logs: groups
                        .iter()
                        .map(|g| LogGroupView::parse(g.bytes.clone()).map_or(0, |v| v.log_count))
                        .sum(),
                    raw_bytes: groups.iter().map(|g| g.bytes.len()).sum(),
                }
            })
            .collect())
    }

    /// Logs stored per shard, in shard id order.
    pub fn log_counts(&self, project: &str, logstore: &str) -> Result<Vec<usize>, EmulatorError> {
        Ok(self
            .shard_stats(project, logstore)?
            .into_iter()
            .map(|s| s.logs)
            .collect())
    }

    /// The stored checkpoint of `shard` in consumer group `group`, if any.
    pub fn checkpoint(
        &self,
        project: &str,
        logstore: &str,
        group: &str,
        shard: u32,
    ) -> Result<Option<String>, EmulatorError> {
        let ls = self.logstore(project, logstore)?;
        let groups = store::lock(&ls.groups);
        Ok(groups
            .get(group)
            .and_then(|g| g.checkpoints.get(&shard))
            .map(|c| c.cursor.clone()))
    }

    /// Appends one encoded LogGroup to `shard` directly (no HTTP), stamped now.
    pub fn append_group(
        &self,
        project: &str,
        logstore: &str,
        shard: u32,
        group: bytes::Bytes,
    ) -> Result<(), EmulatorError> {
        self.append_at(project, logstore, shard, group, now_secs())
    }

    /// Appends one LogGroup to `shard` directly (no HTTP) as if the server had received it
    /// at `received_at` (unix s), for data that must look old (`x-log-cursor-time`, GetCursor
    /// by time). Receive times never go backwards within a shard: an earlier time than the
    /// shard's last group is raised to it, so append old data first.
    pub fn append_group_received_at(
        &self,
        project: &str,
        logstore: &str,
        shard: u32,
        group: &shipper_sls::proto::LogGroup,
        received_at: u32,
    ) -> Result<(), EmulatorError> {
        let bytes = bytes::Bytes::from(prost::Message::encode_to_vec(group));
        self.append_at(project, logstore, shard, bytes, received_at)
    }

    fn append_at(
        &self,
        project: &str,
        logstore: &str,
        shard: u32,
        group: bytes::Bytes,
        time: u32,
    ) -> Result<(), EmulatorError> {
        let ls = self.logstore(project, logstore)?;
        let s = ls.shard_by_id(shard).ok_or_else(|| EmulatorError::Setup {
            what: format!("shard {shard} of {project}/{logstore}"),
            source: ApiError::shard_not_exist(&shard.to_string()),
        })?;
        s.append(vec![group], time)
            .map_err(|source| EmulatorError::Setup {
                what: "append".into(),
                source,
            })
    }

    /// Writes generated sample logs evenly over the logstore's read-write shards (one thread
    /// per shard, batches of LogGroups; benchmarks preload gigabytes this way; it bypasses
    /// HTTP, lz4 and protobuf validation). The logs and bytes targets are split evenly
    /// across the shards.
    pub async fn preload(
        &self,
        project: &str,
        logstore: &str,
        spec: PreloadSpec,
    ) -> Result<PreloadStats, EmulatorError> {
        if spec.logs == 0 && spec.bytes == 0 {
            return Err(EmulatorError::Config(
                "preload needs a number of logs or bytes".into(),
            ));
        }
        if spec.logs_per_group == 0 {
            return Err(EmulatorError::Config("logs_per_group must be > 0".into()));
        }
        let ls = self.logstore(project, logstore)?;
        tokio::task::spawn_blocking(move || preload_blocking(&ls, &spec))
            .await
            .map_err(|e| EmulatorError::Task(format!("preload: {e}")))?
    }

    /// Stops the server and waits for it (open requests get up to 5 s).
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| EmulatorError::Task(format!("server task: {e}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Groups appended to one shard per lock acquisition during a preload.
const PRELOAD_BATCH: usize = 32;

fn preload_blocking(ls: &Logstore, spec: &PreloadSpec) -> Result<PreloadStats, EmulatorError> {
    let shards: Vec<_> = ls
        .shards()
        .into_iter()
        .filter(|s| !s.is_readonly())
        .collect();
    if shards.is_empty() {
        return Err(EmulatorError::Config(format!(
            "logstore {} has no writable shard",
            ls.name
        )));
    }
    // One thread and one generator per shard (seeded from the spec's seed and the shard's
    // position, so the data stays reproducible), each writing its share of the target.
    let n = shards.len() as u64;
    let share = |total: u64, i: u64| total / n + u64::from(i < total % n);
    let results: Vec<Result<PreloadStats, EmulatorError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(i, shard)| {
                let i = i as u64;
                let (logs, bytes) = (share(spec.logs, i), share(spec.bytes, i));
                let seed = spec.seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                scope.spawn(move || preload_shard(shard, spec, seed, logs, bytes))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(EmulatorError::Task("preload thread panicked".into())))
            })
            .collect()
    });
    let mut total = PreloadStats::default();
    for r in results {
        let s = r?;
        total.logs += s.logs;
        total.groups += s.groups;
        total.raw_bytes += s.raw_bytes;
    }
    Ok(total)
}

/// Writes `logs` logs or `bytes` raw bytes (whichever limit is set and reached first) to
/// one shard.
fn preload_shard(
    shard: &store::Shard,
    spec: &PreloadSpec,
    seed: u64,
    logs: u64,
    bytes: u64,
) -> Result<PreloadStats, EmulatorError> {
    let mut generator = Generator::new(spec.kind, seed);
    let mut stats = PreloadStats::default();
    let done = |s: &PreloadStats| {
        (spec.logs > 0 && s.logs >= logs) || (spec.bytes > 0 && s.raw_bytes >= bytes)
    };
    while !done(&stats) {
        let time = now_secs();
        let mut batch = Vec::with_capacity(PRELOAD_BATCH);
        while batch.len() < PRELOAD_BATCH && !done(&stats) {
            let mut n = spec.logs_per_group as u64;
            if spec.logs > 0 {
                n = n.min(logs - stats.logs);
            }
            let group = generator.group(n as usize, time);
            stats.logs += n;
            stats.groups += 1;
            stats.raw_bytes += group.len() as u64;
            batch.push(group);
        }
        shard
            .append(batch, time)
            .map_err(|source| EmulatorError::Setup {
                what: "preload".into(),
                source,
            })?;
    }
    Ok(stats)
}
