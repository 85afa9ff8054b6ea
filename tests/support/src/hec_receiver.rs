//! An in-process Splunk HTTP Event Collector for tests and benchmarks (hyper on
//! `127.0.0.1:0`, optionally TLS). It follows Splunk's documented behaviour
//! (docs/rendering.md §3 "Splunk HEC"):
//!
//! - auth: `Authorization: Splunk <token>` (or Basic with the token as password); none →
//!   401 code 2, malformed → 401 code 3, unknown → 403 code 4, disabled → 403 code 1; a
//!   valid token in `?token=` → 400 code 16;
//! - channels: `X-Splunk-Request-Channel` or `?channel=`; not a GUID → 400 code 11;
//!   missing on an ack token or on `/raw` → 400 code 10 (strict: Splunk < 6.7 behaviour);
//! - `Content-Encoding: gzip`; body over `max_content_length` → 413;
//! - `/event`: concatenated JSON envelopes (whitespace optional) parsed strictly; the first
//!   bad one fails the whole request with `invalid-event-number` and nothing is stored
//!   (Splunk's legacy parser): missing `event` → 12, blank → 13, unknown key / bad JSON /
//!   bad `time` → 6, nested `fields` → 15, index not allowed for the token → 7, empty
//!   body → 5; [`HecReceiver::set_omit_invalid_event_number`] leaves the number out, as
//!   older Splunk versions and some proxies do (the client must then bisect);
//! - `/raw`: lines are events; query metadata kept; a bad line fails the request with code 6
//!   and no number;
//! - indexer ack: tokens with `ack` answer `ackId` (per channel, from 0); `/ack` reports
//!   `true` once and then forgets; non-ack token → 400 code 14;
//! - `/health`: 200 code 17, bad token 400 code 21, disabled 22, unhealthy 503 code 18.
//!
//! Faults are injected per request on `/event` and `/raw` ([`Fault`]): a status with a
//! Splunk code and `Retry-After`, an HTML page, a delay, a dropped connection; plus 413
//! above a decoded size, invalid data for events containing a marker, acks held back.
//! Everything received is recorded ([`HecReceiver::events`], [`HecReceiver::requests`]).
//! Connection reuse and concurrency are observable: [`HecReceiver::connections`] counts
//! accepted TCP connections, [`HecReceiver::max_in_flight`] the most requests handled at
//! once. With `client_ca` the TLS listener requires a client certificate (mutual TLS).
//!
//! Two benchmark modes skip the recording: `discard` counts bytes only; `tally` (the
//! benchmark's count mode) checks the token, gunzips, counts events, sequence gaps,
//! duplicates and latencies into an [`EventTally`] and fully validates one request in 100
//! with the strict `/event` parser.

#![expect(
    clippy::result_large_err,
    reason = "test receiver: an early HTTP answer is the natural error value"
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::event_tally::{EventTally, Hit, now_ns, scan};

/// The default token.
pub const TEST_TOKEN: &str = "11111111-2222-3333-4444-555555555555";
/// Decompressed bodies are capped at this (a gzip bomb guard).
const MAX_DECODED: usize = 512 * 1024 * 1024;

/// One token the receiver knows.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// The token.
    pub token: String,
    /// Indexer acknowledgement (`useACK`).
    pub ack: bool,
    /// Disabled tokens answer 403 code 1.
    pub disabled: bool,
    /// Allowed indexes; `None` = any.
    pub indexes: Option<Vec<String>>,
}

impl TokenSpec {
    /// An enabled token without ack.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            ack: false,
            disabled: false,
            indexes: None,
        }
    }
}

/// Receiver options.
#[derive(Debug, Clone)]
pub struct HecReceiverConfig {
    /// Known tokens.
    pub tokens: Vec<TokenSpec>,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: require a client certificate signed by this CA (PEM), as a Splunk HEC
    /// with `requireClientCert = true` does. A client without one fails the handshake.
    pub client_ca: Option<PathBuf>,
    /// 413 above this many wire bytes (Splunk `max_content_length`).
    pub max_content_length: usize,
    /// Benchmark mode: count bytes and answer success without decoding or storing.
    pub discard: bool,
    /// Benchmark count mode (wins over `discard`): events are counted into this tally (see
    /// the module docs), nothing is stored.
    pub tally: Option<Arc<EventTally>>,
}

