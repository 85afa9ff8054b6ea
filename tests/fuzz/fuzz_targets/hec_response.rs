//! The HEC answer parser and classifier (docs/rendering.md §3.9 "HEC response classes") on
//! any status and body a server, a proxy or a hostile endpoint can send.
//!
//! Properties: no panic; the class follows the status as documented (413 split, 408/429/5xx
//! retry, 3xx/401/403/404/407 configuration, 401/403 re-read the token); a 2xx is accepted
//! with the `ackId` of its JSON answer; a 400 is a data error
//! only for the data codes and then names the `invalid-event-number` it was given; the reason
//! the sink logs is one line (a body cannot inject log lines) and the body's part of it is
//! bounded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shipper_sinks::fuzzing::{HecClass, classify_hec_answer};

const URL: &str = "https://hec.example.test:8088/services/collector/event";

fuzz_target!(|data: &[u8]| {
    let [hi, lo, body @ ..] = data else {
        return;
    };
    // Statuses 100..=699, weighted by the bytes: every class is reachable.
    let status = 100 + u16::from_be_bytes([*hi, *lo]) % 600;
    let (class, reason, code) = classify_hec_answer(status, body, URL);
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name));
    let data_code = matches!(code, Some(5 | 6 | 7 | 12 | 13 | 15));

    assert!(
        !reason.contains('\n') && !reason.contains('\r'),
        "{reason:?}"
    );
    if json.is_none() {
        // Only a bounded snippet of a body that is not JSON reaches the log line.
        assert!(
            reason.len() <= URL.len() + 600,
            "{} bytes: {reason:?}",
            reason.len()
        );
    }
    match status {
        413 => assert_eq!(class, HecClass::TooLarge),
        408 | 429 | 500..=599 => assert_eq!(class, HecClass::Transient),
        401 | 403 => assert_eq!(class, HecClass::Config(true)),
        300..=399 | 404 | 407 => assert_eq!(class, HecClass::Config(false)),
        200..=299 => match class {
            HecClass::Accepted(ack) => {
                if json.as_ref().is_some_and(|j| j.is_object()) {
                    assert_eq!(ack, field("ackId").and_then(|a| a.as_u64()));
                }
            }
            HecClass::Config(false) => {}
            other => panic!("{status} classified as {other:?}"),
        },
        400 => match class {
            HecClass::Data(n) => {
                assert!(data_code, "{code:?}");
                if json.as_ref().is_some_and(|j| j.is_object()) {
                    let given = field("invalid-event-number").and_then(|n| n.as_u64());
                    assert_eq!(n.map(|n| n as u64), given);
                }
            }
            HecClass::Config(reread) => {
                assert!(!data_code, "{code:?}");
                assert_eq!(reread, code == Some(16));
            }
            other => panic!("400 classified as {other:?}"),
        },
        _ => assert!(
            matches!(class, HecClass::Config(false)),
            "{status}: {class:?}"
        ),
    }
    if code.is_some() && json.as_ref().is_some_and(|j| j.is_object()) {
        assert_eq!(code, field("code").and_then(|c| c.as_i64()));
    }
});
