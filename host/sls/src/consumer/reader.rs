//! [`ShardReader`]: pulls one shard ahead of its consumer.
//!
//! A task owned by the reader issues the next PullLogs the moment the previous answer
//! arrives (the next cursor is in that answer), while the caller processes earlier batches:
//! SLS's round trip overlaps with plugin and sink work, so a shard far from SLS is bound by
//! its answer size over the round trip, not by the round trip plus the processing. The task
//! pauses while the answers its caller has not taken yet hold `prefetch_bytes` raw bytes or
//! more, or, under a memory budget, until its share has room for the next pull, so memory
//! per shard stays bounded (docs/sls-protocol.md §9.4 "Reading a shard").
//!
//! Behaviour (docs/sls-protocol.md §5.6, §9.4 "Reading a shard", §9.5 "Read-only shards"):
//! - caught up (`next == cursor`, no data): wait `idle_wait`, pull again. The first such pull
//!   after data (or at the start) yields one [`ReadEvent::CaughtUp`], so the caller knows
//!   nothing is behind (lag gauges read 0); later idle pulls yield nothing. It costs one
//!   message per catch-up, nothing per batch. [`ShardReader::next`] skips these events;
//!   [`ShardReader::next_event`] returns them;
//! - a pull that advanced the cursor is yielded even with no groups (an SPL query filtered
//!   everything) so the caller can checkpoint past it;
//! - read-only shard drained (`x-log-end-of-cursor: 1`, or caught up on a shard ListShards
//!   reports `readonly`): one final batch with `end_of_shard`, then the reader ends. The
//!   caller commits its `next_cursor`, which lets the server mark the shard finished;
//! - `InvalidCursor`: WARN and restart from the configured start position (Java's choice;
//!   Python jumps to the end and loses data silently);
//! - read quota exceeded (`ReadQuotaExceed` and the other throttling answers): retry after a
//!   short delay of its own ([`QUOTA_RETRY_INITIAL`] doubling to [`QUOTA_RETRY_MAX`]):
//!   SLS's per-shard quotas are per second, so a longer wait would only leave the quota
//!   unused. Logged at DEBUG (a shard at its quota is working as intended), WARN once a
//!   shard stays refused for [`QUOTA_WARN_AFTER`] attempts; the wait is counted in
//!   [`ConsumerStats::quota_wait`](super::ConsumerStats::quota_wait);
//! - other retryable errors: WARN and retry with capped exponential backoff and jitter;
//! - other errors: yielded once, then the reader ends;
//! - revocation of the lease or dropping the reader: the task stops (the in-flight request
//!   is cancelled).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::{BudgetShare, Charge};
use super::{RetriedCall, RetryCause, Shared};
use crate::api::logs::{PullRequest, PullResponse};
use crate::api::shards::ShardStatus;
use crate::cursor::Cursor;
use crate::error::SlsError;
use crate::proto::LogGroupView;

/// How often a caught-up shard asks ListShards whether it became read-only (a split or
/// merge closes shards at any time; servers that send `x-log-end-of-cursor` make this moot).
const READONLY_RECHECK: Duration = Duration::from_secs(30);
/// Python's first throttle tier (docs/sls-protocol.md §9.4, §9.9): below both, a pull
/// counts as small.
const SMALL_PULL_GROUPS: usize = 100;
const SMALL_PULL_BYTES: usize = 1 << 20;
/// First delay after a throttled pull. SLS's read quotas are per shard and second
/// (docs/sls-protocol.md §12 "Limits and quotas"): a quarter of a second lets the quota
/// refill a little without leaving it unused.
pub const QUOTA_RETRY_INITIAL: Duration = Duration::from_millis(250);
/// Longest delay between throttled pulls: beyond a second the per-second quota refills to
/// its cap and the extra wait is lost throughput.
pub const QUOTA_RETRY_MAX: Duration = Duration::from_secs(1);
/// Throttled pulls in a row after which the reader says so at WARN (about 3 s refused).
pub const QUOTA_WARN_AFTER: u32 = 5;
/// Smallest pull a memory share sizes requests to: below, per-request costs dominate.
const MIN_BUDGET_PULL_BYTES: usize = 64 << 10;

