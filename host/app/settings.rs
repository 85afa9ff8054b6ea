//! `shipper run` configuration: flags + optional TOML file + environment → validated
//! [`Settings`] (style.md §3.4: parse, then validate, then build).
//!
//! Precedence: built-in defaults < config file < environment < flags. Credentials come from
//! the environment (the seed scripts' `SLS_AK_ID` / `SLS_AK_KEY` / `SLS_STS_TOKEN`) or from
//! the file; the environment wins. No secret is accepted as a flag, and none is ever printed
//! (`Secret` has a redacted `Debug`).
//!
//! What this module deliberately does not do: open sockets, read plugin files or contact SLS
//! (that is `run.rs`'s build step), so `validate` is pure and testable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use shipper_sls::sign::{Credentials, Secret};

/// Default heartbeat period. The seed scripts and the Python SDK use 20 s; the server drops a
/// consumer after `timeout`, so a shorter beat only costs requests.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(20);
/// Default consumer timeout: 2 × heartbeat, as the Python SDK sends on group creation.
pub const DEFAULT_GROUP_TIMEOUT: Duration = Duration::from_secs(40);
/// LogGroups per PullLogs, the SDKs' default and the protocol's maximum.
pub const DEFAULT_FETCH_COUNT: u32 = 1000;
/// Where dead-lettered logs go unless configured: beside the working directory, visible.
pub const DEFAULT_DEAD_LETTER_PATH: &str = "shipper-dead-letter.jsonl";

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

/// A duration in config: an integer number of seconds or a string like `500ms`, `20s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `250ms`, `20s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected e.g. \"500ms\", \"20s\", \"5m\"")
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where logs come from.
    #[serde(default)]
    pub source: SourceConfig,
    /// The formatter plugin.
    #[serde(default)]
    pub plugin: PluginConfig,
    /// Where formatted events go: a table with `type = "hec"` or `type = "syslog"` and the
    /// sink's own keys (see the sink reference in README).
    pub sink: Option<toml::Table>,
    /// Logs that cannot be delivered (plugin record errors, events the SIEM rejects).
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Prometheus metrics and health endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[source]`: the SLS consumer group to join.
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
    /// AccessKey ID. `SLS_AK_ID` overrides it.
    pub access_key_id: Option<String>,
    /// AccessKey secret. `SLS_AK_KEY` overrides it. Prefer the environment or
    /// `access_key_secret_file`.
    pub access_key_secret: Option<String>,
    /// File holding the AccessKey secret (trailing newline ignored).
    pub access_key_secret_file: Option<PathBuf>,
    /// STS token. `SLS_STS_TOKEN` overrides it.
    pub security_token: Option<String>,
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

/// `[plugin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path of the plugin component (`.wasm`). `--plugin` overrides it.
    pub path: Option<PathBuf>,
    /// Passed to the plugin's `init` as a JSON object.
    #[serde(default)]
    pub config: toml::Table,
    /// Memory cap per plugin instance, in MiB (default: the runtime's, 64).
    pub memory_mib: Option<u64>,
    /// Time budget of one plugin call (default: the runtime's).
    pub timeout: Option<ConfigDuration>,
    /// Watch the plugin file and swap to a new version when it changes (default true;
    /// SIGHUP always triggers a reload).
    pub watch: Option<bool>,
    /// Sample logs (flattened SLS JSON lines) a new version must handle before it is used;
    /// default: built-in samples.
    pub self_test_input: Option<PathBuf>,
    /// What to do when the plugin keeps trapping and no rollback is possible: `pause`
    /// (default: stop, back off, retry; nothing lost) or `passthrough` (ship logs in a
    /// built-in JSON format).
    pub failure_policy: Option<crate::generation::FailurePolicy>,
    /// Traps within `breaker_window` that count as a crash loop (default 20).
    pub breaker_threshold: Option<usize>,
    /// Window of the crash-loop count (default 60s).
    pub breaker_window: Option<ConfigDuration>,
    /// Keep compiled plugins on disk so a restart or a swap back does not recompile
    /// (Python/JS plugins take seconds to compile). Default true.
    pub compile_cache: Option<bool>,
    /// Directory of the compile cache; default `$XDG_CACHE_HOME/shipper/components` or
    /// `~/.cache/shipper/components`.
    pub cache_dir: Option<PathBuf>,
}

