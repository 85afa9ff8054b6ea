//! `shipper replay --from T1 --to T2`: sends the logs SLS received in a window again,
//! through the configured plugin and sinks, several shards at a time, without touching the
//! consumer group (docs/replay.md). Wiring only: the window, plan, reader, state and
//! progress line are [`crate::replay`]; delivery is the shard pipeline of `shipper run`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use shipper_runtime::{EngineSettings, PluginEngine};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config_reload::{ConfigSource, Loaded};
use crate::exit::{Failure, FailureExt as _};
use crate::lag::ShardLag;
use crate::metrics::Metrics;
use crate::pipeline::replay::{
    DEFAULT_MARKER_FIELD, ReplayMarker, ReplayOptions, check_marker_key,
};
use crate::pipeline::shard::ShardIo;
use crate::pipeline::{PipelineOptions, ShardContext};
use crate::replay::reader::RangeRead;
use crate::replay::state::{self, ReplayCheckpoints, State, Tracker};
use crate::replay::{plan, progress};
use crate::settings::Overrides;
use crate::topology::{self, Built};
use crate::window::WindowArgs;

/// Flags of `shipper replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The window is by SLS receive time: every shard is read from GetCursor(FROM) up to,
not including, GetCursor(TO), exactly what SLS received in [FROM, TO). The consumer group
is never joined: a running `shipper run` keeps its shards and checkpoints.

Replayed events carry the same event IDs as the originals (with `event_id = true`) and a
marker field (HEC indexed field / syslog SD PARAM `shipper_replay`, value FROM/TO), so a
SIEM can keep or drop them; see README \"Replay\" and docs/replay.md.

Examples:
  shipper replay -c shipper.toml --from 2025-06-03T10:00:00Z --to 2025-06-03T12:00:00Z
  shipper replay -c shipper.toml --from 1748944800 --to 1748952000 --state replay.json

Exit: 0 when every shard reached the end of the window; 1 when one did not (interrupted,
a shard could not be read: rerun with the same --state to resume); 2 for bad flags, a
window before the logstore's retention, an unusable state file; 3 when SLS or a sink
cannot be reached at start."
)]
pub struct ReplayArgs {
    /// `--from` and `--to`.
    #[command(flatten)]
    pub window: WindowArgs,
    /// TOML config file, the one `shipper run` uses (see examples/shipper.toml).
    #[arg(long, short = 'c', value_name = "FILE", env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Formatter plugin instead of `[plugin] path` (e.g. a fixed version for a re-parse).
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Dead-letter file instead of the configured one.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Keep each shard's acknowledged position in FILE (written atomically as sends
    /// settle): a rerun with the same FILE and window resumes where this one stopped.
    /// A missing FILE starts the window; one made for another window or logstore is
    /// refused.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Shards replayed at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Also require the log's own `__time__` to be in the window: logs SLS received in the
    /// window but stamped outside it are not sent (counted as dropped).
    #[arg(long)]
    pub filter_log_time: bool,
    /// HEC indexed field / syslog SD PARAM that marks replayed events.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_MARKER_FIELD)]
    pub marker_field: String,
    /// The marker's value (default: the window, `FROM/TO` in RFC 3339).
    #[arg(long, value_name = "TEXT")]
    pub marker_value: Option<String>,
    /// Send replayed events without a marker.
    #[arg(long, conflicts_with_all = ["marker_field", "marker_value"])]
    pub no_marker: bool,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress_interval: u64,
}

/// The settings, plugin engine, metrics and built sinks+plugins a one-off command sends
/// through: `shipper run`'s generation 1, with the sinks checked.
pub(crate) struct Delivery {
    pub loaded: Loaded,
    pub metrics: Arc<Metrics>,
    pub built: Built,
    pub sink_shutdown: CancellationToken,
}

