//! `[plugin]`: the formatter component, its `init` config, its limits, how it is watched for
//! a new version, and what happens when it crash-loops (docs/plugins.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{ConfigDuration, Problems};
use crate::generation::{DEFAULT_BREAKER_THRESHOLD, DEFAULT_BREAKER_WINDOW, FailurePolicy};

/// `[plugin]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path of the plugin component (`.wasm`). `--plugin` overrides it.
    pub path: Option<PathBuf>,
    /// Passed to the plugin's `init` as a JSON object.
    #[serde(default)]
    pub config: toml::Table,
    /// Memory cap per plugin instance, in MiB (default: the runtime's, 64).
    pub memory_mib: Option<u64>,
    /// Time budget of one plugin call (default: the runtime's).
    pub timeout: Option<ConfigDuration>,
    /// Watch the plugin file and swap to a new version when it changes (default true;
    /// SIGHUP always triggers a reload).
    pub watch: Option<bool>,
    /// Sample logs (flattened SLS JSON lines) a new version must handle before it is used;
    /// default: built-in samples.
    pub self_test_input: Option<PathBuf>,
    /// What to do when the plugin keeps trapping and no rollback is possible: `pause`
    /// (default: stop, back off, retry; nothing lost) or `passthrough` (ship logs in a
    /// built-in JSON format).
    pub failure_policy: Option<FailurePolicy>,
    /// Traps within `breaker_window` that count as a crash loop (default 20).
    pub breaker_threshold: Option<usize>,
    /// Window of the crash-loop count (default 60s).
    pub breaker_window: Option<ConfigDuration>,
    /// Keep compiled plugins on disk so a restart or a swap back does not recompile
    /// (Python/JS plugins take seconds to compile). Default true.
    pub compile_cache: Option<bool>,
    /// Directory of the compile cache; default `$XDG_CACHE_HOME/shipper/components` or
    /// `~/.cache/shipper/components`.
    pub cache_dir: Option<PathBuf>,
    /// A new plugin version run in shadow on sampled batches (docs/plugins.md "Canary").
    pub canary: Option<CanaryConfig>,
}

/// `[plugin.canary]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The canary component (`.wasm`).
    pub path: Option<PathBuf>,
    /// Its `init` config, like `[plugin.config]`.
    #[serde(default)]
    pub config: toml::Table,
    /// Share of pulled batches formatted by the canary too, 0..=1 (default 0.1).
    pub sample: Option<f64>,
    /// The diff report (JSON); default `shipper-canary.json`.
    pub report: Option<PathBuf>,
    /// Differing events kept in the report (default 20).
    pub max_differences: Option<usize>,
}

/// Share of batches a canary formats unless configured.
pub const DEFAULT_CANARY_SAMPLE: f64 = 0.1;
/// Where the canary report goes unless configured.
pub const DEFAULT_CANARY_REPORT: &str = "shipper-canary.json";
/// Differing events kept in the report unless configured.
pub const DEFAULT_CANARY_DIFFERENCES: usize = 20;

/// Validated `[plugin.canary]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySettings {
    /// Component path.
    pub path: PathBuf,
    /// Its `init` config, as JSON text.
    pub config_json: String,
    /// Share of batches, 0..=1.
    pub sample: f64,
    /// The report file.
    pub report: PathBuf,
    /// Differing events kept in the report.
    pub max_differences: usize,
}

// `sample` is checked to be a number in 0..=1, never NaN, so equality is total.
impl Eq for CanarySettings {}

