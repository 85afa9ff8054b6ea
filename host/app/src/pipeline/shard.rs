//! The shard loop: pull → format → send → commit, for one shard until it is revoked or read
//! to its end. The delivery rules it keeps are listed in the [module docs](super).
//!
//! It reads through a [`ShardIo`] (a lease's reader, revocation signal and checkpoints in
//! production; in-memory fakes in the unit tests), formats with the [`FormatStage`], renders
//! into the sink's [`EventBatch`]es and keeps sends in flight in [`OrderedAcks`].

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use shipper_runtime::{BatchInfo, Timestamp};
use shipper_sinks::{Delivery, EventBatch};
use shipper_sls::SlsError;
use shipper_sls::consumer::{PulledBatch, ReadEvent, Revocation, RevokeReason};
use shipper_sls::cursor::Cursor;
use tokio::time::Instant;

use super::acks::{Acked, OrderedAcks};
use super::batch::{BufferPool, OpenBatch, Origin, Source};
use super::format::{FormatStage, LogOutcome};
use super::{ShardContext, convert_payload};
use crate::checkpoint::{CheckpointStore, CommitEnd, Committer};
use crate::dead_letter::{self, Stage};
use crate::metrics::ShardLabels;

/// How long a shard that cannot be read is held before its lease is released (the server
/// would otherwise hand it straight back, in a tight loop).
const READ_FAILURE_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the shard loop reads from and reports to.
pub struct ShardIo {
    /// The shard id.
    pub shard: u32,
    /// Where reading starts (a checkpoint or the start position): nothing before it is ours.
    pub start: Cursor,
    /// Pulled batches and catch-up notices, in read order.
    pub events: BoxStream<'static, Result<ReadEvent, SlsError>>,
    /// Revoked when the shard is taken away or the process shuts down.
    pub revocation: Arc<Revocation>,
    /// Where checkpoints go.
    pub checkpoints: Arc<dyn CheckpointStore>,
}

/// Why the loop stopped before the reader ran dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The lease was revoked.
    Revoked(RevokeReason),
    /// A delivery was cancelled (shutdown with the sink down) or the dead-letter file
    /// failed: nothing more may be checkpointed.
    Unrecoverable,
    /// The server refused a checkpoint: the shard belongs to someone else.
    Lost,
}

/// How a shard ended, for the "shard released" line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardEnd {
    /// Read to its end, or revoked with permission to commit: the last checkpoint is in.
    Committed,
    /// Taken away (or lost): not committed, the next owner resumes from the last checkpoint.
    NotOurs,
    /// The last position could not be committed; it will be delivered again.
    Incomplete,
}

impl ShardEnd {
    /// For the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardEnd::Committed => "committed",
            ShardEnd::NotOurs => "not committed (shard owned by another consumer)",
            ShardEnd::Incomplete => "last checkpoint not committed (will be re-delivered)",
        }
    }
}

/// What a send carries back when it settles: where its events came from.
struct SendEntry {
    origins: Vec<Origin>,
    sources: Vec<Arc<Source>>,
}

/// Runs the shard until it is revoked or read to its end, then commits the last delivered
/// position (when allowed).
pub async fn run(ctx: Arc<ShardContext>, io: ShardIo) -> ShardEnd {
    let labels = ctx.labels(io.shard);
    let committer = Committer::spawn(
        io.checkpoints.clone(),
        io.shard,
        labels.clone(),
        ctx.metrics.clone(),
        ctx.options.min_commit_interval,
    );
    let mut worker = ShardWorker {
        format: FormatStage::new(ctx.format.clone(), labels.clone()),
        acks: OrderedAcks::new(io.start),
        open: OpenBatch::new(EventBatch::new()),
        pool: BufferPool::default(),
        shard: io.shard,
        revocation: io.revocation.clone(),
        labels,
        committer,
        stop: None,
        ctx,
    };
    let stop = worker.run(io.events).await;
    let committer = worker.committer;
    match stop {
        Some(Stop::Revoked(reason)) if !reason.may_commit() => {
            committer.abandon();
            ShardEnd::NotOurs
        }
        Some(Stop::Lost) => {
            committer.abandon();
            ShardEnd::NotOurs
        }
        _ => match committer.finish().await {
            CommitEnd::Complete => ShardEnd::Committed,
            CommitEnd::ShardLost => ShardEnd::NotOurs,
            CommitEnd::Incomplete => ShardEnd::Incomplete,
        },
    }
}

