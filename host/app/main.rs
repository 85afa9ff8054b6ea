//! The `shipper` binary: parse flags, set up logging, run the chosen command, print the
//! error chain and exit non-zero on failure. Everything else lives in the modules below and
//! in the `host/` libraries.
//!
//! Layout:
//! - `cli`: the clap structs (top-level flags and the command enum).
//! - `telemetry`: the tracing subscriber (human or JSON lines).
//! - `emulator_cmd`: `shipper emulator` (the SLS-compatible server).
//! - `plugin_cmd`: `shipper plugin test|inspect`.
//! - `run`: `shipper run` (consumer group → plugin → sink): set-up and shutdown.
//! - `settings`: flags + TOML file + environment → validated settings.
//! - `pipeline`: one shard: pulled groups → plugin → sink → acknowledgements.
//! - `checkpoint`: per-shard committer of delivered positions.
//! - `lag`: per-shard lag gauges (LogGroups and seconds behind) and their sampler.
//! - `dead_letter`: the dead-letter JSON-lines file.
//! - `generation`: the plugin generation in use (swapped atomically).
//! - `convert`: plugin output types → sink payload types.
//! - `metrics`, `metrics_server`, `progress`: Prometheus registry, `/metrics` + `/health`,
//!   and the terminal progress line.

mod checkpoint;
mod cli;
mod convert;
mod dead_letter;
mod emulator_cmd;
mod generation;
mod lag;
mod metrics;
mod metrics_server;
mod pipeline;
mod plugin_cmd;
mod progress;
mod reload;
mod run;
mod settings;
mod telemetry;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format, cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Run(args) => run::execute(*args).await,
            cli::Command::Emulator(args) => emulator_cmd::execute(*args).await,
            cli::Command::Plugin(args) => plugin_cmd::execute(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: what failed, then why.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
