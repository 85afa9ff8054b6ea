//! # `splunk-hec`: SLS logs as Splunk HEC events, the way Alibaba's seed script sends them
//!
//! Scenario: a security team replaces Alibaba's "Ship logs to SIEM" Splunk HEC script
//! (`sync_data.py`, whose `process()` says "TODO: Replace this with your own logic") and
//! wants Splunk to receive the same events, only faster. The seed turns each log into the
//! official SDK's flattened dict, drops `__time__` (it becomes the HEC `time`), parses the
//! `event` field of ActionTrail logs as JSON, and posts `{"time", "event": json.dumps(log),
//! "sourcetype", "source", "index"}`.
//!
//! Sample input (flattened JSONL, one log):
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "actiontrail_audit_event",
//!  "__source__": "actiontrail", "__tag__:__receive_time__": "1700000005",
//!  "event": "{\"eventName\": \"ConsoleSignin\"}", "event_name": "ConsoleSignin"}
//! ```
//!
//! with config `{"sourcetype": "aliyun:actiontrail", "index": "cloud"}` becomes the HEC
//! event (as shipper renders the envelope):
//!
//! ```text
//! {"time":1700000000.123456,"sourcetype":"aliyun:actiontrail","index":"cloud","event":{"__topic__":"actiontrail_audit_event","__source__":"actiontrail","__time_ns_part__":["123456789"],"__tag__:__receive_time__":"1700000005","event":{"eventName": "ConsoleSignin"},"event_name":"ConsoleSignin"}}
//! ```
//!
//! The event has the seed's keys in the seed's order ([`shipper_sdk::flat`], written by
//! [`shipper_sdk::flat::write_json_object`]): `__topic__`,
//! `__source__`, `__time_ns_part__` (only when non-zero, as the SDK's 1-tuple of a string:
//! `["123456789"]`), `__tag__:<k>` per tag, then the contents (a repeated key keeps its first
//! position and its last value, as in a Python dict).
//!
//! ## Config (a JSON object; every key optional)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `json_fields` | `{"actiontrail_audit_event": ["event"]}` | topic → fields whose value is JSON text to embed as JSON. A value that is valid JSON is embedded verbatim (surrounding whitespace trimmed); anything else stays a string, as the seed swallows the `json.loads` error. `{}` turns it off. |
//! | `sourcetype`, `source`, `index`, `host` | unset | HEC metadata; unset or `""` leaves the key out (the token's default applies), as the seed does. |
//! | `event_format` | `"object"` | `"object"`: the event is a JSON object (`hec-body::json`). `"seed-string"`: the event is a *string* holding Python `json.dumps` text, byte for byte what the seed sends (`", "` / `": "` separators, `\uXXXX` for non-ASCII, JSON fields re-serialised the way `json.loads` + `json.dumps` would). |
//!
//! ## Differences from the seed (deliberate)
//!
//! - `time` carries the nanosecond part (truncated to µs by the host), where the seed sends
//!   the whole seconds as a string.
//! - With several JSON fields for a topic, each is parsed on its own; the seed stops at the
//!   first field that fails to parse (its `try` wraps the loop).
//! - In `object` mode the event must be valid JSON for Splunk, so `NaN`/`Infinity` (which
//!   Python's `json.loads` accepts) keep the field a string; `seed-string` mode accepts them
//!   like the seed.

use shipper_sdk::batch::EmitBuffer;
use shipper_sdk::flat::write_json_object;
use shipper_sdk::json::JsonStyle;
use shipper_sdk::mapping::JsonFields;
use shipper_sdk::{Config, ConfigError, Emit, Group, HecEvent, Log, Plugin, RecordError};

/// How the event body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// A JSON object (`hec-body::json`), compact, UTF-8 as is.
    #[default]
    Object,
    /// A JSON string holding Python `json.dumps` text, exactly as the seed sends it.
    SeedString,
}

