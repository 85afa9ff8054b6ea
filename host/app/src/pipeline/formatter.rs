//! The seam between the format stage and a plugin: [`Formatter`] (a compiled plugin that
//! makes instances) and [`FormatInstance`] (one instance that formats LogGroups). The
//! runtime's `Plugin` and `PluginInstance` implement them; the unit tests implement them
//! with in-process fakes, so the format stage and the shard loop are tested without wasm.

use std::fmt;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use shipper_runtime::{BatchInfo, PluginError, PluginInstance, RecordResult};

/// A compiled plugin, as the format stage uses it.
pub trait Formatter: Send + Sync + fmt::Debug {
    /// A new instance, `init`-ed with `config_json`.
    fn instantiate<'a>(
        &'a self,
        config_json: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn FormatInstance>, PluginError>>;
    /// sha256 of the component (names the generation in logs and dead-letter entries).
    fn hash(&self) -> &str;
    /// Memory cap of one instance, in bytes.
    fn max_memory_bytes(&self) -> usize;
    /// The counters the plugin reports (`counter-add`), for `/metrics`.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// One plugin instance (borrowed by a shard for one call, `crate::instances`; replaced after
/// a trap).
pub trait FormatInstance: Send {
    /// Formats the `logs` logs of the encoded LogGroup `group`: one result per log.
    fn process<'a>(
        &'a mut self,
        info: &'a BatchInfo,
        group: &'a [u8],
        logs: usize,
    ) -> BoxFuture<'a, Result<Vec<RecordResult>, PluginError>>;
    /// Calls so far.
    fn calls(&self) -> u64;
    /// The instance's largest memory size so far, in bytes.
    fn memory_high_water(&self) -> usize;
}

impl Formatter for shipper_runtime::Plugin {
    fn instantiate<'a>(
        &'a self,
        config_json: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn FormatInstance>, PluginError>> {
        async move {
            let instance = shipper_runtime::Plugin::instantiate(self, config_json).await?;
            Ok(Box::new(instance) as Box<dyn FormatInstance>)
        }
        .boxed()
    }

    fn hash(&self) -> &str {
        shipper_runtime::Plugin::hash(self)
    }

    fn max_memory_bytes(&self) -> usize {
        self.limits().max_memory_bytes
    }

    fn counters(&self) -> Vec<(String, u64)> {
        shipper_runtime::Plugin::counters(self).snapshot()
    }
}

impl FormatInstance for PluginInstance {
    fn process<'a>(
        &'a mut self,
        info: &'a BatchInfo,
        group: &'a [u8],
        logs: usize,
    ) -> BoxFuture<'a, Result<Vec<RecordResult>, PluginError>> {
        PluginInstance::process(self, info, group, logs).boxed()
    }

    fn calls(&self) -> u64 {
        PluginInstance::calls(self)
    }

    fn memory_high_water(&self) -> usize {
        PluginInstance::memory_high_water(self)
    }
}
