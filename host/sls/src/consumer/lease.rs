//! Which shards this consumer holds, and the [`ShardLease`] handed to the caller for each.
//!
//! [`Membership`] is the bookkeeping the heartbeat loop and the leases share (behind one
//! mutex, never held across an `.await`). Each held shard is an entry in one of three phases:
//!
//! - **active**: assigned by the server, lease alive (or its start cursor being resolved);
//! - **releasing**: revoked (the server moved it elsewhere, or we are shutting down) but the
//!   holder is still finishing; it stays in the heartbeat body, so the server keeps it
//!   reserved for us until the holder has committed and dropped the lease
//!   (docs/sls-protocol.md §8.4 "Graceful hand-off");
//! - **orphaned**: revoked because the server no longer knows us as its holder (consumer
//!   expired, heartbeats lost for `timeout + interval`, ownership error on a checkpoint, group
//!   re-created). Not listed in heartbeats (that would earn `NotExistConsumerWithBody`) and
//!   checkpoints are refused locally: another consumer may own the shard already.
//!
//! An entry disappears when its lease is dropped. A shard is never leased twice at once: a
//! new lease is created only for a shard without an entry.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::budget::BudgetShare;
use super::reader::ShardReader;
use crate::cursor::Cursor;
use crate::error::SlsError;

/// Why a lease was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The server assigned the shard to another consumer (rebalancing). Graceful: finish,
    /// commit, drop the lease.
    Reassigned,
    /// The consumer is shutting down. Graceful: finish, commit, drop the lease.
    Shutdown,
    /// No heartbeat succeeded for `timeout + heartbeat_interval`: the server has probably
    /// given the shard to someone else. Commits are refused.
    HeartbeatLost,
    /// The server answered `NotExistConsumerWithBody`: it expired this consumer. Commits are
    /// refused.
    ConsumerExpired,
    /// The consumer group disappeared and was re-created (its checkpoints are gone).
    GroupRecreated,
    /// A checkpoint was rejected with an ownership error (`ConsumerNotMatch`, …).
    OwnershipLost,
}

impl RevokeReason {
    /// Whether the holder may still commit its final checkpoint (the server still lists the
    /// shard as ours).
    pub fn may_commit(self) -> bool {
        matches!(self, Self::Reassigned | Self::Shutdown)
    }
}

impl std::fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Reassigned => "reassigned to another consumer",
            Self::Shutdown => "consumer shutting down",
            Self::HeartbeatLost => "heartbeats failed for longer than the group timeout",
            Self::ConsumerExpired => "the server expired this consumer",
            Self::GroupRecreated => "the consumer group was re-created",
            Self::OwnershipLost => "the server says another consumer owns the shard",
        })
    }
}

/// The revocation signal of one lease: a token plus the first reason. The consumer revokes;
/// the lease holder (and whatever it hands the signal to) watches. Public so a holder's own
/// parts can be driven by a signal of their own in tests.
#[derive(Debug, Default)]
pub struct Revocation {
    pub(crate) token: CancellationToken,
    reason: OnceLock<RevokeReason>,
}

impl Revocation {
    /// A signal not revoked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes with `reason` (the first reason sticks).
    pub fn revoke(&self, reason: RevokeReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why it was revoked, if it was.
    pub fn reason(&self) -> Option<RevokeReason> {
        self.reason.get().copied()
    }

    /// Whether it was revoked.
    pub fn is_revoked(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when revoked, with the reason. Cancel-safe.
    pub async fn revoked(&self) -> RevokeReason {
        self.token.cancelled().await;
        self.reason().unwrap_or(RevokeReason::Shutdown)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Active,
    Releasing,
    Orphaned,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) generation: u64,
    pub(crate) signal: Arc<Revocation>,
    pub(crate) phase: Phase,
    /// Last cursor the server accepted for this lease (skips redundant commits).
    pub(crate) committed: Option<Cursor>,
}

/// A shard newly assigned by the server, whose lease must now be prepared.
#[derive(Debug)]
pub(crate) struct Acquired {
    pub(crate) shard: u32,
    pub(crate) generation: u64,
    pub(crate) signal: Arc<Revocation>,
}

/// What one heartbeat answer changed.
#[derive(Debug, Default)]
pub(crate) struct AssignmentChange {
    pub(crate) acquired: Vec<Acquired>,
    pub(crate) revoked: Vec<u32>,
}

/// The held shards (see the module docs).
#[derive(Debug)]
pub(crate) struct Membership {
    entries: BTreeMap<u32, Entry>,
    next_generation: u64,
    /// False once shutdown began: new assignments are ignored.
    pub(crate) accepting: bool,
}

impl Default for Membership {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            next_generation: 1,
            accepting: true,
        }
    }
}

