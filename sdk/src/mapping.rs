//! Config-driven pieces that mapping plugins (CEF, LEEF, JSON, key=value) share: references
//! to log fields ([`FieldSpec`]) and where the result goes ([`Output`]: a syslog message or
//! an HEC event, with their metadata from config).
//!
//! Field names resolve against the flattened view the seed scripts see
//! ([`crate::flat::lookup`]: contents, `__topic__`, `__source__`, `__tag__:<k>`,
//! `__time_ns_part__`), plus `__time__` (log seconds), `__project__`, `__logstore__` and
//! `__shard__` (the batch).
//!
//! Does not own: the line formats themselves (`cef`, `leef`, `json`).

use std::borrow::Cow;

use crate::config::{Config, ConfigError};
use crate::flat::{FlatValue, lookup};
use crate::json::Value;
use crate::{Emit, Group, HecEvent, Log, Severity, SyslogMessage, Timestamp};

/// The value of field `name` for one log (see the module docs for the names).
pub fn resolve_field<'a>(group: &Group<'a>, log: &Log<'a>, name: &str) -> Option<Cow<'a, str>> {
    match lookup(group, log, name) {
        Some(FlatValue::Str(s)) => Some(Cow::Borrowed(s)),
        Some(FlatValue::TimeNsPart(ns)) => Some(Cow::Owned(ns.to_string())),
        None => match name {
            "__time__" => Some(Cow::Owned(log.time().to_string())),
            "__project__" => Some(Cow::Borrowed(group.project())),
            "__logstore__" => Some(Cow::Borrowed(group.logstore())),
            "__shard__" => Some(Cow::Owned(group.shard().to_string())),
            _ => None,
        },
    }
}

/// Per-topic lists of fields whose text is JSON to embed (the seed HEC script's
/// `json_topic = {"actiontrail_audit_event": ["event"]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFields(Vec<(String, Vec<String>)>);

impl Default for JsonFields {
    /// The seed's table: the `event` field of `actiontrail_audit_event` logs.
    fn default() -> Self {
        JsonFields(vec![(
            "actiontrail_audit_event".into(),
            vec!["event".into()],
        )])
    }
}

impl JsonFields {
    /// Reads config key `key`: an object of topic → list of field names (a single name is
    /// a one-element list). Absent: the seed's default; `{}`: none.
    pub fn from_config(config: &mut Config, key: &'static str) -> Result<Self, ConfigError> {
        let path = config.path(key);
        let Some(value) = config.value(key) else {
            return Ok(JsonFields::default());
        };
        let err = |msg: String| ConfigError::key(&path, msg);
        let members = value.as_object().ok_or_else(|| {
            err(format!(
                "expected an object of topic → list of field names, got {}",
                value.kind()
            ))
        })?;
        members
            .iter()
            .map(|(topic, fields)| {
                let names = match fields {
                    Value::String(s) => Some(vec![s.clone()]),
                    Value::Array(items) => items
                        .iter()
                        .map(|f| f.as_str().map(str::to_owned))
                        .collect(),
                    _ => None,
                };
                names.map(|n| (topic.clone(), n)).ok_or_else(|| {
                    err(format!(
                        "topic `{topic}` must map to a list of field names (strings), got {fields}"
                    ))
                })
            })
            .collect::<Result<_, _>>()
            .map(JsonFields)
    }

    /// The fields for this log's topic: keyed by the flattened `__topic__` (a content named
    /// `__topic__` overrides the group's, as in the seed's dict).
    #[inline]
    pub fn for_log(&self, group: &Group<'_>, log: &Log<'_>) -> &[String] {
        if self.0.is_empty() {
            return &[];
        }
        // A plain log has no `__` content key, so no `__topic__` to look for.
        let topic = if log.plain_keys() {
            group.topic()
        } else {
            log.get("__topic__").unwrap_or(group.topic())
        };
        self.0
            .iter()
            .find(|(t, _)| t == topic)
            .map_or(&[], |(_, f)| f.as_slice())
    }
}

/// How a plain JSON string is read by [`FieldSpec::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringIs {
    /// `"SLS"` is the literal text (header fields).
    Literal,
    /// `"client_ip"` names a field (attribute maps).
    FieldName,
}

/// Where a value comes from: fixed text, or a log field with an optional fallback.
///
/// Config forms: a string (literal or field name, per [`StringIs`]),
/// `{"field": "name", "default": "text"}` or `{"value": "text"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSpec {
    /// Fixed text.
    Literal(String),
    /// A field's value; `default` when the log lacks it (`None`: the value is absent).
    Field {
        /// Field name (flattened form).
        name: String,
        /// Fallback text.
        default: Option<String>,
    },
}

