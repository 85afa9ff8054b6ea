//! Server faults injected by the emulator (`emu.faults()`) while the consumer works:
//! - transient PullLogs failures (5xx, quota, dropped connection) are retried with backoff from
//!   the same cursor, and every log is still read exactly once, in order;
//! - failing heartbeats, checkpoint commits, GetCheckPoint/GetCursor and group creation are
//!   retried without losing the lease, the checkpoint or the start position;
//! - a corrupt PullLogs body (bad lz4, truncated protobuf) is not retried: the reader yields a
//!   decode error naming the shard, the cursor and the layer, then ends. Nothing is skipped:
//!   re-reading from the last checkpoint (what `shipper run` does after releasing the shard)
//!   reads the logs after the fault once it has cleared;
//! - `ConsumerStats` counts each of these retries under its call and cause, and each reader
//!   stop under its kind; its heartbeat age grows while heartbeats fail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shipper_emulator::{Api, ApiError, EmulatorHandle, Fault, FaultRule};
use shipper_sls::{
    ConsumerConfig, ConsumerStats, Cursor, CursorPosition, ReadErrorKind, ReadEvent, RetriedCall,
    RetryCause, RevokeReason, ShardReader, SlsError,
};
use tokio::time::Instant;

use crate::consumer::{Recorder, TestConsumer, config};
use crate::harness::{
    PROJECT, batch_ids, client, deadline, emulator, eventually, fill, next_batch, setup, sole_lease,
};

/// The faults a consumer must ride out without losing or repeating anything.
fn transient() -> [Fault; 4] {
    [
        Fault::InternalServerError,
        Fault::ServerBusy,
        Fault::ReadQuotaExceed,
        Fault::DropConnection,
    ]
}

/// One LogGroup per pull, so a test sees many pulls (and faults between batches).
fn one_group_per_pull(mut cfg: ConsumerConfig) -> ConsumerConfig {
    cfg.fetch_count = 1;
    cfg.target_pull_bytes = 0;
    cfg
}

async fn next_event(reader: &mut ShardReader) -> Option<Result<ReadEvent, SlsError>> {
    tokio::time::timeout(deadline(), reader.next_event())
        .await
        .expect("a reader event before the deadline")
}

fn checkpoint(emu: &EmulatorHandle, shard: u32) -> Option<Cursor> {
    emu.checkpoint(PROJECT, "logs", "cg", shard)
        .unwrap()
        .map(|c| Cursor::parse(&c).unwrap())
}

