//! The shard loop: pull → format → send → commit, for one shard until it is revoked or read
//! to its end. The delivery rules it keeps are listed in the [module docs](super).
//!
//! It reads through a [`ShardIo`] (a lease's reader, revocation signal and checkpoints in
//! production; in-memory fakes in the unit tests), formats with one [`FormatStage`] per
//! plugin, renders into each sink's [`EventBatch`]es and keeps each sink's sends in flight
//! in its own [`OrderedAcks`] (a `Lane` per sink). The checkpoint follows the slowest
//! sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use shipper_net::Backoff;
use shipper_runtime::{BatchInfo, Timestamp};
use shipper_sinks::{BatchConfig, Delivery, EventBatch};
use shipper_sls::SlsError;
use shipper_sls::consumer::{PulledBatch, ReadEvent, Revocation, RevokeReason};
use shipper_sls::cursor::Cursor;
use tokio::time::Instant;

use super::acks::{Acked, OrderedAcks};
use super::batch::{BufferPool, OpenBatch, Origin, Source};
use super::event_id::{EventIdSettings, GroupIds};
use super::format::{FormatStage, LogOutcome};
use super::{ShardContext, convert_payload};
use crate::checkpoint::{CheckpointStore, CommitEnd, Committer};
use crate::dead_letter::{self, Cause, Stage};
use crate::metrics::ShardLabels;

/// First and longest wait between two tries of a dead-letter write that failed (a full
/// disk): short enough that the shard goes on soon after space is freed.
const DEAD_LETTER_RETRY_WAIT: Duration = Duration::from_millis(200);
const MAX_DEAD_LETTER_RETRY_WAIT: Duration = Duration::from_secs(5);
/// How long a shard that cannot be read is held before its lease is released (the server
/// would otherwise hand it straight back, in a tight loop).
const READ_FAILURE_PAUSE: Duration = Duration::from_secs(30);
/// A sink that settles none of a shard's sends for this long while the shard waits for
/// room on it is reported (one WARN per sink, `shipper_sink_blocked_shards`): long enough
/// that a busy but working SIEM is not named, short enough to show an outage at once.
pub const STALL_WARN_AFTER: Duration = Duration::from_secs(10);

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
    /// A delivery was cancelled (shutdown with a sink down) or a dead-letter file failed:
    /// nothing more may be checkpointed.
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

/// One sink's side of the shard: its open batch, its sends in flight, its buffers and how
/// far it has acknowledged.
struct Lane {
    open: OpenBatch,
    acks: OrderedAcks<SendEntry, Option<Delivery>, Cursor>,
    pool: BufferPool,
    batch: BatchConfig,
    /// Everything before this position is settled on this sink.
    acked_to: Cursor,
    /// Since when every send slot of this sink has been taken (the shard cannot pull).
    full_since: Option<Instant>,
    /// When a send of this sink last settled.
    last_settle: Instant,
    /// Reported as holding the shard (see [`STALL_WARN_AFTER`]).
    stalled: bool,
}

/// Where a failure's dead-letter entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The plugin of format stage `n` (or the host before it): every sink of that plugin.
    Format(usize),
    /// Sink `n` alone (it refused or could not render the event).
    Sink(usize),
}

