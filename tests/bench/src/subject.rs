//! The programs under test and how each is started: the release `shipper run` (HEC with and
//! without gzip, syslog over TCP and TLS), the seed scripts and the careful-user script on the
//! official Python SDK. Every subject is a separate process, optionally pinned to the subject
//! CPU with `taskset`, owned by a [`Running`] guard that kills and reaps it on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::machine;

/// A program under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// `shipper run`, splunk-hec plugin, HEC with gzip level 1.
    ShipperHec,
    /// `shipper run`, splunk-hec plugin, HEC without gzip.
    ShipperHecNogzip,
    /// `shipper run`, syslog-kv plugin, RFC 5424 octet-counted over TCP.
    ShipperSyslogTcp,
    /// `shipper run`, syslog-kv plugin, RFC 5424 over TLS.
    ShipperSyslogTls,
    /// The published seed HEC script (one POST per log).
    SeedHec,
    /// The published seed syslog script over TCP.
    SeedSyslogTcp,
    /// Same SDK, 1000 events per keep-alive POST, gzip level 1.
    CarefulHec,
}

/// Which backlog a subject reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSet {
    /// The whole backlog.
    Full,
    /// The seed HEC script's prefix (it ships ≈ 2 MB per CPU-second).
    SeedHecPrefix,
    /// The other Python subjects' prefix (≈ 25 MB per CPU-second).
    PythonPrefix,
}

/// Which receiver a subject sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// The HEC receiver (count mode).
    Hec,
    /// The syslog receiver on plain TCP.
    SyslogTcp,
    /// The syslog receiver on TLS.
    SyslogTls,
}

impl Subject {
    /// Every subject, in report order.
    pub const ALL: [Subject; 7] = [
        Subject::ShipperHec,
        Subject::ShipperHecNogzip,
        Subject::ShipperSyslogTcp,
        Subject::ShipperSyslogTls,
        Subject::SeedHec,
        Subject::SeedSyslogTcp,
        Subject::CarefulHec,
    ];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Subject::ShipperHec => "shipper-hec",
            Subject::ShipperHecNogzip => "shipper-hec-nogzip",
            Subject::ShipperSyslogTcp => "shipper-syslog-tcp",
            Subject::ShipperSyslogTls => "shipper-syslog-tls",
            Subject::SeedHec => "seed-hec",
            Subject::SeedSyslogTcp => "seed-syslog-tcp",
            Subject::CarefulHec => "careful-hec",
        }
    }

    /// A Python subject (slow start, slow checkpoints).
    pub fn is_python(self) -> bool {
        matches!(
            self,
            Subject::SeedHec | Subject::SeedSyslogTcp | Subject::CarefulHec
        )
    }

    /// The backlog it reads in a saturation run.
    pub fn dataset(self) -> DataSet {
        match self {
            Subject::SeedHec => DataSet::SeedHecPrefix,
            Subject::SeedSyslogTcp | Subject::CarefulHec => DataSet::PythonPrefix,
            _ => DataSet::Full,
        }
    }

    /// Where it sends.
    pub fn receiver(self) -> Receiver {
        match self {
            Subject::ShipperSyslogTcp | Subject::SeedSyslogTcp => Receiver::SyslogTcp,
            Subject::ShipperSyslogTls => Receiver::SyslogTls,
            _ => Receiver::Hec,
        }
    }
}

/// Everything needed to start a subject.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `shipper` binary.
    pub shipper: PathBuf,
    /// splunk-hec component.
    pub hec_plugin: PathBuf,
    /// syslog-kv component.
    pub syslog_plugin: PathBuf,
    /// Python with the official SDK.
    pub python: PathBuf,
    /// `tests/bench/py`.
    pub py_dir: PathBuf,
    /// Emulator `127.0.0.1:PORT`.
    pub emulator: String,
    /// SLS key pair.
    pub ak_id: String,
    /// SLS key secret.
    pub ak_secret: String,
    /// SLS project.
    pub project: String,
    /// HEC receiver address.
    pub hec: std::net::SocketAddr,
    /// HEC token.
    pub hec_token: String,
    /// Syslog TCP receiver.
    pub syslog_tcp: std::net::SocketAddr,
    /// Syslog TLS receiver.
    pub syslog_tls: std::net::SocketAddr,
    /// CA of the TLS receiver.
    pub ca: PathBuf,
    /// `taskset` and the CPU subjects run on.
    pub pin: Option<(PathBuf, usize)>,
}

/// A TOML basic string (JSON string syntax is a subset).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