/// Validated `[plugin]`. Two sinks whose settings are equal share one plugin generation
/// (one compile, one hot-swap watcher, one format stage per shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// Component path.
    pub path: PathBuf,
    /// Config passed to `init`, as JSON text.
    pub config_json: String,
    /// Memory cap override, bytes.
    pub memory_bytes: Option<u64>,
    /// Call time budget override.
    pub timeout: Option<Duration>,
    /// Watch the file for changes.
    pub watch: bool,
    /// Self-test samples.
    pub self_test_input: Option<PathBuf>,
    /// Crash-loop policy.
    pub failure_policy: FailurePolicy,
    /// Crash-loop threshold.
    pub breaker_threshold: usize,
    /// Crash-loop window.
    pub breaker_window: Duration,
    /// Compile cache location (or disabled).
    pub compile_cache: shipper_runtime::CacheDir,
    /// `[plugin.canary]`, when set.
    pub canary: Option<CanarySettings>,
}

/// Checks a plugin table (`[plugin]` merged with `--plugin`, or a sink's own
/// `[sinks.plugin]`) whose keys are named under `prefix`; every problem goes to `problems`.
pub fn resolve(
    p: PluginConfig,
    path_flag: Option<PathBuf>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<PluginSettings> {
    let before = problems.len();
    let key = |k: &str| format!("{prefix}.{k}");
    let path = path_flag.or(p.path);
    if path.is_none() {
        let fix = if prefix == "plugin" {
            "missing: pass --plugin PATH or set [plugin] path"
        } else {
            "missing: the plugin component (.wasm) this sink's events are formatted with"
        };
        problems.push(key("path"), fix);
    }
    let config_json = problems.check(
        &key("config"),
        serde_json::to_string(&p.config).map_err(|e| format!("cannot be expressed as JSON: {e}")),
    );
    if p.memory_mib == Some(0) {
        problems.push(key("memory_mib"), "must be at least 1");
    }
    if p.timeout.is_some_and(|t| t.0.is_zero()) {
        problems.push(key("timeout"), "must be longer than 0");
    }
    let breaker_threshold = p.breaker_threshold.unwrap_or(DEFAULT_BREAKER_THRESHOLD);
    if breaker_threshold == 0 {
        problems.push(key("breaker_threshold"), "must be at least 1");
    }
    let canary = p
        .canary
        .and_then(|c| resolve_canary(c, &key("canary"), problems));
    if problems.len() > before {
        return None;
    }
    Some(PluginSettings {
        path: path?,
        config_json: config_json?,
        memory_bytes: p.memory_mib.map(|m| m << 20),
        timeout: p.timeout.map(|d| d.0),
        watch: p.watch.unwrap_or(true),
        self_test_input: p.self_test_input,
        failure_policy: p.failure_policy.unwrap_or_default(),
        breaker_threshold,
        breaker_window: p.breaker_window.map_or(DEFAULT_BREAKER_WINDOW, |d| d.0),
        compile_cache: match (p.compile_cache, p.cache_dir) {
            (Some(false), _) => shipper_runtime::CacheDir::Disabled,
            (_, Some(dir)) => shipper_runtime::CacheDir::Path(dir),
            _ => shipper_runtime::CacheDir::Default,
        },
        canary,
    })
}

fn resolve_canary(
    c: CanaryConfig,
    prefix: &str,
    problems: &mut Problems,
) -> Option<CanarySettings> {
    let before = problems.len();
    if c.path.is_none() {
        problems.push(
            format!("{prefix}.path"),
            "missing: the new plugin version (.wasm) to run in shadow",
        );
    }
    let sample = c.sample.unwrap_or(DEFAULT_CANARY_SAMPLE);
    if !(0.0..=1.0).contains(&sample) {
        problems.push(
            format!("{prefix}.sample"),
            format!("{sample} is not a share of batches between 0 and 1 (e.g. 0.1)"),
        );
    }
    let config_json = problems.check(
        &format!("{prefix}.config"),
        serde_json::to_string(&c.config).map_err(|e| format!("cannot be expressed as JSON: {e}")),
    );
    if problems.len() > before {
        return None;
    }
    Some(CanarySettings {
        path: c.path?,
        config_json: config_json?,
        sample,
        report: c
            .report
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CANARY_REPORT)),
        max_differences: c.max_differences.unwrap_or(DEFAULT_CANARY_DIFFERENCES),
    })
}
