//! # `json`: SLS logs as JSON objects, to Splunk HEC or as syslog messages
//!
//! Scenario: a SIEM ingests JSON (Splunk HEC, or a syslog receiver with a JSON parser such as
//! rsyslog's `mmjsonparse` or QRadar's JSON DSM) and the team wants each SLS log as one
//! JSON object with the same keys the seed scripts produce, without the seed's
//! Python-specific string wrapping.
//!
//! Sample input (flattened JSONL, one log):
//!
//! ```text
//! {"__time__": 1700000000, "__topic__": "app", "__source__": "10.0.0.1",
//!  "__tag__:__hostname__": "web-1", "level": "WARN", "message": "disk 91% full"}
//! ```
//!
//! With `{}` (HEC output) the rendered HEC event is
//!
//! ```text
//! {"time":1700000000,"event":{"__topic__":"app","__source__":"10.0.0.1","__tag__:__hostname__":"web-1","level":"WARN","message":"disk 91% full"}}
//! ```
//!
//! and with `{"output": "syslog", "hostname": "shipper-01", "app_name": "sls"}` the RFC 5424
//! line is
//!
//! ```text
//! <14>1 2023-11-14T22:13:20Z shipper-01 sls - - - {"__topic__":"app","__source__":"10.0.0.1","__tag__:__hostname__":"web-1","level":"WARN","message":"disk 91% full"}
//! ```
//!
//! The object follows the same key rules as the `splunk-hec` plugin: the official SDK's
//! flattened dict minus `__time__` (the time travels in the HEC envelope or the syslog
//! header), keys in the seed's order, `__time_ns_part__` as `["123456789"]` only when
//! non-zero, a repeated key keeping its first position and last value; fields listed in
//! `json_fields` for the log's topic are embedded as JSON when valid.
//!
//! ## Config (a JSON object; every key optional)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `output` | `"hec"` | `"hec"`: an HEC event whose `event` is the object; `"syslog"`: a syslog message whose MSG is the object |
//! | `json_fields` | `{"actiontrail_audit_event": ["event"]}` | topic → fields embedded as JSON when their text is valid JSON (verbatim, whitespace trimmed); `{}` turns it off |
//! | `sourcetype`, `source`, `index`, `host` | unset | HEC metadata (`output = "hec"` only) |
//! | `facility`, `severity`, `hostname`, `app_name`, `proc_id`, `msg_id` | `user`, `info`, unset… | syslog header (`output = "syslog"` only) |

use shipper_sdk::flat::write_json_object;
use shipper_sdk::json::JsonStyle;
use shipper_sdk::mapping::{JsonFields, Output};
use shipper_sdk::{Config, ConfigError, Emit, Group, Log, Plugin, RecordError};

/// The plugin, built from its config.
#[derive(Debug, Clone)]
pub struct Json {
    /// Topic → fields embedded as JSON.
    pub json_fields: JsonFields,
    /// HEC or syslog, with metadata.
    pub output: Output,
}

impl Plugin for Json {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        let json_fields = JsonFields::from_config(config, "json_fields")?;
        let output = Output::from_config(config, true, "app_name")?;
        Ok(Self {
            json_fields,
            output,
        })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        let json = self.object(group, log);
        Ok(vec![self.output.emit_json(json, log.timestamp())])
    }
}

impl Json {
    /// The log as a compact JSON object.
    pub fn object(&self, group: &Group<'_>, log: &Log<'_>) -> String {
        let fields = self.json_fields.for_log(group, log);
        let mut out = String::with_capacity(
            log.encoded_len() + group.topic().len() + group.source().len() + 96,
        );
        write_json_object(&mut out, group, log, fields, JsonStyle::Compact);
        out
    }
}

shipper_sdk::export!(plugin = Json);

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{HecBody, Payload};

    const APP: &str = r#"{"__time__": 1700000000, "__topic__": "app", "__source__": "10.0.0.1", "__tag__:__hostname__": "web-1", "level": "WARN", "message": "disk 91% full"}"#;
    const OBJECT: &str = r#"{"__topic__":"app","__source__":"10.0.0.1","__tag__:__hostname__":"web-1","level":"WARN","message":"disk 91% full"}"#;

    fn one(config: &str, jsonl: &str) -> Payload {
        let groups = groups_from_jsonl(jsonl).unwrap();
        let mut results = run::<Json>(config, &groups).unwrap();
        let mut emits = results.remove(0).unwrap();
        emits.remove(0).payload
    }

    #[test]
    fn hec_by_default() {
        let Payload::Hec(ev) = one(r#"{"index":"main"}"#, APP) else {
            panic!("not HEC")
        };
        assert_eq!(ev.body, HecBody::Json(OBJECT.into()));
        assert_eq!(ev.index.as_deref(), Some("main"));
        assert_eq!(ev.time.unwrap().seconds, 1_700_000_000);
    }

    #[test]
    fn syslog_output() {
        let Payload::Syslog(m) = one(
            r#"{"output":"syslog","hostname":"shipper-01","app_name":"sls","facility":"local3"}"#,
            APP,
        ) else {
            panic!("not syslog")
        };
        assert_eq!(m.msg, OBJECT);
        assert_eq!(m.app_name.as_deref(), Some("sls"));
        assert_eq!(m.facility, 19);
    }

    #[test]
    fn json_fields_and_errors() {
        let jsonl =
            r#"{"__time__": 1, "__topic__": "actiontrail_audit_event", "event": "{\"a\":true}"}"#;
        let Payload::Hec(ev) = one("{}", jsonl) else {
            panic!()
        };
        assert_eq!(
            ev.body,
            HecBody::Json(
                r#"{"__topic__":"actiontrail_audit_event","__source__":"","event":{"a":true}}"#
                    .into()
            )
        );
        let groups = groups_from_jsonl(jsonl).unwrap();
        for (config, want) in [
            (
                r#"{"output":"file"}"#,
                "config key `output`: `file` is not one of: syslog, hec",
            ),
            (
                r#"{"hostname":"h"}"#,
                "config key `hostname`: only applies with \"output\": \"syslog\"",
            ),
            (
                r#"{"json_fields":{"t":5}}"#,
                "topic `t` must map to a list of field names",
            ),
        ] {
            let err = run::<Json>(config, &groups).unwrap_err();
            assert!(err.contains(want), "{config}: {err}");
        }
    }
}
