//! Native testing of plugins, without the host: build `LogGroup` bytes (by hand or from the
//! flattened JSONL that `shipper plugin test` reads), run a [`Plugin`] through the same
//! decode → format → results path the component runs, and dump emits as JSON.
//!
//! ```
//! use shipper_sdk::testing::{groups_from_jsonl, run};
//! use shipper_sdk::{Emit, Group, Log, Plugin, RecordError, Config, ConfigError, SyslogMessage};
//!
//! struct Echo;
//! impl Plugin for Echo {
//!     fn init(_: &mut Config) -> Result<Self, ConfigError> { Ok(Echo) }
//!     fn format(&self, _: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
//!         let msg = log.get("message").ok_or_else(|| RecordError::invalid_input("no message"))?;
//!         Ok(vec![Emit::syslog(SyslogMessage::new(msg.to_string()))])
//!     }
//! }
//!
//! let groups = groups_from_jsonl(r#"{"__time__": 1700000000, "message": "hi"}"#).unwrap();
//! let results = run::<Echo>("{}", &groups).unwrap();
//! assert_eq!(results.len(), 1);
//! ```
//!
//! Does not own: rendering payloads the way a sink sends them (that is `shipper plugin test`,
//! which runs the real component and the real sink renderers).

use std::fmt::Write as _;

use crate::json::{JsonStyle, ObjectWriter, Value, write_str};
use crate::{BatchInfo, Emit, HecBody, Payload, Plugin, RecordError, Timestamp, glue};

/// One log of a [`TestGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestLog {
    /// `Log.Time`.
    pub time: u32,
    /// `Log.Time_ns` (`None` = field absent).
    pub time_ns: Option<u32>,
    /// `Log.Contents` in order.
    pub contents: Vec<(String, String)>,
}

/// A `LogGroup` to encode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestGroup {
    /// `Topic` (left out of the encoding when empty).
    pub topic: String,
    /// `Source` (left out of the encoding when empty).
    pub source: String,
    /// `LogTags` in order.
    pub tags: Vec<(String, String)>,
    /// `Logs`.
    pub logs: Vec<TestLog>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn key_value(key: &str, value: &str) -> Vec<u8> {
    let mut kv = Vec::with_capacity(key.len() + value.len() + 4);
    put_bytes(&mut kv, 1, key.as_bytes());
    put_bytes(&mut kv, 2, value.as_bytes());
    kv
}

/// Encodes a log the way the SDKs do (`Time`, `Contents`, then `Time_ns`).
pub fn encode_log(log: &TestLog) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, 1 << 3);
    put_varint(&mut out, u64::from(log.time));
    for (k, v) in &log.contents {
        put_bytes(&mut out, 2, &key_value(k, v));
    }
    if let Some(ns) = log.time_ns {
        put_varint(&mut out, 4 << 3 | 5);
        out.extend_from_slice(&ns.to_le_bytes());
    }
    out
}

/// Encodes a `LogGroup` in field-number order, as protobuf serialisers do.
pub fn encode_group(group: &TestGroup) -> Vec<u8> {
    let mut out = Vec::new();
    for log in &group.logs {
        put_bytes(&mut out, 1, &encode_log(log));
    }
    if !group.topic.is_empty() {
        put_bytes(&mut out, 3, group.topic.as_bytes());
    }
    if !group.source.is_empty() {
        put_bytes(&mut out, 4, group.source.as_bytes());
    }
    for (k, v) in &group.tags {
        put_bytes(&mut out, 6, &key_value(k, v));
    }
    out
}

fn as_u32(v: &Value, what: &str) -> Result<u32, String> {
    match v {
        Value::Number(_) => v.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Array(a) if a.len() == 1 => return as_u32(&a[0], what),
        _ => None,
    }
    .and_then(|n| u32::try_from(n).ok())
    .ok_or_else(|| format!("{what} must be an unsigned 32-bit integer, got {v}"))
}

/// Reads logs in the flattened JSONL form (docs/plugins.md §11.5 "Sample input"; what
/// `shipper plugin test --input` reads): one JSON object per line with `__time__`, optional
/// `__time_ns_part__` (`[n]`, `n` or `"n"`; `[0]` means present-but-zero), `__topic__`,
/// `__source__`, `__tag__:NAME`, and the contents in order. Consecutive lines with the same
/// topic, source and tags form one group. Blank lines are skipped.
pub fn groups_from_jsonl(text: &str) -> Result<Vec<TestGroup>, String> {
    let mut groups: Vec<TestGroup> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ctx = |e: String| format!("line {}: {e}", n + 1);
        let value = Value::parse(line).map_err(|e| ctx(e.to_string()))?;
        let members = value
            .as_object()
            .ok_or_else(|| ctx("expected a JSON object".into()))?;
        let mut g = TestGroup::default();
        let mut log = TestLog {
            time: 0,
            time_ns: None,
            contents: Vec::new(),
        };
        let mut has_time = false;
        for (k, v) in members {
            let text = || match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ctx(format!("`{k}` must be a string, got {other}"))),
            };
            match k.as_str() {
                "__time__" => {
                    log.time = as_u32(v, "__time__").map_err(ctx)?;
                    has_time = true;
                }
                "__time_ns_part__" => {
                    log.time_ns = Some(as_u32(v, "__time_ns_part__").map_err(ctx)?);
                }
                "__topic__" => g.topic = text()?,
                "__source__" => g.source = text()?,
                _ => match k.strip_prefix(crate::flat::TAG_PREFIX) {
                    Some(tag) => g.tags.push((tag.to_string(), text()?)),
                    None => log.contents.push((k.clone(), text()?)),
                },
            }
        }
        if !has_time {
            return Err(ctx("`__time__` is missing".into()));
        }
        match groups.last_mut() {
            Some(last)
                if (&last.topic, &last.source, &last.tags) == (&g.topic, &g.source, &g.tags) =>
            {
                last.logs.push(log)
            }
            _ => {
                g.logs.push(log);
                groups.push(g);
            }
        }
    }
    Ok(groups)
}

