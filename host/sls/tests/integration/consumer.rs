//! The consumer-group worker against the emulator, with short timings (heartbeat 1 s,
//! timeout 3 s). A tiny pipeline per consumer records every log id it processes and commits
//! each batch's next cursor, the way `shipper run` will (minus plugin and sink).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipper_sls::{
    Client, Consumer, ConsumerConfig, Cursor, CursorPosition, ReadEvent, RevokeReason, ShardLease,
    ShardReader, ShutdownReport,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::harness::{client, emulator, eventually, fill, setup};

/// What every test consumer did, shared by all consumers of a test.
#[derive(Debug, Default)]
pub struct Record {
    /// (consumer, shard, log id) per processed log.
    pub seen: Vec<(String, u32, String)>,
    /// Current holder of each shard (inserted when a lease starts, removed before release).
    pub holders: BTreeMap<u32, String>,
    /// Times a lease started while another consumer still held the shard.
    pub overlaps: usize,
    /// (consumer, shard, start cursor, from checkpoint) per lease.
    pub leases: Vec<(String, u32, Cursor, bool)>,
    /// (consumer, shard, reason) per revocation observed.
    pub revocations: Vec<(String, u32, RevokeReason)>,
    /// Errors a shard task hit.
    pub errors: Vec<String>,
    /// (consumer, shard) per read-only shard read to its end.
    pub drained: Vec<(String, u32)>,
}

pub type Recorder = Arc<Mutex<Record>>;

impl Record {
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.seen.iter().map(|(_, _, id)| id.clone()).collect();
        ids.sort();
        ids
    }

    pub fn shards_of(&self, consumer: &str) -> BTreeSet<u32> {
        self.holders
            .iter()
            .filter(|(_, c)| c.as_str() == consumer)
            .map(|(s, _)| *s)
            .collect()
    }

    pub fn duplicates(&self) -> usize {
        let ids = self.ids();
        ids.len() - ids.iter().collect::<BTreeSet<_>>().len()
    }
}

pub fn config(logstore: &str, group: &str, name: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(logstore, group, name);
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.timeout = Duration::from_secs(3);
    cfg.idle_wait = Duration::from_millis(100);
    cfg.small_pull_wait = Duration::from_millis(20);
    cfg.retry_initial = Duration::from_millis(50);
    cfg.retry_max = Duration::from_millis(500);
    cfg.release_grace = Duration::from_secs(10);
    cfg
}

/// One consumer plus its shard tasks, all owned: `stop` shuts down gracefully, dropping or
/// `kill` aborts everything at once (a crash, as far as the server can tell).
pub struct TestConsumer {
    stop: CancellationToken,
    task: Option<JoinHandle<ShutdownReport>>,
}

impl TestConsumer {
    pub async fn start(client: Client, cfg: ConsumerConfig, record: Recorder) -> Self {
        let name = cfg.consumer.clone();
        let consumer = Consumer::join(client, cfg).await.expect("join the group");
        let stop = CancellationToken::new();
        let task = tokio::spawn(drive(consumer, name, record, stop.clone()));
        Self {
            stop,
            task: Some(task),
        }
    }

    pub async fn stop(mut self) -> ShutdownReport {
        self.stop.cancel();
        self.task.take().unwrap().await.expect("consumer task")
    }

    pub async fn kill(mut self) {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
    }
}

impl Drop for TestConsumer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn drive(
    mut consumer: Consumer,
    name: String,
    record: Recorder,
    stop: CancellationToken,
) -> ShutdownReport {
    let mut shards = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(lease) = consumer.next_lease() => {
                shards.spawn(run_shard(lease, name.clone(), record.clone()));
            }
            Some(done) = shards.join_next(), if !shards.is_empty() => done.expect("shard task"),
        }
    }
    let report = consumer.shutdown().await;
    while let Some(done) = shards.join_next().await {
        done.expect("shard task");
    }
    report
}

