//! Sink micro-benchmark: events/s, MB/s and MB per CPU-second for the HEC sink (gzip on and
//! off) against the in-process test receiver in discard mode, and for the syslog sink over
//! TCP and TLS against an in-process tokio sink that reads and drops (rsyslog itself would
//! be the bottleneck). Rendering is included: it is the sink's share of the pipeline.
//!
//! `cargo bench -p shipper-sinks` (optionally `-- SECONDS`, default 3 per case; `-- far`
//! runs only the far-SIEM cases). Figures are
//! printed, never asserted: timings on a shared machine vary too much between runs to pass or
//! fail on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;
use shipper_sinks::payload::{
    Field, HecBody, HecEvent, Payload, Severity, SyslogMessage, Timestamp,
};
use shipper_sinks::{EventBatch, Sink, SinkConfig};
use shipper_test_support::certs::TestPki;
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig, TEST_TOKEN};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Requests/batches in flight, as several shard pipelines would keep.
const IN_FLIGHT: usize = 4;

fn nginx_json(i: usize) -> String {
    format!(
        r#"{{"remote_addr":"10.{}.{}.{}","remote_user":"-","time_local":"24/Nov/2026:13:00:{:02} +0800","request":"GET /api/v1/items/{i}?page={} HTTP/1.1","status":"{}","body_bytes_sent":"{}","http_referer":"https://www.example.com/list?page={}","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","request_time":"0.{:03}","upstream_response_time":"0.{:03}","host":"api.example.com","x_forwarded_for":"203.0.113.{}","request_id":"{:032x}"}}"#,
        i % 256,
        (i / 256) % 256,
        i % 7,
        i % 60,
        i % 50,
        [200, 200, 200, 304, 404, 500][i % 6],
        1000 + i % 50_000,
        i % 30,
        i % 1000,
        (i * 7) % 1000,
        i % 256,
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

fn hec_payloads() -> Vec<Payload> {
    (0..4096)
        .map(|i| {
            Payload::Hec(HecEvent {
                body: HecBody::Json(nginx_json(i)),
                time: Some(Timestamp {
                    seconds: 1_795_000_000 + i as i64,
                    nanos: (i as u32 % 1000) * 1_000_000,
                }),
                host: Some("web-01".into()),
                source: Some("sls:prod/nginx-access".into()),
                sourcetype: Some("_json".into()),
                index: Some("main".into()),
                fields: vec![Field::new("shard", (i % 4).to_string())],
            })
        })
        .collect()
}

fn syslog_payloads() -> Vec<Payload> {
    (0..4096)
        .map(|i| {
            Payload::Syslog(SyslogMessage {
                facility: 16,
                severity: Severity::Informational,
                timestamp: Some(Timestamp {
                    seconds: 1_795_000_000 + i as i64,
                    nanos: 123_456_000,
                }),
                hostname: Some("web-01".into()),
                app_name: Some("nginx".into()),
                proc_id: None,
                msg_id: Some("access".into()),
                structured_data: vec![],
                msg: nginx_json(i),
            })
        })
        .collect()
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Renders and sends batches for `secs`, keeping `IN_FLIGHT` sends outstanding.
async fn run(label: &str, sink: Arc<dyn Sink>, payloads: &[Payload], secs: f64) {
    let _ = run_with(label, sink, payloads, secs, IN_FLIGHT).await;
}

/// [`run`] with `in_flight` batches handed to the sink at once; the rendered MB/s over the
/// whole run and over its second half (after any climb of an adaptive limit).
async fn run_with(
    label: &str,
    sink: Arc<dyn Sink>,
    payloads: &[Payload],
    secs: f64,
    in_flight_batches: usize,
) -> (f64, f64) {
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut inflight = FuturesUnordered::new();
    let mut spare: Vec<EventBatch> = Vec::new();
    let mut i = 0;
    // Bytes acknowledged, and the moment the second half began with how many.
    let mut acked = 0u64;
    let mut half: Option<(f64, u64)> = None;
    while start.elapsed().as_secs_f64() < secs {
        if half.is_none() && start.elapsed().as_secs_f64() >= secs / 2.0 {
            half = Some((start.elapsed().as_secs_f64(), acked));
        }
        // Read per batch, as the pipeline does: adaptive concurrency grows the request size.
        let max = sink.batch_config().max_bytes;
        let mut batch = spare
            .pop()
            .unwrap_or_else(|| EventBatch::with_capacity(max + 64 * 1024, max / 256));
        while batch.bytes_len() < max {
            sink.render(&payloads[i % payloads.len()], &mut batch)
                .expect("render");
            i += 1;
        }
        events += batch.len() as u64;
        bytes += batch.bytes_len() as u64;
        inflight.push(sink.send(batch));
        if inflight.len() >= in_flight_batches {
            let d = inflight.next().await.expect("in flight");
            assert!(d.is_complete_success(), "{label}: {d:?}");
            acked += d.batch.bytes_len() as u64;
            let mut b = d.batch;
            b.clear();
            spare.push(b);
        }
    }
    while let Some(d) = inflight.next().await {
        assert!(d.is_complete_success(), "{label}: {d:?}");
        acked += d.batch.bytes_len() as u64;
    }
    let wall = start.elapsed().as_secs_f64();
    let (t_half, acked_half) = half.unwrap_or((0.0, 0));
    let second_half = (acked - acked_half) as f64 / 1e6 / (wall - t_half);
    let cpu = cpu_seconds() - cpu0;
    let mb = bytes as f64 / 1e6;
    let m = sink.metrics().snapshot();
    println!(
        "{label:<28} {:>10.0} events/s {:>8.1} MB/s   {:>7.1} MB per CPU-s   ({events} events, {mb:.0} MB rendered, {:.0} MB on the wire, {:.1} s, {:.2} CPU-s)",
        events as f64 / wall,
        mb / wall,
        if cpu > 0.0 { mb / cpu } else { f64::NAN },
        m.wire_bytes as f64 / 1e6,
        wall,
        cpu
    );
    (mb / wall, second_half)
}

async fn build(config: serde_json::Value, stop: &CancellationToken) -> Arc<dyn Sink> {
    serde_json::from_value::<SinkConfig>(config)
        .expect("config")
        .build("bench", stop.clone())
        .await
        .expect("build")
}

/// A syslog receiver that reads and drops everything (TLS when `tls` is set).
async fn drain_server(tls: Option<&TestPki>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tls.map(|pki| {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(pki.server_cert())
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.server_key()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                match acceptor {
                    Some(a) => {
                        if let Ok(mut t) = a.accept(s).await {
                            while matches!(t.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    }
                    None => {
                        let mut s = s;
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let only_far = std::env::args().skip(1).any(|a| a == "far");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let stop = CancellationToken::new();
        println!("shipper-sinks benchmark: {secs} s per case, {IN_FLIGHT} batches in flight, nginx-like JSON events (~600 B)");
        let rx = HecReceiver::start(HecReceiverConfig { discard: true, ..Default::default() }).await;
        let hec = hec_payloads();
        if !only_far {
            for gzip in [true, false] {
                let sink = build(json!({"type": "hec", "endpoint": rx.url(), "token": TEST_TOKEN, "gzip": gzip}), &stop).await;
                run(if gzip { "HEC /event gzip L1" } else { "HEC /event no gzip" }, sink, &hec, secs).await;
            }
            let syslog = syslog_payloads();
            let tcp = drain_server(None).await;
            let sink = build(json!({"type": "syslog", "address": format!("127.0.0.1:{tcp}")}), &stop).await;
            run("syslog 5424 TCP octet", sink, &syslog, secs).await;
            let pki = TestPki::generate();
            let tls = drain_server(Some(&pki)).await;
            let sink = build(
                json!({"type": "syslog", "address": format!("127.0.0.1:{tls}"), "transport": "tls", "tls": {"ca_file": pki.ca()}}),
                &stop,
            )
            .await;
            run("syslog 5424 TLS octet", sink, &syslog, secs).await;
        }

        // A SIEM 100 ms away that serves 8 requests at a time and answers 503 beyond
        // (docs/rendering.md §3.16): fixed against adaptive concurrency, 16 batches offered
        // at once, against the same sink on loopback. Adaptive starts at 1 and needs a few
        // round trips to climb, so these cases run at least 20 s, and the second half of
        // each is reported on its own.
        let far_secs = secs.max(20.0);
        let loopback = {
            let sink = build(json!({"type": "hec", "endpoint": rx.url(), "token": TEST_TOKEN}), &stop).await;
            run_with("HEC loopback, 16 offered", sink, &hec, far_secs, 16).await
        };
        println!("    second half: {:.1} MB/s", loopback.1);
        for concurrency in [json!(4), json!(8), json!("adaptive")] {
            let far = HecReceiver::start(HecReceiverConfig { discard: true, ..Default::default() }).await;
            far.set_delay(Some(Duration::from_millis(100)));
            far.set_max_concurrent(Some(8));
            let sink = build(
                json!({"type": "hec", "endpoint": far.url(), "token": TEST_TOKEN, "concurrency": concurrency}),
                &stop,
            )
            .await;
            let label = format!("HEC 100 ms, serves 8, {concurrency}");
            let rate = run_with(&label, sink.clone(), &hec, far_secs, 16).await;
            let (served, _) = far.discarded();
            let refused = far.busy_refusals();
            println!(
                "    {:.1} % of loopback ({:.1} % in the second halves: {:.1} against {:.1} MB/s); {refused} of {} requests refused (503): {:.2} %; at the end: {} in flight at most, {:.1} MB per request",
                100.0 * rate.0 / loopback.0,
                100.0 * rate.1 / loopback.1,
                rate.1,
                loopback.1,
                served + refused,
                100.0 * refused as f64 / (served + refused).max(1) as f64,
                sink.endpoints()[0].concurrency_limit.unwrap_or(0),
                sink.batch_config().max_bytes as f64 / 1e6
            );
        }
        stop.cancel();
    });
}
