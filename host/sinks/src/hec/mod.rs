//! The Splunk HTTP Event Collector sink.
//!
//! - [`config`]: `HecConfig` → `HecSettings` (defaults explained in docs/rendering.md §3).
//! - `request`: envelope rendering (docs/rendering.md §2 "Rendering rules"), `/raw` lines,
//!   gzip bodies.
//! - `response`: every answer → a retry class (docs/rendering.md §3.9 "HEC response classes").
//! - `ack`: indexer acknowledgement (`/ack` polling per endpoint, resend on timeout).
//! - `endpoint`: one endpoint's URLs, channel GUID, request-size limit and counters.
//! - `balance`: which endpoint a request goes to; each endpoint's backoff and breaker
//!   (docs/rendering.md §3.13 "Several endpoints").
//!
//! A batch is cut into requests of at most `batch_max_bytes` (events of one HEC path each);
//! every request runs as its own task, so gzip runs on several cores. Each request takes a
//! slot on the endpoint the balancer picks (at most `concurrency` per endpoint on the wire;
//! reqwest keeps the connections alive). Failures are handled per request: transient → the
//! endpoint backs off (honouring `Retry-After`) and the request goes to another endpoint,
//! or waits for this one; 413 → halves, and that endpoint gets smaller requests from then
//! on; data error → the event named by `invalid-event-number` is rejected and the rest
//! resent (bisect without a number); configuration error → an ERROR naming the URL and the
//! fix, then slow retries with the token file re-read, never a drop.

pub mod config;

mod ack;
mod adaptive;
mod balance;
mod endpoint;
mod gzip;
mod request;
mod request_size;
pub(crate) mod response;

use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

pub use config::{EndpointConfig, HecConfig, HecEndpoint, HecRawConfig, HecSettings, TokenSource};

/// `body` as one gzip member at `level`, the way HEC request bodies are compressed (one
/// reused deflate state per thread). Public for the stage benchmark.
pub fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    gzip::gzip_parts(std::iter::once(body), body.len(), level)
}

/// The `/event` envelope of one event followed by `\n`, exactly as the sink sends it
/// (before batching and gzip).
pub fn render_event_line(event: &crate::payload::HecEvent, out: &mut Vec<u8>) {
    request::render_event(event, out);
}

use crate::error::{RenderError, SinkError, SinkErrorKind};
use crate::metrics::{EndpointStatus, ErrorClass, SinkMetrics};
use crate::payload::Payload;
use crate::util::batch::{BatchConfig, EventBatch, Lane};
use crate::util::retry::{self, Cancelled, sleep_or_cancel};
use crate::{BoxFuture, Delivery, Rejection, Sink};
use ack::AckTracker;
use adaptive::Observed;
use balance::{Balancer, Lease};
use endpoint::{Endpoint, Transport};
use request_size::RequestSize;
use response::{Outcome, classify, classify_transport, error_chain, never_sent};

/// How many times a request that never reached the wire is resent at once, each on a new
/// connection, before its error counts.
const UNSENT_RESENDS: usize = 3;

/// Sends `request`, resending it at once (up to [`UNSENT_RESENDS`] times) when its
/// connection closed before it was written ([`never_sent`]) for no reason the error names.
/// Nothing reached HEC, so nothing can duplicate. The reason is worth the resend: a TLS 1.3
/// server refuses a missing client certificate with an alert just after the handshake, and
/// when that alert closes the connection before the write, the error is only "connection
/// was not ready"; the next connection usually reads the alert in the request's stead.
pub(crate) async fn send(
    mut request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    for _ in 0..UNSENT_RESENDS {
        let Some(again) = request.try_clone() else {
            break;
        };
        match request.send().await {
            Err(e)
                if never_sent(&e)
                    && !matches!(classify_transport(&e, "", None), Outcome::Config { .. }) =>
            {
                tracing::debug!(error = %error_chain(&e), "HEC request not sent; resending");
                request = again;
            }
            r => return r,
        }
    }
    request.send().await
}

/// Header carrying the channel GUID (docs/rendering.md §3.1 "Endpoints and headers").
const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";
/// Error bodies beyond this are cut: enough for any HEC JSON answer or an HTML title.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A running HEC sink.
pub struct HecSink {
    inner: Arc<Inner>,
    _stop_on_drop: DropGuard,
}

/// State shared by the sink, its request tasks, the ack pollers and the health probes.
pub(crate) struct Inner {
    name: String,
    settings: HecSettings,
    endpoints: Vec<Endpoint>,
    balancer: Arc<Balancer>,
    /// Uncompressed bytes per request now (grows with `concurrency = "adaptive"`).
    request_size: RequestSize,
    auth: RwLock<HeaderValue>,
    metrics: Arc<SinkMetrics>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    last_config_log: Mutex<Option<(String, Instant)>>,
}