impl Membership {
    /// The heartbeat body: active ∪ releasing, sorted.
    pub(crate) fn heartbeat_body(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|(_, e)| e.phase != Phase::Orphaned)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Every shard with a live entry, in any phase.
    pub(crate) fn shards(&self) -> Vec<u32> {
        self.entries.keys().copied().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, shard: u32) -> Option<&Entry> {
        self.entries.get(&shard)
    }

    pub(crate) fn get_mut(&mut self, shard: u32) -> Option<&mut Entry> {
        self.entries.get_mut(&shard)
    }

    /// Applies a heartbeat answer: shards no longer assigned are revoked (they keep being
    /// listed until released); newly assigned shards without an entry are acquired.
    pub(crate) fn apply_assignment(&mut self, assigned: &[u32]) -> AssignmentChange {
        let mut change = AssignmentChange::default();
        for (shard, entry) in &mut self.entries {
            if entry.phase == Phase::Active && !assigned.contains(shard) {
                entry.phase = Phase::Releasing;
                entry.signal.revoke(RevokeReason::Reassigned);
                change.revoked.push(*shard);
            }
        }
        if !self.accepting {
            return change;
        }
        let mut assigned = assigned.to_vec();
        assigned.sort_unstable();
        assigned.dedup();
        for shard in assigned {
            if self.entries.contains_key(&shard) {
                // Already held, or still releasing/orphaned: a second lease must wait for
                // the first to be dropped (the next heartbeat picks it up again).
                continue;
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            let signal = Arc::new(Revocation::default());
            self.entries.insert(
                shard,
                Entry {
                    generation,
                    signal: signal.clone(),
                    phase: Phase::Active,
                    committed: None,
                },
            );
            change.acquired.push(Acquired {
                shard,
                generation,
                signal,
            });
        }
        change
    }

    /// Revokes every non-orphaned entry and stops listing all of them: the server no longer
    /// considers us their holder. Returns the shards affected.
    pub(crate) fn orphan_all(&mut self, reason: RevokeReason) -> Vec<u32> {
        let mut affected = Vec::new();
        for (shard, entry) in &mut self.entries {
            if entry.phase != Phase::Orphaned {
                entry.phase = Phase::Orphaned;
                entry.signal.revoke(reason);
                affected.push(*shard);
            }
        }
        affected
    }

    /// Orphans one lease (ownership error on its checkpoint).
    pub(crate) fn orphan(&mut self, shard: u32, generation: u64, reason: RevokeReason) {
        if let Some(entry) = self.entries.get_mut(&shard)
            && entry.generation == generation
        {
            entry.phase = Phase::Orphaned;
            entry.signal.revoke(reason);
        }
    }

    /// Shutdown: stop accepting, revoke every active lease gracefully (still listed).
    pub(crate) fn begin_shutdown(&mut self) {
        self.accepting = false;
        for entry in self.entries.values_mut() {
            if entry.phase == Phase::Active {
                entry.phase = Phase::Releasing;
                entry.signal.revoke(RevokeReason::Shutdown);
            }
        }
    }

    /// Removes a dropped lease's entry (only if it is still that lease's).
    pub(crate) fn release(&mut self, shard: u32, generation: u64) -> bool {
        if self
            .entries
            .get(&shard)
            .is_some_and(|e| e.generation == generation)
        {
            self.entries.remove(&shard);
            true
        } else {
            false
        }
    }
}

/// Removes the lease's entry when dropped (the end of a lease, or of a failed preparation).
#[derive(Debug)]
pub(crate) struct LeaseGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) shard: u32,
    pub(crate) generation: u64,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let removed = self
            .shared
            .state
            .lock()
            .expect("membership lock poisoned")
            .release(self.shard, self.generation);
        if removed {
            // DEBUG: the lease holder logs the release once, with its checkpoint outcome.
            tracing::debug!(
                shard = self.shard,
                group = %self.shared.config.group,
                "shard lease dropped"
            );
            // Let the heartbeat stop listing it now rather than at the next tick (faster
            // hand-off), and wake a shutdown waiting for the last lease.
            self.shared.beat_now.notify_one();
            self.shared.released.notify_waiters();
        }
    }
}

