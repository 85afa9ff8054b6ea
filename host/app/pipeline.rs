//! One shard's pipeline: pulled log groups → plugin → rendered events → sink → checkpoint.
//!
//! ```text
//! ShardReader (prefetch) ─► process_batch ─► plugin.process(group bytes) per LogGroup (≤ N logs a call)
//!                                   │ emits → sink.render() into the open EventBatch (+ origin per event)
//!                                   │ record errors, traps (bisected to one log) → dead-letter file
//!                                   ▼
//!                 open batch full or lingering ─► sink.send() ─► in-flight queue (FIFO, bounded)
//!                                                                  │ Delivery (in send order)
//!                                                                  ▼
//!                                   sink rejections → dead-letter file; Committer.delivered(cursor)
//! ```
//!
//! At-least-once rules enforced here:
//! - a pulled batch's `next_cursor` is attached to the first send dispatched after its last
//!   event was rendered, and reported to the committer only when that send (and every earlier
//!   one) is settled — acknowledgements are consumed in send order;
//! - dead-letter entries are written and synced before the cursor that passes them is reported;
//! - a cancelled delivery (shutdown while the sink was down) stops reporting for good;
//! - when the shard is taken away (rebalance, lost heartbeat), the open batch is dropped and
//!   nothing new is sent: the next owner starts from the last checkpoint.
//!
//! Back-pressure: at most `max_in_flight` sends per shard; while they are pending the shard
//! pulls nothing new (the reader holds one prefetched batch), so memory stays bounded when the
//! sink is slow or down.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use shipper_runtime::{BatchInfo, PluginError, PluginInstance, RecordError, Timestamp, TrapKind};
use shipper_sinks::{Delivery, EventBatch, Sink};
use shipper_sls::consumer::{PulledBatch, ReadEvent, RevokeReason, ShardLease};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::LogGroupView;
use tokio::time::Instant;

use crate::checkpoint::{CommitEnd, Committer};
use crate::convert;
use crate::dead_letter::{self, DeadLetter, Stage};
use crate::generation::{FailurePolicy, Generation, PluginSlot};
use crate::lag::ShardLag;
use crate::metrics::{DeadLetterLabels, Metrics, PluginFailureLabels, ShardLabels, Totals};

/// Logs per plugin call at most: bounds guest memory per call and the deadline granularity
/// (wasm-hosts.md §3a found ~100–1000 per call equally fast).
pub const DEFAULT_MAX_LOGS_PER_CALL: usize = 1024;
/// Sends in flight per shard. Each is at most the sink's batch size (1 MB for HEC), so this
/// bounds memory per shard while letting compression and I/O overlap with formatting.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// First wait after a batch-level plugin failure; doubles up to [`MAX_PLUGIN_RETRY_WAIT`].
const PLUGIN_RETRY_WAIT: Duration = Duration::from_millis(500);
/// Longest wait between retries of a failing plugin batch (policy `pause`).
const MAX_PLUGIN_RETRY_WAIT: Duration = Duration::from_secs(30);
/// How long a shard that cannot be read is held before its lease is released (the server
/// would otherwise hand it straight back, in a tight loop).
const READ_FAILURE_PAUSE: Duration = Duration::from_secs(30);
/// An instance is replaced after a random number of calls in this range (long-lived
/// instances leak: linear memory never shrinks; randomised so shards don't recycle together,
/// as Spin does; wasm-hosts.md §4c).
const RECYCLE_CALLS: std::ops::Range<u64> = 5_000..10_000;
/// An instance whose memory high-water mark passes this share of its cap is replaced.
const RECYCLE_MEMORY_SHARE: f64 = 0.75;

/// Event buffers kept for reuse per shard (one being filled, these waiting).
const MAX_SPARE_BATCHES: usize = 2;
/// Room beyond the batch size for the event that crosses it.
const BATCH_SLACK: usize = 64 << 10;
/// Largest buffer allocated up front (a sink with a huge batch size grows on demand).
const MAX_PRESIZE: usize = 8 << 20;

fn recycle_after() -> u64 {
    use rand::Rng as _;
    rand::rng().random_range(RECYCLE_CALLS)
}

/// Tunables of the shard pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// See [`DEFAULT_MAX_LOGS_PER_CALL`].
    pub max_logs_per_call: usize,
    /// See [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// Minimum spacing of checkpoint commits.
    pub min_commit_interval: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            max_logs_per_call: DEFAULT_MAX_LOGS_PER_CALL,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            min_commit_interval: crate::checkpoint::DEFAULT_MIN_COMMIT_INTERVAL,
        }
    }
}

