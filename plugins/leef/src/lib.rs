//! # `leef`: SLS logs as IBM QRadar LEEF lines
//!
//! Scenario: QRadar should receive SLS logs as LEEF over syslog so its DSM normalises them
//! (event ID and `cat` → QID, `devTime` as the event time, `src`, `usrName`…). A config maps
//! log fields to LEEF attributes; the plugin writes a LEEF 2.0 (default) or 1.0 line with
//! the escaping rules of docs/rendering.md §9 "LEEF" and hands it to the host as the syslog
//! MSG (or as an HEC text event).
//!
//! Sample input (flattened JSONL, one log):
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "sas_login",
//!  "__source__": "10.0.0.1", "client_ip": "203.0.113.7", "user": "alice", "note": "a^b"}
//! ```
//!
//! with config
//!
//! ```text
//! {"header": {"event_id": {"field": "__topic__"}},
//!  "attributes": {"cat": "__topic__", "src": "client_ip", "usrName": "user", "note": "note"},
//!  "hostname": "shipper-01", "app_name": "sls"}
//! ```
//!
//! becomes the RFC 5424 line (as shipper's syslog sink renders it, before framing):
//!
//! ```text
//! <14>1 2023-11-14T22:13:20.123456Z shipper-01 sls - - - LEEF:2.0|Alibaba Cloud|SLS|1.0|sas_login|^|devTime=Nov 14 2023 22:13:20.123 UTC^devTimeFormat=MMM dd yyyy HH:mm:ss.SSS z^cat=sas_login^src=203.0.113.7^usrName=alice^note=a b
//! ```
//!
//! LEEF has no escape mechanism in attribute values: the delimiter, CR and LF inside a value
//! become a space. In the header, `|` is escaped as `\|` and CR/LF become a space.
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
//! | `version` | `"2.0"` | `"2.0"` or `"1.0"` (TAB-delimited, no delimiter field) |
//! | `delimiter` | `"^"` | LEEF 2.0 attribute delimiter: one character or its hex code (`"x09"` = TAB) |
//! | `header.vendor` / `.product` / `.product_version` | `"Alibaba Cloud"` / `"SLS"` / `"1.0"` | header fields |
//! | `header.event_id` | field `__topic__`, default `"sls-log"` | Event ID |
//! | `attributes` | `cat`=`__topic__`, `src`=`__source__` | attribute → field, in this order; an attribute is left out when its field is absent (no default) |
//! | `dev_time` | `true` | write `devTime` (log time, UTC, `MMM dd yyyy HH:mm:ss.SSS z`) and `devTimeFormat` first |
//! | `include_unmapped` | `false` | also write every flattened field the `attributes` do not read, with the key made LEEF-safe (`[A-Za-z0-9_.-]`, others → `_`) |
//! | `output` | `"syslog"` | `"syslog"` (MSG = the LEEF line) or `"hec"` (text event) |
//! | `facility`, `severity`, `hostname`, `app_name`, `proc_id`, `msg_id` | `user`, `info`, unset… | syslog header (`output = "syslog"`) |
//! | `sourcetype`, `source`, `index`, `host` | unset | HEC metadata (`output = "hec"`) |

use std::borrow::Cow;

use shipper_sdk::flat::{FlatValue, for_each};
use shipper_sdk::leef::{self, Delimiter, Header, Line, Version};
use shipper_sdk::mapping::{FieldMap, FieldSpec, Output, StringIs};
use shipper_sdk::time::write_leef_dev_time;
use shipper_sdk::{Config, ConfigError, Emit, Group, Log, Plugin, RecordError};

/// The plugin, built from its config.
#[derive(Debug, Clone)]
pub struct Leef {
    /// LEEF version.
    pub version: Version,
    /// Attribute delimiter (2.0).
    pub delimiter: Delimiter,
    /// Vendor.
    pub vendor: FieldSpec,
    /// Product.
    pub product: FieldSpec,
    /// Product version.
    pub product_version: FieldSpec,
    /// Event ID.
    pub event_id: FieldSpec,
    /// Attribute → field.
    pub attributes: FieldMap,
    /// Write `devTime` + `devTimeFormat`.
    pub dev_time: bool,
    /// Write unmapped fields too.
    pub include_unmapped: bool,
    /// Syslog or HEC.
    pub output: Output,
}

