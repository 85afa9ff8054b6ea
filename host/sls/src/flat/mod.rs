//! The "flattened" form of SLS logs, in both directions: how the official SDKs present one
//! log as a flat JSON object (`PullLogResponse.get_flatten_logs_json()` in the Python SDK),
//! docs/sls-protocol.md "Flattened logs":
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "t",
//!  "__source__": "10.0.0.1", "__tag__:host": "web-1", "level": "INFO", "message": "hi"}
//! ```
//!
//! `__time__` is the log time, `__time_ns_part__` its nanosecond part (an integer or the
//! SDK's 1-element list), `__topic__`/`__source__`/`__tag__:NAME` the group's metadata; every
//! other key is a content, in the order written.
//!
//! - [`flatten`]: one decoded log → its flattened object (dead-letter entries, the
//!   passthrough format);
//! - [`parse`]: flattened JSON lines → log groups (sample input of `shipper plugin test`,
//!   plugin self-tests); consecutive lines with the same topic, source and tags form one
//!   group;
//! - [`samples`]: the built-in sample logs and the benchmark shapes.
//!
//! The plugin SDK (`sdk/`) decodes the same form inside the guest; it cannot link this crate
//! (it compiles to wasm without a network stack), so it keeps its own decoder, held to the
//! same fixtures.

pub mod samples;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::proto::{Content, Log, LogGroup, LogTag};

/// Key of the log time (Unix seconds).
pub const TIME: &str = "__time__";
/// Key of the nanosecond part of the log time (present when not zero).
pub const TIME_NS_PART: &str = "__time_ns_part__";
/// Key of the group's topic.
pub const TOPIC: &str = "__topic__";
/// Key of the group's source.
pub const SOURCE: &str = "__source__";
/// Prefix of the group's tags (`__tag__:<key>`).
pub const TAG_PREFIX: &str = "__tag__:";

/// One log flattened the way the official SDK flattens it: `__time__`, `__topic__`,
/// `__source__`, `__time_ns_part__` when non-zero, `__tag__:<k>`, then contents (a later
/// content with a meta key's name wins, as in the SDK). Values that are not UTF-8 are
/// converted lossily.
pub fn flatten(group: &LogGroup, log: &Log) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(TIME.into(), log.time.into());
    map.insert(TOPIC.into(), group.topic.clone().unwrap_or_default().into());
    map.insert(
        SOURCE.into(),
        group.source.clone().unwrap_or_default().into(),
    );
    if let Some(ns) = log.time_ns.filter(|&n| n != 0) {
        map.insert(TIME_NS_PART.into(), ns.into());
    }
    for tag in &group.log_tags {
        map.insert(format!("{TAG_PREFIX}{}", tag.key), tag.value.clone().into());
    }
    for c in &log.contents {
        map.insert(
            c.key.clone(),
            String::from_utf8_lossy(&c.value).into_owned().into(),
        );
    }
    Value::Object(map)
}

/// A problem in a flattened JSONL input, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FlatError {
    /// 1-based line (or array element) number.
    pub line: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Parses flattened JSONL (or a JSON array of the same objects) into log groups.
pub fn parse(text: &str) -> Result<Vec<LogGroup>, FlatError> {
    let objects: Vec<(usize, OrderedObject)> = if text.trim_start().starts_with('[') {
        let list: Vec<OrderedObject> = serde_json::from_str(text).map_err(|e| FlatError {
            line: e.line(),
            message: format!("not a JSON array of flattened logs: {e}"),
        })?;
        list.into_iter()
            .enumerate()
            .map(|(i, o)| (i + 1, o))
            .collect()
    } else {
        let mut objects = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let object: OrderedObject = serde_json::from_str(line).map_err(|e| FlatError {
                line: i + 1,
                message: format!("not a flattened log object: {e}"),
            })?;
            objects.push((i + 1, object));
        }
        objects
    };

    let mut groups: Vec<LogGroup> = Vec::new();
    for (line, object) in objects {
        let (meta, log) =
            flattened_to_log(object).map_err(|message| FlatError { line, message })?;
        match groups.last_mut() {
            Some(group)
                if group.topic == meta.topic
                    && group.source == meta.source
                    && group.log_tags == meta.tags =>
            {
                group.logs.push(log);
            }
            _ => groups.push(LogGroup {
                logs: vec![log],
                reserved: None,
                topic: meta.topic,
                source: meta.source,
                machine_uuid: None,
                log_tags: meta.tags,
            }),
        }
    }
    Ok(groups)
}

/// Group-level fields of one flattened line.
struct GroupMeta {
    topic: Option<String>,
    source: Option<String>,
    tags: Vec<LogTag>,
}

