//! A plugin that hangs on some logs: each such log ends up in the dead-letter file, its
//! neighbours are delivered (the timeout half of poison isolation, docs/plugins.md §5.4).
//!
//! The formatter is the `slow` test guest: it hands every log back as its raw protobuf bytes
//! (`Payload::Raw`, so the HEC sink posts them to `/services/collector/raw`) and spins forever
//! on a log that has a content named `slow`. With a short call budget (`plugin.timeout`) each
//! call holding such a log times out; the host discards the instance and bisects the LogGroup
//! on fresh instances down to the one log, which it dead-letters. The slow logs sit in
//! different LogGroups and shards, at the first, last and middle positions of their group.
//!
//! Asserted: every other log reaches HEC exactly once; each slow log has exactly one
//! dead-letter entry (stage `plugin_trap`, the timeout message with the budget, the plugin's
//! hash, shard, cursor, index, the log); the checkpoints reach the end of every shard; the
//! process keeps running and exits 0 on SIGTERM; `/metrics` counts one `timeout` plugin
//! failure per bisection step (computed from where each slow log sits), the dead letters by
//! stage, the events out, and an untripped breaker; one WARN per isolated log.
//!
//! The raw endpoint splits a body into events at line feeds, and a `Log`'s protobuf bytes
//! hold a 0x0A before every content key, so one log arrives as several "lines". The line
//! starting at the `seq` key (`\x03seq\x12<len><digits>`) occurs once per log: that is what
//! identifies and counts a delivered log.

use std::path::Path;

use serde_json::json;
use sha2::Digest as _;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::Endpoint;

