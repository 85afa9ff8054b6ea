//! [`ConsumerStats`]: what the consumer-group worker retried, why its readers stopped, and
//! when the server last confirmed its membership, as plain atomics for a metrics exporter to
//! read at scrape time.
//!
//! Optional: set [`ConsumerConfig::stats`](super::ConsumerConfig::stats) to count. Without
//! it nothing is counted and the only cost is a `None` check on the (rare) error paths and
//! once per heartbeat. Nothing here is touched per log or per batch.
//!
//! A *retry* is a failed SLS call that the worker repeats on its own: a pull, a checkpoint
//! commit, a start-cursor lookup or a group join after a backoff, a heartbeat at the next
//! interval. The call is counted once per failure; one that finally gives up (a commit after
//! its last attempt) is not a retry and is reported to the caller instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::SlsError;

/// The call a retry repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetriedCall {
    /// PullLogs, in a shard reader.
    Pull,
    /// ConsumerGroupHeartBeat (retried at the next heartbeat interval).
    Heartbeat,
    /// ConsumerGroupUpdateCheckPoint, in a checkpoint commit.
    Checkpoint,
    /// GetCheckPoint, while resolving a new lease's start cursor.
    GetCheckpoint,
    /// GetCursor, while resolving a start cursor or restarting after `InvalidCursor`.
    GetCursor,
    /// Creating (or aligning) the consumer group, on join or after it disappeared.
    CreateGroup,
}

impl RetriedCall {
    /// Every call, in label order.
    pub const ALL: [Self; 6] = [
        Self::Pull,
        Self::Heartbeat,
        Self::Checkpoint,
        Self::GetCheckpoint,
        Self::GetCursor,
        Self::CreateGroup,
    ];

    /// A short snake_case name for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Heartbeat => "heartbeat",
            Self::Checkpoint => "checkpoint",
            Self::GetCheckpoint => "get_checkpoint",
            Self::GetCursor => "get_cursor",
            Self::CreateGroup => "create_group",
        }
    }
}

/// Why a call failed, coarsely (what an operator looks at first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryCause {
    /// SLS answered 5xx, or `InternalServerError`/`ServerBusy`/`RequestTimeout`.
    Server,
    /// SLS throttled the request: a `…QuotaExceed`/`…QpsExceed` code, 429, or a 403 without
    /// a code (docs/sls-protocol.md §11.3 "Retry classification").
    Quota,
    /// No HTTP answer: connect, TLS, timeout, connection closed.
    Transport,
    /// Not sent: the credentials expired and could not be refreshed yet.
    Credentials,
    /// Anything else (a non-retryable answer to a call that is repeated anyway, such as a
    /// rejected heartbeat).
    Other,
}

impl RetryCause {
    /// Every cause, in label order.
    pub const ALL: [Self; 5] = [
        Self::Server,
        Self::Quota,
        Self::Transport,
        Self::Credentials,
        Self::Other,
    ];

    /// A short snake_case name for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Quota => "quota",
            Self::Transport => "transport",
            Self::Credentials => "credentials",
            Self::Other => "other",
        }
    }

    /// Classifies `e`.
    pub fn of(e: &SlsError) -> Self {
        match e {
            SlsError::Transport { .. } => Self::Transport,
            SlsError::Credentials { .. } => Self::Credentials,
            SlsError::Api(api) => {
                let code = api.code.as_deref().unwrap_or("");
                if api.status >= 500
                    || matches!(
                        code,
                        "InternalServerError" | "ServerBusy" | "RequestTimeout"
                    )
                {
                    Self::Server
                } else if code.contains("QuotaExceed")
                    || code.contains("QpsExceed")
                    || api.status == 429
                    || (api.status == 403 && api.code.is_none())
                {
                    Self::Quota
                } else {
                    Self::Other
                }
            }
            _ => Self::Other,
        }
    }
}

/// Why a shard reader stopped (yielded an error and ended) instead of retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The body could not be decoded (lz4, protobuf, a cursor header).
    Decode,
    /// A 200 answer that breaks the protocol (a required header missing or malformed).
    Protocol,
    /// A non-retryable SLS error (auth, unknown shard, SPL rejected, …).
    Api,
}

impl ReadErrorKind {
    /// Every kind, in label order.
    pub const ALL: [Self; 3] = [Self::Decode, Self::Protocol, Self::Api];

    /// A short snake_case name for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Protocol => "protocol",
            Self::Api => "api",
        }
    }

    /// Classifies an error that stopped a reader. PullLogs fails only with
    /// decode, protocol, API and (retried) transport errors, so anything that is not a
    /// decode or protocol error counts as an API error.
    pub fn of(e: &SlsError) -> Self {
        match e {
            SlsError::Decode { .. } => Self::Decode,
            SlsError::Protocol { .. } => Self::Protocol,
            _ => Self::Api,
        }
    }
}

const CALLS: usize = RetriedCall::ALL.len();
const CAUSES: usize = RetryCause::ALL.len();
const KINDS: usize = ReadErrorKind::ALL.len();

/// Counters of one consumer (see the module docs). Share it in an `Arc` between the
/// [`ConsumerConfig`](super::ConsumerConfig) and whatever exports it; all reads are
/// lock-free.
#[derive(Debug)]
pub struct ConsumerStats {
    retries: [[AtomicU64; CAUSES]; CALLS],
    read_errors: [AtomicU64; KINDS],
    /// Nanoseconds readers waited after throttled pulls.
    quota_wait_nanos: AtomicU64,
    /// Origin of `membership_confirmed`.
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last confirmation, plus one; 0 = none yet.
    membership_confirmed: AtomicU64,
}

