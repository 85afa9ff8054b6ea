//! The plugin generation in use: a compiled plugin plus the config it runs with, published
//! through an atomically swapped pointer (arc-swap) so a hot swap changes it without locks.
//! Shard workers read it only between batches: each batch is formatted by one generation,
//! delivered, then checkpointed — so a swap neither loses nor duplicates anything.
//!
//! Each generation carries a crash-loop [`Breaker`]: traps are normally isolated one log at a
//! time (bisection → dead-letter file), but a plugin that fails on everything would send the
//! whole stream to the dead-letter file. Once the breaker trips, the slot rolls back to the
//! previous generation if the current one is recent, else the configured [`FailurePolicy`]
//! applies.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::instances::InstancePool;
use crate::pipeline::format::Formatter;

/// Traps within [`DEFAULT_BREAKER_WINDOW`] that trip the breaker. The pipeline counts a failed
/// batch once and each isolated poison log once (not every bisection step), so one poison log
/// costs 2 and 20 means ten bad logs a minute, or a plugin failing on everything.
pub const DEFAULT_BREAKER_THRESHOLD: usize = 20;
/// Window of the breaker count.
pub const DEFAULT_BREAKER_WINDOW: Duration = Duration::from_secs(60);
/// A generation younger than this is rolled back when its breaker trips: the previous one
/// was working minutes ago.
pub const ROLLBACK_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What to do while the breaker is tripped (and no rollback is possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Stop acknowledging: back off and retry the batch, nothing lost, nothing dead-lettered,
    /// until the plugin works again (fixed by a hot swap, or the failures were transient).
    #[default]
    Pause,
    /// Ship the logs in a built-in JSON format (no plugin) so the SIEM keeps receiving data.
    Passthrough,
}

/// Counts plugin traps in a sliding window.
#[derive(Debug)]
pub struct Breaker {
    threshold: usize,
    window: Duration,
    traps: Mutex<VecDeque<Instant>>,
}

impl Breaker {
    /// A breaker tripping at `threshold` traps within `window`.
    pub fn new(threshold: usize, window: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            window,
            traps: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a trap; true when the breaker is (now) tripped.
    pub fn record(&self) -> bool {
        let now = Instant::now();
        let mut traps = self.traps.lock().expect("breaker lock");
        traps.push_back(now);
        while traps
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            traps.pop_front();
        }
        traps.len() >= self.threshold
    }

    /// True when the window holds `threshold` traps or more.
    pub fn is_tripped(&self) -> bool {
        self.count() >= self.threshold
    }

    /// Traps in the window now.
    pub fn count(&self) -> usize {
        let now = Instant::now();
        let traps = self.traps.lock().expect("breaker lock");
        traps
            .iter()
            .filter(|t| now.duration_since(**t) <= self.window)
            .count()
    }
}

/// One loaded, `init`-checked plugin version.
#[derive(Debug)]
pub struct Generation {
    /// The compiled plugin.
    pub plugin: Arc<dyn Formatter>,
    /// Its instances, borrowed by the shards one call at a time.
    pub instances: InstancePool,
    /// Config given to `init`, as JSON text.
    pub config_json: Arc<str>,
    /// Name the plugin gave in `init`.
    pub name: String,
    /// Version the plugin gave in `init`.
    pub version: String,
    /// File it was loaded from.
    pub path: PathBuf,
    /// Trap counter of this generation.
    pub breaker: Breaker,
    /// When it became current.
    pub published: Instant,
    /// The generation it replaced (kept compiled for an instant rollback; one level deep).
    pub previous: Option<Arc<Generation>>,
}

impl Generation {
    /// Short form for log lines: `name@version#hashprefix`.
    pub fn label(&self) -> String {
        let hash = self.plugin.hash();
        format!(
            "{}@{}#{}",
            self.name,
            self.version,
            &hash[..hash.len().min(12)]
        )
    }
}

/// Holder of the current generation.
#[derive(Debug)]
pub struct PluginSlot {
    current: ArcSwap<Generation>,
    /// Serialises publish/rollback (readers never wait).
    write: Mutex<()>,
}

impl PluginSlot {
    /// A slot holding `first`.
    pub fn new(first: Generation) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(first),
            write: Mutex::new(()),
        })
    }

    /// The generation to use for the next batch.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` current for every batch that starts from now on; the old one is kept as
    /// `previous` for rollback.
    pub fn publish(&self, mut next: Generation) -> Arc<Generation> {
        let _w = self.write.lock().expect("slot lock");
        let old = self.current.load_full();
        // The old generation is kept for a rollback, not its idle instances.
        old.instances.clear();
        next.previous = Some(strip_previous(&old));
        next.published = Instant::now();
        let next = Arc::new(next);
        self.current.store(next.clone());
        next
    }

    /// If `failing` is still current, recent, and has a predecessor: make the predecessor
    /// current again. Returns the generation now current when a rollback happened.
    pub fn rollback(&self, failing: &Arc<Generation>) -> Option<Arc<Generation>> {
        let _w = self.write.lock().expect("slot lock");
        let current = self.current.load_full();
        if !Arc::ptr_eq(&current, failing) || current.published.elapsed() > ROLLBACK_WINDOW {
            return None;
        }
        let previous = current.previous.clone()?;
        let restored = Arc::new(Generation {
            plugin: previous.plugin.clone(),
            instances: InstancePool::new(previous.instances.limit()),
            config_json: previous.config_json.clone(),
            name: previous.name.clone(),
            version: previous.version.clone(),
            path: previous.path.clone(),
            breaker: Breaker::new(failing.breaker.threshold, failing.breaker.window),
            published: Instant::now(),
            previous: None,
        });
        self.current.store(restored.clone());
        Some(restored)
    }
}

/// The same generation without its own `previous` link (keeps one level of history alive).
fn strip_previous(g: &Arc<Generation>) -> Arc<Generation> {
    if g.previous.is_none() {
        return g.clone();
    }
    Arc::new(Generation {
        plugin: g.plugin.clone(),
        instances: InstancePool::new(g.instances.limit()),
        config_json: g.config_json.clone(),
        name: g.name.clone(),
        version: g.version.clone(),
        path: g.path.clone(),
        breaker: Breaker::new(g.breaker.threshold, g.breaker.window),
        published: g.published,
        previous: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn breaker_trips_at_the_threshold_within_the_window() {
        let b = Breaker::new(3, Duration::from_secs(10));
        assert!(!b.record());
        assert!(!b.record());
        assert!(b.record());
        assert!(b.is_tripped());
        assert_eq!(b.count(), 3);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.is_tripped(), "old traps leave the window");
        assert!(!b.record());
    }
}