/// The batch description [`run`] passes: the same fixed values as `shipper plugin test`
/// (project `sample-project`, logstore `sample-logstore`, shard 0, received
/// 1700000100 s), so native runs and golden files agree.
pub fn test_batch() -> BatchInfo {
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

/// The results of a run as JSON lines, one per log: `{"log":n,"emits":[…]}` with each emit
/// as [`emit_to_json`] writes it, or `{"log":n,"error":{"kind":…,"message":…}}` (`n` counts
/// from 1, as `shipper plugin test` does).
pub fn results_to_jsonl(results: &[Result<Vec<Emit>, RecordError>]) -> String {
    let mut out = String::new();
    for (i, result) in results.iter().enumerate() {
        let _ = write!(out, "{{\"log\":{},", i + 1);
        match result {
            Ok(emits) => {
                out.push_str("\"emits\":[");
                for (j, e) in emits.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str(&emit_to_json(e));
                }
                out.push(']');
            }
            Err(e) => {
                out.push_str("\"error\":{\"kind\":");
                write_str(
                    &mut out,
                    match e.kind {
                        crate::ErrorKind::InvalidInput => "invalid-input",
                        crate::ErrorKind::Unsupported => "unsupported",
                        crate::ErrorKind::Internal => "internal",
                    },
                );
                out.push_str(",\"message\":");
                write_str(&mut out, &e.message);
                out.push('}');
            }
        }
        out.push_str("}\n");
    }
    out
}

/// Initialises `P` with `config` (as `init` would, unknown keys refused) and formats every
/// group; returns one result per log, across groups in order.
pub fn run<P: Plugin>(
    config: &str,
    groups: &[TestGroup],
) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
    let plugin: P = glue::init(config)?;
    run_with(&plugin, groups)
}

/// Formats every group with an initialised `plugin`.
pub fn run_with<P: Plugin>(
    plugin: &P,
    groups: &[TestGroup],
) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
    let batch = test_batch();
    let mut all = Vec::new();
    for g in groups {
        all.extend(glue::process(plugin, &batch, &encode_group(g))?);
    }
    Ok(all)
}

/// The golden cases of one plugin: the sub-directories of `dir` that hold an `input.jsonl`,
/// sorted.
#[cfg(not(target_arch = "wasm32"))]
pub fn golden_cases(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list golden cases in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join("input.jsonl").is_file())
        .collect();
    cases.sort();
    cases
}

/// Runs `P` natively on one golden case (`input.jsonl` + `config.json`) and pipes the results
/// ([`results_to_jsonl`]) into `<python> <script> check <case>`, the independent reference
/// (tests/fixtures/plugins/seed_reference.py). `Err` carries the reference's explanation.
#[cfg(not(target_arch = "wasm32"))]
pub fn check_golden_case<P: Plugin>(
    python: &std::path::Path,
    script: &std::path::Path,
    case: &std::path::Path,
) -> Result<(), String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let read = |name: &str| {
        std::fs::read_to_string(case.join(name))
            .map_err(|e| format!("{}: cannot read {name}: {e}", case.display()))
    };
    let groups = groups_from_jsonl(&read("input.jsonl")?)?;
    let results = run::<P>(&read("config.json")?, &groups)?;
    let ours = results_to_jsonl(&results);

    let mut child = Command::new(python)
        .arg(script)
        .arg("check")
        .arg(case)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {} {}: {e}", python.display(), script.display()))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(ours.as_bytes())
        .map_err(|e| format!("writing to the reference script: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the reference script: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}):\n{}{}",
            case.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Formats one already-encoded `LogGroup` with `plugin` exactly as the component's `process`
/// does (decode in place, one `format` per log), with [`test_batch`]. For benchmarks and
/// tests of malformed input.
pub fn process_encoded<P: Plugin>(
    plugin: &P,
    group: &[u8],
) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
    glue::process(plugin, &test_batch(), group)
}

/// As [`process_encoded`], through world `batch-formatter`'s path
/// ([`Plugin::format_into`] into one packed output), unpacked into the same per-log results.
pub fn process_batch_encoded<P: Plugin>(
    plugin: &P,
    group: &[u8],
) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
    glue::process_batch(plugin, &test_batch(), group).map(crate::batch::unpack)
}

