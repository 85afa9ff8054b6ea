//! `shipper-bench`: shipper against the seed scripts and a careful Python consumer, on one
//! machine, the same data and the same receivers (method: README.md "Performance").
//!
//! One run:
//! 1. generates a deterministic backlog (ActionTrail audit JSON + nginx, `__bench_seq__` and
//!    `__bench_ts__` in every log; [`dataset`]) over N shards;
//! 2. times each stage of shipper's data path on the subject CPU and prints the per-core
//!    limit ([`stages`]);
//! 3. pins itself to CPU 0 and starts, in-process, the SLS emulator preloaded with the
//!    backlog (and prefixes of it for the slow subjects), the HEC receiver in count mode and
//!    the syslog TCP and TLS receivers (tests/support), all counting into one tally;
//! 4. runs every subject ([`subject`]) as a separate process on CPU 1 until every event
//!    arrived and every checkpoint reached its end ([`measure`]): saturation runs on the
//!    backlog, then trickle runs (logs generated at a low steady rate) for latency;
//! 5. runs the scale-and-distance scenarios: shipper over HEC (gzip level 1) on a smaller
//!    backlog for every shard count of `--shards` and every emulator latency of `--latency`,
//!    each on a rig of its own;
//! 6. prints the tables and ratios, writes a JSON summary ([`report`]) and, next to it, an
//!    SVG chart of the scenarios ([`chart`]).
//!
//! Figures are reported, never asserted. The exit status is non-zero only when the harness
//! failed to count every event of a run (a lost event, an invalid one, a subject that died
//! or timed out). `--smoke` runs everything on a tiny data set in seconds (CI).

mod chart;
mod dataset;
mod machine;
mod measure;
mod report;
mod stages;
mod subject;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, SampleKind};
use shipper_sls::sign::Credentials;
use shipper_sls::{Client, ClientConfig};
use shipper_test_support::certs::TestPki;
use shipper_test_support::event_tally::{EventTally, now_ns};
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig, TEST_TOKEN};
use shipper_test_support::syslog_receiver::SyslogReceiver;

use crate::dataset::Shards;
use crate::measure::{RunKind, RunResult, RunSpec};
use crate::subject::{DataSet, Launch, Subject};

/// SLS project of every logstore.
pub const PROJECT: &str = "bench";
const AK_ID: &str = "bench-id";
const AK_SECRET: &str = "bench-secret";
/// CPU of the emulator and receivers (the rig of README.md "Performance").
const RIG_CPU: usize = 0;
/// CPU of the subject.
const SUBJECT_CPU: usize = 1;
/// Trickle generation tick.
const TICK_SECS: f64 = 0.1;

/// Which parts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Stage micro-benchmarks and the per-core limit.
    Stages,
    /// Backlog runs (throughput, CPU, RSS).
    Saturation,
    /// Steady low-rate runs (latency).
    Trickle,
    /// The scale-and-distance grid: shipper HEC saturation runs for every `--shards` ×
    /// `--latency`.
    Scenarios,
}

