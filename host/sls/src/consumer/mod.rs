//! The consumer-group worker: what `shipper run` uses to share a logstore's shards with
//! other consumers (shipper instances or official SDK workers) in one group.
//!
//! [`Consumer::join`] creates the group if needed and starts a heartbeat task. Every shard
//! the server assigns becomes a [`ShardLease`] (received with [`Consumer::next_lease`]) once
//! its start cursor is known: the group's checkpoint, else the configured start position.
//! The lease gives a prefetching [`ShardReader`] and commits checkpoints; it is revoked when
//! the server moves the shard, when heartbeats fail for too long, or on shutdown, and the
//! shard stays in the heartbeat body until the holder drops the lease (graceful hand-off,
//! docs/sls-protocol.md §8.4, §9.7). [`Consumer::shutdown`] revokes everything, waits
//! (bounded) for the holders, and stops.
//!
//! This module does not process data or decide *when* to commit: the pipeline does, after
//! its sink acknowledged, in cursor order (docs/sls-protocol.md §9.6 "Committing").
//!
//! Layout:
//! - `lease`: held-shard bookkeeping, [`ShardLease`], [`RevokeReason`].
//! - `heartbeat`: the heartbeat loop and lease preparation (start cursor).
//! - `reader`: [`ShardReader`], [`PulledBatch`] and [`ReadEvent`].
//! - `checkpoint`: [`Checkpointer`] and the commit rules (ownership, `forceSuccess`).
//! - `budget`: [`MemoryBudget`], the bytes every shard's pulled and in-flight data share.
//! - `stats`: [`ConsumerStats`], optional counters of retries and reader stops, and the
//!   last heartbeat.

mod budget;
mod checkpoint;
mod heartbeat;
mod lease;
mod reader;
mod stats;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::budget::{BudgetShare, Charge, MemoryBudget};
pub use self::checkpoint::Checkpointer;
use self::lease::Membership;
pub use self::lease::{Revocation, RevokeReason, ShardLease};
pub use self::reader::{
    MAX_DISTANCE_GROWTH, PulledBatch, ReadEvent, SHARD_RATE_GOAL, ShardReader, distance_pull_bytes,
};
pub use self::stats::{ConsumerStats, ReadErrorKind, RetriedCall, RetryCause};
use crate::api::logs::{CursorPosition, MAX_PULL_COUNT};
use crate::client::Client;
use crate::codec::Compression;
use crate::error::SlsError;
use shipper_net::Backoff;

/// Heartbeat period: 20 s, what the official Python consumer and the seed scripts use, so a
/// group shared with them behaves the same (docs/sls-protocol.md "shipper's consumer").
/// A graceful hand-off takes about two intervals.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(20);
/// Group timeout: twice the heartbeat, as the Python SDK sets on the groups it creates. One
/// lost heartbeat does not cost the shards; a crashed instance's shards move within 40 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(40);
/// Wait before pulling again when a shard is caught up (SLS allows ~100 reads/s per shard;
/// half a second keeps latency low at 2 reads/s per idle shard).
pub const DEFAULT_IDLE_WAIT: Duration = Duration::from_millis(500);
/// Spacing of small pulls (< 100 groups and < 1 MiB, Python's first throttle tier), counted
/// from when the pull was sent, so a trickle of writes does not turn into a pull per
/// LogGroup.
pub const DEFAULT_SMALL_PULL_WAIT: Duration = Duration::from_millis(200);
/// Raw bytes one pull aims for: the reader sizes `count` from the LogGroup sizes it sees so
/// a shard holds about this much per pulled batch (one processed, one prefetched), instead
/// of whatever `fetch_count` groups add up to (SLS may return 8 MiB or more).
pub const DEFAULT_TARGET_PULL_BYTES: usize = 4 << 20;
/// Raw bytes of answers a reader keeps ahead of its caller before it stops pulling: two
/// pulls' worth, so the next pull goes out the moment an answer arrives even while the
/// caller is still busy with the one before. At 4 MiB a pull, a shard 200 ms away can read
/// 20 MB/s, twice SLS's per-shard read quota (docs/sls-protocol.md §12).
pub const DEFAULT_PREFETCH_BYTES: usize = 2 * DEFAULT_TARGET_PULL_BYTES;
/// First retry delay after a retryable error.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(200);
/// Longest retry delay: quota errors clear within seconds, and a shard should not stall
/// longer than this once SLS is back.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10);
/// How long [`Consumer::shutdown`] waits for lease holders to finish and release.
pub const DEFAULT_RELEASE_GRACE: Duration = Duration::from_secs(30);

