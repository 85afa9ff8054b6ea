//! Shard lag: how far behind each held shard's read position is, as two gauges:
//! `shipper_shard_lag_groups` (LogGroups between the read position and the end, measured with
//! GetCursor(end): cursors number LogGroups consecutively, docs/sls-protocol.md §7) and
//! `shipper_shard_lag_seconds` (age of the oldest data pulled and not yet caught up past, from
//! PullLogs' `x-log-cursor-time`; recomputed at every sample, so it grows while a shard is
//! stalled).
//!
//! Who updates what:
//! - the shard pipeline: [`ShardLag::acquired`] when it takes a shard (its start position; the
//!   sampler is woken so the LogGroups gauge appears within a round trip instead of at the
//!   next tick), [`ShardLag::pulled`] per batch (position and data age),
//!   [`ShardLag::caught_up`] when the reader reports the end of the shard (both gauges 0:
//!   nothing is behind, however old the last batch was), [`ShardLag::released`];
//! - [`ShardLag::sample`], one task per logstore: one GetCursor(end) per held shard every
//!   [`SAMPLE_INTERVAL`], and for newly acquired shards as soon as they are held.
//!
//! A measurement is applied against the shard's position *at the time it is applied*, under
//! the same lock the pipeline updates it with, so a slow GetCursor cannot overwrite a newer
//! "caught up" with a stale backlog, nor bring back the series of a shard released meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use shipper_sls::api::logs::CursorPosition;
use shipper_sls::client::Client;
use shipper_sls::consumer::PulledBatch;
use shipper_sls::cursor::Cursor;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ShardLabels};

/// How often every held shard's LogGroups-behind is measured. One GetCursor(end) per shard
/// (a few hundred bytes, no data read) — less than an idle shard's two pulls a second.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// A held shard.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Read position: the next LogGroup the reader pulls.
    position: Cursor,
    /// LogGroups behind, as last set (`None`: not measured yet).
    behind: Option<i64>,
    /// Server receive time (unix seconds) of the oldest data pulled and not caught up past:
    /// the data age is recomputed from it at every sample, so it keeps growing while the
    /// shard is stalled (sink down, plugin paused) instead of freezing at the last pull.
    data_time: Option<i64>,
}

/// Lag bookkeeping of one logstore's held shards. See the module docs.
#[derive(Debug)]
pub struct ShardLag {
    /// SLS logstore (for GetCursor).
    logstore: String,
    /// `project/logstore` (the series label).
    label: String,
    held: Mutex<BTreeMap<u32, Held>>,
    /// A shard was acquired: measure the unmeasured ones now.
    wake: Notify,
    groups: Family<ShardLabels, Gauge>,
    seconds: Family<ShardLabels, Gauge>,
    /// Process-wide sum of LogGroups behind (every logstore), for the progress line.
    total: Arc<AtomicU64>,
}

impl ShardLag {
    /// Lag of `project/logstore`, reported through `metrics`.
    pub fn new(project: &str, logstore: &str, metrics: &Metrics) -> Arc<Self> {
        Arc::new(Self::with_gauges(
            project,
            logstore,
            metrics.lag_groups.clone(),
            metrics.lag_seconds.clone(),
            metrics.totals.lag_groups.clone(),
        ))
    }