/// shipper vs the seed scripts and a careful Python consumer: one machine, same data, same
/// receivers. Prints tables and ratios; writes a JSON summary.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// A tiny data set and short runs: proves the harness works in seconds (CI).
    #[arg(long)]
    smoke: bool,
    /// Raw MB of backlog for the shipper subjects.
    #[arg(long, default_value_t = 1024.0)]
    full_mb: f64,
    /// Raw MB of the backlog prefix the seed HEC script reads (it ships ≈ 2 MB per
    /// CPU-second: one POST per log).
    #[arg(long, default_value_t = 40.0)]
    seed_hec_mb: f64,
    /// Raw MB of the backlog prefix the seed syslog and careful-user scripts read.
    #[arg(long, default_value_t = 200.0)]
    python_mb: f64,
    /// The data: `mixed` (alternating groups of ActionTrail audit events and nginx access
    /// logs, ≈ 1,080 B per log with the two benchmark fields), `audit` or `nginx` (≈ 780 B). The seed's cost
    /// is per log and shipper's mostly per byte, so the ratios depend on the log size.
    #[arg(long, default_value = "mixed", value_parser = parse_kind)]
    data: SampleKind,
    /// Shards of the logstores (comma-separated): the comparison runs use the first, the
    /// scenarios every one.
    #[arg(long, value_delimiter = ',', default_values_t = [4u32, 64, 256])]
    shards: Vec<u32>,
    /// Latency the emulator adds to every answer in the scenarios, ms (comma-separated): SLS
    /// seen from far away (the emulator's `--latency`).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 100, 200])]
    latency: Vec<u64>,
    /// Raw MB of backlog in each scenario.
    #[arg(long, default_value_t = 300.0)]
    scenario_mb: f64,
    /// Logs per LogGroup.
    #[arg(long, default_value_t = 200)]
    logs_per_group: usize,
    /// Generator seed (same seed, same logs).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Trickle rate, logs per second.
    #[arg(long, default_value_t = 1000.0)]
    trickle_rate: f64,
    /// Trickle length after the warm-up, seconds.
    #[arg(long, default_value_t = 20.0)]
    trickle_secs: f64,
    /// Trickle warm-up (not in the latency figures), seconds.
    #[arg(long, default_value_t = 5.0)]
    warmup_secs: f64,
    /// CPU time per stage micro-benchmark round, seconds.
    #[arg(long, default_value_t = 0.5)]
    stage_secs: f64,
    /// Logs in the stage micro-benchmark sample.
    #[arg(long, default_value_t = 40_000)]
    stage_logs: u64,
    /// Subjects to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Subject::ALL)]
    subjects: Vec<Subject>,
    /// Parts to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Stages, Part::Saturation, Part::Trickle, Part::Scenarios])]
    parts: Vec<Part>,
    /// The `shipper` binary [default: WORKSPACE/target/release/shipper].
    #[arg(long)]
    shipper: Option<PathBuf>,
    /// The splunk-hec plugin [default: WORKSPACE/target/wasm32-wasip2/release/shipper_plugin_splunk_hec.wasm].
    #[arg(long)]
    hec_plugin: Option<PathBuf>,
    /// The syslog-kv plugin [default: WORKSPACE/target/wasm32-wasip2/release/shipper_plugin_syslog_kv.wasm].
    #[arg(long)]
    syslog_plugin: Option<PathBuf>,
    /// Python with the official SDK [default: $SHIPPER_TEST_PYTHON or WORKSPACE/target/test-venv/bin/python].
    #[arg(long)]
    python: Option<PathBuf>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 900)]
    run_timeout_secs: u64,
    /// After the last event, wait this long for a Python subject's checkpoints (the SDK
    /// persists them at most every 3 s, flushes every 60 s).
    #[arg(long, default_value_t = 8)]
    python_checkpoint_wait_secs: u64,
    /// Do not pin (by default: subject on CPU 1 with taskset, rig on CPU 0).
    #[arg(long)]
    no_pin: bool,
    /// JSON summary [default: WORKSPACE/target/shipper-bench/summary.json].
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the work directory (configs, subject logs) even when every run succeeded.
    #[arg(long)]
    keep: bool,
}

fn parse_kind(s: &str) -> Result<SampleKind, String> {
    s.parse()
}

impl Args {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.full_mb = 3.0;
            self.seed_hec_mb = 0.3;
            self.python_mb = 1.0;
            self.logs_per_group = 100;
            self.trickle_rate = 200.0;
            self.trickle_secs = 2.0;
            self.warmup_secs = 1.0;
            self.stage_secs = 0.02;
            self.stage_logs = 2_000;
            self.python_checkpoint_wait_secs = 1;
            self.run_timeout_secs = self.run_timeout_secs.min(120);
            // Two scenario points: the grid's code path, near and far, in seconds.
            self.scenario_mb = 2.0;
            self.shards.truncate(1);
            self.latency = vec![0, 100];
        }
    }

    /// Shards of the comparison runs.
    fn main_shards(&self) -> u32 {
        self.shards.first().copied().unwrap_or(4)
    }
}

fn workspace_root() -> PathBuf {
    shipper_test_support::workspace_root()
}

/// `path` made absolute (subjects run in their own directories), when it is a file.
fn existing(path: PathBuf, what: &str, fix: &str) -> anyhow::Result<PathBuf> {
    if path.is_file() {
        Ok(std::path::absolute(&path)?)
    } else {
        bail!("{what} not found at {} — {fix}", path.display())
    }
}

