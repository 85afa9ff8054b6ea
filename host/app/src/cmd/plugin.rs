//! `shipper plugin test|inspect`: run a plugin through the production runtime on sample logs
//! and print what the sink would send, or describe a plugin file. `shipper plugin new` (a
//! project to start from) is [`crate::cmd::scaffold`].
//!
//! `test` prints one line per emit on stdout: the HEC `/event` envelope, the syslog line
//! without framing, or the raw bytes (lossy UTF-8), following docs/rendering.md.
//! Per-log errors go to stderr as `log N: <kind>: <message>` and make the exit status
//! non-zero. The golden tests (`tests/e2e/plugin_golden.rs`) run exactly this. Rendering is the
//! sinks' own (`shipper_sinks::preview`), so golden files pin the bytes a sink really sends.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use shipper_runtime::{BatchInfo, ErrorKind, PluginEngine, PluginLimits};
use shipper_sinks::preview::{PreviewOptions, render_line};
use shipper_sls::flat;
use shipper_sls::proto::encode_group;

use crate::exit::{Failure, FailureExt as _};

/// Flags of `shipper plugin`.
#[derive(Debug, clap::Args)]
#[command(after_help = COMPILE_CACHE_HELP)]
pub struct PluginArgs {
    /// What to do with the plugin.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Where compiled plugins are kept (docs/plugins.md §8), in `shipper plugin --help`.
const COMPILE_CACHE_HELP: &str = "\
Compile cache: the first load of a plugin compiles it (milliseconds for Rust and C, seconds
for a Python or JavaScript component). The compiled code is kept in
$XDG_CACHE_HOME/shipper/components, else ~/.cache/shipper/components, keyed by the plugin's
sha256, so later loads skip compiling. `plugin test` and `plugin inspect` use that location;
for `shipper run`, `[plugin] cache_dir = \"DIR\"` moves it and `compile_cache = false` turns it
off.";

/// `shipper plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Create a plugin project (Rust, Python, JavaScript or C) that builds and passes its
    /// test as created: the source to edit, build.sh, test.sh, sample logs with a golden
    /// file, a README, and the SDK and WIT it needs.
    New(crate::cmd::scaffold::NewArgs),
    /// Run a plugin on sample logs through the production runtime and print what the sink
    /// would send, one line per emit.
    Test(TestArgs),
    /// Print a plugin's name, version, SDK, world, hash, imports, exports and size.
    Inspect(InspectArgs),
}

/// Flags of `shipper plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`).
    #[arg(long)]
    pub plugin: PathBuf,
    /// The plugin config: a JSON object file (the `[plugin.config]` table). Default `{}`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Logs to format, flattened the way the official SDK flattens them (one JSON object per
    /// line: `__time__`, `__time_ns_part__`, `__topic__`, `__source__`, `__tag__:NAME`,
    /// contents). Consecutive lines with the same topic/source/tags form one log group.
    /// Default: the built-in samples.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Syslog rendering for syslog payloads.
    #[arg(long, value_enum, default_value_t = SyslogFormat::Rfc5424)]
    pub syslog_format: SyslogFormat,
    /// HOSTNAME used when a syslog payload does not set one (the sink's configured hostname).
    #[arg(long, default_value = "localhost")]
    pub syslog_hostname: String,
    /// Compare the output with this golden file instead of printing it: exit 0 when equal,
    /// else print a diff and exit 1. Per-log failures are part of the golden output, as
    /// lines `! log N: KIND: MESSAGE`, so expected rejections are asserted too.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// With `--expect`: write the output to the golden file instead of comparing.
    #[arg(long, requires = "expect")]
    pub update: bool,
}

/// Flags of `shipper plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// Config passed to `init` to learn the name/version/SDK (a JSON object file). Default `{}`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Syslog line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyslogFormat {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 / BSD (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`).
    Rfc3164,
}

/// Runs `shipper plugin`.
pub async fn execute(args: PluginArgs) -> Result<(), Failure> {
    match args.command {
        PluginCommand::New(args) => crate::cmd::scaffold::execute(args),
        PluginCommand::Test(args) => test(args).await,
        PluginCommand::Inspect(args) => inspect(args).await,
    }
}

fn read_config(path: Option<&Path>) -> Result<String, Failure> {
    let Some(path) = path else {
        return Ok("{}".to_owned());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plugin config {}", path.display()))
        .config_error()?;
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
        .with_context(|| {
            format!(
                "the plugin config {} must be one JSON object",
                path.display()
            )
        })
        .config_error()?;
    Ok(text)
}

fn load(engine: &PluginEngine, path: &Path) -> Result<shipper_runtime::Plugin, Failure> {
    let wasm = std::fs::read(path)
        .with_context(|| format!("cannot read the plugin file {}", path.display()))
        .config_error()?;
    engine
        .load(&wasm, PluginLimits::default())
        .with_context(|| format!("plugin {}", path.display()))
        .config_error()
}

async fn test(args: TestArgs) -> Result<(), Failure> {
    let engine = PluginEngine::new().runtime_error()?;
    let plugin = load(&engine, &args.plugin)?;
    let config = read_config(args.config.as_deref())?;
    let groups = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the input {}", path.display()))
                .config_error()?;
            flat::parse(&text)
                .with_context(|| format!("input {} is not flattened SLS logs", path.display()))
                .config_error()?
        }
        None => flat::samples::builtin_groups(),
    };
    let mut instance = plugin
        .instantiate(&config)
        .await
        .with_context(|| format!("plugin {}", args.plugin.display()))
        .config_error()?;
    if let Some(golden) = &args.expect {
        let mut output = Vec::new();
        format_groups(&mut instance, &args, &groups, &mut output, Failures::Inline)
            .await
            .runtime_error()?;
        return compare_golden(golden, &output, args.update);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (seen, failed) = format_groups(&mut instance, &args, &groups, &mut out, Failures::Stderr)
        .await
        .runtime_error()?;
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {seen} logs failed (see the `log N:` lines above)"
        ))
        .runtime_error();
    }
    Ok(())
}

