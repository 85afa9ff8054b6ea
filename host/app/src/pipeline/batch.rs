//! The events a shard collects for its next send ([`OpenBatch`]), where each one came from
//! ([`Origin`], [`Source`]) so a rejected event can be dead-lettered with its original log,
//! and the reuse of event buffers between sends.

use std::sync::Arc;

use shipper_sinks::EventBatch;
use shipper_sls::consumer::{BudgetShare, Charge};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::LogGroupView;
use tokio::time::Instant;

use crate::generation::Generation;

/// Event buffers kept for reuse per shard (one being filled, these waiting).
const MAX_SPARE_BATCHES: usize = 2;
/// Room beyond the batch size for the event that crosses it.
pub(crate) const BATCH_SLACK: usize = 64 << 10;
/// Largest buffer allocated up front (a sink with a huge batch size grows on demand).
const MAX_PRESIZE: usize = 8 << 20;

/// Where a rendered event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index into the send's [`OpenBatch::sources`].
    pub source: u32,
    /// LogGroup index in that pulled batch.
    pub group: u32,
    /// Log index in that group.
    pub log: u32,
}

/// A pulled batch kept alive while its events are in flight (its bytes are slices of one
/// decompressed body, so this is a reference count, not a copy).
#[derive(Debug)]
pub struct Source {
    /// Cursor the pull started at (LogGroup `i` is at `cursor + i`).
    pub cursor: Cursor,
    /// The LogGroups, still encoded.
    pub groups: Vec<LogGroupView>,
    /// When it was pulled (for the batch latency histogram).
    pub pulled_at: Instant,
    /// The plugin generations that formatted it, one per format stage of the shard (named
    /// in dead-letter entries).
    pub generations: Vec<Arc<Generation>>,
    /// Its bytes in the memory budget: released with the data, when the last send that
    /// carries one of its events settles.
    pub memory: Option<Arc<shipper_sls::consumer::Charge>>,
}

/// The events being collected for the next send.
#[derive(Debug)]
pub struct OpenBatch {
    /// Rendered events, exactly as they go on the wire.
    pub events: EventBatch,
    /// One per event, in render order.
    pub origins: Vec<Origin>,
    /// The pulled batches `origins` point into.
    pub sources: Vec<Arc<Source>>,
    /// Position to report once this send is settled: set when the last event of a pulled
    /// batch has been rendered into this send.
    pub commit: Option<Cursor>,
    /// When the first event (or position) went in: the linger timer starts here.
    pub opened: Option<Instant>,
}

impl OpenBatch {
    /// An empty batch over `events` (a fresh or reused buffer).
    pub fn new(events: EventBatch) -> Self {
        Self {
            events,
            origins: Vec::new(),
            sources: Vec::new(),
            commit: None,
            opened: None,
        }
    }

    /// Nothing to send: no event and no position.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commit.is_none()
    }

    /// Records that the event just rendered came from log `log` of group `group` of
    /// `source`.
    pub fn push_origin(&mut self, source: &Arc<Source>, group: u32, log: u32) {
        if !self.sources.last().is_some_and(|s| Arc::ptr_eq(s, source)) {
            self.sources.push(source.clone());
        }
        self.origins.push(Origin {
            source: (self.sources.len() - 1) as u32,
            group,
            log,
        });
        self.opened.get_or_insert_with(Instant::now);
    }
}

/// Event buffers handed back by settled sends, reused for the next open batch so rendering
/// never grows a fresh buffer by reallocation. Under a memory budget a kept buffer is
/// charged to the shard, and kept only while the shard is within its share.
#[derive(Debug, Default)]
pub struct BufferPool {
    spare: Vec<(EventBatch, Option<Charge>)>,
}

impl BufferPool {
    /// A buffer: a reused one, or a new one sized for a full batch of `max_bytes`.
    pub fn take(&mut self, max_bytes: usize) -> EventBatch {
        self.spare.pop().map_or_else(
            || {
                EventBatch::with_capacity(
                    max_bytes.saturating_add(BATCH_SLACK).min(MAX_PRESIZE),
                    1024,
                )
            },
            |(batch, _charge)| batch,
        )
    }

    /// Keeps `batch` (cleared) for reuse, unless enough are kept already or (with a memory
    /// share) the shard has no room for it.
    pub fn give_back(&mut self, mut batch: EventBatch, memory: Option<&BudgetShare>) {
        if self.spare.len() >= MAX_SPARE_BATCHES {
            return;
        }
        let charge = match memory {
            None => None,
            Some(m) => {
                let bytes = batch.allocated_bytes();
                if m.used() + bytes > m.share() {
                    return;
                }
                Some(m.charge(bytes))
            }
        };
        batch.clear();
        self.spare.push((batch, charge));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_reuses_cleared_buffers_and_keeps_only_a_few() {
        let mut pool = BufferPool::default();
        let mut b = pool.take(100);
        assert!(b.is_empty());
        b.push(b"event");
        pool.give_back(b, None);
        let reused = pool.take(100);
        assert!(reused.is_empty(), "a reused buffer comes back cleared");
        for _ in 0..5 {
            pool.give_back(EventBatch::new(), None);
        }
        assert_eq!(pool.spare.len(), MAX_SPARE_BATCHES);
    }

    #[test]
    fn under_a_budget_kept_buffers_are_charged_and_kept_only_with_room() {
        let budget = shipper_sls::MemoryBudget::new(1 << 20);
        let share = budget.share();
        let mut pool = BufferPool::default();
        pool.give_back(EventBatch::with_capacity(100_000, 0), Some(&share));
        assert_eq!(budget.used(), 100_000, "a kept buffer is charged");
        // No room for a buffer larger than what is left of the share.
        pool.give_back(EventBatch::with_capacity(2 << 20, 0), Some(&share));
        assert_eq!(pool.spare.len(), 1);
        drop(pool.take(10));
        assert_eq!(
            budget.used(),
            0,
            "a buffer taken out is no longer the pool's"
        );
    }
}
