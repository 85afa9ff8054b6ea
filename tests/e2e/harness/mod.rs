//! Guards for the real processes e2e tests start; each module hands out one guard value whose
//! `Drop` kills and reaps what it started, so a failing test leaves no process behind.
//! - [`emulator`]: `shipper emulator` on 127.0.0.1:0, address read from its first stdout line.
//! - [`listening`]: starting any command that announces `listening on ADDR` first.
//! - [`shipper`]: `shipper run` with a config file in the test's directory ([`shipper::RunConfig`]),
//!   signals, exit with a deadline, its JSON log lines and `/metrics`.
//! - [`sls`]: an in-process emulator + SLS client per test: loading data, reading the
//!   consumer group's checkpoints and the shards' ends.
//! - [`netns`]: a network namespace whose only way out is a real `tinyproxy`.
//! - [`dataset`]: deterministic logs with a unique `seq`, the output each plugin must make
//!   of them, and per-seq delivery tallies.

pub mod dataset;
pub mod emulator;
pub mod listening;
pub mod netns;
pub mod shipper;
pub mod sls;