struct ShardWorker {
    ctx: Arc<ShardContext>,
    shard: u32,
    labels: ShardLabels,
    revocation: Arc<Revocation>,
    format: FormatStage,
    open: OpenBatch,
    acks: OrderedAcks<SendEntry, Option<Delivery>, Cursor>,
    pool: BufferPool,
    committer: Committer,
    stop: Option<Stop>,
}

impl ShardWorker {
    /// The main loop. Returns why it stopped (`None`: the shard was read to its end).
    async fn run(
        &mut self,
        mut events: BoxStream<'static, Result<ReadEvent, SlsError>>,
    ) -> Option<Stop> {
        let mut reader_done = false;
        let mut read_failed = false;
        let linger = self.ctx.sink.batch_config().linger;
        let revocation = self.revocation.clone();
        while self.stop.is_none() {
            if self.committer.is_lost() {
                self.stop = Some(Stop::Lost);
                break;
            }
            if reader_done && self.open.is_empty() && self.acks.is_empty() {
                break;
            }
            let linger_at = self.open.opened.map(|t| t + linger);
            let room = self.acks.len() < self.ctx.options.max_in_flight;
            tokio::select! {
                biased;
                reason = revocation.revoked() => {
                    self.stop = Some(Stop::Revoked(reason));
                }
                Some(acked) = self.acks.next(), if !self.acks.is_empty() => {
                    self.settle(acked).await;
                }
                () = sleep_until(linger_at), if linger_at.is_some() => {
                    self.dispatch();
                }
                next = events.next(), if !reader_done && room => match next {
                    None => reader_done = true,
                    Some(Err(e)) => {
                        // The reader retries retryable errors itself; this one is fatal for
                        // the shard (e.g. the logstore was deleted). Let the lease go, but
                        // not at once: the server would hand it straight back to us.
                        tracing::error!(shard = self.shard, error = %e, "cannot read the shard; releasing it after a pause");
                        reader_done = true;
                        read_failed = true;
                    }
                    Some(Ok(ReadEvent::CaughtUp { cursor })) => {
                        // Nothing behind: the lag gauges say 0 rather than the age of the
                        // last batch, however long the shard stays idle.
                        self.ctx.lag.caught_up(&self.labels, cursor);
                    }
                    Some(Ok(ReadEvent::Batch(batch))) => {
                        reader_done |= batch.end_of_shard;
                        self.process_batch(batch).await;
                    }
                },
            }
            if reader_done && !self.open.is_empty() {
                self.dispatch();
            }
        }
        drop(events);
        self.drain().await;
        if read_failed && self.stop.is_none() {
            tokio::select! {
                _ = revocation.revoked() => {}
                () = tokio::time::sleep(READ_FAILURE_PAUSE) => {}
            }
        }
        self.stop
    }

    /// After the loop: settle what is in flight. On a graceful stop (our own shutdown, or
    /// the end of the shard) the open batch is sent too, so a restart resumes exactly
    /// here; when the shard was taken away it is dropped (the new owner re-reads it from the
    /// checkpoint).
    async fn drain(&mut self) {
        let graceful = match self.stop {
            None => true,
            Some(Stop::Revoked(reason)) => reason == RevokeReason::Shutdown,
            Some(Stop::Unrecoverable | Stop::Lost) => false,
        };
        if graceful {
            self.dispatch();
        } else {
            self.open = OpenBatch::new(EventBatch::new());
        }
        while let Some(acked) = self.acks.next().await {
            self.settle(acked).await;
        }
    }