/// What every shard of one logstore shares.
pub struct ShardContext {
    /// SLS project.
    pub project: String,
    /// SLS logstore.
    pub logstore: String,
    /// The sink.
    pub sink: Arc<dyn Sink>,
    /// Name of the sink (emits with another route are dead-lettered).
    pub sink_name: String,
    /// The plugin generation in use.
    pub plugins: Arc<PluginSlot>,
    /// Dead-letter file.
    pub dead_letter: DeadLetter,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Tunables.
    pub options: PipelineOptions,
    /// Lag gauges of this logstore's held shards.
    pub lag: Arc<ShardLag>,
    /// What to do when the plugin is in a crash loop and cannot be rolled back.
    pub failure_policy: FailurePolicy,
    /// Which payload the built-in passthrough format produces (the sink's kind).
    pub passthrough: PassthroughKind,
}

/// Payload kind of the built-in passthrough format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassthroughKind {
    /// HEC event whose body is the flattened log as JSON.
    Hec,
    /// Syslog message whose MSG is the flattened log as JSON.
    Syslog,
}

impl ShardContext {
    fn logstore_label(&self) -> String {
        format!("{}/{}", self.project, self.logstore)
    }
}

/// Where a rendered event came from (for dead-lettering a rejected event).
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// Index into the send's `sources`.
    source: u32,
    /// LogGroup index in that pulled batch.
    group: u32,
    /// Log index in that group.
    log: u32,
}

/// A pulled batch kept alive while its events are in flight (its bytes are slices of one
/// decompressed body, so this is a reference count, not a copy).
#[derive(Debug)]
struct Source {
    cursor: Cursor,
    groups: Vec<LogGroupView>,
    pulled_at: Instant,
    generation: Arc<Generation>,
}

/// The events being collected for the next send.
#[derive(Debug)]
struct OpenBatch {
    events: EventBatch,
    origins: Vec<Origin>,
    sources: Vec<Arc<Source>>,
    /// Position to report once this send is settled.
    commit: Option<Cursor>,
    opened: Option<Instant>,
}

impl OpenBatch {
    fn new(events: EventBatch) -> Self {
        Self {
            events,
            origins: Vec::new(),
            sources: Vec::new(),
            commit: None,
            opened: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commit.is_none()
    }

    fn source_index(&mut self, source: &Arc<Source>) -> u32 {
        if !self.sources.last().is_some_and(|s| Arc::ptr_eq(s, source)) {
            self.sources.push(source.clone());
        }
        (self.sources.len() - 1) as u32
    }
}

/// A dispatched send, settled.
struct Settled {
    delivery: Option<Delivery>,
    origins: Vec<Origin>,
    sources: Vec<Arc<Source>>,
    commit: Option<Cursor>,
}

/// What one log became.
enum LogOutcome {
    Emits(Vec<shipper_runtime::Emit>),
    Failed(RecordError),
    Trapped(String),
}

/// Why processing stopped before the reader ran dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The lease was revoked.
    Revoked(RevokeReason),
    /// A delivery was cancelled (shutdown with the sink down) or the dead-letter file failed:
    /// nothing more may be checkpointed.
    Unrecoverable,
    /// The server refused a checkpoint: the shard belongs to someone else.
    Lost,
}

