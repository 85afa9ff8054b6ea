//! `shipper emulator` as a child process: started on `127.0.0.1:0`, ready once it printed
//! `listening on ADDR` (its first stdout line), killed and reaped on drop. Its stderr (the
//! tracing log) goes to a file in the guard's temp directory and is attached to failures.
//!
//! ```ignore
//! let emu = EmulatorProcess::start(EmulatorOptions::new("ak", "sk").logstore("proj/store:4"));
//! // point an SDK at it: endpoint "localhost", HTTP_PROXY = emu.proxy_url()
//! ```

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use shipper_test_support::eventually::deadline;

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// AccessKey id clients must sign with.
    pub access_key_id: String,
    /// AccessKey secret clients must sign with.
    pub access_key_secret: String,
    /// Extra command-line arguments (`--logstore p/l:4`, `--data-dir …`, `--generate …`).
    pub args: Vec<String>,
}

impl EmulatorOptions {
    /// Options with this key pair and no logstores.
    pub fn new(access_key_id: &str, access_key_secret: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            access_key_secret: access_key_secret.to_owned(),
            args: Vec::new(),
        }
    }

    /// Pre-creates `PROJECT/LOGSTORE:SHARDS`.
    pub fn logstore(mut self, spec: &str) -> Self {
        self.args.extend(["--logstore".to_owned(), spec.to_owned()]);
        self
    }

    /// Adds raw arguments.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// A running `shipper emulator` process.
pub struct EmulatorProcess {
    child: Child,
    addr: SocketAddr,
    stderr_path: PathBuf,
    /// Kept open: the emulator writes nothing more to stdout, but closing it early would
    /// turn a stray write into SIGPIPE.
    _stdout: BufReader<ChildStdout>,
    dir: tempfile::TempDir,
}

impl EmulatorProcess {
    /// Starts the emulator and waits for its `listening on` line (up to the test deadline).
    pub fn start(options: EmulatorOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("shipper-emulator-")
            .tempdir()
            .expect("temp dir");
        let stderr_path = dir.path().join("emulator.stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
        cmd.args(["--log-level", "info,shipper_emulator=debug", "emulator"])
            .args(["--listen", "127.0.0.1:0"])
            .env("SLS_AK_ID", &options.access_key_id)
            .env("SLS_AK_KEY", &options.access_key_secret)
            .args(&options.args);
        let started = super::listening::start(cmd, &stderr_path, "shipper emulator");
        let (mut child, reader) = (started.child, started.stdout);
        let Ok(addr) = started.addr.parse() else {
            let _ = child.kill();
            panic!(
                "shipper emulator announced {:?}, not an address",
                started.addr
            );
        };
        Self {
            child,
            addr,
            stderr_path,
            _stdout: reader,
            dir,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the HTTP_PROXY value for SDKs in proxy mode
    /// (docs/sls-protocol.md §2.3 "Reaching a local emulator").
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A scratch directory owned by this guard (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The emulator's log so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit (graceful stop), up to the test deadline.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for emulator") {
                return status;
            }
            assert!(
                start.elapsed() < deadline(),
                "emulator still running {:?} after SIGTERM\n{}",
                start.elapsed(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
