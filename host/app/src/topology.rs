//! Builds one configuration generation from [`Settings`]: the sinks, each distinct plugin
//! (loaded and self-tested against the renderers of the sinks it formats for), the
//! dead-letter files and the rate caps, as the [`Topology`] the shards deliver through.
//!
//! `shipper run` builds generation 1 at start; a reload builds the next one the same way,
//! so a new configuration is checked exactly as strictly as the first (docs/configuration.md
//! "Reload").

use std::sync::Arc;

use anyhow::Context as _;
use shipper_runtime::PluginEngine;
use shipper_sinks::{Sink, SinkErrorKind};
use tokio_util::sync::CancellationToken;

use crate::canary::Canary;
use crate::dead_letter::DeadLetter;
use crate::generation::PluginSlot;
use crate::metrics::{Metrics, SinkView};
use crate::pipeline::format::FormatContext;
use crate::pipeline::rate::RateLimiter;
use crate::pipeline::{SinkContext, Topology};
use crate::settings::plugin::CanarySettings;
use crate::settings::{PluginSettings, Settings, SinkEntry};

/// One distinct plugin of a generation.
#[derive(Clone)]
pub struct BuiltPlugin {
    /// Its settings (path, `[plugin.config]`, limits).
    pub settings: PluginSettings,
    /// Its slot: the loaded generation, swapped when only the plugin file changes.
    pub slot: Arc<PluginSlot>,
    /// The sinks it formats for.
    pub targets: Vec<(String, Arc<dyn Sink>)>,
    /// Its canary, when `[plugin.canary]` is set.
    pub canary: Option<Arc<Canary>>,
}

/// A configuration generation, built and self-tested, not yet published.
pub struct Built {
    /// What the shards deliver through.
    pub topology: Arc<Topology>,
    /// The distinct plugins.
    pub plugins: Vec<BuiltPlugin>,
    /// The sinks, in configuration order.
    pub sinks: Vec<(String, Arc<dyn Sink>)>,
}

impl Built {
    /// The sinks as the metrics and `/health` read them.
    pub fn sink_views(&self) -> Vec<SinkView> {
        self.sinks
            .iter()
            .map(|(name, sink)| SinkView {
                name: name.clone(),
                sink: sink.clone(),
            })
            .collect()
    }

    /// Each distinct plugin's slot.
    pub fn slots(&self) -> Vec<Arc<PluginSlot>> {
        self.plugins.iter().map(|p| p.slot.clone()).collect()
    }
}

