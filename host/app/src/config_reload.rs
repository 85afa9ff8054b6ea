//! Reload of the whole configuration while `shipper run` keeps shipping.
//!
//! Triggers: SIGHUP always; with `[reload] watch = true`, a change of the config file or of
//! a plugin file; with only `[plugin] watch = true`, a change of a plugin file. A changed
//! file is loaded once it has stopped changing (a copy may be in progress).
//!
//! What happens (docs/configuration.md "Reload"):
//! - the file is read and checked like at start; any problem refuses the reload with one
//!   ERROR line naming it, and the running configuration stays;
//! - a change to `[source]`, `[metrics]` or `[ledger]` is refused with "restart needed"
//!   (the consumer group, its credentials, the listener and the ledger live as long as the
//!   process);
//! - a file whose text did not change only has its plugin files checked: a plugin file
//!   with new content is loaded, self-tested and swapped into its slot (the hot swap);
//! - any other change builds the next generation (sinks, plugins with their config,
//!   dead-letter files, rate caps) exactly as at start, checks the sinks, and publishes
//!   it. Each shard switches between batches once its sends through the old generation
//!   are settled: nothing lost, nothing sent twice. The log level applies at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use shipper_runtime::PluginEngine;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pipeline::Topology;
use crate::settings::{self, ConfigError, FileConfig, Overrides, Settings};
use crate::topology::{self, Built};

/// How often watched files' metadata is checked.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// A changed file must stay unchanged this long before it is loaded (copy in progress).
const SETTLE_TIME: Duration = Duration::from_millis(500);
/// Tables a reload may not change.
const FIXED_TABLES: [&str; 3] = ["source", "metrics", "ledger"];

/// Where the configuration comes from: the file (if any) and the command-line flags.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// `--config`.
    pub path: Option<PathBuf>,
    /// The flags, applied over the file on every load.
    pub overrides: Overrides,
}

/// A configuration as loaded: the settings and what a reload compares.
#[derive(Debug)]
pub struct Loaded {
    /// Checked settings.
    pub settings: Settings,
    /// The file's text (`None` without a file).
    pub text: Option<String>,
    /// The file's tables as written.
    pub table: toml::Table,
}

impl ConfigSource {
    /// Reads the file (if any), merges the environment and the flags, and checks it all.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let (file, text, table) = match &self.path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let file = settings::parse_file_with(path, &text, &|k| std::env::var(k).ok())?;
                // Parsed above, so this parse succeeds; kept raw to compare tables.
                let table = toml::from_str(&text).unwrap_or_default();
                (file, Some(text), table)
            }
            None => (FileConfig::default(), None, toml::Table::new()),
        };
        let settings = settings::load(file, &|k| std::env::var(k).ok(), self.overrides.clone())?;
        Ok(Loaded {
            settings,
            text,
            table,
        })
    }
}

/// The fixed keys (`source.…`, `metrics.…`) whose values differ between `old` and `new`,
/// as full keys; empty when a reload may apply.
pub fn fixed_changes(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut changed = BTreeSet::new();
    for table in FIXED_TABLES {
        diff(table, old.get(table), new.get(table), &mut changed);
    }
    changed.into_iter().collect()
}

fn diff(
    key: &str,
    old: Option<&toml::Value>,
    new: Option<&toml::Value>,
    out: &mut BTreeSet<String>,
) {
    match (old, new) {
        (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff(&format!("{key}.{k}"), a.get(k), b.get(k), out);
            }
        }
        (a, b) if a != b => {
            out.insert(key.to_owned());
        }
        _ => {}
    }
}

/// The running generation, as the reloader knows it.
pub struct Running {
    /// Its configuration.
    pub loaded: Loaded,
    /// What was built from it.
    pub built: Built,
}

/// Watches the triggers and applies reloads until `shutdown`.
pub struct Reloader {
    /// Where the configuration comes from.
    pub source: ConfigSource,
    /// The plugin runtime (its compile cache is fixed at start).
    pub engine: PluginEngine,
    /// Metrics: generations, reloads, the sinks and plugins they show.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown to abandon the sinks' in-flight deliveries.
    pub sink_shutdown: CancellationToken,
    /// Where a new generation is published to the shards.
    pub publish: watch::Sender<Arc<Topology>>,
    /// The running generation.
    pub running: Running,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new generation was published.
    Applied(u64),
    /// Only plugin files were swapped (this many), or nothing at all changed (0).
    PluginsOnly(usize),
    /// Refused; the running configuration stays.
    Refused,
}

