//! The syslog sink: RFC 5424 (default) or RFC 3164 rendered by the host from the plugin's
//! fields, framed per transport, sent over UDP, TCP or TLS.
//!
//! - [`config`]: `SyslogConfig` → `SyslogSettings`.
//! - `render`: header, structured data, MSG, size limit.
//! - `framing`: octet-counting / LF / none, and LF escaping for LF framing.
//! - `connect`: one connection (TCP keepalive, a proxy's `CONNECT` tunnel, TLS + rejection
//!   probe).
//! - `transport`: the writer tasks (a connection each, reconnect, resend; failover or
//!   balance over `addresses`), UDP.
//!
//! Delivery semantics: `send` resolves once the batch is written and flushed to the
//! socket. Syslog has no acknowledgement, so "written" is the best a sender can know; the
//! resend window turns a lost connection into duplicates rather than loss for the last
//! `resend_buffer_bytes`. UDP is fire-and-forget.

pub mod config;

mod connect;
mod framing;
mod render;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{Format, Framing, Mode, SyslogAddress, SyslogConfig, SyslogSettings, Transport};

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

use crate::error::{RenderError, SinkError, SinkErrorKind};
use crate::metrics::{EndpointStatus, SinkMetrics};
use crate::payload::Payload;
use crate::util::batch::{BatchConfig, EventBatch, Lane};
use crate::util::retry::RetryConfig;
use crate::{BoxFuture, Delivery, Sink};
use connect::Connector;
use render::RenderSettings;
use transport::{Job, JobQueue, Route, Target, Writer};

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
        targets: Arc<Vec<Target>>,
    },
    Udp {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    },
}

impl SyslogSink {
    /// Loads TLS files, resolves the default hostname, starts the writer tasks (TCP/TLS,
    /// which connect on their first batch) or binds the UDP socket. Stops when `shutdown`
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
                // Validation allows one address for UDP.
                let host = settings.addresses[0].host.as_str();
                let peer = tokio::net::lookup_host((host, settings.addresses[0].port))
                    .await
                    .map_err(|e| {
                        SinkError::unavailable(name, format!("cannot resolve {host}: {e}"))
                    })?
                    .next()
                    .ok_or_else(|| {
                        SinkError::unavailable(name, format!("{host} has no address"))
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
                let targets = settings
                    .addresses
                    .iter()
                    .map(|a| Ok(Target::new(Connector::new(name, &settings, a)?, a.label())))
                    .collect::<Result<Vec<_>, SinkError>>()?;
                let targets = Arc::new(targets);
                let reconnect = RetryConfig {
                    initial_backoff_ms: settings.reconnect_min.as_millis() as u64,
                    max_backoff_ms: settings.reconnect_max.as_millis() as u64,
                    ..RetryConfig::default()
                }
                .validate()
                .map_err(|e| SinkError::config(name, e.to_string()))?;
                let (tx, queue) = JobQueue::new(QUEUE_DEPTH);
                let routes = Route::for_mode(settings.mode, targets.len());
                let shares_queue = routes.len() > 1;
                for route in routes {
                    let writer = Writer {
                        name: name.to_owned(),
                        targets: targets.clone(),
                        route,
                        shares_queue,
                        queue: queue.clone(),
                        metrics: metrics.clone(),
                        shutdown: stop.clone(),
                        write_timeout: settings.write_timeout,
                        reconnect,
                        resend_buffer_bytes: settings.resend_buffer_bytes,
                    };
                    tokio::spawn(writer.run());
                }
                Kind::Stream { tx, targets }
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
                    if let Err(mpsc::error::SendError(job)) =
                        tx.send(Job::Batch { batch, done }).await
                    {
                        let Job::Batch { batch, .. } = job else {
                            unreachable!("a batch was sent")
                        };
                        return Delivery {
                            rejected: Vec::new(),
                            cancelled: true,
                            batch,
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

    /// TCP/TLS: opens (and closes) a connection to every address, including the TLS
    /// rejection probe, so a refused client certificate is reported at start-up. A TLS
    /// problem on any address is the answer; otherwise healthy when one address accepts
    /// (the others are named in a WARN). UDP: nothing to check.
    fn healthcheck(&self) -> BoxFuture<'static, Result<(), SinkError>> {
        match &self.kind {
            Kind::Stream { targets, .. } => {
                let targets = targets.clone();
                let name = self.name.clone();
                Box::pin(async move {
                    let checks =
                        futures::future::join_all(targets.iter().map(|t| t.connector.connect()))
                            .await;
                    let mut unavailable = None;
                    let mut healthy = 0;
                    for (t, check) in targets.iter().zip(checks) {
                        match check {
                            Ok(_) => healthy += 1,
                            Err(e) if e.kind == SinkErrorKind::Tls => return Err(e),
                            Err(e) => {
                                if targets.len() > 1 {
                                    tracing::warn!(sink = %name, peer = %t.label, error = %e.message, "syslog receiver not reachable yet");
                                }
                                unavailable.get_or_insert(e);
                            }
                        }
                    }
                    match unavailable {
                        Some(e) if healthy == 0 => Err(e),
                        _ => Ok(()),
                    }
                })
            }
            Kind::Udp { .. } => Box::pin(async { Ok(()) }),
        }
    }

    fn endpoints(&self) -> Vec<EndpointStatus> {
        match &self.kind {
            Kind::Stream { targets, .. } => targets.iter().map(Target::status).collect(),
            Kind::Udp { .. } => Vec::new(),
        }
    }
}
