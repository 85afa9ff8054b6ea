//! The request size of a sink with `concurrency = "adaptive"` (docs/rendering.md §3.16
//! "Adaptive concurrency"): how many uncompressed bytes go in one request, and so how large
//! a batch the pipeline fills (`Sink::batch_config`).
//!
//! A far endpoint that serves only N requests at a time carries at most N requests per
//! round trip, whatever their concurrency limit: 8 requests of 1 MB per 100 ms is 80 MB/s.
//! Past that point only larger requests raise the throughput (the bandwidth-delay product
//! has to fit in N requests). So the size starts at `batch_max_bytes` and doubles each time
//! an endpoint reports a window in which its limit was full and could not be raised
//! ([`Observed::Saturated`](super::adaptive::Observed)) while the requests were full-sized,
//! up to `adaptive_max_request_bytes`. A 413 brings it down to what the endpoints still take
//! (each endpoint halves its own limit, `endpoint.rs`).
//!
//! With a fixed `concurrency` the size is `batch_max_bytes`, always.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A request counts as full-sized when it holds at least this fraction of the current size:
/// the pipeline cuts batches on event boundaries, so a full batch is a little under it.
const FULL_FRACTION: f64 = 0.75;

/// The sink's current request size. Shared by the request tasks; lock-free.
#[derive(Debug)]
pub(crate) struct RequestSize {
    current: AtomicUsize,
    ceiling: usize,
}

impl RequestSize {
    /// Starts at `base` (the configured `batch_max_bytes`); grows up to `ceiling` (equal to
    /// `base` with a fixed concurrency: never grows).
    pub(crate) fn new(base: usize, ceiling: usize) -> Self {
        Self {
            current: AtomicUsize::new(base),
            ceiling: ceiling.max(base),
        }
    }

    /// Uncompressed bytes per request now.
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// An endpoint was saturated while a request of `raw_len` bytes was answered: doubles
    /// the size (up to the ceiling, and to `largest`, the most any endpoint takes after
    /// its 413s) when that request was full-sized. A request smaller than the size means
    /// the pipeline has no more to send per request: growing would only make batches wait
    /// for their linger. Returns the new size when it grew.
    pub(crate) fn saturated(&self, raw_len: usize, largest: usize) -> Option<usize> {
        let now = self.current();
        let ceiling = self.ceiling.min(largest);
        if (raw_len as f64) < now as f64 * FULL_FRACTION || now >= ceiling {
            return None;
        }
        let next = now.saturating_mul(2).min(ceiling);
        // Another request may have grown it meanwhile: one doubling per size.
        self.current
            .compare_exchange(now, next, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| next)
    }

    /// After a 413: no larger than `largest`, the most any endpoint still takes. Returns
    /// the new size when it went down.
    pub(crate) fn at_most(&self, largest: usize) -> Option<usize> {
        let old = self.current.fetch_min(largest, Ordering::Relaxed);
        (largest < old).then_some(largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1_000_000;

    #[test]
    fn doubles_on_full_requests_up_to_the_ceiling() {
        let s = RequestSize::new(MB, 16 * MB);
        assert_eq!(s.current(), MB);
        for want in [2, 4, 8, 16] {
            assert_eq!(s.saturated(s.current(), usize::MAX), Some(want * MB));
        }
        assert_eq!(
            s.saturated(s.current(), usize::MAX),
            None,
            "the ceiling holds"
        );
        assert_eq!(s.current(), 16 * MB);
    }

    #[test]
    fn a_request_well_under_the_size_does_not_grow_it() {
        let s = RequestSize::new(MB, 16 * MB);
        assert_eq!(s.saturated(MB / 2, usize::MAX), None);
        assert_eq!(s.current(), MB);
        // A batch cut on an event boundary just under the size is full.
        assert_eq!(s.saturated(MB * 9 / 10, usize::MAX), Some(2 * MB));
    }

    #[test]
    fn fixed_concurrency_never_grows() {
        let s = RequestSize::new(MB, MB);
        assert_eq!(s.saturated(MB, usize::MAX), None);
        assert_eq!(s.current(), MB);
        // A ceiling below the base is the base.
        let s = RequestSize::new(MB, MB / 2);
        assert_eq!(s.saturated(MB, usize::MAX), None);
    }

    #[test]
    fn a_413_brings_it_down_and_growth_resumes_from_there() {
        let s = RequestSize::new(MB, 16 * MB);
        s.saturated(MB, usize::MAX);
        s.saturated(2 * MB, usize::MAX);
        s.saturated(4 * MB, usize::MAX);
        assert_eq!(s.current(), 8 * MB);
        assert_eq!(s.at_most(4 * MB), Some(4 * MB));
        assert_eq!(s.at_most(6 * MB), None, "never raised by a 413");
        assert_eq!(s.current(), 4 * MB);
        // The endpoint that answered 413 now takes at most 4 MB: no growth past it.
        assert_eq!(s.saturated(4 * MB, 4 * MB), None);
        assert_eq!(s.current(), 4 * MB);
    }
}
