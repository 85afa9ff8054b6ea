//! # `cef`: SLS logs as ArcSight CEF lines
//!
//! Scenario: an ArcSight (or any CEF-speaking SIEM: Sentinel's CEF connector, LogRhythm)
//! should receive SLS logs as CEF over syslog, with the vendor/product/event fields and the
//! extension keys the SOC's parsers expect. A config maps log fields to CEF keys; the
//! plugin escapes everything per the CEF spec (docs/rendering.md §8 "CEF") and hands the
//! line to the host as the syslog MSG (or as an HEC text event).
//!
//! Sample input (flattened JSONL, one log):
//!
//! ```text
//! {"__time__": 1700000000, "__topic__": "sas_login", "__source__": "10.0.0.1",
//!  "client_ip": "203.0.113.7", "user": "alice", "result": "fail", "reason": "bad password=yes"}
//! ```
//!
//! with config
//!
//! ```text
//! {"header": {"event_class_id": {"field": "__topic__"}, "name": {"value": "Console login"},
//!             "severity": {"field": "sev", "default": "5"}},
//!  "extension": {"src": "client_ip", "suser": "user", "outcome": "result", "reason": "reason"},
//!  "hostname": "shipper-01", "app_name": "sls"}
//! ```
//!
//! becomes the RFC 5424 line (as shipper's syslog sink renders it, before framing):
//!
//! ```text
//! <14>1 2023-11-14T22:13:20Z shipper-01 sls - - - CEF:0|Alibaba Cloud|SLS|1.0|sas_login|Console login|5|rt=1700000000000 src=203.0.113.7 suser=alice outcome=fail reason=bad password\=yes
//! ```
//!
//! ## Config (a JSON object; every key optional)
//!
//! Values that name a field accept a field name (contents, `__topic__`, `__source__`,
//! `__tag__:<k>`, `__time__`, `__project__`, `__logstore__`, `__shard__`),
//! `{"field": "name", "default": "text"}` (the default also covers an empty value) or
//! `{"value": "fixed text"}`. In `header`, a plain string is fixed text.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `version` | `0` | `CEF:0` or `CEF:1` |
//! | `header.vendor` / `.product` / `.device_version` | `"Alibaba Cloud"` / `"SLS"` / `"1.0"` | Device Vendor / Product / Version |
//! | `header.event_class_id` | field `__topic__`, default `"sls-log"` | Device Event Class ID |
//! | `header.name` | field `__topic__`, default `"SLS log"` | Name |
//! | `header.severity` | `"Unknown"` | Severity: `0`–`10` or `Unknown`/`Low`/`Medium`/`High`/`Very-High` |
//! | `extension` | `dvchost`=`__source__`, `cs1Label`=`project`, `cs1`=`__project__`, `cs2Label`=`logstore`, `cs2`=`__logstore__`, `cs3Label`=`topic`, `cs3`=`__topic__` | CEF key → field, in this order; a pair is left out when its field is absent (no default) |
//! | `time_key` | `"rt"` | extension key that carries the log time in epoch milliseconds, written first; `""` leaves it out |
//! | `include_unmapped` | `false` | also write every flattened field the `extension` does not read, as `key=value` with the key made CEF-safe (`[A-Za-z0-9_]`, others → `_`) |
//! | `output` | `"syslog"` | `"syslog"` (MSG = the CEF line) or `"hec"` (text event) |
//! | `facility`, `severity`, `hostname`, `app_name`, `proc_id`, `msg_id` | `user`, `info`, unset… | syslog header (`output = "syslog"`) |
//! | `sourcetype`, `source`, `index`, `host` | unset | HEC metadata (`output = "hec"`) |

use std::borrow::Cow;

use shipper_sdk::cef::{self, Extension, Header};
use shipper_sdk::flat::{FlatValue, for_each};
use shipper_sdk::mapping::{FieldMap, FieldSpec, Output, StringIs};
use shipper_sdk::{Config, ConfigError, Emit, Group, Log, Plugin, RecordError};

/// The plugin, built from its config.
#[derive(Debug, Clone)]
pub struct Cef {
    /// CEF format version (0 or 1).
    pub version: u8,
    /// Device Vendor.
    pub vendor: FieldSpec,
    /// Device Product.
    pub product: FieldSpec,
    /// Device Version.
    pub device_version: FieldSpec,
    /// Device Event Class ID.
    pub event_class_id: FieldSpec,
    /// Name.
    pub name: FieldSpec,
    /// Severity.
    pub severity: FieldSpec,
    /// Extension key → field.
    pub extension: FieldMap,
    /// Key for the log time in epoch ms (`None`: not written).
    pub time_key: Option<String>,
    /// Write unmapped fields too.
    pub include_unmapped: bool,
    /// Syslog or HEC.
    pub output: Output,
}

