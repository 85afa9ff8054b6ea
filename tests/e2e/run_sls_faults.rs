//! SLS failing under `shipper run` (the emulator's `faults()`): PullLogs answering 503
//! `ServerBusy` and 403 `ReadQuotaExceed`, and two heartbeats in a row failing (a 500, then a
//! dropped connection). Every log still reaches HEC exactly once and the checkpoints reach
//! the end; `/metrics` counts each injected failure once in `shipper_sls_retries_total`
//! under its call and cause (and nothing else), no read stopped, and
//! `shipper_sls_heartbeat_age_seconds` climbs past two heartbeat intervals while the
//! heartbeats fail, then falls back once one succeeds.

use std::collections::BTreeMap;
use std::path::Path;

use shipper_emulator::{Api, Fault};
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;

use crate::harness::dataset::Dataset;
use crate::harness::shipper::{Metrics, RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-sls-faults";
const SHARDS: u32 = 2;
/// Loaded before the start, and again while the heartbeats fail.
const LOGS: u64 = 2_000;
/// Heartbeat ages the test tells apart: a healthy consumer (1 s interval) stays near 1 s;
/// two failed heartbeats in a row take it to about 3 s.
const HEALTHY_AGE: f64 = 1.5;
const FAILING_AGE: f64 = 2.0;

/// The value of `name{…key="value"…}` for one label, if present.
fn label<'a>(sample: &'a str, key: &str) -> Option<&'a str> {
    let (_, labels) = sample.split_once('{')?;
    let (labels, _) = labels.rsplit_once('}')?;
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

fn value(sample: &str) -> f64 {
    let (_, v) = sample.rsplit_once(' ').expect("a sample line");
    v.parse().expect("a sample value")
}

/// Non-zero `(api, cause)` counts of `shipper_sls_retries_total`.
fn retries(m: &Metrics) -> BTreeMap<(String, String), f64> {
    m.samples("shipper_sls_retries_total")
        .into_iter()
        .filter(|s| value(s) > 0.0)
        .map(|s| {
            let key = |k| label(s, k).unwrap_or_else(|| panic!("no {k} label: {s}"));
            ((key("api").to_owned(), key("cause").to_owned()), value(s))
        })
        .collect()
}

/// `shipper_sls_heartbeat_age_seconds` of the one logstore.
fn heartbeat_age(m: &Metrics) -> Option<f64> {
    let samples = m.samples("shipper_sls_heartbeat_age_seconds");
    let logstore = format!("{PROJECT}/{LOGSTORE}");
    match samples.as_slice() {
        [] => None,
        [one] if label(one, "logstore") == Some(logstore.as_str()) => Some(value(one)),
        other => panic!("one heartbeat age for {logstore} expected: {other:?}"),
    }
}

#[test]
fn sls_faults_are_retried_once_each_and_counted_by_call_and_cause() {
    let env = SlsEnv::start("sls-faults", SHARDS);
    let mut ds = Dataset::new(SHARDS, 100);
    env.load(&mut ds, LOGS);
    let hec = env.hec_receiver();
    let faults = env.faults();
    // The first pulls (whichever shard makes them) fail: three 503s and a quota error.
    faults.fail_next(Api::PullLogs, 3, Fault::ServerBusy);
    faults.fail_next(Api::PullLogs, 1, Fault::ReadQuotaExceed);
    // A longer group timeout than the harness's 3 s: two failed heartbeats (about 3 s
    // without one) must stay well clear of giving the shards up (timeout + interval).
    let cfg = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url())
    .set("source.timeout", 6);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());

    eventually("both shards held with a fresh heartbeat", || {
        shipper.assert_running();
        let m = shipper.scrape().ok_or("no metrics yet")?;
        let held = m.sum("shipper_shards_held");
        match heartbeat_age(&m) {
            Some(age) if held == f64::from(SHARDS) && age < HEALTHY_AGE => Ok(()),
            age => Err(format!("{held} shards held, heartbeat age {age:?}")),
        }
    });
    // The next two heartbeats fail, while more logs come in.
    faults.fail_next(Api::Heartbeat, 1, Fault::InternalServerError);
    faults.fail_next(Api::Heartbeat, 1, Fault::DropConnection);
    env.load(&mut ds, LOGS);
    let failing = eventually("the heartbeat age to pass two intervals", || {
        shipper.assert_running();
        let age = shipper.scrape().as_ref().and_then(heartbeat_age);
        match age {
            Some(age) if age > FAILING_AGE => Ok(age),
            age => Err(format!("heartbeat age {age:?}")),
        }
    });
    eventually("a heartbeat to succeed after the faults", || {
        shipper.assert_running();
        let age = shipper.scrape().as_ref().and_then(heartbeat_age);
        match age {
            Some(age) if faults.pending() == 0 && age < HEALTHY_AGE => Ok(()),
            age => Err(format!(
                "{} rules armed, heartbeat age {age:?}",
                faults.pending()
            )),
        }
    });

    let m = env.finish_hec_run(GROUP, &ds, &hec, &mut shipper, "through the SLS faults");

    let want: BTreeMap<(String, String), f64> = [
        (("pull", "server"), 3.0),
        (("pull", "quota"), 1.0),
        (("heartbeat", "server"), 1.0),
        (("heartbeat", "transport"), 1.0),
    ]
    .into_iter()
    .map(|((api, cause), n)| ((api.to_owned(), cause.to_owned()), n))
    .collect();
    assert_eq!(
        retries(&m),
        want,
        "injected: {:?}\n{}",
        faults.injected(),
        m.0
    );
    assert_eq!(faults.injected().len(), 6);
    // Every (api, cause) pair is exported, zeros included (so rates see the first retry).
    // 6 calls × 5 causes (server, quota, transport, credentials, other).
    assert_eq!(m.samples("shipper_sls_retries_total").len(), 6 * 5);
    assert_eq!(m.sum("shipper_sls_read_errors_total"), 0.0, "{}", m.0);
    assert_eq!(m.samples("shipper_sls_read_errors_total").len(), 3);
    assert!(
        m.0.contains("# HELP shipper_sls_retries ")
            && m.0.contains("# HELP shipper_sls_heartbeat_age_seconds "),
        "{}",
        m.0
    );
    assert_eq!(m.sum("shipper_dead_lettered_total"), 0.0);
    // The heartbeat failures cost no lease: each shard was taken once and kept.
    let taken: Vec<u32> = shipper.assignments().iter().map(|a| a.0).collect();
    assert_eq!(taken.len(), SHARDS as usize, "{taken:?}");
    eprintln!("run_sls_faults: heartbeat age read {failing:.1} s while the heartbeats failed");
}
