//! `[sink]` options of a Splunk HEC sink ([`HecConfig`]), their validation into
//! [`HecSettings`] (pure: no file, env or network access). The token is a `SecretString`
//! (secrecy): redacted in `Debug`, read only to build the `Authorization` header.
//! Defaults are explained in docs/rendering.md §3 "Splunk HEC" (§3.7, §3.8, §3.10, §3.11).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shipper_net::proxy::ProxyConfig;

use crate::error::ConfigError;
use crate::util::addresses::{Keys, one_or_many};
use crate::util::batch::BatchConfig;
use crate::util::retry::{RetryConfig, RetrySettings};
use crate::util::tls::TlsConfig;

/// Uncompressed bytes per request. Vector's default; old Splunk (≤ 6.4) and many load
/// balancers / Splunk Cloud front ends refuse bodies much above 1 MB (docs/rendering.md
/// §3.7 "Batching and requests").
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1_000_000;
/// How long a non-full batch waits for more events: one second bounds the added latency
/// while keeping requests large at moderate rates (Vector `timeout_secs` = 1).
pub const DEFAULT_BATCH_LINGER_MS: u64 = 1_000;
/// Largest single event. Splunk's `maxEventSize` is 5 MB and a bigger event fails the
/// whole request (400 code 6), so such events are refused at render time instead.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 5 * 1024 * 1024;
/// gzip level. Level 1 goes through ISA-L (~1 GB/s at 6.4× on HEC bodies, `hec/gzip.rs`);
/// levels 2–9 through zlib-rs, where level 6 costs ~3× the CPU of zlib level 1 for ~1.7×
/// smaller bodies (docs/rendering.md §3.8 "gzip"): gzip is one of the pipeline's two biggest
/// costs.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Requests in flight at once. Enough to hide a WAN round trip and to gzip on several
/// cores; small enough not to trip Splunk's 503 "server is busy".
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The largest request `concurrency = "adaptive"` grows to when an endpoint's concurrency is
/// what bounds the throughput. 16 MB: 8 requests of 16 MB per 100 ms round trip is over
/// 1 GB/s, more than a core gzips; far under Splunk's own `max_content_length` (about
/// 800 MB in current versions, `limits.conf` `[http_input]`). A front end that refuses such
/// bodies answers 413, which brings the size back down (docs/rendering.md §3.16).
pub const DEFAULT_ADAPTIVE_MAX_REQUEST_BYTES: usize = 16_000_000;

/// `concurrency`: requests in flight per endpoint, a fixed number or found by the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// At most this many, always (1..=64).
    Fixed(usize),
    /// As many as the endpoint's answers allow: raised while latency holds, cut on
    /// back-pressure or rising latency (`hec/adaptive.rs`, docs/rendering.md §3.16).
    Adaptive,
}

impl Concurrency {
    /// The most requests that can ever be in flight to one endpoint.
    pub fn max(self) -> usize {
        match self {
            Self::Fixed(n) => n,
            Self::Adaptive => super::adaptive::MAX_LIMIT,
        }
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Self::Fixed(DEFAULT_CONCURRENCY)
    }
}

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self::Fixed(n)),
            Raw::Word(w) if w == "adaptive" => Ok(Self::Adaptive),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?} is neither a number of requests (1..=64) nor \"adaptive\""
            ))),
        }
    }
}
/// Whole-request timeout (connect + send + answer). Vector uses 60 s: an indexer under
/// load can take tens of seconds to answer a 1 MB batch.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// TCP + TLS connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Indexer-ack poll interval (Vector `query_interval`, Kafka `ack.poll.interval`: 10 s).
pub const DEFAULT_ACK_POLL_INTERVAL_MS: u64 = 10_000;
/// Resend a request whose ack has not turned true after this long (Kafka `event.timeout`
/// 300 s; Firehose 180–600 s). At-least-once: a late ack means a duplicate.
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 300_000;
/// Environment variable read for the token when neither `token` nor `token_file` is set.
pub const TOKEN_ENV: &str = "SHIPPER_HEC_TOKEN";

