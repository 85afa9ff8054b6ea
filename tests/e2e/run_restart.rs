//! Restarting `shipper run` (docs/sls-protocol.md §9.7 "Shutdown"): after SIGTERM the first
//! run has delivered exactly what it committed and the second run resumes there, so every
//! log arrives exactly once; after SIGKILL nothing is lost and the only duplicates are the
//! logs the first run delivered past its last committed checkpoint.
//!
//! Half of the logs are loaded before the first run and half after it stopped, so the
//! second run always has work and must resume from the checkpoints, not from the start.
//! The first requests are delayed at the receiver so the stop lands while deliveries are in
//! flight. Which run delivered an event is told by its HEC channel (one GUID per process);
//! where the second run resumed is read from its "shard assigned" log lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::Fault;

use crate::harness::dataset::{Dataset, Tally, describe, seqs_by_channel};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-restart";
const HALF: u64 = 10_000;

struct Outcome {
    ds: Dataset,
    /// Seqs the first run delivered, sorted.
    first: Vec<u64>,
    /// Every seq received (both runs).
    all: Vec<u64>,
    /// Shard → position the second run started from.
    resumed_at: BTreeMap<u32, u32>,
}

/// First run, stopped with `stop`; second half loaded; second run to the end.
fn run_twice(test: &str, stop: impl FnOnce(&mut ShipperProcess)) -> Outcome {
    let env = SlsEnv::start(test, 4);
    let mut ds = Dataset::new(env.shards(), 50);
    env.load(&mut ds, HALF);
    let hec = env.hec_receiver();
    hec.push_fault(Fault::Delay(Duration::from_millis(200)), 24);
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url())
    // 10 groups (500 logs) per pull: a stop lands between batches, not after the last one.
    .set("source.fetch_count", 10);

    let mut first = ShipperProcess::start(env.dir(), "first", &config, &[], &shipper_env());
    // Stop once something is delivered and committed (so the second run resumes from a
    // real checkpoint), while the rest of the first half is still being worked on.
    eventually("the first run to deliver and commit something", || {
        first.assert_running();
        let committed = env.checkpoints(GROUP).values().flatten().count();
        if hec.event_count() > 0 && committed > 0 {
            Ok(())
        } else {
            Err(format!(
                "{} events, {committed} shards committed",
                hec.event_count()
            ))
        }
    });
    stop(&mut first);

    env.load(&mut ds, HALF);
    let mut second = ShipperProcess::start(env.dir(), "second", &config, &[], &shipper_env());
    wait_for_events(&mut second, &hec, ds.len());
    env.wait_checkpoints_at_end(GROUP);
    second.signal("TERM");
    let status = second.wait_exit();
    assert!(status.success(), "second run after SIGTERM: {status}");

    let events = hec.events();
    let second_channel = events
        .last()
        .and_then(|e| e.channel.clone())
        .expect("events carry a channel");
    let mut by_channel = seqs_by_channel(&events);
    assert_eq!(by_channel.len(), 2, "one HEC channel per run");
    by_channel.remove(&second_channel);
    let mut first_seqs = by_channel
        .into_values()
        .next()
        .expect("the first run's channel");
    first_seqs.sort_unstable();

    let assigned = second.assignments();
    let resumed_at: BTreeMap<u32, u32> = assigned
        .iter()
        .map(|(shard, cursor, _)| (*shard, env.position(*shard, cursor)))
        .collect();
    assert_eq!(
        resumed_at.len(),
        4,
        "the second run took every shard once: {assigned:?}"
    );
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters:\n{dead}");
    Outcome {
        all: crate::harness::dataset::hec_seqs(&events),
        ds,
        first: first_seqs,
        resumed_at,
    }
}

/// Seqs of the first half below the position each shard resumed from, sorted.
fn below_resume_point(o: &Outcome) -> Vec<u64> {
    (0..HALF)
        .filter(|&s| {
            let p = o.ds.placement(s);
            p.group < o.resumed_at[&p.shard]
        })
        .collect()
}

/// Up to 8 elements of `a` that are not in `b` (both sorted).
fn not_in(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .filter(|x| b.binary_search(x).is_err())
        .take(8)
        .copied()
        .collect()
}

#[test]
fn restart_after_sigterm_resends_nothing() {
    let o = run_twice("restart-term", |first| {
        first.signal("TERM");
        let status = first.wait_exit();
        assert!(
            status.success(),
            "a graceful stop exits 0, got {status}\n{}",
            first.stderr_tail(40)
        );
        let released = first.releases();
        assert!(
            released.len() == 4 && released.iter().all(|l| l["checkpoint"] == "committed"),
            "the first run commits and releases every shard on the way out: {released:?}"
        );
    });
    // The checkpoints the first run committed at shutdown are exactly what it delivered.
    let committed = below_resume_point(&o);
    let uncommitted = not_in(&o.first, &committed);
    let undelivered = not_in(&committed, &o.first);
    assert!(
        uncommitted.is_empty() && undelivered.is_empty(),
        "the first run must have committed exactly what it delivered ({} delivered, {} committed); \
         delivered but not committed: {}; committed but not delivered: {}",
        o.first.len(),
        committed.len(),
        describe(&o.ds, &uncommitted),
        describe(&o.ds, &undelivered),
    );
    Tally::new(o.ds.len(), o.all.iter().copied())
        .assert_exactly_once(&o.ds, "after SIGTERM + restart");
    eprintln!(
        "restart after SIGTERM: the first run delivered and committed {} of {HALF} logs; 0 duplicates",
        o.first.len()
    );
}

#[test]
fn restart_after_sigkill_loses_nothing() {
    let o = run_twice("restart-kill", |first| {
        let status = first.kill();
        assert!(!status.success());
    });
    let tally = Tally::new(o.ds.len(), o.all.iter().copied());
    let extra = tally.assert_at_least_once(&o.ds, "after SIGKILL + restart");
    // The checkpoint never passed undelivered logs...
    let committed = below_resume_point(&o);
    let lost = not_in(&committed, &o.first);
    assert!(
        lost.is_empty(),
        "committed but never delivered by the first run: {}",
        describe(&o.ds, &lost)
    );
    // ...and the duplicates are exactly what the first run delivered past it.
    let past: Vec<u64> = not_in_all(&o.first, &committed);
    let dup = tally.duplicated();
    assert_eq!(
        dup,
        past,
        "duplicates must be exactly the first run's deliveries past its last checkpoint: extra {}, missing {}",
        describe(&o.ds, &not_in(&dup, &past)),
        describe(&o.ds, &not_in(&past, &dup)),
    );
    assert_eq!(extra, dup.len() as u64, "no seq arrived three times");
    eprintln!(
        "restart after SIGKILL: the first run delivered {} logs, {} of them past its last checkpoint; {extra} duplicates",
        o.first.len(),
        past.len()
    );
}

/// Every element of `a` not in `b` (both sorted).
fn not_in_all(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .filter(|x| b.binary_search(x).is_err())
        .copied()
        .collect()
}
