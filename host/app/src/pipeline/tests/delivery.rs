//! One sink: delivery in order, dead letters before the checkpoint, shutdown and hand-offs.

use super::*;

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
