//! Integration tests of shipper-sinks against real receivers, in one test binary (linked
//! once), one module per receiver:
//! - `hec`: the HEC sink against the in-process test receiver, with every fault.
//! - `hec_endpoints`: the HEC sink over several receivers: balancing, failover, probes.
//! - `rsyslog`: TCP (octet-counted, LF), TLS (gtls, ossl), mutual TLS, UDP, restart.
//! - `syslog_ng`: TLS and the octet-counted `syslog()` TCP port.
//! - `proxy`: syslog TCP through an HTTP `CONNECT` proxy, and its 407.

mod hec; // HEC sink ↔ shipper_test_support::hec_receiver
mod hec_endpoints; // HEC sink ↔ several hec_receivers
mod proxy; // syslog sink ↔ an HTTP CONNECT proxy
mod rsyslog; // syslog sink ↔ a real rsyslogd
mod syslog_ng; // syslog sink ↔ a real syslog-ng

use std::sync::Arc;

use shipper_sinks::{EventBatch, Payload, Sink, SinkConfig};
use tokio_util::sync::CancellationToken;

/// Builds a sink from a JSON config (the same serde shape as the TOML config).
pub async fn build(config: serde_json::Value, shutdown: &CancellationToken) -> Arc<dyn Sink> {
    let config: SinkConfig = serde_json::from_value(config).expect("valid sink config");
    config
        .build("test", shutdown.clone())
        .await
        .expect("sink builds")
}

/// Renders every payload into one batch (panics on a render error).
pub fn render_all(sink: &dyn Sink, payloads: &[Payload]) -> EventBatch {
    let mut batch = EventBatch::new();
    for p in payloads {
        sink.render(p, &mut batch).expect("renders");
    }
    batch
}

/// Multi-line diff-friendly equality for lists of strings (ripgrep's `eqnice!` idea).
#[track_caller]
pub fn assert_lines_eq(actual: &[String], expected: &[String]) {
    if actual != expected {
        panic!(
            "\n--- expected ({}):\n{}\n--- actual ({}):\n{}\n",
            expected.len(),
            expected.join("\n"),
            actual.len(),
            actual.join("\n")
        );
    }
}
