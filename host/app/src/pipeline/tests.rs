//! The shard loop end to end, in process: pulled batches → fake plugin → memory sink →
//! recorded checkpoints. Each test checks a delivery rule of the module docs.

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
        });
        Self {
            ctx,
            topology,
            sink: sinks[0].sink.clone(),
            dir,
        }
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
    let end = rig.run_to_end(events, &checkpoints).await;
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(rig.sink.accepted_seqs(), (0..21).collect::<Vec<_>>());
    assert_eq!(checkpoints.last(), Some(Cursor(6)));
    let commits = checkpoints.commits.lock().unwrap().clone();
    assert!(commits.windows(2).all(|w| w[0] < w[1]), "{commits:?}");
    let text = rig.ctx.metrics.encode();
    assert!(
        text.contains(
            "shipper_events_out_total{logstore=\"p/ls\",shard=\"0\",sink=\"default\"} 21"
        ),
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
    let events = batches(6, 2);
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
    let end = rig.run_to_end(events, &checkpoints).await;
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
    // Counted once each, by stage.
    let text = rig.ctx.metrics.encode();
    for stage in ["sink", "plugin", "plugin_trap"] {
        let series =
            format!("shipper_dead_lettered_total{{logstore=\"p/ls\",stage=\"{stage}\"}} 1");
        assert!(text.contains(&series), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn a_full_dead_letter_disk_holds_the_checkpoint_and_the_shard_goes_on_once_there_is_room() {
    let rig = Rig::new(MemorySink::new(2)).await;
    let path = rig.dead_letter_path();
    let dead_letter = rig.ctx.topology.borrow().dead_letters[0].clone();
    dead_letter.set_full(true);
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let events = vec![
        pulled(0, &[&[Log::ok(0), Log::sink_rejected(1)]]),
        pulled(1, &[&oks(2, 4)]),
        pulled(2, &[&oks(4, 6)]),
    ];
    let run = rig.run(
        events,
        false,
        checkpoints.clone(),
        Arc::new(Revocation::new()),
    );
    let drive = async {
        // Several failed tries (the first retry waits 200 ms).
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            checkpoints.last().is_none(),
            "the checkpoint passed log 1 while its dead-letter entry was not on disk: {:?}",
            checkpoints.last()
        );
        assert!(
            dead_letters(&path).is_empty(),
            "a failed write left a line behind"
        );
        dead_letter.set_full(false);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(checkpoints.last(), Some(Cursor(3)));
    // One whole entry: the half-written tries were cut off.
    assert_eq!(dead_letters(&path), [(1, "sink".to_owned())]);
    let mut accepted = rig.sink.accepted_seqs();
    accepted.sort_unstable();
    assert_eq!(accepted, [0, 2, 3, 4, 5]);
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

#[tokio::test]
async fn a_shard_lost_with_sends_in_flight_abandons_them_instead_of_delivering_them_late() {
    // A zombie (paused past the group timeout) or a cut-off consumer: its sends are stuck
    // in the sink when the shard is taken away. The next owner re-reads them from the
    // checkpoint, so delivering them once the sink answers again would only duplicate.
    let sink = MemorySink::new(2);
    let rig = Rig::new(sink.clone()).await;
    sink.hold.send_replace(true);
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let events = vec![pulled(0, &[&oks(0, 2)]), pulled(1, &[&oks(2, 4)])];
    let run = rig.run(events, true, checkpoints.clone(), revocation.clone());
    let drive = async {
        while sink.sends.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        revocation.revoke(RevokeReason::HeartbeatLost);
    };
    // The shard ends while the sink still holds both sends.
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::NotOurs);
    sink.hold.send_replace(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        rig.sink.accepted_seqs(),
        Vec::<usize>::new(),
        "a send of a lost shard was delivered after the shard ended"
    );
    assert!(checkpoints.commits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_shutdown_or_an_announced_rebalance_still_waits_for_its_sends_in_flight() {
    // The contrast: when the release may commit, the sends in flight settle and are
    // committed, so the next owner (or the next run) does not deliver them again.
    for reason in [RevokeReason::Shutdown, RevokeReason::Reassigned] {
        let sink = MemorySink::new(2);
        let rig = Rig::new(sink.clone()).await;
        sink.hold.send_replace(true);
        let checkpoints = Arc::new(RecordedCheckpoints::default());
        let revocation = Arc::new(Revocation::new());
        let run = rig.run(
            vec![pulled(0, &[&oks(0, 2)])],
            true,
            checkpoints.clone(),
            revocation.clone(),
        );
        let drive = async {
            while sink.sends.load(std::sync::atomic::Ordering::SeqCst) < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            revocation.revoke(reason);
            tokio::time::sleep(Duration::from_millis(20)).await;
            sink.hold.send_replace(false);
        };
        let (end, ()) = tokio::join!(run, drive);
        assert_eq!(end, ShardEnd::Committed, "{reason}");
        assert_eq!(rig.sink.accepted_seqs(), [0, 1], "{reason}");
        assert_eq!(checkpoints.last(), Some(Cursor(1)), "{reason}");
    }
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

#[tokio::test]
async fn two_sinks_get_every_log_and_the_checkpoint_waits_for_the_slower() {
    let fast = MemorySink::new(3);
    let slow = MemorySink::new(5);
    slow.hold.send_replace(true);
    let rig = Rig::with_sinks(vec![sink("fast", fast.clone()), sink("slow", slow.clone())]).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let run = rig.run(batches(4, 5), true, checkpoints.clone(), revocation.clone());
    let drive = async {
        eventually_async(|| fast.accepted_seqs().len() == 20).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            checkpoints.last().is_none(),
            "committed {:?} while the slow sink had nothing",
            checkpoints.last()
        );
        slow.hold.send_replace(false);
        eventually_async(|| checkpoints.last() == Some(Cursor(4))).await;
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    let mut got = slow.accepted_seqs();
    got.sort_unstable();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert_eq!(fast.accepted_seqs(), (0..20).collect::<Vec<_>>());
    let text = rig.ctx.metrics.encode();
    for name in ["fast", "slow"] {
        assert!(
            text.contains(&format!(
                "shipper_events_out_total{{logstore=\"p/ls\",shard=\"0\",sink=\"{name}\"}} 20"
            )),
            "{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_settles_nothing_holds_the_pulling_and_says_so() {
    let up = MemorySink::new(2);
    let down = MemorySink::new(2);
    down.hold.send_replace(true);
    let rig = Rig::with_sinks(vec![sink("up", up.clone()), sink("down", down.clone())]).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    // 100 batches of 2 logs: each fills a send of each sink.
    let run = rig.run(
        batches(100, 2),
        true,
        checkpoints.clone(),
        revocation.clone(),
    );
    let drive = async {
        tokio::time::sleep(shard::STALL_WARN_AFTER + Duration::from_secs(1)).await;
        let max = rig.ctx.options.max_in_flight;
        assert_eq!(down.pending(), max, "the down sink holds every slot");
        assert!(
            up.accepted_seqs().len() <= 2 * (max + 2),
            "the shard stopped pulling: {} events reached the healthy sink",
            up.accepted_seqs().len()
        );
        assert!(checkpoints.last().is_none());
        let text = rig.ctx.metrics.encode();
        assert!(
            text.contains("shipper_sink_blocked_shards{sink=\"down\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("shipper_sink_blocked_shards{sink=\"up\"} 1"),
            "{text}"
        );
        down.hold.send_replace(false);
        eventually_async(|| checkpoints.last() == Some(Cursor(100))).await;
        let text = rig.ctx.metrics.encode();
        assert!(
            text.contains("shipper_sink_blocked_shards{sink=\"down\"} 0"),
            "{text}"
        );
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(up.accepted_seqs(), (0..200).collect::<Vec<_>>());
}

/// With a memory budget, a pulled batch holds its bytes until its last send settles, and
/// every send holds its rendered bytes until it settles: while the sink holds everything the
/// budget shows both, and once all is delivered it is back to zero.
#[tokio::test(start_paused = true)]
async fn pulled_and_in_flight_bytes_are_held_in_the_budget_until_settled() {
    let sink = MemorySink::new(2);
    sink.hold.send_replace(true);
    let rig = Rig::new(sink.clone()).await;
    let budget = MemoryBudget::new(1 << 20);
    let share = Arc::new(budget.share());
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    // Each pulled batch reserved 1000 bytes, as a reader does.
    let events: Vec<ReadEvent> = batches(4, 2)
        .into_iter()
        .map(|e| match e {
            ReadEvent::Batch(mut b) => {
                b.memory = Some(Arc::new(share.charge(1_000)));
                ReadEvent::Batch(b)
            }
            other => other,
        })
        .collect();
    let run = rig.run_with_memory(
        events,
        true,
        checkpoints.clone(),
        revocation.clone(),
        Some(share.clone()),
    );
    let drive = async {
        eventually_async(|| sink.pending() == 4).await;
        // Four pulled batches, each still carried by its held send, plus the four sends'
        // rendered events.
        assert!(
            share.used() > 4 * 1_000,
            "pulled and rendered bytes are held: {}",
            share.used()
        );
        sink.hold.send_replace(false);
        eventually_async(|| checkpoints.last() == Some(Cursor(4))).await;
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    let mut seqs = sink.accepted_seqs();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    assert_eq!(budget.used(), 0, "everything given back once settled");
}

#[tokio::test]
async fn routes_pick_a_sink_and_failures_go_to_each_sinks_own_file() {
    let a = MemorySink::new(10);
    let b = MemorySink::new(10);
    let rig = Rig::with_sinks(vec![sink("a", a.clone()), sink("b", b.clone())]).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let events = vec![pulled(
        0,
        &[&[
            Log::ok(0),
            Log::routed(1, "b"),
            Log::sink_rejected(2),
            Log::refused(3),
            Log::routed(4, "nowhere"),
            Log::routed(5, "a"),
        ]],
    )];
    let end = rig.run_to_end(events, &checkpoints).await;
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(a.accepted_seqs(), [0, 5]);
    assert_eq!(b.accepted_seqs(), [0, 1]);
    assert_eq!(checkpoints.last(), Some(Cursor(1)));
    // Each file: the event its sink refused (named), and what the plugin failed for both.
    for name in ["a", "b"] {
        assert_eq!(
            dead_letters_of(&rig, name),
            [
                (2, "sink".to_owned(), Some(name.to_owned())),
                (3, "plugin".to_owned(), None),
                (4, "host".to_owned(), None),
            ],
            "{name}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_cap_paces_every_shard_together() {
    let capped = MemorySink::new(10);
    let rig = Rig::with_sinks(vec![RigSink {
        name: "capped",
        sink: capped.clone(),
        caps: RateCaps {
            events_per_sec: Some(100),
            ..RateCaps::default()
        },
    }])
    .await;
    // Two shards of 40 batches of 10 logs: 800 events at 100 a second.
    let started = tokio::time::Instant::now();
    let shard = |id: u32| {
        let events: Vec<_> = (0..40)
            .map(|g| {
                let base = (id as usize * 400) + g as usize * 10;
                let ReadEvent::Batch(mut b) = pulled(g, &[&oks(base, base + 10)]) else {
                    unreachable!()
                };
                b.shard = id;
                ReadEvent::Batch(b)
            })
            .collect();
        let io = ShardIo {
            shard: id,
            start: Cursor(0),
            events: futures::stream::iter(events.into_iter().map(Ok)).boxed(),
            revocation: Arc::new(Revocation::new()),
            checkpoints: Arc::new(RecordedCheckpoints::default()),
            memory: None,
        };
        shard::run(rig.ctx.clone(), io)
    };
    let watch = async {
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        // One second's burst, then 100 a second: 450 ± one send after 3.5 s.
        let n = capped.accepted_seqs().len();
        assert!((430..=470).contains(&n), "{n} events after 3.5 s");
        let mut per_shard = [0usize; 2];
        for seq in capped.accepted_seqs() {
            per_shard[seq / 400] += 1;
        }
        assert!(
            per_shard[0].abs_diff(per_shard[1]) <= 2 * rig.ctx.options.max_in_flight * 10,
            "shards share the cap: {per_shard:?}"
        );
    };
    let (a, b, ()) = tokio::join!(shard(0), shard(1), watch);
    assert_eq!((a, b), (ShardEnd::Committed, ShardEnd::Committed));
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(6_900)..Duration::from_millis(7_200)).contains(&elapsed),
        "800 events at 100/s with a 100-event burst: {elapsed:?}"
    );
    let text = rig.ctx.metrics.encode();
    let throttled: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("shipper_sink_throttled_seconds_total{sink=\"capped\"} "))
        .expect("throttled seconds")
        .parse()
        .unwrap();
    assert!(throttled > 6.0, "{throttled} s throttled\n{text}");
}

#[tokio::test]
async fn event_ids_are_attached_per_sink_and_stable() {
    let with = MemorySink::new(10);
    let without = MemorySink::new(10);
    let rig = Rig::with_sinks(vec![
        sink("with", with.clone()),
        sink("without", without.clone()),
    ])
    .await;
    rig.topology.send_modify(|t| {
        let mut next = Topology::clone(t);
        next.sinks[0].event_id = Some(super::event_id::EventIdSettings {
            hec_field: "eid".into(),
            sd_id: "x@1".into(),
        });
        *t = Arc::new(next);
    });
    let run_once = || async {
        let events = vec![pulled(7, &[&oks(0, 3), &oks(3, 5)])];
        rig.run(
            events,
            false,
            Arc::new(RecordedCheckpoints::default()),
            Arc::new(Revocation::new()),
        )
        .await
    };
    run_once().await;
    let first: Vec<String> = with.accepted.lock().unwrap().clone();
    assert_eq!(
        without.accepted.lock().unwrap().clone(),
        ["0", "1", "2", "3", "4"]
    );
    let ids: BTreeSet<&str> = first
        .iter()
        .map(|t| t.split_once(" eid=").expect("an ID").1)
        .collect();
    assert_eq!(ids.len(), 5, "one ID per event: {first:?}");
    let g = super::event_id::GroupIds::new("p", "ls", 0, Cursor(8));
    assert_eq!(
        first[3],
        format!("3 eid={}", g.id(0, 0)),
        "group 1 is at cursor 8"
    );
    // A replay of the same batch (after a crash) gives the same IDs.
    run_once().await;
    let all = with.accepted.lock().unwrap().clone();
    assert_eq!(all[5..], first[..]);
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

#[tokio::test]
async fn a_reload_switches_sinks_between_batches_losing_and_repeating_nothing() {
    // The old sink is slow, so sends are in flight when the new configuration arrives.
    let mut old = MemorySink::new(3);
    old.delay = Arc::new(|_| Duration::from_millis(20));
    let new = MemorySink::new(3);
    let rig = Rig::with_sinks(vec![sink("old", old.clone())]).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let run = rig.run_stream(
        rx.map(Ok).boxed(),
        checkpoints.clone(),
        revocation.clone(),
        None,
    );
    let drive = async {
        let send = |g: i64| {
            let first = 4 * g as usize;
            tx.unbounded_send(pulled(g, &[&oks(first, first + 4)]))
                .unwrap();
        };
        (0..10).for_each(send);
        let sends = old.sends.clone();
        eventually_async(|| sends.load(std::sync::atomic::Ordering::SeqCst) > 0).await;
        let next = topology(
            2,
            &[sink("new", new.clone())],
            rig.dir.path(),
            &rig.ctx.metrics,
        )
        .await;
        rig.topology.send_replace(Arc::new(next));
        (10..20).for_each(send);
        let seen = checkpoints.clone();
        eventually_async(|| seen.last() == Some(Cursor(20))).await;
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    let (before, after) = (old.accepted_seqs(), new.accepted_seqs());
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{before:?} {after:?}"
    );
    assert!(
        before.iter().max() < after.iter().min(),
        "the old sink got only logs before the switch, the new one only logs after it: {before:?} {after:?}"
    );
    let mut all = [before, after].concat();
    all.sort_unstable();
    assert_eq!(all, (0..80).collect::<Vec<_>>(), "every log once");
    let commits = checkpoints.commits.lock().unwrap().clone();
    assert!(commits.windows(2).all(|w| w[0] < w[1]), "{commits:?}");
}
