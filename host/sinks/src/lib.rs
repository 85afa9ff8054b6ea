//! Delivery of formatted events to SIEMs: Splunk HTTP Event Collector and syslog
//! (RFC 5424 / RFC 3164 over UDP, TCP or TLS).
//!
//! Where this sits in the data flow (docs/plugins.md §1 "Overview"): the shard pipeline
//! turns each plugin emit into a [`Payload`], calls [`Sink::render`] to append it to an
//! [`EventBatch`] (one buffer, events stored exactly as they go on the wire), and hands full
//! batches to [`Sink::send`]. The future returned by `send` resolves with a [`Delivery`] once
//! every event is settled: accepted, or rejected with the receiver's reason (for the
//! dead-letter file). Retryable failures never surface: they are retried inside the sink
//! with capped, jittered backoff until they succeed or the shutdown token fires. The sink
//! knows nothing about checkpoints.
//!
//! Layout:
//! - [`payload`]: the sink's payload model, mirroring `wit/shipper.wit`.
//! - [`error`]: [`SinkError`], [`RenderError`], [`ConfigError`].
//! - [`metrics`]: counters a sink keeps ([`SinkMetrics`]) for the app to export.
//! - [`hec`]: Splunk HEC (`/event`, `/raw`, gzip, retries per docs/rendering.md §3.9,
//!   indexer ack).
//! - [`syslog`]: RFC 5424 / 3164 rendering, framing, and the UDP/TCP/TLS transports.
//! - [`preview`]: one payload rendered without a connection (`shipper plugin test`).
//! - [`util`]: what both sinks share: [`util::batch`], [`util::retry`], [`util::tls`].
//!
//! Every sink follows the same three steps, which keep validation pure and testable without
//! sockets or files: a serde `XConfig` (`deny_unknown_fields`, documented fields, `DEFAULT_*`
//! constants), `XConfig::validate()` → `XSettings` (pure), and `X::build(settings, shutdown)`
//! (sockets, TLS files, tasks).
#![deny(missing_docs)]

pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hec;
pub mod metrics;
pub mod payload;
pub mod preview;
pub mod syslog;
pub mod util;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use error::{ConfigError, RenderError, SinkError, SinkErrorKind};
pub use metrics::{EndpointState, EndpointStatus, MetricsSnapshot, SinkMetrics};
pub use payload::{
    Field, HecBody, HecEvent, Payload, SdElement, Severity, SyslogMessage, Timestamp,
};
pub use util::batch::{BatchConfig, EventBatch};

/// A boxed, `Send` future (what [`Sink::send`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A destination for rendered events. Object safe: the app holds an `Arc<dyn Sink>`.
pub trait Sink: Send + Sync {
    /// Renders one payload into `out` (envelope, syslog header, framing). Synchronous and
    /// cheap: called in the shard task for every emit, no allocation per event. On error
    /// `out` is left exactly as it was.
    fn render(&self, payload: &Payload, out: &mut EventBatch) -> Result<(), RenderError>;

    /// Sends every event of `batch`. Resolves when each one is accepted or rejected;
    /// retryable failures are retried inside the sink until they succeed or the shutdown
    /// token passed to `build` fires (then [`Delivery::cancelled`] is set).
    fn send(&self, batch: EventBatch) -> BoxFuture<'static, Delivery>;

    /// When the pipeline should hand a batch to [`Sink::send`] (size and age triggers).
    fn batch_config(&self) -> BatchConfig;

    /// The sink's counters, for export (`shipper_sink_*`).
    fn metrics(&self) -> Arc<SinkMetrics>;

    /// Bytes a send of `rendered` bytes of events holds besides them while it is in flight
    /// (a compressed or copied request body), as an upper estimate: the pipeline charges
    /// them to the memory budget with the batch. The default: nothing besides the batch.
    fn send_overhead_bytes(&self, rendered: usize) -> usize {
        let _ = rendered;
        0
    }

    /// A start-up check that names the real problem (bad URL, bad token, TLS rejected).
    /// The default says "healthy".
    fn healthcheck(&self) -> BoxFuture<'static, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Each endpoint's state and counters (HEC URLs, syslog addresses), for `/health` and
    /// the per-endpoint metrics. The default: none to report.
    fn endpoints(&self) -> Vec<EndpointStatus> {
        Vec::new()
    }
}

