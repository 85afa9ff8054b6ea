//! The format stage: a range of one LogGroup through the plugin, with poison-log isolation,
//! the crash-loop breaker, rollback and the failure policy (docs/plugins.md "Failures").
//!
//! - A **trap** (the plugin crashed, ran out of time or memory) poisons the instance. The
//!   range is bisected on fresh instances until the failing log(s) are isolated: those come
//!   back as [`LogOutcome::Trapped`] (they go to the dead-letter file), every other log is
//!   formatted normally.
//! - Every trap feeds the generation's crash-loop [`Breaker`](crate::generation::Breaker),
//!   counted once per failed top-level call and once per isolated log (not per bisection
//!   step: a hanging log costs ~log2(batch) timed-out calls, which would otherwise trip the
//!   breaker after two or three bad logs). When it trips, the slot rolls back to the previous
//!   generation if the current one is recent; otherwise the [`FailurePolicy`] applies:
//!   `pause` (retry the batch with backoff, nothing skipped) or `passthrough` (ship the logs
//!   in a built-in JSON format).
//! - A **batch-level failure** (the plugin's own `err`, a broken contract, an instance that
//!   cannot start) is retried with backoff until it works or the shard is revoked; a new
//!   generation published meanwhile (the fix) is picked up between attempts.
//!
//! The plugin is seen through [`Formatter`] and [`FormatInstance`] (`formatter.rs`),
//! implemented by the runtime's plugins and by in-process fakes in the unit tests.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use shipper_net::Backoff;
use shipper_runtime::{BatchInfo, Emit, PluginError, RecordError, TrapKind};
use shipper_sinks::SinkKind;
use shipper_sls::consumer::{Revocation, RevokeReason};
use shipper_sls::proto::LogGroupView;
use tokio::time::Instant;

pub use super::formatter::{FormatInstance, Formatter};
use super::passthrough;
use crate::generation::{FailurePolicy, Generation, PluginSlot};
use crate::metrics::{Metrics, ShardLabels};

/// First wait after a batch-level plugin failure; doubles up to [`MAX_PLUGIN_RETRY_WAIT`].
const PLUGIN_RETRY_WAIT: Duration = Duration::from_millis(500);
/// Longest wait between retries of a failing plugin batch (policy `pause`).
const MAX_PLUGIN_RETRY_WAIT: Duration = Duration::from_secs(30);

/// What one log became.
#[derive(Debug)]
pub enum LogOutcome {
    /// The plugin's emits (none: the plugin dropped the log on purpose).
    Emits(Vec<Emit>),
    /// The plugin refused this log (a record error).
    Failed(RecordError),
    /// The plugin trapped on this log alone (isolated by bisection).
    Trapped {
        /// Why it trapped.
        kind: TrapKind,
        /// The trap message, naming the plugin generation.
        message: String,
    },
    /// The host could not hand this log to the plugin (its LogGroup is malformed).
    Host(String),
}

/// Which kind of plugin failure (the `kind` label of `shipper_plugin_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A trap of this kind.
    Trap(TrapKind),
    /// The plugin failed the whole batch on purpose.
    BatchError,
    /// The plugin broke the contract, or an instance could not be made.
    Contract,
}

impl FailureKind {
    /// Every kind, for series that start at zero.
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Trap(TrapKind::Timeout),
        FailureKind::Trap(TrapKind::Memory),
        FailureKind::Trap(TrapKind::Panic),
        FailureKind::Trap(TrapKind::Other),
        FailureKind::BatchError,
        FailureKind::Contract,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap(TrapKind::Timeout) => "timeout",
            FailureKind::Trap(TrapKind::Memory) => "memory",
            FailureKind::Trap(TrapKind::Panic) => "panic",
            FailureKind::Trap(TrapKind::Other) => "other",
            FailureKind::BatchError => "batch_error",
            FailureKind::Contract => "contract",
        }
    }

    fn of(error: &PluginError) -> Self {
        match (error.trap_kind(), error) {
            (Some(kind), _) => FailureKind::Trap(kind),
            (None, PluginError::Guest { .. }) => FailureKind::BatchError,
            (None, _) => FailureKind::Contract,
        }
    }
}

