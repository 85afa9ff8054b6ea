//! Read throughput at a distance: `ShardReader`s against the in-process emulator with
//! `latency` added to every answer and SLS's per-shard read quota (10 MB/s, 100 reads/s),
//! as a consumer on premises sees a cloud region (docs/sls-protocol.md §9.4, §13.6).
//!
//! Each scenario prints the raw MB/s the readers delivered to a caller that takes every
//! batch at once (or, in the "busy" rows, spends a fixed time on each, as a pipeline does),
//! next to the bound a shard cannot beat: min(its quota, answer size ÷ round trip), one pull
//! being in flight per shard, the answer being what the reader asks for at that distance
//! (`distance_pull_bytes`) or the emulator's cap if smaller. Then the 16-shard 100 ms rate
//! as a percentage of the 16-shard loopback one, both from this run. Single-shard rows are
//! measured after a 2 s warm-up, so the quota's first second (its bucket starts full) does
//! not flatter them; multi-shard rows from the moment every shard delivered its first batch,
//! so joining the group (a few round trips per shard, once) is not counted.
//!
//! `cargo bench -p shipper-sls --bench distance`. Emulator and readers share the process
//! and its 2 worker threads.

use std::sync::Arc;
use std::time::Duration;

use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, PreloadSpec, ReadQuota};
use shipper_sls::sign::Credentials;
use shipper_sls::{Client, ClientConfig, Consumer, ConsumerConfig};
use tokio::sync::Mutex;
use tokio::time::Instant;

const MB: f64 = 1e6;
const WARM_UP: Duration = Duration::from_secs(2);

/// One row of the table.
struct Scenario {
    name: &'static str,
    shards: u32,
    latency: Duration,
    quota: ReadQuota,
    /// Emulator answer cap (raw bytes).
    cap: usize,
    /// Raw bytes preloaded per shard.
    bytes_per_shard: u64,
    /// The caller's time per batch.
    busy: Duration,
    /// `ConsumerConfig::prefetch_bytes`; 1 = one answer at a time, the reader waiting for
    /// its caller before each pull.
    prefetch_bytes: Option<usize>,
    warm_up: bool,
}

/// Per batch: its shard, when it arrived and its raw bytes.
type Trace = Vec<(u32, Instant, u64)>;

async fn run(s: &Scenario) -> (f64, u64) {
    let mut config = EmulatorConfig::new("bench-id", "bench-secret");
    config.latency = s.latency;
    config.read_quota = s.quota;
    config.max_pull_bytes = s.cap;
    let emu = Emulator::start(config).await.expect("start the emulator");
    emu.create_logstore("bench", "bench", s.shards)
        .expect("logstore");
    let spec = PreloadSpec {
        bytes: s.bytes_per_shard * u64::from(s.shards),
        ..Default::default()
    };
    emu.preload("bench", "bench", spec).await.expect("preload");
    let rate = read_all(&emu, s).await;
    emu.shutdown().await.expect("shutdown");
    rate
}

