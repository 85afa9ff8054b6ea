//! The canary plugin (docs/plugins.md "Canary"): the splunk-hec plugin runs as the current
//! plugin and again as the canary with one config value changed. Every sampled event
//! differs in exactly that field, the report and the metrics say so, and the receiver gets
//! each log exactly once from the current plugin only (the canary ships nothing). A reload
//! that changes the canary's config is picked up: the report then names the new field.

use serde_json::Value;
use shipper_test_artifacts as artifacts;

use crate::harness::dataset::{Tally, hec_seqs};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{SlsEnv, shipper_env, wait_for_events};
use shipper_test_support::eventually::eventually;

const GROUP: &str = "e2e-canary";
const LOGS: u64 = 2_000;

fn config(env: &SlsEnv, hec: &str, canary: (&str, &str)) -> RunConfig {
    env.run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(hec)
        .set("plugin.config.sourcetype", "sls:e2e")
        .set("plugin.config.index", "main")
        .set("plugin.canary.path", artifacts::PLUGIN_SPLUNK_HEC)
        .set("plugin.canary.config.sourcetype", "sls:e2e")
        .set("plugin.canary.config.index", "main")
        .set(&format!("plugin.canary.config.{}", canary.0), canary.1)
        .set("plugin.canary.sample", 1.0)
        .set("plugin.canary.report", "canary.json")
}

/// Waits until the report has compared at least `events` events and names `field`;
/// returns it. (With `sample = 1` a shard that catches up fast still has some batches
/// skipped while the canary is busy: the report counts them, they are not compared.)
fn report_with(env: &SlsEnv, events: u64, field: &str) -> Value {
    let path = env.dir().join("canary.json");
    eventually("the canary report to cover the logs", || {
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let r: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let e = &r["events"];
        let seen = e["same"].as_u64().unwrap_or(0) + e["different"].as_u64().unwrap_or(0);
        let names = r["first_differences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["fields"] == serde_json::json!([field]));
        if seen >= events && names {
            Ok(r)
        } else {
            Err(format!("{seen} events compared so far: {text}"))
        }
    })
}

#[test]
fn a_canary_that_changes_one_field_is_reported_by_that_field_and_ships_nothing() {
    let (env, mut ds) = SlsEnv::start_loaded("canary", 2, LOGS);
    let hec = env.hec_receiver();
    let mut shipper = ShipperProcess::start(
        env.dir(),
        "shipper",
        &config(&env, &hec.url(), ("sourcetype", "sls:canary")),
        &[],
        &shipper_env(),
    );
    wait_for_events(&mut shipper, &hec, ds.len());
    let r = report_with(&env, 100, "sourcetype");
    assert_eq!(
        r["events"]["same"], 0,
        "every event's sourcetype differs: {r}"
    );
    assert_eq!(r["events"]["error"], 0, "{r}");
    assert_eq!(r["compared_as"], "json");
    for d in r["first_differences"].as_array().expect("differences") {
        assert_eq!(d["fields"], serde_json::json!(["sourcetype"]), "{d}");
        assert!(
            d["current"]
                .as_str()
                .unwrap()
                .contains(r#""sourcetype":"sls:e2e""#)
        );
        assert!(
            d["canary"]
                .as_str()
                .unwrap()
                .contains(r#""sourcetype":"sls:canary""#)
        );
    }
    let metrics = shipper.scrape().expect("metrics");
    let different = metrics.sum_where("shipper_canary_events_total", "result=\"different\"");
    assert!(different >= 100.0, "{different}");
    assert!(metrics.sum("shipper_canary_batches_total") >= 1.0);

    // A reload that changes the canary: the new one's difference is a different field.
    std::fs::write(
        env.dir().join("shipper.toml"),
        config(&env, &hec.url(), ("index", "canary")).render(),
    )
    .expect("rewrite config");
    shipper.signal("HUP");
    shipper.wait_for_log("configuration reloaded", |_| true);
    let more = 400;
    env.load(&mut ds, more);
    wait_for_events(&mut shipper, &hec, ds.len());
    let r = report_with(&env, 100, "index");
    assert_eq!(r["events"]["same"], 0, "{r}");

    shipper.signal("TERM");
    assert!(shipper.wait_exit().success());
    // Nothing extra: each log once, every event the current plugin's.
    let events = hec.events();
    Tally::new(ds.len(), hec_seqs(&events)).assert_exactly_once(&ds, "canary");
    assert!(
        events
            .iter()
            .all(|e| e.envelope["sourcetype"] == "sls:e2e" && e.envelope["index"] == "main"),
        "an event from the canary reached the receiver"
    );
}
