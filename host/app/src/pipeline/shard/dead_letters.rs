//! Failures of a batch (plugin, host or sink), written to the dead-letter file(s) of the
//! sinks they concern before any checkpoint passes them.

use super::*;

/// Where a failure's dead-letter entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blame {
    /// The plugin of format stage `n` (or the host before it): every sink of that plugin.
    Format(usize),
    /// Sink `n` alone (it refused or could not render the event).
    Sink(usize),
}

/// A log (or one of its events) that goes to the dead-letter file(s).
pub(super) struct Failure {
    pub(super) blame: Blame,
    pub(super) origin: Origin,
    pub(super) stage: Stage,
    pub(super) reason: String,
}

impl ShardWorker {
    /// Writes dead-letter entries for `failures` (logs of `sources`), once per distinct
    /// file each concerns, and counts them by stage; on failure nothing more may be
    /// checkpointed.
    pub(super) async fn write_dead_letters(
        &mut self,
        sources: &[Arc<Source>],
        failures: Vec<Failure>,
    ) -> bool {
        if failures.is_empty() {
            return true;
        }
        let ctx = self.ctx.clone();
        let topo = self.topo.clone();
        // (file, entries of it)
        let mut per_file: BTreeMap<usize, Vec<dead_letter::Entry<'_>>> = BTreeMap::new();
        let mut by_stage: BTreeMap<Stage, u64> = BTreeMap::new();
        let mut decoded = dead_letter::DecodeCache::default();
        for f in &failures {
            *by_stage.entry(f.stage).or_default() += 1;
            let source = &sources[f.origin.source as usize];
            let (format, sinks): (usize, Vec<usize>) = match f.blame {
                Blame::Format(n) => (n, self.format_sinks[n].clone()),
                Blame::Sink(i) => (topo.sinks[i].format, vec![i]),
            };
            let cause = Cause {
                stage: f.stage,
                reason: &f.reason,
                plugin: source.generations.get(format).map(|g| g.plugin.hash()),
                sink: match f.blame {
                    Blame::Sink(i) => Some(topo.sinks[i].name.as_str()),
                    Blame::Format(_) => None,
                },
            };
            let mut files: Vec<usize> = sinks.iter().map(|&i| topo.sinks[i].dead_letter).collect();
            files.sort_unstable();
            files.dedup();
            for file in files {
                let entry = decoded.entry(&ctx.target, self.shard, source, f.origin, cause);
                per_file.entry(file).or_default().push(entry);
            }
        }
        for (file, entries) in per_file {
            let dl = &topo.dead_letters[file];
            if let Err(e) = dl.write(&entries).await {
                tracing::error!(
                    shard = self.shard,
                    path = %dl.path().display(),
                    error = %e,
                    "cannot write the dead-letter file; stopping the shard without checkpointing (fix the file or disk, then restart)"
                );
                self.stop = Some(Stop::Unrecoverable);
                return false;
            }
        }
        for (stage, n) in by_stage {
            ctx.metrics.dead_lettered(&self.labels.logstore, stage, n);
        }
        true
    }
}
