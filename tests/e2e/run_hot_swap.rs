//! Hot swap under steady load (docs/plugins.md §10 "Hot swap"): while the test keeps putting
//! logs, the plugin file is replaced splunk-hec → json → a broken file → a plugin whose
//! `init` rejects the running config → a plugin that fails its self-test → the `poison_json`
//! guest.
//! Every log arrives exactly once; the three bad versions are refused with one ERROR line
//! each, naming the reason, while the running plugin keeps shipping; each shard switches
//! generation between two batches, in publication order, and never back.
//!
//! splunk-hec and json render byte-identical HEC events for the same config (same keys, same
//! `write_json_object`, same metadata keys), and both run with the one `[plugin.config]`, so
//! the data cannot show that swap: it is checked through the per-shard "plugin generation
//! switched" lines and the generation metric. The guest tags its events
//! (`formatter=poison_json`), so the last swap is also checked in the data: per shard, in
//! cursor order, every event before the swap point is in the old format and every event after
//! it in the new one, and the swap point is the start of a LogGroup (a batch is whole groups).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::HecReceiver;

use crate::harness::dataset::{Dataset, Tally};
use crate::harness::producer::{Producer, assert_one_switch_per_shard, replace, wait_for_more};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-swap";
/// Logs put per round (one group of 25 per shard).
const CHUNK: u64 = 100;
/// The producer stays at most this many logs ahead of the receiver.
const BACKLOG: u64 = 3_000;
const META: [(&str, &str); 2] = [("sourcetype", "sls:e2e"), ("index", "main")];

/// Per shard, the (from, to) plugin names of each "plugin generation switched" line.
fn switches(shipper: &ShipperProcess) -> BTreeMap<u64, Vec<(String, String)>> {
    let name = |v: &Value| {
        v.as_str()
            .and_then(|l| l.split('@').next())
            .unwrap_or_default()
            .to_owned()
    };
    let mut out: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    for l in shipper.logs_with("plugin generation switched") {
        out.entry(l["shard"].as_u64().expect("shard"))
            .or_default()
            .push((name(&l["from"]), name(&l["to"])));
    }
    out
}

fn wait_all_shards_switched_to(shipper: &mut ShipperProcess, plugin: &str) {
    eventually(&format!("every shard to switch to {plugin}"), || {
        shipper.assert_running();
        let s = switches(shipper);
        let done = (0..4).all(|shard| {
            s.get(&shard)
                .is_some_and(|v| v.iter().any(|(_, to)| to == plugin))
        });
        if done {
            Ok(())
        } else {
            Err(format!("switches so far: {s:?}"))
        }
    });
}

fn generation(shipper: &mut ShipperProcess) -> String {
    shipper
        .scrape()
        .expect("metrics")
        .samples("shipper_plugin_generation")
        .join("\n")
}

/// Waits for the `n`th "new plugin version rejected" line.
fn wait_for_rejections(shipper: &mut ShipperProcess, n: usize) {
    eventually(&format!("rejection number {n}"), || {
        shipper.assert_running();
        let r = shipper.logs_with("new plugin version rejected");
        if r.len() >= n {
            Ok(())
        } else {
            Err(format!("{} rejections", r.len()))
        }
    });
}

/// After a refused version: 1 000 more events arrive and json is still the generation in use.
fn assert_json_keeps_running(hec: &HecReceiver, shipper: &mut ShipperProcess) {
    let n = hec.event_count();
    wait_for_more(hec, shipper, n, 1_000);
    let running = generation(shipper);
    assert!(
        running.contains("plugin=\"json\""),
        "json still runs:\n{running}"
    );
}

