//! Metrics: the Prometheus registry `shipper run` exposes on `/metrics`, and the process-wide
//! totals the terminal progress line reads.
//!
//! Names follow `shipper_<noun>_<unit>`; prometheus-client appends `_total` to counters.
//! Counters are bumped once per batch, never per event, so metrics cost nothing on the hot
//! path. Sink and plugin counters live in their crates and are read at scrape time by
//! [`ScrapeCollector`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shipper_sinks::SinkMetrics;

use crate::generation::PluginSlot;

/// Labels of per-shard series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    /// `project/logstore`.
    pub logstore: String,
    /// Shard id.
    pub shard: u32,
}

/// Labels of dead-letter counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// `project/logstore`.
    pub logstore: String,
    /// `plugin`, `plugin_trap`, `sink` or `host`.
    pub stage: String,
}

/// Labels of plugin failures.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginFailureLabels {
    /// `timeout`, `memory`, `panic`, `other`, `batch_error`, `contract`.
    pub kind: String,
}

/// Process-wide totals for the progress line (cheap atomics).
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

impl Totals {
    /// Adds to a total.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The registry and every family `shipper run` updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Logs pulled per shard.
    pub logs_in: Family<ShardLabels, Counter>,
    /// Raw bytes pulled per shard.
    pub raw_bytes_in: Family<ShardLabels, Counter>,
    /// Events accepted by the sink, per shard.
    pub events_out: Family<ShardLabels, Counter>,
    /// Logs the plugin dropped (zero emits), per shard.
    pub logs_dropped: Family<ShardLabels, Counter>,
    /// Dead-lettered logs/events by stage.
    pub dead_lettered: Family<DeadLetterLabels, Counter>,
    /// Plugin call time per shard, seconds.
    pub plugin_seconds: Family<ShardLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Plugin failures (traps, batch errors) by kind.
    pub plugin_failures: Family<PluginFailureLabels, Counter>,
    /// Time from pulling a batch to the sink acknowledging its last event, seconds.
    pub batch_latency: Histogram,
    /// LogGroups between the shard's read position and its end.
    pub lag_groups: Family<ShardLabels, Gauge>,
    /// Seconds between now and the server receive time at the read position.
    pub lag_seconds: Family<ShardLabels, Gauge>,
    /// Checkpoints committed.
    pub checkpoints: Family<ShardLabels, Counter>,
    /// Checkpoint commits that failed (retried).
    pub checkpoint_errors: Family<ShardLabels, Counter>,
    /// Shards held now.
    pub shards_held: Gauge,
    /// Totals for the progress line.
    pub totals: Totals,
}

impl Metrics {
    /// Builds the registry. `sink` and `plugins` are read at scrape time.
    pub fn new(sink: Arc<SinkMetrics>, sink_name: &str, plugins: Arc<PluginSlot>) -> Arc<Self> {
        let mut registry = Registry::default();
        let m = Metrics {
            logs_in: Family::default(),
            raw_bytes_in: Family::default(),
            events_out: Family::default(),
            logs_dropped: Family::default(),
            dead_lettered: Family::default(),
            plugin_seconds: Family::default(),
            plugin_failures: Family::default(),
            // 1 ms .. ~65 s
            batch_latency: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            lag_groups: Family::default(),
            lag_seconds: Family::default(),
            checkpoints: Family::default(),
            checkpoint_errors: Family::default(),
            shards_held: Gauge::default(),
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
            "Events accepted by the sink",
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
        registry.register_collector(Box::new(ScrapeCollector {
            sink,
            sink_name: sink_name.to_owned(),
            plugins,
        }));
        Arc::new(Metrics { registry, ..m })
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing into a String cannot fail");
        out
    }
}

/// Reads the sink's and the plugin's own counters on every scrape.
#[derive(Debug)]
struct ScrapeCollector {
    sink: Arc<SinkMetrics>,
    sink_name: String,
    plugins: Arc<PluginSlot>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkClassLabels {
    sink: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCounterLabels {
    plugin: String,
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenerationLabels {
    plugin: String,
    version: String,
    hash: String,
}

impl ScrapeCollector {
    fn counter(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        labels: &impl EncodeLabelSet,
        value: u64,
    ) -> Result<(), std::fmt::Error> {
        let c = ConstCounter::new(value);
        let mut m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
        c.encode(m.encode_family(labels)?)
    }
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.sink.snapshot();
        let l = SinkLabels {
            sink: self.sink_name.clone(),
        };
        for (name, help, v) in [
            (
                "shipper_sink_requests",
                "Requests (HEC) or writes (syslog) sent",
                s.requests,
            ),
            (
                "shipper_sink_request_bytes",
                "Uncompressed bytes sent",
                s.request_bytes,
            ),
            (
                "shipper_sink_wire_bytes",
                "Bytes on the wire (after gzip)",
                s.wire_bytes,
            ),
            (
                "shipper_sink_events_accepted",
                "Events the receiver accepted",
                s.events_accepted,
            ),
            (
                "shipper_sink_events_rejected",
                "Events the receiver refused for good",
                s.events_rejected,
            ),
            ("shipper_sink_retries", "Retried requests", s.retries),
            ("shipper_sink_connects", "Connections opened", s.connects),
            (
                "shipper_sink_connect_failures",
                "Connection attempts that failed",
                s.connect_failures,
            ),
            (
                "shipper_sink_disconnects",
                "Connections lost",
                s.disconnects,
            ),
            (
                "shipper_sink_truncated",
                "Messages truncated to the size limit",
                s.truncated,
            ),
        ] {
            Self::counter(&mut encoder, name, help, &l, v)?;
        }
        let errors = ConstCounter::new(0u64);
        let mut fam = encoder.encode_descriptor(
            "shipper_sink_errors",
            "Failed requests by retry class",
            None,
            errors.metric_type(),
        )?;
        for (class, v) in [
            ("transient", s.errors_transient),
            ("too_large", s.errors_too_large),
            ("data", s.errors_data),
            ("config", s.errors_config),
        ] {
            let labels = SinkClassLabels {
                sink: self.sink_name.clone(),
                class: class.to_owned(),
            };
            ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
        }

        let generation = self.plugins.current();
        let info = ConstGauge::new(1i64);
        let mut gen_enc = encoder.encode_descriptor(
            "shipper_plugin_generation",
            "The plugin generation in use (value 1; labels say which)",
            None,
            info.metric_type(),
        )?;
        let labels = GenerationLabels {
            plugin: generation.name.clone(),
            version: generation.version.clone(),
            hash: generation.plugin.hash().to_owned(),
        };
        info.encode(gen_enc.encode_family(&labels)?)?;
        let open = ConstGauge::new(i64::from(generation.breaker.is_tripped()));
        let mut breaker = encoder.encode_descriptor(
            "shipper_plugin_breaker_open",
            "1 while the plugin's crash-loop breaker is tripped (policy pause or passthrough applies)",
            None,
            open.metric_type(),
        )?;
        open.encode(breaker.encode_family(&labels)?)?;

        let counters = generation.plugin.counters().snapshot();
        if !counters.is_empty() {
            let c = ConstCounter::new(0u64);
            let mut fam = encoder.encode_descriptor(
                "shipper_plugin_events",
                "Counters the plugin reports through counter-add",
                None,
                c.metric_type(),
            )?;
            for (name, v) in counters {
                let labels = PluginCounterLabels {
                    plugin: generation.name.clone(),
                    name,
                };
                ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