/// `devTimeFormat` for the `devTime` this plugin writes: the SDK's
/// [`shipper_sdk::time::LEEF_DEV_TIME_FORMAT`] plus the zone, `UTC`, so QRadar does not read
/// the time in its own zone.
pub const DEV_TIME_FORMAT: &str = "MMM dd yyyy HH:mm:ss.SSS z";

/// The default delimiter for LEEF 2.0: `^`, rarer in log values than a TAB
/// (docs/rendering.md §9 "LEEF").
pub const DEFAULT_DELIMITER: &str = "^";

fn literal(text: &str) -> FieldSpec {
    FieldSpec::Literal(text.into())
}

/// The default attributes.
pub fn default_attributes() -> FieldMap {
    let f = |name: &str| FieldSpec::Field {
        name: name.into(),
        default: None,
    };
    FieldMap(vec![
        ("cat".into(), f("__topic__")),
        ("src".into(), f("__source__")),
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

impl Plugin for Leef {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        let version = match config.choice("version", &["2.0", "1.0"])? {
            Some("1.0") => Version::V1,
            _ => Version::V2,
        };
        let delimiter = match config.string("delimiter")? {
            None => Delimiter::parse(DEFAULT_DELIMITER).expect("valid default"),
            Some(_) if version == Version::V1 => {
                return Err(ConfigError::key(
                    "delimiter",
                    "LEEF 1.0 always uses TAB; set \"version\": \"2.0\" to choose a delimiter",
                ));
            }
            Some(spec) => Delimiter::parse(&spec).map_err(|e| ConfigError::key("delimiter", e))?,
        };
        let mut header = config.object("header")?;
        let vendor = header_spec(&mut header, "vendor", literal("Alibaba Cloud"))?;
        let product = header_spec(&mut header, "product", literal("SLS"))?;
        let product_version = header_spec(&mut header, "product_version", literal("1.0"))?;
        let event_id = header_spec(
            &mut header,
            "event_id",
            FieldSpec::Field {
                name: "__topic__".into(),
                default: Some("sls-log".into()),
            },
        )?;
        if let Some(h) = header {
            h.finish()?;
        }
        let attributes = FieldMap::from_config(
            config,
            "attributes",
            leef::is_valid_key,
            "LEEF attribute key (letters, digits, `_`, `-`, `.`)",
            default_attributes,
        )?;
        let dev_time = config.bool("dev_time")?.unwrap_or(true);
        let include_unmapped = config.bool("include_unmapped")?.unwrap_or(false);
        let output = Output::from_config(config, false, "app_name")?;
        Ok(Self {
            version,
            delimiter,
            vendor,
            product,
            product_version,
            event_id,
            attributes,
            dev_time,
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

impl Leef {
    /// The LEEF line of one log.
    pub fn line(&self, group: &Group<'_>, log: &Log<'_>) -> String {
        let get = |spec: &'_ FieldSpec| -> String {
            spec.resolve(group, log)
                .map(Cow::into_owned)
                .unwrap_or_default()
        };
        let (vendor, product) = (get(&self.vendor), get(&self.product));
        let (product_version, event_id) = (get(&self.product_version), get(&self.event_id));
        let mut out = String::with_capacity(log.encoded_len() + 160);
        let mut line = Line::new(
            &mut out,
            &Header {
                version: self.version,
                vendor: &vendor,
                product: &product,
                product_version: &product_version,
                event_id: &event_id,
                delimiter: self.delimiter,
            },
        );
        if self.dev_time {
            let mut t = String::with_capacity(32);
            write_leef_dev_time(&mut t, log.timestamp());
            t.push_str(" UTC");
            line.attr("devTime", &t);
            line.attr("devTimeFormat", DEV_TIME_FORMAT);
        }
        for (key, spec) in &self.attributes.0 {
            if let Some(value) = spec.resolve(group, log) {
                line.attr(key, &value);
            }
        }
        if self.include_unmapped {
            let (mut key_buf, mut raw_key) = (String::new(), String::new());
            for_each(group, log, |key, value| {
                let mapped = self
                    .attributes
                    .0
                    .iter()
                    .any(|(_, s)| s.field_name().is_some_and(|n| key.is(n)));
                if mapped {
                    return;
                }
                key_buf.clear();
                raw_key.clear();
                key.push_to(&mut raw_key);
                leef::sanitize_key_into(&mut key_buf, &raw_key);
                match value {
                    FlatValue::Str(s) => line.attr(&key_buf, s),
                    FlatValue::TimeNsPart(ns) => line.attr(&key_buf, &ns.to_string()),
                }
            });
        }
        out
    }
}

shipper_sdk::export!(plugin = Leef);

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{HecBody, Payload};

    const LOGIN: &str = r#"{"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "sas_login", "__source__": "10.0.0.1", "client_ip": "203.0.113.7", "user": "alice", "note": "a^b"}"#;

    fn msgs(config: &str, jsonl: &str) -> Vec<String> {
        let groups = groups_from_jsonl(jsonl).unwrap();
        run::<Leef>(config, &groups)
            .unwrap()
            .into_iter()
            .flat_map(|r| r.unwrap())
            .map(|e| match e.payload {
                Payload::Syslog(m) => m.msg,
                Payload::Hec(e) => match e.body {
                    HecBody::Text(t) | HecBody::Json(t) => t,
                },
                Payload::Raw(_) => panic!("raw"),
            })
            .collect()
    }

    #[test]
    fn the_documented_example() {
        let config = r#"{"header": {"event_id": {"field": "__topic__"}}, "attributes": {"cat": "__topic__", "src": "client_ip", "usrName": "user", "note": "note"}, "hostname": "shipper-01", "app_name": "sls"}"#;
        assert_eq!(
            msgs(config, LOGIN)[0],
            "LEEF:2.0|Alibaba Cloud|SLS|1.0|sas_login|^|devTime=Nov 14 2023 22:13:20.123 UTC^devTimeFormat=MMM dd yyyy HH:mm:ss.SSS z^cat=sas_login^src=203.0.113.7^usrName=alice^note=a b"
        );
    }

    #[test]
    fn leef1_defaults_and_unmapped() {
        let jsonl = r#"{"__time__": 1700000000, "__source__": "10.0.0.1", "__tag__:__hostname__": "h\tx", "msg": "l1\r\nl2"}"#;
        assert_eq!(
            msgs(
                r#"{"version": "1.0", "dev_time": false, "include_unmapped": true}"#,
                jsonl
            )[0],
            "LEEF:1.0|Alibaba Cloud|SLS|1.0|sls-log|cat=\tsrc=10.0.0.1\t__tag_____hostname__=h x\tmsg=l1  l2"
        );
    }

    #[test]
    fn tab_delimiter_and_header_escaping() {
        let config = r#"{"delimiter": "x09", "header": {"product": "S|L\nS"}, "attributes": {"a": "x"}, "dev_time": false}"#;
        assert_eq!(
            msgs(config, r#"{"__time__": 1, "x": "t\tab"}"#)[0],
            "LEEF:2.0|Alibaba Cloud|S\\|L S|1.0|sls-log|x09|a=t ab"
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let groups = groups_from_jsonl(LOGIN).unwrap();
        for (config, want) in [
            (
                r#"{"version": "3.0"}"#,
                "config key `version`: `3.0` is not one of",
            ),
            (
                r#"{"version": "1.0", "delimiter": "^"}"#,
                "config key `delimiter`: LEEF 1.0 always uses TAB",
            ),
            (r#"{"delimiter": "="}"#, "config key `delimiter`"),
            (
                r#"{"attributes": {"a b": "x"}}"#,
                "config key `attributes`: `a b` is not a valid LEEF attribute key",
            ),
            (
                r#"{"header": {"event": "x"}}"#,
                "unknown config key `header.event`",
            ),
            (
                r#"{"dev_time": "yes"}"#,
                "config key `dev_time`: expected true or false",
            ),
        ] {
            let err = run::<Leef>(config, &groups).unwrap_err();
            assert!(err.contains(want), "{config}: {err}");
        }
    }
}
