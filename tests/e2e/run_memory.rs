//! Memory against the shard count (a measurement, `#[ignore]`d: it takes minutes): a 1 GB
//! backlog spread over 4, 64 and 256 shards, read by `shipper run` into a slow HEC receiver
//! (every request waits 200 ms; the HEC sink's default 1 MB batches), so every shard has as
//! much pulled and in flight as shipper allows. Each run is watched until its peak resident
//! memory has stopped rising (at least a minute); it prints the peak next to the memory budget
//! (`[source] max_buffer_mib`, 256 MiB), how much of it the plugin's linear memories took, and
//! checks the acceptance of docs/architecture.md §6 "Bounded memory": at 256 shards at most
//! the budget plus 64 MiB, and within 10 % of the 4-shard peak.
//!
//! `cargo test --test e2e run_memory -- --ignored --nocapture` (the debug binary: figures of a
//! release build are lower by its smaller code, not by the data). For looking into it:
//! `SHIPPER_MEMORY_SHARDS=256,4` measures those shard counts only,
//! `SHIPPER_MEMORY_BUDGET_MIB=128` another budget, `SHIPPER_MEMORY_MAPS=1` prints the RSS
//! and the data held every 5 s and the largest mappings at the peak, and
//! `SHIPPER_MEMORY_WRAPPER="heaptrack -o FILE"` starts shipper under a command (a heap
//! profiler, or a script that runs another build: the wrapper gets the debug binary's path
//! first).

use std::time::{Duration, Instant};

use shipper_emulator::{PreloadSpec, ReadQuota};
use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig};

use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const BACKLOG: u64 = 1_000_000_000;
const BUDGET_MIB: u64 = 256;

/// The budget measured: `SHIPPER_MEMORY_BUDGET_MIB` or [`BUDGET_MIB`].
fn budget_mib() -> u64 {
    std::env::var("SHIPPER_MEMORY_BUDGET_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BUDGET_MIB)
}
/// What the process may hold besides the budget at 256 shards (the acceptance).
const OVERHEAD_MIB: u64 = 64;
/// Every run is watched at least this long...
const MIN_WATCH: Duration = Duration::from_secs(60);
/// ...and then until its peak has not risen for this long...
const PLATEAU: Duration = Duration::from_secs(20);
/// ...but no longer than this.
const MAX_WATCH: Duration = Duration::from_secs(240);

/// The peak of one run.
#[derive(Debug)]
struct Peak {
    rss_mib: u64,
    /// Resident bytes of the plugin's linear memories at the peak (wasmtime reserves each
    /// in its own mapping of several GiB, so they are the large anonymous mappings).
    wasm_mib: u64,
    wasm_memories: usize,
    /// The most data held against the budget at once (`shipper_memory_used_peak_bytes`): the
    /// rest of the RSS is what the process holds besides the pulled and in-flight data.
    data_mib: u64,
}

fn peak_rss(shards: u32) -> Peak {
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
        .set("sink.batch_max_bytes", 1_000_000)
        .set("source.max_buffer_mib", budget_mib() as i64);
    let wrapper: Vec<String> = std::env::var("SHIPPER_MEMORY_WRAPPER")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut shipper =
        ShipperProcess::start_wrapped(&wrapper, env.dir(), "shipper", &config, &shipper_env());
    let start = Instant::now();
    let mut peak = 0;
    let mut wasm = (0, 0);
    let mut last_rise = start;
    let mut biggest = String::new();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= MAX_WATCH || (elapsed >= MIN_WATCH && last_rise.elapsed() >= PLATEAU) {
            break;
        }
        shipper.assert_running();
        let rss = shipper.rss_bytes();
        if std::env::var_os("SHIPPER_MEMORY_MAPS").is_some() && elapsed.as_millis() % 5000 < 100 {
            let used = shipper
                .scrape()
                .map_or(0.0, |m| m.sum("shipper_memory_used_bytes"));
            eprintln!(
                "run_memory: {shards} shards at {:?}: RSS {} MiB, data held {} MiB",
                elapsed,
                rss >> 20,
                used as u64 >> 20
            );
        }
        if rss > peak + (1 << 20) {
            last_rise = Instant::now();
        }
        if rss > peak {
            peak = rss;
            wasm = wasm_memory(shipper.pid());
            if std::env::var_os("SHIPPER_MEMORY_MAPS").is_some() {
                biggest = largest_mappings(shipper.pid());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let watched = start.elapsed();
    let (requests, bytes) = hec.discarded();
    let data = shipper
        .scrape()
        .map_or(0.0, |m| m.sum("shipper_memory_used_peak_bytes"));
    shipper.kill();
    if !biggest.is_empty() {
        eprintln!("run_memory: {shards} shards at the peak: {biggest}");
    }
    let peak = Peak {
        rss_mib: peak >> 20,
        wasm_mib: wasm.0 >> 20,
        wasm_memories: wasm.1,
        data_mib: data as u64 >> 20,
    };
    eprintln!(
        "run_memory: {shards} shards: peak RSS {} MiB (budget {} MiB, data held at most {} \
         MiB), of which {} MiB in {} plugin linear memories; the slow receiver got \
         {requests} requests, {} MB, in {}s",
        peak.rss_mib,
        budget_mib(),
        peak.data_mib,
        peak.wasm_mib,
        peak.wasm_memories,
        bytes / 1_000_000,
        watched.as_secs()
    );
    peak
}

/// Resident bytes of the plugins' linear memories, and how many there are. wasmtime reserves
/// each memory's address space (several GiB) and makes its accessible part readable and
/// writable: a linear memory is the run of writable mappings just before an inaccessible
/// mapping of 1 GiB or more.
fn wasm_memory(pid: u32) -> (u64, usize) {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return (0, 0);
    };
    // (start, end, writable, resident bytes) of every mapping, in address order.
    let mut maps: Vec<(u64, u64, bool, u64)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((from, to)) = first.split_once('-')
            && let (Ok(from), Ok(to)) = (u64::from_str_radix(from, 16), u64::from_str_radix(to, 16))
        {
            let writable = fields.next().is_some_and(|p| p.starts_with("rw"));
            maps.push((from, to, writable, 0));
        } else if first == "Rss:"
            && let Some(last) = maps.last_mut()
        {
            last.3 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0) * 1024;
        }
    }
    let (mut bytes, mut count) = (0, 0);
    for i in 1..maps.len() {
        let (start, end, writable, _) = maps[i];
        if writable || end - start < 1 << 30 {
            continue;
        }
        let (mut j, mut at, mut resident) = (i, start, 0);
        while j > 0 && maps[j - 1].1 == at && maps[j - 1].2 {
            j -= 1;
            at = maps[j].0;
            resident += maps[j].3;
        }
        if j < i {
            bytes += resident;
            count += 1;
        }
    }
    (bytes, count)
}

