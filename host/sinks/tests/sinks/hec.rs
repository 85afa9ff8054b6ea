//! The HEC sink against the in-process test receiver: rendering end to end, gzip on/off,
//! `/raw`, and every fault: 503 bursts (with Retry-After), slow answers, timeouts, resets,
//! 413 splitting, bad events rejected with Splunk's reason (bisected when the answer has no
//! `invalid-event-number`), a bad token that is never dropped (token file re-read), HTML
//! answers, indexer ack on and with timeouts, TLS, health checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use shipper_sinks::payload::{Field, HecBody, HecEvent, Payload, Timestamp};
use shipper_sinks::{RenderError, SinkErrorKind};
use shipper_test_support::certs::TestPki;
use shipper_test_support::eventually::eventually_async;
use shipper_test_support::hec_receiver::{
    Endpoint, Fault, HecReceiver, HecReceiverConfig, TEST_TOKEN, TokenSpec,
};
use tokio_util::sync::CancellationToken;

use crate::{build, render_all};

/// Fast retry timing so fault tests finish quickly.
fn config(rx: &HecReceiver, extra: Value) -> Value {
    let mut c = json!({
        "type": "hec",
        "endpoint": rx.url(),
        "token": TEST_TOKEN,
        "retry": { "initial_backoff_ms": 10, "max_backoff_ms": 50, "config_error_backoff_ms": 50 },
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

fn event(i: usize) -> Payload {
    Payload::Hec(HecEvent {
        body: HecBody::Json(format!(r#"{{"seq":{i},"msg":"héllo \"{i}\""}}"#)),
        time: Some(Timestamp {
            seconds: 1_700_000_000 + i as i64,
            nanos: 123_456_789,
        }),
        host: Some("web-1".into()),
        source: Some("sls:proj/logstore".into()),
        sourcetype: Some("_json".into()),
        index: Some("main".into()),
        fields: vec![
            Field::new("shard", (i % 4).to_string()),
            Field::new("tag", "a\"b\\c\n"),
        ],
    })
}

fn events(n: usize) -> Vec<Payload> {
    (0..n).map(event).collect()
}

/// The `seq` of every received `/event` event, sorted.
fn seqs(rx: &HecReceiver) -> Vec<u64> {
    let mut s: Vec<u64> = rx
        .events()
        .iter()
        .filter(|e| e.endpoint == Endpoint::Event)
        .filter_map(|e| e.envelope["event"]["seq"].as_u64())
        .collect();
    s.sort_unstable();
    s
}

fn all(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

#[tokio::test]
async fn hec_delivers_envelopes_exactly_with_gzip() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    sink.healthcheck().await.expect("healthy");
    let mut payloads = events(50);
    payloads.push(Payload::Hec(HecEvent {
        body: HecBody::Text("plain text\twith tab, 中文, \u{1}".into()),
        ..HecEvent::new(HecBody::Text(String::new()))
    }));
    let delivery = sink.send(render_all(sink.as_ref(), &payloads)).await;
    assert!(delivery.is_complete_success(), "{delivery:?}");
    assert_eq!(delivery.batch.len(), 51, "the batch comes back for reuse");
    assert_eq!(seqs(&rx), all(50));
    let got = rx.events();
    let first = &got
        .iter()
        .find(|e| e.envelope["event"]["seq"] == 0)
        .unwrap()
        .envelope;
    assert_eq!(
        *first,
        json!({"time": 1_700_000_000.123456, "host": "web-1", "source": "sls:proj/logstore", "sourcetype": "_json",
               "index": "main", "event": {"seq": 0, "msg": "héllo \"0\""}, "fields": {"shard": "0", "tag": "a\"b\\c\n"}})
    );
    let text = got
        .iter()
        .find(|e| e.envelope["event"].is_string())
        .unwrap();
    assert_eq!(text.envelope["event"], "plain text\twith tab, 中文, \u{1}");
    assert_eq!(
        text.text, r#"{"event":"plain text\twith tab, 中文, \u0001"}"#,
        "escaping per docs/rendering.md §2 rule 3"
    );
    let posts: Vec<_> = rx
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/event") && r.events > 0)
        .collect();
    assert!(
        posts.iter().all(|r| r.gzip && r.channel.is_some()),
        "{posts:?}"
    );
    let m = sink.metrics().snapshot();
    assert_eq!(m.events_accepted, 51);
    assert!(
        m.wire_bytes < m.request_bytes,
        "gzip shrinks the body: {m:?}"
    );
    assert_eq!(m.hec_codes[0], posts.len() as u64);
}

#[tokio::test]
async fn hec_without_gzip_and_raw_endpoint() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &rx,
            json!({"gzip": false, "raw": {"sourcetype": "nginx", "host": "h 1"}}),
        ),
        &stop,
    )
    .await;
    let mut payloads = events(3);
    payloads.push(Payload::Raw(b"raw line one".to_vec()));
    payloads.push(Payload::Raw(b"raw line two\n".to_vec()));
    payloads.push(event(3));
    let delivery = sink.send(render_all(sink.as_ref(), &payloads)).await;
    assert!(delivery.is_complete_success(), "{delivery:?}");
    assert_eq!(seqs(&rx), all(4));
    let raw: Vec<_> = rx
        .events()
        .into_iter()
        .filter(|e| e.endpoint == Endpoint::Raw)
        .collect();
    assert_eq!(
        raw.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        ["raw line one", "raw line two"]
    );
    assert_eq!(
        raw[0].query.get("sourcetype").map(String::as_str),
        Some("nginx")
    );
    assert_eq!(raw[0].query.get("host").map(String::as_str), Some("h 1"));
    assert!(
        raw[0].query.contains_key("channel"),
        "a channel is always sent on /raw"
    );
    assert!(rx.requests().iter().all(|r| !r.gzip));
}

#[tokio::test]
async fn hec_retries_a_503_burst_honouring_retry_after() {
    let rx = HecReceiver::start_default().await;
    rx.push_fault(Fault::busy(), 4);
    rx.push_fault(
        Fault::Status {
            status: 503,
            code: Some(9),
            text: "Server is busy",
            retry_after: Some(1),
        },
        1,
    );
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    let started = tokio::time::Instant::now();
    let delivery = sink.send(render_all(sink.as_ref(), &events(20))).await;
    assert!(delivery.is_complete_success(), "{delivery:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(seqs(&rx), all(20), "nothing lost, nothing duplicated");
    let m = sink.metrics().snapshot();
    assert_eq!((m.errors_transient, m.retries), (5, 5), "{m:?}");
    assert_eq!(m.hec_codes[9], 5);
}

#[tokio::test]
async fn a_dropped_send_stops_its_retries() {
    // The pipeline drops the sends of a shard it lost; their retries must stop with them,
    // or they would reach the SIEM after the next owner re-delivered the same logs.
    let rx = HecReceiver::start_default().await;
    rx.push_fault(Fault::busy(), 1_000);
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    let send = sink.send(render_all(sink.as_ref(), &events(5)));
    let retried = tokio::time::timeout(Duration::from_millis(300), send).await;
    assert!(retried.is_err(), "503s are retried until dropped");
    let tried = rx.requests().len();
    assert!(tried >= 2, "retried before the drop: {tried}");
    // The request on the wire at the drop may still be recorded; nothing after it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let settled = rx.requests().len();
    assert!(
        settled <= tried + 1,
        "{tried} before the drop, {settled} after"
    );
    // Retries come every 10–50 ms here: 300 ms would show several.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.requests().len(),
        settled,
        "requests went on after the send was dropped"
    );
    assert!(rx.events().is_empty());
}

#[tokio::test]
async fn hec_survives_slow_answers_resets_and_timeouts() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({"request_timeout_ms": 1_000})), &stop).await;

    rx.push_fault(Fault::Delay(Duration::from_millis(200)), 1);
    let d = sink.send(render_all(sink.as_ref(), &events(5))).await;
    assert!(d.is_complete_success());
    assert_eq!(
        seqs(&rx),
        all(5),
        "a slow answer within the timeout: exactly once"
    );

    rx.push_fault(Fault::Reset, 3);
    let d = sink
        .send(render_all(
            sink.as_ref(),
            &(5..10).map(event).collect::<Vec<_>>(),
        ))
        .await;
    assert!(d.is_complete_success());
    assert_eq!(seqs(&rx), all(10), "resets are retried: nothing lost");

    // Slower than the timeout: retried; whether the abandoned request was stored too is
    // up to the receiver (at-least-once), but nothing may be lost.
    rx.push_fault(Fault::Delay(Duration::from_millis(1_500)), 1);
    let d = sink
        .send(render_all(
            sink.as_ref(),
            &(10..15).map(event).collect::<Vec<_>>(),
        ))
        .await;
    assert!(d.is_complete_success());
    let unique: std::collections::BTreeSet<_> = seqs(&rx).into_iter().collect();
    assert_eq!(unique.into_iter().collect::<Vec<_>>(), all(15));
    let m = sink.metrics().snapshot();
    assert!(m.errors_transient >= 4, "{m:?}");
}

