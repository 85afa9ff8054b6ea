//! The splunk-hec plugins written in Python, JavaScript and C (docs/plugins.md §11.2–§11.4)
//! against the Rust one, through the production runtime: for every input below, each returns
//! exactly what the Rust plugin returns — the same emits (body bytes, time, metadata), the
//! same record errors (kind and message) and the same batch error.
//!
//! Inputs: every splunk-hec golden case (tests/fixtures/plugins/splunk-hec/*), the built-in
//! samples in both event formats, and edge cases written here as raw protobuf: dict-style
//! key collisions, nanoseconds that carry, invalid UTF-8, strict-JSON corner cases, CPython
//! json.loads/dumps corner cases, malformed logs and a malformed group.
//!
//! A language plugin whose toolchain is missing fails here with the install command
//! (`shipper_test_artifacts::LangPlugin::path`); the rendered bytes are checked end to end
//! by tests/e2e/lang_plugins.rs.

use std::fmt::Write as _;

use shipper_runtime::{Plugin, PluginError, PluginInstance};
use shipper_test_artifacts::{self as artifacts, LangPlugin};

use crate::support::{batch, load};

/// One input: a config and one encoded LogGroup.
struct Case {
    name: String,
    config: String,
    group: Vec<u8>,
    logs: usize,
}

// --- a protobuf writer that can also write what a real encoder never would ---------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn kv(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, key);
    bytes_field(&mut out, 2, value);
    out
}

/// A `Log`: time, optional nanoseconds, contents as raw bytes.
fn log(time: u32, ns: Option<u32>, contents: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    tag(&mut out, 1, 0);
    varint(&mut out, u64::from(time));
    for (k, v) in contents {
        bytes_field(&mut out, 2, &kv(k, v));
    }
    if let Some(ns) = ns {
        tag(&mut out, 4, 5);
        out.extend_from_slice(&ns.to_le_bytes());
    }
    out
}

/// A `LogGroup` of encoded logs with topic, source and tags.
fn group(topic: &[u8], source: &[u8], tags: &[(&[u8], &[u8])], logs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in logs {
        bytes_field(&mut out, 1, l);
    }
    bytes_field(&mut out, 3, topic);
    bytes_field(&mut out, 4, source);
    for (k, v) in tags {
        bytes_field(&mut out, 6, &kv(k, v));
    }
    out
}

fn case(name: &str, config: &str, group: Vec<u8>, logs: usize) -> Case {
    Case {
        name: name.to_owned(),
        config: config.to_owned(),
        group,
        logs,
    }
}

/// Every splunk-hec golden case, as (config, groups).
fn golden_cases() -> Vec<Case> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/plugins/splunk-hec");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("fixture entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no splunk-hec golden cases in {}",
        root.display()
    );
    let mut cases = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let config =
            std::fs::read_to_string(dir.join("config.json")).unwrap_or_else(|_| "{}".into());
        let groups = match std::fs::read_to_string(dir.join("input.jsonl")) {
            Ok(text) => shipper_sls::flat::parse(&text).expect("golden input parses"),
            Err(_) => shipper_sls::flat::samples::builtin_groups(),
        };
        for (i, g) in groups.iter().enumerate() {
            cases.push(case(
                &format!("golden {name} group {i}"),
                &config,
                shipper_sls::proto::encode_group(g),
                g.logs.len(),
            ));
        }
    }
    for config in ["{}", r#"{"event_format":"seed-string","host":"h"}"#] {
        for (i, g) in shipper_sls::flat::samples::builtin_groups()
            .iter()
            .enumerate()
        {
            cases.push(case(
                &format!("builtin sample group {i} with {config}"),
                config,
                shipper_sls::proto::encode_group(g),
                g.logs.len(),
            ));
        }
    }
    cases
}

