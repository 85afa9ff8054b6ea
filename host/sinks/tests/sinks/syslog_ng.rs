//! The syslog sink against a real syslog-ng (3.38): RFC 5425 TLS and the octet-counted
//! RFC 6587 `syslog()` TCP port (which refuses LF framing). Checks syslog-ng's parsed
//! fields, its unescaped `_SDATA` values and the raw message.

use serde_json::{Value, json};
use shipper_sinks::payload::Payload;
use shipper_test_support::certs::TestPki;
use shipper_test_support::syslog_ng::SyslogNg;
use tokio_util::sync::CancellationToken;

use crate::rsyslog::{full_message, multiline_message, numbered, unframed};
use crate::{assert_lines_eq, build, render_all};

fn field(m: &Value, k: &str) -> String {
    m[k].as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| m[k].to_string())
}

fn raw_with(messages: &[Value], tag: &str) -> Vec<String> {
    messages
        .iter()
        .map(|m| field(m, "raw"))
        .filter(|r| r.contains(tag))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_tls_and_octet_counted_tcp_arrive_intact() {
    let pki = TestPki::generate();
    let sng = tokio::task::block_in_place(|| SyslogNg::start(Some(&pki)));
    let stop = CancellationToken::new();
    for (listener, extra) in [
        (
            "tls",
            json!({"transport": "tls", "tls": {"ca_file": pki.ca(), "server_name": "localhost"}}),
        ),
        ("syslog_tcp", json!({})),
    ] {
        let tag = format!("sng-{listener}");
        let mut config = json!({"type": "syslog", "address": format!("127.0.0.1:{}", sng.port(listener)), "hostname": "shipper-test"});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let sink = build(config, &stop).await;
        sink.healthcheck()
            .await
            .unwrap_or_else(|e| panic!("{listener}: {e}\n{}", sng.diagnostics()));
        let mut payloads = vec![
            Payload::Syslog(full_message(&tag)),
            Payload::Syslog(multiline_message(&tag)),
        ];
        payloads.extend(numbered(&tag, 300));
        let batch = render_all(sink.as_ref(), &payloads);
        let expected = unframed(&batch);
        assert!(sink.send(batch).await.is_complete_success());
        let got = tokio::task::block_in_place(|| {
            sng.wait_for(&format!("{} messages tagged {tag}", expected.len()), |m| {
                raw_with(m, &tag).len() >= expected.len()
            })
        });
        assert_lines_eq(&raw_with(&got, &tag), &expected);
        let full = got.iter().find(|m| field(m, "raw") == expected[0]).unwrap();
        assert_eq!(field(full, "host"), "web-1.example.com", "{full}");
        assert_eq!(field(full, "program"), "nginx", "{full}");
        assert_eq!(field(full, "pid"), "4242", "{full}");
        assert_eq!(field(full, "msgid"), "ACCESS", "{full}");
        assert_eq!(field(full, "pri"), "133", "{full}");
        assert_eq!(
            field(full, "message"),
            format!("{tag} GET /ünïcødé?q=中文 200 🙂"),
            "{full}"
        );
        assert_eq!(
            field(full, "isodate"),
            "2023-11-14T22:13:20.123456+00:00",
            "{full}"
        );
        assert_eq!(
            full["_SDATA"]["sls@32473"]["q"], r#"quote" back\slash ]bracket"#,
            "SD values unescaped: {full}"
        );
        assert_eq!(full["_SDATA"]["origin"]["ip"], "10.0.0.1", "{full}");
        let multi = got.iter().find(|m| field(m, "raw") == expected[1]).unwrap();
        assert_eq!(
            field(multi, "message"),
            format!("{tag} line one\nline two\n\tindented"),
            "{multi}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_mutual_tls_needs_the_client_certificate() {
    let pki = TestPki::generate();
    let sng = tokio::task::block_in_place(|| SyslogNg::start(Some(&pki)));
    let stop = CancellationToken::new();
    let address = format!("127.0.0.1:{}", sng.port("mtls"));
    let without = build(json!({"type": "syslog", "address": address, "transport": "tls", "tls": {"ca_file": pki.ca()}}), &stop).await;
    let err = without
        .healthcheck()
        .await
        .expect_err("syslog-ng refuses a client without certificate");
    assert!(
        err.message.contains("client certificate"),
        "{err}\n{}",
        sng.diagnostics()
    );

    let with = build(
        json!({"type": "syslog", "address": address, "transport": "tls",
               "tls": {"ca_file": pki.ca(), "cert_file": pki.client_cert(), "key_file": pki.client_key()}}),
        &stop,
    )
    .await;
    with.healthcheck()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sng.diagnostics()));
    let batch = render_all(with.as_ref(), &numbered("sng-mtls", 50));
    let expected = unframed(&batch);
    assert!(with.send(batch).await.is_complete_success());
    let got = tokio::task::block_in_place(|| {
        sng.wait_for("50 mTLS messages", |m| raw_with(m, "sng-mtls").len() >= 50)
    });
    assert_lines_eq(&raw_with(&got, "sng-mtls"), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_lf_network_port_takes_lf_framing_with_escaped_line_feeds() {
    let sng = tokio::task::block_in_place(|| SyslogNg::start(None));
    let stop = CancellationToken::new();
    let config = json!({"type": "syslog", "address": format!("127.0.0.1:{}", sng.port("net_tcp")), "framing": "lf", "hostname": "shipper-test"});
    let sink = build(config, &stop).await;
    let tag = "sng-lf";
    let mut payloads = vec![
        Payload::Syslog(full_message(tag)),
        Payload::Syslog(multiline_message(tag)),
    ];
    payloads.extend(numbered(tag, 100));
    let batch = render_all(sink.as_ref(), &payloads);
    let expected = unframed(&batch);
    assert!(sink.send(batch).await.is_complete_success());
    let got = tokio::task::block_in_place(|| {
        sng.wait_for("LF-framed messages", |m| {
            raw_with(m, tag).len() >= expected.len()
        })
    });
    assert_lines_eq(&raw_with(&got, tag), &expected);
    let multi = got.iter().find(|m| field(m, "raw") == expected[1]).unwrap();
    assert_eq!(
        field(multi, "message"),
        format!("{tag} line one\\nline two\\n\tindented"),
        "one message: {multi}"
    );
    assert_eq!(field(multi, "program"), "app");
}