/// The TLS configuration of a client that only speaks plain HTTP: reqwest is built without
/// a default crypto provider, so even a client that never does TLS is given one.
pub(crate) fn plain_http_tls(name: &str) -> Result<rustls::ClientConfig, SinkError> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SinkError::config(name, format!("TLS set-up: {e}")))?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth())
}

impl HecSink {
    /// Reads the token and TLS files, builds the HTTP client and starts the ack pollers
    /// (one per endpoint). No request is sent: call [`Sink::healthcheck`] for the start-up
    /// check. Everything stops when `shutdown` fires or the sink is dropped.
    pub async fn build(
        name: &str,
        settings: HecSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, SinkError> {
        let token = config::resolve_token(&settings.token, |k| std::env::var(k).ok())
            .map_err(|e| SinkError::config(name, e.to_string()))?;
        let tls = if settings.endpoints[0].base.scheme() == "https" {
            settings.tls.client_config(name)?
        } else {
            plain_http_tls(name)?
        };
        let builder = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(settings.concurrency.max())
                .timeout(settings.request_timeout)
                .connect_timeout(settings.connect_timeout)
                .tcp_keepalive(std::time::Duration::from_secs(60))
        };
        // Each endpoint has its own route (a loopback or `no_proxy` host goes direct, the
        // others through the proxy), so each has its own client.
        let endpoints = settings
            .endpoints
            .iter()
            .map(|e| {
                let route = shipper_net::proxy::route(
                    &settings.proxy,
                    "sink",
                    &|k| std::env::var(k).ok(),
                    e.base.scheme() == "https",
                    e.base.host_str().unwrap_or_default(),
                )
                .map_err(|err| SinkError::config(name, err.to_string()))?;
                tracing::info!(sink = name, endpoint = %e.base, route = %route, "HEC network route");
                let client = shipper_net::proxy::apply(builder(), &route)
                    .build()
                    .map_err(|err| {
                        SinkError::config(
                            name,
                            format!("cannot build the HTTP client: {}", error_chain(&err)),
                        )
                    })?;
                Endpoint::new(
                    name,
                    e,
                    Transport { client, route },
                    &settings.raw_query,
                    // Adaptive requests may grow to this; a 413 lowers it per endpoint.
                    settings.max_request_bytes,
                    settings.ack.is_some(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
        let stop = shutdown.child_token();
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            endpoints,
            balancer: Balancer::new(&weights, settings.concurrency, settings.retry),
            request_size: RequestSize::new(settings.batch.max_bytes, settings.max_request_bytes),
            auth: RwLock::new(auth_value(&token)?),
            metrics: Arc::new(SinkMetrics::default()),
            shutdown: stop.clone(),
            tasks: TaskTracker::new(),
            last_config_log: Mutex::new(None),
            settings,
        });
        for i in 0..inner.endpoints.len() {
            if inner.endpoints[i].acks.is_some() {
                inner.tasks.spawn(ack::run_poller(inner.clone(), i));
            }
        }
        Ok(Self {
            inner,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The channel GUID sent with every request to the first endpoint (each endpoint has
    /// its own).
    pub fn channel(&self) -> &str {
        &self.inner.endpoints[0].channel
    }

    /// The request bodies a [`Sink::send`] of `batch` would POST now: cut at the current
    /// request size, one lane per request, compressed at the sink's gzip level, by the same
    /// code as `send`. Nothing is sent. For benchmarks that measure the sink's CPU work
    /// without a network (README.md "At a distance and at scale").
    pub fn encode_requests(&self, batch: &Arc<EventBatch>) -> Vec<Bytes> {
        plan_requests(batch, self.inner.request_size.current())
            .into_iter()
            .map(|(_, parts)| request::encode_body(batch, &[parts], self.inner.settings.gzip).0)
            .collect()
    }
}

fn auth_value(token: &SecretString) -> Result<HeaderValue, SinkError> {
    let mut v =
        HeaderValue::from_str(&format!("Splunk {}", token.expose_secret())).map_err(|_| {
            SinkError::config(
                "hec",
                "the HEC token contains characters not allowed in an HTTP header",
            )
        })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Sink for HecSink {
    fn render(&self, payload: &Payload, out: &mut EventBatch) -> Result<(), RenderError> {
        let start = out.bytes_len();
        let lane = match payload {
            Payload::Hec(ev) => {
                request::render_event(ev, out.buf_mut());
                Lane::Default
            }
            Payload::Raw(raw) => {
                request::render_raw(raw, out.buf_mut());
                Lane::Raw
            }
            Payload::Syslog(_) => {
                return Err(RenderError::WrongPayload {
                    payload: "syslog",
                    sink: "hec",
                });
            }
        };
        let size = out.bytes_len() - start;
        if size > self.inner.settings.max_event_bytes {
            out.rollback(start);
            return Err(RenderError::TooLarge {
                size,
                limit: self.inner.settings.max_event_bytes,
            });
        }
        out.commit(lane);
        Ok(())
    }

    fn send(&self, batch: EventBatch) -> BoxFuture<'static, Delivery> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if batch.is_empty() {
                return Delivery {
                    rejected: Vec::new(),
                    cancelled: false,
                    batch,
                };
            }
            let batch = Arc::new(batch);
            // Dropping this send (its shard was taken away) stops its requests and their
            // retries: the new owner delivers these events again from its checkpoint.
            let mut handles = AbortOnDrop(
                plan_requests(&batch, inner.request_size.current())
                    .into_iter()
                    .map(|(lane, parts)| {
                        inner.tasks.spawn(deliver(
                            inner.clone(),
                            batch.clone(),
                            lane,
                            Vec::from([parts]),
                        ))
                    })
                    .collect(),
            );
            let mut rejected = Vec::new();
            let mut cancelled = false;
            for h in handles.0.iter_mut() {
                match h.await {
                    Ok(r) => {
                        rejected.extend(r.rejected);
                        cancelled |= r.cancelled;
                    }
                    Err(e) => {
                        tracing::error!(sink = %inner.name, error = %e, "HEC request task failed");
                        cancelled = true;
                    }
                }
            }
            rejected.sort_by_key(|r| r.index);
            let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
            Delivery {
                rejected,
                cancelled,
                batch,
            }
        })
    }

    fn send_overhead_bytes(&self, rendered: usize) -> usize {
        // The request body is built before the request waits for an endpoint: gzip at the
        // levels HEC is used with shrinks JSON events 5–10×, so a quarter is an upper
        // estimate; without gzip a request of several parts is a copy.
        match self.inner.settings.gzip {
            Some(_) => rendered / 4,
            None => rendered,
        }
    }

    fn batch_config(&self) -> BatchConfig {
        // The pipeline fills batches of the current request size (docs/rendering.md §3.16).
        BatchConfig {
            max_bytes: self.inner.request_size.current(),
            ..self.inner.settings.batch
        }
    }

    fn metrics(&self) -> Arc<SinkMetrics> {
        self.inner.metrics.clone()
    }

    fn healthcheck(&self) -> BoxFuture<'static, Result<(), SinkError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.healthcheck().await })
    }

    fn endpoints(&self) -> Vec<EndpointStatus> {
        self.inner
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (state, in_flight) = self.inner.balancer.status(i);
                let (requests, failures, events) = e.counters.read();
                EndpointStatus {
                    endpoint: e.label.clone(),
                    state,
                    in_flight: in_flight as u64,
                    weight: e.weight,
                    max_request_bytes: Some(e.max_request_bytes() as u64),
                    concurrency_limit: Some(self.inner.balancer.limit(i) as u64),
                    requests,
                    failures,
                    events,
                }
            })
            .collect()
    }
}

