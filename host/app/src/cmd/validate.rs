//! `shipper validate`: checks a configuration the way `shipper run` would use it, without
//! shipping anything, and reports every problem (not only the first), one line each naming the
//! full key and the fix: for CI/CD pipelines, as `vector validate` or `fluent-bit --dry-run`.
//!
//! What it checks: the config file and environment (every key, [`settings::load`]); the
//! files the configuration names (the plugins, their self-test inputs, the AccessKey secret
//! file, each sink's token and TLS files, the dead-letter directories, the ledger and the
//! canary report); each plugin and its canary (loaded, `init`-ed with its config and
//! self-tested against its sinks' renderers, exactly as at start-up). With `--connect` it also authenticates to SLS with read-only calls
//! (ListShards on every logstore) and asks each sink's health endpoint(s).
//!
//! Exit codes as the binary documents them: 0 valid, 2 invalid, 3 valid but a dependency is
//! unreachable or refuses us (`--connect` only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use shipper_runtime::{EngineSettings, PluginEngine};
use shipper_sinks::Sink;
use shipper_sls::credentials::RefreshingCredentials;
use tokio_util::sync::CancellationToken;

use crate::exit::{Failure, FailureKind};
use crate::settings::{self, ConfigError, FileConfig, Overrides, Problem, Settings};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per problem, then a summary line.
    Text,
    /// One JSON object: `{"valid": bool, "problems": [{"key", "message", "kind"}]}`.
    Json,
}

/// Flags of `shipper validate`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Checks a configuration without shipping anything: every key, every file it \
names (plugin, self-test input, secret and token files, TLS files, the dead-letter directory), \
and the plugin itself (loaded, init-ed with its config, self-tested against the sink). \
Reports every problem, one line each naming the full key and the fix.\n\n\
With --connect it also authenticates to SLS (read-only ListShards on every logstore) and asks \
each sink's health endpoint.\n\n\
Exit codes: 0 valid; 2 invalid; 3 valid, but with --connect a dependency cannot be reached or \
refuses the credentials."
)]
pub struct ValidateArgs {
    /// TOML config file (as for `shipper run`); the environment applies as for `run`.
    #[arg(long, short = 'c', value_name = "FILE", env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Formatter plugin; overrides `[plugin] path`.
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Also reach SLS (read-only calls) and each sink's health endpoint.
    #[arg(long)]
    pub connect: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What kind of problem a finding is (decides the exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The configuration is wrong (exit 2).
    Invalid,
    /// A dependency cannot be reached or refuses us (exit 3, `--connect` only).
    Unreachable,
}

/// One finding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The full key (`sink.tls.ca_file`), or what the finding is about (`plugin.path`).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Invalid or unreachable.
    pub kind: Kind,
}

impl Finding {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            kind: Kind::Invalid,
        }
    }

    fn from_problem(p: Problem) -> Self {
        Self::invalid(p.key, p.message)
    }
}

/// Runs `shipper validate`.
pub async fn execute(args: ValidateArgs) -> Result<(), Failure> {
    let findings = check(&args).await;
    report(&findings, args.format);
    let kind = if findings.iter().any(|f| f.kind == Kind::Invalid) {
        FailureKind::Config
    } else if !findings.is_empty() {
        FailureKind::Unavailable
    } else {
        return Ok(());
    };
    Err(Failure {
        kind,
        error: anyhow::anyhow!("{} problem(s) found (listed above)", findings.len()),
    })
}