/// JSON-field values that probe strict validation (object mode) and CPython's
/// json.loads + json.dumps (seed-string mode).
const JSON_VALUES: &[&str] = &[
    " {\"a\": [1, 2.50], \"b\": {\"c\": null}} \n",
    "NaN",
    "-Infinity",
    "[1,2]",
    "[1,]",
    "{\"a\":1,\"a\":2,\"b\":3}",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\ud83d\\ude00 \\u00e9 \\/ \\\\\"",
    "\"\\ud83d\\u0041\"",
    "\"a\tb\"",
    "\"\u{7f}\u{e9}\u{1F600}\"",
    "1e400",
    "-0",
    "-0.0",
    "1.0",
    "0.00001",
    "0.0001",
    "1e16",
    "1e15",
    "123456789012345678",
    "123456789012345678.0",
    "12345678901234567890",
    "1.5E+3",
    "-1.25e-7",
    "0.1",
    "5e-324",
    "1.7976931348623157e308",
    "2.5e-5",
    "1.",
    "01",
    ".5",
    "-",
    "tru",
    "true ",
    "\u{feff}{}",
    "",
    " ",
    "{\"k\": \"v\"} x",
    "{\"k\" \"v\"}",
    "[\"unterminated]",
];

fn deep(n: usize) -> String {
    "[".repeat(n) + &"]".repeat(n)
}