#[tokio::test]
async fn hec_splits_on_413_and_rejects_a_single_oversized_event() {
    let rx = HecReceiver::start_default().await;
    rx.set_max_decoded_body(Some(2_000));
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    let mut payloads = events(40); // ~250 B each: needs several splits
    payloads.insert(
        17,
        Payload::Hec(HecEvent::new(HecBody::Text("x".repeat(3_000)))),
    );
    let delivery = sink.send(render_all(sink.as_ref(), &payloads)).await;
    assert!(!delivery.cancelled);
    assert_eq!(delivery.rejected.len(), 1, "{:?}", delivery.rejected);
    assert_eq!(delivery.rejected[0].index, 17);
    assert!(
        delivery.rejected[0].reason.contains("413"),
        "{}",
        delivery.rejected[0].reason
    );
    assert_eq!(
        seqs(&rx),
        all(40),
        "every other event delivered exactly once"
    );
    let m = sink.metrics().snapshot();
    assert!(m.errors_too_large > 2, "{m:?}");
    assert!(
        rx.requests()
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.decoded_bytes <= 2_000)
    );
}

#[tokio::test]
async fn hec_rejects_bad_events_with_the_hec_reason_and_delivers_the_rest() {
    let rx = HecReceiver::start_default().await;
    rx.set_bad_event_marker(Some("POISON"));
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    let mut payloads = events(30);
    payloads[3] = Payload::Hec(HecEvent::new(HecBody::Text("POISON one".into())));
    payloads[21] = Payload::Hec(HecEvent::new(HecBody::Text("POISON two".into())));
    payloads[25] = Payload::Hec(HecEvent::new(HecBody::Json("{not json".into())));
    payloads[27] = Payload::Hec(HecEvent::new(HecBody::Json("\"\"".into())));
    let delivery = sink.send(render_all(sink.as_ref(), &payloads)).await;
    assert!(!delivery.cancelled);
    let rejected: BTreeMap<usize, String> = delivery
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect();
    assert_eq!(
        rejected.keys().copied().collect::<Vec<_>>(),
        [3, 21, 25, 27]
    );
    assert!(
        rejected[&3].contains(r#"code 6 "Invalid data format" (invalid-event-number 3)"#),
        "{}",
        rejected[&3]
    );
    assert!(rejected[&25].contains("code 6"), "{}", rejected[&25]);
    assert!(
        rejected[&27].contains(r#"code 13 "Event field cannot be blank""#),
        "{}",
        rejected[&27]
    );
    let expected: Vec<u64> = (0..30u64)
        .filter(|i| ![3, 21, 25, 27].contains(i))
        .collect();
    assert_eq!(seqs(&rx), expected, "everything else exactly once");
    assert_eq!(sink.metrics().snapshot().events_rejected, 4);
}

/// What one bisection run produced.
struct Bisected {
    rejected: BTreeMap<usize, String>,
    /// Received `/event` events per `seq`.
    received: BTreeMap<u64, usize>,
    /// `/event` POSTs the receiver answered.
    posts: usize,
}

/// Sends `n` events, those at the keys of `bad` replaced by the bad payload, to a receiver
/// that answers data errors WITHOUT `invalid-event-number` (older Splunk, some proxies), so
/// the sink has to bisect.
async fn bisect(n: usize, bad: &BTreeMap<usize, Payload>, gzip: bool) -> Bisected {
    let rx = HecReceiver::start_default().await;
    rx.set_bad_event_marker(Some("POISON"));
    rx.set_omit_invalid_event_number(true);
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({ "gzip": gzip })), &stop).await;
    let payloads: Vec<Payload> = (0..n)
        .map(|i| bad.get(&i).cloned().unwrap_or_else(|| event(i)))
        .collect();
    let delivery = sink.send(render_all(sink.as_ref(), &payloads)).await;
    assert!(!delivery.cancelled, "{delivery:?}");
    let requests: Vec<_> = rx
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/event"))
        .collect();
    assert!(requests.iter().all(|r| r.gzip == gzip), "{requests:?}");
    let mut received = BTreeMap::new();
    for s in seqs(&rx) {
        *received.entry(s).or_default() += 1;
    }
    let m = sink.metrics().snapshot();
    let failed = requests.iter().filter(|r| r.status == 400).count();
    assert_eq!(
        (m.events_accepted, m.events_rejected, m.errors_data),
        ((n - bad.len()) as u64, bad.len() as u64, failed as u64),
        "{m:?}"
    );
    Bisected {
        rejected: delivery
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.clone()))
            .collect(),
        received,
        posts: requests.len(),
    }
}

