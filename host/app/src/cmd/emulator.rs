//! `shipper emulator`: runs the SLS-compatible server of `shipper-emulator` until SIGINT or
//! SIGTERM. The first stdout line is machine-readable (`listening on 127.0.0.1:PORT`) so
//! scripts and tests can start it on port 0; everything else goes to stderr through tracing.
//! See host/emulator/README.md for pointing the official SDKs at it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::exit::{Failure, FailureExt as _};
use shipper_emulator::config::{DEFAULT_MAX_PULL_BYTES, DEFAULT_PULL_CACHE_BYTES, DEFAULT_SEED};
use shipper_emulator::quota::{DEFAULT_SHARD_READ_BYTES_PER_SEC, DEFAULT_SHARD_READS_PER_SEC};
use shipper_emulator::{
    EmulatorConfig, GenerateConfig, LogstoreSpec, ReadQuota, SampleKind, StsConfig,
};

/// Flags of `shipper emulator`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Runs an SLS-compatible server that the official SLS SDKs (e.g. \
aliyun-log-python-sdk) and `shipper run` can use instead of Alibaba Cloud SLS: projects, \
logstores, PutLogs, PullLogs (lz4, SPL subset), cursors and consumer groups with server-side \
assignment and checkpoints. Requests must be signed with the given AccessKey pair.\n\n\
The first line on stdout is `listening on ADDR`; logs go to stderr.\n\n\
Example:\n  shipper emulator --listen 127.0.0.1:8080 --access-key-id test --access-key-secret test \\\n    \
--logstore demo/logs:4 --generate 1000"
)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (the first stdout line tells which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// AccessKey ID that clients must sign with.
    #[arg(long, env = "SLS_AK_ID", value_name = "ID")]
    pub access_key_id: String,
    /// AccessKey secret that clients must sign with (never printed).
    #[arg(
        long,
        env = "SLS_AK_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub access_key_secret: String,
    /// Create this logstore (and its project) at start-up if missing; repeatable.
    /// SHARDS defaults to 4.
    #[arg(long = "logstore", value_name = "PROJECT/LOGSTORE[:SHARDS]")]
    pub logstores: Vec<LogstoreSpec>,
    /// Keep projects, logstores, logs and consumer-group checkpoints in this directory, so
    /// a restart continues where it stopped. Default: in memory only.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Write sample logs continuously at this rate (logs per second).
    #[arg(long, value_name = "LOGS_PER_SEC")]
    pub generate: Option<f64>,
    /// Where `--generate` writes (created with 4 shards if missing).
    #[arg(long, value_name = "PROJECT/LOGSTORE", default_value = "demo/logs")]
    pub generate_into: String,
    /// Which samples `--generate` writes: audit (ActionTrail JSON), nginx, or mixed.
    #[arg(long, value_name = "KIND", default_value = "mixed")]
    pub generate_kind: SampleKind,
    /// Seed of the sample generator (same seed, same logs).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Largest raw PullLogs response body in bytes (at least one LogGroup is always sent).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_PULL_BYTES)]
    pub max_pull_bytes: usize,
    /// Memory for compressed PullLogs replies kept for re-reads (0 disables the cache).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_PULL_CACHE_BYTES)]
    pub pull_cache_bytes: usize,
    /// Issue temporary credentials that expire after DURATION (e.g. `15s`, `1h`) from STS
    /// (`POST /` AssumeRole / AssumeRoleWithOIDC), metadata (`/latest/...`) and
    /// credentials-URI (`GET /credentials`) endpoints on the same address, and check their
    /// tokens on SLS requests (expired: 401 SecurityTokenExpired).
    #[arg(long, value_name = "DURATION", value_parser = crate::settings::parse_duration)]
    pub token_lifetime: Option<std::time::Duration>,
    /// With --token-lifetime: refuse the long-term AccessKey on SLS APIs (it still signs
    /// AssumeRole), so every SLS request must carry issued credentials.
    #[arg(long, requires = "token_lifetime")]
    pub require_temporary_credentials: bool,
    /// Run the emulator's clock this many seconds ahead (negative: behind) of the real
    /// one; requests more than 15 minutes off its clock get 400 RequestTimeExpired.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset: i64,
    /// Milliseconds added to every response, as if SLS were this far away (e.g. 100 or 200
    /// for a cloud region seen from an on-premises SIEM).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// Raw bytes PullLogs may serve per second and shard before it answers 403
    /// ReadQuotaExceed (SLS's documented soft limit; 0 = unlimited).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SHARD_READ_BYTES_PER_SEC)]
    pub shard_read_bytes_per_sec: u64,
    /// PullLogs per second and shard before 403 ReadQuotaExceed (SLS's documented soft
    /// limit; 0 = unlimited).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SHARD_READS_PER_SEC)]
    pub shard_reads_per_sec: u32,
    /// Test harnesses only: inject SLS faults from this file's rules, re-read whenever it
    /// changes (`API FAULT [PROBABILITY]` lines, e.g. `pull 503 0.5`; see
    /// `cmd/emulator_faults.rs`).
    #[arg(long, value_name = "FILE", hide = true)]
    pub fault_file: Option<PathBuf>,
}