/// Every finding about the configuration `args` names.
pub async fn check(args: &ValidateArgs) -> Vec<Finding> {
    let file = match &args.config {
        Some(path) => match settings::read_file(path) {
            Ok(f) => f,
            Err(e) => return vec![Finding::invalid("config", e.to_string())],
        },
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        plugin: args.plugin.clone(),
        ..Overrides::default()
    };
    let settings = match settings::load(file, &|k| std::env::var(k).ok(), overrides) {
        Ok(s) => s,
        Err(ConfigError::Invalid(problems)) => {
            return problems.into_iter().map(Finding::from_problem).collect();
        }
        Err(e) => return vec![Finding::invalid("config", e.to_string())],
    };
    let mut findings = Vec::new();
    check_files(&settings, &mut findings);
    // Local credentials (a key pair, files) are read now; remote ones (metadata service,
    // STS, a URI) only with --connect, where reaching them is the point.
    let credentials = if args.connect || settings.source.credentials.is_local() {
        match super::sls::start_credentials(&settings.source).await {
            Ok(c) => Some(c),
            Err(f) => {
                let kind = match f.kind {
                    FailureKind::Unavailable => Kind::Unreachable,
                    _ => Kind::Invalid,
                };
                findings.push(Finding {
                    key: "source.credentials".into(),
                    message: f.to_string(),
                    kind,
                });
                None
            }
        }
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    let mut sinks: Vec<Option<Arc<dyn Sink>>> = Vec::with_capacity(settings.sinks.len());
    for entry in &settings.sinks {
        sinks.push(
            match entry.settings.build(&entry.name, shutdown.clone()).await {
                Ok(sink) => Some(sink),
                Err(e) => {
                    findings.push(Finding::invalid(&entry.key, e.to_string()));
                    None
                }
            },
        );
    }
    check_plugins(&settings, &sinks, &mut findings).await;
    if args.connect
        && findings.is_empty()
        && let Some(credentials) = &credentials
    {
        connect(&settings, credentials, &sinks, &mut findings).await;
    }
    shutdown.cancel();
    findings
}

/// Files the settings name, each checked where it is named.
fn check_files(settings: &Settings, findings: &mut Vec<Finding>) {
    for (entry, _) in settings.plugin_groups() {
        if let Some(input) = &entry.plugin.self_test_input
            && let Err(e) = std::fs::metadata(input)
        {
            findings.push(Finding::invalid(
                format!("{}.self_test_input", entry.plugin_key),
                format!("cannot read {}: {e}", input.display()),
            ));
        }
    }
    let mut checked: Vec<&Path> = Vec::new();
    for entry in &settings.sinks {
        if checked.contains(&entry.dead_letter.as_path()) {
            continue;
        }
        checked.push(&entry.dead_letter);
        if let Err(message) = writable(&entry.dead_letter) {
            let key = if entry.key == "sink" || entry.dead_letter == settings.dead_letter_path {
                "dead_letter.path".to_owned()
            } else {
                format!("{}.dead_letter", entry.key)
            };
            findings.push(Finding::invalid(key, message));
        }
    }
    if let Some(ledger) = &settings.ledger
        && let Err(message) = writable(&ledger.path)
    {
        findings.push(Finding::invalid("ledger.path", message));
    }
    for (entry, _) in settings.plugin_groups() {
        if let Some(canary) = &entry.plugin.canary
            && let Err(message) = writable(&canary.report)
        {
            findings.push(Finding::invalid(
                format!("{}.canary.report", entry.plugin_key),
                message,
            ));
        }
    }
}

/// Whether the dead-letter file can be appended to (or created) without creating it.
fn writable(path: &Path) -> Result<(), String> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot append to {}: {e}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The directory may be created by `shipper run`: find the nearest existing ancestor.
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    let probe = existing.join(format!(".shipper-validate-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .map_err(|e| {
            format!(
                "cannot create {} (the directory {} is not writable: {e})",
                path.display(),
                existing.display()
            )
        })
}

