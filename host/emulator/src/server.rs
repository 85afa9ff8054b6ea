//! The HTTP side: accept loop (hyper 1, HTTP/1.1 keep-alive), per-request body limit,
//! authentication, dispatch, SLS-shaped responses (`x-log-requestid` on every one, lowercase
//! header names, status exactly 200 on success), graceful shutdown, and the `--generate`
//! task. [`State`] is what every request shares.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use shipper_sls::sign::Credentials;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{DEFAULT_GENERATE_SHARDS, EmulatorConfig, GenerateConfig, LogstoreSpec};
use crate::error::{ApiError, EmulatorError};
use crate::faults::{Before, ConnectionDropped, Faults};
use crate::generate::Generator;
use crate::persist::Persist;
use crate::pull::PullCache;
use crate::quota::ReadQuotas;
use crate::request::{Reply, Request};
use crate::store::{Logstore, LogstoreMeta, Store, now_secs};
use crate::sts::Issuer;
use crate::{auth, routes};

/// How long shutdown waits for open requests before closing connections anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Shared by every request.
pub(crate) struct State {
    pub store: Store,
    pub credentials: Credentials,
    pub max_pull_bytes: usize,
    pub max_body_bytes: usize,
    pub pull_cache: PullCache,
    /// Per-shard read quotas of PullLogs.
    pub read_quota: ReadQuotas,
    /// PullLogs admitted (see `EmulatorHandle::pulls_served`).
    pub pulls_served: AtomicU64,
    /// `--latency`: added to every response.
    latency: Duration,
    /// Injected faults (tests); inert until a rule is added.
    pub faults: Faults,
    /// Temporary credentials, when enabled.
    pub sts: Option<Issuer>,
    /// `--clock-offset`, in seconds.
    clock_offset_secs: i64,
    requests: AtomicU64,
    /// Makes request ids differ between runs.
    salt: u64,
}

impl State {
    /// Validates the config, loads the data directory and pre-creates logstores.
    pub fn build(config: &EmulatorConfig) -> Result<Arc<Self>, EmulatorError> {
        config.validate()?;
        let persist = config.data_dir.as_deref().map(Persist::open).transpose()?;
        let store = Store::new(persist);
        if let Some(p) = store.persist() {
            p.load(&store)?;
        }
        let state = Arc::new(Self {
            store,
            credentials: config.credentials.clone(),
            max_pull_bytes: config.max_pull_bytes,
            max_body_bytes: config.max_body_bytes,
            pull_cache: PullCache::new(config.pull_cache_bytes),
            read_quota: ReadQuotas::new(config.read_quota),
            latency: config.latency,
            pulls_served: AtomicU64::new(0),
            faults: Faults::default(),
            sts: config.sts.clone().map(Issuer::new),
            clock_offset_secs: config.clock_offset_secs,
            requests: AtomicU64::new(0),
            salt: u64::from(now_secs()) ^ u64::from(std::process::id()) << 32,
        });
        for spec in &config.logstores {
            state.ensure_logstore(spec)?;
        }
        if let Some(g) = &config.generate {
            let named = config
                .logstores
                .iter()
                .any(|s| s.project == g.project && s.logstore == g.logstore);
            if !named {
                let spec = LogstoreSpec::try_new(&g.project, &g.logstore, DEFAULT_GENERATE_SHARDS)
                    .map_err(EmulatorError::Config)?;
                state.ensure_logstore(&spec)?;
            }
        }
        Ok(state)
    }

    /// Creates the project and logstore of `spec` unless they exist.
    pub fn ensure_logstore(&self, spec: &LogstoreSpec) -> Result<Arc<Logstore>, EmulatorError> {
        let setup = |source| EmulatorError::Setup {
            what: format!("logstore {spec}"),
            source,
        };
        let project = match self.store.project(&spec.project) {
            Ok(p) => p,
            Err(_) => self
                .store
                .create_project(&spec.project, "")
                .map_err(setup)?,
        };
        if let Ok(ls) = project.logstore(&spec.logstore) {
            let shards = ls.shards().len();
            if shards != spec.shards as usize {
                tracing::warn!(logstore = %spec, existing_shards = shards,
                    "logstore already exists with another shard count; keeping it as it is");
            }
            return Ok(ls);
        }
        self.store
            .create_logstore(
                &project,
                &spec.logstore,
                spec.shards,
                LogstoreMeta::default(),
            )
            .map_err(setup)
    }

    /// The emulator's clock (the real one shifted by the configured offset).
    pub fn now(&self) -> std::time::SystemTime {
        let offset = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        if self.clock_offset_secs >= 0 {
            std::time::SystemTime::now() + offset
        } else {
            std::time::SystemTime::now() - offset
        }
    }

    /// 24 upper-case hex digits, like SLS request ids (docs/sls-protocol.md §2.5).
    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{:08X}{:016X}", now_secs(), self.salt ^ n)
    }
}