/// What a consumer is built from. Defaults come from [`ConsumerConfig::new`].
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Logstore to consume.
    pub logstore: String,
    /// Consumer group name (created if missing).
    pub group: String,
    /// This consumer's name, unique in the group (two processes with one name would be one
    /// consumer to the server and read the same shards).
    pub consumer: String,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Group timeout (whole seconds on the wire, rounded up); set on the group when it is
    /// created or differs.
    pub timeout: Duration,
    /// Ordered consumption across shard splits/merges (the group's `order` flag).
    pub in_order: bool,
    /// Where to start a shard that has no checkpoint in the group.
    pub start: CursorPosition,
    /// LogGroups per PullLogs at most (1–1000).
    pub fetch_count: u32,
    /// Raw bytes a pull aims for (fewer groups are asked for when they are large), grown
    /// up to [`MAX_DISTANCE_GROWTH`] times at a long round trip ([`distance_pull_bytes`]);
    /// 0 asks for `fetch_count` every time.
    pub target_pull_bytes: usize,
    /// Without a [`budget`](Self::budget): raw bytes of answers not yet taken by the caller
    /// at which a reader stops pulling (it resumes as soon as the caller takes one).
    pub prefetch_bytes: usize,
    /// Optional SPL query applied by the server on every pull.
    pub query: Option<String>,
    /// PullLogs body compression to ask for.
    pub compression: Compression,
    /// Wait before pulling again when caught up.
    pub idle_wait: Duration,
    /// Wait after a small pull (0 disables).
    pub small_pull_wait: Duration,
    /// First retry delay after a retryable error.
    pub retry_initial: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
    /// Bound on the wait for lease holders in [`Consumer::shutdown`].
    pub release_grace: Duration,
    /// The process's memory budget for pulled and in-flight data: each shard takes a share
    /// when it is assigned (all shards of one heartbeat answer together), its reader
    /// reserves before it pulls and sizes its pulls to a quarter of its share;
    /// `None` (the default): only `prefetch_bytes` bounds a reader. With a budget a reader
    /// reads ahead as far as its share allows, `prefetch_bytes` does not apply.
    pub budget: Option<Arc<MemoryBudget>>,
    /// Under a budget: bytes of each shard's share its reader leaves to what the caller
    /// makes of the pulled data (events rendered from it, requests in flight), half the
    /// share at most; the reader's pulls are guaranteed the rest. The default,
    /// `usize::MAX`, leaves half the share.
    pub send_room_bytes: usize,
    /// Where to count retries, reader stops and heartbeats (for metrics); `None` (the
    /// default) counts nothing.
    pub stats: Option<Arc<ConsumerStats>>,
}

impl ConsumerConfig {
    /// A configuration with the defaults: start at the beginning, 1000 groups per pull, LZ4.
    pub fn new(
        logstore: impl Into<String>,
        group: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        Self {
            logstore: logstore.into(),
            group: group.into(),
            consumer: consumer.into(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            in_order: false,
            start: CursorPosition::Begin,
            fetch_count: MAX_PULL_COUNT,
            target_pull_bytes: DEFAULT_TARGET_PULL_BYTES,
            prefetch_bytes: DEFAULT_PREFETCH_BYTES,
            query: None,
            compression: Compression::Lz4,
            idle_wait: DEFAULT_IDLE_WAIT,
            small_pull_wait: DEFAULT_SMALL_PULL_WAIT,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            release_grace: DEFAULT_RELEASE_GRACE,
            budget: None,
            send_room_bytes: usize::MAX,
            stats: None,
        }
    }

    /// Checks the settings without any I/O; errors name the field.
    pub fn validate(&self) -> Result<(), SlsError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.logstore) {
            return Err(SlsError::config(format!(
                "logstore {:?} is invalid: use letters, digits, '-' and '_'",
                self.logstore
            )));
        }
        if !name_ok(&self.group) {
            return Err(SlsError::config(format!(
                "consumer_group {:?} is invalid: use letters, digits, '-' and '_'",
                self.group
            )));
        }
        if self.consumer.trim().is_empty() {
            return Err(SlsError::config("consumer_name must not be empty"));
        }
        if self.fetch_count == 0 || self.fetch_count > MAX_PULL_COUNT {
            return Err(SlsError::config(format!(
                "fetch_count {} is out of range 1..={MAX_PULL_COUNT}",
                self.fetch_count
            )));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(SlsError::config("heartbeat_interval must be positive"));
        }
        if self.timeout_secs() == 0 || self.timeout <= self.heartbeat_interval {
            return Err(SlsError::config(format!(
                "timeout ({:?}) must be longer than heartbeat_interval ({:?}); twice or more \
                 is recommended so one lost heartbeat does not cost the shards",
                self.timeout, self.heartbeat_interval
            )));
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return Err(SlsError::config(
                "retry delays must be positive with retry_max >= retry_initial",
            ));
        }
        Ok(())
    }

    /// The group timeout in whole seconds, as the server stores it.
    pub fn timeout_secs(&self) -> u32 {
        let secs = self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.retry_initial, self.retry_max)
    }

    /// Counts a failed `call` that is about to be repeated.
    fn record_retry(&self, call: RetriedCall, e: &SlsError) {
        if let Some(stats) = &self.stats {
            stats.record_retry(call, e);
        }
    }
}