/// What the format stage of one shard shares with the rest of the process.
#[derive(Debug, Clone)]
pub struct FormatContext {
    /// The plugin generation in use.
    pub plugins: Arc<PluginSlot>,
    /// What to do when the plugin is in a crash loop and cannot be rolled back.
    pub failure_policy: FailurePolicy,
    /// The sinks this plugin formats for (name and kind): what the built-in passthrough
    /// format produces.
    pub passthrough: Vec<(String, SinkKind)>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The canary plugin run in shadow on sampled batches (`[plugin.canary]`).
    pub canary: Option<Arc<crate::canary::Canary>>,
}

/// One shard's format stage. See the module docs.
pub struct FormatStage {
    ctx: FormatContext,
    labels: ShardLabels,
    generation: Arc<Generation>,
    /// Waits between retries of a batch-level failure; reset by a success.
    retry: Backoff,
}

impl FormatStage {
    /// The stage of the shard `labels` names, starting on the slot's current generation.
    pub fn new(ctx: FormatContext, labels: ShardLabels) -> Self {
        Self {
            generation: ctx.plugins.current(),
            ctx,
            labels,
            retry: Backoff::new(PLUGIN_RETRY_WAIT, MAX_PLUGIN_RETRY_WAIT),
        }
    }

    /// The generation formatting the current batch.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Between two batches: moves to the slot's current generation if a new one was
    /// published (hot swap). Returns the previous one when it switched.
    pub fn follow_swap(&mut self) -> Option<Arc<Generation>> {
        let current = self.ctx.plugins.current();
        if Arc::ptr_eq(&current, &self.generation) {
            return None;
        }
        Some(std::mem::replace(&mut self.generation, current))
    }

    /// Formats logs `range` of `view`, retrying batch-level failures with backoff (see the
    /// module docs). `Err` with the reason when the shard was revoked while waiting.
    pub async fn format(
        &mut self,
        revocation: &Revocation,
        info: &BatchInfo,
        view: &LogGroupView,
        range: Range<usize>,
    ) -> Result<Vec<(usize, LogOutcome)>, RevokeReason> {
        loop {
            let error = match self.try_range(info, view, range.clone(), true).await {
                Ok(outcomes) => {
                    self.retry.reset();
                    return Ok(outcomes);
                }
                Err(e) => e,
            };
            let wait = self.retry.next_delay();
            // A trap here means the crash-loop breaker paused the shard (single-log traps
            // are dead-lettered by the bisection); anything else failed the whole batch.
            let what = if error.is_trap() {
                "plugin crash-looping, shard paused; retrying the batch (nothing is skipped)"
            } else {
                "plugin failed the whole batch; retrying (nothing is skipped)"
            };
            tracing::error!(
                shard = self.labels.shard,
                plugin = %self.generation.label(),
                error = %error,
                retry_in = ?wait,
                "{what}"
            );
            tokio::select! {
                reason = revocation.revoked() => return Err(reason),
                () = tokio::time::sleep(wait) => {}
            }
            // A new generation may have been published meanwhile (the fix).
            self.follow_swap();
        }
    }

