//! `shipper run` configuration: flags + optional TOML file + environment → validated
//! [`Settings`]: parse, then check, then (in `cmd::run`) build. Every key, its default and
//! whether a reload may change it is in docs/configuration.md.
//!
//! Precedence: built-in defaults < config file < environment < flags. Credentials come from
//! the environment (the seed scripts' `SLS_AK_ID` / `SLS_AK_KEY` / `SLS_STS_TOKEN`) or from
//! the file; the environment wins. No secret is accepted as a flag, and none is ever printed
//! (secrets are `SecretString`s, redacted in `Debug`).
//!
//! [`load`] is pure (no sockets, no file reads beyond the config text it is given, no
//! hostname): it checks every section and reports *every* problem at once, each naming its
//! full key. Reading secret files and the hostname is the resolve step's job (the credentials
//! provider the run command builds, [`SourceSettings::consumer_name`]).
//!
//! Layout: one module per table — [`source`] (with [`credentials`] for
//! `[source.credentials]`), [`plugin`], [`sink`] (`[sink]` or `[[sinks]]`),
//! [`dead_letter`], [`ledger`], [`metrics`], [`reload`] (`[reload]` and `[log]`) — and [`values`] for
//! what they share (durations, names, [`Problems`]).

pub mod credentials;
pub mod dead_letter;
pub mod ledger;
pub mod metrics;
pub mod plugin;
pub mod reload;
pub mod sink;
pub mod source;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::plugin::{PluginConfig, PluginSettings};
pub use self::sink::{DEFAULT_SINK_NAME, SinkEntry};
pub use self::source::{LogstoreTarget, SourceConfig, SourceSettings, StartPosition, env};
pub use self::values::{ConfigDuration, Problem, Problems, parse_duration};

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
    /// sink's own keys (checked by [`sink::resolve`]).
    pub sink: Option<toml::Table>,
    /// Several sinks instead of `[sink]`: `[[sinks]]` tables, each with a `name` and
    /// optionally its own `[sinks.plugin]` and dead-letter file.
    pub sinks: Option<Vec<toml::Table>>,
    /// Logs that cannot be delivered (plugin record errors, events the SIEM rejects).
    #[serde(default)]
    pub dead_letter: dead_letter::DeadLetterConfig,
    /// Prometheus metrics and health endpoint.
    #[serde(default)]
    pub metrics: metrics::MetricsConfig,
    /// What a running process watches to reload itself.
    #[serde(default)]
    pub reload: reload::ReloadConfig,
    /// The log filter.
    #[serde(default)]
    pub log: reload::LogConfig,
    /// The completeness ledger and its watermark events.
    #[serde(default)]
    pub ledger: ledger::LedgerConfig,
}

/// Everything `shipper run` needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// `[source]`.
    pub source: SourceSettings,
    /// `[plugin]`, the plugin of every sink without its own (`None` when each of the
    /// `[[sinks]]` has its own and `[plugin]` is not set).
    pub plugin: Option<PluginSettings>,
    /// `[sink]` or `[[sinks]]`, typed, in configuration order.
    pub sinks: Vec<SinkEntry>,
    /// `[dead_letter] path`: the dead-letter file of `[sink]`, and the base of the
    /// per-sink file names of `[[sinks]]`.
    pub dead_letter_path: PathBuf,
    /// Metrics listen address.
    pub metrics_listen: Option<String>,
    /// `[reload] watch`: reload when the config file or a plugin file changes.
    pub reload_watch: bool,
    /// `[log] level`, when set.
    pub log_level: Option<String>,
    /// `[ledger]`, `None` when `enabled = false`.
    pub ledger: Option<ledger::LedgerSettings>,
}

/// A configuration that cannot be used: unreadable, not TOML, or with bad values (all of
/// them listed).
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
    /// Keys are missing or have bad values; each problem names its key and the fix.
    #[error("{}", problem_lines(.0))]
    Invalid(Vec<Problem>),
}

fn problem_lines(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut text = format!("{} problems in the configuration:", many.len());
            for p in many {
                text.push_str("\n  - ");
                text.push_str(&p.to_string());
            }
            text
        }
    }
}

/// The variable `${CREDENTIALS_DIRECTORY}` in `*_file` keys stands for: the directory where
/// systemd puts the secrets `LoadCredential=` loads for a service (deploy/systemd/).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Reads and parses a config file (`${CREDENTIALS_DIRECTORY}` from the process environment).
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file_with(path, &text, &|k| std::env::var(k).ok())
}