/// A log (or one of its events) that goes to the dead-letter file(s).
struct Failure {
    blame: Blame,
    origin: Origin,
    stage: Stage,
    reason: String,
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
    let now = Instant::now();
    let lanes = ctx
        .sinks
        .iter()
        .map(|s| Lane {
            open: OpenBatch::new(EventBatch::new()),
            acks: OrderedAcks::new(io.start),
            pool: BufferPool::default(),
            batch: s.sink.batch_config(),
            acked_to: io.start,
            full_since: None,
            last_settle: now,
            stalled: false,
        })
        .collect();
    let format_sinks = (0..ctx.formats.len())
        .map(|f| {
            (0..ctx.sinks.len())
                .filter(|&i| ctx.sinks[i].format == f)
                .collect()
        })
        .collect();
    let mut worker = ShardWorker {
        formats: ctx
            .formats
            .iter()
            .map(|f| FormatStage::new(f.clone(), labels.clone()))
            .collect(),
        format_sinks,
        lanes,
        reported: io.start,
        shard: io.shard,
        revocation: io.revocation.clone(),
        labels,
        committer,
        stop: None,
        ctx,
    };
    let stop = worker.run(io.events).await;
    worker.unstall_all();
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
    /// One per distinct plugin (`ctx.formats`).
    formats: Vec<FormatStage>,
    /// The sinks (lane indices) each format stage formats for.
    format_sinks: Vec<Vec<usize>>,
    /// One per sink (`ctx.sinks`).
    lanes: Vec<Lane>,
    /// The position last reported to the committer: the smallest `acked_to` of the lanes.
    reported: Cursor,
    committer: Committer,
    stop: Option<Stop>,
}