/// Gaps between consecutive injections.
fn gaps(at: &[Instant]) -> Vec<Duration> {
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_faults_are_retried_with_backoff_from_the_failed_cursor() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "a", 6, 3).await;
    let cfg = one_group_per_pull(config("logs", "cg", "c1"));
    let retry_initial = cfg.retry_initial;
    let (consumer, lease) = sole_lease(&c, cfg).await;
    let start = lease.start_cursor();

    // Every kind of transient fault, one after the other, on the very first pull.
    let faults = emu.faults();
    for fault in transient() {
        faults.fail_next(Api::PullLogs, 1, fault);
    }
    let mut reader = lease.reader();
    let (mut read, mut delivered, mut at) = (Vec::new(), Vec::new(), start);
    while read.len() < written.len() {
        let batch = next_batch(&mut reader).await;
        assert_eq!(batch.cursor, at, "batches follow each other: none skipped");
        at = batch.next_cursor;
        delivered.push(batch.cursor);
        read.extend(batch_ids(&batch));
        lease.commit(batch.next_cursor).await.unwrap();
        if delivered.len() == 1 {
            // And more in mid-stream, on whatever pull comes next.
            faults.fail_next(Api::PullLogs, 2, Fault::ReadQuotaExceed);
            faults.fail_next(Api::PullLogs, 1, Fault::DropConnection);
            faults.fail_next(Api::PullLogs, 1, Fault::InternalServerError);
        }
    }
    assert_eq!(read, written, "every log once, in order");
    eventually("the mid-stream faults were hit", || async {
        faults.pending() == 0
    })
    .await;
    assert_eq!(checkpoint(&emu, 0), Some(at), "checkpoint at the end");

    let log = faults.injected_on(Api::PullLogs);
    assert_eq!(log.len(), 8);
    // Each failed pull was retried from its own cursor: a position the reader then delivered
    // from (or the end, for an idle pull), never one past undelivered data.
    for i in &log {
        let cursor = Cursor::parse(i.cursor.as_deref().unwrap()).unwrap();
        assert!(
            delivered.contains(&cursor) || cursor == at,
            "{cursor} failed but is neither a delivered batch's start nor the end"
        );
    }
    // The first four hit the first pull, with exponential backoff between the retries: at
    // least half of each ceiling (equal jitter), which doubles from retry_initial.
    assert!(log[..4].iter().all(|i| i.cursor == Some(start.encode())));
    let at_start: Vec<Instant> = log[..4].iter().map(|i| i.at).collect();
    for (k, gap) in gaps(&at_start).into_iter().enumerate() {
        let floor = retry_initial * (1 << k) / 2;
        assert!(
            gap >= floor,
            "retry {k} came after {gap:?}, before {floor:?}"
        );
    }
    assert!(!lease.is_revoked());
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_pull_faults_on_every_shard_lose_and_repeat_nothing() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 4).await;
    let mut written = fill(&c, "logs", "a", 8, 5).await;
    let faults = emu.faults();
    faults.seed(42);
    // About one pull in three fails, with any of the transient faults.
    for fault in transient() {
        faults.add(FaultRule::new(Api::PullLogs, fault).probability(0.1));
    }
    let record = Recorder::default();
    let consumer = TestConsumer::start(
        c.clone(),
        one_group_per_pull(config("logs", "cg", "c1")),
        record.clone(),
    )
    .await;
    eventually("all logs read through the faults", || async {
        record.lock().unwrap().seen.len() >= written.len()
    })
    .await;
    // Idle pulls keep the faults coming if the data ran out first.
    eventually("at least 20 faults injected", || async {
        faults.injected().len() >= 20
    })
    .await;
    faults.clear();
    eventually("every checkpoint at its shard's end", || async {
        let mut all = true;
        for shard in 0..4 {
            let end = c
                .get_cursor("logs", shard, CursorPosition::End)
                .await
                .unwrap();
            all &= checkpoint(&emu, shard) == Some(end);
        }
        all
    })
    .await;
    let report = consumer.stop().await;
    assert!(report.unreleased.is_empty(), "{report:?}");

    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written, "exactly once");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.leases.len(), 4, "a transient fault never costs a lease");
    assert!(
        r.revocations
            .iter()
            .all(|(_, _, why)| *why == RevokeReason::Shutdown),
        "{:?}",
        r.revocations
    );
    // In order within each shard: ids are `a-s{shard}-g{group}-{i}`, written in that order.
    for shard in 0..4 {
        let seen: Vec<&String> = r
            .seen
            .iter()
            .filter(|(_, s, _)| *s == shard)
            .map(|(_, _, id)| id)
            .collect();
        let mut sorted = seen.clone();
        sorted.sort_by_key(|id| {
            let (g, i) = id.rsplit_once("-g").unwrap().1.split_once('-').unwrap();
            (g.parse::<u32>().unwrap(), i.parse::<u32>().unwrap())
        });
        assert_eq!(seen, sorted, "shard {shard} read out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_faults_shorter_than_the_timeout_keep_the_lease() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let mut cfg = config("logs", "cg", "c1");
    cfg.heartbeat_interval = Duration::from_millis(300);
    cfg.timeout = Duration::from_secs(3);
    let (interval, timeout) = (cfg.heartbeat_interval, cfg.timeout);
    let (consumer, lease) = sole_lease(&c, cfg).await;
    let mut reader = lease.reader();

    // Four heartbeats in a row fail (~1.2 s of silence, under the 3 s group timeout).
    let faults = emu.faults();
    let began = Instant::now();
    for fault in transient() {
        faults.fail_next(Api::Heartbeat, 1, fault);
    }
    let written = fill(&c, "logs", "a", 3, 2).await;
    let mut read = Vec::new();
    while read.len() < written.len() {
        let batch = next_batch(&mut reader).await;
        read.extend(batch_ids(&batch));
        lease.commit(batch.next_cursor).await.unwrap();
    }
    assert_eq!(read, written, "reading went on while heartbeats failed");
    eventually("the heartbeat faults were hit", || async {
        faults.pending() == 0
    })
    .await;
    // Failed heartbeats are retried at the heartbeat interval, not in a tight loop.
    let at: Vec<Instant> = faults
        .injected_on(Api::Heartbeat)
        .iter()
        .map(|i| i.at)
        .collect();
    for gap in gaps(&at) {
        assert!(gap >= interval, "heartbeat retried after {gap:?}");
    }

    // The lease must survive past the point where the first failure plus the give-up
    // deadline (timeout + interval) would have revoked it, had the heartbeats not
    // recovered. This waits for that moment: the check is that nothing happens by then.
    tokio::time::sleep_until(began + timeout + interval * 2).await;
    assert!(!lease.is_revoked(), "{:?}", lease.revoke_reason());
    assert_eq!(consumer.held_shards(), vec![0]);
    // The server agrees: a newcomer gets nothing, and an ownership-checked commit
    // (forceSuccess=false) still succeeds.
    assert_eq!(
        c.heartbeat("logs", "cg", "probe", &[]).await.unwrap(),
        Vec::<u32>::new()
    );
    let more = fill(&c, "logs", "b", 1, 2).await;
    let batch = next_batch(&mut reader).await;
    assert_eq!(batch_ids(&batch), more);
    lease.commit(batch.next_cursor).await.unwrap();
    assert_eq!(checkpoint(&emu, 0), Some(batch.next_cursor));
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_faults_are_retried_and_the_checkpoint_is_never_lost() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "a", 3, 2).await;
    let cfg = one_group_per_pull(config("logs", "cg", "c1"));
    let retry_initial = cfg.retry_initial;
    let (consumer, lease) = sole_lease(&c, cfg).await;
    let mut reader = lease.reader();
    let faults = emu.faults();

    // Two failures: the commit retries (with backoff) and lands.
    let b1 = next_batch(&mut reader).await;
    faults.fail_next(Api::UpdateCheckpoint, 1, Fault::InternalServerError);
    faults.fail_next(Api::UpdateCheckpoint, 1, Fault::DropConnection);
    lease.commit(b1.next_cursor).await.unwrap();
    assert_eq!(checkpoint(&emu, 0), Some(b1.next_cursor));
    let log = faults.injected_on(Api::UpdateCheckpoint);
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|i| i.shard == Some(0) && i.cursor == Some(b1.next_cursor.encode())),
        "{log:?}"
    );
    assert!(log[1].at - log[0].at >= retry_initial / 2);

    // More failures than a commit's attempts: a retryable error, the lease kept, and the
    // checkpoint where it was (not lost, not moved).
    let b2 = next_batch(&mut reader).await;
    faults.fail_next(Api::UpdateCheckpoint, 3, Fault::ServerBusy);
    let e = lease.commit(b2.next_cursor).await.unwrap_err();
    assert!(e.is_retryable() && !e.is_shard_lost(), "{e}");
    assert_eq!(e.code(), Some("ServerBusy"));
    assert_eq!(checkpoint(&emu, 0), Some(b1.next_cursor));
    assert!(!lease.is_revoked());
    assert_eq!(consumer.held_shards(), vec![0]);

    // The next commit supersedes it.
    let b3 = next_batch(&mut reader).await;
    lease.commit(b3.next_cursor).await.unwrap();
    assert_eq!(checkpoint(&emu, 0), Some(b3.next_cursor));
    let read: Vec<String> = [&b1, &b2, &b3].into_iter().flat_map(batch_ids).collect();
    assert_eq!(read, written);
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_position_faults_are_retried_not_replaced_by_another_position() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "a", 4, 2).await;
    let begin = c
        .get_cursor("logs", 0, CursorPosition::Begin)
        .await
        .unwrap();
    let faults = emu.faults();

    // A fresh group: creating it, reading the (empty) checkpoint and GetCursor all fail first.
    faults.fail_next(Api::CreateConsumerGroup, 2, Fault::ServerBusy);
    faults.fail_next(Api::GetCheckpoint, 1, Fault::InternalServerError);
    faults.fail_next(Api::GetCursor, 2, Fault::ReadQuotaExceed);
    let cfg = one_group_per_pull(config("logs", "cg", "c1"));
    let (consumer, lease) = sole_lease(&c, cfg.clone()).await;
    assert_eq!(faults.pending(), 0);
    assert_eq!(lease.start_cursor(), begin, "the configured start (begin)");
    assert!(!lease.resumed_from_checkpoint());
    let mut reader = lease.reader();
    let mut read = Vec::new();
    let mut mid = begin;
    for _ in 0..2 {
        let batch = next_batch(&mut reader).await;
        read.extend(batch_ids(&batch));
        lease.commit(batch.next_cursor).await.unwrap();
        mid = batch.next_cursor;
    }
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());

    // Restart: GetCheckPoint fails three ways, and the consumer must keep asking for the
    // checkpoint rather than fall back to the configured start (GetCursor must not be used:
    // its rule stays armed).
    faults.fail_next(Api::GetCheckpoint, 1, Fault::InternalServerError);
    faults.fail_next(Api::GetCheckpoint, 1, Fault::DropConnection);
    faults.fail_next(Api::GetCheckpoint, 1, Fault::ReadQuotaExceed);
    faults.fail_next(Api::GetCursor, 1, Fault::InternalServerError);
    let (consumer, lease) = sole_lease(&c, cfg).await;
    assert_eq!(lease.start_cursor(), mid);
    assert!(lease.resumed_from_checkpoint());
    assert_eq!(faults.pending(), 1, "only the GetCursor rule is left");
    let checkpoint_faults = faults.injected_on(Api::GetCheckpoint);
    assert_eq!(checkpoint_faults.len(), 4);
    assert!(checkpoint_faults.iter().all(|i| i.shard == Some(0)));
    let mut reader = lease.reader();
    while read.len() < written.len() {
        read.extend(batch_ids(&next_batch(&mut reader).await));
    }
    assert_eq!(read, written, "resumed exactly after the checkpoint");
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

