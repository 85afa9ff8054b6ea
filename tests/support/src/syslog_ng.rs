//! A real syslog-ng (3.38) started from `receivers/syslog-ng/run.sh` in a temp state dir.
//! Found through `SNG_ROOT` (default `/opt/syslog-ng-private` when it exists, the private
//! unpack that coexists with rsyslog) or `syslog-ng` on PATH. Its ports must be fixed in
//! the config, so all six come from the [`crate::ports`] registry. Readiness: poll-connect.

use std::net::TcpStream;
use std::path::PathBuf;

use serde_json::Value;

use crate::certs::TestPki;
use crate::daemon::{Daemon, on_path};
use crate::eventually::eventually;
use crate::ports::{PortGuard, reserve_port};

/// How to install syslog-ng next to rsyslog.
pub const INSTALL: &str = "bash tests/support/receivers/syslog-ng/install-private.sh /opt/syslog-ng-private (then SNG_ROOT=/opt/syslog-ng-private)";

const DEFAULT_ROOT: &str = "/opt/syslog-ng-private";

/// Listener names and their env vars.
const LISTENERS: [(&str, &str); 6] = [
    ("syslog_tcp", "SNG_SYSLOG_TCP_PORT"),
    ("net_tcp", "SNG_NET_TCP_PORT"),
    ("legacy_tcp", "SNG_LEGACY_TCP_PORT"),
    ("tls", "SNG_TLS_PORT"),
    ("mtls", "SNG_MTLS_PORT"),
    ("udp", "SNG_UDP_PORT"),
];

/// A running syslog-ng; killed and reaped on drop.
pub struct SyslogNg {
    daemon: Daemon,
    ports: Vec<(&'static str, PortGuard)>,
    pki_dir: PathBuf,
}

fn sng_root() -> Option<String> {
    match std::env::var("SNG_ROOT") {
        Ok(r) if !r.is_empty() => Some(r),
        _ => std::path::Path::new(DEFAULT_ROOT)
            .join("usr/sbin/syslog-ng")
            .exists()
            .then(|| DEFAULT_ROOT.to_owned()),
    }
}

impl SyslogNg {
    /// Starts syslog-ng with certificates from `pki` (or run.sh's own) and waits until its
    /// TCP listeners accept connections.
    pub fn start(pki: Option<&TestPki>) -> Self {
        let root = sng_root();
        match &root {
            Some(r) => assert!(
                std::path::Path::new(r).join("usr/sbin/syslog-ng").exists(),
                "SNG_ROOT={r} holds no usr/sbin/syslog-ng; install: {INSTALL}"
            ),
            None => assert!(
                on_path("syslog-ng").is_some(),
                "syslog-ng not found; install: {INSTALL}"
            ),
        }
        let ports: Vec<_> = LISTENERS
            .iter()
            .map(|(name, _)| (*name, reserve_port()))
            .collect();
        let mut env: Vec<(String, String)> = LISTENERS
            .iter()
            .zip(&ports)
            .map(|((_, var), (_, g))| ((*var).to_owned(), g.port().to_string()))
            .collect();
        env.push(("SNG_ROOT".into(), root.unwrap_or_default()));
        if let Some(p) = pki {
            env.push(("SNG_CERTS".into(), p.dir().display().to_string()));
        }
        let script = crate::receivers_dir().join("syslog-ng/run.sh");
        let mut daemon = Daemon::new("syslog-ng", script, env);
        let pki_dir = pki
            .map(|p| p.dir().to_owned())
            .unwrap_or_else(|| daemon.state.path().join("pki"));
        daemon.spawn();
        let mut sng = Self {
            daemon,
            ports,
            pki_dir,
        };
        let tcp_ports: Vec<u16> = ["syslog_tcp", "net_tcp", "legacy_tcp", "tls", "mtls"]
            .iter()
            .map(|l| sng.port(l))
            .collect();
        let daemon = &mut sng.daemon;
        eventually("syslog-ng to accept TCP connections", || {
            daemon.assert_running(INSTALL);
            for &p in &tcp_ports {
                TcpStream::connect(("127.0.0.1", p))
                    .map_err(|e| format!("port {p}: {e}\n{}", daemon.diagnostics()))?;
            }
            Ok(())
        });
        sng
    }

    /// The port of a listener: `syslog_tcp` (octet-counted only), `net_tcp` (LF, RFC 5424),
    /// `legacy_tcp` (LF, RFC 3164), `tls`, `mtls`, `udp`.
    pub fn port(&self, listener: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| *n == listener)
            .unwrap_or_else(|| panic!("no syslog-ng listener {listener:?}"))
            .1
            .port()
    }

    /// Directory with `ca.pem`.
    pub fn pki_dir(&self) -> &std::path::Path {
        &self.pki_dir
    }

    /// Every message received so far (`messages.jsonl`).
    pub fn messages(&self) -> Vec<Value> {
        self.daemon.messages()
    }

    /// Waits until `done(messages)` holds; the failure shows internal.log.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        eventually(what, || {
            let m = self.messages();
            if done(&m) {
                Ok(m)
            } else {
                Err(format!(
                    "{} messages so far\n{}",
                    m.len(),
                    self.diagnostics()
                ))
            }
        })
    }

    /// stderr and internal.log tails.
    pub fn diagnostics(&self) -> String {
        self.daemon.diagnostics()
    }
}
