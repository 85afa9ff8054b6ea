//! Shards across cores: the pipeline's per-batch work on 1 worker thread pinned to one CPU,
//! then on 2 worker threads pinned to two CPUs, alternating in one process. With no
//! bottleneck shared between shards, 2 threads do twice the work of 1 (README.md "At a
//! distance and at scale").
//!
//! What runs is the production code from the configuration on: a `shipper.toml` parsed by
//! `settings`, `topology::build` (the splunk-hec plugin compiled and self-tested through
//! `shipper-runtime`, the dead-letter file), the completeness ledger, one memory budget
//! for every shard, and `pipeline::shard::run` for each shard as `run_shard` runs it, on a
//! multi-thread tokio runtime like the binary's. The shards read pre-pulled batches: about
//! 4 MiB of LogGroups each (what the reader asks SLS for), made by the emulator's data
//! generator (ActionTrail audit and nginx groups of 200 logs) and split into LogGroups by
//! `shipper_sls::proto::split_log_groups` before anything is timed; each shard cycles over
//! its own batches with growing cursors, reserving each one in the budget as the reader
//! does. The sink is the real HEC sink without its network: it renders every event, and each
//! send is encoded by `HecSink::encode_requests` (request cut, gzip level 1 through ISA-L) in
//! a task of its own, as its requests are; then the events are counted and the send settles.
//! Checkpoints are accepted at once.
//!
//! Not included: PullLogs and its decode (HTTP, LZ4, the split), HEC POSTs and their
//! answers, the consumer-group protocol. The data is generated, and the plugin compiled,
//! before the first run; while a run is timed the process runs only its tokio workers, the
//! ledger's writer and wasmtime's epoch ticker (both light; the binary has them too), and the
//! main thread sleeps.
//!
//! Each run: a fresh runtime with `threads` workers, each pinned (`sched_setaffinity`) to
//! its own CPU; 1 s of warm-up (plugin instances, buffers); then a fixed window in which
//! the events the sink accepted, the process's CPU time (`getrusage`), the time its
//! workers waited for a CPU (`/proc/self/task/*/schedstat`: other jobs on the machine) and
//! the time the hypervisor took the CPUs for other guests (`steal` in `/proc/stat`) are
//! measured; then every shard is revoked (graceful: it drains and commits) and every log it
//! pulled must have been delivered.
//!
//! `cargo bench --bench threads`. Environment: `SHIPPER_BENCH_SECS` (window per run,
//! default 4), `SHIPPER_BENCH_REPS` (repetitions, default 5), `SHIPPER_BENCH_SHARDS`
//! (default 4), `SHIPPER_BENCH_MB` (raw MB of data per shard, default 32),
//! `SHIPPER_BENCH_CPUS` (the two CPUs, default `0,1`). Prints figures; asserts nothing about
//! them.

mod machine;
mod rig;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shipper::lag::ShardLag;
use shipper::pipeline::shard::{self, ShardEnd, ShardIo};
use shipper::pipeline::{PipelineOptions, ShardContext};
use shipper_sls::Cursor;
use shipper_sls::consumer::{MemoryBudget, Revocation, RevokeReason};

use machine::{pin_current_thread, pin_workers, process_cpu, steal, workers_schedstat};
use rig::{Accepted, Pulled, Rig, reads, shard_data};

const WARM_UP: Duration = Duration::from_secs(1);

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run's figures over its window.
#[derive(Clone, Copy)]
struct Sample {
    threads: usize,
    logs_per_s: f64,
    raw_mb_per_s: f64,
    gzip_mb_per_s: f64,
    /// The process's CPU time in the window (getrusage).
    cpu_s: f64,
    window_s: f64,
    /// The workers' time on a CPU.
    on_cpu_s: f64,
    /// The workers' time runnable but off-CPU: taken by other jobs on the machine.
    waited_s: f64,
    /// The run's CPUs' time taken by the hypervisor for other guests.
    steal_s: f64,
}

impl Sample {
    fn logs_per_cpu_s(&self) -> f64 {
        self.logs_per_s * self.window_s / self.cpu_s
    }

    /// The workers' time neither on a CPU nor waiting for one: blocked (a lock, nothing
    /// to do).
    fn idle_s(&self) -> f64 {
        (self.threads as f64 * self.window_s - self.on_cpu_s - self.waited_s).max(0.0)
    }

    /// logs/s had no other job (in this guest or another) taken CPU time from the
    /// workers: the logs over the worker time left to them. Blocking (idle) still counts
    /// against it, so a shared lock still shows.
    fn logs_per_s_own_cpus(&self) -> f64 {
        let t = self.threads as f64 * self.window_s;
        self.logs_per_s * t / (t - self.waited_s - self.steal_s).max(f64::MIN_POSITIVE)
    }
}