/// The shard counts to measure: `SHIPPER_MEMORY_SHARDS` (comma-separated) or 4, 64 and 256.
fn shard_counts() -> Vec<u32> {
    std::env::var("SHIPPER_MEMORY_SHARDS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 64, 256])
}

/// The largest resident mappings of `pid` (for finding what holds the memory).
fn largest_mappings(pid: u32) -> String {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return String::new();
    };
    let mut maps: Vec<(String, u64)> = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            maps.push((line.to_string(), 0));
        } else if first == "Rss:"
            && let Some(last) = maps.last_mut()
        {
            last.1 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    let file_backed: u64 = maps
        .iter()
        .filter(|(l, _)| l.split_whitespace().count() > 5)
        .map(|m| m.1)
        .sum();
    eprintln!(
        "run_memory: file-backed (code, data of the binary and libraries): {} MiB",
        file_backed >> 10
    );
    maps.sort_by_key(|m| std::cmp::Reverse(m.1));
    let total: u64 = maps.iter().map(|m| m.1).sum();
    let mut out = format!("{} mappings, {} MiB resident\n", maps.len(), total >> 10);
    for (line, kib) in maps.iter().take(12) {
        out.push_str(&format!("  {kib:>7} KiB  {line}\n"));
    }
    out
}

#[test]
#[ignore = "a measurement of several minutes: run with --ignored"]
fn memory_stays_within_the_budget_at_4_64_and_256_shards() {
    let peaks: Vec<(u32, Peak)> = shard_counts()
        .into_iter()
        .map(|n| (n, peak_rss(n)))
        .collect();
    let rss = |n: u32| {
        peaks
            .iter()
            .find(|(s, _)| *s == n)
            .map_or(0, |(_, p)| p.rss_mib)
    };
    let (four, many) = (rss(4), rss(256));
    let budget = budget_mib();
    eprintln!(
        "run_memory: 256 shards: {many} MiB against the budget plus {OVERHEAD_MIB} MiB = {} MiB \
         ({:.0} %); against 4 shards {four} MiB: {:+.1} %",
        budget + OVERHEAD_MIB,
        many as f64 * 100.0 / (budget + OVERHEAD_MIB) as f64,
        (many as f64 / four as f64 - 1.0) * 100.0
    );
    assert!(
        many <= budget + OVERHEAD_MIB,
        "256 shards: peak RSS {many} MiB over the budget of {budget} MiB plus \
         {OVERHEAD_MIB} MiB: {peaks:?}"
    );
    assert!(
        many as f64 <= four as f64 * 1.1,
        "256 shards: peak RSS {many} MiB more than 10 % over the 4-shard peak {four} MiB: \
         {peaks:?}"
    );
}