    fn with_gauges(
        project: &str,
        logstore: &str,
        groups: Family<ShardLabels, Gauge>,
        seconds: Family<ShardLabels, Gauge>,
        total: Arc<AtomicU64>,
    ) -> Self {
        Self {
            logstore: logstore.to_owned(),
            label: format!("{project}/{logstore}"),
            held: Mutex::default(),
            wake: Notify::new(),
            groups,
            seconds,
            total,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Held>> {
        self.held.lock().expect("lag lock poisoned")
    }

    fn labels(&self, shard: u32) -> ShardLabels {
        ShardLabels {
            logstore: self.label.clone(),
            shard,
        }
    }

    /// Sets a held shard's LogGroups behind (gauge and process total).
    fn set_behind(&self, labels: &ShardLabels, held: &mut Held, behind: i64) {
        let old = held.behind.replace(behind).unwrap_or(0);
        // Add before subtracting so a concurrent reader of the total never sees it wrap.
        self.total.fetch_add(behind as u64, Ordering::Relaxed);
        self.total.fetch_sub(old as u64, Ordering::Relaxed);
        self.groups.get_or_create(labels).set(behind);
    }

    /// A shard was taken, reading from `start`: it is measured right away.
    pub fn acquired(&self, shard: u32, start: Cursor) {
        self.lock().insert(
            shard,
            Held {
                position: start,
                behind: None,
                data_time: None,
            },
        );
        self.wake.notify_one();
    }

    /// A batch was pulled: the read position moves to its end, and the data age is the
    /// server receive time at its start (0 for a batch that did not advance).
    pub fn pulled(&self, labels: &ShardLabels, batch: &PulledBatch, now: i64) {
        let mut held = self.lock();
        let Some(h) = held.get_mut(&labels.shard) else {
            return;
        };
        h.position = batch.next_cursor;
        if let Some(t) = batch.cursor_time {
            let advanced = batch.next_cursor != batch.cursor;
            h.data_time = advanced.then_some(t);
            let age = if advanced { (now - t).max(0) } else { 0 };
            self.seconds.get_or_create(labels).set(age);
        }
    }

    /// The reader reached the end of the shard at `cursor`: nothing is behind.
    pub fn caught_up(&self, labels: &ShardLabels, cursor: Cursor) {
        let mut held = self.lock();
        let Some(h) = held.get_mut(&labels.shard) else {
            return;
        };
        h.position = cursor;
        h.data_time = None;
        self.set_behind(labels, h, 0);
        self.seconds.get_or_create(labels).set(0);
    }

    /// The shard was let go: its series disappear.
    pub fn released(&self, labels: &ShardLabels) {
        let mut held = self.lock();
        if let Some(h) = held.remove(&labels.shard) {
            self.total
                .fetch_sub(h.behind.unwrap_or(0) as u64, Ordering::Relaxed);
        }
        self.groups.remove(labels);
        self.seconds.remove(labels);
    }

    /// Held shards to measure: all of them, or only those not measured yet.
    fn to_measure(&self, all: bool) -> Vec<u32> {
        self.lock()
            .iter()
            .filter(|(_, h)| all || h.behind.is_none())
            .map(|(s, _)| *s)
            .collect()
    }

    /// Applies a GetCursor(end) answer against the shard's current position, and refreshes
    /// the data age at `now` (unix seconds); ignored when the shard was released meanwhile.
    fn measured(&self, shard: u32, end: Cursor, now: i64) {
        let mut held = self.lock();
        let Some(h) = held.get_mut(&shard) else {
            return;
        };
        let behind = (end.0 - h.position.0).max(0);
        let labels = self.labels(shard);
        self.set_behind(&labels, h, behind);
        if let Some(t) = h.data_time {
            self.seconds.get_or_create(&labels).set((now - t).max(0));
        }
    }

    /// Measures held shards with GetCursor(end) until `shutdown`: all of them every
    /// [`SAMPLE_INTERVAL`], newly acquired ones at once.
    pub async fn sample(self: Arc<Self>, client: Client, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let all = tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => true,
                () = self.wake.notified() => false,
            };
            for shard in self.to_measure(all) {
                let end = tokio::select! {
                    () = shutdown.cancelled() => return,
                    end = client.get_cursor(&self.logstore, shard, CursorPosition::End) => end,
                };
                match end {
                    Ok(end) => self.measured(shard, end, jiff::Timestamp::now().as_second()),
                    Err(e) => tracing::debug!(
                        logstore = %self.label,
                        shard,
                        error = %e,
                        "lag sample failed (GetCursor end); retried at the next tick"
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag() -> ShardLag {
        ShardLag::with_gauges(
            "p",
            "ls",
            Family::default(),
            Family::default(),
            Arc::default(),
        )
    }

    fn batch(from: i64, to: i64, received: Option<i64>) -> PulledBatch {
        PulledBatch {
            shard: 1,
            cursor: Cursor(from),
            next_cursor: Cursor(to),
            groups: Vec::new(),
            raw_size: 0,
            log_count: 0,
            end_of_shard: false,
            cursor_time: received,
            memory: None,
        }
    }

    /// (groups behind, seconds behind) of a series; `None` when absent.
    fn gauges(lag: &ShardLag, shard: u32) -> (Option<i64>, Option<i64>) {
        let l = lag.labels(shard);
        let read = |f: &Family<ShardLabels, Gauge>| {
            // `get` does not create the series, unlike `get_or_create`.
            f.get(&l).map(|g| g.get())
        };
        (read(&lag.groups), read(&lag.seconds))
    }

    #[test]
    fn an_acquired_shard_is_measured_first_and_then_with_the_rest() {
        let lag = lag();
        lag.acquired(0, Cursor(100));
        lag.measured(0, Cursor(130), 0);
        lag.acquired(1, Cursor(5));
        assert_eq!(
            lag.to_measure(false),
            [1],
            "only the new shard on a wake-up"
        );
        assert_eq!(lag.to_measure(true), [0, 1], "every shard on a tick");
        assert_eq!(gauges(&lag, 0), (Some(30), None));
        assert_eq!(gauges(&lag, 1), (None, None), "no reading before measuring");
        lag.measured(1, Cursor(5), 0);
        assert_eq!(gauges(&lag, 1).0, Some(0));
        assert_eq!(lag.total.load(Ordering::Relaxed), 30);
    }

    #[test]
    fn catching_up_zeroes_both_gauges_however_old_the_last_batch_was() {
        let lag = lag();
        let l = lag.labels(1);
        lag.acquired(1, Cursor(0));
        lag.measured(1, Cursor(10), 0);
        let now = 1_800_000_000;
        // The last batch was received a day ago.
        lag.pulled(&l, &batch(0, 10, Some(now - 86_400)), now);
        assert_eq!(gauges(&lag, 1), (Some(10), Some(86_400)));
        lag.caught_up(&l, Cursor(10));
        assert_eq!(gauges(&lag, 1), (Some(0), Some(0)));
        assert_eq!(lag.total.load(Ordering::Relaxed), 0);
        // A GetCursor answered before the catch-up is applied against the new position.
        lag.measured(1, Cursor(10), 0);
        assert_eq!(gauges(&lag, 1).0, Some(0));
        // New data: the next measurement and batch report it again.
        lag.measured(1, Cursor(12), 0);
        lag.pulled(&l, &batch(10, 12, Some(now - 3)), now);
        assert_eq!(gauges(&lag, 1), (Some(2), Some(3)));
    }

    #[test]
    fn a_released_shard_is_not_brought_back_by_a_late_measurement() {
        let lag = lag();
        let l = lag.labels(2);
        lag.acquired(2, Cursor(0));
        lag.measured(2, Cursor(7), 0);
        lag.acquired(3, Cursor(0));
        lag.measured(3, Cursor(4), 0);
        assert_eq!(lag.total.load(Ordering::Relaxed), 11);
        lag.released(&l);
        lag.measured(2, Cursor(9), 0);
        lag.caught_up(&l, Cursor(9));
        lag.pulled(&l, &batch(0, 9, Some(1)), 100);
        assert_eq!(gauges(&lag, 2), (None, None));
        assert_eq!(lag.total.load(Ordering::Relaxed), 4, "shard 3 only");
        assert!(lag.to_measure(true) == [3]);
    }

    #[test]
    fn a_stalled_shard_keeps_ageing_between_pulls() {
        let lag = lag();
        let l = lag.labels(1);
        lag.acquired(1, Cursor(0));
        let now = 1_800_000_000;
        lag.pulled(&l, &batch(0, 10, Some(now - 60)), now);
        assert_eq!(gauges(&lag, 1).1, Some(60));
        // Nothing pulled for ten minutes (the sink is down): the samples keep it current.
        lag.measured(1, Cursor(50), now + 600);
        assert_eq!(gauges(&lag, 1), (Some(40), Some(660)));
        lag.caught_up(&l, Cursor(50));
        lag.measured(1, Cursor(50), now + 700);
        assert_eq!(gauges(&lag, 1), (Some(0), Some(0)), "caught up: not ageing");
    }

    #[test]
    fn a_batch_that_did_not_advance_is_not_old() {
        let lag = lag();
        let l = lag.labels(1);
        lag.acquired(1, Cursor(0));
        lag.pulled(&l, &batch(4, 4, Some(0)), 1_000);
        assert_eq!(gauges(&lag, 1).1, Some(0));
        // No receive time from the server: the gauge is left alone.
        lag.pulled(&l, &batch(4, 6, None), 1_000);
        assert_eq!(gauges(&lag, 1).1, Some(0));
    }
}
