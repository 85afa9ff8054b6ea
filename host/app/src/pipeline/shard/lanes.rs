//! The shard's lanes (one per sink: open batch, sends in flight, how far it has settled),
//! the configuration generation they belong to, and the stall reports of a sink that holds
//! the shard.

use super::*;

/// One sink's side of the shard: its open batch, its sends in flight, its buffers and how
/// far it has acknowledged.
pub(super) struct Lane {
    pub(super) open: OpenBatch,
    /// The open batch's bytes in the memory budget (brought up to date before each plugin
    /// call, see `hold_for_memory`); its send carries it on.
    pub(super) open_charge: Option<Charge>,
    pub(super) acks: OrderedAcks<SendEntry, Option<Delivery>, Cursor>,
    pub(super) pool: BufferPool,
    pub(super) batch: BatchConfig,
    /// Everything before this position is settled on this sink.
    pub(super) acked_to: Cursor,
    /// Since when every send slot of this sink has been taken (the shard cannot pull).
    pub(super) full_since: Option<Instant>,
    /// When a send of this sink last settled.
    pub(super) last_settle: Instant,
    /// Reported as holding the shard (see [`STALL_WARN_AFTER`]).
    pub(super) stalled: bool,
    /// Ledger counts of the open batch not carried by its events (logs dead-lettered or
    /// dropped, receive times); they go with its send.
    pub(super) pending: Tally,
    /// Ledger counts of settled sends not yet reported with a range (a send without a
    /// position: its batch continues in the next one).
    pub(super) settled: Tally,
}

impl Lane {
    /// The open batch's charge (made on first use), holding `bytes` now: kept while the
    /// batch fills, carried on by its send.
    pub(super) fn take_open_charge(&mut self, memory: &BudgetShare, bytes: usize) -> Charge {
        let mut charge = self.open_charge.take().unwrap_or_else(|| memory.charge(0));
        charge.resize(bytes);
        charge
    }
}

/// One lane per sink of `topo`, each settled up to `start`.
pub(super) fn lanes_for(topo: &Topology, start: Cursor) -> Vec<Lane> {
    let now = Instant::now();
    topo.sinks
        .iter()
        .map(|s| Lane {
            open: OpenBatch::new(EventBatch::new()),
            open_charge: None,
            acks: OrderedAcks::new(start),
            pool: BufferPool::default(),
            batch: s.sink.batch_config(),
            acked_to: start,
            full_since: None,
            last_settle: now,
            stalled: false,
            pending: Tally::default(),
            settled: Tally::default(),
        })
        .collect()
}

/// One format stage per plugin of `topo`, and the sinks (lane indices) each formats for.
pub(super) fn stages_for(
    topo: &Topology,
    labels: &ShardLabels,
) -> (Vec<FormatStage>, Vec<Vec<usize>>) {
    let stages = topo
        .formats
        .iter()
        .map(|f| FormatStage::new(f.clone(), labels.clone()))
        .collect();
    let format_sinks = (0..topo.formats.len())
        .map(|f| {
            (0..topo.sinks.len())
                .filter(|&i| topo.sinks[i].format == f)
                .collect()
        })
        .collect();
    (stages, format_sinks)
}

