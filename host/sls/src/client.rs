//! [`Client`]: one SLS project at one endpoint, with credentials, over a pooled reqwest client
//! with a rustls (ring) TLS configuration; and the request helper every API call goes
//! through (addressing, v1 signing, error mapping).
//!
//! The API calls themselves live in [`crate::api`]; this module knows nothing about what
//! they mean.
//!
//! Credentials are read from a [`RefreshingCredentials`] on every request (a pointer copy;
//! refreshing happens in its background task). A 401 whose code names the security token,
//! `Unauthorized` or `InvalidAccessKeyId` asks it for fresh credentials and the request is
//! sent once more, as the official Python SDK does (docs/sls-protocol.md §3.3). Requests
//! are signed v1 or v4 ([`SignatureVersion`]). The proxy route is decided by the caller
//! (`shipper_net::proxy`) and only applied here.
//!
//! Addressing (docs/sls-protocol.md §2.2 "The virtual host", §2.3): the project is named
//! only by the `Host` header, `<project>.<endpoint-host>`. For DNS endpoints the URL host is
//! that virtual host, like the SDKs. For an IP literal or `localhost` (the emulator, a test)
//! the connection goes to the endpoint address itself and the `Host` header is set
//! explicitly, because `<project>.127.0.0.1` cannot be resolved (or even parsed as a URL
//! host).

use secrecy::ExposeSecret as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use shipper_net::proxy::Route;

use crate::codec::{Compression, DEFAULT_MAX_RAW_SIZE};
use crate::credentials::RefreshingCredentials;
use crate::error::SlsError;
use crate::sign::{self, Credentials, SignatureVersion};

/// Whole-request timeout. Go's SDK uses 60 s, Python 120 s; a PullLogs of 1000 groups is
/// well under that, and the consumer uses shorter ones for heartbeats.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// TCP + TLS connect timeout: long enough for a far region, short enough to fail over soon.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// SLS endpoint: `host`, `host:port`, `http://host[:port]` or `https://host[:port]`
    /// (e.g. `cn-hangzhou.log.aliyuncs.com`, `https://cn-hangzhou.log.aliyuncs.com`,
    /// `127.0.0.1:8080` for a local emulator). Plain HTTP on port 80 unless `https://` is
    /// given, as in the SDKs.
    pub endpoint: String,
    /// Project name (`[a-z0-9-]`); it becomes the first label of the `Host` header.
    pub project: String,
    /// The credentials to sign with (fixed, or refreshed by a provider).
    pub credentials: RefreshingCredentials,
    /// v1 (the default) or v4 with a region.
    pub signature: SignatureVersion,
    /// Direct or through a proxy (decided by `shipper_net::proxy::route`); direct by
    /// default, whatever the environment says.
    pub route: Route,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Extra PEM CA certificates to trust for `https://` endpoints (added to the system
    /// roots), e.g. for a TLS-terminating proxy.
    pub ca_file: Option<PathBuf>,
    /// Largest decompressed response body accepted (see [`crate::codec`]).
    pub max_raw_size: usize,
    /// `User-Agent` header; defaults to `shipper/<version>`.
    pub user_agent: Option<String>,
}

impl ClientConfig {
    /// A configuration with the default timeouts and limits.
    pub fn new(
        endpoint: impl Into<String>,
        project: impl Into<String>,
        credentials: impl Into<RefreshingCredentials>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            project: project.into(),
            credentials: credentials.into(),
            signature: SignatureVersion::V1,
            route: Route::Direct("not configured"),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ca_file: None,
            max_raw_size: DEFAULT_MAX_RAW_SIZE,
            user_agent: None,
        }
    }
}

/// An SLS client for one project. Cheap to clone (an `Arc` inside); share one per project.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// The endpoint as configured, for error messages.
    endpoint: String,
    /// `scheme://authority` every path is appended to.
    base_url: String,
    /// `Host` header sent explicitly (IP/localhost endpoints, and every v4 request, whose
    /// signature covers it).
    host_header: Option<HeaderValue>,
    /// The virtual host, as v4 signs it.
    virtual_host: String,
    project: String,
    credentials: RefreshingCredentials,
    signature: SignatureVersion,
    route: Route,
    max_raw_size: usize,
}

/// A parsed endpoint string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub https: bool,
    /// Host as it appears in a URL (IPv6 in brackets).
    pub host: String,
    pub port: Option<u16>,
    /// IP literal or `localhost`: connect to it directly, send the virtual host in `Host`.
    pub direct: bool,
}

