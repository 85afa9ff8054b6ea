//! The writer tasks that own the connections to syslog receivers (each made by `connect`).
//!
//! TCP and TLS use long-lived connections, each owned by a writer task; writers take
//! batches from one bounded queue (so a batch is written whole by one connection and
//! batches never interleave). One address: one writer, one connection, as before. Several
//! addresses (`addresses`, docs/rendering.md §6.6):
//! - `failover`: one writer, one connection to the first address that accepts it; while a
//!   later address is in use, the earlier ones are tried again with the reconnect backoff,
//!   and the connection moves back to the first that accepts (closed gracefully, so what
//!   was written arrives; the resend window starts afresh);
//! - `balance`: one writer per address, each taking the next batch when its connection is
//!   free; a writer whose address stops accepting hands its batch and its resend window to
//!   the others and reconnects in the background.
//!
//! Reliability measures of every connection (docs/rendering.md §6.3 "TCP", §6.5 "TLS"):
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
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::config::Mode;
use super::connect::{Connector, Stream};
use crate::metrics::{EndpointCounters, EndpointState, EndpointStatus, SinkMetrics};
use crate::util::batch::EventBatch;
use crate::util::retry::{Cancelled, RetrySettings, sleep_or_cancel};
use crate::{Delivery, SinkErrorKind};

/// What the writers are handed.
pub(crate) enum Job {
    /// A batch from `send`; `done` resolves that send once the batch is written.
    Batch {
        batch: EventBatch,
        done: oneshot::Sender<Delivery>,
    },
    /// Bytes a lost connection wrote without confirmation, handed to another connection to
    /// be written again (balance mode; at-least-once).
    Resend(Vec<u8>),
}

/// The writers' queue: batches from `send` (bounded, so a slow receiver holds the
/// pipeline back) and jobs a writer handed back when its address stopped accepting
/// (unbounded, but never more than the writers held).
pub(crate) struct JobQueue {
    rx: tokio::sync::Mutex<(mpsc::Receiver<Job>, mpsc::UnboundedReceiver<Job>)>,
    handed_back: mpsc::UnboundedSender<Job>,
}

impl JobQueue {
    /// A queue of `depth` batches and the sender `send` pushes into.
    pub(crate) fn new(depth: usize) -> (mpsc::Sender<Job>, Arc<Self>) {
        let (tx, rx) = mpsc::channel(depth);
        let (back_tx, back_rx) = mpsc::unbounded_channel();
        (
            tx,
            Arc::new(Self {
                rx: tokio::sync::Mutex::new((rx, back_rx)),
                handed_back: back_tx,
            }),
        )
    }

    /// The next job, handed-back ones first; `None` once the sink is gone. Cancel-safe.
    async fn next(&self) -> Option<Job> {
        let mut rx = self.rx.lock().await;
        let (fresh, back) = &mut *rx;
        tokio::select! {
            biased;
            Some(job) = back.recv() => Some(job),
            job = fresh.recv() => job,
        }
    }

    fn hand_back(&self, job: Job) {
        // The queue holds a receiver as long as any writer runs.
        let _ = self.handed_back.send(job);
    }
}

/// One receiver address: its connector, its state and its counters.
pub(crate) struct Target {
    pub connector: Connector,
    pub label: String,
    state: AtomicU8,
    in_flight: AtomicU64,
    counters: EndpointCounters,
}

impl Target {
    pub(crate) fn new(connector: Connector, label: String) -> Self {
        Self {
            connector,
            label,
            state: AtomicU8::new(EndpointState::Standby as u8),
            in_flight: AtomicU64::new(0),
            counters: EndpointCounters::default(),
        }
    }