/// Reads every shard to its end; the delivered raw MB/s (after the warm-up when asked) and
/// the bytes read.
async fn read_all(emu: &EmulatorHandle, s: &Scenario) -> (f64, u64) {
    let c = Client::new(ClientConfig::new(
        emu.endpoint(),
        "bench",
        Credentials::new("bench-id", "bench-secret"),
    ))
    .expect("client");
    let groups: Vec<u64> = emu
        .shard_stats("bench", "bench")
        .expect("stats")
        .iter()
        .map(|st| st.groups as u64)
        .collect();
    let mut cfg = ConsumerConfig::new("bench", "bench-cg", "bench-1");
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.timeout = Duration::from_secs(5);
    if let Some(p) = s.prefetch_bytes {
        cfg.prefetch_bytes = p;
    }
    let mut consumer = Consumer::join(c.clone(), cfg).await.expect("join");
    let trace: Arc<Mutex<Trace>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for _ in 0..s.shards {
        let lease = consumer.next_lease().await.expect("lease");
        let shard = lease.shard();
        let want = groups[shard as usize];
        let (trace, busy) = (trace.clone(), s.busy);
        tasks.spawn(async move {
            let mut reader = lease.reader();
            let mut got = 0u64;
            while got < want
                && let Some(batch) = reader.next().await
            {
                let batch = batch.expect("batch");
                got += batch.groups.len() as u64;
                trace
                    .lock()
                    .await
                    .push((shard, Instant::now(), batch.raw_size as u64));
                if !busy.is_zero() {
                    tokio::time::sleep(busy).await;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("shard task");
    }
    consumer.shutdown().await;
    let trace = trace.lock().await;
    let end = trace.iter().map(|(_, t, _)| *t).max().unwrap_or(start);
    let total: u64 = trace.iter().map(|(_, _, b)| b).sum();
    let from = if s.warm_up {
        start + WARM_UP
    } else {
        // Every shard under way: the last first batch.
        (0..s.shards)
            .filter_map(|shard| {
                trace
                    .iter()
                    .find(|(s, _, _)| *s == shard)
                    .map(|(_, t, _)| *t)
            })
            .max()
            .unwrap_or(start)
    };
    let measured: u64 = trace
        .iter()
        .filter(|(_, t, _)| *t > from)
        .map(|(_, _, b)| b)
        .sum();
    let secs = end.saturating_duration_since(from).as_secs_f64();
    (measured as f64 / MB / secs, total)
}

/// min(quota, answer size ÷ latency) per shard, times the shards, in MB/s (`None`: no
/// bound).
fn bound(s: &Scenario) -> Option<f64> {
    let quota = (s.quota.bytes_per_sec > 0).then(|| s.quota.bytes_per_sec as f64 / MB);
    // An answer is the smaller of the cap and what the reader asks for at this distance.
    let asked = shipper_sls::consumer::distance_pull_bytes(
        shipper_sls::consumer::DEFAULT_TARGET_PULL_BYTES,
        s.latency,
    );
    let answer = s.cap.min(asked);
    let distance = (!s.latency.is_zero()).then(|| answer as f64 / MB / s.latency.as_secs_f64());
    let per_shard = match (quota, distance) {
        (Some(q), Some(d)) => Some(q.min(d)),
        (q, d) => q.or(d),
    }?;
    Some(per_shard * f64::from(s.shards))
}

fn main() {
    let ms = Duration::from_millis;
    let default_cap = shipper_emulator::config::DEFAULT_MAX_PULL_BYTES;
    let one = |name, latency, cap, bytes, busy, prefetch_bytes| Scenario {
        name,
        shards: 1,
        latency: ms(latency),
        quota: ReadQuota::default(),
        cap,
        bytes_per_shard: bytes,
        busy: ms(busy),
        prefetch_bytes,
        warm_up: true,
    };
    let many = |name, latency| Scenario {
        name,
        shards: 16,
        latency: ms(latency),
        quota: ReadQuota::OFF,
        cap: default_cap,
        bytes_per_shard: 100_000_000,
        busy: Duration::ZERO,
        prefetch_bytes: None,
        warm_up: false,
    };
    let scenarios = [
        one(
            "1 shard, 200 ms, default cap",
            200,
            default_cap,
            100_000_000,
            0,
            None,
        ),
        one(
            "1 shard, 200 ms, 1 MiB cap",
            200,
            1 << 20,
            60_000_000,
            0,
            None,
        ),
        one(
            "1 shard, 200 ms, 1 MiB cap, caller busy 150 ms/batch",
            200,
            1 << 20,
            40_000_000,
            150,
            None,
        ),
        one(
            "  same, one answer at a time (prefetch 1 byte)",
            200,
            1 << 20,
            30_000_000,
            150,
            Some(1),
        ),
        many("16 shards, loopback, no quota", 0),
        many("16 shards, 100 ms, no quota", 100),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| scenario | raw MB/s | bound MB/s | of bound |");
    println!("|---|---:|---:|---:|");
    let mut loopback = None;
    let mut far_rows = Vec::new();
    for s in &scenarios {
        let (rate, total) = rt.block_on(run(s));
        let (b, of) = match bound(s) {
            Some(b) => (format!("{b:.1}"), format!("{:.0} %", 100.0 * rate / b)),
            None => ("—".to_owned(), "—".to_owned()),
        };
        println!(
            "| {} ({:.0} MB read) | {rate:.1} | {b} | {of} |",
            s.name,
            total as f64 / MB
        );
        if s.shards > 1 {
            if s.latency.is_zero() {
                loopback = Some(rate);
            } else {
                far_rows.push((s.name, rate));
            }
        }
    }
    // The far multi-shard rows against the loopback one of this run.
    if let Some(near) = loopback {
        for (name, rate) in far_rows {
            println!("{name}: {:.1} % of the loopback rate", 100.0 * rate / near);
        }
    }
}
