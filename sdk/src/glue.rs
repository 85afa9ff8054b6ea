//! What [`export!`](crate::export) expands to call: `init` parses the config and builds the
//! plugin; `process` decodes the `LogGroup`, calls [`Plugin::format`] once per log and
//! builds the index-aligned result list.
//!
//! Error mapping (the WIT contract): a `LogGroup` whose framing is broken fails the whole
//! call (`err(string)`: without the framing there is no log count to align results with);
//! a log whose own bytes are malformed gets `RecordError::invalid_input` and the rest of
//! the group proceeds; invalid UTF-8 is repaired (see [`crate::decode`]).

use std::borrow::Cow;

use crate::config::Config;
use crate::decode::{self, Group, GroupCache, Log, LogError};
use crate::{BatchInfo, Emit, Plugin, PluginInfo, RecordError};

/// The `sdk` string of [`PluginInfo`].
pub const SDK_ID: &str = concat!("shipper-sdk-rust/", env!("CARGO_PKG_VERSION"));

/// Result of one `process` call.
pub type ProcessResult = Result<Vec<Result<Vec<Emit>, RecordError>>, String>;

/// The plugin name for a crate name: `shipper-plugin-splunk-hec` → `splunk-hec`.
pub fn plugin_name(crate_name: &str) -> &str {
    crate_name
        .strip_prefix("shipper-plugin-")
        .unwrap_or(crate_name)
}

/// The [`PluginInfo`] `init` returns.
pub fn plugin_info(crate_name: &str, version: &str) -> PluginInfo {
    PluginInfo {
        name: plugin_name(crate_name).to_string(),
        version: version.to_string(),
        sdk: SDK_ID.to_string(),
    }
}

/// Parses `config`, runs `P::init`, and refuses keys `P` did not read.
pub fn init<P: Plugin>(config: &str) -> Result<P, String> {
    let mut cfg = Config::parse(config).map_err(|e| e.to_string())?;
    let plugin = P::init(&mut cfg).map_err(|e| e.to_string())?;
    cfg.finish().map_err(|e| e.to_string())?;
    Ok(plugin)
}

/// Formats one encoded `LogGroup` with `plugin`.
pub fn process<P: Plugin>(plugin: &P, batch: &BatchInfo, group: &[u8]) -> ProcessResult {
    let header = decode::scan_group(group).map_err(|e| {
        format!(
            "the LogGroup passed to `process` is not valid protobuf ({e}); \
             this is a host bug or corrupt data"
        )
    })?;
    let tags: Vec<(&str, &str)> = header
        .tags
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    let cache = GroupCache::default();
    let group_view = Group::new(batch, &header.topic, &header.source, &tags).with_cache(&cache);

    let mut results = Vec::with_capacity(header.logs.len());
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(16);
    for range in &header.logs {
        let bytes = &group[range.clone()];
        let result = match decode::decode_log(bytes, &mut fields) {
            Ok(t) => {
                let log = Log::with_len(t.time, t.time_ns, &fields, bytes.len());
                plugin.format(&group_view, &log)
            }
            Err(LogError::Utf8) => format_lossy(plugin, &group_view, bytes),
            Err(LogError::Wire(e)) => Err(malformed(&e)),
        };
        results.push(result);
    }
    Ok(results)
}

fn malformed(e: &decode::WireError) -> RecordError {
    RecordError::invalid_input(format!("the log is not a valid SLS Log message: {e}"))
}

/// The slow path for a log with invalid UTF-8: repaired copies of the bad strings only.
#[cold]
fn format_lossy<P: Plugin>(
    plugin: &P,
    group: &Group<'_>,
    bytes: &[u8],
) -> Result<Vec<Emit>, RecordError> {
    let mut owned: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let t = decode::decode_log_lossy(bytes, &mut owned).map_err(|e| malformed(&e))?;
    let fields: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    let log = Log::with_len(t.time, t.time_ns, &fields, bytes.len());
    plugin.format(group, &log)
}
