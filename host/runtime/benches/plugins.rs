//! Plugin micro-benchmark: µs per log and logs/s through the production runtime for every
//! plugin under `plugins/`, on realistic nginx-style logs (16 fields, ~560 bytes encoded) in
//! groups of 500; plus the interface comparison behind passing plugins bytes, not records
//! (docs/plugins.md §3.1 "One LogGroup per call"): the same HEC formatter behind shipper's
//! bytes-in world (`bench_bytes`: the guest decodes the LogGroup protobuf) and behind a
//! structured-record world (`bench_structured`: the host decodes into owned strings and
//! lowers `list<log>` records).
//!
//! Also: the Python, JavaScript and C splunk-hec plugins (`plugins/*-splunk-hec`) on the
//! same input, and the compile cache: compile vs restart-from-cache load times per plugin.
//!
//! `cargo bench -p shipper-runtime` (prints figures; asserts nothing). `SHIPPER_BENCH_SECS`
//! sets the measuring time per line (default 1 s, best of 3 rounds); `SHIPPER_BENCH_ONLY`
//! runs only the lines whose name contains it (e.g. `splunk-hec`, for profiling);
//! `SHIPPER_BENCH_COMPARE=a.wasm,b.wasm` compares plugin builds instead (see [`compare`]);
//! `SHIPPER_BENCH_RATIO=a.wasm[,b.wasm…]` measures builds of splunk-hec against the same
//! formatter compiled natively, interleaved in one process (see [`ratio`]).

#[path = "../tests/runtime/structured.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the tests, which use more of it"
)]
mod structured;

use std::time::{Duration, Instant};

use shipper_runtime::{CacheDir, EngineSettings, PluginEngine, PluginLimits};
use shipper_test_artifacts as artifacts;

const LOGS_PER_CALL: usize = 500;

