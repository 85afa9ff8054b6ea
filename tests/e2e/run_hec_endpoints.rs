//! `shipper run` over four HEC endpoints (`endpoints = [...]`), as an indexer cluster
//! without a load balancer looks: two healthy indexers, one slow (every request takes 2 s)
//! and one killed mid-run and restarted on the same address 10 s later. 20k logs from 4
//! shards, paced at 1,000 events/s by the sink's rate cap so the run outlasts the outage.
//!
//! Nothing is lost; the only duplicates are events the killed indexer had stored in
//! requests it never answered (at most one request per slot it had in flight); the two
//! healthy indexers take comparable shares (within a factor of two: least-in-flight favours
//! the one that answers faster) and the slow one less than either; the restarted one receives again within 15 s of coming back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::HecReceiver;
use shipper_test_support::ports::reserve_port;

use crate::harness::dataset::{Tally, hec_seq, hec_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env};

const GROUP: &str = "e2e-hec-endpoints";
const LOGS: u64 = 20_000;
/// Requests the sink keeps on the wire per endpoint (the default).
const CONCURRENCY: usize = 4;

#[test]
fn four_hec_endpoints_one_slow_one_killed_and_restarted_lose_nothing() {
    let (env, ds) = SlsEnv::start_loaded("hec-endpoints", 4, LOGS);
    let a = env.hec_receiver();
    let b = env.hec_receiver();
    let slow = env.hec_receiver();
    slow.set_delay(Some(Duration::from_secs(2)));
    let port = reserve_port();
    let killed_addr = format!("127.0.0.1:{}", port.port());
    let killed = env.hec_receiver_on(&killed_addr);
    let urls = [a.url(), b.url(), slow.url(), killed.url()];
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&urls[0])
        .remove("sink.endpoint")
        .set(
            "sink.endpoints",
            toml::Value::Array(urls.iter().map(|u| u.as_str().into()).collect()),
        )
        .set("sink.max_events_per_sec", 1_000);
    let started = Instant::now();
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    // Kill one indexer once it has taken a share, with the run well under way.
    eventually("the doomed endpoint to take a share", || {
        shipper.assert_running();
        let n = killed.event_count();
        if n >= 500 {
            Ok(())
        } else {
            Err(format!("{n} events"))
        }
    });
    let (first_life, first_life_requests) = killed.kill();
    let killed_at = Instant::now();
    eprintln!(
        "run_hec_endpoints: endpoint killed {:.1?} into the run",
        killed_at - started
    );
    std::thread::sleep(Duration::from_secs(10));
    let back = env.hec_receiver_on(&killed_addr);
    let back_at = Instant::now();
    let receiving_again = eventually("the restarted endpoint to receive again", || {
        shipper.assert_running();
        if back.event_count() > 0 {
            Ok(Instant::now())
        } else {
            Err(format!("{:?}", shipper.health()))
        }
    });
    let recovered_in = receiving_again - back_at;
    assert!(
        recovered_in <= Duration::from_secs(15),
        "the restarted endpoint received again only {recovered_in:?} after coming back"
    );

    let receivers = [&a, &b, &slow, &back];
    eventually("every log at some endpoint", || {
        shipper.assert_running();
        let got: BTreeSet<u64> = receivers
            .iter()
            .flat_map(|r| hec_seqs(&r.events()))
            .chain(hec_seqs(&first_life))
            .collect();
        if got.len() as u64 >= LOGS {
            Ok(())
        } else {
            Err(format!("{} of {LOGS} logs", got.len()))
        }
    });
    env.wait_checkpoints_at_end(GROUP);
    let health = shipper.health().expect("/health");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");
    let elapsed = started.elapsed();

    // Nothing lost.
    let all: Vec<u64> = receivers
        .iter()
        .flat_map(|r| hec_seqs(&r.events()))
        .chain(hec_seqs(&first_life))
        .collect();
    let tally = Tally::new(ds.len(), all.iter().copied());
    tally.assert_at_least_once(&ds, "four endpoints");

    // Duplicates: only events the killed endpoint stored in requests it never answered.
    let stored_by: BTreeMap<u64, u64> = first_life
        .iter()
        .map(|e| (hec_seq(&e.envelope).expect("seq"), e.request))
        .collect();
    let dup = tally.duplicated();
    let unanswered: BTreeSet<u64> = dup
        .iter()
        .map(|s| {
            *stored_by.get(s).unwrap_or_else(|| {
                panic!("seq {s} was duplicated but never reached the killed endpoint")
            })
        })
        .collect();
    let stored = first_life_requests.iter().filter(|r| r.events > 0).count() as u64;
    assert!(
        unanswered.len() <= CONCURRENCY,
        "duplicates come from {} requests of the killed endpoint; at most {CONCURRENCY} were in flight: {unanswered:?}",
        unanswered.len()
    );
    assert!(
        unanswered.iter().all(|&r| r + CONCURRENCY as u64 >= stored),
        "duplicated requests {unanswered:?} are not among the last {CONCURRENCY} of the {stored} the killed endpoint stored"
    );

    // Shares.
    let share = |r: &HecReceiver| r.event_count() as f64;
    let (na, nb, ns) = (share(&a), share(&b), share(&slow));
    // Least-in-flight gives more to whichever answers faster, and two in-process receivers
    // on a busy 2-core machine do not answer equally fast: both must take a real share,
    // neither more than twice the other's.
    assert!(
        na.max(nb) <= 2.0 * na.min(nb),
        "healthy endpoints' shares differ by more than a factor of two: {na} vs {nb}"
    );
    assert!(
        ns < na.min(nb),
        "the slow endpoint took {ns}: not less than {na} / {nb}"
    );
    let states: Vec<&str> = health["sinks"][0]["endpoints"]
        .as_array()
        .expect("endpoints in /health")
        .iter()
        .map(|e| e["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states.len(), 4, "{health}");
    env.assert_no_dead_letters(None);
    eprintln!(
        "run_hec_endpoints: {elapsed:.1?}; shares healthy {na}/{nb}, slow {ns}, killed {} + {} after restart (back in {recovered_in:.1?}); {} duplicates from {} unanswered requests",
        first_life.len(),
        share(&back),
        tally.extra_deliveries(),
        unanswered.len()
    );
}