/// Builds generation `generation` of `settings`. No network I/O: the sinks are checked by
/// [`check_sinks`]. Dead-letter files already open in `reuse` (the running generation's)
/// are shared rather than opened twice, so two generations never append to one file
/// through two handles. Errors name the sink, file or plugin and the config key.
pub async fn build(
    settings: &Settings,
    engine: &PluginEngine,
    metrics: &Arc<Metrics>,
    sink_shutdown: &CancellationToken,
    generation: u64,
    reuse: &[DeadLetter],
) -> anyhow::Result<Built> {
    let mut sinks: Vec<(String, Arc<dyn Sink>)> = Vec::with_capacity(settings.sinks.len());
    for entry in &settings.sinks {
        let sink = entry
            .settings
            .build(&entry.name, sink_shutdown.clone())
            .await
            .with_context(|| {
                format!(
                    "cannot set up sink `{}` (config `{}`)",
                    entry.name, entry.key
                )
            })?;
        sinks.push((entry.name.clone(), sink));
    }
    let groups = settings.plugin_groups();
    let mut plugins = Vec::with_capacity(groups.len());
    for (entry, members) in &groups {
        let targets: Vec<(String, Arc<dyn Sink>)> =
            members.iter().map(|&i| sinks[i].clone()).collect();
        let loaded = crate::reload::load_generation(engine, &entry.plugin, &targets)
            .await
            .with_context(|| format!("plugin of `{}`", entry.plugin_key))?;
        tracing::info!(plugin = %loaded.label(), path = %loaded.path.display(), sinks = ?targets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), "plugin loaded and self-tested");
        let slot = PluginSlot::new(loaded);
        let canary = match &entry.plugin.canary {
            Some(c) => Some(start_canary(engine, entry, c, &slot, &targets, metrics).await?),
            None => None,
        };
        plugins.push(BuiltPlugin {
            settings: entry.plugin.clone(),
            slot,
            targets,
            canary,
        });
    }
    let mut dead_letters: Vec<DeadLetter> = Vec::new();
    let mut dead_letter_of = Vec::with_capacity(settings.sinks.len());
    for entry in &settings.sinks {
        if let Some(i) = dead_letters
            .iter()
            .position(|d| d.path() == entry.dead_letter)
        {
            dead_letter_of.push(i);
            continue;
        }
        let file = match reuse.iter().find(|d| d.path() == entry.dead_letter) {
            Some(open) => open.clone(),
            None => DeadLetter::open(&entry.dead_letter).await.with_context(|| {
                format!(
                    "cannot open the dead-letter file {} of sink `{}` (config key `dead_letter.path`, or `dead_letter` in [[sinks]])",
                    entry.dead_letter.display(),
                    entry.name
                )
            })?,
        };
        dead_letters.push(file);
        dead_letter_of.push(dead_letters.len() - 1);
    }
    let formats: Vec<FormatContext> = groups
        .iter()
        .zip(&plugins)
        .map(|((entry, members), plugin)| FormatContext {
            plugins: plugin.slot.clone(),
            failure_policy: entry.plugin.failure_policy,
            passthrough: members
                .iter()
                .map(|&i| (sinks[i].0.clone(), settings.sinks[i].settings.kind()))
                .collect(),
            metrics: metrics.clone(),
            canary: plugin.canary.clone(),
        })
        .collect();
    // Rate caps are per process: every shard of every logstore shares a sink's bucket.
    let sink_contexts = settings
        .sinks
        .iter()
        .zip(&sinks)
        .enumerate()
        .map(|(i, (entry, (name, sink)))| SinkContext {
            name: name.clone(),
            sink: sink.clone(),
            format: groups
                .iter()
                .position(|(_, members)| members.contains(&i))
                .expect("every sink is in a plugin group"),
            dead_letter: dead_letter_of[i],
            limiter: RateLimiter::new(name, entry.rate, metrics.clone(), sink_shutdown.clone()),
            event_id: entry.event_id.clone(),
        })
        .collect();
    Ok(Built {
        topology: Arc::new(Topology {
            generation,
            sinks: sink_contexts,
            formats,
            dead_letters,
        }),
        plugins,
        sinks,
    })
}

/// Loads and self-tests the canary of `entry`'s plugin (like any plugin, against the same
/// sinks) and starts its worker, comparing with `slot`'s generation.
async fn start_canary(
    engine: &PluginEngine,
    entry: &SinkEntry,
    c: &CanarySettings,
    slot: &Arc<PluginSlot>,
    targets: &[(String, Arc<dyn Sink>)],
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<Canary>> {
    let mut settings = entry.plugin.clone();
    settings.path.clone_from(&c.path);
    settings.config_json.clone_from(&c.config_json);
    settings.canary = None;
    let loaded = crate::reload::load_generation(engine, &settings, targets)
        .await
        .with_context(|| format!("canary plugin of `{}.canary`", entry.plugin_key))?;
    tracing::info!(canary = %loaded.label(), current = %slot.current().label(), sample = c.sample, report = %c.report.display(), "canary plugin loaded and self-tested; it runs in shadow, nothing it makes is sent");
    Ok(Canary::start(
        loaded,
        slot.clone(),
        targets[0].1.clone(),
        c,
        metrics.clone(),
    ))
}

/// Each sink's health check. A sink that refuses us (bad token, TLS rejected) is an error
/// naming it; one that is merely down is logged and waited for (nothing is dropped).
pub async fn check_sinks(sinks: &[(String, Arc<dyn Sink>)]) -> anyhow::Result<()> {
    for (name, sink) in sinks {
        match sink.healthcheck().await {
            Ok(()) => tracing::info!(sink = %name, "sink is healthy"),
            Err(e) if matches!(e.kind, SinkErrorKind::Config | SinkErrorKind::Tls) => {
                // The error names the sink and the fix.
                return Err(anyhow::Error::new(e).context("sink start-up check failed"));
            }
            Err(e) => tracing::warn!(
                sink = %name,
                error = %e,
                "sink is not reachable yet; logs will wait (nothing is dropped) until it is"
            ),
        }
    }
    Ok(())
}
