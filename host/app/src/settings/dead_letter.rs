//! `[dead_letter]`: the JSON-lines file of logs that could not be delivered
//! (docs/architecture.md "Dead letters").

use std::path::PathBuf;

use serde::Deserialize;

/// Where dead-lettered logs go unless configured: beside the working directory, visible.
pub const DEFAULT_PATH: &str = "shipper-dead-letter.jsonl";

/// `[dead_letter]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// JSON-lines file; default `shipper-dead-letter.jsonl`. `--dead-letter` overrides it.
    pub path: Option<PathBuf>,
}

/// The dead-letter file: the flag, else the file's key, else [`DEFAULT_PATH`].
pub fn resolve(config: DeadLetterConfig, flag: Option<PathBuf>) -> PathBuf {
    flag.or(config.path)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}
