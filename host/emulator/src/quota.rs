//! Per-shard read quota: SLS documents soft limits of about 10 MB/s and 100 reads/s per shard
//! (docs/sls-protocol.md §12 "Limits and quotas"). The emulator answers a PullLogs over either
//! limit with `403 ReadQuotaExceed`, the error SLS documents for it. That is a modelling
//! choice: a soft limit may instead be met by serving more slowly, which a client cannot tell
//! from distance; refusing is the case that needs client code (a backoff), so it is the one
//! worth emulating.
//!
//! Each shard has two token buckets that refill continuously and hold one second's worth:
//! one of reads, one of raw bytes (the `x-log-bodyrawsize` of each reply, so the quota and the
//! `--max-pull-bytes` cap are in the same unit). A pull is admitted while both buckets hold
//! something; its size is only known once it was read, so the bytes are taken afterwards and
//! may drive the byte bucket below zero, which refuses the next pulls until it has refilled.
//! Over time a shard is served at most the configured rate, and a client that keeps asking
//! loses nothing to the refusals as long as it asks again within a second (the bucket is
//! never full while it is in debt).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::ApiError;

/// The default byte limit per shard: SLS's documented 10 MB/s.
pub const DEFAULT_SHARD_READ_BYTES_PER_SEC: u64 = 10_000_000;
/// The default read limit per shard: SLS's documented 100 reads/s.
pub const DEFAULT_SHARD_READS_PER_SEC: u32 = 100;

/// The limits of every shard; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadQuota {
    /// Raw bytes served per second per shard (0: unlimited).
    pub bytes_per_sec: u64,
    /// PullLogs admitted per second per shard (0: unlimited).
    pub reads_per_sec: u32,
}

impl Default for ReadQuota {
    fn default() -> Self {
        Self {
            bytes_per_sec: DEFAULT_SHARD_READ_BYTES_PER_SEC,
            reads_per_sec: DEFAULT_SHARD_READS_PER_SEC,
        }
    }
}

impl ReadQuota {
    /// No limit at all.
    pub const OFF: Self = Self {
        bytes_per_sec: 0,
        reads_per_sec: 0,
    };

    fn is_off(self) -> bool {
        self.bytes_per_sec == 0 && self.reads_per_sec == 0
    }
}

/// A bucket that refills at `rate` per second up to one second's worth, and may go into debt.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Self {
        Self {
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
    }
}

/// Both buckets of one shard.
#[derive(Debug, Clone, Copy)]
struct ShardBuckets {
    reads: Bucket,
    bytes: Bucket,
}

/// The read quota of every shard of the emulator, keyed by the shard's process-unique id.
#[derive(Debug)]
pub(crate) struct ReadQuotas {
    quota: ReadQuota,
    shards: Mutex<HashMap<u64, ShardBuckets>>,
}