impl FieldSpec {
    /// Parses one spec; `path` names it in errors (e.g. `header.name`).
    pub fn parse(value: &Value, path: &str, string_is: StringIs) -> Result<FieldSpec, ConfigError> {
        let bad = || {
            ConfigError::key(
                path,
                format_args!(
                    "expected a string, {{\"field\": \"name\", \"default\": \"text\"}} or \
                     {{\"value\": \"text\"}}, got {value}"
                ),
            )
        };
        match value {
            Value::String(s) => Ok(match string_is {
                StringIs::Literal => FieldSpec::Literal(s.clone()),
                StringIs::FieldName => FieldSpec::Field {
                    name: s.clone(),
                    default: None,
                },
            }),
            Value::Object(members) => {
                let text = |key: &str| -> Result<Option<String>, ConfigError> {
                    match value.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.clone())),
                        Some(_) => Err(bad()),
                    }
                };
                if members
                    .iter()
                    .any(|(k, _)| !matches!(k.as_str(), "field" | "default" | "value"))
                {
                    return Err(bad());
                }
                match (text("field")?, text("default")?, text("value")?) {
                    (Some(name), default, None) => Ok(FieldSpec::Field { name, default }),
                    (None, None, Some(v)) => Ok(FieldSpec::Literal(v)),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    /// The value for one log: the literal; or the field's value, with the default standing
    /// in when the field is absent *or empty*; `None` when the field is absent and there is
    /// no default.
    #[inline]
    pub fn resolve<'a>(&'a self, group: &Group<'a>, log: &Log<'a>) -> Option<Cow<'a, str>> {
        match self {
            FieldSpec::Literal(s) => Some(Cow::Borrowed(s)),
            FieldSpec::Field { name, default } => {
                match (resolve_field(group, log, name), default) {
                    (Some(v), Some(d)) if v.is_empty() => Some(Cow::Borrowed(d)),
                    (Some(v), _) => Some(v),
                    (None, d) => d.as_deref().map(Cow::Borrowed),
                }
            }
        }
    }

    /// The field this spec reads, if any.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            FieldSpec::Literal(_) => None,
            FieldSpec::Field { name, .. } => Some(name),
        }
    }
}

/// An ordered map of output keys (CEF extension keys, LEEF attributes) to [`FieldSpec`]s,
/// read from a config object whose values name fields (`{"src": "client_ip"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap(pub Vec<(String, FieldSpec)>);

impl FieldMap {
    /// Reads config key `key`; `valid_key` checks each output key (`what` names the kind of
    /// key in errors, e.g. "CEF extension key"). Absent: `default`.
    pub fn from_config(
        config: &mut Config,
        key: &'static str,
        valid_key: fn(&str) -> bool,
        what: &str,
        default: impl FnOnce() -> FieldMap,
    ) -> Result<FieldMap, ConfigError> {
        let path = config.path(key);
        let Some(members) = config.members(key)? else {
            return Ok(default());
        };
        members
            .iter()
            .map(|(k, v)| {
                if !valid_key(k) {
                    return Err(ConfigError::key(
                        &path,
                        format_args!("`{k}` is not a valid {what}"),
                    ));
                }
                let spec = FieldSpec::parse(v, &format!("{path}.{k}"), StringIs::FieldName)?;
                Ok((k.clone(), spec))
            })
            .collect::<Result<_, _>>()
            .map(FieldMap)
    }

    /// Whether a spec of this map reads field `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.0.iter().any(|(_, s)| s.field_name() == Some(name))
    }
}

/// Syslog header fields from config, applied to every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTemplate {
    /// Facility 0..=23 (config: number or name, default `user`).
    pub facility: u8,
    /// Severity (config: number 0..=7 or name, default `info`).
    pub severity: Severity,
    /// HOSTNAME (`None`: the sink's hostname).
    pub hostname: Option<String>,
    /// APP-NAME (`None`: `-`).
    pub app_name: Option<String>,
    /// PROCID.
    pub proc_id: Option<String>,
    /// MSGID.
    pub msg_id: Option<String>,
}

impl Default for SyslogTemplate {
    fn default() -> Self {
        Self {
            facility: crate::syslog::DEFAULT_FACILITY,
            severity: Severity::Informational,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
        }
    }
}

