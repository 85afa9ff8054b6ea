//! Failures of a batch (plugin, host or sink), written to the dead-letter file(s) of the
//! sinks they concern before any checkpoint passes them.

use super::*;

/// First and longest wait between two tries of a dead-letter write that failed (a full
/// disk): short enough that the shard goes on soon after space is freed.
const DEAD_LETTER_RETRY_WAIT: Duration = Duration::from_millis(200);
const MAX_DEAD_LETTER_RETRY_WAIT: Duration = Duration::from_secs(5);

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
                let mut entry = decoded.entry(&ctx.target, self.shard, source, f.origin, cause);
                // A re-driven dead letter fails again: the new entry names the log where
                // SLS holds it, so it can be re-driven once more.
                let at = source.cursor.advance(i64::from(f.origin.group));
                if let Some(o) = ctx.options.replay.as_deref().and_then(|r| r.original(at)) {
                    entry.project = &o.project;
                    entry.logstore = &o.logstore;
                    entry.shard = o.shard;
                    entry.cursor = o.cursor.encode();
                    entry.log_index = o.log_index as usize;
                }
                per_file.entry(file).or_default().push(entry);
            }
        }
        for (file, entries) in per_file {
            let written = write_until_written(
                self.shard,
                &self.revocation,
                &topo.dead_letters[file],
                &entries,
            )
            .await;
            if !written {
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

/// Writes `entries` to `dl`, retrying while it fails (a full disk): the checkpoint must
/// not pass an entry that is not on disk, so the shard waits here, says so once, and goes
/// on by itself once there is room. `false`: the shard was revoked meanwhile (nothing
/// more may be checkpointed; the next owner or run delivers these logs again).
async fn write_until_written(
    shard: u32,
    revocation: &Revocation,
    dl: &crate::dead_letter::DeadLetter,
    entries: &[dead_letter::Entry<'_>],
) -> bool {
    let mut retry = Backoff::new(DEAD_LETTER_RETRY_WAIT, MAX_DEAD_LETTER_RETRY_WAIT);
    let mut since: Option<Instant> = None;
    loop {
        match dl.write(entries).await {
            Ok(()) => {
                if let Some(since) = since {
                    tracing::info!(
                        shard = shard,
                        path = %dl.path().display(),
                        waited_ms = since.elapsed().as_millis() as u64,
                        "dead-letter file writable again; the shard goes on"
                    );
                }
                return true;
            }
            Err(e) => {
                if since.is_none() {
                    tracing::error!(
                        shard = shard,
                        path = %dl.path().display(),
                        error = %e,
                        "cannot write the dead-letter file; the shard waits without checkpointing and retries (free space on its disk or fix the file)"
                    );
                    since = Some(Instant::now());
                }
            }
        }
        tokio::select! {
            biased;
            reason = revocation.revoked() => {
                tracing::warn!(
                    shard = shard,
                    %reason,
                    "shard released while its dead-letter file was not writable; its logs will be delivered again"
                );
                return false;
            }
            () = tokio::time::sleep(retry.next_delay()) => {}
        }
    }
}