/// Cuts a batch into requests: runs of consecutive events of one HEC path, at most
/// `max_bytes` each (a larger single event goes alone).
fn plan_requests(batch: &EventBatch, max_bytes: usize) -> Vec<(Lane, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for i in 0..batch.len() {
        let len = batch.range(i).len();
        if i > start && (batch.lane(i) != batch.lane(start) || bytes + len > max_bytes) {
            out.push((batch.lane(start), start..i));
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < batch.len() {
        out.push((batch.lane(start), start..batch.len()));
    }
    out
}

fn count(parts: &[Range<usize>]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// The batch index of the `n`-th event of a request.
fn nth(parts: &[Range<usize>], mut n: usize) -> usize {
    for p in parts {
        if n < p.len() {
            return p.start + n;
        }
        n -= p.len();
    }
    unreachable!("n < count(parts) is checked by the caller")
}

/// The request's events without batch index `index`.
fn without(parts: &[Range<usize>], index: usize) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(parts.len() + 1);
    for p in parts {
        if p.contains(&index) {
            out.extend(
                [p.start..index, index + 1..p.end]
                    .into_iter()
                    .filter(|r| !r.is_empty()),
            );
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Uncompressed bytes of the request's events.
fn raw_len(batch: &EventBatch, parts: &[Range<usize>]) -> usize {
    parts
        .iter()
        .map(|p| batch.byte_range(p.clone()).len())
        .sum()
}

/// The request's events cut into consecutive pieces of at most `max_bytes` each (an event
/// larger than that goes alone).
fn fit(batch: &EventBatch, parts: &[Range<usize>], max_bytes: usize) -> Vec<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let mut piece: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for p in parts {
        for i in p.clone() {
            let len = batch.range(i).len();
            if bytes > 0 && bytes + len > max_bytes {
                out.push(std::mem::take(&mut piece));
                bytes = 0;
            }
            match piece.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => piece.push(i..i + 1),
            }
            bytes += len;
        }
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

/// The request's events in two halves (by event count).
fn halves(parts: &[Range<usize>]) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let mid = nth(parts, count(parts) / 2);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for p in parts {
        if p.end <= mid {
            a.push(p.clone());
        } else if p.start >= mid {
            b.push(p.clone());
        } else {
            a.push(p.start..mid);
            b.push(mid..p.end);
        }
    }
    (a, b)
}

/// What one request task settled.
struct Settled {
    rejected: Vec<Rejection>,
    cancelled: bool,
}

/// Delivers one request's events: retries, splits and rejections until every event is
/// settled or shutdown.
async fn deliver(
    inner: Arc<Inner>,
    batch: Arc<EventBatch>,
    lane: Lane,
    parts: Vec<Range<usize>>,
) -> Settled {
    let mut settled = Settled {
        rejected: Vec::new(),
        cancelled: false,
    };
    let mut work = vec![parts];
    while let Some(parts) = work.pop() {
        if let Err(Cancelled) = inner
            .deliver_one(&batch, lane, &parts, &mut work, &mut settled.rejected)
            .await
        {
            settled.cancelled = true;
            break;
        }
    }
    settled
}

/// What a health probe learned.
enum Probe {
    /// HEC answered (anything but "busy" or a proxy's error): requests may go there.
    Answers,
    /// No answer, or busy / unhealthy.
    Unavailable(String),
}

impl Inner {
    /// Sends one request until it is accepted or turned into smaller work / rejections,
    /// on whichever endpoint the balancer picks for each attempt.
    async fn deliver_one(
        self: &Arc<Self>,
        batch: &Arc<EventBatch>,
        lane: Lane,
        parts: &[Range<usize>],
        work: &mut Vec<Vec<Range<usize>>>,
        rejected: &mut Vec<Rejection>,
    ) -> Result<(), Cancelled> {
        let n = count(parts);
        let raw_len = raw_len(batch, parts);
        let mut body: Option<Bytes> = None;
        let mut failures = 0u32;
        loop {
            // No endpoint takes a request this large any more (413s lowered their limits):
            // cut it before compressing it.
            let largest = self
                .endpoints
                .iter()
                .map(Endpoint::max_request_bytes)
                .max()
                .unwrap_or(usize::MAX);
            if raw_len > largest && n > 1 {
                work.extend(fit(batch, parts, largest).into_iter().rev());
                return Ok(());
            }
            // Compressed before taking a slot, as before there were several endpoints: a slot
            // is held only while on the wire, so gzip runs on every core meanwhile.
            let body = body
                .get_or_insert_with(|| request::encode_body(batch, parts, self.settings.gzip).0)
                .clone();
            let lease = self.balancer.acquire(&self.shutdown).await?;
            let i = lease.index();
            let ep = &self.endpoints[i];
            let limit = ep.max_request_bytes();
            if raw_len > limit && n > 1 {
                // This endpoint refused a request this large before (413), others did not:
                // cut to fit.
                drop(lease);
                work.extend(fit(batch, parts, limit).into_iter().rev());
                return Ok(());
            }
            let url = if lane == Lane::Raw {
                &ep.raw_url
            } else {
                &ep.event_url
            };
            let sent = Instant::now();
            let outcome = self.post(lease, url, body, raw_len).await?;
            let rtt = sent.elapsed();
            if matches!(
                outcome,
                Outcome::Accepted { .. } | Outcome::TooLarge { .. } | Outcome::Data { .. }
            ) && self.balancer.observe(i, rtt, false) == Observed::Saturated
                && let Some(size) = self.request_size.saturated(raw_len, largest)
            {
                // An answer about the request, not about the endpoint's load: latency only.
                // The endpoint takes no more requests at once: larger ones carry more per
                // round trip.
                tracing::debug!(sink = %self.name, endpoint = %ep.label, size, limit = self.balancer.limit(i), "HEC endpoint saturated; larger requests");
            }
            match outcome {
                Outcome::Accepted { ack_id } => {
                    self.balancer.succeeded(i);
                    if let (Some(acks), Some(id)) = (&ep.acks, ack_id)
                        && !acks.is_disabled()
                        && !self.wait_for_ack(acks, id).await?
                    {
                        self.metrics.ack_timeout();
                        self.metrics.retry();
                        ep.counters.failure();
                        tracing::warn!(sink = %self.name, endpoint = %ep.label, ack_id = id, events = n, "no indexer acknowledgement in time; sending the request again");
                        continue;
                    }
                    self.metrics.accepted(n as u64);
                    ep.counters.events(n as u64);
                    return Ok(());
                }
                Outcome::Transient {
                    retry_after,
                    reason,
                } => {
                    self.metrics.error(ErrorClass::Transient, &reason);
                    self.metrics.retry();
                    let retry_after = retry::capped_retry_after(retry_after);
                    if retry_after.is_none() && self.balancer.observe(i, rtt, true) == Observed::Cut
                    {
                        // Adaptive concurrency: the lower limit is the answer to the
                        // endpoint's back-pressure; the request goes again at once, behind
                        // the requests that still fit.
                        ep.counters.failure();
                        tracing::debug!(sink = %self.name, endpoint = %ep.label, error = %reason, limit = self.balancer.limit(i), "HEC endpoint pushed back; fewer requests in flight");
                        continue;
                    }
                    self.endpoint_failed(i, retry_after);
                    failures += 1;
                    // WARN on the 1st, 2nd, 4th, 8th… failure of a request: visible, not a flood.
                    if failures.is_power_of_two() {
                        tracing::warn!(sink = %self.name, endpoint = %ep.label, error = %reason, failures, "HEC request failed; retrying");
                    } else {
                        tracing::debug!(sink = %self.name, endpoint = %ep.label, error = %reason, failures, "HEC request failed; retrying");
                    }
                }
                Outcome::TooLarge { reason } => {
                    self.metrics.error(ErrorClass::TooLarge, &reason);
                    self.balancer.succeeded(i);
                    if let Some(limit) = ep.lower_max_request_bytes(raw_len) {
                        tracing::info!(sink = %self.name, endpoint = %ep.label, refused = raw_len, limit, "HEC answered 413; this endpoint gets smaller requests from now on");
                        let largest = self
                            .endpoints
                            .iter()
                            .map(Endpoint::max_request_bytes)
                            .max()
                            .unwrap_or(limit);
                        self.request_size.at_most(largest);
                    }
                    if n == 1 {
                        self.reject(rejected, parts[0].start, reason);
                    } else {
                        let (a, b) = halves(parts);
                        work.extend([b, a]);
                    }
                    return Ok(());
                }
                Outcome::Data {
                    invalid_event,
                    reason,
                } => {
                    self.metrics.error(ErrorClass::Data, &reason);
                    self.balancer.succeeded(i);
                    match invalid_event.filter(|&i| i < n) {
                        Some(i) => {
                            let index = nth(parts, i);
                            self.reject(rejected, index, reason);
                            let rest = without(parts, index);
                            if !rest.is_empty() {
                                work.push(rest);
                            }
                        }
                        None if n == 1 => self.reject(rejected, parts[0].start, reason),
                        None => {
                            let (a, b) = halves(parts);
                            work.extend([b, a]);
                        }
                    }
                    return Ok(());
                }
                Outcome::Config {
                    reason,
                    reread_token,
                } => {
                    self.metrics.error(ErrorClass::Config, &reason);
                    ep.counters.failure();
                    self.balancer
                        .misconfigured(i, self.settings.retry.config_error);
                    if reread_token {
                        self.reload_token().await;
                    }
                    self.log_config_error(&reason);
                    self.metrics.retry();
                }
            }
        }
    }

    /// A transient failure on endpoint `i` (a request or an ack poll): it backs off, and
    /// when that opens its breaker, a health probe starts.
    fn endpoint_failed(self: &Arc<Self>, i: usize, retry_after: Option<Duration>) {
        self.endpoints[i].counters.failure();
        if let Some(delay) = self.balancer.failed(i, retry_after) {
            tracing::warn!(
                sink = %self.name,
                endpoint = %self.endpoints[i].label,
                probe_in = ?delay,
                "HEC endpoint keeps failing; no requests go there until it answers its health check"
            );
            self.tasks.spawn(self.clone().probe(i, delay));
        }
    }

    /// Probes an open endpoint's health until it answers (or shutdown), then lets requests
    /// go there again.
    async fn probe(self: Arc<Self>, i: usize, mut delay: Duration) {
        loop {
            if sleep_or_cancel(delay, &self.shutdown).await.is_err() || !self.balancer.is_open(i) {
                return;
            }
            match self.probe_health(i).await {
                Probe::Answers => {
                    tracing::info!(sink = %self.name, endpoint = %self.endpoints[i].label, "HEC endpoint answers again; sending to it");
                    self.balancer.probe_succeeded(i);
                    return;
                }
                Probe::Unavailable(reason) => {
                    delay = self.balancer.probe_failed(i);
                    tracing::debug!(sink = %self.name, endpoint = %self.endpoints[i].label, error = %reason, next = ?delay, "HEC endpoint still unavailable");
                }
            }
        }
    }

    /// `GET /services/collector/health` of endpoint `i`, for the breaker.
    async fn probe_health(&self, i: usize) -> Probe {
        let ep = &self.endpoints[i];
        let request = ep
            .transport
            .client
            .get(ep.health_url.clone())
            .header(AUTHORIZATION, self.auth_header());
        let answer = tokio::select! {
            r = send(request) => r,
            () = self.shutdown.cancelled() => return Probe::Unavailable("shutting down".into()),
        };
        match answer {
            Ok(r) => match r.status().as_u16() {
                408 | 429 | 500..=599 => {
                    Probe::Unavailable(format!("{} answered {}", ep.health_url, r.status()))
                }
                _ => Probe::Answers,
            },
            Err(e) => {
                let reason = error_chain(&e);
                if e.is_connect() {
                    self.metrics.connect_failure(&reason);
                }
                Probe::Unavailable(reason)
            }
        }
    }

    fn reject(&self, rejected: &mut Vec<Rejection>, index: usize, reason: String) {
        self.metrics.rejected(1);
        tracing::debug!(sink = %self.name, index, %reason, "event rejected by HEC");
        rejected.push(Rejection { index, reason });
    }

    /// One POST on the endpoint of `lease`, which is held only while on the wire.
    async fn post(
        &self,
        lease: Lease,
        url: &Url,
        body: Bytes,
        raw_len: usize,
    ) -> Result<Outcome, Cancelled> {
        let ep = &self.endpoints[lease.index()];
        self.metrics.request(raw_len as u64, body.len() as u64);
        ep.counters.request();
        let mut request = ep
            .transport
            .client
            .post(url.clone())
            .header(AUTHORIZATION, self.auth_header())
            .header(CHANNEL_HEADER, &ep.channel)
            .header(
                CONTENT_TYPE,
                if url == &ep.raw_url {
                    "text/plain; charset=utf-8"
                } else {
                    "application/json"
                },
            );
        if self.settings.gzip.is_some() {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let exchange = async {
            let mut response = send(request.body(body)).await?;
            let status = response.status().as_u16();
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header(RETRY_AFTER).and_then(|v| {
                crate::util::retry::parse_retry_after(&v, std::time::SystemTime::now())
            });
            let location = header(LOCATION);
            let mut answer = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                answer
                    .extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - answer.len())]);
                if answer.len() >= MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, answer, retry_after, location))
        };
        let result = tokio::select! {
            r = exchange => r,
            () = self.shutdown.cancelled() => return Err(Cancelled),
        };
        drop(lease);
        Ok(match result {
            Ok((status, answer, retry_after, location)) => {
                let (outcome, code) = classify(
                    status,
                    &answer,
                    retry_after,
                    location.as_deref(),
                    url.as_str(),
                );
                self.metrics.hec_answer(status, code);
                outcome
            }
            Err(e) => {
                let outcome = classify_transport(&e, url.as_str(), ep.transport.route.proxy());
                if e.is_connect() {
                    self.metrics.connect_failure(&error_chain(&e));
                }
                outcome
            }
        })
    }

    /// True when acknowledged, false on timeout.
    async fn wait_for_ack(&self, acks: &AckTracker, id: u64) -> Result<bool, Cancelled> {
        let timeout = self.settings.ack.map(|a| a.timeout).unwrap_or_default();
        let rx = acks.register(id);
        tokio::select! {
            r = rx => Ok(r.is_ok()),
            () = tokio::time::sleep(timeout) => {
                acks.forget(id);
                Ok(false)
            }
            () = self.shutdown.cancelled() => {
                acks.forget(id);
                Err(Cancelled)
            }
        }
    }

    fn auth_header(&self) -> HeaderValue {
        self.auth.read().expect("auth lock poisoned").clone()
    }

    /// Re-reads `token_file` (after a 401/403): a rotated token is picked up without a
    /// restart.
    async fn reload_token(&self) {
        let TokenSource::File(path) = &self.settings.token else {
            return;
        };
        let path = path.clone();
        let read = tokio::task::spawn_blocking({
            let source = TokenSource::File(path.clone());
            move || config::resolve_token(&source, |_| None)
        })
        .await;
        match read {
            Ok(Ok(token)) => match auth_value(&token) {
                Ok(value) => {
                    let mut auth = self.auth.write().expect("auth lock poisoned");
                    if *auth != value {
                        tracing::info!(sink = %self.name, file = %path.display(), "HEC token file changed; using the new token");
                        *auth = value;
                    }
                }
                Err(e) => {
                    tracing::error!(sink = %self.name, file = %path.display(), error = %e, "unusable HEC token in token_file")
                }
            },
            Ok(Err(e)) => {
                tracing::error!(sink = %self.name, error = %e, "cannot re-read the HEC token file")
            }
            Err(e) => tracing::error!(sink = %self.name, error = %e, "token re-read task failed"),
        }
    }

    /// One ERROR per distinct configuration problem and retry period, not one per request.
    fn log_config_error(&self, reason: &str) {
        let period = self.settings.retry.config_error;
        let mut last = self.last_config_log.lock().expect("log lock poisoned");
        let due = match &*last {
            Some((msg, at)) => msg != reason || at.elapsed() >= period,
            None => true,
        };
        if due {
            tracing::error!(
                sink = %self.name,
                error = %reason,
                retry_in = ?period,
                "HEC sink is misconfigured; nothing is dropped: the batch is retried until this is fixed"
            );
            *last = Some((reason.to_owned(), Instant::now()));
        }
    }

    /// The start-up check of every endpoint (see [`Self::check_endpoint`]). A configuration
    /// or TLS problem on any endpoint is the answer; otherwise healthy when at least one
    /// endpoint is, each unreachable one named in a WARN.
    async fn healthcheck(&self) -> Result<(), SinkError> {
        let checks =
            futures::future::join_all((0..self.endpoints.len()).map(|i| self.check_endpoint(i)))
                .await;
        let mut unavailable = None;
        let mut healthy = 0;
        for (i, check) in checks.into_iter().enumerate() {
            match check {
                Ok(()) => healthy += 1,
                Err(e) if matches!(e.kind, SinkErrorKind::Config | SinkErrorKind::Tls) => {
                    return Err(e);
                }
                Err(e) => {
                    if self.endpoints.len() > 1 {
                        tracing::warn!(sink = %self.name, endpoint = %self.endpoints[i].label, error = %e.message, "HEC endpoint not reachable yet; the others take its share");
                    }
                    unavailable.get_or_insert(e);
                }
            }
        }
        match unavailable {
            Some(e) if healthy == 0 => Err(e),
            _ => Ok(()),
        }
    }

    /// `/services/collector/health` (with the token), then the empty-POST token probe:
    /// 400 code 5 "No data" means the token is good (docs/rendering.md §3.12 "Start-up check").
    async fn check_endpoint(&self, i: usize) -> Result<(), SinkError> {
        let name = &self.name;
        let ep = &self.endpoints[i];
        let proxy = ep.transport.route.proxy();
        let unreachable =
            |url: &Url, e: reqwest::Error| match classify_transport(&e, url.as_str(), proxy) {
                Outcome::Config { reason, .. } if proxy.is_some() && reason.contains("proxy") => {
                    SinkError::config(name, reason)
                }
                Outcome::Config { reason, .. } => {
                    SinkError::tls(name, crate::error::Side::Client, reason)
                }
                _ => SinkError::unavailable(
                    name,
                    format!("cannot reach the HEC endpoint {url}: {}", error_chain(&e)),
                ),
            };
        let health = ep
            .transport
            .client
            .get(ep.health_url.clone())
            .header(AUTHORIZATION, self.auth_header());
        let health = send(health)
            .await
            .map_err(|e| unreachable(&ep.health_url, e))?;
        let status = health.status().as_u16();
        let body = health.bytes().await.unwrap_or_default();
        let answer = response::HecAnswer::parse(&body);
        match (status, &answer) {
            (200, Some(_)) => {}
            (503, _) => {
                return Err(SinkError::unavailable(
                    name,
                    format!(
                        "HEC at {} reports unhealthy ({status}, code {:?}): Splunk's queues are full or its ack service is down",
                        ep.health_url,
                        answer.and_then(|a| a.code)
                    ),
                ));
            }
            (400 | 401 | 403, Some(_)) => {
                return Err(SinkError::config(
                    name,
                    format!(
                        "HEC at {} refused the token (status {status}): check `token` / `token_file` / SHIPPER_HEC_TOKEN",
                        ep.health_url
                    ),
                ));
            }
            // A proxy or load balancer in front of Splunk answering for a moment (its own
            // JSON or HTML error page): not a configuration mistake, wait for it.
            (408 | 429 | 500..=599, None) => {
                return Err(SinkError::unavailable(
                    name,
                    format!(
                        "{} answered {status} without an HEC JSON body (a proxy in front of Splunk?)",
                        ep.health_url
                    ),
                ));
            }
            (_, None) => {
                return Err(SinkError::config(
                    name,
                    format!(
                        "{} answered {status} without an HEC JSON body: this is not an HEC endpoint; check `endpoint` (HEC listens on 8088 by default)",
                        ep.health_url
                    ),
                ));
            }
            _ => {
                tracing::warn!(sink = %name, url = %ep.health_url, status, "unexpected HEC health answer; checking the token")
            }
        }
        let probe = ep
            .transport
            .client
            .post(ep.event_url.clone())
            .header(AUTHORIZATION, self.auth_header())
            .header(CHANNEL_HEADER, &ep.channel)
            .header(CONTENT_TYPE, "application/json")
            .body(Vec::new());
        let probe = send(probe)
            .await
            .map_err(|e| unreachable(&ep.event_url, e))?;
        let status = probe.status().as_u16();
        let body = probe.bytes().await.unwrap_or_default();
        match classify(status, &body, None, None, ep.event_url.as_str()).0 {
            Outcome::Data { .. } | Outcome::Accepted { .. } => Ok(()),
            Outcome::Config { reason, .. } => Err(SinkError::config(name, reason)),
            Outcome::Transient { reason, .. } | Outcome::TooLarge { reason } => {
                Err(SinkError::unavailable(name, reason))
            }
        }
    }
}