/// Where per-log failures are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failures {
    /// `log N: KIND: MESSAGE` on stderr (the output holds events only).
    Stderr,
    /// `! log N: KIND: MESSAGE` in the output, in order (golden files).
    Inline,
}

/// Runs the plugin over `groups` and writes every emit to `out`, one line each; per-log
/// problems go where `failures` says. Returns (logs seen, logs or emits that failed).
async fn format_groups(
    instance: &mut shipper_runtime::PluginInstance,
    args: &TestArgs,
    groups: &[shipper_sls::proto::LogGroup],
    out: &mut dyn Write,
    failures: Failures,
) -> anyhow::Result<(usize, usize)> {
    let batch = BatchInfo::sample();
    let render = PreviewOptions {
        format: match args.syslog_format {
            SyslogFormat::Rfc5424 => shipper_sinks::syslog::Format::Rfc5424,
            SyslogFormat::Rfc3164 => shipper_sinks::syslog::Format::Rfc3164,
        },
        hostname: args.syslog_hostname.clone(),
        fallback_time: shipper_sinks::Timestamp {
            seconds: batch.received.seconds,
            nanos: batch.received.nanos,
        },
    };
    let report = |out: &mut dyn Write, what: String| -> anyhow::Result<()> {
        match failures {
            Failures::Stderr => {
                out.flush().context("writing to stdout")?;
                eprintln!("{what}");
            }
            Failures::Inline => writeln!(out, "! {what}").context("writing the output")?,
        }
        Ok(())
    };
    let mut line = Vec::new();
    let (mut seen, mut failed) = (0usize, 0usize);
    for group in groups {
        let bytes = encode_group(group);
        let first = seen + 1;
        let results = instance
            .process(&batch, &bytes, group.logs.len())
            .await
            .with_context(|| {
                format!(
                    "plugin {} failed on logs {first}..={}",
                    args.plugin.display(),
                    seen + group.logs.len()
                )
            })?;
        for result in results {
            seen += 1;
            match result {
                Ok(emits) => {
                    for emit in emits {
                        line.clear();
                        let payload = crate::convert::payload(emit.payload);
                        match render_line(&payload, &render, &mut line) {
                            Ok(()) => out.write_all(&line).context("writing to stdout")?,
                            Err(problem) => {
                                failed += 1;
                                report(out, format!("log {seen}: render: {problem}"))?;
                            }
                        }
                    }
                }
                Err(error) => {
                    failed += 1;
                    let what = format!("log {seen}: {}: {}", kind_name(error.kind), error.message);
                    report(out, what)?;
                }
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok((seen, failed))
}

/// `--expect`: the output against the golden file (or written to it with `--update`).
fn compare_golden(golden: &Path, output: &[u8], update: bool) -> Result<(), Failure> {
    if update {
        std::fs::write(golden, output)
            .with_context(|| format!("cannot write the golden file {}", golden.display()))
            .config_error()?;
        println!(
            "updated {} ({} lines)",
            golden.display(),
            output.iter().filter(|b| **b == b'\n').count()
        );
        return Ok(());
    }
    let expected = std::fs::read(golden)
        .with_context(|| {
            format!(
                "cannot read the golden file {} (create it with --update)",
                golden.display()
            )
        })
        .config_error()?;
    if expected == output {
        println!("ok: the output matches {}", golden.display());
        return Ok(());
    }
    let (old, new) = (
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(output),
    );
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    print!(
        "{}",
        diff.unified_diff()
            .context_radius(2)
            .header(&golden.display().to_string(), "plugin output")
    );
    Err(anyhow!(
        "the output differs from {} (diff above: - golden, + now); if the change is intended, \
         rerun with --update",
        golden.display()
    ))
    .runtime_error()
}

async fn inspect(args: InspectArgs) -> Result<(), Failure> {
    let engine = PluginEngine::new().runtime_error()?;
    let plugin = load(&engine, &args.plugin)?;
    let config = read_config(args.config.as_deref())?;
    let meta = plugin.metadata();
    let mut text = String::new();
    match plugin.instantiate(&config).await {
        Ok(instance) => {
            let info = instance.info();
            text.push_str(&format!("name:    {}\n", info.name));
            text.push_str(&format!("version: {}\n", info.version));
            text.push_str(&format!("sdk:     {}\n", info.sdk));
        }
        Err(e) => text.push_str(&format!(
            "name:    unknown (init failed: {e}; pass the plugin's config with --config)\n"
        )),
    }
    text.push_str(&format!("world:   {}\n", meta.world));
    text.push_str(&format!("hash:    sha256:{}\n", meta.hash));
    text.push_str(&format!("size:    {} bytes\n", meta.size));
    text.push_str("imports:\n");
    for import in &meta.imports {
        text.push_str(&format!("  {import}\n"));
    }
    text.push_str("exports:\n");
    for export in &meta.exports {
        text.push_str(&format!("  {export}\n"));
    }
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")
        .runtime_error()
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Internal => "internal",
    }
}
