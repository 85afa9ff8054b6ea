//! Native cost of the plugin's work per log: decode the `LogGroup` bytes in place and write
//! the HEC event, through the same `process` path the component runs (no Wasm, no host).
//! Compare with the runtime figure (`cargo bench -p shipper-runtime`), which adds the
//! boundary crossing, lifting the results into host types and Wasm's own overhead.
//!
//! `cargo bench -p shipper-plugin-splunk-hec` prints µs/log and logs/s; asserts nothing.
//! `SHIPPER_BENCH_SECS` sets the measuring time per line (default 1 s, best of 3 rounds).

use std::hint::black_box;
use std::time::{Duration, Instant};

use shipper_plugin_splunk_hec::SplunkHec;
use shipper_sdk::testing::{TestGroup, TestLog, encode_group, process_encoded};
use shipper_sdk::{Config, Plugin};

const LOGS: usize = 500;

/// nginx access logs with 16 fields (~550 bytes encoded).
fn nginx16() -> TestGroup {
    let logs = (0..LOGS)
        .map(|i| TestLog {
            time: 1_700_000_000 + i as u32,
            time_ns: (i % 2 == 0).then_some(123_456_789),
            contents: [
                (
                    "remote_addr",
                    format!("192.168.{}.{}", i % 256, (i * 7) % 256),
                ),
                ("remote_user", "-".into()),
                ("time_local", "14/Nov/2023:22:13:30 +0000".into()),
                ("request_method", ["GET", "POST", "PUT"][i % 3].into()),
                (
                    "request_uri",
                    format!("/api/v1/orders/{}?page=2&sort=desc", 100_000 + i),
                ),
                ("protocol", "HTTP/1.1".into()),
                ("status", ["200", "301", "404", "500"][i % 4].into()),
                ("body_bytes_sent", format!("{}", 512 + i * 13)),
                ("http_referer", "https://shop.example.com/cart".into()),
                (
                    "http_user_agent",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/120.0 Safari/537.36"
                        .into(),
                ),
                ("request_time", "0.012".into()),
                ("upstream_response_time", "0.011".into()),
                ("upstream_addr", "10.0.0.5:8080".into()),
                ("host", "shop.example.com".into()),
                ("http_x_forwarded_for", "-".into()),
                ("request_id", format!("9f86d081884c7d659a2feaa0c55a{i:04x}")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        })
        .collect();
    TestGroup {
        topic: "nginx_access".into(),
        source: "10.20.30.40".into(),
        tags: vec![
            ("__hostname__".into(), "web-frontend-01".into()),
            ("__path__".into(), "/var/log/nginx/access.log".into()),
        ],
        logs,
    }
}

fn measure_secs() -> f64 {
    std::env::var("SHIPPER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn bench(name: &str, bytes: &[u8], plugin: &SplunkHec) {
    for _ in 0..5 {
        black_box(process_encoded(plugin, black_box(bytes)).expect("valid group"));
    }
    let budget = Duration::from_secs_f64(measure_secs());
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < budget || calls < 10 {
            black_box(process_encoded(plugin, black_box(bytes)).expect("valid group"));
            calls += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(calls));
    }
    let per_log = best / LOGS as f64;
    println!(
        "{name:<44} {:>7.3} µs/log {:>10.0} logs/s",
        per_log * 1e6,
        1.0 / per_log
    );
}

fn plugin(config: &str) -> SplunkHec {
    SplunkHec::init(&mut Config::parse(config).expect("valid JSON")).expect("valid config")
}

fn main() {
    let group = nginx16();
    let bytes = encode_group(&group);
    println!(
        "nginx16: {LOGS} logs, {} bytes encoded ({} per log)",
        bytes.len(),
        bytes.len() / LOGS
    );
    // Unreported warm-up: the first second of a process pays for growing the heap (glibc
    // trims and re-faults it), which a long-running shipper and a wasm instance never see.
    let warm = plugin("{}");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        black_box(process_encoded(&warm, black_box(&bytes)).expect("valid group"));
    }
    bench("splunk-hec object, no metadata", &bytes, &plugin("{}"));
    bench(
        "splunk-hec object, sourcetype+index",
        &bytes,
        &plugin(r#"{"sourcetype":"nginx","index":"web"}"#),
    );
    bench(
        "splunk-hec seed-string",
        &bytes,
        &plugin(r#"{"event_format":"seed-string"}"#),
    );
}