/// Parses config text (`path` only labels errors); no variable is set.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    parse_file_with(path, text, &|_| None)
}

/// Parses config text, expanding `${CREDENTIALS_DIRECTORY}` in the value of every key whose
/// name ends in `_file` with `env`'s value; a file key that names it while it is unset is an
/// error naming the key.
pub fn parse_file_with(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    let mut problems = Problems::default();
    expand_file_keys(&mut table, "", env, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems.into_vec()));
    }
    // Through serde_path_to_error so an unknown or mistyped key keeps its full path.
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        let first = message.lines().next().unwrap_or_default().trim_end();
        parse_error(if key == "." {
            first.to_owned()
        } else {
            format!("{key}: {first}")
        })
    })
}

fn expand_file_keys(
    table: &mut toml::Table,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    let var = format!("${{{CREDENTIALS_DIRECTORY}}}");
    for (key, value) in table.iter_mut() {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => expand_file_keys(inner, &full, env, problems),
            toml::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        expand_file_keys(inner, &format!("{full}[{i}]"), env, problems);
                    }
                }
            }
            toml::Value::String(text) if key.ends_with("_file") && text.contains(&var) => {
                match env(CREDENTIALS_DIRECTORY).filter(|d| !d.is_empty()) {
                    Some(dir) => *text = text.replace(&var, dir.trim_end_matches('/')),
                    None => problems.push(
                        full,
                        format!(
                            "names {var}, but {CREDENTIALS_DIRECTORY} is not set: it is set by \
                             systemd for a service with LoadCredential=; elsewhere, give the \
                             file's path"
                        ),
                    ),
                }
            }
            _ => {}
        }
    }
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

/// Merges file, environment and flags and checks every section. `env` is a lookup so tests
/// need not touch the process environment. Pure; see the module docs.
pub fn load(
    file: FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    flags: Overrides,
) -> Result<Settings, ConfigError> {
    let mut problems = Problems::default();
    let source = source::resolve(file.source, env, flags.consumer_name, &mut problems);
    // The shared [plugin] is needed unless every [[sinks]] table brings its own.
    let every_sink_has_a_plugin = file.sink.is_none()
        && file
            .sinks
            .as_ref()
            .is_some_and(|list| !list.is_empty() && list.iter().all(|t| t.contains_key("plugin")));
    let shared_plugin_given = file.plugin.path.is_some() || flags.plugin.is_some();
    let plugin = if every_sink_has_a_plugin && !shared_plugin_given {
        None
    } else {
        plugin::resolve(file.plugin, flags.plugin, "plugin", &mut problems)
    };
    let dead_letter_path = dead_letter::resolve(file.dead_letter, flags.dead_letter);
    let single_from_flags = file.sink.is_none() && flags.sink.is_some();
    let sinks = sink::resolve(
        sink::SinkInputs {
            single: file.sink.or(flags.sink),
            many: file.sinks,
            single_from_flags,
            shared_plugin: plugin.as_ref(),
            dead_letter: &dead_letter_path,
        },
        &mut problems,
    );
    let metrics_listen = metrics::resolve(file.metrics, flags.metrics_listen, &mut problems);
    let log_level = reload::resolve_level(file.log, &mut problems);
    let ledger = ledger::resolve(file.ledger, &mut problems);
    match (source, sinks) {
        (Some(source), Some(sinks)) if problems.is_empty() => Ok(Settings {
            source,
            plugin,
            sinks,
            dead_letter_path,
            metrics_listen,
            reload_watch: file.reload.watch,
            log_level,
            ledger,
        }),
        _ => Err(ConfigError::Invalid(problems.into_vec())),
    }
}

