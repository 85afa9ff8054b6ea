//! Client-side read throughput against the in-process emulator: what `shipper run` can pull
//! per second before any plugin or sink work. Preloads 4 shards, then drains them
//! 1. with `Client::pull_logs` one shard after another (request + LZ4 + group split), and
//! 2. with a `Consumer` (heartbeat, leases, checkpoint lookup) and one prefetching
//!    `ShardReader` per shard, concurrently, as the pipeline does.
//!
//! Emulator and client share the process and its 2 worker threads, so the figures are
//! "both sides on this machine". `cargo bench -p shipper-sls`; `SHIPPER_BENCH_LOGS` sets
//! the number of logs (default 4 000 000: 4 shards × 1M logs, about 4 GB raw; two preloads, so ≈ 10 GiB of RAM).

use std::time::Duration;

use shipper_emulator::{Emulator, EmulatorConfig, PreloadSpec, SampleKind};
use shipper_sls::sign::Credentials;
use shipper_sls::{Client, ClientConfig, Consumer, ConsumerConfig, CursorPosition, PullRequest};
use tokio::time::Instant;

const SHARDS: u32 = 4;

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

async fn drain_sequentially(c: &Client, logstore: &str) -> (u64, u64, Duration) {
    let (mut raw, mut groups) = (0u64, 0u64);
    let start = Instant::now();
    for shard in 0..SHARDS {
        let mut cursor = c
            .get_cursor(logstore, shard, CursorPosition::Begin)
            .await
            .expect("cursor");
        loop {
            let resp = c
                .pull_logs(logstore, shard, &PullRequest::new(cursor))
                .await
                .expect("pull");
            if resp.is_caught_up() {
                break;
            }
            raw += resp.raw_size as u64;
            groups += resp.groups.len() as u64;
            cursor = resp.next_cursor;
        }
    }
    (raw, groups, start.elapsed())
}

async fn drain_with_consumer(c: &Client, groups_per_shard: &[u64]) -> (u64, u64, Duration) {
    let mut cfg = ConsumerConfig::new("bench", "bench-cg", "bench-1");
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.timeout = Duration::from_secs(5);
    let start = Instant::now();
    let mut consumer = Consumer::join(c.clone(), cfg).await.expect("join");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SHARDS {
        let lease = consumer.next_lease().await.expect("lease");
        let want = groups_per_shard[lease.shard() as usize];
        tasks.spawn(async move {
            let mut reader = lease.reader();
            let (mut raw, mut groups, mut last) = (0u64, 0u64, lease.start_cursor());
            // A caught-up reader just waits for more: stop at the shard's known size.
            while groups < want
                && let Some(batch) = reader.next().await
            {
                let batch = batch.expect("batch");
                raw += batch.raw_size as u64;
                groups += batch.groups.len() as u64;
                last = batch.next_cursor;
            }
            lease.commit(last).await.expect("commit");
            (raw, groups)
        });
    }
    let (mut raw, mut groups) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (r, g) = done.expect("shard task");
        raw += r;
        groups += g;
    }
    let elapsed = start.elapsed();
    consumer.shutdown().await;
    (raw, groups, elapsed)
}

fn main() {
    let logs: u64 = std::env::var("SHIPPER_BENCH_LOGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Client-side cost, not SLS's per-shard read quota.
        let mut config = EmulatorConfig::new("bench-id", "bench-secret");
        config.read_quota = shipper_emulator::ReadQuota::OFF;
        let emu = Emulator::start(config).await.expect("start the emulator");
        // Two identical logstores, one per reader, so neither run finds the other's
        // warm caches.
        let mut stats = None;
        for logstore in ["bench", "seq"] {
            emu.create_logstore("bench", logstore, SHARDS)
                .expect("logstore");
            let spec = PreloadSpec {
                logs,
                logs_per_group: 100,
                kind: SampleKind::Mixed,
                ..Default::default()
            };
            stats = Some(emu.preload("bench", logstore, spec).await.expect("preload"));
        }
        let stats = stats.expect("preloaded");
        println!(
            "preloaded {} logs in {} groups, {:.1} MB raw, over {SHARDS} shards (twice)",
            stats.logs,
            stats.groups,
            stats.raw_bytes as f64 / 1e6
        );
        let c = Client::new(ClientConfig::new(
            emu.endpoint(),
            "bench",
            Credentials::new("bench-id", "bench-secret"),
        ))
        .expect("client");

        let (raw, groups, elapsed) = drain_sequentially(&c, "seq").await;
        assert_eq!(groups, stats.groups, "every group read once");
        println!(
            "Client::pull_logs, one shard at a time: {:.1} MB raw in {elapsed:.2?} = {:.0} MB/s",
            raw as f64 / 1e6,
            mb_per_s(raw, elapsed)
        );

        let per_shard: Vec<u64> = emu
            .shard_stats("bench", "bench")
            .expect("stats")
            .iter()
            .map(|s| s.groups as u64)
            .collect();
        let (raw, groups, elapsed) = drain_with_consumer(&c, &per_shard).await;
        assert_eq!(groups, stats.groups, "every group read once");
        println!(
            "Consumer + {SHARDS} prefetching ShardReaders (incl. join): {:.1} MB raw in \
             {elapsed:.2?} = {:.0} MB/s",
            raw as f64 / 1e6,
            mb_per_s(raw, elapsed)
        );
        emu.shutdown().await.expect("shutdown");
    });
}
