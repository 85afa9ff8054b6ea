//! Metrics: the Prometheus registry `shipper run` exposes on `/metrics`, and the process-wide
//! totals the terminal progress line reads.
//!
//! Names follow `shipper_<noun>_<unit>`; prometheus-client appends `_total` to counters.
//! Counters are bumped once per batch, never per event, so metrics cost nothing on the hot
//! path. Sink and plugin counters live in their crates and are read at scrape time, as are
//! each sink's endpoints (labels `sink`, `endpoint`) and the consumer-group workers' SLS
//! retries and heartbeat age (`collectors`).
//!
//! Each event the pipeline reports is one method here ([`Metrics::pulled`],
//! [`Metrics::delivered`], [`Metrics::dead_lettered`], …) that updates the Prometheus series
//! and the run totals together, so the progress line, the final "stopped" line and
//! `/metrics` cannot disagree.

mod collectors;
mod labels;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shipper_sls::{ConsumerStats, CredentialStats, MemoryBudget};

use self::collectors::{MemoryCollector, ScrapeCollector, SlsCollector};
use self::labels::Views;
pub use self::labels::{
    DeadLetterLabels, PluginFailureLabels, ReloadLabels, ShardLabels, ShardSinkLabels, SinkLabels,
    SinkView,
};
use crate::dead_letter::Stage;
use crate::generation::PluginSlot;
use crate::pipeline::format::FailureKind;

/// Process-wide totals for the progress line (cheap atomics). Read them freely; they are
/// changed only by [`Metrics`]' event methods.
#[derive(Debug, Default)]
pub struct Totals {
    /// Logs pulled.
    pub logs_in: AtomicU64,
    /// Raw (uncompressed) bytes pulled.
    pub raw_bytes_in: AtomicU64,
    /// Events accepted by the sink.
    pub events_out: AtomicU64,
    /// Logs the plugin dropped on purpose (zero emits).
    pub dropped: AtomicU64,
    /// Logs or events written to the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Shards currently held.
    pub shards: AtomicU64,
    /// Sum over held shards (every logstore) of LogGroups behind the end (last measurement);
    /// shared with each logstore's [`ShardLag`](crate::lag::ShardLag).
    pub lag_groups: Arc<AtomicU64>,
}

