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
}

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
    })
}