/// The read rate a far shard's pulls are sized for: with one pull in flight a shard reads
/// at most a pull per round trip, so at a distance a pull grows to carry this much per round
/// trip — about a third of what one core takes through the whole pipeline (README
/// "Performance"), so that a shard is bound by the host, not by its distance to SLS.
pub const SHARD_RATE_GOAL: usize = 100_000_000;
/// How far distance grows a pull: at most this many times `target_pull_bytes` (4 MiB → 16
/// MiB), so a shard's memory stays a small multiple of the configured size.
pub const MAX_DISTANCE_GROWTH: usize = 4;
/// Round trips the distance estimate is the shortest of.
const RTT_WINDOW: usize = 8;

/// Events (batches, catch-up notices, an error) a reader queues at most, whatever their
/// size: a bound for answers that carry no bytes (an SPL filter that kept nothing).
const QUEUE_EVENTS: usize = 16;

/// One PullLogs worth of data from one shard.
#[derive(Debug, Clone)]
pub struct PulledBatch {
    /// Shard id.
    pub shard: u32,
    /// Cursor the pull started at.
    pub cursor: Cursor,
    /// Cursor after the last group: commit this once every log of the batch is delivered.
    pub next_cursor: Cursor,
    /// The LogGroups, still encoded (slices of one decompressed body).
    pub groups: Vec<LogGroupView>,
    /// Uncompressed body size.
    pub raw_size: usize,
    /// Number of logs in all groups.
    pub log_count: usize,
    /// A read-only shard was read to its end: commit `next_cursor` and release the lease;
    /// nothing more will come.
    pub end_of_shard: bool,
    /// Server receive time (unix s) at the cursor position, when SLS sends it.
    pub cursor_time: Option<i64>,
    /// The batch's bytes in the memory budget, when there is one: keep it as long as the
    /// batch's data lives (its groups are slices of the answer), then drop it.
    pub memory: Option<Arc<Charge>>,
}

impl PulledBatch {
    fn from_response(
        shard: u32,
        resp: PullResponse,
        end_of_shard: bool,
        memory: Option<Charge>,
    ) -> Self {
        let log_count = resp.log_count();
        Self {
            shard,
            cursor: resp.cursor,
            next_cursor: resp.next_cursor,
            groups: resp.groups,
            raw_size: resp.raw_size,
            log_count,
            end_of_shard,
            cursor_time: resp.cursor_time,
            memory: memory.map(Arc::new),
        }
    }
}

/// What a [`ShardReader`] yields, in read order.
#[derive(Debug, Clone)]
pub enum ReadEvent {
    /// Data (or a cursor advance without data) to process.
    Batch(PulledBatch),
    /// The reader reached the end of the shard at `cursor`: every earlier batch was yielded
    /// and nothing is behind. Sent once per catch-up (after data, or at the start when there
    /// is none), not on every idle pull; a later [`ReadEvent::Batch`] means data came in.
    CaughtUp {
        /// The end position (the last batch's `next_cursor`, or the start cursor).
        cursor: Cursor,
    },
}

/// A prefetching reader over one leased shard. Dropping it stops the prefetch.
#[derive(Debug)]
pub struct ShardReader {
    shard: u32,
    batches: mpsc::Receiver<Result<ReadEvent, SlsError>>,
    queued: Arc<QueuedBytes>,
    memory: Option<Arc<BudgetShare>>,
    task: JoinHandle<()>,
}

/// Raw bytes of the answers a reader has queued and its caller not taken yet.
#[derive(Debug, Default)]
struct QueuedBytes {
    bytes: AtomicUsize,
    taken: Notify,
}

impl QueuedBytes {
    fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
    }

    fn take(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        self.taken.notify_one();
    }

    /// Waits until fewer than `limit` bytes are queued.
    async fn below(&self, limit: usize) {
        loop {
            let taken = self.taken.notified();
            if self.bytes.load(Ordering::Acquire) < limit {
                return;
            }
            taken.await;
        }
    }
}

