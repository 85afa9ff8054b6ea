//! Counters a sink keeps for the app to export (`shipper_sink_*_total`). Plain atomics: bumped
//! per request / per connection event, never per event in a hot loop except the rendered
//! totals. The app reads [`SinkMetrics::snapshot`] and owns the Prometheus registry.
//!
//! A sink with several endpoints (HEC URLs, syslog addresses) also reports each one
//! ([`EndpointStatus`], through [`crate::Sink::endpoints`]): its state, requests in flight
//! and its own counters, for `/health` and the per-endpoint series.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Highest HEC `code` counted individually (docs/rendering.md §3.15 lists 0..=27).
const MAX_HEC_CODE: usize = 27;

/// Failure classes (docs/rendering.md §3.9 retry classes, plus transport failures of syslog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retried with backoff: connect errors, timeouts, 408/429/5xx, codes 8/9/23/26/27.
    Transient,
    /// 413: the request was split.
    TooLarge,
    /// Data errors: the offending events are rejected.
    Data,
    /// Configuration errors: not dropped, retried slowly.
    Config,
}

impl ErrorClass {
    /// Label value for the `class` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Data => "data",
            ErrorClass::Config => "config",
        }
    }
}

/// A sink's counters.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    requests: AtomicU64,
    request_bytes: AtomicU64,
    wire_bytes: AtomicU64,
    events_accepted: AtomicU64,
    events_rejected: AtomicU64,
    retries: AtomicU64,
    errors: [AtomicU64; 4],
    hec_codes: [AtomicU64; MAX_HEC_CODE + 1],
    http_status: Mutex<BTreeMap<u16, u64>>,
    ack_timeouts: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    resent_bytes: AtomicU64,
    truncated: AtomicU64,
    udp_send_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of every counter at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// HTTP requests attempted (HEC; retries included, answered or not) or batches written
    /// (syslog).
    pub requests: u64,
    /// Payload bytes of those requests before compression.
    pub request_bytes: u64,
    /// Bytes of those requests after gzip (syslog: framed bytes written).
    pub wire_bytes: u64,
    /// Events accepted by the receiver (syslog: written).
    pub events_accepted: u64,
    /// Events rejected for good.
    pub events_rejected: u64,
    /// Attempts repeated after a failure.
    pub retries: u64,
    /// Failures by class (see [`ErrorClass`]).
    pub errors_transient: u64,
    /// 413 answers.
    pub errors_too_large: u64,
    /// Data errors.
    pub errors_data: u64,
    /// Configuration errors.
    pub errors_config: u64,
    /// HEC answers by `code` (index = code, 0..=27).
    pub hec_codes: Vec<u64>,
    /// HTTP answers by status.
    pub http_status: BTreeMap<u16, u64>,
    /// Indexer acknowledgements that timed out (the request was resent).
    pub ack_timeouts: u64,
    /// Connections established (syslog TCP/TLS; HEC's pooled connections are opened inside
    /// the HTTP client, out of sight, so this stays 0 for HEC).
    pub connects: u64,
    /// Connection attempts that failed (syslog and HEC).
    pub connect_failures: u64,
    /// Established connections lost (peer closed, reset, write error; syslog only).
    pub disconnects: u64,
    /// Bytes written again after a reconnect (at-least-once resend).
    pub resent_bytes: u64,
    /// Messages truncated to the sink's size limit.
    pub truncated: u64,
    /// UDP datagrams the kernel refused.
    pub udp_send_errors: u64,
    /// The last error message, for status pages and tests.
    pub last_error: Option<String>,
}

/// How one endpoint of a sink is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// Taking requests (HEC) or connected and writing (syslog).
    Healthy,
    /// Failed recently: no new request until its backoff ends (HEC), or reconnecting
    /// (syslog).
    BackingOff,
    /// Failed repeatedly: no request until a health probe (HEC) or a connection (syslog)
    /// succeeds.
    Down,
    /// Answered with a configuration error (bad token, not HEC): retried slowly.
    Misconfigured,
    /// Healthy as far as is known, but not used now (a syslog failover address while an
    /// earlier one works).
    Standby,
}

impl EndpointState {
    /// The name in `/health` and in the `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::BackingOff => "backing_off",
            EndpointState::Down => "down",
            EndpointState::Misconfigured => "misconfigured",
            EndpointState::Standby => "standby",
        }
    }

    /// Every state, for series that list each one.
    pub const ALL: [EndpointState; 5] = [
        EndpointState::Healthy,
        EndpointState::BackingOff,
        EndpointState::Down,
        EndpointState::Misconfigured,
        EndpointState::Standby,
    ];
}