fn measure_secs() -> f64 {
    std::env::var("SHIPPER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// Evaluates `$call` (an expression that may `.await`) repeatedly for the measuring time,
/// three rounds after a warm-up; yields the best seconds per call. A macro rather than a
/// function taking a closure, because the calls borrow the instance mutably across awaits.
macro_rules! best_per_call {
    ($call:expr) => {{
        for _ in 0..5 {
            std::hint::black_box($call);
        }
        let budget = Duration::from_secs_f64(measure_secs());
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            let mut calls = 0u32;
            while start.elapsed() < budget || calls < 10 {
                std::hint::black_box($call);
                calls += 1;
            }
            best = best.min(start.elapsed().as_secs_f64() / f64::from(calls));
        }
        best
    }};
}

fn report(name: &str, per_call: f64) {
    let per_log = per_call / LOGS_PER_CALL as f64;
    println!(
        "{name:<58} {:>8.3} µs/log {:>10.0} logs/s",
        per_log * 1e6,
        1.0 / per_log
    );
}

/// True when `SHIPPER_BENCH_ONLY` is unset or `name` contains it.
fn selected(name: &str) -> bool {
    std::env::var("SHIPPER_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

/// Formats the group with a plugin through `PluginInstance::process`.
async fn bench_runtime(engine: &PluginEngine, name: &str, path: &str, group: &[u8]) {
    if !selected(name) {
        return;
    }
    let plugin = match engine.load(&artifacts::read(path), PluginLimits::default()) {
        Ok(plugin) => plugin,
        Err(e) => return println!("{name:<58} cannot load: {e}"),
    };
    let mut instance = match plugin.instantiate("{}").await {
        Ok(instance) => instance,
        Err(e) => return println!("{name:<58} cannot instantiate with {{}}: {e}"),
    };
    let batch = shipper_runtime::BatchInfo::sample();
    if let Err(e) = instance.process(&batch, group, LOGS_PER_CALL).await {
        return println!("{name:<58} fails: {e}");
    }
    let per_call = best_per_call!(
        instance
            .process(&batch, group, LOGS_PER_CALL)
            .await
            .expect("the plugin keeps working")
    );
    report(name, per_call);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let group = shipper_sls::flat::samples::nginx_group(LOGS_PER_CALL);
        let bytes = shipper_sls::proto::encode_group(&group);
        println!(
            "shipper-runtime plugin benchmark: {LOGS_PER_CALL} logs per call, 16 fields, {} \
             bytes per log encoded; epoch interruption on; best of 3 × {:.1} s",
            bytes.len() / LOGS_PER_CALL,
            measure_secs()
        );
        let engine = PluginEngine::new().expect("engine");
        if let Ok(list) = std::env::var("SHIPPER_BENCH_RATIO") {
            return ratio(&engine, &list, &bytes).await;
        }
        if let Ok(list) = std::env::var("SHIPPER_BENCH_COMPARE") {
            return compare(&engine, &list, &bytes, &shipper_sls::proto::encode_group(&shipper_sls::flat::samples::app_group(LOGS_PER_CALL))).await;
        }

        println!("\nplugins through PluginInstance::process (bytes in):");
        if artifacts::PLUGINS.is_empty() {
            println!("  (no plugins under plugins/ yet)");
        }
        for (name, path) in artifacts::PLUGINS {
            bench_runtime(&engine, &format!("  {name}"), path, &bytes).await;
        }

        let app = shipper_sls::flat::samples::app_group(LOGS_PER_CALL);
        let app_bytes = shipper_sls::proto::encode_group(&app);
        println!(
            "\nthe same plugins on a 10-field application log ({} bytes per log encoded):",
            app_bytes.len() / LOGS_PER_CALL
        );
        for (name, path) in artifacts::PLUGINS {
            bench_runtime(&engine, &format!("  {name} (10 fields)"), path, &app_bytes).await;
        }

        println!("\nsplunk-hec in other languages (same input, same output as the Rust plugin):");
        for lang in artifacts::LANG_PLUGINS {
            match lang.wasm {
                Ok(path) => bench_runtime(&engine, &format!("  {}", lang.dir), path, &bytes).await,
                Err(why) => println!(
                    "  {:<56} not built: {}",
                    lang.dir,
                    why.lines().nth(1).unwrap_or(why)
                ),
            }
        }

        if selected("compile cache") {
            compile_cache().await;
        }

        println!("\nfloor: the echo guest (walks each log, returns its bytes as a raw emit; no formatting):");
        bench_runtime(&engine, "  echo", artifacts::GUEST_ECHO, &bytes).await;

        println!("\ninterface comparison, same HEC formatter (contents → JSON body):");
        bench_runtime(
            &engine,
            "  bytes-in: LogGroup protobuf, guest decodes (shipper)",
            artifacts::GUEST_BENCH_BYTES,
            &bytes,
        )
        .await;

        if !selected("structured") {
            return;
        }
        let wasm = artifacts::read(artifacts::GUEST_BENCH_STRUCTURED);
        let mut runner = structured::StructuredRunner::new(&wasm).await;
        let built = best_per_call!(structured::StructuredRunner::build(&bytes));
        let (meta, logs) = structured::StructuredRunner::build(&bytes);
        let call_only = best_per_call!(runner.process(&meta, &logs).await);
        report("  structured: host decodes + builds owned records", built);
        report(
            "  structured: lower list<log> records + format (call)",
            call_only,
        );
        report(
            "  structured: total (decode + build + call)",
            built + call_only,
        );
    });
}

/// A/B: `SHIPPER_BENCH_COMPARE=a.wasm,b.wasm` benches each file on both inputs, alternating
/// the files for five rounds, so a change to a plugin or the SDK is measured under the same
/// machine conditions (build the variants into separate target directories first).
async fn compare(engine: &PluginEngine, list: &str, nginx: &[u8], app: &[u8]) {
    let paths: Vec<&str> = list.split(',').collect();
    for round in 1..=5 {
        println!("round {round}:");
        for path in &paths {
            for (input, bytes) in [("16 fields", nginx), ("10 fields", app)] {
                bench_runtime(engine, &format!("  {path} ({input})"), path, bytes).await;
            }
        }
    }
}

/// Calls per slice of [`ratio`]: about 10 ms of work, short next to the drifts of a shared
/// machine's speed, long next to the cost of switching between variants.
const RATIO_SLICE_CALLS: u32 = 20;

/// The plugin boundary's cost as a ratio: `SHIPPER_BENCH_RATIO=a.wasm[,b.wasm…]` (builds of
/// `plugins/splunk-hec`, in either world) against the same formatter compiled into this
/// benchmark (`shipper_sdk::testing::process_encoded`: decode in place, one owned result
/// per log, as the runtime returns). All run in this process on the same input, one slice
/// of [`RATIO_SLICE_CALLS`] calls each in turn for `10 × SHIPPER_BENCH_SECS` seconds: a
/// shared machine that slows down slows every variant alike, so the ratio holds where the
/// separate runs of `cargo bench -p shipper-plugin-splunk-hec` and this benchmark's
/// `SHIPPER_BENCH_COMPARE` moved by tens of per cent between runs. Prints µs per log of
/// each (over all slices) and each build's ratio to native: over all slices, and the median
/// of the per-turn ratios.
async fn ratio(engine: &PluginEngine, list: &str, nginx: &[u8]) {
    use shipper_plugin_splunk_hec::SplunkHec;
    use shipper_sdk::{Config, Plugin};

    let native = SplunkHec::init(&mut Config::parse("{}").expect("JSON")).expect("config");
    let batch = shipper_runtime::BatchInfo::sample();
    let mut builds = Vec::new();
    for path in list.split(',') {
        let plugin = engine
            .load(&artifacts::read(path), PluginLimits::default())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut instance = plugin.instantiate("{}").await.expect("instantiate");
        let wasm = instance
            .process(&batch, nginx, LOGS_PER_CALL)
            .await
            .expect("process");
        let here = shipper_sdk::testing::process_encoded(&native, nginx).expect("native");
        assert_eq!(wasm.len(), here.len(), "{path}: one result per log in both");
        builds.push((path, plugin, instance));
    }
    // Seconds per variant (native first), summed, and each turn's.
    let mut total = vec![0.0f64; builds.len() + 1];
    let mut turns: Vec<Vec<f64>> = Vec::new();
    let run_for = Duration::from_secs_f64(10.0 * measure_secs());
    let start = Instant::now();
    let mut warm = true;
    while warm || start.elapsed() < run_for {
        let mut turn = Vec::with_capacity(total.len());
        let t = Instant::now();
        for _ in 0..RATIO_SLICE_CALLS {
            std::hint::black_box(
                shipper_sdk::testing::process_encoded(&native, std::hint::black_box(nginx))
                    .expect("native"),
            );
        }
        turn.push(t.elapsed().as_secs_f64());
        for (path, _, instance) in &mut builds {
            let t = Instant::now();
            for _ in 0..RATIO_SLICE_CALLS {
                std::hint::black_box(
                    instance
                        .process(&batch, nginx, LOGS_PER_CALL)
                        .await
                        .unwrap_or_else(|e| panic!("{path}: {e}")),
                );
            }
            turn.push(t.elapsed().as_secs_f64());
        }
        // The first turn only warms caches and the heap.
        if !std::mem::take(&mut warm) {
            for (sum, secs) in total.iter_mut().zip(&turn) {
                *sum += secs;
            }
            turns.push(turn);
        }
    }
    let calls = f64::from(RATIO_SLICE_CALLS) * turns.len() as f64;
    let per_log = |secs: f64| secs / calls / LOGS_PER_CALL as f64 * 1e6;
    println!(
        "runtime against native, interleaved: {} turns of {RATIO_SLICE_CALLS} calls each",
        turns.len()
    );
    println!(
        "  {:<56} {:>8.3} µs/log",
        "native (same process)",
        per_log(total[0])
    );
    for (i, (path, _, _)) in builds.iter().enumerate() {
        let mut each: Vec<f64> = turns.iter().map(|t| t[i + 1] / t[0]).collect();
        each.sort_by(f64::total_cmp);
        println!(
            "  {path:<56} {:>8.3} µs/log   ×{:.3} native (median turn ×{:.3}, middle half ×{:.3}–×{:.3})",
            per_log(total[i + 1]),
            total[i + 1] / total[0],
            each[each.len() / 2],
            each[each.len() / 4],
            each[each.len() * 3 / 4],
        );
    }
}

/// Load times with and without the compile cache: `compile` is a load with the cache
/// disabled; `first load` compiles and writes the entry; `restart` is a new engine (a new
/// process) loading the same file from the cache (best of 3). `load` includes sha256, the
/// import/export checks and `InstancePre`; `code` is the compile or the entry's read +
/// verify + deserialize alone (`PluginMetadata::compile_time`).
async fn compile_cache() {
    println!(
        "\ncompile cache (load = sha256 + code + checks + InstancePre; code = compile, or read + \
         verify + deserialize):"
    );
    let mut wasms: Vec<(String, &str)> =
        vec![("splunk-hec (Rust)".into(), artifacts::PLUGIN_SPLUNK_HEC)];
    for lang in artifacts::LANG_PLUGINS {
        if let Ok(path) = lang.wasm {
            wasms.push((lang.dir.into(), path));
        }
    }
    for (name, path) in wasms {
        let wasm = artifacts::read(path);
        let dir = tempfile::tempdir().expect("temp dir");
        let with_cache = || {
            PluginEngine::with_settings(EngineSettings {
                compile_cache: CacheDir::Path(dir.path().to_owned()),
                ..EngineSettings::default()
            })
            .expect("engine")
        };
        let timed = |engine: &PluginEngine| {
            let start = Instant::now();
            let plugin = engine
                .load(&wasm, PluginLimits::default())
                .expect("the plugin loads");
            (start.elapsed().as_secs_f64() * 1e3, plugin)
        };
        let off = PluginEngine::with_settings(EngineSettings {
            compile_cache: CacheDir::Disabled,
            ..EngineSettings::default()
        })
        .expect("engine");
        let (compile_ms, _) = timed(&off);
        let (first_ms, first) = timed(&with_cache());
        assert!(!first.metadata().from_cache);
        let mut best = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            let (ms, plugin) = timed(&with_cache());
            assert!(
                plugin.metadata().from_cache,
                "{name}: restart must hit the cache"
            );
            let code_ms = plugin.metadata().compile_time.as_secs_f64() * 1e3;
            best = (best.0.min(ms), best.1.min(code_ms));
        }
        let entry: u64 = std::fs::read_dir(dir.path())
            .expect("cache dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "  {name:<20} {:>6.1} MB wasm  compile {compile_ms:>8.1} ms  first load {first_ms:>8.1} ms  \
             restart {:>7.1} ms (code {:>6.1} ms)  entry {:>6.1} MB",
            wasm.len() as f64 / 1e6,
            best.0,
            best.1,
            entry as f64 / 1e6
        );
    }
}
