//! Sample logs for `shipper plugin test` and benchmarks, and the parser for the flattened
//! JSONL form the official SDK produces (`PullLogResponse.get_flatten_logs_json()`, see
//! tests/fixtures/sls/loggrouplist.flattened_by_sdk.json):
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "t",
//!  "__source__": "10.0.0.1", "__tag__:host": "web-1", "level": "INFO", "message": "hi"}
//! ```
//!
//! One object per line (a JSON array of such objects is accepted too). `__time__` is the log
//! time, `__time_ns_part__` its nanosecond part (an integer or the SDK's 1-element list),
//! `__topic__`/`__source__`/`__tag__:NAME` the group's metadata; every other key is a
//! content, in the order written. Consecutive lines with the same topic, source and tags
//! form one log group. The groups are `shipper_sls::proto::LogGroup`s; encode them with
//! [`encode_group`] to get what SLS would serve.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use shipper_sls::proto::{Content, Log, LogGroup, LogTag};

use crate::bindings::shipper::plugin::types::{BatchInfo, Timestamp};

/// A problem in a flattened JSONL input, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SampleError {
    /// 1-based line (or array element) number.
    pub line: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

/// The built-in samples as flattened JSONL: an ActionTrail audit group (nested JSON in
/// `event`), an nginx access group (16 fields) and an edge-case group (unicode, empty values,
/// `=`, `|`, `\`, quotes, newlines, tabs, control characters).
pub const BUILTIN_JSONL: &str = include_str!("samples/builtin.jsonl");

/// The built-in samples as log groups.
pub fn builtin_groups() -> Vec<LogGroup> {
    parse_flattened(BUILTIN_JSONL).expect("the built-in samples are valid (tested)")
}

/// The batch info `shipper plugin test` passes: fixed values so output is reproducible.
pub fn sample_batch_info() -> BatchInfo {
    BatchInfo {
        project: "sample-project".into(),
        logstore: "sample-logstore".into(),
        shard: 0,
        received: Timestamp {
            seconds: 1_700_000_100,
            nanos: 0,
        },
    }
}

/// Protobuf wire encoding of one group, exactly as SLS serves a `LogGroup`.
pub fn encode_group(group: &LogGroup) -> Vec<u8> {
    prost::Message::encode_to_vec(group)
}