/// The plugin, built from its config.
#[derive(Debug, Clone, Default)]
pub struct SplunkHec {
    /// Topic → fields to embed as JSON.
    pub json_fields: JsonFields,
    /// Body form.
    pub event_format: EventFormat,
    /// HEC `sourcetype`.
    pub sourcetype: Option<String>,
    /// HEC `source`.
    pub source: Option<String>,
    /// HEC `index`.
    pub index: Option<String>,
    /// HEC `host`.
    pub host: Option<String>,
}

/// An optional string where `""` means unset (the seed's `if self.option.get(...)`).
fn non_empty(config: &mut Config, key: &'static str) -> Result<Option<String>, ConfigError> {
    Ok(config.string(key)?.filter(|s| !s.is_empty()))
}

impl Plugin for SplunkHec {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        let json_fields = JsonFields::from_config(config, "json_fields")?;
        let event_format = match config.choice("event_format", &["object", "seed-string"])? {
            Some("seed-string") => EventFormat::SeedString,
            _ => EventFormat::Object,
        };
        Ok(Self {
            json_fields,
            event_format,
            sourcetype: non_empty(config, "sourcetype")?,
            source: non_empty(config, "source")?,
            index: non_empty(config, "index")?,
            host: non_empty(config, "host")?,
        })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        Ok(vec![Emit::hec(self.event(group, log))])
    }

    /// The same event as [`SplunkHec::event`], its body written straight into the batch
    /// buffer (world `batch-formatter`).
    fn format_into(
        &self,
        group: &Group<'_>,
        log: &Log<'_>,
        out: &mut EmitBuffer,
    ) -> Result<(), RecordError> {
        let json = self.event_format == EventFormat::Object;
        let event = out.push_hec_body(json, |body| {
            body.reserve(estimate(group, log));
            self.write_body(body, group, log);
        });
        event.time = Some(log.timestamp());
        event.host.clone_from(&self.host);
        event.source.clone_from(&self.source);
        event.sourcetype.clone_from(&self.sourcetype);
        event.index.clone_from(&self.index);
        Ok(())
    }
}

/// Bytes the body of `log` will take, about: per entry key + value + quotes/separators; the
/// group metadata on top.
fn estimate(group: &Group<'_>, log: &Log<'_>) -> usize {
    log.encoded_len()
        + group.topic().len()
        + group.source().len()
        + group
            .tags()
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
        + 6 * log.contents().len()
        + 64
}

impl SplunkHec {
    /// Appends the event body of one log to `body`.
    fn write_body(&self, body: &mut String, group: &Group<'_>, log: &Log<'_>) {
        let json_fields = self.json_fields.for_log(group, log);
        let style = match self.event_format {
            EventFormat::Object => JsonStyle::Compact,
            EventFormat::SeedString => JsonStyle::Python,
        };
        write_json_object(body, group, log, json_fields, style);
    }

    /// The HEC event of one log.
    pub fn event(&self, group: &Group<'_>, log: &Log<'_>) -> HecEvent {
        let mut body = String::with_capacity(estimate(group, log));
        self.write_body(&mut body, group, log);
        let mut event = match self.event_format {
            EventFormat::Object => HecEvent::json(body),
            EventFormat::SeedString => HecEvent::text(body),
        };
        event.time = Some(log.timestamp());
        event.host.clone_from(&self.host);
        event.source.clone_from(&self.source);
        event.sourcetype.clone_from(&self.sourcetype);
        event.index.clone_from(&self.index);
        event
    }
}

