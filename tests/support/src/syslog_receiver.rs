//! An in-process syslog receiver for benchmarks: TCP or TLS on `127.0.0.1:0`, RFC 6587
//! octet-counting (`LEN SP MSG`) and LF-terminated frames (what the seed script's
//! `SyslogClient` sends) on the same port, told apart per frame by the first byte. It counts
//! instead of storing: each frame is checked (starts with `<`, length consistent) and the
//! benchmark fields are tallied ([`crate::event_tally`]). rsyslog or syslog-ng would be the
//! bottleneck at shipper's rates; their guards ([`crate::rsyslog`],
//! [`crate::syslog_ng`]) are for correctness tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::event_tally::{EventTally, Hit, now_ns, scan};

/// Bytes read per `read` call (and the initial buffer size).
const READ_CHUNK: usize = 256 * 1024;
/// Longest octet count accepted (digits); a longer prefix is a framing error.
const MAX_LEN_DIGITS: usize = 9;

/// A running receiver; stops (with its connections) on drop.
#[derive(Debug)]
pub struct SyslogReceiver {
    addr: SocketAddr,
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SyslogReceiver {
    /// Binds `127.0.0.1:0`; TLS with this certificate chain and key (PEM) when given.
    pub async fn start(tls: Option<(&Path, &Path)>, tally: Arc<EventTally>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tls.map(|(cert, key)| crate::hec_receiver::tls_acceptor(cert, key));
        let is_tls = acceptor.is_some();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let tally = tally.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                serve(tls, &tally).await;
                            }
                        }
                        None => serve(stream, &tally).await,
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            tls: is_tls,
            task,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

async fn serve<S: AsyncRead + Unpin>(mut stream: S, tally: &EventTally) {
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut hits: Vec<Hit> = Vec::new();
    loop {
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let n = match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => {
                buf.truncate(len);
                break;
            }
            Ok(n) => n,
        };
        buf.truncate(len + n);
        let received = now_ns();
        hits.clear();
        // Frame by frame: an octet-counted frame is followed directly by the next one's
        // length digits, which would otherwise run into the last value's digits.
        let frames = split_frames(&buf, |frame| scan(frame, &mut hits));
        let bad = frames.bad + frames.frames.abs_diff(hits.len() as u64);
        tally.record(&hits, n, n, received);
        tally.note_validation(frames.frames, bad);
        buf.drain(..frames.consumed);
    }
    if !buf.is_empty() {
        // A partial frame at the end of the connection.
        tally.note_validation(1, 1);
    }
}

/// What [`split_frames`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frames {
    /// Bytes of `buf` that hold complete frames (and skipped junk).
    consumed: usize,
    /// Complete frames.
    frames: u64,
    /// Frames that do not start with `<PRI>`, or junk bytes between frames.
    bad: u64,
}

/// Splits the complete frames at the front of `buf`: octet-counted when a frame starts with
/// a digit, LF-terminated when it starts with `<`; stray CR/LF between frames are skipped.
/// `each` gets every complete frame's message (without length prefix or LF).
fn split_frames(buf: &[u8], mut each: impl FnMut(&[u8])) -> Frames {
    let mut f = Frames {
        consumed: 0,
        frames: 0,
        bad: 0,
    };
    let mut pos = 0;
    while pos < buf.len() {
        match buf[pos] {
            b'\n' | b'\r' => pos += 1,
            b'0'..=b'9' => {
                let digits = buf[pos..]
                    .iter()
                    .take(MAX_LEN_DIGITS + 1)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let after = pos + digits;
                if after >= buf.len() {
                    break; // the length is still arriving
                }
                if digits > MAX_LEN_DIGITS || buf[after] != b' ' {
                    f.bad += 1;
                    pos = after + 1;
                    f.consumed = pos;
                    continue;
                }
                let len: usize = std::str::from_utf8(&buf[pos..after])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let end = after + 1 + len;
                if end > buf.len() {
                    break;
                }
                f.frames += 1;
                if buf.get(after + 1) != Some(&b'<') {
                    f.bad += 1;
                }
                each(&buf[after + 1..end]);
                pos = end;
            }
            b'<' => match memchr::memchr(b'\n', &buf[pos..]) {
                Some(nl) => {
                    f.frames += 1;
                    each(&buf[pos..pos + nl]);
                    pos += nl + 1;
                }
                None => break,
            },
            _ => {
                f.bad += 1;
                pos += 1;
            }
        }
        f.consumed = pos;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_octet_counted_and_lf_frames() {
        let buf = b"5 <1>ab<2>cd\n\n3 <3>4 <4";
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let f = split_frames(buf, |m| seen.push(m.to_vec()));
        assert_eq!((f.frames, f.bad), (3, 0));
        assert_eq!(seen, [&b"<1>ab"[..], b"<2>cd", b"<3>"]);
        assert_eq!(&buf[f.consumed..], b"4 <4", "the partial frame stays");
        let f = split_frames(b"2 xy<5>e", |_| {});
        assert_eq!((f.frames, f.bad, f.consumed), (1, 1, 4));
        let f = split_frames(b"12", |_| {});
        assert_eq!((f.frames, f.consumed), (0, 0));
    }

    #[tokio::test]
    async fn counts_events_over_tcp() {
        use tokio::io::AsyncWriteExt;
        let tally = Arc::new(EventTally::new());
        tally.reset(10, None);
        let rx = SyslogReceiver::start(None, tally.clone()).await;
        let mut s = tokio::net::TcpStream::connect(rx.addr()).await.unwrap();
        // An octet-counted frame ending in digits is followed directly by the next frame's
        // length digits; then an LF-terminated frame.
        let (m1, m2) = (
            "<14>1 - h - - - - ||__bench_seq__=1",
            "<14>1 - h - - - - ||__bench_seq__=2",
        );
        let framed = format!(
            "{} {m1}{} {m2}<14>1 - - - - - - ||__bench_seq__=3\n",
            m1.len(),
            m2.len()
        );
        // Split mid-frame to exercise reassembly.
        let (a, b) = framed.as_bytes().split_at(20);
        s.write_all(a).await.unwrap();
        s.flush().await.unwrap();
        s.write_all(b).await.unwrap();
        drop(s);
        crate::eventually::eventually_async("three events counted", || {
            let snap = tally.snapshot();
            async move {
                if snap.unique == 3 {
                    Ok(snap)
                } else {
                    Err(format!("{snap:?}"))
                }
            }
        })
        .await;
        let snap = tally.snapshot();
        assert_eq!((snap.validated, snap.invalid, snap.duplicates), (3, 0, 0));
        assert_eq!(snap.out_of_range, 0);
    }
}
