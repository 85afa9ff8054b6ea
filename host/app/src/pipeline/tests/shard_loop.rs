//! The loop's own rules, apart from what one send or one sink does: when open batches go
//! (linger), when it stops pulling (back-pressure), how it ends (taken away after reading to
//! the end, or while waiting for a send slot), how small a memory share may cut a send, and
//! how a shard over its memory share waits for its own sends.

use super::*;

/// A stream of `events` that yields one every `every` (test time), then stays open.
fn paced(
    events: Vec<ReadEvent>,
    every: Duration,
) -> futures::stream::BoxStream<'static, Result<ReadEvent, shipper_sls::SlsError>> {
    futures::stream::iter(events)
        .then(move |e| async move {
            tokio::time::sleep(every).await;
            Ok(e)
        })
        .chain(futures::stream::pending())
        .boxed()
}

fn sends(sink: &MemorySink) -> usize {
    sink.sends.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_shard_end_says_whether_its_position_was_committed() {
    assert_eq!(ShardEnd::Committed.as_str(), "committed");
    for end in [ShardEnd::NotOurs, ShardEnd::Incomplete] {
        assert!(
            end.as_str().contains("not committed"),
            "{end:?}: {}",
            end.as_str()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn lingering_sends_also_stop_at_the_in_flight_limit() {
    // Batches that never fill go out by linger, not by size: the loop must stop pulling
    // once the sink holds `max_in_flight` of them, as it does for full batches.
    let sink = MemorySink::new(100);
    sink.hold.send_replace(true);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let events = paced(batches(30, 1), Duration::from_millis(30));
    let run = rig.run_stream(events, checkpoints.clone(), revocation.clone(), None);
    let drive = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let max = rig.ctx.options.max_in_flight;
        assert_eq!(sends(&sink), max, "sends beyond the in-flight limit");
        sink.hold.send_replace(false);
        eventually_async(|| checkpoints.last() == Some(Cursor(30))).await;
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    // The held sends were released together: they may land in any order.
    let mut seqs = sink.accepted_seqs();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..30).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn each_sink_sends_its_open_batch_after_its_own_linger() {
    let fast = MemorySink::new(100).with_linger(Duration::from_millis(20));
    let slow = MemorySink::new(100).with_linger(Duration::from_secs(1));
    let rig = Rig::with_sinks(vec![sink("fast", fast.clone()), sink("slow", slow.clone())]).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let run = rig.run(batches(1, 2), true, checkpoints.clone(), revocation.clone());
    let drive = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(sends(&fast), 1, "the fast sink's linger passed");
        assert_eq!(sends(&slow), 0, "the slow sink's linger has not passed");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(sends(&slow), 1, "the slow sink's linger passed");
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(checkpoints.last(), Some(Cursor(1)));
}

#[tokio::test]
async fn a_shard_read_to_its_end_but_taken_away_before_its_last_sends_settle_abandons_them() {
    // The reader is done (a read-only shard after a split, or the end of a test stream)
    // while two sends wait in the sink; the lease is lost meanwhile. Waiting for them to
    // commit would deliver them after the next owner re-read them.
    let sink = MemorySink::new(2);
    sink.hold.send_replace(true);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let run = rig.run(
        batches(2, 2),
        false,
        checkpoints.clone(),
        revocation.clone(),
    );
    let drive = async {
        eventually_async(|| sends(&sink) == 2).await;
        revocation.revoke(RevokeReason::HeartbeatLost);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::NotOurs);
    sink.hold.send_replace(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sink.accepted_seqs(), Vec::<usize>::new());
    assert!(checkpoints.commits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_shard_waiting_for_a_send_slot_notices_it_was_taken_away() {
    // Every slot is taken by a sink that does not answer (a consumer cut off from both SLS
    // and the SIEM); the shard must end on the revocation, not when the sink comes back.
    let sink = MemorySink::new(1);
    sink.hold.send_replace(true);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let run = rig.run(
        batches(20, 1),
        true,
        checkpoints.clone(),
        revocation.clone(),
    );
    let drive = async {
        let max = rig.ctx.options.max_in_flight;
        eventually_async(|| sends(&sink) == max).await;
        revocation.revoke(RevokeReason::HeartbeatLost);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::NotOurs);
    sink.hold.send_replace(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sink.accepted_seqs(), Vec::<usize>::new());
    assert!(checkpoints.commits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_small_memory_share_still_sends_batches_of_at_least_64_kib() {
    // Cutting sends to an eighth of a tiny share would make one request per few events;
    // below 64 KiB per-request costs dominate, so that is the floor.
    let sink = MemorySink::new(100_000);
    let rig = Rig::new(sink.clone()).await;
    let budget = MemoryBudget::new(4 << 10);
    let share = Arc::new(budget.share());
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let run = rig.run_with_memory(
        batches(1, 2_000),
        false,
        checkpoints.clone(),
        revocation,
        Some(share),
    );
    assert_eq!(run.await, ShardEnd::Committed);
    let bytes: usize = sink.accepted.lock().unwrap().iter().map(String::len).sum();
    assert!(
        bytes > 4 << 10,
        "the events outweigh the share ({bytes} bytes)"
    );
    assert!(
        bytes < 64 << 10,
        "the events fit one 64 KiB send ({bytes} bytes)"
    );
    assert_eq!(sends(&sink), 1);
    assert_eq!(sink.accepted_seqs(), (0..2_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn delivered_events_count_what_the_sink_accepted_not_what_it_refused() {
    let sink = MemorySink::new(100);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let logs = [Log::ok(0), Log::sink_rejected(1), Log::ok(2)];
    let end = rig
        .run_to_end(vec![pulled(0, &[&logs])], &checkpoints)
        .await;
    assert_eq!(end, ShardEnd::Committed);
    let text = rig.ctx.metrics.encode();
    let line = text
        .lines()
        .find(|l| l.starts_with("shipper_events_out_total{") && l.contains("sink=\"default\""))
        .unwrap_or_else(|| panic!("no delivered-events series: {text}"));
    assert!(line.ends_with(" 2"), "{line}");
}

#[tokio::test]
async fn one_pulled_batch_larger_than_the_in_flight_limit_waits_for_slots_within_the_batch() {
    // One PullLogs answer can hold many sends' worth of events (here 20 LogGroups, each a
    // plugin call that fills a send): the in-flight limit must hold inside a batch too, not
    // only between pulls.
    let sink = MemorySink::new(1);
    sink.hold.send_replace(true);
    let rig = Rig::new(sink.clone()).await;
    let checkpoints = Arc::new(RecordedCheckpoints::default());
    let revocation = Arc::new(Revocation::new());
    let groups: Vec<Vec<Log>> = (0..20).map(|i| oks(i, i + 1)).collect();
    let groups: Vec<&[Log]> = groups.iter().map(Vec::as_slice).collect();
    let run = rig.run(
        vec![pulled(0, &groups)],
        true,
        checkpoints.clone(),
        revocation.clone(),
    );
    let drive = async {
        let max = rig.ctx.options.max_in_flight;
        eventually_async(|| sends(&sink) >= max).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sends(&sink), max, "sends beyond the in-flight limit");
        sink.hold.send_replace(false);
        eventually_async(|| checkpoints.last() == Some(Cursor(20))).await;
        revocation.revoke(RevokeReason::Shutdown);
    };
    let (end, ()) = tokio::join!(run, drive);
    assert_eq!(end, ShardEnd::Committed);
    let mut seqs = sink.accepted_seqs();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
}

/// A shard whose sink holds its sends, with 256 KiB of a 512 KiB memory budget and none to
/// borrow: the other share is idle but owed. Each send holds a buffer of at least 64 KiB.
struct HeldShard {
    sink: MemorySink,
    rig: Rig,
    budget: Arc<MemoryBudget>,
    share: Arc<BudgetShare>,
    _idle: BudgetShare,
    checkpoints: Arc<RecordedCheckpoints>,
    revocation: Arc<Revocation>,
}

impl HeldShard {
    async fn new() -> Self {
        let sink = MemorySink::new(1);
        sink.hold.send_replace(true);
        let rig = Rig::new(sink.clone()).await;
        let budget = MemoryBudget::new(512 << 10);
        Self {
            sink,
            rig,
            share: Arc::new(budget.share()),
            _idle: budget.share(),
            budget,
            checkpoints: Arc::new(RecordedCheckpoints::default()),
            revocation: Arc::new(Revocation::new()),
        }
    }

    /// Runs the shard over one pull of `groups`; the reader then stays open.
    async fn run(&self, groups: &[&[Log]]) -> ShardEnd {
        self.rig
            .run_with_memory(
                vec![pulled(0, groups)],
                true,
                self.checkpoints.clone(),
                self.revocation.clone(),
                Some(self.share.clone()),
            )
            .await
    }

    /// Lets the sends go, waits for the commit of `end` and ends the shard.
    async fn release_until(&self, end: Cursor) {
        self.sink.hold.send_replace(false);
        eventually_async(|| self.checkpoints.last() == Some(end)).await;
        self.revocation.revoke(RevokeReason::Shutdown);
    }
}

#[tokio::test]
async fn a_shard_over_its_memory_share_lets_its_sends_settle_before_making_more() {
    // Rendered events are charged without waiting (they exist already), so a slow sink
    // could let a shard's sends in flight outgrow its share; the loop waits for its own
    // sends instead, well before the in-flight limit.
    let h = HeldShard::new().await;
    let groups: Vec<Vec<Log>> = (0..20).map(|i| oks(i, i + 1)).collect();
    let groups: Vec<&[Log]> = groups.iter().map(Vec::as_slice).collect();
    let drive = async {
        eventually_async(|| sends(&h.sink) >= 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let held = sends(&h.sink);
        assert!(
            held < h.rig.ctx.options.max_in_flight,
            "{held} sends in flight: the memory share did not hold them back"
        );
        assert!(h.share.is_over(), "it stopped while within its share");
        h.release_until(Cursor(20)).await;
    };
    let (end, ()) = tokio::join!(h.run(&groups), drive);
    assert_eq!(end, ShardEnd::Committed);
    let mut seqs = h.sink.accepted_seqs();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    assert_eq!(h.budget.used(), 0, "everything given back once settled");
}

#[tokio::test]
async fn a_plugin_call_that_would_take_the_shard_over_its_share_waits_for_its_sends() {
    // Within its share, but the next call's logs (events are about as large as their logs)
    // would take the shard over it: the call waits for the shard's own send to settle. The
    // held send of log 0 holds at least 64 KiB; log 1 is 200 KiB encoded.
    let h = HeldShard::new().await;
    let (small, large) = (oks(0, 1), vec![Log::padded(1, 200 << 10)]);
    let groups: [&[Log]; 2] = [&small, &large];
    let drive = async {
        eventually_async(|| sends(&h.sink) >= 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            sends(&h.sink),
            1,
            "log 1 was formatted and sent beside the held send"
        );
        assert!(
            !h.share.is_over(),
            "over its share already: the hold must come from the upcoming logs alone"
        );
        assert!(h.share.is_over_by(200 << 10));
        h.release_until(Cursor(2)).await;
    };
    let (end, ()) = tokio::join!(h.run(&groups), drive);
    assert_eq!(end, ShardEnd::Committed);
    assert_eq!(h.sink.accepted_seqs(), [0, 1]);
    assert_eq!(h.budget.used(), 0, "everything given back once settled");
}
