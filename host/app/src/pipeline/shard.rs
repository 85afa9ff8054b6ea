//! The shard loop: pull → format → send → commit, for one shard until it is revoked or read
//! to its end. The delivery rules it keeps are listed in the [module docs](super).
//!
//! It reads through a [`ShardIo`] (a lease's reader, revocation signal and checkpoints in
//! production; in-memory fakes in the unit tests), formats with one [`FormatStage`] per
//! plugin, renders into each sink's [`EventBatch`]es and keeps each sink's sends in flight
//! in its own [`OrderedAcks`] (a `Lane` per sink). The checkpoint follows the slowest
//! sink.
//!
//! Layout: this file has the loop, dispatching and settling; `render` formats a pulled
//! batch and renders its events, `lanes` holds the per-sink lanes, the switch to a new
//! configuration generation and the stall reports, `dead_letters` writes failures.

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
use shipper_sls::consumer::{
    BudgetShare, Charge, PulledBatch, ReadEvent, Revocation, RevokeReason,
};
use shipper_sls::cursor::Cursor;
use tokio::time::Instant;

use super::acks::{Acked, OrderedAcks};
use super::batch::{BufferPool, OpenBatch, Origin, Source};
use super::event_id::{EventIdSettings, GroupIds};
use super::format::{FormatStage, LogOutcome};
use super::{ShardContext, Topology, convert_payload};
use crate::checkpoint::{CheckpointStore, CommitEnd, Committer};
use crate::dead_letter::{self, Cause, Stage};
use crate::ledger::Tally;
use crate::metrics::ShardLabels;

mod dead_letters;
mod lanes;
mod render;

use dead_letters::{Blame, Failure};
use lanes::{Lane, lanes_for, next_settled, stages_for};

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
    /// The shard's part of the memory budget (`[source] max_buffer_mib`): sends in flight
    /// are charged to it, and batches are cut to fit it. `None`: no budget.
    pub memory: Option<Arc<BudgetShare>>,
}

/// Smallest send a memory share cuts batches to: below, per-request costs dominate.
const MIN_BUDGET_BATCH_BYTES: usize = 64 << 10;

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
    /// The rendered events' bytes in the memory budget, until the send settles.
    _memory: Option<Charge>,
    /// What the ledger counts for this send besides its events (logs dead-lettered or
    /// dropped before it, receive times).
    tally: Tally,
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
        ctx.ledger.clone(),
    );
    let mut topology = ctx.topology.clone();
    let topo = topology.borrow_and_update().clone();
    let (formats, format_sinks) = stages_for(&topo, &labels);
    let mut worker = ShardWorker {
        lanes: lanes_for(&topo, io.start),
        formats,
        format_sinks,
        topo,
        topology,
        reported: io.start,
        shard: io.shard,
        revocation: io.revocation.clone(),
        labels,
        committer,
        stop: None,
        memory: io.memory,
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
        // `Stop::Lost` needs no arm of its own: it is only set once the committer saw the
        // refusal and stopped, so finishing it returns `ShardLost` without committing.
        _ => match committer.finish().await {
            CommitEnd::Complete => ShardEnd::Committed,
            CommitEnd::ShardLost => ShardEnd::NotOurs,
            CommitEnd::Incomplete => ShardEnd::Incomplete,
        },
    }
}

struct ShardWorker {
    ctx: Arc<ShardContext>,
    /// The configuration generation this shard delivers through.
    topo: Arc<Topology>,
    /// Where the next generation is published.
    topology: tokio::sync::watch::Receiver<Arc<Topology>>,
    shard: u32,
    labels: ShardLabels,
    revocation: Arc<Revocation>,
    /// One per distinct plugin (`topo.formats`).
    formats: Vec<FormatStage>,
    /// The sinks (lane indices) each format stage formats for.
    format_sinks: Vec<Vec<usize>>,
    /// One per sink (`topo.sinks`).
    lanes: Vec<Lane>,
    /// The position last reported to the committer: the smallest `acked_to` of the lanes.
    reported: Cursor,
    committer: Committer,
    stop: Option<Stop>,
    /// See [`ShardIo::memory`].
    memory: Option<Arc<BudgetShare>>,
}

impl ShardWorker {
    /// The main loop. Returns why it stopped (`None`: the shard was read to its end).
    async fn run(
        &mut self,
        mut events: BoxStream<'static, Result<ReadEvent, SlsError>>,
    ) -> Option<Stop> {
        let mut reader_done = false;
        let mut read_failed = false;
        // A reload published a new topology: pull nothing until this one is drained.
        let mut switching = false;
        let revocation = self.revocation.clone();
        let mut topology = self.topology.clone();
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
            if switching && !reader_done {
                self.dispatch_all();
                if self.lanes.iter().all(|l| l.acks.is_empty()) {
                    self.switch_topology(&mut topology);
                    switching = false;
                }
            }
            let room = self.note_room() && !switching;
            let stall_at = self.stall_at();
            let in_flight = self.lanes.iter().any(|l| !l.acks.is_empty());
            tokio::select! {
                biased;
                reason = revocation.revoked() => {
                    self.stop = Some(Stop::Revoked(reason));
                }
                Ok(()) = topology.changed(), if !switching && !reader_done => {
                    switching = true;
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
            // Nothing more is ours to commit: the sends in flight are dropped too, with
            // their retries (a zombie that wakes up, a partition that heals). What was not
            // written yet is left to the next owner; waiting for them would deliver it
            // twice.
            let abandoned: usize = self.lanes.iter().map(|l| l.acks.len()).sum();
            tracing::debug!(
                shard = self.shard,
                sends = abandoned,
                "shard not ours any more; abandoning its open batches and sends in flight"
            );
            for lane in &mut self.lanes {
                lane.open = OpenBatch::new(EventBatch::new());
                lane.acks = OrderedAcks::new(lane.acked_to);
            }
        }
        while let Some((i, acked)) = next_settled(&mut self.lanes).await {
            self.settle(i, acked).await;
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
            tally: std::mem::take(&mut lane.pending),
            origins: open.origins,
            sources: open.sources,
            _memory: self.memory.as_ref().map(|m| {
                let bytes = open.events.allocated_bytes()
                    + self.topo.sinks[i]
                        .sink
                        .send_overhead_bytes(open.events.bytes_len());
                lane.take_open_charge(m, bytes)
            }),
        };
        if open.events.is_empty() {
            // Only a position to report (every log dropped or dead-lettered): keep it in
            // order behind the sends before it.
            lane.acks.push(entry, open.commit, std::future::ready(None));
            return;
        }
        let sink = self.topo.sinks[i].sink.clone();
        let batch = open.events;
        match self.topo.sinks[i].limiter.clone() {
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
        self.lanes[i].settled.add(&entry.tally);
        if let Some(delivery) = ack {
            let sink = &self.topo.sinks[i].name;
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
            let settled = &mut self.lanes[i].settled;
            settled.events += accepted as u64;
            settled.dead_lettered += delivery.rejected.len() as u64;
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
            self.lanes[i]
                .pool
                .give_back(delivery.batch, self.memory.as_deref());
        }
        if let Some(range) = range {
            let tally = std::mem::take(&mut self.lanes[i].settled);
            if let Some(ledger) = &self.ctx.ledger {
                ledger.record(
                    &self.labels.logstore,
                    self.shard,
                    &self.topo.sinks[i].name,
                    range.start.0..range.end.0,
                    tally,
                );
            }
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
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