fn edge_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let tags: &[(&[u8], &[u8])] = &[
        (b"host", b"web-1"),
        (b"j", b" [1] "),
        (b"env", b"prod"),
        (b"host", b"web-2"),
    ];

    // Dict-style collisions, `__time__` deletion, nanoseconds that carry or are zero.
    let collisions = vec![
        log(
            1_700_000_000,
            Some(5),
            &[
                (b"k", b"1"),
                (b"__tag__:env", b"from-content"),
                (b"__topic__", b"t2"),
                (b"__time__", b"gone"),
                (b"k", b"2"),
                (b"__time_ns_part__", b"str"),
                (b"__source__", b"s2"),
            ],
        ),
        log(
            1_700_000_001,
            None,
            &[(b"__time_ns_part__", b"no ns"), (b"__time__", b"x")],
        ),
        log(1_700_000_002, Some(0), &[(b"a", b"1")]),
        log(1_700_000_003, Some(2_000_000_001), &[(b"carry", b"2 s")]),
        log(u32::MAX, Some(999_999_999), &[(b"", b""), (b"empty", b"")]),
        log(0, None, &[]),
    ];
    let g = group(b"t", b"10.0.0.1", tags, &collisions);
    for config in [
        "{}",
        r#"{"json_fields":{"t":["k","__tag__:j","__topic__","__time_ns_part__","nope"],"t2":"__tag__:j"}}"#,
        r#"{"json_fields":{"t2":["__tag__:j"]},"event_format":"seed-string"}"#,
        r#"{"sourcetype":"st","source":"","index":"i","host":"h","event_format":"object"}"#,
    ] {
        cases.push(case(
            &format!("collisions with {config}"),
            config,
            g.clone(),
            collisions.len(),
        ));
    }

    // Invalid UTF-8 in values, keys, topic, source and tags: U+FFFD per maximal subpart.
    let bad: &[&[u8]] = &[
        b"\xff",
        b"a\xc3",
        b"\xf0\x9f\x98",
        b"\xed\xa0\x80",
        b"\xe0\x80\x80",
        b"\xf4\x90\x80\x80",
        b"ok \xc3\xa9 \xc3",
        b"\xc0\xaf",
        b"\xe2\x82",
        b"\xf0\x80\x80\x80x",
    ];
    let logs: Vec<Vec<u8>> = bad
        .iter()
        .map(|b| log(1, None, &[(b"v", b), (b, b"key"), (b"event", b)]))
        .collect();
    let g = group(b"t\xff", b"\xc3", &[(b"\xe2\x82", b"\xed\xa0\x80")], &logs);
    for config in [
        "{}",
        r#"{"event_format":"seed-string","json_fields":{"t\ufffd":"event"}}"#,
    ] {
        cases.push(case(
            &format!("invalid UTF-8 with {config}"),
            config,
            g.clone(),
            logs.len(),
        ));
    }

    // JSON fields.
    let mut values: Vec<String> = JSON_VALUES.iter().map(|s| (*s).to_owned()).collect();
    values.extend([deep(128), deep(129), format!("{{\"d\": {}}}", deep(127))]);
    values.push("7".repeat(4300));
    values.push("8".repeat(4301));
    values.push(format!("-{}", "9".repeat(4300)));
    let logs: Vec<Vec<u8>> = values
        .iter()
        .map(|v| {
            log(
                1,
                Some(1),
                &[(b"event", v.as_bytes()), (b"other", v.as_bytes())],
            )
        })
        .collect();
    let g = group(b"actiontrail_audit_event", b"s", &[], &logs);
    for config in ["{}", r#"{"event_format":"seed-string"}"#] {
        cases.push(case(
            &format!("JSON fields with {config}"),
            config,
            g.clone(),
            logs.len(),
        ));
    }

    // Malformed logs: each gets the same record error, the others still format.
    let mut truncated_varint = Vec::new();
    tag(&mut truncated_varint, 1, 0);
    truncated_varint.push(0x80);
    let mut ns_as_varint = log(1, None, &[(b"a", b"b")]);
    tag(&mut ns_as_varint, 4, 0);
    varint(&mut ns_as_varint, 7);
    let mut content_as_varint = log(1, None, &[]);
    tag(&mut content_as_varint, 2, 0);
    varint(&mut content_as_varint, 1);
    let mut bad_content = log(1, None, &[(b"a", b"b")]);
    bytes_field(&mut bad_content, 2, &[0x08, 0x01]); // Key as a varint
    let mut short_content = log(1, None, &[]);
    bytes_field(&mut short_content, 2, &[0x0a, 0x05, b'k']); // key runs past the content
    let mut unknown_fields = Vec::new();
    tag(&mut unknown_fields, 9, 1); // fixed64
    unknown_fields.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    unknown_fields.extend(log(7, Some(8), &[(b"k", b"v")]));
    tag(&mut unknown_fields, 10, 0);
    varint(&mut unknown_fields, u64::MAX);
    bytes_field(&mut unknown_fields, 2, &{
        let mut c = kv(b"x", b"y");
        tag(&mut c, 3, 5); // unknown fixed32 inside a content
        c.extend_from_slice(&[1, 2, 3, 4]);
        c
    });
    let mut wide_time = Vec::new();
    tag(&mut wide_time, 1, 0);
    varint(&mut wide_time, (1 << 40) + 1_700_000_000);
    let mut too_long_varint = Vec::new();
    tag(&mut too_long_varint, 1, 0);
    too_long_varint.extend_from_slice(&[0xff; 9]);
    too_long_varint.push(0x02);
    let mut group_wire = Vec::new();
    tag(&mut group_wire, 3, 3); // start-group: refused
    let mut field_zero = vec![0x00];
    field_zero.extend(log(1, None, &[]));
    let mut huge_len = log(1, None, &[]);
    tag(&mut huge_len, 2, 2);
    varint(&mut huge_len, 1 << 33);
    let malformed = vec![
        log(1, None, &[(b"fine", b"before")]),
        vec![0x12, 0x00], // no Time
        truncated_varint,
        ns_as_varint,
        content_as_varint,
        bad_content,
        short_content,
        unknown_fields,
        wide_time,
        too_long_varint,
        group_wire,
        field_zero,
        huge_len,
        Vec::new(),
        log(2, None, &[(b"fine", b"after")]),
    ];
    let g = group(b"t", b"s", &[], &malformed);
    cases.push(case("malformed logs", "{}", g, malformed.len()));

    // A group whose framing is broken fails the whole call (same message).
    let mut broken = group(b"t", b"s", &[], &[log(1, None, &[])]);
    broken.extend_from_slice(&[0x0a, 0x05, 0x08]);
    cases.push(case("broken group framing", "{}", broken, 2));
    let mut bad_tag = group(b"t", b"s", &[], &[log(1, None, &[])]);
    bytes_field(&mut bad_tag, 6, &[0x08, 0x01]);
    cases.push(case("tag with a varint key", "{}", bad_tag, 1));
    cases.push(case("topic as a varint", "{}", vec![0x18, 0x01], 0));
    cases.push(case("empty group", "{}", Vec::new(), 0));
    cases
}

