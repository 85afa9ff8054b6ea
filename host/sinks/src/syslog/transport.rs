//! Connections to a syslog receiver and the writer task that owns one.
//!
//! TCP and TLS use ONE long-lived connection, owned by a single writer task fed through a
//! bounded queue (so batches from several shard tasks go out in order and never interleave).
//! Reliability measures (docs/rendering.md §6.3 "TCP", §6.5 "TLS"):
//! - TCP keepalive (socket2) and `TCP_NODELAY` (batches are already large);
//! - the read side is watched all the time: syslog receivers never send, so EOF, a reset or
//!   a TLS alert means the peer closed, and the connection is dropped at once;
//! - after a TLS handshake the client waits `tls_probe_ms` for a rejection: under TLS 1.3 a
//!   server that refuses our client certificate aborts only after our handshake finished,
//!   and data written meanwhile would vanish;
//! - the last `resend_buffer_bytes` of written frames are kept and written again after a
//!   reconnect (at-least-once: duplicates instead of loss), reconnecting at once when the
//!   peer closed with unconfirmed data, with bounded, jittered backoff;
//! - a batch is written with one `write_all` (TLS makes 16 KiB records of it, not one per
//!   event) and flushed; `send` resolves after that.
//!
//! With a proxy (`shipper_net::proxy`), TCP and TLS go through an HTTP `CONNECT` tunnel to
//! the receiver (TLS is end to end, inside the tunnel); only `http://` proxies are spoken
//! here, an `https://` one is refused when the sink is built.
//!
//! UDP has none of this: one datagram per message, errors counted.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use super::config::{SyslogSettings, Transport};
use crate::error::{Side, SinkError};
use crate::metrics::SinkMetrics;
use crate::util::batch::EventBatch;
use crate::util::retry::{Cancelled, RetrySettings, sleep_or_cancel};
use crate::{Delivery, SinkErrorKind};

/// A TCP or TLS byte stream.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Learns that the server sent a TLS 1.3 session ticket. OpenSSL and GnuTLS servers send
/// tickets only after they verified the client's Finished (and certificate), so a ticket
/// ends the post-handshake rejection probe early. Tickets are not kept: every connect is a
/// full handshake (connections are long-lived, and no resumption can skip a certificate
/// check the receiver might have tightened).
#[derive(Debug, Default)]
struct TicketSignal {
    notify: tokio::sync::Notify,
}

impl rustls::client::ClientSessionStore for TicketSignal {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.notify.notify_one();
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// Opens connections (TCP, then TLS when configured).
pub(crate) struct Connector {
    name: String,
    host: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    connect_timeout: Duration,
    keepalive: Option<Duration>,
    tls_probe: Duration,
    route: shipper_net::proxy::Route,
}

impl Connector {
    pub(crate) fn new(name: &str, s: &SyslogSettings) -> Result<Self, SinkError> {
        let tls = if s.transport == Transport::Tls {
            let config = s.tls.client_config(name)?;
            Some((Arc::new(config), s.tls.server_name(name, &s.host)?))
        } else {
            None
        };
        let route = if s.transport == Transport::Udp {
            shipper_net::proxy::Route::Direct("UDP is never proxied")
        } else {
            shipper_net::proxy::route(
                &s.proxy,
                "sink",
                &|k| std::env::var(k).ok(),
                s.transport == Transport::Tls,
                &s.host,
            )
            .map_err(|e| SinkError::config(name, e.to_string()))?
        };
        if let Some(p) = route.proxy()
            && p.scheme == shipper_net::proxy::ProxyScheme::Https
        {
            return Err(SinkError::config(
                name,
                format!(
                    "{}: the syslog sink speaks CONNECT to http:// proxies only; use the \
                     proxy's plain-HTTP port (the syslog TLS session stays end to end)",
                    p.origin
                ),
            ));
        }
        tracing::info!(sink = name, route = %route, "syslog network route");
        Ok(Self {
            name: name.to_owned(),
            host: s.host.clone(),
            port: s.port,
            tls,
            connect_timeout: s.connect_timeout,
            keepalive: s.keepalive,
            tls_probe: s.tls_probe,
            route,
        })
    }

