//! The shard loop end to end, in process: pulled batches → fake plugin → memory sink →
//! recorded checkpoints. Each test checks a delivery rule of the module docs. This file
//! holds the rig; [`delivery`] tests one sink's delivery, dead letters and hand-offs,
//! [`sinks`] several sinks, back-pressure, rate caps, event IDs, the memory budget and the
//! switch to a new configuration generation; [`ledger`] what the completeness ledger
//! records.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use shipper_sinks::SinkKind;
use shipper_sls::consumer::{
    BudgetShare, MemoryBudget, PulledBatch, ReadEvent, Revocation, RevokeReason,
};
use shipper_sls::cursor::Cursor;

use super::format::FormatContext;
use super::rate::{RateCaps, RateLimiter};
use super::shard::{self, ShardEnd, ShardIo};
use super::testing::{self, FakePlugin, Log, MemorySink, RecordedCheckpoints};
use super::{PipelineOptions, ShardContext, SinkContext, Topology};
use crate::dead_letter::DeadLetter;
use crate::generation::FailurePolicy;
use crate::lag::ShardLag;
use crate::settings::LogstoreTarget;

mod delivery;
mod ledger;
mod shard_loop;
mod sinks;

/// One pulled batch at `cursor`: one LogGroup per entry of `groups`.
fn pulled(cursor: i64, groups: &[&[Log]]) -> ReadEvent {
    let groups: Vec<_> = groups.iter().map(|logs| testing::view(logs)).collect();
    let log_count = groups.iter().map(|g| g.log_count).sum();
    ReadEvent::Batch(PulledBatch {
        shard: 0,
        cursor: Cursor(cursor),
        next_cursor: Cursor(cursor + groups.len() as i64),
        groups,
        raw_size: 100,
        log_count,
        end_of_shard: false,
        cursor_time: None,
        memory: None,
    })
}

/// `n` pulled batches at cursors `0..n`, one LogGroup of `per` `ok` logs each (seqs
/// `0..n * per` in order).
fn batches(n: i64, per: usize) -> Vec<ReadEvent> {
    (0..n)
        .map(|g| {
            let first = per * g as usize;
            pulled(g, &[&oks(first, first + per)])
        })
        .collect()
}

/// Logs `from..to`, all `ok`.
fn oks(from: usize, to: usize) -> Vec<Log> {
    (from..to).map(Log::ok).collect()
}

struct Rig {
    ctx: Arc<ShardContext>,
    /// Where a test publishes a new configuration generation (a reload).
    topology: tokio::sync::watch::Sender<Arc<Topology>>,
    sink: MemorySink,
    dir: tempfile::TempDir,
}

/// One sink of a rig: its name, the memory sink, its rate caps.
struct RigSink {
    name: &'static str,
    sink: MemorySink,
    caps: RateCaps,
}

impl Rig {
    /// One sink, `default`, with no cap.
    async fn new(sink: MemorySink) -> Self {
        Self::with_sinks(vec![RigSink {
            name: "default",
            sink,
            caps: RateCaps::default(),
        }])
        .await
    }

    /// Several sinks sharing the fake plugin, each with its own dead-letter file
    /// (`dead-<name>.jsonl`); `sink` is the first.
    async fn with_sinks(sinks: Vec<RigSink>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let metrics = testing::metrics();
        let first = topology(1, &sinks, dir.path(), &metrics).await;
        let (topology, receiver) = tokio::sync::watch::channel(Arc::new(first));
        let ctx = Arc::new(ShardContext {
            target: LogstoreTarget {
                project: "p".into(),
                logstore: "ls".into(),
            },
            topology: receiver,
            lag: ShardLag::new("p", "ls", &metrics),
            metrics,
            options: PipelineOptions {
                min_commit_interval: Duration::from_millis(1),
                ..PipelineOptions::default()
            },
            ledger: None,
        });
        Self {
            ctx,
            topology,
            sink: sinks[0].sink.clone(),
            dir,
        }
    }

    /// The rig with a ledger at `ledger.jsonl` in its directory. Not for paused-time
    /// tests: the ledger answers flushes from its own thread, which paused time does not
    /// wait for.
    fn with_ledger(mut self) -> Self {
        let ledger = crate::ledger::Ledger::open(
            &crate::settings::ledger::LedgerSettings {
                path: self.dir.path().join("ledger.jsonl"),
                max_file_bytes: 1 << 20,
                keep_files: 1,
                watermark_interval: None,
            },
            None,
        )
        .unwrap();
        Arc::get_mut(&mut self.ctx).expect("not shared yet").ledger = Some(ledger);
        self
    }

