//! The heartbeat loop (docs/sls-protocol.md §5.8, §8, §9.2 "Heartbeat loop") and lease
//! preparation.
//!
//! Every `heartbeat_interval` (and right after a lease is released, so a hand-off does not
//! wait a full interval) it sends the held shards and applies the answer to the
//! [`Membership`](super::lease::Membership): new shards get a preparation task that resolves
//! the start cursor and then hands the [`ShardLease`] to the caller; shards no longer
//! assigned are revoked. Failures:
//! - `NotExistConsumerWithBody`: the server expired us. Orphan everything, re-join with `[]`
//!   at once.
//! - `ConsumerGroupNotExist`: re-create the group, orphan everything, re-join.
//! - anything else: keep the shards until no heartbeat succeeded for `timeout + interval`
//!   (by then the server has moved them), then orphan everything.
//!
//! A heartbeat due after a silence longer than `timeout` without any failure (the process
//! was paused) first orphans everything: the server expired us meanwhile.
//!
//! Preparation tasks live in a `JoinSet` owned by the loop: they die with it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::budget::BudgetShare;
use super::lease::{Acquired, LeaseGuard, RevokeReason, ShardLease};
use super::{RetriedCall, Shared};
use crate::cursor::Cursor;
use crate::error::SlsError;

/// Per-request timeout of a heartbeat: a hung heartbeat must not outlive its interval by
/// much, or the timeout logic would see nothing.
pub(crate) fn request_timeout(cfg: &super::ConsumerConfig) -> Duration {
    cfg.heartbeat_interval.max(Duration::from_secs(2))
}

struct Loop {
    shared: Arc<Shared>,
    leases: mpsc::UnboundedSender<ShardLease>,
    preparing: JoinSet<()>,
    last_success: Instant,
    failing_since: Option<Instant>,
    /// The shards were given up during the current failure streak (disarms the deadline).
    gave_up: bool,
    /// The current failure streak is about credentials (expired, not refreshable yet): the
    /// credentials holder has said so at WARN; the loop stays quieter.
    credentials_streak: bool,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    leases: mpsc::UnboundedSender<ShardLease>,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(shared.config.heartbeat_interval);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut hb = Loop {
        shared,
        leases,
        preparing: JoinSet::new(),
        last_success: Instant::now(),
        failing_since: None,
        gave_up: false,
        credentials_streak: false,
    };
    // The give-up deadline counts from here until a heartbeat succeeds; so does the age.
    hb.record_success();
    let mut again = false;
    loop {
        if !again {
            // While heartbeats fail, also wake up exactly when the give-up deadline passes
            // (not only at the next failed beat).
            let give_up = (hb.failing_since.is_some() && !hb.gave_up).then(|| hb.give_up_at());
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(done) = hb.preparing.join_next(), if !hb.preparing.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "shard lease preparation panicked");
                    }
                    continue;
                }
                () = sleep_until_opt(give_up) => {
                    hb.give_up_if_silent();
                    continue;
                }
                _ = interval.tick() => {}
                () = hb.shared.beat_now.notified() => {}
            }
        }
        let rejoin = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            rejoin = hb.beat() => rejoin,
        };
        // Re-join at once, but never twice in a row: a server that keeps answering
        // "not exist" must not turn this into a busy loop.
        again = rejoin && !again;
        interval.reset();
    }
    hb.preparing.shutdown().await;
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Loop {
    fn record_success(&self) {
        if let Some(stats) = &self.shared.config.stats {
            stats.record_heartbeat(self.last_success);
        }
    }

    /// When held shards are given up if no heartbeat succeeds: the server has dropped us
    /// after `timeout`, and one more interval covers a heartbeat in flight at that moment.
    fn give_up_at(&self) -> Instant {
        let cfg = &self.shared.config;
        self.last_success + cfg.timeout + cfg.heartbeat_interval
    }

    /// Orphans every shard once the give-up deadline has passed.
    fn give_up_if_silent(&mut self) {
        let silent = self.last_success.elapsed();
        if Instant::now() < self.give_up_at() {
            return;
        }
        self.gave_up = true;
        let shards = self
            .shared
            .membership()
            .orphan_all(RevokeReason::HeartbeatLost);
        if shards.is_empty() {
        } else if self.credentials_streak {
            // Nothing is lost: the shards are re-read from their checkpoints once the
            // credentials are back; the holder's WARN said why.
            tracing::info!(
                ?shards,
                ?silent,
                "no valid SLS credentials for longer than timeout + interval; giving up the \
                 shards until a credentials refresh succeeds"
            );
        } else {
            tracing::error!(
                ?shards,
                ?silent,
                "no successful heartbeat for longer than timeout + interval; giving up the \
                 shards (another consumer may own them now)"
            );
        }
    }

    /// Our own lease clock, checked before each heartbeat: when the last successful one is
    /// older than the group timeout although none failed since, this process was paused
    /// (SIGSTOP, a frozen VM or host). The server has expired us meanwhile and may have
    /// handed our shards to others, whatever it answers next: drop them as lost now (no
    /// final commit, nothing more sent) rather than after the heartbeat's round trip.
    fn give_up_after_pause(&mut self) {
        let silent = self.last_success.elapsed();
        if self.failing_since.is_some() || silent <= self.shared.config.timeout {
            return;
        }
        let shards = self
            .shared
            .membership()
            .orphan_all(RevokeReason::HeartbeatLost);
        if !shards.is_empty() {
            tracing::warn!(
                ?shards,
                ?silent,
                "no heartbeat for longer than the group timeout (was this process paused?); \
                 giving up the shards (another consumer may own them now)"
            );
        }
    }

    /// One heartbeat. Returns whether to beat again at once (re-join).
    async fn beat(&mut self) -> bool {
        self.give_up_after_pause();
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let body = shared.membership().heartbeat_body();
        let result = shared
            .client
            .heartbeat_with_timeout(
                &cfg.logstore,
                &cfg.group,
                &cfg.consumer,
                &body,
                Some(request_timeout(cfg)),
            )
            .await;
        match result {
            Ok(assigned) => {
                self.last_success = Instant::now();
                self.record_success();
                self.gave_up = false;
                self.credentials_streak = false;
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), "heartbeat recovered");
                }
                let change = shared.membership().apply_assignment(&assigned);
                // DEBUG: the lease holder logs the hand-over once, with its outcome.
                for shard in &change.revoked {
                    tracing::debug!(
                        shard,
                        group = %cfg.group,
                        "shard reassigned; releasing it once its holder is done"
                    );
                }
                // Every shard of the answer takes its memory share now, before any of them
                // pulls: a shard that started alone would size its first pulls and sends
                // for the whole budget, and with a slow sink they stay in memory for long
                // after the others joined (docs/architecture.md §6).
                let shares: Vec<_> = change
                    .acquired
                    .iter()
                    .map(|_| cfg.budget.as_ref().map(|b| Arc::new(b.share())))
                    .collect();
                for (acquired, memory) in change.acquired.into_iter().zip(shares) {
                    tracing::debug!(shard = acquired.shard, group = %cfg.group, "shard assigned by the server; resolving its start cursor");
                    self.preparing.spawn(prepare(
                        shared.clone(),
                        acquired,
                        memory,
                        self.leases.clone(),
                    ));
                }
                false
            }
            Err(e) if e.is_not_exist_consumer_with_body() => {
                let shards = shared
                    .membership()
                    .orphan_all(RevokeReason::ConsumerExpired);
                tracing::warn!(
                    ?shards,
                    error = %e,
                    "the server expired this consumer; dropping its shards and re-joining"
                );
                true
            }
            Err(e) if e.is_consumer_group_not_exist() => {
                let shards = shared.membership().orphan_all(RevokeReason::GroupRecreated);
                tracing::warn!(?shards, group = %cfg.group, "the consumer group disappeared; re-creating it");
                match super::ensure_group(&shared.client, cfg).await {
                    Ok(()) => true,
                    Err(e) => {
                        cfg.record_retry(RetriedCall::CreateGroup, &e);
                        tracing::error!(error = %e, "re-creating the consumer group failed");
                        false
                    }
                }
            }
            Err(e) => {
                // Retried at the next interval, whatever the error.
                cfg.record_retry(RetriedCall::Heartbeat, &e);
                self.failing_since.get_or_insert_with(Instant::now);
                let silent = self.last_success.elapsed();
                if e.is_credentials() {
                    self.credentials_streak = true;
                    tracing::debug!(error = %e, ?silent, "heartbeat not sent: no valid credentials");
                } else if e.is_retryable() {
                    tracing::warn!(error = %e, ?silent, "heartbeat failed");
                } else {
                    tracing::error!(error = %e, ?silent, "heartbeat rejected");
                }
                self.give_up_if_silent();
                false
            }
        }
    }
}

