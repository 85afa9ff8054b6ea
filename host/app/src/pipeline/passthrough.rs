//! The built-in format of the `passthrough` failure policy: while the plugin crash-loops and
//! no rollback is possible, each log is shipped as its flattened JSON form (the keys the
//! official SDK gives it, docs/sls-protocol.md "Flattened logs") with its own time, so the
//! SIEM keeps receiving data.

use std::ops::Range;

use shipper_runtime as rt;
use shipper_sinks::SinkKind;
use shipper_sls::flat;
use shipper_sls::proto::LogGroupView;

use super::format::LogOutcome;

/// Syslog facility of passthrough messages: 1, user-level (RFC 5424 §6.2.1).
const FACILITY_USER: u8 = 1;

/// Logs `range` of `view` in the built-in JSON format, as events for `sinks` (name and
/// kind of each sink the plugin serves): one emit for all when they are of one kind, else
/// one routed emit per sink.
pub fn format(
    view: &LogGroupView,
    range: Range<usize>,
    sinks: &[(String, SinkKind)],
) -> Vec<(usize, LogOutcome)> {
    let one_kind = sinks.windows(2).all(|w| w[0].1 == w[1].1);
    let group = match view.decode() {
        Ok(g) => g,
        Err(e) => {
            let message = format!("cannot decode the LogGroup for the passthrough format: {e}");
            return range
                .map(|i| (i, LogOutcome::Host(message.clone())))
                .collect();
        }
    };
    range
        .map(|i| {
            let Some(log) = group.logs.get(i) else {
                return (
                    i,
                    LogOutcome::Host(format!("log {i} is not in its LogGroup")),
                );
            };
            let json = flat::flatten(&group, log).to_string();
            let time = Some(rt::Timestamp {
                seconds: i64::from(log.time),
                nanos: log.time_ns.unwrap_or(0),
            });
            let emits = if one_kind {
                sinks
                    .first()
                    .map(|(_, kind)| emit(None, *kind, &json, time))
                    .into_iter()
                    .collect()
            } else {
                sinks
                    .iter()
                    .map(|(name, kind)| emit(Some(name.clone()), *kind, &json, time))
                    .collect()
            };
            (i, LogOutcome::Emits(emits))
        })
        .collect()
}

/// One emit of the built-in format for a `kind` sink.
fn emit(
    route: Option<String>,
    kind: SinkKind,
    json: &str,
    time: Option<rt::Timestamp>,
) -> rt::Emit {
    let json = json.to_owned();
    let payload = match kind {
        SinkKind::Hec => rt::Payload::Hec(rt::HecEvent {
            body: rt::HecBody::Json(json),
            time,
            host: None,
            source: None,
            sourcetype: None,
            index: None,
            fields: Vec::new(),
        }),
        SinkKind::Syslog => rt::Payload::Syslog(rt::SyslogMessage {
            facility: FACILITY_USER,
            severity: rt::Severity::Informational,
            timestamp: time,
            hostname: None,
            app_name: Some("shipper".into()),
            proc_id: None,
            msg_id: None,
            structured_data: Vec::new(),
            msg: json,
        }),
    };
    rt::Emit { route, payload }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{self, Log};

    #[test]
    fn each_log_becomes_its_flattened_json_with_its_time() {
        let view = testing::view(&[Log::ok(0), Log::ok(1)]);
        let out = format(&view, 1..2, &[("s".into(), SinkKind::Syslog)]);
        let [(1, LogOutcome::Emits(emits))] = out.as_slice() else {
            panic!("{out:?}")
        };
        let rt::Payload::Syslog(m) = &emits[0].payload else {
            panic!("a syslog message")
        };
        let v: serde_json::Value = serde_json::from_str(&m.msg).unwrap();
        assert_eq!(v["seq"], "1");
        assert_eq!(v["__time__"], 1_700_000_001);
        assert_eq!(m.timestamp.map(|t| t.seconds), Some(1_700_000_001));
        assert_eq!(m.app_name.as_deref(), Some("shipper"));

        let out = format(
            &view,
            0..1,
            &[("a".into(), SinkKind::Hec), ("b".into(), SinkKind::Hec)],
        );
        let [(0, LogOutcome::Emits(emits))] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert!(
            matches!(&emits[0].payload, rt::Payload::Hec(e) if matches!(&e.body, rt::HecBody::Json(j) if j.contains("\"seq\":\"0\"")))
        );
        assert_eq!(emits.len(), 1, "one emit for sinks of one kind");
        assert_eq!(emits[0].route, None);

        let out = format(
            &view,
            0..1,
            &[
                ("splunk".into(), SinkKind::Hec),
                ("qradar".into(), SinkKind::Syslog),
            ],
        );
        let [(0, LogOutcome::Emits(emits))] = out.as_slice() else {
            panic!("{out:?}")
        };
        let routes: Vec<_> = emits.iter().map(|e| e.route.as_deref()).collect();
        assert_eq!(
            routes,
            [Some("splunk"), Some("qradar")],
            "one routed emit per kind"
        );
        assert!(matches!(emits[1].payload, rt::Payload::Syslog(_)));
    }

    #[test]
    fn an_undecodable_group_is_a_host_failure() {
        let view = LogGroupView {
            bytes: bytes::Bytes::from_static(&[0x0a, 0x05, 0x01]),
            log_count: 1,
        };
        let out = format(&view, 0..1, &[("s".into(), SinkKind::Hec)]);
        assert!(matches!(&out[0].1, LogOutcome::Host(m) if m.contains("cannot decode")));
    }
}