/// `/raw` request metadata, sent as query parameters (docs/rendering.md §3.6: `/raw` takes
/// metadata only from the query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HecRawConfig {
    /// `host` for raw events; absent = the token's default.
    pub host: Option<String>,
    /// `source` for raw events.
    pub source: Option<String>,
    /// `sourcetype` for raw events (its line-breaking rules split the body into events).
    pub sourcetype: Option<String>,
    /// `index` for raw events.
    pub index: Option<String>,
}

/// One entry of `endpoints`: a URL (`"https://idx1:8088"`) or a table with a weight
/// (`{ url = "https://idx1:8088", weight = 2 }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// HEC base URL, in the same forms as `endpoint`.
    pub url: String,
    /// Relative share of requests (1..=100, default 1): the balancer picks the endpoint with
    /// the fewest requests in flight per unit of weight.
    pub weight: u32,
}

impl<'de> Deserialize<'de> for EndpointConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Weighted {
            url: String,
            #[serde(default = "default_weight")]
            weight: u32,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Url(String),
            Weighted(Weighted),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a URL string or a table { url = \"https://…:8088\", weight = N }",
            )
        })? {
            Raw::Url(url) => Ok(Self {
                url,
                weight: DEFAULT_WEIGHT,
            }),
            Raw::Weighted(w) => Ok(Self {
                url: w.url,
                weight: w.weight,
            }),
        }
    }
}

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

/// Weight of an endpoint listed without one: every endpoint alike.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Largest weight: enough to express any realistic ratio between indexers.
pub const MAX_WEIGHT: u32 = 100;

/// A Splunk HTTP Event Collector sink (`type = "hec"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HecConfig {
    /// HEC base URL, e.g. `https://splunk.example.com:8088` (a trailing
    /// `/services/collector[/event]` is accepted and ignored).
    pub endpoint: String,
    /// Several HEC base URLs instead of `endpoint` (every indexer of a cluster, or a pair of
    /// heavy forwarders): requests are balanced over the healthy ones and a failed request
    /// is retried on another. All must use the same scheme (one TLS setting).
    pub endpoints: Option<Vec<EndpointConfig>>,
    /// HEC token. Prefer `token_file` or the `SHIPPER_HEC_TOKEN` environment variable.
    pub token: Option<SecretString>,
    /// File holding the token (whitespace trimmed). Re-read after every 401/403, so a
    /// rotated token is picked up without a restart.
    pub token_file: Option<PathBuf>,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// gzip level 1..=9.
    pub gzip_level: u32,
    /// Uncompressed bytes per request (and the batch size the pipeline aims for).
    #[serde(deserialize_with = "crate::util::units::bytes")]
    pub batch_max_bytes: usize,
    /// Milliseconds a non-full batch waits before it is sent.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub batch_linger_ms: u64,
    /// Largest rendered event in bytes; larger events are refused at render time.
    #[serde(deserialize_with = "crate::util::units::bytes")]
    pub max_event_bytes: usize,
    /// Requests in flight at once per endpoint (each one compresses its own body, in
    /// parallel), or `"adaptive"`.
    pub concurrency: Concurrency,
    /// With `concurrency = "adaptive"`: the largest uncompressed request (and batch) the
    /// sink grows to when an endpoint takes no more requests at once. Ignored otherwise.
    #[serde(deserialize_with = "crate::util::units::bytes")]
    pub adaptive_max_request_bytes: usize,
    /// Whole-request timeout in milliseconds.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub request_timeout_ms: u64,
    /// Connect timeout in milliseconds.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub connect_timeout_ms: u64,
    /// Use indexer acknowledgement: an event counts as delivered only once `/ack` says it
    /// was indexed. The token must have `useACK` on.
    pub ack: bool,
    /// Milliseconds between `/ack` polls.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub ack_poll_interval_ms: u64,
    /// Milliseconds after which an unacknowledged request is sent again.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub ack_timeout_ms: u64,
    /// Metadata for `/raw` events.
    pub raw: HecRawConfig,
    /// Retry timing.
    pub retry: RetryConfig,
    /// TLS options for `https://` endpoints.
    pub tls: TlsConfig,
    /// HTTP proxy for this sink (default `HTTPS_PROXY`/`HTTP_PROXY` by the endpoint's
    /// scheme; never for a loopback endpoint unless set here).
    pub proxy: Option<String>,
    /// Hosts never proxied (replaces `NO_PROXY`).
    pub no_proxy: Option<String>,
    /// File holding `user:password` for the proxy.
    pub proxy_credentials_file: Option<PathBuf>,
}