/// One shard as `run_shard` runs a lease: the loop, with the lag and shard metrics around.
async fn run_one(ctx: Arc<ShardContext>, io: ShardIo) -> ShardEnd {
    let shard = io.shard;
    ctx.metrics.shard_acquired();
    ctx.lag.acquired(shard, io.start);
    let end = shard::run(ctx.clone(), io).await;
    ctx.lag.released(&ctx.labels(shard));
    ctx.metrics.shard_released();
    end
}

/// Runs every shard on `cpus.len()` pinned workers for the warm-up and `window`.
fn run(rig: &Rig, cpus: &[usize], window: Duration, first_cursor: i64) -> anyhow::Result<Sample> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus.len())
        .enable_all()
        .build()?;
    let workers = pin_workers(&rt, cpus)?;
    let target = rig.settings.source.logstores[0].clone();
    let (_publish, topology) = tokio::sync::watch::channel(rig.topology.clone());
    let ctx = Arc::new(ShardContext {
        lag: ShardLag::new(&target.project, &target.logstore, &rig.metrics),
        target,
        topology,
        metrics: rig.metrics.clone(),
        options: PipelineOptions::default(),
        ledger: rig.ledger.clone(),
    });
    let budget = MemoryBudget::new(rig.settings.source.max_buffer_bytes);
    let pulled = Arc::new(AtomicU64::new(0));
    let delivered_before = rig.events.load(Ordering::SeqCst);
    let mut revocations = Vec::new();
    let mut shards = Vec::new();
    for (i, data) in rig.data.iter().enumerate() {
        let shard = i as u32;
        let memory = Arc::new(budget.share());
        let revocation = Arc::new(Revocation::new());
        revocations.push(revocation.clone());
        let io = ShardIo {
            shard,
            start: Cursor(first_cursor),
            events: reads(
                shard,
                data.clone(),
                first_cursor,
                memory.clone(),
                pulled.clone(),
            ),
            revocation,
            checkpoints: Arc::new(Accepted),
            memory: Some(memory),
        };
        shards.push(rt.spawn(run_one(ctx.clone(), io)));
    }
    // Counters and clocks at one instant; the window is the difference of two.
    let snapshot = || {
        (
            rig.events.load(Ordering::Relaxed),
            rig.body_bytes.load(Ordering::Relaxed),
            process_cpu(),
            workers_schedstat(&workers),
            steal(cpus),
            Instant::now(),
        )
    };
    std::thread::sleep(WARM_UP);
    let (e0, b0, c0, w0, s0, t0) = snapshot();
    std::thread::sleep(window);
    let (e1, b1, c1, w1, s1, t1) = snapshot();
    for r in &revocations {
        r.revoke(RevokeReason::Shutdown);
    }
    for s in shards {
        let end = rt.block_on(s)?;
        anyhow::ensure!(end == ShardEnd::Committed, "a shard ended {end:?}");
    }
    let delivered = rig.events.load(Ordering::SeqCst) - delivered_before;
    let pulled = pulled.load(Ordering::SeqCst);
    anyhow::ensure!(
        delivered == pulled,
        "{pulled} logs pulled but {delivered} delivered"
    );
    let secs = (t1 - t0).as_secs_f64();
    let logs_per_s = (e1 - e0) as f64 / secs;
    Ok(Sample {
        threads: cpus.len(),
        logs_per_s,
        raw_mb_per_s: logs_per_s * rig.raw_bytes_per_log() / 1e6,
        gzip_mb_per_s: (b1 - b0) as f64 / secs / 1e6,
        cpu_s: (c1 - c0).as_secs_f64(),
        window_s: secs,
        on_cpu_s: (w1.0 - w0.0).as_secs_f64(),
        waited_s: (w1.1 - w0.1).as_secs_f64(),
        steal_s: (s1 - s0).as_secs_f64(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn print_row(rep: usize, s: &Sample, ratios: Option<(f64, f64)>) {
    println!(
        "{rep:>3} {:>7} {:>9.0} {:>8.1} {:>9.1} {:>6.2} {:>7.2} {:>7.2} {:>6.2} {:>6.2} {:>10.0} {:>10.0} {:>7} {:>7}",
        s.threads,
        s.logs_per_s,
        s.raw_mb_per_s,
        s.gzip_mb_per_s,
        s.cpu_s,
        s.on_cpu_s,
        s.waited_s,
        s.steal_s,
        s.idle_s(),
        s.logs_per_cpu_s(),
        s.logs_per_s_own_cpus(),
        ratios.map_or_else(String::new, |r| format!("×{:.2}", r.0)),
        ratios.map_or_else(String::new, |r| format!("×{:.2}", r.1)),
    );
}

fn ratio_list(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("×{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> anyhow::Result<()> {
    let window = Duration::from_secs_f64(env_or("SHIPPER_BENCH_SECS", 4.0));
    let reps: usize = env_or("SHIPPER_BENCH_REPS", 5);
    let shards: usize = env_or("SHIPPER_BENCH_SHARDS", 4);
    let mb: usize = env_or("SHIPPER_BENCH_MB", 32);
    let cpus: Vec<usize> = std::env::var("SHIPPER_BENCH_CPUS")
        .unwrap_or_else(|_| "0,1".into())
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(cpus.len() == 2, "SHIPPER_BENCH_CPUS names two CPUs");

    // Everything that is not the pipeline happens here, before the first run.
    let data: Vec<Arc<Vec<Pulled>>> = std::thread::scope(|scope| {
        let gens: Vec<_> = (0..shards)
            .map(|s| scope.spawn(move || Arc::new(shard_data(s, mb * 1_000_000))))
            .collect();
        gens.into_iter()
            .map(|g| g.join().expect("generator thread"))
            .collect()
    });
    let rig = Rig::new(data)?;
    pin_current_thread(cpus[0])?;
    let batches: usize = rig.data.iter().map(|d| d.len()).sum();
    println!(
        "shipper shards across cores: {shards} shards, {batches} pre-pulled batches of ~4 MiB \
         ({:.0} raw B per log, mixed audit + nginx), splunk-hec → HEC render → gzip L1, \
         {} s window after {} s warm-up, {reps} repetitions",
        rig.raw_bytes_per_log(),
        window.as_secs_f64(),
        WARM_UP.as_secs_f64(),
    );
    println!(
        "method: pipeline::shard::run per shard on a tokio runtime of 1 worker pinned to CPU \
         {} vs 2 workers pinned to CPUs {} and {}; included: the shard loop, the plugin through \
         shipper-runtime, HEC rendering, request encoding with gzip L1 (ISA-L) in a task per \
         send, the memory budget, metrics, ledger; not included: network, emulator, SLS decode \
         (batches pre-pulled and split), HEC answers. CPU-s: getrusage of the process over \
         the window; on-CPU, waited, idle: the workers' time on a CPU, runnable but \
         off-CPU (taken by other jobs) and neither (blocked); steal: the run's CPUs' time the \
         hypervisor gave other guests; own logs/s: logs over the worker time that waited and \
         steal left, so blocking on a shared lock still counts against it.",
        cpus[0], cpus[0], cpus[1]
    );
    println!(
        "\n{:>3} {:>7} {:>9} {:>8} {:>9} {:>6} {:>7} {:>7} {:>6} {:>6} {:>10} {:>10} {:>7} {:>7}",
        "rep",
        "threads",
        "logs/s",
        "raw MB/s",
        "gzip MB/s",
        "CPU-s",
        "on-CPU",
        "waited",
        "steal",
        "idle",
        "logs/CPU-s",
        "own logs/s",
        "2T/1T",
        "own",
    );
    let mut ratios = Vec::new();
    let mut own_ratios = Vec::new();
    let mut cursor = 0i64;
    for rep in 1..=reps {
        // Alternate which goes first, so a drift of the machine's load favours neither.
        let order: [&[usize]; 2] = if rep % 2 == 1 {
            [&cpus[..1], &cpus[..]]
        } else {
            [&cpus[..], &cpus[..1]]
        };
        let mut got = Vec::new();
        for set in order {
            got.push(run(&rig, set, window, cursor)?);
            cursor += 1 << 32;
        }
        got.sort_by_key(|s| s.threads);
        let (one, two) = (got[0], got[1]);
        let ratio = two.logs_per_s / one.logs_per_s;
        let own = two.logs_per_s_own_cpus() / one.logs_per_s_own_cpus();
        ratios.push(ratio);
        own_ratios.push(own);
        print_row(rep, &one, None);
        print_row(rep, &two, Some((ratio, own)));
    }
    println!(
        "\nmedian 2-thread / 1-thread logs/s: ×{:.2} ({}); with the CPU time other jobs took \
         from the workers removed: ×{:.2} ({})",
        median(ratios.clone()),
        ratio_list(&ratios),
        median(own_ratios.clone()),
        ratio_list(&own_ratios),
    );
    Ok(())
}
