//! The shard loop end to end, in process: pulled batches → fake plugin → memory sink →
//! recorded checkpoints. Each test checks a delivery rule of the module docs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use shipper_sinks::SinkKind;
use shipper_sls::consumer::{PulledBatch, ReadEvent, Revocation, RevokeReason};
use shipper_sls::cursor::Cursor;

use super::format::FormatContext;
use super::shard::{self, ShardEnd, ShardIo};
use super::testing::{self, FakePlugin, Log, MemorySink, RecordedCheckpoints};
use super::{PipelineOptions, ShardContext};
use crate::dead_letter::DeadLetter;
use crate::generation::FailurePolicy;
use crate::lag::ShardLag;
use crate::settings::LogstoreTarget;

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
    })
}

/// Logs `from..to`, all `ok`.
fn oks(from: usize, to: usize) -> Vec<Log> {
    (from..to).map(Log::ok).collect()
}

struct Rig {
    ctx: Arc<ShardContext>,
    sink: MemorySink,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn new(sink: MemorySink) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let metrics = testing::metrics();
        let ctx = Arc::new(ShardContext {
            target: LogstoreTarget {
                project: "p".into(),
                logstore: "ls".into(),
            },
            sink: Arc::new(sink.clone()),
            sink_name: "default".into(),
            format: FormatContext {
                plugins: testing::slot(FakePlugin::default(), 100),
                failure_policy: FailurePolicy::Pause,
                passthrough: SinkKind::Hec,
                metrics: metrics.clone(),
            },
            dead_letter: DeadLetter::open(&dir.path().join("dead.jsonl"))
                .await
                .unwrap(),
            lag: ShardLag::new("p", "ls", &metrics),
            metrics,
            options: PipelineOptions {
                min_commit_interval: Duration::from_millis(1),
                ..PipelineOptions::default()
            },
        });
        Self { ctx, sink, dir }
    }

    fn dead_letter_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dead.jsonl")
    }

    /// Runs the shard over `events` (then the reader ends, or stays open when `open_end`).
    async fn run(
        &self,
        events: Vec<ReadEvent>,
        open_end: bool,
        checkpoints: Arc<RecordedCheckpoints>,
        revocation: Arc<Revocation>,
    ) -> ShardEnd {
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        let events = if open_end {
            stream.chain(futures::stream::pending()).boxed()
        } else {
            stream.boxed()
        };
        let io = ShardIo {
            shard: 0,
            start: Cursor(0),
            events,
            revocation,
            checkpoints,
        };
        // A shard loop that never ends is a failure, not a hung test.
        tokio::time::timeout(Duration::from_secs(20), shard::run(self.ctx.clone(), io))
            .await
            .expect("the shard loop ended within 20 s")
    }
}