    fn peer(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Connects, sets keepalive, does the TLS handshake and the rejection probe.
    pub(crate) async fn connect(&self) -> Result<Stream, SinkError> {
        let peer = self.peer();
        let unavailable = |m: String| SinkError::unavailable(&self.name, m);
        let proxy = self.route.proxy();
        let (host, port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (self.host.as_str(), self.port),
        };
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.connect_timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| unavailable(format!("resolving {peer} timed out")))?
                .map_err(|e| unavailable(format!("cannot resolve {peer}: {e}")))?
                .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
                Err(_) => {
                    last = Some(format!(
                        "{addr}: connect timed out after {:?}",
                        self.connect_timeout
                    ))
                }
            }
        }
        let mut tcp = tcp.ok_or_else(|| match proxy {
            Some(p) => unavailable(format!(
                "cannot connect to the proxy {} (set by {}) for syslog receiver {peer} ({}); \
                 check that the proxy runs and the proxy URL is right",
                p.url(),
                p.origin,
                last.clone().unwrap_or_default()
            )),
            None => unavailable(format!(
                "cannot connect to syslog receiver {peer} ({}); is it running and listening?",
                last.clone().unwrap_or_default()
            )),
        })?;
        if let Some(p) = proxy {
            let tunnel = shipper_net::proxy::connect_tunnel(&mut tcp, p, &self.host, self.port);
            match tokio::time::timeout(self.connect_timeout, tunnel).await {
                Ok(Ok(())) => {}
                Ok(Err(e @ shipper_net::proxy::TunnelError::Refused { .. })) => {
                    return Err(SinkError::config(&self.name, e.to_string()));
                }
                Ok(Err(e)) => return Err(unavailable(e.to_string())),
                Err(_) => {
                    return Err(unavailable(format!(
                        "the proxy {} did not answer the CONNECT to {peer} within {:?}",
                        p.url(),
                        self.connect_timeout
                    )));
                }
            }
        }
        tcp.set_nodelay(true)
            .map_err(|e| unavailable(format!("{peer}: set TCP_NODELAY: {e}")))?;
        if let Some(idle) = self.keepalive {
            let ka = TcpKeepalive::new()
                .with_time(idle)
                .with_interval(Duration::from_secs(10))
                .with_retries(3);
            SockRef::from(&tcp)
                .set_tcp_keepalive(&ka)
                .map_err(|e| unavailable(format!("{peer}: set keepalive: {e}")))?;
        }
        let Some((config, server_name)) = &self.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        // A config per connection, so the ticket signal belongs to this handshake only.
        let signal = Arc::new(TicketSignal::default());
        let mut config = rustls::ClientConfig::clone(config);
        config.resumption = rustls::client::Resumption::store(signal.clone());
        let connector = TlsConnector::from(Arc::new(config));
        let mut tls = tokio::time::timeout(self.connect_timeout, connector.connect(server_name.clone(), tcp))
            .await
            .map_err(|_| unavailable(format!("TLS handshake with {peer} timed out")))?
            .map_err(|e| {
                SinkError::tls(
                    &self.name,
                    Side::Server,
                    format!(
                        "TLS handshake with {peer} failed: {e}; check tls.ca_file (the CA that signed the receiver's certificate), tls.server_name, and tls.cert_file/tls.key_file if the receiver requires client certificates"
                    ),
                )
            })?;
        // TLS 1.2 refuses a client certificate inside the handshake; nothing more to learn.
        if tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2) {
            return Ok(Stream::Tls(Box::new(tls)));
        }
        // TLS 1.3: a client-certificate rejection arrives after our Finished. Syslog
        // receivers never send application data, so EOF or an alert here is a refusal; a
        // session ticket (or silence for `tls_probe_ms`) means we were accepted.
        let mut byte = [0u8; 1];
        let probe = tokio::select! {
            r = tls.read(&mut byte) => Some(r),
            () = signal.notify.notified() => None,
            () = tokio::time::sleep(self.tls_probe) => None,
        };
        match probe {
            None => Ok(Stream::Tls(Box::new(tls))),
            Some(Ok(n)) if n > 0 => Ok(Stream::Tls(Box::new(tls))),
            Some(Ok(_)) => Err(SinkError::tls(
                &self.name,
                Side::Server,
                format!(
                    "{peer} closed the TLS connection right after the handshake: it most likely rejected our client certificate; set tls.cert_file and tls.key_file to a certificate the receiver trusts"
                ),
            )),
            Some(Err(e)) => Err(SinkError::tls(
                &self.name,
                Side::Server,
                format!(
                    "{peer} aborted the TLS session right after the handshake ({e}): it most likely rejected our client certificate; set tls.cert_file and tls.key_file to a certificate the receiver trusts"
                ),
            )),
        }
    }
}

/// One batch queued for the writer.
pub(crate) struct Job {
    pub batch: EventBatch,
    pub done: oneshot::Sender<Delivery>,
}

/// Recently written batches, for resending after a reconnect.
struct ResendWindow {
    batches: VecDeque<Vec<u8>>,
    bytes: usize,
    cap: usize,
    spare: Vec<Vec<u8>>,
}

impl ResendWindow {
    fn new(cap: usize) -> Self {
        Self {
            batches: VecDeque::new(),
            bytes: 0,
            cap,
            spare: Vec::new(),
        }
    }

    fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        self.bytes += v.len();
        self.batches.push_back(v);
        // Keep at least the newest batch even when it alone exceeds the cap.
        while self.bytes > self.cap && self.batches.len() > 1 {
            let old = self.batches.pop_front().expect("len > 1");
            self.bytes -= old.len();
            if self.spare.len() < 4 {
                self.spare.push(old);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

struct Conn {
    reader: ReadHalf<Stream>,
    writer: WriteHalf<Stream>,
}

/// The writer task: owns the connection, writes queued batches in order.
pub(crate) struct Writer {
    pub name: String,
    pub connector: Arc<Connector>,
    pub metrics: Arc<SinkMetrics>,
    pub shutdown: CancellationToken,
    pub write_timeout: Duration,
    pub reconnect: RetrySettings,
    pub resend_buffer_bytes: usize,
}

/// Resolves when the peer closes the connection (or forever without one).
async fn peer_closed(conn: &mut Option<Conn>) -> io::Result<()> {
    let Some(c) = conn else {
        return std::future::pending().await;
    };
    let mut scratch = [0u8; 256];
    loop {
        match c.reader.read(&mut scratch).await {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the receiver closed the connection",
                ));
            }
            Ok(_) => {} // receivers do not talk; ignore
            Err(e) => return Err(e),
        }
    }
}