impl Launch {
    fn shipper_config(&self, subject: Subject, logstore: &str, group: &str, dir: &Path) -> String {
        let plugin = match subject.receiver() {
            Receiver::Hec => &self.hec_plugin,
            _ => &self.syslog_plugin,
        };
        let sink = match subject {
            Subject::ShipperHec | Subject::ShipperHecNogzip => format!(
                "type = \"hec\"\nendpoint = {}\ngzip = {}\ngzip_level = 1\n",
                toml_str(&format!("http://{}", self.hec)),
                subject == Subject::ShipperHec
            ),
            Subject::ShipperSyslogTcp => format!(
                "type = \"syslog\"\naddress = {}\ntransport = \"tcp\"\n",
                toml_str(&self.syslog_tcp.to_string())
            ),
            _ => format!(
                "type = \"syslog\"\naddress = {}\ntransport = \"tls\"\n[sink.tls]\nca_file = {}\n",
                toml_str(&self.syslog_tls.to_string()),
                toml_str(&self.ca.display().to_string())
            ),
        };
        format!(
            "# written by shipper-bench\n[source]\nendpoint = {}\nproject = {}\nlogstore = {}\n\
             consumer_group = {}\nstart = \"begin\"\n\n[plugin]\npath = {}\n\n\
             [dead_letter]\npath = {}\n\n[sink]\n{sink}",
            toml_str(&self.emulator),
            toml_str(&self.project),
            toml_str(logstore),
            toml_str(group),
            toml_str(&plugin.display().to_string()),
            toml_str(&dir.join("dead-letter.jsonl").display().to_string()),
        )
    }

    /// The command line of `subject` reading `logstore` in consumer group `group`; its files
    /// (config, logs) go to `dir`.
    fn command(
        &self,
        subject: Subject,
        logstore: &str,
        group: &str,
        dir: &Path,
    ) -> anyhow::Result<Command> {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some((taskset, cpu)) = &self.pin {
            argv.extend([taskset.into(), "-c".into(), cpu.to_string().into()]);
        }
        let mut env: Vec<(&str, String)> = vec![
            ("SLS_AK_ID", self.ak_id.clone()),
            ("SLS_AK_KEY", self.ak_secret.clone()),
        ];
        if subject.is_python() {
            let script = match subject {
                Subject::SeedHec => "seed_hec_sync_data.py",
                Subject::SeedSyslogTcp => "seed_syslog_sync_data.py",
                _ => "careful_hec.py",
            };
            argv.extend([self.python.clone().into(), self.py_dir.join(script).into()]);
            // Proxy mode (docs/sls-protocol.md §2.3): the SDK reaches "sls.local" through the
            // emulator; the receivers on 127.0.0.1 are reached directly.
            let proxy = format!("http://{}", self.emulator);
            let no_proxy = "127.0.0.1,localhost".to_owned();
            env.extend([
                ("SLS_ENDPOINT", "sls.local".to_owned()),
                ("SLS_PROJECT", self.project.clone()),
                ("SLS_LOGSTORE", logstore.to_owned()),
                ("SLS_CG", group.to_owned()),
                ("HTTP_PROXY", proxy.clone()),
                ("http_proxy", proxy),
                ("NO_PROXY", no_proxy.clone()),
                ("no_proxy", no_proxy),
                ("BENCH_HEC_HOST", self.hec.ip().to_string()),
                ("BENCH_HEC_PORT", self.hec.port().to_string()),
                ("BENCH_HEC_TOKEN", self.hec_token.clone()),
                ("BENCH_SYSLOG_HOST", self.syslog_tcp.ip().to_string()),
                ("BENCH_SYSLOG_PORT", self.syslog_tcp.port().to_string()),
            ]);
        } else {
            let config = dir.join("shipper.toml");
            std::fs::write(&config, self.shipper_config(subject, logstore, group, dir))
                .with_context(|| format!("writing {}", config.display()))?;
            argv.extend([
                self.shipper.clone().into(),
                "run".into(),
                "--config".into(),
                config.into(),
                "--progress".into(),
                "never".into(),
                "--log-level".into(),
                "warn".into(),
            ]);
            env.push(("SHIPPER_HEC_TOKEN", self.hec_token.clone()));
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(dir).stdin(Stdio::null());
        for key in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env_remove(key);
        }
        cmd.envs(env);
        Ok(cmd)
    }

    /// Starts `subject`; stdout and stderr go to files in `dir`.
    pub fn spawn(
        &self,
        subject: Subject,
        logstore: &str,
        group: &str,
        dir: &Path,
    ) -> anyhow::Result<Running> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cmd = self.command(subject, logstore, group, dir)?;
        let out = dir.join("stdout.log");
        let err = dir.join("stderr.log");
        cmd.stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({cmd:?})", subject.name()))?;
        Ok(Running {
            pid: child.id(),
            child,
            started: Instant::now(),
            stderr: err,
        })
    }
}

/// A running subject; killed and reaped on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pid: u32,
    /// When it was started.
    pub started: Instant,
    /// Its stderr file.
    pub stderr: PathBuf,
}

impl Running {
    /// utime + stime so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        machine::process_cpu_seconds(&self.pid.to_string())
    }

    /// Seconds its threads waited for a CPU.
    pub fn run_delay_seconds(&self) -> Option<f64> {
        machine::run_delay_seconds(&self.pid.to_string())
    }

    /// Peak RSS (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        machine::status_kib(self.pid, "VmHWM")
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its stderr (for error messages).
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGTERM, up to `grace` for a clean exit, then SIGKILL. Returns how it ended.
    pub async fn terminate(mut self, grace: Duration) -> String {
        if let Some(status) = self.exited() {
            return format!("had exited: {status}");
        }
        let _ = machine::signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return format!("SIGTERM: {status}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        format!("SIGKILL after {grace:?}: {status:?}")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
