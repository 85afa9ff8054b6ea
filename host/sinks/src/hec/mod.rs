//! The Splunk HTTP Event Collector sink.
//!
//! - [`config`]: `HecConfig` → `HecSettings` (defaults explained in docs/rendering.md §3).
//! - `request`: envelope rendering (docs/rendering.md §2 "Rendering rules"), `/raw` lines,
//!   gzip bodies.
//! - `response`: every answer → a retry class (docs/rendering.md §3.9 "HEC response classes").
//! - `ack`: indexer acknowledgement (channel GUID, `/ack` polling, resend on timeout).
//!
//! A batch is cut into requests of at most `batch_max_bytes` (events of one endpoint each);
//! every request runs as its own task, so gzip runs on several cores, and at most
//! `concurrency` requests are on the wire at once (reqwest keeps the connections alive).
//! Failures are handled per request: transient → backoff with equal jitter (honouring
//! `Retry-After`); 413 → halves; data error → the event named by `invalid-event-number` is
//! rejected and the rest resent (bisect without a number); configuration error → an ERROR
//! naming the URL and the fix, then slow retries with the token file re-read, never a drop.

pub mod config;

mod ack;
mod gzip;
mod request;
mod response;

use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

pub use config::{HecConfig, HecRawConfig, HecSettings, TokenSource};

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

use crate::error::{RenderError, SinkError};
use crate::metrics::{ErrorClass, SinkMetrics};
use crate::payload::Payload;
use crate::util::batch::{BatchConfig, EventBatch, Lane};
use crate::util::retry::{self, Cancelled, sleep_or_cancel};
use crate::{BoxFuture, Delivery, Rejection, Sink};
use ack::AckTracker;
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

/// State shared by the sink, its request tasks and the ack poller.
pub(crate) struct Inner {
    name: String,
    settings: HecSettings,
    client: reqwest::Client,
    event_url: Url,
    raw_url: Url,
    ack_url: Url,
    health_url: Url,
    channel: String,
    auth: RwLock<HeaderValue>,
    permits: Semaphore,
    metrics: Arc<SinkMetrics>,
    acks: Option<AckTracker>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    last_config_log: Mutex<Option<(String, Instant)>>,
    /// Direct or through which proxy.
    route: shipper_net::proxy::Route,
}

