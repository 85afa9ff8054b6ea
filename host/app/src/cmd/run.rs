//! `shipper run`: check the settings, build the sinks and their plugins, join one consumer
//! group per logstore, run a pipeline task per assigned shard, and shut everything down
//! cleanly on SIGINT/SIGTERM. This module only wires the library's parts together.
//!
//! Start-up order: every config problem is reported before the "starting" line (exit 2);
//! then the sinks and the plugins (each self-tested against its sinks' renderers) are built
//! as configuration generation 1 ([`crate::topology`]), so a bad plugin or sink setting
//! fails before SLS is touched (exit 2); a sink or SLS that refuses us is exit 3. A
//! [`Reloader`] then applies SIGHUP and watched-file changes ([`crate::config_reload`]).
//!
//! Shutdown order (nothing lost, nothing re-sent that was committed): stop taking shards →
//! each shard stops pulling, sends what it has formatted, waits for the sink, commits its last
//! delivered position and releases its lease → last heartbeat. If the sink stays down past
//! `--shutdown-timeout`, deliveries are cancelled and their logs stay uncommitted (they are
//! re-delivered after a restart).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use shipper_runtime::{EngineSettings, PluginEngine};
use shipper_sls::RefreshingCredentials;
use shipper_sls::consumer::{Consumer, ConsumerConfig, ConsumerStats};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config_reload::{ConfigSource, Reloader, Running};
use crate::exit::{Failure, FailureExt as _};
use crate::lag::ShardLag;
use crate::metrics::Metrics;
use crate::pipeline::{PipelineOptions, ShardContext};
use crate::settings::{self, LogstoreTarget, Overrides, Settings};
use crate::topology;

/// When to print the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Syslog transport of `--syslog-address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyslogTransport {
    /// TCP, octet-counted frames (RFC 6587).
    Tcp,
    /// UDP datagrams (RFC 5426).
    Udp,
    /// TLS (RFC 5425).
    Tls,
}

/// Flags of `shipper run`. Everything can also be set in the config file; flags win.
/// Secrets are never flags: use the environment (SLS_AK_KEY, SHIPPER_HEC_TOKEN) or files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a config file, the seed scripts' environment variables are enough:\n  \
    SLS_ENDPOINT SLS_AK_ID SLS_AK_KEY SLS_PROJECT SLS_LOGSTORE SLS_CG [SLS_STS_TOKEN]\n\
    plus a sink flag, e.g. --hec-url https://splunk:8088 with SHIPPER_HEC_TOKEN set.\n\
    See examples/shipper.toml for every setting and docs/configuration.md for the table of keys."
)]
pub struct RunArgs {
    /// Formatter plugin: a WebAssembly component (`.wasm`). Overrides `[plugin] path`. Its
    /// compiled code is cached in `$XDG_CACHE_HOME/shipper/components`, else
    /// `~/.cache/shipper/components`, so a restart skips compiling it; `[plugin] cache_dir`
    /// moves the cache, `compile_cache = false` turns it off.
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// TOML config file (see examples/shipper.toml).
    #[arg(long, short = 'c', value_name = "FILE", env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus `/metrics` and `/health` on this address, e.g. `127.0.0.1:9598`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// This consumer's name in the group (default `<group>-<hostname>-<pid>`).
    #[arg(long, value_name = "NAME")]
    pub consumer_name: Option<String>,
    /// Dead-letter file (JSON lines); default `shipper-dead-letter.jsonl`.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Splunk HEC base URL when the config has no `[sink]`, e.g. `https://splunk:8088`
    /// (token from SHIPPER_HEC_TOKEN).
    #[arg(long, value_name = "URL", conflicts_with = "syslog_address")]
    pub hec_url: Option<String>,
    /// Syslog receiver `host:port` when the config has no `[sink]`.
    #[arg(long, value_name = "HOST:PORT")]
    pub syslog_address: Option<String>,
    /// Syslog transport with `--syslog-address`.
    #[arg(
        long,
        value_enum,
        default_value_t = SyslogTransport::Tcp,
        requires = "syslog_address"
    )]
    pub syslog_transport: SyslogTransport,
    /// One-line progress summary every few seconds on stderr.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Seconds between progress lines.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress_interval: u64,
    /// How long a shutdown waits for in-flight deliveries before giving up on them (they
    /// stay uncommitted and are re-delivered after a restart).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = settings::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Runs `shipper run`.