// World `batch-formatter`: one packed output per call (docs/plugins.md §12).
shipper_sdk::export!(batch plugin = SplunkHec);

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{HecBody, Payload, Timestamp};

    fn events(config: &str, jsonl: &str) -> Vec<HecEvent> {
        let groups = groups_from_jsonl(jsonl).unwrap();
        run::<SplunkHec>(config, &groups)
            .unwrap()
            .into_iter()
            .flat_map(|r| r.unwrap())
            .map(|e| match e.payload {
                Payload::Hec(ev) => ev,
                other => panic!("not an HEC event: {other:?}"),
            })
            .collect()
    }

    fn body(ev: &HecEvent) -> &str {
        match &ev.body {
            HecBody::Json(s) | HecBody::Text(s) => s,
        }
    }

    /// Every golden input under every config: the batch world's output (`format_into` into
    /// one packed buffer, unpacked as the host does) equals the per-log world's, log by log.
    #[test]
    fn the_batch_world_formats_exactly_as_the_per_log_world() {
        use shipper_sdk::testing::{encode_group, process_batch_encoded, process_encoded};
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/plugins/splunk-hec");
        let mut inputs = vec![AUDIT.to_owned()];
        for case in std::fs::read_dir(&fixtures).unwrap() {
            let path = case.unwrap().path().join("input.jsonl");
            inputs.push(std::fs::read_to_string(path).unwrap());
        }
        let configs = [
            "{}",
            r#"{"event_format":"seed-string"}"#,
            r#"{"sourcetype":"st","source":"src","index":"ix","host":"h","json_fields":{}}"#,
        ];
        let mut compared = 0;
        for config in configs {
            let plugin: SplunkHec = shipper_sdk::__private::init(config).unwrap();
            for input in &inputs {
                for group in groups_from_jsonl(input).unwrap() {
                    let mut bytes = encode_group(&group);
                    // A log with a broken Time_ns wire type: a record error in both worlds.
                    bytes.extend([0x0a, 0x04, 0x08, 0x01, 0x20, 0x01]);
                    let per_log = process_encoded(&plugin, &bytes).unwrap();
                    let batch = process_batch_encoded(&plugin, &bytes).unwrap();
                    assert_eq!(batch, per_log, "config {config}");
                    assert!(per_log.last().unwrap().is_err());
                    compared += per_log.len();
                }
            }
        }
        assert!(compared > 30, "only {compared} logs compared");
    }

    const AUDIT: &str = r#"{"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "actiontrail_audit_event", "__source__": "actiontrail", "__tag__:__receive_time__": "1700000005", "event": " {\"eventName\": \"ConsoleSignin\", \"n\": 1.50} ", "event_name": "ConsoleSignin"}"#;

    #[test]
    fn object_mode_embeds_valid_json_verbatim() {
        let ev = &events(r#"{"sourcetype":"st","index":"i","source":""}"#, AUDIT)[0];
        assert!(matches!(ev.body, HecBody::Json(_)));
        assert_eq!(
            body(ev),
            r#"{"__topic__":"actiontrail_audit_event","__source__":"actiontrail","__time_ns_part__":["123456789"],"__tag__:__receive_time__":"1700000005","event":{"eventName": "ConsoleSignin", "n": 1.50},"event_name":"ConsoleSignin"}"#
        );
        assert_eq!(
            ev.time,
            Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            })
        );
        assert_eq!(ev.sourcetype.as_deref(), Some("st"));
        assert_eq!(ev.index.as_deref(), Some("i"));
        assert_eq!(ev.source, None, "an empty string is unset, as in the seed");
        assert_eq!(ev.host, None);
    }

    #[test]
    fn seed_string_mode_is_python_json_dumps() {
        let ev = &events(r#"{"event_format":"seed-string"}"#, AUDIT)[0];
        assert!(matches!(ev.body, HecBody::Text(_)));
        // CPython 3.11: json.dumps of the seed's dict after json.loads of `event`.
        assert_eq!(
            body(ev),
            r#"{"__topic__": "actiontrail_audit_event", "__source__": "actiontrail", "__time_ns_part__": ["123456789"], "__tag__:__receive_time__": "1700000005", "event": {"eventName": "ConsoleSignin", "n": 1.5}, "event_name": "ConsoleSignin"}"#
        );
    }

    #[test]
    fn invalid_json_stays_a_string_and_other_topics_are_untouched() {
        let jsonl = r#"{"__time__": 1, "__topic__": "actiontrail_audit_event", "event": "{not json"}
{"__time__": 2, "__topic__": "other", "event": "{\"a\":1}"}
{"__time__": 3, "__topic__": "actiontrail_audit_event", "event": "NaN"}"#;
        let evs = events("{}", jsonl);
        assert_eq!(
            body(&evs[0]),
            r#"{"__topic__":"actiontrail_audit_event","__source__":"","event":"{not json"}"#
        );
        assert_eq!(
            body(&evs[1]),
            r#"{"__topic__":"other","__source__":"","event":"{\"a\":1}"}"#
        );
        assert_eq!(
            body(&evs[2]),
            r#"{"__topic__":"actiontrail_audit_event","__source__":"","event":"NaN"}"#
        );
        let seed = events(r#"{"event_format":"seed-string"}"#, jsonl);
        assert_eq!(
            body(&seed[2]),
            r#"{"__topic__": "actiontrail_audit_event", "__source__": "", "event": NaN}"#
        );
    }

    #[test]
    fn json_fields_config() {
        let jsonl = r#"{"__time__": 1, "__topic__": "t", "a": "[1]", "b": "x", "c": "{}"}"#;
        let evs = events(r#"{"json_fields":{"t":["a","b","c"]}}"#, jsonl);
        assert_eq!(
            body(&evs[0]),
            r#"{"__topic__":"t","__source__":"","a":[1],"b":"x","c":{}}"#
        );
        let evs = events(r#"{"json_fields":{"t":"a"}}"#, jsonl);
        assert!(body(&evs[0]).contains(r#""a":[1],"b":"x","c":"{}""#));
        // Off.
        let evs = events(r#"{"json_fields":{}}"#, AUDIT);
        assert!(body(&evs[0]).contains(r#""event":" {\"eventName\""#));
    }

    #[test]
    fn config_errors_name_the_key() {
        let groups = groups_from_jsonl(AUDIT).unwrap();
        for (config, want) in [
            (r#"{"sourctype":"x"}"#, "unknown config key `sourctype`"),
            (r#"{"index":5}"#, "config key `index`: expected a string"),
            (
                r#"{"event_format":"raw"}"#,
                "config key `event_format`: `raw` is not one of",
            ),
            (
                r#"{"json_fields":["event"]}"#,
                "config key `json_fields`: expected an object",
            ),
            (
                r#"{"json_fields":{"t":[1]}}"#,
                "topic `t` must map to a list of field names",
            ),
        ] {
            let err = run::<SplunkHec>(config, &groups).unwrap_err();
            assert!(err.contains(want), "{config}: {err}");
        }
    }

    #[test]
    fn escaping_of_keys_and_values() {
        let jsonl = r#"{"__time__": 1, "__topic__": "t\"q", "__tag__:k\u00e9": "v\\", "msg": "line1\nline2\ttab \u0001 é ✓ 😀", "k=v|x": ""}"#;
        let ev = &events("{}", jsonl)[0];
        assert_eq!(
            body(ev),
            "{\"__topic__\":\"t\\\"q\",\"__source__\":\"\",\"__tag__:ké\":\"v\\\\\",\"msg\":\"line1\\nline2\\ttab \\u0001 é ✓ 😀\",\"k=v|x\":\"\"}"
        );
        assert!(shipper_sdk::json::is_valid(body(ev)));
        let ev = &events(r#"{"event_format":"seed-string"}"#, jsonl)[0];
        assert_eq!(
            body(ev),
            r#"{"__topic__": "t\"q", "__source__": "", "__tag__:k\u00e9": "v\\", "msg": "line1\nline2\ttab \u0001 \u00e9 \u2713 \ud83d\ude00", "k=v|x": ""}"#
        );
    }
}