/// `[dead_letter]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// JSON-lines file; default `shipper-dead-letter.jsonl`.
    pub path: Option<PathBuf>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for `/metrics` and `/health`, e.g. `127.0.0.1:9598`. `--metrics-listen`
    /// overrides it. Off when absent.
    pub listen: Option<String>,
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
}

/// One logstore to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogstoreTarget {
    /// Project.
    pub project: String,
    /// Logstore.
    pub logstore: String,
}

/// Validated source settings.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// SLS endpoint.
    pub endpoint: String,
    /// Credentials (secret redacted in Debug).
    pub credentials: Credentials,
    /// Logstores to consume (one consumer-group membership each).
    pub logstores: Vec<LogstoreTarget>,
    /// Consumer group.
    pub consumer_group: String,
    /// Consumer name.
    pub consumer_name: String,
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
}

/// Validated plugin settings.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// Component path.
    pub path: PathBuf,
    /// Config passed to `init`, as JSON text.
    pub config_json: String,
    /// Memory cap override, bytes.
    pub memory_bytes: Option<u64>,
    /// Call time budget override.
    pub timeout: Option<Duration>,
    /// Watch the file for changes.
    pub watch: bool,
    /// Self-test samples.
    pub self_test_input: Option<PathBuf>,
    /// Crash-loop policy.
    pub failure_policy: crate::generation::FailurePolicy,
    /// Crash-loop threshold.
    pub breaker_threshold: usize,
    /// Crash-loop window.
    pub breaker_window: Duration,
    /// Compile cache location (or disabled).
    pub compile_cache: shipper_runtime::CacheDir,
}

/// Everything `shipper run` needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// Source.
    pub source: SourceSettings,
    /// Plugin.
    pub plugin: PluginSettings,
    /// The `[sink]` table, handed to the sinks crate's own validation.
    pub sink: toml::Table,
    /// Dead-letter file.
    pub dead_letter_path: PathBuf,
    /// Metrics listen address.
    pub metrics_listen: Option<String>,
}

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What toml/serde said (names the key and line).
        message: String,
    },
    /// A key is missing or has a bad value.
    #[error("config key `{key}`: {message}")]
    Key {
        /// Dotted key, e.g. `source.endpoint`.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn key_err(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key,
        message: message.into(),
    }
}

/// Reads and parses a config file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &text)
}