    /// Hands the open batch to the sink.
    fn dispatch(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let fresh = self.pool.take(self.ctx.sink.batch_config().max_bytes);
        let open = std::mem::replace(&mut self.open, OpenBatch::new(fresh));
        let entry = SendEntry {
            origins: open.origins,
            sources: open.sources,
        };
        if open.events.is_empty() {
            // Only a position to report (every log dropped or dead-lettered): keep it in
            // order behind the sends before it.
            self.acks.push(entry, open.commit, std::future::ready(None));
        } else {
            let send = self.ctx.sink.send(open.events);
            self.acks
                .push(entry, open.commit, async move { Some(send.await) });
        }
    }

    /// Handles one settled send, in send order: count, dead-letter what the receiver
    /// refused, and only then report the positions it completes.
    async fn settle(&mut self, acked: Acked<SendEntry, Option<Delivery>, Cursor>) {
        if self.stop == Some(Stop::Unrecoverable) {
            return;
        }
        let Acked { entry, ack, range } = acked;
        if let Some(delivery) = ack {
            if delivery.cancelled {
                tracing::warn!(
                    shard = self.shard,
                    "delivery interrupted by shutdown; its logs will be re-delivered"
                );
                self.stop = Some(Stop::Unrecoverable);
                return;
            }
            let accepted = delivery.batch.len() - delivery.rejected.len();
            self.ctx.metrics.delivered(&self.labels, accepted as u64);
            if !delivery.rejected.is_empty() {
                let failures = delivery
                    .rejected
                    .iter()
                    .filter_map(|r| {
                        let origin = entry.origins.get(r.index)?;
                        Some((*origin, Stage::Sink, r.reason.clone()))
                    })
                    .collect();
                if !self.write_dead_letters(&entry.sources, failures).await {
                    return;
                }
            }
            if let Some(first) = entry.sources.first() {
                self.ctx.metrics.batch_latency(first.pulled_at.elapsed());
            }
            self.pool.give_back(delivery.batch);
        }
        if let Some(range) = range {
            self.committer.acknowledged(range);
        }
    }