/// Loads the config with `overrides`, lets `adjust` change the settings (the dead-letter
/// files of a re-drive), builds the sinks and plugins and checks the sinks.
pub(crate) async fn delivery(
    config: Option<PathBuf>,
    overrides: Overrides,
    adjust: impl FnOnce(&mut crate::settings::Settings) -> Result<(), Failure>,
) -> Result<Delivery, Failure> {
    let source = ConfigSource {
        path: config,
        overrides,
    };
    let mut loaded = source.load().config_error()?;
    adjust(&mut loaded.settings)?;
    let settings = &loaded.settings;
    crate::telemetry::apply_config_level(settings.log_level.as_deref());
    let metrics = Metrics::new(Vec::new(), Vec::new(), Vec::new());
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
    Ok(Delivery {
        loaded,
        metrics,
        built,
        sink_shutdown,
    })
}

/// Runs `shipper replay`.
pub async fn execute(args: ReplayArgs) -> Result<(), Failure> {
    let now = jiff::Timestamp::now().as_second();
    let window = args.window.parse(now).config_error()?;
    if !args.no_marker {
        check_marker_key(&args.marker_field)
            .map_err(|e| anyhow!("--marker-field: {e}"))
            .config_error()?;
    }
    let d = delivery(
        args.config.clone(),
        Overrides {
            plugin: args.plugin.clone(),
            dead_letter: args.dead_letter.clone(),
            ..Overrides::default()
        },
        |_| Ok(()),
    )
    .await?;
    let settings = &d.loaded.settings;
    let credentials = super::sls::start_credentials(&settings.source).await?;

    // The plan: each logstore's retention, then each shard's range, or the state file's.
    let labels: Vec<String> = settings
        .source
        .logstores
        .iter()
        .map(|t| t.label())
        .collect();
    let mut fresh = State::new(window, &labels);
    let resumed = match &args.state {
        Some(path) => state::load(path, &fresh).config_error()?,
        None => None,
    };
    let mut clients = Vec::new();
    for target in &settings.source.logstores {
        let client = super::sls::sls_client(&settings.source, target, &credentials)?;
        let ttl = client
            .get_logstore_ttl_days(&target.logstore)
            .await
            .map_err(|e| sls_failure(e, &format!("cannot read logstore {}", target.label())))?;
        window
            .check_retention(&target.label(), ttl, now)
            .config_error()?;
        if resumed.is_none() {
            let shards = plan::shards(&client, &target.logstore, window)
                .await
                .map_err(|e| {
                    sls_failure(
                        e,
                        &format!("cannot find the window's cursors in {}", target.label()),
                    )
                })?;
            fresh.logstores.insert(target.label(), shards);
        }
        clients.push((target.clone(), client));
    }
    let resuming = resumed.is_some();
    let tracker = Tracker::new(args.state.clone(), resumed.unwrap_or(fresh));
    // Before anything is sent: a state file that cannot be written stops the replay here.
    tracker.persist().await.config_error()?;
    let start = tracker.snapshot().await;
    let counts = progress::counts(&start);
    tracing::info!(
        window = %window,
        logstores = ?labels,
        shards = counts.shards,
        log_groups = counts.groups,
        already_acknowledged = counts.groups_done,
        resumed = resuming,
        "replay starting"
    );

    let marker = (!args.no_marker).then(|| ReplayMarker {
        key: args.marker_field.clone(),
        value: args.marker_value.clone().unwrap_or_else(|| window.id()),
    });
    let options = PipelineOptions {
        replay: Some(Arc::new(ReplayOptions {
            marker,
            log_time: args.filter_log_time.then(|| window.log_time_range()),
            originals: None,
        })),
        ..PipelineOptions::default()
    };
    let (_publish, topology_rx) = tokio::sync::watch::channel(d.built.topology.clone());
    let stop = CancellationToken::new();
    spawn_signal_handler(stop.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(usize::from(args.parallel)));
    let mut shards = JoinSet::new();
    for (target, client) in clients {
        let label = target.label();
        let ctx = Arc::new(ShardContext {
            lag: ShardLag::new(&target.project, &target.logstore, &d.metrics),
            target: target.clone(),
            topology: topology_rx.clone(),
            metrics: d.metrics.clone(),
            options: options.clone(),
            // A replay sends again what the live run already accounted for (or not): it
            // is not evidence of the live delivery, so it stays out of the ledger
            // (docs/ledger.md).
            ledger: None,
        });
        let checkpoints = Arc::new(ReplayCheckpoints {
            tracker: tracker.clone(),
            logstore: label.clone(),
        });
        for (&shard, s) in &start.logstores[&label] {
            let (acked, end) = plan::range(s);
            if acked >= end {
                continue;
            }
            let read = RangeRead {
                client: client.clone(),
                logstore: target.logstore.clone(),
                shard,
                start: acked,
                end,
                count: settings.source.fetch_count,
                query: settings.source.query.clone(),
            };
            let (ctx, checkpoints, slots, stop) = (
                ctx.clone(),
                checkpoints.clone(),
                slots.clone(),
                stop.clone(),
            );
            shards.spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                if stop.is_cancelled() {
                    return;
                }
                let revocation = Arc::new(shipper_sls::consumer::Revocation::new());
                let revoke = {
                    let (stop, revocation) = (stop.clone(), revocation.clone());
                    tokio::spawn(async move {
                        stop.cancelled().await;
                        revocation.revoke(shipper_sls::consumer::RevokeReason::Shutdown);
                    })
                };
                let io = ShardIo {
                    shard,
                    start: acked,
                    events: read.stream(revocation.clone()),
                    revocation,
                    checkpoints,
                    memory: None,
                };
                let end = crate::pipeline::shard::run(ctx, io).await;
                revoke.abort();
                tracing::debug!(shard, end = end.as_str(), "replay of the shard ended");
            });
        }
    }
    let progress_stop = CancellationToken::new();
    if args.progress_interval > 0 {
        tokio::spawn(progress::run(
            tracker.clone(),
            d.metrics.clone(),
            Duration::from_secs(args.progress_interval),
            progress_stop.clone(),
        ));
    }
    while let Some(done) = shards.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "a replay shard task panicked");
        }
    }
    progress_stop.cancel();
    d.sink_shutdown.cancel();

    let end = tracker.snapshot().await;
    let counts = progress::counts(&end);
    let t = &d.metrics.totals;
    tracing::info!(
        shards_done = counts.shards_done,
        shards = counts.shards,
        logs_in = t.logs_in.load(Ordering::Relaxed),
        events_out = t.events_out.load(Ordering::Relaxed),
        dropped = t.dropped.load(Ordering::Relaxed),
        dead_lettered = t.dead_lettered.load(Ordering::Relaxed),
        "replay finished"
    );
    if counts.shards_done == counts.shards {
        return Ok(());
    }
    let short: Vec<String> = end
        .logstores
        .iter()
        .flat_map(|(l, m)| {
            m.iter().filter_map(move |(shard, s)| {
                let (acked, end) = plan::range(s);
                (acked < end)
                    .then(|| format!("{l} shard {shard} ({} LogGroups left)", end.0 - acked.0))
            })
        })
        .collect();
    let resume = match &args.state {
        Some(p) => format!("rerun with --state {} to resume", p.display()),
        None => "rerun with --state FILE to make the next run resumable".to_owned(),
    };
    Err(anyhow!(
        "replay incomplete: {} of {} shards did not reach the end of the window: {}; {resume}",
        counts.shards - counts.shards_done,
        counts.shards,
        short.join(", ")
    ))
    .runtime_error()
}

/// An SLS error at start: a configuration problem (no such logstore, bad name) is exit 2,
/// anything else (unreachable, refused credentials) exit 3.
pub(crate) fn sls_failure(e: shipper_sls::SlsError, what: &str) -> Failure {
    let config = e.is_config() || e.code().is_some_and(|c| c.contains("NotExist"));
    let error = anyhow::Error::new(e).context(what.to_owned());
    Failure {
        kind: if config {
            crate::exit::FailureKind::Config
        } else {
            crate::exit::FailureKind::Unavailable
        },
        error,
    }
}

/// SIGINT/SIGTERM: stop pulling, let the sends in flight settle and record them, exit 1 (a
/// second signal exits at once, like `shipper run`).
fn spawn_signal_handler(stop: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            tracing::error!("cannot install the SIGTERM handler");
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: finishing the sends in flight, then stopping");
        stop.cancel();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        std::process::exit(130);
    });
}