impl Endpoint {
    pub(crate) fn parse(s: &str) -> Result<Self, SlsError> {
        let bad = |why: &str| {
            SlsError::config(format!(
                "endpoint {s:?} {why}; expected host, host:port, http://host[:port] or \
                 https://host[:port]"
            ))
        };
        let trimmed = s.trim();
        let (https, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some(_) => return Err(bad("has an unsupported scheme")),
            None => (false, trimmed),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('@') {
            return Err(bad("must not contain a path, query or user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("has junk after ']'"))?,
                ),
            };
            (format!("[{addr}]"), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h.to_owned(), Some(p)),
                Some(_) => return Err(bad("looks like an IPv6 address: put it in brackets")),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("has no host"));
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad("has an invalid port")))
            .transpose()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let direct =
            bare.parse::<std::net::IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost");
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
            direct,
        })
    }

    fn authority(&self, prefix: &str) -> String {
        match self.port {
            Some(port) => format!("{prefix}{}:{port}", self.host),
            None => format!("{prefix}{}", self.host),
        }
    }
}

/// One API request before signing. Built by the `api` module, sent by [`Client::send`].
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    /// Operation name for errors and logs (`PullLogs`).
    pub op: &'static str,
    pub method: Method,
    /// Path relative to the project, e.g. `/logstores/ls/shards/0`.
    pub path: String,
    /// Query parameters in wire order, raw (un-escaped) values.
    pub query: Vec<(&'static str, String)>,
    /// Body exactly as sent (after compression); empty = no body.
    pub body: Bytes,
    pub content_type: Option<&'static str>,
    /// `x-log-bodyrawsize`; `None` leaves the header out (what Python does on heartbeats
    /// and checkpoints; the server requires it only with compression).
    pub raw_size: Option<usize>,
    /// `x-log-compresstype` of the request body.
    pub compression: Option<Compression>,
    /// `Accept` / `Accept-Encoding` (PullLogs only).
    pub accept: Option<(&'static str, &'static str)>,
    /// Overrides the client-wide timeout (heartbeats must not outlive their interval).
    pub timeout: Option<Duration>,
}

impl ApiRequest {
    /// A bodiless request with `x-log-bodyrawsize: 0`, as every SDK sends on GETs.
    pub fn new(op: &'static str, method: Method, path: String) -> Self {
        Self {
            op,
            method,
            path,
            query: Vec::new(),
            body: Bytes::new(),
            content_type: None,
            raw_size: Some(0),
            compression: None,
            accept: None,
            timeout: None,
        }
    }