/// Runs one shard until its lease is revoked or the shard is finished, then commits the last
/// delivered position (when allowed) and releases the lease.
pub async fn run_shard(
    ctx: Arc<ShardContext>,
    lease: ShardLease,
    checkpointer: shipper_sls::consumer::Checkpointer,
) {
    let shard = lease.shard();
    let labels = ShardLabels {
        logstore: ctx.logstore_label(),
        shard,
    };
    tracing::info!(
        logstore = %labels.logstore,
        shard,
        cursor = %lease.start_cursor(),
        from_checkpoint = lease.resumed_from_checkpoint(),
        "shard assigned"
    );
    ctx.metrics.shards_held.inc();
    Totals::add(&ctx.metrics.totals.shards, 1);
    ctx.lag.acquired(shard, lease.start_cursor());
    let committer = Committer::spawn(
        checkpointer,
        shard,
        labels.clone(),
        ctx.metrics.clone(),
        ctx.options.min_commit_interval,
    );
    let mut worker = ShardWorker {
        ctx: ctx.clone(),
        shard,
        labels,
        generation: ctx.plugins.current(),
        instance: None,
        open: OpenBatch::new(EventBatch::new()),
        spare: Vec::new(),
        inflight: FuturesOrdered::new(),
        committer,
        stop: None,
        plugin_failures: 0,
        read_failed: false,
        recycle_after: recycle_after(),
    };
    let end = worker.run(&lease).await;
    let ShardWorker {
        committer, labels, ..
    } = worker;
    let outcome = match end {
        Some(Stop::Revoked(reason)) if !reason.may_commit() => {
            committer.abandon();
            "not committed (shard no longer ours)"
        }
        Some(Stop::Lost) => {
            committer.abandon();
            "not committed (shard owned by another consumer)"
        }
        _ => match committer.finish().await {
            CommitEnd::Complete => "committed",
            CommitEnd::ShardLost => "not committed (shard owned by another consumer)",
            CommitEnd::Incomplete => "last checkpoint not committed (will be re-delivered)",
        },
    };
    ctx.lag.released(&labels);
    ctx.metrics.shards_held.dec();
    ctx.metrics
        .totals
        .shards
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        logstore = %labels.logstore,
        shard,
        reason = %lease.revoke_reason().map_or_else(|| "finished".to_owned(), |r| r.to_string()),
        checkpoint = outcome,
        "shard released"
    );
    lease.release();
}

struct ShardWorker {
    ctx: Arc<ShardContext>,
    shard: u32,
    labels: ShardLabels,
    generation: Arc<Generation>,
    instance: Option<PluginInstance>,
    open: OpenBatch,
    inflight: FuturesOrdered<BoxFuture<'static, Settled>>,
    committer: Committer,
    stop: Option<Stop>,
    /// Consecutive batch-level plugin failures (for the retry backoff).
    plugin_failures: u32,
    /// The reader ended with a non-retryable error.
    read_failed: bool,
    /// Calls after which the current instance is replaced (randomised per instance).
    recycle_after: u64,
    /// Event buffers handed back by settled deliveries, reused for the next open batch.
    spare: Vec<EventBatch>,
}

impl ShardWorker {
    /// The main loop. Returns why it stopped (`None`: the shard was read to its end).
    async fn run(&mut self, lease: &ShardLease) -> Option<Stop> {
        let mut reader = lease.reader();
        let mut reader_done = false;
        let linger = self.ctx.sink.batch_config().linger;
        loop {
            if self.stop.is_some() {
                break;
            }
            if self.committer.is_lost() {
                self.stop = Some(Stop::Lost);
                break;
            }
            if reader_done && self.open.is_empty() && self.inflight.is_empty() {
                break;
            }
            let linger_at = self.open.opened.map(|t| t + linger);
            tokio::select! {
                biased;
                reason = lease.revoked(), if self.stop.is_none() => {
                    self.stop = Some(Stop::Revoked(reason));
                }
                Some(settled) = self.inflight.next(), if !self.inflight.is_empty() => {
                    self.settle(settled).await;
                }
                () = sleep_until(linger_at), if linger_at.is_some() => {
                    self.dispatch();
                }
                next = reader.next_event(), if !reader_done && self.inflight.len() < self.ctx.options.max_in_flight => {
                    match next {
                        None => reader_done = true,
                        Some(Err(e)) => {
                            // The reader retries retryable errors itself; this one is fatal for
                            // the shard (e.g. the logstore was deleted). Let the lease go, but
                            // not at once: the server would hand it straight back to us.
                            tracing::error!(shard = self.shard, error = %e, "cannot read the shard; releasing it after a pause");
                            reader_done = true;
                            self.read_failed = true;
                        }
                        Some(Ok(ReadEvent::CaughtUp { cursor })) => {
                            // Nothing behind: the lag gauges say 0 rather than the age of the
                            // last batch, however long the shard stays idle.
                            self.ctx.lag.caught_up(&self.labels, cursor);
                        }
                        Some(Ok(ReadEvent::Batch(batch))) => {
                            let end = batch.end_of_shard;
                            self.process_batch(lease, batch).await;
                            if end {
                                reader_done = true;
                            }
                            // Reader drained or end of shard: flush what is open now.
                            if reader_done {
                                self.dispatch();
                            }
                        }
                    }
                }
            }
            if reader_done && !self.open.is_empty() {
                self.dispatch();
            }
        }
        drop(reader);
        self.drain(lease).await;
        if self.read_failed && self.stop.is_none() {
            tokio::select! {
                _ = lease.revoked() => {}
                () = tokio::time::sleep(READ_FAILURE_PAUSE) => {}
            }
        }
        self.stop
    }

