//! `[ledger]`: the completeness ledger (which cursor ranges each sink acknowledged, per
//! shard) and its optional watermark events (docs/ledger.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{ConfigDuration, Problems};

/// Where the ledger goes unless configured: in the working directory, beside the
/// dead-letter file's default, so a service's state stays in one place.
pub const DEFAULT_PATH: &str = "shipper-ledger.jsonl";
/// Size at which the active file is rotated (compacted into `PATH.1`).
pub const DEFAULT_MAX_FILE_MIB: u64 = 16;
/// Rotated files kept (`PATH.1` … `PATH.N`); older ones are deleted.
pub const DEFAULT_KEEP_FILES: usize = 8;

/// `[ledger]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Record acknowledged ranges (default true).
    pub enabled: Option<bool>,
    /// JSON-lines file; default `shipper-ledger.jsonl` in the working directory.
    pub path: Option<PathBuf>,
    /// Rotate the active file at this size, in MiB (default 16).
    pub max_file_mib: Option<u64>,
    /// Rotated files kept (default 8).
    pub keep_files: Option<usize>,
    /// Send a watermark event per shard and sink this often (off when absent).
    pub watermark_interval: Option<ConfigDuration>,
}

/// Validated `[ledger]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// The active file.
    pub path: PathBuf,
    /// Rotation size, bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub keep_files: usize,
    /// Watermark events, when on.
    pub watermark_interval: Option<Duration>,
}

/// The ledger settings, `None` when `enabled = false`.
pub fn resolve(c: LedgerConfig, problems: &mut Problems) -> Option<LedgerSettings> {
    if c.max_file_mib == Some(0) {
        problems.push("ledger.max_file_mib", "must be at least 1");
    }
    if c.keep_files == Some(0) {
        problems.push(
            "ledger.keep_files",
            "must be at least 1 (the history `shipper reconcile` can check lives in them)",
        );
    }
    if c.watermark_interval
        .is_some_and(|d| d.0 < Duration::from_secs(1))
    {
        problems.push(
            "ledger.watermark_interval",
            "must be at least 1s (each one is an event per shard and sink)",
        );
    }
    if c.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        problems.push(
            "ledger.path",
            "is empty: give a file, or set `enabled = false` to keep no ledger",
        );
    }
    if !c.enabled.unwrap_or(true) {
        return None;
    }
    Some(LedgerSettings {
        path: c.path.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH)),
        max_file_bytes: c.max_file_mib.unwrap_or(DEFAULT_MAX_FILE_MIB).max(1) << 20,
        keep_files: c.keep_files.unwrap_or(DEFAULT_KEEP_FILES).max(1),
        watermark_interval: c.watermark_interval.map(|d| d.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_beside_the_dead_letter_file_and_bad_values_name_their_key() {
        let mut problems = Problems::default();
        let s = resolve(LedgerConfig::default(), &mut problems).expect("on by default");
        assert_eq!(s.path, PathBuf::from(DEFAULT_PATH));
        assert_eq!(s.max_file_bytes, 16 << 20);
        assert_eq!(s.watermark_interval, None);
        assert!(problems.is_empty());
        let off = LedgerConfig {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(resolve(off, &mut problems), None);
        let bad = LedgerConfig {
            keep_files: Some(0),
            watermark_interval: Some(ConfigDuration(Duration::from_millis(10))),
            ..Default::default()
        };
        resolve(bad, &mut problems);
        let text = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("`ledger.keep_files`"), "{text}");
        assert!(text.contains("`ledger.watermark_interval`"), "{text}");
    }
}
