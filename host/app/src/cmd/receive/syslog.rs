//! The syslog half of `shipper receive`: TCP and TLS streams, each connection's framing
//! detected from its first byte (a digit: octet counting, `LEN SP MSG`; anything else: one
//! message per line; RFC 6587 §3.4), and UDP datagrams (RFC 5426). A frame over
//! [`MAX_FRAME_BYTES`] closes its connection, so a broken sender cannot grow memory.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use super::{MAX_FRAME_BYTES, Output, SyslogArgs, Transport, announce};
use crate::exit::{Failure, FailureExt as _};

/// Receives until `shutdown`.
pub async fn serve(
    args: SyslogArgs,
    tls: Option<Arc<rustls::ServerConfig>>,
    out: Arc<Output>,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let listen = args.common.listen;
    let cannot_listen = |e: std::io::Error| {
        anyhow::anyhow!("cannot listen on {listen} ({e}; --listen 127.0.0.1:0 picks a free port)")
    };
    if args.transport == Transport::Udp {
        let socket = tokio::net::UdpSocket::bind(listen)
            .await
            .map_err(cannot_listen)
            .config_error()?;
        announce(&socket.local_addr().runtime_error()?.to_string())?;
        let mut buf = vec![0u8; 65_536];
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                got = socket.recv_from(&mut buf) => match got {
                    Ok((n, _)) => out.event(trim_line_end(&buf[..n])),
                    Err(e) => tracing::warn!(error = %e, "UDP receive failed"),
                },
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(cannot_listen)
        .config_error()?;
    announce(&listener.local_addr().runtime_error()?.to_string())?;
    let acceptor = match args.transport {
        Transport::Tls => tls.map(tokio_rustls::TlsAcceptor::from),
        _ => None,
    };
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (out, acceptor) = (out.clone(), acceptor.clone());
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => read_frames(tls, &out).await,
                    Err(e) => Err(e),
                },
                None => read_frames(stream, &out).await,
            };
            if let Err(e) = result {
                tracing::warn!(%peer, error = %e, "syslog connection closed");
            }
        });
    }
}

/// Reads frames until the peer closes.
async fn read_frames(stream: impl AsyncRead + Unpin, out: &Output) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut frame = Vec::with_capacity(8 << 10);
    loop {
        let first = match reader.fill_buf().await?.first() {
            Some(b) => *b,
            None => return Ok(()),
        };
        frame.clear();
        if first.is_ascii_digit() {
            // `LEN SP MSG`.
            let mut len = Vec::with_capacity(8);
            (&mut reader).take(12).read_until(b' ', &mut len).await?;
            let n: usize = std::str::from_utf8(len.trim_ascii_end())
                .ok()
                .and_then(|t| t.parse().ok())
                .filter(|n| *n <= MAX_FRAME_BYTES)
                .ok_or_else(|| bad_frame("an octet count that is not a number up to 1 MiB"))?;
            frame.resize(n, 0);
            reader.read_exact(&mut frame).await?;
        } else {
            let read = (&mut reader)
                .take(MAX_FRAME_BYTES as u64 + 1)
                .read_until(b'\n', &mut frame)
                .await?;
            if read > MAX_FRAME_BYTES {
                return Err(bad_frame("a line longer than 1 MiB"));
            }
        }
        let message = trim_line_end(&frame);
        if !message.is_empty() {
            out.event(message);
        }
    }
}

fn bad_frame(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the peer sent {what}"),
    )
}

fn trim_line_end(message: &[u8]) -> &[u8] {
    let m = message.strip_suffix(b"\n").unwrap_or(message);
    m.strip_suffix(b"\r").unwrap_or(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn octet_counted_and_lf_frames_are_read_whole() {
        let out = Output::new(0);
        let stream: &[u8] = b"5 hello11 hello\nworld";
        read_frames(stream, &out).await.unwrap();
        assert_eq!(out.events.load(std::sync::atomic::Ordering::Relaxed), 2);
        let out = Output::new(0);
        read_frames(&b"<13>one\n<13>two\r\n<13>three"[..], &out)
            .await
            .unwrap();
        assert_eq!(out.events.load(std::sync::atomic::Ordering::Relaxed), 3);
        let out = Output::new(0);
        let err = read_frames(&b"99999999999 x"[..], &out).await.unwrap_err();
        assert!(err.to_string().contains("octet count"), "{err}");
    }
}
