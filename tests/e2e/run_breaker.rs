//! The crash-loop breaker (docs/plugins.md §5.5, §5.6): a plugin that keeps trapping does
//! not send the stream to the dead-letter file. With a small `breaker_threshold`:
//!
//! - a freshly swapped version that crash-loops is rolled back to its predecessor, which then
//!   formats the logs the new one trapped on;
//! - with no predecessor, policy `passthrough` ships the logs in the built-in JSON format;
//! - with no predecessor, policy `pause` stops the shard (nothing lost, nothing dead-lettered
//!   after the trip) until a fixed version is swapped in by SIGHUP, which then delivers it all.
//!
//! In every case each log ends up delivered or dead-lettered (the few traps isolated before
//! the breaker tripped), never lost. The plugin is the `poison_json` test guest (json output,
//! a trap on a log with a `poison` content); the json plugin is the well-behaved version.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::HecReceiver;

use crate::harness::dataset::Dataset;
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

/// Traps (bisection levels included) that trip the breaker in these tests.
const THRESHOLD: i64 = 4;

/// Replaces the plugin file atomically (write aside, rename), as a deployment would.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write new plugin");
    std::fs::rename(&tmp, path).expect("rename new plugin into place");
}

/// A dataset whose every 10th log is poison.
fn poisoned(env: &SlsEnv, logs: u64, from: u64) -> Dataset {
    let mut ds = Dataset::new(env.shards(), 20);
    for seq in (from..from + logs).filter(|s| s % 10 == 3) {
        ds.mark(seq, "poison", "yes");
    }
    ds
}

