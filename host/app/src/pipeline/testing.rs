//! In-process fakes for the pipeline's unit tests: logs with a behaviour written into them,
//! a plugin that acts on it ([`FakePlugin`]), a sink that keeps what it receives
//! ([`MemorySink`]) and a checkpoint store that records commits ([`RecordedCheckpoints`]).
//! No network, no wasm.
//!
//! A test log carries `seq` (its number) and `kind`: `ok` (formatted as an HEC text event
//! `<seq>`), `poison` (the plugin traps on any call that contains it), `refuse` (the plugin
//! returns a record error for it), `drop` (the plugin makes no event of it), `sink-reject`
//! (formatted as `reject:<seq>`, which the memory sink refuses), or `route:<sink>`
//! (formatted as `<seq>`, routed to that sink); and optionally a `pad` field that only makes
//! the log larger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use shipper_runtime::{
    BatchInfo, Emit, ErrorKind, HecBody, HecEvent, Payload, PluginError, RecordError, RecordResult,
    TrapKind,
};
use shipper_sinks::{BatchConfig, Delivery, EventBatch, Rejection, RenderError, Sink, SinkMetrics};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::{Content, LogGroup, LogGroupView, encode_group};
use tokio::time::Instant;

use super::format::{FormatInstance, Formatter, LogOutcome};
use crate::checkpoint::{CheckpointStore, CommitError};
use crate::generation::{Breaker, Generation, PluginSlot};
use crate::metrics::{Metrics, ShardLabels, SinkView};

/// A test log: its number and what the fakes do with it.
#[derive(Debug, Clone)]
pub struct Log {
    seq: usize,
    kind: String,
    /// Bytes of an extra `pad` field, which the plugin ignores (a large log).
    pad: usize,
}

impl Log {
    fn new(seq: usize, kind: impl Into<String>) -> Self {
        Self {
            seq,
            kind: kind.into(),
            pad: 0,
        }
    }
    /// Formatted and delivered.
    pub fn ok(seq: usize) -> Self {
        Self::new(seq, "ok")
    }
    /// The plugin traps on it.
    pub fn poison(seq: usize) -> Self {
        Self::new(seq, "poison")
    }
    /// The plugin refuses it with a record error.
    pub fn refused(seq: usize) -> Self {
        Self::new(seq, "refuse")
    }
    /// The sink refuses its event.
    pub fn sink_rejected(seq: usize) -> Self {
        Self::new(seq, "sink-reject")
    }
    /// The plugin drops it on purpose (no event).
    pub fn dropped(seq: usize) -> Self {
        Self::new(seq, "drop")
    }
    /// Formatted and delivered like [`ok`](Self::ok), its encoding `pad` bytes larger: the
    /// event stays small, the log is large.
    pub fn padded(seq: usize, pad: usize) -> Self {
        Self {
            pad,
            ..Self::ok(seq)
        }
    }
    /// Formatted and routed to sink `to` only.
    pub fn routed(seq: usize, to: &'static str) -> Self {
        Self::new(seq, format!("route:{to}"))
    }
}

/// The LogGroup of `logs` (topic `test-topic`; log `i` at time 1 700 000 000 + seq).
pub fn group(logs: &[Log]) -> LogGroup {
    LogGroup {
        logs: logs
            .iter()
            .map(|l| shipper_sls::proto::Log {
                time: 1_700_000_000 + l.seq as u32,
                contents: vec![
                    Content {
                        key: "seq".into(),
                        value: l.seq.to_string().into_bytes(),
                    },
                    Content {
                        key: "kind".into(),
                        value: l.kind.as_bytes().to_vec(),
                    },
                ]
                .into_iter()
                .chain((l.pad > 0).then(|| Content {
                    key: "pad".into(),
                    value: vec![b'x'; l.pad],
                }))
                .collect(),
                time_ns: None,
            })
            .collect(),
        topic: Some("test-topic".into()),
        ..Default::default()
    }
}

/// `logs` as one encoded LogGroup, as a pulled batch holds it.
pub fn view(logs: &[Log]) -> LogGroupView {
    LogGroupView::parse(encode_group(&group(logs)).into()).expect("a valid LogGroup")
}

/// The batch info the tests pass.
pub fn info() -> BatchInfo {
    BatchInfo::sample()
}

/// Labels of shard `shard` of logstore `p/ls`.
pub fn labels(shard: u32) -> ShardLabels {
    ShardLabels {
        logstore: "p/ls".into(),
        shard,
    }
}

/// What an outcome was, in a word: `ok:<text>`, `json:<body>`, `dropped`, `failed`, `trap`,
/// `host`.
pub fn describe(outcome: &LogOutcome) -> String {
    match outcome {
        LogOutcome::Emits(emits) => match emits.first().map(|e| &e.payload) {
            None => "dropped".into(),
            Some(Payload::Hec(HecEvent {
                body: HecBody::Text(t),
                ..
            })) => format!("ok:{t}"),
            Some(Payload::Hec(HecEvent {
                body: HecBody::Json(j),
                ..
            })) => format!("json:{j}"),
            Some(other) => format!("other:{other:?}"),
        },
        LogOutcome::Failed(_) => "failed".into(),
        LogOutcome::Trapped { .. } => "trap".into(),
        LogOutcome::Host(_) => "host".into(),
    }
}

