//! `shipper run`: build the plugin, the sink and one consumer-group membership per logstore,
//! run a pipeline task per assigned shard, and shut everything down cleanly on SIGINT/SIGTERM.
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

use anyhow::{Context as _, bail};
use shipper_runtime::{EngineSettings, PluginEngine};
use shipper_sinks::{SinkConfig, SinkErrorKind};
use shipper_sls::api::logs::CursorPosition;
use shipper_sls::client::{Client, ClientConfig};
use shipper_sls::consumer::{Consumer, ConsumerConfig, ConsumerStats};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::DeadLetter;
use crate::generation::PluginSlot;
use crate::metrics::Metrics;
use crate::pipeline::{PassthroughKind, PipelineOptions, ShardContext};
use crate::settings::{self, FileConfig, Overrides, Settings, StartPosition};

/// Name of the one sink (the `route` plugins may name).
pub const SINK_NAME: &str = "default";

/// Flags of `shipper run`. Everything can also be set in the config file; flags win.
/// Secrets are never flags: use the environment (SLS_AK_KEY, SHIPPER_HEC_TOKEN) or files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a config file, the seed scripts' environment variables are enough:\n  \
    SLS_ENDPOINT SLS_AK_ID SLS_AK_KEY SLS_PROJECT SLS_LOGSTORE SLS_CG [SLS_STS_TOKEN]\n\
    plus a sink flag, e.g. --hec-url https://splunk:8088 with SHIPPER_HEC_TOKEN set.\n\
    See examples/shipper.toml for every setting."
)]
pub struct RunArgs {
    /// Formatter plugin: a WebAssembly component (`.wasm`). Overrides `[plugin] path`.
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
        value_name = "tcp|udp|tls",
        default_value = "tcp",
        requires = "syslog_address"
    )]
    pub syslog_transport: String,
    /// One-line progress summary every few seconds: `auto` (when stderr is a terminal),
    /// `always` or `never`.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub progress: String,
    /// Seconds between progress lines.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress_interval: u64,
    /// How long a shutdown waits for in-flight deliveries before giving up on them (they
    /// stay uncommitted and are re-delivered after a restart).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = settings::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Runs `shipper run`.