/// Everything the runs share.
struct Rig {
    emulator: EmulatorHandle,
    tally: Arc<EventTally>,
    launch: Launch,
    sls: Client,
    _hec: HecReceiver,
    _syslog: (SyslogReceiver, SyslogReceiver),
}

/// How a rig's emulator and receivers become a [`Launch`].
type LaunchFor<'a> =
    dyn Fn(&EmulatorHandle, &HecReceiver, &SyslogReceiver, &SyslogReceiver) -> Launch + 'a;

async fn start_rig(
    shards_per_logstore: u32,
    latency: Duration,
    data: &[(DataSet, &Shards)],
    launch: &LaunchFor<'_>,
    pki: &TestPki,
) -> anyhow::Result<Rig> {
    let mut config = EmulatorConfig::new(AK_ID, AK_SECRET);
    let full = data
        .iter()
        .map(|(_, s)| s.totals().raw_bytes)
        .max()
        .unwrap_or(0);
    // Room for every compressed reply (lz4 ≈ 3.7×), so re-reads by later subjects cost the
    // rig no compression.
    config.pull_cache_bytes = config.pull_cache_bytes.max((full / 2) as usize);
    // The figures measure shipper, not SLS's per-shard quota.
    config.read_quota = shipper_emulator::ReadQuota::OFF;
    config.latency = latency;
    let emulator = Emulator::start(config)
        .await
        .context("starting the emulator")?;
    for (set, shards) in data {
        let name = logstore_name(*set);
        emulator.create_logstore(PROJECT, name, shards_per_logstore)?;
        for (shard, groups) in shards.0.iter().enumerate() {
            for g in groups {
                emulator.append_group(PROJECT, name, shard as u32, g.bytes.clone())?;
            }
        }
    }
    let tally = Arc::new(EventTally::new());
    let hec = HecReceiver::start(HecReceiverConfig {
        tally: Some(tally.clone()),
        ..Default::default()
    })
    .await;
    let tcp = SyslogReceiver::start(None, tally.clone()).await;
    let tls =
        SyslogReceiver::start(Some((&pki.server_cert(), &pki.server_key())), tally.clone()).await;
    let launch = launch(&emulator, &hec, &tcp, &tls);
    let sls = Client::new(ClientConfig::new(
        emulator.endpoint(),
        PROJECT,
        Credentials::new(AK_ID, AK_SECRET),
    ))?;
    Ok(Rig {
        emulator,
        tally,
        launch,
        sls,
        _hec: hec,
        _syslog: (tcp, tls),
    })
}

fn logstore_name(set: DataSet) -> &'static str {
    match set {
        DataSet::Full => "full",
        DataSet::SeedHecPrefix => "seed-hec-prefix",
        DataSet::PythonPrefix => "python-prefix",
    }
}

async fn saturation(
    args: &Args,
    rig: &Rig,
    subject: Subject,
    data: &Shards,
    work: &Path,
) -> RunResult {
    let totals = data.totals();
    rig.tally.reset(totals.seq_range, None);
    let spec = RunSpec {
        subject,
        kind: RunKind::Saturation,
        logstore: logstore_name(subject.dataset()).into(),
        expected_logs: totals.logs,
        raw_bytes: totals.raw_bytes,
        shards: args.main_shards(),
        launch: &rig.launch,
        sls: &rig.sls,
        tally: &rig.tally,
        dir: work.join(format!("{}-saturation", subject.name())),
        timeout: Duration::from_secs(args.run_timeout_secs),
        checkpoint_wait: checkpoint_wait(args, subject),
    };
    measure::run(spec, std::future::ready(())).await
}

fn checkpoint_wait(args: &Args, subject: Subject) -> Duration {
    if subject.is_python() {
        Duration::from_secs(args.python_checkpoint_wait_secs)
    } else {
        Duration::from_secs(30)
    }
}

