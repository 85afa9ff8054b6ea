//! Per-shard checkpoint committer: the pipeline reports each range of positions whose every
//! log was delivered (in cursor order, from [`OrderedAcks`](crate::pipeline::acks)), and
//! this task commits the latest end to the consumer group without ever stalling the data
//! path. Commits are coalesced: while one is in flight, newer positions just replace the
//! pending one, so after a crash at most the in-flight batches (plus one commit round trip)
//! are delivered again.
//!
//! Before each commit the completeness ledger is flushed ([`Ledger::flush`]), so it always
//! covers what the consumer group has committed.
//!
//! Commits go to a [`CheckpointStore`]: the consumer group's [`Checkpointer`] in
//! production, a recorder in the unit tests.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use shipper_net::Backoff;
use shipper_sls::consumer::Checkpointer;
use shipper_sls::cursor::Cursor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ledger::Ledger;
use crate::metrics::{Metrics, ShardLabels};

/// Why a commit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The server says another consumer owns the shard: stop processing it.
    #[error("another consumer owns the shard: {0}")]
    ShardLost(String),
    /// Anything else (SLS unreachable, throttled); a later commit supersedes it.
    #[error("{0}")]
    Failed(String),
}

/// Where a shard's checkpoints are stored.
pub trait CheckpointStore: Send + Sync + 'static {
    /// Stores `cursor` as `shard`'s checkpoint: everything before it was delivered.
    fn commit(&self, shard: u32, cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>>;
}

impl CheckpointStore for Checkpointer {
    fn commit(&self, shard: u32, cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>> {
        async move {
            Checkpointer::commit(self, shard, cursor)
                .await
                .map_err(|e| {
                    if e.is_shard_lost() {
                        CommitError::ShardLost(e.to_string())
                    } else {
                        CommitError::Failed(e.to_string())
                    }
                })
        }
        .boxed()
    }
}

/// Minimum spacing between two commits of one shard: bounds the commit rate a busy shard
/// sends to SLS (at most 5/s per shard) while keeping re-delivery after a crash small.
pub const DEFAULT_MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait between retries of a failing commit: a newer position replaces the pending
/// one meanwhile, so a slow retry loses nothing but checkpoint freshness.
const MAX_COMMIT_RETRY_WAIT: Duration = Duration::from_secs(4);
/// Longest wait for the final commit when a shard is released.
pub const FINAL_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the committer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitEnd {
    /// Every reported position was committed.
    Complete,
    /// The server says another consumer owns the shard: stop processing it.
    ShardLost,
    /// The last position could not be committed (SLS unreachable); it will be re-delivered.
    Incomplete,
}

/// Handle to one shard's committer task.
#[derive(Debug)]
pub struct Committer {
    tx: watch::Sender<Option<Cursor>>,
    lost: watch::Receiver<bool>,
    task: JoinHandle<CommitEnd>,
}

impl Committer {
    /// Starts the committer. `start` is where the shard was read from (already committed,
    /// or the start position — either way nothing to commit yet).
    pub fn spawn(
        checkpointer: Arc<dyn CheckpointStore>,
        shard: u32,
        labels: ShardLabels,
        metrics: Arc<Metrics>,
        min_interval: Duration,
        ledger: Option<Ledger>,
    ) -> Self {
        let (tx, rx) = watch::channel(None);
        let (lost_tx, lost) = watch::channel(false);
        let task = tokio::spawn(run(
            checkpointer,
            shard,
            labels,
            metrics,
            (min_interval, ledger),
            rx,
            lost_tx,
        ));
        Self { tx, lost, task }
    }

    /// Reports that every log in `range` is delivered (ranges arrive in cursor order, each
    /// starting where the previous one ended): the checkpoint may move to its end.
    pub fn acknowledged(&self, range: Range<Cursor>) {
        self.tx.send_replace(Some(range.end));
    }

    /// True once the server refused a commit for ownership reasons.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Commits the last reported position and stops (bounded by [`FINAL_COMMIT_TIMEOUT`]).
    pub async fn finish(self) -> CommitEnd {
        drop(self.tx);
        let mut task = self.task;
        match tokio::time::timeout(FINAL_COMMIT_TIMEOUT, &mut task).await {
            Ok(Ok(end)) => end,
            Ok(Err(_panic)) => CommitEnd::Incomplete,
            Err(_) => {
                task.abort();
                CommitEnd::Incomplete
            }
        }
    }

    /// Stops without a final commit (the shard is no longer ours).
    pub fn abandon(self) {
        self.task.abort();
    }
}

async fn run(
    checkpointer: Arc<dyn CheckpointStore>,
    shard: u32,
    labels: ShardLabels,
    metrics: Arc<Metrics>,
    (min_interval, ledger): (Duration, Option<Ledger>),
    mut rx: watch::Receiver<Option<Cursor>>,
    lost: watch::Sender<bool>,
) -> CommitEnd {
    let mut committed: Option<Cursor> = None;
    let mut retry = Backoff::new(min_interval, MAX_COMMIT_RETRY_WAIT);
    loop {
        // Ends when the pipeline drops the sender (finish): then one last commit below.
        let closing = rx.changed().await.is_err();
        let Some(target) = *rx.borrow_and_update() else {
            if closing {
                return CommitEnd::Complete;
            }
            continue;
        };
        if committed != Some(target) {
            // The ledger first: it must never be behind the checkpoint, or a crash would
            // leave a range that nobody re-delivers and nobody recorded (docs/ledger.md).
            if let Some(ledger) = &ledger {
                ledger.flush().await;
            }
            match checkpointer.commit(shard, target).await {
                Ok(()) => {
                    committed = Some(target);
                    retry.reset();
                    metrics.checkpoint_committed(&labels);
                }
                Err(e @ CommitError::ShardLost(_)) => {
                    tracing::warn!(shard, error = %e, "checkpoint refused: another consumer owns the shard; stopping it");
                    let _ = lost.send(true);
                    return CommitEnd::ShardLost;
                }
                Err(e @ CommitError::Failed(_)) => {
                    metrics.checkpoint_failed(&labels);
                    tracing::warn!(shard, error = %e, "checkpoint commit failed; a later commit will supersede it");
                    if closing {
                        return CommitEnd::Incomplete;
                    }
                    // Wake up again to retry even if no newer position arrives.
                    rx.mark_changed();
                    tokio::time::sleep(retry.next_delay()).await;
                    continue;
                }
            }
        }
        if closing {
            return CommitEnd::Complete;
        }
        tokio::time::sleep(min_interval).await;
    }
}
