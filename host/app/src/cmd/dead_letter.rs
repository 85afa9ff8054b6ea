//! `shipper dead-letter replay FILE`: sends a dead-letter file's logs again through the
//! (fixed) plugin to the configured sinks; what fails again goes to a new dead-letter file.
//! The input is only read. Wiring only: reading the file is [`crate::redrive`], delivery
//! the shard pipeline of `shipper run`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::anyhow;
use futures::StreamExt as _;
use shipper_sls::consumer::{ReadEvent, Revocation};
use shipper_sls::cursor::Cursor;

use crate::exit::{Failure, FailureExt as _};
use crate::lag::ShardLag;
use crate::pipeline::replay::{
    DEFAULT_MARKER_FIELD, ReplayMarker, ReplayOptions, check_marker_key,
};
use crate::pipeline::shard::ShardIo;
use crate::pipeline::{PipelineOptions, ShardContext, Topology};
use crate::redrive::{self, Handled};
use crate::settings::{LogstoreTarget, Overrides};

/// `shipper dead-letter …`.
#[derive(Debug, clap::Args)]
pub struct DeadLetterArgs {
    /// What to do with a dead-letter file.
    #[command(subcommand)]
    pub command: DeadLetterCommand,
}

/// The `dead-letter` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// Send a dead-letter file's logs again through the (fixed) plugin to the sinks; what
    /// fails again goes to a new dead-letter file. The input file is never changed.
    Replay(RedriveArgs),
}

/// Flags of `shipper dead-letter replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each entry goes to the sink named in its `sink` key (a sink refused it), or to
every configured sink when it has none (the plugin or the host failed it). Events get the
original logs' event IDs (with `event_id = true`) and the replay marker.

Example:
  shipper dead-letter replay shipper-dead-letter.jsonl -c shipper.toml --plugin fixed.wasm

Exit: 0 when every entry was delivered; 1 when some failed again (see the new file);
2 when FILE is not a dead-letter file (nothing is sent) or the flags or config are wrong;
3 when a sink cannot be reached at start."
)]
pub struct RedriveArgs {
    /// The dead-letter file (JSON lines, as `shipper run` writes it).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// TOML config file, the one `shipper run` uses.
    #[arg(long, short = 'c', value_name = "FILE", env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Formatter plugin instead of `[plugin] path` (the fixed version).
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Where entries that fail again go (default: FILE's name with `.redrive.jsonl`, or
    /// `.redrive-2.jsonl` and so on when taken; never FILE itself).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// HEC indexed field / syslog SD PARAM that marks re-driven events.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_MARKER_FIELD)]
    pub marker_field: String,
    /// The marker's value (default: `dead-letter:` and FILE's name).
    #[arg(long, value_name = "TEXT")]
    pub marker_value: Option<String>,
    /// Send re-driven events without a marker.
    #[arg(long, conflicts_with_all = ["marker_field", "marker_value"])]
    pub no_marker: bool,
}

/// Runs `shipper dead-letter …`.
pub async fn execute(args: DeadLetterArgs) -> Result<(), Failure> {
    match args.command {
        DeadLetterCommand::Replay(args) => redrive(args).await,
    }
}

async fn redrive(args: RedriveArgs) -> Result<(), Failure> {
    if !args.no_marker {
        check_marker_key(&args.marker_field)
            .map_err(|e| anyhow!("--marker-field: {e}"))
            .config_error()?;
    }
    // The whole file is checked before anything is built or sent.
    let entries = redrive::read(&args.file).config_error()?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| redrive::default_output(&args.file));
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    if same(&output, &args.file) {
        return Err(anyhow!(
            "--output {} is the input file: give another file (the input is never changed)",
            output.display()
        ))
        .config_error();
    }
    let d = super::replay::delivery(
        args.config.clone(),
        Overrides {
            plugin: args.plugin.clone(),
            ..Overrides::default()
        },
        |settings| {
            for sink in &mut settings.sinks {
                sink.dead_letter.clone_from(&output);
            }
            Ok(())
        },
    )
    .await?;
    let topo = d.built.topology.clone();
    let names: Vec<&str> = topo.sinks.iter().map(|s| s.name.as_str()).collect();
    if let Some(unknown) = entries
        .iter()
        .filter_map(|e| e.sink.as_deref())
        .find(|s| !names.contains(s))
    {
        return Err(anyhow!(
            "{} has entries for sink `{unknown}`, but the configuration's sinks are {names:?}: re-drive it with the config that names that sink",
            args.file.display()
        ))
        .config_error();
    }
    tracing::info!(file = %args.file.display(), entries = entries.len(), output = %output.display(), "re-driving dead letters");