    /// After the loop: settle what is in flight. On a graceful stop (our own shutdown) the open
    /// batch is sent too, so a restart resumes exactly here; when the shard was taken away it
    /// is dropped (the new owner re-reads it from the checkpoint).
    async fn drain(&mut self, lease: &ShardLease) {
        let graceful = match self.stop {
            None => true,
            Some(Stop::Revoked(reason)) => reason == RevokeReason::Shutdown,
            Some(Stop::Unrecoverable | Stop::Lost) => false,
        };
        if graceful && self.stop.is_none_or(|s| s != Stop::Unrecoverable) {
            self.dispatch();
        } else {
            self.open = OpenBatch::new(EventBatch::new());
        }
        while let Some(settled) = self.inflight.next().await {
            self.settle(settled).await;
        }
        let _ = lease;
    }

    /// An empty event buffer: a reused one, or a new one sized for a full batch (so rendering
    /// never grows it by reallocation).
    fn spare_batch(&mut self) -> EventBatch {
        self.spare.pop().unwrap_or_else(|| {
            let max = self.ctx.sink.batch_config().max_bytes;
            EventBatch::with_capacity(max.saturating_add(BATCH_SLACK).min(MAX_PRESIZE), 1024)
        })
    }

    /// Hands the open batch to the sink.
    fn dispatch(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let fresh = self.spare_batch();
        let open = std::mem::replace(&mut self.open, OpenBatch::new(fresh));
        let OpenBatch {
            events,
            origins,
            sources,
            commit,
            ..
        } = open;
        let fut: BoxFuture<'static, Settled> = if events.is_empty() {
            // Only a position to report (all logs dropped or dead-lettered): keep it in order.
            futures::future::ready(Settled {
                delivery: None,
                origins,
                sources,
                commit,
            })
            .boxed()
        } else {
            let send = self.ctx.sink.send(events);
            async move {
                Settled {
                    delivery: Some(send.await),
                    origins,
                    sources,
                    commit,
                }
            }
            .boxed()
        };
        self.inflight.push_back(fut);
    }

    /// Handles one settled send, in send order.
    async fn settle(&mut self, settled: Settled) {
        let Settled {
            delivery,
            origins,
            sources,
            commit,
        } = settled;
        if self.stop == Some(Stop::Unrecoverable) {
            return;
        }
        if let Some(delivery) = delivery {
            if delivery.cancelled {
                tracing::warn!(
                    shard = self.shard,
                    "delivery interrupted by shutdown; its logs will be re-delivered"
                );
                self.stop = Some(Stop::Unrecoverable);
                return;
            }
            let accepted = delivery.batch.len() - delivery.rejected.len();
            self.ctx
                .metrics
                .events_out
                .get_or_create(&self.labels)
                .inc_by(accepted as u64);
            Totals::add(&self.ctx.metrics.totals.events_out, accepted as u64);
            if !delivery.rejected.is_empty() {
                let ctx = self.ctx.clone();
                let mut entries = Vec::with_capacity(delivery.rejected.len());
                let mut decoded = DecodeCache::default();
                for r in &delivery.rejected {
                    let Some(origin) = origins.get(r.index).copied() else {
                        continue;
                    };
                    let source = &sources[origin.source as usize];
                    entries.push(decoded.entry(
                        &ctx,
                        self.shard,
                        source,
                        origin,
                        Stage::Sink,
                        &r.reason,
                    ));
                }
                if !self.write_dead_letters(entries, "sink").await {
                    return;
                }
            }
            if let Some(first) = sources.first() {
                self.ctx
                    .metrics
                    .batch_latency
                    .observe(first.pulled_at.elapsed().as_secs_f64());
            }
            // Keep the buffer for the next open batch instead of growing a new one.
            if self.spare.len() < MAX_SPARE_BATCHES {
                let mut batch = delivery.batch;
                batch.clear();
                self.spare.push(batch);
            }
        }
        if let Some(cursor) = commit {
            self.committer.delivered(cursor);
        }
    }

    /// Writes dead-letter entries; on failure nothing more may be checkpointed.
    async fn write_dead_letters(
        &mut self,
        entries: Vec<dead_letter::Entry<'_>>,
        stage: &str,
    ) -> bool {
        if entries.is_empty() {
            return true;
        }
        let n = entries.len() as u64;
        match self.ctx.dead_letter.write(&entries).await {
            Ok(()) => {
                let labels = DeadLetterLabels {
                    logstore: self.labels.logstore.clone(),
                    stage: stage.to_owned(),
                };
                self.ctx
                    .metrics
                    .dead_lettered
                    .get_or_create(&labels)
                    .inc_by(n);
                Totals::add(&self.ctx.metrics.totals.dead_lettered, n);
                true
            }
            Err(e) => {
                tracing::error!(
                    shard = self.shard,
                    path = %self.ctx.dead_letter.path().display(),
                    error = %e,
                    "cannot write the dead-letter file; stopping the shard without checkpointing (fix the file or disk, then restart)"
                );
                self.stop = Some(Stop::Unrecoverable);
                false
            }
        }
    }

    /// Formats one pulled batch and renders its events, dispatching sends as they fill.
    async fn process_batch(&mut self, lease: &ShardLease, batch: PulledBatch) {
        let m = &self.ctx.metrics;
        m.logs_in
            .get_or_create(&self.labels)
            .inc_by(batch.log_count as u64);
        m.raw_bytes_in
            .get_or_create(&self.labels)
            .inc_by(batch.raw_size as u64);
        Totals::add(&m.totals.logs_in, batch.log_count as u64);
        Totals::add(&m.totals.raw_bytes_in, batch.raw_size as u64);
        self.ctx
            .lag
            .pulled(&self.labels, &batch, jiff::Timestamp::now().as_second());

        // Hot swap happens here, between batches (issue 7): one batch, one generation.
        let current = self.ctx.plugins.current();
        if !Arc::ptr_eq(&current, &self.generation) {
            tracing::info!(shard = self.shard, from = %self.generation.label(), to = %current.label(), "plugin generation switched");
            self.generation = current;
            self.instance = None;
        }
        let source = Arc::new(Source {
            cursor: batch.cursor,
            groups: batch.groups,
            pulled_at: Instant::now(),
            generation: self.generation.clone(),
        });
        let info = BatchInfo {
            project: self.ctx.project.clone(),
            logstore: self.ctx.logstore.clone(),
            shard: self.shard,
            received: now_timestamp(),
        };
        let batch_config = self.ctx.sink.batch_config();
        let mut dropped: u64 = 0;
        let mut failures: Vec<(u32, u32, Stage, String)> = Vec::new();
        for (gi, view) in source.groups.iter().enumerate() {
            let mut start = 0;
            while start < view.log_count {
                let end = (start + self.ctx.options.max_logs_per_call).min(view.log_count);
                let Some(outcomes) = self.format_range(lease, &info, view, start..end).await else {
                    return; // revoked or stopped while the plugin kept failing
                };
                for (li, outcome) in outcomes {
                    match outcome {
                        LogOutcome::Emits(emits) => {
                            if emits.is_empty() {
                                dropped += 1;
                            }
                            for emit in emits {
                                if let Some(route) =
                                    emit.route.as_deref().filter(|r| *r != self.ctx.sink_name)
                                {
                                    failures.push((gi as u32, li as u32, Stage::Host, format!(
                                        "the plugin routed an event to sink {route:?}, but the only sink is {:?}",
                                        self.ctx.sink_name
                                    )));
                                    continue;
                                }
                                let payload = convert::payload(emit.payload);
                                match self.ctx.sink.render(&payload, &mut self.open.events) {
                                    Ok(()) => {
                                        let s = self.open.source_index(&source);
                                        self.open.origins.push(Origin {
                                            source: s,
                                            group: gi as u32,
                                            log: li as u32,
                                        });
                                        self.open.opened.get_or_insert_with(Instant::now);
                                    }
                                    Err(e) => failures.push((
                                        gi as u32,
                                        li as u32,
                                        Stage::Host,
                                        e.to_string(),
                                    )),
                                }
                            }
                        }
                        LogOutcome::Failed(err) => failures.push((
                            gi as u32,
                            li as u32,
                            Stage::Plugin,
                            format!("{:?}: {}", err.kind, err.message),
                        )),
                        LogOutcome::Trapped(message) => {
                            failures.push((gi as u32, li as u32, Stage::PluginTrap, message));
                        }
                    }
                }
                if batch_config.is_full(&self.open.events) {
                    self.dispatch();
                    self.wait_for_room().await;
                    if self.stop.is_some() {
                        return;
                    }
                }
                start = end;
            }
        }
        if dropped > 0 {
            self.ctx
                .metrics
                .logs_dropped
                .get_or_create(&self.labels)
                .inc_by(dropped);
            Totals::add(&self.ctx.metrics.totals.dropped, dropped);
        }
        if !failures.is_empty() {
            let ctx = self.ctx.clone();
            let mut decoded = DecodeCache::default();
            let mut by_stage: std::collections::BTreeMap<
                &'static str,
                Vec<dead_letter::Entry<'_>>,
            > = std::collections::BTreeMap::new();
            for (gi, li, stage, reason) in &failures {
                let key = match stage {
                    Stage::Plugin => "plugin",
                    Stage::PluginTrap => "plugin_trap",
                    Stage::Sink => "sink",
                    Stage::Host => "host",
                };
                let origin = Origin {
                    source: 0,
                    group: *gi,
                    log: *li,
                };
                by_stage
                    .entry(key)
                    .or_default()
                    .push(decoded.entry(&ctx, self.shard, &source, origin, *stage, reason));
            }
            for (stage, entries) in by_stage {
                if !self.write_dead_letters(entries, stage).await {
                    return;
                }
            }
        }
        // Every event of this batch is now rendered: whichever send goes next carries its
        // position (the dead letters above are already on disk).
        self.open.commit = Some(batch.next_cursor);
        // Lingering applies to a position-only batch too (every log dropped or dead-lettered):
        // its checkpoint must not wait for the next event.
        self.open.opened.get_or_insert_with(Instant::now);
        if batch_config.is_full(&self.open.events) {
            self.dispatch();
        }
    }

    /// Waits until a send slot is free, settling deliveries in order.
    async fn wait_for_room(&mut self) {
        while self.inflight.len() >= self.ctx.options.max_in_flight {
            let Some(settled) = self.inflight.next().await else {
                break;
            };
            self.settle(settled).await;
            if self.stop.is_some() {
                return;
            }
        }
    }

    /// Runs the plugin over `range` of one LogGroup. On a trap the instance is replaced and
    /// the range bisected on fresh instances until the failing log(s) are isolated; those come
    /// back as [`LogOutcome::Trapped`] and everything else is formatted normally. A batch-level
    /// failure (the plugin's `err`, a broken contract, an instance that cannot start) is
    /// retried with backoff (`pause` policy: nothing is lost, the shard waits). `None` when the
    /// lease was revoked while waiting.
    async fn format_range(
        &mut self,
        lease: &ShardLease,
        info: &BatchInfo,
        view: &LogGroupView,
        range: Range<usize>,
    ) -> Option<Vec<(usize, LogOutcome)>> {
        loop {
            match self.try_range(info, view, range.clone(), true).await {
                Ok(outcomes) => {
                    self.plugin_failures = 0;
                    return Some(outcomes);
                }
                Err(e) => {
                    self.plugin_failures += 1;
                    let wait = PLUGIN_RETRY_WAIT
                        .saturating_mul(1 << self.plugin_failures.min(8))
                        .min(MAX_PLUGIN_RETRY_WAIT);
                    // A trap here means the crash-loop breaker paused the shard (single-log
                    // traps are dead-lettered by the bisection); anything else failed the
                    // whole batch (the plugin's `err`, a broken contract, no instance).
                    let what = if e.is_trap() {
                        "plugin crash-looping, shard paused; retrying the batch (nothing is skipped)"
                    } else {
                        "plugin failed the whole batch; retrying (nothing is skipped)"
                    };
                    tracing::error!(
                        shard = self.shard,
                        plugin = %self.generation.label(),
                        error = %e,
                        retry_in = ?wait,
                        "{what}"
                    );
                    tokio::select! {
                        _ = lease.revoked() => {
                            self.stop = Some(Stop::Revoked(lease.revoke_reason().unwrap_or(RevokeReason::Shutdown)));
                            return None;
                        }
                        () = tokio::time::sleep(wait) => {}
                    }
                    // A new generation may have been published meanwhile (the fix).
                    let current = self.ctx.plugins.current();
                    if !Arc::ptr_eq(&current, &self.generation) {
                        self.generation = current;
                        self.instance = None;
                    }
                }
            }
        }
    }

    /// One attempt over `range`, with bisection on traps. `top` is false for the bisection's
    /// own calls: the crash-loop breaker counts a failed batch once and each isolated poison
    /// log once, not every step of isolating it (a hanging log costs ~log2(batch) timed-out
    /// calls, which would otherwise trip the breaker after two or three bad logs).
    fn try_range<'a>(
        &'a mut self,
        info: &'a BatchInfo,
        view: &'a LogGroupView,
        range: Range<usize>,
        top: bool,
    ) -> BoxFuture<'a, Result<Vec<(usize, LogOutcome)>, PluginError>> {
        async move {
            let bytes: Bytes = view
                .slice(range.clone())
                .map_err(|e| PluginError::Guest { plugin: "host".into(), message: e.to_string() })?;
            if self.instance.is_none() {
                let g = &self.generation;
                self.instance = Some(g.plugin.instantiate(&g.config_json).await?);
            }
            let instance = self.instance.as_mut().expect("just set");
            let started = Instant::now();
            let result = instance.process(info, &bytes, range.len()).await;
            self.ctx
                .metrics
                .plugin_seconds
                .get_or_create(&self.labels)
                .inc_by(started.elapsed().as_secs_f64());
            if result.is_ok() {
                let limit = self.generation.plugin.limits().max_memory_bytes as f64;
                if instance.calls() >= self.recycle_after
                    || instance.memory_high_water() as f64 > limit * RECYCLE_MEMORY_SHARE
                {
                    tracing::debug!(shard = self.shard, calls = instance.calls(), memory = instance.memory_high_water(), "recycling the plugin instance");
                    self.instance = None;
                    self.recycle_after = recycle_after();
                }
            }
            match result {
                Ok(results) => Ok(range
                    .zip(results)
                    .map(|(i, r)| (i, r.map_or_else(LogOutcome::Failed, LogOutcome::Emits)))
                    .collect()),
                Err(e) if e.is_trap() => {
                    self.instance = None;
                    let kind = match e.trap_kind() {
                        Some(TrapKind::Timeout) => "timeout",
                        Some(TrapKind::Memory) => "memory",
                        Some(TrapKind::Panic) => "panic",
                        _ => "other",
                    };
                    self.ctx
                        .metrics
                        .plugin_failures
                        .get_or_create(&PluginFailureLabels { kind: kind.to_owned() })
                        .inc();
                    let generation = self.generation.clone();
                    if (top || range.len() == 1) && generation.breaker.record() {
                        return self.crash_loop(info, view, range, e).await;
                    }
                    if range.len() == 1 {
                        tracing::warn!(shard = self.shard, plugin = %self.generation.label(), log = range.start, error = %e,
                            "plugin trapped on one log; it goes to the dead-letter file");
                        return Ok(vec![(range.start, LogOutcome::Trapped(format!(
                            "plugin {} trapped: {e}", self.generation.plugin.hash()
                        )))]);
                    }
                    tracing::warn!(shard = self.shard, plugin = %self.generation.label(), logs = range.len(), error = %e,
                        "plugin trapped; bisecting the batch to isolate the failing log");
                    let mid = range.start + range.len() / 2;
                    let mut left = self.try_range(info, view, range.start..mid, false).await?;
                    let right = self.try_range(info, view, mid..range.end, false).await?;
                    left.extend(right);
                    Ok(left)
                }
                Err(e) => {
                    let kind = if matches!(e, PluginError::Guest { .. }) { "batch_error" } else { "contract" };
                    self.ctx
                        .metrics
                        .plugin_failures
                        .get_or_create(&PluginFailureLabels { kind: kind.to_owned() })
                        .inc();
                    self.instance = None;
                    Err(e)
                }
            }
        }
        .boxed()
    }
}

