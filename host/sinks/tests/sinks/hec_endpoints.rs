//! The HEC sink over several endpoints (`endpoints = [...]`), each an in-process receiver:
//! requests are balanced over the healthy ones, a request that fails on one is retried on
//! another, a dead endpoint gets nothing until its health probe answers, a 413 lowers the
//! request size of that endpoint only, and a request whose indexer acknowledgement never
//! comes is resent elsewhere after the ack timeout.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use shipper_sinks::payload::{HecBody, HecEvent, Payload};
use shipper_sinks::{EndpointState, EndpointStatus, Sink};
use shipper_test_support::eventually::eventually_async;
use shipper_test_support::hec_receiver::{
    Fault, HecReceiver, HecReceiverConfig, TEST_TOKEN, TokenSpec,
};
use shipper_test_support::ports::reserve_port;
use tokio_util::sync::CancellationToken;

use crate::{build, render_all};

fn config(urls: &[String], extra: Value) -> Value {
    let mut c = json!({
        "type": "hec",
        "endpoints": urls,
        "token": TEST_TOKEN,
        "retry": { "initial_backoff_ms": 10, "max_backoff_ms": 50, "config_error_backoff_ms": 50 },
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

fn event(i: usize) -> Payload {
    Payload::Hec(HecEvent::new(HecBody::Json(format!(
        r#"{{"seq":{i},"pad":"{}"}}"#,
        "x".repeat(200)
    ))))
}

fn events(from: usize, n: usize) -> Vec<Payload> {
    (from..from + n).map(event).collect()
}

fn seqs(rx: &HecReceiver) -> Vec<u64> {
    rx.events()
        .iter()
        .filter_map(|e| e.envelope["event"]["seq"].as_u64())
        .collect()
}

/// Every `seq` the receivers got, sorted.
fn all_seqs(receivers: &[&HecReceiver]) -> Vec<u64> {
    let mut all: Vec<u64> = receivers.iter().flat_map(|r| seqs(r)).collect();
    all.sort_unstable();
    all
}

fn status(sink: &dyn Sink, i: usize) -> EndpointStatus {
    sink.endpoints()[i].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_spreads_requests_and_retries_a_busy_endpoints_share_elsewhere() {
    let a = HecReceiver::start_default().await;
    let b = HecReceiver::start_default().await;
    let busy = HecReceiver::start_default().await;
    busy.push_fault(Fault::busy(), 1_000);
    let stop = CancellationToken::new();
    let urls = [a.url(), b.url(), busy.url()];
    // ~250 B per event, 1 KB requests: each 40-event batch is ten requests.
    let sink = build(config(&urls, json!({"batch_max_bytes": 1_000})), &stop).await;
    for round in 0..10 {
        let d = sink
            .send(render_all(sink.as_ref(), &events(round * 40, 40)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
    }
    assert_eq!(
        all_seqs(&[&a, &b]),
        (0..400).collect::<Vec<_>>(),
        "each event exactly once"
    );
    let (na, nb) = (a.requests().len() as f64, b.requests().len() as f64);
    assert!(
        (na / nb - 1.0).abs() <= 0.5,
        "the two healthy endpoints share the load: {na} vs {nb}"
    );
    assert!(seqs(&busy).is_empty());
    let busy_status = status(sink.as_ref(), 2);
    assert_eq!(busy_status.endpoint, urls[2]);
    assert!(
        busy_status.failures >= 3 && busy_status.events == 0,
        "{busy_status:?}"
    );
    assert!(
        busy.requests().len() < 40,
        "a busy endpoint is backed off, not hammered: {} requests",
        busy.requests().len()
    );
    let m = sink.metrics().snapshot();
    assert_eq!(m.events_accepted, 400);
    assert!(m.retries >= 3, "{m:?}");
    let ok = status(sink.as_ref(), 0);
    assert_eq!((ok.state, ok.in_flight), (EndpointState::Healthy, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_dead_endpoint_gets_nothing_until_its_health_probe_answers() {
    let a = HecReceiver::start_default().await;
    let port = reserve_port();
    let dead_addr = format!("127.0.0.1:{}", port.port());
    let stop = CancellationToken::new();
    let urls = [a.url(), format!("http://{dead_addr}")];
    let sink = build(config(&urls, json!({"batch_max_bytes": 1_000})), &stop).await;
    // One endpoint answers: healthy at start-up, the other named in a WARN only.
    sink.healthcheck().await.expect("one endpoint is enough");
    // Each failed attempt backs the dead endpoint off; the third in a row opens its
    // breaker (state `down`).
    let mut sent: usize = 0;
    while status(sink.as_ref(), 1).state != EndpointState::Down {
        assert!(
            sent < 2_000,
            "the dead endpoint never went down: {:?}",
            status(sink.as_ref(), 1)
        );
        let d = sink
            .send(render_all(sink.as_ref(), &events(sent, 20)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
        sent += 20;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seqs(&a).len(), sent, "everything went to the live endpoint");
    assert!(sink.metrics().snapshot().connect_failures >= 3);

    // It comes back on the same address: the probe finds it and it takes requests again.
    let back = HecReceiver::start_on(&dead_addr, HecReceiverConfig::default()).await;
    eventually_async("the endpoint to be probed back to healthy", || async {
        match status(sink.as_ref(), 1).state {
            EndpointState::Healthy => Ok(()),
            s => Err(format!("{s:?}")),
        }
    })
    .await;
    for round in 0..5 {
        let d = sink
            .send(render_all(sink.as_ref(), &events(sent + round * 20, 20)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
    }
    assert!(
        !seqs(&back).is_empty(),
        "the recovered endpoint takes a share"
    );
    assert_eq!(
        all_seqs(&[&a, &back]),
        (0..sent as u64 + 100).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn hec_413_shrinks_the_requests_of_that_endpoint_only() {
    let small = HecReceiver::start_default().await;
    small.set_max_decoded_body(Some(3_000));
    let large = HecReceiver::start_default().await;
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &[small.url(), large.url()],
            json!({"batch_max_bytes": 20_000, "concurrency": 1}),
        ),
        &stop,
    )
    .await;
    for round in 0..6 {
        let d = sink
            .send(render_all(sink.as_ref(), &events(round * 80, 80)))
            .await;
        assert!(d.is_complete_success(), "{d:?}");
    }
    assert_eq!(all_seqs(&[&small, &large]), (0..480).collect::<Vec<_>>());
    let limit = status(sink.as_ref(), 0).max_request_bytes.unwrap();
    assert!(
        limit <= 3_000,
        "the small endpoint's limit came down: {limit}"
    );
    assert_eq!(status(sink.as_ref(), 1).max_request_bytes, Some(20_000));
    let refused = small.requests().iter().filter(|r| r.status == 413).count();
    let accepted = small.requests().iter().filter(|r| r.status == 200).count();
    assert!(
        accepted > refused,
        "after a few 413s the endpoint gets requests it takes: {refused} refused, {accepted} accepted"
    );
    assert!(
        large
            .requests()
            .iter()
            .any(|r| r.decoded_bytes > 3_000 && r.status == 200),
        "the other endpoint keeps its large requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_unacknowledged_request_is_resent_to_another_endpoint() {
    let ack_token = || HecReceiverConfig {
        tokens: vec![TokenSpec {
            ack: true,
            ..TokenSpec::new(TEST_TOKEN)
        }],
        ..Default::default()
    };
    let a = HecReceiver::start(ack_token()).await;
    let b = HecReceiver::start(ack_token()).await;
    // `a` stores requests but never acknowledges them (an indexer that died after taking
    // the data): after the ack timeout they go to `b`.
    a.set_hold_acks(true);
    let stop = CancellationToken::new();
    let sink = build(
        config(
            &[a.url(), b.url()],
            json!({"ack": true, "ack_poll_interval_ms": 20, "ack_timeout_ms": 200, "batch_max_bytes": 1_000}),
        ),
        &stop,
    )
    .await;
    let d = sink.send(render_all(sink.as_ref(), &events(0, 40))).await;
    assert!(d.is_complete_success(), "{d:?}");
    let acknowledged: BTreeSet<u64> = seqs(&b).into_iter().collect();
    assert_eq!(
        acknowledged,
        (0..40).collect(),
        "every event ends up acknowledged by `b`"
    );
    assert!(!seqs(&a).is_empty(), "`a` took some requests first");
    let channels: BTreeSet<Option<String>> = a
        .events()
        .iter()
        .chain(b.events().iter())
        .map(|e| e.channel.clone())
        .collect();
    assert_eq!(channels.len(), 2, "one ack channel per endpoint");
    assert!(sink.metrics().snapshot().ack_timeouts >= 1);
}