    let marker = (!args.no_marker).then(|| ReplayMarker {
        key: args.marker_field.clone(),
        value: args.marker_value.clone().unwrap_or_else(|| {
            format!(
                "dead-letter:{}",
                args.file.file_name().unwrap_or_default().to_string_lossy()
            )
        }),
    });
    let options = PipelineOptions {
        replay: Some(Arc::new(ReplayOptions {
            marker,
            log_time: None,
            originals: Some(Arc::new(
                entries.iter().map(|e| e.original.clone()).collect(),
            )),
        })),
        ..PipelineOptions::default()
    };
    // One pass per destination: the entries of one sink, then those for every sink.
    let mut destinations: Vec<Option<&str>> = entries.iter().map(|e| e.sink.as_deref()).collect();
    destinations.sort_unstable();
    destinations.dedup();
    let mut incomplete = 0usize;
    for dest in destinations {
        let part: Vec<(usize, &redrive::Redrive)> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.sink.as_deref() == dest)
            .collect();
        let topology = match dest {
            Some(name) => Arc::new(only_sink(&topo, name)),
            None => topo.clone(),
        };
        let first = &part[0].1.original;
        let target = LogstoreTarget {
            project: first.project.clone(),
            logstore: first.logstore.clone(),
        };
        let (_publish, rx) = tokio::sync::watch::channel(topology);
        let ctx = Arc::new(ShardContext {
            lag: ShardLag::new(&target.project, &target.logstore, &d.metrics),
            target,
            topology: rx,
            metrics: d.metrics.clone(),
            options: options.clone(),
            // The positions here are made up (one group per entry), not SLS cursors.
            ledger: None,
        });
        let last = Cursor(part.last().map_or(0, |(k, _)| *k as i64 + 1));
        let batches = redrive::batches(&part);
        let start = batches[0].cursor;
        let handled = Arc::new(Handled::default());
        let io = ShardIo {
            shard: first.shard,
            start,
            events: futures::stream::iter(batches.into_iter().map(|b| Ok(ReadEvent::Batch(b))))
                .boxed(),
            revocation: Arc::new(Revocation::new()),
            checkpoints: Arc::new(handled.clone()),
            memory: None,
        };
        crate::pipeline::shard::run(ctx, io).await;
        if handled.get() != Some(last) {
            incomplete += part.len();
        }
    }
    d.sink_shutdown.cancel();
    let t = &d.metrics.totals;
    let failed = t.dead_lettered.load(Ordering::Relaxed);
    let sent = t.events_out.load(Ordering::Relaxed);
    if failed == 0 && std::fs::metadata(&output).is_ok_and(|m| m.len() == 0) {
        // Nothing failed again: no empty file left behind.
        let _ = std::fs::remove_file(&output);
    }
    tracing::info!(
        entries = entries.len(),
        events_out = sent,
        failed_again = failed,
        "re-drive finished"
    );
    if incomplete > 0 {
        return Err(anyhow!(
            "re-drive incomplete: {incomplete} entries were not delivered (a sink stayed down or the run was stopped); rerun it"
        ))
        .runtime_error();
    }
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} entries failed again; they are in {} (the input {} is unchanged)",
            entries.len(),
            output.display(),
            args.file.display()
        ))
        .runtime_error();
    }
    Ok(())
}

/// `topo` with only sink `name` (and its plugin).
fn only_sink(topo: &Topology, name: &str) -> Topology {
    let mut sink = topo
        .sinks
        .iter()
        .find(|s| s.name == name)
        .expect("checked above")
        .clone();
    let format = topo.formats[sink.format].clone();
    sink.format = 0;
    Topology {
        generation: topo.generation,
        sinks: vec![sink],
        formats: vec![format],
        dead_letters: topo.dead_letters.clone(),
    }
}
