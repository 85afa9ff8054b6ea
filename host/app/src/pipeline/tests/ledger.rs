//! The completeness ledger: each sink's acknowledged ranges with their counts, on disk
//! before the checkpoint that passes them.

use super::*;
use crate::ledger::coverage;

#[tokio::test]
async fn acknowledged_ranges_are_recorded_with_counts_before_each_commit() {
    let rig = Rig::new(MemorySink::new(3)).await.with_ledger();
    let ledger = rig.dir.path().join("ledger.jsonl");
    let seen = ledger.clone();
    let checkpoints = Arc::new(RecordedCheckpoints {
        hook: Some(Box::new(move |cursor: Cursor| {
            // At every commit the ledger file already covers everything before it.
            let merged = coverage::read_merged(std::slice::from_ref(&seen)).unwrap();
            let c = coverage::cover(&merged, "p/ls", 0, "default", 0..cursor.0);
            assert!(
                c.missing.is_empty(),
                "commit of {cursor:?} before the ledger covered {:?}",
                c.missing
            );
        })),
        ..Default::default()
    });
    let events = vec![
        pulled(0, &[&[Log::ok(0), Log::ok(1), Log::refused(2)]]),
        pulled(1, &[&[Log::sink_rejected(3), Log::dropped(4), Log::ok(5)]]),
        pulled(2, &[&oks(6, 9), &oks(9, 10)]),
    ];
    assert_eq!(
        rig.run_to_end(events, &checkpoints).await,
        ShardEnd::Committed
    );
    assert_eq!(checkpoints.last(), Some(Cursor(4)));
    let merged = coverage::read_merged(&[ledger]).unwrap();
    assert_eq!(merged.len(), 1, "{merged:?}");
    let r = &merged[0];
    assert_eq!(
        (r.shard, r.sink.as_str(), r.from, r.to),
        (0, "default", 0, 4)
    );
    let delivered = rig.sink.accepted_seqs().len() as u64;
    assert_eq!(delivered, 7);
    assert_eq!(
        (r.tally.events, r.tally.dead_lettered, r.tally.dropped),
        (delivered, 2, 1),
        "events accepted; the refused and the sink-rejected log; the dropped one"
    );
}