fn poison(i: usize) -> Payload {
    Payload::Hec(HecEvent::new(HecBody::Text(format!("POISON {i}"))))
}

/// Bounds on the requests of a bisection over `n` events with `bad` bad ones. Each request
/// that fails with more than one event is halved, so the requests are the root plus two
/// children per failed multi-event request. A failed request holds a bad event; the halving
/// tree is at most ⌈log2 n⌉ deep, and each level holds at most `bad` failing requests, so
/// requests ≤ 1 + 2·bad·⌈log2 n⌉. And every bad event sits at least ⌊log2 n⌋ levels down,
/// its ancestors all failing, so requests ≥ 1 + 2·⌊log2 n⌋: the sink did bisect.
fn bisection_bounds(n: usize, bad: usize) -> std::ops::RangeInclusive<usize> {
    let ceil_log2 = n.next_power_of_two().trailing_zeros() as usize;
    let floor_log2 = n.ilog2() as usize;
    1 + 2 * floor_log2..=1 + 2 * bad * ceil_log2
}

#[tokio::test]
async fn hec_bisects_data_errors_without_invalid_event_number() {
    const N: usize = 40;
    let one = BTreeMap::from([(17, poison(17))]);
    // Spread out, in both halves, and one with another data code (13, blank event).
    let three = BTreeMap::from([
        (2, poison(2)),
        (
            21,
            Payload::Hec(HecEvent::new(HecBody::Json("\"\"".into()))),
        ),
        (38, poison(38)),
    ]);
    for gzip in [true, false] {
        for bad in [&one, &three] {
            let got = bisect(N, bad, gzip).await;
            let case = format!("gzip {gzip}, bad {:?}", bad.keys().collect::<Vec<_>>());
            assert_eq!(
                got.rejected.keys().collect::<Vec<_>>(),
                bad.keys().collect::<Vec<_>>(),
                "{case}: exactly the bad events are rejected"
            );
            for (i, reason) in &got.rejected {
                let expected = if *i == 21 {
                    r#"HEC 400 code 13 "Event field cannot be blank""#
                } else {
                    r#"HEC 400 code 6 "Invalid data format""#
                };
                assert_eq!(reason, expected, "{case}: event {i}");
            }
            let good: Vec<u64> = (0..N as u64)
                .filter(|i| !bad.contains_key(&(*i as usize)))
                .collect();
            assert_eq!(
                got.received.keys().copied().collect::<Vec<_>>(),
                good,
                "{case}: every good event arrives"
            );
            assert!(
                got.received.values().all(|&c| c == 1),
                "{case}: no duplicates: {:?}",
                got.received
            );
            let bounds = bisection_bounds(N, bad.len());
            assert!(
                bounds.contains(&got.posts),
                "{case}: {} requests, expected {bounds:?}",
                got.posts
            );
        }
    }
}