impl ShardWorker {
    /// The current generation's breaker tripped: roll back if it is recent and has a
    /// predecessor (or another shard just did), else apply the failure policy.
    async fn crash_loop(
        &mut self,
        info: &BatchInfo,
        view: &LogGroupView,
        range: Range<usize>,
        error: PluginError,
    ) -> Result<Vec<(usize, LogOutcome)>, PluginError> {
        let failing = self.generation.clone();
        if let Some(restored) = self.ctx.plugins.rollback(&failing) {
            tracing::error!(
                from = %failing.label(),
                to = %restored.label(),
                error = %error,
                "plugin keeps trapping; rolled back to the previous generation"
            );
        }
        let current = self.ctx.plugins.current();
        if !Arc::ptr_eq(&current, &failing) {
            self.generation = current;
            return self.try_range(info, view, range, true).await;
        }
        match self.ctx.failure_policy {
            FailurePolicy::Pause => {
                tracing::error!(
                    shard = self.shard,
                    plugin = %failing.label(),
                    error = %error,
                    "plugin keeps trapping (crash-loop breaker tripped); pausing this shard until it works again"
                );
                Err(error)
            }
            FailurePolicy::Passthrough => {
                tracing::warn!(
                    shard = self.shard,
                    plugin = %failing.label(),
                    logs = range.len(),
                    "plugin keeps trapping; shipping these logs in the built-in JSON format (policy passthrough)"
                );
                self.ctx
                    .metrics
                    .passthrough_logs
                    .get_or_create(&self.labels)
                    .inc_by(range.len() as u64);
                Ok(passthrough(view, range, self.ctx.passthrough))
            }
        }
    }
}

