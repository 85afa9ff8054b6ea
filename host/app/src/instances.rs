//! The plugin instances of one generation, shared by every shard of the process
//! (docs/plugins.md §7 "Instances", docs/architecture.md §6 "Bounded memory").
//!
//! A shard borrows an instance for one call and gives it back afterwards, so the number of
//! instances follows the calls that run at the same time, not the shard count: a plugin's
//! linear memory grows to the size of the batches it formats and never shrinks, and one
//! instance per shard made memory grow with the shards (256 instances at 256 shards). At most
//! [`InstancePool::limit`] instances live at once, borrowed and idle together; a shard that
//! finds none free waits for one. The calls are CPU work on the runtime's worker threads, so
//! a limit of two per worker thread keeps every thread busy while one call yields at an epoch
//! tick.
//!
//! An instance that trapped, failed a batch, or was borrowed by a call that never finished
//! (the shard was cancelled) is never given back: dropping its [`Lease`] drops it and frees
//! its place. One given back after enough calls, or past three quarters of its memory cap, is
//! dropped too (recycling).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use shipper_runtime::PluginError;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::pipeline::format::{FormatInstance, Formatter};

/// An instance is replaced after a random number of calls in this range: long-lived
/// instances leak (linear memory never shrinks), and randomising keeps them from recycling
/// together (docs/plugins.md §7).
pub const RECYCLE_CALLS: Range<u64> = 5_000..10_000;
/// An instance whose memory high-water mark passes this share of its cap is replaced.
pub const RECYCLE_MEMORY_SHARE: f64 = 0.75;

/// The default limit: two instances per CPU the process may use, at least two.
pub fn default_limit() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * 2).max(2)
}

/// The instances of one generation. See the module docs.
pub struct InstancePool {
    limit: usize,
    /// One permit per instance alive (borrowed, idle or being made): the bound.
    permits: Arc<Semaphore>,
    /// Instances given back, ready for the next call, each with its permit.
    idle: Mutex<Vec<(Pooled, OwnedSemaphorePermit)>>,
    /// Woken when an instance is given back or dropped.
    freed: Arc<Notify>,
    recycle_calls: Range<u64>,
}

struct Pooled {
    instance: Box<dyn FormatInstance>,
    /// Calls after which this instance is dropped instead of given back.
    recycle_after: u64,
}

/// One instance borrowed for a call. Dropping it drops the instance and frees its place (see
/// the module docs); [`InstancePool::give_back`] returns it.
pub struct Lease {
    pooled: Option<Pooled>,
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Lease {
    /// The instance.
    pub fn instance(&mut self) -> &mut dyn FormatInstance {
        self.pooled
            .as_mut()
            .expect("a lease holds its instance until dropped")
            .instance
            .as_mut()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The instance first, then its place, then a waiting shard.
        drop(self.pooled.take());
        if self.permit.take().is_some() {
            self.freed.notify_one();
        }
    }
}

impl InstancePool {
    /// A pool of at most `limit` instances (at least one).
    pub fn new(limit: usize) -> Self {
        Self::with_recycling(limit, RECYCLE_CALLS)
    }

    /// A pool whose instances are recycled after a number of calls drawn from `calls`.
    pub fn with_recycling(limit: usize, calls: Range<u64>) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            permits: Arc::new(Semaphore::new(limit)),
            idle: Mutex::new(Vec::new()),
            freed: Arc::new(Notify::new()),
            recycle_calls: calls,
        }
    }

    /// Most instances alive at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Instances alive now (borrowed, idle, or being made).
    pub fn live(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// An instance for one call: an idle one, else a new one `init`-ed with `config_json`
    /// when the limit allows, else waits until one is given back or dropped.
    pub async fn borrow(
        &self,
        plugin: &dyn Formatter,
        config_json: &str,
    ) -> Result<Lease, PluginError> {
        loop {
            // Registered before looking, so a release between the look and the wait wakes it.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some((pooled, permit)) = self.lock().pop() {
                return Ok(self.lease(pooled, permit));
            }
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                // Should `init` fail, dropping the permit frees the place again.
                let permit = scopeguard_notify(permit, &self.freed);
                let instance = plugin.instantiate(config_json).await?;
                let pooled = Pooled {
                    instance,
                    recycle_after: self.recycle_after(),
                };
                return Ok(self.lease(pooled, permit.into_inner()));
            }
            freed.await;
        }
    }

    fn lease(&self, pooled: Pooled, permit: OwnedSemaphorePermit) -> Lease {
        Lease {
            pooled: Some(pooled),
            permit: Some(permit),
            freed: self.freed.clone(),
        }
    }

    /// Returns an instance after a successful call, unless it is due for recycling: it made
    /// its calls, or grew past [`RECYCLE_MEMORY_SHARE`] of `max_memory_bytes`.
    pub fn give_back(&self, mut lease: Lease, max_memory_bytes: usize) {
        let (Some(pooled), Some(permit)) = (lease.pooled.take(), lease.permit.take()) else {
            return;
        };
        let instance = &pooled.instance;
        if instance.calls() >= pooled.recycle_after
            || instance.memory_high_water() as f64 > max_memory_bytes as f64 * RECYCLE_MEMORY_SHARE
        {
            tracing::debug!(
                calls = instance.calls(),
                memory = instance.memory_high_water(),
                "recycling a plugin instance"
            );
            drop(pooled);
            drop(permit);
        } else {
            self.lock().push((pooled, permit));
        }
        self.freed.notify_one();
    }

    /// Drops the idle instances (a generation that is no longer current keeps none).
    pub fn clear(&self) {
        let idle = std::mem::take(&mut *self.lock());
        for _ in idle {
            self.freed.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Pooled, OwnedSemaphorePermit)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recycle_after(&self) -> u64 {
        use rand::Rng as _;
        if self.recycle_calls.is_empty() {
            return self.recycle_calls.start;
        }
        rand::rng().random_range(self.recycle_calls.clone())
    }
}