impl Default for ConsumerStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerStats {
    /// All counters at 0, no heartbeat yet.
    pub fn new() -> Self {
        Self {
            retries: Default::default(),
            read_errors: Default::default(),
            quota_wait_nanos: AtomicU64::new(0),
            epoch: Instant::now(),
            membership_confirmed: AtomicU64::new(0),
        }
    }

    /// Retries of `call` caused by `cause` so far.
    pub fn retries(&self, call: RetriedCall, cause: RetryCause) -> u64 {
        self.retries[call as usize][cause as usize].load(Ordering::Relaxed)
    }

    /// Readers stopped by a `kind` error so far.
    pub fn read_errors(&self, kind: ReadErrorKind) -> u64 {
        self.read_errors[kind as usize].load(Ordering::Relaxed)
    }

    /// Time the readers of this consumer spent waiting after a pull was refused for the
    /// shard's read quota, all shards together. Growing by about one second per second and
    /// shard means the shard reads at its quota.
    pub fn quota_wait(&self) -> Duration {
        Duration::from_nanos(self.quota_wait_nanos.load(Ordering::Relaxed))
    }

    /// When the server last confirmed this consumer's membership: the last successful
    /// heartbeat, or the start of heartbeating (right after joining) before the first one
    /// succeeds. `None` before the consumer joined.
    pub fn last_heartbeat(&self) -> Option<Instant> {
        match self.membership_confirmed.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }

    /// Time since [`last_heartbeat`](Self::last_heartbeat). The consumer gives its shards up
    /// once this exceeds the group timeout plus the heartbeat interval, so it says how close
    /// the leases are to being lost.
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.last_heartbeat()
            .map(|at| Instant::now().saturating_duration_since(at))
    }

    pub(crate) fn record_retry(&self, call: RetriedCall, e: &SlsError) {
        self.retries[call as usize][RetryCause::of(e) as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_quota_wait(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.quota_wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn record_read_error(&self, e: &SlsError) {
        self.read_errors[ReadErrorKind::of(e) as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_heartbeat(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.membership_confirmed
            .store(nanos.saturating_add(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> SlsError {
        SlsError::api("Test", status, code.map(str::to_owned), "m".into(), None)
    }

    #[test]
    fn causes_follow_the_retry_table() {
        for (e, want) in [
            (api(500, Some("InternalServerError")), RetryCause::Server),
            (api(503, Some("ServerBusy")), RetryCause::Server),
            (api(502, None), RetryCause::Server),
            (api(400, Some("RequestTimeout")), RetryCause::Server),
            (api(403, Some("ReadQuotaExceed")), RetryCause::Quota),
            (api(403, Some("ShardReadQuotaExceed")), RetryCause::Quota),
            (api(403, Some("ProjectQpsExceed")), RetryCause::Quota),
            (api(403, None), RetryCause::Quota),
            (api(429, Some("TooManyRequests")), RetryCause::Quota),
            (api(401, Some("Unauthorized")), RetryCause::Other),
            (api(400, Some("ParameterInvalid")), RetryCause::Other),
            (SlsError::decode("PullLogs", "x"), RetryCause::Other),
        ] {
            assert_eq!(RetryCause::of(&e), want, "{e}");
        }
    }

    #[test]
    fn read_error_kinds() {
        assert_eq!(
            ReadErrorKind::of(&SlsError::decode("PullLogs", "lz4")),
            ReadErrorKind::Decode
        );
        assert_eq!(
            ReadErrorKind::of(&SlsError::protocol("PullLogs", "no cursor")),
            ReadErrorKind::Protocol
        );
        assert_eq!(
            ReadErrorKind::of(&api(401, Some("Unauthorized"))),
            ReadErrorKind::Api
        );
    }

    #[test]
    fn counters_are_kept_per_call_and_cause() {
        let s = ConsumerStats::new();
        s.record_retry(RetriedCall::Pull, &api(503, Some("ServerBusy")));
        s.record_retry(RetriedCall::Pull, &api(503, Some("ServerBusy")));
        s.record_retry(RetriedCall::Heartbeat, &api(403, Some("ReadQuotaExceed")));
        s.record_read_error(&SlsError::decode("PullLogs", "x"));
        for call in RetriedCall::ALL {
            for cause in RetryCause::ALL {
                let want = match (call, cause) {
                    (RetriedCall::Pull, RetryCause::Server) => 2,
                    (RetriedCall::Heartbeat, RetryCause::Quota) => 1,
                    _ => 0,
                };
                assert_eq!(s.retries(call, cause), want, "{call:?} {cause:?}");
            }
        }
        assert_eq!(s.read_errors(ReadErrorKind::Decode), 1);
        assert_eq!(s.read_errors(ReadErrorKind::Api), 0);
        s.record_quota_wait(Duration::from_millis(250));
        s.record_quota_wait(Duration::from_millis(500));
        assert_eq!(s.quota_wait(), Duration::from_millis(750));
    }

    #[test]
    fn heartbeat_age_counts_from_the_last_confirmation() {
        let s = ConsumerStats::new();
        assert_eq!((s.last_heartbeat(), s.heartbeat_age()), (None, None));
        // At the epoch itself is still a confirmation, not "none yet".
        s.record_heartbeat(s.epoch);
        assert_eq!(s.last_heartbeat(), Some(s.epoch));
        let at = Instant::now();
        s.record_heartbeat(at);
        assert_eq!(s.last_heartbeat(), Some(at));
        let age = s.heartbeat_age().unwrap();
        assert!(age <= at.elapsed(), "{age:?}");
    }
}