/// The built-in format used by the `passthrough` policy: each log flattened as the SDK does,
/// as JSON, with its time.
fn passthrough(
    view: &LogGroupView,
    range: Range<usize>,
    kind: PassthroughKind,
) -> Vec<(usize, LogOutcome)> {
    use shipper_runtime as rt;
    let group = match view.decode() {
        Ok(g) => g,
        Err(e) => {
            return range
                .map(|i| {
                    (
                        i,
                        LogOutcome::Trapped(format!("cannot decode the log group: {e}")),
                    )
                })
                .collect();
        }
    };
    range
        .map(|i| {
            let Some(log) = group.logs.get(i) else {
                return (i, LogOutcome::Trapped("log index out of range".into()));
            };
            let json = dead_letter::flatten(&group, log).to_string();
            let time = Some(rt::Timestamp {
                seconds: i64::from(log.time),
                nanos: log.time_ns.unwrap_or(0),
            });
            let payload = match kind {
                PassthroughKind::Hec => rt::Payload::Hec(rt::HecEvent {
                    body: rt::HecBody::Json(json),
                    time,
                    host: None,
                    source: None,
                    sourcetype: None,
                    index: None,
                    fields: Vec::new(),
                }),
                PassthroughKind::Syslog => rt::Payload::Syslog(rt::SyslogMessage {
                    facility: 1,
                    severity: rt::Severity::Informational,
                    timestamp: time,
                    hostname: None,
                    app_name: Some("shipper".into()),
                    proc_id: None,
                    msg_id: None,
                    structured_data: Vec::new(),
                    msg: json,
                }),
            };
            (
                i,
                LogOutcome::Emits(vec![rt::Emit {
                    route: None,
                    payload,
                }]),
            )
        })
        .collect()
}

