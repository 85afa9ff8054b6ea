//! One shard's pipeline: pulled log groups → plugin(s) → rendered events → sink(s) →
//! checkpoint.
//!
//! ```text
//! ShardReader (prefetch) ─► shard::process_batch ─► format::FormatStage per plugin (≤ N logs a call)
//!                                  │ emits → each of the plugin's sinks: render() into that
//!                                  │   sink's open batch (+ origin per event, + event ID)
//!                                  │ record errors, traps (bisected to one log) → dead-letter files
//!                                  ▼
//!        per sink: open batch full or lingering ─► rate cap ─► sink.send() ─► acks::OrderedAcks
//!                                                                  │ settled in send order
//!                                                                  ▼
//!    sink rejections → that sink's dead-letter file; then checkpoint::Committer(range that
//!    every sink has acknowledged)
//! ```
//!
//! At-least-once rules enforced here (docs/architecture.md "Delivery guarantee"):
//! - a pulled batch's `next_cursor` is attached to the first send dispatched after its last
//!   event was rendered, and reported to the committer only when that send (and every earlier
//!   one) is settled: [`acks::OrderedAcks`] hands acknowledgements out in send order;
//! - dead-letter entries are written and synced before the cursor that passes them is
//!   reported; while the file cannot be written (a full disk) the shard waits and retries;
//! - a cancelled delivery (shutdown while the sink was down) stops reporting for good;
//! - when the shard is taken away (lost heartbeat, expired consumer, refused checkpoint),
//!   the open batch and the sends in flight are dropped and nothing new is sent: the next
//!   owner starts from the last checkpoint (a rebalance the server announces is graceful,
//!   like a shutdown: the open batch is sent, the sends settle, the last position is
//!   committed before the lease goes);
//! - with several sinks, every sink keeps its own [`acks::OrderedAcks`], and the checkpoint
//!   moves to the smallest position all of them acknowledged: a log is committed only once
//!   every sink has it (or dead-lettered it);
//! - each sink's acknowledged ranges go to the completeness ledger ([`crate::ledger`]),
//!   which is written before the checkpoint that passes them is committed.
//!
//! Reload: the sinks, plugins and dead-letter files are one [`Topology`]; a reload publishes
//! a new one, and each shard stops pulling, sends its open batches, waits until every send
//! of the old topology is settled and its position reported, then goes on with the new one
//! from that position.
//!
//! Back-pressure: at most `max_in_flight` sends per shard and sink; while any sink has no
//! room the shard pulls nothing new (its reader reads ahead only within the shard's share of
//! the memory budget), so memory stays bounded when a sink is slow, down or throttled by its
//! rate cap. A sink that settles
//! nothing for [`shard::STALL_WARN_AFTER`] while a shard waits on it is named in one WARN
//! and in `shipper_sink_blocked_shards`.
//!
//! Layout:
//! - [`shard`]: the loop ([`shard::run`]) and what it reads through ([`shard::ShardIo`]).
//! - [`format`](mod@format): plugin calls, poison-log bisection, the breaker, rollback, the failure
//!   policy.
//! - [`formatter`]: the plugin seam ([`formatter::Formatter`], [`formatter::FormatInstance`]).
//! - [`passthrough`]: the built-in JSON format of the `passthrough` policy.
//! - [`acks`]: [`acks::OrderedAcks`], acknowledgements in send order with position ranges.
//! - [`batch`]: the open batch, event origins, buffer reuse.
//! - [`rate`]: per-sink rate caps, a token bucket shared by every shard.
//! - [`event_id`]: the stable event IDs of `event_id = true`.
//! - [`replay`]: the replay marker and `__time__` filter of `shipper replay`.

pub mod acks;
pub mod batch;
pub mod event_id;
pub mod format;
pub mod formatter;
pub mod passthrough;
pub mod rate;
pub mod replay;
pub mod shard;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use shipper_sinks::Sink;
use shipper_sls::consumer::{Checkpointer, ShardLease};

use crate::checkpoint::DEFAULT_MIN_COMMIT_INTERVAL;
use crate::dead_letter::DeadLetter;
use crate::lag::ShardLag;
use crate::metrics::{Metrics, ShardLabels};
use crate::settings::LogstoreTarget;

pub use crate::convert::payload as convert_payload;

/// Logs per plugin call at most: bounds guest memory per call and the deadline granularity
/// (between ~100 and ~1000 logs per call cost the same per log; docs/plugins.md "Batches").
pub const DEFAULT_MAX_LOGS_PER_CALL: usize = 1024;
/// Sends in flight per shard. Each is at most the sink's batch size (1 MB for HEC), so this
/// bounds memory per shard while letting compression and I/O overlap with formatting.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// What a shard holds besides the data the memory budget counts (its task and reader, its
/// lanes, its HTTP connection to SLS, the allocator's share of them), counted against the
/// budget per shard so that the process's memory does not grow with the shard count: behind
/// a slow sink, with the budget full, 256 shards held about 33 MiB more than 4 did besides
/// their data, ≈ 135 KiB a shard (README.md "At a distance and at scale").
pub const SHARD_STATE_BYTES: usize = 128 << 10;