impl Reloader {
    /// Runs until `shutdown`. SIGHUP is handled even when nothing is watched: without a
    /// handler it would terminate the process.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot install the SIGHUP handler; only file changes trigger a reload");
                None
            }
        };
        let mut seen = self.stamps();
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let watching = !self.watched().is_empty();
            let trigger = tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick(), if watching => {
                    let now = self.stamps();
                    if now == seen || now.iter().any(|(_, s)| s.is_none()) {
                        continue;
                    }
                    // Wait until the files stop changing (a copy may be in progress).
                    let mut last = now;
                    loop {
                        tokio::time::sleep(SETTLE_TIME).await;
                        let again = self.stamps();
                        if again == last {
                            break;
                        }
                        last = again;
                    }
                    "file change"
                }
            };
            self.reload(trigger).await;
            seen = self.stamps();
        }
    }

    /// The files watched now: the config file with `[reload] watch`, and the plugin files
    /// with `[reload] watch` or their `[plugin] watch`.
    fn watched(&self) -> Vec<PathBuf> {
        let all = self.running.loaded.settings.reload_watch;
        let mut files = Vec::new();
        if all && let Some(path) = &self.source.path {
            files.push(path.clone());
        }
        for p in &self.running.built.plugins {
            if all || p.settings.watch {
                files.push(p.settings.path.clone());
            }
        }
        files
    }

    fn stamps(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        self.watched()
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect()
    }

    /// Loads the configuration and applies it, or refuses it; logs one line either way.
    pub async fn reload(&mut self, trigger: &str) -> Outcome {
        match self.try_reload(trigger).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.metrics.config_reload("refused");
                tracing::error!(
                    trigger,
                    generation = self.running.built.topology.generation,
                    "configuration reload refused, the running one stays: {e:#}"
                );
                Outcome::Refused
            }
        }
    }

    async fn try_reload(&mut self, trigger: &str) -> anyhow::Result<Outcome> {
        let loaded = self.source.load().map_err(|e| match e {
            ConfigError::Invalid(problems) => anyhow::anyhow!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => anyhow::Error::new(other),
        })?;
        let fixed = fixed_changes(&self.running.loaded.table, &loaded.table);
        if !fixed.is_empty() {
            anyhow::bail!(
                "{} changed: restart needed (the consumer group, its credentials, the metrics listener and the ledger are fixed for the life of the process); put the old value back, or restart to apply it",
                fixed
                    .iter()
                    .map(|k| format!("config key `{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if loaded.text == self.running.loaded.text {
            return self.swap_plugin_files(trigger).await;
        }
        let generation = self.running.built.topology.generation + 1;
        let built = topology::build(
            &loaded.settings,
            &self.engine,
            &self.metrics,
            &self.sink_shutdown,
            generation,
            &self.running.built.topology.dead_letters,
        )
        .await?;
        topology::check_sinks(&built.sinks).await?;
        crate::telemetry::apply_config_level(loaded.settings.log_level.as_deref());
        self.metrics
            .config_published(generation, built.sink_views(), built.slots());
        self.metrics.config_reload("applied");
        self.publish.send_replace(built.topology.clone());
        tracing::info!(
            trigger,
            generation,
            sinks = ?built.sinks.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            plugins = ?built.plugins.iter().map(|p| p.slot.current().label()).collect::<Vec<_>>(),
            "configuration reloaded; each shard switches to it between batches"
        );
        self.running = Running { loaded, built };
        Ok(Outcome::Applied(generation))
    }

    /// The config file is unchanged: swap each plugin whose file has new content. A new
    /// version that fails is refused on its own (one ERROR line naming the file, the reason
    /// and the version that keeps running); the other plugins still swap.
    async fn swap_plugin_files(&mut self, trigger: &str) -> anyhow::Result<Outcome> {
        let mut swapped = 0;
        let mut refused = false;
        for p in &self.running.built.plugins {
            let path = p.settings.path.display();
            match crate::reload::swap(&self.engine, &p.settings, &p.slot, &p.targets).await {
                Ok(Some(g)) => {
                    tracing::info!(trigger, plugin = %g.label(), path = %path, "plugin swapped; new batches use it");
                    swapped += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(
                        trigger,
                        path = %path,
                        running = %p.slot.current().label(),
                        "new plugin version rejected, the running one stays: {e:#}"
                    );
                    refused = true;
                }
            }
        }
        if refused {
            self.metrics.config_reload("refused");
            return Ok(Outcome::Refused);
        }
        if swapped == 0 {
            tracing::info!(
                trigger,
                "configuration and plugin files unchanged; nothing to reload"
            );
            self.metrics.config_reload("unchanged");
        } else {
            self.metrics.config_reload("plugin");
        }
        Ok(Outcome::PluginsOnly(swapped))
    }
}

/// Modification time and size, or `None` while the file is missing (mid-rename).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_change_to_source_or_metrics_names_each_key() {
        let old = table(
            "[source]\nendpoint = \"e\"\nlogstore = \"a\"\n[source.credentials]\ntype = \"static\"\n[sink]\ntype = \"hec\"\n",
        );
        let same_source = table(
            "[source]\nlogstore = \"a\"\nendpoint = \"e\"\n[source.credentials]\ntype = \"static\"\n[sink]\ntype = \"syslog\"\n",
        );
        assert!(
            fixed_changes(&old, &same_source).is_empty(),
            "sinks may change"
        );
        let new = table(
            "[source]\nendpoint = \"e\"\nlogstore = \"b\"\n[source.credentials]\ntype = \"file\"\n[metrics]\nlisten = \"127.0.0.1:1\"\n",
        );
        assert_eq!(
            fixed_changes(&old, &new),
            ["metrics", "source.credentials.type", "source.logstore"]
        );
    }
}