impl Default for HecReceiverConfig {
    fn default() -> Self {
        Self {
            tokens: vec![TokenSpec::new(TEST_TOKEN)],
            tls: None,
            client_ca: None,
            max_content_length: 838_860_800,
            discard: false,
            tally: None,
        }
    }
}

/// An injected failure for one request to `/event` or `/raw`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with an HEC JSON body `{"text", "code"}` (no code → plain text)
    /// and an optional `Retry-After` in seconds. Nothing is stored.
    Status {
        /// HTTP status.
        status: u16,
        /// HEC code.
        code: Option<i64>,
        /// HEC text.
        text: &'static str,
        /// `Retry-After` seconds.
        retry_after: Option<u32>,
    },
    /// An HTML page with this status (a proxy, or Splunk Web).
    Html(u16),
    /// Wait this long, then process normally (data IS stored).
    Delay(Duration),
    /// Drop the connection without an answer (nothing stored).
    Reset,
}

impl Fault {
    /// 503 code 9 "Server is busy".
    pub fn busy() -> Self {
        Fault::Status {
            status: 503,
            code: Some(9),
            text: "Server is busy",
            retry_after: None,
        }
    }
}

/// Which endpoint an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/services/collector[/event]`.
    Event,
    /// `/services/collector/raw`.
    Raw,
}

/// One stored event.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Number of the request that stored it (0 for the first request that stored events),
    /// so a test can tell which events arrived together.
    pub request: u64,
    /// When it was stored (for rates measured at the receiver).
    pub received_at: std::time::Instant,
    /// Channel of the request.
    pub channel: Option<String>,
    /// `/event`: the envelope; `/raw`: the line as a JSON string.
    pub envelope: Value,
    /// The exact bytes (envelope text or raw line).
    pub text: String,
    /// Query parameters of the request (`/raw` metadata).
    pub query: BTreeMap<String, String>,
}

/// One request, as seen.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Channel (header or query).
    pub channel: Option<String>,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Bytes on the wire.
    pub wire_bytes: usize,
    /// Bytes after decompression.
    pub decoded_bytes: usize,
    /// Answer status.
    pub status: u16,
    /// Answer HEC code.
    pub code: Option<i64>,
    /// Events stored from this request.
    pub events: usize,
    /// When the answer was decided.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    tokens: Vec<TokenSpec>,
    events: Vec<ReceivedEvent>,
    requests: Vec<RequestRecord>,
    faults: VecDeque<Fault>,
    max_decoded: Option<usize>,
    bad_marker: Option<String>,
    omit_invalid_event_number: bool,
    hold_acks: bool,
    delay: Option<Duration>,
    /// Requests to `/event` or `/raw` served at once; beyond, 503 "Server is busy".
    max_concurrent: Option<usize>,
    stored_requests: u64,
    /// Set by [`HecReceiver::kill`]: nothing more is stored.
    dead: bool,
    unhealthy: bool,
    next_ack: HashMap<String, u64>,
    pending_acks: HashMap<String, Vec<u64>>,
    discarded_bytes: u64,
    discarded_requests: u64,
}

struct Shared {
    state: Mutex<State>,
    max_content_length: usize,
    discard: bool,
    tally: Option<Arc<EventTally>>,
    connections: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Requests refused for [`HecReceiver::set_max_concurrent`].
    busy_refusals: AtomicU64,
}