fn field(name: &str, default: &str) -> FieldSpec {
    FieldSpec::Field {
        name: name.into(),
        default: Some(default.into()),
    }
}

fn literal(text: &str) -> FieldSpec {
    FieldSpec::Literal(text.into())
}

/// The default extension (docs/rendering.md §8 "CEF").
pub fn default_extension() -> FieldMap {
    let f = |name: &str| FieldSpec::Field {
        name: name.into(),
        default: None,
    };
    FieldMap(vec![
        ("dvchost".into(), f("__source__")),
        ("cs1Label".into(), literal("project")),
        ("cs1".into(), f("__project__")),
        ("cs2Label".into(), literal("logstore")),
        ("cs2".into(), f("__logstore__")),
        ("cs3Label".into(), literal("topic")),
        ("cs3".into(), f("__topic__")),
    ])
}

fn header_spec(
    header: &mut Option<Config>,
    key: &'static str,
    default: FieldSpec,
) -> Result<FieldSpec, ConfigError> {
    let Some(h) = header else {
        return Ok(default);
    };
    let path = h.path(key);
    match h.value(key) {
        None => Ok(default),
        Some(v) => FieldSpec::parse(&v, &path, StringIs::Literal),
    }
}

impl Plugin for Cef {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        let version = config.uint("version", 1)?.unwrap_or(0) as u8;
        let mut header = config.object("header")?;
        let vendor = header_spec(&mut header, "vendor", literal("Alibaba Cloud"))?;
        let product = header_spec(&mut header, "product", literal("SLS"))?;
        let device_version = header_spec(&mut header, "device_version", literal("1.0"))?;
        let event_class_id =
            header_spec(&mut header, "event_class_id", field("__topic__", "sls-log"))?;
        let name = header_spec(&mut header, "name", field("__topic__", "SLS log"))?;
        let severity = header_spec(&mut header, "severity", literal("Unknown"))?;
        if let Some(h) = header {
            h.finish()?;
        }
        let extension = FieldMap::from_config(
            config,
            "extension",
            cef::is_valid_ext_key,
            "CEF extension key (letters, digits, `_`)",
            default_extension,
        )?;
        let time_key = match config.string("time_key")? {
            None => Some("rt".to_string()),
            Some(k) if k.is_empty() => None,
            Some(k) if cef::is_valid_ext_key(&k) => Some(k),
            Some(k) => {
                return Err(ConfigError::key(
                    "time_key",
                    format_args!("`{k}` is not a valid CEF extension key (letters, digits, `_`)"),
                ));
            }
        };
        let include_unmapped = config.bool("include_unmapped")?.unwrap_or(false);
        let output = Output::from_config(config, false, "app_name")?;
        Ok(Self {
            version,
            vendor,
            product,
            device_version,
            event_class_id,
            name,
            severity,
            extension,
            time_key,
            include_unmapped,
            output,
        })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        Ok(vec![
            self.output
                .emit_text(self.line(group, log), log.timestamp()),
        ])
    }
}

impl Cef {
    /// The CEF line of one log.
    pub fn line(&self, group: &Group<'_>, log: &Log<'_>) -> String {
        let get = |spec: &'_ FieldSpec| -> String {
            spec.resolve(group, log)
                .map(Cow::into_owned)
                .unwrap_or_default()
        };
        let (vendor, product, device_version) = (
            get(&self.vendor),
            get(&self.product),
            get(&self.device_version),
        );
        let (event_class_id, name, severity) = (
            get(&self.event_class_id),
            get(&self.name),
            get(&self.severity),
        );
        let mut line = String::with_capacity(log.encoded_len() + 160);
        cef::write_header(
            &mut line,
            &Header {
                version: self.version,
                vendor: &vendor,
                product: &product,
                device_version: &device_version,
                event_class_id: &event_class_id,
                name: &name,
                severity: &severity,
            },
        );
        let mut ext = Extension::new(&mut line);
        if let Some(key) = &self.time_key {
            ext.pair(key, &log.timestamp().epoch_millis().to_string());
        }
        for (key, spec) in &self.extension.0 {
            if let Some(value) = spec.resolve(group, log) {
                ext.pair(key, &value);
            }
        }
        if self.include_unmapped {
            let (mut key_buf, mut raw_key) = (String::new(), String::new());
            for_each(group, log, |key, value| {
                let mapped = self
                    .extension
                    .0
                    .iter()
                    .any(|(_, s)| s.field_name().is_some_and(|n| key.is(n)));
                if mapped {
                    return;
                }
                key_buf.clear();
                raw_key.clear();
                key.push_to(&mut raw_key);
                cef::sanitize_ext_key_into(&mut key_buf, &raw_key);
                match value {
                    FlatValue::Str(s) => ext.pair(&key_buf, s),
                    FlatValue::TimeNsPart(ns) => ext.pair(&key_buf, &ns.to_string()),
                }
            });
        }
        line
    }
}