/// State shared by the consumer, its heartbeat task, its leases and readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: ConsumerConfig,
    pub(crate) state: Mutex<Membership>,
    /// A lease was released: heartbeat now (faster hand-off).
    pub(crate) beat_now: Notify,
    /// A lease was released: wakes [`Consumer::shutdown`].
    pub(crate) released: Notify,
    /// The server rejected `forceSuccess=false` once; commit with `true` from then on.
    pub(crate) force_checkpoints: AtomicBool,
}

impl Shared {
    pub(crate) fn membership(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.state.lock().expect("membership lock poisoned")
    }
}

/// A member of a consumer group. See the module docs.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    leases: mpsc::UnboundedReceiver<ShardLease>,
    stop: CancellationToken,
    heartbeat: Option<JoinHandle<()>>,
}

/// What [`Consumer::shutdown`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Shards whose holders did not release within the grace period (their final
    /// checkpoints may be missing; the next owner re-reads from the last committed one).
    pub unreleased: Vec<u32>,
}

impl Consumer {
    /// Joins the group: creates it if missing (an existing one gets its `timeout`/`order`
    /// aligned with the config), then starts heartbeating. Fails fast on configuration and
    /// authentication errors; retryable errors are retried a few times first.
    pub async fn join(client: Client, config: ConsumerConfig) -> Result<Self, SlsError> {
        config.validate()?;
        let mut backoff = config.backoff();
        loop {
            match ensure_group(&client, &config).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && backoff.attempt() < 4 => {
                    config.record_retry(RetriedCall::CreateGroup, &e);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "joining the consumer group failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(
            project = client.project(),
            logstore = %config.logstore,
            group = %config.group,
            consumer = %config.consumer,
            "joined consumer group"
        );
        let shared = Arc::new(Shared {
            client,
            config,
            state: Mutex::new(Membership::default()),
            beat_now: Notify::new(),
            released: Notify::new(),
            force_checkpoints: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat::run(shared.clone(), tx, stop.clone()));
        Ok(Self {
            shared,
            leases: rx,
            stop,
            heartbeat: Some(heartbeat),
        })
    }

    /// The next shard assigned to this consumer, with its start cursor resolved. Pending
    /// until the server assigns one; cancel-safe. (The queue of ready leases is bounded by
    /// the number of shards.)
    pub async fn next_lease(&mut self) -> Option<ShardLease> {
        self.leases.recv().await
    }

    /// A handle to commit checkpoints by shard id.
    pub fn checkpointer(&self) -> Checkpointer {
        Checkpointer::new(self.shared.clone())
    }

    /// The client this consumer uses.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// Shards with a live lease (or one being prepared), in any phase.
    pub fn held_shards(&self) -> Vec<u32> {
        self.shared.membership().shards()
    }

    /// Leaves gracefully: stops taking shards, revokes every lease
    /// ([`RevokeReason::Shutdown`]; holders may still commit), waits up to
    /// `release_grace` for them to be dropped while still heartbeating (so the server keeps
    /// them ours), then sends a last heartbeat listing whatever is left and stops.
    ///
    /// SLS has no "leave" call: the server frees this consumer's shards when the group
    /// timeout expires after the last heartbeat (a restart under the same name gets them back
    /// at once).
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.shared.membership().begin_shutdown();
        // Leases prepared but not yet taken by the caller: drop (= release) them.
        self.leases.close();
        while self.leases.try_recv().is_ok() {}

        let deadline = tokio::time::Instant::now() + self.shared.config.release_grace;
        loop {
            let released = self.shared.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.shared.membership().is_empty() {
                break;
            }
            tokio::select! {
                () = released => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }

        self.stop.cancel();
        if let Some(task) = self.heartbeat.take()
            && let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "heartbeat task panicked");
        }
        let (body, unreleased) = {
            let m = self.shared.membership();
            (m.heartbeat_body(), m.shards())
        };
        let cfg = &self.shared.config;
        if let Err(e) = self
            .shared
            .client
            .heartbeat_with_timeout(
                &cfg.logstore,
                &cfg.group,
                &cfg.consumer,
                &body,
                Some(heartbeat::request_timeout(cfg)),
            )
            .await
        {
            tracing::debug!(error = %e, "final heartbeat failed");
        }
        if unreleased.is_empty() {
            tracing::info!(group = %cfg.group, consumer = %cfg.consumer, "left consumer group");
        } else {
            tracing::warn!(
                group = %cfg.group,
                shards = ?unreleased,
                grace = ?cfg.release_grace,
                "shard holders did not finish within the grace period; their last progress \
                 may be re-read by the next owner"
            );
        }
        ShutdownReport { unreleased }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Without `shutdown`: revoke every lease (holders should stop; their commits still
        // work until the server times this consumer out) and stop heartbeating. The server
        // frees the shards after the group timeout.
        if let Ok(mut m) = self.shared.state.lock() {
            m.begin_shutdown();
        }
        self.stop.cancel();
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }
}

/// Creates the group, or aligns an existing one's timeout/order (docs/sls-protocol.md §9.1
/// "Joining"). Updating only when they differ lets a RAM user without UpdateConsumerGroup
/// permission join an existing group (Go's behaviour).
pub(crate) async fn ensure_group(client: &Client, cfg: &ConsumerConfig) -> Result<(), SlsError> {
    let timeout = cfg.timeout_secs();
    match client
        .create_consumer_group(&cfg.logstore, &cfg.group, timeout, cfg.in_order)
        .await
    {
        Ok(()) => {
            tracing::info!(group = %cfg.group, timeout, order = cfg.in_order, "created consumer group");
            Ok(())
        }
        Err(e) if e.is_consumer_group_already_exist() => {
            let current = match client.list_consumer_groups(&cfg.logstore).await {
                Ok(groups) => groups.into_iter().find(|g| g.name == cfg.group),
                Err(e) => {
                    tracing::debug!(error = %e, "listing consumer groups failed; updating blindly");
                    None
                }
            };
            if current.is_some_and(|g| g.timeout == timeout && g.order == cfg.in_order) {
                return Ok(());
            }
            if let Err(e) = client
                .update_consumer_group(&cfg.logstore, &cfg.group, Some(timeout), Some(cfg.in_order))
                .await
            {
                if e.is_retryable() {
                    return Err(e);
                }
                tracing::warn!(
                    group = %cfg.group,
                    error = %e,
                    "cannot align the consumer group's timeout/order with the configuration; \
                     continuing with the server's settings"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let ok = ConsumerConfig::new("ls", "cg", "c1");
        ok.validate().unwrap();
        let check = |f: &dyn Fn(&mut ConsumerConfig), needle: &str| {
            let mut c = ok.clone();
            f(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        };
        check(&|c| c.fetch_count = 0, "fetch_count");
        check(&|c| c.fetch_count = 1001, "fetch_count");
        check(&|c| c.group = "a/b".into(), "consumer_group");
        check(&|c| c.logstore = String::new(), "logstore");
        check(&|c| c.consumer = " ".into(), "consumer_name");
        check(&|c| c.timeout = c.heartbeat_interval, "timeout");
        check(
            &|c| c.heartbeat_interval = Duration::ZERO,
            "heartbeat_interval",
        );
        check(&|c| c.retry_max = Duration::ZERO, "retry");
    }

    #[test]
    fn timeout_rounds_up_to_whole_seconds() {
        let mut c = ConsumerConfig::new("ls", "cg", "c1");
        c.timeout = Duration::from_millis(3500);
        assert_eq!(c.timeout_secs(), 4);
        c.timeout = Duration::from_secs(4);
        assert_eq!(c.timeout_secs(), 4);
    }
}