/// Reads a shard to its end, then injects `fault` into the next pull with data: the reader
/// must yield a typed decode error naming shard, cursor and `layer`, end, and leave nothing
/// behind: a reader from the checkpoint reads the rest once the fault has cleared.
async fn corrupt_body_is_an_error_and_nothing_is_skipped(fault: Fault, layer: &str) {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let first = fill(&c, "logs", "a", 3, 2).await;
    let (consumer, lease) = sole_lease(&c, config("logs", "cg", "c1")).await;
    let mut reader = lease.reader();
    let mut read = Vec::new();
    let end = loop {
        match next_event(&mut reader).await {
            Some(Ok(ReadEvent::Batch(batch))) => {
                read.extend(batch_ids(&batch));
                lease.commit(batch.next_cursor).await.unwrap();
            }
            Some(Ok(ReadEvent::CaughtUp { cursor })) if read.len() == first.len() => break cursor,
            Some(Ok(ReadEvent::CaughtUp { .. })) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(read, first);

    // The reader is idle at `end`: body faults only fire on a pull with data, so the next
    // data pull is the one that gets it, at a known cursor.
    emu.faults().fail_next(Api::PullLogs, 1, fault);
    let second = fill(&c, "logs", "b", 3, 2).await;
    let e = match next_event(&mut reader).await {
        Some(Err(e)) => e,
        other => panic!("expected a read error, got {other:?}"),
    };
    assert!(matches!(e, SlsError::Decode { .. }), "{e}");
    assert!(
        !e.is_retryable(),
        "the same request would get the same bytes: {e}"
    );
    let text = e.to_string();
    assert!(text.contains("shard 0"), "{text}");
    assert!(text.contains(&format!("cursor {end}")), "{text}");
    assert!(text.to_lowercase().contains(layer), "{text}");
    // Stopped, not skipped past: nothing more from this reader, and the checkpoint did not
    // move beyond what was delivered.
    assert!(next_event(&mut reader).await.is_none(), "the reader ended");
    assert_eq!(checkpoint(&emu, 0), Some(end));
    assert!(!lease.is_revoked(), "a bad body does not revoke the lease");

    // The fault has cleared (it fired once): re-reading from the checkpoint gets the rest.
    assert_eq!(emu.faults().pending(), 0);
    let mut reader = lease.reader_from(checkpoint(&emu, 0).unwrap());
    let mut rest = Vec::new();
    while rest.len() < second.len() {
        let batch = next_batch(&mut reader).await;
        rest.extend(batch_ids(&batch));
        lease.commit(batch.next_cursor).await.unwrap();
    }
    assert_eq!(rest, second);
    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_lz4_body_is_an_error_naming_shard_and_cursor() {
    corrupt_body_is_an_error_and_nothing_is_skipped(Fault::CorruptLz4, "lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_protobuf_body_is_an_error_naming_shard_and_cursor() {
    corrupt_body_is_an_error_and_nothing_is_skipped(Fault::TruncatedProtobuf, "protobuf").await;
}

/// The whole consumer: a shard task that gets a read error releases its lease (as `shipper
/// run` does, after a pause); the heartbeat hands the shard back, and the new lease resumes
/// from the checkpoint, so the corrupt batch is read once the fault is gone and nothing
/// else is read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_corrupt_body_the_shard_resumes_from_its_checkpoint() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    let mut written = fill(&c, "logs", "a", 3, 4).await;
    let record = Recorder::default();
    let consumer = TestConsumer::start(c.clone(), config("logs", "cg", "c1"), record.clone()).await;
    eventually("the first logs read and committed", || async {
        let read = record.lock().unwrap().seen.len() >= written.len();
        read && (0..2).all(|s| checkpoint(&emu, s).is_some())
    })
    .await;

    emu.faults().add(
        FaultRule::new(Api::PullLogs, Fault::TruncatedProtobuf)
            .shard(1)
            .times(1),
    );
    written.extend(fill(&c, "logs", "b", 3, 4).await);
    eventually("the rest read, after a second lease of shard 1", || async {
        let r = record.lock().unwrap();
        r.seen.len() >= written.len() && r.leases.iter().filter(|l| l.1 == 1).count() == 2
    })
    .await;
    consumer.stop().await;

    let r = record.lock().unwrap();
    written.sort();
    assert_eq!(r.ids(), written, "nothing skipped, nothing repeated");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].contains("shard 1") && r.errors[0].contains("protobuf"),
        "{}",
        r.errors[0]
    );
    let again: Vec<_> = r.leases.iter().filter(|l| l.1 == 1).skip(1).collect();
    assert!(
        again.iter().all(|l| l.3),
        "resumed from the checkpoint: {again:?}"
    );
    assert_eq!(r.leases.iter().filter(|l| l.1 == 0).count(), 1);
}

/// The non-zero retry counters as `(call, cause) → count`.
fn retry_table(stats: &ConsumerStats) -> BTreeMap<(&'static str, &'static str), u64> {
    let mut out = BTreeMap::new();
    for call in RetriedCall::ALL {
        for cause in RetryCause::ALL {
            let n = stats.retries(call, cause);
            if n > 0 {
                out.insert((call.as_str(), cause.as_str()), n);
            }
        }
    }
    out
}

/// Every retry the worker makes is counted once under the call it repeats and the cause of
/// the injected fault (nothing else is counted); a commit that gives up after its attempts
/// counts only the attempts it repeated; a corrupt body counts one decode stop; and the
/// heartbeat age climbs past the interval while heartbeats fail, then drops again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_stats_count_each_retry_by_call_and_cause() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "a", 3, 2).await;
    let stats = Arc::new(ConsumerStats::new());
    let mut cfg = one_group_per_pull(config("logs", "cg", "c1"));
    cfg.heartbeat_interval = Duration::from_millis(300);
    cfg.timeout = Duration::from_secs(3);
    cfg.stats = Some(stats.clone());
    let interval = cfg.heartbeat_interval;
    let faults = emu.faults();

    // Joining a fresh group and resolving the start cursor.
    faults.fail_next(Api::CreateConsumerGroup, 2, Fault::ServerBusy);
    faults.fail_next(Api::GetCheckpoint, 1, Fault::ReadQuotaExceed);
    faults.fail_next(Api::GetCursor, 1, Fault::DropConnection);
    let (consumer, lease) = sole_lease(&c, cfg).await;
    assert_eq!(faults.pending(), 0);
    assert!(
        stats.last_heartbeat().is_some(),
        "heartbeating started with the join"
    );

    // Pulls: every transient kind on the first one.
    for fault in transient() {
        faults.fail_next(Api::PullLogs, 1, fault);
    }
    let mut reader = lease.reader();
    let mut read = Vec::new();
    let mut commits = 0;
    while read.len() < written.len() {
        let batch = next_batch(&mut reader).await;
        read.extend(batch_ids(&batch));
        match commits {
            // One failure, then the commit lands.
            0 => faults.fail_next(Api::UpdateCheckpoint, 1, Fault::InternalServerError),
            // More failures than a commit's three attempts: two repeats, then the error.
            1 => faults.fail_next(Api::UpdateCheckpoint, 3, Fault::DropConnection),
            _ => {}
        }
        let committed = lease.commit(batch.next_cursor).await;
        assert_eq!(committed.is_err(), commits == 1, "{committed:?}");
        commits += 1;
    }
    assert_eq!(read, written);

    // Two heartbeats fail (a 503, then a rejection that is repeated all the same): the age
    // passes two intervals, and falls back under one once a heartbeat succeeds.
    let fresh = stats.heartbeat_age().expect("a heartbeat");
    assert!(fresh < interval * 2, "{fresh:?}");
    faults.fail_next(Api::Heartbeat, 1, Fault::ServerBusy);
    faults.fail_next(
        Api::Heartbeat,
        1,
        Fault::Error(ApiError::new(400, "ParameterInvalid", "injected rejection")),
    );
    eventually("the heartbeat age to pass two intervals", || async {
        stats.heartbeat_age().unwrap() > interval * 2
    })
    .await;
    eventually("a heartbeat to succeed after the faults", || async {
        faults.pending() == 0 && stats.heartbeat_age().unwrap() < interval
    })
    .await;
    assert!(!lease.is_revoked(), "{:?}", lease.revoke_reason());

    // A corrupt body on the next data pull stops the reader: one decode stop.
    let end = match next_event(&mut reader).await {
        Some(Ok(ReadEvent::CaughtUp { cursor })) => cursor,
        other => panic!("expected a catch-up, got {other:?}"),
    };
    faults.fail_next(Api::PullLogs, 1, Fault::CorruptLz4);
    fill(&c, "logs", "b", 1, 2).await;
    match next_event(&mut reader).await {
        Some(Err(SlsError::Decode { .. })) => {}
        other => panic!("expected a decode error after {end}, got {other:?}"),
    }

    let want: BTreeMap<(&str, &str), u64> = [
        (("create_group", "server"), 2),
        (("get_checkpoint", "quota"), 1),
        (("get_cursor", "transport"), 1),
        (("pull", "server"), 2),
        (("pull", "quota"), 1),
        (("pull", "transport"), 1),
        (("checkpoint", "server"), 1),
        (("checkpoint", "transport"), 2),
        (("heartbeat", "server"), 1),
        (("heartbeat", "other"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(retry_table(&stats), want, "{:?}", faults.injected());
    // Every injected fault but the commit's last attempt (returned, not repeated) and the
    // corrupt body (a stop, not a retry) is one retry.
    assert_eq!(
        want.values().sum::<u64>() + 2,
        faults.injected().len() as u64
    );
    let stops: Vec<u64> = ReadErrorKind::ALL
        .iter()
        .map(|k| stats.read_errors(*k))
        .collect();
    assert_eq!(stops, [1, 0, 0], "decode, protocol, api");

    drop(reader);
    drop(lease);
    assert!(consumer.shutdown().await.unreleased.is_empty());
}