#[tokio::test]
async fn hec_bisects_a_batch_of_only_bad_events_to_single_rejections() {
    const N: usize = 40;
    let bad: BTreeMap<usize, Payload> = (0..N).map(|i| (i, poison(i))).collect();
    for gzip in [true, false] {
        let got = bisect(N, &bad, gzip).await;
        assert_eq!(
            got.rejected.keys().copied().collect::<Vec<_>>(),
            (0..N).collect::<Vec<_>>(),
            "gzip {gzip}"
        );
        assert!(
            got.rejected
                .values()
                .all(|r| r == r#"HEC 400 code 6 "Invalid data format""#),
            "{:?}",
            got.rejected
        );
        assert!(got.received.is_empty(), "{:?}", got.received);
        // Every request fails, so the halving tree is walked in full: one request per node
        // of a binary tree with N leaves.
        assert_eq!(got.posts, 2 * N - 1, "gzip {gzip}");
    }
}

#[tokio::test]
async fn hec_bad_token_is_never_dropped_and_a_fixed_token_file_resumes() {
    let rx = HecReceiver::start_default().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("hec.token");
    std::fs::write(&token_file, "00000000-0000-0000-0000-000000000000\n").unwrap();
    let stop = CancellationToken::new();
    let mut c = config(&rx, json!({"token_file": token_file}));
    c.as_object_mut().unwrap().remove("token");
    let sink = build(c, &stop).await;
    let err = sink.healthcheck().await.expect_err("bad token at start-up");
    assert_eq!(err.kind, SinkErrorKind::Config);
    assert!(err.message.contains("token"), "{err}");

    let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &events(10))));
    eventually_async("several 403 answers", || async {
        let n = rx.requests().iter().filter(|r| r.status == 403).count();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} x 403"))
        }
    })
    .await;
    assert!(
        !send.is_finished(),
        "a bad token must not settle (drop) the batch"
    );
    let m = sink.metrics().snapshot();
    assert!(m.errors_config >= 3 && m.events_rejected == 0, "{m:?}");
    assert!(
        m.last_error.as_deref().unwrap_or("").contains("token_file"),
        "{m:?}"
    );
    assert!(
        !format!("{m:?}").contains("00000000-0000"),
        "the token never appears in messages"
    );

    std::fs::write(&token_file, format!("{TEST_TOKEN}\n")).unwrap();
    let delivery = send.await.unwrap();
    assert!(delivery.is_complete_success(), "{delivery:?}");
    assert_eq!(seqs(&rx), all(10));
    sink.healthcheck()
        .await
        .expect("healthy with the new token");
}