/// What one plugin made of one case, as text (the bindgen types have no `PartialEq`;
/// their `Debug` shows every field and byte).
async fn run(instance: &mut PluginInstance, case: &Case) -> String {
    match instance.process(&batch(), &case.group, case.logs).await {
        Ok(results) => {
            let mut out = String::new();
            for (i, r) in results.iter().enumerate() {
                writeln!(out, "log {i}: {r:?}").unwrap();
            }
            out
        }
        Err(PluginError::Guest { message, .. }) => format!("batch error: {message}"),
        Err(other) => panic!("case `{}`: unexpected failure: {other}", case.name),
    }
}

/// Instances per config, created on first use.
struct Instances {
    plugin: Plugin,
    by_config: Vec<(String, PluginInstance)>,
}

impl Instances {
    async fn get(&mut self, config: &str) -> &mut PluginInstance {
        if let Some(i) = self.by_config.iter().position(|(c, _)| c == config) {
            return &mut self.by_config[i].1;
        }
        let instance = self
            .plugin
            .instantiate(config)
            .await
            .unwrap_or_else(|e| panic!("init with {config}: {e}"));
        self.by_config.push((config.to_owned(), instance));
        &mut self.by_config.last_mut().unwrap().1
    }
}

/// Line-by-line differences, the first few only.
fn diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut shown = 0;
    for i in 0..e.len().max(a.len()) {
        if e.get(i) != a.get(i) && shown < 3 {
            shown += 1;
            writeln!(out, "    rust: {}", e.get(i).unwrap_or(&"<none>")).unwrap();
            writeln!(out, "    this: {}", a.get(i).unwrap_or(&"<none>")).unwrap();
        }
    }
    out
}

async fn same_as_rust(lang: LangPlugin) {
    let wasm = lang.path();
    let mut rust = Instances {
        plugin: load(artifacts::PLUGIN_SPLUNK_HEC),
        by_config: Vec::new(),
    };
    let mut other = Instances {
        plugin: load(wasm),
        by_config: Vec::new(),
    };
    let info = other.get("{}").await.info().clone();
    assert_eq!(info.name, "splunk-hec", "{info:?}");

    let cases: Vec<Case> = golden_cases().into_iter().chain(edge_cases()).collect();
    let mut failures = Vec::new();
    for case in &cases {
        let expected = run(rust.get(&case.config).await, case).await;
        let actual = run(other.get(&case.config).await, case).await;
        if expected != actual {
            failures.push(format!(
                "case `{}`:\n{}",
                case.name,
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ between the Rust splunk-hec plugin and {}:\n\n{}",
        failures.len(),
        cases.len(),
        lang.dir,
        failures.join("\n")
    );
}

/// The language plugins reject a bad config like the Rust one (not the same words: the
/// messages name the key in each).
async fn rejects_bad_configs(lang: LangPlugin) {
    let plugin = load(lang.path());
    for (config, key) in [
        (r#"{"sourctype":"x"}"#, "sourctype"),
        (r#"{"index":5}"#, "index"),
        (r#"{"event_format":"raw"}"#, "event_format"),
        (r#"{"json_fields":["event"]}"#, "json_fields"),
        (r#"{"json_fields":{"t":[1]}}"#, "json_fields"),
        ("[1]", "JSON object"),
        ("{", "JSON"),
    ] {
        let err = plugin
            .instantiate(config)
            .await
            .expect_err("a bad config is refused");
        let message = err.to_string();
        assert!(
            matches!(err, PluginError::Init { .. }) && message.contains(key),
            "{}: config {config}: {message}",
            lang.dir
        );
    }
}

macro_rules! lang_tests {
    ($name:ident, $dir:literal, $plugin:expr) => {
        mod $name {
            #[tokio::test]
            async fn gives_the_rust_plugins_output() {
                super::same_as_rust($plugin).await;
            }

            #[tokio::test]
            async fn rejects_bad_configs() {
                super::rejects_bad_configs($plugin).await;
            }
        }
    };
}
artifacts::foreach_lang_plugin!(lang_tests);

#[test]
fn every_language_has_a_plugin() {
    let dirs: Vec<&str> = artifacts::LANG_PLUGINS.iter().map(|p| p.dir).collect();
    assert_eq!(dirs, ["c-splunk-hec", "js-splunk-hec", "python-splunk-hec"]);
}