/// One endpoint of a sink at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The HEC base URL or the syslog `host:port`, as configured.
    pub endpoint: String,
    /// Its state.
    pub state: EndpointState,
    /// Requests (HEC) or batches (syslog) on the wire now.
    pub in_flight: u64,
    /// Configured weight (HEC; 1 for syslog).
    pub weight: u32,
    /// Largest uncompressed request body sent to it now (HEC: lowered after a 413).
    pub max_request_bytes: Option<u64>,
    /// Requests it may have in flight now (HEC: `concurrency`, or the adaptive limit).
    pub concurrency_limit: Option<u64>,
    /// Requests sent (HEC, retries included) or batches written (syslog).
    pub requests: u64,
    /// Requests that failed (any class) or connections that failed or were lost.
    pub failures: u64,
    /// Events it accepted (HEC) or that were written to it (syslog).
    pub events: u64,
}

/// Counters of one endpoint (the counting part of [`EndpointStatus`]).
#[derive(Debug, Default)]
pub(crate) struct EndpointCounters {
    requests: AtomicU64,
    failures: AtomicU64,
    events: AtomicU64,
}

impl EndpointCounters {
    pub(crate) fn request(&self) {
        add(&self.requests, 1);
    }
    pub(crate) fn failure(&self) {
        add(&self.failures, 1);
    }
    pub(crate) fn events(&self, n: u64) {
        add(&self.events, n);
    }
    /// (requests, failures, events).
    pub(crate) fn read(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.requests), get(&self.failures), get(&self.events))
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl SinkMetrics {
    /// A request (or syslog batch) of `bytes` payload bytes, `wire` on the wire.
    pub(crate) fn request(&self, bytes: u64, wire: u64) {
        add(&self.requests, 1);
        add(&self.request_bytes, bytes);
        add(&self.wire_bytes, wire);
    }
    pub(crate) fn accepted(&self, n: u64) {
        add(&self.events_accepted, n);
    }
    pub(crate) fn rejected(&self, n: u64) {
        add(&self.events_rejected, n);
    }
    pub(crate) fn retry(&self) {
        add(&self.retries, 1);
    }
    pub(crate) fn error(&self, class: ErrorClass, message: &str) {
        add(&self.errors[class as usize], 1);
        *self.last_error.lock().expect("metrics lock poisoned") = Some(message.to_owned());
    }
    pub(crate) fn hec_answer(&self, status: u16, code: Option<i64>) {
        *self
            .http_status
            .lock()
            .expect("metrics lock poisoned")
            .entry(status)
            .or_default() += 1;
        if let Some(code) = code.and_then(|c| usize::try_from(c).ok())
            && code <= MAX_HEC_CODE
        {
            add(&self.hec_codes[code], 1);
        }
    }
    pub(crate) fn ack_timeout(&self) {
        add(&self.ack_timeouts, 1);
    }
    pub(crate) fn connect(&self) {
        add(&self.connects, 1);
    }
    pub(crate) fn connect_failure(&self, message: &str) {
        add(&self.connect_failures, 1);
        *self.last_error.lock().expect("metrics lock poisoned") = Some(message.to_owned());
    }
    pub(crate) fn disconnect(&self) {
        add(&self.disconnects, 1);
    }
    pub(crate) fn resent(&self, bytes: u64) {
        add(&self.resent_bytes, bytes);
    }
    pub(crate) fn truncated(&self) {
        add(&self.truncated, 1);
    }
    pub(crate) fn udp_send_error(&self) {
        add(&self.udp_send_errors, 1);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            requests: get(&self.requests),
            request_bytes: get(&self.request_bytes),
            wire_bytes: get(&self.wire_bytes),
            events_accepted: get(&self.events_accepted),
            events_rejected: get(&self.events_rejected),
            retries: get(&self.retries),
            errors_transient: get(&self.errors[ErrorClass::Transient as usize]),
            errors_too_large: get(&self.errors[ErrorClass::TooLarge as usize]),
            errors_data: get(&self.errors[ErrorClass::Data as usize]),
            errors_config: get(&self.errors[ErrorClass::Config as usize]),
            hec_codes: self.hec_codes.iter().map(get).collect(),
            http_status: self
                .http_status
                .lock()
                .expect("metrics lock poisoned")
                .clone(),
            ack_timeouts: get(&self.ack_timeouts),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            disconnects: get(&self.disconnects),
            resent_bytes: get(&self.resent_bytes),
            truncated: get(&self.truncated),
            udp_send_errors: get(&self.udp_send_errors),
            last_error: self
                .last_error
                .lock()
                .expect("metrics lock poisoned")
                .clone(),
        }
    }
}