#[test]
fn hot_swap_under_load_loses_and_duplicates_nothing_and_refuses_bad_versions() {
    let env = SlsEnv::start("hot-swap", 4);
    let hec = Arc::new(env.hec_receiver());
    let plugin = env.dir().join("formatter.wasm");
    replace(&plugin, &artifacts::read(artifacts::PLUGIN_SPLUNK_HEC));
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        &plugin,
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url())
    .set("plugin.watch", true)
    .set("plugin.config.sourcetype", META[0].1)
    .set("plugin.config.index", META[1].1)
    // 5 groups (125 logs) per pull: many batch boundaries to switch at.
    .set("source.fetch_count", 5);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());
    let delivered = hec.clone();
    let producer = Producer::start(
        &env,
        Dataset::new(env.shards(), 25),
        CHUNK,
        BACKLOG,
        move || delivered.event_count() as u64,
    );

    wait_for_more(&hec, &mut shipper, 0, 1_000);
    replace(&plugin, &artifacts::read(artifacts::PLUGIN_JSON));
    shipper.wait_for_log("plugin swapped", |l| {
        l["plugin"].as_str().is_some_and(|p| p.starts_with("json@"))
    });
    wait_all_shards_switched_to(&mut shipper, "json");

    // A broken file: refused, json keeps running.
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    replace(&plugin, &garbage);
    let broken = shipper.wait_for_log("new plugin version rejected", |_| true);
    assert_json_keeps_running(&hec, &mut shipper);

    // A valid component whose `init` returns an error: the real cef plugin writes syslog by
    // default and refuses the HEC-only keys of the running config (a syslog formatter
    // deployed to an HEC pipeline). Refused at swap time, before any shard sees it.
    replace(&plugin, &artifacts::read(artifacts::PLUGIN_CEF));
    wait_for_rejections(&mut shipper, 2);
    assert_json_keeps_running(&hec, &mut shipper);

    // A component that loads and inits but traps on the self-test samples: refused too.
    replace(&plugin, &artifacts::read(artifacts::GUEST_TRAP));
    wait_for_rejections(&mut shipper, 3);
    assert_json_keeps_running(&hec, &mut shipper);

    // The tagging guest: this swap is visible in the data.
    replace(&plugin, &artifacts::read(artifacts::GUEST_POISON_JSON));
    shipper.wait_for_log("plugin swapped", |l| {
        l["plugin"]
            .as_str()
            .is_some_and(|p| p.starts_with("guest-poison-json@"))
    });
    wait_all_shards_switched_to(&mut shipper, "guest-poison-json");
    let n = hec.event_count();
    wait_for_more(&hec, &mut shipper, n, 1_000);

    let ds = producer.finish();
    wait_for_more(&hec, &mut shipper, 0, ds.len() as usize);
    env.wait_checkpoints_at_end(GROUP);
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    // Exactly once, each event in one of the two formats.
    let tagged = json!({"formatter": "poison_json"});
    let mut per_shard: BTreeMap<u32, Vec<(u64, bool)>> = BTreeMap::new();
    let mut seqs = Vec::new();
    for e in hec.events() {
        let is_guest = e.envelope.get("fields").is_some();
        let seq = ds
            .check_hec(&e.text, &e.envelope, &META, is_guest.then_some(&tagged))
            .unwrap_or_else(|why| panic!("{why}"));
        per_shard
            .entry(ds.placement(seq).shard)
            .or_default()
            .push((seq, is_guest));
        seqs.push(seq);
    }
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "across five swap attempts");

    // Per shard: old format, then new, never back, switching between LogGroups.
    assert_one_switch_per_shard(&ds, per_shard);

    // The generations, per shard, in publication order: nothing switched to a refused one.
    let want = vec![
        ("splunk-hec".to_owned(), "json".to_owned()),
        ("json".to_owned(), "guest-poison-json".to_owned()),
    ];
    for (shard, s) in switches(&shipper) {
        assert_eq!(s, want, "shard {shard} switched");
    }
    // One ERROR line per refused version, naming the file, the reason and what runs.
    let errors: Vec<Value> = shipper
        .log_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 3, "ERROR lines: {errors:#?}");
    let path = plugin.to_str().expect("UTF-8");
    let reasons: [&[&str]; 3] = [
        &["not WebAssembly"],
        &[
            "rejected its config",
            "config key `sourcetype`: only applies with \"output\": \"hec\"",
        ],
        &["failed its self-test"],
    ];
    for (e, why) in errors.iter().zip(reasons) {
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(
            e["path"] == path
                && why.iter().all(|w| msg.contains(w))
                && e["running"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("json@")),
            "refusal line (want {why:?}): {e}"
        );
    }
    assert_eq!(errors[0], broken);
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters:\n{dead}");
    eprintln!("hot swap: {} logs, each exactly once", ds.len());
}