/// The request tasks of one send; aborted if the send is dropped before they finish.
struct AbortOnDrop<T>(Vec<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "request parts are lists of event index ranges"
)]
mod tests {
    use super::*;

    fn batch(sizes: &[(usize, Lane)]) -> EventBatch {
        let mut b = EventBatch::new();
        for &(n, lane) in sizes {
            b.buf_mut().extend(std::iter::repeat_n(b'x', n));
            b.commit(lane);
        }
        b
    }

    #[test]
    fn plan_respects_size_and_lanes() {
        let d = Lane::Default;
        let b = batch(&[
            (4, d),
            (4, d),
            (4, d),
            (20, d),
            (1, Lane::Raw),
            (1, Lane::Raw),
            (1, d),
        ]);
        let plan = plan_requests(&b, 8);
        assert_eq!(
            plan,
            vec![
                (d, 0..2),
                (d, 2..3),
                (d, 3..4),
                (Lane::Raw, 4..6),
                (d, 6..7)
            ]
        );
    }

    #[test]
    fn fit_cuts_to_a_byte_limit() {
        let d = Lane::Default;
        let b = batch(&[(4, d), (4, d), (4, d), (20, d), (1, d), (1, d)]);
        assert_eq!(
            fit(&b, &[0..6], 8),
            vec![vec![0..2], vec![2..3], vec![3..4], vec![4..6]]
        );
        assert_eq!(
            fit(&b, &[0..1, 4..6], 5),
            vec![vec![0..1, 4..5], vec![5..6]]
        );
        assert_eq!(raw_len(&b, &[0..2, 4..5]), 9);
    }

