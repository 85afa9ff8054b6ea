//! Reload of the whole configuration under steady load (docs/configuration.md "Reload"):
//! 1. SIGHUP with a new config: the plugin goes splunk-hec → cef with its own
//!    `[plugin.config]` (CEF text events carrying `externalId=<seq>`), and `[reload] watch`
//!    is turned on — one swap, applied between batches;
//! 2. the file alone changes the sink's batch size (the watcher picks it up);
//! 3. a bad value is refused with one ERROR line naming the key, generation 3 keeps running;
//! 4. a `[source]` change is refused with "restart needed", naming the key.
//!
//! Every log arrives exactly once (a splunk-hec JSON event or a CEF line); per shard, in
//! cursor order, JSON first and CEF after, never back, switching between LogGroups; the
//! metrics count two applied and two refused reloads.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;

use crate::harness::dataset::{Dataset, Tally, hec_seq};
use crate::harness::producer::{Producer, assert_one_switch_per_shard, replace, wait_for_more};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{SlsEnv, shipper_env};

const GROUP: &str = "e2e-reload";

/// The seq of a received event and whether CEF made it.
fn seq_of(envelope: &Value) -> (u64, bool) {
    if let Some(seq) = hec_seq(envelope) {
        return (seq, false);
    }
    let text = envelope["event"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("CEF:0|"),
        "neither JSON nor CEF: {envelope}"
    );
    let seq = text
        .split(' ')
        .find_map(|kv| kv.strip_prefix("externalId="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no externalId in {text}"));
    (seq, true)
}

/// Waits for the `n`th line starting with `prefix`; returns it.
fn nth_log(shipper: &mut ShipperProcess, prefix: &str, n: usize) -> Value {
    eventually(&format!("log line {n} {prefix:?}"), || {
        shipper.assert_running();
        let lines = shipper.logs_with(prefix);
        lines
            .get(n - 1)
            .cloned()
            .ok_or_else(|| format!("{} so far", lines.len()))
    })
}

#[test]
fn reload_under_load_swaps_plugin_config_and_sink_and_refuses_bad_and_source_changes() {
    let env = SlsEnv::start("reload", 4);
    let hec = Arc::new(env.hec_receiver());
    let config_path = env.dir().join("shipper.toml");
    let base = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        .set("plugin.watch", false)
        // 5 groups (125 logs) per pull: many batch boundaries to switch at.
        .set("source.fetch_count", 5);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &base, &[], &shipper_env());
    let delivered = hec.clone();
    let producer = Producer::start(
        &env,
        Dataset::new(env.shards(), 25),
        100,
        3_000,
        move || delivered.event_count() as u64,
    );
    wait_for_more(&hec, &mut shipper, hec.event_count(), 1_000);

    // 1. SIGHUP: cef with its own config, and the watcher on.
    let cef: RunConfig = base
        .clone()
        .remove("plugin.config")
        .set("plugin.path", artifacts::PLUGIN_CEF)
        .set("plugin.config.output", "hec")
        .set("plugin.config.sourcetype", "cef")
        .set("plugin.config.extension.externalId", "seq")
        .set("reload.watch", true);
    replace(&config_path, cef.render().as_bytes());
    shipper.signal("HUP");
    let applied = nth_log(&mut shipper, "configuration reloaded", 1);
    assert_eq!(applied["generation"], 2, "{applied}");
    assert_eq!(applied["trigger"], "SIGHUP", "{applied}");
    wait_for_more(&hec, &mut shipper, hec.event_count(), 1_000);

    // 2. The file alone: a larger batch.
    let larger = cef.clone().set("sink.batch_max_bytes", 256 * 1024);
    replace(&config_path, larger.render().as_bytes());
    let applied = nth_log(&mut shipper, "configuration reloaded", 2);
    assert_eq!(applied["generation"], 3, "{applied}");
    assert_eq!(applied["trigger"], "file change", "{applied}");
    wait_for_more(&hec, &mut shipper, hec.event_count(), 1_000);

    // 3. A bad value: refused, naming the key; generation 3 keeps shipping.
    let bad = larger.clone().set("sink.batch_max_bytes", -5);
    replace(&config_path, bad.render().as_bytes());
    let refused = nth_log(&mut shipper, "configuration reload refused", 1);
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("sink.batch_max_bytes") && refused["level"] == "ERROR",
        "{refused}"
    );
    wait_for_more(&hec, &mut shipper, hec.event_count(), 1_000);

    // 4. A [source] change: refused, restart needed.
    let moved = larger.clone().set("source.consumer_group", "another-group");
    replace(&config_path, moved.render().as_bytes());
    let refused = nth_log(&mut shipper, "configuration reload refused", 2);
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`source.consumer_group`") && message.contains("restart needed"),
        "{refused}"
    );
    wait_for_more(&hec, &mut shipper, hec.event_count(), 1_000);

    let m = shipper.scrape().expect("/metrics");
    assert_eq!(m.sum("shipper_config_generation"), 3.0, "{}", m.0);
    assert_eq!(
        m.sum_where("shipper_config_reloads_total", "result=\"applied\""),
        2.0
    );
    assert_eq!(
        m.sum_where("shipper_config_reloads_total", "result=\"refused\""),
        2.0
    );

    let ds = producer.finish();
    eventually("every log at the receiver", || {
        shipper.assert_running();
        let n = hec.event_count() as u64;
        if n >= ds.len() {
            Ok(())
        } else {
            Err(format!("{n} of {}", ds.len()))
        }
    });
    env.wait_checkpoints_at_end(GROUP);
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    let mut per_shard: BTreeMap<u32, Vec<(u64, bool)>> = BTreeMap::new();
    let mut seqs = Vec::new();
    for e in hec.events() {
        let (seq, is_cef) = seq_of(&e.envelope);
        per_shard
            .entry(ds.placement(seq).shard)
            .or_default()
            .push((seq, is_cef));
        seqs.push(seq);
    }
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "across two reloads and two refusals");
    assert_one_switch_per_shard(&ds, per_shard);
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters:\n{dead}");
    eprintln!("reload: {} logs, each exactly once", ds.len());
}
