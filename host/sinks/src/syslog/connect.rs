//! One connection to a syslog receiver, as the writers ask for it: TCP with keepalive and
//! `TCP_NODELAY`, through an HTTP `CONNECT` tunnel when a proxy is set, and TLS on top
//! (docs/rendering.md §6.3 "TCP", §6.5 "TLS"). The writers that own connections are in
//! `transport`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::{SyslogAddress, SyslogSettings, Transport};
use crate::error::{Side, SinkError};

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
    pub(crate) fn new(
        name: &str,
        s: &SyslogSettings,
        address: &SyslogAddress,
    ) -> Result<Self, SinkError> {
        let tls = if s.transport == Transport::Tls {
            let config = s.tls.client_config(name)?;
            Some((Arc::new(config), s.tls.server_name(name, &address.host)?))
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
                &address.host,
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
        tracing::info!(sink = name, address = %address.host, route = %route, "syslog network route");
        Ok(Self {
            name: name.to_owned(),
            host: address.host.clone(),
            port: address.port,
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
