//! Logging setup: tracing to stderr, human-readable or JSON lines, with a filter that a
//! config reload can change.
//!
//! Which filter applies, first match wins: `--log-level`, `[log] level` of the config file
//! (changed by a reload), `RUST_LOG`, `info`.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::cli::LogFormat;

/// The installed filter, when the command line did not fix it.
static CONFIGURABLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global tracing subscriber. `filter` (the `--log-level` flag) overrides the
/// config file's `[log] level` and `RUST_LOG`; the default is `info`.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let (layer, handle) = reload::Layer::new(match filter {
        Some(f) => EnvFilter::new(f),
        None => default_filter(),
    });
    if filter.is_none() {
        let _ = CONFIGURABLE.set(handle);
    }
    // Colours only on a terminal: escape codes in a log file or a collector are noise.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(layer);
    match format {
        LogFormat::Human => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
    }
}

/// `RUST_LOG`, else `info`.
fn default_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Checks a `[log] level` value (tracing's `EnvFilter` syntax).
pub fn check_level(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level).map(drop).map_err(|e| {
        format!(
            "{level:?} is not a log filter ({e}); expected e.g. \"info\" or \"shipper=debug,info\""
        )
    })
}

/// Applies the config file's `[log] level` (`None`: back to `RUST_LOG` or `info`), unless
/// `--log-level` fixed the filter. Returns whether it applied.
pub fn apply_config_level(level: Option<&str>) -> bool {
    let Some(handle) = CONFIGURABLE.get() else {
        return false;
    };
    let filter = match level {
        Some(l) => match EnvFilter::try_new(l) {
            Ok(f) => f,
            Err(_) => return false,
        },
        None => default_filter(),
    };
    handle.reload(filter).is_ok()
}
