//! The syslog sink: RFC 5424 (default) or RFC 3164 rendered by the host from the plugin's
//! fields, framed per transport, sent over UDP, TCP or TLS.
//!
//! - [`config`]: `SyslogConfig` → `SyslogSettings`.
//! - `render`: header, structured data, MSG, size limit.
//! - `framing`: octet-counting / LF / none, and LF escaping for LF framing.
//! - `transport`: connector (TCP keepalive, TLS + rejection probe), the writer task
//!   (one connection, reconnect, resend), UDP.
//!
//! Delivery semantics: `send` resolves once the batch is written and flushed to the
//! socket. Syslog has no acknowledgement, so "written" is the best a sender can know; the
//! resend window turns a lost connection into duplicates rather than loss for the last
//! `resend_buffer_bytes`. UDP is fire-and-forget.

pub mod config;

mod framing;
mod render;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{Format, Framing, SyslogConfig, SyslogSettings, Transport};

/// One message rendered exactly as the sink renders it, but without framing and without a
/// size limit (for previews such as `shipper plugin test`).
pub fn render_unframed(
    msg: &crate::payload::SyslogMessage,
    format: Format,
    hostname: &str,
    out: &mut Vec<u8>,
) -> Result<(), crate::error::RenderError> {
    let settings = render::RenderSettings {
        format,
        hostname: hostname.to_owned(),
        bom: false,
        rfc3164_offset_secs: 0,
        max_message_bytes: usize::MAX,
        framing: None,
    };
    render::render(msg, &settings, out).map(|_truncated| ())
}

use crate::error::{RenderError, SinkError};
use crate::metrics::SinkMetrics;
use crate::payload::Payload;
use crate::util::batch::{BatchConfig, EventBatch, Lane};
use crate::util::retry::RetryConfig;
use crate::{BoxFuture, Delivery, Sink};
use render::RenderSettings;
use transport::{Connector, Job, Writer};

/// Batches queued for the writer before `send` waits (back-pressure to the pipeline).
const QUEUE_DEPTH: usize = 8;

/// A running syslog sink.
pub struct SyslogSink {
    name: String,
    settings: SyslogSettings,
    render: RenderSettings,
    metrics: Arc<SinkMetrics>,
    kind: Kind,
    _stop_on_drop: DropGuard,
}

enum Kind {
    Stream {
        tx: mpsc::Sender<Job>,
        connector: Arc<Connector>,
    },
    Udp {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    },
}

impl SyslogSink {
    /// Loads TLS files, resolves the default hostname, starts the writer task (TCP/TLS,
    /// which connects on the first batch) or binds the UDP socket. Stops when `shutdown`
    /// fires or the sink is dropped.
    pub async fn build(
        name: &str,
        settings: SyslogSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, SinkError> {
        let hostname = settings.hostname.clone().unwrap_or_else(local_hostname);
        let render = RenderSettings {
            format: settings.format,
            hostname,
            bom: settings.bom,
            rfc3164_offset_secs: settings.rfc3164_offset_secs,
            max_message_bytes: settings.max_message_bytes,
            framing: settings.framing,
        };
        let metrics = Arc::new(SinkMetrics::default());
        let stop = shutdown.child_token();
        let kind = match settings.transport {
            Transport::Udp => {
                let peer = tokio::net::lookup_host((settings.host.as_str(), settings.port))
                    .await
                    .map_err(|e| {
                        SinkError::unavailable(
                            name,
                            format!("cannot resolve {}: {e}", settings.host),
                        )
                    })?
                    .next()
                    .ok_or_else(|| {
                        SinkError::unavailable(name, format!("{} has no address", settings.host))
                    })?;
                let local: SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| SinkError::unavailable(name, format!("bind UDP socket: {e}")))?;
                socket.connect(peer).await.map_err(|e| {
                    SinkError::unavailable(name, format!("UDP connect to {peer}: {e}"))
                })?;
                Kind::Udp {
                    socket: Arc::new(socket),
                    peer,
                }
            }
            Transport::Tcp | Transport::Tls => {
                let connector = Arc::new(Connector::new(name, &settings)?);
                let reconnect = RetryConfig {
                    initial_backoff_ms: settings.reconnect_min.as_millis() as u64,
                    max_backoff_ms: settings.reconnect_max.as_millis() as u64,
                    ..RetryConfig::default()
                }
                .validate()
                .map_err(|e| SinkError::config(name, e.to_string()))?;
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                let writer = Writer {
                    name: name.to_owned(),
                    connector: connector.clone(),
                    metrics: metrics.clone(),
                    shutdown: stop.clone(),
                    write_timeout: settings.write_timeout,
                    reconnect,
                    resend_buffer_bytes: settings.resend_buffer_bytes,
                };
                tokio::spawn(writer.run(rx));
                Kind::Stream { tx, connector }
            }
        };
        Ok(Self {
            name: name.to_owned(),
            settings,
            render,
            metrics,
            kind,
            _stop_on_drop: stop.drop_guard(),
        })
    }
}