pub async fn execute(args: RunArgs) -> Result<(), Failure> {
    let source = ConfigSource {
        path: args.config.clone(),
        overrides: overrides(&args),
    };
    let loaded = source.load().config_error()?;
    let settings = &loaded.settings;
    crate::telemetry::apply_config_level(settings.log_level.as_deref());
    tracing::info!(config = ?settings::describe(settings), "starting");

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    // One set of SLS retry counters per consumer-group membership, read by /metrics.
    let sls_stats: Vec<(LogstoreTarget, Arc<ConsumerStats>)> = settings
        .source
        .logstores
        .iter()
        .map(|t| (t.clone(), Arc::new(ConsumerStats::new())))
        .collect();
    let metrics = Metrics::new(
        Vec::new(),
        Vec::new(),
        sls_stats
            .iter()
            .map(|(t, stats)| (t.label(), stats.clone()))
            .collect(),
    );
    // Sinks (no I/O yet), then the plugins, each self-tested against the renderers of its
    // sinks: a bad plugin, config or payload kind fails here, before SLS is touched.
    let engine = PluginEngine::with_settings(EngineSettings {
        compile_cache: settings.plugin_groups()[0].0.plugin.compile_cache.clone(),
        ..EngineSettings::default()
    })
    .context("cannot start the plugin runtime")
    .runtime_error()?;
    let sink_shutdown = CancellationToken::new();
    let built = topology::build(settings, &engine, &metrics, &sink_shutdown, 1, &[])
        .await
        .config_error()?;
    metrics.config_published(1, built.sink_views(), built.slots());
    topology::check_sinks(&built.sinks).await.unavailable()?;

    // The credentials every SLS client signs with, refreshed in the background: a provider
    // that cannot give any stops the start (its error names the key and the fix).
    let credentials = super::sls::start_credentials(&settings.source).await?;
    metrics.set_credentials(credentials.provider_name(), credentials.stats().clone());

    let mut background = JoinSet::new();
    background.spawn(crate::heap::trim_periodically(shutdown.clone()));
    if let Some(addr) = &settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| {
                format!("cannot listen for metrics on {addr} (config key `metrics.listen`)")
            })
            .config_error()?;
        if let Ok(local) = listener.local_addr() {
            tracing::info!(addr = %local, "serving /metrics and /health");
        }
        background.spawn(crate::metrics_server::serve(
            listener,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    let progress = match args.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if progress {
        background.spawn(crate::progress::run(
            metrics.clone(),
            Duration::from_secs(args.progress_interval.max(1)),
            shutdown.clone(),
        ));
    }

    let ledger = open_ledger(settings)?;
    let (publish, topology) = tokio::sync::watch::channel(built.topology.clone());
    if let Some(ledger) = &ledger
        && let Some(interval) = settings.ledger.as_ref().and_then(|l| l.watermark_interval)
    {
        background.spawn(crate::ledger::watermark::run(
            ledger.clone(),
            interval,
            topology.clone(),
            shutdown.clone(),
        ));
    }
    let mut consumers = JoinSet::new();
    // One budget for every shard of every logstore.
    let budget = shipper_sls::MemoryBudget::with_shard_state(
        settings.source.max_buffer_bytes,
        crate::pipeline::SHARD_STATE_BYTES,
    );
    metrics.set_memory_budget(budget.clone());
    // What a shard's sends may hold; its reader reads ahead with the rest of its share.
    // Sized at start: a reload that grows the batches makes sends wait for memory sooner,
    // it does not take the budget further.
    let options = PipelineOptions::default();
    let memory = ShardMemory {
        budget,
        send_room: built.topology.send_room_bytes(options.max_in_flight),
    };
    for (target, stats) in sls_stats {
        let consumer = join_group(settings, &target, stats, &credentials, &memory).await?;
        metrics.zero_failure_series(&target.label());
        let ctx = Arc::new(ShardContext {
            lag: ShardLag::new(&target.project, &target.logstore, &metrics),
            target,
            topology: topology.clone(),
            metrics: metrics.clone(),
            options: options.clone(),
            ledger: ledger.clone(),
        });
        background.spawn(
            ctx.lag
                .clone()
                .sample(consumer.client().clone(), shutdown.clone()),
        );
        consumers.spawn(consume(ctx, consumer, shutdown.clone()));
    }
    // Always running: SIGHUP reloads even when no file is watched (and without a handler
    // SIGHUP would terminate the process).
    background.spawn(
        Reloader {
            source,
            engine,
            metrics: metrics.clone(),
            sink_shutdown: sink_shutdown.clone(),
            publish,
            running: Running { loaded, built },
        }
        .run(shutdown.clone()),
    );

    // Normally we wait for a signal; a consumer that ends on its own (its group membership
    // failed for good) stops everything, with an error exit.
    let failed = tokio::select! {
        // On a signal the consumers end too (they watch `shutdown`); when both are ready by
        // the time this is polled, the signal must win or a clean stop exits 1.
        biased;
        () = shutdown.cancelled() => false,
        Some(done) = consumers.join_next() => {
            tracing::error!(outcome = ?done.map(|_| "ended"), "a consumer stopped unexpectedly; shutting down");
            shutdown.cancel();
            true
        }
    };
    shut_down(consumers, background, &sink_shutdown, args.shutdown_timeout).await;
    let t = &metrics.totals;
    tracing::info!(
        logs_in = t.logs_in.load(Ordering::Relaxed),
        events_out = t.events_out.load(Ordering::Relaxed),
        dead_lettered = t.dead_lettered.load(Ordering::Relaxed),
        "stopped"
    );
    if failed {
        return Err(anyhow!(
            "stopped because a consumer-group membership ended unexpectedly (see the ERROR lines above)"
        ))
        .runtime_error();
    }
    Ok(())
}

/// Opens `[ledger]` (none when disabled): a file that cannot be created is a configuration
/// error, like a dead-letter file.
fn open_ledger(settings: &Settings) -> Result<Option<crate::ledger::Ledger>, Failure> {
    let Some(s) = &settings.ledger else {
        return Ok(None);
    };
    let hook = std::env::var(crate::ledger::TEST_DROP_ENV).ok();
    let ledger = crate::ledger::Ledger::open(s, hook.as_deref()).config_error()?;
    tracing::info!(path = %s.path.display(), watermark_interval = ?s.watermark_interval, "completeness ledger");
    Ok(Some(ledger))
}

/// The flags that override the config file (never secrets).
fn overrides(args: &RunArgs) -> Overrides {
    Overrides {
        plugin: args.plugin.clone(),
        metrics_listen: args.metrics_listen.clone(),
        consumer_name: args.consumer_name.clone(),
        dead_letter: args.dead_letter.clone(),
        sink: sink_from_flags(args),
    }
}

/// The memory budget every consumer's shards share, and the part of a shard's share its
/// reader leaves to the pipeline.
struct ShardMemory {
    budget: Arc<shipper_sls::MemoryBudget>,
    send_room: usize,
}

/// Joins the consumer group on one logstore. A bad endpoint is a config error (exit 2); an
/// SLS that cannot be reached or refuses the credentials is exit 3.
async fn join_group(
    settings: &Settings,
    target: &LogstoreTarget,
    stats: Arc<ConsumerStats>,
    credentials: &RefreshingCredentials,
    memory: &ShardMemory,
) -> Result<Consumer, Failure> {
    let s = &settings.source;
    let client = super::sls::sls_client(s, target, credentials)?;
    let consumer_name = s.consumer_name();
    let mut config = ConsumerConfig::new(
        target.logstore.clone(),
        s.consumer_group.clone(),
        consumer_name.clone(),
    );
    config.heartbeat_interval = s.heartbeat_interval;
    config.timeout = s.timeout;
    config.fetch_count = s.fetch_count;
    config.query = s.query.clone();
    config.start = s.start.cursor_position();
    config.stats = Some(stats);
    config.budget = Some(memory.budget.clone());
    config.send_room_bytes = memory.send_room;
    let consumer = Consumer::join(client, config).await.map_err(|e| {
        let config_problem = e.is_config();
        let failure = anyhow::Error::new(e).context(format!(
            "cannot join consumer group {:?} on {} at {}",
            s.consumer_group,
            target.label(),
            s.endpoint
        ));
        if config_problem {
            Failure {
                kind: crate::exit::FailureKind::Config,
                error: failure,
            }
        } else {
            Failure {
                kind: crate::exit::FailureKind::Unavailable,
                error: failure,
            }
        }
    })?;
    tracing::info!(
        project = %target.project,
        logstore = %target.logstore,
        group = %s.consumer_group,
        consumer = %consumer_name,
        "joined consumer group"
    );
    Ok(consumer)
}

/// Stops the consumers (each drains and commits its shards), giving in-flight deliveries
/// `grace` before cancelling them (they stay uncommitted), then the background tasks.
async fn shut_down(
    mut consumers: JoinSet<()>,
    mut background: JoinSet<()>,
    sink_shutdown: &CancellationToken,
    grace: Duration,
) {
    tracing::info!("shutting down: finishing in-flight batches and committing checkpoints");
    let give_up = {
        let sink_shutdown = sink_shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::warn!(
                timeout = ?grace,
                "sink still busy after the shutdown timeout; cancelling in-flight deliveries (they will be re-delivered after restart)"
            );
            sink_shutdown.cancel();
        })
    };
    while let Some(res) = consumers.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "a consumer task panicked");
        }
    }
    give_up.abort();
    sink_shutdown.cancel();
    background.shutdown().await;
}