    fn set(&self, state: EndpointState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// This address as `/health` shows it.
    pub(crate) fn status(&self) -> EndpointStatus {
        let state = EndpointState::ALL
            .into_iter()
            .find(|s| *s as u8 == self.state.load(Ordering::Relaxed))
            .unwrap_or(EndpointState::Standby);
        let (requests, failures, events) = self.counters.read();
        EndpointStatus {
            endpoint: self.label.clone(),
            state,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            weight: 1,
            max_request_bytes: None,
            concurrency_limit: None,
            requests,
            failures,
            events,
        }
    }
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

    /// Empties the window, returning what it held (oldest first).
    fn take(&mut self) -> Vec<Vec<u8>> {
        self.bytes = 0;
        self.batches.drain(..).collect()
    }
}

struct Conn {
    reader: ReadHalf<Stream>,
    writer: WriteHalf<Stream>,
}

/// A connection and the address it goes to.
struct Link {
    conn: Conn,
    target: usize,
}

/// Which addresses a writer connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Always this one (one address, or one writer of `balance`).
    Fixed(usize),
    /// The first that accepts, moving back to earlier ones when they accept again.
    Failover,
}

impl Route {
    /// The route(s) of `mode` over `n` addresses: one writer each.
    pub(crate) fn for_mode(mode: Mode, n: usize) -> Vec<Route> {
        match (mode, n) {
            (_, 1) => vec![Route::Fixed(0)],
            (Mode::Failover, _) => vec![Route::Failover],
            (Mode::Balance, n) => (0..n).map(Route::Fixed).collect(),
        }
    }
}

/// A writer task: owns one connection at a time, writes queued batches whole.
pub(crate) struct Writer {
    pub name: String,
    pub targets: Arc<Vec<Target>>,
    pub route: Route,
    /// Other writers take from the same queue (balance over several addresses).
    pub shares_queue: bool,
    pub queue: Arc<JobQueue>,
    pub metrics: Arc<SinkMetrics>,
    pub shutdown: CancellationToken,
    pub write_timeout: Duration,
    pub reconnect: RetrySettings,
    pub resend_buffer_bytes: usize,
}

/// Why a connection attempt gave up.
enum ConnectEnd {
    Cancelled,
    /// This writer's address does not accept connections and others can take its work.
    HandOff,
}