impl ReadQuotas {
    pub(crate) fn new(quota: ReadQuota) -> Self {
        Self {
            quota,
            shards: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, shard: u64, now: Instant, f: impl FnOnce(&mut ShardBuckets) -> T) -> T {
        let (reads, bytes) = self.rates();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let b = shards.entry(shard).or_insert_with(|| ShardBuckets {
            reads: Bucket::full(reads, now),
            bytes: Bucket::full(bytes, now),
        });
        b.reads.refill(reads, now);
        b.bytes.refill(bytes, now);
        f(b)
    }

    fn rates(&self) -> (f64, f64) {
        (
            f64::from(self.quota.reads_per_sec),
            self.quota.bytes_per_sec as f64,
        )
    }

    /// Admits one PullLogs on `shard` (`id` for the message) at `now`, or refuses it with
    /// `403 ReadQuotaExceed`.
    pub(crate) fn admit(&self, shard: u64, id: u32, now: Instant) -> Result<(), ApiError> {
        if self.quota.is_off() {
            return Ok(());
        }
        let quota = self.quota;
        self.with(shard, now, |b| {
            if quota.reads_per_sec > 0 && b.reads.tokens < 1.0 {
                return Err(ApiError::new(
                    403,
                    "ReadQuotaExceed",
                    format!(
                        "Read QPS Exceed: shard {id} is limited to {} reads/s",
                        quota.reads_per_sec
                    ),
                ));
            }
            if quota.bytes_per_sec > 0 && b.bytes.tokens < 0.0 {
                return Err(ApiError::new(
                    403,
                    "ReadQuotaExceed",
                    format!(
                        "Read Quota Exceed: shard {id} is limited to {} bytes/s",
                        quota.bytes_per_sec
                    ),
                ));
            }
            if quota.reads_per_sec > 0 {
                b.reads.tokens -= 1.0;
            }
            Ok(())
        })
    }

    /// Takes the `raw_bytes` an admitted pull served on `shard` from its byte bucket.
    pub(crate) fn charge(&self, shard: u64, raw_bytes: usize, now: Instant) {
        if self.quota.bytes_per_sec == 0 {
            return;
        }
        self.with(shard, now, |b| b.bytes.tokens -= raw_bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn quotas(bytes_per_sec: u64, reads_per_sec: u32) -> ReadQuotas {
        ReadQuotas::new(ReadQuota {
            bytes_per_sec,
            reads_per_sec,
        })
    }

    #[test]
    fn reads_beyond_the_rate_are_refused_until_the_bucket_refills() {
        let q = quotas(0, 10);
        let t0 = Instant::now();
        for _ in 0..10 {
            q.admit(1, 0, t0).unwrap();
        }
        let e = q.admit(1, 0, t0).unwrap_err();
        assert_eq!((e.status, &*e.code), (403, "ReadQuotaExceed"));
        assert!(e.message.contains("10 reads/s"), "{}", e.message);
        // A tenth of a second buys one more read at 10/s, and no more.
        q.admit(1, 0, t0 + 100 * MS).unwrap();
        assert!(q.admit(1, 0, t0 + 100 * MS).is_err());
        // Shards are independent.
        q.admit(2, 1, t0).unwrap();
    }

    #[test]
    fn bytes_may_go_into_debt_which_refuses_until_repaid() {
        let q = quotas(1000, 0);
        let t0 = Instant::now();
        q.admit(7, 0, t0).unwrap();
        // One reply larger than a second's worth is served whole (its size was unknown).
        q.charge(7, 2500, t0);
        let e = q.admit(7, 0, t0 + 1000 * MS).unwrap_err();
        assert!(e.message.contains("1000 bytes/s"), "{}", e.message);
        // The debt of 1500 is repaid after 1.5 s.
        assert!(q.admit(7, 0, t0 + 1499 * MS).is_err());
        q.admit(7, 0, t0 + 1500 * MS).unwrap();
    }

    #[test]
    fn an_idle_shard_saves_at_most_one_second() {
        let q = quotas(1000, 0);
        let t0 = Instant::now();
        q.admit(1, 0, t0).unwrap();
        q.charge(1, 1000, t0 + 60_000 * MS);
        // After a minute idle, the bucket held 1000 (not 60,000): one more byte is debt.
        q.charge(1, 1, t0 + 60_000 * MS);
        assert!(q.admit(1, 0, t0 + 60_000 * MS).is_err());
    }

    #[test]
    fn served_bytes_never_exceed_the_rate_plus_one_reply() {
        // A client that asks every 50 ms for 300-byte replies against 1000 bytes/s gets, over
        // 9.95 s, what the rate allows: the starting second plus the refill, give or take
        // one reply.
        let q = quotas(1000, 0);
        let t0 = Instant::now();
        let mut served = 0;
        for step in 0..200 {
            let now = t0 + step * 50 * MS;
            if q.admit(1, 0, now).is_ok() {
                q.charge(1, 300, now);
                served += 300;
            }
        }
        let allowed = 1000 + 9950;
        assert!(served <= allowed + 300, "{served}");
        assert!(
            served >= allowed - 300,
            "{served}: refusals cost no throughput"
        );
    }

    #[test]
    fn off_admits_everything() {
        let q = ReadQuotas::new(ReadQuota::OFF);
        let t0 = Instant::now();
        for _ in 0..1000 {
            q.admit(1, 0, t0).unwrap();
            q.charge(1, 1 << 30, t0);
        }
    }
}