/// Parses flattened JSONL (or a JSON array of the same objects) into log groups.
pub fn parse_flattened(text: &str) -> Result<Vec<LogGroup>, SampleError> {
    let objects: Vec<(usize, OrderedObject)> = if text.trim_start().starts_with('[') {
        let list: Vec<OrderedObject> = serde_json::from_str(text).map_err(|e| SampleError {
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
            let object: OrderedObject = serde_json::from_str(line).map_err(|e| SampleError {
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
            flattened_to_log(object).map_err(|message| SampleError { line, message })?;
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
            "__time__" => time = Some(integer(&key, &value, u64::from(u32::MAX))?),
            "__time_ns_part__" => {
                let value = match &value {
                    Value::Array(items) if items.len() == 1 => &items[0],
                    other => other,
                };
                time_ns = Some(integer(&key, value, 999_999_999)?);
            }
            "__topic__" => meta.topic = Some(text(value)),
            "__source__" => meta.source = Some(text(value)),
            _ => match key.strip_prefix("__tag__:") {
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

/// Field names of the benchmark's nginx-style log (16 fields, perf-notes.md "nginx16").
const NGINX_FIELDS: [&str; 16] = [
    "remote_addr",
    "remote_user",
    "time_local",
    "request_method",
    "request_uri",
    "protocol",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
    "request_time",
    "upstream_response_time",
    "upstream_addr",
    "host",
    "http_x_forwarded_for",
    "request_id",
];

/// A deterministic nginx-access log group with `logs` logs of 16 fields (~550 bytes each
/// encoded), the shape perf-notes.md measures: for benchmarks.
pub fn nginx_group(logs: usize) -> LogGroup {
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let statuses = ["200", "201", "301", "404", "500", "200", "200"];
    let mut group = LogGroup {
        logs: Vec::with_capacity(logs),
        reserved: None,
        topic: Some("nginx_access".into()),
        source: Some("10.20.30.40".into()),
        machine_uuid: None,
        log_tags: vec![
            LogTag {
                key: "__hostname__".into(),
                value: "web-frontend-01".into(),
            },
            LogTag {
                key: "__path__".into(),
                value: "/var/log/nginx/access.log".into(),
            },
            LogTag {
                key: "__pack_id__".into(),
                value: "5F3A2B1C0D9E8F7A-1".into(),
            },
        ],
    };
    for i in 0..logs {
        let values: [String; 16] = [
            format!("192.168.{}.{}", i % 256, (i * 7) % 256),
            "-".into(),
            "24/Nov/2026:15:58:01 +0000".into(),
            methods[i % methods.len()].into(),
            format!("/api/v1/orders/{}?page={}&sort=desc", 100_000 + i, i % 10),
            "HTTP/1.1".into(),
            statuses[i % statuses.len()].into(),
            format!("{}", 512 + (i * 37) % 20_000),
            "https://shop.example.com/cart".into(),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0 Safari/537.36"
                .into(),
            format!("0.{:03}", (i * 13) % 1000),
            format!("0.{:03}", (i * 11) % 1000),
            format!("10.0.{}.{}:8080", i % 4, i % 16),
            "shop.example.com".into(),
            "-".into(),
            format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        ];
        group.logs.push(Log {
            time: 1_700_000_000 + u32::try_from(i % 86_400).expect("small"),
            contents: NGINX_FIELDS
                .iter()
                .zip(values)
                .map(|(key, value)| Content {
                    key: (*key).into(),
                    value: value.into_bytes(),
                })
                .collect(),
            time_ns: Some(u32::try_from((i * 1_000_003) % 1_000_000_000).expect("small")),
        });
    }
    group
}

/// Field names of [`app_group`]'s logs.
const APP_FIELDS: [&str; 10] = [
    "level",
    "logger",
    "thread",
    "trace_id",
    "span_id",
    "service",
    "env",
    "user_id",
    "latency_ms",
    "message",
];

/// A log group of `logs` application logs with 10 fields (~350 bytes each, perf-notes.md's
/// `app10` shape), for benchmarks next to the 16-field [`nginx_group`].
pub fn app_group(logs: usize) -> LogGroup {
    let levels = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
    let mut group = LogGroup {
        logs: Vec::with_capacity(logs),
        reserved: None,
        topic: Some("app".into()),
        source: Some("10.20.30.41".into()),
        machine_uuid: None,
        log_tags: vec![LogTag {
            key: "__hostname__".into(),
            value: "orders-7d9f8-x2k4p".into(),
        }],
    };
    for i in 0..logs {
        let values: [String; 10] = [
            levels[i % levels.len()].into(),
            "com.example.orders.OrderService".into(),
            format!("http-nio-8080-exec-{}", i % 32),
            format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            format!("{:016x}", (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            "orders".into(),
            "prod".into(),
            format!("u{}", 10_000 + i % 5_000),
            format!("{}", (i * 7) % 900),
            format!(
                "order {} placed: {} items, total {}.{:02} EUR, payment authorised",
                200_000 + i,
                1 + i % 9,
                10 + i % 500,
                i % 100
            ),
        ];
        group.logs.push(Log {
            time: 1_700_000_000 + u32::try_from(i % 86_400).expect("small"),
            contents: APP_FIELDS
                .iter()
                .zip(values)
                .map(|(key, value)| Content {
                    key: (*key).into(),
                    value: value.into_bytes(),
                })
                .collect(),
            time_ns: Some(u32::try_from((i * 1_000_003) % 1_000_000_000).expect("small")),
        });
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/sls/loggrouplist.flattened_by_sdk.json");
    const FIXTURE_PB: &[u8] = include_bytes!("../../../tests/fixtures/sls/loggrouplist.pb");

    #[test]
    fn sdk_fixture_parses_into_the_groups_it_was_flattened_from() {
        let groups = parse_flattened(FIXTURE).unwrap();
        let original: shipper_sls::proto::LogGroupList =
            prost::Message::decode(FIXTURE_PB).unwrap();
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
        let groups = parse_flattened(text).unwrap();
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
        let err = parse_flattened("{\"__time__\": 1}\nnot json\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse_flattened("{\"k\": \"v\"}").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("missing `__time__`"), "{err}");
        let err =
            parse_flattened("{\"__time__\": 1, \"__time_ns_part__\": 1000000000}").unwrap_err();
        assert!(err.message.contains("0..=999999999"), "{err}");
    }

    #[test]
    fn builtin_samples_cover_the_advertised_cases() {
        let groups = builtin_groups();
        assert!(groups.len() >= 3, "{}", groups.len());
        assert!(
            groups
                .iter()
                .any(|g| g.topic.as_deref() == Some("actiontrail_audit_event"))
        );
        let all_values: Vec<String> = groups
            .iter()
            .flat_map(|g| &g.logs)
            .flat_map(|l| &l.contents)
            .map(|c| String::from_utf8(c.value.clone()).unwrap())
            .collect();
        for needle in ["\n", "\\", "=", "|", "\"", "中文", ""] {
            assert!(
                all_values.iter().any(|v| v.contains(needle)),
                "no value with {needle:?}"
            );
        }
        for group in &groups {
            let bytes = encode_group(group);
            let view = shipper_sls::proto::LogGroupView::parse(bytes.into()).unwrap();
            assert_eq!(view.log_ranges().unwrap().len(), group.logs.len());
        }
    }

    #[test]
    fn nginx_group_has_16_fields_of_realistic_size() {
        let group = nginx_group(500);
        assert_eq!(group.logs.len(), 500);
        assert!(group.logs.iter().all(|l| l.contents.len() == 16));
        let per_log = encode_group(&group).len() / 500;
        assert!((400..700).contains(&per_log), "{per_log} bytes per log");
    }
}