use crate::harness::dataset::{Dataset, Tally, dead_letters_by_seq};
use crate::harness::shipper::{Metrics, RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-slow-plugin";
const SHARDS: u32 = 4;
const LOGS_PER_GROUP: u64 = 50;
const LOGS: u64 = 4_000;
/// `plugin.timeout`: the fixed part of a call's budget (the runtime adds 1 ms per log). Long
/// enough that a healthy call never runs out of it on a loaded 2-core CI machine (a
/// descheduled call would dead-letter a good log); short enough to keep the test quick: each
/// slow log costs ~7 timed-out calls, the guest spinning through every one of them.
const TIMEOUT_MS: u64 = 250;
/// The runtime's per-log share of the budget (`DEFAULT_CALL_BUDGET_PER_LOG`).
const PER_LOG_MS: u64 = 1;
/// Slow logs: (seq, where it sits). Group `g` goes to shard `g % 4`.
const SLOW: [u64; 4] = [
    63,    // group 1 → shard 1, log 13
    1_234, // group 24 → shard 0, log 34
    2_150, // group 43 → shard 3, first log
    3_149, // group 62 → shard 2, last log
];

#[test]
fn logs_the_plugin_hangs_on_are_dead_lettered_and_their_neighbours_delivered() {
    let env = SlsEnv::start("slow-plugin", SHARDS);
    let mut ds = Dataset::new(env.shards(), LOGS_PER_GROUP);
    for seq in SLOW {
        ds.mark(seq, "slow", "yes");
    }
    env.load(&mut ds, LOGS);
    let shards: Vec<u32> = SLOW.iter().map(|&s| ds.placement(s).shard).collect();
    assert_eq!(shards, [1, 0, 3, 2], "the slow logs cover every shard");

    let hec = env.hec_receiver();
    let dead_letter = env.dir().join("dead-letter.jsonl");
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::GUEST_SLOW),
        &dead_letter,
    )
    .hec_sink(&hec.url())
    // The default crash-loop breaker (20 traps a minute) stays: each slow log costs one
    // timed-out call per bisection step (7 for a 50-log group), but the breaker counts only
    // the failed batch and the isolated log, so four poison logs must not pause a shard.
    .set("plugin.timeout", format!("{TIMEOUT_MS}ms"));
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    let delivered_n = LOGS as usize - SLOW.len();
    eventually("every other log to reach the receiver", || {
        shipper.assert_running();
        let n = raw_seqs(&hec.events()).len();
        if n >= delivered_n {
            Ok(())
        } else {
            Err(format!("{n} of {delivered_n} logs"))
        }
    });
    env.wait_checkpoints_at_end(GROUP);
    shipper.assert_running();
    let metrics = shipper.scrape().expect("metrics");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit 0 after SIGTERM");

    // Delivered: everything else, exactly once, as the guest's raw bytes.
    let events = hec.events();
    assert!(
        events.iter().all(|e| e.endpoint == Endpoint::Raw),
        "the guest emits raw payloads only"
    );
    let seqs = raw_seqs(&events);
    for seq in &seqs {
        assert!(
            !SLOW.contains(seq),
            "slow log seq {seq} should not have been delivered"
        );
    }
    let mut all = seqs.clone();
    all.extend(SLOW);
    Tally::new(ds.len(), all).assert_exactly_once(&ds, "delivered + dead-lettered");

    // Dead letters: exactly one entry per slow log, with the timeout and where it came from.
    let (text, entries) = dead_letters_by_seq(&dead_letter);
    assert_eq!(
        text.lines().count(),
        SLOW.len(),
        "one entry per slow log:\n{text}"
    );
    let mut slow_sorted = SLOW;
    slow_sorted.sort_unstable();
    assert_eq!(entries.keys().copied().collect::<Vec<_>>(), slow_sorted);
    let hash = hex::encode(sha2::Sha256::digest(artifacts::read(artifacts::GUEST_SLOW)));
    // The trap of the one-log call that isolated it: budget = timeout + 1 log.
    let one_log_budget = TIMEOUT_MS + PER_LOG_MS;
    let reason = format!(
        "plugin {hash} trapped: plugin `slow@0.0.1` ran past its {one_log_budget} ms budget for 1 log \
         and was interrupted. If the plugin is merely slow, raise its time budget (`[plugin] \
         timeout` for shipper run; `PluginLimits::call_budget_*`); if it hangs on some input, \
         that log is poison and will be isolated; the instance was discarded"
    );
    for (&seq, e) in &entries {
        let p = ds.placement(seq);
        let cursor = e["cursor"].as_str().expect("cursor");
        assert_eq!(
            (
                &e["stage"],
                &e["project"],
                &e["logstore"],
                &e["shard"],
                env.position(p.shard, cursor),
                &e["log_index"],
                &e["plugin"],
            ),
            (
                &json!("plugin_trap"),
                &json!(PROJECT),
                &json!(LOGSTORE),
                &json!(p.shard),
                p.group,
                &json!(p.log),
                &json!(hash),
            ),
            "seq {seq}: stage and where it came from: {e}"
        );
        assert_eq!(
            e["reason"], reason,
            "seq {seq}: the timeout, with the budget"
        );
        assert_eq!(e["log"], ds.flattened(seq), "seq {seq}: the original log");
    }

    // Metrics: one timeout per bisection step, nothing else failing; dead letters by stage.
    let steps: u64 = SLOW
        .iter()
        .map(|&s| bisection_steps(LOGS_PER_GROUP, ds.placement(s).log.into()))
        .sum();
    assert_eq!(
        (
            value(&metrics, "shipper_plugin_failures_total", "kind", "timeout"),
            metrics.sum("shipper_plugin_failures_total"),
        ),
        (steps as f64, steps as f64),
        "a timeout per bisection step, no other plugin failure:\n{}",
        metrics.0
    );
    assert_eq!(
        (
            value(
                &metrics,
                "shipper_dead_lettered_total",
                "stage",
                "plugin_trap"
            ),
            metrics.sum("shipper_dead_lettered_total"),
        ),
        (SLOW.len() as f64, SLOW.len() as f64),
        "dead letters by stage:\n{}",
        metrics.0
    );
    assert_eq!(metrics.sum("shipper_logs_in_total"), LOGS as f64);
    assert_eq!(metrics.sum("shipper_events_out_total"), delivered_n as f64);
    assert_eq!(
        metrics.sum("shipper_plugin_breaker_open"),
        0.0,
        "breaker stays closed"
    );
    let isolated = shipper.logs_with("plugin trapped on one log");
    assert_eq!(isolated.len(), SLOW.len(), "one WARN per slow log");
    let bisecting = shipper.logs_with("plugin trapped; bisecting");
    assert_eq!(
        bisecting.len() as u64,
        steps - SLOW.len() as u64,
        "one WARN per bisection step above the single log"
    );
}

/// Seqs of the logs in raw HEC events: each log's `seq` content yields one line
/// `\x03seq\x12<len><digits>…` (its key's 0x0A tag byte was the line break before it).
fn raw_seqs(events: &[shipper_test_support::hec_receiver::ReceivedEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| {
            let rest = e.text.strip_prefix("\u{3}seq\u{12}")?;
            let len = usize::from(*rest.as_bytes().first()?);
            let digits = rest.get(1..1 + len)?;
            Some(
                digits
                    .parse()
                    .unwrap_or_else(|_| panic!("a seq line with no number: {:?}", e.text)),
            )
        })
        .collect()
}

/// Calls that trap while bisection isolates the log at `index` of a `len`-log call: the
/// whole call, then the half holding it (the host splits at `len / 2`), down to one log.
fn bisection_steps(len: u64, index: u64) -> u64 {
    let (mut start, mut end, mut steps) = (0, len, 1);
    while end - start > 1 {
        let mid = start + (end - start) / 2;
        if index < mid {
            end = mid;
        } else {
            start = mid;
        }
        steps += 1;
    }
    steps
}

/// The value of the sample of `name` whose label `key` is `val` (0 when absent).
fn value(metrics: &Metrics, name: &str, key: &str, val: &str) -> f64 {
    let label = format!("{key}=\"{val}\"");
    metrics
        .samples(name)
        .into_iter()
        .filter(|l| l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
