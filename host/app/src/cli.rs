//! Command-line structure. Each command's own flags live with the command
//! (`cmd::run::RunArgs`, `cmd::emulator::EmulatorArgs`, `cmd::plugin::PluginArgs`).

use clap::{Parser, Subcommand, ValueEnum};

/// Ships Alibaba Cloud SLS logs into on-premises SIEMs (Splunk HEC, syslog) through
/// sandboxed WebAssembly formatter plugins.
#[derive(Debug, Parser)]
#[command(
    name = "shipper",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = crate::exit::EXIT_CODES_HELP
)]
pub struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "SHIPPER_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `shipper=debug,info` (tracing EnvFilter syntax). Wins over
    /// the config file's `[log] level` (which a reload can change), which wins over
    /// `RUST_LOG`; the default is `info`.
    #[arg(long, global = true, env = "SHIPPER_LOG")]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join an SLS consumer group and ship every log through a plugin to a SIEM.
    Run(Box<crate::cmd::run::RunArgs>),
    /// Check a configuration, its files and its plugin without shipping (every problem at
    /// once; `--connect` also reaches SLS and the sink).
    Validate(crate::cmd::validate::ValidateArgs),
    /// Run an SLS-compatible server (for tests, demos and benchmarks).
    Emulator(Box<crate::cmd::emulator::EmulatorArgs>),
    /// Create, test or inspect a formatter plugin.
    Plugin(crate::cmd::plugin::PluginArgs),
    /// Receive like a Splunk HEC endpoint or a syslog collector, print and count (for trying
    /// a plugin or a config without a SIEM).
    Receive(crate::cmd::receive::ReceiveArgs),
    /// Send the logs SLS received in a time window again, through the plugin to the sinks,
    /// without touching the consumer group (resumable with --state).
    Replay(Box<crate::cmd::replay::ReplayArgs>),
    /// Work with dead-letter files: `replay` re-drives one through a (fixed) plugin.
    DeadLetter(crate::cmd::dead_letter::DeadLetterArgs),
    /// Check from the completeness ledger that every log SLS received in a time window was
    /// acknowledged by the sinks; name the missing cursor ranges (exit 1 on a gap).
    Reconcile(crate::cmd::reconcile::ReconcileArgs),
}
