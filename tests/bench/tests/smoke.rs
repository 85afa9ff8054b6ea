//! CI proof that the benchmark harness works: `shipper-bench --smoke` runs every subject
//! (shipper over HEC with and without gzip, syslog over TCP and TLS, the seed scripts and the
//! careful-user script on the official Python SDK) on a tiny data set, saturation and trickle,
//! plus the stage micro-benchmarks and two scale-and-distance scenarios (4 shards with the
//! emulator 0 and 100 ms away, 2 MB each) and their chart. Asserted: the harness completed and counted every event of
//! every run. Nothing about speed is asserted: timings on a shared CI machine vary too much
//! between runs to pass or fail on.
//!
//! The subject is the debug `shipper` binary `cargo test --workspace` builds for the e2e suite
//! (next to this test's directory), or `$SHIPPER_BENCH_SHIPPER`; the plugins come from
//! shipper-test-artifacts; Python from the test venv (`SHIPPER_TEST_PYTHON`).

use std::path::PathBuf;
use std::process::Command;

fn shipper_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPPER_BENCH_SHIPPER") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/smoke-<hash> → target/<profile>/shipper
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("shipper");
    assert!(
        path.is_file(),
        "{} not found: build it with `cargo build --bin shipper` (`cargo test --workspace` builds it), or set SHIPPER_BENCH_SHIPPER",
        path.display()
    );
    path
}

#[test]
fn smoke_run_completes_and_counts_every_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_shipper-bench"))
        .arg("--smoke")
        .arg("--shipper")
        .arg(shipper_binary())
        .arg("--hec-plugin")
        .arg(shipper_test_artifacts::PLUGIN_SPLUNK_HEC)
        .arg("--syslog-plugin")
        .arg(shipper_test_artifacts::PLUGIN_SYSLOG_KV)
        .arg("--python")
        .arg(shipper_test_support::python::python())
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run shipper-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shipper-bench --smoke failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("summary written")).expect("JSON");
    let runs = summary["runs"].as_array().expect("runs");
    // 7 subjects × (saturation + trickle), then the two scenarios.
    assert_eq!(runs.len(), 16, "{stdout}");
    let scenarios: Vec<(u64, u64)> = runs
        .iter()
        .filter_map(|r| {
            let s = r["scenario"].as_object()?;
            Some((s["shards"].as_u64()?, s["latency_ms"].as_u64()?))
        })
        .collect();
    assert_eq!(scenarios, [(4, 0), (4, 100)], "{stdout}");
    let svg = std::fs::read_to_string(dir.path().join("scenarios.svg")).expect("chart written");
    assert_eq!(
        svg.matches("<circle").count(),
        4,
        "2 points × 2 panels: {svg}"
    );
    for r in runs {
        let name = format!("{} {}", r["subject"], r["kind"]);
        assert_eq!(r["error"], serde_json::Value::Null, "{name}: {stdout}");
        assert_eq!(r["complete"], true, "{name}");
        assert_eq!(r["lost"], 0, "{name}");
        assert_eq!(r["invalid"], 0, "{name}");
        assert!(r["expected_logs"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(
            r["received_unique"], r["expected_logs"],
            "{name}: every event counted"
        );
    }
    assert!(
        summary["limits"].as_array().is_some_and(|l| l.len() == 4),
        "the per-core limits were computed: {stdout}"
    );
}