impl Settings {
    /// The distinct plugins of the configuration, each with the sinks (indices into
    /// [`Settings::sinks`]) it formats for: sinks with equal plugin settings share one
    /// (one compile, one self-test against all of them, one hot-swap watcher).
    pub fn plugin_groups(&self) -> Vec<(&SinkEntry, Vec<usize>)> {
        let mut groups: Vec<(&SinkEntry, Vec<usize>)> = Vec::new();
        for (i, entry) in self.sinks.iter().enumerate() {
            match groups.iter_mut().find(|(e, _)| e.plugin == entry.plugin) {
                Some((_, members)) => members.push(i),
                None => groups.push((entry, vec![i])),
            }
        }
        groups
    }
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
                .map(LogstoreTarget::label)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("consumer_group", s.consumer_group.clone()),
        (
            "credentials",
            format!(
                "{} (from {})",
                s.credentials.spec.name(),
                s.credentials.origin
            ),
        ),
        (
            "signature",
            match &s.signature {
                shipper_sls::sign::SignatureVersion::V1 => "v1".to_owned(),
                shipper_sls::sign::SignatureVersion::V4 { region } => format!("v4 ({region})"),
            },
        ),
        (
            "plugin",
            settings
                .plugin
                .as_ref()
                .map_or_else(|| "per sink".to_owned(), |p| p.path.display().to_string()),
        ),
        (
            "sinks",
            settings
                .sinks
                .iter()
                .map(|e| format!("{}:{}", e.name, e.settings.kind().as_str()))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret as _;
    use shipper_sinks::SinkSettings;

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
        sink.insert("endpoint".into(), "http://127.0.0.1:8088".into());
        Overrides {
            plugin: Some("p.wasm".into()),
            sink: Some(sink),
            ..Default::default()
        }
    }

    fn problems(result: Result<Settings, ConfigError>) -> Vec<String> {
        match result {
            Err(ConfigError::Invalid(list)) => list.iter().map(ToString::to_string).collect(),
            other => panic!("expected invalid settings, got {other:?}"),
        }
    }

    fn static_credentials(s: &Settings) -> shipper_sls::sign::Credentials {
        match &s.source.credentials.spec {
            shipper_sls::credentials::chain::Spec::Static(p) => p.read().unwrap(),
            other => panic!("static credentials expected, got {}", other.name()),
        }
    }

    #[test]
    fn seed_environment_alone_is_enough() {
        let s = load(FileConfig::default(), &env_of(SEED_ENV), hec_flags()).unwrap();
        assert_eq!(s.source.endpoint, "cn-hangzhou.log.aliyuncs.com");
        assert_eq!(
            s.source.logstores,
            vec![LogstoreTarget {
                project: "proj".into(),
                logstore: "store".into()
            }]
        );
        assert_eq!(s.source.consumer_group, "sync_data");
        assert!(s.source.consumer_name().starts_with("sync_data-"));
        assert_eq!(s.source.start, StartPosition::Begin);
        let credentials = static_credentials(&s);
        assert_eq!(credentials.access_key_secret.expose_secret(), "sekrit");
        assert!(
            !format!("{s:?}").contains("sekrit"),
            "secret leaked into Debug"
        );
        // The consumer-group defaults are shipper-sls's, the ones docs/configuration.md lists.
        assert_eq!(s.source.heartbeat_interval, Duration::from_secs(20));
        assert_eq!(s.source.timeout, Duration::from_secs(40));
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
        let s = load(
            file,
            &env_of(&[("SLS_AK_KEY", "env-secret")]),
            Overrides::default(),
        )
        .unwrap();
        let credentials = static_credentials(&s);
        assert_eq!(credentials.access_key_id, "file-id");
        assert_eq!(credentials.access_key_secret.expose_secret(), "env-secret");
        assert_eq!(s.source.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(s.source.timeout, Duration::from_secs(5));
        assert_eq!(s.source.start, StartPosition::At(1_767_225_600));
        let plugin = s.plugin.as_ref().expect("the shared plugin");
        assert_eq!(plugin.path, PathBuf::from("x.wasm"));
        let cfg: serde_json::Value = serde_json::from_str(&plugin.config_json).unwrap();
        assert_eq!(cfg["json_fields"]["a"][0], "b");
        assert_eq!(s.sinks.len(), 1);
        assert_eq!(s.sinks[0].plugin, *plugin);
        let SinkSettings::Hec(hec) = &s.sinks[0].settings else {
            panic!("an HEC sink")
        };
        assert_eq!(hec.endpoints[0].base.as_str(), "http://127.0.0.1:8088/");
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_fix() {
        let p = problems(load(
            FileConfig::default(),
            &env_of(&[]),
            Overrides::default(),
        ));
        for key in [
            "source.endpoint",
            "source.access_key_id",
            "source.access_key_secret",
            "source.logstore",
            "source.consumer_group",
            "plugin.path",
            "sink",
        ] {
            assert!(
                p.iter().any(|l| l.contains(&format!("`{key}`"))),
                "{key} not named in {p:#?}"
            );
        }
        assert!(p.iter().any(|l| l.contains("SLS_ENDPOINT")), "{p:#?}");
        assert!(p.iter().any(|l| l.contains("--plugin")), "{p:#?}");
        let text = load(FileConfig::default(), &env_of(&[]), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("7 problems in the configuration:"),
            "{text}"
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
            ("max_buffer_mib = 1", "source.max_buffer_mib"),
            ("start = \"yesterday\"", "source.start"),
            ("heartbeat_interval = \"5 parsecs\"", "parsecs"),
            ("consumer_group = \"has space\"", "source.consumer_group"),
        ] {
            let msg = match parse_file(Path::new("t.toml"), &format!("[source]\n{extra}\n")) {
                Ok(f) => load(
                    f,
                    &env_of(&[("SLS_AK_ID", "i"), ("SLS_AK_KEY", "k")]),
                    hec_flags(),
                )
                .unwrap_err()
                .to_string(),
                Err(e) => e.to_string(),
            };
            assert!(msg.contains(key), "{extra}: {msg}");
        }
        let f = parse_file(Path::new("t.toml"), "[metrics]\nlisten = \"9598\"\n").unwrap();
        let p = problems(load(f, &env_of(SEED_ENV), hec_flags()));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("`metrics.listen`"), "{p:?}");
    }

    #[test]
    fn a_secret_file_is_read_when_resolving_not_when_loading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let file = parse_file(
            Path::new("t.toml"),
            &format!(
                "[source]\naccess_key_secret_file = {:?}\n",
                path.display().to_string()
            ),
        )
        .unwrap();
        let mut env: Vec<_> = SEED_ENV.to_vec();
        env.retain(|(k, _)| *k != "SLS_AK_KEY");
        // The file does not exist yet: loading is pure, so it succeeds.
        let s = load(file, &env_of(&env), hec_flags()).unwrap();
        let shipper_sls::credentials::chain::Spec::Static(provider) = &s.source.credentials.spec
        else {
            panic!("static credentials")
        };
        let err = provider.read().unwrap_err();
        assert!(
            err.message.contains("source.access_key_secret_file"),
            "{err}"
        );
        std::fs::write(&path, "from-file\n").unwrap();
        let c = provider.read().unwrap();
        assert_eq!(c.access_key_secret.expose_secret(), "from-file");
    }

