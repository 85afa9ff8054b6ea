//! Memory against the shard count (a measurement, `#[ignore]`d: it takes minutes): a 300 MB
//! backlog spread over 4, 64 and 256 shards, read by `shipper run` into a slow HEC receiver
//! (every request waits 200 ms), so every shard has as much pulled and in flight as shipper
//! allows. Prints the peak resident memory of each run next to the memory budget
//! (`[source] max_buffer_mib`, default 256 MiB) and checks it stays within the budget plus a
//! fixed overhead (the binary, the plugin runtime, per-connection buffers).
//!
//! `cargo test --test e2e run_memory -- --ignored --nocapture` (the debug binary: figures of a
//! release build are lower by its smaller code, not by the data).

use std::time::{Duration, Instant};

use shipper_emulator::{PreloadSpec, ReadQuota};
use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig};

use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const BACKLOG: u64 = 300_000_000;
const BUDGET_MIB: u64 = 256;
/// What the process holds besides the budget, at most.
const OVERHEAD_MIB: u64 = 192;
const WATCH: Duration = Duration::from_secs(40);

fn peak_rss_mib(shards: u32) -> u64 {
    let env = SlsEnv::start_with(&format!("memory-{shards}"), shards, |mut c| {
        c.read_quota = ReadQuota::OFF;
        c
    });
    let spec = PreloadSpec {
        bytes: BACKLOG,
        ..Default::default()
    };
    env.handle()
        .block_on(env.emulator().preload(PROJECT, LOGSTORE, spec))
        .expect("preload");
    let hec = env.handle().block_on(HecReceiver::start(HecReceiverConfig {
        discard: true,
        ..Default::default()
    }));
    hec.set_delay(Some(Duration::from_millis(200)));
    let config = env
        .run_config(
            &format!("e2e-memory-{shards}"),
            artifacts::PLUGIN_SPLUNK_HEC,
        )
        .hec_sink(&hec.url())
        .set("source.max_buffer_mib", BUDGET_MIB as i64);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < WATCH {
        shipper.assert_running();
        peak = peak.max(shipper.rss_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (requests, bytes) = hec.discarded();
    shipper.kill();
    eprintln!(
        "run_memory: {shards} shards: peak RSS {} MiB (budget {BUDGET_MIB} MiB); the slow \
         receiver got {requests} requests, {} MB, in {}s",
        peak >> 20,
        bytes / 1_000_000,
        WATCH.as_secs()
    );
    peak >> 20
}

#[test]
#[ignore = "a measurement of a few minutes: run with --ignored"]
fn memory_stays_within_the_budget_at_4_64_and_256_shards() {
    let peaks: Vec<(u32, u64)> = [4, 64, 256]
        .into_iter()
        .map(|n| (n, peak_rss_mib(n)))
        .collect();
    for (n, peak) in &peaks {
        assert!(
            *peak <= BUDGET_MIB + OVERHEAD_MIB,
            "{n} shards: peak RSS {peak} MiB over the budget of {BUDGET_MIB} MiB plus \
             {OVERHEAD_MIB} MiB: {peaks:?}"
        );
    }
}