fn sink_labels(sink: &str) -> SinkLabels {
    SinkLabels {
        sink: sink.to_owned(),
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The registry and every family `shipper run` updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Logs pulled per shard.
    logs_in: Family<ShardLabels, Counter>,
    /// Raw bytes pulled per shard.
    raw_bytes_in: Family<ShardLabels, Counter>,
    /// Events accepted by each sink, per shard.
    events_out: Family<ShardSinkLabels, Counter>,
    /// Logs the plugin dropped (zero emits), per shard.
    logs_dropped: Family<ShardLabels, Counter>,
    /// Dead-lettered logs/events by stage.
    dead_lettered: Family<DeadLetterLabels, Counter>,
    /// Plugin call time per shard, seconds.
    plugin_seconds: Family<ShardLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Plugin failures (traps, batch errors) by kind.
    plugin_failures: Family<PluginFailureLabels, Counter>,
    /// Logs shipped in the built-in JSON format by the `passthrough` policy, per shard.
    passthrough_logs: Family<ShardLabels, Counter>,
    /// Time from pulling a batch to the sink acknowledging its last event, seconds.
    batch_latency: Histogram,
    /// LogGroups between the shard's read position and its end.
    pub(crate) lag_groups: Family<ShardLabels, Gauge>,
    /// Seconds between now and the server receive time at the read position.
    pub(crate) lag_seconds: Family<ShardLabels, Gauge>,
    /// Checkpoints committed.
    checkpoints: Family<ShardLabels, Counter>,
    /// Checkpoint commits that failed (retried).
    checkpoint_errors: Family<ShardLabels, Counter>,
    /// Shards held now.
    shards_held: Gauge,
    /// Wall-clock seconds during which sends to a sink waited for its rate cap.
    throttled_seconds: Family<SinkLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Sends waiting for a sink's rate cap now.
    throttle_waiting: Family<SinkLabels, Gauge>,
    /// Shards whose pulling a sink holds without settling anything (it is down or stuck).
    blocked_shards: Family<SinkLabels, Gauge>,
    /// The sinks and plugins of the running configuration, for `/health` and the scrape
    /// collectors; a reload replaces them.
    views: Arc<ArcSwap<Views>>,
    /// The SLS credentials' provider and counters, once known.
    credentials: Arc<OnceLock<(&'static str, Arc<CredentialStats>)>>,
    /// The memory budget (`[source] max_buffer_mib`), once made.
    memory: Arc<OnceLock<Arc<MemoryBudget>>>,
    /// Configuration generations published (1 at start).
    config_generation: Gauge,
    /// Reloads by result (`applied`, `plugin`, `unchanged`, `refused`).
    config_reloads: Family<ReloadLabels, Counter>,
    /// Batches the canary plugin formatted in shadow.
    canary_batches: Counter,
    /// Canary events by result of the comparison.
    canary_events: Family<ReloadLabels, Counter>,
    /// Totals for the progress line.
    pub totals: Totals,
}

impl Metrics {
    /// Builds the registry. `sinks`, `plugins` (each distinct plugin's slot) and `sls`
    /// (`project/logstore` and the stats of its consumer) are read at scrape time; a reload
    /// replaces the first two ([`Metrics::config_published`]), and the SLS credentials' are
    /// added once known ([`Metrics::set_credentials`]).
    pub fn new(
        sinks: Vec<SinkView>,
        plugins: Vec<Arc<PluginSlot>>,
        sls: Vec<(String, Arc<ConsumerStats>)>,
    ) -> Arc<Self> {
        let mut registry = Registry::default();
        let credentials = Arc::new(OnceLock::new());
        let memory = Arc::new(OnceLock::new());
        let views = Arc::new(ArcSwap::from_pointee(Views { sinks, plugins }));
        let m = Metrics {
            logs_in: Family::default(),
            raw_bytes_in: Family::default(),
            events_out: Family::default(),
            logs_dropped: Family::default(),
            dead_lettered: Family::default(),
            plugin_seconds: Family::default(),
            plugin_failures: Family::default(),
            passthrough_logs: Family::default(),
            // 1 ms .. ~65 s
            batch_latency: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            lag_groups: Family::default(),
            lag_seconds: Family::default(),
            checkpoints: Family::default(),
            checkpoint_errors: Family::default(),
            shards_held: Gauge::default(),
            throttled_seconds: Family::default(),
            throttle_waiting: Family::default(),
            blocked_shards: Family::default(),
            views: views.clone(),
            credentials: credentials.clone(),
            memory: memory.clone(),
            config_generation: Gauge::default(),
            config_reloads: Family::default(),
            canary_batches: Counter::default(),
            canary_events: Family::default(),
            totals: Totals::default(),
            registry: Registry::default(),
        };
        registry.register("shipper_logs_in", "Logs pulled from SLS", m.logs_in.clone());
        registry.register(
            "shipper_raw_in_bytes",
            "Uncompressed LogGroup bytes pulled from SLS",
            m.raw_bytes_in.clone(),
        );
        registry.register(
            "shipper_events_out",
            "Events accepted by each sink",
            m.events_out.clone(),
        );
        registry.register(
            "shipper_logs_dropped",
            "Logs the plugin dropped on purpose (no emit)",
            m.logs_dropped.clone(),
        );
        registry.register(
            "shipper_dead_lettered",
            "Logs or events written to the dead-letter file",
            m.dead_lettered.clone(),
        );
        registry.register(
            "shipper_plugin_seconds",
            "Time spent in plugin calls",
            m.plugin_seconds.clone(),
        );
        registry.register(
            "shipper_plugin_failures",
            "Plugin traps, timeouts and batch errors",
            m.plugin_failures.clone(),
        );
        registry.register(
            "shipper_plugin_passthrough_logs",
            "Logs shipped in the built-in JSON format while the plugin crash-loops (policy passthrough)",
            m.passthrough_logs.clone(),
        );
        registry.register(
            "shipper_batch_latency_seconds",
            "From pulling a batch to the sink acknowledging it",
            m.batch_latency.clone(),
        );
        registry.register(
            "shipper_shard_lag_groups",
            "LogGroups between the read position and the end of the shard",
            m.lag_groups.clone(),
        );
        registry.register(
            "shipper_shard_lag_seconds",
            "Age of the data at the read position (now - server receive time)",
            m.lag_seconds.clone(),
        );
        registry.register(
            "shipper_checkpoints",
            "Checkpoints committed",
            m.checkpoints.clone(),
        );
        registry.register(
            "shipper_checkpoint_errors",
            "Checkpoint commits that failed (retried)",
            m.checkpoint_errors.clone(),
        );
        registry.register(
            "shipper_shards_held",
            "Shards this consumer holds",
            m.shards_held.clone(),
        );
        registry.register(
            "shipper_sink_throttled_seconds",
            "Wall-clock time during which sends to the sink waited for its rate cap",
            m.throttled_seconds.clone(),
        );
        registry.register(
            "shipper_sink_throttle_waiting",
            "Sends waiting for the sink's rate cap now",
            m.throttle_waiting.clone(),
        );
        registry.register(
            "shipper_sink_blocked_shards",
            "Shards whose pulling and checkpoints wait on this sink, which settled nothing for 10 s",
            m.blocked_shards.clone(),
        );
        m.config_generation.set(1);
        registry.register(
            "shipper_config_generation",
            "Configuration generation in use: 1 at start, one more per applied reload",
            m.config_generation.clone(),
        );
        registry.register(
            "shipper_config_reloads",
            "Reloads by result: applied (a new configuration generation), plugin (plugin files swapped only), unchanged, refused",
            m.config_reloads.clone(),
        );
        registry.register(
            "shipper_canary_batches",
            "Sampled batches the canary plugin formatted in shadow and compared",
            m.canary_batches.clone(),
        );
        registry.register(
            "shipper_canary_events",
            "Canary events compared with the current plugin's: same, different, error",
            m.canary_events.clone(),
        );
        registry.register_collector(Box::new(ScrapeCollector { views }));
        registry.register_collector(Box::new(SlsCollector {
            consumers: sls,
            credentials,
        }));
        registry.register_collector(Box::new(MemoryCollector { budget: memory }));
        Arc::new(Metrics { registry, ..m })
    }

    /// A batch of `logs` logs (`raw_bytes` uncompressed) was pulled from a shard.
    pub fn pulled(&self, shard: &ShardLabels, logs: u64, raw_bytes: u64) {
        self.logs_in.get_or_create(shard).inc_by(logs);
        self.raw_bytes_in.get_or_create(shard).inc_by(raw_bytes);
        add(&self.totals.logs_in, logs);
        add(&self.totals.raw_bytes_in, raw_bytes);
    }

    /// Sink `sink` accepted `events` events of a shard.
    pub fn delivered(&self, shard: &ShardLabels, sink: &str, events: u64) {
        let labels = ShardSinkLabels {
            logstore: shard.logstore.clone(),
            shard: shard.shard,
            sink: sink.to_owned(),
        };
        self.events_out.get_or_create(&labels).inc_by(events);
        add(&self.totals.events_out, events);
    }

    /// Sends to `sink` waited `elapsed` (wall clock) for its rate cap.
    pub fn throttled(&self, sink: &str, elapsed: Duration) {
        self.throttled_seconds
            .get_or_create(&sink_labels(sink))
            .inc_by(elapsed.as_secs_f64());
    }

    /// `waiting` sends of `sink` wait for its rate cap now.
    pub fn throttle_waiting(&self, sink: &str, waiting: usize) {
        self.throttle_waiting
            .get_or_create(&sink_labels(sink))
            .set(waiting as i64);
    }

    /// A shard waits on `sink`, which has settled nothing for a while. The first shard of
    /// an episode logs the one WARN.
    pub fn sink_blocked(&self, sink: &str) {
        if self.blocked_shards.get_or_create(&sink_labels(sink)).inc() == 0 {
            tracing::warn!(
                sink,
                "sink settles nothing: shards stop pulling and their checkpoints wait for it                  (back-pressure); nothing is lost, the backlog waits in SLS"
            );
        }
    }

    /// A shard that waited on `sink` goes on. The last one of an episode logs an INFO.
    pub fn sink_unblocked(&self, sink: &str) {
        if self.blocked_shards.get_or_create(&sink_labels(sink)).dec() == 1 {
            tracing::info!(sink, "sink settles sends again; shards pull again");
        }
    }

    /// The SLS credentials' provider (its name) and refresh counters, for the scrape.
    pub fn set_credentials(&self, provider: &'static str, stats: Arc<CredentialStats>) {
        // Set once, at start; a second call would describe the same provider.
        let _ = self.credentials.set((provider, stats));
    }

    /// The memory budget every shard's data is held against, for the scrape.
    pub fn set_memory_budget(&self, budget: Arc<MemoryBudget>) {
        // Set once, at start: one budget for the process.
        let _ = self.memory.set(budget);
    }

    /// The sinks (for `/health`).
    pub fn sinks(&self) -> Vec<SinkView> {
        self.views.load().sinks.clone()
    }

    /// Configuration generation `generation` is in use, with these sinks and plugins (at
    /// start, and after each applied reload).
    pub fn config_published(
        &self,
        generation: u64,
        sinks: Vec<SinkView>,
        plugins: Vec<Arc<PluginSlot>>,
    ) {
        self.views.store(Arc::new(Views { sinks, plugins }));
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// The canary compared one batch: events `same`, `different`, `error`.
    pub fn canary_compared(&self, same: u64, different: u64, error: u64) {
        self.canary_batches.inc();
        for (result, n) in [("same", same), ("different", different), ("error", error)] {
            self.canary_events
                .get_or_create(&ReloadLabels {
                    result: result.into(),
                })
                .inc_by(n);
        }
    }

    /// A reload ended: `applied` (a new generation), `plugin` (only plugin files were
    /// swapped), `unchanged` or `refused` (the running configuration stays).
    pub fn config_reload(&self, result: &'static str) {
        self.config_reloads
            .get_or_create(&ReloadLabels {
                result: result.into(),
            })
            .inc();
    }

    /// The plugin dropped `logs` logs on purpose (no emit).
    pub fn dropped(&self, shard: &ShardLabels, logs: u64) {
        self.logs_dropped.get_or_create(shard).inc_by(logs);
        add(&self.totals.dropped, logs);
    }

    /// `n` entries of `logstore` (`project/logstore`) were written to the dead-letter file.
    pub fn dead_lettered(&self, logstore: &str, stage: Stage, n: u64) {
        let labels = DeadLetterLabels {
            logstore: logstore.to_owned(),
            stage: stage.as_str().to_owned(),
        };
        self.dead_lettered.get_or_create(&labels).inc_by(n);
        add(&self.totals.dead_lettered, n);
    }

    /// A plugin call of a shard took `elapsed`.
    pub fn plugin_time(&self, shard: &ShardLabels, elapsed: Duration) {
        self.plugin_seconds
            .get_or_create(shard)
            .inc_by(elapsed.as_secs_f64());
    }

    /// Creates the failure and dead-letter series of `logstore` at zero, so that `rate()`
    /// and `increase()` see the first failure (a series that appears with its first
    /// increment hides it) and every family is in `/metrics` from the start.
    pub fn zero_failure_series(&self, logstore: &str) {
        for kind in FailureKind::ALL {
            self.plugin_failures
                .get_or_create(&PluginFailureLabels {
                    kind: kind.as_str().to_owned(),
                })
                .inc_by(0);
        }
        for stage in Stage::ALL {
            self.dead_lettered
                .get_or_create(&DeadLetterLabels {
                    logstore: logstore.to_owned(),
                    stage: stage.as_str().to_owned(),
                })
                .inc_by(0);
        }
    }

    /// A plugin call failed.
    pub fn plugin_failed(&self, kind: FailureKind) {
        let labels = PluginFailureLabels {
            kind: kind.as_str().to_owned(),
        };
        self.plugin_failures.get_or_create(&labels).inc();
    }

    /// `logs` logs went out in the built-in passthrough format.
    pub fn passthrough(&self, shard: &ShardLabels, logs: u64) {
        self.passthrough_logs.get_or_create(shard).inc_by(logs);
    }

    /// A send settled `since_pull` after its first batch was pulled.
    pub fn batch_latency(&self, since_pull: Duration) {
        self.batch_latency.observe(since_pull.as_secs_f64());
    }

    /// A shard's checkpoint was committed.
    pub fn checkpoint_committed(&self, shard: &ShardLabels) {
        self.checkpoints.get_or_create(shard).inc();
    }

    /// A shard's checkpoint commit failed (a later one supersedes it).
    pub fn checkpoint_failed(&self, shard: &ShardLabels) {
        self.checkpoint_errors.get_or_create(shard).inc();
    }

    /// This consumer took a shard.
    pub fn shard_acquired(&self) {
        self.shards_held.inc();
        add(&self.totals.shards, 1);
    }

    /// This consumer let a shard go.
    pub fn shard_released(&self) {
        self.shards_held.dec();
        self.totals.shards.fetch_sub(1, Ordering::Relaxed);
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing into a String cannot fail");
        out
    }
}