/// The right to process one shard, from its assignment until the holder drops it.
///
/// The holder reads through [`reader`](Self::reader), commits processed positions with
/// [`commit`](Self::commit) and watches [`revoked`](Self::revoked). On revocation it stops
/// reading, finishes what is in flight, commits the last delivered position (if
/// [`RevokeReason::may_commit`]), then drops the lease: only then does the heartbeat stop
/// listing the shard, so the next owner starts exactly where this one stopped.
#[derive(Debug)]
pub struct ShardLease {
    pub(crate) guard: LeaseGuard,
    pub(crate) signal: Arc<Revocation>,
    pub(crate) start: Cursor,
    pub(crate) from_checkpoint: bool,
    /// The shard's part of the memory budget, taken when the shard was assigned; its
    /// readers use it.
    pub(crate) memory: Option<Arc<BudgetShare>>,
}

impl ShardLease {
    /// The shard id.
    pub fn shard(&self) -> u32 {
        self.guard.shard
    }

    /// Where reading starts: the group's checkpoint for the shard, or (when it has none)
    /// the configured start position.
    pub fn start_cursor(&self) -> Cursor {
        self.start
    }

    /// Whether [`start_cursor`](Self::start_cursor) is the server checkpoint.
    pub fn resumed_from_checkpoint(&self) -> bool {
        self.from_checkpoint
    }

    /// Whether the lease was revoked.
    pub fn is_revoked(&self) -> bool {
        self.signal.is_revoked()
    }

    /// Why the lease was revoked, if it was.
    pub fn revoke_reason(&self) -> Option<RevokeReason> {
        self.signal.reason()
    }

    /// Resolves when the lease is revoked, with the reason. Cancel-safe.
    pub async fn revoked(&self) -> RevokeReason {
        self.signal.revoked().await
    }

    /// The lease's revocation signal, for parts of the holder that outlive a borrow of the
    /// lease. Watching it does not keep the lease.
    pub fn revocation(&self) -> Arc<Revocation> {
        self.signal.clone()
    }

    /// A token cancelled on revocation, for tasks that outlive a borrow of the lease.
    /// (A child token: cancelling it does not revoke the lease.)
    pub fn revocation_token(&self) -> tokio_util::sync::CancellationToken {
        self.signal.token.child_token()
    }

    /// A prefetching reader from [`start_cursor`](Self::start_cursor).
    pub fn reader(&self) -> ShardReader {
        self.reader_from(self.start)
    }

    /// A prefetching reader from `cursor` (e.g. to re-read after a failed delivery).
    pub fn reader_from(&self, cursor: Cursor) -> ShardReader {
        ShardReader::spawn(
            self.guard.shared.clone(),
            self.shard(),
            cursor,
            self.memory.clone(),
            self.signal.token.clone(),
        )
    }

    /// Commits `cursor` (the next cursor of the last fully delivered batch) as the shard's
    /// checkpoint. See [`Checkpointer::commit`](super::Checkpointer::commit).
    pub async fn commit(&self, cursor: Cursor) -> Result<(), SlsError> {
        super::checkpoint::commit(&self.guard.shared, self.shard(), cursor).await
    }

