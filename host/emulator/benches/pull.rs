//! PullLogs serving throughput: preload 4 shards with generated logs, then read every shard
//! to its end over HTTP (count=1000, as the SDKs pull) and print raw MB/s served.
//!
//! Everything runs on ONE thread (a current-thread runtime holding both the emulator and the
//! client), so the figure is per core and includes the client's side of HTTP. Run with
//! `cargo bench -p shipper-emulator`; `SHIPPER_BENCH_LOGS` sets the number of logs
//! (default 4 000 000: 4 shards × 1M logs, about 4 GB raw). The cold lz4 pass is the figure
//! that matters; the cached pass shows what re-reads cost (see `pull::PullCache`).

#[path = "../tests/api/client.rs"]
#[expect(dead_code, reason = "the bench uses a part of the test client")]
mod client;

use std::time::Duration;

use client::{AK_ID, AK_SECRET, Client};
use shipper_emulator::{Emulator, EmulatorConfig, PreloadSpec, SampleKind};
use tokio::time::Instant;

const SHARDS: u32 = 4;

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

async fn drain(c: &Client, accept: &str) -> (u64, u64, u64, Duration) {
    let (mut raw, mut wire, mut groups) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for shard in 0..SHARDS {
        let path = format!("/logstores/bench/shards/{shard}");
        let begin = c
            .get(&path, &[("type", "cursor"), ("from", "begin")])
            .await
            .ok();
        let mut cursor = begin.json()["cursor"].as_str().unwrap().to_owned();
        loop {
            let r = c
                .send(
                    "GET",
                    &path,
                    &[("type", "log"), ("cursor", &cursor), ("count", "1000")],
                    &[("accept-encoding", accept)],
                    Vec::new(),
                )
                .await
                .ok();
            let next = r.header("x-log-cursor").to_owned();
            if next == cursor {
                break;
            }
            raw += r.header("x-log-bodyrawsize").parse::<u64>().unwrap();
            groups += r.header("x-log-count").parse::<u64>().unwrap();
            wire += r.body.len() as u64;
            cursor = next;
        }
    }
    (raw, wire, groups, start.elapsed())
}

fn main() {
    let logs: u64 = std::env::var("SHIPPER_BENCH_LOGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Serving cost, not the per-shard read quota.
        let mut config = EmulatorConfig::new(AK_ID, AK_SECRET);
        config.read_quota = shipper_emulator::ReadQuota::OFF;
        let emu = Emulator::start(config).await.expect("start");
        emu.create_logstore("bench", "bench", SHARDS).expect("logstore");
        let t = Instant::now();
        let stats = emu
            .preload(
                "bench",
                "bench",
                PreloadSpec {
                    logs,
                    logs_per_group: 100,
                    kind: SampleKind::Mixed,
                    ..Default::default()
                },
            )
            .await
            .expect("preload");
        let preload = t.elapsed();
        println!(
            "preload: {} logs, {} groups, {:.1} MB raw in {:.2?} ({:.0} MB/s)",
            stats.logs,
            stats.groups,
            stats.raw_bytes as f64 / 1e6,
            preload,
            mb_per_s(stats.raw_bytes, preload)
        );
        let c = Client::new(emu.addr(), "bench");
        // The second lz4 pass re-reads the same ranges: served from the reply cache.
        for (name, accept) in [("lz4", "lz4"), ("lz4 cached", "lz4"), ("uncompressed", "")] {
            let (raw, wire, groups, elapsed) = drain(&c, accept).await;
            assert_eq!(groups, stats.groups, "every group served once");
            println!(
                "PullLogs {name:>12}: {:.1} MB raw ({:.1} MB on the wire, ratio {:.2}) in {:.2?} = {:.0} MB/s raw per core",
                raw as f64 / 1e6,
                wire as f64 / 1e6,
                raw as f64 / wire.max(1) as f64,
                elapsed,
                mb_per_s(raw, elapsed)
            );
        }
        emu.shutdown().await.expect("shutdown");
    });
}