impl HecSink {
    /// Reads the token and TLS files, builds the HTTP client and starts the ack poller.
    /// No request is sent: call [`Sink::healthcheck`] for the start-up check. Everything
    /// stops when `shutdown` fires or the sink is dropped.
    pub async fn build(
        name: &str,
        settings: HecSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, SinkError> {
        let token = config::resolve_token(&settings.token, |k| std::env::var(k).ok())
            .map_err(|e| SinkError::config(name, e.to_string()))?;
        let tls = if settings.base.scheme() == "https" {
            settings.tls.client_config(name)?
        } else {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::config(name, format!("TLS set-up: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        };
        let route = shipper_net::proxy::route(
            &settings.proxy,
            "sink",
            &|k| std::env::var(k).ok(),
            settings.base.scheme() == "https",
            settings.base.host_str().unwrap_or_default(),
        )
        .map_err(|e| SinkError::config(name, e.to_string()))?;
        tracing::info!(sink = name, route = %route, "HEC network route");
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(settings.concurrency)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .tcp_keepalive(std::time::Duration::from_secs(60));
        let client = shipper_net::proxy::apply(builder, &route)
            .build()
            .map_err(|e| {
                SinkError::config(
                    name,
                    format!("cannot build the HTTP client: {}", error_chain(&e)),
                )
            })?;
        let channel = uuid::Uuid::new_v4().to_string();
        let url = |path: &str| -> Result<Url, SinkError> {
            let s = format!(
                "{}/services/collector/{path}",
                settings.base.as_str().trim_end_matches('/')
            );
            Url::parse(&s)
                .map_err(|e| SinkError::config(name, format!("bad endpoint URL {s}: {e}")))
        };
        let event_url = url("event")?;
        let mut raw_url = url("raw")?;
        raw_url
            .query_pairs_mut()
            .append_pair("channel", &channel)
            .extend_pairs(settings.raw_query.iter().map(|(k, v)| (*k, v)));
        let ack_url = {
            let mut u = url("ack")?;
            u.query_pairs_mut().append_pair("channel", &channel);
            u
        };
        let health_url = url("health")?;
        let stop = shutdown.child_token();
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            client,
            event_url,
            raw_url,
            ack_url,
            health_url,
            channel,
            auth: RwLock::new(auth_value(&token)?),
            permits: Semaphore::new(settings.concurrency),
            metrics: Arc::new(SinkMetrics::default()),
            acks: settings.ack.map(|_| AckTracker::default()),
            shutdown: stop.clone(),
            tasks: TaskTracker::new(),
            last_config_log: Mutex::new(None),
            route,
            settings,
        });
        if inner.acks.is_some() {
            inner.tasks.spawn(ack::run_poller(inner.clone()));
        }
        Ok(Self {
            inner,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The channel GUID sent with every request.
    pub fn channel(&self) -> &str {
        &self.inner.channel
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
            let handles: Vec<_> = plan_requests(&batch, inner.settings.batch.max_bytes)
                .into_iter()
                .map(|(lane, parts)| {
                    inner.tasks.spawn(deliver(
                        inner.clone(),
                        batch.clone(),
                        lane,
                        Vec::from([parts]),
                    ))
                })
                .collect();
            let mut rejected = Vec::new();
            let mut cancelled = false;
            for h in handles {
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

    fn batch_config(&self) -> BatchConfig {
        self.inner.settings.batch
    }

    fn metrics(&self) -> Arc<SinkMetrics> {
        self.inner.metrics.clone()
    }

    fn healthcheck(&self) -> BoxFuture<'static, Result<(), SinkError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.healthcheck().await })
    }
}

/// Cuts a batch into requests: runs of consecutive events of one endpoint, at most
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

impl Inner {
    /// Sends one request until it is accepted or turned into smaller work / rejections.
    async fn deliver_one(
        &self,
        batch: &Arc<EventBatch>,
        lane: Lane,
        parts: &[Range<usize>],
        work: &mut Vec<Vec<Range<usize>>>,
        rejected: &mut Vec<Rejection>,
    ) -> Result<(), Cancelled> {
        let n = count(parts);
        let (body, raw_len) = request::encode_body(batch, parts, self.settings.gzip);
        let url = if lane == Lane::Raw {
            &self.raw_url
        } else {
            &self.event_url
        };
        let mut backoff = self.settings.retry.backoff();
        let mut failures = 0u32;
        loop {
            match self.post(url, body.clone(), raw_len).await? {
                Outcome::Accepted { ack_id } => {
                    if let (Some(acks), Some(id)) = (&self.acks, ack_id)
                        && !acks.is_disabled()
                        && !self.wait_for_ack(acks, id).await?
                    {
                        self.metrics.ack_timeout();
                        self.metrics.retry();
                        tracing::warn!(sink = %self.name, ack_id = id, events = n, "no indexer acknowledgement in time; sending the request again");
                        continue;
                    }
                    self.metrics.accepted(n as u64);
                    return Ok(());
                }
                Outcome::Transient {
                    retry_after,
                    reason,
                } => {
                    self.metrics.error(ErrorClass::Transient, &reason);
                    let delay = backoff.next_delay_at_least(retry::capped_retry_after(retry_after));
                    failures += 1;
                    // WARN on the 1st, 2nd, 4th, 8th… failure of a request: visible, not a flood.
                    if failures.is_power_of_two() {
                        tracing::warn!(sink = %self.name, error = %reason, ?delay, failures, "HEC request failed; retrying");
                    } else {
                        tracing::debug!(sink = %self.name, error = %reason, ?delay, failures, "HEC request failed; retrying");
                    }
                    sleep_or_cancel(delay, &self.shutdown).await?;
                    self.metrics.retry();
                }
                Outcome::TooLarge { reason } => {
                    self.metrics.error(ErrorClass::TooLarge, &reason);
                    if n == 1 {
                        self.reject(rejected, parts[0].start, reason);
                    } else {
                        tracing::info!(sink = %self.name, events = n, "HEC answered 413; splitting the request in halves");
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
                    if reread_token {
                        self.reload_token().await;
                    }
                    self.log_config_error(&reason);
                    sleep_or_cancel(self.settings.retry.config_error, &self.shutdown).await?;
                    self.metrics.retry();
                }
            }
        }
    }

    fn reject(&self, rejected: &mut Vec<Rejection>, index: usize, reason: String) {
        self.metrics.rejected(1);
        tracing::debug!(sink = %self.name, index, %reason, "event rejected by HEC");
        rejected.push(Rejection { index, reason });
    }

    /// One POST. Holds a concurrency permit only while on the wire.
    async fn post(&self, url: &Url, body: Bytes, raw_len: usize) -> Result<Outcome, Cancelled> {
        let _permit = tokio::select! {
            p = self.permits.acquire() => p.expect("the semaphore is never closed"),
            () = self.shutdown.cancelled() => return Err(Cancelled),
        };
        self.metrics.request(raw_len as u64, body.len() as u64);
        let mut request = self
            .client
            .post(url.clone())
            .header(AUTHORIZATION, self.auth_header())
            .header(CHANNEL_HEADER, &self.channel)
            .header(
                CONTENT_TYPE,
                if url == &self.raw_url {
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
                let outcome = classify_transport(&e, url.as_str(), self.route.proxy());
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

    /// `/services/collector/health` (with the token), then the empty-POST token probe:
    /// 400 code 5 "No data" means the token is good (docs/rendering.md §3.12 "Start-up check").
    async fn healthcheck(&self) -> Result<(), SinkError> {
        let name = &self.name;
        let proxy = self.route.proxy();
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
        let health = self
            .client
            .get(self.health_url.clone())
            .header(AUTHORIZATION, self.auth_header());
        let health = send(health)
            .await
            .map_err(|e| unreachable(&self.health_url, e))?;
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
                        self.health_url,
                        answer.and_then(|a| a.code)
                    ),
                ));
            }
            (400 | 401 | 403, Some(_)) => {
                return Err(SinkError::config(
                    name,
                    format!(
                        "HEC at {} refused the token (status {status}): check `token` / `token_file` / SHIPPER_HEC_TOKEN",
                        self.health_url
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
                        self.health_url
                    ),
                ));
            }
            (_, None) => {
                return Err(SinkError::config(
                    name,
                    format!(
                        "{} answered {status} without an HEC JSON body: this is not an HEC endpoint; check `endpoint` (HEC listens on 8088 by default)",
                        self.health_url
                    ),
                ));
            }
            _ => {
                tracing::warn!(sink = %name, url = %self.health_url, status, "unexpected HEC health answer; checking the token")
            }
        }
        let probe = self
            .client
            .post(self.event_url.clone())
            .header(AUTHORIZATION, self.auth_header())
            .header(CHANNEL_HEADER, &self.channel)
            .header(CONTENT_TYPE, "application/json")
            .body(Vec::new());
        let probe = send(probe)
            .await
            .map_err(|e| unreachable(&self.event_url, e))?;
        let status = probe.status().as_u16();
        let body = probe.bytes().await.unwrap_or_default();
        match classify(status, &body, None, None, self.event_url.as_str()).0 {
            Outcome::Data { .. } | Outcome::Accepted { .. } => Ok(()),
            Outcome::Config { reason, .. } => Err(SinkError::config(name, reason)),
            Outcome::Transient { reason, .. } | Outcome::TooLarge { reason } => {
                Err(SinkError::unavailable(name, reason))
            }
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
}
