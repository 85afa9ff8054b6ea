//! The syslog sink's RFC 5424 renderer (docs/rendering.md §4), round trip through an
//! independent RFC 5424 parser (the `syslog_rfc5424` crate): what shipper writes for
//! arbitrary header fields, structured data and message text must parse, and give back
//! the fields as the documented rules leave them (header fields reduced to PRINTUSASCII with
//! other bytes as `_` and cut to 255/48/128/32 bytes, `-` for empty, six fraction digits).
//! RFC 3164 has no such parser to check against: its rendering must not panic and must
//! keep the message text.
//!
//! Properties: render fails only for a facility above 23 or an invalid or repeated SD-ID or
//! PARAM-NAME; otherwise the line parses and every field reads back as given.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shipper_sinks::payload::{Field, Payload, SdElement, Severity, SyslogMessage, Timestamp};
use shipper_sinks::preview::{PreviewOptions, render_line};
use shipper_sinks::syslog::Format;
use syslog_rfc5424::message::ProcId;

const SEVERITIES: [Severity; 8] = [
    Severity::Emergency,
    Severity::Alert,
    Severity::Critical,
    Severity::Error,
    Severity::Warning,
    Severity::Notice,
    Severity::Informational,
    Severity::Debug,
];

#[derive(Arbitrary, Debug)]
struct Input {
    facility: u8,
    severity: u8,
    time: Option<(i64, u32)>,
    hostname: Option<String>,
    app_name: Option<String>,
    proc_id: Option<String>,
    msg_id: Option<String>,
    sd: Vec<(String, Vec<(String, String)>)>,
    msg: String,
    rfc3164: bool,
}

/// A header field as the renderer leaves it: PRINTUSASCII, other bytes `_`, at most `max`
/// bytes; empty (or the NILVALUE itself) reads back as absent.
fn header(v: &str, max: usize) -> Option<String> {
    let s: String = v
        .bytes()
        .take(max)
        .map(|b| {
            if (33..=126).contains(&b) {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    (!s.is_empty() && s != "-").then_some(s)
}

fn sd_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
}

fuzz_target!(|input: Input| {
    let msg = SyslogMessage {
        facility: input.facility % 25,
        severity: SEVERITIES[usize::from(input.severity % 8)],
        // Years 1970..=9999 and a few before and after, where the renderer writes `-`.
        timestamp: input.time.map(|(s, n)| Timestamp {
            seconds: s % 260_000_000_000,
            nanos: n % 1_000_000_000,
        }),
        hostname: input.hostname.clone(),
        app_name: input.app_name.clone(),
        proc_id: input.proc_id.clone(),
        msg_id: input.msg_id.clone(),
        structured_data: input
            .sd
            .iter()
            .map(|(id, params)| SdElement {
                id: id.clone(),
                params: params
                    .iter()
                    .map(|(k, v)| Field::new(k.clone(), v.clone()))
                    .collect(),
            })
            .collect(),
        msg: input.msg.clone(),
    };
    let opts = PreviewOptions {
        format: if input.rfc3164 {
            Format::Rfc3164
        } else {
            Format::Rfc5424
        },
        hostname: "default-host".into(),
        fallback_time: Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        },
    };
    let mut out = Vec::new();
    let rendered = render_line(&Payload::Syslog(msg.clone()), &opts, &mut out);
    let sd_ok = input.rfc3164
        || msg.structured_data.iter().enumerate().all(|(i, el)| {
            sd_name_ok(&el.id)
                && !msg.structured_data[..i].iter().any(|e| e.id == el.id)
                && el.params.iter().all(|p| sd_name_ok(&p.key))
        });
    if msg.facility > 23 || !sd_ok {
        assert!(rendered.is_err(), "rendered an invalid message");
        return;
    }
    rendered.expect("a valid message failed to render");
    let line = std::str::from_utf8(&out).expect("rendered UTF-8 from UTF-8");
    // The preview ends each line with LF unless the message already does.
    let line = if msg.msg.ends_with('\n') {
        line
    } else {
        line.strip_suffix('\n').expect("one line")
    };
    let pri = format!(
        "<{}>",
        u32::from(msg.facility) * 8 + u32::from(msg.severity.code())
    );
    assert!(line.starts_with(&pri), "{line:?}");
    if input.rfc3164 {
        if !msg.msg.is_empty() {
            assert!(line.ends_with(&format!(": {}", msg.msg)), "{line:?}");
        }
        return;
    }

    let parsed = syslog_rfc5424::parse_message(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(parsed.facility as u8, msg.facility, "{line:?}");
    assert_eq!(parsed.severity as u8, msg.severity.code(), "{line:?}");
    let civil_ok = msg
        .timestamp
        .is_some_and(|t| (-62_167_219_200..=253_402_300_799).contains(&t.seconds));
    match (msg.timestamp, civil_ok) {
        (Some(t), true) => {
            assert_eq!(parsed.timestamp, Some(t.seconds), "{line:?}");
            assert_eq!(
                parsed.timestamp_nanos,
                Some(t.nanos / 1_000 * 1_000),
                "{line:?}"
            );
        }
        _ => assert_eq!(parsed.timestamp, None, "{line:?}"),
    }
    let hostname = header(msg.hostname.as_deref().unwrap_or("default-host"), 255);
    assert_eq!(parsed.hostname, hostname, "{line:?}");
    assert_eq!(
        parsed.appname,
        header(msg.app_name.as_deref().unwrap_or(""), 48),
        "{line:?}"
    );
    let proc_id =
        header(msg.proc_id.as_deref().unwrap_or(""), 128).map(|p| match p.parse::<i32>() {
            Ok(n) => ProcId::PID(n),
            Err(_) => ProcId::Name(p),
        });
    assert_eq!(parsed.procid, proc_id, "{line:?}");
    assert_eq!(
        parsed.msgid,
        header(msg.msg_id.as_deref().unwrap_or(""), 32),
        "{line:?}"
    );
    let mut sd: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for el in &msg.structured_data {
        let params = sd.entry(el.id.clone()).or_default();
        for p in &el.params {
            params.insert(p.key.clone(), p.value.clone());
        }
    }
    let parsed_sd: BTreeMap<String, BTreeMap<String, String>> = parsed
        .sd
        .iter()
        .map(|(id, params)| (id.clone(), params.clone()))
        .collect();
    assert_eq!(parsed_sd, sd, "{line:?}");
    assert_eq!(parsed.msg, msg.msg, "{line:?}");
});
