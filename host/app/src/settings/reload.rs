//! `[reload]` and `[log]`: what a running `shipper run` watches, and its log filter (which a
//! reload may change; docs/configuration.md "Reload").

use serde::Deserialize;

use super::values::Problems;

/// `[reload]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Reload when the config file or a plugin file changes (SIGHUP always reloads).
    #[serde(default)]
    pub watch: bool,
}

/// `[log]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log filter in tracing's `EnvFilter` syntax (`info`, `shipper=debug,info`);
    /// `--log-level` wins over it, it wins over `RUST_LOG`.
    pub level: Option<String>,
}

/// The log filter, checked.
pub fn resolve_level(config: LogConfig, problems: &mut Problems) -> Option<String> {
    let level = config.level?;
    if let Err(message) = crate::telemetry::check_level(&level) {
        problems.push("log.level", message);
        return None;
    }
    Some(level)
}
