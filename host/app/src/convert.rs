//! Plugin output (the runtime's bindgen types) → the sinks' payload model. Both mirror
//! `wit/shipper.wit` field for field; the conversion moves strings, it never copies them.

use shipper_runtime as rt;
use shipper_sinks as sk;

/// Converts one plugin payload into a sink payload.
pub fn payload(p: rt::Payload) -> sk::Payload {
    match p {
        rt::Payload::Hec(e) => sk::Payload::Hec(hec(e)),
        rt::Payload::Syslog(m) => sk::Payload::Syslog(syslog(m)),
        rt::Payload::Raw(bytes) => sk::Payload::Raw(bytes),
    }
}

fn time(t: rt::Timestamp) -> sk::Timestamp {
    sk::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn fields(f: Vec<rt::Field>) -> Vec<sk::Field> {
    f.into_iter()
        .map(|f| sk::Field {
            key: f.key,
            value: f.value,
        })
        .collect()
}

fn hec(e: rt::HecEvent) -> sk::HecEvent {
    sk::HecEvent {
        body: match e.body {
            rt::HecBody::Text(t) => sk::HecBody::Text(t),
            rt::HecBody::Json(j) => sk::HecBody::Json(j),
        },
        time: e.time.map(time),
        host: e.host,
        source: e.source,
        sourcetype: e.sourcetype,
        index: e.index,
        fields: fields(e.fields),
    }
}

fn severity(s: rt::Severity) -> sk::Severity {
    match s {
        rt::Severity::Emergency => sk::Severity::Emergency,
        rt::Severity::Alert => sk::Severity::Alert,
        rt::Severity::Critical => sk::Severity::Critical,
        rt::Severity::Error => sk::Severity::Error,
        rt::Severity::Warning => sk::Severity::Warning,
        rt::Severity::Notice => sk::Severity::Notice,
        rt::Severity::Informational => sk::Severity::Informational,
        rt::Severity::Debug => sk::Severity::Debug,
    }
}

fn syslog(m: rt::SyslogMessage) -> sk::SyslogMessage {
    sk::SyslogMessage {
        facility: m.facility,
        severity: severity(m.severity),
        timestamp: m.timestamp.map(time),
        hostname: m.hostname,
        app_name: m.app_name,
        proc_id: m.proc_id,
        msg_id: m.msg_id,
        structured_data: m
            .structured_data
            .into_iter()
            .map(|sd| sk::SdElement {
                id: sd.id,
                params: fields(sd.params),
            })
            .collect(),
        msg: m.msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_carried_over() {
        let src = rt::Payload::Syslog(rt::SyslogMessage {
            facility: 16,
            severity: rt::Severity::Warning,
            timestamp: Some(rt::Timestamp {
                seconds: 5,
                nanos: 7,
            }),
            hostname: Some("h".into()),
            app_name: Some("a".into()),
            proc_id: Some("p".into()),
            msg_id: Some("m".into()),
            structured_data: vec![rt::SdElement {
                id: "x@1".into(),
                params: vec![rt::Field {
                    key: "k".into(),
                    value: "v".into(),
                }],
            }],
            msg: "hello".into(),
        });
        let sk::Payload::Syslog(m) = payload(src) else {
            panic!("wrong kind")
        };
        assert_eq!(m.facility, 16);
        assert_eq!(m.severity, sk::Severity::Warning);
        assert_eq!(
            m.timestamp,
            Some(sk::Timestamp {
                seconds: 5,
                nanos: 7
            })
        );
        assert_eq!(
            (
                m.hostname.as_deref(),
                m.app_name.as_deref(),
                m.proc_id.as_deref(),
                m.msg_id.as_deref()
            ),
            (Some("h"), Some("a"), Some("p"), Some("m"))
        );
        assert_eq!(m.structured_data[0].params[0], sk::Field::new("k", "v"));
        assert_eq!(m.msg, "hello");

        let sk::Payload::Hec(e) = payload(rt::Payload::Hec(rt::HecEvent {
            body: rt::HecBody::Json("{}".into()),
            time: None,
            host: None,
            source: Some("s".into()),
            sourcetype: Some("st".into()),
            index: Some("i".into()),
            fields: vec![rt::Field {
                key: "f".into(),
                value: "1".into(),
            }],
        })) else {
            panic!("wrong kind")
        };
        assert_eq!(e.body, sk::HecBody::Json("{}".into()));
        assert_eq!(
            (
                e.source.as_deref(),
                e.sourcetype.as_deref(),
                e.index.as_deref()
            ),
            (Some("s"), Some("st"), Some("i"))
        );
        assert_eq!(e.fields, vec![sk::Field::new("f", "1")]);
        assert_eq!(
            payload(rt::Payload::Raw(b"x".to_vec())),
            sk::Payload::Raw(b"x".to_vec())
        );
    }
}