fn facility(config: &mut Config, key: &'static str) -> Result<Option<u8>, ConfigError> {
    let path = config.path(key);
    match config.value(key) {
        None => Ok(None),
        Some(Value::String(name)) => crate::syslog::facility_from_name(&name)
            .map(Some)
            .ok_or_else(|| {
                ConfigError::key(
                    &path,
                    format_args!(
                        "unknown facility `{name}`; use 0..=23 or one of: {}",
                        crate::syslog::facility_names()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 23 => Ok(Some(n as u8)),
            _ => Err(ConfigError::key(
                &path,
                format_args!("expected a facility number 0..=23 or a name, got {v}"),
            )),
        },
    }
}

fn severity(config: &mut Config, key: &'static str) -> Result<Option<Severity>, ConfigError> {
    let path = config.path(key);
    match config.value(key) {
        None => Ok(None),
        Some(Value::String(name)) => Severity::from_name(&name).map(Some).ok_or_else(|| {
            ConfigError::key(
                &path,
                format_args!(
                    "unknown severity `{name}`; use 0..=7 or one of: {}",
                    Severity::names().collect::<Vec<_>>().join(", ")
                ),
            )
        }),
        Some(v) => match v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .and_then(Severity::from_code)
        {
            Some(s) => Ok(Some(s)),
            None => Err(ConfigError::key(
                &path,
                format_args!("expected a severity number 0..=7 or a name, got {v}"),
            )),
        },
    }
}

fn text(config: &mut Config, key: &'static str) -> Result<Option<String>, ConfigError> {
    Ok(config.string(key)?.filter(|s| !s.is_empty()))
}

impl SyslogTemplate {
    /// Reads `facility`, `severity`, `hostname`, `proc_id`, `msg_id` and the APP-NAME from
    /// `app_name_key` (`app_name`, or `tag` for the seed's syslog settings). Empty strings
    /// count as unset. Returns the template and the keys that were set.
    pub fn from_config(
        config: &mut Config,
        app_name_key: &'static str,
    ) -> Result<(Self, Vec<&'static str>), ConfigError> {
        let t = SyslogTemplate {
            facility: facility(config, "facility")?.unwrap_or(crate::syslog::DEFAULT_FACILITY),
            severity: severity(config, "severity")?.unwrap_or(Severity::Informational),
            hostname: text(config, "hostname")?,
            app_name: text(config, app_name_key)?,
            proc_id: text(config, "proc_id")?,
            msg_id: text(config, "msg_id")?,
        };
        let d = SyslogTemplate::default();
        let set = [
            ("facility", t.facility != d.facility),
            ("severity", t.severity != d.severity),
            ("hostname", t.hostname.is_some()),
            (app_name_key, t.app_name.is_some()),
            ("proc_id", t.proc_id.is_some()),
            ("msg_id", t.msg_id.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        Ok((t, set))
    }

    /// A message with this template's header fields.
    #[inline]
    pub fn message(&self, msg: String, timestamp: Timestamp) -> SyslogMessage {
        SyslogMessage {
            facility: self.facility,
            severity: self.severity,
            timestamp: Some(timestamp),
            hostname: self.hostname.clone(),
            app_name: self.app_name.clone(),
            proc_id: self.proc_id.clone(),
            msg_id: self.msg_id.clone(),
            structured_data: Vec::new(),
            msg,
        }
    }
}

/// HEC metadata from config, applied to every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HecTemplate {
    /// HEC `sourcetype`.
    pub sourcetype: Option<String>,
    /// HEC `source`.
    pub source: Option<String>,
    /// HEC `index`.
    pub index: Option<String>,
    /// HEC `host`.
    pub host: Option<String>,
}

impl HecTemplate {
    /// Reads `sourcetype`, `source`, `index`, `host` (empty strings count as unset).
    /// Returns the template and the keys that were set.
    pub fn from_config(config: &mut Config) -> Result<(Self, Vec<&'static str>), ConfigError> {
        let t = HecTemplate {
            sourcetype: text(config, "sourcetype")?,
            source: text(config, "source")?,
            index: text(config, "index")?,
            host: text(config, "host")?,
        };
        let set = [
            ("sourcetype", t.sourcetype.is_some()),
            ("source", t.source.is_some()),
            ("index", t.index.is_some()),
            ("host", t.host.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        Ok((t, set))
    }

    /// Copies the metadata into `event`.
    #[inline]
    pub fn apply(&self, mut event: HecEvent) -> HecEvent {
        event.sourcetype.clone_from(&self.sourcetype);
        event.source.clone_from(&self.source);
        event.index.clone_from(&self.index);
        event.host.clone_from(&self.host);
        event
    }
}

/// Where a plugin's text goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A syslog message whose MSG is the text.
    Syslog(SyslogTemplate),
    /// An HEC event whose `event` is the text (a string, or JSON for [`Output::emit_json`]).
    Hec(HecTemplate),
}

impl Output {
    /// Reads `output` (`"syslog"` or `"hec"`, default `default_hec ? hec : syslog`) and the
    /// chosen template's keys; a key of the other template is refused with a message saying
    /// which `output` it belongs to.
    pub fn from_config(
        config: &mut Config,
        default_hec: bool,
        app_name_key: &'static str,
    ) -> Result<Output, ConfigError> {
        let hec = match config.choice("output", &["syslog", "hec"])? {
            Some(o) => o == "hec",
            None => default_hec,
        };
        let (syslog, syslog_keys) = SyslogTemplate::from_config(config, app_name_key)?;
        let (hec_t, hec_keys) = HecTemplate::from_config(config)?;
        let (output, stray, wanted) = if hec {
            (Output::Hec(hec_t), syslog_keys, "syslog")
        } else {
            (Output::Syslog(syslog), hec_keys, "hec")
        };
        match stray.first() {
            Some(key) => Err(ConfigError::key(
                &config.path(key),
                format_args!("only applies with \"output\": \"{wanted}\""),
            )),
            None => Ok(output),
        }
    }

    /// Emits `text` (a CEF/LEEF/key=value line) at `time`: as the syslog MSG, or as an HEC
    /// text event.
    #[inline]
    pub fn emit_text(&self, text: String, time: Timestamp) -> Emit {
        match self {
            Output::Syslog(t) => Emit::syslog(t.message(text, time)),
            Output::Hec(t) => Emit::hec(t.apply(HecEvent::text(text).with_time(time))),
        }
    }

    /// Emits the JSON text `json` at `time`: as the syslog MSG, or as an HEC JSON event.
    #[inline]
    pub fn emit_json(&self, json: String, time: Timestamp) -> Emit {
        match self {
            Output::Syslog(t) => Emit::syslog(t.message(json, time)),
            Output::Hec(t) => Emit::hec(t.apply(HecEvent::json(json).with_time(time))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchInfo, Payload};

    fn batch() -> BatchInfo {
        BatchInfo {
            project: "proj".into(),
            logstore: "store".into(),
            shard: 3,
            received: Timestamp {
                seconds: 0,
                nanos: 0,
            },
        }
    }

    #[test]
    fn field_specs() {
        let p = |text: &str, s| FieldSpec::parse(&Value::parse(text).unwrap(), "k", s);
        assert_eq!(
            p("\"SLS\"", StringIs::Literal).unwrap(),
            FieldSpec::Literal("SLS".into())
        );
        assert_eq!(
            p("\"ip\"", StringIs::FieldName).unwrap(),
            FieldSpec::Field {
                name: "ip".into(),
                default: None
            }
        );
        assert_eq!(
            p(r#"{"field":"a","default":"d"}"#, StringIs::Literal).unwrap(),
            FieldSpec::Field {
                name: "a".into(),
                default: Some("d".into())
            }
        );
        assert_eq!(
            p(r#"{"value":"v"}"#, StringIs::FieldName).unwrap(),
            FieldSpec::Literal("v".into())
        );
        for bad in [
            "1",
            r#"{"field":1}"#,
            r#"{"feld":"a"}"#,
            r#"{"field":"a","value":"b"}"#,
            "{}",
        ] {
            let e = p(bad, StringIs::Literal).unwrap_err().to_string();
            assert!(
                e.starts_with("config key `k`: expected a string"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn resolution_covers_meta_and_batch_fields() {
        let b = batch();
        let tags = [("host", "h1")];
        let g = Group::new(&b, "topic", "src", &tags);
        let contents = [("ip", "1.2.3.4")];
        let log = Log::new(1_700_000_000, Some(42), &contents);
        let r = |name: &str| resolve_field(&g, &log, name).map(Cow::into_owned);
        assert_eq!(r("ip").as_deref(), Some("1.2.3.4"));
        assert_eq!(r("__topic__").as_deref(), Some("topic"));
        assert_eq!(r("__tag__:host").as_deref(), Some("h1"));
        assert_eq!(r("__time_ns_part__").as_deref(), Some("42"));
        assert_eq!(r("__time__").as_deref(), Some("1700000000"));
        assert_eq!(r("__project__").as_deref(), Some("proj"));
        assert_eq!(r("__logstore__").as_deref(), Some("store"));
        assert_eq!(r("__shard__").as_deref(), Some("3"));
        assert_eq!(r("nope"), None);
        let spec = FieldSpec::Field {
            name: "nope".into(),
            default: Some("dflt".into()),
        };
        assert_eq!(spec.resolve(&g, &log).as_deref(), Some("dflt"));
        let empty = [("e", "")];
        let log = Log::new(1, None, &empty);
        let with_default = FieldSpec::Field {
            name: "e".into(),
            default: Some("d".into()),
        };
        let without = FieldSpec::Field {
            name: "e".into(),
            default: None,
        };
        assert_eq!(with_default.resolve(&g, &log).as_deref(), Some("d"));
        assert_eq!(without.resolve(&g, &log).as_deref(), Some(""));
    }

    #[test]
    fn field_maps_keep_order_and_check_keys() {
        let mut c =
            Config::parse(r#"{"m":{"src":"ip","msg":{"value":"x"},"a":{"field":"f"}}}"#).unwrap();
        let m = FieldMap::from_config(&mut c, "m", crate::cef::is_valid_ext_key, "CEF key", || {
            FieldMap(Vec::new())
        })
        .unwrap();
        let keys: Vec<_> = m.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["src", "msg", "a"]);
        assert!(m.reads("ip") && m.reads("f") && !m.reads("x"));
        let mut c = Config::parse(r#"{"m":{"bad key":"ip"}}"#).unwrap();
        let e = FieldMap::from_config(&mut c, "m", crate::cef::is_valid_ext_key, "CEF key", || {
            FieldMap(Vec::new())
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key `m`: `bad key` is not a valid CEF key"
        );
        let mut c = Config::parse(r#"{"m":{"k":5}}"#).unwrap();
        let e = FieldMap::from_config(&mut c, "m", |_| true, "key", || FieldMap(Vec::new()));
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("config key `m.k`: expected")
        );
    }

    #[test]
    fn json_fields_by_topic() {
        let b = batch();
        let g = Group::new(&b, "t1", "", &[]);
        let log = Log::new(1, None, &[]);
        let parse = |text: &str| {
            let mut c = Config::parse(text).unwrap();
            JsonFields::from_config(&mut c, "json_fields")
        };
        let f = parse(r#"{"json_fields":{"t1":["a","b"],"t2":"c"}}"#).unwrap();
        assert_eq!(f.for_log(&g, &log), ["a", "b"]);
        let overridden = [("__topic__", "t2")];
        assert_eq!(f.for_log(&g, &Log::new(1, None, &overridden)), ["c"]);
        assert!(
            parse("{}").unwrap().for_log(&g, &log).is_empty(),
            "default is actiontrail only"
        );
        assert!(
            parse(r#"{"json_fields":{}}"#)
                .unwrap()
                .for_log(&g, &log)
                .is_empty()
        );
        for (bad, want) in [
            (r#"{"json_fields":["a"]}"#, "expected an object"),
            (
                r#"{"json_fields":{"t":[1]}}"#,
                "topic `t` must map to a list",
            ),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("config key `json_fields`") && e.contains(want),
                "{e}"
            );
        }
    }

    #[test]
    fn outputs() {
        let mut c =
            Config::parse(r#"{"facility":"local0","severity":3,"hostname":"h","app_name":""}"#)
                .unwrap();
        let o = Output::from_config(&mut c, false, "app_name").unwrap();
        c.finish().unwrap();
        let ts = Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let Payload::Syslog(m) = o.emit_text("line".into(), ts).payload else {
            panic!()
        };
        assert_eq!((m.facility, m.severity), (16, Severity::Error));
        assert_eq!(m.hostname.as_deref(), Some("h"));
        assert_eq!(m.app_name, None);

        let mut c = Config::parse(r#"{"output":"hec","sourcetype":"st"}"#).unwrap();
        let o = Output::from_config(&mut c, false, "app_name").unwrap();
        let Payload::Hec(e) = o.emit_json("{}".into(), ts).payload else {
            panic!()
        };
        assert_eq!(e.sourcetype.as_deref(), Some("st"));

        for (config, want) in [
            (
                r#"{"output":"hec","facility":"local1"}"#,
                "config key `facility`: only applies with \"output\": \"syslog\"",
            ),
            (
                r#"{"index":"i"}"#,
                "config key `index`: only applies with \"output\": \"hec\"",
            ),
            (r#"{"facility":"local9"}"#, "unknown facility `local9`"),
            (r#"{"facility":24}"#, "expected a facility number 0..=23"),
            (r#"{"severity":"loud"}"#, "unknown severity `loud`"),
            (r#"{"severity":8}"#, "expected a severity number 0..=7"),
        ] {
            let mut c = Config::parse(config).unwrap();
            let e = Output::from_config(&mut c, false, "app_name")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{config}: {e}");
        }
    }
}
