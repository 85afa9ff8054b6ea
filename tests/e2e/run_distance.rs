//! SLS far away and at its read quota: the emulator delays every answer by 100 ms and serves
//! each shard at most 1 MB/s (refusing the excess with `403 ReadQuotaExceed`). `shipper run`
//! still delivers every log exactly once, backs off on the refusals (counted as quota
//! retries, with the time waited) and reaches the end of every shard.

use std::time::{Duration, Instant};

use shipper_emulator::ReadQuota;
use shipper_test_artifacts as artifacts;

use crate::harness::dataset::Dataset;
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-distance";
const LOGS: u64 = 10_000;
const QUOTA: u64 = 1_000_000;

#[test]
fn a_far_shard_at_its_read_quota_is_delivered_whole() {
    let env = SlsEnv::start_with("distance", 2, |mut c| {
        c.latency = Duration::from_millis(100);
        c.read_quota = ReadQuota {
            bytes_per_sec: QUOTA,
            reads_per_sec: 100,
        };
        c
    });
    let mut ds = Dataset::new(env.shards(), 100);
    env.load(&mut ds, LOGS);
    let raw: usize = env
        .emulator()
        .shard_stats(PROJECT, LOGSTORE)
        .expect("shard stats")
        .iter()
        .map(|s| s.raw_bytes)
        .max()
        .unwrap_or(0);
    assert!(
        raw as u64 > 2 * QUOTA,
        "each shard holds {raw} bytes: more than two seconds of its quota"
    );
    let hec = env.hec_receiver();
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url());
    let started = Instant::now();
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());
    let metrics = env.finish_hec_run(GROUP, &ds, &hec, &mut shipper, "distance");
    let refused = metrics.sum_where("shipper_sls_retries_total", "cause=\"quota\"");
    let waited = metrics.sum("shipper_sls_pull_quota_wait_seconds_total");
    assert!(refused > 0.0, "the quota refused pulls");
    assert!(waited > 0.0, "the wait after {refused} refusals is counted");
    eprintln!(
        "run_distance: {raw} bytes per shard at {QUOTA} bytes/s and 100 ms in {:.1} s; \
         {refused} pulls refused, {waited:.2} s waited",
        started.elapsed().as_secs_f64()
    );
}
