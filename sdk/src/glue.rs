//! What [`export!`](crate::export) expands to call: `init` parses the config and builds the
//! plugin; `process` decodes the `LogGroup`, calls [`Plugin::format`] once per log and
//! builds the index-aligned result list.
//!
//! Error mapping (the WIT contract): a `LogGroup` whose framing is broken fails the whole
//! call (`err(string)`: without the framing there is no log count to align results with);
//! a log whose own bytes are malformed gets `RecordError::invalid_input` and the rest of
//! the group proceeds; invalid UTF-8 is repaired (see [`crate::decode`]).

use std::borrow::Cow;

use crate::batch::EmitBuffer;
use crate::config::Config;
use crate::decode::{self, Group, GroupCache, Log, LogError};
use crate::{BatchInfo, Emit, Plugin, PluginInfo, RecordError};

/// The `sdk` string of [`PluginInfo`].
pub const SDK_ID: &str = concat!("shipper-sdk-rust/", env!("CARGO_PKG_VERSION"));

/// Result of one `process-batch` call.
pub type ProcessBatchResult = Result<crate::batch::BatchOutput, String>;

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

/// Formats one encoded `LogGroup` with `plugin` (world `formatter`).
pub fn process<P: Plugin>(plugin: &P, batch: &BatchInfo, group: &[u8]) -> ProcessResult {
    let mut results = Vec::new();
    for_each_log(batch, group, |group_view, log| {
        let result = match log {
            Ok(DecodedLog::Log(log)) => plugin.format(group_view, log),
            Ok(DecodedLog::Lossy(bytes)) => format_lossy(plugin, group_view, bytes),
            Err(e) => Err(e),
        };
        results.push(result);
    })?;
    Ok(results)
}

/// Formats one encoded `LogGroup` with `plugin` into one packed output (world
/// `batch-formatter`): the same logs, the same per-log outcomes as [`process`].
pub fn process_batch<P: Plugin>(plugin: &P, batch: &BatchInfo, group: &[u8]) -> ProcessBatchResult {
    // One allocation for the whole call's event text. JSON of a log is 1.2–1.4× its
    // protobuf (quotes, separators, the group's tags repeated in every event) and each
    // event reserves its estimate before it is written, so 1.25× grew the buffer once per
    // call (a `realloc` copying all of it, measured at 2 % of the plugin's time); 2× holds
    // a call's text in the usual case. The memory is the instance's and is reused.
    let mut out = EmitBuffer::with_capacity(0, group.len() * 2);
    for_each_log(batch, group, |group_view, log| {
        let mark = out.mark();
        let result = match log {
            Ok(DecodedLog::Log(log)) => plugin.format_into(group_view, log, &mut out),
            Ok(DecodedLog::Lossy(bytes)) => format_lossy(plugin, group_view, bytes).map(|emits| {
                for emit in emits {
                    out.push(emit);
                }
            }),
            Err(e) => Err(e),
        };
        out.end_log(mark, result);
    })?;
    Ok(out.finish())
}