pub async fn execute(args: RunArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => settings::read_file(path)?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        plugin: args.plugin.clone(),
        metrics_listen: args.metrics_listen.clone(),
        consumer_name: args.consumer_name.clone(),
        dead_letter: args.dead_letter.clone(),
        sink: sink_from_flags(&args)?,
    };
    let settings = settings::resolve(file, &|k| std::env::var(k).ok(), overrides)?;
    tracing::info!(config = ?settings::describe(&settings), "starting");

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    // Sink (no I/O yet), then the plugin, self-tested against the sink's renderer: a bad
    // plugin, config or payload kind fails here, before we touch SLS.
    let sink_config: SinkConfig = toml::Value::Table(settings.sink.clone())
        .try_into()
        .map_err(|e| anyhow::anyhow!("config key `sink`: {e}"))?;
    let passthrough = match &sink_config {
        SinkConfig::Hec(_) => PassthroughKind::Hec,
        SinkConfig::Syslog(_) => PassthroughKind::Syslog,
    };
    let sink_shutdown = CancellationToken::new();
    let sink = sink_config
        .build(SINK_NAME, sink_shutdown.clone())
        .await
        .context("cannot set up the sink")?;
    let engine = PluginEngine::with_settings(EngineSettings {
        compile_cache: settings.plugin.compile_cache.clone(),
        ..EngineSettings::default()
    })
    .context("cannot start the plugin runtime")?;
    let generation =
        crate::reload::load_generation(&engine, &settings.plugin, sink.as_ref()).await?;
    tracing::info!(plugin = %generation.label(), path = %generation.path.display(), "plugin loaded and self-tested");
    let plugins = PluginSlot::new(generation);

    match sink.healthcheck().await {
        Ok(()) => tracing::info!(sink = SINK_NAME, "sink is healthy"),
        Err(e) if matches!(e.kind, SinkErrorKind::Config | SinkErrorKind::Tls) => {
            return Err(anyhow::Error::new(e).context("sink start-up check failed"));
        }
        Err(e) => tracing::warn!(
            sink = SINK_NAME,
            error = %e,
            "sink is not reachable yet; logs will wait (nothing is dropped) until it is"
        ),
    }

    let dead_letter = DeadLetter::open(&settings.dead_letter_path)
        .await
        .with_context(|| {
            format!(
                "cannot open the dead-letter file {}",
                settings.dead_letter_path.display()
            )
        })?;
    // One set of SLS retry counters per consumer-group membership, read by /metrics.
    let sls_stats: Vec<Arc<ConsumerStats>> = settings
        .source
        .logstores
        .iter()
        .map(|_| Arc::new(ConsumerStats::new()))
        .collect();
    let metrics = Metrics::new(
        sink.metrics(),
        SINK_NAME,
        plugins.clone(),
        settings
            .source
            .logstores
            .iter()
            .zip(&sls_stats)
            .map(|(t, stats)| (format!("{}/{}", t.project, t.logstore), stats.clone()))
            .collect(),
    );
    let mut background = JoinSet::new();
    if let Some(addr) = &settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics and /health");
        background.spawn(crate::metrics_server::serve(
            listener,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    // Always running: SIGHUP reloads even when the file is not watched (and without a handler
    // SIGHUP would terminate the process).
    background.spawn(crate::reload::watch(
        engine.clone(),
        settings.plugin.clone(),
        plugins.clone(),
        sink.clone(),
        settings
            .plugin
            .watch
            .then_some(crate::reload::DEFAULT_WATCH_INTERVAL),
        shutdown.clone(),
    ));
    let progress = match args.progress.as_str() {
        "always" => true,
        "never" => false,
        "auto" => std::io::stderr().is_terminal(),
        other => bail!("--progress {other:?}: use auto, always or never"),
    };
    if progress {
        background.spawn(crate::progress::run(
            metrics.clone(),
            Duration::from_secs(args.progress_interval.max(1)),
            shutdown.clone(),
        ));
    }

    // One consumer-group membership per logstore.
    let mut consumers = JoinSet::new();
    for (target, stats) in settings.source.logstores.iter().zip(sls_stats) {
        let client = Client::new(ClientConfig::new(
            settings.source.endpoint.clone(),
            target.project.clone(),
            settings.source.credentials.clone(),
        ))
        .with_context(|| format!("cannot create an SLS client for project {}", target.project))?;
        let mut config = consumer_config(&settings, &target.logstore);
        config.stats = Some(stats);
        let consumer = Consumer::join(client, config).await.with_context(|| {
            format!(
                "cannot join consumer group {:?} on {}/{} at {}",
                settings.source.consumer_group,
                target.project,
                target.logstore,
                settings.source.endpoint
            )
        })?;
        tracing::info!(
            project = %target.project,
            logstore = %target.logstore,
            group = %settings.source.consumer_group,
            consumer = %settings.source.consumer_name,
            "joined consumer group"
        );
        let ctx = Arc::new(ShardContext {
            project: target.project.clone(),
            logstore: target.logstore.clone(),
            sink: sink.clone(),
            sink_name: SINK_NAME.to_owned(),
            plugins: plugins.clone(),
            dead_letter: dead_letter.clone(),
            metrics: metrics.clone(),
            options: PipelineOptions::default(),
            lag: crate::lag::ShardLag::new(&target.project, &target.logstore, &metrics),
            failure_policy: settings.plugin.failure_policy,
            passthrough,
        });
        background.spawn(
            ctx.lag
                .clone()
                .sample(consumer.client().clone(), shutdown.clone()),
        );
        consumers.spawn(consume(ctx, consumer, shutdown.clone()));
    }

    // Normally we wait for a signal; a consumer that ends on its own (its group membership
    // failed for good) stops everything, with an error exit.
    let mut failed = false;
    tokio::select! {
        // On a signal the consumers end too (they watch `shutdown`); when both are ready by
        // the time this is polled, the signal must win or a clean stop exits 1.
        biased;
        () = shutdown.cancelled() => {}
        Some(done) = consumers.join_next() => {
            tracing::error!(outcome = ?done.map(|_| "ended"), "a consumer stopped unexpectedly; shutting down");
            failed = true;
            shutdown.cancel();
        }
    }
    tracing::info!("shutting down: finishing in-flight batches and committing checkpoints");
    // Give in-flight deliveries the grace period, then cancel them (they stay uncommitted).
    let give_up = {
        let sink_shutdown = sink_shutdown.clone();
        let timeout = args.shutdown_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            tracing::warn!(
                ?timeout,
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
    let t = &metrics.totals;
    tracing::info!(
        logs_in = t.logs_in.load(Ordering::Relaxed),
        events_out = t.events_out.load(Ordering::Relaxed),
        dead_lettered = t.dead_lettered.load(Ordering::Relaxed),
        "stopped"
    );
    if failed {
        bail!(
            "stopped because a consumer-group membership ended unexpectedly (see the ERROR lines above)"
        );
    }
    Ok(())
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
                    tracing::error!(logstore = %ctx.logstore, "the consumer-group worker stopped handing out shards");
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

fn consumer_config(settings: &Settings, logstore: &str) -> ConsumerConfig {
    let s = &settings.source;
    let mut c = ConsumerConfig::new(logstore, s.consumer_group.clone(), s.consumer_name.clone());
    c.heartbeat_interval = s.heartbeat_interval;
    c.timeout = s.timeout;
    c.fetch_count = s.fetch_count;
    c.query = s.query.clone();
    c.start = match s.start {
        StartPosition::Begin => CursorPosition::Begin,
        StartPosition::End => CursorPosition::End,
        StartPosition::At(t) => CursorPosition::At(t),
    };
    c
}

/// Builds a `[sink]` table from `--hec-url` / `--syslog-address` (the token comes from the
/// environment inside the HEC sink).
fn sink_from_flags(args: &RunArgs) -> anyhow::Result<Option<toml::Table>> {
    let mut t = toml::Table::new();
    if let Some(url) = &args.hec_url {
        t.insert("type".into(), "hec".into());
        t.insert("endpoint".into(), url.clone().into());
    } else if let Some(addr) = &args.syslog_address {
        t.insert("type".into(), "syslog".into());
        t.insert("address".into(), addr.clone().into());
        t.insert("transport".into(), args.syslog_transport.clone().into());
    } else {
        return Ok(None);
    }
    Ok(Some(t))
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
