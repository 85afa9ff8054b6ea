//! Fault injection for tests: make chosen requests fail the way real SLS (or the network in
//! front of it) fails, so a client's retry and error paths run against a real server.
//!
//! The handle is [`Faults`], reached through [`EmulatorHandle::faults`](crate::EmulatorHandle::faults).
//! A [`FaultRule`] says which API it hits ([`Api`], optionally one shard), what happens
//! ([`Fault`]) and how often (the next *n* matching requests, each one with a probability, or
//! both). Rules are tried in the order they were added; the first that matches and fires
//! decides the answer. Every injection is logged ([`Faults::injected`]) with the request's
//! shard and cursor, so a test can check what the client did next.
//!
//! ```no_run
//! # async fn demo(emu: &shipper_emulator::EmulatorHandle) {
//! use shipper_emulator::{Api, Fault, FaultRule};
//! // The next two PullLogs answer 500 InternalServerError.
//! emu.faults().fail_next(Api::PullLogs, 2, Fault::InternalServerError);
//! // Every heartbeat has a 30 % chance of a dropped connection until cleared.
//! emu.faults().add(FaultRule::new(Api::Heartbeat, Fault::DropConnection).probability(0.3));
//! // One corrupt PullLogs body on shard 1 (the first pull there that returns data).
//! emu.faults().add(FaultRule::new(Api::PullLogs, Fault::CorruptLz4).shard(1).times(1));
//! emu.faults().clear();
//! # }
//! ```
//!
//! Error faults answer *instead of* the API: the request has no effect (no checkpoint stored,
//! no heartbeat seen, no cursor moved), as when SLS fails before doing the work. Body faults
//! ([`Fault::CorruptLz4`], [`Fault::TruncatedProtobuf`]) let PullLogs run and damage its
//! answer; they only fire on replies that carry data (an empty pull has no body to damage).
//!
//! Cost when unused: one relaxed atomic load per request. The lock, the request
//! classification and the log are only touched while a rule is armed.
//!
//! Deliberately not here: latency (every answer is delayed by `EmulatorConfig::latency`, a
//! server far away), read quotas (`crate::quota`, refused by the rules SLS documents rather
//! than by a test's choice), and faults that happen *after* the API took effect (a lost
//! response to a committed checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Method;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::request::{Reply, Request};

/// The SLS API a [`FaultRule`] targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Api {
    /// Any request.
    Any,
    /// PullLogs (`GET /logstores/{ls}/shards/{id}?type=log`).
    PullLogs,
    /// GetCursor (`?type=cursor`).
    GetCursor,
    /// PutLogs (any of its three paths).
    PutLogs,
    /// ListShards.
    ListShards,
    /// CreateConsumerGroup.
    CreateConsumerGroup,
    /// ListConsumerGroup.
    ListConsumerGroup,
    /// UpdateConsumerGroup.
    UpdateConsumerGroup,
    /// ConsumerGroupHeartBeat.
    Heartbeat,
    /// ConsumerGroupUpdateCheckPoint.
    UpdateCheckpoint,
    /// GetCheckPoint.
    GetCheckpoint,
    /// Everything else (projects, logstores, split/merge, GetCursorTime, deletes).
    Other,
}

impl Api {
    /// Which API `req` calls (mirrors `routes::dispatch`).
    fn of(req: &Request) -> Self {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let m = &req.method;
        match segments.as_slice() {
            ["logstores", _] if *m == Method::POST => Self::PutLogs,
            ["logstores", _, "shards"] if *m == Method::GET => Self::ListShards,
            ["logstores", _, "shards", "lb" | "route"] if *m == Method::POST => Self::PutLogs,
            ["logstores", _, "shards", _] => match (m.clone(), req.param("type")) {
                (Method::GET, Some("log" | "logs")) => Self::PullLogs,
                (Method::GET, Some("cursor")) => Self::GetCursor,
                (Method::POST, _) if req.param("action").is_none() => Self::PutLogs,
                _ => Self::Other,
            },
            ["logstores", _, "consumergroups"] => match *m {
                Method::GET => Self::ListConsumerGroup,
                Method::POST => Self::CreateConsumerGroup,
                _ => Self::Other,
            },
            ["logstores", _, "consumergroups", _] => match (m.clone(), req.param("type")) {
                (Method::POST, Some("heartbeat")) => Self::Heartbeat,
                (Method::POST, Some("checkpoint")) => Self::UpdateCheckpoint,
                (Method::GET, _) => Self::GetCheckpoint,
                (Method::PUT, _) => Self::UpdateConsumerGroup,
                _ => Self::Other,
            },
            _ => Self::Other,
        }
    }