    #[test]
    fn credentials_directory_is_expanded_in_file_keys_only() {
        let text = "[source]\naccess_key_secret_file = \"${CREDENTIALS_DIRECTORY}/sls\"\n\
                    query = \"${CREDENTIALS_DIRECTORY}\"\n\
                    [sink]\ntype = \"hec\"\nendpoint = \"http://h:8088\"\n\
                    token_file = \"${CREDENTIALS_DIRECTORY}/hec\"\n";
        let env = env_of(&[("CREDENTIALS_DIRECTORY", "/run/credentials/shipper.service/")]);
        let f = parse_file_with(Path::new("t.toml"), text, &env).unwrap();
        assert_eq!(
            f.source.access_key_secret_file.as_deref(),
            Some(Path::new("/run/credentials/shipper.service/sls"))
        );
        assert_eq!(f.source.query.as_deref(), Some("${CREDENTIALS_DIRECTORY}"));
        assert_eq!(
            f.sink.unwrap()["token_file"].as_str(),
            Some("/run/credentials/shipper.service/hec")
        );
        let err = parse_file_with(Path::new("t.toml"), text, &env_of(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`source.access_key_secret_file`")
                && text.contains("`sink.token_file`")
                && text.contains("LoadCredential"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_table() {
        let err = parse_file(
            Path::new("x.toml"),
            "[sink]\ntype = \"hec\"\n[source]\nendpont = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.toml") && err.contains("source.endpont"),
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
        let s = load(f, &env_of(&env), hec_flags()).unwrap();
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
        let s = load(
            file,
            &env_of(&[("SLS_AK_ID", "id"), ("SLS_AK_KEY", "k")]),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.source.consumer_group, "shipper-siem");
        assert_eq!(s.source.heartbeat_interval, Duration::from_secs(20));
        let plugin = s.plugin.as_ref().expect("the shared plugin");
        let cfg: serde_json::Value = serde_json::from_str(&plugin.config_json).unwrap();
        assert_eq!(cfg["json_fields"]["actiontrail_audit_event"][0], "event");
        assert!(
            matches!(s.sinks[0].settings, SinkSettings::Hec(_)),
            "the example uses HEC"
        );
    }
}