/// Resolves the start cursor of a newly assigned shard (retrying with backoff), then hands
/// the lease to the caller. Revocation ends it, releasing the shard.
async fn prepare(
    shared: Arc<Shared>,
    acquired: Acquired,
    memory: Option<Arc<BudgetShare>>,
    leases: mpsc::UnboundedSender<ShardLease>,
) {
    let Acquired {
        shard,
        generation,
        signal,
    } = acquired;
    let guard = LeaseGuard {
        shared: shared.clone(),
        shard,
        generation,
    };
    let mut backoff = shared.config.backoff();
    let (start, from_checkpoint) = loop {
        let attempt = tokio::select! {
            biased;
            () = signal.token.cancelled() => return,
            r = resolve_start(&shared, shard) => r,
        };
        match attempt {
            Ok(found) => break found,
            Err((call, e)) => {
                shared.config.record_retry(call, &e);
                let delay = backoff.next_delay();
                tracing::warn!(shard, error = %e, ?delay, "cannot resolve the shard's start cursor; retrying");
                tokio::select! {
                    () = signal.token.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    tracing::debug!(
        shard,
        cursor = %start,
        from_checkpoint,
        "shard lease ready"
    );
    let lease = ShardLease {
        guard,
        signal,
        start,
        from_checkpoint,
        memory,
    };
    // A closed receiver (shutdown) drops the lease, which releases the shard.
    let _ = leases.send(lease);
}

/// The group's checkpoint if it has one (an existing checkpoint always wins,
/// docs/sls-protocol.md §9.3 "Start position"), else the configured start position. An error
/// comes with the call that failed.
pub(crate) async fn resolve_start(
    shared: &Shared,
    shard: u32,
) -> Result<(Cursor, bool), (RetriedCall, SlsError)> {
    let cfg = &shared.config;
    let checkpoints = shared
        .client
        .get_checkpoints(&cfg.logstore, &cfg.group, Some(shard))
        .await
        .map_err(|e| (RetriedCall::GetCheckpoint, e))?;
    if let Some(cp) = checkpoints.iter().find(|c| c.shard == shard) {
        match cp.cursor() {
            Ok(Some(cursor)) => return Ok((cursor, true)),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                shard,
                error = %e,
                start = %cfg.start,
                "the group's checkpoint is not a valid cursor; starting from the configured position"
            ),
        }
    }
    let cursor = shared
        .client
        .get_cursor(&cfg.logstore, shard, cfg.start)
        .await
        .map_err(|e| (RetriedCall::GetCursor, e))?;
    Ok((cursor, false))
}
