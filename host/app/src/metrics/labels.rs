//! The label sets of shipper's own series, and the sink view the scrape collector reads.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use shipper_sinks::Sink;

use crate::generation::PluginSlot;

/// Labels of per-shard series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    /// `project/logstore`.
    pub logstore: String,
    /// Shard id.
    pub shard: u32,
}

/// Labels of per-shard, per-sink series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardSinkLabels {
    /// `project/logstore`.
    pub logstore: String,
    /// Shard id.
    pub shard: u32,
    /// Sink name.
    pub sink: String,
}

/// Labels of per-sink series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// Sink name.
    pub sink: String,
}

/// A sink as the metrics and `/health` read it.
#[derive(Clone)]
pub struct SinkView {
    /// Its name.
    pub name: String,
    /// The sink (its counters and endpoints are read at scrape time).
    pub sink: Arc<dyn Sink>,
}

/// What the scrape collectors and `/health` read of the running configuration.
#[derive(Debug)]
pub(crate) struct Views {
    pub(crate) sinks: Vec<SinkView>,
    pub(crate) plugins: Vec<Arc<PluginSlot>>,
}

/// Labels of reload and canary counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// Reloads: `applied`, `plugin`, `unchanged` or `refused`; canary events: `same`,
    /// `different` or `error`.
    pub result: String,
}

impl std::fmt::Debug for SinkView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkView")
            .field("name", &self.name)
            .finish()
    }
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
