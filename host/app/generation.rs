//! The plugin generation in use: a compiled plugin plus the config it runs with, published
//! through an atomically swapped pointer (arc-swap) so hot swap (issue 7) changes it without
//! locks. Shard workers read it only between batches: each batch is formatted by one
//! generation, delivered, then checkpointed.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use shipper_runtime::Plugin;

/// One loaded, `init`-checked plugin version.
#[derive(Debug)]
pub struct Generation {
    /// The compiled plugin (cheap to clone; instantiate per shard worker).
    pub plugin: Plugin,
    /// Config given to `init`, as JSON text.
    pub config_json: Arc<str>,
    /// Name the plugin gave in `init`.
    pub name: String,
    /// Version the plugin gave in `init`.
    pub version: String,
    /// File it was loaded from.
    pub path: PathBuf,
}

impl Generation {
    /// Short form of the plugin hash for log lines (`name@1.0.0#abcdef12`).
    pub fn label(&self) -> String {
        let hash = self.plugin.hash();
        format!(
            "{}@{}#{}",
            self.name,
            self.version,
            &hash[..hash.len().min(12)]
        )
    }
}

/// Holder of the current generation.
#[derive(Debug)]
pub struct PluginSlot {
    current: ArcSwap<Generation>,
}

impl PluginSlot {
    /// A slot holding `first`.
    pub fn new(first: Generation) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(first),
        })
    }

    /// The generation to use for the next batch.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` current for every batch that starts from now on.
    #[expect(dead_code, reason = "hot swap (issue 7) publishes new generations")]
    pub fn publish(&self, next: Generation) -> Arc<Generation> {
        let next = Arc::new(next);
        self.current.store(next.clone());
        next
    }
}