/// The packed output of world `batch-formatter` for one encoded group, not unpacked (for
/// benchmarks of the plugin's own work).
pub fn process_batch_packed<P: Plugin>(
    plugin: &P,
    group: &[u8],
) -> Result<crate::batch::BatchOutput, String> {
    glue::process_batch(plugin, &test_batch(), group)
}

fn opt(obj: &mut ObjectWriter<'_>, key: &str, value: &Option<String>) {
    match value {
        Some(v) => obj.str(key, v),
        None => obj.raw(key, "null"),
    }
}

fn ts(obj: &mut ObjectWriter<'_>, key: &str, t: &Option<Timestamp>) {
    match t {
        Some(t) => {
            let _ = write!(obj.key(key), "[{},{}]", t.seconds, t.nanos);
        }
        None => obj.raw(key, "null"),
    }
}

fn pairs(out: &mut String, fields: &[crate::Field]) {
    out.push('[');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        write_str(out, &f.key);
        out.push(',');
        write_str(out, &f.value);
        out.push(']');
    }
    out.push(']');
}

/// One emit as a JSON object with every WIT field, for comparing with a reference
/// implementation: `{"route":…,"kind":"hec","time":[s,ns]|null,"host":…,"source":…,
/// "sourcetype":…,"index":…,"body":{"json"|"text":…},"fields":[[k,v]…]}`,
/// `{"route":…,"kind":"syslog","facility":n,"severity":n,"timestamp":…,"hostname":…,
/// "app_name":…,"proc_id":…,"msg_id":…,"sd":[[id,[[k,v]…]]…],"msg":…}` or
/// `{"route":…,"kind":"raw","text":<lossy UTF-8>}`.
pub fn emit_to_json(emit: &Emit) -> String {
    let mut out = String::new();
    let mut obj = ObjectWriter::new(&mut out, JsonStyle::Compact);
    opt(&mut obj, "route", &emit.route);
    match &emit.payload {
        Payload::Hec(e) => {
            obj.str("kind", "hec");
            ts(&mut obj, "time", &e.time);
            opt(&mut obj, "host", &e.host);
            opt(&mut obj, "source", &e.source);
            opt(&mut obj, "sourcetype", &e.sourcetype);
            opt(&mut obj, "index", &e.index);
            let (kind, body) = match &e.body {
                HecBody::Json(s) => ("json", s),
                HecBody::Text(s) => ("text", s),
            };
            let b = obj.key("body");
            b.push('{');
            write_str(b, kind);
            b.push(':');
            write_str(b, body);
            b.push('}');
            pairs(obj.key("fields"), &e.fields);
        }
        Payload::Syslog(m) => {
            obj.str("kind", "syslog");
            let _ = write!(obj.key("facility"), "{}", m.facility);
            let _ = write!(obj.key("severity"), "{}", m.severity.code());
            ts(&mut obj, "timestamp", &m.timestamp);
            opt(&mut obj, "hostname", &m.hostname);
            opt(&mut obj, "app_name", &m.app_name);
            opt(&mut obj, "proc_id", &m.proc_id);
            opt(&mut obj, "msg_id", &m.msg_id);
            let sd = obj.key("sd");
            sd.push('[');
            for (i, el) in m.structured_data.iter().enumerate() {
                if i > 0 {
                    sd.push(',');
                }
                sd.push('[');
                write_str(sd, &el.id);
                sd.push(',');
                pairs(sd, &el.params);
                sd.push(']');
            }
            sd.push(']');
            obj.str("msg", &m.msg);
        }
        Payload::Raw(bytes) => {
            obj.str("kind", "raw");
            obj.str("text", &String::from_utf8_lossy(bytes));
        }
    }
    obj.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_groups_consecutive_lines() {
        let text = r#"{"__time__": 1700000000, "__topic__": "t", "__source__": "s", "__time_ns_part__": [5], "__tag__:host": "h", "a": "1"}
{"__time__": "1700000001", "__topic__": "t", "__source__": "s", "__tag__:host": "h", "b": "2"}

{"__time__": 1700000002, "__topic__": "u", "__time_ns_part__": [0], "c": "3"}
{"__time__": 1700000003, "__topic__": "t", "__source__": "s", "__tag__:host": "h", "d": "4"}"#;
        let g = groups_from_jsonl(text).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].logs.len(), 2);
        assert_eq!(g[0].tags, [("host".to_string(), "h".to_string())]);
        assert_eq!(g[0].logs[0].time_ns, Some(5));
        assert_eq!(g[0].logs[1].time, 1_700_000_001);
        assert_eq!(g[0].logs[1].time_ns, None);
        assert_eq!(g[1].logs[0].time_ns, Some(0));
        assert_eq!(g[2].logs[0].contents, [("d".to_string(), "4".to_string())]);
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let e = groups_from_jsonl("{\"__time__\": 1}\n{\"a\": \"b\"}").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = groups_from_jsonl("{\"__time__\": 1, \"a\": 5}").unwrap_err();
        assert!(e.contains("`a` must be a string"), "{e}");
    }
}
