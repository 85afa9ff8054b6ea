//! `shipper run` as a child process, and the TOML config it runs with.
//!
//! [`RunConfig`] builds the config file (a `toml::Table`, so every value is quoted right);
//! [`ShipperProcess`] writes it into the test's directory, starts the real binary with
//! `--log-format json`, sends it signals, waits for it with the test deadline, reads its log
//! lines and its `/metrics`. Its `Drop` kills and reaps the process and, when the test is
//! failing, prints the tail of its log.
//!
//! The child's environment is cleared of everything `shipper run` reads (the seed variables,
//! `SHIPPER_*`, `RUST_LOG`), so a developer's shell cannot change what a test runs; the test
//! passes credentials explicitly with [`ShipperProcess::start`]'s `env`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shipper_test_support::eventually::{deadline, eventually};

/// The status, stdout and stderr of a finished command (a `shipper` subcommand, a
/// project's script), for assertion messages.
pub fn describe_output(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Environment variables `shipper run` reads; removed from every child's environment.
const SCRUBBED_ENV: &[&str] = &[
    "SLS_ENDPOINT",
    "SLS_AK_ID",
    "SLS_AK_KEY",
    "SLS_STS_TOKEN",
    "SLS_PROJECT",
    "SLS_LOGSTORE",
    "SLS_CG",
    "SHIPPER_CONFIG",
    "SHIPPER_LOG",
    "SHIPPER_LOG_FORMAT",
    "SHIPPER_HEC_TOKEN",
    "RUST_LOG",
];

/// Log target of the shard pipeline's lifecycle lines ("shard assigned", "shard released";
/// the consumer-group worker logs lines of the same name without the cursor).
const PIPELINE_TARGET: &str = "shipper::pipeline";

/// A `shipper run` config file under construction.
#[derive(Debug, Clone)]
pub struct RunConfig {
    table: toml::Table,
}

impl RunConfig {
    /// `[source]` for one logstore at `endpoint`, with the short heartbeat (1 s) and group
    /// timeout (3 s) that keep hand-offs fast in tests; `[plugin]` at `plugin` (not
    /// watched); the dead-letter file and `/metrics` (port 0) set. Credentials come from the environment.
    pub fn new(
        endpoint: &str,
        project: &str,
        logstore: &str,
        group: &str,
        plugin: &Path,
        dead_letter: &Path,
    ) -> Self {
        let mut table = toml::Table::new();
        let mut source = toml::Table::new();
        source.insert("endpoint".into(), endpoint.into());
        source.insert("project".into(), project.into());
        source.insert("logstore".into(), logstore.into());
        source.insert("consumer_group".into(), group.into());
        source.insert("start".into(), "begin".into());
        source.insert("heartbeat_interval".into(), "1s".into());
        source.insert("timeout".into(), 3.into());
        table.insert("source".into(), source.into());
        let mut plugin_t = toml::Table::new();
        plugin_t.insert("path".into(), path_str(plugin).into());
        // The artifacts may be rebuilt while a test runs; only the swap test watches.
        plugin_t.insert("watch".into(), false.into());
        table.insert("plugin".into(), plugin_t.into());
        let mut dl = toml::Table::new();
        dl.insert("path".into(), path_str(dead_letter).into());
        table.insert("dead_letter".into(), dl.into());
        let mut metrics = toml::Table::new();
        metrics.insert("listen".into(), "127.0.0.1:0".into());
        table.insert("metrics".into(), metrics.into());
        Self { table }
    }

    /// Sets `section.key` (a dotted path of tables, created as needed) to `value`.
    pub fn set(mut self, dotted: &str, value: impl Into<toml::Value>) -> Self {
        let mut parts: Vec<&str> = dotted.split('.').collect();
        let last = parts.pop().expect("a key");
        let mut t = &mut self.table;
        for p in parts {
            t = t
                .entry(p)
                .or_insert_with(|| toml::Table::new().into())
                .as_table_mut()
                .unwrap_or_else(|| panic!("{dotted}: {p} is not a table"));
        }
        t.insert(last.into(), value.into());
        self
    }

    /// Removes `section.key` if present.
    pub fn remove(mut self, dotted: &str) -> Self {
        let mut parts: Vec<&str> = dotted.split('.').collect();
        let last = parts.pop().expect("a key");
        let mut t = &mut self.table;
        for p in parts {
            match t.get_mut(p).and_then(toml::Value::as_table_mut) {
                Some(inner) => t = inner,
                None => return self,
            }
        }
        t.remove(last);
        self
    }

    /// An HEC sink at `url` (token from SHIPPER_HEC_TOKEN) with small, fast batches:
    /// 64 KB requests (so a run has many of them: finer checkpoints, more interleaving),
    /// 100 ms linger, and retry backoff from 100 ms capped at 1 s (fault tests stay short).
    pub fn hec_sink(self, url: &str) -> Self {
        self.set("sink.type", "hec")
            .set("sink.endpoint", url)
            .set("sink.batch_max_bytes", 64 * 1024)
            .set("sink.batch_linger_ms", 100)
            .set("sink.retry.initial_backoff_ms", 100)
            .set("sink.retry.max_backoff_ms", 1000)
    }

    /// A syslog sink (`transport` = tcp | tls) at `address`.
    pub fn syslog_sink(self, address: &str, transport: &str) -> Self {
        self.set("sink.type", "syslog")
            .set("sink.address", address)
            .set("sink.transport", transport)
            .set("sink.reconnect_backoff_min_ms", 100)
            .set("sink.reconnect_backoff_max_ms", 1000)
    }

    /// Replaces `[sink]` with `[[sinks]]` tables (each built like a `[sink]`, plus `name`
    /// and optionally `plugin`); [`Self::sink_table`] takes one out of a config built with
    /// [`Self::hec_sink`] or [`Self::syslog_sink`].
    pub fn sinks(mut self, tables: Vec<toml::Table>) -> Self {
        self.table.remove("sink");
        self.table.insert(
            "sinks".into(),
            toml::Value::Array(tables.into_iter().map(toml::Value::Table).collect()),
        );
        self
    }

    /// The `[sink]` table built so far, named `name` (for [`Self::sinks`]).
    pub fn sink_table(&self, name: &str) -> toml::Table {
        let mut t = self.table["sink"]
            .as_table()
            .expect("a [sink] table")
            .clone();
        t.insert("name".into(), name.into());
        t
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        toml::to_string(&self.table).expect("config serialises")
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp paths").to_owned()
}

/// A running `shipper run`.
pub struct ShipperProcess {
    name: String,
    child: Child,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

/// Writes `config` to `DIR/NAME.toml`; returns the path for `--config`.
fn write_config(dir: &Path, name: &str, config: &RunConfig) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config.render()).expect("write config");
    path_str(&path)
}

impl ShipperProcess {
    /// Writes `config` to `DIR/NAME.toml` and starts `shipper --log-format json run --config
    /// … --progress never [args]` with only `env` added to the scrubbed environment. Its log
    /// goes to `DIR/NAME.stderr`.
    pub fn start(
        dir: &Path,
        name: &str,
        config: &RunConfig,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let config_path = write_config(dir, name, config);
        Self::start_raw(dir, name, &["--config", &config_path], args, env)
    }

    /// [`start`](Self::start) with `--log-level level` (e.g. `trace`) instead of `info`.
    pub fn start_at_level(
        dir: &Path,
        name: &str,
        config: &RunConfig,
        level: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let config_path = write_config(dir, name, config);
        Self::spawn_at(&[], level, dir, name, &["--config", &config_path], &[], env)
    }

    /// Starts `shipper --log-format json run <config_args> --progress never <args>`.
    pub fn start_raw(
        dir: &Path,
        name: &str,
        config_args: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(&[], dir, name, config_args, args, env)
    }

    /// [`start`](Self::start) under a command prefix (`ip netns exec NS`).
    pub fn start_wrapped(
        wrapper: &[String],
        dir: &Path,
        name: &str,
        config: &RunConfig,
        env: &[(&str, &str)],
    ) -> Self {
        let config_path = write_config(dir, name, config);
        Self::spawn(wrapper, dir, name, &["--config", &config_path], &[], env)
    }

    fn spawn(
        wrapper: &[String],
        dir: &Path,
        name: &str,
        config_args: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn_at(wrapper, "info", dir, name, config_args, args, env)
    }

    fn spawn_at(
        wrapper: &[String],
        level: &str,
        dir: &Path,
        name: &str,
        config_args: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let binary = env!("CARGO_BIN_EXE_shipper");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.args(["--log-format", "json", "--log-level", level, "run"])
            .args(config_args)
            .args(["--progress", "never"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for k in SCRUBBED_ENV {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().expect("spawn shipper run");
        Self {
            name: name.to_owned(),
            child,
            stderr_path,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last `n` lines of stderr, for failure messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- shipper `{}` stderr ({}), last {} of {} lines ---\n{}",
            self.name,
            self.stderr_path.display(),
            n.min(lines.len()),
            lines.len(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// The JSON log lines so far (lines that are not JSON, e.g. the final `error:` line,
    /// are skipped).
    pub fn log_lines(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Log lines whose `message` starts with `prefix`.
    pub fn logs_with(&self, prefix: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .collect()
    }

    /// Waits until a log line whose message starts with `prefix` and that satisfies `pred`
    /// appears; returns it. Fails early if the process exits.
    pub fn wait_for_log(&mut self, prefix: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(
            &format!("shipper `{}` to log {prefix:?}", self.name),
            || {
                self.assert_running();
                self.logs_with(prefix)
                    .into_iter()
                    .find(|l| pred(l))
                    .ok_or_else(|| "not yet".to_owned())
            },
        )
    }

    /// The pipeline's "shard released" lines so far.
    pub fn releases(&self) -> Vec<Value> {
        self.logs_with("shard released")
            .into_iter()
            .filter(|l| l["target"] == PIPELINE_TARGET)
            .collect()
    }

    /// Every "shard assigned" line so far: (shard, start cursor, resumed from a checkpoint).
    pub fn assignments(&self) -> Vec<(u32, String, bool)> {
        self.logs_with("shard assigned")
            .iter()
            .filter(|l| l["target"] == PIPELINE_TARGET)
            .map(|l| {
                (
                    l["shard"].as_u64().expect("shard field") as u32,
                    l["cursor"].as_str().expect("cursor field").to_owned(),
                    l["from_checkpoint"]
                        .as_bool()
                        .expect("from_checkpoint field"),
                )
            })
            .collect()
    }

    /// Shards held according to the log (assigned and not released since), sorted.
    pub fn held_shards(&self) -> Vec<u32> {
        let mut held = std::collections::BTreeMap::<u32, i32>::new();
        for l in self.log_lines() {
            if l["target"] != PIPELINE_TARGET {
                continue;
            }
            let delta = match l["message"].as_str() {
                Some("shard assigned") => 1,
                Some("shard released") => -1,
                _ => continue,
            };
            *held
                .entry(l["shard"].as_u64().expect("shard field") as u32)
                .or_default() += delta;
        }
        held.into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, _)| s)
            .collect()
    }

    /// Panics (with the log) when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_status() {
            panic!(
                "shipper `{}` exited unexpectedly ({status})\n{}",
                self.name,
                self.stderr_tail(60)
            );
        }
    }

    /// The exit status, if it exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait shipper");
        }
        self.status
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, `HUP`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the exit (up to the test deadline) and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(
                start.elapsed() < deadline(),
                "shipper `{}` still running {:?} after it was asked to stop\n{}",
                self.name,
                start.elapsed(),
                self.stderr_tail(60)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        let status = self.child.wait().expect("reap shipper");
        self.status = Some(status);
        status
    }

    /// The `/metrics` address, from the "serving /metrics" log line.
    pub fn metrics_addr(&mut self) -> SocketAddr {
        let line = self.wait_for_log("serving /metrics", |_| true);
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr in {line}"))
    }

    /// Scrapes `/metrics`; `None` when the endpoint does not answer (process gone).
    pub fn scrape(&mut self) -> Option<Metrics> {
        let addr = self.metrics_addr();
        http_get(addr, "/metrics").map(Metrics)
    }

    /// `/health` as JSON; `None` when the endpoint does not answer.
    pub fn health(&mut self) -> Option<Value> {
        let addr = self.metrics_addr();
        http_get(addr, "/health").and_then(|b| serde_json::from_str(&b).ok())
    }

    /// Resident memory of the process now (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS in kB")
    }
}

impl Drop for ShipperProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail(80));
        }
    }
}

/// A plain `GET` over HTTP/1.0; the body of any HTTP answer, `None` when there is none.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

/// A `/metrics` scrape (OpenMetrics text).
#[derive(Debug, Clone)]
pub struct Metrics(pub String);

impl Metrics {
    /// The sample lines of metric `name` (`name{labels} value`).
    pub fn samples(&self, name: &str) -> Vec<&str> {
        self.0
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .collect()
    }

    /// Sum of the samples of metric `name` whose label set contains `label` (e.g.
    /// `sink="syslog"`); 0 when absent.
    pub fn sum_where(&self, name: &str, label: &str) -> f64 {
        self.samples(name)
            .into_iter()
            .filter(|l| l.contains(label))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Sum of the samples of metric `name` (any labels); 0 when absent.
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                let metric = key.split('{').next()?;
                (metric == name).then(|| value.parse::<f64>().ok())?
            })
            .sum()
    }
}