/// A permit that wakes a waiting shard when dropped unused (an instance that failed to
/// start frees its place).
struct NotifyOnDrop<'a> {
    permit: Option<OwnedSemaphorePermit>,
    freed: &'a Notify,
}

fn scopeguard_notify(permit: OwnedSemaphorePermit, freed: &Notify) -> NotifyOnDrop<'_> {
    NotifyOnDrop {
        permit: Some(permit),
        freed,
    }
}

impl NotifyOnDrop<'_> {
    fn into_inner(mut self) -> OwnedSemaphorePermit {
        self.permit.take().expect("taken once")
    }
}

impl Drop for NotifyOnDrop<'_> {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.freed.notify_one();
        }
    }
}

impl Default for InstancePool {
    fn default() -> Self {
        Self::new(default_limit())
    }
}

impl fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstancePool")
            .field("limit", &self.limit)
            .field("live", &self.live())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use shipper_sinks::SinkKind;
    use shipper_sls::consumer::Revocation;

    use super::*;
    use crate::generation::{FailurePolicy, PluginSlot};
    use crate::pipeline::format::{FormatContext, FormatStage};
    use crate::pipeline::testing::{self, FakePlugin, Log};

    /// 256 shards formatting at once, some of them through poison logs (each trap drops an
    /// instance and the bisection makes fresh ones): never more instances alive than the
    /// limit, and every log comes out as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hundred_and_fifty_six_shards_never_hold_more_than_the_limit() {
        const LIMIT: usize = 4;
        let plugin = FakePlugin::default();
        let mut g = testing::generation(plugin.clone(), 1_000_000);
        g.instances = InstancePool::new(LIMIT);
        let ctx = FormatContext {
            plugins: PluginSlot::new(g),
            failure_policy: FailurePolicy::Pause,
            passthrough: vec![("default".into(), SinkKind::Hec)],
            metrics: testing::metrics(),
            canary: None,
        };
        let tasks: Vec<_> = (0..256u32)
            .map(|shard| {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let mut stage = FormatStage::new(ctx, testing::labels(shard));
                    let logs: Vec<Log> = (0..8)
                        .map(|i| {
                            if shard % 16 == 0 && i == 5 {
                                Log::poison(i)
                            } else {
                                Log::ok(i)
                            }
                        })
                        .collect();
                    let view = testing::view(&logs);
                    for _ in 0..5 {
                        let out = stage
                            .format(&Revocation::new(), &testing::info(), &view, 0..8)
                            .await
                            .expect("not revoked");
                        let text: Vec<String> =
                            out.iter().map(|(_, o)| testing::describe(o)).collect();
                        let want: Vec<String> = (0..8)
                            .map(|i| {
                                if shard % 16 == 0 && i == 5 {
                                    "trap".to_string()
                                } else {
                                    format!("ok:{i}")
                                }
                            })
                            .collect();
                        assert_eq!(text, want, "shard {shard}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("shard task");
        }
        let peak = plugin.live.1.load(Ordering::SeqCst);
        assert!(
            (1..=LIMIT).contains(&peak),
            "at most {LIMIT} instances alive at once, saw {peak}"
        );
        assert!(
            plugin.instances.load(Ordering::SeqCst) > LIMIT,
            "the poison logs' traps dropped instances and fresh ones replaced them"
        );
        let generation = ctx.plugins.current();
        assert_eq!(
            generation.instances.live(),
            plugin.live.0.load(Ordering::SeqCst)
        );
        assert!(generation.instances.live() <= LIMIT);
    }

    #[tokio::test]
    async fn a_failed_call_drops_its_instance_and_frees_its_place() {
        let plugin = FakePlugin::default();
        let pool = InstancePool::new(1);
        let lease = pool.borrow(&plugin, "{}").await.unwrap();
        assert_eq!(pool.live(), 1);
        drop(lease);
        assert_eq!(pool.live(), 0, "a lease not given back frees its place");
        assert_eq!(plugin.live.0.load(Ordering::SeqCst), 0, "and its instance");
        let lease = pool.borrow(&plugin, "{}").await.unwrap();
        pool.give_back(lease, 64 << 20);
        assert_eq!(pool.live(), 1, "given back: kept idle");
        let lease = pool.borrow(&plugin, "{}").await.unwrap();
        assert_eq!(
            plugin.instances.load(Ordering::SeqCst),
            2,
            "the idle one reused"
        );
        pool.give_back(lease, 64 << 20);
        pool.clear();
        assert_eq!(pool.live(), 0, "clear drops the idle instances");
        assert_eq!(plugin.live.0.load(Ordering::SeqCst), 0);
    }
}