impl Writer {
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut conn: Option<Conn> = None;
        let mut window = ResendWindow::new(self.resend_buffer_bytes);
        loop {
            let job = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return,
                Err(e) = peer_closed(&mut conn) => {
                    conn = None;
                    self.metrics.disconnect();
                    tracing::warn!(sink = %self.name, peer = %self.connector.peer(), error = %e, "syslog connection lost; reconnecting to resend what may not have arrived");
                    if !window.is_empty() {
                        match self.reconnect(&mut window).await {
                            Ok(c) => conn = Some(c),
                            Err(Cancelled) => return,
                        }
                    }
                    continue;
                }
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let Job { batch, done } = job;
            loop {
                let c = match &mut conn {
                    Some(c) => c,
                    None => match self.reconnect(&mut window).await {
                        Ok(c) => conn.insert(c),
                        Err(Cancelled) => {
                            let _ = done.send(Delivery {
                                rejected: Vec::new(),
                                cancelled: true,
                                batch,
                            });
                            return;
                        }
                    },
                };
                match self.write(c, batch.bytes()).await {
                    Ok(()) => {
                        window.push(batch.bytes());
                        self.metrics
                            .request(batch.bytes_len() as u64, batch.bytes_len() as u64);
                        self.metrics.accepted(batch.len() as u64);
                        let _ = done.send(Delivery {
                            rejected: Vec::new(),
                            cancelled: false,
                            batch,
                        });
                        break;
                    }
                    Err(e) => {
                        conn = None;
                        self.metrics.disconnect();
                        self.metrics.retry();
                        tracing::warn!(sink = %self.name, peer = %self.connector.peer(), error = %e, "syslog write failed; reconnecting and resending");
                    }
                }
            }
        }
    }

    async fn write(&self, c: &mut Conn, data: &[u8]) -> io::Result<()> {
        let io = async {
            c.writer.write_all(data).await?;
            c.writer.flush().await
        };
        tokio::select! {
            r = tokio::time::timeout(self.write_timeout, io) => r.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, format!("write stalled for {:?}", self.write_timeout)))),
            () = self.shutdown.cancelled() => Err(io::Error::new(io::ErrorKind::Interrupted, "shutting down")),
        }
    }

    /// Connects (with bounded, jittered backoff) and resends the window.
    async fn reconnect(&self, window: &mut ResendWindow) -> Result<Conn, Cancelled> {
        let mut backoff = self.reconnect.backoff();
        loop {
            if self.shutdown.is_cancelled() {
                return Err(Cancelled);
            }
            match self.connector.connect().await {
                Ok(stream) => {
                    self.metrics.connect();
                    let (reader, writer) = tokio::io::split(stream);
                    let mut c = Conn { reader, writer };
                    let mut resent = 0;
                    let mut ok = true;
                    for b in &window.batches {
                        if let Err(e) = self.write(&mut c, b).await {
                            tracing::warn!(sink = %self.name, peer = %self.connector.peer(), error = %e, "resend after reconnect failed");
                            self.metrics.disconnect();
                            ok = false;
                            break;
                        }
                        resent += b.len();
                    }
                    if ok {
                        if resent > 0 {
                            self.metrics.resent(resent as u64);
                            tracing::info!(sink = %self.name, peer = %self.connector.peer(), bytes = resent, "reconnected; resent recent messages (duplicates are possible)");
                        } else {
                            tracing::info!(sink = %self.name, peer = %self.connector.peer(), "connected");
                        }
                        return Ok(c);
                    }
                }
                Err(e) => {
                    self.metrics.connect_failure(&e.message);
                    if e.kind == SinkErrorKind::Tls {
                        tracing::error!(sink = %self.name, error = %e.message, "syslog TLS connection refused; nothing is dropped, retrying");
                    } else {
                        tracing::warn!(sink = %self.name, error = %e.message, "syslog receiver unreachable; retrying");
                    }
                }
            }
            sleep_or_cancel(
                backoff.next_delay().max(Duration::from_millis(10)),
                &self.shutdown,
            )
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_newest_bytes() {
        let mut w = ResendWindow::new(10);
        w.push(b"aaaa");
        w.push(b"bbbb");
        assert_eq!(w.batches.len(), 2);
        w.push(b"cccc");
        assert_eq!(w.batches, [b"bbbb".to_vec(), b"cccc".to_vec()]);
        w.push(&[b'x'; 50]);
        assert_eq!(
            w.batches.len(),
            1,
            "a batch over the cap is still kept alone"
        );
        let mut off = ResendWindow::new(0);
        off.push(b"a");
        assert!(off.is_empty());
    }
}
