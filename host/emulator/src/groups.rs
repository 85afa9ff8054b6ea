//! Consumer groups as the server keeps them (docs/sls-protocol.md §5.7–§5.10, §8): members
//! and their heartbeat clocks, shard assignment with the `transfer` hand-off, and per-shard
//! checkpoints with the owner check.
//!
//! Pure logic over explicit [`Instant`]s, no I/O and no locks: the routes hold the logstore's
//! group mutex around each call and persist checkpoints afterwards. Shard states `wait` and
//! `over` are not stored; they are derived on each heartbeat from [`ShardInfo`] (parents,
//! read-only status, end cursor) and the stored checkpoints, so they can never go stale.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use shipper_sls::cursor::Cursor;
use tokio::time::Instant;

use crate::error::ApiError;

/// Most consumer groups per logstore (SLS quota, docs/sls-protocol.md §12).
pub const MAX_GROUPS_PER_LOGSTORE: usize = 30;

/// What a heartbeat needs to know about one shard of the logstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Shard id.
    pub id: u32,
    /// `readonly` after a split/merge.
    pub readonly: bool,
    /// Position one past the last LogGroup (the end cursor).
    pub end: i64,
    /// Shards this one was split or merged from (for `order=true`).
    pub parents: Vec<u32>,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The cursor string as the client sent it.
    pub cursor: String,
    /// Microseconds since the epoch.
    pub update_time_us: u64,
    /// Who wrote it ("" when no consumer was named).
    pub consumer: String,
}

/// Who holds a shard. `next` is set while the shard is in `transfer`: promised to `next`,
/// still held by `holder` until its heartbeat stops listing the shard (docs/sls-protocol.md
/// §8.2 "Shard states on the server").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    holder: String,
    next: Option<String>,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    /// Group name.
    pub name: String,
    /// Heartbeat timeout in seconds.
    pub timeout: u32,
    /// In-order consumption after split/merge.
    pub order: bool,
    /// Live consumers and their last heartbeat.
    consumers: BTreeMap<String, Instant>,
    /// Assigned shards.
    owners: BTreeMap<u32, Owner>,
    /// Checkpoints per shard.
    pub checkpoints: BTreeMap<u32, Checkpoint>,
}

impl ConsumerGroup {
    /// A new group with no members and no checkpoints.
    pub fn new(name: impl Into<String>, timeout: u32, order: bool) -> Self {
        Self {
            name: name.into(),
            timeout,
            order,
            consumers: BTreeMap::new(),
            owners: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
        }
    }

    /// Drops consumers whose last heartbeat is older than the timeout, freeing their shards;
    /// a shard promised to an expired consumer stays with its holder (docs/sls-protocol.md
    /// §8.2 "Shard states on the server").
    pub fn expire(&mut self, now: Instant) {
        let timeout = Duration::from_secs(u64::from(self.timeout));
        let dead: Vec<String> = self
            .consumers
            .iter()
            .filter(|(_, last)| now.saturating_duration_since(**last) > timeout)
            .map(|(name, _)| name.clone())
            .collect();
        if dead.is_empty() {
            return;
        }
        for name in &dead {
            self.consumers.remove(name);
            tracing::info!(group = %self.name, consumer = %name, "consumer timed out; its shards are free");
        }
        self.owners.retain(|_, owner| {
            if dead.contains(&owner.holder) {
                return false;
            }
            if owner.next.as_ref().is_some_and(|n| dead.contains(n)) {
                owner.next = None;
            }
            true
        });
    }