    fn matches(self, api: Self) -> bool {
        self == Self::Any || self == api
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500 InternalServerError` (SLS-shaped JSON error; clients retry it).
    InternalServerError,
    /// `503 ServerBusy`.
    ServerBusy,
    /// `403 ReadQuotaExceed` with SLS's message `Read QPS Exceed` (docs/sls-protocol.md
    /// §11.2 "Error codes", §12 "Limits and quotas": the project or shard read quota).
    ReadQuotaExceed,
    /// Any SLS error, e.g. `ApiError::new(429, "TooManyRequests", "…")`.
    Error(ApiError),
    /// Reads the request, then closes the connection without an answer: the client sees the
    /// connection end mid-request (what a load balancer or a crashed server does).
    DropConnection,
    /// PullLogs replies with data only: the lz4 body is cut to half its length while every
    /// header (`x-log-bodyrawsize`, `x-log-compresstype: lz4`, `x-log-count`, `x-log-cursor`)
    /// stays as it was, so decompression fails. (An uncompressed reply is cut the same way.)
    CorruptLz4,
    /// PullLogs replies with data only: the `LogGroupList` loses its last byte before it is
    /// compressed again, with `x-log-bodyrawsize` matching, so the lz4 layer is fine and the
    /// last LogGroup's length runs past the end of the protobuf.
    TruncatedProtobuf,
}

impl Fault {
    /// Whether the fault damages a successful reply (rather than replacing it).
    fn is_body_fault(&self) -> bool {
        matches!(self, Self::CorruptLz4 | Self::TruncatedProtobuf)
    }

    fn api_error(&self) -> Option<ApiError> {
        Some(match self {
            Self::InternalServerError => {
                ApiError::internal("injected fault: internal server error")
            }
            Self::ServerBusy => ApiError::new(
                503,
                "ServerBusy",
                "The server is busy, please try again later.",
            ),
            Self::ReadQuotaExceed => ApiError::new(403, "ReadQuotaExceed", "Read QPS Exceed"),
            Self::Error(e) => e.clone(),
            Self::DropConnection | Self::CorruptLz4 | Self::TruncatedProtobuf => return None,
        })
    }
}

/// When a rule fires: which requests, how many times, how likely.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    api: Api,
    fault: Fault,
    shard: Option<u32>,
    remaining: Option<u32>,
    probability: f64,
}

impl FaultRule {
    /// `fault` on every request to `api`, until [`Faults::clear`]. Narrow it with
    /// [`times`](Self::times), [`probability`](Self::probability) and [`shard`](Self::shard).
    pub fn new(api: Api, fault: Fault) -> Self {
        Self {
            api,
            fault,
            shard: None,
            remaining: None,
            probability: 1.0,
        }
    }

    /// Fires at most `n` times, then the rule is removed.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fires on each matching request with probability `p` (clamped to 0..=1; a seeded
    /// generator, see [`Faults::seed`]).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// Only requests about this shard (the shard id of the path, GetCheckPoint's `shard`
    /// parameter, or UpdateCheckPoint's body). Requests without a shard never match.
    pub fn shard(mut self, shard: u32) -> Self {
        self.shard = Some(shard);
        self
    }
}

/// One injected fault, as logged by [`Faults::injected`].
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// The API of the request.
    pub api: Api,
    /// Its shard, when it names one.
    pub shard: Option<u32>,
    /// PullLogs' `cursor` parameter, or the checkpoint an UpdateCheckPoint carried.
    pub cursor: Option<String>,
    /// What was done to it.
    pub fault: Fault,
    /// When.
    pub at: Instant,
}

/// The fault-injection switchboard of one emulator. Cheap to clone; every clone controls the
/// same emulator.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Some rule is present: the only thing an unarmed request looks at.
    armed: AtomicBool,
    state: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    rules: Vec<FaultRule>,
    log: Vec<Injected>,
    rng: SplitMix64,
}

/// What [`Faults::before`] decided for a request.
pub(crate) enum Before {
    /// No error fault: run the API (`body_fault` then damages the reply, if any rule fires).
    Proceed(Option<Target>),
    /// Answer this error instead.
    Fail(ApiError),
    /// Close the connection without an answer.
    Drop,
}

/// The request facts rules match on, kept for a body fault after the API ran.
pub(crate) struct Target {
    api: Api,
    shard: Option<u32>,
    cursor: Option<String>,
}

impl Target {
    fn of(req: &Request, api: Api) -> Self {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let from_path = match segments.as_slice() {
            ["logstores", _, "shards", id] => id.parse().ok(),
            _ => None,
        };
        let mut shard = from_path.or_else(|| req.param("shard").and_then(|s| s.parse().ok()));
        let mut cursor = req.param("cursor").map(str::to_owned);
        if api == Api::UpdateCheckpoint {
            #[derive(serde::Deserialize)]
            struct Body {
                shard: Option<u32>,
                checkpoint: Option<String>,
            }
            if let Ok(body) = serde_json::from_slice::<Body>(&req.body) {
                shard = shard.or(body.shard);
                cursor = body.checkpoint;
            }
        }
        Self { api, shard, cursor }
    }
}

impl Faults {
    /// Adds a rule (after the existing ones).
    pub fn add(&self, rule: FaultRule) {
        let mut t = self.table();
        if rule.remaining != Some(0) {
            t.rules.push(rule);
        }
        self.inner
            .armed
            .store(!t.rules.is_empty(), Ordering::Release);
    }

    /// Shorthand: the next `n` requests to `api` get `fault`.
    pub fn fail_next(&self, api: Api, n: u32, fault: Fault) {
        self.add(FaultRule::new(api, fault).times(n));
    }

    /// Shorthand: each request to `api` gets `fault` with probability `p`, until
    /// [`clear`](Self::clear).
    pub fn fail_randomly(&self, api: Api, p: f64, fault: Fault) {
        self.add(FaultRule::new(api, fault).probability(p));
    }

    /// Removes every rule (the log stays).
    pub fn clear(&self) {
        let mut t = self.table();
        t.rules.clear();
        self.inner.armed.store(false, Ordering::Release);
    }

    /// Seeds the generator behind [`FaultRule::probability`] (a fixed seed by default, so a
    /// single-threaded request sequence fails the same way every run).
    pub fn seed(&self, seed: u64) {
        self.table().rng = SplitMix64(seed);
    }

    /// Rules still armed (a `times(n)` rule leaves once it fired `n` times).
    pub fn pending(&self) -> usize {
        self.table().rules.len()
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        self.table().log.clone()
    }

    /// The faults injected so far on `api` ([`Api::Any`]: all).
    pub fn injected_on(&self, api: Api) -> Vec<Injected> {
        let t = self.table();
        t.log
            .iter()
            .filter(|i| api.matches(i.api))
            .cloned()
            .collect()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the table inconsistent (each update
        // is one push/retain), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides, before the API runs, whether `req` fails.
    pub(crate) fn before(&self, req: &Request) -> Before {
        if !self.inner.armed.load(Ordering::Acquire) {
            return Before::Proceed(None);
        }
        let target = Target::of(req, Api::of(req));
        match self.fire(&target, false) {
            None => Before::Proceed(Some(target)),
            Some(fault) => match fault.api_error() {
                Some(e) => Before::Fail(e),
                None => Before::Drop,
            },
        }
    }

    /// Damages a successful PullLogs `reply` if a body-fault rule fires for it.
    pub(crate) fn after(&self, target: Option<Target>, reply: Reply) -> Reply {
        let Some(target) = target.filter(|t| t.api == Api::PullLogs) else {
            return reply;
        };
        if reply.body.is_empty() {
            return reply;
        }
        match self.fire(&target, true) {
            Some(fault) => damage(&fault, reply),
            None => reply,
        }
    }

    /// The fault of the first rule (of the wanted kind) that matches `target` and fires.
    fn fire(&self, target: &Target, body: bool) -> Option<Fault> {
        let mut t = self.table();
        let Table { rules, log, rng } = &mut *t;
        let index = rules.iter().position(|r| {
            r.fault.is_body_fault() == body
                && r.api.matches(target.api)
                && r.shard.is_none_or(|s| target.shard == Some(s))
                && (r.probability >= 1.0 || rng.unit() < r.probability)
        })?;
        let rule = &mut rules[index];
        let fault = rule.fault.clone();
        if let Some(n) = &mut rule.remaining {
            *n -= 1;
            if *n == 0 {
                rules.remove(index);
            }
        }
        self.inner.armed.store(!rules.is_empty(), Ordering::Release);
        log.push(Injected {
            api: target.api,
            shard: target.shard,
            cursor: target.cursor.clone(),
            fault: fault.clone(),
            at: Instant::now(),
        });
        tracing::debug!(api = ?target.api, shard = ?target.shard, ?fault, "fault injected");
        Some(fault)
    }
}

/// Applies a body fault to a PullLogs reply with data.
fn damage(fault: &Fault, mut reply: Reply) -> Reply {
    let lz4 = reply
        .headers
        .iter()
        .any(|(k, v)| *k == "x-log-compresstype" && v == "lz4");
    match fault {
        Fault::CorruptLz4 => {
            // A strict prefix of an lz4 block cannot expand to the announced size: its last
            // literals are missing. So decompression fails every time, not by chance.
            let keep = (reply.body.len() / 2).min(reply.body.len() - 1);
            reply.body = reply.body.slice(..keep);
        }
        Fault::TruncatedProtobuf => {
            let raw = if lz4 {
                let raw_size = reply
                    .headers
                    .iter()
                    .find(|(k, _)| *k == "x-log-bodyrawsize")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                match shipper_sls::codec::decompress(
                    shipper_sls::codec::Compression::Lz4,
                    &reply.body,
                    raw_size,
                    raw_size,
                ) {
                    Ok(raw) => raw,
                    // Our own body: cannot happen; leave the reply alone rather than panic.
                    Err(_) => return reply,
                }
            } else {
                reply.body.to_vec()
            };
            // Every field of a LogGroupList is a length-delimited LogGroup: without its last
            // byte, the last one's length runs past the end.
            let cut = &raw[..raw.len() - 1];
            for (k, v) in &mut reply.headers {
                if *k == "x-log-bodyrawsize" {
                    *v = cut.len().to_string();
                }
            }
            reply.body = if lz4 {
                Bytes::from(shipper_sls::codec::compress_lz4(cut))
            } else {
                Bytes::copy_from_slice(cut)
            };
        }
        _ => {}
    }
    reply
}

/// The SplitMix64 generator: tiny, seedable, good enough to decide "fail this one?".
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl Default for SplitMix64 {
    fn default() -> Self {
        Self(0x5EED_FA17_5EED_FA17)
    }
}

impl SplitMix64 {
    /// A uniform draw in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The service's error when a [`Fault::DropConnection`] fires: hyper closes the connection
/// without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub(crate) struct ConnectionDropped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_enough() {
        let mut rng = SplitMix64::default();
        let n = 10_000;
        let below = (0..n).filter(|_| rng.unit() < 0.3).count();
        assert!((2_700..3_300).contains(&below), "{below}");
    }
}
