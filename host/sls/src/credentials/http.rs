//! [`ProviderHttp`]: the HTTP client a credential provider talks to its endpoint with (the
//! metadata service, STS, a credentials URI): short timeouts, the source side's proxy route
//! (`shipper_net::proxy`), the same rustls roots as the SLS client, and errors that name the
//! endpoint's config key and the fix.

use std::time::Duration;

use shipper_net::proxy::{ProxyConfig, Route};

use super::CredentialsError;

/// Connect timeout of a credentials endpoint: the metadata service answers in milliseconds,
/// and a refresh that hangs must not use up a token's remaining life.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP client for one credentials endpoint.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    pub(crate) client: reqwest::Client,
    /// The endpoint without a trailing `/`.
    pub(crate) base: String,
    /// The config key that sets the endpoint, for error messages.
    pub(crate) key: String,
    route: Route,
}

impl ProviderHttp {
    /// A client for `base` (`http(s)://host[:port]`), set by config key `key`. `proxy` is
    /// the source side's proxy configuration, `env` the environment.
    pub fn new(
        provider: &'static str,
        base: &str,
        key: &str,
        proxy: &ProxyConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialsError> {
        let url = reqwest::Url::parse(base).map_err(|e| {
            CredentialsError::new(
                provider,
                format!("{key} = {base:?} is not a URL ({e}); write http(s)://host[:port]"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(CredentialsError::new(
                provider,
                format!("{key} = {base:?} must be an http:// or https:// URL with a host"),
            ));
        }
        let https = url.scheme() == "https";
        let route = shipper_net::proxy::route(
            proxy,
            "source",
            env,
            https,
            url.host_str().unwrap_or_default(),
        )
        .map_err(|e| CredentialsError::new(provider, e.to_string()))?;
        let tls = crate::client::tls_config(None, https)
            .map_err(|e| CredentialsError::new(provider, e.to_string()))?;
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(format!("shipper/{}", env!("CARGO_PKG_VERSION")));
        let client = shipper_net::proxy::apply(builder, &route)
            .build()
            .map_err(|e| {
                CredentialsError::new(provider, format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            route,
        })
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Where requests go (for the start-up log).
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Sends `req`; returns the status and the body, or an error that names the endpoint.
    pub(crate) async fn send(
        &self,
        provider: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, String), CredentialsError> {
        let resp = req.send().await.map_err(|e| {
            let mut chain = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                chain.push_str(": ");
                chain.push_str(&c.to_string());
                cause = c.source();
            }
            let proxy = self
                .route
                .proxy()
                .and_then(|p| shipper_net::proxy::explain(p, &chain))
                .map(|s| format!("; {s}"))
                .unwrap_or_default();
            CredentialsError::new(
                provider,
                format!(
                    "cannot reach {} ({chain}){proxy}; check `{}` and the network path to it",
                    self.base, self.key
                ),
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| {
            CredentialsError::new(
                provider,
                format!("reading the answer of {}: {e}", self.base),
            )
        })?;
        Ok((status, body))
    }
}

/// The start of a body, for error messages.
pub(crate) fn excerpt(body: &str) -> String {
    body.trim().chars().take(200).collect()
}