    /// Ends the lease (same as dropping it); say so explicitly at the end of a shard task.
    pub fn release(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership_with(assigned: &[u32]) -> Membership {
        let mut m = Membership::default();
        m.apply_assignment(assigned);
        m
    }

    #[test]
    fn first_assignment_acquires_everything_sorted_and_once() {
        let mut m = Membership::default();
        let change = m.apply_assignment(&[3, 1, 1, 2]);
        let shards: Vec<u32> = change.acquired.iter().map(|a| a.shard).collect();
        assert_eq!(shards, [1, 2, 3]);
        assert!(change.revoked.is_empty());
        assert_eq!(m.heartbeat_body(), [1, 2, 3]);
        let again = m.apply_assignment(&[1, 2, 3]);
        assert!(again.acquired.is_empty() && again.revoked.is_empty());
    }

    #[test]
    fn unassigned_shards_are_revoked_but_stay_listed_until_released() {
        let mut m = membership_with(&[0, 1, 2, 3]);
        let gen_of = |m: &Membership, s| m.get(s).unwrap().generation;
        let change = m.apply_assignment(&[0, 1]);
        assert_eq!(change.revoked, [2, 3]);
        assert!(change.acquired.is_empty());
        let entry = m.get(2).unwrap();
        assert_eq!(entry.phase, Phase::Releasing);
        assert_eq!(entry.signal.reason(), Some(RevokeReason::Reassigned));
        assert!(entry.signal.token.is_cancelled());
        // Graceful hand-off: still in the body while the holder finishes.
        assert_eq!(m.heartbeat_body(), [0, 1, 2, 3]);
        // Revoked only once even if the next answer still omits it.
        assert!(m.apply_assignment(&[0, 1]).revoked.is_empty());
        let g2 = gen_of(&m, 2);
        assert!(m.release(2, g2));
        assert_eq!(m.heartbeat_body(), [0, 1, 3]);
    }

    #[test]
    fn a_shard_is_not_leased_twice_while_its_old_lease_lives() {
        let mut m = membership_with(&[5]);
        m.apply_assignment(&[]);
        // The server gives it back before the old holder let go: no second lease yet.
        assert!(m.apply_assignment(&[5]).acquired.is_empty());
        let old = m.get(5).unwrap().generation;
        assert!(m.release(5, old));
        let change = m.apply_assignment(&[5]);
        assert_eq!(change.acquired.len(), 1);
        assert!(change.acquired[0].generation > old);
        // A stale guard of the old generation must not remove the new entry.
        assert!(!m.release(5, old));
        assert_eq!(m.heartbeat_body(), [5]);
    }

    #[test]
    fn orphaned_shards_leave_the_body_at_once() {
        let mut m = membership_with(&[0, 1]);
        m.apply_assignment(&[0]);
        let affected = m.orphan_all(RevokeReason::ConsumerExpired);
        assert_eq!(affected, [0, 1]);
        assert!(m.heartbeat_body().is_empty(), "re-join with []");
        // The releasing one keeps its first reason.
        assert_eq!(
            m.get(1).unwrap().signal.reason(),
            Some(RevokeReason::Reassigned)
        );
        assert_eq!(
            m.get(0).unwrap().signal.reason(),
            Some(RevokeReason::ConsumerExpired)
        );
        assert_eq!(m.shards(), [0, 1]);
    }

    #[test]
    fn shutdown_revokes_gracefully_and_ignores_new_assignments() {
        let mut m = membership_with(&[0, 1]);
        m.begin_shutdown();
        assert_eq!(m.heartbeat_body(), [0, 1]);
        assert_eq!(
            m.get(0).unwrap().signal.reason(),
            Some(RevokeReason::Shutdown)
        );
        assert!(m.apply_assignment(&[0, 1, 2]).acquired.is_empty());
        assert!(!m.accepting);
    }

    #[test]
    fn single_orphan_respects_generations() {
        let mut m = membership_with(&[7]);
        let g = m.get(7).unwrap().generation;
        m.orphan(7, g + 1, RevokeReason::OwnershipLost);
        assert_eq!(m.get(7).unwrap().phase, Phase::Active);
        m.orphan(7, g, RevokeReason::OwnershipLost);
        assert_eq!(m.get(7).unwrap().phase, Phase::Orphaned);
        assert!(!RevokeReason::OwnershipLost.may_commit());
        assert!(RevokeReason::Reassigned.may_commit());
    }
}
