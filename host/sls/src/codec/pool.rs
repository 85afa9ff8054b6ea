//! Reused buffers for decompressed PullLogs bodies.
//!
//! Why: a pull expands into a few MiB that live until its batch is delivered. A fresh
//! allocation per pull is served by new pages from the kernel (glibc returns large freed
//! blocks), and zero-filling them on first touch cost 5 % of `shipper run`'s CPU in perf.
//! A buffer handed back by a dropped body is reused instead; its pages are already mapped.

use std::sync::Mutex;

/// Idle buffers kept, at most this many bytes in total: one pull of 4 MiB (the default
/// target) for each of four shards in steady state. The memory budget does not count them
/// (docs/architecture.md §6), so this is part of the process's fixed overhead.
const MAX_IDLE_BYTES: usize = 16 << 20;

/// A pool of byte buffers.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

/// The pool PullLogs bodies come from.
pub(crate) static PULL_BODIES: Pool = Pool::new();

impl Pool {
    pub(crate) const fn new() -> Self {
        Self {
            idle: Mutex::new(Idle {
                buffers: Vec::new(),
                bytes: 0,
            }),
        }
    }

    /// A buffer of exactly `len` initialised bytes (old contents, or zeros where it grew).
    /// An idle buffer is reused only if it fits: at least `len` and at most twice that, the
    /// smallest such. A large buffer behind a small body would hold memory the memory
    /// budget does not see (it counts the body's size, docs/architecture.md §6).
    pub(crate) fn take(&'static self, len: usize) -> Pooled {
        let reused = self.idle.lock().ok().and_then(|mut idle| {
            let (at, _) = idle
                .buffers
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len && b.capacity() <= len.saturating_mul(2))
                .min_by_key(|(_, b)| b.capacity())?;
            let buf = idle.buffers.swap_remove(at);
            idle.bytes -= buf.capacity();
            Some(buf)
        });
        let mut buf = reused.unwrap_or_default();
        buf.resize(len, 0);
        Pooled { buf, pool: self }
    }

    fn give_back(&self, buf: Vec<u8>) {
        // A poisoned lock only means no reuse.
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if buf.capacity() > MAX_IDLE_BYTES {
            return;
        }
        // The oldest go first: when the bodies' size changes, buffers of the old size
        // would otherwise fill the pool and never fit again.
        while idle.bytes + buf.capacity() > MAX_IDLE_BYTES {
            let old = idle.buffers.remove(0);
            idle.bytes -= old.capacity();
        }
        idle.bytes += buf.capacity();
        idle.buffers.push(buf);
    }
}

/// A buffer that returns to its pool when dropped (the owner behind a body's `Bytes`).
#[derive(Debug)]
pub(crate) struct Pooled {
    buf: Vec<u8>,
    pool: &'static Pool,
}

impl Pooled {
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() > 0 {
            self.pool.give_back(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaked() -> &'static Pool {
        Box::leak(Box::new(Pool::new()))
    }

    #[test]
    fn a_dropped_buffer_is_reused_with_the_requested_length() {
        let pool = leaked();
        let mut a = pool.take(1000);
        assert_eq!(a.as_ref(), &[0u8; 1000][..]);
        a.as_mut_slice().fill(7);
        let ptr = a.as_ref().as_ptr();
        drop(a);
        // Somewhat smaller: the same allocation, cut to length.
        let b = pool.take(600);
        assert_eq!((b.as_ref().as_ptr(), b.as_ref().len()), (ptr, 600));
        drop(b);
        // Much smaller: not behind a body of 10 bytes; a new one.
        let c = pool.take(10);
        assert_ne!(c.as_ref().as_ptr(), ptr);
        assert_eq!(c.as_ref(), &[0u8; 10][..]);
        // Larger: a new one, zeroed.
        let d = pool.take(2000);
        assert_eq!(d.as_ref(), &[0u8; 2000][..]);
    }

    #[test]
    fn idle_bytes_are_capped() {
        let pool = leaked();
        let big: Vec<Pooled> = (0..3).map(|_| pool.take(MAX_IDLE_BYTES / 2)).collect();
        drop(big);
        let idle = pool.idle.lock().unwrap();
        assert_eq!(
            idle.buffers.len(),
            2,
            "the oldest buffer is freed, not kept"
        );
        assert!(idle.bytes <= MAX_IDLE_BYTES);
    }

    #[test]
    fn a_body_owns_its_buffer_until_the_last_slice_drops() {
        let pool = leaked();
        let mut p = pool.take(4);
        p.as_mut_slice().copy_from_slice(b"abcd");
        let body = bytes::Bytes::from_owner(p);
        let slice = body.slice(1..3);
        drop(body);
        assert!(pool.idle.lock().unwrap().buffers.is_empty());
        assert_eq!(&slice[..], b"bc");
        drop(slice);
        assert_eq!(pool.idle.lock().unwrap().buffers.len(), 1);
    }
}