    /// Adds a query parameter.
    pub fn param(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Sets a JSON body (`Content-Type: application/json`).
    pub fn json(mut self, body: String, raw_size: Option<usize>) -> Self {
        self.body = Bytes::from(body);
        self.content_type = Some("application/json");
        self.raw_size = raw_size;
        self
    }
}

/// A request ready to go on the wire (also what the signature tests look at).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub url: String,
    /// Request target as sent: path plus form-encoded query.
    #[cfg(test)]
    pub target: String,
    /// Lower-case header names (plus `host` when set explicitly).
    pub headers: Vec<(&'static str, String)>,
    #[cfg(test)]
    pub string_to_sign: String,
}

/// A 200 response.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Query values on the wire: `application/x-www-form-urlencoded` like `requests`' `quote_plus`
/// and Go's `url.Values.Encode` (space → `+`), the forms SLS has always received. The
/// signature uses the raw values (docs/sls-protocol.md §3.2 "Query parameters on the wire").
fn form_encode(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
}

fn tls_roots(https: bool) -> Arc<rustls::RootCertStore> {
    static SYSTEM: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    if !https {
        return Arc::new(rustls::RootCertStore::empty());
    }
    SYSTEM
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::debug!(error = %err, "skipping unreadable system CA certificate");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                // No system store (minimal containers): Mozilla's roots, compiled in.
                tracing::debug!("no system CA certificates found; using webpki-roots");
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

/// The rustls configuration of an SLS (or credentials endpoint) client: system roots, plus
/// `ca_file`'s certificates.
pub(crate) fn tls_config(
    ca_file: Option<&Path>,
    https: bool,
) -> Result<rustls::ClientConfig, SlsError> {
    let mut roots = (*tls_roots(https)).clone();
    if let Some(path) = ca_file {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let unreadable = |e: &dyn std::fmt::Display| {
            SlsError::config(format!(
                "cannot read CA file {}: {e}; it must hold PEM certificates",
                path.display()
            ))
        };
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
            let cert = cert.map_err(|e| unreadable(&e))?;
            roots.add(cert).map_err(|e| unreadable(&e))?;
            n += 1;
        }
        if n == 0 {
            return Err(unreadable(&"no certificate found"));
        }
    }
    // The ring provider is passed explicitly so nothing depends on a process-wide default
    // (and aws-lc-rs, with its cmake/nasm build, is never needed).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SlsError::config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Where an SLS client's requests for `project` at `endpoint` go: `proxy` is the source
/// side's proxy keys, `env` the environment. The host matched against `no_proxy` and
/// loopback is the virtual host `<project>.<endpoint>`.
pub fn route_for(
    endpoint: &str,
    project: &str,
    proxy: &shipper_net::proxy::ProxyConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Route, SlsError> {
    let e = Endpoint::parse(endpoint)?;
    let host = if e.direct {
        e.host.clone()
    } else {
        format!("{project}.{}", e.host)
    };
    shipper_net::proxy::route(proxy, "source", env, e.https, &host)
        .map_err(|err| SlsError::config(err.to_string()))
}

impl Client {
    /// Builds a client. Fails on an invalid endpoint or project name, or an unreadable CA
    /// file; it does not contact SLS.
    pub fn new(cfg: ClientConfig) -> Result<Self, SlsError> {
        let endpoint = Endpoint::parse(&cfg.endpoint)?;
        let project = cfg.project.trim();
        if project.is_empty()
            || !project
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlsError::config(format!(
                "project name {project:?} is invalid: SLS project names are lower-case \
                 letters, digits and '-' (check SLS_PROJECT)"
            )));
        }
        let scheme = if endpoint.https {
            "https://"
        } else {
            "http://"
        };
        let virtual_host = endpoint.authority(&format!("{project}."));
        let host_value = HeaderValue::from_str(&virtual_host)
            .map_err(|_| SlsError::config("endpoint host is not a valid header value"))?;
        let v4 = matches!(cfg.signature, SignatureVersion::V4 { .. });
        let (base_url, host_header) = if endpoint.direct {
            (endpoint.authority(scheme), Some(host_value))
        } else {
            (
                endpoint.authority(&format!("{scheme}{project}.")),
                v4.then_some(host_value),
            )
        };
        if let SignatureVersion::V4 { region } = &cfg.signature
            && (region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(SlsError::config(format!(
                "region {region:?} is invalid: signature v4 needs the endpoint's region, e.g.                  cn-hangzhou (key `source.region`)"
            )));
        }
        let user_agent = cfg
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("shipper/{}", env!("CARGO_PKG_VERSION")));
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(cfg.ca_file.as_deref(), endpoint.https)?)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .user_agent(user_agent);
        let http = shipper_net::proxy::apply(builder, &cfg.route)
            .build()
            .map_err(|e| SlsError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: cfg.endpoint.clone(),
                base_url,
                host_header,
                virtual_host,
                project: project.to_owned(),
                credentials: cfg.credentials,
                signature: cfg.signature,
                route: cfg.route,
                max_raw_size: cfg.max_raw_size,
            }),
        })
    }

    /// The project this client addresses.
    pub fn project(&self) -> &str {
        &self.inner.project
    }

    /// The endpoint as configured.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The credentials this client signs with.
    pub fn credentials(&self) -> &RefreshingCredentials {
        &self.inner.credentials
    }

    /// Direct or through which proxy (for the start-up log).
    pub fn route(&self) -> &Route {
        &self.inner.route
    }

    /// Largest decompressed body accepted.
    pub(crate) fn max_raw_size(&self) -> usize {
        self.inner.max_raw_size
    }

    /// Builds the URL and the signed headers (docs/sls-protocol.md §2.4, §3.1, §4) for `req`
    /// signed with `creds` at `now`.
    pub(crate) fn prepare(
        &self,
        req: &ApiRequest,
        creds: &Credentials,
        now: SystemTime,
    ) -> Prepared {
        match &self.inner.signature {
            SignatureVersion::V1 => self.prepare_v1(req, creds, &httpdate::fmt_http_date(now)),
            SignatureVersion::V4 { region } => self.prepare_v4(req, creds, region, now),
        }
    }

    /// Path plus the form-encoded query, as sent.
    fn target(req: &ApiRequest) -> String {
        let mut target = req.path.clone();
        for (i, (k, v)) in req.query.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(k);
            target.push('=');
            form_encode(&mut target, v);
        }
        target
    }

    /// The headers both versions send besides the signature's own.
    fn common_headers(req: &ApiRequest, creds: &Credentials) -> Vec<(&'static str, String)> {
        let mut headers: Vec<(&'static str, String)> =
            vec![("x-log-apiversion", sign::API_VERSION.to_owned())];
        if let Some(raw) = req.raw_size {
            headers.push(("x-log-bodyrawsize", raw.to_string()));
        }
        if let Some(c) = req.compression.filter(|c| *c != Compression::None) {
            headers.push(("x-log-compresstype", c.as_header().to_owned()));
        }
        if let Some(token) = &creds.security_token {
            headers.push(("x-acs-security-token", token.expose_secret().to_owned()));
        }
        if let Some(ct) = req.content_type {
            headers.push(("content-type", ct.to_owned()));
        }
        if let Some((accept, encoding)) = req.accept {
            headers.push(("accept", accept.to_owned()));
            headers.push(("accept-encoding", encoding.to_owned()));
        }
        headers
    }

    fn prepare_v4(
        &self,
        req: &ApiRequest,
        creds: &Credentials,
        region: &str,
        now: SystemTime,
    ) -> Prepared {
        use crate::sign::v4;
        let target = Self::target(req);
        let time = v4::format_time(
            now.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        );
        let hash = v4::content_sha256(&req.body);
        let mut headers = Self::common_headers(req, creds);
        headers.push(("x-log-date", time.clone()));
        headers.push(("x-log-content-sha256", hash.clone()));
        headers.push(("host", self.inner.virtual_host.clone()));
        let query: Vec<(String, String)> = req
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let (canonical, _) = v4::canonical_request(
            req.method.as_str(),
            &req.path,
            &query,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            &hash,
        );
        let scope = v4::scope(&time[..8], region);
        let string_to_sign = v4::string_to_sign(&time, &scope, &canonical);
        let signature = v4::signature(
            creds.access_key_secret.expose_secret(),
            &time[..8],
            region,
            &string_to_sign,
        );
        headers.push((
            "authorization",
            v4::authorization(&creds.access_key_id, &scope, &signature),
        ));
        self.prepared(target, headers, string_to_sign)
    }

    fn prepared(
        &self,
        target: String,
        headers: Vec<(&'static str, String)>,
        string_to_sign: String,
    ) -> Prepared {
        #[cfg(not(test))]
        let _ = string_to_sign;
        Prepared {
            url: format!("{}{target}", self.inner.base_url),
            #[cfg(test)]
            target,
            headers,
            #[cfg(test)]
            string_to_sign,
        }
    }

    fn prepare_v1(&self, req: &ApiRequest, creds: &Credentials, date: &str) -> Prepared {
        let target = Self::target(req);
        let mut headers = Self::common_headers(req, creds);
        headers.push(("x-log-signaturemethod", sign::SIGNATURE_METHOD.to_owned()));
        headers.push(("date", date.to_owned()));
        let content_md5 = if req.body.is_empty() {
            String::new()
        } else {
            sign::content_md5(&req.body)
        };
        if !content_md5.is_empty() {
            headers.push(("content-md5", content_md5.clone()));
        }

        let query: Vec<(String, String)> = req
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let parts = sign::SignedParts {
            method: req.method.as_str(),
            path: &req.path,
            query: &query,
            content_md5: &content_md5,
            content_type: req.content_type.unwrap_or(""),
            date,
        };
        let string_to_sign =
            sign::string_to_sign(&parts, headers.iter().map(|(k, v)| (*k, v.as_str())));
        let signature = sign::signature(creds.access_key_secret.expose_secret(), &string_to_sign);
        headers.push((
            "authorization",
            sign::authorization(&creds.access_key_id, &signature),
        ));
        if let Some(host) = &self.inner.host_header {
            let host = host.to_str().expect("built from a str").to_owned();
            headers.push(("host", host));
        }
        self.prepared(target, headers, string_to_sign)
    }

    /// Signs and sends `req`; a 200 becomes [`ApiResponse`], anything else an
    /// [`SlsError::Api`] built from the SLS error body. Expired credentials that could not
    /// be refreshed fail here, without a request ([`SlsError::Credentials`]); a 401 about
    /// the credentials refreshes them and sends once more.
    pub(crate) async fn send(&self, req: ApiRequest) -> Result<ApiResponse, SlsError> {
        let holder = &self.inner.credentials;
        let creds = holder.current();
        holder
            .check_usable(&creds)
            .map_err(|message| SlsError::Credentials {
                op: req.op,
                message,
            })?;
        match self.send_once(&req, &creds.credentials).await {
            Err(e) if e.is_refreshable_auth() && holder.is_refreshable() => {
                if holder.refresh_after_rejection(creds.generation).await {
                    let fresh = holder.current();
                    self.send_once(&req, &fresh.credentials).await
                } else {
                    Err(e)
                }
            }
            result => result,
        }
    }

    async fn send_once(
        &self,
        req: &ApiRequest,
        creds: &Credentials,
    ) -> Result<ApiResponse, SlsError> {
        let op = req.op;
        let prepared = self.prepare(req, creds, SystemTime::now());
        let transport =
            |e| SlsError::transport(op, &self.inner.endpoint, self.inner.route.proxy(), e);
        let mut builder = self.inner.http.request(req.method.clone(), &prepared.url);
        for (name, value) in &prepared.headers {
            builder = builder.header(HeaderName::from_static(name), value.as_str());
        }
        if let Some(timeout) = req.timeout {
            builder = builder.timeout(timeout);
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(len) = response.content_length()
            && len > self.inner.max_raw_size as u64
        {
            return Err(SlsError::protocol(
                op,
                format!(
                    "response body of {len} bytes exceeds the limit of {}",
                    self.inner.max_raw_size
                ),
            ));
        }
        let body = response.bytes().await.map_err(transport)?;
        if status == 200 {
            return Ok(ApiResponse { headers, body });
        }
        let request_id = headers
            .get("x-log-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut error = api_error(op, status, &body, request_id);
        if let SlsError::Api(api) = &mut error
            && api.code.as_deref().is_some_and(is_clock_code)
            && let Some(skew) = clock_skew(&headers)
        {
            api.message.push_str(&format!(" [{skew}]"));
        }
        Err(error)
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorCode")]
    code: Option<String>,
    #[serde(rename = "errorMessage")]
    message: Option<String>,
}

/// Maps a non-200 response to an [`SlsError::Api`] (docs/sls-protocol.md §11.1 "Error body").
pub(crate) fn api_error(
    op: &'static str,
    status: u16,
    body: &[u8],
    request_id: Option<String>,
) -> SlsError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            code: Some(code),
            message,
        }) => SlsError::api(
            op,
            status,
            Some(code),
            message.unwrap_or_default(),
            request_id,
        ),
        _ => {
            let text = String::from_utf8_lossy(body);
            let mut message: String = text.trim().chars().take(200).collect();
            if message.is_empty() {
                message = "empty error body".into();
            }
            SlsError::api(op, status, None, message, request_id)
        }
    }
}

