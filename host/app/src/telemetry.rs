//! Logging setup: tracing to stderr, human-readable or JSON lines.

use std::io::IsTerminal as _;

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. `filter` overrides `RUST_LOG`; default `info`.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Colours only on a terminal: escape codes in a log file or a collector are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
