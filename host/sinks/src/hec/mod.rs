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
//! - `parts`: a request's events as index ranges into its batch; cutting a batch into
//!   requests and a request into smaller ones.
//! - `deliver`: one request's attempts until every event is settled; endpoint probes, the
//!   token re-read, the health check.
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
mod deliver;
mod endpoint;
mod gzip;
mod parts;
mod request;
mod request_size;
pub(crate) mod response;

use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::error::{RenderError, SinkError};
use crate::metrics::{EndpointStatus, SinkMetrics};
use crate::payload::Payload;
use crate::util::batch::{BatchConfig, EventBatch, Lane};
use crate::{BoxFuture, Delivery, Sink};
use balance::Balancer;
use deliver::deliver;
use endpoint::{Endpoint, Transport};
use parts::plan_requests;
use request_size::RequestSize;
use response::{Outcome, classify_transport, error_chain, never_sent};

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
mod tests {
    use super::*;

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
