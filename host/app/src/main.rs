//! The `shipper` binary: parse flags, set up logging, run the chosen command, print the
//! error chain and exit with the documented code (`shipper::exit`). Everything else lives in
//! the `shipper` library (host/app/src/lib.rs) and the `host/` crates.

use clap::Parser as _;
use shipper::cli::{Cli, Command};
use shipper::{cmd, telemetry};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
            Command::Run(args) => cmd::run::execute(*args).await,
            Command::Validate(args) => cmd::validate::execute(args).await,
            Command::Emulator(args) => cmd::emulator::execute(*args).await,
            Command::Plugin(args) => cmd::plugin::execute(args).await,
            Command::Receive(args) => cmd::receive::execute(args).await,
            Command::Replay(args) => cmd::replay::execute(*args).await,
            Command::DeadLetter(args) => cmd::dead_letter::execute(args).await,
            Command::Reconcile(args) => cmd::reconcile::execute(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            std::process::ExitCode::from(failure.code())
        }
    }
}
