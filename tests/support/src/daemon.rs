//! A spawned receiver daemon: the child (the `run.sh` that `exec`s the daemon), its state
//! dir, stderr captured to a file, SIGTERM + reap for restarts, SIGKILL + reap on drop.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub(crate) struct Daemon {
    pub name: &'static str,
    pub state: TempDir,
    pub script: PathBuf,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn new(name: &'static str, script: PathBuf, env: Vec<(String, String)>) -> Self {
        let state = tempfile::Builder::new()
            .prefix(&format!("shipper-{name}-"))
            .tempdir()
            .expect("temp dir");
        Self {
            name,
            state,
            script,
            env,
            child: None,
        }
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.state.path().join("daemon.stderr")
    }

    pub fn spawn(&mut self) {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("stderr file");
        let child = Command::new("bash")
            .arg(&self.script)
            .arg(self.state.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("dup stderr file"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.script.display()));
        self.child = Some(child);
    }

    /// Panics with diagnostics when the daemon has exited.
    pub fn assert_running(&mut self, install: &str) {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait().expect("try_wait")
        {
            let hint = if status.code() == Some(127) {
                format!("\nInstall: {install}")
            } else {
                String::new()
            };
            panic!(
                "{} exited during start-up ({status}){hint}\n{}",
                self.name,
                self.diagnostics()
            );
        }
    }

    /// SIGTERM, then reap (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn diagnostics(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- {} stderr ({}):\n{}\n--- internal.log:\n{}",
            self.name,
            self.stderr_path().display(),
            tail(read(&self.stderr_path())),
            tail(read(&self.state.path().join("internal.log")))
        )
    }

    /// Every line of `messages.jsonl`; a line that is not JSON comes back as a string.
    pub fn messages(&self) -> Vec<Value> {
        let bytes = std::fs::read(self.state.path().join("messages.jsonl")).unwrap_or_default();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice(l)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(l).into_owned()))
            })
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Finds an executable on PATH.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