/// The outcome of one [`Sink::send`]: every event not listed in `rejected` was accepted,
/// unless `cancelled` is set.
#[derive(Debug)]
pub struct Delivery {
    /// Events the receiver refused for good (data errors), in index order. They go to the
    /// dead-letter file with `reason`; everything else is delivered.
    pub rejected: Vec<Rejection>,
    /// Shutdown interrupted the delivery: events not in `rejected` may or may not have
    /// arrived, so nothing of this batch may be checkpointed.
    pub cancelled: bool,
    /// The batch that was sent, handed back so the pipeline can read rejected events and
    /// reuse the buffer ([`EventBatch::clear`]).
    pub batch: EventBatch,
}

impl Delivery {
    /// True when every event was accepted.
    pub fn is_complete_success(&self) -> bool {
        self.rejected.is_empty() && !self.cancelled
    }
}

/// One event the receiver refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the event in the batch (the order of [`Sink::render`] calls).
    pub index: usize,
    /// Why, in the receiver's words (for HEC: status, code, text and the event number).
    pub reason: String,
}

/// Any sink's configuration, tagged by `type` (`"hec"` or `"syslog"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Splunk HTTP Event Collector.
    Hec(hec::HecConfig),
    /// Syslog over UDP, TCP or TLS.
    Syslog(syslog::SyslogConfig),
}

impl SinkConfig {
    /// Checks every value (pure: no file, environment or network access).
    pub fn validate(&self) -> Result<SinkSettings, ConfigError> {
        match self {
            SinkConfig::Hec(c) => c.validate().map(SinkSettings::Hec),
            SinkConfig::Syslog(c) => c.validate().map(SinkSettings::Syslog),
        }
    }

    /// Validates the config and builds the sink (see [`SinkSettings::build`]).
    pub async fn build(
        &self,
        name: &str,
        shutdown: CancellationToken,
    ) -> Result<Arc<dyn Sink>, SinkError> {
        let settings = self
            .validate()
            .map_err(|e| SinkError::config(name, e.to_string()))?;
        settings.build(name, shutdown).await
    }
}

/// Which kind of sink a configuration describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// Splunk HTTP Event Collector.
    Hec,
    /// Syslog.
    Syslog,
}

impl SinkKind {
    /// `hec` or `syslog`, as the config's `type` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Hec => "hec",
            SinkKind::Syslog => "syslog",
        }
    }
}

/// A sink's validated settings: what [`SinkConfig::validate`] returns, ready to build.
#[derive(Debug, Clone)]
pub enum SinkSettings {
    /// Splunk HTTP Event Collector.
    Hec(hec::HecSettings),
    /// Syslog over UDP, TCP or TLS.
    Syslog(syslog::SyslogSettings),
}

impl SinkSettings {
    /// The kind of sink.
    pub fn kind(&self) -> SinkKind {
        match self {
            SinkSettings::Hec(_) => SinkKind::Hec,
            SinkSettings::Syslog(_) => SinkKind::Syslog,
        }
    }

    /// Builds the sink: sockets, TLS files, background tasks. `name` labels logs and
    /// errors; `shutdown` stops every retry loop and task.
    pub async fn build(
        &self,
        name: &str,
        shutdown: CancellationToken,
    ) -> Result<Arc<dyn Sink>, SinkError> {
        Ok(match self {
            SinkSettings::Hec(s) => Arc::new(hec::HecSink::build(name, s.clone(), shutdown).await?),
            SinkSettings::Syslog(s) => {
                Arc::new(syslog::SyslogSink::build(name, s.clone(), shutdown).await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_config_is_tagged_and_strict() {
        let c: SinkConfig =
            serde_json::from_str(r#"{"type":"hec","endpoint":"https://h:8088","token":"t"}"#)
                .unwrap();
        assert!(matches!(c, SinkConfig::Hec(_)));
        let c: SinkConfig =
            serde_json::from_str(r#"{"type":"syslog","address":"h:6514","transport":"tls"}"#)
                .unwrap();
        assert!(matches!(c, SinkConfig::Syslog(_)));
        let e =
            serde_json::from_str::<SinkConfig>(r#"{"type":"syslog","address":"h:1","adress":"x"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = serde_json::from_str::<SinkConfig>(r#"{"type":"kafka"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[tokio::test]
    async fn build_reports_invalid_settings_with_the_field() {
        let c: SinkConfig =
            serde_json::from_str(r#"{"type":"hec","endpoint":"ftp://h","token":"t"}"#).unwrap();
        let e = c
            .build("s", CancellationToken::new())
            .await
            .err()
            .expect("invalid endpoint");
        assert_eq!(e.kind, SinkErrorKind::Config);
        assert!(e.to_string().contains("`endpoint`"), "{e}");
    }
}
