//! The completeness ledger: per logstore, shard and sink, the cursor ranges the sink
//! acknowledged, with how many events it accepted and how many logs were dead-lettered or
//! dropped by the plugin on the way. `shipper reconcile` reads it back to prove that a time
//! window was shipped in full, or to name the exact ranges that were not (docs/ledger.md).
//!
//! The shard loop reports each range its sink's ordered acknowledgements hand out
//! ([`crate::pipeline::acks`]) with [`Ledger::record`], which only queues it: a dedicated
//! thread merges adjacent ranges and appends them as JSON lines (`writer`). The
//! checkpoint committer calls [`Ledger::flush`] before each commit, so the file always
//! covers at least what the consumer group has committed: after a crash (even `kill -9`)
//! the next owner re-reads from the checkpoint, and the ledger has no hole between what it
//! wrote and where reading resumes.
//!
//! - `writer`: the thread, rotation and compaction.
//! - [`coverage`]: reading the files back and finding the ranges not covered.
//! - [`watermark`]: the optional watermark events sent to the sinks.

pub mod coverage;
pub mod watermark;
mod writer;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::settings::ledger::LedgerSettings;

/// Test-only fault hook: `SHARD:N` makes the ledger drop the N-th (1-based) acknowledged
/// range of that shard instead of recording it, and say so in a WARN line, so a test can
/// check that `shipper reconcile` reports exactly that shard and range. Never set it in
/// production: the ledger would claim a gap that does not exist.
pub const TEST_DROP_ENV: &str = "SHIPPER_TEST_LEDGER_DROP";

/// What a sink settled over one cursor range: events it accepted, logs dead-lettered and
/// logs the plugin dropped, and the SLS receive times seen (unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Events the sink accepted.
    pub events: u64,
    /// Logs (or events) that went to a dead-letter file instead.
    pub dead_lettered: u64,
    /// Logs the plugin dropped on purpose (no event).
    pub dropped: u64,
    /// Earliest SLS receive time of the pulled batches, when SLS sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_first: Option<i64>,
    /// Latest SLS receive time of the pulled batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_last: Option<i64>,
}

impl Tally {
    /// Adds `other`'s counts and widens the receive times.
    pub fn add(&mut self, other: &Tally) {
        self.events += other.events;
        self.dead_lettered += other.dead_lettered;
        self.dropped += other.dropped;
        self.received(other.received_first);
        self.received(other.received_last);
    }

    /// Widens the receive times to include `t`.
    pub fn received(&mut self, t: Option<i64>) {
        let Some(t) = t else { return };
        self.received_first = Some(self.received_first.map_or(t, |f| f.min(t)));
        self.received_last = Some(self.received_last.map_or(t, |l| l.max(t)));
    }
}

/// One line of the ledger: `[from, to)` of `shard` in `logstore` was settled by `sink`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `project/logstore`.
    pub logstore: String,
    /// Shard id.
    pub shard: u32,
    /// Sink name (`[[sinks]] name`, or `default` for `[sink]`).
    pub sink: String,
    /// First cursor of the range (SLS cursors are LogGroup sequence numbers).
    pub from: i64,
    /// End of the range, exclusive.
    pub to: i64,
    /// The counts over the range.
    #[serde(flatten)]
    pub tally: Tally,
    /// When the line was written (unix seconds).
    pub at: i64,
}

impl Record {
    /// The ledger key: which logstore, shard and sink.
    pub fn key(&self) -> (&str, u32, &str) {
        (&self.logstore, self.shard, &self.sink)
    }
}

/// Why the ledger cannot be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file cannot be created or read.
    #[error("cannot open the ledger {path}: {source} (config key `ledger.path`)")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not a ledger record.
    #[error("{path} line {line} is not a ledger record: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What serde said.
        message: String,
    },
    /// The test fault hook is set to something else than `SHARD:N`.
    #[error("{TEST_DROP_ENV}={0:?} is not SHARD:N (test-only; unset it)")]
    BadHook(String),
}

enum Msg {
    Record(Record),
    Flush(oneshot::Sender<()>),
    Watermarks(oneshot::Sender<Vec<Record>>),
}

/// The test fault hook's state: which shard, which of its ranges, how many seen.
#[derive(Debug)]
struct DropHook {
    shard: u32,
    nth: u64,
    seen: AtomicU64,
}

