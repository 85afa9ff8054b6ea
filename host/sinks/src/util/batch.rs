//! [`EventBatch`]: rendered events in one buffer with end offsets (no allocation per event),
//! and [`BatchConfig`]: the size and age triggers the pipeline uses to decide when to send.
//!
//! Events are stored exactly as they go on the wire: an HEC envelope followed by its `\n`
//! separator, an octet-counted or LF-framed syslog frame, or a bare UDP datagram. Sending a
//! run of events is then one slice of the buffer.

use std::ops::Range;
use std::time::Duration;

/// A batch of rendered events.
#[derive(Debug, Default, Clone)]
pub struct EventBatch {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    end: usize,
    lane: Lane,
}

/// Which request kind an event belongs to (HEC: `/event` or `/raw`; syslog uses `Default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Default,
    Raw,
}

impl EventBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` rendered bytes and `events` events.
    pub fn with_capacity(bytes: usize, events: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(events),
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no event was rendered.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Total rendered bytes.
    pub fn bytes_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the batch holds, used or reserved (its allocations' capacity): what a
    /// memory budget charges for it.
    pub fn allocated_bytes(&self) -> usize {
        self.buf.capacity() + self.spans.capacity() * std::mem::size_of::<Span>()
    }

    /// The rendered bytes of event `index`, as they go on the wire (framing included).
    pub fn event(&self, index: usize) -> Option<&[u8]> {
        (index < self.spans.len()).then(|| &self.buf[self.range(index)])
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.spans.len()).map(|i| &self.buf[self.range(i)])
    }

    /// Appends one event already rendered as it goes on the wire (a sink of its own, such
    /// as a test sink, renders this way; the built-in sinks render in place).
    pub fn push(&mut self, event: &[u8]) {
        self.buf.extend_from_slice(event);
        self.commit(Lane::Default);
    }

    /// Empties the batch, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    /// The whole buffer (every event back to back).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn range(&self, index: usize) -> Range<usize> {
        let start = if index == 0 {
            0
        } else {
            self.spans[index - 1].end
        };
        start..self.spans[index].end
    }

    /// Byte range covering events `events.start..events.end`.
    pub(crate) fn byte_range(&self, events: Range<usize>) -> Range<usize> {
        if events.is_empty() {
            return 0..0;
        }
        self.range(events.start).start..self.spans[events.end - 1].end
    }

    pub(crate) fn lane(&self, index: usize) -> Lane {
        self.spans[index].lane
    }

    /// Starts rendering an event: returns the buffer to append to. Call [`Self::commit`] or
    /// [`Self::rollback`] with `self.buf.len()` taken before appending.
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the event started at the previous commit point.
    pub(crate) fn commit(&mut self, lane: Lane) {
        self.spans.push(Span {
            end: self.buf.len(),
            lane,
        });
    }

    /// Drops a partly rendered event.
    pub(crate) fn rollback(&mut self, start: usize) {
        self.buf.truncate(start);
    }
}

/// When the pipeline should send a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Send once the rendered bytes reach this size.
    pub max_bytes: usize,
    /// Send once this many events are in the batch.
    pub max_events: usize,
    /// Send a non-empty batch once its first event is this old.
    pub linger: Duration,
}

impl BatchConfig {
    /// True when `batch` should be sent now because of its size.
    pub fn is_full(&self, batch: &EventBatch) -> bool {
        batch.bytes_len() >= self.max_bytes || batch.len() >= self.max_events
    }

    /// True when `batch` should be sent now: full, or non-empty and `age` past the linger.
    pub fn should_send(&self, batch: &EventBatch, age: Duration) -> bool {
        !batch.is_empty() && (self.is_full(batch) || age >= self.linger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut EventBatch, s: &str, lane: Lane) {
        b.buf_mut().extend_from_slice(s.as_bytes());
        b.commit(lane);
    }

    #[test]
    fn spans_and_ranges() {
        let mut b = EventBatch::new();
        push(&mut b, "ab", Lane::Default);
        push(&mut b, "cde", Lane::Raw);
        push(&mut b, "f", Lane::Default);
        assert_eq!(b.len(), 3);
        assert_eq!(b.event(1), Some(&b"cde"[..]));
        assert_eq!(b.event(3), None);
        assert_eq!(b.byte_range(1..3), 2..6);
        assert_eq!(b.lane(1), Lane::Raw);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![&b"ab"[..], b"cde", b"f"]);
        let start = b.bytes_len();
        b.buf_mut().extend_from_slice(b"junk");
        b.rollback(start);
        assert_eq!(b.bytes(), b"abcdef");
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn triggers() {
        let cfg = BatchConfig {
            max_bytes: 4,
            max_events: 10,
            linger: Duration::from_secs(1),
        };
        let mut b = EventBatch::new();
        assert!(
            !cfg.should_send(&b, Duration::from_secs(5)),
            "empty batches are never sent"
        );
        push(&mut b, "ab", Lane::Default);
        assert!(!cfg.should_send(&b, Duration::from_millis(10)));
        assert!(cfg.should_send(&b, Duration::from_secs(1)));
        push(&mut b, "cd", Lane::Default);
        assert!(cfg.is_full(&b));
    }
}
