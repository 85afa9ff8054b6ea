//! # `syslog-kv`: SLS logs as `key=value` syslog messages, the way Alibaba's seed script sends them
//!
//! Scenario: a SIEM that takes syslog (QRadar, ArcSight, rsyslog) was fed by Alibaba's
//! "Ship logs to SIEM" Syslog script (`sync_data.py`). Its loop writes, for each key and
//! value of the official SDK's flattened dict minus `__time__`, `"{sep}{k}={v}"` — the
//! separator comes *before* every pair, the first one included — and sends that as the
//! message with facility/severity/hostname/tag from its settings and the log time.
//!
//! Sample input (flattened JSONL, one log):
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "nginx",
//!  "__source__": "10.0.0.1", "__tag__:__hostname__": "web-1", "status": "200", "uri": "/a?b=c"}
//! ```
//!
//! with config `{"hostname": "shipper-01", "tag": "sls", "facility": "local0"}` becomes the
//! RFC 5424 line (as shipper's syslog sink renders it, before framing):
//!
//! ```text
//! <134>1 2023-11-14T22:13:20.123456Z shipper-01 sls - - - ||__topic__=nginx||__source__=10.0.0.1||__time_ns_part__=('123456789',)||__tag__:__hostname__=web-1||status=200||uri=/a?b=c
//! ```
//!
//! `__time_ns_part__=('123456789',)` is not a typo: the SDK stores that entry as a Python
//! 1-tuple and the seed formats it with `str()`. It appears only when the nanosecond part
//! is non-zero. Values are written as they are (no escaping), exactly like the seed; a value
//! with a newline therefore carries it into the message (use octet-counting framing).
//!
//! ## Config (a JSON object; every key optional; the seed's setting names)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `sep` | `"\|\|"` | written before every `key=value` pair |
//! | `facility` | `user` (1) | number 0..=23 or name (`local0`…) |
//! | `severity` | `info` (6) | number 0..=7 or name |
//! | `hostname` | unset | HOSTNAME; unset = the sink's hostname (the seed used the machine's FQDN) |
//! | `tag` | unset | APP-NAME (`-` when unset, as in the seed) |
//! | `proc_id`, `msg_id` | unset | PROCID / MSGID (the seed sends `-`) |
//!
//! ## Differences from the seed (deliberate)
//!
//! - The timestamp is the log time in UTC with microseconds (the host renders it); the seed
//!   sent whole seconds in the machine's local time zone.
//! - The host renders a proper RFC 5424 header with `-` for structured data; the seed put
//!   the message where STRUCTURED-DATA belongs.

use std::fmt::Write as _;

use shipper_sdk::flat::for_each;
use shipper_sdk::mapping::SyslogTemplate;
use shipper_sdk::{Config, ConfigError, Emit, Group, Log, Plugin, RecordError, SyslogMessage};

/// The seed's default separator.
pub const DEFAULT_SEP: &str = "||";

/// The plugin, built from its config.
#[derive(Debug, Clone)]
pub struct SyslogKv {
    /// Written before every pair.
    pub sep: String,
    /// Header fields.
    pub syslog: SyslogTemplate,
}

impl Default for SyslogKv {
    fn default() -> Self {
        Self {
            sep: DEFAULT_SEP.into(),
            syslog: SyslogTemplate::default(),
        }
    }
}

impl Plugin for SyslogKv {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        let sep = config.string("sep")?.unwrap_or_else(|| DEFAULT_SEP.into());
        let (syslog, _) = SyslogTemplate::from_config(config, "tag")?;
        Ok(Self { sep, syslog })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        Ok(vec![Emit::syslog(self.message(group, log))])
    }
}

impl SyslogKv {
    /// The syslog message of one log.
    pub fn message(&self, group: &Group<'_>, log: &Log<'_>) -> SyslogMessage {
        let mut msg = String::with_capacity(
            log.encoded_len() + group.topic().len() + group.source().len() + 64,
        );
        write_kv(&mut msg, group, log, &self.sep);
        self.syslog.message(msg, log.timestamp())
    }
}

/// Writes `{sep}{k}={v}` for each entry of the flattened log minus `__time__` (the seed's
/// loop, byte for byte).
pub fn write_kv(out: &mut String, group: &Group<'_>, log: &Log<'_>, sep: &str) {
    for_each(group, log, |key, value| {
        out.push_str(sep);
        key.push_to(out);
        out.push('=');
        match value.as_str() {
            Some(s) => out.push_str(s),
            // `('123456789',)`; writing into a String cannot fail.
            None => {
                let _ = write!(out, "{value}");
            }
        }
    });
}

shipper_sdk::export!(plugin = SyslogKv);

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{Payload, Severity, Timestamp};

    fn messages(config: &str, jsonl: &str) -> Vec<SyslogMessage> {
        let groups = groups_from_jsonl(jsonl).unwrap();
        run::<SyslogKv>(config, &groups)
            .unwrap()
            .into_iter()
            .flat_map(|r| r.unwrap())
            .map(|e| match e.payload {
                Payload::Syslog(m) => m,
                other => panic!("not syslog: {other:?}"),
            })
            .collect()
    }

    const NGINX: &str = r#"{"__time__": 1700000000, "__time_ns_part__": [123456789], "__topic__": "nginx", "__source__": "10.0.0.1", "__tag__:__hostname__": "web-1", "status": "200", "uri": "/a?b=c"}"#;

    #[test]
    fn seed_layout_with_the_separator_first() {
        let m = &messages("{}", NGINX)[0];
        assert_eq!(
            m.msg,
            "||__topic__=nginx||__source__=10.0.0.1||__time_ns_part__=('123456789',)||__tag__:__hostname__=web-1||status=200||uri=/a?b=c"
        );
        assert_eq!((m.facility, m.severity), (1, Severity::Informational));
        assert_eq!((m.hostname.as_deref(), m.app_name.as_deref()), (None, None));
        assert_eq!(
            m.timestamp,
            Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            })
        );
    }

    #[test]
    fn config_sets_the_header_and_separator() {
        let m = &messages(
            r#"{"sep":" ","facility":16,"severity":"warning","hostname":"h","tag":"sls"}"#,
            r#"{"__time__": 5, "a": "x=y|z\\w", "b": "", "c": "l1\nl2"}"#,
        )[0];
        assert_eq!(m.msg, " __topic__= __source__= a=x=y|z\\w b= c=l1\nl2");
        assert_eq!((m.facility, m.severity), (16, Severity::Warning));
        assert_eq!(m.hostname.as_deref(), Some("h"));
        assert_eq!(m.app_name.as_deref(), Some("sls"));
        assert_eq!(m.timestamp.unwrap().nanos, 0);
    }

    #[test]
    fn config_errors_name_the_key() {
        let groups = groups_from_jsonl(NGINX).unwrap();
        for (config, want) in [
            (r#"{"sep":1}"#, "config key `sep`: expected a string"),
            (
                r#"{"facility":"nope"}"#,
                "config key `facility`: unknown facility `nope`",
            ),
            (r#"{"program":"x"}"#, "unknown config key `program`"),
        ] {
            let err = run::<SyslogKv>(config, &groups).unwrap_err();
            assert!(err.contains(want), "{config}: {err}");
        }
    }
}
