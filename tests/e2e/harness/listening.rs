//! Starting a `shipper` command that announces its address as its first stdout line
//! (`listening on ADDR`), as `shipper emulator` and `shipper receive` do.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;

use shipper_test_support::eventually::deadline;

/// A started process, its announced address and its stdout (kept open: closing it early
/// would turn a later write into SIGPIPE).
pub struct Listening {
    /// The process (the caller's guard kills and reaps it).
    pub child: Child,
    /// What followed `listening on `.
    pub addr: String,
    /// The rest of stdout.
    pub stdout: BufReader<ChildStdout>,
}

/// Spawns `cmd` (stderr to `stderr_path`) and waits up to the test deadline for its
/// `listening on` line; panics with the process's stderr when it does not come.
pub fn start(mut cmd: Command, stderr_path: &Path, what: &str) -> Listening {
    let stderr = std::fs::File::create(stderr_path).expect("stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let result = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send((result, reader));
    });
    let fail = |child: &mut Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what} did not start: {why}\n--- {what} stderr ---\n{}",
            std::fs::read_to_string(stderr_path).unwrap_or_default()
        );
    };
    let (line, stdout) = match rx.recv_timeout(deadline()) {
        Ok((Ok(line), reader)) => (line, reader),
        Ok((Err(e), _)) => fail(&mut child, format!("reading stdout: {e}")),
        Err(_) => fail(
            &mut child,
            format!("no `listening on` line within {:?}", deadline()),
        ),
    };
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        fail(&mut child, format!("first stdout line was {line:?}"))
    };
    Listening {
        addr: addr.to_owned(),
        child,
        stdout,
    }
}