impl Default for HecConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            endpoints: None,
            token: None,
            token_file: None,
            gzip: true,
            gzip_level: DEFAULT_GZIP_LEVEL,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_linger_ms: DEFAULT_BATCH_LINGER_MS,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            concurrency: Concurrency::default(),
            adaptive_max_request_bytes: DEFAULT_ADAPTIVE_MAX_REQUEST_BYTES,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            ack: false,
            ack_poll_interval_ms: DEFAULT_ACK_POLL_INTERVAL_MS,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            raw: HecRawConfig::default(),
            retry: RetryConfig::default(),
            tls: TlsConfig::default(),
            proxy: None,
            no_proxy: None,
            proxy_credentials_file: None,
        }
    }
}

/// Where the token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Given in the config.
    Inline(SecretString),
    /// Read from this file at start and after every 401/403.
    File(PathBuf),
    /// Read from the `SHIPPER_HEC_TOKEN` environment variable at build.
    Env,
}

/// Indexer-acknowledgement timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSettings {
    /// Between `/ack` polls.
    pub poll_interval: Duration,
    /// Resend after this long without a `true`.
    pub timeout: Duration,
}

/// One validated HEC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecEndpoint {
    /// Base URL (no trailing slash).
    pub base: Url,
    /// Relative share of requests.
    pub weight: u32,
}

/// Validated HEC settings.
#[derive(Debug, Clone)]
pub struct HecSettings {
    /// The endpoints, in configuration order (at least one, all of one scheme).
    pub endpoints: Vec<HecEndpoint>,
    /// `/raw` query parameters (besides `channel`).
    pub raw_query: Vec<(&'static str, String)>,
    /// Token source.
    pub token: TokenSource,
    /// gzip level, `None` = no compression.
    pub gzip: Option<u32>,
    /// Batch triggers.
    pub batch: BatchConfig,
    /// Largest rendered event.
    pub max_event_bytes: usize,
    /// Requests in flight per endpoint.
    pub concurrency: Concurrency,
    /// The largest request size: `batch.max_bytes` with a fixed concurrency, up to
    /// `adaptive_max_request_bytes` (at least `batch.max_bytes`) when adaptive
    /// (`hec/request_size.rs`).
    pub max_request_bytes: usize,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retry timing.
    pub retry: RetrySettings,
    /// Indexer acknowledgement, when on.
    pub ack: Option<AckSettings>,
    /// TLS options.
    pub tls: TlsConfig,
    /// Proxy keys (applied by `shipper_net::proxy` when the sink is built).
    pub proxy: ProxyConfig,
}

impl HecConfig {
    /// Checks every value and resolves defaults. Pure: files and the environment are read
    /// by `HecSink::build`.
    pub fn validate(&self) -> Result<HecSettings, ConfigError> {
        let endpoints = self.endpoints()?;
        let token = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "token",
                    "set either `token` or `token_file`, not both",
                ));
            }
            (Some(t), None) if t.expose_secret().trim().is_empty() => {
                return Err(ConfigError::new("token", "is empty"));
            }
            (Some(t), None) => TokenSource::Inline(t.clone()),
            (None, Some(f)) => TokenSource::File(f.clone()),
            (None, None) => TokenSource::Env,
        };
        if !(1..=9).contains(&self.gzip_level) {
            return Err(ConfigError::new(
                "gzip_level",
                format!("{} is not in 1..=9", self.gzip_level),
            ));
        }
        positive("batch_max_bytes", self.batch_max_bytes as u64)?;
        positive("batch_linger_ms", self.batch_linger_ms)?;
        positive("max_event_bytes", self.max_event_bytes as u64)?;
        positive(
            "adaptive_max_request_bytes",
            self.adaptive_max_request_bytes as u64,
        )?;
        positive("request_timeout_ms", self.request_timeout_ms)?;
        positive("connect_timeout_ms", self.connect_timeout_ms)?;
        if let Concurrency::Fixed(n) = self.concurrency
            && !(1..=64).contains(&n)
        {
            return Err(ConfigError::new(
                "concurrency",
                format!("{n} is not in 1..=64 (or use \"adaptive\")"),
            ));
        }
        let ack = if self.ack {
            positive("ack_poll_interval_ms", self.ack_poll_interval_ms)?;
            if self.ack_timeout_ms < self.ack_poll_interval_ms {
                return Err(ConfigError::new(
                    "ack_timeout_ms",
                    format!(
                        "must be >= ack_poll_interval_ms ({})",
                        self.ack_poll_interval_ms
                    ),
                ));
            }
            Some(AckSettings {
                poll_interval: Duration::from_millis(self.ack_poll_interval_ms),
                timeout: Duration::from_millis(self.ack_timeout_ms),
            })
        } else {
            None
        };
        self.tls.validate()?;
        let proxy =
            crate::util::proxy_config(&self.proxy, &self.no_proxy, &self.proxy_credentials_file)?;
        let raw = &self.raw;
        let raw_query = [
            ("host", &raw.host),
            ("source", &raw.source),
            ("sourcetype", &raw.sourcetype),
            ("index", &raw.index),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect();
        Ok(HecSettings {
            endpoints,
            raw_query,
            token,
            gzip: self.gzip.then_some(self.gzip_level),
            batch: BatchConfig {
                max_bytes: self.batch_max_bytes,
                max_events: usize::MAX,
                linger: Duration::from_millis(self.batch_linger_ms),
            },
            max_event_bytes: self.max_event_bytes,
            concurrency: self.concurrency,
            max_request_bytes: match self.concurrency {
                Concurrency::Fixed(_) => self.batch_max_bytes,
                Concurrency::Adaptive => self.adaptive_max_request_bytes.max(self.batch_max_bytes),
            },
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            retry: self.retry.validate()?,
            ack,
            tls: self.tls.clone(),
            proxy,
        })
    }
}

