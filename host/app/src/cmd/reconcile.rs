//! `shipper reconcile --from T1 --to T2`: proves from the completeness ledger that every
//! LogGroup SLS received between T1 and T2 was acknowledged by every sink (delivered,
//! dead-lettered or dropped by the plugin), or names the exact cursor ranges that were not
//! (docs/ledger.md).
//!
//! Per shard of every configured logstore it asks SLS for GetCursor(T1) and GetCursor(T2)
//! (the same cursors a consumer starting at those times would use) and checks that the
//! window `[c1, c2)` is covered by the ledger's ranges of each sink. It only reads: no
//! checkpoint, no consumer group, no ledger is changed.
//!
//! Exit codes as the binary documents them: 0 every window covered; 1 a gap; 2 bad input
//! (T2 not after T1, an unreadable ledger, a bad config); 3 SLS cannot be reached.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use shipper_sls::api::logs::CursorPosition;

use crate::config_reload::ConfigSource;
use crate::exit::{Failure, FailureExt as _};
use crate::ledger::coverage::{self, Coverage};
use crate::settings::Overrides;
use crate::window::{WindowArgs, rfc3339};

/// Flags of `shipper reconcile`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Checks, per shard, that every LogGroup SLS received between --from and --to \
is covered by the ranges the sinks acknowledged, as recorded in the completeness ledger \
([ledger] path). Dead-lettered and plugin-dropped logs count as accounted for and are listed. \
Prints OK per shard and sink, or the exact missing cursor ranges with their size.\n\n\
Exit codes: 0 no gap; 1 a gap was found; 2 bad input (times, ledger, config); 3 SLS cannot be \
reached or refuses the credentials.",
    after_help = "Example (three instances, each with its own ledger in one directory):\n  \
shipper reconcile --config shipper.toml --from 2026-03-03T10:00:00Z --to 2026-03-03T12:00:00Z \
--ledger /var/lib/shipper/ledgers/"
)]
pub struct ReconcileArgs {
    /// `--from` and `--to`.
    #[command(flatten)]
    pub window: WindowArgs,
    /// The configuration `shipper run` used (its `[source]`, sinks and `[ledger] path`).
    #[arg(long, short = 'c', value_name = "FILE", env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Ledger files or directories (every `*.jsonl` in it, with rotated `*.jsonl.N`);
    /// repeat for several instances. Default: `[ledger] path` of the configuration.
    #[arg(long, value_name = "PATH")]
    pub ledger: Vec<PathBuf>,
}

/// Runs `shipper reconcile`.
pub async fn execute(args: ReconcileArgs) -> Result<(), Failure> {
    let now = jiff::Timestamp::now().as_second();
    let window = args.window.parse(now).config_error()?;
    let loaded = ConfigSource {
        path: args.config.clone(),
        overrides: Overrides::default(),
    }
    .load()
    .config_error()?;
    let settings = &loaded.settings;
    let paths = if args.ledger.is_empty() {
        match &settings.ledger {
            Some(l) => vec![l.path.clone()],
            None => {
                return Err(anyhow!(
                    "no ledger to read: the configuration has `[ledger] enabled = false`; pass --ledger PATH"
                ))
                .config_error();
            }
        }
    } else {
        args.ledger.clone()
    };
    let merged = coverage::read_merged(&paths)
        .context("cannot read the ledger (--ledger, or `[ledger] path`)")
        .config_error()?;
    let credentials = super::sls::start_credentials(&settings.source).await?;
    let mut gaps = 0usize;
    let mut missing_groups = 0i64;
    for target in &settings.source.logstores {
        let client = super::sls::sls_client(&settings.source, target, &credentials)?;
        // A window SLS has already deleted cannot be proven either way.
        let ttl = client
            .get_logstore_ttl_days(&target.logstore)
            .await
            .with_context(|| format!("cannot read logstore {}", target.label()))
            .unavailable()?;
        window
            .check_retention(&target.label(), ttl, now)
            .config_error()?;
        let mut shards = client
            .list_shards(&target.logstore)
            .await
            .with_context(|| format!("cannot list the shards of {}", target.label()))
            .unavailable()?;
        shards.sort_by_key(|s| s.shard_id);
        let logstore = target.label();
        println!(
            "reconcile {logstore} from {} to {} ({} shards, {} ledger records)",
            rfc3339(window.from),
            rfc3339(window.to),
            shards.len(),
            merged.len()
        );
        for shard in shards {
            let id = shard.shard_id;
            let cursor = |t| client.get_cursor(&target.logstore, id, CursorPosition::At(t));
            let (c1, c2) = futures::try_join!(cursor(window.from), cursor(window.to))
                .with_context(|| format!("GetCursor of shard {id} of {logstore}"))
                .unavailable()?;
            for sink in &settings.sinks {
                let c = coverage::cover(&merged, &logstore, id, &sink.name, c1.0..c2.0);
                println!("{}", line(id, &sink.name, &c));
                if !c.missing.is_empty() {
                    gaps += 1;
                    missing_groups += c.missing_groups();
                }
            }
        }
    }
    if gaps > 0 {
        return Err(anyhow!(
            "{gaps} shard window(s) not covered by the ledger ({missing_groups} LogGroups missing): replay those ranges (or the time window) and check the instances' ledgers are all given"
        ))
        .runtime_error();
    }
    Ok(())
}

/// One shard's result, e.g. `shard 3 sink default: OK [100, 140) 40 LogGroups; 3990 events
/// delivered, 2 dead-lettered, 8 dropped by the plugin`.
fn line(shard: u32, sink: &str, c: &Coverage) -> String {
    let w = &c.window;
    let groups = w.end - w.start;
    let counts = format!(
        "{} events delivered, {} dead-lettered, {} dropped by the plugin",
        c.tally.events, c.tally.dead_lettered, c.tally.dropped
    );
    if c.missing.is_empty() {
        return format!(
            "shard {shard} sink {sink}: OK [{}, {}) {groups} LogGroups; {counts}",
            w.start, w.end
        );
    }
    let missing: Vec<String> = c
        .missing
        .iter()
        .map(|r| format!("[{}, {}) ({} LogGroups)", r.start, r.end, r.end - r.start))
        .collect();
    format!(
        "shard {shard} sink {sink}: GAP in [{}, {}): missing {}; covered: {counts}",
        w.start,
        w.end,
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Tally;

    #[test]
    fn a_gap_line_names_each_missing_range_and_its_size() {
        let c = Coverage {
            window: 100..200,
            missing: vec![120..130, 190..200],
            tally: Tally {
                events: 7,
                ..Tally::default()
            },
        };
        assert_eq!(
            line(3, "default", &c),
            "shard 3 sink default: GAP in [100, 200): missing [120, 130) (10 LogGroups), [190, 200) (10 LogGroups); covered: 7 events delivered, 0 dead-lettered, 0 dropped by the plugin"
        );
    }
}
