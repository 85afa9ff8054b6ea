//! `shipper receive`, the development receiver: it answers like Splunk HEC (token, gzip,
//! codes) and like a syslog collector (octet counting, LF, UDP), prints the first events,
//! counts the rest, and its memory stays flat however much it receives.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};

use shipper_test_support::eventually::eventually;

use crate::harness::listening;

const TOKEN: &str = "dev-token";

/// `shipper receive …` on port 0; killed and reaped on drop.
struct Receiver {
    child: Child,
    addr: String,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = dir.path().join("receive.stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
        cmd.arg("receive").args(args);
        let started = listening::start(cmd, &stderr, "shipper receive");
        Self {
            child: started.child,
            addr: started.addr,
            stdout: started.stdout,
            stderr,
            _dir: dir,
        }
    }

    /// `host:port`, without a scheme.
    fn host_port(&self) -> &str {
        self.addr
            .split_once("://")
            .map_or(self.addr.as_str(), |(_, a)| a)
    }

    /// `(VmRSS, VmHWM)` in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                .unwrap_or_else(|| panic!("{name} in {status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Stops it with SIGTERM; returns (stdout lines after the first, stderr).
    fn stop(mut self) -> (Vec<String>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "shipper receive exit: {exit}");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("stdout");
        let stderr = std::fs::read_to_string(&self.stderr).expect("stderr");
        (rest.lines().map(str::to_owned).collect(), stderr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on `conn` (keep-alive); returns (status, body).
fn post(conn: &mut TcpStream, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).expect("write headers");
    conn.write_all(body).expect("write body");
    // Read the head, then exactly Content-Length bytes.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("read response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("UTF-8 head");
    let status = head[9..12].parse().expect("status code");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).expect("response body");
    (status, String::from_utf8(body).expect("UTF-8 body"))
}

fn events(from: usize, n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in from..from + n {
        body.extend_from_slice(
            format!(r#"{{"event":{{"seq":{i},"pad":"{}"}}}}"#, "x".repeat(300)).as_bytes(),
        );
        body.push(b'\n');
    }
    body
}

#[test]
fn hec_answers_like_splunk_prints_the_first_events_and_stays_small() {
    let r = Receiver::start(&["hec", "--token", TOKEN, "--print", "3", "--interval", "1"]);
    assert!(r.addr.starts_with("http://127.0.0.1:"), "{}", r.addr);
    let mut conn = TcpStream::connect(r.host_port()).expect("connect");
    let auth = format!("Splunk {TOKEN}");

    let (status, body) = post(
        &mut conn,
        "/services/collector/event",
        &[],
        b"{\"event\":1}",
    );
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"text":"Token is required","code":2}"#)
    );
    let (status, _) = post(
        &mut conn,
        "/services/collector/event",
        &[("Authorization", "Splunk nope")],
        b"{\"event\":1}",
    );
    assert_eq!(status, 403);
    let (status, body) = post(
        &mut conn,
        "/services/collector/event",
        &[("Authorization", &auth)],
        b"{\"event\":1}{\"time\":2}",
    );
    assert_eq!(status, 400);
    assert!(body.contains(r#""invalid-event-number":1"#), "{body}");

    // Plain and gzip bodies; then enough data to see whether memory follows the volume.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&events(0, 10)).unwrap();
    let gz = gz.finish().unwrap();
    let (status, body) = post(
        &mut conn,
        "/services/collector/event",
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        &gz,
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"text":"Success","code":0}"#)
    );
    let batch = events(10, 3000); // ~1 MB per request
    let mut sent = 10;
    let mut after_warmup = 0;
    for round in 0..150 {
        let (status, _) = post(
            &mut conn,
            "/services/collector/event",
            &[("Authorization", &auth)],
            &batch,
        );
        assert_eq!(status, 200);
        sent += 3000;
        if round == 30 {
            after_warmup = r.memory_kib().0;
        }
    }
    let (rss, hwm) = r.memory_kib();
    // ~150 MB received: a receiver that kept events would have grown by that much.
    assert!(
        rss < after_warmup + 16 * 1024 && hwm < 100 * 1024,
        "memory grew with the volume: VmRSS {after_warmup} → {rss} KiB, VmHWM {hwm} KiB"
    );
    let (status, _) = post(
        &mut conn,
        "/services/collector/raw",
        &[("Authorization", &auth)],
        b"line one\nline two\n",
    );
    assert_eq!(status, 200);
    sent += 2;
    drop(conn);

    let (printed, stderr) = r.stop();
    assert_eq!(printed.len(), 3, "--print 3: {printed:?}");
    assert!(printed[0].contains(r#""seq":0"#), "{printed:?}");
    assert!(
        stderr.contains(&format!("{sent} events received in total")),
        "expected {sent} in:\n{stderr}"
    );
}

#[test]
fn syslog_reads_octet_counted_lf_and_udp_messages() {
    let r = Receiver::start(&["syslog", "--print", "all", "--interval", "1"]);
    let mut conn = TcpStream::connect(r.host_port()).expect("connect");
    conn.write_all(b"11 <13>1 - a b11 <13>1 - c d").unwrap();
    drop(conn);
    let mut conn = TcpStream::connect(r.host_port()).expect("connect");
    conn.write_all(b"<13>lf one\n<13>lf two\n").unwrap();
    drop(conn);
    let udp_r = Receiver::start(&[
        "syslog",
        "--transport",
        "udp",
        "--print",
        "all",
        "--interval",
        "1",
    ]);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>datagram", udp_r.host_port()).unwrap();
    for (receiver, n) in [(&r, 4), (&udp_r, 1)] {
        eventually(&format!("{n} syslog messages counted"), || {
            let stderr = std::fs::read_to_string(&receiver.stderr).unwrap_or_default();
            if stderr.contains(&format!("{n} events received (")) {
                Ok(())
            } else {
                Err(stderr)
            }
        });
    }
    let (mut printed, stderr) = r.stop();
    // Two connections, served concurrently: their messages may interleave.
    printed.sort();
    assert_eq!(
        printed,
        ["<13>1 - a b", "<13>1 - c d", "<13>lf one", "<13>lf two"]
    );
    assert!(stderr.contains("4 events received in total"), "{stderr}");
    let (printed, _) = udp_r.stop();
    assert_eq!(printed, ["<13>datagram"]);
}