fn seq_of(event: &Value) -> u64 {
    event["seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("event without a seq: {event}"))
}

/// Seqs delivered, and whether each came out of the built-in passthrough format (it keeps
/// `__time__` in the event; the plugins do not).
fn delivered(hec: &HecReceiver) -> Vec<(u64, bool)> {
    hec.events()
        .iter()
        .map(|e| {
            let ev = &e.envelope["event"];
            (seq_of(ev), ev.get("__time__").is_some())
        })
        .collect()
}

fn dead_lettered(path: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("dead-letter lines are JSON");
            (
                seq_of(&v["log"]),
                v["stage"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Every seq in `0..n` is delivered or dead-lettered; none is missing.
fn assert_nothing_lost(n: u64, delivered: &[(u64, bool)], dead: &[(u64, String)]) {
    let seen: BTreeSet<u64> = delivered
        .iter()
        .map(|(s, _)| *s)
        .chain(dead.iter().map(|(s, _)| *s))
        .collect();
    let missing: Vec<u64> = (0..n).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} logs lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

fn wait_events(hec: &HecReceiver, shipper: &mut ShipperProcess, at_least: usize) {
    eventually(&format!("{at_least} events"), || {
        shipper.assert_running();
        let n = hec.event_count();
        if n >= at_least {
            Ok(())
        } else {
            Err(format!("{n} events"))
        }
    });
}

fn config(env: &SlsEnv, group: &str, plugin: &Path, hec: &HecReceiver) -> RunConfig {
    RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        group,
        plugin,
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url())
    .set("plugin.breaker_threshold", THRESHOLD)
    .set("plugin.breaker_window", "5m")
}

#[test]
fn a_crash_looping_new_version_is_rolled_back_to_its_predecessor() {
    let env = SlsEnv::start("breaker-rollback", 4);
    let hec = env.hec_receiver();
    let plugin = env.dir().join("formatter.wasm");
    replace(&plugin, &artifacts::read(artifacts::PLUGIN_JSON));
    let cfg = config(&env, "e2e-rollback", &plugin, &hec).set("plugin.watch", true);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());

    // A clean first part, formatted by json.
    let mut ds = poisoned(&env, 0, 0);
    env.load(&mut ds, 400);
    wait_events(&hec, &mut shipper, 400);

    // The new version passes its self-test (no poison in the samples), then traps on live data.
    replace(&plugin, &artifacts::read(artifacts::GUEST_POISON_JSON));
    shipper.wait_for_log("plugin swapped", |l| {
        l["plugin"]
            .as_str()
            .is_some_and(|p| p.starts_with("guest-poison-json@"))
    });
    for seq in (400..2_400u64).filter(|s| s % 10 == 3) {
        ds.mark(seq, "poison", "yes");
    }
    env.load(&mut ds, 2_000);
    let rollback = shipper.wait_for_log("plugin keeps trapping; rolled back", |_| true);
    assert!(
        rollback["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("json@")),
        "{rollback}"
    );
    let dl = env.dir().join("dead-letter.jsonl");
    eventually("every log delivered or dead-lettered", || {
        shipper.assert_running();
        let n = delivered(&hec).len() + dead_lettered(&dl).len();
        if n >= 2_400 {
            Ok(())
        } else {
            Err(format!("{n} of 2400"))
        }
    });
    env.wait_checkpoints_at_end("e2e-rollback");
    let generation = shipper
        .scrape()
        .expect("metrics")
        .samples("shipper_plugin_generation")
        .join("\n");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    let got = delivered(&hec);
    let dead = dead_lettered(&dl);
    assert_nothing_lost(2_400, &got, &dead);
    assert!(
        generation.contains("plugin=\"json\""),
        "json runs again:\n{generation}"
    );
    // Only the traps isolated before the trip were dead-lettered; json shipped the other 199.
    assert!(
        dead.len() < THRESHOLD as usize,
        "{} dead letters: the breaker should stop the isolation at {THRESHOLD} traps",
        dead.len()
    );
    assert!(
        dead.iter().all(|(_, stage)| stage == "plugin_trap"),
        "{dead:?}"
    );
    let poison_delivered = got.iter().filter(|(s, _)| s % 10 == 3 && *s >= 400).count();
    assert!(
        poison_delivered + dead.len() >= 200,
        "json formatted the logs the new version trapped on"
    );
}

#[test]
fn passthrough_ships_the_built_in_json_while_the_plugin_crash_loops() {
    let env = SlsEnv::start("breaker-passthrough", 4);
    let hec = env.hec_receiver();
    let cfg = config(
        &env,
        "e2e-passthrough",
        Path::new(artifacts::GUEST_POISON_JSON),
        &hec,
    )
    .set("plugin.failure_policy", "passthrough");
    let mut ds = poisoned(&env, 2_000, 0);
    env.load(&mut ds, 2_000);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());
    let dl = env.dir().join("dead-letter.jsonl");
    eventually("every log delivered or dead-lettered", || {
        shipper.assert_running();
        let n = delivered(&hec).len() + dead_lettered(&dl).len();
        if n >= 2_000 {
            Ok(())
        } else {
            Err(format!("{n} of 2000"))
        }
    });
    env.wait_checkpoints_at_end("e2e-passthrough");
    let counted = shipper
        .scrape()
        .expect("metrics")
        .sum("shipper_plugin_passthrough_logs_total");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    let got = delivered(&hec);
    let dead = dead_lettered(&dl);
    assert_nothing_lost(2_000, &got, &dead);
    let passthrough = got.iter().filter(|(_, p)| *p).count();
    assert!(passthrough > 0, "some logs went out in the built-in format");
    assert_eq!(
        counted, passthrough as f64,
        "every passthrough log is counted (shipper_plugin_passthrough_logs_total)"
    );
    assert!(
        dead.len() < THRESHOLD as usize,
        "{} dead letters",
        dead.len()
    );
    assert!(
        !shipper
            .logs_with("plugin keeps trapping; shipping these logs")
            .is_empty()
    );
}

#[test]
fn pause_holds_the_data_until_a_fixed_version_is_loaded_by_sighup() {
    let env = SlsEnv::start("breaker-pause", 4);
    let hec = env.hec_receiver();
    let plugin = env.dir().join("formatter.wasm");
    replace(&plugin, &artifacts::read(artifacts::GUEST_POISON_JSON));
    // Default policy (pause); the file is not watched: only SIGHUP reloads it.
    let cfg = config(&env, "e2e-pause", &plugin, &hec);
    let mut ds = poisoned(&env, 2_000, 0);
    env.load(&mut ds, 2_000);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());
    shipper.wait_for_log(
        "plugin keeps trapping (crash-loop breaker tripped); pausing",
        |_| true,
    );

    // The fix: copied in place, then SIGHUP.
    replace(&plugin, &artifacts::read(artifacts::PLUGIN_JSON));
    shipper.signal("HUP");
    let swap = shipper.wait_for_log("plugin swapped", |_| true);
    assert_eq!(swap["trigger"].as_str(), Some("SIGHUP"), "{swap}");
    let dl = env.dir().join("dead-letter.jsonl");
    eventually("every log delivered or dead-lettered", || {
        shipper.assert_running();
        let n = delivered(&hec).len() + dead_lettered(&dl).len();
        if n >= 2_000 {
            Ok(())
        } else {
            Err(format!("{n} of 2000"))
        }
    });
    env.wait_checkpoints_at_end("e2e-pause");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    let got = delivered(&hec);
    let dead = dead_lettered(&dl);
    assert_nothing_lost(2_000, &got, &dead);
    assert!(
        got.iter().all(|(_, p)| !p),
        "pause never uses the built-in format"
    );
    assert!(
        dead.len() < THRESHOLD as usize,
        "{} dead letters",
        dead.len()
    );
}