impl EmulatorArgs {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        let mut config = EmulatorConfig::new(&self.access_key_id, &self.access_key_secret);
        config.logstores.clone_from(&self.logstores);
        config.data_dir.clone_from(&self.data_dir);
        config.max_pull_bytes = self.max_pull_bytes;
        config.pull_cache_bytes = self.pull_cache_bytes;
        config.clock_offset_secs = self.clock_offset;
        config.latency = std::time::Duration::from_millis(self.latency);
        config.read_quota = ReadQuota {
            bytes_per_sec: self.shard_read_bytes_per_sec,
            reads_per_sec: self.shard_reads_per_sec,
        };
        config.sts = self.token_lifetime.map(|token_lifetime| StsConfig {
            token_lifetime,
            require_temporary: self.require_temporary_credentials,
        });
        if let Some(rate) = self.generate {
            let target: LogstoreSpec = self
                .generate_into
                .parse()
                .map_err(|e| anyhow::anyhow!("--generate-into: {e}"))?;
            config.generate = Some(GenerateConfig {
                rate,
                project: target.project,
                logstore: target.logstore,
                kind: self.generate_kind,
                seed: self.seed,
            });
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs `shipper emulator`.
pub async fn execute(args: EmulatorArgs) -> Result<(), Failure> {
    let config = args.config().config_error()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is the port in use? --listen 127.0.0.1:0 picks a free one)",
                args.listen
            )
        })
        .config_error()?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")
        .runtime_error()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")
            .and_then(|()| out.flush())
            .context("cannot write to stdout")
            .runtime_error()?;
    }
    tracing::info!(
        %addr,
        access_key_id = %config.credentials.access_key_id,
        logstores = ?config.logstores.iter().map(ToString::to_string).collect::<Vec<_>>(),
        data_dir = ?config.data_dir,
        "SLS emulator ready"
    );
    let Some(fault_file) = args.fault_file else {
        return shipper_emulator::run(listener, config, shutdown_signal())
            .await
            .context("the SLS emulator failed")
            .runtime_error();
    };
    // The faults are reached through an in-process handle: serve through one.
    drop(listener);
    let emulator = shipper_emulator::Emulator::start_on(addr, config)
        .await
        .context("the SLS emulator failed")
        .runtime_error()?;
    let watcher = tokio::spawn(super::emulator_faults::watch(
        fault_file,
        emulator.faults().clone(),
    ));
    shutdown_signal().await;
    watcher.abort();
    emulator
        .shutdown()
        .await
        .context("the SLS emulator failed")
        .runtime_error()
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the emulator");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested; stopping the emulator");
}