/// Parses config text (`path` only labels errors).
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Values given on the command line (never secrets).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--plugin`.
    pub plugin: Option<PathBuf>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<String>,
    /// `--consumer-name`.
    pub consumer_name: Option<String>,
    /// `--dead-letter`.
    pub dead_letter: Option<PathBuf>,
    /// A `[sink]` table built from sink flags (e.g. `--hec-url`), used when the file has none.
    pub sink: Option<toml::Table>,
}

/// Merges file, environment and flags and validates the result. `env` is a lookup so tests
/// need not touch the process environment.
pub fn resolve(
    file: FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    flags: Overrides,
) -> Result<Settings, ConfigError> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let s = file.source;

    let endpoint = env_nonempty(env::ENDPOINT).or(s.endpoint).ok_or_else(|| {
        key_err(
            "source.endpoint",
            format!("missing: set it in the config file or {}", env::ENDPOINT),
        )
    })?;
    let access_key_id = env_nonempty(env::AK_ID)
        .or(s.access_key_id)
        .ok_or_else(|| {
            key_err(
                "source.access_key_id",
                format!("missing: set {} (preferred) or the config key", env::AK_ID),
            )
        })?;
    let secret = match (
        env_nonempty(env::AK_KEY),
        s.access_key_secret,
        s.access_key_secret_file,
    ) {
        (Some(v), _, _) => v,
        (None, Some(v), _) => v,
        (None, None, Some(path)) => std::fs::read_to_string(&path)
            .map(|t| t.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| {
                key_err(
                    "source.access_key_secret_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
        (None, None, None) => {
            return Err(key_err(
                "source.access_key_secret",
                format!("missing: set {} or `access_key_secret_file`", env::AK_KEY),
            ));
        }
    };
    let mut credentials = Credentials::new(access_key_id, secret);
    if let Some(token) = env_nonempty(env::STS_TOKEN).or(s.security_token) {
        credentials.security_token = Some(Secret::new(token));
    }

    let project = env_nonempty(env::PROJECT).or(s.project);
    let single = env_nonempty(env::LOGSTORE).or(s.logstore);
    let logstores = match (s.logstores, single) {
        (Some(_), Some(_)) => {
            return Err(key_err(
                "source.logstores",
                "give either `logstore` (with `project`) or a `logstores` list, not both",
            ));
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(key_err("source.logstores", "the list is empty"));
            }
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let project = item.project.or_else(|| project.clone()).ok_or_else(|| {
                    key_err(
                        "source.logstores",
                        format!(
                            "entry {:?} has no project and `source.project` is not set",
                            item.logstore
                        ),
                    )
                })?;
                out.push(LogstoreTarget {
                    project,
                    logstore: item.logstore,
                });
            }
            out
        }
        (None, Some(logstore)) => {
            let project = project.ok_or_else(|| {
                key_err(
                    "source.project",
                    format!("missing: set it or {}", env::PROJECT),
                )
            })?;
            vec![LogstoreTarget { project, logstore }]
        }
        (None, None) => {
            return Err(key_err(
                "source.logstore",
                format!(
                    "missing: set `logstore` (or {}) or a `logstores` list",
                    env::LOGSTORE
                ),
            ));
        }
    };
    for t in &logstores {
        check_name("source.project", &t.project)?;
        check_name("source.logstore", &t.logstore)?;
    }

    let consumer_group = env_nonempty(env::CONSUMER_GROUP)
        .or(s.consumer_group)
        .ok_or_else(|| {
            key_err(
                "source.consumer_group",
                format!("missing: set it or {}", env::CONSUMER_GROUP),
            )
        })?;
    check_name("source.consumer_group", &consumer_group)?;
    let consumer_name = flags
        .consumer_name
        .or(s.consumer_name)
        .unwrap_or_else(|| default_consumer_name(&consumer_group));

    let start = match s.start {
        Some(t) => StartPosition::parse(&t).map_err(|m| key_err("source.start", m))?,
        None => StartPosition::Begin,
    };
    let heartbeat_interval = s
        .heartbeat_interval
        .map_or(DEFAULT_HEARTBEAT_INTERVAL, |d| d.0);
    let timeout = s.timeout.map_or(DEFAULT_GROUP_TIMEOUT, |d| d.0);
    if heartbeat_interval < Duration::from_millis(100) {
        return Err(key_err(
            "source.heartbeat_interval",
            "must be at least 100ms",
        ));
    }
    if timeout <= heartbeat_interval {
        return Err(key_err(
            "source.timeout",
            format!(
                "must be longer than heartbeat_interval ({heartbeat_interval:?}); 2× is usual, otherwise \
                 the server drops the consumer between two heartbeats"
            ),
        ));
    }
    if timeout.as_secs() < 1 || timeout.subsec_nanos() != 0 {
        return Err(key_err("source.timeout", "SLS takes whole seconds (≥ 1s)"));
    }
    let fetch_count = s.fetch_count.unwrap_or(DEFAULT_FETCH_COUNT);
    if !(1..=1000).contains(&fetch_count) {
        return Err(key_err(
            "source.fetch_count",
            "must be between 1 and 1000 (an SLS limit)",
        ));
    }
    let query = s.query.filter(|q| !q.trim().is_empty());

    let p = file.plugin;
    let path = flags.plugin.or(p.path).ok_or_else(|| {
        key_err(
            "plugin.path",
            "missing: pass --plugin PATH or set [plugin] path",
        )
    })?;
    let config_json = serde_json::to_string(&p.config)
        .map_err(|e| key_err("plugin.config", format!("cannot be expressed as JSON: {e}")))?;
    if p.memory_mib == Some(0) {
        return Err(key_err("plugin.memory_mib", "must be at least 1"));
    }
    let breaker_threshold = p
        .breaker_threshold
        .unwrap_or(crate::generation::DEFAULT_BREAKER_THRESHOLD);
    if breaker_threshold == 0 {
        return Err(key_err("plugin.breaker_threshold", "must be at least 1"));
    }

    let sink = file.sink.or(flags.sink).ok_or_else(|| {
        key_err(
            "sink",
            "missing: add a [sink] table (type = \"hec\" or \"syslog\") to the config file, or pass --hec-url / --syslog-address",
        )
    })?;

    Ok(Settings {
        source: SourceSettings {
            endpoint,
            credentials,
            logstores,
            consumer_group,
            consumer_name,
            start,
            query,
            heartbeat_interval,
            timeout,
            fetch_count,
        },
        plugin: PluginSettings {
            path,
            config_json,
            memory_bytes: p.memory_mib.map(|m| m << 20),
            timeout: p.timeout.map(|d| d.0),
            watch: p.watch.unwrap_or(true),
            self_test_input: p.self_test_input,
            failure_policy: p.failure_policy.unwrap_or_default(),
            breaker_threshold,
            breaker_window: p
                .breaker_window
                .map_or(crate::generation::DEFAULT_BREAKER_WINDOW, |d| d.0),
            compile_cache: match (p.compile_cache, p.cache_dir) {
                (Some(false), _) => shipper_runtime::CacheDir::Disabled,
                (_, Some(dir)) => shipper_runtime::CacheDir::Path(dir),
                _ => shipper_runtime::CacheDir::Default,
            },
        },
        sink,
        dead_letter_path: flags
            .dead_letter
            .or(file.dead_letter.path)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEAD_LETTER_PATH)),
        metrics_listen: flags.metrics_listen.or(file.metrics.listen),
    })
}

/// SLS names are `[a-z0-9_-]` (projects: lower-case letters, digits, hyphens).
fn check_name(key: &'static str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(key_err(
            key,
            format!("{name:?} is not a valid SLS name (letters, digits, '-', '_')"),
        ))
    }
}

/// `<group>-<hostname>-<pid>`: unique per process and readable in the SLS console.
pub fn default_consumer_name(group: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{group}-{host}-{}", std::process::id())
}

/// Summary for the start-up log line (no secrets).
pub fn describe(settings: &Settings) -> BTreeMap<&'static str, String> {
    let s = &settings.source;
    BTreeMap::from([
        ("endpoint", s.endpoint.clone()),
        (
            "logstores",
            s.logstores
                .iter()
                .map(|t| format!("{}/{}", t.project, t.logstore))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("consumer_group", s.consumer_group.clone()),
        ("consumer", s.consumer_name.clone()),
        ("plugin", settings.plugin.path.display().to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const SEED_ENV: &[(&str, &str)] = &[
        ("SLS_ENDPOINT", "cn-hangzhou.log.aliyuncs.com"),
        ("SLS_AK_ID", "id"),
        ("SLS_AK_KEY", "sekrit"),
        ("SLS_PROJECT", "proj"),
        ("SLS_LOGSTORE", "store"),
        ("SLS_CG", "sync_data"),
    ];

    fn hec_flags() -> Overrides {
        let mut sink = toml::Table::new();
        sink.insert("type".into(), "hec".into());
        Overrides {
            plugin: Some("p.wasm".into()),
            sink: Some(sink),
            ..Default::default()
        }
    }

    #[test]
    fn seed_environment_alone_is_enough() {
        let s = resolve(FileConfig::default(), &env_of(SEED_ENV), hec_flags()).unwrap();
        assert_eq!(s.source.endpoint, "cn-hangzhou.log.aliyuncs.com");
        assert_eq!(
            s.source.logstores,
            vec![LogstoreTarget {
                project: "proj".into(),
                logstore: "store".into()
            }]
        );
        assert_eq!(s.source.consumer_group, "sync_data");
        assert!(s.source.consumer_name.starts_with("sync_data-"));
        assert_eq!(s.source.start, StartPosition::Begin);
        assert_eq!(s.source.credentials.access_key_secret.expose(), "sekrit");
        assert!(
            !format!("{s:?}").contains("sekrit"),
            "secret leaked into Debug"
        );
    }

    #[test]
    fn environment_overrides_file_credentials() {
        let file = parse_file(
            Path::new("t.toml"),
            r#"
            [source]
            endpoint = "file-endpoint"
            project = "p"
            logstore = "l"
            consumer_group = "g"
            access_key_id = "file-id"
            access_key_secret = "file-secret"
            heartbeat_interval = "2s"
            timeout = 5
            start = "2026-01-01T00:00:00Z"
            [plugin]
            path = "x.wasm"
            config = { sourcetype = "sls", json_fields = { a = ["b"] } }
            [sink]
            type = "hec"
            endpoint = "http://127.0.0.1:8088"
            "#,
        )
        .unwrap();
        let s = resolve(
            file,
            &env_of(&[("SLS_AK_KEY", "env-secret")]),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.source.credentials.access_key_id, "file-id");
        assert_eq!(
            s.source.credentials.access_key_secret.expose(),
            "env-secret"
        );
        assert_eq!(s.source.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(s.source.timeout, Duration::from_secs(5));
        assert_eq!(s.source.start, StartPosition::At(1_767_225_600));
        assert_eq!(s.plugin.path, PathBuf::from("x.wasm"));
        let cfg: serde_json::Value = serde_json::from_str(&s.plugin.config_json).unwrap();
        assert_eq!(cfg["json_fields"]["a"][0], "b");
        assert_eq!(s.sink["endpoint"].as_str(), Some("http://127.0.0.1:8088"));
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let err = resolve(FileConfig::default(), &env_of(&[]), hec_flags())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.endpoint") && err.contains("SLS_ENDPOINT"),
            "{err}"
        );

        let mut env: Vec<_> = SEED_ENV.to_vec();
        env.retain(|(k, _)| *k != "SLS_AK_KEY");
        let err = resolve(FileConfig::default(), &env_of(&env), hec_flags())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.access_key_secret") && err.contains("SLS_AK_KEY"),
            "{err}"
        );

        let err = resolve(
            FileConfig::default(),
            &env_of(SEED_ENV),
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("plugin.path") && err.contains("--plugin"),
            "{err}"
        );

        let bad = parse_file(Path::new("x.toml"), "[source]\nendpont = 1\n")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("endpont") && bad.contains("x.toml"), "{bad}");
    }

    #[test]
    fn bad_values_are_rejected() {
        for (extra, key) in [
            ("timeout = 10\nheartbeat_interval = 20", "source.timeout"),
            (
                "timeout = \"2.5s\"\nheartbeat_interval = 1",
                "source.timeout",
            ),
            ("fetch_count = 5000", "source.fetch_count"),
            ("start = \"yesterday\"", "source.start"),
            ("heartbeat_interval = \"5 parsecs\"", "parsecs"),
        ] {
            let msg = match parse_file(Path::new("t.toml"), &format!("[source]\n{extra}\n")) {
                Ok(f) => resolve(f, &env_of(SEED_ENV), hec_flags())
                    .unwrap_err()
                    .to_string(),
                Err(e) => e.to_string(),
            };
            assert!(msg.contains(key), "{extra}: {msg}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("source.logstore", "ok_name-1").is_ok());
        let err = check_name("source.logstore", "has space")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.logstore") && err.contains("has space"),
            "{err}"
        );
    }

    #[test]
    fn several_logstores() {
        let f = parse_file(
            Path::new("t.toml"),
            "[source]\nproject = \"p\"\nlogstores = [{ logstore = \"a\" }, { project = \"q\", logstore = \"b\" }]\n",
        )
        .unwrap();
        let mut env: Vec<_> = SEED_ENV.to_vec();
        env.retain(|(k, _)| !k.ends_with("LOGSTORE") && !k.ends_with("PROJECT"));
        let s = resolve(f, &env_of(&env), hec_flags()).unwrap();
        assert_eq!(
            s.source.logstores,
            vec![
                LogstoreTarget {
                    project: "p".into(),
                    logstore: "a".into()
                },
                LogstoreTarget {
                    project: "q".into(),
                    logstore: "b".into()
                },
            ]
        );
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shipper.toml");
        let file = read_file(&path).unwrap();
        let s = resolve(
            file,
            &env_of(&[("SLS_AK_ID", "id"), ("SLS_AK_KEY", "k")]),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.source.consumer_group, "shipper-siem");
        assert_eq!(s.source.heartbeat_interval, Duration::from_secs(20));
        let cfg: serde_json::Value = serde_json::from_str(&s.plugin.config_json).unwrap();
        assert_eq!(cfg["json_fields"]["actiontrail_audit_event"][0], "event");
        let sink: shipper_sinks::SinkConfig = toml::Value::Table(s.sink).try_into().unwrap();
        let shipper_sinks::SinkConfig::Hec(hec) = sink else {
            panic!("the example uses HEC")
        };
        hec.validate().unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
