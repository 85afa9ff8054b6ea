//! Conformance: the official, unmodified `aliyun-log-python-sdk` (0.9.52, from
//! tests/requirements.txt) drives the real `shipper emulator` binary exactly as it would drive
//! Alibaba Cloud SLS (items A0–A11 of docs/sls-protocol.md §13.5). Each test starts its own
//! emulator and runs one scenario of `tests/conformance/sdk_conformance.py`; the SDK reaches
//! the emulator in proxy mode (endpoint `localhost`, HTTP_PROXY = the emulator).
//!
//! Python comes from `SHIPPER_TEST_PYTHON` (default `target/test-venv/bin/python`); a missing
//! venv fails the test with the command that creates it.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shipper_test_support::eventually::deadline;
use shipper_test_support::{python, workspace_root};

use crate::harness::emulator::{EmulatorOptions, EmulatorProcess};

const AK_ID: &str = "conformance-id";
const AK_SECRET: &str = "conformance-secret";

/// The Python process group; killed (with any worker processes it started) on drop.
struct PythonGuard(Child);

impl Drop for PythonGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // The scenario started its workers in its own process group.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs one scenario against `emu`; panics with the scenario's output and the emulator's log
/// when it fails or outlives its time budget.
fn run_scenario(emu: &EmulatorProcess, scenario: &str, ak: (&str, &str)) {
    let python = python::python();
    let script = workspace_root().join("tests/conformance/sdk_conformance.py");
    let log_path = emu.dir().join(format!("{scenario}.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = Command::new(&python)
        .arg(&script)
        .arg(scenario)
        .env("SLS_ENDPOINT", "localhost")
        .env("SLS_AK_ID", ak.0)
        .env("SLS_AK_KEY", ak.1)
        .env("HTTP_PROXY", emu.proxy_url())
        .env("http_proxy", emu.proxy_url())
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .env("PYTHONUNBUFFERED", "1")
        .env(
            "SHIPPER_TEST_DEADLINE_SECS",
            deadline().as_secs().max(60).to_string(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let mut guard = PythonGuard(child);
    // A scenario polls with its own deadlines; this only catches a hung interpreter.
    let budget = deadline().max(Duration::from_secs(60)) * 4;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait for python") {
            break Some(status);
        }
        if start.elapsed() > budget {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "SDK scenario {scenario} failed ({}) after {:.1?}\n--- python ---\n{output}\n--- emulator ---\n{}",
        status.map_or("timed out".to_owned(), |s| s.to_string()),
        start.elapsed(),
        emu.stderr()
    );
    eprintln!("{output}");
}

fn emulator() -> EmulatorProcess {
    EmulatorProcess::start(EmulatorOptions::new(AK_ID, AK_SECRET))
}

/// A0: every request of the SDK's signature vectors (v1, STS, lz4 PutLogs, v4) authenticates;
/// a wrong secret is raised by the SDK as `LogException` `SignatureNotMatch` (401).
#[test]
fn sdk_signatures_and_wrong_secret() {
    let path = workspace_root().join("tests/fixtures/sls/signature_vectors.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("vectors")).expect("json");
    let ak = (
        doc["access_key_id"].as_str().expect("id"),
        doc["access_key_secret"].as_str().expect("secret"),
    );
    let emu = EmulatorProcess::start(EmulatorOptions::new(ak.0, ak.1));
    run_scenario(&emu, "signatures", ak);
}

/// A1, A2: project/logstore setup, PutLogs (load-balanced and by hash key, topics, sources,
/// tags, unicode), GetCursor begin/end/time, PullLogs lz4 and uncompressed, end_cursor.
#[test]
fn sdk_produce_and_pull() {
    run_scenario(&emulator(), "produce_pull", (AK_ID, AK_SECRET));
}

/// SPL `query` on PullLogs: where/in/or/project; a filter matching nothing still advances.
#[test]
fn sdk_spl_pull() {
    run_scenario(&emulator(), "spl", (AK_ID, AK_SECRET));
}

/// A8, A9: empty states and every error the SDK can provoke, with status and code.
#[test]
fn sdk_error_cases() {
    run_scenario(&emulator(), "errors", (AK_ID, AK_SECRET));
}

/// A3, A4: a ConsumerWorker consumes everything exactly once, its checkpoints reach the end
/// cursors, and a restart under the same name processes only new logs.
#[test]
fn sdk_consumer_worker_exactly_once_and_restart() {
    run_scenario(&emulator(), "one_worker", (AK_ID, AK_SECRET));
}

/// A5 + hand-off: two workers split the shards 2/2; stopping one hands its shards to the
/// other after the timeout, which resumes from the checkpoints.
#[test]
fn sdk_two_workers_split_and_hand_over() {
    run_scenario(&emulator(), "scale_out", (AK_ID, AK_SECRET));
}

/// A6, A7: SIGKILL failover and a SIGSTOPped zombie that re-joins.
#[test]
fn sdk_failover_and_zombie() {
    run_scenario(&emulator(), "failover", (AK_ID, AK_SECRET));
}

/// A10, A11: split with in-order consumption; a cursor_end_time worker stops by itself.
#[test]
fn sdk_split_in_order_and_end_time() {
    run_scenario(&emulator(), "split_order_end_time", (AK_ID, AK_SECRET));
}

/// `--generate` writes realistic samples the SDK can read; SIGTERM stops the emulator with
/// exit status 0.
#[test]
fn sdk_reads_generated_samples_and_sigterm_stops_cleanly() {
    let emu = EmulatorProcess::start(
        EmulatorOptions::new(AK_ID, AK_SECRET)
            .logstore("conformance/generated:4")
            .arg("--generate")
            .arg("200")
            .arg("--generate-into")
            .arg("conformance/generated"),
    );
    run_scenario(&emu, "generated", (AK_ID, AK_SECRET));
    let log = emu.stderr();
    assert!(
        !log.contains(AK_SECRET),
        "the secret never appears in the log"
    );
    let status = emu.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