async fn trickle(
    args: &Args,
    rig: &Rig,
    subject: Subject,
    work: &Path,
) -> anyhow::Result<RunResult> {
    let logstore = format!("trickle-{}", subject.name());
    rig.emulator
        .create_logstore(PROJECT, &logstore, args.main_shards())?;
    let ticks = ((args.warmup_secs + args.trickle_secs) / TICK_SECS).round() as u64;
    let total = dataset::planned(args.trickle_rate, TICK_SECS, ticks);
    let start_ns = now_ns();
    rig.tally
        .reset(total, Some(start_ns + (args.warmup_secs * 1e9) as u64));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let generate = async {
        let mut trickle = dataset::Trickle::new(args.data, args.main_shards() as usize, args.seed);
        let mut interval = tokio::time::interval(Duration::from_secs_f64(TICK_SECS));
        let mut raw = 0u64;
        for k in 0..ticks {
            interval.tick().await;
            let n = dataset::planned(args.trickle_rate, TICK_SECS, k + 1)
                - dataset::planned(args.trickle_rate, TICK_SECS, k);
            for (shard, g) in trickle.tick(n) {
                raw += g.bytes.len() as u64;
                if let Err(e) = rig
                    .emulator
                    .append_group(PROJECT, &logstore, shard, g.bytes)
                {
                    eprintln!("trickle: append to {logstore}/{shard} failed: {e}");
                }
            }
        }
        let _ = done_tx.send(());
        (raw, trickle.generated())
    };
    let spec = RunSpec {
        subject,
        kind: RunKind::Trickle,
        logstore: logstore.clone(),
        expected_logs: total,
        raw_bytes: 0,
        shards: args.main_shards(),
        launch: &rig.launch,
        sls: &rig.sls,
        tally: &rig.tally,
        dir: work.join(format!("{}-trickle", subject.name())),
        timeout: Duration::from_secs(args.run_timeout_secs),
        checkpoint_wait: checkpoint_wait(args, subject),
    };
    let written = async {
        let _ = done_rx.await;
    };
    // Generation and measurement run side by side in this task (the generator borrows the
    // in-process emulator).
    let (mut r, (raw, generated)) = tokio::join!(measure::run(spec, written), generate);
    if generated != total {
        r.error.get_or_insert(format!(
            "the trickle wrote {generated} logs, {total} planned"
        ));
    }
    r.raw_bytes = raw;
    r.trickle_rate = Some(args.trickle_rate);
    r.compute_rates();
    Ok(r)
}

