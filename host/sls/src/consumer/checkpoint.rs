//! Committing checkpoints (ConsumerGroupUpdateCheckPoint; docs/sls-protocol.md §5.9, §8.5
//! "Checkpoint ownership", §9.6 "Committing").
//!
//! Rules:
//! - Only a shard this consumer still holds (active, or releasing after a graceful
//!   revocation) may be committed; anything else is [`SlsError::ShardLost`] without a call,
//!   because another consumer may own it now.
//! - `forceSuccess=false`, so the server checks ownership (Java's choice; Python and Go force).
//!   An ownership error (`ConsumerNotExist`/`ConsumerNotExsit`/`ConsumerNotMatch`/
//!   `ShardNotExsit`, any case) orphans the lease and returns `ShardLost`.
//! - If the server rejects `forceSuccess=false` for another, non-retryable reason (a service
//!   that does not support it), commits switch to `forceSuccess=true` for the rest of the
//!   consumer's life, with one WARN.
//! - Retryable errors are retried a few times with backoff; then the error is returned and a
//!   later commit (which supersedes this one) may succeed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::lease::{Phase, RevokeReason};
use super::{RetriedCall, Shared};
use crate::cursor::Cursor;
use crate::error::SlsError;

/// Attempts per commit for retryable errors.
const COMMIT_ATTEMPTS: u32 = 3;

/// Commits checkpoints by shard id (for a checkpoint task that does not hold the leases).
#[derive(Debug, Clone)]
pub struct Checkpointer {
    shared: Arc<Shared>,
}

impl Checkpointer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Commits `cursor` as `shard`'s checkpoint: the next cursor of the last batch whose
    /// every log was delivered. A cursor equal to the last accepted one is not re-sent.
    ///
    /// Errors: [`SlsError::ShardLost`] (stop processing the shard: it is, or may be, someone
    /// else's now), or the API error after retries ([`SlsError::is_retryable`] tells whether
    /// a later commit may work).
    pub async fn commit(&self, shard: u32, cursor: Cursor) -> Result<(), SlsError> {
        commit(&self.shared, shard, cursor).await
    }
}

/// A non-retryable rejection of `forceSuccess=false` that is not about ownership, auth or a
/// missing object: most likely the parameter itself.
fn rejects_unforced(e: &SlsError) -> bool {
    matches!(e, SlsError::Api(_))
        && !e.is_retryable()
        && !e.is_shard_lost()
        && !e.is_shard_not_exist()
        && !e.is_auth()
        && !e.is_invalid_cursor()
        && !e.is_consumer_group_not_exist()
        && e.status().is_some_and(|s| s == 400)
}

pub(crate) async fn commit(shared: &Shared, shard: u32, cursor: Cursor) -> Result<(), SlsError> {
    let generation = {
        let m = shared.membership();
        let entry = m.get(shard).ok_or_else(|| SlsError::ShardLost {
            shard,
            detail: "no lease is held for it".into(),
        })?;
        if entry.phase == Phase::Orphaned {
            let reason = entry.signal.reason().unwrap_or(RevokeReason::OwnershipLost);
            return Err(SlsError::ShardLost {
                shard,
                detail: reason.to_string(),
            });
        }
        if entry.committed == Some(cursor) {
            return Ok(());
        }
        entry.generation
    };

    let cfg = &shared.config;
    let mut backoff = cfg.backoff();
    loop {
        let force = shared.force_checkpoints.load(Ordering::Relaxed);
        let result = shared
            .client
            .update_checkpoint(
                &cfg.logstore,
                &cfg.group,
                &cfg.consumer,
                shard,
                cursor,
                force,
            )
            .await;
        match result {
            Ok(()) => {
                let mut m = shared.membership();
                if let Some(entry) = m.get_mut(shard)
                    && entry.generation == generation
                {
                    entry.committed = Some(cursor);
                }
                tracing::debug!(shard, %cursor, "checkpoint committed");
                return Ok(());
            }
            Err(e) if e.is_shard_lost() || e.is_shard_not_exist() => {
                shared
                    .membership()
                    .orphan(shard, generation, RevokeReason::OwnershipLost);
                tracing::warn!(shard, error = %e, "checkpoint rejected: the shard is no longer ours; stopping it");
                return Err(SlsError::ShardLost {
                    shard,
                    detail: e.to_string(),
                });
            }
            Err(e) if !force && rejects_unforced(&e) => {
                tracing::warn!(
                    error = %e,
                    "the server rejected a checkpoint with forceSuccess=false; committing \
                     with forceSuccess=true from now on (ownership is still checked locally)"
                );
                shared.force_checkpoints.store(true, Ordering::Relaxed);
            }
            Err(e) if e.is_retryable() && backoff.attempt() + 1 < COMMIT_ATTEMPTS => {
                cfg.record_retry(RetriedCall::Checkpoint, &e);
                let delay = backoff.next_delay();
                if e.is_credentials() {
                    tracing::debug!(shard, error = %e, ?delay, "checkpoint commit paused: no valid credentials");
                } else {
                    tracing::warn!(shard, error = %e, ?delay, "checkpoint commit failed; retrying");
                }
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> SlsError {
        SlsError::api(
            "ConsumerGroupUpdateCheckPoint",
            status,
            Some(code.into()),
            String::new(),
            None,
        )
    }

    #[test]
    fn only_parameter_style_rejections_switch_to_forced_commits() {
        assert!(rejects_unforced(&api(400, "ParameterInvalid")));
        assert!(rejects_unforced(&api(400, "SomethingNew")));
        for e in [
            api(400, "ConsumerNotMatch"),
            api(400, "consumernotexsit"),
            api(400, "ShardNotExist"),
            api(401, "SignatureNotMatch"),
            api(400, "InvalidCursor"),
            api(404, "ConsumerGroupNotExist"),
            api(500, "InternalServerError"),
            api(403, "ReadQuotaExceed"),
        ] {
            assert!(!rejects_unforced(&e), "{e}");
        }
    }
}