/// (seq, stage) of every dead-letter entry in `path`.
fn dead_letters(path: &std::path::Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["log"]["seq"].as_str().unwrap().parse().unwrap(),
                v["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_log_is_delivered_once_and_the_checkpoint_reaches_the_end() {
    let rig = Rig::new(MemorySink::new(3)).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let events = vec![
        pulled(0, &[&oks(0, 4), &oks(4, 6)]),
        ReadEvent::CaughtUp { cursor: Cursor(2) },
        pulled(2, &[&oks(6, 13)]),
        pulled(3, &[&oks(13, 14), &oks(14, 20), &oks(20, 21)]),
    ];
    let end = rig
        .run(
            events,
            false,
            checkpoints.clone(),
            Arc::new(Revocation::new()),
        )
        .await;
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(rig.sink.accepted_seqs(), (0..21).collect::<Vec<_>>());
    assert_eq!(checkpoints.last(), Some(Cursor(6)));
    let commits = checkpoints.commits.lock().unwrap().clone();
    assert!(commits.windows(2).all(|w| w[0] < w[1]), "{commits:?}");
    let text = rig.ctx.metrics.encode();
    assert!(
        text.contains("shipper_events_out_total{logstore=\"p/ls\",shard=\"0\"} 21"),
        "{text}"
    );
}

#[tokio::test]
async fn acknowledgements_out_of_order_move_the_checkpoint_in_order() {
    // Each send is slower than the next: acknowledgements arrive last-first.
    let mut sink = MemorySink::new(2);
    sink.delay = Arc::new(|n| Duration::from_millis(15 * (6 - n.min(6)) as u64));
    let rig = Rig::new(sink.clone()).await;
    let accepted = sink.accepted.clone();
    let checkpoints = Arc::new(RecordedCheckpoints {
        hook: Some(Box::new(move |cursor: Cursor| {
            // At every commit, every log of the groups before `cursor` was accepted.
            let got: BTreeSet<usize> = accepted
                .lock()
                .unwrap()
                .iter()
                .map(|t| t.parse().unwrap())
                .collect();
            let needed = (cursor.0 as usize) * 2;
            assert!(
                (0..needed).all(|s| got.contains(&s)),
                "committed {cursor:?} before logs < {needed} were accepted: {got:?}"
            );
        })),
        ..Default::default()
    });
    // Six groups of two logs, one pulled batch each.
    let events: Vec<_> = (0..6)
        .map(|g| pulled(g, &[&oks(2 * g as usize, 2 * g as usize + 2)]))
        .collect();
    let revocation = Arc::new(Revocation::new());
    let run = rig.run(events, true, checkpoints.clone(), revocation.clone());
    let drive = async {
        while checkpoints.last() != Some(Cursor(6)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(rig.sink.accepted_seqs().len(), 12);
}

#[tokio::test]
async fn a_rejected_event_is_dead_lettered_before_the_checkpoint_passes_it() {
    let rig = Rig::new(MemorySink::new(2)).await;
    let path = rig.dead_letter_path();
    let seen = path.clone();
    let checkpoints = Arc::new(RecordedCheckpoints {
        hook: Some(Box::new(move |cursor: Cursor| {
            // Group g holds logs 3g..3g+3; every failing log before `cursor` is on disk.
            let on_disk: BTreeSet<usize> =
                dead_letters(&seen).into_iter().map(|(s, _)| s).collect();
            for failing in [1usize, 4, 8] {
                if failing / 3 < cursor.0 as usize {
                    assert!(
                        on_disk.contains(&failing),
                        "checkpoint {cursor:?} passed log {failing} before its dead letter"
                    );
                }
            }
        })),
        ..Default::default()
    });
    let events = vec![
        pulled(0, &[&[Log::ok(0), Log::sink_rejected(1), Log::ok(2)]]),
        pulled(1, &[&[Log::ok(3), Log::refused(4), Log::ok(5)]]),
        pulled(2, &[&[Log::ok(6), Log::ok(7), Log::poison(8)]]),
    ];
    let end = rig
        .run(
            events,
            false,
            checkpoints.clone(),
            Arc::new(Revocation::new()),
        )
        .await;
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(checkpoints.last(), Some(Cursor(3)));
    assert_eq!(rig.sink.accepted_seqs(), [0, 2, 3, 5, 6, 7]);
    let mut dead = dead_letters(&path);
    dead.sort();
    assert_eq!(
        dead,
        [
            (1, "sink".to_owned()),
            (4, "plugin".to_owned()),
            (8, "plugin_trap".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_shutdown_drains_the_sends_in_flight_and_commits_them() {
    let sink = MemorySink::new(4);
    let rig = Rig::new(sink.clone()).await;
    sink.hold.send_replace(true);
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let events = vec![pulled(0, &[&oks(0, 4)]), pulled(1, &[&oks(4, 6)])];
    let run = rig.run(events, true, checkpoints.clone(), revocation.clone());
    let drive = async {
        while sink.sends.load(std::sync::atomic::Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Shut down while the sink still holds the first send and the rest is open.
        revocation.revoke(RevokeReason::Shutdown);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            checkpoints.last().is_none(),
            "committed before the sink answered"
        );
        sink.hold.send_replace(false);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    // Both sends were released together; the sink may finish them in either order.
    let mut accepted = rig.sink.accepted_seqs();
    accepted.sort_unstable();
    assert_eq!(accepted, (0..6).collect::<Vec<_>>());
    assert_eq!(checkpoints.last(), Some(Cursor(2)));
}

#[tokio::test]
async fn a_shard_taken_away_drops_its_open_batch_and_does_not_commit() {
    let sink = MemorySink::new(100);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let events = vec![pulled(0, &[&oks(0, 3)])];
    let run = rig.run(events, true, checkpoints.clone(), revocation.clone());
    let drive = async {
        // The batch is rendered into the open send (100 events would fill it) and lingers.
        tokio::time::sleep(Duration::from_millis(5)).await;
        revocation.revoke(RevokeReason::HeartbeatLost);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::NotOurs);
    assert!(checkpoints.commits.lock().unwrap().is_empty());
}
