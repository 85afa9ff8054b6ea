//! A mixed group: the official Python SDK's `ConsumerWorker` (unmodified, in a child
//! process, reaching the emulator through `HTTP_PROXY`) and shipper's Rust consumer share
//! one consumer group, and the group must share its shards correctly
//! (docs/sls-protocol.md §8.3 "Assignment and balancing").

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::consumer::{Recorder, TestConsumer, config};
use crate::harness::{
    AK_ID, AK_SECRET, PROJECT, client, emulator, eventually, fill, python, setup,
};

/// The Python worker process; killed and reaped on drop.
struct PythonWorker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl PythonWorker {
    fn start(emulator_addr: std::net::SocketAddr, logstore: &str, group: &str, name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mixed_group_")
            .tempdir()
            .unwrap();
        let stderr = dir.path().join("worker.stderr");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/python/mixed_worker.py"
        );
        let proxy = format!("http://{emulator_addr}");
        let mut child = Command::new(python())
            .arg(script)
            // Any resolvable-or-not name: every request goes through the proxy
            // (docs/sls-protocol.md §2.3 "Reaching a local emulator").
            .args(["sls.local", PROJECT, logstore, group, name, "2"])
            .env("SLS_AK_ID", AK_ID)
            .env("SLS_AK_KEY", AK_SECRET)
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start the Python worker");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
            stderr,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Log ids and their shards.
    fn seen(&self) -> Vec<(u32, String)> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("LOG "))
            .map(|rest| {
                let (shard, id) = rest.split_once(' ').unwrap();
                (shard.parse().unwrap(), id.to_owned())
            })
            .collect()
    }

    /// Shards started and not yet shut down.
    fn held(&self) -> BTreeSet<u32> {
        let mut held = BTreeSet::new();
        for line in self.lines() {
            if let Some(s) = line.strip_prefix("HELD ") {
                held.insert(s.parse().unwrap());
            } else if let Some(s) = line.strip_prefix("GONE ") {
                held.remove(&s.parse::<u32>().unwrap());
            }
        }
        held
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Closes stdin: the worker shuts down (final checkpoints) and prints STOPPED.
    async fn stop(&mut self) {
        self.stdin.take();
        let lines = self.lines.clone();
        eventually("the Python worker stopped", || {
            let done = lines.lock().unwrap().iter().any(|l| l == "STOPPED");
            async move { done }
        })
        .await;
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_worker_and_rust_consumer_share_a_group() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 4).await;
    let mut written = fill(&c, "logs", "a", 5, 10).await;

    let mut py = PythonWorker::start(emu.addr(), "logs", "cg", "py");
    let before_rust = written.len();
    let started = tokio::time::Instant::now();
    while py.seen().len() < before_rust {
        assert!(
            started.elapsed() < crate::harness::deadline(),
            "the Python worker did not read the first logs; stderr:\n{}",
            py.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(py.held().len(), 4, "alone, Python holds every shard");

    let record = Recorder::default();
    let mut cfg = config("logs", "cg", "rs");
    // Same group timeout as the Python worker's (2 × its 2 s heartbeat), so neither one
    // keeps re-setting it.
    cfg.heartbeat_interval = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(4);
    let rust = TestConsumer::start(c.clone(), cfg, record.clone()).await;

    eventually("the group splits 2/2 between Python and Rust", || {
        let rust_held = record.lock().unwrap().shards_of("rs");
        let py_held = py.held();
        async move { rust_held.len() == 2 && py_held.len() == 2 && rust_held.is_disjoint(&py_held) }
    })
    .await;

    written.extend(fill(&c, "logs", "b", 5, 10).await);
    eventually("the new logs are read by one side or the other", || {
        let n = record.lock().unwrap().seen.len() + py.seen().len();
        let want = written.len();
        async move { n >= want }
    })
    .await;

    let rust_held = record.lock().unwrap().shards_of("rs");
    let py_held = py.held();
    {
        let r = record.lock().unwrap();
        for (_, shard, id) in r.seen.iter().filter(|(_, _, id)| id.starts_with("b-")) {
            assert!(rust_held.contains(shard), "Rust read {id} of shard {shard}");
        }
    }
    for (shard, id) in py.seen().iter().filter(|(_, id)| id.starts_with("b-")) {
        assert!(py_held.contains(shard), "Python read {id} of shard {shard}");
    }

    let report = rust.stop().await;
    assert!(report.unreleased.is_empty());
    py.stop().await;

    let mut all: Vec<String> = record.lock().unwrap().ids();
    all.extend(py.seen().into_iter().map(|(_, id)| id));
    all.sort();
    written.sort();
    assert_eq!(all, written, "every log once, across both workers");
    assert!(record.lock().unwrap().errors.is_empty());
}
