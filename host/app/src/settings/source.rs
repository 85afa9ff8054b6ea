//! `[source]`: the SLS endpoint, the logstore(s), the consumer group and the credentials.
//!
//! The seed scripts' environment variables (`SLS_ENDPOINT`, `SLS_AK_ID`, …, see [`env`](mod@env)) work
//! as they are and win over the file, so a seed deployment moves to shipper unchanged.
//! Secrets are never flags; a secret file is named here and read by the credentials
//! provider the run command builds, not while the config is checked. Which provider:
//! [`super::credentials`]. The SLS side's proxy keys (`proxy`, `no_proxy`,
//! `proxy_credentials_file`) are applied by `shipper_net::proxy`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use shipper_net::proxy::ProxyConfig;
use shipper_sls::api::logs::{CursorPosition, MAX_PULL_COUNT};
use shipper_sls::consumer::{DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_TIMEOUT};
use shipper_sls::credentials::static_keys::Secret;
use shipper_sls::sign::SignatureVersion;

use super::credentials::{CredentialsChoice, CredentialsConfig, Legacy};
use super::values::{ConfigDuration, Problems, check_name};

/// The environment variables the seed scripts use (kept for drop-in compatibility).
pub mod env {
    /// SLS endpoint, e.g. `https://cn-hangzhou.log.aliyuncs.com`.
    pub const ENDPOINT: &str = "SLS_ENDPOINT";
    /// AccessKey ID.
    pub const AK_ID: &str = "SLS_AK_ID";
    /// AccessKey secret.
    pub const AK_KEY: &str = "SLS_AK_KEY";
    /// STS security token (temporary credentials).
    pub const STS_TOKEN: &str = "SLS_STS_TOKEN";
    /// Project.
    pub const PROJECT: &str = "SLS_PROJECT";
    /// Logstore.
    pub const LOGSTORE: &str = "SLS_LOGSTORE";
    /// Consumer group.
    pub const CONSUMER_GROUP: &str = "SLS_CG";
}

/// Default of `[source] max_buffer_mib`: the pulled and in-flight data of all shards
/// together. 256 MiB leaves 4 shards their full pulls and sends (about 20 MiB each), and gives
/// each of 256 shards 1 MiB (pulls of 256 KiB), so memory stays flat as shards are added
/// (docs/architecture.md §6).
pub const DEFAULT_MAX_BUFFER_MIB: u64 = 256;
/// Smallest `max_buffer_mib`: below, pulls and sends get too small to be efficient.
pub const MIN_BUFFER_MIB: u64 = 16;
/// Largest `max_buffer_mib` (1 TiB): a typo guard.
pub const MAX_BUFFER_MIB: u64 = 1 << 20;