#[tokio::test]
async fn hec_config_errors_wait_for_shutdown_without_dropping() {
    let rx = HecReceiver::start_default().await;
    rx.push_fault(Fault::Html(200), 1_000);
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({})), &stop).await;
    let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &events(3))));
    eventually_async("HTML answers to be classified", || async {
        let m = sink.metrics().snapshot();
        if m.errors_config >= 2 {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert!(
        sink.metrics()
            .snapshot()
            .last_error
            .unwrap()
            .contains("not an HEC endpoint")
    );
    stop.cancel();
    let delivery = send.await.unwrap();
    assert!(
        delivery.cancelled && delivery.rejected.is_empty(),
        "shutdown → cancelled, nothing rejected: {delivery:?}"
    );
}

#[tokio::test]
async fn hec_indexer_ack_waits_for_true_and_resends_on_timeout() {
    let cfg = HecReceiverConfig {
        tokens: vec![TokenSpec {
            ack: true,
            ..TokenSpec::new(TEST_TOKEN)
        }],
        ..Default::default()
    };
    let rx = HecReceiver::start(cfg).await;
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &rx,
            json!({"ack": true, "ack_poll_interval_ms": 20, "ack_timeout_ms": 300}),
        ),
        &stop,
    )
    .await;
    let d = sink.send(render_all(sink.as_ref(), &events(5))).await;
    assert!(d.is_complete_success());
    assert!(
        rx.requests()
            .iter()
            .any(|r| r.path.ends_with("/ack") && r.status == 200),
        "acks were polled"
    );
    assert_eq!(seqs(&rx), all(5));

    rx.set_hold_acks(true);
    let send = tokio::spawn(sink.send(render_all(
        sink.as_ref(),
        &(5..10).map(event).collect::<Vec<_>>(),
    )));
    eventually_async("an ack timeout", || async {
        let m = sink.metrics().snapshot();
        if m.ack_timeouts >= 1 {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert!(!send.is_finished(), "not delivered while unacknowledged");
    rx.set_hold_acks(false);
    let d = send.await.unwrap();
    assert!(d.is_complete_success());
    let got = seqs(&rx);
    for i in 5..10 {
        assert!(got.contains(&i), "{i} missing");
    }
    assert!(
        got.len() > 10,
        "the unacknowledged request was resent (duplicates by design): {got:?}"
    );
}

#[tokio::test]
async fn hec_over_tls_with_ca_file_and_verify_off() {
    let pki = TestPki::generate();
    let cfg = HecReceiverConfig {
        tls: Some((pki.server_cert(), pki.server_key())),
        ..Default::default()
    };
    let rx = HecReceiver::start(cfg).await;
    let stop = CancellationToken::new();

    let sink = build(config(&rx, json!({"tls": {"ca_file": pki.ca()}})), &stop).await;
    sink.healthcheck().await.expect("trusted via ca_file");
    assert!(
        sink.send(render_all(sink.as_ref(), &events(3)))
            .await
            .is_complete_success()
    );

    let untrusted = build(config(&rx, json!({})), &stop).await;
    let err = untrusted
        .healthcheck()
        .await
        .expect_err("self-signed CA is not in the system roots");
    assert!(err.message.contains("tls.ca_file"), "{err}");

    let insecure = build(config(&rx, json!({"tls": {"verify": false}})), &stop).await;
    insecure
        .healthcheck()
        .await
        .expect("verify = false accepts it");
    assert!(
        insecure
            .send(render_all(
                insecure.as_ref(),
                &(3..6).map(event).collect::<Vec<_>>()
            ))
            .await
            .is_complete_success()
    );
    assert_eq!(seqs(&rx), all(6));
}

#[tokio::test]
async fn hec_healthcheck_names_the_problem() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    rx.set_unhealthy(true);
    let sink = build(config(&rx, json!({})), &stop).await;
    let err = sink.healthcheck().await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Unavailable, "{err}");
    rx.set_unhealthy(false);
    sink.healthcheck().await.unwrap();

    // Something that is not HEC at all (a web page on every path): a configuration mistake.
    // A proxy's 502 with its own JSON body: Splunk is away for a moment, so wait for it.
    for (status, content_type, page, kind, says) in [
        (
            "200 OK",
            "text/html",
            "<html>Splunk Web</html>",
            SinkErrorKind::Config,
            "not an HEC endpoint",
        ),
        (
            "502 Bad Gateway",
            "application/json",
            r#"{"message":"An invalid response was received from the upstream server"}"#,
            SinkErrorKind::Unavailable,
            "a proxy in front of Splunk?",
        ),
    ] {
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = web.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let (mut s, _) = web.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}", page.len()).as_bytes())
                    .await;
            }
        });
        let not_hec = build(
            json!({"type": "hec", "endpoint": format!("http://{addr}"), "token": TEST_TOKEN}),
            &stop,
        )
        .await;
        let err = not_hec.healthcheck().await.unwrap_err();
        assert_eq!(err.kind, kind, "{status}: {err}");
        assert!(err.message.contains(says), "{status}: {err}");
        server.abort();
    }

    let closed = build(
        json!({"type": "hec", "endpoint": "http://127.0.0.1:9", "token": TEST_TOKEN}),
        &stop,
    )
    .await;
    assert_eq!(
        closed.healthcheck().await.unwrap_err().kind,
        SinkErrorKind::Unavailable
    );
}

