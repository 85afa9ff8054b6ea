//! A network namespace whose only way out is a real forward proxy (Debian's `tinyproxy`),
//! for tests that must prove shipper uses the proxy: a bypass has no route.
//!
//! - [`NetNs`]: `ip netns add`, a veth pair with a /30 (host side `10.231.N.1`, namespace
//!   side `.2`), loopback up, and `iptables` rules on the host side that accept only the
//!   proxy port from the namespace and reject the rest. Everything is removed on drop.
//! - [`Tinyproxy`]: `tinyproxy -d` listening on the host side of the veth, allowing the
//!   namespace's address, optionally with `BasicAuth`; killed and reaped on drop.
//! - [`HostsEntries`]: lines added to `/etc/hosts` (names the proxy resolves, as real SLS
//!   endpoints are DNS names) and removed on drop.
//!
//! Traffic only goes to loopback and to the addresses these guards created. Needs root and
//! `ip`, `iptables`, `tinyproxy`; a missing one fails the test with the install command.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shipper_test_support::eventually::deadline;

/// The install command named when a tool is missing.
const INSTALL: &str = "apt-get install -y iproute2 iptables tinyproxy";

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e} (install it: {INSTALL})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Fails the test unless this runs as root with `ip`, `iptables` and `tinyproxy`.
pub fn require_tools() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "network-namespace tests need root (CI runs as root)"
    );
    for (tool, arg) in [("ip", "-V"), ("iptables", "--version"), ("tinyproxy", "-v")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(ok, "{tool} is missing: {INSTALL}");
    }
}

/// A namespace with one veth to the host; see the module docs.
pub struct NetNs {
    name: String,
    host_if: String,
    /// The host side's address (the proxy listens here).
    pub host_addr: String,
    /// The namespace side's address.
    pub ns_addr: String,
    rules: Vec<Vec<String>>,
}

impl NetNs {
    /// Creates the namespace; `allow_port` is the one host port the namespace may reach.
    pub fn create(tag: &str, allow_port: u16) -> Self {
        let pid = std::process::id();
        let n = (pid % 250) + 1;
        let name = format!("shp-{tag}-{pid}");
        let host_if = format!("shH{pid}");
        let ns_if = format!("shN{pid}");
        let mut ns = Self {
            name: name.clone(),
            host_if: host_if.clone(),
            host_addr: format!("10.231.{n}.1"),
            ns_addr: format!("10.231.{n}.2"),
            rules: Vec::new(),
        };
        let setup = || -> Result<(), String> {
            run("ip", &["netns", "add", &name])?;
            run(
                "ip",
                &[
                    "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
                ],
            )?;
            run("ip", &["link", "set", &ns_if, "netns", &name])?;
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/30", ns.host_addr),
                    "dev",
                    &host_if,
                ],
            )?;
            run("ip", &["link", "set", &host_if, "up"])?;
            let in_ns = |args: &[&str]| {
                let mut full = vec!["netns", "exec", &name, "ip"];
                full.extend_from_slice(args);
                run("ip", &full)
            };
            in_ns(&["addr", "add", &format!("{}/30", ns.ns_addr), "dev", &ns_if])?;
            in_ns(&["link", "set", &ns_if, "up"])?;
            in_ns(&["link", "set", "lo", "up"])?;
            Ok(())
        };
        if let Err(e) = setup() {
            drop(ns);
            panic!("cannot build the test network namespace: {e} ({INSTALL})");
        }
        let port = allow_port.to_string();
        for rule in [
            vec![
                "-I", "INPUT", "1", "-i", &host_if, "-p", "tcp", "--dport", &port, "-j", "ACCEPT",
            ],
            vec!["-I", "INPUT", "2", "-i", &host_if, "-j", "REJECT"],
            vec!["-I", "FORWARD", "1", "-i", &host_if, "-j", "REJECT"],
        ] {
            if let Err(e) = run("iptables", &rule) {
                drop(ns);
                panic!("iptables: {e} ({INSTALL})");
            }
            // The same rule with -D (and without the position) removes it.
            let mut delete: Vec<String> = rule.iter().map(|s| (*s).to_owned()).collect();
            delete[0] = "-D".into();
            delete.remove(2);
            ns.rules.push(delete);
        }
        ns
    }

    /// `ip netns exec NAME` as a command prefix.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            let args: Vec<&str> = rule.iter().map(String::as_str).collect();
            let _ = run("iptables", &args);
        }
        let _ = run("ip", &["link", "del", &self.host_if]);
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// `tinyproxy` in the foreground; see the module docs.
pub struct Tinyproxy {
    child: Child,
    log: PathBuf,
}

impl Tinyproxy {
    /// Starts tinyproxy on `listen:port`, allowing `client`, with `auth` as BasicAuth.
    pub fn start(
        dir: &Path,
        listen: &str,
        port: u16,
        client: &str,
        auth: Option<(&str, &str)>,
    ) -> Self {
        let conf = dir.join(format!("tinyproxy-{port}.conf"));
        let log = dir.join(format!("tinyproxy-{port}.log"));
        let mut text = format!(
            "Port {port}\nListen {listen}\nAllow {client}\nTimeout 60\nMaxClients 50\n\
             LogFile \"{}\"\nLogLevel Connect\nPidFile \"{}\"\n",
            log.display(),
            dir.join(format!("tinyproxy-{port}.pid")).display()
        );
        if let Some((user, pass)) = auth {
            text.push_str(&format!("BasicAuth {user} {pass}\n"));
        }
        std::fs::write(&conf, text).expect("tinyproxy config");
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("tinyproxy: {e} ({INSTALL})"));
        let addr: SocketAddr = format!("{listen}:{port}").parse().expect("proxy address");
        let mut proxy = Self { child, log };
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("tinyproxy exited ({status}): {}", proxy.log());
            }
            assert!(
                start.elapsed() < deadline(),
                "tinyproxy did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// Its log (CONNECT lines at `LogLevel Connect`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines in `/etc/hosts`, removed on drop.
pub struct HostsEntries {
    marker: String,
}

impl HostsEntries {
    /// Maps each name to `addr`.
    pub fn add(addr: &str, names: &[&str]) -> Self {
        let marker = format!("# shipper-e2e-{}", std::process::id());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open("/etc/hosts")
            .expect("open /etc/hosts (root needed)");
        writeln!(f, "{addr} {} {marker}", names.join(" ")).expect("write /etc/hosts");
        Self { marker }
    }
}

impl Drop for HostsEntries {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = text
                .lines()
                .filter(|l| !l.ends_with(&self.marker))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}