/// Accepts leases and runs a pipeline per shard until shutdown, then leaves the group.
async fn consume(ctx: Arc<ShardContext>, mut consumer: Consumer, shutdown: CancellationToken) {
    let mut shards = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            lease = consumer.next_lease() => match lease {
                Some(lease) => {
                    shards.spawn(crate::pipeline::run_shard(ctx.clone(), lease, consumer.checkpointer()));
                }
                None => {
                    tracing::error!(logstore = %ctx.target.label(), "the consumer-group worker stopped handing out shards");
                    break;
                }
            },
            Some(done) = shards.join_next(), if !shards.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a shard task panicked; its shard is released and re-read from the last checkpoint");
                }
            }
        }
    }
    let drain = async {
        while let Some(done) = shards.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a shard task panicked during shutdown");
            }
        }
    };
    let (report, ()) = tokio::join!(consumer.shutdown(), drain);
    if !report.unreleased.is_empty() {
        tracing::warn!(shards = ?report.unreleased, "shards not released in time; they resume from their last checkpoint");
    }
}

/// Builds a `[sink]` table from `--hec-url` / `--syslog-address` (the token comes from the
/// environment inside the HEC sink).
fn sink_from_flags(args: &RunArgs) -> Option<toml::Table> {
    let mut t = toml::Table::new();
    if let Some(url) = &args.hec_url {
        t.insert("type".into(), "hec".into());
        t.insert("endpoint".into(), url.clone().into());
    } else if let Some(addr) = &args.syslog_address {
        t.insert("type".into(), "syslog".into());
        t.insert("address".into(), addr.clone().into());
        let transport = match args.syslog_transport {
            SyslogTransport::Tcp => "tcp",
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tls => "tls",
        };
        t.insert("transport".into(), transport.into());
    } else {
        return None;
    }
    Some(t)
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the SIGTERM handler");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
        shutdown.cancel();
        // A second signal means "now": exit without waiting (nothing committed is lost;
        // uncommitted logs are re-delivered after restart).
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("second signal: exiting immediately");
        std::process::exit(130);
    });
}
