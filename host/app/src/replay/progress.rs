//! The replay's progress line (stderr, every few seconds): shards done, logs sent, rate and
//! an ETA from cursor positions (LogGroups acknowledged out of the window's LogGroups: the
//! one measure known for every shard before it is read).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::plan::range;
use super::state::{State, Tracker};
use crate::metrics::Metrics;

/// LogGroups of the window and acknowledged so far, and shards at their end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Shards whose acknowledged position is their end.
    pub shards_done: usize,
    /// Shards in the replay.
    pub shards: usize,
    /// LogGroups acknowledged (from each shard's start).
    pub groups_done: u64,
    /// LogGroups in the window.
    pub groups: u64,
}

/// Counts of `state`.
pub fn counts(state: &State) -> Counts {
    let mut c = Counts {
        shards_done: 0,
        shards: 0,
        groups_done: 0,
        groups: 0,
    };
    for s in state.logstores.values().flat_map(|m| m.values()) {
        let start = shipper_sls::cursor::Cursor::parse(&s.start).map_or(0, |c| c.0);
        let (acked, end) = range(s);
        c.shards += 1;
        c.shards_done += usize::from(acked >= end);
        c.groups += u64::try_from(end.0 - start).unwrap_or(0);
        c.groups_done += u64::try_from(acked.0.min(end.0) - start).unwrap_or(0);
    }
    c
}

/// Prints a line every `every` until `stop`.
pub async fn run(
    tracker: Arc<Tracker>,
    metrics: Arc<Metrics>,
    every: Duration,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let first = counts(&tracker.snapshot().await);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = counts(&tracker.snapshot().await);
        let sent = metrics.totals.events_out.load(Ordering::Relaxed);
        eprintln!("{}", line(first, now, sent, started.elapsed()));
    }
}

/// The line: `replay: 3/8 shards done | 120000 events sent (4000/s) | 45% of LogGroups | ETA 1m 5s`.
pub fn line(first: Counts, now: Counts, sent: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let moved = now.groups_done.saturating_sub(first.groups_done) as f64;
    let left = now.groups.saturating_sub(now.groups_done);
    let eta = if left == 0 {
        "0s".to_owned()
    } else if moved == 0.0 {
        "unknown".to_owned()
    } else {
        let s = (left as f64 * secs / moved).round() as u64;
        match s {
            s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
            s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
            s => format!("{s}s"),
        }
    };
    let percent = if now.groups == 0 {
        100.0
    } else {
        now.groups_done as f64 * 100.0 / now.groups as f64
    };
    format!(
        "replay: {}/{} shards done | {sent} events sent ({:.0}/s) | {percent:.0}% of LogGroups | ETA {eta}",
        now.shards_done,
        now.shards,
        sent as f64 / secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_cursor_rate() {
        let first = Counts {
            shards_done: 0,
            shards: 8,
            groups_done: 0,
            groups: 1000,
        };
        let now = Counts {
            shards_done: 2,
            groups_done: 250,
            ..first
        };
        let l = line(first, now, 25_000, Duration::from_secs(10));
        assert_eq!(
            l,
            "replay: 2/8 shards done | 25000 events sent (2500/s) | 25% of LogGroups | ETA 30s"
        );
        assert!(line(first, first, 0, Duration::from_secs(1)).ends_with("ETA unknown"));
    }
}
