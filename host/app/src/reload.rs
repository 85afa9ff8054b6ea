//! Loading plugin generations, at start-up, on a hot swap of the plugin file and on a
//! reload of the configuration (what triggers them: [`crate::config_reload`]).
//!
//! A new version is read, hashed, compiled on a blocking thread (Python/JS components take
//! seconds), instantiated with the config (`init`), self-tested and only then published;
//! shard workers pick it up between batches. Any failure leaves the running generation in
//! place.
//!
//! The self-test runs the plugin on sample logs (built-in ones, or `[plugin] self_test_input`)
//! and renders every emit with the real sink(s) it is routed to: a plugin that traps, fails
//! the batch, routes to a sink it does not format for, or emits something its sink cannot
//! send (an HEC event to a syslog sink) is refused before it ever sees live data. Each
//! distinct plugin of the configuration has its own slot and its own watcher.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use sha2::Digest as _;
use shipper_runtime::{BatchInfo, PluginEngine, PluginInstance, PluginLimits};
use shipper_sinks::{EventBatch, Sink};
use shipper_sls::flat;
use shipper_sls::proto::encode_group;

use crate::generation::{Breaker, Generation, PluginSlot};
use crate::settings::PluginSettings;

/// The sinks a plugin formats for: name and sink.
pub type Targets = [(String, Arc<dyn Sink>)];

/// Reads, compiles, `init`s and self-tests the plugin at `p.path` against the sinks it
/// formats for. Compilation runs on a blocking thread so it never stalls shard workers.
pub async fn load_generation(
    engine: &PluginEngine,
    p: &PluginSettings,
    sinks: &Targets,
) -> anyhow::Result<Generation> {
    let (plugin, mut instance) = load_plugin(engine, p).await?;
    self_test(&mut instance, p.self_test_input.as_deref(), sinks)
        .await
        .with_context(|| format!("plugin {} failed its self-test", p.path.display()))?;
    let info = instance.info().clone();
    Ok(Generation {
        plugin: Arc::new(plugin),
        instances: crate::instances::InstancePool::default(),
        config_json: p.config_json.as_str().into(),
        name: info.name,
        version: info.version,
        path: p.path.clone(),
        breaker: Breaker::new(p.breaker_threshold, p.breaker_window),
        published: tokio::time::Instant::now(),
        previous: None,
    })
}

/// Reads and compiles the plugin at `p.path` and makes one instance `init`-ed with
/// `[plugin.config]` (no self-test).
pub async fn load_plugin(
    engine: &PluginEngine,
    p: &PluginSettings,
) -> anyhow::Result<(shipper_runtime::Plugin, PluginInstance)> {
    let wasm = tokio::fs::read(&p.path)
        .await
        .with_context(|| format!("cannot read plugin {}", p.path.display()))?;
    let limits = limits_for(p);
    let engine = engine.clone();
    let plugin = tokio::task::spawn_blocking(move || engine.load(&wasm, limits))
        .await
        .map_err(|e| anyhow!("plugin compilation panicked: {e}"))?
        .with_context(|| format!("plugin file {}", p.path.display()))?;
    let instance = plugin.instantiate(&p.config_json).await.with_context(|| {
        format!(
            "plugin {} rejected its config ([plugin.config])",
            p.path.display()
        )
    })?;
    Ok((plugin, instance))
}

fn limits_for(p: &PluginSettings) -> PluginLimits {
    let mut limits = PluginLimits::default();
    if let Some(bytes) = p.memory_bytes {
        limits.max_memory_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(t) = p.timeout {
        limits.call_budget_base = t;
    }
    limits
}

/// Runs the plugin over sample logs and renders every emit with the sink(s) it goes to
/// (its route, or every one of `sinks`).
pub async fn self_test(
    instance: &mut PluginInstance,
    input: Option<&Path>,
    sinks: &Targets,
) -> anyhow::Result<()> {
    let groups = match input {
        Some(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("cannot read self-test input {}", path.display()))?;
            flat::parse(&text).with_context(|| {
                format!(
                    "self-test input {} is not flattened SLS JSON lines",
                    path.display()
                )
            })?
        }
        None => flat::samples::builtin_groups(),
    };
    let info = BatchInfo::sample();
    let mut scratch = EventBatch::new();
    let mut emits = 0usize;
    for (gi, group) in groups.iter().enumerate() {
        let bytes = encode_group(group);
        let results = instance
            .process(&info, &bytes, group.logs.len())
            .await
            .with_context(|| format!("on sample log group {gi}"))?;
        for (li, result) in results.into_iter().enumerate() {
            // A record error on a sample is the plugin's business (it may only handle some
            // topics); what matters is that it runs and that its output can be sent.
            let Ok(list) = result else { continue };
            for emit in list {
                let route = emit.route;
                let payload = crate::convert::payload(emit.payload);
                let mut routed = false;
                for (name, sink) in sinks {
                    if route.as_deref().is_some_and(|r| r != name) {
                        continue;
                    }
                    routed = true;
                    sink.render(&payload, &mut scratch).map_err(|e| {
                        anyhow!(
                            "sample log {gi}.{li}: sink `{name}` cannot send what the plugin emitted: {e}"
                        )
                    })?;
                }
                if !routed && let Some(route) = route {
                    let names: Vec<&str> = sinks.iter().map(|(n, _)| n.as_str()).collect();
                    bail!(
                        "sample log {gi}.{li}: the plugin routes an event to sink {route:?}, but it formats for {names:?}"
                    );
                }
                emits += 1;
            }
        }
    }
    if emits == 0 && !groups.is_empty() {
        tracing::warn!(
            "the plugin emitted nothing for any sample log (it drops or rejects all of them)"
        );
    }
    Ok(())
}

/// Loads the file and publishes it if it differs from the current generation.
pub async fn swap(
    engine: &PluginEngine,
    settings: &PluginSettings,
    slot: &PluginSlot,
    sinks: &Targets,
) -> anyhow::Result<Option<Arc<Generation>>> {
    let bytes = tokio::fs::read(&settings.path)
        .await
        .with_context(|| format!("cannot read {}", settings.path.display()))?;
    if bytes.is_empty() {
        bail!("the file is empty");
    }
    let hash = hex::encode(sha2::Sha256::digest(&bytes));
    if hash == slot.current().plugin.hash() {
        return Ok(None);
    }
    let generation = load_generation(engine, settings, sinks).await?;
    Ok(Some(slot.publish(generation)))
}
