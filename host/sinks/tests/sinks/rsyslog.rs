//! The syslog sink against a real rsyslogd (8.2302): every message must arrive intact,
//! checked on rsyslog's parsed fields AND its raw text (`rawmsg`): unicode, structured-data
//! escaping, multi-line MSG over octet-counted TCP, LF escaping under LF framing. TLS with
//! both drivers (gtls, ossl), mutual TLS with and without a client certificate (the latter
//! must be reported, not silently lost), UDP, a receiver restart (resend, no loss), and two
//! receivers in failover and in balance mode.

use serde_json::{Value, json};
use shipper_sinks::payload::{Field, Payload, SdElement, Severity, SyslogMessage, Timestamp};
use shipper_sinks::{EndpointState, EventBatch, SinkErrorKind};
use shipper_test_support::certs::TestPki;
use shipper_test_support::eventually::eventually_async;
use shipper_test_support::rsyslog::{Rsyslog, RsyslogOptions};
use tokio_util::sync::CancellationToken;

use crate::{assert_lines_eq, build, render_all};

fn sink_config(port: u16, extra: Value) -> Value {
    let mut c = json!({
        "type": "syslog",
        "address": format!("127.0.0.1:{port}"),
        "hostname": "shipper-test",
        "reconnect_backoff_min_ms": 20,
        "reconnect_backoff_max_ms": 200,
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

/// A message with every field, escapes and unicode.
pub fn full_message(tag: &str) -> SyslogMessage {
    SyslogMessage {
        facility: 16,
        severity: Severity::Notice,
        timestamp: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789,
        }),
        hostname: Some("web-1.example.com".into()),
        app_name: Some("nginx".into()),
        proc_id: Some("4242".into()),
        msg_id: Some("ACCESS".into()),
        structured_data: vec![
            SdElement {
                id: "sls@32473".into(),
                params: vec![
                    Field::new("project", "proj-1"),
                    Field::new("q", r#"quote" back\slash ]bracket"#),
                ],
            },
            SdElement {
                id: "origin".into(),
                params: vec![Field::new("ip", "10.0.0.1")],
            },
        ],
        msg: format!("{tag} GET /ünïcødé?q=中文 200 🙂"),
    }
}

/// A message whose MSG spans lines (only octet-counting carries it unchanged).
pub fn multiline_message(tag: &str) -> SyslogMessage {
    SyslogMessage {
        app_name: Some("app".into()),
        ..SyslogMessage::new(format!("{tag} line one\nline two\n\tindented"))
    }
}

/// Many small messages with a sequence number.
pub fn numbered(tag: &str, n: usize) -> Vec<Payload> {
    (0..n)
        .map(|i| {
            Payload::Syslog(SyslogMessage {
                severity: Severity::Warning,
                timestamp: Some(Timestamp {
                    seconds: 1_700_000_000 + i as i64,
                    nanos: 0,
                }),
                app_name: Some("seq".into()),
                ..SyslogMessage::new(format!("{tag} seq={i}"))
            })
        })
        .collect()
}

/// The messages of a batch without framing (what a receiver reports as the raw message).
pub fn unframed(batch: &EventBatch) -> Vec<String> {
    batch
        .iter()
        .map(|e| {
            let s = String::from_utf8(e.to_vec()).expect("UTF-8");
            match s.split_once(' ') {
                Some((len, rest)) if len.bytes().all(|b| b.is_ascii_digit()) && !len.is_empty() => {
                    rest.to_owned()
                }
                _ => s.strip_suffix('\n').map(str::to_owned).unwrap_or(s),
            }
        })
        .collect()
}

fn field(m: &Value, k: &str) -> String {
    m[k].as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| m[k].to_string())
}

/// Received messages (rawmsg) that carry `tag`, in arrival order.
fn raw_with(messages: &[Value], tag: &str) -> Vec<String> {
    messages
        .iter()
        .map(|m| field(m, "rawmsg"))
        .filter(|r| r.contains(tag))
        .collect()
}

async fn wait_raw(rs: &Rsyslog, tag: &str, n: usize) -> Vec<Value> {
    let tag = tag.to_owned();
    tokio::task::block_in_place(|| {
        rs.wait_for(&format!("{n} messages tagged {tag}"), |m| {
            raw_with(m, &tag).len() >= n
        })
    })
}

/// Checks the parsed fields of the full message.
fn assert_full_parsed(m: &Value, tag: &str) {
    assert_eq!(field(m, "hostname"), "web-1.example.com", "{m}");
    assert_eq!(field(m, "app_name"), "nginx", "{m}");
    assert_eq!(field(m, "procid"), "4242", "{m}");
    assert_eq!(field(m, "msgid"), "ACCESS", "{m}");
    assert_eq!(field(m, "pri"), "133", "{m}");
    assert_eq!(
        field(m, "structured_data"),
        r#"[sls@32473 project="proj-1" q="quote\" back\\slash \]bracket"][origin ip="10.0.0.1"]"#,
        "{m}"
    );
    assert_eq!(
        field(m, "msg"),
        format!("{tag} GET /ünïcødé?q=中文 200 🙂"),
        "{m}"
    );
    assert!(
        field(m, "timereported").starts_with("2023-11-14T22:13:20.123456"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tcp_octet_counted_messages_arrive_intact() {
    let rs = tokio::task::block_in_place(|| Rsyslog::start(RsyslogOptions::default()));
    let stop = CancellationToken::new();
    for listener in ["tcp", "ptcp"] {
        let tag = format!("oct-{listener}");
        let sink = build(sink_config(rs.port(listener), json!({})), &stop).await;
        sink.healthcheck().await.expect("reachable");
        let mut payloads = vec![
            Payload::Syslog(full_message(&tag)),
            Payload::Syslog(multiline_message(&tag)),
        ];
        payloads.extend(numbered(&tag, 300));
        let batch = render_all(sink.as_ref(), &payloads);
        let expected = unframed(&batch);
        let d = sink.send(batch).await;
        assert!(d.is_complete_success(), "{d:?}");
        let got = wait_raw(&rs, &tag, expected.len()).await;
        assert_lines_eq(&raw_with(&got, &tag), &expected);
        let full = got
            .iter()
            .find(|m| field(m, "rawmsg") == expected[0])
            .unwrap();
        assert_full_parsed(full, &tag);
        let multi = got
            .iter()
            .find(|m| field(m, "rawmsg") == expected[1])
            .unwrap();
        assert_eq!(
            field(multi, "msg"),
            format!("{tag} line one\nline two\n\tindented"),
            "LFs kept in MSG"
        );
        assert_eq!(field(multi, "hostname"), "shipper-test", "default hostname");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tcp_lf_framing_escapes_line_feeds() {
    let rs = tokio::task::block_in_place(|| Rsyslog::start(RsyslogOptions::default()));
    let stop = CancellationToken::new();
    let sink = build(sink_config(rs.port("tcp"), json!({"framing": "lf"})), &stop).await;
    let tag = "lf-frame";
    let mut payloads = vec![
        Payload::Syslog(full_message(tag)),
        Payload::Syslog(multiline_message(tag)),
    ];
    payloads.extend(numbered(tag, 50));
    let batch = render_all(sink.as_ref(), &payloads);
    let expected = unframed(&batch);
    assert!(sink.send(batch).await.is_complete_success());
    let got = wait_raw(&rs, tag, expected.len()).await;
    assert_lines_eq(&raw_with(&got, tag), &expected);
    let multi = got
        .iter()
        .find(|m| field(m, "rawmsg") == expected[1])
        .unwrap();
    assert_eq!(
        field(multi, "msg"),
        format!("{tag} line one\\nline two\\n\tindented"),
        "one message, LFs escaped"
    );
    assert_full_parsed(
        got.iter()
            .find(|m| field(m, "rawmsg") == expected[0])
            .unwrap(),
        tag,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tls_gtls_and_ossl_and_mutual_tls() {
    let pki = TestPki::generate();
    let rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOptions {
            pki: Some(&pki),
            ..Default::default()
        })
    });
    let stop = CancellationToken::new();
    let client =
        json!({"ca_file": pki.ca(), "cert_file": pki.client_cert(), "key_file": pki.client_key()});
    for (listener, tls) in [
        ("tls", json!({"ca_file": pki.ca()})),
        ("ossl", json!({"ca_file": pki.ca()})),
        ("mtls", client),
    ] {
        let tag = format!("tls-{listener}");
        let sink = build(
            sink_config(rs.port(listener), json!({"transport": "tls", "tls": tls})),
            &stop,
        )
        .await;
        sink.healthcheck()
            .await
            .unwrap_or_else(|e| panic!("{listener}: {e}\n{}", rs.diagnostics()));
        let mut payloads = vec![
            Payload::Syslog(full_message(&tag)),
            Payload::Syslog(multiline_message(&tag)),
        ];
        payloads.extend(numbered(&tag, 500));
        let batch = render_all(sink.as_ref(), &payloads);
        let expected = unframed(&batch);
        assert!(sink.send(batch).await.is_complete_success());
        let got = wait_raw(&rs, &tag, expected.len()).await;
        assert_lines_eq(&raw_with(&got, &tag), &expected);
        let full = got
            .iter()
            .find(|m| field(m, "rawmsg") == expected[0])
            .unwrap();
        assert_full_parsed(full, &tag);
        assert_eq!(field(full, "input"), listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_mtls_without_client_cert_is_reported_not_lost() {
    let pki = TestPki::generate();
    let rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOptions {
            pki: Some(&pki),
            ..Default::default()
        })
    });
    let stop = CancellationToken::new();
    let config = sink_config(
        rs.port("mtls"),
        json!({"transport": "tls", "tls": {"ca_file": pki.ca()}}),
    );
    let sink = build(config, &stop).await;
    let err = sink
        .healthcheck()
        .await
        .expect_err("the receiver refuses a client without certificate");
    assert_eq!(err.kind, SinkErrorKind::Tls, "{err}");
    assert!(
        err.message.contains("client certificate"),
        "names the cause: {err}"
    );

    let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &numbered("nocert", 10))));
    eventually_async("repeated refused connection attempts", || async {
        let m = sink.metrics().snapshot();
        if m.connect_failures >= 2 {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert!(
        !send.is_finished(),
        "the batch is not reported as delivered"
    );
    stop.cancel();
    let d = send.await.unwrap();
    assert!(d.cancelled, "{d:?}");
    assert!(raw_with(&rs.messages(), "nocert").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_udp_datagrams_and_truncation() {
    let rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOptions {
            udp: true,
            ..Default::default()
        })
    });
    let stop = CancellationToken::new();
    let sink = build(
        sink_config(rs.port("udp"), json!({"transport": "udp"})),
        &stop,
    )
    .await;
    let tag = "udp-dgram";
    let mut payloads = vec![Payload::Syslog(full_message(tag))];
    payloads.extend(numbered(tag, 20));
    payloads.push(Payload::Syslog(SyslogMessage::new(format!(
        "{tag} {}",
        "é".repeat(1_000)
    ))));
    let batch = render_all(sink.as_ref(), &payloads);
    assert!(
        batch.event(21).unwrap().len() <= 1_400,
        "cut to the UDP default"
    );
    let expected = unframed(&batch);
    assert!(sink.send(batch).await.is_complete_success());
    let got = wait_raw(&rs, tag, expected.len()).await;
    let mut raw = raw_with(&got, tag);
    raw.sort();
    let mut exp = expected.clone();
    exp.sort();
    assert_lines_eq(&raw, &exp);
    assert_full_parsed(
        got.iter()
            .find(|m| field(m, "rawmsg") == expected[0])
            .unwrap(),
        tag,
    );
    assert_eq!(sink.metrics().snapshot().truncated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_restart_loses_nothing() {
    let mut rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOptions {
            fixed_tcp_port: true,
            ..Default::default()
        })
    });
    let stop = CancellationToken::new();
    let sink = build(sink_config(rs.port("tcp"), json!({})), &stop).await;
    let a = render_all(sink.as_ref(), &numbered("before-restart", 100));
    let a_expected = unframed(&a);
    assert!(sink.send(a).await.is_complete_success());
    wait_raw(&rs, "before-restart", 100).await;

    // The receiver goes away; a batch sent meanwhile must wait, then arrive.
    tokio::task::block_in_place(|| rs.stop());
    let b = render_all(sink.as_ref(), &numbered("during-restart", 100));
    let b_expected = unframed(&b);
    let send = tokio::spawn(sink.send(b));
    eventually_async("the sink to notice the receiver is gone", || async {
        let m = sink.metrics().snapshot();
        if m.disconnects >= 1 && m.connect_failures >= 1 {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    tokio::task::block_in_place(|| rs.restart());
    assert!(send.await.unwrap().is_complete_success());
    let c = render_all(sink.as_ref(), &numbered("after-restart", 100));
    let c_expected = unframed(&c);
    assert!(sink.send(c).await.is_complete_success());

    let got = wait_raw(&rs, "after-restart", 100).await;
    for expected in [&a_expected, &b_expected, &c_expected] {
        let raw = raw_with(&got, "");
        for e in expected.iter() {
            assert!(raw.contains(e), "lost: {e}\n{}", rs.diagnostics());
        }
    }
    let m = sink.metrics().snapshot();
    assert!(
        m.resent_bytes > 0,
        "the last batch before the loss was resent: {m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_rfc3164_messages_parse() {
    let rs = tokio::task::block_in_place(|| Rsyslog::start(RsyslogOptions::default()));
    let stop = CancellationToken::new();
    let sink = build(
        sink_config(
            rs.port("tcp"),
            json!({"format": "rfc3164", "framing": "lf"}),
        ),
        &stop,
    )
    .await;
    let tag = "bsd-3164";
    let payloads = vec![Payload::Syslog(full_message(tag))];
    let batch = render_all(sink.as_ref(), &payloads);
    let expected = unframed(&batch);
    assert_eq!(
        expected[0],
        format!(
            "<133>Nov 14 22:13:20 web-1.example.com nginx[4242]: {tag} GET /ünïcødé?q=中文 200 🙂"
        )
    );
    assert!(sink.send(batch).await.is_complete_success());
    let got = wait_raw(&rs, tag, 1).await;
    let m = got
        .iter()
        .find(|m| field(m, "rawmsg") == expected[0])
        .unwrap();
    assert_eq!(field(m, "hostname"), "web-1.example.com", "{m}");
    assert_eq!(field(m, "syslogtag"), "nginx[4242]:", "{m}");
    assert_eq!(field(m, "app_name"), "nginx", "{m}");
    assert_eq!(
        field(m, "msg"),
        format!(" {tag} GET /ünïcødé?q=中文 200 🙂"),
        "3164 msg keeps the space: {m}"
    );
}

/// The sink refuses a receiver whose certificate does not match `tls.server_name`, and one
/// signed by a CA it does not trust (another CA, or one the system roots lack): the health check names the TLS problem, a batch is
/// never reported delivered, and on shutdown it comes back whole (cancelled, nothing
/// rejected) so the pipeline keeps it pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tls_refuses_a_wrong_name_and_an_untrusted_ca() {
    let pki = TestPki::generate();
    let other = TestPki::generate();
    let rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOptions {
            pki: Some(&pki),
            ..Default::default()
        })
    });
    let cases = [
        (
            "wrong-name",
            json!({"ca_file": pki.ca(), "server_name": "siem.example.com"}),
            ["not valid for name", "siem.example.com"],
        ),
        // Another CA of the same name (a regenerated PKI): the signature does not verify.
        (
            "other-ca",
            json!({"ca_file": other.ca()}),
            ["invalid peer certificate", "BadSignature"],
        ),
        // The system roots (no `ca_file`) do not know the private CA.
        (
            "system-roots",
            json!({}),
            ["invalid peer certificate", "UnknownIssuer"],
        ),
    ];
    for (tag, tls, expected) in cases {
        let stop = CancellationToken::new();
        let sink = build(
            sink_config(rs.port("tls"), json!({"transport": "tls", "tls": tls})),
            &stop,
        )
        .await;
        let err = sink
            .healthcheck()
            .await
            .expect_err("the server certificate is refused");
        assert_eq!(err.kind, SinkErrorKind::Tls, "{tag}: {err}");
        for text in expected.iter().chain(&["tls.ca_file", "tls.server_name"]) {
            assert!(err.message.contains(text), "{tag}: names {text:?}: {err}");
        }

        let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &numbered(tag, 10))));
        eventually_async("repeated refused handshakes", || async {
            let m = sink.metrics().snapshot();
            if m.connect_failures >= 2 {
                Ok(())
            } else {
                Err(format!("{m:?}"))
            }
        })
        .await;
        assert!(!send.is_finished(), "{tag}: not reported delivered");
        let m = sink.metrics().snapshot();
        assert_eq!((m.connects, m.events_accepted), (0, 0), "{tag}: {m:?}");
        let last = m.last_error.unwrap_or_default();
        assert!(last.contains(expected[0]), "{tag}: {last}");
        stop.cancel();
        let d = send.await.unwrap();
        assert!(d.cancelled && d.rejected.is_empty(), "{tag}: {d:?}");
        assert_eq!(
            d.batch.len(),
            10,
            "{tag}: the events come back, still pending"
        );
        assert!(
            raw_with(&rs.messages(), tag).is_empty(),
            "{tag}: nothing sent"
        );
    }
}