/// One log as the decoder left it.
enum DecodedLog<'l, 'b> {
    /// Decoded in place.
    Log(&'b Log<'l>),
    /// Holds invalid UTF-8: to be repaired (the slow path).
    Lossy(&'b [u8]),
}

/// Decodes `group` and calls `each` once per log, in order, with the log or its record error.
fn for_each_log(
    batch: &BatchInfo,
    group: &[u8],
    mut each: impl FnMut(&Group<'_>, Result<DecodedLog<'_, '_>, RecordError>),
) -> Result<(), String> {
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

    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(16);
    for range in &header.logs {
        let bytes = &group[range.clone()];
        match decode::decode_log(bytes, &mut fields) {
            Ok(t) => {
                let log = Log::decoded(t, &fields, bytes.len());
                each(&group_view, Ok(DecodedLog::Log(&log)));
            }
            Err(LogError::Utf8) => each(&group_view, Ok(DecodedLog::Lossy(bytes))),
            Err(LogError::Wire(e)) => each(&group_view, Err(malformed(&e))),
        }
    }
    Ok(())
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
    // `decode_log_lossy` leaves `plain_keys` false: the keys are checked the slow way.
    let log = Log::decoded(t, &fields, bytes.len());
    plugin.format(group, &log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};
    use crate::testing::{TestLog, encode_log, test_batch};
    use crate::{ErrorKind, Payload, SyslogMessage};

    /// Emits each log's `k` value as a syslog message.
    #[derive(Debug)]
    struct Echo;

    impl Plugin for Echo {
        fn init(_: &mut Config) -> Result<Self, ConfigError> {
            Ok(Echo)
        }

        fn format(&self, _: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
            let k = log
                .get("k")
                .ok_or_else(|| RecordError::unsupported("no k"))?;
            Ok(vec![Emit::syslog(SyslogMessage::new(k.to_string()))])
        }
    }

    fn log(value: &str) -> Vec<u8> {
        encode_log(&TestLog {
            time: 1,
            time_ns: None,
            contents: vec![("k".into(), value.into())],
        })
    }

    fn frame(field: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![field << 3 | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    fn msgs(results: &[Result<Vec<Emit>, RecordError>]) -> Vec<Result<String, ErrorKind>> {
        results
            .iter()
            .map(|r| match r {
                Ok(emits) => match &emits[0].payload {
                    Payload::Syslog(m) => Ok(m.msg.clone()),
                    other => panic!("{other:?}"),
                },
                Err(e) => Err(e.kind),
            })
            .collect()
    }

    #[test]
    fn one_result_per_log_with_a_malformed_log_in_the_middle() {
        let mut group = frame(1, &log("a"));
        // A Log whose Time_ns has the wrong wire type: that log alone fails.
        group.extend(frame(1, &[0x08, 0x01, 0x20, 0x01]));
        group.extend(frame(1, &log("c")));
        // Invalid UTF-8 in a value: repaired, not failed.
        group.extend(frame(
            1,
            &[0x08, 0x01, 0x12, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, 0xff],
        ));
        // A log the plugin refuses (no `k`).
        group.extend(frame(1, &[0x08, 0x01]));
        let results = process(&Echo, &test_batch(), &group).unwrap();
        assert_eq!(
            msgs(&results),
            [
                Ok("a".into()),
                Err(ErrorKind::InvalidInput),
                Ok("c".into()),
                Ok("\u{fffd}".into()),
                Err(ErrorKind::Unsupported),
            ]
        );
        let Err(e) = &results[1] else { panic!() };
        assert!(e.message.contains("Time_ns"), "{}", e.message);
    }

    /// Pushes one emit, then fails on logs without `k`: the failed log's emit is rolled back.
    #[derive(Debug)]
    struct HalfWay;

    impl Plugin for HalfWay {
        fn init(_: &mut Config) -> Result<Self, ConfigError> {
            Ok(HalfWay)
        }

        fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
            Echo.format(group, log)
        }

        fn format_into(
            &self,
            _: &Group<'_>,
            log: &Log<'_>,
            out: &mut crate::batch::EmitBuffer,
        ) -> Result<(), RecordError> {
            out.push_hec_body(false, |s| s.push_str("half"));
            out.push(Emit::raw(vec![0xff, b'r']));
            let k = log
                .get("k")
                .ok_or_else(|| RecordError::unsupported("no k"))?;
            out.push_hec_body(true, |s| s.push_str(k));
            Ok(())
        }
    }

    #[test]
    fn the_batch_path_has_the_same_outcomes_and_drops_a_failed_logs_emits() {
        let mut group = frame(1, &log("a"));
        group.extend(frame(1, &[0x08, 0x01, 0x20, 0x01]));
        group.extend(frame(1, &[0x08, 0x01]));
        group.extend(frame(1, &log("\"1\"")));
        let per_log = process(&Echo, &test_batch(), &group).unwrap();
        let batch = crate::batch::unpack(process_batch(&Echo, &test_batch(), &group).unwrap());
        assert_eq!(batch, per_log);

        let output = process_batch(&HalfWay, &test_batch(), &group).unwrap();
        assert_eq!(output.emits.len(), 6, "two logs of three emits each");
        let results = crate::batch::unpack(output);
        let kinds: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map(Vec::len).map_err(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                Ok(3),
                Err(ErrorKind::InvalidInput),
                Err(ErrorKind::Unsupported),
                Ok(3)
            ]
        );
        let last = results[3].as_ref().unwrap();
        assert_eq!(last[1].payload, Payload::Raw(vec![0xff, b'r']));
        assert_eq!(
            last[2].payload,
            Payload::Hec(crate::HecEvent::json("\"1\"".into()))
        );
    }

    #[test]
    fn broken_group_framing_fails_the_call() {
        let mut group = frame(1, &log("a"));
        group.extend([0x0a, 0x40, 0x08]); // a Log claiming 64 bytes, 1 present
        let err = process(&Echo, &test_batch(), &group).unwrap_err();
        assert!(err.contains("not valid protobuf"), "{err}");
        // An empty group is zero logs, not an error.
        assert_eq!(process(&Echo, &test_batch(), &[]).unwrap().len(), 0);
    }

    #[test]
    fn init_refuses_unknown_keys_and_bad_json() {
        assert!(init::<Echo>("{}").is_ok());
        assert!(
            init::<Echo>(r#"{"x":1}"#)
                .unwrap_err()
                .contains("takes no config")
        );
        assert!(init::<Echo>("[").unwrap_err().contains("not valid JSON"));
        let info = plugin_info("shipper-plugin-splunk-hec", "1.2.3");
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("splunk-hec", "1.2.3")
        );
        assert!(info.sdk.starts_with("shipper-sdk-rust/"));
    }
}