/// A plugin that acts on each log's `kind` (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FakePlugin {
    /// Instances made so far.
    pub instances: Arc<AtomicUsize>,
    /// Fail every call with a batch-level error (the plugin's own `err`).
    pub fail_batches: bool,
    /// The memory high-water mark every instance reports, bytes.
    pub memory: Arc<AtomicUsize>,
    /// Instances alive now, and the most alive at once.
    pub live: Arc<(AtomicUsize, AtomicUsize)>,
}

impl Formatter for FakePlugin {
    fn instantiate<'a>(
        &'a self,
        _config_json: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn FormatInstance>, PluginError>> {
        self.instances.fetch_add(1, Ordering::SeqCst);
        let now = self.live.0.fetch_add(1, Ordering::SeqCst) + 1;
        self.live.1.fetch_max(now, Ordering::SeqCst);
        let instance = FakeInstance {
            fail_batches: self.fail_batches,
            calls: 0,
            memory: self.memory.clone(),
            live: self.live.clone(),
        };
        futures::future::ready(Ok(Box::new(instance) as Box<dyn FormatInstance>)).boxed()
    }

    fn hash(&self) -> &str {
        "fakefakefakefake"
    }

    fn max_memory_bytes(&self) -> usize {
        64 << 20
    }
}

struct FakeInstance {
    fail_batches: bool,
    calls: u64,
    memory: Arc<AtomicUsize>,
    live: Arc<(AtomicUsize, AtomicUsize)>,
}

impl Drop for FakeInstance {
    fn drop(&mut self) {
        self.live.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FormatInstance for FakeInstance {
    fn process<'a>(
        &'a mut self,
        _info: &'a BatchInfo,
        group: &'a [u8],
        logs: usize,
    ) -> BoxFuture<'a, Result<Vec<RecordResult>, PluginError>> {
        self.calls += 1;
        let result = (|| {
            let group = LogGroupView::parse(bytes::Bytes::copy_from_slice(group))
                .ok()
                .and_then(|v| v.decode().ok())
                .expect("the host passes a valid LogGroup");
            assert_eq!(group.logs.len(), logs, "log count passed with the bytes");
            if self.fail_batches {
                return Err(PluginError::Guest {
                    plugin: "fake".into(),
                    message: "configured to fail".into(),
                });
            }
            let field = |log: &shipper_sls::proto::Log, key: &str| {
                log.contents
                    .iter()
                    .find(|c| c.key == key)
                    .map(|c| String::from_utf8_lossy(&c.value).into_owned())
                    .unwrap_or_default()
            };
            if group.logs.iter().any(|l| field(l, "kind") == "poison") {
                return Err(PluginError::Trap {
                    kind: TrapKind::Panic,
                    message: "fake plugin panicked on a poison log".into(),
                });
            }
            Ok(group
                .logs
                .iter()
                .map(|l| {
                    let seq = field(l, "seq");
                    match field(l, "kind").as_str() {
                        "refuse" => Err(RecordError {
                            kind: ErrorKind::InvalidInput,
                            message: format!("log {seq} refused"),
                        }),
                        "sink-reject" => Ok(vec![hec_text(format!("reject:{seq}"))]),
                        "drop" => Ok(Vec::new()),
                        kind => {
                            let mut emit = hec_text(seq);
                            emit.route = kind.strip_prefix("route:").map(str::to_owned);
                            Ok(vec![emit])
                        }
                    }
                })
                .collect())
        })();
        // Yields once, as a wasm call does at an epoch tick, so calls of several shards
        // overlap.
        async move {
            tokio::task::yield_now().await;
            result
        }
        .boxed()
    }

    fn calls(&self) -> u64 {
        self.calls
    }

    fn memory_high_water(&self) -> usize {
        self.memory.load(Ordering::SeqCst)
    }
}

fn hec_text(text: String) -> Emit {
    Emit {
        route: None,
        payload: Payload::Hec(HecEvent {
            body: HecBody::Text(text),
            time: None,
            host: None,
            source: None,
            sourcetype: None,
            index: None,
            fields: Vec::new(),
        }),
    }
}

/// A generation of `plugin` whose breaker trips at `threshold` traps a minute.
pub fn generation(plugin: FakePlugin, threshold: usize) -> Generation {
    Generation {
        plugin: Arc::new(plugin),
        instances: crate::instances::InstancePool::default(),
        config_json: "{}".into(),
        name: "fake".into(),
        version: "1".into(),
        path: "fake.wasm".into(),
        breaker: Breaker::new(threshold, Duration::from_secs(60)),
        published: Instant::now(),
        previous: None,
    }
}

/// A slot holding a generation of `plugin`.
pub fn slot(plugin: FakePlugin, threshold: usize) -> Arc<PluginSlot> {
    PluginSlot::new(generation(plugin, threshold))
}