async fn run_shard(lease: ShardLease, name: String, record: Recorder) {
    let shard = lease.shard();
    {
        let mut r = record.lock().unwrap();
        if r.holders.insert(shard, name.clone()).is_some() {
            r.overlaps += 1;
        }
        r.leases.push((
            name.clone(),
            shard,
            lease.start_cursor(),
            lease.resumed_from_checkpoint(),
        ));
    }
    let mut reader = lease.reader();
    loop {
        let batch = tokio::select! {
            biased;
            reason = lease.revoked() => {
                record.lock().unwrap().revocations.push((name.clone(), shard, reason));
                break;
            }
            batch = reader.next() => batch,
        };
        let batch = match batch {
            None => break,
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                record.lock().unwrap().errors.push(e.to_string());
                break;
            }
        };
        {
            let mut r = record.lock().unwrap();
            for group in &batch.groups {
                for id in crate::harness::ids(&group.decode().unwrap()) {
                    r.seen.push((name.clone(), shard, id));
                }
            }
        }
        if let Err(e) = lease.commit(batch.next_cursor).await {
            record.lock().unwrap().errors.push(e.to_string());
            break;
        }
        if batch.end_of_shard {
            record.lock().unwrap().drained.push((name.clone(), shard));
            break;
        }
    }
    drop(reader);
    {
        let mut r = record.lock().unwrap();
        if r.holders.get(&shard) == Some(&name) {
            r.holders.remove(&shard);
        }
    }
    lease.release();
}