/// Decodes each LogGroup at most once while building dead-letter entries.
#[derive(Default)]
struct DecodeCache {
    last: Option<(usize, u32, shipper_sls::proto::LogGroup)>,
}

impl DecodeCache {
    fn entry<'a>(
        &mut self,
        ctx: &'a ShardContext,
        shard: u32,
        source: &'a Arc<Source>,
        origin: Origin,
        stage: Stage,
        reason: &'a str,
    ) -> dead_letter::Entry<'a> {
        let key = Arc::as_ptr(source) as usize;
        let fresh = !matches!(&self.last, Some((k, g, _)) if *k == key && *g == origin.group);
        if fresh {
            let group = source.groups[origin.group as usize]
                .decode()
                .unwrap_or_default();
            self.last = Some((key, origin.group, group));
        }
        let (_, _, group) = self.last.as_ref().expect("just set");
        let log = group
            .logs
            .get(origin.log as usize)
            .map_or(serde_json::Value::Null, |l| dead_letter::flatten(group, l));
        dead_letter::Entry {
            time: dead_letter::now_rfc3339(),
            stage,
            reason,
            project: &ctx.project,
            logstore: &ctx.logstore,
            shard,
            cursor: source.cursor.advance(i64::from(origin.group)).encode(),
            log_index: origin.log as usize,
            plugin: Some(source.generation.plugin.hash()),
            log,
        }
    }
}

fn now_timestamp() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