/// Tunables of the shard pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// See [`DEFAULT_MAX_LOGS_PER_CALL`].
    pub max_logs_per_call: usize,
    /// See [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// Minimum spacing of checkpoint commits.
    pub min_commit_interval: Duration,
    /// Set by `shipper replay` and `shipper dead-letter replay`: the marker and the
    /// `__time__` filter ([`replay::ReplayOptions`]).
    pub replay: Option<Arc<replay::ReplayOptions>>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            max_logs_per_call: DEFAULT_MAX_LOGS_PER_CALL,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            min_commit_interval: DEFAULT_MIN_COMMIT_INTERVAL,
            replay: None,
        }
    }
}

/// One sink as the shards use it.
#[derive(Clone)]
pub struct SinkContext {
    /// Its name (what plugin routes name).
    pub name: String,
    /// The sink.
    pub sink: Arc<dyn Sink>,
    /// Which of [`Topology::formats`] formats its events.
    pub format: usize,
    /// Which of [`Topology::dead_letters`] is its dead-letter file.
    pub dead_letter: usize,
    /// Its rate caps, shared by every shard of the process.
    pub limiter: Option<Arc<rate::RateLimiter>>,
    /// Where its events carry their ID, when `event_id = true`.
    pub event_id: Option<event_id::EventIdSettings>,
}

/// The sinks, plugins and dead-letter files shards deliver through: one generation of the
/// configuration. A reload publishes a new one; each shard switches to it between batches,
/// once everything it sent through the old one is settled, so a reload neither loses nor
/// repeats a log (docs/architecture.md "Reload").
#[derive(Clone)]
pub struct Topology {
    /// 1 at start, one more per applied reload.
    pub generation: u64,
    /// The sinks, at least one.
    pub sinks: Vec<SinkContext>,
    /// The plugin side, one per distinct plugin: generations, failure policy, passthrough.
    pub formats: Vec<format::FormatContext>,
    /// The dead-letter files (each distinct path once).
    pub dead_letters: Vec<DeadLetter>,
}

impl Topology {
    /// The most a shard's sends hold in the memory budget at once: per sink,
    /// `max_in_flight` sends and the open batch, each a buffer for the sink's largest batch
    /// (with the slack for the event that crosses it) and its request body. What a shard's
    /// reader leaves of its share for the pipeline (`ConsumerConfig::send_room_bytes`,
    /// docs/architecture.md §6 "Bounded memory").
    pub fn send_room_bytes(&self, max_in_flight: usize) -> usize {
        self.sinks
            .iter()
            .map(|s| {
                let batch = s.sink.batch_config().max_bytes;
                let buffer = batch.saturating_add(batch::BATCH_SLACK);
                (max_in_flight + 1)
                    .saturating_mul(buffer.saturating_add(s.sink.send_overhead_bytes(batch)))
            })
            .fold(0, usize::saturating_add)
    }
}

/// What every shard of one logstore shares.
pub struct ShardContext {
    /// The logstore.
    pub target: LogstoreTarget,
    /// The configuration generation in use, and the next one when a reload publishes it.
    pub topology: tokio::sync::watch::Receiver<Arc<Topology>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Tunables.
    pub options: PipelineOptions,
    /// Lag gauges of this logstore's held shards.
    pub lag: Arc<ShardLag>,
    /// Where acknowledged ranges are recorded (`None`: `[ledger] enabled = false`).
    pub ledger: Option<crate::ledger::Ledger>,
}

impl ShardContext {
    /// The labels of `shard`'s series.
    pub fn labels(&self, shard: u32) -> ShardLabels {
        ShardLabels {
            logstore: self.target.label(),
            shard,
        }
    }
}

/// Runs one leased shard until its lease is revoked or the shard is finished, then commits
/// the last delivered position (when allowed) and releases the lease. Logs the assignment
/// and the release, one line each.
pub async fn run_shard(ctx: Arc<ShardContext>, lease: ShardLease, checkpointer: Checkpointer) {
    let shard = lease.shard();
    let labels = ctx.labels(shard);
    tracing::info!(
        logstore = %labels.logstore,
        shard,
        cursor = %lease.start_cursor(),
        from_checkpoint = lease.resumed_from_checkpoint(),
        "shard assigned"
    );
    ctx.metrics.shard_acquired();
    ctx.lag.acquired(shard, lease.start_cursor());
    let reader = lease.reader();
    let memory = reader.memory();
    let io = shard::ShardIo {
        shard,
        start: lease.start_cursor(),
        events: futures::stream::unfold(reader, |mut r| async move {
            r.next_event().await.map(|e| (e, r))
        })
        .boxed(),
        revocation: lease.revocation(),
        checkpoints: Arc::new(checkpointer),
        memory,
    };
    let end = shard::run(ctx.clone(), io).await;
    ctx.lag.released(&labels);
    ctx.metrics.shard_released();
    tracing::info!(
        logstore = %labels.logstore,
        shard,
        reason = %lease.revoke_reason().map_or_else(|| "finished".to_owned(), |r| r.to_string()),
        checkpoint = end.as_str(),
        "shard released"
    );
    lease.release();
}

#[cfg(test)]
mod tests;