/// Handle to the ledger thread; cheap to clone (one per shard context).
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Msg>,
    hook: Option<Arc<DropHook>>,
    path: Arc<Path>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (creates) the active file and starts the writer thread. `hook` is the value
    /// of [`TEST_DROP_ENV`], if set.
    pub fn open(settings: &LedgerSettings, hook: Option<&str>) -> Result<Self, LedgerError> {
        let hook = hook.map(parse_hook).transpose()?.map(Arc::new);
        let (tx, rx) = mpsc::channel();
        let file = writer::Writer::open(settings)?;
        std::thread::Builder::new()
            .name("shipper-ledger".into())
            .spawn(move || file.run(rx))
            .map_err(|source| LedgerError::Io {
                path: settings.path.clone(),
                source,
            })?;
        Ok(Self {
            tx,
            hook,
            path: settings.path.clone().into(),
        })
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues the record of `range` of `shard` settled by `sink`. Never blocks.
    pub fn record(&self, logstore: &str, shard: u32, sink: &str, range: Range<i64>, tally: Tally) {
        if let Some(hook) = &self.hook
            && hook.shard == shard
            && hook.seen.fetch_add(1, Ordering::Relaxed) + 1 == hook.nth
        {
            tracing::warn!(
                logstore,
                shard,
                sink,
                from = range.start,
                to = range.end,
                "test fault hook: ledger record dropped on purpose"
            );
            return;
        }
        let _ = self.tx.send(Msg::Record(Record {
            logstore: logstore.to_owned(),
            shard,
            sink: sink.to_owned(),
            from: range.start,
            to: range.end,
            tally,
            at: jiff::Timestamp::now().as_second(),
        }));
    }

    /// Waits until everything recorded so far is written to the file (not synced: the
    /// ledger must survive the process, which the page cache does).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// What was recorded since the last call, merged per logstore, shard and sink (one
    /// record each): the content of the watermark events.
    pub async fn take_watermarks(&self) -> Vec<Record> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Watermarks(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn parse_hook(text: &str) -> Result<DropHook, LedgerError> {
    let bad = || LedgerError::BadHook(text.to_owned());
    let (shard, nth) = text.split_once(':').ok_or_else(bad)?;
    Ok(DropHook {
        shard: shard.trim().parse().map_err(|_| bad())?,
        nth: nth.trim().parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
        seen: AtomicU64::new(0),
    })
}

/// Merges records per key into the fewest ranges: overlapping or adjacent ranges become
/// one, their counts summed (an overlap is a re-delivery, counted again), the receive
/// times widened. Sorted by key, then cursor.
pub fn merge(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by(|a, b| a.key().cmp(&b.key()).then(a.from.cmp(&b.from)));
    let mut out: Vec<Record> = Vec::with_capacity(records.len().min(1024));
    for r in records {
        match out.last_mut() {
            Some(last) if last.key() == r.key() && r.from <= last.to => {
                last.to = last.to.max(r.to);
                last.tally.add(&r.tally);
                last.at = last.at.max(r.at);
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(shard: u32, sink: &str, range: Range<i64>, events: u64) -> Record {
        Record {
            logstore: "p/l".into(),
            shard,
            sink: sink.into(),
            from: range.start,
            to: range.end,
            tally: Tally {
                events,
                ..Tally::default()
            },
            at: 0,
        }
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge_per_key_and_gaps_stay() {
        let merged = merge(vec![
            rec(1, "a", 10..20, 5),
            rec(0, "a", 0..5, 1),
            rec(1, "a", 20..30, 5),
            rec(1, "a", 25..28, 2),
            rec(1, "a", 40..50, 1),
            rec(1, "b", 20..30, 9),
        ]);
        let got: Vec<_> = merged
            .iter()
            .map(|r| (r.shard, r.sink.as_str(), r.from..r.to, r.tally.events))
            .collect();
        assert_eq!(
            got,
            [
                (0, "a", 0..5, 1),
                (1, "a", 10..30, 12),
                (1, "a", 40..50, 1),
                (1, "b", 20..30, 9),
            ]
        );
    }

    #[test]
    fn the_hook_is_shard_colon_n() {
        assert!(parse_hook("3:2").is_ok());
        for bad in ["3", "x:1", "3:0", "3:x"] {
            assert!(parse_hook(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_record_is_one_flat_json_line() {
        let mut r = rec(2, "default", 5..9, 40);
        r.tally.received(Some(100));
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"logstore":"p/l","shard":2,"sink":"default","from":5,"to":9,"events":40,"dead_lettered":0,"dropped":0,"received_first":100,"received_last":100,"at":0}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
    }
}
