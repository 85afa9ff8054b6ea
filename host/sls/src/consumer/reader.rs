//! [`ShardReader`]: pulls one shard ahead of its consumer.
//!
//! A task owned by the reader keeps exactly one PullLogs in flight (or one finished batch
//! waiting) while the caller processes the previous batch, so SLS latency overlaps with
//! plugin and sink work, and memory stays bounded at two batches per shard.
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
//! - retryable errors: WARN and retry with capped exponential backoff and jitter;
//! - other errors: yielded once, then the reader ends;
//! - revocation of the lease or dropping the reader: the task stops (the in-flight request
//!   is cancelled).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{RetriedCall, Shared};
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
}

impl PulledBatch {
    fn from_response(shard: u32, resp: PullResponse, end_of_shard: bool) -> Self {
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
    task: JoinHandle<()>,
}

impl ShardReader {
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        shard: u32,
        cursor: Cursor,
        revoked: CancellationToken,
    ) -> Self {
        // Capacity 1 plus "reserve a slot before pulling": one batch waiting or in flight
        // while the caller works on the previous one, never more.
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(run(shared, shard, cursor, tx, revoked));
        Self {
            shard,
            batches: rx,
            task,
        }
    }

    /// The shard being read.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The next batch (skipping [`ReadEvent::CaughtUp`]). `None` once the lease is revoked,
    /// after an `end_of_shard` batch, or after an error was returned. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<PulledBatch, SlsError>> {
        loop {
            match self.batches.recv().await? {
                Ok(ReadEvent::Batch(batch)) => return Some(Ok(batch)),
                Ok(ReadEvent::CaughtUp { .. }) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next batch or catch-up notice. `None` as for [`next`](Self::next). Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Result<ReadEvent, SlsError>> {
        self.batches.recv().await
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
    revoked: CancellationToken,
) {
    let cfg = &shared.config;
    let client = &shared.client;
    let mut backoff = cfg.backoff();
    let mut readonly_checked: Option<Instant> = None;
    // LogGroups to ask for: adapted after each pull so one pull carries about
    // `target_pull_bytes` (bounded memory per shard however large the groups are).
    let mut count = cfg.fetch_count;
    // A `CaughtUp` was sent since the last batch (idle pulls then yield nothing).
    let mut reported_caught_up = false;
    loop {
        let permit = tokio::select! {
            biased;
            () = revoked.cancelled() => return,
            permit = tx.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let event = loop {
            let pull = PullRequest {
                cursor,
                count,
                end_cursor: None,
                query: cfg.query.clone(),
                compression: cfg.compression,
            };
            let result = tokio::select! {
                biased;
                () = revoked.cancelled() => return,
                r = client.pull_logs(&cfg.logstore, shard, &pull) => r,
            };
            match result {
                Ok(resp) if resp.is_caught_up() => {
                    backoff.reset();
                    let drained = resp.end_of_cursor
                        || (readonly_checked.is_none_or(|t| t.elapsed() >= READONLY_RECHECK) && {
                            readonly_checked = Some(Instant::now());
                            is_readonly(&shared, shard).await
                        });
                    if drained {
                        tracing::info!(shard, %cursor, "read-only shard drained");
                        break ReadEvent::Batch(PulledBatch::from_response(shard, resp, true));
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
                    count = next_count(cfg.fetch_count, cfg.target_pull_bytes, &resp);
                    let end = resp.end_of_cursor;
                    break ReadEvent::Batch(PulledBatch::from_response(shard, resp, end));
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
                    permit.send(Err(e));
                    return;
                }
            }
        };
        let batch = match event {
            ReadEvent::Batch(batch) => batch,
            caught_up @ ReadEvent::CaughtUp { .. } => {
                reported_caught_up = true;
                permit.send(Ok(caught_up));
                if !pause(&revoked, cfg.idle_wait).await {
                    return;
                }
                continue;
            }
        };
        let end = batch.end_of_shard;
        let small = batch.groups.len() < SMALL_PULL_GROUPS && batch.raw_size < SMALL_PULL_BYTES;
        cursor = batch.next_cursor;
        reported_caught_up = false;
        permit.send(Ok(ReadEvent::Batch(batch)));
        if end {
            return;
        }
        if small && !cfg.small_pull_wait.is_zero() && !pause(&revoked, cfg.small_pull_wait).await {
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
}