#[tokio::test]
async fn hec_refuses_oversized_events_at_render_time() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    let sink = build(config(&rx, json!({"max_event_bytes": 1_000})), &stop).await;
    let mut batch = render_all(sink.as_ref(), &events(2));
    let before = batch.bytes_len();
    let err = sink
        .render(
            &Payload::Hec(HecEvent::new(HecBody::Text("x".repeat(2_000)))),
            &mut batch,
        )
        .unwrap_err();
    assert!(
        matches!(err, RenderError::TooLarge { limit: 1_000, .. }),
        "{err}"
    );
    assert_eq!(
        (batch.len(), batch.bytes_len()),
        (2, before),
        "batch unchanged"
    );
    let err = sink
        .render(
            &Payload::Syslog(shipper_sinks::SyslogMessage::new("x")),
            &mut batch,
        )
        .unwrap_err();
    assert!(matches!(err, RenderError::WrongPayload { .. }));
}

#[tokio::test]
async fn hec_ack_disabled_for_the_token_falls_back_to_200_means_delivered() {
    let rx = HecReceiver::start(HecReceiverConfig {
        tokens: vec![TokenSpec {
            ack: true,
            ..TokenSpec::new(TEST_TOKEN)
        }],
        ..Default::default()
    })
    .await;
    rx.set_hold_acks(true);
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &rx,
            json!({"ack": true, "ack_poll_interval_ms": 20, "ack_timeout_ms": 60_000}),
        ),
        &stop,
    )
    .await;
    let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &events(4))));
    eventually_async("an ack poll that says false", || async {
        let polls = rx
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/ack") && r.status == 200)
            .count();
        if polls >= 1 {
            Ok(())
        } else {
            Err("no poll yet".to_owned())
        }
    })
    .await;
    assert!(!send.is_finished());
    // The admin turns useACK off for the token: /ack now answers 400 code 14.
    rx.set_tokens(vec![TokenSpec::new(TEST_TOKEN)]);
    let d = send.await.unwrap();
    assert!(d.is_complete_success(), "{d:?}");
    assert!(
        rx.requests()
            .iter()
            .any(|r| r.path.ends_with("/ack") && r.code == Some(14))
    );
    assert_eq!(seqs(&rx), all(4), "no resend needed: the 200 counted");
    let d = sink
        .send(render_all(
            sink.as_ref(),
            &(4..6).map(event).collect::<Vec<_>>(),
        ))
        .await;
    assert!(d.is_complete_success());
    assert_eq!(seqs(&rx), all(6));
}

