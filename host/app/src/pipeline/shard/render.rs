//! One pulled batch through every plugin, its events rendered into each sink's open batch
//! (with event IDs), sends dispatched as batches fill; failures collected for the
//! dead-letter files.

use super::*;
use crate::pipeline::replay::{self, ReplayMarker, ReplayOptions};

impl ShardWorker {
    /// Formats one pulled batch with every plugin and renders its events into each sink's
    /// open batch, dispatching sends as they fill.
    pub(super) async fn process_batch(&mut self, batch: PulledBatch) {
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
        if let Some(memory) = &self.memory {
            // A shard's sends fit its share of the budget: with hundreds of shards, smaller
            // requests rather than more memory (the share shrinks as shards are added). An
            // eighth: the batch being filled is not charged until it is sent.
            let cap = (memory.share() / 8).max(MIN_BUDGET_BATCH_BYTES);
            for (lane, sink) in self.lanes.iter_mut().zip(&self.topo.sinks) {
                lane.batch.max_bytes = sink.sink.batch_config().max_bytes.min(cap);
            }
        }
        let end_of_shard = batch.end_of_shard;
        let source = Arc::new(Source {
            cursor: batch.cursor,
            memory: batch.memory,
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
        let wants_ids = self.topo.sinks.iter().any(|s| s.event_id.is_some());
        // The canaries that format this batch too (one decision per pulled batch).
        let canaries: Vec<Option<Arc<crate::canary::Canary>>> = self
            .topo
            .formats
            .iter()
            .map(|f| f.canary.clone().filter(|c| c.sampled()))
            .collect();
        let mut dropped: u64 = 0;
        let mut failures: Vec<Failure> = Vec::new();
        for (gi, view) in source.groups.iter().enumerate() {
            // A re-driven dead letter is named by its original position (one log per
            // made-up group): its ID is the one the original log had.
            let ids = wants_ids.then(|| {
                let at = source.cursor.advance(gi as i64);
                match self
                    .ctx
                    .options
                    .replay
                    .as_deref()
                    .and_then(|r| r.original(at))
                {
                    Some(o) => (
                        GroupIds::new(&o.project, &o.logstore, o.shard, o.cursor),
                        o.log_index,
                    ),
                    None => (
                        GroupIds::new(
                            &self.ctx.target.project,
                            &self.ctx.target.logstore,
                            self.shard,
                            at,
                        ),
                        0,
                    ),
                }
            }); // `shipper replay --filter-log-time`: logs outside the window are formatted
            // like the others (their neighbours' indices, hence event IDs, stay) but not
            // sent.
            let outside = match self.ctx.options.replay.as_deref() {
                Some(ReplayOptions {
                    log_time: Some(window),
                    ..
                }) => replay::outside_window(view, window),
                _ => Vec::new(),
            };
            let mut start = 0;
            while start < view.log_count {
                let end = (start + self.ctx.options.max_logs_per_call).min(view.log_count);
                // The call's share of the group's bytes, rendered once for every sink.
                let upcoming = view.bytes.len() * (end - start) / view.log_count * self.lanes.len();
                self.hold_for_memory(upcoming).await;
                if self.stop.is_some() {
                    return;
                }
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
                    if let Some(canary) = canaries.get(f).and_then(Option::as_ref) {
                        canary.submit(crate::canary::Job {
                            shard: self.shard,
                            cursor: source.cursor.advance(gi as i64).0,
                            info: info.clone(),
                            view: view.clone(),
                            range: start..end,
                            current: outcomes
                                .iter()
                                .filter_map(|(li, o)| match o {
                                    LogOutcome::Emits(e) => Some((*li, e.clone())),
                                    _ => None,
                                })
                                .collect(),
                        });
                    }
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
                        if outside.get(li).copied().unwrap_or(false) {
                            dropped += 1;
                            continue;
                        }
                        match outcome {
                            LogOutcome::Emits(emits) => {
                                if emits.is_empty() {
                                    dropped += 1;
                                    for &i in &self.format_sinks[f] {
                                        self.lanes[i].pending.dropped += 1;
                                    }
                                }
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
                        self.wait_for_room(i, 0).await;
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
        // The ledger counts each failure for the sinks it concerns (one log of a plugin
        // counts for each of that plugin's sinks).
        for f in &failures {
            match f.blame {
                Blame::Format(n) => {
                    for &i in &self.format_sinks[n] {
                        self.lanes[i].pending.dead_lettered += 1;
                    }
                }
                Blame::Sink(i) => self.lanes[i].pending.dead_lettered += 1,
            }
        }
        for lane in &mut self.lanes {
            lane.pending.received(batch.cursor_time);
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
        ids: Option<&(GroupIds, u32)>,
        failures: &mut Vec<Failure>,
    ) {
        for (ei, emit) in emits.into_iter().enumerate() {
            let route = emit.route;
            let mut payload = convert_payload(emit.payload);
            let mut rendered_to_any = false;
            for k in 0..self.format_sinks[f].len() {
                let i = self.format_sinks[f][k];
                let sink = &self.topo.sinks[i];
                if route.as_deref().is_some_and(|r| r != sink.name) {
                    continue;
                }
                rendered_to_any = true;
                let attached = match (&sink.event_id, ids) {
                    (Some(settings), Some(ids)) => {
                        settings.attach(&mut payload, ids.0.id(ids.1 + origin.log, ei as u32))
                    }
                    _ => false,
                };
                let marked = self
                    .ctx
                    .options
                    .replay
                    .as_ref()
                    .and_then(|r| r.marker.as_ref())
                    .map(|m| m.attach(&mut payload, attached));
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
                if let Some(how) = marked {
                    ReplayMarker::detach(&mut payload, how);
                }
                if attached {
                    EventIdSettings::detach(&mut payload);
                }
            }
            if !rendered_to_any && let Some(route) = route {
                let names: Vec<&str> = self.format_sinks[f]
                    .iter()
                    .map(|&i| self.topo.sinks[i].name.as_str())
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