/// Counts one request as in flight while alive.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running receiver; stops (with its connections) on drop.
pub struct HecReceiver {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = Response<Full<Bytes>>;

impl HecReceiver {
    /// Starts with the default token ([`TEST_TOKEN`]), plain HTTP.
    pub async fn start_default() -> Self {
        Self::start(HecReceiverConfig::default()).await
    }

    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(config: HecReceiverConfig) -> Self {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Binds `addr` (e.g. a fixed port for a demo) and serves until dropped.
    pub async fn start_on(addr: &str, config: HecReceiverConfig) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let acceptor = config
            .tls
            .as_ref()
            .map(|(cert, key)| tls_acceptor_for(cert, key, config.client_ca.as_deref()));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tokens: config.tokens.clone(),
                ..Default::default()
            }),
            max_content_length: config.max_content_length,
            discard: config.discard,
            tally: config.tally.clone(),
            connections: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            busy_refusals: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let shared = s.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            tls: config.tls.is_some(),
            shared,
            task,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL: `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("receiver state poisoned")
    }

    /// Stops at once, like an indexer whose process is killed: from this moment nothing
    /// more is stored, connections are dropped, requests in flight get no answer. Returns
    /// what it had stored and seen (complete: no request can slip in after the copy).
    pub fn kill(self) -> (Vec<ReceivedEvent>, Vec<RequestRecord>) {
        let copy = {
            let mut st = self.state();
            st.dead = true;
            (st.events.clone(), st.requests.clone())
        };
        drop(self);
        copy
    }

    /// Every stored event, in arrival order.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.state().events.clone()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> usize {
        self.state().events.len()
    }

    /// Every request to `/event`, `/raw`, `/ack` and `/health`.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }

    /// TCP connections accepted so far (including ones whose TLS handshake failed).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The most requests (any path) that were being handled at the same moment, counted
    /// from when the request head arrived until the answer was ready (a [`Fault::Delay`]
    /// included).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Discard mode: (requests, wire bytes) counted.
    pub fn discarded(&self) -> (u64, u64) {
        let s = self.state();
        (s.discarded_requests, s.discarded_bytes)
    }

    /// Queues `fault` for the next `times` requests to `/event` or `/raw`.
    pub fn push_fault(&self, fault: Fault, times: usize) {
        let mut s = self.state();
        s.faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Answer 413 to bodies larger than this after decompression.
    pub fn set_max_decoded_body(&self, max: Option<usize>) {
        self.state().max_decoded = max;
    }

    /// Events whose envelope text (or raw line) contains `marker` are invalid (400 code 6
    /// with their `invalid-event-number`, unless [`Self::set_omit_invalid_event_number`]).
    pub fn set_bad_event_marker(&self, marker: Option<&str>) {
        self.state().bad_marker = marker.map(str::to_owned);
    }

    /// While set, `/event` data errors (codes 6, 7, 12, 13, 15) answer `{"text", "code"}`
    /// without `invalid-event-number`, as older Splunk versions and some proxies do: the
    /// client cannot tell which event is bad. Off by default.
    pub fn set_omit_invalid_event_number(&self, omit: bool) {
        self.state().omit_invalid_event_number = omit;
    }

    /// While set, `/ack` answers `false` for every id (tests ack timeouts).
    pub fn set_hold_acks(&self, hold: bool) {
        self.state().hold_acks = hold;
    }

    /// While set, an indexer that serves this many `/event` or `/raw` requests at a time and
    /// answers the others at once with 503 code 9 "Server is busy" (counted in
    /// [`busy_refusals`](Self::busy_refusals), not in [`requests`](Self::requests)).
    pub fn set_max_concurrent(&self, max: Option<usize>) {
        self.state().max_concurrent = max;
    }

    /// Requests refused for [`set_max_concurrent`](Self::set_max_concurrent) so far.
    pub fn busy_refusals(&self) -> u64 {
        self.shared.busy_refusals.load(Ordering::SeqCst)
    }

    /// While set, every request to `/event` or `/raw` waits this long before it is
    /// processed (a slow indexer; discarding receivers too), unlike [`Fault::Delay`], which
    /// delays one request.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state().delay = delay;
    }

    /// `/health` answers 503 code 18 while set.
    pub fn set_unhealthy(&self, unhealthy: bool) {
        self.state().unhealthy = unhealthy;
    }

    /// Replaces the known tokens (token rotation, disabling).
    pub fn set_tokens(&self, tokens: Vec<TokenSpec>) {
        self.state().tokens = tokens;
    }
}

pub(crate) fn tls_acceptor(cert: &Path, key: &Path) -> TlsAcceptor {
    tls_acceptor_for(cert, key, None)
}

/// A TLS acceptor; with `client_ca`, clients must present a certificate signed by it.
fn tls_acceptor_for(cert: &Path, key: &Path, client_ca: Option<&Path>) -> TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read_certs = |path: &Path| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .unwrap_or_else(|e| panic!("cert file {}: {e}", path.display()))
            .collect::<Result<_, _>>()
            .expect("PEM certs")
    };
    let certs = read_certs(cert);
    let key = PrivateKeyDer::from_pem_file(key).expect("PEM key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca) {
                roots.add(c).expect("usable client CA");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .expect("server cert and key");
    TlsAcceptor::from(Arc::new(config))
}

fn hec(status: u16, code: i64, text: &str) -> Answer {
    json_answer(status, json!({ "text": text, "code": code }))
}

fn json_answer(status: u16, body: Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

/// Why the strict `/event` parser refused a body: Splunk's code and text, and the 0-based
/// number of the first bad event.
#[derive(Debug)]
struct Invalid {
    code: i64,
    text: &'static str,
    event: usize,
}

impl Invalid {
    fn new(code: i64, text: &'static str, event: usize) -> Self {
        Self { code, text, event }
    }

    /// 400 with `invalid-event-number`, or without it (older Splunk, some proxies).
    fn answer(&self, with_number: bool) -> Answer {
        let mut body = json!({ "text": self.text, "code": self.code });
        if with_number {
            body["invalid-event-number"] = json!(self.event);
        }
        tag(json_answer(400, body), self.code)
    }
}

fn query_map(q: Option<&str>) -> BTreeMap<String, String> {
    q.map(url_decode_pairs).unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of a request: `Ok(Some)` from a header, `Err(answer)` when malformed.
fn token_from_header(req: &Request<Incoming>) -> Result<Option<String>, Answer> {
    let Some(v) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| hec(401, 3, "Invalid authorization"))?;
    if let Some(t) = v.strip_prefix("Splunk ") {
        return Ok(Some(t.trim().to_owned()));
    }
    if let Some(b) = v.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|_| hec(401, 3, "Invalid authorization"))?;
        let s = String::from_utf8(decoded).map_err(|_| hec(401, 3, "Invalid authorization"))?;
        return s
            .split_once(':')
            .map(|(_, p)| Some(p.to_owned()))
            .ok_or_else(|| hec(401, 3, "Invalid authorization"));
    }
    Err(hec(401, 3, "Invalid authorization"))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, std::io::Error> {
    let _in_flight = InFlight::enter(&shared);
    let path = req
        .uri()
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/1.0")
        .to_owned();
    let method = req.method().as_str().to_owned();
    let query = query_map(req.uri().query());
    let endpoint = match path.as_str() {
        "/services/collector" | "/services/collector/event" => Some(Endpoint::Event),
        "/services/collector/raw" => Some(Endpoint::Raw),
        _ => None,
    };
    if let (Some(tally), Some(endpoint)) = (&shared.tally, endpoint) {
        return count(&shared, tally, req, endpoint).await;
    }
    if endpoint.is_some() {
        let max = shared
            .state
            .lock()
            .expect("receiver state poisoned")
            .max_concurrent;
        if max.is_some_and(|max| shared.in_flight.load(Ordering::SeqCst) > max) {
            shared.busy_refusals.fetch_add(1, Ordering::SeqCst);
            return Ok(coded(503, 9, "Server is busy"));
        }
    }
    if shared.discard && endpoint.is_some() {
        let delay = shared.state.lock().expect("receiver state poisoned").delay;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let body = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let mut s = shared.state.lock().expect("receiver state poisoned");
        s.discarded_requests += 1;
        s.discarded_bytes += body.len() as u64;
        return Ok(hec(200, 0, "Success"));
    }
    if endpoint.is_some() {
        let (fault, delay) = {
            let mut st = shared.state.lock().expect("receiver state poisoned");
            (st.faults.pop_front(), st.delay)
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        match fault {
            Some(Fault::Reset) => return Err(std::io::Error::other("injected connection reset")),
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::Html(status)) => {
                return Ok(Response::builder()
                    .status(status)
                    .header("content-type", "text/html")
                    .body(Full::new(Bytes::from_static(
                        b"<!doctype html><html><body>Splunk Web</body></html>",
                    )))
                    .expect("valid response"));
            }
            Some(Fault::Status {
                status,
                code,
                text,
                retry_after,
            }) => {
                let mut r = match code {
                    Some(c) => hec(status, c, text),
                    None => Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::from(text)))
                        .expect("valid response"),
                };
                if let Some(s) = retry_after {
                    r.headers_mut()
                        .insert("retry-after", s.to_string().parse().expect("digits"));
                }
                record(&shared, &method, &path, None, false, 0, 0, status, code, 0);
                return Ok(r);
            }
            None => {}
        }
    }
    let answer = process(&shared, req, &path, &method, query, endpoint).await?;
    Ok(answer)
}

/// One request in this many is parsed in full in count mode.
const VALIDATE_EVERY: u64 = 100;

/// Count mode: token check, gunzip, tally; one request in [`VALIDATE_EVERY`] is also parsed
/// with the strict envelope parser (its event count must match the tally's hits).
async fn count(
    shared: &Shared,
    tally: &EventTally,
    req: Request<Incoming>,
    endpoint: Endpoint,
) -> Result<Answer, std::io::Error> {
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let token = token_from_header(&req);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let received = now_ns();
    let spec = {
        let st = shared.state.lock().expect("receiver state poisoned");
        match token {
            Ok(Some(t)) => st
                .tokens
                .iter()
                .find(|s| s.token == t && !s.disabled)
                .cloned(),
            _ => None,
        }
    };
    let Some(spec) = spec else {
        return Ok(hec(403, 4, "Invalid token"));
    };
    let mut inflated = Vec::new();
    let decoded: &[u8] = if gzip {
        inflated.reserve(body.len() * 6);
        let mut dec = flate2::read::GzDecoder::new(&body[..]).take(MAX_DECODED as u64);
        if dec.read_to_end(&mut inflated).is_err() {
            tally.note_validation(1, 1);
            return Ok(hec(400, 6, "Invalid data format"));
        }
        &inflated
    } else {
        &body
    };
    let mut hits: Vec<Hit> = Vec::with_capacity(decoded.len() / 256 + 1);
    scan(decoded, &mut hits);
    if endpoint == Endpoint::Event && tally.next_request().is_multiple_of(VALIDATE_EVERY) {
        let n = parse_envelopes(decoded, &spec, None).map_or(0, |e| e.len());
        let checked = n.max(hits.len()) as u64;
        tally.note_validation(checked, checked - n.min(hits.len()) as u64);
    }
    tally.record(&hits, body.len(), decoded.len(), received);
    Ok(hec(200, 0, "Success"))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one flat record of what was seen"
)]
fn record(
    shared: &Shared,
    method: &str,
    path: &str,
    channel: Option<String>,
    gzip: bool,
    wire: usize,
    decoded: usize,
    status: u16,
    code: Option<i64>,
    events: usize,
) {
    shared
        .state
        .lock()
        .expect("receiver state poisoned")
        .requests
        .push(RequestRecord {
            method: method.to_owned(),
            path: path.to_owned(),
            channel,
            gzip,
            wire_bytes: wire,
            decoded_bytes: decoded,
            status,
            code,
            events,
            at: std::time::Instant::now(),
        });
}

/// The HEC code of an answer built by [`coded`] / [`tag`] (carried in a private header
/// that is removed before the answer leaves).
fn answer_code(a: &Answer) -> Option<i64> {
    a.headers()
        .get("x-hec-code")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

async fn process(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: &str,
    method: &str,
    query: BTreeMap<String, String>,
    endpoint: Option<Endpoint>,
) -> Result<Answer, std::io::Error> {
    let channel = req
        .headers()
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get("channel").cloned());
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let content_length: Option<usize> = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let header_token = token_from_header(&req);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let wire = body.len();
    let (answer, decoded, stored) = evaluate(
        shared,
        path,
        method,
        &query,
        endpoint,
        channel.clone(),
        gzip,
        content_length,
        header_token,
        body,
    );
    let code = answer_code(&answer);
    let mut answer = answer;
    answer.headers_mut().remove("x-hec-code");
    record(
        shared,
        method,
        path,
        channel,
        gzip,
        wire,
        decoded,
        answer.status().as_u16(),
        code,
        stored,
    );
    Ok(answer)
}

fn coded(status: u16, code: i64, text: &str) -> Answer {
    tag(hec(status, code, text), code)
}

fn tag(mut a: Answer, code: i64) -> Answer {
    a.headers_mut()
        .insert("x-hec-code", code.to_string().parse().expect("digits"));
    a
}

#[expect(
    clippy::too_many_arguments,
    reason = "the request's parts, already taken apart"
)]
fn evaluate(
    shared: &Shared,
    path: &str,
    method: &str,
    query: &BTreeMap<String, String>,
    endpoint: Option<Endpoint>,
    channel: Option<String>,
    gzip: bool,
    content_length: Option<usize>,
    header_token: Result<Option<String>, Answer>,
    body: Bytes,
) -> (Answer, usize, usize) {
    let is_health = path == "/services/collector/health";
    let is_ack = path == "/services/collector/ack";
    if endpoint.is_none() && !is_health && !is_ack {
        return (
            coded(404, 404, "The requested URL was not found on this server."),
            0,
            0,
        );
    }
    let mut st = shared.state.lock().expect("receiver state poisoned");
    let lookup = |t: &str| st.tokens.iter().find(|s| s.token == t).cloned();
    if is_health {
        let a = match header_token {
            Ok(Some(t)) => match lookup(&t) {
                None => coded(400, 21, "Invalid token"),
                Some(s) if s.disabled => coded(400, 22, "Token disabled"),
                Some(_) if st.unhealthy => coded(503, 18, "HEC is unhealthy, queues are full"),
                Some(_) => coded(200, 17, "HEC is healthy"),
            },
            _ if st.unhealthy => coded(503, 18, "HEC is unhealthy, queues are full"),
            _ => coded(200, 17, "HEC is healthy"),
        };
        return (a, 0, 0);
    }
    if method != "POST" {
        return (coded(405, 404, "Method not allowed"), 0, 0);
    }
    // Token: query string first (Splunk checks it even when the feature is off).
    let spec = if let Some(t) = query.get("token") {
        match lookup(t) {
            None => return (coded(403, 4, "Invalid token"), 0, 0),
            Some(_) => {
                return (
                    coded(400, 16, "Query string authorization is not enabled"),
                    0,
                    0,
                );
            }
        }
    } else {
        match header_token {
            Err(a) => return (tag(a, 3), 0, 0),
            Ok(None) => return (coded(401, 2, "Token is required"), 0, 0),
            Ok(Some(t)) => match lookup(&t) {
                None => return (coded(403, 4, "Invalid token"), 0, 0),
                Some(s) if s.disabled => return (coded(403, 1, "Token disabled"), 0, 0),
                Some(s) => s,
            },
        }
    };
    if let Some(c) = &channel
        && uuid::Uuid::parse_str(c).is_err()
    {
        return (coded(400, 11, "Invalid data channel"), 0, 0);
    }
    if channel.is_none() && (spec.ack || is_ack || endpoint == Some(Endpoint::Raw)) {
        return (coded(400, 10, "Data channel is missing"), 0, 0);
    }
    if content_length.unwrap_or(body.len()) > shared.max_content_length {
        return (
            plain(
                413,
                "Content-Length of the request exceeds the maximum allowed",
            ),
            0,
            0,
        );
    }
    let decoded: Vec<u8> = if gzip {
        let mut out = Vec::new();
        let mut dec = flate2::read::GzDecoder::new(&body[..]).take(MAX_DECODED as u64);
        if dec.read_to_end(&mut out).is_err() {
            return (coded(400, 6, "Invalid data format"), 0, 0);
        }
        out
    } else {
        body.to_vec()
    };
    let dlen = decoded.len();
    if is_ack {
        if !spec.ack {
            return (coded(400, 14, "ACK is disabled"), dlen, 0);
        }
        let ids: Vec<u64> = match serde_json::from_slice::<Value>(&decoded)
            .ok()
            .and_then(|v| v.get("acks").cloned())
        {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).collect(),
            _ => return (coded(400, 6, "Invalid data format"), dlen, 0),
        };
        let hold = st.hold_acks;
        let ch = channel.expect("checked above");
        let pending = st.pending_acks.entry(ch).or_default();
        let mut acks = serde_json::Map::new();
        for id in ids {
            let done = !hold && pending.contains(&id);
            if done {
                pending.retain(|p| *p != id);
            }
            acks.insert(id.to_string(), Value::Bool(done));
        }
        return (json_answer(200, json!({ "acks": acks })), dlen, 0);
    }
    if let Some(max) = st.max_decoded
        && dlen > max
    {
        return (plain(413, "Request Entity Too Large"), dlen, 0);
    }
    if decoded.iter().all(u8::is_ascii_whitespace) {
        return (coded(400, 5, "No data"), dlen, 0);
    }
    let endpoint = endpoint.expect("checked above");
    let parsed = match endpoint {
        Endpoint::Event => parse_envelopes(&decoded, &spec, st.bad_marker.as_deref())
            .map_err(|e| e.answer(!st.omit_invalid_event_number)),
        Endpoint::Raw => parse_raw(&decoded, st.bad_marker.as_deref()),
    };
    let events = match parsed {
        Ok(e) => e,
        Err(a) => return (a, dlen, 0),
    };
    if st.dead {
        return (coded(503, 9, "Server is busy"), dlen, 0);
    }
    let n = events.len();
    let request = st.stored_requests;
    st.stored_requests += 1;
    let received_at = std::time::Instant::now();
    st.events
        .extend(events.into_iter().map(|(envelope, text)| ReceivedEvent {
            endpoint,
            request,
            received_at,
            channel: channel.clone(),
            envelope,
            text,
            query: query.clone(),
        }));
    if spec.ack {
        let ch = channel.expect("ack tokens require a channel");
        let next = st.next_ack.entry(ch.clone()).or_default();
        let id = *next;
        *next += 1;
        st.pending_acks.entry(ch).or_default().push(id);
        return (
            tag(
                json_answer(200, json!({ "text": "Success", "code": 0, "ackId": id })),
                0,
            ),
            dlen,
            n,
        );
    }
    (coded(200, 0, "Success"), dlen, n)
}

fn plain(status: u16, text: &'static str) -> Answer {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("valid status"))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("valid response")
}

const ENVELOPE_KEYS: [&str; 7] = [
    "time",
    "host",
    "source",
    "sourcetype",
    "index",
    "event",
    "fields",
];

fn parse_envelopes(
    body: &[u8],
    spec: &TokenSpec,
    marker: Option<&str>,
) -> Result<Vec<(Value, String)>, Invalid> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut start = 0;
    loop {
        let n = out.len();
        let item = match stream.next() {
            None => break,
            Some(Err(_)) => return Err(Invalid::new(6, "Invalid data format", n)),
            Some(Ok(v)) => v,
        };
        let end = stream.byte_offset();
        let text = String::from_utf8_lossy(&body[start..end]).trim().to_owned();
        start = end;
        let Value::Object(map) = &item else {
            return Err(Invalid::new(6, "Invalid data format", n));
        };
        if map.keys().any(|k| !ENVELOPE_KEYS.contains(&k.as_str())) {
            return Err(Invalid::new(6, "Invalid data format", n));
        }
        match map.get("event") {
            None => return Err(Invalid::new(12, "Event field is required", n)),
            Some(Value::Null) => {
                return Err(Invalid::new(13, "Event field cannot be blank", n));
            }
            Some(Value::String(s)) if s.is_empty() => {
                return Err(Invalid::new(13, "Event field cannot be blank", n));
            }
            Some(_) => {}
        }
        match map.get("time") {
            None | Some(Value::Number(_)) => {}
            Some(Value::String(s)) if s.parse::<f64>().is_ok() => {}
            Some(_) => return Err(Invalid::new(6, "Invalid data format", n)),
        }
        for k in ["host", "source", "sourcetype", "index"] {
            if map.get(k).is_some_and(|v| !v.is_string()) {
                return Err(Invalid::new(6, "Invalid data format", n));
            }
        }
        if let Some(fields) = map.get("fields") {
            let flat = match fields {
                Value::Object(f) => f.values().all(|v| match v {
                    Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
                    Value::Object(_) => false,
                    _ => true,
                }),
                _ => false,
            };
            if !flat {
                return Err(Invalid::new(15, "Error in handling indexed fields", n));
            }
        }
        if let (Some(allowed), Some(Value::String(index))) = (&spec.indexes, map.get("index"))
            && !allowed.contains(index)
        {
            return Err(Invalid::new(7, "Incorrect index", n));
        }
        if marker.is_some_and(|m| text.contains(m)) {
            return Err(Invalid::new(6, "Invalid data format", n));
        }
        out.push((item, text));
    }
    Ok(out)
}

fn parse_raw(body: &[u8], marker: Option<&str>) -> Result<Vec<(Value, String)>, Answer> {
    let text = String::from_utf8_lossy(body);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    if marker.is_some_and(|m| lines.iter().any(|l| l.contains(m))) {
        return Err(coded(400, 6, "Invalid data format"));
    }
    Ok(lines
        .into_iter()
        .map(|l| (Value::String(l.to_owned()), l.to_owned()))
        .collect())
}

/// Counts by status, for assertions.
pub fn status_counts(requests: &[RequestRecord]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for r in requests {
        *m.entry(r.status).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn post(addr: SocketAddr, path: &str, token: &str, gzip: bool, body: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Splunk {token}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            if gzip {
                "Content-Encoding: gzip\r\n"
            } else {
                ""
            },
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn count_mode_tallies_gzip_batches_and_seed_requests() {
        let tally = Arc::new(EventTally::new());
        tally.reset(10, None);
        let rx = HecReceiver::start(HecReceiverConfig {
            tally: Some(tally.clone()),
            ..Default::default()
        })
        .await;
        let batch = concat!(
            r#"{"time":1,"event":{"__bench_seq__":"0","__bench_ts__":"5"}}"#,
            "\n",
            r#"{"time":1,"event":{"__bench_seq__":"1","__bench_ts__":"5"}}"#
        );
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        enc.write_all(batch.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let a = post(
            rx.addr(),
            "/services/collector/event",
            TEST_TOKEN,
            true,
            &gz,
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        // The seed script: one event per request, the log as a JSON string, on the bare path.
        let seed =
            r#"{"event": "{\"__bench_seq__\": \"1\", \"__bench_ts__\": \"5\"}", "time": "1"}"#;
        let a = post(
            rx.addr(),
            "/services/collector",
            TEST_TOKEN,
            false,
            seed.as_bytes(),
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        let a = post(
            rx.addr(),
            "/services/collector",
            "wrong",
            false,
            seed.as_bytes(),
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 403"), "{a}");
        let s = tally.snapshot();
        assert_eq!((s.events, s.unique, s.duplicates), (3, 2, 1));
        assert_eq!(
            (s.requests, s.wire_bytes),
            (2, (gz.len() + seed.len()) as u64)
        );
        // The first request was parsed in full (one in VALIDATE_EVERY) and matched.
        assert_eq!((s.validated, s.invalid), (2, 0));
        assert!(rx.events().is_empty(), "count mode stores nothing");
    }
}