/// `n` events starting at `seq = from`.
fn events_from(from: usize, n: usize) -> Vec<Payload> {
    (from..from + n).map(event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hec_keeps_connections_alive_across_many_batches() {
    let rx = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    // ~250 B per event: every 10-event batch becomes two concurrent requests.
    let sink = build(
        config(&rx, json!({"concurrency": 2, "batch_max_bytes": 1_500})),
        &stop,
    )
    .await;
    sink.healthcheck().await.expect("healthy");
    for round in 0..25 {
        let d = sink
            .send(render_all(sink.as_ref(), &events_from(round * 10, 10)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
    }
    assert_eq!(seqs(&rx), all(250));
    let posts = rx
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/event") && r.events > 0)
        .count();
    assert!(posts >= 50, "{posts} requests");
    // Without keep-alive every request opens its own connection. With it, about
    // `concurrency` are reused; not exactly, because hyper-util's pool may start a new
    // connect when a request finds no idle connection, racing the one about to come back
    // (hyperium/hyper#4134), so the bound is loose on purpose.
    let connections = rx.connections() as usize;
    assert!(
        connections * 5 <= posts,
        "{posts} requests (plus 2 health checks) over {connections} connections: keep-alive \
         reuses them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hec_concurrency_puts_up_to_n_requests_in_flight() {
    for concurrency in [1, 3] {
        let rx = HecReceiver::start_default().await;
        // Every request is answered slowly, so requests overlap if the sink lets them.
        rx.push_fault(Fault::Delay(Duration::from_millis(150)), 1_000);
        let stop = CancellationToken::new();
        let sink = build(
            config(
                &rx,
                json!({"concurrency": concurrency, "batch_max_bytes": 600}),
            ),
            &stop,
        )
        .await;
        let d = sink
            .send(render_all(sink.as_ref(), &events_from(0, 24)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
        assert_eq!(seqs(&rx), all(24));
        let posts = rx.requests().len();
        assert!(posts >= 8, "the batch was cut into {posts} requests");
        let max = rx.max_in_flight();
        if concurrency == 1 {
            assert_eq!(max, 1, "concurrency 1: one request at a time");
        } else {
            assert!(
                (2..=concurrency).contains(&max),
                "concurrency {concurrency}: {max} requests were in flight at once"
            );
        }
    }
}

/// `concurrency = "adaptive"` against an indexer 50 ms away that serves 4 requests at a time
/// and answers 503 beyond: the sink starts at one request in flight, climbs to the
/// receiver's capacity, and is refused only when it probes past it (a handful of times, not
/// once per window); everything arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hec_adaptive_concurrency_climbs_to_the_receivers_capacity() {
    let rx = HecReceiver::start_default().await;
    rx.set_delay(Some(Duration::from_millis(50)));
    rx.set_max_concurrent(Some(4));
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &rx,
            json!({"concurrency": "adaptive", "batch_max_bytes": 600}),
        ),
        &stop,
    )
    .await;
    let d = sink
        .send(render_all(sink.as_ref(), &events_from(0, 240)))
        .await;
    assert!(d.is_complete_success(), "{d:?}");
    assert_eq!(seqs(&rx), all(240));
    let posts = rx
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/event") && r.events > 0)
        .count();
    let refused = rx.busy_refusals() as usize;
    assert!(posts >= 80, "the batch was cut into {posts} requests");
    assert!(
        rx.max_in_flight() >= 3,
        "the limit rose from 1 towards the receiver's 4: at most {} at once",
        rx.max_in_flight()
    );
    assert!(
        refused * 20 <= posts,
        "{refused} refusals for {posts} requests: the level that failed is not retried \
         every window"
    );
    let limit = sink.endpoints()[0].concurrency_limit;
    assert!(
        limit.is_some_and(|l| (1..=5).contains(&l)),
        "the limit stays around the receiver's capacity: {limit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_mutual_tls_delivers_with_a_client_cert_and_names_its_absence() {
    let pki = TestPki::generate();
    let rx = HecReceiver::start(HecReceiverConfig {
        tls: Some((pki.server_cert(), pki.server_key())),
        client_ca: Some(pki.ca()),
        ..Default::default()
    })
    .await;
    let stop = CancellationToken::new();

    let with_cert = build(
        config(
            &rx,
            json!({"tls": {"ca_file": pki.ca(), "cert_file": pki.client_cert(), "key_file": pki.client_key()}}),
        ),
        &stop,
    )
    .await;
    with_cert
        .healthcheck()
        .await
        .expect("the client certificate is accepted");
    let d = with_cert
        .send(render_all(with_cert.as_ref(), &events(5)))
        .await;
    assert!(d.is_complete_success(), "{d:?}");
    assert_eq!(seqs(&rx), all(5));

    // A certificate from a CA the receiver does not trust is refused like none at all.
    let other = TestPki::generate();
    let foreign = build(
        config(
            &rx,
            json!({"tls": {"ca_file": pki.ca(), "cert_file": other.client_cert(), "key_file": other.client_key()}}),
        ),
        &stop,
    )
    .await;
    let err = foreign
        .healthcheck()
        .await
        .expect_err("a client certificate from another CA is refused");
    assert_eq!(err.kind, SinkErrorKind::Tls, "{err}");
    assert!(err.message.contains("tls.cert_file"), "{err}");

    let without = build(config(&rx, json!({"tls": {"ca_file": pki.ca()}})), &stop).await;
    let err = without
        .healthcheck()
        .await
        .expect_err("the receiver requires a client certificate");
    assert_eq!(err.kind, SinkErrorKind::Tls, "{err}");
    assert!(err.message.contains("CertificateRequired"), "{err}");
    assert!(
        err.message.contains("tls.cert_file"),
        "says what to configure: {err}"
    );

    let send = tokio::spawn(without.send(render_all(without.as_ref(), &events_from(5, 3))));
    eventually_async("refused requests to be classified", || async {
        let m = without.metrics().snapshot();
        if m.errors_config >= 2 {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert!(!send.is_finished(), "not reported delivered");
    let m = without.metrics().snapshot();
    assert_eq!((m.events_accepted, m.events_rejected), (0, 0), "{m:?}");
    assert!(
        m.last_error
            .as_deref()
            .unwrap_or("")
            .contains("CertificateRequired"),
        "{m:?}"
    );
    stop.cancel();
    let d = send.await.unwrap();
    assert!(d.cancelled && d.rejected.is_empty(), "{d:?}");
    assert_eq!(d.batch.len(), 3, "the events come back, still pending");
    assert_eq!(seqs(&rx), all(5), "nothing arrived without a certificate");
}

/// Captures WARN and ERROR events (level, message and fields, one line each) of the thread
/// it is the default subscriber of.
#[derive(Clone, Default)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Warnings {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Other tests' threads have no subscriber: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The current-thread runtime keeps `build` on this thread, where the subscriber is set.
#[tokio::test]
async fn tls_verify_off_logs_a_warning_for_hec_and_syslog() {
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(warnings.clone());
    let stop = CancellationToken::new();
    let _hec = build(
        json!({"type": "hec", "endpoint": "https://127.0.0.1:9", "token": TEST_TOKEN, "tls": {"verify": false}}),
        &stop,
    )
    .await;
    let _syslog = build(
        json!({"type": "syslog", "address": "127.0.0.1:9", "transport": "tls", "tls": {"verify": false}}),
        &stop,
    )
    .await;
    let _verified = build(
        json!({"type": "hec", "endpoint": "http://127.0.0.1:9", "token": TEST_TOKEN}),
        &stop,
    )
    .await;
    let lines = warnings.0.lock().unwrap().clone();
    let verify_off: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("tls.verify = false"))
        .collect();
    assert_eq!(verify_off.len(), 2, "one WARN per sink: {lines:#?}");
    for l in verify_off {
        assert!(l.starts_with("WARN"), "{l}");
        assert!(l.contains("NOT verified"), "{l}");
        assert!(l.contains(r#"sink="test""#), "names the sink: {l}");
    }
}

/// Nothing listens at the endpoint: every attempt is a counted connect failure with the
/// reason, the send keeps retrying (never reported delivered), and on shutdown the events
/// come back pending: nothing lost, nothing rejected.
#[tokio::test]
async fn hec_unreachable_counts_connect_failures_and_keeps_the_events() {
    // Reserved (free, and handed to no other test) but never listened on.
    let port = shipper_test_support::ports::reserve_port();
    let stop = CancellationToken::new();
    let sink = build(
        json!({
            "type": "hec",
            "endpoint": format!("http://127.0.0.1:{}", port.port()),
            "token": TEST_TOKEN,
            "retry": { "initial_backoff_ms": 10, "max_backoff_ms": 50 },
        }),
        &stop,
    )
    .await;
    let err = sink.healthcheck().await.expect_err("nothing listens");
    assert!(
        err.message.contains("cannot reach the HEC endpoint"),
        "{err}"
    );

    let send = tokio::spawn(sink.send(render_all(sink.as_ref(), &events(4))));
    eventually_async("connect failures to be counted", || async {
        let m = sink.metrics().snapshot();
        if m.connect_failures >= 3 && m.retries >= 2 {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert!(!send.is_finished(), "not reported delivered");
    let m = sink.metrics().snapshot();
    assert_eq!((m.events_accepted, m.events_rejected), (0, 0), "{m:?}");
    assert!(
        m.last_error.as_deref().unwrap_or("").contains("onnect"),
        "the last error names the connection problem: {m:?}"
    );
    stop.cancel();
    let d = send.await.unwrap();
    assert!(d.cancelled && d.rejected.is_empty(), "{d:?}");
    assert_eq!(d.batch.len(), 4, "the events come back, still pending");
}