/// This machine's host name (Linux), else the NILVALUE.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

impl Sink for SyslogSink {
    fn render(&self, payload: &Payload, out: &mut EventBatch) -> Result<(), RenderError> {
        let start = out.bytes_len();
        let buf = out.buf_mut();
        let truncated = match payload {
            Payload::Syslog(m) => render::render(m, &self.render, buf)?,
            Payload::Raw(r) => render::render_raw(r, &self.render, buf)?,
            Payload::Hec(_) => {
                return Err(RenderError::WrongPayload {
                    payload: "hec",
                    sink: "syslog",
                });
            }
        };
        if truncated {
            self.metrics.truncated();
        }
        framing::frame(buf, start, self.render.framing);
        out.commit(Lane::Default);
        Ok(())
    }

    fn send(&self, batch: EventBatch) -> BoxFuture<'static, Delivery> {
        match &self.kind {
            Kind::Stream { tx, .. } => {
                let tx = tx.clone();
                Box::pin(async move {
                    if batch.is_empty() {
                        return Delivery {
                            rejected: Vec::new(),
                            cancelled: false,
                            batch,
                        };
                    }
                    let (done, rx) = oneshot::channel();
                    if let Err(mpsc::error::SendError(job)) = tx.send(Job { batch, done }).await {
                        return Delivery {
                            rejected: Vec::new(),
                            cancelled: true,
                            batch: job.batch,
                        };
                    }
                    rx.await.unwrap_or_else(|_| Delivery {
                        rejected: Vec::new(),
                        cancelled: true,
                        batch: EventBatch::new(),
                    })
                })
            }
            Kind::Udp { socket, peer } => {
                let socket = socket.clone();
                let peer = *peer;
                let metrics = self.metrics.clone();
                let name = self.name.clone();
                Box::pin(async move {
                    let mut failed = 0u64;
                    for datagram in batch.iter() {
                        if let Err(e) = socket.send(datagram).await {
                            metrics.udp_send_error();
                            if failed == 0 {
                                tracing::warn!(sink = %name, %peer, error = %e, "UDP syslog datagram not sent (UDP is lossy; use tcp or tls for delivery guarantees)");
                            }
                            failed += 1;
                        }
                    }
                    metrics.request(batch.bytes_len() as u64, batch.bytes_len() as u64);
                    metrics.accepted(batch.len() as u64 - failed);
                    Delivery {
                        rejected: Vec::new(),
                        cancelled: false,
                        batch,
                    }
                })
            }
        }
    }

    fn batch_config(&self) -> BatchConfig {
        self.settings.batch
    }

    fn metrics(&self) -> Arc<SinkMetrics> {
        self.metrics.clone()
    }

    /// TCP/TLS: opens (and closes) a connection, including the TLS rejection probe, so a
    /// refused client certificate is reported at start-up. UDP: nothing to check.
    fn healthcheck(&self) -> BoxFuture<'static, Result<(), SinkError>> {
        match &self.kind {
            Kind::Stream { connector, .. } => {
                let connector = connector.clone();
                Box::pin(async move { connector.connect().await.map(drop) })
            }
            Kind::Udp { .. } => Box::pin(async { Ok(()) }),
        }
    }
}