fn flattened_to_log(object: OrderedObject) -> Result<(GroupMeta, Log), String> {
    let mut meta = GroupMeta {
        topic: None,
        source: None,
        tags: Vec::new(),
    };
    let mut time = None;
    let mut time_ns = None;
    let mut contents = Vec::new();
    for (key, value) in object.0 {
        match key.as_str() {
            TIME => time = Some(integer(&key, &value, u64::from(u32::MAX))?),
            TIME_NS_PART => {
                let value = match &value {
                    Value::Array(items) if items.len() == 1 => &items[0],
                    other => other,
                };
                time_ns = Some(integer(&key, value, 999_999_999)?);
            }
            TOPIC => meta.topic = Some(text(value)),
            SOURCE => meta.source = Some(text(value)),
            _ => match key.strip_prefix(TAG_PREFIX) {
                Some(tag) => meta.tags.push(LogTag {
                    key: tag.to_owned(),
                    value: text(value),
                }),
                None => contents.push(Content {
                    key,
                    value: text(value).into_bytes(),
                }),
            },
        }
    }
    let time = time.ok_or("missing `__time__` (Unix seconds of the log)")?;
    let log = Log {
        time: u32::try_from(time).expect("range-checked"),
        contents,
        time_ns: time_ns.map(|ns| u32::try_from(ns).expect("range-checked")),
    };
    Ok((meta, log))
}

/// An integer field, given as a number or a decimal string, in `0..=max`.
fn integer(key: &str, value: &Value, max: u64) -> Result<u64, String> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.filter(|n| *n <= max)
        .ok_or_else(|| format!("`{key}` must be an integer in 0..={max}, got {value}"))
}

/// A content value as SLS would store it: strings as they are, anything else as JSON text.
fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A JSON object with its keys in document order (serde_json's `Map` sorts them unless the
/// workspace-wide `preserve_order` feature is on, and content order matters to plugins).
struct OrderedObject(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(OrderedObject(entries))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../../../tests/fixtures/sls/loggrouplist.flattened_by_sdk.json");
    const FIXTURE_PB: &[u8] = include_bytes!("../../../../tests/fixtures/sls/loggrouplist.pb");

    #[test]
    fn sdk_fixture_parses_into_the_groups_it_was_flattened_from() {
        let groups = parse(FIXTURE).unwrap();
        let original: crate::proto::LogGroupList = prost::Message::decode(FIXTURE_PB).unwrap();
        assert_eq!(groups.len(), original.log_groups.len());
        for (parsed, original) in groups.iter().zip(&original.log_groups) {
            assert_eq!(parsed.topic, original.topic);
            assert_eq!(parsed.source, original.source);
            assert_eq!(parsed.log_tags, original.log_tags);
            assert_eq!(parsed.logs.len(), original.logs.len());
            for (p, o) in parsed.logs.iter().zip(&original.logs) {
                assert_eq!(p.time, o.time);
                assert_eq!(p.contents, o.contents);
                // The SDK omits a zero nanosecond part, so 0 and absent both read as absent.
                assert_eq!(p.time_ns, o.time_ns.filter(|ns| *ns != 0));
            }
        }
    }

    #[test]
    fn jsonl_keeps_content_order_and_groups_consecutive_lines() {
        let text = r#"{"__time__": 1, "__topic__": "a", "z": "1", "a": "2"}
{"__time__": "2", "__topic__": "a", "__time_ns_part__": 5, "n": 3, "b": true, "o": {"k": 1}, "nul": null}

{"__time__": 3, "__topic__": "b", "x": ""}
{"__time__": 4, "__topic__": "a", "x": "y"}"#;
        let groups = parse(text).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].logs.len(), 2);
        let keys: Vec<&str> = groups[0].logs[0]
            .contents
            .iter()
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(keys, ["z", "a"]);
        let second = &groups[0].logs[1];
        assert_eq!(second.time, 2);
        assert_eq!(second.time_ns, Some(5));
        let values: Vec<&[u8]> = second.contents.iter().map(|c| c.value.as_slice()).collect();
        assert_eq!(values, [&b"3"[..], b"true", br#"{"k":1}"#, b""]);
        assert_eq!(groups[1].topic.as_deref(), Some("b"));
        assert_eq!(groups[2].topic.as_deref(), Some("a"));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let err = parse("{\"__time__\": 1}\nnot json\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse("{\"k\": \"v\"}").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("missing `__time__`"), "{err}");
        let err = parse("{\"__time__\": 1, \"__time_ns_part__\": 1000000000}").unwrap_err();
        assert!(err.message.contains("0..=999999999"), "{err}");
    }

    #[test]
    fn flatten_gives_the_sdk_keys() {
        let group = LogGroup {
            logs: vec![Log {
                time: 1_700_000_000,
                contents: vec![
                    Content {
                        key: "a".into(),
                        value: b"1".to_vec(),
                    },
                    Content {
                        key: "bad".into(),
                        value: vec![0xff, b'x'],
                    },
                ],
                time_ns: Some(5),
            }],
            topic: Some("t".into()),
            source: None,
            log_tags: vec![LogTag {
                key: "host".into(),
                value: "h".into(),
            }],
            ..Default::default()
        };
        let v = flatten(&group, &group.logs[0]);
        assert_eq!(v["__time__"], 1_700_000_000);
        assert_eq!(v["__time_ns_part__"], 5);
        assert_eq!(v["__topic__"], "t");
        assert_eq!(v["__source__"], "");
        assert_eq!(v["__tag__:host"], "h");
        assert_eq!(v["bad"], "\u{fffd}x");
        assert_eq!(v["a"], "1");
        // Flattening and parsing back gives the same log.
        let back = parse(&v.to_string()).unwrap();
        assert_eq!(back[0].logs[0].time_ns, Some(5));
        assert_eq!(back[0].log_tags, group.log_tags);
    }
}