    fn dead_letter_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dead-default.jsonl")
    }

    /// Runs the shard over `events` (then the reader ends, or stays open when `open_end`).
    async fn run(
        &self,
        events: Vec<ReadEvent>,
        open_end: bool,
        checkpoints: Arc<RecordedCheckpoints>,
        revocation: Arc<Revocation>,
    ) -> ShardEnd {
        self.run_with_memory(events, open_end, checkpoints, revocation, None)
            .await
    }

    /// [`run`](Self::run) with the shard's part of a memory budget.
    async fn run_with_memory(
        &self,
        events: Vec<ReadEvent>,
        open_end: bool,
        checkpoints: Arc<RecordedCheckpoints>,
        revocation: Arc<Revocation>,
        memory: Option<Arc<BudgetShare>>,
    ) -> ShardEnd {
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        let events = if open_end {
            stream.chain(futures::stream::pending()).boxed()
        } else {
            stream.boxed()
        };
        self.run_stream(events, checkpoints, revocation, memory)
            .await
    }

    /// Runs the shard over `events` until the reader ends (nothing revokes it).
    async fn run_to_end(
        &self,
        events: Vec<ReadEvent>,
        checkpoints: &Arc<RecordedCheckpoints>,
    ) -> ShardEnd {
        self.run(
            events,
            false,
            checkpoints.clone(),
            Arc::new(Revocation::new()),
        )
        .await
    }

    /// Runs the shard over a stream of read events.
    async fn run_stream(
        &self,
        events: futures::stream::BoxStream<'static, Result<ReadEvent, shipper_sls::SlsError>>,
        checkpoints: Arc<RecordedCheckpoints>,
        revocation: Arc<Revocation>,
        memory: Option<Arc<BudgetShare>>,
    ) -> ShardEnd {
        let io = ShardIo {
            shard: 0,
            start: Cursor(0),
            events,
            revocation,
            checkpoints,
            memory,
        };
        // A shard loop that never ends is a failure, not a hung test.
        tokio::time::timeout(Duration::from_secs(20), shard::run(self.ctx.clone(), io))
            .await
            .expect("the shard loop ended within 20 s")
    }
}

/// Generation `generation` of a configuration with `sinks`, all formatted by one fake
/// plugin, each with its own dead-letter file (`dead-<name>.jsonl` in `dir`).
async fn topology(
    generation: u64,
    sinks: &[RigSink],
    dir: &std::path::Path,
    metrics: &Arc<crate::metrics::Metrics>,
) -> Topology {
    let mut dead_letters = Vec::new();
    for s in sinks {
        let path = dir.join(format!("dead-{}.jsonl", s.name));
        dead_letters.push(DeadLetter::open(&path).await.unwrap());
    }
    Topology {
        generation,
        sinks: sinks
            .iter()
            .enumerate()
            .map(|(i, s)| SinkContext {
                name: s.name.into(),
                sink: Arc::new(s.sink.clone()),
                format: 0,
                dead_letter: i,
                limiter: RateLimiter::new(
                    s.name,
                    s.caps,
                    metrics.clone(),
                    tokio_util::sync::CancellationToken::new(),
                ),
                event_id: None,
            })
            .collect(),
        formats: vec![FormatContext {
            plugins: testing::slot(FakePlugin::default(), 100),
            failure_policy: FailurePolicy::Pause,
            passthrough: sinks
                .iter()
                .map(|s| (s.name.to_owned(), SinkKind::Hec))
                .collect(),
            metrics: metrics.clone(),
            canary: None,
        }],
        dead_letters,
    }
}

/// (seq, stage, sink field) of every dead-letter entry in `path`, in file order.
fn dead_letter_entries(path: &std::path::Path) -> Vec<(usize, String, Option<String>)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["log"]["seq"].as_str().unwrap().parse().unwrap(),
                v["stage"].as_str().unwrap().to_owned(),
                v["sink"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// (seq, stage) of every dead-letter entry in `path`.
fn dead_letters(path: &std::path::Path) -> Vec<(usize, String)> {
    dead_letter_entries(path)
        .into_iter()
        .map(|(seq, stage, _)| (seq, stage))
        .collect()
}

fn sink(name: &'static str, sink: MemorySink) -> RigSink {
    RigSink {
        name,
        sink,
        caps: RateCaps::default(),
    }
}

/// Dead-letter entries of sink `name`'s file: (seq, stage, sink field), sorted.
fn dead_letters_of(rig: &Rig, name: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = dead_letter_entries(&rig.dir.path().join(format!("dead-{name}.jsonl")));
    out.sort();
    out
}

/// Polls `done` every few milliseconds until it holds (test time).
async fn eventually_async(done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not met");
}