/// Loads, `init`s and self-tests each distinct plugin as `shipper run` does at start-up
/// (without the self-test when one of its sinks could not be built: its renderer is
/// missing).
async fn check_plugins(
    settings: &Settings,
    sinks: &[Option<Arc<dyn Sink>>],
    findings: &mut Vec<Finding>,
) {
    let groups = settings.plugin_groups();
    let engine = match PluginEngine::with_settings(EngineSettings {
        compile_cache: groups[0].0.plugin.compile_cache.clone(),
        ..EngineSettings::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            findings.push(Finding::invalid(
                format!("{}.cache_dir", groups[0].0.plugin_key),
                format!("cannot start the plugin runtime: {e}"),
            ));
            return;
        }
    };
    for (entry, members) in groups {
        let targets: Option<Vec<(String, Arc<dyn Sink>)>> = members
            .iter()
            .map(|&i| Some((settings.sinks[i].name.clone(), sinks[i].clone()?)))
            .collect();
        let loaded = match &targets {
            Some(targets) => crate::reload::load_generation(&engine, &entry.plugin, targets)
                .await
                .map(drop),
            None => crate::reload::load_plugin(&engine, &entry.plugin)
                .await
                .map(drop),
        };
        if let Err(e) = loaded {
            let key = if format!("{e:#}").contains("rejected its config") {
                "config"
            } else {
                "path"
            };
            findings.push(Finding::invalid(
                format!("{}.{key}", entry.plugin_key),
                format!("{e:#}"),
            ));
        }
        // The canary is loaded and self-tested exactly like the plugin it shadows.
        if let (Some(c), Some(targets)) = (&entry.plugin.canary, &targets) {
            let mut canary = entry.plugin.clone();
            canary.path.clone_from(&c.path);
            canary.config_json.clone_from(&c.config_json);
            canary.canary = None;
            if let Err(e) = crate::reload::load_generation(&engine, &canary, targets).await {
                let key = if format!("{e:#}").contains("rejected its config") {
                    "config"
                } else {
                    "path"
                };
                findings.push(Finding::invalid(
                    format!("{}.canary.{key}", entry.plugin_key),
                    format!("{e:#}"),
                ));
            }
        }
    }
}

/// `--connect`: read-only SLS calls per logstore, and each sink's health check.
async fn connect(
    settings: &Settings,
    credentials: &RefreshingCredentials,
    sinks: &[Option<Arc<dyn Sink>>],
    findings: &mut Vec<Finding>,
) {
    let s = &settings.source;
    for target in &s.logstores {
        let client = match super::sls::sls_client(s, target, credentials) {
            Ok(c) => c,
            Err(f) => {
                findings.push(Finding::invalid("source", f.to_string()));
                return;
            }
        };
        if let Err(e) = client
            .list_shards(&target.logstore)
            .await
            .with_context(|| format!("SLS refused ListShards on {}", target.label()))
        {
            findings.push(Finding {
                key: "source".into(),
                message: format!("{e:#}"),
                kind: Kind::Unreachable,
            });
        }
    }
    for (entry, sink) in settings.sinks.iter().zip(sinks) {
        if let Some(sink) = sink
            && let Err(e) = sink.healthcheck().await
        {
            findings.push(Finding {
                key: entry.key.clone(),
                message: e.to_string(),
                kind: Kind::Unreachable,
            });
        }
    }
}

fn report(findings: &[Finding], format: Format) {
    match format {
        Format::Text => {
            for f in findings {
                let what = match f.kind {
                    Kind::Invalid => "invalid",
                    Kind::Unreachable => "unreachable",
                };
                println!("{what}: `{}`: {}", f.key, f.message);
            }
            if findings.is_empty() {
                println!("valid");
            }
        }
        Format::Json => {
            let valid = findings.is_empty();
            let doc = serde_json::json!({ "valid": valid, "problems": findings });
            println!("{doc}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_path_is_checked_without_creating_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/deeper/dead.jsonl");
        assert!(writable(&path).is_ok());
        assert!(!dir.path().join("sub").exists(), "nothing was created");
        // A "directory" that is a regular file cannot hold the dead-letter file, even for
        // root (permission bits would not stop root).
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = writable(&file.join("dead.jsonl")).unwrap_err();
        assert!(err.contains("not writable"), "{err}");
        let existing = dir.path().join("dead.jsonl");
        std::fs::write(&existing, "").unwrap();
        assert!(writable(&existing).is_ok());
    }
}