/// `[source]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// SLS endpoint (`SLS_ENDPOINT`): `cn-hangzhou.log.aliyuncs.com`, or with `https://`.
    pub endpoint: Option<String>,
    /// Project (`SLS_PROJECT`) for the single-logstore form.
    pub project: Option<String>,
    /// Logstore (`SLS_LOGSTORE`) for the single-logstore form.
    pub logstore: Option<String>,
    /// Several logstores (possibly in several projects) consumed by one process, as the
    /// seed's multi-logstore example does. Exclusive with `project`/`logstore`.
    pub logstores: Option<Vec<LogstoreRef>>,
    /// Consumer group name (`SLS_CG`); created if missing.
    pub consumer_group: Option<String>,
    /// This consumer's name, unique in the group. Default: `<group>-<hostname>-<pid>`.
    pub consumer_name: Option<String>,
    /// Where to start when the group has no checkpoint for a shard: `begin`, `end` or an
    /// RFC 3339 time. An existing server checkpoint always wins. Default `begin`.
    pub start: Option<String>,
    /// SPL query applied by SLS before logs are pulled, e.g. `* | where level = 'ERROR'`.
    pub query: Option<String>,
    /// Heartbeat period (default 20s).
    pub heartbeat_interval: Option<ConfigDuration>,
    /// Consumer timeout: a consumer silent this long loses its shards (default 40s).
    pub timeout: Option<ConfigDuration>,
    /// LogGroups per PullLogs, 1..=1000 (default 1000).
    pub fetch_count: Option<u32>,
    /// MiB for pulled and in-flight data of all shards together (default
    /// [`DEFAULT_MAX_BUFFER_MIB`]).
    pub max_buffer_mib: Option<u64>,
    /// AccessKey ID. `SLS_AK_ID` overrides it.
    pub access_key_id: Option<String>,
    /// AccessKey secret. `SLS_AK_KEY` overrides it. Prefer the environment or
    /// `access_key_secret_file`.
    pub access_key_secret: Option<SecretString>,
    /// File holding the AccessKey secret (trailing newline ignored).
    pub access_key_secret_file: Option<PathBuf>,
    /// STS token. `SLS_STS_TOKEN` overrides it.
    pub security_token: Option<SecretString>,
    /// Another credentials provider (`type = "ecs_ram_role"`, …) and its keys.
    pub credentials: Option<CredentialsConfig>,
    /// `v1` (default) or `v4` (`SLS4-HMAC-SHA256`, needs `region`).
    pub signature_version: Option<String>,
    /// The SLS region for v4 (default: from the endpoint, `cn-hangzhou.log.aliyuncs.com` →
    /// `cn-hangzhou`).
    pub region: Option<String>,
    /// HTTP proxy for SLS and the credential endpoints (default `HTTPS_PROXY`/`HTTP_PROXY`).
    pub proxy: Option<String>,
    /// Hosts never proxied (replaces `NO_PROXY`).
    pub no_proxy: Option<String>,
    /// File holding `user:password` for the proxy.
    pub proxy_credentials_file: Option<PathBuf>,
    /// PEM CA certificates trusted for an `https://` endpoint besides the system roots
    /// (a TLS-inspecting proxy, a private endpoint).
    pub ca_file: Option<PathBuf>,
}

/// One entry of `[source] logstores`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogstoreRef {
    /// Project; defaults to `[source] project`.
    pub project: Option<String>,
    /// Logstore.
    pub logstore: String,
}

/// Where a shard starts when the group has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// Oldest retained data.
    Begin,
    /// Only data written from now on.
    End,
    /// The first LogGroup received at or after this Unix time (seconds).
    At(i64),
}

impl StartPosition {
    /// Parses `begin`, `end` or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("begin") => Ok(Self::Begin),
            t if t.eq_ignore_ascii_case("end") => Ok(Self::End),
            t => t
                .parse::<jiff::Timestamp>()
                .map(|ts| Self::At(ts.as_second()))
                .map_err(|_| {
                    format!(
                        "{t:?} is not `begin`, `end` or an RFC 3339 time like 2026-01-01T00:00:00Z"
                    )
                }),
        }
    }

    /// The position as the SLS client names it.
    pub fn cursor_position(self) -> CursorPosition {
        match self {
            Self::Begin => CursorPosition::Begin,
            Self::End => CursorPosition::End,
            Self::At(t) => CursorPosition::At(t),
        }
    }
}

/// One logstore to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogstoreTarget {
    /// Project.
    pub project: String,
    /// Logstore.
    pub logstore: String,
}

impl LogstoreTarget {
    /// `project/logstore`, the label of its metrics and log lines.
    pub fn label(&self) -> String {
        format!("{}/{}", self.project, self.logstore)
    }
}

/// Validated `[source]`.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// SLS endpoint.
    pub endpoint: String,
    /// The credentials provider (secrets redacted in Debug).
    pub credentials: CredentialsChoice,
    /// Signature version.
    pub signature: SignatureVersion,
    /// Proxy keys of the SLS side.
    pub proxy: ProxyConfig,
    /// Extra CA certificates for `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    /// Logstores to consume (one consumer-group membership each).
    pub logstores: Vec<LogstoreTarget>,
    /// Consumer group.
    pub consumer_group: String,
    /// Consumer name, when configured (see [`SourceSettings::consumer_name`]).
    pub consumer_name: Option<String>,
    /// Start position without a checkpoint.
    pub start: StartPosition,
    /// SPL query.
    pub query: Option<String>,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Consumer timeout.
    pub timeout: Duration,
    /// LogGroups per pull.
    pub fetch_count: u32,
    /// Bytes for pulled and in-flight data of all shards together.
    pub max_buffer_bytes: usize,
}