    /// Writes dead-letter entries for `failures` (logs of `sources`) and counts them by
    /// stage; on failure nothing more may be checkpointed.
    async fn write_dead_letters(
        &mut self,
        sources: &[Arc<Source>],
        failures: Vec<(Origin, Stage, String)>,
    ) -> bool {
        if failures.is_empty() {
            return true;
        }
        let mut decoded = dead_letter::DecodeCache::default();
        let mut by_stage: BTreeMap<Stage, u64> = BTreeMap::new();
        let entries: Vec<_> = failures
            .iter()
            .map(|(origin, stage, reason)| {
                *by_stage.entry(*stage).or_default() += 1;
                let source = &sources[origin.source as usize];
                decoded.entry(
                    &self.ctx.target,
                    self.shard,
                    source,
                    *origin,
                    *stage,
                    reason,
                )
            })
            .collect();
        match self.ctx.dead_letter.write(&entries).await {
            Ok(()) => {
                for (stage, n) in by_stage {
                    self.ctx
                        .metrics
                        .dead_lettered(&self.labels.logstore, stage, n);
                }
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

    /// Waits until a send slot is free, settling deliveries in order.
    async fn wait_for_room(&mut self) {
        while self.acks.len() >= self.ctx.options.max_in_flight && self.stop.is_none() {
            let Some(acked) = self.acks.next().await else {
                break;
            };
            self.settle(acked).await;
        }
    }

    /// Formats one pulled batch and renders its events, dispatching sends as they fill.
    async fn process_batch(&mut self, batch: PulledBatch) {
        self.ctx
            .metrics
            .pulled(&self.labels, batch.log_count as u64, batch.raw_size as u64);
        self.ctx
            .lag
            .pulled(&self.labels, &batch, jiff::Timestamp::now().as_second());
        // Hot swap happens here, between batches: one batch, one generation.
        if let Some(previous) = self.format.follow_swap() {
            tracing::info!(shard = self.shard, from = %previous.label(), to = %self.format.generation().label(), "plugin generation switched");
        }
        let end_of_shard = batch.end_of_shard;
        let source = Arc::new(Source {
            cursor: batch.cursor,
            groups: batch.groups,
            pulled_at: Instant::now(),
            generation: self.format.generation().clone(),
        });
        let info = BatchInfo {
            project: self.ctx.target.project.clone(),
            logstore: self.ctx.target.logstore.clone(),
            shard: self.shard,
            received: now_timestamp(),
        };
        let batch_config = self.ctx.sink.batch_config();
        let mut dropped: u64 = 0;
        let mut failures: Vec<(Origin, Stage, String)> = Vec::new();
        for (gi, view) in source.groups.iter().enumerate() {
            let mut start = 0;
            while start < view.log_count {
                let end = (start + self.ctx.options.max_logs_per_call).min(view.log_count);
                let outcomes = match self
                    .format
                    .format(&self.revocation, &info, view, start..end)
                    .await
                {
                    Ok(outcomes) => outcomes,
                    Err(reason) => {
                        // Revoked while the plugin kept failing.
                        self.stop = Some(Stop::Revoked(reason));
                        return;
                    }
                };
                for (li, outcome) in outcomes {
                    let origin = Origin {
                        source: 0,
                        group: gi as u32,
                        log: li as u32,
                    };
                    match outcome {
                        LogOutcome::Emits(emits) => {
                            dropped += u64::from(emits.is_empty());
                            self.render(&source, origin, emits, &mut failures);
                        }
                        LogOutcome::Failed(err) => failures.push((
                            origin,
                            Stage::Plugin,
                            format!("{:?}: {}", err.kind, err.message),
                        )),
                        LogOutcome::Trapped { message, .. } => {
                            failures.push((origin, Stage::PluginTrap, message));
                        }
                        LogOutcome::Host(message) => {
                            failures.push((origin, Stage::Host, message));
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
            self.ctx.metrics.dropped(&self.labels, dropped);
        }
        // Dead letters are on disk before any send that carries this batch's position.
        if !self
            .write_dead_letters(std::slice::from_ref(&source), failures)
            .await
        {
            return;
        }
        // Every event of this batch is now rendered: whichever send goes next carries its
        // position.
        self.open.commit = Some(batch.next_cursor);
        // Lingering applies to a position-only batch too (every log dropped or
        // dead-lettered): its checkpoint must not wait for the next event.
        self.open.opened.get_or_insert_with(Instant::now);
        if end_of_shard || batch_config.is_full(&self.open.events) {
            self.dispatch();
        }
    }

    /// Renders a log's emits into the open batch; what cannot be sent becomes a failure.
    fn render(
        &mut self,
        source: &Arc<Source>,
        origin: Origin,
        emits: Vec<shipper_runtime::Emit>,
        failures: &mut Vec<(Origin, Stage, String)>,
    ) {
        for emit in emits {
            if let Some(route) = emit.route.as_deref().filter(|r| *r != self.ctx.sink_name) {
                failures.push((
                    origin,
                    Stage::Host,
                    format!(
                        "the plugin routed an event to sink {route:?}, but the only sink is {:?}",
                        self.ctx.sink_name
                    ),
                ));
                continue;
            }
            let payload = convert_payload(emit.payload);
            match self.ctx.sink.render(&payload, &mut self.open.events) {
                Ok(()) => self.open.push_origin(source, origin.group, origin.log),
                Err(e) => failures.push((origin, Stage::Host, e.to_string())),
            }
        }
    }
}

fn now_timestamp() -> Timestamp {
    let now = jiff::Timestamp::now();
    Timestamp {
        seconds: now.as_second(),
        nanos: now.subsec_nanosecond().unsigned_abs(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