/// Every shard's group checkpoint equals its end cursor.
async fn checkpoints_at_end(c: &Client, logstore: &str, group: &str) -> bool {
    let Ok(cps) = c.get_checkpoints(logstore, group, None).await else {
        return false;
    };
    let mut all = !cps.is_empty();
    for cp in cps {
        let end = c
            .get_cursor(logstore, cp.shard, CursorPosition::End)
            .await
            .unwrap();
        all &= cp.cursor().ok().flatten() == Some(end);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_reads_every_log_exactly_once_and_checkpoints_land() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 4).await;
    let mut written = fill(&c, "logs", "a", 15, 20).await;
    written.sort();

    let record = Recorder::default();
    let consumer = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("all logs consumed", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    eventually("checkpoints at the end of every shard", || {
        checkpoints_at_end(&c, "logs", "cg")
    })
    .await;

    // More data while running: picked up from the live cursor.
    let mut more = fill(&c, "logs", "b", 2, 5).await;
    written.append(&mut more);
    written.sort();
    eventually("new logs consumed", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    let report = consumer.stop().await;
    assert!(report.unreleased.is_empty(), "{report:?}");

    let r = record.lock().unwrap();
    assert_eq!(r.ids(), written, "exactly once");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.leases.len(), 4);
    assert!(r.leases.iter().all(|(_, _, _, from_cp)| !from_cp));
    assert!(
        r.revocations
            .iter()
            .all(|(_, _, why)| *why == RevokeReason::Shutdown)
    );
    // The emulator holds our checkpoints (also through its own accessor).
    for shard in 0..4 {
        assert!(
            emu.checkpoint(crate::harness::PROJECT, "logs", "cg", shard)
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_shards_and_the_survivor_resumes_after_a_crash() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 4).await;
    let record = Recorder::default();
    let mut written = fill(&c, "logs", "a", 5, 10).await;

    let c1 = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("c1 holds all four shards and read everything", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 4 && r.seen.len() >= written.len()
    })
    .await;

    let joined = Instant::now();
    let c2 = TestConsumer::start(c.clone(), config("logs", "cg", "c2"), record.clone()).await;
    eventually("the shards are split 2/2", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 2 && r.shards_of("c2").len() == 2
    })
    .await;
    println!("rebalance (graceful hand-off) took {:?}", joined.elapsed());
    {
        let r = record.lock().unwrap();
        let moved: Vec<_> = r
            .revocations
            .iter()
            .filter(|(who, _, _)| who == "c1")
            .collect();
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert!(
            moved
                .iter()
                .all(|(_, _, why)| *why == RevokeReason::Reassigned)
        );
        // c2 starts where c1 committed.
        let c2_leases: Vec<_> = r.leases.iter().filter(|l| l.0 == "c2").collect();
        assert!(c2_leases.iter().all(|l| l.3), "{c2_leases:?}");
    }

    written.extend(fill(&c, "logs", "b", 5, 10).await);
    eventually("new logs consumed by both", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    {
        let r = record.lock().unwrap();
        let by_c2: BTreeSet<u32> = r
            .seen
            .iter()
            .filter(|(who, _, id)| who == "c2" && id.starts_with("b-"))
            .map(|(_, s, _)| *s)
            .collect();
        assert_eq!(by_c2, r.shards_of("c2"), "c2 read exactly its shards");
    }
    eventually("all committed before the crash", || {
        checkpoints_at_end(&c, "logs", "cg")
    })
    .await;

    // Crash c1: no shutdown, no final checkpoint, no more heartbeats.
    let crashed = Instant::now();
    let c1_shards = record.lock().unwrap().shards_of("c1");
    c1.kill().await;
    {
        let mut r = record.lock().unwrap();
        for s in &c1_shards {
            r.holders.remove(s);
        }
    }
    written.extend(fill(&c, "logs", "c", 3, 10).await);
    eventually("c2 took over every shard and read the new logs", || async {
        let r = record.lock().unwrap();
        r.shards_of("c2").len() == 4 && r.seen.len() >= written.len()
    })
    .await;
    println!(
        "failover after a crash took {:?} (group timeout 3 s, heartbeat 1 s)",
        crashed.elapsed()
    );
    let report = c2.stop().await;
    assert!(report.unreleased.is_empty());

    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written, "nothing lost, nothing repeated");
    assert_eq!(r.overlaps, 0, "a shard was held by two consumers at once");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let takeovers: Vec<_> = r
        .leases
        .iter()
        .filter(|(who, shard, _, _)| who == "c2" && c1_shards.contains(shard))
        .collect();
    assert!(
        takeovers.iter().all(|l| l.3),
        "resumed from c1's checkpoints: {takeovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_hands_over_from_the_checkpoint_without_repeats() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let record = Recorder::default();
    let mut written = fill(&c, "logs", "a", 4, 10).await;
    let c1 = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("c1 read everything", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    let report = c1.stop().await;
    assert!(report.unreleased.is_empty());

    written.extend(fill(&c, "logs", "b", 4, 10).await);
    let c2 = TestConsumer::start(c.clone(), config("logs", "cg", "c2"), record.clone()).await;
    eventually("c2 read the new logs", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    c2.stop().await;
    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written);
    assert_eq!(r.duplicates(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cursor_restarts_from_the_configured_start() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let mut written = fill(&c, "logs", "a", 3, 4).await;
    written.sort();
    let mut consumer = Consumer::join(c.clone(), config("logs", "cg", "c1"))
        .await
        .unwrap();
    let lease = consumer.next_lease().await.unwrap();
    let bogus = Cursor(lease.start_cursor().0 + 1_000_000);
    let mut reader = lease.reader_from(bogus);
    let mut ids = Vec::new();
    while ids.len() < written.len() {
        let batch = reader.next().await.unwrap().unwrap();
        assert!(
            batch.cursor.0 <= lease.start_cursor().0 + 3,
            "restarted near begin"
        );
        for g in &batch.groups {
            ids.extend(crate::harness::ids(&g.decode().unwrap()));
        }
    }
    ids.sort();
    assert_eq!(ids, written, "re-read from begin");
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

/// The reader's next event, within the deadline.
async fn next(reader: &mut ShardReader) -> ReadEvent {
    tokio::time::timeout(crate::harness::deadline(), reader.next_event())
        .await
        .expect("an event before the deadline")
        .expect("reader open")
        .expect("no read error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_reports_each_catch_up_once() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let mut consumer = Consumer::join(c.clone(), config("logs", "cg", "c1"))
        .await
        .unwrap();
    let lease = consumer.next_lease().await.unwrap();
    let start = lease.start_cursor();
    let mut reader = lease.reader();
    // An empty shard is caught up at once, at the start cursor.
    match next(&mut reader).await {
        ReadEvent::CaughtUp { cursor } => assert_eq!(cursor, start),
        other => panic!("expected CaughtUp at the start, got {other:?}"),
    }
    // Idle pulls (every 100 ms here) say nothing more.
    let quiet = tokio::time::timeout(Duration::from_millis(600), reader.next_event()).await;
    assert!(quiet.is_err(), "idle pulls yielded {quiet:?}");

    // Data: batches, each catch-up reported once, at the position the batches reached.
    let mut written = fill(&c, "logs", "a", 3, 4).await;
    written.sort();
    let end = Cursor(start.0 + 3);
    let (mut ids, mut at, mut last_was_caught_up) = (Vec::new(), start, true);
    loop {
        match next(&mut reader).await {
            ReadEvent::Batch(batch) => {
                assert_eq!(batch.cursor, at, "batches follow each other");
                at = batch.next_cursor;
                last_was_caught_up = false;
                for g in &batch.groups {
                    ids.extend(crate::harness::ids(&g.decode().unwrap()));
                }
            }
            ReadEvent::CaughtUp { cursor } => {
                assert!(!last_was_caught_up, "two CaughtUp without data between");
                assert_eq!(cursor, at, "caught up where the last batch ended");
                last_was_caught_up = true;
                if cursor == end {
                    break;
                }
            }
        }
    }
    ids.sort();
    assert_eq!(ids, written);

    // `next` only yields batches: the catch-up after this one is skipped.
    let more = fill(&c, "logs", "b", 1, 2).await;
    let batch = tokio::time::timeout(crate::harness::deadline(), reader.next())
        .await
        .expect("a batch before the deadline")
        .expect("reader open")
        .expect("no read error");
    assert_eq!(batch.cursor, end);
    assert_eq!(
        crate::harness::ids(&batch.groups[0].decode().unwrap()),
        more
    );
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_is_checked_on_commit_and_wrong_secret_cannot_join() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let mut consumer = Consumer::join(c.clone(), config("logs", "cg", "c1"))
        .await
        .unwrap();
    let lease = consumer.next_lease().await.unwrap();
    let checkpointer = consumer.checkpointer();
    checkpointer
        .commit(0, lease.start_cursor())
        .await
        .expect("holder may commit");
    // The server checks ownership too: another consumer name cannot commit our shard.
    let err = c
        .update_checkpoint("logs", "cg", "c2", 0, lease.start_cursor(), false)
        .await
        .unwrap_err();
    assert!(err.is_shard_lost(), "{err}");
    // A shard we do not hold is refused locally.
    let err = checkpointer.commit(7, Cursor(1)).await.unwrap_err();
    assert!(err.is_shard_lost(), "{err}");
    drop(lease);
    let err = checkpointer.commit(0, Cursor(1)).await.unwrap_err();
    assert!(
        err.is_shard_lost(),
        "released shards cannot be committed: {err}"
    );
    consumer.shutdown().await;

    let wrong = crate::harness::client_with(&emu, "wrong");
    let err = Consumer::join(wrong, config("logs", "cg", "c9"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureNotMatch"), "{err}");
    assert!(err.to_string().contains("SLS_AK_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_shard_is_drained_finished_and_its_children_consumed() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let mut written = fill(&c, "logs", "a", 3, 5).await;
    let record = Recorder::default();
    let consumer = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("the parent's logs are read", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;

    let shards = c
        .split_shard("logs", 0, "80000000000000000000000000000000")
        .await
        .unwrap();
    assert!(shards.len() >= 2, "{shards:?}");
    for key in [
        "10000000000000000000000000000000",
        "c0000000000000000000000000000000",
    ] {
        let g = crate::harness::group(&format!("child-{key}"), 4);
        written.extend(crate::harness::ids(&g));
        c.put_logs("logs", &shipper_sls::Route::HashKey(key.into()), &g)
            .await
            .unwrap();
    }
    eventually(
        "the parent is drained and the children's logs are read",
        || async {
            let r = record.lock().unwrap();
            r.drained == [("c1".to_owned(), 0)] && r.seen.len() >= written.len()
        },
    )
    .await;
    let parent_end = c.get_cursor("logs", 0, CursorPosition::End).await.unwrap();
    let cp = c.get_checkpoints("logs", "cg", Some(0)).await.unwrap();
    assert_eq!(
        cp[0].cursor().unwrap(),
        Some(parent_end),
        "final checkpoint at the end"
    );
    consumer.stop().await;

    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written);
    let parent_leases = r.leases.iter().filter(|l| l.1 == 0).count();
    assert_eq!(
        parent_leases, 1,
        "a finished read-only shard is not handed out again"
    );
    let children: BTreeSet<u32> = r.leases.iter().map(|l| l.1).filter(|s| *s != 0).collect();
    assert_eq!(children.len(), 2, "{:?}", r.leases);
}

/// A consumer behind a proxy the test can cut, with heartbeat 2 s and timeout 3 s: the
/// server expires it after 3 s of silence, it gives up its shards after 5 s.
async fn consumer_behind_proxy(
    emu: &shipper_emulator::EmulatorHandle,
    record: &Recorder,
) -> (crate::proxy::Proxy, TestConsumer) {
    let proxy = crate::proxy::Proxy::start(emu.addr()).await;
    let via = crate::harness::client_at(&proxy.endpoint(), crate::harness::AK_SECRET);
    let mut cfg = config("logs", "cg", "c1");
    cfg.heartbeat_interval = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(3);
    let consumer = TestConsumer::start(via, cfg, record.clone()).await;
    (proxy, consumer)
}

fn revoked_for(record: &Recorder, why: RevokeReason) -> BTreeSet<u32> {
    record
        .lock()
        .unwrap()
        .revocations
        .iter()
        .filter(|r| r.2 == why)
        .map(|r| r.1)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_consumer_drops_its_shards_and_rejoins() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let mut written = fill(&c, "logs", "a", 3, 5).await;
    let record = Recorder::default();
    let (proxy, consumer) = consumer_behind_proxy(&emu, &record).await;
    eventually("c1 holds both shards and read everything", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
    })
    .await;

    // Cut c1 off until the server has expired it: a probe consumer then gets its shards.
    proxy.block();
    eventually("the server expired c1", || async {
        c.heartbeat("logs", "cg", "probe", &[])
            .await
            .is_ok_and(|got| !got.is_empty())
    })
    .await;
    // Back before c1's own give-up deadline (timeout + interval): its next heartbeat lists
    // its shards and gets NotExistConsumerWithBody.
    proxy.unblock();
    eventually("c1 dropped both shards as expired", || async {
        revoked_for(&record, RevokeReason::ConsumerExpired).len() == 2
    })
    .await;
    assert!(revoked_for(&record, RevokeReason::HeartbeatLost).is_empty());

    written.extend(fill(&c, "logs", "b", 3, 5).await);
    eventually(
        "c1 re-joined, got the shards back and read the new logs",
        || async {
            let r = record.lock().unwrap();
            r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
        },
    )
    .await;
    consumer.stop().await;
    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written, "resumed from the checkpoints");
    assert_eq!(r.leases.iter().filter(|l| l.3).count(), 2);
}

/// A process paused past the group timeout (SIGSTOP, a frozen VM): the whole runtime, the
/// emulator included, stops for longer than the timeout. On waking, the consumer's own lease
/// clock gives the shards up as lost before its next heartbeat goes out, rather than after
/// the server's answer (which would say the consumer expired): meanwhile another consumer
/// may already be reading them.
#[tokio::test(flavor = "current_thread")]
async fn a_consumer_paused_past_the_timeout_gives_its_shards_up_before_the_next_heartbeat() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let mut written = fill(&c, "logs", "a", 2, 5).await;
    let record = Recorder::default();
    let consumer = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("c1 holds both shards", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
    })
    .await;

    // Freeze every task of this runtime for longer than the 3 s group timeout.
    std::thread::sleep(Duration::from_secs(5));
    eventually("both leases revoked as lost", || async {
        revoked_for(&record, RevokeReason::HeartbeatLost).len() == 2
    })
    .await;
    assert!(
        revoked_for(&record, RevokeReason::ConsumerExpired).is_empty(),
        "the shards were still held when the server's answer came"
    );

    written.extend(fill(&c, "logs", "b", 2, 5).await);
    eventually(
        "c1 re-joined, got the shards back and read the new logs",
        || async {
            let r = record.lock().unwrap();
            r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
        },
    )
    .await;
    consumer.stop().await;
    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written, "resumed from the checkpoints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_revoked_when_heartbeats_fail_past_the_timeout() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let mut written = fill(&c, "logs", "a", 2, 5).await;
    let record = Recorder::default();
    let (proxy, consumer) = consumer_behind_proxy(&emu, &record).await;
    eventually("c1 holds both shards", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
    })
    .await;

    let cut = Instant::now();
    proxy.block();
    eventually("both leases revoked for lost heartbeats", || async {
        revoked_for(&record, RevokeReason::HeartbeatLost).len() == 2
    })
    .await;
    let waited = cut.elapsed();
    println!("leases revoked {waited:?} after the network was cut (timeout 3 s + interval 2 s)");
    assert!(
        waited >= Duration::from_secs(3),
        "not before the group timeout: {waited:?}"
    );

    proxy.unblock();
    written.extend(fill(&c, "logs", "b", 2, 5).await);
    eventually("c1 recovered its shards and read the new logs", || async {
        let r = record.lock().unwrap();
        r.shards_of("c1").len() == 2 && r.seen.len() >= written.len()
    })
    .await;
    consumer.stop().await;
    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_is_recreated_and_consumption_restarts() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let written = fill(&c, "logs", "a", 2, 5).await;
    let record = Recorder::default();
    let consumer = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("c1 read everything", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;

    c.delete_consumer_group("logs", "cg").await.unwrap();
    eventually(
        "both leases revoked because the group was re-created",
        || async { revoked_for(&record, RevokeReason::GroupRecreated).len() == 2 },
    )
    .await;
    eventually("the group exists again and c1 holds its shards", || async {
        let exists = c
            .list_consumer_groups("logs")
            .await
            .is_ok_and(|g| g.iter().any(|g| g.name == "cg" && g.timeout == 3));
        exists && record.lock().unwrap().shards_of("c1").len() == 2
    })
    .await;
    // The checkpoints went with the group: the configured start (begin) applies again.
    eventually("everything read a second time", || async {
        record.lock().unwrap().seen.len() >= 2 * written.len()
    })
    .await;
    consumer.stop().await;
    let r = record.lock().unwrap();
    let fresh: Vec<_> = r.leases.iter().skip(2).collect();
    assert!(fresh.iter().all(|l| !l.3), "{fresh:?}");
    assert_eq!(r.duplicates(), written.len());
}