impl SourceSettings {
    /// This consumer's name: the configured one, else `<group>-<hostname>-<pid>` (unique
    /// per process and readable in the SLS console; reads the hostname).
    pub fn consumer_name(&self) -> String {
        self.consumer_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "host".to_owned());
            format!("{}-{host}-{}", self.consumer_group, std::process::id())
        })
    }
}

/// Checks `[source]` merged with the environment and `--consumer-name`; every problem goes
/// to `problems`. `None` when something is missing or wrong.
pub fn resolve(
    s: SourceConfig,
    env: &dyn Fn(&str) -> Option<String>,
    consumer_name_flag: Option<String>,
    problems: &mut Problems,
) -> Option<SourceSettings> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let before = problems.len();

    let endpoint = env_nonempty(env::ENDPOINT).or(s.endpoint);
    if endpoint.is_none() {
        problems.push(
            "source.endpoint",
            format!("missing: set it in the config file or {}", env::ENDPOINT),
        );
    }
    let origin = if env_nonempty(env::AK_ID).is_some() {
        Some(env::AK_ID.to_owned())
    } else if env_nonempty(env::AK_KEY).is_some() {
        Some(env::AK_KEY.to_owned())
    } else {
        None
    };
    let from_config_keys = s.access_key_id.is_some()
        || s.access_key_secret.is_some()
        || s.access_key_secret_file.is_some()
        || s.security_token.is_some();
    let legacy = Legacy {
        from_config_keys,
        access_key_id: env_nonempty(env::AK_ID).or(s.access_key_id),
        secret: match (
            env_nonempty(env::AK_KEY),
            s.access_key_secret,
            s.access_key_secret_file,
        ) {
            (Some(v), _, _) => Some(Secret::Value(v.into())),
            (None, Some(v), _) => Some(Secret::Value(v)),
            (None, None, Some(path)) => Some(Secret::File {
                path,
                key: "source.access_key_secret_file".into(),
            }),
            (None, None, None) => None,
        },
        security_token: env_nonempty(env::STS_TOKEN)
            .map(SecretString::from)
            .or(s.security_token),
        origin,
    };
    let credentials = super::credentials::resolve(legacy, s.credentials, env, problems);
    let signature = match s.signature_version.as_deref().unwrap_or("v1") {
        "v1" => Some(SignatureVersion::V1),
        "v4" => {
            let region = s
                .region
                .clone()
                .or_else(|| endpoint.as_deref().and_then(region_of));
            match region {
                Some(region) => Some(SignatureVersion::V4 { region }),
                None => {
                    problems.push(
                        "source.region",
                        "missing: signature v4 needs the SLS region (e.g. cn-hangzhou); it \
                         cannot be read from this endpoint",
                    );
                    None
                }
            }
        }
        other => {
            problems.push(
                "source.signature_version",
                format!("{other:?} is not \"v1\" or \"v4\""),
            );
            None
        }
    };
    let proxy = ProxyConfig {
        proxy: s.proxy,
        no_proxy: s.no_proxy,
        credentials_file: s.proxy_credentials_file,
    };
    if let Some(url) = &proxy.proxy {
        problems.check(
            "source.proxy",
            shipper_net::proxy::parse_proxy_url(url, "source.proxy")
                .map(drop)
                .map_err(|e| e.message),
        );
    }

    let project = env_nonempty(env::PROJECT).or(s.project);
    let single = env_nonempty(env::LOGSTORE).or(s.logstore);
    let logstores = logstores(s.logstores, project, single, problems);

    let consumer_group = env_nonempty(env::CONSUMER_GROUP).or(s.consumer_group);
    match &consumer_group {
        None => problems.push(
            "source.consumer_group",
            format!("missing: set it or {}", env::CONSUMER_GROUP),
        ),
        Some(g) => {
            problems.check("source.consumer_group", check_name(g));
        }
    }
    let consumer_name = consumer_name_flag
        .or(s.consumer_name)
        .filter(|n| !n.trim().is_empty());

    let start = match s.start {
        Some(t) => problems.check("source.start", StartPosition::parse(&t)),
        None => Some(StartPosition::Begin),
    };
    let heartbeat_interval = s
        .heartbeat_interval
        .map_or(DEFAULT_HEARTBEAT_INTERVAL, |d| d.0);
    let timeout = s.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    if heartbeat_interval < Duration::from_millis(100) {
        problems.push("source.heartbeat_interval", "must be at least 100ms");
    }
    if timeout <= heartbeat_interval {
        problems.push(
            "source.timeout",
            format!(
                "must be longer than heartbeat_interval ({heartbeat_interval:?}); 2× is usual, \
                 otherwise the server drops the consumer between two heartbeats"
            ),
        );
    } else if timeout.as_secs() < 1 || timeout.subsec_nanos() != 0 {
        problems.push("source.timeout", "SLS takes whole seconds (≥ 1s)");
    }
    let fetch_count = s.fetch_count.unwrap_or(MAX_PULL_COUNT);
    if !(1..=MAX_PULL_COUNT).contains(&fetch_count) {
        problems.push(
            "source.fetch_count",
            format!("must be between 1 and {MAX_PULL_COUNT} (an SLS limit)"),
        );
    }
    let max_buffer_mib = s.max_buffer_mib.unwrap_or(DEFAULT_MAX_BUFFER_MIB);
    if !(MIN_BUFFER_MIB..=MAX_BUFFER_MIB).contains(&max_buffer_mib) {
        problems.push(
            "source.max_buffer_mib",
            format!(
                "must be between {MIN_BUFFER_MIB} and {MAX_BUFFER_MIB} (MiB for the pulled and \
                 in-flight data of all shards)"
            ),
        );
    }
    let query = s.query.filter(|q| !q.trim().is_empty());

    if problems.len() > before {
        return None;
    }
    Some(SourceSettings {
        endpoint: endpoint?,
        credentials: credentials?,
        signature: signature?,
        proxy,
        ca_file: s.ca_file,
        logstores: logstores?,
        consumer_group: consumer_group?,
        consumer_name,
        start: start?,
        query,
        heartbeat_interval,
        timeout,
        fetch_count,
        max_buffer_bytes: usize::try_from(max_buffer_mib << 20).unwrap_or(usize::MAX),
    })
}