/// Serves until `shutdown` resolves, then drains connections (up to [`SHUTDOWN_GRACE`]).
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    generate: Option<GenerateConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EmulatorError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let generator = generate.map(|g| tokio::spawn(generate_loop(state.clone(), g, stop_rx)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small responses (heartbeats) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = service_fn(move |req| handle(state.clone(), peer, req));
                    let conn = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still busy after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
    if let Some(task) = generator {
        task.await
            .map_err(|e| EmulatorError::Task(format!("sample generator: {e}")))?;
    }
    tracing::info!("emulator stopped");
    Ok(())
}

/// Answers one request. The only error is an injected [`ConnectionDropped`]: hyper then
/// closes the connection without writing a response.
async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let request_id = state.request_id();
    let (parts, body) = req.into_parts();
    let result = match Limited::new(body, state.max_body_bytes).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            // A bug must cost one request (500, which SDKs retry), not the connection.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                process(&state, parts, body, peer)
            }))
            .unwrap_or_else(|_| {
                tracing::error!(request_id, "request handler panicked; answered 500");
                Ok(Err(ApiError::internal(
                    "the emulator failed on this request (a bug); see its log",
                )))
            })?
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            400,
            "PostBodyTooLarge",
            format!("request body exceeds {} bytes", state.max_body_bytes),
        )),
        Err(e) => Err(ApiError::post_body_invalid(format!(
            "cannot read the request body: {e}"
        ))),
    };
    if !state.latency.is_zero() {
        // The distance: the answer is computed at once (a quota is charged when the request
        // arrives) and reaches the client one round trip after it asked.
        tokio::time::sleep(state.latency).await;
    }
    if let Err(e) = &result {
        if e.status >= 500 {
            tracing::warn!(request_id, error = %e, "request failed");
        } else {
            tracing::debug!(request_id, error = %e, "request rejected");
        }
    }
    Ok(respond(result, &request_id, state.now()))
}

/// Authenticates and dispatches one request. The outer `Err` drops the connection (an
/// injected fault); the inner result is the answer.
fn process(
    state: &State,
    parts: http::request::Parts,
    body: Bytes,
    peer: SocketAddr,
) -> Result<Result<Reply, ApiError>, ConnectionDropped> {
    let req = Request::from_parts(parts, body, peer.ip());
    if let Some(issuer) = &state.sts
        && let Some(answer) = issuer.serve(&req, &state.credentials)
    {
        return Ok(answer);
    }
    let keys = auth::Keys {
        long_term: &state.credentials,
        issuer: state.sts.as_ref(),
        now: state.now(),
    };
    if let Err(e) = auth::verify(&req, &keys) {
        return Ok(Err(e));
    }
    match state.faults.before(&req) {
        Before::Proceed(target) => {
            Ok(routes::dispatch(state, &req).map(|reply| state.faults.after(target, reply)))
        }
        Before::Fail(e) => Ok(Err(e)),
        Before::Drop => Err(ConnectionDropped),
    }
}

fn respond(
    result: Result<Reply, ApiError>,
    request_id: &str,
    now: std::time::SystemTime,
) -> Response<Full<Bytes>> {
    let (status, content_type, headers, body) = match result {
        Ok(reply) => (200, reply.content_type, reply.headers, reply.body),
        Err(e) => {
            let body = serde_json::json!({
                "errorCode": e.code,
                "errorMessage": e.message,
                "requestId": request_id,
            });
            (
                e.status,
                "application/json",
                Vec::new(),
                Bytes::from(body.to_string()),
            )
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The emulator's own clock (shifted by --clock-offset), so clients can measure skew.
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        h.insert(http::header::DATE, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static("x-log-requestid"), v);
    }
    for (name, value) in headers {
        match HeaderValue::from_str(&value) {
            Ok(v) => {
                h.insert(HeaderName::from_static(name), v);
            }
            Err(_) => tracing::warn!(header = name, "response header value is not valid; dropped"),
        }
    }
    response
}

/// Most logs per generated LogGroup (Logtail packs up to a few hundred; 64 keeps groups
/// around 40–80 KB).
const GENERATE_GROUP_LOGS: usize = 64;

async fn generate_loop(state: Arc<State>, cfg: GenerateConfig, mut stop: watch::Receiver<bool>) {
    let logstore = match state
        .store
        .project(&cfg.project)
        .and_then(|p| p.logstore(&cfg.logstore))
    {
        Ok(ls) => ls,
        Err(e) => {
            tracing::error!(error = %e, "sample generator has no logstore; not generating");
            return;
        }
    };
    tracing::info!(project = %cfg.project, logstore = %cfg.logstore, rate = cfg.rate, "generating sample logs");
    let mut generator = Generator::new(cfg.kind, cfg.seed);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut owed = 0.0_f64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let now = tokio::time::Instant::now();
        owed += cfg.rate * now.duration_since(last).as_secs_f64();
        last = now;
        let mut due = owed.floor() as usize;
        owed -= due as f64;
        while due > 0 {
            let n = due.min(GENERATE_GROUP_LOGS);
            due -= n;
            let time = now_secs();
            let result = logstore
                .pick_lb()
                .and_then(|shard| shard.append(vec![generator.group(n, time)], time));
            if let Err(e) = result {
                tracing::error!(error = %e, "sample generator cannot write; stopping it");
                return;
            }
        }
    }
}
