//! The one-line progress summary `shipper run` prints to stderr every few seconds on a
//! terminal (or with `--progress always`): what moved since the last line and in total.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Prints a line every `every` until `shutdown`.
pub async fn run(metrics: Arc<Metrics>, every: Duration, shutdown: CancellationToken) {
    let t = &metrics.totals;
    let mut last = (0u64, 0u64, 0u64);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = (
            t.logs_in.load(Ordering::Relaxed),
            t.events_out.load(Ordering::Relaxed),
            t.raw_bytes_in.load(Ordering::Relaxed),
        );
        let secs = every.as_secs_f64();
        eprintln!("{}", line(&metrics, now, last, secs));
        last = now;
    }
}

fn line(metrics: &Metrics, now: (u64, u64, u64), last: (u64, u64, u64), secs: f64) -> String {
    let t = &metrics.totals;
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
    format!(
        "progress: {} shards (lag {} groups) | in {} logs ({:.0}/s, {:.1} MB/s raw) | out {} events ({:.0}/s) | dropped {} | dead-lettered {}",
        t.shards.load(Ordering::Relaxed),
        t.lag_groups.load(Ordering::Relaxed),
        now.0,
        rate(now.0, last.0),
        rate(now.2, last.2) / 1e6,
        now.1,
        rate(now.1, last.1),
        t.dropped.load(Ordering::Relaxed),
        t.dead_lettered.load(Ordering::Relaxed),
    )
}