/// The region of an SLS endpoint name: `cn-hangzhou.log.aliyuncs.com` (and its
/// `-intranet` / `-share` variants) → `cn-hangzhou`.
fn region_of(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").last()?.split(['/', ':']).next()?;
    let (first, rest) = host.split_once('.')?;
    if !rest.starts_with("log.aliyuncs.com") {
        return None;
    }
    let region = first
        .trim_end_matches("-intranet")
        .trim_end_matches("-share");
    (!region.is_empty()).then(|| region.to_owned())
}

/// The logstore list: the single-logstore form (`project` + `logstore`, or the seed's
/// environment) or `logstores`, never both.
fn logstores(
    list: Option<Vec<LogstoreRef>>,
    project: Option<String>,
    single: Option<String>,
    problems: &mut Problems,
) -> Option<Vec<LogstoreTarget>> {
    let targets = match (list, single) {
        (Some(_), Some(_)) => {
            problems.push(
                "source.logstores",
                "give either `logstore` (with `project`) or a `logstores` list, not both",
            );
            return None;
        }
        (Some(list), None) if list.is_empty() => {
            problems.push("source.logstores", "the list is empty");
            return None;
        }
        (Some(list), None) => {
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                match item.project.or_else(|| project.clone()) {
                    Some(project) => out.push(LogstoreTarget {
                        project,
                        logstore: item.logstore,
                    }),
                    None => problems.push(
                        "source.logstores",
                        format!(
                            "entry {:?} has no project and `source.project` is not set",
                            item.logstore
                        ),
                    ),
                }
            }
            out
        }
        (None, Some(logstore)) => match project {
            Some(project) => vec![LogstoreTarget { project, logstore }],
            None => {
                problems.push(
                    "source.project",
                    format!("missing: set it or {}", env::PROJECT),
                );
                return None;
            }
        },
        (None, None) => {
            problems.push(
                "source.logstore",
                format!(
                    "missing: set `logstore` (or {}) or a `logstores` list",
                    env::LOGSTORE
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    for t in &targets {
        ok &= problems
            .check("source.project", check_name(&t.project))
            .is_some();
        ok &= problems
            .check("source.logstore", check_name(&t.logstore))
            .is_some();
    }
    ok.then_some(targets)
}
