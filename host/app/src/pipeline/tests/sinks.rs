//! Several sinks, back-pressure, rate caps, event IDs, the memory budget, and the switch to
//! a new configuration generation.

use super::*;

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

/// What a shard's reader leaves of its share for the sends: `max_in_flight` sends and the
/// open batch of each sink's largest batch with its slack (these sinks add nothing for a
/// request body), and no limit when a sink's batches have none (the reader then leaves the
/// most it may, half the share).
#[tokio::test]
async fn the_room_for_sends_is_the_sends_in_flight_of_every_sink() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = testing::metrics();
    let sink = |name, max_bytes| RigSink {
        name,
        sink: MemorySink::new(100).with_max_bytes(max_bytes),
        caps: RateCaps::default(),
    };
    let topo = topology(1, &[sink("a", 1000), sink("b", 3000)], dir.path(), &metrics).await;
    let slack = crate::pipeline::batch::BATCH_SLACK;
    assert_eq!(
        topo.send_room_bytes(8),
        9 * (1000 + slack) + 9 * (3000 + slack)
    );
    let unbounded = topology(1, &[sink("a", usize::MAX)], dir.path(), &metrics).await;
    assert_eq!(unbounded.send_room_bytes(8), usize::MAX);
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
        next.sinks[0].event_id = Some(crate::pipeline::event_id::EventIdSettings {
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
    let g = crate::pipeline::event_id::GroupIds::new("p", "ls", 0, Cursor(8));
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