/// Resolves when the peer closes the connection (or forever without one).
async fn peer_closed(link: &mut Option<Link>) -> io::Result<()> {
    let Some(l) = link else {
        return std::future::pending().await;
    };
    let mut scratch = [0u8; 256];
    loop {
        match l.conn.reader.read(&mut scratch).await {
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

/// Resolves with what `f` resolves to, or never without one.
async fn maybe<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// After `delay`, tries the addresses before `current` in order; the first that accepts a
/// connection (TLS probe included) wins.
async fn try_earlier(
    targets: Arc<Vec<Target>>,
    current: usize,
    delay: Duration,
) -> Option<(usize, Stream)> {
    tokio::time::sleep(delay).await;
    for (i, t) in targets.iter().enumerate().take(current) {
        if let Ok(stream) = t.connector.connect().await {
            return Some((i, stream));
        }
    }
    None
}

impl Writer {
    pub(crate) async fn run(self) {
        let mut link: Option<Link> = None;
        let mut window = ResendWindow::new(self.resend_buffer_bytes);
        // Failover: while a later address is in use, a connection attempt to the earlier ones.
        let mut failback: Option<BoxFuture<'static, Option<(usize, Stream)>>> = None;
        let mut failback_backoff = self.reconnect.backoff();
        loop {
            if self.route == Route::Failover
                && failback.is_none()
                && let Some(l) = link.as_ref().filter(|l| l.target > 0)
            {
                let delay = failback_backoff.next_delay();
                failback = Some(try_earlier(self.targets.clone(), l.target, delay).boxed());
            }
            let job = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return,
                Err(e) = peer_closed(&mut link) => {
                    let target = link.take().expect("a peer closed a link").target;
                    failback = None;
                    self.lost(target, &e, "syslog connection lost; reconnecting to resend what may not have arrived");
                    if !window.is_empty() {
                        match self.connect(&mut window).await {
                            Ok(l) => link = Some(l),
                            Err(ConnectEnd::Cancelled) => return,
                            Err(ConnectEnd::HandOff) => match self.hand_off(None, &mut window).await {
                                Ok(l) => link = Some(l),
                                Err(Cancelled) => return,
                            },
                        }
                    }
                    continue;
                }
                found = maybe(&mut failback) => {
                    failback = None;
                    if let Some((target, stream)) = found {
                        failback_backoff.reset();
                        if let Some(old) = link.take() {
                            self.close(old).await;
                        }
                        // Everything written to the old connection was flushed and the
                        // connection closed in order: nothing to resend.
                        window.take();
                        link = Some(self.linked(target, stream));
                        tracing::info!(sink = %self.name, peer = %self.targets[target].label, "syslog receiver accepts connections again; traffic moved back to it");
                    }
                    continue;
                }
                job = self.queue.next() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            if let Err(Cancelled) = self.write_job(job, &mut link, &mut window).await {
                return;
            }
        }
    }

    /// Writes one job on the link, connecting (and resending the window) as needed.
    async fn write_job(
        &self,
        job: Job,
        link: &mut Option<Link>,
        window: &mut ResendWindow,
    ) -> Result<(), Cancelled> {
        loop {
            if link.is_none() {
                match self.connect(window).await {
                    Ok(l) => *link = Some(l),
                    Err(ConnectEnd::HandOff) => {
                        *link = Some(self.hand_off(Some(job), window).await?);
                        return Ok(());
                    }
                    Err(ConnectEnd::Cancelled) => {
                        if let Job::Batch { batch, done } = job {
                            let _ = done.send(Delivery {
                                rejected: Vec::new(),
                                cancelled: true,
                                batch,
                            });
                        }
                        return Err(Cancelled);
                    }
                }
            }
            let l = link.as_mut().expect("connected above");
            let target = &self.targets[l.target];
            let bytes: &[u8] = match &job {
                Job::Batch { batch, .. } => batch.bytes(),
                Job::Resend(bytes) => bytes,
            };
            target.in_flight.fetch_add(1, Ordering::Relaxed);
            let written = self.write(&mut l.conn, bytes).await;
            target.in_flight.fetch_sub(1, Ordering::Relaxed);
            match written {
                Ok(()) => {
                    window.push(bytes);
                    target.counters.request();
                    match job {
                        Job::Batch { batch, done } => {
                            self.metrics
                                .request(batch.bytes_len() as u64, batch.bytes_len() as u64);
                            self.metrics.accepted(batch.len() as u64);
                            target.counters.events(batch.len() as u64);
                            let _ = done.send(Delivery {
                                rejected: Vec::new(),
                                cancelled: false,
                                batch,
                            });
                        }
                        Job::Resend(bytes) => self.metrics.resent(bytes.len() as u64),
                    }
                    return Ok(());
                }
                Err(e) => {
                    let t = link.take().expect("writing on it").target;
                    self.metrics.retry();
                    self.lost(t, &e, "syslog write failed; reconnecting and resending");
                }
            }
        }
    }

    /// A connection to `target` broke.
    fn lost(&self, target: usize, e: &io::Error, what: &str) {
        let t = &self.targets[target];
        t.set(EndpointState::BackingOff);
        t.counters.failure();
        self.metrics.disconnect();
        tracing::warn!(sink = %self.name, peer = %t.label, error = %e, "{what}");
    }

    fn linked(&self, target: usize, stream: Stream) -> Link {
        self.metrics.connect();
        for (i, t) in self.targets.iter().enumerate() {
            if i == target {
                t.set(EndpointState::Healthy);
            } else if self.route == Route::Failover && i > target {
                t.set(EndpointState::Standby);
            }
        }
        let (reader, writer) = tokio::io::split(stream);
        Link {
            conn: Conn { reader, writer },
            target,
        }
    }

    /// Closes a healthy connection in order (TLS close_notify, then FIN) so the receiver
    /// reads everything written to it.
    async fn close(&self, old: Link) {
        let mut conn = old.conn;
        let _ = tokio::time::timeout(self.write_timeout, conn.writer.shutdown()).await;
        self.targets[old.target].set(EndpointState::Standby);
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

    /// Connects along the route (with bounded, jittered backoff between rounds) and
    /// resends the window. A writer that shares the queue gives up after one round, so
    /// its work can go to the others.
    async fn connect(&self, window: &mut ResendWindow) -> Result<Link, ConnectEnd> {
        let mut backoff = self.reconnect.backoff();
        let order: Vec<usize> = match self.route {
            Route::Fixed(i) => vec![i],
            Route::Failover => (0..self.targets.len()).collect(),
        };
        loop {
            if self.shutdown.is_cancelled() {
                return Err(ConnectEnd::Cancelled);
            }
            for &i in &order {
                let t = &self.targets[i];
                match t.connector.connect().await {
                    Ok(stream) => {
                        let mut link = self.linked(i, stream);
                        if self.resend(&mut link, window).await {
                            return Ok(link);
                        }
                        t.set(EndpointState::BackingOff);
                        t.counters.failure();
                        self.metrics.disconnect();
                    }
                    Err(e) => {
                        t.set(EndpointState::Down);
                        t.counters.failure();
                        self.metrics.connect_failure(&e.message);
                        if e.kind == SinkErrorKind::Tls {
                            tracing::error!(sink = %self.name, peer = %t.label, error = %e.message, "syslog TLS connection refused; nothing is dropped, retrying");
                        } else {
                            tracing::warn!(sink = %self.name, peer = %t.label, error = %e.message, "syslog receiver unreachable; retrying");
                        }
                    }
                }
            }
            if self.shares_queue {
                return Err(ConnectEnd::HandOff);
            }
            sleep_or_cancel(
                backoff.next_delay().max(Duration::from_millis(10)),
                &self.shutdown,
            )
            .await
            .map_err(|Cancelled| ConnectEnd::Cancelled)?;
        }
    }

    /// Writes the window on a fresh connection; false when that fails.
    async fn resend(&self, link: &mut Link, window: &ResendWindow) -> bool {
        let peer = &self.targets[link.target].label;
        let mut resent = 0;
        for b in &window.batches {
            if let Err(e) = self.write(&mut link.conn, b).await {
                tracing::warn!(sink = %self.name, %peer, error = %e, "resend after reconnect failed");
                return false;
            }
            resent += b.len();
        }
        if resent > 0 {
            self.metrics.resent(resent as u64);
            tracing::info!(sink = %self.name, %peer, bytes = resent, "reconnected; resent recent messages (duplicates are possible)");
        } else {
            tracing::info!(sink = %self.name, %peer, "connected");
        }
        true
    }

    /// Balance: this writer's address refuses connections. Its job and what its lost
    /// connection wrote without confirmation go to the other writers; then it reconnects
    /// in the background (taking no work) until its address accepts again.
    async fn hand_off(
        &self,
        job: Option<Job>,
        window: &mut ResendWindow,
    ) -> Result<Link, Cancelled> {
        for bytes in window.take() {
            self.queue.hand_back(Job::Resend(bytes));
        }
        if let Some(job) = job {
            self.queue.hand_back(job);
        }
        let mut backoff = self.reconnect.backoff();
        let Route::Fixed(i) = self.route else {
            unreachable!("only balance writers share the queue")
        };
        let t = &self.targets[i];
        loop {
            sleep_or_cancel(
                backoff.next_delay().max(Duration::from_millis(10)),
                &self.shutdown,
            )
            .await?;
            match t.connector.connect().await {
                Ok(stream) => {
                    tracing::info!(sink = %self.name, peer = %t.label, "connected");
                    return Ok(self.linked(i, stream));
                }
                Err(e) => {
                    t.counters.failure();
                    self.metrics.connect_failure(&e.message);
                    tracing::debug!(sink = %self.name, peer = %t.label, error = %e.message, "syslog receiver still unreachable");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_per_mode() {
        assert_eq!(Route::for_mode(Mode::Failover, 1), [Route::Fixed(0)]);
        assert_eq!(Route::for_mode(Mode::Balance, 1), [Route::Fixed(0)]);
        assert_eq!(Route::for_mode(Mode::Failover, 3), [Route::Failover]);
        assert_eq!(
            Route::for_mode(Mode::Balance, 2),
            [Route::Fixed(0), Route::Fixed(1)]
        );
    }

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
        assert_eq!(w.take().len(), 1);
        assert!(w.is_empty() && w.bytes == 0);
    }
}