    #[test]
    fn split_helpers() {
        let parts = vec![0..3, 5..8];
        assert_eq!(count(&parts), 6);
        assert_eq!(nth(&parts, 4), 6);
        assert_eq!(without(&parts, 6), vec![0..3, 5..6, 7..8]);
        assert_eq!(without(&parts, 0), vec![1..3, 5..8]);
        assert_eq!(halves(&parts), (vec![0..3], vec![5..8]));
        assert_eq!(halves(&[0..5]), (vec![0..2], vec![2..5]));
        assert_eq!(halves(&[0..2]), (vec![0..1], vec![1..2]));
    }

    #[tokio::test]
    async fn encoded_requests_are_the_batch_cut_at_the_request_size_and_gzipped() {
        use std::io::Read as _;
        let config: HecConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "http://127.0.0.1:9",
            "token": "t",
            "batch_max_bytes": 200,
        }))
        .unwrap();
        let sink = HecSink::build("t", config.validate().unwrap(), CancellationToken::new())
            .await
            .unwrap();
        let mut batch = EventBatch::new();
        for i in 0..20 {
            let event = crate::payload::HecEvent::new(crate::payload::HecBody::Text(format!(
                "event number {i}"
            )));
            crate::Sink::render(&sink, &crate::Payload::Hec(event), &mut batch).unwrap();
        }
        let batch = Arc::new(batch);
        let bodies = sink.encode_requests(&batch);
        let plan = plan_requests(&batch, 200);
        assert!(
            plan.len() > 1,
            "20 events of ~50 bytes exceed one 200-byte request"
        );
        assert_eq!(bodies.len(), plan.len());
        for (body, (_, events)) in bodies.iter().zip(plan) {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut raw)
                .unwrap();
            assert_eq!(raw, batch.bytes()[batch.byte_range(events)]);
        }
    }
}