impl HecConfig {
    /// `endpoint` or `endpoints`, checked: one of the two, a non-empty list, every URL
    /// valid, one scheme for all, no URL twice, weights in 1..=[`MAX_WEIGHT`].
    fn endpoints(&self) -> Result<Vec<HecEndpoint>, ConfigError> {
        let keys = Keys {
            one: "endpoint",
            many: "endpoints",
            example: "[\"https://idx1:8088\", \"https://idx2:8088\"]",
        };
        let one = EndpointConfig {
            url: self.endpoint.clone(),
            weight: DEFAULT_WEIGHT,
        };
        let list = one_or_many(
            &keys,
            (&one, !self.endpoint.is_empty()),
            self.endpoints.as_deref(),
            |e, key| {
                if !(1..=MAX_WEIGHT).contains(&e.weight) {
                    return Err(ConfigError::new(
                        format!("{key}.weight"),
                        format!("{} is not in 1..={MAX_WEIGHT}", e.weight),
                    ));
                }
                Ok(HecEndpoint {
                    base: parse_endpoint(&e.url, key)?,
                    weight: e.weight,
                })
            },
            |a, b| a.base == b.base,
        )?;
        let scheme = list[0].base.scheme();
        if let Some(i) = list.iter().position(|e| e.base.scheme() != scheme) {
            return Err(ConfigError::new(
                format!("endpoints[{i}]"),
                format!(
                    "is {} but endpoints[0] is {scheme}: all endpoints share one TLS setting, so they must use one scheme",
                    list[i].base.scheme()
                ),
            ));
        }
        Ok(list)
    }
}

fn positive(field: &'static str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        Err(ConfigError::new(field, "must be > 0"))
    } else {
        Ok(())
    }
}