/// The next settled send of any lane (lane index and what settled); `None` when no lane
/// has a send in flight.
pub(super) async fn next_settled(
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
    /// Goes on with the newest topology. Called with nothing in flight and nothing open, so
    /// every log before `reported` went through the old sinks and plugins and every log
    /// after it goes through the new ones.
    pub(super) fn switch_topology(
        &mut self,
        topology: &mut tokio::sync::watch::Receiver<Arc<Topology>>,
    ) {
        self.unstall_all();
        let next = topology.borrow_and_update().clone();
        let (formats, format_sinks) = stages_for(&next, &self.labels);
        self.lanes = lanes_for(&next, self.reported);
        self.formats = formats;
        self.format_sinks = format_sinks;
        tracing::debug!(
            shard = self.shard,
            from = self.topo.generation,
            to = next.generation,
            "configuration generation switched"
        );
        self.topo = next;
    }

    /// True when every sink has a free send slot (the shard may pull). Keeps each lane's
    /// "full since" and clears a stall report once its sink has room again.
    pub(super) fn note_room(&mut self) -> bool {
        let now = Instant::now();
        let max = self.ctx.options.max_in_flight;
        let mut room = true;
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if lane.acks.len() >= max {
                room = false;
                lane.full_since.get_or_insert(now);
            } else if lane.full_since.take().is_some() && lane.stalled {
                lane.stalled = false;
                self.ctx.metrics.sink_unblocked(&self.topo.sinks[i].name);
            }
        }
        room
    }

    /// When the next lane that holds the shard passes [`STALL_WARN_AFTER`] without a
    /// settled send.
    pub(super) fn stall_at(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter(|l| !l.stalled)
            .filter_map(|l| Some(l.full_since?.max(l.last_settle) + STALL_WARN_AFTER))
            .min()
    }

    /// Reports the sinks that hold the shard without settling anything. A sink held back by
    /// its own rate cap is not stalled: throttling is by design and has its own metric.
    pub(super) fn report_stalls(&mut self) {
        let now = Instant::now();
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let Some(full) = lane.full_since else {
                continue;
            };
            let sink = &self.topo.sinks[i];
            let throttled = sink.limiter.as_ref().is_some_and(|l| l.is_throttling());
            if !lane.stalled && !throttled && full.max(lane.last_settle) + STALL_WARN_AFTER <= now {
                lane.stalled = true;
                self.ctx.metrics.sink_blocked(&sink.name);
            }
        }
    }

    /// Clears this shard's stall reports (the shard is ending).
    pub(super) fn unstall_all(&mut self) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if std::mem::take(&mut lane.stalled) {
                self.ctx.metrics.sink_unblocked(&self.topo.sinks[i].name);
            }
        }
    }

    /// Whether sink `i`'s lane should let sends settle before the shard makes more: the
    /// shard holds more than its memory share allows, counting the `upcoming` bytes the
    /// next plugin call is about to render (charges of rendered events never wait,
    /// docs/architecture.md §6), and a send of its own is in flight to give some back.
    fn over_memory(&self, i: usize, upcoming: usize) -> bool {
        !self.lanes[i].acks.is_empty()
            && self.memory.as_ref().is_some_and(|m| m.is_over_by(upcoming))
    }

    /// Under a memory budget: charges each open batch for what it holds now, then lets
    /// sends settle while the shard holds more than it may once the next plugin call has
    /// rendered about `upcoming` bytes (the logs' encoded size: events are about as large
    /// as the logs they come from). Before each plugin call, so a shard stays within its
    /// share but for events larger than their logs (docs/architecture.md §6).
    pub(super) async fn hold_for_memory(&mut self, upcoming: usize) {
        let Some(memory) = self.memory.clone() else {
            return;
        };
        for lane in &mut self.lanes {
            let bytes = lane.open.events.allocated_bytes();
            let charge = lane.take_open_charge(&memory, bytes);
            lane.open_charge = Some(charge);
        }
        for i in 0..self.lanes.len() {
            if self.stop.is_some() {
                return;
            }
            if self.over_memory(i, upcoming) {
                self.wait_for_room(i, upcoming).await;
            }
        }
    }

    /// Waits until sink `i` has a free send slot (and, under a memory budget, until the
    /// shard is back within what it may hold with `upcoming` bytes more, see
    /// `over_memory`), settling deliveries of
    /// every sink in their order meanwhile (each sink's sends only progress while polled).
    /// A revocation
    /// that forbids committing ends the wait: a consumer cut off with every slot taken by a
    /// sink that does not answer must still notice that the shard is gone, or it would
    /// deliver those sends once the sink comes back, after the next owner re-read them. A
    /// release that may commit (shutdown, announced rebalance) lets the batch finish, so
    /// its position can be committed and nothing of it is sent twice.
    pub(super) async fn wait_for_room(&mut self, i: usize, upcoming: usize) {
        let revocation = self.revocation.clone();
        let mut release_seen = false;
        while self.stop.is_none()
            && (self.lanes[i].acks.len() >= self.ctx.options.max_in_flight
                || self.over_memory(i, upcoming))
        {
            self.note_room();
            let stall_at = self.stall_at();
            tokio::select! {
                biased;
                reason = revocation.revoked(), if !release_seen => {
                    if reason.may_commit() {
                        release_seen = true;
                    } else {
                        self.stop = Some(Stop::Revoked(reason));
                    }
                }
                settled = next_settled(&mut self.lanes) => match settled {
                    Some((j, acked)) => self.settle(j, acked).await,
                    None => break,
                },
                () = sleep_until(stall_at), if stall_at.is_some() => self.report_stalls(),
            }
        }
    }
}