shipper_sdk::export!(plugin = Cef);

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{HecBody, Payload};

    const LOGIN: &str = r#"{"__time__": 1700000000, "__topic__": "sas_login", "__source__": "10.0.0.1", "client_ip": "203.0.113.7", "user": "alice", "result": "fail", "reason": "bad password=yes"}"#;

    fn payloads(config: &str, jsonl: &str) -> Vec<Payload> {
        let groups = groups_from_jsonl(jsonl).unwrap();
        run::<Cef>(config, &groups)
            .unwrap()
            .into_iter()
            .flat_map(|r| r.unwrap())
            .map(|e| e.payload)
            .collect()
    }

    fn msg(p: &Payload) -> &str {
        match p {
            Payload::Syslog(m) => &m.msg,
            Payload::Hec(e) => match &e.body {
                HecBody::Text(t) | HecBody::Json(t) => t,
            },
            Payload::Raw(_) => panic!("raw"),
        }
    }

    #[test]
    fn the_documented_example() {
        let config = r#"{"header": {"event_class_id": {"field": "__topic__"}, "name": {"value": "Console login"}, "severity": {"field": "sev", "default": "5"}}, "extension": {"src": "client_ip", "suser": "user", "outcome": "result", "reason": "reason"}, "hostname": "shipper-01", "app_name": "sls"}"#;
        let p = payloads(config, LOGIN);
        assert_eq!(
            msg(&p[0]),
            r"CEF:0|Alibaba Cloud|SLS|1.0|sas_login|Console login|5|rt=1700000000000 src=203.0.113.7 suser=alice outcome=fail reason=bad password\=yes"
        );
        let Payload::Syslog(m) = &p[0] else { panic!() };
        assert_eq!(m.hostname.as_deref(), Some("shipper-01"));
    }

    #[test]
    fn defaults_and_escaping() {
        let jsonl = r#"{"__time__": 1700000000, "__time_ns_part__": [5000000], "__source__": "h|1", "x": "a\\b\nc"}"#;
        let p = payloads(r#"{"include_unmapped": true}"#, jsonl);
        assert_eq!(
            msg(&p[0]),
            r"CEF:0|Alibaba Cloud|SLS|1.0|sls-log|SLS log|Unknown|rt=1700000000005 dvchost=h|1 cs1Label=project cs1=sample-project cs2Label=logstore cs2=sample-logstore cs3Label=topic cs3= __time_ns_part__=5000000 x=a\\b\nc"
        );
    }

    #[test]
    fn header_escaping_and_hec_output() {
        let config = r#"{"version": 1, "header": {"vendor": "A|B\\C", "name": {"field": "n"}}, "extension": {}, "time_key": "", "output": "hec", "index": "cef"}"#;
        let p = payloads(config, r#"{"__time__": 1, "n": "multi\nline=ok"}"#);
        assert_eq!(
            msg(&p[0]),
            r"CEF:1|A\|B\\C|SLS|1.0|sls-log|multi line=ok|Unknown|"
        );
        let Payload::Hec(e) = &p[0] else { panic!() };
        assert_eq!(e.index.as_deref(), Some("cef"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let groups = groups_from_jsonl(LOGIN).unwrap();
        for (config, want) in [
            (
                r#"{"extension": {"bad key": "x"}}"#,
                "config key `extension`: `bad key` is not a valid CEF extension key",
            ),
            (
                r#"{"extension": {"src": 5}}"#,
                "config key `extension.src`: expected",
            ),
            (
                r#"{"header": {"vendr": "x"}}"#,
                "unknown config key `header.vendr`",
            ),
            (
                r#"{"header": {"name": 5}}"#,
                "config key `header.name`: expected",
            ),
            (
                r#"{"version": 2}"#,
                "config key `version`: expected an integer from 0 to 1",
            ),
            (r#"{"time_key": "r t"}"#, "config key `time_key`"),
            (
                r#"{"sourcetype": "x"}"#,
                "only applies with \"output\": \"hec\"",
            ),
        ] {
            let err = run::<Cef>(config, &groups).unwrap_err();
            assert!(err.contains(want), "{config}: {err}");
        }
    }
}
