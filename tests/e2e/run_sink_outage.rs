//! A sink that is down for a while, then comes back, loses nothing (docs/rendering.md §3.9): HEC
//! answering 503 bursts, dropping connections and serving a proxy's error page; and an HEC
//! endpoint nobody listens on at start-up that appears later. Every log arrives exactly once
//! (none of these faults stores anything, so a retry cannot duplicate), nothing is
//! dead-lettered, and the checkpoints reach the end.

use std::path::Path;

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::{Fault, HecReceiver, status_counts};
use shipper_test_support::ports::reserve_port;

use crate::harness::dataset::Dataset;
use crate::harness::shipper::{Metrics, RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-outage";
const LOGS: u64 = 20_000;

fn config(env: &SlsEnv, url: &str) -> RunConfig {
    RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(url)
}

/// Waits for every log and the checkpoints, stops shipper, and checks the tally and the
/// dead-letter file.
fn finish(env: &SlsEnv, ds: &Dataset, hec: &HecReceiver, shipper: &mut ShipperProcess) -> Metrics {
    let metrics = env.finish_hec_run(GROUP, ds, hec, shipper, "after the outage");
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(
        dead.is_empty(),
        "nothing may be dead-lettered for a transient outage:\n{dead}"
    );
    assert_eq!(metrics.sum("shipper_dead_lettered_total"), 0.0);
    metrics
}

#[test]
fn hec_503_bursts_resets_and_error_pages_lose_nothing() {
    let env = SlsEnv::start("outage-faults", 4);
    let mut ds = Dataset::new(env.shards(), 100);
    env.load(&mut ds, LOGS);
    let hec = env.hec_receiver();
    // The first 40 requests fail in three different ways; retries back off (100 ms .. 1 s).
    hec.push_fault(Fault::busy(), 20);
    hec.push_fault(Fault::Reset, 10);
    hec.push_fault(Fault::Html(502), 5);
    hec.push_fault(
        Fault::Status {
            status: 503,
            code: Some(9),
            text: "Server is busy",
            retry_after: Some(1),
        },
        5,
    );
    let mut shipper = ShipperProcess::start(
        env.dir(),
        "shipper",
        &config(&env, &hec.url()),
        &[],
        &shipper_env(),
    );
    let metrics = finish(&env, &ds, &hec, &mut shipper);
    // The receiver records the 503s (not the resets or HTML pages); each failed request is
    // a transient error and a retry for the sink. A reset request may be retried inside
    // the HTTP client before the sink sees it, so resets are not counted exactly.
    let statuses = status_counts(&hec.requests());
    assert_eq!(statuses.get(&503), Some(&25), "503 answers: {statuses:?}");
    let retries = metrics.sum("shipper_sink_retries_total");
    assert!(
        retries >= 30.0 && metrics.sum("shipper_sink_errors_total") >= 30.0,
        "the 503s and error pages are retried: {retries} retries\n{}",
        metrics.0
    );
    assert!(
        shipper.stderr().contains("\"level\":\"WARN\""),
        "the outage is reported (WARN)\n{}",
        shipper.stderr_tail(30)
    );
}

#[test]
fn hec_absent_at_start_then_appearing_loses_nothing() {
    let env = SlsEnv::start("outage-absent", 4);
    let mut ds = Dataset::new(env.shards(), 100);
    env.load(&mut ds, LOGS);
    // Nobody listens on this port until the receiver starts below.
    let port = reserve_port();
    let addr = format!("127.0.0.1:{}", port.port());
    let mut shipper = ShipperProcess::start(
        env.dir(),
        "shipper",
        &config(&env, &format!("http://{addr}")),
        &[],
        &shipper_env(),
    );
    shipper.wait_for_log("sink is not reachable yet", |_| true);
    // Wait until the pipeline itself has failed sends (not just the start-up check).
    eventually("shipper to retry sends to the absent receiver", || {
        shipper.assert_running();
        let m = shipper.scrape().ok_or("no metrics yet")?;
        let failures =
            m.sum("shipper_sink_connect_failures_total") + m.sum("shipper_sink_retries_total");
        if failures >= 2.0 {
            Ok(())
        } else {
            Err(format!("{failures} failed sends so far"))
        }
    });
    let hec = env.hec_receiver_on(&addr);
    drop(port);
    finish(&env, &ds, &hec, &mut shipper);
}