    /// One attempt over `range`, with bisection on traps. `top` is false for the bisection's
    /// own calls (see the module docs on how the breaker counts).
    fn try_range<'a>(
        &'a mut self,
        info: &'a BatchInfo,
        view: &'a LogGroupView,
        range: Range<usize>,
        top: bool,
    ) -> BoxFuture<'a, Result<Vec<(usize, LogOutcome)>, PluginError>> {
        async move {
            let bytes = match view.slice(range.clone()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Not the plugin's fault: the server sent a LogGroup whose framing
                    // breaks inside. Its logs are dead-lettered as host failures.
                    let message = format!("malformed LogGroup, cannot cut logs out of it: {e}");
                    return Ok(range
                        .map(|i| (i, LogOutcome::Host(message.clone())))
                        .collect());
                }
            };
            // An instance of the shared pool for this one call (crate::instances): the
            // shard holds none between calls, so instances do not grow with the shards.
            let g = self.generation.clone();
            let mut lease = match g.instances.borrow(g.plugin.as_ref(), &g.config_json).await {
                Ok(lease) => lease,
                Err(e) => {
                    self.ctx.metrics.plugin_failed(FailureKind::Contract);
                    return Err(e);
                }
            };
            let started = Instant::now();
            let result = lease.instance().process(info, &bytes, range.len()).await;
            self.ctx
                .metrics
                .plugin_time(&self.labels, started.elapsed());
            let e = match result {
                Ok(results) => {
                    g.instances.give_back(lease, g.plugin.max_memory_bytes());
                    return Ok(range
                        .zip(results)
                        .map(|(i, r)| (i, r.map_or_else(LogOutcome::Failed, LogOutcome::Emits)))
                        .collect());
                }
                Err(e) => e,
            };
            self.ctx.metrics.plugin_failed(FailureKind::of(&e));
            // A failed instance is never given back: dropping the lease drops it.
            drop(lease);
            let Some(kind) = e.trap_kind() else {
                return Err(e);
            };
            if (top || range.len() == 1) && self.generation.breaker.record() {
                return self.crash_loop(info, view, range, e).await;
            }
            if range.len() == 1 {
                tracing::warn!(
                    shard = self.labels.shard,
                    plugin = %self.generation.label(),
                    log = range.start,
                    error = %e,
                    "plugin trapped on one log; it goes to the dead-letter file"
                );
                let message = format!("plugin {} trapped: {e}", self.generation.plugin.hash());
                return Ok(vec![(range.start, LogOutcome::Trapped { kind, message })]);
            }
            tracing::warn!(
                shard = self.labels.shard,
                plugin = %self.generation.label(),
                logs = range.len(),
                error = %e,
                "plugin trapped; bisecting the batch to isolate the failing log"
            );
            let mid = range.start + range.len() / 2;
            let mut left = self.try_range(info, view, range.start..mid, false).await?;
            let right = self.try_range(info, view, mid..range.end, false).await?;
            left.extend(right);
            Ok(left)
        }
        .boxed()
    }

    /// The current generation's breaker tripped: roll back if it is recent and has a
    /// predecessor (or another shard just did), else apply the failure policy.
    async fn crash_loop(
        &mut self,
        info: &BatchInfo,
        view: &LogGroupView,
        range: Range<usize>,
        error: PluginError,
    ) -> Result<Vec<(usize, LogOutcome)>, PluginError> {
        let failing = self.generation.clone();
        if let Some(restored) = self.ctx.plugins.rollback(&failing) {
            tracing::error!(
                from = %failing.label(),
                to = %restored.label(),
                error = %error,
                "plugin keeps trapping; rolled back to the previous generation"
            );
        }
        if self.follow_swap().is_some() {
            return self.try_range(info, view, range, true).await;
        }
        match self.ctx.failure_policy {
            FailurePolicy::Pause => {
                tracing::error!(
                    shard = self.labels.shard,
                    plugin = %failing.label(),
                    error = %error,
                    "plugin keeps trapping (crash-loop breaker tripped); pausing this shard until it works again"
                );
                Err(error)
            }
            FailurePolicy::Passthrough => {
                tracing::warn!(
                    shard = self.labels.shard,
                    plugin = %failing.label(),
                    logs = range.len(),
                    "plugin keeps trapping; shipping these logs in the built-in JSON format (policy passthrough)"
                );
                self.ctx
                    .metrics
                    .passthrough(&self.labels, range.len() as u64);
                Ok(passthrough::format(view, range, &self.ctx.passthrough))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::pipeline::testing::{self, FakePlugin, Log};

    fn stage(plugin: FakePlugin, policy: FailurePolicy, threshold: usize) -> FormatStage {
        let ctx = FormatContext {
            plugins: testing::slot(plugin, threshold),
            failure_policy: policy,
            passthrough: vec![("default".into(), SinkKind::Hec)],
            metrics: testing::metrics(),
            canary: None,
        };
        FormatStage::new(ctx, testing::labels(0))
    }

    /// Formats `logs` as one group; returns, per log, `ok:<text>`, `trap`, `failed` or
    /// `host`.
    async fn run(stage: &mut FormatStage, logs: &[Log]) -> Vec<String> {
        let view = testing::view(logs);
        let outcomes = stage
            .format(&Revocation::new(), &testing::info(), &view, 0..logs.len())
            .await
            .expect("not revoked");
        assert_eq!(
            outcomes.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..logs.len()).collect::<Vec<_>>(),
            "one outcome per log, in order"
        );
        outcomes
            .into_iter()
            .map(|(_, o)| testing::describe(&o))
            .collect()
    }

    fn logs(pattern: &str) -> Vec<Log> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| match c {
                'p' => Log::poison(i),
                'r' => Log::refused(i),
                _ => Log::ok(i),
            })
            .collect()
    }

    #[tokio::test]
    async fn an_instance_is_replaced_after_its_calls() {
        let plugin = FakePlugin::default();
        let mut s = stage(plugin.clone(), FailurePolicy::Pause, 100);
        // Every instance of this generation is good for three calls.
        let mut g = testing::generation(plugin.clone(), 100);
        g.instances = crate::instances::InstancePool::with_recycling(4, 3..3);
        s.ctx.plugins.publish(g);
        s.follow_swap();
        let instances = || plugin.instances.load(Ordering::SeqCst);
        for _ in 0..3 {
            run(&mut s, &logs("..")).await;
            assert_eq!(instances(), 1, "kept for its first three calls");
        }
        run(&mut s, &logs("..")).await;
        assert_eq!(instances(), 2, "the third call used it up");
        for _ in 0..9 {
            run(&mut s, &logs("..")).await;
        }
        assert_eq!(instances(), 5, "thirteen calls, three each");
        assert_eq!(s.generation.instances.live(), 1, "one kept idle, no more");
    }

    #[tokio::test]
    async fn an_instance_past_three_quarters_of_its_memory_cap_is_replaced() {
        let plugin = FakePlugin::default();
        let cap = 64usize << 20;
        let mut s = stage(plugin.clone(), FailurePolicy::Pause, 100);
        let instances = || plugin.instances.load(Ordering::SeqCst);
        plugin.memory.store(cap / 4 * 3, Ordering::SeqCst);
        run(&mut s, &logs("..")).await;
        run(&mut s, &logs("..")).await;
        assert_eq!(instances(), 1, "at exactly three quarters it stays");
        plugin.memory.store(cap / 10 * 8, Ordering::SeqCst);
        run(&mut s, &logs("..")).await;
        run(&mut s, &logs("..")).await;
        assert_eq!(
            instances(),
            2,
            "past three quarters it is replaced after its call"
        );
    }

    #[tokio::test]
    async fn one_poison_log_is_isolated_and_its_neighbours_are_formatted() {
        let plugin = FakePlugin::default();
        let mut s = stage(plugin.clone(), FailurePolicy::Pause, 100);
        let out = run(&mut s, &logs("...p....")).await;
        assert_eq!(
            out,
            [
                "ok:0", "ok:1", "ok:2", "trap", "ok:4", "ok:5", "ok:6", "ok:7"
            ]
        );
        // The failed call, then the isolated log: two counts, not one per bisection step.
        assert_eq!(s.generation.breaker.count(), 2);
        assert!(
            plugin.instances.load(Ordering::SeqCst) > 2,
            "fresh instances after traps"
        );
    }

    #[tokio::test]
    async fn two_poison_logs_are_each_isolated_and_counted_once() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Pause, 100);
        let out = run(&mut s, &logs(".p..r..p")).await;
        assert_eq!(
            out,
            [
                "ok:0", "trap", "ok:2", "ok:3", "failed", "ok:5", "ok:6", "trap"
            ]
        );
        assert_eq!(
            s.generation.breaker.count(),
            3,
            "the batch once, each poison log once"
        );
    }

    #[tokio::test]
    async fn a_batch_of_nothing_but_poison_isolates_every_log() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Pause, 100);
        let out = run(&mut s, &logs("pppp")).await;
        assert_eq!(out, ["trap", "trap", "trap", "trap"]);
        assert_eq!(s.generation.breaker.count(), 5);
    }

    #[tokio::test]
    async fn a_single_poison_log_alone_counts_once() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Pause, 100);
        assert_eq!(run(&mut s, &logs("p")).await, ["trap"]);
        assert_eq!(s.generation.breaker.count(), 1);
    }

    #[tokio::test]
    async fn a_tripped_breaker_with_passthrough_ships_the_logs_as_json() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Passthrough, 1);
        let out = run(&mut s, &logs(".p.")).await;
        assert_eq!(out.len(), 3);
        for (i, line) in out.iter().enumerate() {
            let json = line
                .strip_prefix("json:")
                .unwrap_or_else(|| panic!("{line}"));
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["seq"], i.to_string(), "{v}");
            assert_eq!(v["__topic__"], "test-topic", "{v}");
        }
        let text = s.ctx.metrics.encode();
        assert!(
            text.contains("shipper_plugin_passthrough_logs_total{logstore=\"p/ls\",shard=\"0\"} 3"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_tripped_breaker_with_pause_retries_until_revoked_and_skips_nothing() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Pause, 1);
        let view = testing::view(&logs("p."));
        let revocation = Arc::new(Revocation::new());
        let revoke = revocation.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            revoke.revoke(RevokeReason::Shutdown);
        });
        let result = s.format(&revocation, &testing::info(), &view, 0..2).await;
        assert!(matches!(result, Err(RevokeReason::Shutdown)));
        assert!(
            s.generation.breaker.count() >= 3,
            "kept retrying while paused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_error_is_retried_and_a_published_fix_is_picked_up() {
        let broken = FakePlugin {
            fail_batches: true,
            ..FakePlugin::default()
        };
        let mut s = stage(broken, FailurePolicy::Pause, 100);
        let view = testing::view(&logs(".."));
        let slot = s.ctx.plugins.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            slot.publish(testing::generation(FakePlugin::default(), 100));
        });
        let out = s
            .format(&Revocation::new(), &testing::info(), &view, 0..2)
            .await
            .unwrap();
        let text: Vec<String> = out
            .into_iter()
            .map(|(_, o)| testing::describe(&o))
            .collect();
        assert_eq!(text, ["ok:0", "ok:1"]);
        let metrics = s.ctx.metrics.encode();
        assert!(
            metrics.contains("shipper_plugin_failures_total{kind=\"batch_error\"}"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn a_malformed_group_is_a_host_failure_not_a_trap() {
        let mut s = stage(FakePlugin::default(), FailurePolicy::Pause, 100);
        // A Logs field (1, length-delimited) whose length runs past the end.
        let view = LogGroupView {
            bytes: bytes::Bytes::from_static(&[0x0a, 0x05, 0x01]),
            log_count: 2,
        };
        let out = s
            .format(&Revocation::new(), &testing::info(), &view, 0..1)
            .await
            .unwrap();
        assert_eq!(testing::describe(&out[0].1), "host");
        assert_eq!(s.generation.breaker.count(), 0);
    }
}