/// A metrics registry with a memory sink and a fake plugin.
pub fn metrics() -> Arc<Metrics> {
    Metrics::new(
        vec![SinkView {
            name: "default".into(),
            sink: Arc::new(MemorySink::new(10)),
        }],
        vec![slot(FakePlugin::default(), 100)],
        Vec::new(),
    )
}

/// A sink that keeps the text of every event it accepts (with ` key=value` for each HEC
/// field), refuses events that start with `reject:`, and can be held (every send waits
/// until released).
#[derive(Clone)]
pub struct MemorySink {
    /// Accepted events, in the order the sink accepted them.
    pub accepted: Arc<Mutex<Vec<String>>>,
    /// Sends so far.
    pub sends: Arc<AtomicUsize>,
    /// Sends settled so far.
    pub settled: Arc<AtomicUsize>,
    /// While `true`, sends wait.
    pub hold: tokio::sync::watch::Sender<bool>,
    /// How long send number `n` (from 0) takes once it may go.
    pub delay: Arc<dyn Fn(usize) -> Duration + Send + Sync>,
    batch: BatchConfig,
    metrics: Arc<SinkMetrics>,
}

impl MemorySink {
    /// A sink whose batches are cut at `max_events` events.
    pub fn new(max_events: usize) -> Self {
        Self {
            accepted: Arc::default(),
            sends: Arc::default(),
            settled: Arc::default(),
            hold: tokio::sync::watch::Sender::new(false),
            delay: Arc::new(|_| Duration::ZERO),
            batch: BatchConfig {
                max_bytes: usize::MAX,
                max_events,
                linger: Duration::from_millis(20),
            },
            metrics: Arc::default(),
        }
    }

    /// The same sink with batches cut at `max_bytes` rendered bytes too (no limit by
    /// default).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.batch.max_bytes = max_bytes;
        self
    }

    /// The same sink with batches that linger `linger` (20 ms by default).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.batch.linger = linger;
        self
    }

    /// The accepted events as numbers (the text before any field).
    pub fn accepted_seqs(&self) -> Vec<usize> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.split(' ').next().unwrap().parse().expect("a seq"))
            .collect()
    }

    /// Sends that have not settled yet (held or delayed).
    pub fn pending(&self) -> usize {
        self.sends.load(Ordering::SeqCst) - self.settled.load(Ordering::SeqCst)
    }
}

impl Sink for MemorySink {
    fn render(
        &self,
        payload: &shipper_sinks::Payload,
        out: &mut EventBatch,
    ) -> Result<(), RenderError> {
        match payload {
            shipper_sinks::Payload::Hec(e) => {
                let mut text = match &e.body {
                    shipper_sinks::HecBody::Text(t) | shipper_sinks::HecBody::Json(t) => t.clone(),
                };
                for f in &e.fields {
                    text.push_str(&format!(" {}={}", f.key, f.value));
                }
                out.push(text.as_bytes());
                Ok(())
            }
            _ => Err(RenderError::WrongPayload {
                payload: "non-HEC",
                sink: "memory",
            }),
        }
    }

    fn send(&self, batch: EventBatch) -> shipper_sinks::BoxFuture<'static, Delivery> {
        let n = self.sends.fetch_add(1, Ordering::SeqCst);
        let accepted = self.accepted.clone();
        let settled = self.settled.clone();
        let mut hold = self.hold.subscribe();
        let delay = (self.delay)(n);
        Box::pin(async move {
            let _ = hold.wait_for(|held| !held).await;
            tokio::time::sleep(delay).await;
            let mut rejected = Vec::new();
            let mut kept = accepted.lock().unwrap();
            for (index, event) in batch.iter().enumerate() {
                let text = String::from_utf8_lossy(event).into_owned();
                if text.starts_with("reject:") {
                    rejected.push(Rejection {
                        index,
                        reason: format!("memory sink refuses {text}"),
                    });
                } else {
                    kept.push(text);
                }
            }
            drop(kept);
            settled.fetch_add(1, Ordering::SeqCst);
            Delivery {
                rejected,
                cancelled: false,
                batch,
            }
        })
    }

    fn batch_config(&self) -> BatchConfig {
        self.batch
    }

    fn metrics(&self) -> Arc<SinkMetrics> {
        self.metrics.clone()
    }
}

/// A hook called at every commit, before it is recorded (to look at the world as the
/// checkpoint moves).
pub type CommitHook = Box<dyn Fn(Cursor) + Send + Sync>;

/// A checkpoint store that records every commit.
#[derive(Default)]
pub struct RecordedCheckpoints {
    /// Committed cursors, in order.
    pub commits: Mutex<Vec<Cursor>>,
    /// Called at each commit.
    pub hook: Option<CommitHook>,
}

impl RecordedCheckpoints {
    /// The last committed cursor.
    pub fn last(&self) -> Option<Cursor> {
        self.commits.lock().unwrap().last().copied()
    }
}

impl CheckpointStore for RecordedCheckpoints {
    fn commit(&self, _shard: u32, cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>> {
        if let Some(hook) = &self.hook {
            hook(cursor);
        }
        self.commits.lock().unwrap().push(cursor);
        futures::future::ready(Ok(())).boxed()
    }
}
