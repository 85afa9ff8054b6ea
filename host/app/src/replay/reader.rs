//! Reads one shard's cursor range `[start, end)` with PullLogs (`end_cursor` bounds each
//! answer, docs/sls-protocol.md §5.6 "PullLogs"), one pull ahead of the pipeline, as the
//! shard loop's event stream. Unlike the consumer group's reader it stops at `end`, holds
//! no lease and commits nothing: the shard loop's acknowledgements go to the replay state.
//!
//! Retryable errors (throttling, 5xx, timeouts) are retried with capped backoff; any other
//! error is yielded once and the shard is revoked (gracefully: what was acknowledged is
//! kept) so the replay ends with that shard short of its end.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use shipper_net::Backoff;
use shipper_sls::SlsError;
use shipper_sls::api::logs::PullRequest;
use shipper_sls::client::Client;
use shipper_sls::consumer::{PulledBatch, ReadEvent, Revocation, RevokeReason};
use shipper_sls::cursor::Cursor;
use tokio::sync::mpsc;

/// Answers queued ahead of the pipeline: one being processed, one waiting.
const PREFETCH: usize = 2;
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// One shard's range.
#[derive(Clone)]
pub struct RangeRead {
    /// The project's client.
    pub client: Client,
    /// The logstore.
    pub logstore: String,
    /// The shard.
    pub shard: u32,
    /// First LogGroup to read.
    pub start: Cursor,
    /// First LogGroup not to read.
    pub end: Cursor,
    /// LogGroups per pull (`[source] fetch_count`).
    pub count: u32,
    /// `[source] query`: the same SPL the live path reads through.
    pub query: Option<String>,
}

/// Aborts the pulling task when the stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RangeRead {
    /// The batches of the range, in order; ends at `end`.
    pub fn stream(
        self,
        revocation: Arc<Revocation>,
    ) -> BoxStream<'static, Result<ReadEvent, SlsError>> {
        let (tx, rx) = mpsc::channel(PREFETCH);
        let task = AbortOnDrop(tokio::spawn(self.run(tx, revocation)));
        futures::stream::unfold((rx, task), |(mut rx, task)| async move {
            rx.recv().await.map(|e| (e, (rx, task)))
        })
        .boxed()
    }

    async fn run(self, tx: mpsc::Sender<Result<ReadEvent, SlsError>>, revocation: Arc<Revocation>) {
        let mut cursor = self.start;
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        while cursor < self.end {
            let pull = PullRequest {
                cursor,
                count: self.count,
                end_cursor: Some(self.end),
                query: self.query.clone(),
                ..PullRequest::new(cursor)
            };
            let answer = tokio::select! {
                biased;
                _ = revocation.revoked() => return,
                a = self.client.pull_logs(&self.logstore, self.shard, &pull) => a,
            };
            match answer {
                Ok(resp) if resp.next_cursor <= cursor => {
                    // Nothing before `end` although `end` is ahead: the data is gone
                    // (retention ran out during the replay). Say so; never spin.
                    let e = SlsError::config(format!(
                        "shard {} answered no data at {cursor} before the window's end {}; the logs may have expired",
                        self.shard, self.end
                    ));
                    tracing::error!(shard = self.shard, error = %e, "cannot replay the rest of the shard");
                    let _ = tx.send(Err(e)).await;
                    revocation.revoke(RevokeReason::Shutdown);
                    return;
                }
                Ok(resp) => {
                    backoff.reset();
                    let log_count = resp.log_count();
                    cursor = resp.next_cursor;
                    let batch = PulledBatch {
                        shard: self.shard,
                        cursor: resp.cursor,
                        next_cursor: resp.next_cursor,
                        groups: resp.groups,
                        raw_size: resp.raw_size,
                        log_count,
                        end_of_shard: false,
                        cursor_time: resp.cursor_time,
                        memory: None,
                    };
                    if tx.send(Ok(ReadEvent::Batch(batch))).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    tracing::warn!(shard = self.shard, ?delay, error = %e, "PullLogs failed; retrying");
                    tokio::select! {
                        _ = revocation.revoked() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(shard = self.shard, error = %e, "cannot replay the rest of the shard");
                    let _ = tx.send(Err(e)).await;
                    revocation.revoke(RevokeReason::Shutdown);
                    return;
                }
            }
        }
    }
}