/// The next settled send of any lane (lane index and what settled); `None` when no lane
/// has a send in flight.
async fn next_settled(
    lanes: &mut [Lane],
) -> Option<(usize, Acked<SendEntry, Option<Delivery>, Cursor>)> {
    std::future::poll_fn(|cx| {
        let mut any = false;
        for (i, lane) in lanes.iter_mut().enumerate() {
            if lane.acks.is_empty() {
                continue;
            }
            any = true;
            if let Poll::Ready(Some(acked)) = lane.acks.poll_next(cx) {
                return Poll::Ready(Some((i, acked)));
            }
        }
        if any {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    })
    .await
}

impl ShardWorker {
    /// The main loop. Returns why it stopped (`None`: the shard was read to its end).
    async fn run(
        &mut self,
        mut events: BoxStream<'static, Result<ReadEvent, SlsError>>,
    ) -> Option<Stop> {
        let mut reader_done = false;
        let mut read_failed = false;
        let revocation = self.revocation.clone();
        while self.stop.is_none() {
            if self.committer.is_lost() {
                self.stop = Some(Stop::Lost);
                break;
            }
            if reader_done
                && self
                    .lanes
                    .iter()
                    .all(|l| l.open.is_empty() && l.acks.is_empty())
            {
                break;
            }
            let linger_at = self
                .lanes
                .iter()
                .filter_map(|l| l.open.opened.map(|t| t + l.batch.linger))
                .min();
            let room = self.note_room();
            let stall_at = self.stall_at();
            let in_flight = self.lanes.iter().any(|l| !l.acks.is_empty());
            tokio::select! {
                biased;
                reason = revocation.revoked() => {
                    self.stop = Some(Stop::Revoked(reason));
                }
                Some((i, acked)) = next_settled(&mut self.lanes), if in_flight => {
                    self.settle(i, acked).await;
                }
                () = sleep_until(linger_at), if linger_at.is_some() => {
                    self.dispatch_lingering();
                }
                () = sleep_until(stall_at), if stall_at.is_some() => {
                    self.report_stalls();
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
            if reader_done {
                self.dispatch_all();
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

    /// After the loop: settle what is in flight. When the release may still commit (our own
    /// shutdown, the end of the shard, or a rebalance the server announced: it waits for
    /// our release) the open batches are sent too and everything is committed, so the next
    /// owner or run resumes exactly here. When the shard was taken away (lost, or a
    /// delivery failed for good) the open batches and the sends in flight are dropped: the
    /// new owner re-reads them from the checkpoint.
    async fn drain(&mut self) {
        let may_commit = match self.stop {
            None => true,
            Some(Stop::Revoked(reason)) => reason.may_commit(),
            Some(Stop::Unrecoverable | Stop::Lost) => false,
        };
        if may_commit {
            self.dispatch_all();
        } else {
            for lane in &mut self.lanes {
                lane.open = OpenBatch::new(EventBatch::new());
                // Nothing more is ours to commit: the sends in flight are dropped too, with
                // their retries (a zombie that wakes up, a partition that heals). What was
                // not written yet is left to the next owner; waiting for them would
                // deliver it twice.
                if !lane.acks.is_empty() {
                    tracing::debug!(
                        shard = self.shard,
                        sends = lane.acks.len(),
                        "shard not ours any more; abandoning its sends in flight"
                    );
                }
                lane.acks = OrderedAcks::new(lane.acked_to);
            }
        }
        while let Some((i, acked)) = next_settled(&mut self.lanes).await {
            self.settle(i, acked).await;
        }
    }

    /// True when every sink has a free send slot (the shard may pull). Keeps each lane's
    /// "full since" and clears a stall report once its sink has room again.
    fn note_room(&mut self) -> bool {
        let now = Instant::now();
        let max = self.ctx.options.max_in_flight;
        let mut room = true;
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if lane.acks.len() >= max {
                room = false;
                lane.full_since.get_or_insert(now);
            } else if lane.full_since.take().is_some() && lane.stalled {
                lane.stalled = false;
                self.ctx.metrics.sink_unblocked(&self.ctx.sinks[i].name);
            }
        }
        room
    }

    /// When the next lane that holds the shard passes [`STALL_WARN_AFTER`] without a
    /// settled send.
    fn stall_at(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter(|l| !l.stalled)
            .filter_map(|l| Some(l.full_since?.max(l.last_settle) + STALL_WARN_AFTER))
            .min()
    }

    /// Reports the sinks that hold the shard without settling anything. A sink held back by
    /// its own rate cap is not stalled: throttling is by design and has its own metric.
    fn report_stalls(&mut self) {
        let now = Instant::now();
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let Some(full) = lane.full_since else {
                continue;
            };
            let sink = &self.ctx.sinks[i];
            let throttled = sink.limiter.as_ref().is_some_and(|l| l.is_throttling());
            if !lane.stalled && !throttled && full.max(lane.last_settle) + STALL_WARN_AFTER <= now {
                lane.stalled = true;
                self.ctx.metrics.sink_blocked(&sink.name);
            }
        }
    }

    /// Clears this shard's stall reports (the shard is ending).
    fn unstall_all(&mut self) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if std::mem::take(&mut lane.stalled) {
                self.ctx.metrics.sink_unblocked(&self.ctx.sinks[i].name);
            }
        }
    }

    fn dispatch_all(&mut self) {
        for i in 0..self.lanes.len() {
            self.dispatch(i);
        }
    }

    /// Sends the open batches whose first event has waited their sink's linger.
    fn dispatch_lingering(&mut self) {
        let now = Instant::now();
        for i in 0..self.lanes.len() {
            let lane = &self.lanes[i];
            if lane
                .open
                .opened
                .is_some_and(|t| t + lane.batch.linger <= now)
            {
                self.dispatch(i);
            }
        }
    }

    /// Hands sink `i`'s open batch to it, behind its rate cap.
    fn dispatch(&mut self, i: usize) {
        let lane = &mut self.lanes[i];
        if lane.open.is_empty() {
            return;
        }
        let fresh = lane.pool.take(lane.batch.max_bytes);
        let open = std::mem::replace(&mut lane.open, OpenBatch::new(fresh));
        let entry = SendEntry {
            origins: open.origins,
            sources: open.sources,
        };
        if open.events.is_empty() {
            // Only a position to report (every log dropped or dead-lettered): keep it in
            // order behind the sends before it.
            lane.acks.push(entry, open.commit, std::future::ready(None));
            return;
        }
        let sink = self.ctx.sinks[i].sink.clone();
        let batch = open.events;
        match self.ctx.sinks[i].limiter.clone() {
            None => {
                let send = sink.send(batch);
                lane.acks
                    .push(entry, open.commit, async move { Some(send.await) });
            }
            Some(limiter) => lane.acks.push(entry, open.commit, async move {
                let (events, bytes) = (batch.len() as u64, batch.bytes_len() as u64);
                if limiter.acquire(events, bytes).await.is_err() {
                    // Shutdown while throttled: like a send the sink gave up on.
                    return Some(Delivery {
                        rejected: Vec::new(),
                        cancelled: true,
                        batch,
                    });
                }
                Some(sink.send(batch).await)
            }),
        }
    }

    /// Handles one settled send of sink `i`, in that sink's send order: count, dead-letter
    /// what the receiver refused, and only then report the positions every sink completed.
    async fn settle(&mut self, i: usize, acked: Acked<SendEntry, Option<Delivery>, Cursor>) {
        if self.stop == Some(Stop::Unrecoverable) {
            return;
        }
        let Acked { entry, ack, range } = acked;
        self.lanes[i].last_settle = Instant::now();
        if let Some(delivery) = ack {
            let sink = &self.ctx.sinks[i].name;
            if delivery.cancelled {
                tracing::warn!(
                    shard = self.shard,
                    sink = %sink,
                    "delivery interrupted by shutdown; its logs will be re-delivered"
                );
                self.stop = Some(Stop::Unrecoverable);
                return;
            }
            let accepted = delivery.batch.len() - delivery.rejected.len();
            self.ctx
                .metrics
                .delivered(&self.labels, sink, accepted as u64);
            if !delivery.rejected.is_empty() {
                let failures = delivery
                    .rejected
                    .iter()
                    .filter_map(|r| {
                        Some(Failure {
                            blame: Blame::Sink(i),
                            origin: *entry.origins.get(r.index)?,
                            stage: Stage::Sink,
                            reason: r.reason.clone(),
                        })
                    })
                    .collect();
                if !self.write_dead_letters(&entry.sources, failures).await {
                    return;
                }
            }
            if let Some(first) = entry.sources.first() {
                self.ctx.metrics.batch_latency(first.pulled_at.elapsed());
            }
            self.lanes[i].pool.give_back(delivery.batch);
        }
        if let Some(range) = range {
            self.lanes[i].acked_to = range.end;
            let settled = self
                .lanes
                .iter()
                .map(|l| l.acked_to)
                .min()
                .expect("at least one sink");
            if settled > self.reported {
                let done = std::mem::replace(&mut self.reported, settled);
                self.committer.acknowledged(done..settled);
            }
        }
    }

    /// Writes dead-letter entries for `failures` (logs of `sources`), once per distinct
    /// file each concerns, and counts them by stage; on failure nothing more may be
    /// checkpointed.
    async fn write_dead_letters(
        &mut self,
        sources: &[Arc<Source>],
        failures: Vec<Failure>,
    ) -> bool {
        if failures.is_empty() {
            return true;
        }
        let ctx = self.ctx.clone();
        // (file, entries of it)
        let mut per_file: BTreeMap<usize, Vec<dead_letter::Entry<'_>>> = BTreeMap::new();
        let mut by_stage: BTreeMap<Stage, u64> = BTreeMap::new();
        let mut decoded = dead_letter::DecodeCache::default();
        for f in &failures {
            *by_stage.entry(f.stage).or_default() += 1;
            let source = &sources[f.origin.source as usize];
            let (format, sinks): (usize, Vec<usize>) = match f.blame {
                Blame::Format(n) => (n, self.format_sinks[n].clone()),
                Blame::Sink(i) => (ctx.sinks[i].format, vec![i]),
            };
            let cause = Cause {
                stage: f.stage,
                reason: &f.reason,
                plugin: source.generations.get(format).map(|g| g.plugin.hash()),
                sink: match f.blame {
                    Blame::Sink(i) => Some(ctx.sinks[i].name.as_str()),
                    Blame::Format(_) => None,
                },
            };
            let mut files: Vec<usize> = sinks.iter().map(|&i| ctx.sinks[i].dead_letter).collect();
            files.sort_unstable();
            files.dedup();
            for file in files {
                let entry = decoded.entry(&ctx.target, self.shard, source, f.origin, cause);
                per_file.entry(file).or_default().push(entry);
            }
        }
        for (file, entries) in per_file {
            let written = write_until_written(
                self.shard,
                &self.revocation,
                &ctx.dead_letters[file],
                &entries,
            )
            .await;
            if !written {
                self.stop = Some(Stop::Unrecoverable);
                return false;
            }
        }
        for (stage, n) in by_stage {
            ctx.metrics.dead_lettered(&self.labels.logstore, stage, n);
        }
        true
    }

    /// Waits until sink `i` has a free send slot, settling deliveries of every sink in
    /// their order meanwhile (each sink's sends only progress while polled).
    async fn wait_for_room(&mut self, i: usize) {
        while self.lanes[i].acks.len() >= self.ctx.options.max_in_flight && self.stop.is_none() {
            self.note_room();
            let stall_at = self.stall_at();
            tokio::select! {
                settled = next_settled(&mut self.lanes) => match settled {
                    Some((j, acked)) => self.settle(j, acked).await,
                    None => break,
                },
                () = sleep_until(stall_at), if stall_at.is_some() => self.report_stalls(),
            }
        }
    }

    /// Formats one pulled batch with every plugin and renders its events into each sink's
    /// open batch, dispatching sends as they fill.
    async fn process_batch(&mut self, batch: PulledBatch) {
        self.ctx
            .metrics
            .pulled(&self.labels, batch.log_count as u64, batch.raw_size as u64);
        self.ctx
            .lag
            .pulled(&self.labels, &batch, jiff::Timestamp::now().as_second());
        // Hot swap happens here, between batches: one batch, one generation per plugin.
        for f in &mut self.formats {
            if let Some(previous) = f.follow_swap() {
                tracing::info!(shard = self.shard, from = %previous.label(), to = %f.generation().label(), "plugin generation switched");
            }
        }
        let end_of_shard = batch.end_of_shard;
        let source = Arc::new(Source {
            cursor: batch.cursor,
            groups: batch.groups,
            pulled_at: Instant::now(),
            generations: self
                .formats
                .iter()
                .map(|f| f.generation().clone())
                .collect(),
        });
        let info = BatchInfo {
            project: self.ctx.target.project.clone(),
            logstore: self.ctx.target.logstore.clone(),
            shard: self.shard,
            received: now_timestamp(),
        };
        let wants_ids = self.ctx.sinks.iter().any(|s| s.event_id.is_some());
        let mut dropped: u64 = 0;
        let mut failures: Vec<Failure> = Vec::new();
        for (gi, view) in source.groups.iter().enumerate() {
            let ids = wants_ids.then(|| {
                GroupIds::new(
                    &self.ctx.target.project,
                    &self.ctx.target.logstore,
                    self.shard,
                    source.cursor.advance(gi as i64),
                )
            });
            let mut start = 0;
            while start < view.log_count {
                let end = (start + self.ctx.options.max_logs_per_call).min(view.log_count);
                for f in 0..self.formats.len() {
                    let outcomes = match self.formats[f]
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
                        let fail = |stage, reason| Failure {
                            blame: Blame::Format(f),
                            origin,
                            stage,
                            reason,
                        };
                        match outcome {
                            LogOutcome::Emits(emits) => {
                                dropped += u64::from(emits.is_empty());
                                self.render(f, &source, origin, emits, ids.as_ref(), &mut failures);
                            }
                            LogOutcome::Failed(err) => failures.push(fail(
                                Stage::Plugin,
                                format!("{:?}: {}", err.kind, err.message),
                            )),
                            LogOutcome::Trapped { message, .. } => {
                                failures.push(fail(Stage::PluginTrap, message));
                            }
                            LogOutcome::Host(message) => failures.push(fail(Stage::Host, message)),
                        }
                    }
                }
                for i in 0..self.lanes.len() {
                    if self.lanes[i].batch.is_full(&self.lanes[i].open.events) {
                        self.dispatch(i);
                        self.wait_for_room(i).await;
                        if self.stop.is_some() {
                            return;
                        }
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
        // Every event of this batch is now rendered: whichever send of each sink goes next
        // carries its position.
        let now = Instant::now();
        for i in 0..self.lanes.len() {
            let lane = &mut self.lanes[i];
            lane.open.commit = Some(batch.next_cursor);
            // Lingering applies to a position-only batch too (every log dropped or
            // dead-lettered): its checkpoint must not wait for the next event.
            lane.open.opened.get_or_insert(now);
            if end_of_shard || lane.batch.is_full(&lane.open.events) {
                self.dispatch(i);
            }
        }
    }

    /// Renders a log's emits (made by format stage `f`) into the open batch of each sink
    /// they are for; what cannot be sent becomes a failure.
    fn render(
        &mut self,
        f: usize,
        source: &Arc<Source>,
        origin: Origin,
        emits: Vec<shipper_runtime::Emit>,
        ids: Option<&GroupIds>,
        failures: &mut Vec<Failure>,
    ) {
        for (ei, emit) in emits.into_iter().enumerate() {
            let route = emit.route;
            let mut payload = convert_payload(emit.payload);
            let mut rendered_to_any = false;
            for k in 0..self.format_sinks[f].len() {
                let i = self.format_sinks[f][k];
                let sink = &self.ctx.sinks[i];
                if route.as_deref().is_some_and(|r| r != sink.name) {
                    continue;
                }
                rendered_to_any = true;
                let attached = match (&sink.event_id, ids) {
                    (Some(settings), Some(ids)) => {
                        settings.attach(&mut payload, ids.id(origin.log, ei as u32))
                    }
                    _ => false,
                };
                let lane = &mut self.lanes[i];
                match sink.sink.render(&payload, &mut lane.open.events) {
                    Ok(()) => lane.open.push_origin(source, origin.group, origin.log),
                    Err(e) => failures.push(Failure {
                        blame: Blame::Sink(i),
                        origin,
                        stage: Stage::Host,
                        reason: e.to_string(),
                    }),
                }
                if attached {
                    EventIdSettings::detach(&mut payload);
                }
            }
            if !rendered_to_any && let Some(route) = route {
                let names: Vec<&str> = self.format_sinks[f]
                    .iter()
                    .map(|&i| self.ctx.sinks[i].name.as_str())
                    .collect();
                failures.push(Failure {
                    blame: Blame::Format(f),
                    origin,
                    stage: Stage::Host,
                    reason: format!(
                        "the plugin routed an event to sink {route:?}, but the sinks it formats for are {names:?}"
                    ),
                });
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

/// Writes `entries` to `dl`, retrying while it fails (a full disk): the checkpoint must
/// not pass an entry that is not on disk, so the shard waits here, says so once, and goes
/// on by itself once there is room. `false`: the shard was revoked meanwhile (nothing
/// more may be checkpointed; the next owner or run delivers these logs again).
async fn write_until_written(
    shard: u32,
    revocation: &Revocation,
    dl: &crate::dead_letter::DeadLetter,
    entries: &[dead_letter::Entry<'_>],
) -> bool {
    let mut retry = Backoff::new(DEAD_LETTER_RETRY_WAIT, MAX_DEAD_LETTER_RETRY_WAIT);
    let mut since: Option<Instant> = None;
    loop {
        match dl.write(entries).await {
            Ok(()) => {
                if let Some(since) = since {
                    tracing::info!(
                        shard = shard,
                        path = %dl.path().display(),
                        waited_ms = since.elapsed().as_millis() as u64,
                        "dead-letter file writable again; the shard goes on"
                    );
                }
                return true;
            }
            Err(e) => {
                if since.is_none() {
                    tracing::error!(
                        shard = shard,
                        path = %dl.path().display(),
                        error = %e,
                        "cannot write the dead-letter file; the shard waits without checkpointing and retries (free space on its disk or fix the file)"
                    );
                    since = Some(Instant::now());
                }
            }
        }
        tokio::select! {
            biased;
            reason = revocation.revoked() => {
                tracing::warn!(
                    shard = shard,
                    %reason,
                    "shard released while its dead-letter file was not writable; its logs will be delivered again"
                );
                return false;
            }
            () = tokio::time::sleep(retry.next_delay()) => {}
        }
    }
}
