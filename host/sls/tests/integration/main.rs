//! `shipper-sls` against the in-process emulator (`shipper-emulator`) over real HTTP on
//! `127.0.0.1:0`: the kinds of scenarios the SDK conformance suite runs
//! (docs/sls-protocol.md §13.5), with shipper's own client and consumer, plus a group shared
//! with the official Python SDK's `ConsumerWorker`.
//!
//! One test binary (linked once); each module is one area:

/// Emulator start-up, clients, test data, `eventually`, the Python locator.
mod harness;

/// A TCP proxy a test can cut off (network partition).
mod proxy;

/// Setup, PutLogs/PullLogs/GetCursor round trips, SPL, consumer-group calls, errors.
mod api;

/// The consumer-group worker: exactly-once with one consumer, split and failover with two,
/// graceful hand-off, read-only shards, cursor reset, expiry and lost heartbeats.
mod consumer;

/// Server faults injected by the emulator: retried pulls, heartbeats and checkpoints; corrupt
/// bodies that stop a reader without skipping anything; `ConsumerStats` counting all of it.
mod faults;

/// One Python SDK `ConsumerWorker` and one Rust consumer in the same group.
mod mixed;

/// Temporary credentials from the emulator's STS, metadata and URI endpoints; the 401
/// refresh-and-retry; v4 signing end to end; the clock-skew report.
mod credentials;

/// A shard far from SLS and at its read quota: the reader pulls ahead of its caller up to
/// its prefetch bytes, and rides out `403 ReadQuotaExceed` with its own short backoff.
mod distance;