    /// Shards currently handed out to `consumer` (state `already_alloc`, not `transfer`).
    pub fn assigned_to(&self, consumer: &str) -> Vec<u32> {
        self.owners
            .iter()
            .filter(|(_, o)| o.holder == consumer && o.next.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// One heartbeat (docs/sls-protocol.md §5.8, §8.3): keeps `consumer` alive, applies what
    /// it no longer holds, rebalances, and answers the shards it holds now.
    pub fn heartbeat(
        &mut self,
        consumer: &str,
        held: &[u32],
        shards: &[ShardInfo],
        now: Instant,
    ) -> Result<Vec<u32>, ApiError> {
        self.expire(now);
        if !self.consumers.contains_key(consumer) {
            if !held.is_empty() {
                return Err(ApiError::new(
                    400,
                    "NotExistConsumerWithBody",
                    "non-exist consumer with non-empty body of heartbeat message",
                ));
            }
            tracing::info!(group = %self.name, consumer, "consumer joined");
        }
        self.consumers.insert(consumer.to_owned(), now);

        // (2) Shards the caller holds but no longer lists are let go; a shard in transfer
        // goes to the consumer it was promised to.
        let held: BTreeSet<u32> = held.iter().copied().collect();
        self.owners.retain(|id, owner| {
            if owner.holder != consumer || held.contains(id) {
                return true;
            }
            match owner.next.take() {
                Some(next) => {
                    owner.holder = next;
                    true
                }
                None => false,
            }
        });

        // Shards that are gone, drained (`over`) or waiting for their parents are not assigned.
        let consumable = self.consumable(shards);
        self.owners.retain(|id, _| consumable.contains(id));

        // (3) Free shards go to the least-loaded consumer (ties by name).
        let free: Vec<u32> = consumable
            .iter()
            .copied()
            .filter(|id| !self.owners.contains_key(id))
            .collect();
        for id in free {
            let target = self.least_loaded();
            self.owners.insert(
                id,
                Owner {
                    holder: target,
                    next: None,
                },
            );
        }

        // (4) While the spread is above one, promise a shard of the most-loaded consumer to
        // the least-loaded one.
        loop {
            let loads = self.loads();
            let (Some((max_name, max)), Some((min_name, min))) = (
                loads
                    .iter()
                    .max_by_key(|(n, l)| (**l, std::cmp::Reverse(*n))),
                loads.iter().min_by_key(|(n, l)| (**l, *n)),
            ) else {
                break;
            };
            if *max <= *min + 1 {
                break;
            }
            let (max_name, min_name) = ((*max_name).to_owned(), (*min_name).to_owned());
            // The shard whose eventual owner is the most-loaded consumer: one it holds, or
            // one promised to it (then the promise is redirected).
            let Some((_, owner)) = self
                .owners
                .iter_mut()
                .rev()
                .find(|(_, o)| o.next.as_deref().unwrap_or(&o.holder) == max_name)
            else {
                break;
            };
            owner.next = (owner.holder != min_name).then_some(min_name);
        }

        Ok(self.assigned_to(consumer))
    }

    /// Consumer → number of shards it holds or is promised (what it will hold once every
    /// transfer completes). Every live consumer appears, with 0 if it holds nothing.
    fn loads(&self) -> BTreeMap<&str, usize> {
        let mut loads: BTreeMap<&str, usize> =
            self.consumers.keys().map(|c| (c.as_str(), 0)).collect();
        for owner in self.owners.values() {
            let who = owner.next.as_deref().unwrap_or(&owner.holder);
            if let Some(n) = loads.get_mut(who) {
                *n += 1;
            }
        }
        loads
    }

    fn least_loaded(&self) -> String {
        self.loads()
            .into_iter()
            .min_by_key(|(n, l)| (*l, *n))
            .map(|(n, _)| n.to_owned())
            .expect("called after the caller was registered, so there is a consumer")
    }

    /// Shards that may be assigned: not `over` (a read-only shard whose checkpoint reached
    /// its end) and, with `order`, not `wait` (some ancestor not `over`)
    /// (docs/sls-protocol.md §8.2, §8.6 "Ordered consumption").
    fn consumable(&self, shards: &[ShardInfo]) -> BTreeSet<u32> {
        let over = |s: &ShardInfo| {
            s.readonly
                && self
                    .checkpoints
                    .get(&s.id)
                    .and_then(|c| Cursor::parse(&c.cursor).ok())
                    .is_some_and(|c| c.0 >= s.end)
        };
        let by_id: BTreeMap<u32, &ShardInfo> = shards.iter().map(|s| (s.id, s)).collect();
        // An ancestor chain is finished when every ancestor is over.
        let ancestors_over = |s: &ShardInfo| {
            let mut stack: Vec<u32> = s.parents.clone();
            let mut seen = BTreeSet::new();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                // A deleted parent counts as finished.
                if let Some(parent) = by_id.get(&p) {
                    if !over(parent) {
                        return false;
                    }
                    stack.extend(parent.parents.iter().copied());
                }
            }
            true
        };
        shards
            .iter()
            .filter(|s| !over(s) && (!self.order || ancestors_over(s)))
            .map(|s| s.id)
            .collect()
    }

    /// ConsumerGroupUpdateCheckPoint (docs/sls-protocol.md §5.9, §8.5 "Checkpoint ownership").
    /// `shard_exists` is checked by the caller.
    pub fn update_checkpoint(
        &mut self,
        shard: u32,
        consumer: Option<&str>,
        force: bool,
        cursor: String,
        update_time_us: u64,
        now: Instant,
    ) -> Result<(), ApiError> {
        self.expire(now);
        if !force {
            let Some(consumer) = consumer.filter(|c| self.consumers.contains_key(*c)) else {
                return Err(ApiError::new(
                    400,
                    "ConsumerNotExist",
                    format!(
                        "consumer {} does not exist in group {}",
                        consumer.unwrap_or(""),
                        self.name
                    ),
                ));
            };
            let holds = self
                .owners
                .get(&shard)
                .is_some_and(|o| o.holder == consumer);
            if !holds {
                return Err(ApiError::new(
                    400,
                    "ConsumerNotMatch",
                    format!("shard {shard} is not held by consumer {consumer}"),
                ));
            }
        }
        self.checkpoints.insert(
            shard,
            Checkpoint {
                cursor,
                update_time_us,
                consumer: consumer.unwrap_or("").to_owned(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u32) -> Vec<ShardInfo> {
        (0..n)
            .map(|id| ShardInfo {
                id,
                readonly: false,
                end: 100,
                parents: vec![],
            })
            .collect()
    }

    fn beat(g: &mut ConsumerGroup, c: &str, held: &[u32], s: &[ShardInfo], t: Instant) -> Vec<u32> {
        g.heartbeat(c, held, s, t).unwrap()
    }

    #[test]
    fn first_consumer_gets_everything() {
        let mut g = ConsumerGroup::new("cg", 4, false);
        let t = Instant::now();
        assert_eq!(beat(&mut g, "a", &[], &shards(4), t), vec![0, 1, 2, 3]);
    }

    #[test]
    fn unknown_consumer_with_body_is_rejected() {
        let mut g = ConsumerGroup::new("cg", 4, false);
        let err = g
            .heartbeat("ghost", &[1], &shards(2), Instant::now())
            .unwrap_err();
        assert_eq!((err.status, &*err.code), (400, "NotExistConsumerWithBody"));
    }

    #[test]
    fn second_consumer_gets_half_after_the_holder_lets_go() {
        let s = shards(4);
        let mut g = ConsumerGroup::new("cg", 10, false);
        let t = Instant::now();
        let a = beat(&mut g, "a", &[], &s, t);
        assert_eq!(a.len(), 4);
        // b joins: nothing free yet; two shards are promised to it.
        assert_eq!(beat(&mut g, "b", &[], &s, t), Vec::<u32>::new());
        // a's next beat no longer gets the promised shards...
        let a2 = beat(&mut g, "a", &a, &s, t);
        assert_eq!(a2.len(), 2);
        // ...b still waits while a lists them...
        assert_eq!(beat(&mut g, "b", &[], &s, t), Vec::<u32>::new());
        // ...and gets them once a stops listing them.
        assert_eq!(beat(&mut g, "a", &a2, &s, t), a2);
        let b = beat(&mut g, "b", &[], &s, t);
        assert_eq!(b.len(), 2);
        let all: BTreeSet<u32> = a2.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 4, "no shard held twice");
    }

    #[test]
    fn timeout_hands_shards_to_the_survivor() {
        let s = shards(4);
        let mut g = ConsumerGroup::new("cg", 4, false);
        let t0 = Instant::now();
        beat(&mut g, "a", &[], &s, t0);
        beat(&mut g, "b", &[], &s, t0);
        let a = beat(&mut g, "a", &[0, 1, 2, 3], &s, t0);
        assert_eq!(
            beat(&mut g, "a", &a, &s, t0),
            a,
            "a lets the promised shards go"
        );
        let b = beat(&mut g, "b", &[], &s, t0);
        assert_eq!((a.len(), b.len()), (2, 2));
        // a stops; b keeps beating past the timeout.
        assert_eq!(beat(&mut g, "b", &b, &s, t0 + Duration::from_secs(3)), b);
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(beat(&mut g, "b", &b, &s, t1), vec![0, 1, 2, 3]);
        // a comes back with its old shards: it was expired.
        let err = g.heartbeat("a", &a, &s, t1).unwrap_err();
        assert_eq!(&*err.code, "NotExistConsumerWithBody");
    }

    #[test]
    fn spread_is_at_most_one() {
        let s = shards(7);
        let mut g = ConsumerGroup::new("cg", 100, false);
        let t = Instant::now();
        let names = ["a", "b", "c"];
        let mut held: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for _ in 0..5 {
            for n in names {
                let h = held.get(n).cloned().unwrap_or_default();
                let got = beat(&mut g, n, &h, &s, t);
                held.insert(n, got);
            }
        }
        let counts: Vec<usize> = held.values().map(Vec::len).collect();
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn checkpoint_owner_check() {
        let s = shards(2);
        let mut g = ConsumerGroup::new("cg", 100, false);
        let t = Instant::now();
        beat(&mut g, "a", &[], &s, t);
        g.update_checkpoint(0, Some("a"), false, "MA==".into(), 1, t)
            .unwrap();
        let e = g
            .update_checkpoint(0, Some("b"), false, "MA==".into(), 1, t)
            .unwrap_err();
        assert_eq!(&*e.code, "ConsumerNotExist");
        beat(&mut g, "b", &[], &s, t);
        let e = g
            .update_checkpoint(0, Some("b"), false, "MA==".into(), 1, t)
            .unwrap_err();
        assert_eq!(&*e.code, "ConsumerNotMatch");
        g.update_checkpoint(0, Some("b"), true, "MQ==".into(), 2, t)
            .unwrap();
        assert_eq!(g.checkpoints[&0].consumer, "b");
    }

    #[test]
    fn ordered_children_wait_for_the_drained_parent() {
        let end = 5;
        let cursor = |n: i64| Cursor(n).encode();
        let s = vec![
            ShardInfo {
                id: 0,
                readonly: true,
                end,
                parents: vec![],
            },
            ShardInfo {
                id: 1,
                readonly: false,
                end: 0,
                parents: vec![0],
            },
            ShardInfo {
                id: 2,
                readonly: false,
                end: 0,
                parents: vec![0],
            },
        ];
        let mut g = ConsumerGroup::new("cg", 100, true);
        let t = Instant::now();
        assert_eq!(beat(&mut g, "a", &[], &s, t), vec![0]);
        g.update_checkpoint(0, Some("a"), true, cursor(end), 1, t)
            .unwrap();
        assert_eq!(beat(&mut g, "a", &[0], &s, t), vec![1, 2]);
        // Unordered groups get the children at once.
        let mut g = ConsumerGroup::new("cg2", 100, false);
        assert_eq!(beat(&mut g, "a", &[], &s, t), vec![0, 1, 2]);
    }
}