/// One scale-and-distance point: shipper over HEC (gzip level 1) reading `data` (over
/// `point.shards` shards) from an emulator `point.latency_ms` away, on a rig of its own.
async fn scenario(
    args: &Args,
    rig: &Rig,
    point: measure::Scenario,
    data: &Shards,
    work: &Path,
) -> RunResult {
    let totals = data.totals();
    rig.tally.reset(totals.seq_range, None);
    let subject = Subject::ShipperHec;
    let spec = RunSpec {
        subject,
        kind: RunKind::Saturation,
        logstore: logstore_name(DataSet::Full).into(),
        expected_logs: totals.logs,
        raw_bytes: totals.raw_bytes,
        shards: point.shards,
        launch: &rig.launch,
        sls: &rig.sls,
        tally: &rig.tally,
        dir: work.join(format!(
            "scenario-{}sh-{}ms",
            point.shards, point.latency_ms
        )),
        timeout: Duration::from_secs(args.run_timeout_secs),
        checkpoint_wait: checkpoint_wait(args, subject),
    };
    let mut r = measure::run(spec, std::future::ready(())).await;
    r.subject = format!(
        "{} {}sh {}ms",
        subject.name(),
        point.shards,
        point.latency_ms
    );
    r.scenario = Some(point);
    r
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shipper-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<bool> {
    let mut args = Args::parse();
    args.apply_smoke();
    if args.parts == [Part::Scenarios] {
        // The scenarios bring their own backlogs: the comparison backlog is not read.
        args.full_mb = args.full_mb.min(1.0);
    }
    let root = workspace_root();
    let shipper = existing(
        args.shipper
            .clone()
            .unwrap_or_else(|| root.join("target/release/shipper")),
        "the shipper binary",
        "build it: cargo build --release --bin shipper (or run tests/bench/run.sh)",
    )?;
    let wasm_dir = root.join("target/wasm32-wasip2/release");
    let plugin_fix = "build it: cargo build --release --target wasm32-wasip2 -p shipper-plugin-splunk-hec -p shipper-plugin-syslog-kv";
    let hec_plugin = existing(
        args.hec_plugin
            .clone()
            .unwrap_or_else(|| wasm_dir.join("shipper_plugin_splunk_hec.wasm")),
        "the splunk-hec plugin",
        plugin_fix,
    )?;
    let syslog_plugin = existing(
        args.syslog_plugin
            .clone()
            .unwrap_or_else(|| wasm_dir.join("shipper_plugin_syslog_kv.wasm")),
        "the syslog-kv plugin",
        plugin_fix,
    )?;
    let wants_python = args
        .parts
        .iter()
        .any(|p| matches!(p, Part::Saturation | Part::Trickle))
        && args.subjects.iter().any(|s| s.is_python());
    let python = match &args.python {
        Some(p) => existing(
            p.clone(),
            "--python",
            "give the venv's python (tests/bench/run.sh creates target/test-venv)",
        )?,
        None if wants_python => std::path::absolute(shipper_test_support::python::python())?,
        None => PathBuf::from("python3"),
    };
    let machine = machine::MachineInfo::collect(&root);
    let pin = if args.no_pin || machine.cpus < 2 {
        None
    } else {
        machine::taskset().map(|t| (t, SUBJECT_CPU))
    };
    let work = tempfile::Builder::new()
        .prefix("shipper-bench-")
        .tempdir()
        .context("creating the work directory")?;
    let pki = TestPki::generate();

    println!(
        "shipper-bench{}: {} × {} vCPU, {:.0} GiB, kernel {}, load {}, {}, git {}",
        if args.smoke { " --smoke" } else { "" },
        machine.cpu_model,
        machine.cpus,
        machine.mem_gib,
        machine.kernel,
        machine.load_average,
        machine.date,
        machine.git
    );
    println!(
        "pinning: {}",
        match &pin {
            Some(_) => format!(
                "subjects on CPU {SUBJECT_CPU} (taskset), emulator + receivers on CPU {RIG_CPU}"
            ),
            None => "none (--no-pin, no taskset, or one CPU): figures include interference".into(),
        }
    );

    let t = std::time::Instant::now();
    let full = dataset::generate_backlog(
        args.data,
        args.main_shards() as usize,
        (args.full_mb * 1e6) as u64,
        args.logs_per_group,
        args.seed,
    );
    let seed_hec_prefix = full.prefix((args.seed_hec_mb * 1e6) as u64);
    let python_prefix = full.prefix((args.python_mb * 1e6) as u64);
    let ft = full.totals();
    println!(
        "data ({:?}): {:.1} MB raw, {} logs ({:.0} B/log), {} groups over {} shards, generated in {:.1?}; prefixes: seed-hec {:.1} MB, other Python subjects {:.1} MB",
        args.data,
        ft.raw_bytes as f64 / 1e6,
        ft.logs,
        ft.raw_bytes as f64 / ft.logs as f64,
        ft.groups,
        args.main_shards(),
        t.elapsed(),
        seed_hec_prefix.totals().raw_bytes as f64 / 1e6,
        python_prefix.totals().raw_bytes as f64 / 1e6,
    );

    let stage_costs = if args.parts.contains(&Part::Stages) {
        let inputs = stages::StageInputs {
            hec_plugin: hec_plugin.clone(),
            syslog_plugin: syslog_plugin.clone(),
            server_cert: pki.server_cert(),
            server_key: pki.server_key(),
            ca: pki.ca(),
        };
        let pinned = pin.is_some();
        let (data, logs, secs) = (&full, args.stage_logs, args.stage_secs);
        let costs = std::thread::scope(|s| {
            s.spawn(|| {
                if pinned {
                    let _ = machine::pin_current_thread(SUBJECT_CPU);
                }
                stages::measure(data, &inputs, logs, secs, pinned.then_some(RIG_CPU))
            })
            .join()
            .expect("stage thread")
        })
        .context("stage micro-benchmarks")?;
        report::print_stages(&costs);
        Some(costs)
    } else {
        None
    };

    if pin.is_some() {
        machine::pin_current_thread(RIG_CPU).context("pinning the rig to CPU 0")?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let py_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py");
    let launch_for = |emu: &EmulatorHandle,
                      hec: &HecReceiver,
                      tcp: &SyslogReceiver,
                      tls: &SyslogReceiver| Launch {
        shipper: shipper.clone(),
        hec_plugin: hec_plugin.clone(),
        syslog_plugin: syslog_plugin.clone(),
        python: python.clone(),
        py_dir: py_dir.clone(),
        emulator: emu.endpoint(),
        ak_id: AK_ID.into(),
        ak_secret: AK_SECRET.into(),
        project: PROJECT.into(),
        hec: hec.addr(),
        hec_token: TEST_TOKEN.into(),
        syslog_tcp: tcp.addr(),
        syslog_tls: tls.addr(),
        ca: pki.ca(),
        pin: pin.clone(),
    };
    let runs: Vec<RunResult> = rt.block_on(async {
        let data: Vec<(DataSet, &Shards)> = vec![
            (DataSet::Full, &full),
            (DataSet::SeedHecPrefix, &seed_hec_prefix),
            (DataSet::PythonPrefix, &python_prefix),
        ];
        let rig = start_rig(
            args.main_shards(),
            Duration::ZERO,
            &data,
            &launch_for,
            &pki,
        )
        .await?;
        let mut runs = Vec::new();
        if args.parts.contains(&Part::Saturation) {
            println!("\nsaturation runs (backlog from the beginning, fresh consumer group each):");
            for &subject in &args.subjects {
                let set = match subject.dataset() {
                    DataSet::Full => &full,
                    DataSet::SeedHecPrefix => &seed_hec_prefix,
                    DataSet::PythonPrefix => &python_prefix,
                };
                let r = saturation(&args, &rig, subject, set, work.path()).await;
                report::print_progress(&r);
                runs.push(r);
            }
        }
        if args.parts.contains(&Part::Trickle) {
            println!(
                "\ntrickle runs ({} logs/s for {} s after a {} s warm-up):",
                args.trickle_rate, args.trickle_secs, args.warmup_secs
            );
            for &subject in &args.subjects {
                let r = trickle(&args, &rig, subject, work.path()).await?;
                report::print_progress(&r);
                runs.push(r);
            }
        }
        drop(rig);
        if args.parts.contains(&Part::Scenarios) {
            println!(
                "\nscale and distance (shipper HEC gzip L1, {:.0} MB backlog, emulator latency added to every answer):",
                args.scenario_mb
            );
            for &shards in &args.shards {
                let data = dataset::generate_backlog(
                    args.data,
                    shards as usize,
                    (args.scenario_mb * 1e6) as u64,
                    args.logs_per_group,
                    args.seed,
                );
                for &latency_ms in &args.latency {
                    // A rig per point: the emulator's latency is fixed when it starts.
                    let rig = start_rig(
                        shards,
                        Duration::from_millis(latency_ms),
                        &[(DataSet::Full, &data)],
                        &launch_for,
                        &pki,
                    )
                    .await?;
                    let point = measure::Scenario { shards, latency_ms };
                    let r = scenario(&args, &rig, point, &data, work.path()).await;
                    report::print_progress(&r);
                    runs.push(r);
                }
            }
        }
        anyhow::Ok(runs)
    })?;

    let summary = report::Summary::new(
        &args_json(&args),
        machine,
        pin.is_some(),
        ft,
        seed_hec_prefix.totals(),
        python_prefix.totals(),
        stage_costs,
        runs,
    );
    summary.print();
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| root.join("target/shipper-bench/summary.json"));
    summary.write(&json_path)?;
    println!("\nJSON summary: {}", json_path.display());
    if summary.runs.iter().any(|r| r.scenario.is_some()) {
        let svg = json_path.with_file_name("scenarios.svg");
        chart::write(&svg, &summary.runs)?;
        println!("scenario chart: {}", svg.display());
    }
    let ok = summary.harness_ok();
    if !ok || args.keep {
        let kept = work.keep();
        println!(
            "work directory (configs, subject logs) kept: {}",
            kept.display()
        );
    }
    if !ok {
        println!("HARNESS FAILURE: a run did not count every event (see above)");
    }
    Ok(ok)
}

fn args_json(args: &Args) -> serde_json::Value {
    serde_json::json!({
        "smoke": args.smoke,
        "full_mb": args.full_mb,
        "data": format!("{:?}", args.data).to_lowercase(),
        "seed_hec_mb": args.seed_hec_mb,
        "python_mb": args.python_mb,
        "shards": args.shards,
        "latency_ms": args.latency,
        "scenario_mb": args.scenario_mb,
        "logs_per_group": args.logs_per_group,
        "seed": args.seed,
        "trickle_rate": args.trickle_rate,
        "trickle_secs": args.trickle_secs,
        "warmup_secs": args.warmup_secs,
        "stage_secs": args.stage_secs,
        "stage_logs": args.stage_logs,
    })
}
