//! One request's delivery: the endpoint the balancer picks for each attempt, retries and
//! backoff, splits on 413, rejections of bad events, indexer acknowledgements, and the
//! health probes that bring a failed endpoint back (docs/rendering.md §3.9–§3.13).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER,
};
use tokio::time::Instant;

use super::ack::AckTracker;
use super::adaptive::Observed;
use super::balance::Lease;
use super::config::{self, TokenSource};
use super::endpoint::Endpoint;
use super::parts::{count, fit, halves, nth, raw_len, without};
use super::response::{self, Outcome, classify, classify_transport, error_chain};
use super::{CHANNEL_HEADER, Inner, MAX_ANSWER_BYTES, auth_value, request, send};
use crate::Rejection;
use crate::error::{SinkError, SinkErrorKind};
use crate::metrics::ErrorClass;
use crate::util::batch::{EventBatch, Lane};
use crate::util::retry::{self, Cancelled, sleep_or_cancel};

/// What one request task settled.
pub(super) struct Settled {
    pub(super) rejected: Vec<Rejection>,
    pub(super) cancelled: bool,
}

/// Delivers one request's events: retries, splits and rejections until every event is
/// settled or shutdown.
pub(super) async fn deliver(
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
    pub(super) fn endpoint_failed(self: &Arc<Self>, i: usize, retry_after: Option<Duration>) {
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

    pub(super) fn auth_header(&self) -> HeaderValue {
        self.auth.read().expect("auth lock poisoned").clone()
    }

    /// Re-reads `token_file` (after a 401/403): a rotated token is picked up without a
    /// restart.
    pub(super) async fn reload_token(&self) {
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
    pub(super) async fn healthcheck(&self) -> Result<(), SinkError> {
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