/// Codes SLS answers for a request time too far from its clock.
fn is_clock_code(code: &str) -> bool {
    matches!(
        code,
        "RequestTimeExpired" | "RequestTimeTooSkewed" | "InvalidRequestTime"
    )
}

/// This machine's clock against the server's, from the answer's `Date` header: what an
/// operator needs when SLS refuses the request time.
fn clock_skew(headers: &HeaderMap) -> Option<String> {
    let server = httpdate::parse_http_date(header_str(headers, "date")?).ok()?;
    let local = SystemTime::now();
    Some(match local.duration_since(server) {
        Ok(ahead) => format!(
            "this machine's clock is {} s ahead of SLS's (server Date {})",
            ahead.as_secs(),
            httpdate::fmt_http_date(server)
        ),
        Err(e) => format!(
            "this machine's clock is {} s behind SLS's (server Date {})",
            e.duration().as_secs(),
            httpdate::fmt_http_date(server)
        ),
    })
}

/// Reads a header as a string.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let e = Endpoint::parse("cn-hangzhou.log.aliyuncs.com").unwrap();
        assert_eq!(
            e,
            Endpoint {
                https: false,
                host: "cn-hangzhou.log.aliyuncs.com".into(),
                port: None,
                direct: false
            }
        );
        let e = Endpoint::parse("https://cn-hangzhou.log.aliyuncs.com/").unwrap();
        assert!(e.https && e.port.is_none() && !e.direct);
        let e = Endpoint::parse("HTTP://sls.local:8080").unwrap();
        assert!(!e.https && e.port == Some(8080) && !e.direct);
        let e = Endpoint::parse("127.0.0.1:4321").unwrap();
        assert!(e.direct && e.port == Some(4321) && e.host == "127.0.0.1");
        let e = Endpoint::parse("http://localhost").unwrap();
        assert!(e.direct && e.port.is_none());
        let e = Endpoint::parse("https://[::1]:8443").unwrap();
        assert!(e.https && e.direct && e.host == "[::1]" && e.port == Some(8443));
        for bad in [
            "",
            "ftp://x",
            "x:notaport",
            "::1",
            "http://x/path",
            "[::1",
            "u@x",
            "x:70000",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn client(endpoint: &str) -> Client {
        Client::new(ClientConfig::new(
            endpoint,
            "test-project",
            Credentials::new("testAkId", "testAkSecret"),
        ))
        .unwrap()
    }

    #[test]
    fn addressing_uses_the_virtual_host_or_an_explicit_host_header() {
        let req = ApiRequest::new("ListShards", Method::GET, "/logstores/ls/shards".into());
        let creds = Credentials::new("testAkId", "testAkSecret");
        let now = SystemTime::now();
        let dns = client("https://cn-hangzhou.log.aliyuncs.com").prepare(&req, &creds, now);
        assert_eq!(
            dns.url,
            "https://test-project.cn-hangzhou.log.aliyuncs.com/logstores/ls/shards"
        );
        assert!(dns.headers.iter().all(|(k, _)| *k != "host"));

        let ip = client("127.0.0.1:8080").prepare(&req, &creds, now);
        assert_eq!(ip.url, "http://127.0.0.1:8080/logstores/ls/shards");
        let host = ip.headers.iter().find(|(k, _)| *k == "host").unwrap();
        assert_eq!(host.1, "test-project.127.0.0.1:8080");
    }

    #[test]
    fn project_names_are_validated() {
        let cfg = |p: &str| ClientConfig::new("x", p, Credentials::new("a", "b"));
        assert!(Client::new(cfg("Bad_Project")).is_err());
        assert!(Client::new(cfg("")).is_err());
        assert!(Client::new(cfg("ok-1")).is_ok());
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let mut cfg = ClientConfig::new("https://x", "p", Credentials::new("a", "b"));
        cfg.ca_file = Some("/nonexistent/ca.pem".into());
        let err = Client::new(cfg).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn form_encoding_matches_quote_plus() {
        let mut s = String::new();
        form_encode(&mut s, "* | where level = 'WARN'");
        assert_eq!(s, "%2A+%7C+where+level+%3D+%27WARN%27");
        s.clear();
        form_encode(&mut s, "MTcw+/A==");
        assert_eq!(s, "MTcw%2B%2FA%3D%3D");
    }

    #[test]
    fn non_json_and_json_error_bodies() {
        let e = api_error(
            "Op",
            401,
            br#"{"errorCode":"SignatureNotMatch","errorMessage":"bad sig"}"#,
            Some("RID".into()),
        );
        assert_eq!(e.code(), Some("SignatureNotMatch"));
        assert_eq!(e.request_id(), Some("RID"));
        let e = api_error("Op", 502, b"<html>bad gateway</html>", None);
        assert_eq!(e.code(), None);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("bad gateway"));
    }

    /// reqwest must put our `Host` header on the wire instead of the URL's authority: read
    /// the raw request off a socket.
    #[tokio::test]
    async fn explicit_host_header_reaches_the_wire() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed early");
                buf.extend_from_slice(&chunk[..n]);
            }
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]")
                .await
                .unwrap();
            String::from_utf8(buf).unwrap()
        });
        let c = client(&addr.to_string());
        let req = ApiRequest::new("ListShards", Method::GET, "/logstores/ls/shards".into());
        c.send(req).await.unwrap();
        let raw = server.await.unwrap();
        let hosts: Vec<&str> = raw
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
            .collect();
        assert_eq!(hosts, [format!("host: test-project.{addr}")], "{raw}");
        assert!(
            raw.starts_with("GET /logstores/ls/shards HTTP/1.1\r\n"),
            "{raw}"
        );
    }
}