impl ShardReader {
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        shard: u32,
        cursor: Cursor,
        memory: Option<Arc<BudgetShare>>,
        revoked: CancellationToken,
    ) -> Self {
        // Bounded by bytes (`prefetch_bytes` or the budget share) before each pull, and by
        // count here.
        let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
        let queued = Arc::new(QueuedBytes::default());
        let task = tokio::spawn(run(
            shared,
            shard,
            cursor,
            tx,
            queued.clone(),
            memory.clone(),
            revoked,
        ));
        Self {
            shard,
            batches: rx,
            queued,
            memory,
            task,
        }
    }

    /// The shard being read.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// This shard's part of the memory budget (`None` without one): what the pipeline
    /// charges the events it renders and sends to, so the reader pulls less while they are
    /// in flight.
    pub fn memory(&self) -> Option<Arc<BudgetShare>> {
        self.memory.clone()
    }

    /// The next batch (skipping [`ReadEvent::CaughtUp`]). `None` once the lease is revoked,
    /// after an `end_of_shard` batch, or after an error was returned. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<PulledBatch, SlsError>> {
        loop {
            match self.next_event().await? {
                Ok(ReadEvent::Batch(batch)) => return Some(Ok(batch)),
                Ok(ReadEvent::CaughtUp { .. }) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next batch or catch-up notice. `None` as for [`next`](Self::next). Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Result<ReadEvent, SlsError>> {
        let event = self.batches.recv().await;
        if let Some(Ok(ReadEvent::Batch(batch))) = &event {
            self.queued.take(batch.raw_size);
        }
        event
    }
}

impl Drop for ShardReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sleeps unless revoked first; false when revoked.
async fn pause(revoked: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        biased;
        () = revoked.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

async fn run(
    shared: Arc<Shared>,
    shard: u32,
    mut cursor: Cursor,
    tx: mpsc::Sender<Result<ReadEvent, SlsError>>,
    queued: Arc<QueuedBytes>,
    memory: Option<Arc<BudgetShare>>,
    revoked: CancellationToken,
) {
    let cfg = &shared.config;
    let client = &shared.client;
    let mut backoff = cfg.backoff();
    let mut quota_backoff = shipper_net::Backoff::new(QUOTA_RETRY_INITIAL, QUOTA_RETRY_MAX);
    let mut readonly_checked: Option<Instant> = None;
    // LogGroups to ask for: adapted after each pull so one pull carries about
    // `target_pull_bytes` (bounded memory per shard however large the groups are).
    // With a budget the first pull asks for one group, the smallest answer there is, to
    // learn the group size before pulls are sized to the share (a guessed size overshoots
    // the reservations of every shard at once when hundreds start together).
    let mut count = match &memory {
        None => cfg.fetch_count,
        Some(_) => 1,
    };
    // A `CaughtUp` was sent since the last batch (idle pulls then yield nothing).
    let mut reported_caught_up = false;
    let mut round_trip = RoundTrip::default();
    // Queues an event for the caller; false when the reader should stop.
    let send = |event: Result<ReadEvent, SlsError>| {
        let (tx, queued, revoked) = (&tx, &queued, &revoked);
        async move {
            if let Ok(ReadEvent::Batch(b)) = &event {
                queued.add(b.raw_size);
            }
            tokio::select! {
                biased;
                () = revoked.cancelled() => false,
                sent = tx.send(event) => sent.is_ok(),
            }
        }
    };
    // Under a budget the reservation below is what bounds the read-ahead: a shard reads
    // ahead as far as its share allows (docs/architecture.md §6 "Bounded memory").
    let prefetch_bytes = match &memory {
        None => cfg.prefetch_bytes.max(1),
        Some(_) => usize::MAX,
    };
    loop {
        tokio::select! {
            biased;
            () = revoked.cancelled() => return,
            () = queued.below(prefetch_bytes) => {}
        }
        // Grown with the distance first; then, with a budget, a pull is a quarter of the
        // shard's share at most, reserved before it is sent (the answer's real size is
        // charged when it is known).
        let target = distance_pull_bytes(cfg.target_pull_bytes, round_trip.shortest());
        let target = memory
            .as_ref()
            .map_or(target, |m| budget_pull_bytes(target, m.share()));
        let mut charge = match &memory {
            None => None,
            Some(m) => tokio::select! {
                biased;
                () = revoked.cancelled() => return,
                // Pulls are guaranteed the share less the room the caller keeps for the
                // events rendered from them, which are charged to the same share
                // (`send_room_bytes`, docs/architecture.md §6); the reservation is cut to
                // that part when it is larger (a pull is at least 64 KiB, shares can be
                // smaller with thousands of shards; the answer is charged in full anyway).
                c = m.reserve_leaving(target, cfg.send_room_bytes) => Some(c),
            },
        };
        // When the pull that made the event was sent, and how many groups it asked for.
        let mut sent_at;
        let mut asked;
        let event = loop {
            let pull = PullRequest {
                cursor,
                count,
                end_cursor: None,
                query: cfg.query.clone(),
                compression: cfg.compression,
            };
            sent_at = Instant::now();
            asked = count;
            let result = tokio::select! {
                biased;
                () = revoked.cancelled() => return,
                r = client.pull_logs(&cfg.logstore, shard, &pull) => r,
            };
            if result.is_ok() {
                round_trip.record(sent_at.elapsed());
            }
            match result {
                Ok(resp) if resp.is_caught_up() => {
                    backoff.reset();
                    quota_backoff.reset();
                    let drained = resp.end_of_cursor
                        || (readonly_checked.is_none_or(|t| t.elapsed() >= READONLY_RECHECK) && {
                            readonly_checked = Some(Instant::now());
                            is_readonly(&shared, shard).await
                        });
                    if drained {
                        tracing::info!(shard, %cursor, "read-only shard drained");
                        break ReadEvent::Batch(PulledBatch::from_response(
                            shard, resp, true, None,
                        ));
                    }
                    if !reported_caught_up {
                        break ReadEvent::CaughtUp { cursor };
                    }
                    if !pause(&revoked, cfg.idle_wait).await {
                        return;
                    }
                }
                Ok(resp) => {
                    backoff.reset();
                    quota_backoff.reset();
                    count = next_count(cfg.fetch_count, target, &resp);
                    let end = resp.end_of_cursor;
                    let memory = charge.take().map(|mut c| {
                        c.resize(resp.raw_size);
                        c
                    });
                    break ReadEvent::Batch(PulledBatch::from_response(shard, resp, end, memory));
                }
                Err(e) if e.is_invalid_cursor() => {
                    tracing::warn!(
                        shard,
                        %cursor,
                        start = %cfg.start,
                        error = %e,
                        "cursor rejected as invalid; restarting the shard from the configured \
                         start position (data between the two may be skipped or repeated)"
                    );
                    let reset = tokio::select! {
                        biased;
                        () = revoked.cancelled() => return,
                        r = client.get_cursor(&cfg.logstore, shard, cfg.start) => r,
                    };
                    if let Err(e) = &reset {
                        cfg.record_retry(RetriedCall::GetCursor, e);
                    }
                    match reset {
                        Ok(start) if start != cursor => {
                            cursor = start;
                            reported_caught_up = false;
                        }
                        // The start position itself is invalid, or GetCursor failed: back off.
                        Ok(_) | Err(_) => {
                            let delay = backoff.next_delay();
                            if !pause(&revoked, delay).await {
                                return;
                            }
                        }
                    }
                }
                Err(e) if e.is_retryable() && RetryCause::of(&e) == RetryCause::Quota => {
                    cfg.record_retry(RetriedCall::Pull, &e);
                    let delay = quota_backoff.next_delay();
                    if let Some(stats) = &cfg.stats {
                        stats.record_quota_wait(delay);
                    }
                    if quota_backoff.attempt() == QUOTA_WARN_AFTER {
                        tracing::warn!(
                            shard,
                            attempts = quota_backoff.attempt(),
                            error = %e,
                            "PullLogs keeps exceeding the shard's read quota; still retrying \
                             (other readers of this shard, or a quota lowered by SLS)"
                        );
                    } else {
                        tracing::debug!(shard, ?delay, error = %e, "PullLogs throttled by the read quota");
                    }
                    if !pause(&revoked, delay).await {
                        return;
                    }
                }
                Err(e) if e.is_retryable() => {
                    cfg.record_retry(RetriedCall::Pull, &e);
                    let delay = backoff.next_delay();
                    if e.is_credentials() {
                        // The credentials holder has said so once, at WARN.
                        tracing::debug!(shard, ?delay, error = %e, "PullLogs paused: no valid credentials");
                    } else {
                        tracing::warn!(
                            shard,
                            attempt = backoff.attempt(),
                            ?delay,
                            error = %e,
                            "PullLogs failed; retrying"
                        );
                    }
                    if !pause(&revoked, delay).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(shard, error = %e, "PullLogs failed permanently");
                    if let Some(stats) = &cfg.stats {
                        stats.record_read_error(&e);
                    }
                    send(Err(e)).await;
                    return;
                }
            }
        };
        let batch = match event {
            ReadEvent::Batch(batch) => batch,
            caught_up @ ReadEvent::CaughtUp { .. } => {
                reported_caught_up = true;
                if !send(Ok(caught_up)).await {
                    return;
                }
                if !pause(&revoked, cfg.idle_wait).await {
                    return;
                }
                continue;
            }
        };
        let end = batch.end_of_shard;
        // Small, and fewer groups than asked for: a pull sized down to one or a few large
        // groups (the first pull under a budget, a small memory share) got all it asked
        // for, which says nothing about the shard running dry.
        let small = batch.groups.len() < SMALL_PULL_GROUPS
            && batch.raw_size < SMALL_PULL_BYTES
            && batch.groups.len() < asked as usize;
        cursor = batch.next_cursor;
        reported_caught_up = false;
        if !send(Ok(ReadEvent::Batch(batch))).await {
            return;
        }
        if end {
            return;
        }
        // At most one small pull per `small_pull_wait`: a round trip that took as long
        // already spaced them (a server far away caps answers under the small size too).
        let small_wait = cfg.small_pull_wait.saturating_sub(sent_at.elapsed());
        if small && !small_wait.is_zero() && !pause(&revoked, small_wait).await {
            return;
        }
    }
}

/// The `count` for the next pull: enough LogGroups of the size just seen to carry about
/// `target_bytes` (0 = always `max`), between 1 and `max`.
fn next_count(max: u32, target_bytes: usize, resp: &PullResponse) -> u32 {
    if target_bytes == 0 || resp.count == 0 {
        return max;
    }
    let per_group = (resp.raw_size / resp.count).max(1);
    u32::try_from(target_bytes / per_group)
        .unwrap_or(u32::MAX)
        .clamp(1, max)
}

/// The raw bytes a pull aims for at a round trip of `rtt` (docs/sls-protocol.md §9.4): at
/// least `target`, enough to read [`SHARD_RATE_GOAL`] with one pull per round trip, at most
/// [`MAX_DISTANCE_GROWTH`] × `target`. A `target` of 0 (always `fetch_count` groups) stays 0.
pub fn distance_pull_bytes(target: usize, rtt: Duration) -> usize {
    if target == 0 {
        return 0;
    }
    let per_round_trip = (rtt.as_secs_f64() * SHARD_RATE_GOAL as f64) as usize;
    per_round_trip.clamp(target, target.saturating_mul(MAX_DISTANCE_GROWTH))
}

/// The distance to SLS as a shard's pulls see it: the shortest of the last [`RTT_WINDOW`]
/// round trips, the one least inflated by the server's or this host's queueing (a windowed
/// minimum, as BBR estimates a path's round trip), yet a route that became longer is seen
/// within a few pulls.
#[derive(Debug, Default)]
struct RoundTrip {
    recent: [Duration; RTT_WINDOW],
    next: usize,
    seen: usize,
}

impl RoundTrip {
    fn record(&mut self, rtt: Duration) {
        self.recent[self.next] = rtt;
        self.next = (self.next + 1) % RTT_WINDOW;
        self.seen = (self.seen + 1).min(RTT_WINDOW);
    }

    /// Zero before the first answer: pulls start at the configured size.
    fn shortest(&self) -> Duration {
        self.recent[..self.seen]
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
    }
}

/// The raw bytes one pull aims for under a memory share: a quarter of the share (answers
/// queued, the one being processed and its events in flight all fit), never more than the
/// configured target (0: none), never less than [`MIN_BUDGET_PULL_BYTES`].
fn budget_pull_bytes(target: usize, share: usize) -> usize {
    let cap = (share / 4).max(MIN_BUDGET_PULL_BYTES);
    if target == 0 { cap } else { target.min(cap) }
}

/// Whether ListShards reports the shard read-only (false when it cannot tell).
async fn is_readonly(shared: &Shared, shard: u32) -> bool {
    match shared.client.list_shards(&shared.config.logstore).await {
        Ok(shards) => shards
            .iter()
            .any(|s| s.shard_id == shard && s.status == ShardStatus::ReadOnly),
        Err(e) => {
            tracing::debug!(shard, error = %e, "ListShards failed; assuming read-write");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(count: usize, raw_size: usize) -> PullResponse {
        PullResponse {
            cursor: Cursor(0),
            next_cursor: Cursor(count as i64),
            body: bytes::Bytes::new(),
            groups: Vec::new(),
            count,
            raw_size,
            end_of_cursor: false,
            cursor_time: None,
            read_last_cursor: None,
            request_id: None,
        }
    }

    #[test]
    fn a_memory_share_sizes_pulls_to_a_quarter_of_it() {
        // 256 MiB over 4 shards: the configured 4 MiB stands.
        assert_eq!(budget_pull_bytes(4 << 20, 64 << 20), 4 << 20);
        // Over 256 shards: 1 MiB each, pulls of 256 KiB.
        assert_eq!(budget_pull_bytes(4 << 20, 1 << 20), 256 << 10);
        // Never below the floor, and a share with no configured target still sizes pulls.
        assert_eq!(budget_pull_bytes(4 << 20, 16 << 10), MIN_BUDGET_PULL_BYTES);
        assert_eq!(budget_pull_bytes(0, 8 << 20), 2 << 20);
    }

    #[test]
    fn pull_count_follows_the_group_size() {
        // 100 KiB groups, 2 MiB target: 20 groups.
        assert_eq!(next_count(1000, 2 << 20, &resp(80, 80 * 100 * 1024)), 20);
        // Tiny groups: capped at fetch_count.
        assert_eq!(next_count(1000, 2 << 20, &resp(1000, 1000 * 300)), 1000);
        // One group larger than the target: still one.
        assert_eq!(next_count(1000, 2 << 20, &resp(1, 5 << 20)), 1);
        // Off, or nothing to learn from.
        assert_eq!(next_count(500, 0, &resp(80, 8 << 20)), 500);
        assert_eq!(next_count(500, 2 << 20, &resp(0, 0)), 500);
    }

    #[test]
    fn distance_grows_pulls_to_carry_the_rate_goal_per_round_trip() {
        let ms = Duration::from_millis;
        let target = 4 << 20;
        // Near SLS (and before the first answer): the configured size.
        assert_eq!(distance_pull_bytes(target, Duration::ZERO), target);
        assert_eq!(distance_pull_bytes(target, ms(20)), target);
        // 100 ms: 10 MB per round trip.
        assert_eq!(distance_pull_bytes(target, ms(100)), SHARD_RATE_GOAL / 10);
        // Far: capped at MAX_DISTANCE_GROWTH × the target.
        assert_eq!(
            distance_pull_bytes(target, ms(500)),
            MAX_DISTANCE_GROWTH * target
        );
        // No target stays none.
        assert_eq!(distance_pull_bytes(0, ms(200)), 0);
    }

    #[test]
    fn the_round_trip_is_the_shortest_of_the_recent_ones() {
        let ms = Duration::from_millis;
        let mut rtt = RoundTrip::default();
        assert_eq!(rtt.shortest(), Duration::ZERO);
        for d in [120, 100, 180, 300] {
            rtt.record(ms(d));
        }
        assert_eq!(rtt.shortest(), ms(100));
        // The route got longer: after a window of longer round trips, the old minimum is gone.
        for _ in 0..RTT_WINDOW {
            rtt.record(ms(250));
        }
        assert_eq!(rtt.shortest(), ms(250));
    }
}
