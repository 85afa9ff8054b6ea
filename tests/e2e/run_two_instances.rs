//! Two `shipper run` instances in one consumer group (docs/sls-protocol.md §8.3): they split
//! the four shards two and two; one is killed with SIGKILL while it has work; after the group
//! timeout (3 s here) the survivor takes its shards over from their last checkpoints and
//! finishes. Nothing is lost, and the only duplicates are what the killed instance had
//! delivered past its last checkpoint.
//!
//! Half of the logs are loaded once the shards are split, half after the kill, so the
//! survivor always has work on the taken-over shards. Which instance delivered an event is
//! told by its HEC channel; where the survivor resumed, by its "shard assigned" lines.

use std::collections::BTreeMap;
use std::path::Path;

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;

use crate::harness::dataset::{Dataset, Tally, describe, hec_seq, seqs_by_channel};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-pair";
const HALF: u64 = 20_000;

fn shards_held(p: &mut ShipperProcess) -> Result<f64, String> {
    p.assert_running();
    Ok(p.scrape()
        .ok_or("metrics not answering")?
        .sum("shipper_shards_held"))
}

#[test]
fn two_instances_split_the_shards_and_the_survivor_finishes_after_a_sigkill() {
    let env = SlsEnv::start("pair", 4);
    let mut ds = Dataset::new(env.shards(), 50);
    let hec = env.hec_receiver();
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url())
    .set("source.fetch_count", 10);
    let mut a = ShipperProcess::start(
        env.dir(),
        "a",
        &config.clone().set("source.consumer_name", "e2e-a"),
        &[],
        &shipper_env(),
    );
    let mut b = ShipperProcess::start(
        env.dir(),
        "b",
        &config.set("source.consumer_name", "e2e-b"),
        &[],
        &shipper_env(),
    );

    // The metrics gauge and the logs' assigned/released lines must agree (the gauge moves
    // a moment before the "released" line is written).
    let (a_shards, b_shards) = eventually("the instances to hold two shards each", || {
        let (ha, hb) = (shards_held(&mut a)?, shards_held(&mut b)?);
        let (la, lb) = (a.held_shards(), b.held_shards());
        if (ha, hb) == (2.0, 2.0) && la.len() == 2 && lb.len() == 2 {
            Ok((la, lb))
        } else {
            Err(format!("a holds {ha} {la:?}, b holds {hb} {lb:?}"))
        }
    });
    let mut all: Vec<u32> = a_shards.iter().chain(&b_shards).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        [0, 1, 2, 3],
        "disjoint halves: a {a_shards:?}, b {b_shards:?}"
    );

    env.load(&mut ds, HALF);
    eventually("b to deliver something", || {
        b.assert_running();
        let out = b
            .scrape()
            .ok_or("metrics not answering")?
            .sum("shipper_events_out_total");
        if out > 0.0 {
            Ok(())
        } else {
            Err(format!(
                "nothing yet; b holds {:?}, a holds {:?}, {} events at the receiver",
                b.held_shards(),
                a.held_shards(),
                hec.event_count()
            ))
        }
    });
    b.kill();
    env.load(&mut ds, HALF);

    wait_for_events(&mut a, &hec, ds.len());
    env.wait_checkpoints_at_end(GROUP);
    assert_eq!(
        shards_held(&mut a),
        Ok(4.0),
        "the survivor holds every shard"
    );
    a.signal("TERM");
    assert!(a.wait_exit().success(), "survivor exit after SIGTERM");

    // Who delivered what: the survivor sent the last event.
    let events = hec.events();
    let a_channel = events
        .last()
        .and_then(|e| e.channel.clone())
        .expect("events carry a channel");
    let mut by_channel = seqs_by_channel(&events);
    assert_eq!(by_channel.len(), 2, "one HEC channel per instance");
    by_channel.remove(&a_channel);
    let mut from_b = by_channel.into_values().next().expect("b's channel");
    from_b.sort_unstable();

    // Where the survivor took b's shards over (its last assignment of each).
    let takeover: BTreeMap<u32, u32> = a
        .assignments()
        .into_iter()
        .filter(|(shard, _, _)| b_shards.contains(shard))
        .map(|(shard, cursor, _)| (shard, env.position(shard, &cursor)))
        .collect();
    assert_eq!(
        takeover.keys().copied().collect::<Vec<_>>(),
        b_shards,
        "the survivor took over b's shards"
    );

    let tally = Tally::new(
        ds.len(),
        events.iter().map(|e| hec_seq(&e.envelope).expect("seq")),
    );
    let extra = tally.assert_at_least_once(&ds, "two instances, one killed");
    // b's checkpoints never passed logs b had not delivered...
    let lost: Vec<u64> = (0..ds.len())
        .filter(|&s| {
            let p = ds.placement(s);
            takeover.get(&p.shard).is_some_and(|&at| p.group < at)
                && from_b.binary_search(&s).is_err()
        })
        .collect();
    assert!(
        lost.is_empty(),
        "committed by b but never delivered by it: {}",
        describe(&ds, &lost)
    );
    // ...and the duplicates are exactly b's deliveries past them (none on a's shards).
    let past: Vec<u64> = from_b
        .iter()
        .copied()
        .filter(|&s| {
            let p = ds.placement(s);
            p.group >= takeover[&p.shard]
        })
        .collect();
    let dup = tally.duplicated();
    assert_eq!(
        dup,
        past,
        "duplicates must be exactly b's deliveries past its last checkpoints (got {}, want {})",
        describe(&ds, &dup),
        describe(&ds, &past)
    );
    assert_eq!(extra, dup.len() as u64, "no log arrived three times");
    eprintln!(
        "two instances: b delivered {} logs before SIGKILL, {} past its checkpoints; {extra} duplicates of {} logs",
        from_b.len(),
        past.len(),
        ds.len()
    );
}
