//! The events a shard collects for its next send ([`OpenBatch`]), where each one came from
//! ([`Origin`], [`Source`]) so a rejected event can be dead-lettered with its original log,
//! and the reuse of event buffers between sends.

use std::sync::Arc;

use shipper_sinks::EventBatch;
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::LogGroupView;
use tokio::time::Instant;

use crate::generation::Generation;

/// Event buffers kept for reuse per shard (one being filled, these waiting).
const MAX_SPARE_BATCHES: usize = 2;
/// Room beyond the batch size for the event that crosses it.
const BATCH_SLACK: usize = 64 << 10;
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
/// never grows a fresh buffer by reallocation.
#[derive(Debug, Default)]
pub struct BufferPool {
    spare: Vec<EventBatch>,
}

impl BufferPool {
    /// A buffer: a reused one, or a new one sized for a full batch of `max_bytes`.
    pub fn take(&mut self, max_bytes: usize) -> EventBatch {
        self.spare.pop().unwrap_or_else(|| {
            EventBatch::with_capacity(max_bytes.saturating_add(BATCH_SLACK).min(MAX_PRESIZE), 1024)
        })
    }

    /// Keeps `batch` (cleared) for reuse, unless enough are kept already.
    pub fn give_back(&mut self, mut batch: EventBatch) {
        if self.spare.len() < MAX_SPARE_BATCHES {
            batch.clear();
            self.spare.push(batch);
        }
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
        pool.give_back(b);
        let reused = pool.take(100);
        assert!(reused.is_empty(), "a reused buffer comes back cleared");
        for _ in 0..5 {
            pool.give_back(EventBatch::new());
        }
        assert_eq!(pool.spare.len(), MAX_SPARE_BATCHES);
    }
}