/// Parses one HEC base URL; errors name `key` (`endpoint` or `endpoints[i]`).
fn parse_endpoint(endpoint: &str, key: String) -> Result<Url, ConfigError> {
    if endpoint.is_empty() {
        return Err(ConfigError::new(
            key,
            "is required, e.g. https://splunk.example.com:8088",
        ));
    }
    let mut url = Url::parse(endpoint).map_err(|e| {
        ConfigError::new(
            key.clone(),
            format!(
                "{endpoint:?} is not a URL ({e}); expected e.g. https://splunk.example.com:8088"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            key,
            format!("scheme {:?} is not http or https", url.scheme()),
        ));
    }
    if url.query().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            key,
            "must not carry a query string or credentials (use `token`)",
        ));
    }
    let mut path = url.path().trim_end_matches('/').to_owned();
    for suffix in [
        "/services/collector/event/1.0",
        "/services/collector/event",
        "/services/collector",
    ] {
        if let Some(p) = path.strip_suffix(suffix) {
            path = p.to_owned();
            break;
        }
    }
    url.set_path(&path);
    Ok(url)
}

/// Resolves the token source (reads the file or the environment through `env`).
pub(crate) fn resolve_token(
    source: &TokenSource,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SecretString, ConfigError> {
    let token = match source {
        TokenSource::Inline(s) => s.expose_secret().to_owned(),
        TokenSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("token_file", format!("cannot read {}: {e}", path.display())))?,
        TokenSource::Env => env(TOKEN_ENV).ok_or_else(|| {
            ConfigError::new("token", format!("no HEC token: set `token`, `token_file` or the {TOKEN_ENV} environment variable"))
        })?,
    };
    let token = token.trim();
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(ConfigError::new(
            "token",
            "the HEC token is empty or spans several lines",
        ));
    }
    Ok(SecretString::from(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: &str) -> HecConfig {
        HecConfig {
            endpoint: endpoint.into(),
            token: Some(SecretString::from("t")),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_sinks_md() {
        let s = cfg("https://splunk:8088").validate().unwrap();
        assert_eq!(s.gzip, Some(1));
        assert_eq!(s.batch.max_bytes, 1_000_000);
        assert_eq!(s.batch.linger, Duration::from_secs(1));
        assert_eq!(s.concurrency, Concurrency::Fixed(4));
        assert!(s.ack.is_none());
        assert_eq!(s.endpoints.len(), 1);
        assert_eq!(s.endpoints[0].base.as_str(), "https://splunk:8088/");
        assert_eq!(s.endpoints[0].weight, 1);
    }

    #[test]
    fn endpoint_forms() {
        for e in [
            "https://h:8088/services/collector/event",
            "https://h:8088/services/collector/",
            "https://h:8088",
        ] {
            assert_eq!(
                cfg(e).validate().unwrap().endpoints[0].base.as_str(),
                "https://h:8088/",
                "{e}"
            );
        }
        assert_eq!(
            cfg("http://h/splunk/").validate().unwrap().endpoints[0]
                .base
                .as_str(),
            "http://h/splunk"
        );
        for bad in [
            "",
            "splunk:8088",
            "ftp://h",
            "https://h:8088/?token=x",
            "not a url",
        ] {
            assert_eq!(cfg(bad).validate().unwrap_err().field, "endpoint", "{bad}");
        }
    }

    fn list(json: &str) -> Result<HecSettings, ConfigError> {
        let c: HecConfig =
            serde_json::from_str(&format!(r#"{{"token":"t","endpoints":{json}}}"#)).unwrap();
        c.validate()
    }

    #[test]
    fn endpoint_lists() {
        let s =
            list(r#"["https://a:8088", {"url":"https://b:8088/services/collector","weight":3}]"#)
                .unwrap();
        assert_eq!(
            s.endpoints,
            [
                HecEndpoint {
                    base: Url::parse("https://a:8088").unwrap(),
                    weight: 1
                },
                HecEndpoint {
                    base: Url::parse("https://b:8088").unwrap(),
                    weight: 3
                }
            ]
        );
        for (bad, field, words) in [
            ("[]", "endpoints", "is empty"),
            (r#"["https://a:8088", "nope"]"#, "endpoints[1]", "not a URL"),
            (
                r#"["https://a:8088", "https://b:8088", "http://c:8088"]"#,
                "endpoints[2]",
                "one scheme",
            ),
            (
                r#"["https://a:8088", "https://a:8088/"]"#,
                "endpoints[1]",
                "twice",
            ),
            (
                r#"[{"url":"https://a:8088","weight":0}]"#,
                "endpoints[0].weight",
                "1..=100",
            ),
            (r#"["ftp://a"]"#, "endpoints[0]", "scheme"),
        ] {
            let e = list(bad).unwrap_err();
            assert_eq!(e.field, field, "{bad}: {e}");
            assert!(e.message.contains(words), "{bad}: {e}");
        }
        let both: HecConfig =
            serde_json::from_str(r#"{"endpoint":"https://a","endpoints":["https://b"]}"#).unwrap();
        assert_eq!(both.validate().unwrap_err().field, "endpoints");
        let e = serde_json::from_str::<HecConfig>(r#"{"endpoints":[{"uri":"https://a"}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("a URL string or a table"), "{e}");
    }

    #[test]
    fn field_errors() {
        let mut c = cfg("https://h");
        c.gzip_level = 0;
        assert_eq!(c.validate().unwrap_err().field, "gzip_level");
        let mut c = cfg("https://h");
        c.token_file = Some("/x".into());
        assert_eq!(c.validate().unwrap_err().field, "token");
        let mut c = cfg("https://h");
        c.ack = true;
        c.ack_timeout_ms = 1;
        assert_eq!(c.validate().unwrap_err().field, "ack_timeout_ms");
        let mut c = cfg("https://h");
        c.concurrency = Concurrency::Fixed(0);
        assert_eq!(c.validate().unwrap_err().field, "concurrency");
    }

    #[test]
    fn concurrency_is_a_number_or_adaptive() {
        let parse = |v: &str| {
            serde_json::from_str::<HecConfig>(&format!(
                r#"{{"endpoint":"https://h","token":"t","concurrency":{v}}}"#
            ))
        };
        assert_eq!(parse("8").unwrap().concurrency, Concurrency::Fixed(8));
        let adaptive = parse(r#""adaptive""#).unwrap();
        assert_eq!(adaptive.concurrency, Concurrency::Adaptive);
        assert_eq!(
            adaptive.validate().unwrap().concurrency.max(),
            super::super::adaptive::MAX_LIMIT
        );
        let e = parse(r#""fast""#).unwrap_err().to_string();
        assert!(e.contains("\"fast\"") && e.contains("adaptive"), "{e}");
    }

    #[test]
    fn only_adaptive_requests_grow_past_batch_max_bytes() {
        let mut c = cfg("https://h");
        assert_eq!(
            c.validate().unwrap().max_request_bytes,
            DEFAULT_BATCH_MAX_BYTES
        );
        c.concurrency = Concurrency::Adaptive;
        assert_eq!(
            c.validate().unwrap().max_request_bytes,
            DEFAULT_ADAPTIVE_MAX_REQUEST_BYTES
        );
        // A ceiling below batch_max_bytes is batch_max_bytes: adaptive never makes
        // requests smaller than configured.
        c.adaptive_max_request_bytes = 1000;
        assert_eq!(
            c.validate().unwrap().max_request_bytes,
            DEFAULT_BATCH_MAX_BYTES
        );
        c.adaptive_max_request_bytes = 0;
        assert_eq!(
            c.validate().unwrap_err().field,
            "adaptive_max_request_bytes"
        );
    }

    #[test]
    fn toml_unknown_keys_are_refused() {
        let e = serde_json::from_str::<HecConfig>(r#"{"endpoint":"https://h","tokn":"x"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `tokn`"), "{e}");
    }

    #[test]
    fn token_sources_and_redaction() {
        let s = SecretString::from("abc-123");
        assert!(!format!("{s:?}").contains("abc-123"));
        assert!(!format!("{:?}", cfg("https://h")).contains("\"t\""));
        let env = |k: &str| (k == TOKEN_ENV).then(|| " from-env \n".to_owned());
        assert_eq!(
            resolve_token(&TokenSource::Env, env)
                .unwrap()
                .expose_secret(),
            "from-env"
        );
        let e = resolve_token(&TokenSource::Env, |_| None).unwrap_err();
        assert!(e.message.contains(TOKEN_ENV));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "file-token\n").unwrap();
        assert_eq!(
            resolve_token(&TokenSource::File(f), |_| None)
                .unwrap()
                .expose_secret(),
            "file-token"
        );
    }
}