fn two_address_config(a: u16, b: u16, mode: &str) -> Value {
    sink_config(
        0,
        json!({
            "address": "",
            "addresses": [format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}")],
            "mode": mode,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_failover_uses_the_secondary_while_the_primary_is_down_then_goes_back() {
    let (mut primary, secondary) = tokio::task::block_in_place(|| {
        let fixed = || {
            Rsyslog::start(RsyslogOptions {
                fixed_tcp_port: true,
                ..Default::default()
            })
        };
        (fixed(), fixed())
    });
    let stop = CancellationToken::new();
    let sink = build(
        two_address_config(primary.port("tcp"), secondary.port("tcp"), "failover"),
        &stop,
    )
    .await;
    let state = |i: usize| sink.endpoints()[i].state;
    assert!(
        sink.send(render_all(sink.as_ref(), &numbered("first", 50)))
            .await
            .is_complete_success()
    );
    wait_raw(&primary, "first", 50).await;
    assert_eq!(
        (state(0), state(1)),
        (EndpointState::Healthy, EndpointState::Standby)
    );

    tokio::task::block_in_place(|| primary.stop());
    let during = render_all(sink.as_ref(), &numbered("during", 50));
    let during_expected = unframed(&during);
    assert!(sink.send(during).await.is_complete_success());
    let got = wait_raw(&secondary, "during", 50).await;
    let raw = raw_with(&got, "during");
    for e in &during_expected {
        assert!(raw.contains(e), "lost on the way to the secondary: {e}");
    }
    assert_eq!(state(1), EndpointState::Healthy);

    tokio::task::block_in_place(|| primary.restart());
    // The writer tries the primary again (reconnect backoff, ≤ 200 ms here) and moves back.
    eventually_async("traffic back on the primary", || async {
        let d = sink
            .send(render_all(sink.as_ref(), &numbered("after", 1)))
            .await;
        assert!(d.is_complete_success());
        if raw_with(&primary.messages(), "after").is_empty() {
            Err(format!("{:?}", sink.endpoints()))
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(
        (state(0), state(1)),
        (EndpointState::Healthy, EndpointState::Standby)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_balance_spreads_batches_and_the_survivor_takes_over() {
    let (mut a, b) = tokio::task::block_in_place(|| {
        (
            Rsyslog::start(RsyslogOptions::default()),
            Rsyslog::start(RsyslogOptions::default()),
        )
    });
    let stop = CancellationToken::new();
    let sink = build(
        two_address_config(a.port("tcp"), b.port("tcp"), "balance"),
        &stop,
    )
    .await;
    let sends: Vec<_> = (0..20)
        .map(|i| {
            sink.send(render_all(
                sink.as_ref(),
                &numbered(&format!("spread{i:02}-"), 20),
            ))
        })
        .collect();
    for d in futures::future::join_all(sends).await {
        assert!(d.is_complete_success());
    }
    let total = |rs: &Rsyslog| raw_with(&rs.messages(), "spread").len();
    eventually_async("every spread message", || async {
        let n = total(&a) + total(&b);
        if n >= 400 {
            Ok(())
        } else {
            Err(format!("{n} of 400"))
        }
    })
    .await;
    assert!(
        total(&a) > 0 && total(&b) > 0,
        "both take a share: {} / {}",
        total(&a),
        total(&b)
    );

    tokio::task::block_in_place(|| a.stop());
    let after = render_all(sink.as_ref(), &numbered("survivor", 200));
    let expected = unframed(&after);
    assert!(sink.send(after).await.is_complete_success());
    for _ in 0..5 {
        assert!(
            sink.send(render_all(sink.as_ref(), &numbered("more", 10)))
                .await
                .is_complete_success()
        );
    }
    let got = wait_raw(&b, "survivor", 200).await;
    let raw = raw_with(&got, "survivor");
    for e in &expected {
        assert!(raw.contains(e), "lost: {e}");
    }
    let status = sink.endpoints();
    assert_ne!(status[0].state, EndpointState::Healthy, "{status:?}");
    assert_eq!(status[1].state, EndpointState::Healthy, "{status:?}");
}
