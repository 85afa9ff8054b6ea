//! Test harness for shipper's sink, e2e and benchmark code. Not part of the product.
//!
//! Each module is one kind of real server or helper and hands out one guard value whose
//! `Drop` stops what it started:
//! - [`hec_receiver`]: an in-process Splunk HEC receiver that follows Splunk's documented
//!   behaviour (docs/rendering.md §3) and injects faults; a count mode for benchmarks.
//! - [`syslog_receiver`]: an in-process TCP/TLS syslog receiver that counts (benchmarks).
//! - [`event_tally`]: loss/duplicate/latency accounting the benchmark receivers share.
//! - [`rsyslog`] / [`syslog_ng`]: real daemons started from `receivers/*/run.sh` in a temp
//!   state dir; messages read back from `messages.jsonl`.
//! - [`certs`]: a throw-away PKI from `receivers/certs/gen-certs.sh`.
//! - [`ports`]: free-port reservation for daemons that need a port in their config.
//! - [`eventually`]: poll with a deadline (`SHIPPER_TEST_DEADLINE_SECS` raises it).
//! - [`python`]: locate the test venv's python (`SHIPPER_TEST_PYTHON`).
//! - [`tls_front`]: a TLS-terminating front for a plain-HTTP server (the emulator).
//!
//! Missing tools (rsyslog, syslog-ng, the venv) make tests FAIL with the install command,
//! never skip.

pub mod certs;
mod daemon;
pub mod event_tally;
pub mod eventually;
pub mod hec_receiver;
pub mod ports;
pub mod python;
pub mod rsyslog;
pub mod syslog_ng;
pub mod syslog_receiver;
pub mod tls_front;

use std::path::PathBuf;

/// The repository root (this crate lives in `tests/support`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// `tests/support/receivers`: receiver configs, run scripts and the PKI generator.
pub fn receivers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("receivers")
}
