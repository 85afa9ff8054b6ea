//! The rig: the pre-pulled data, the configuration generation with the counting sink, and
//! the read stream each shard consumes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use shipper::checkpoint::{CheckpointStore, CommitError};
use shipper::metrics::Metrics;
use shipper::pipeline::{SinkContext, Topology};
use shipper::settings::{self, Overrides, Settings};
use shipper_emulator::{Generator, SampleKind};
use shipper_runtime::PluginEngine;
use shipper_sinks::hec::HecSink;
use shipper_sinks::{BatchConfig, Delivery, EventBatch, Payload, RenderError, Sink, SinkSettings};
use shipper_sls::consumer::{BudgetShare, PulledBatch, ReadEvent};
use shipper_sls::{Cursor, SlsError};
use tokio_util::sync::CancellationToken;

/// Raw bytes per pulled batch: what the reader asks SLS for (docs/sls-protocol.md §9.4).
const PULL_BYTES: usize = 4 << 20;
/// Logs per generated LogGroup, as the end-to-end benchmark generates them.
const LOGS_PER_GROUP: usize = 200;
/// The data's log time (2025-11-24T16:00:00Z), also each batch's receive time.
const LOG_TIME: u32 = 1_764_000_000;
/// One pre-pulled batch: LogGroups split out of one LogGroupList body.
pub(crate) struct Pulled {
    groups: Vec<shipper_sls::proto::LogGroupView>,
    raw_size: usize,
    log_count: usize,
}

/// `bytes` raw bytes of mixed sample data for one shard, as pulled batches.
pub(crate) fn shard_data(shard: usize, bytes: usize) -> Vec<Pulled> {
    let mut generator = Generator::new(SampleKind::Mixed, 0x5eed ^ (shard as u64 + 1) << 32);
    let mut batches = Vec::new();
    let mut total = 0;
    while total < bytes {
        // A LogGroupList body: field 1 (LogGroup) repeated, as PullLogs answers.
        let mut body = Vec::with_capacity(PULL_BYTES + (1 << 20));
        while body.len() < PULL_BYTES {
            let group = generator.group(LOGS_PER_GROUP, LOG_TIME);
            body.push(0x0a);
            let mut len = group.len() as u64;
            while len >= 0x80 {
                body.push((len as u8) | 0x80);
                len >>= 7;
            }
            body.push(len as u8);
            body.extend_from_slice(&group);
        }
        let raw_size = body.len();
        let groups = shipper_sls::proto::split_log_groups(&Bytes::from(body))
            .expect("the generator writes valid LogGroups");
        let log_count = groups.iter().map(|g| g.log_count).sum();
        total += raw_size;
        batches.push(Pulled {
            groups,
            raw_size,
            log_count,
        });
    }
    batches
}

/// An endless read stream over `data`, from cursor `start`: each batch is reserved in the
/// shard's budget share first, as the reader reserves each pull. Counts the logs it hands
/// out in `pulled`.
pub(crate) fn reads(
    shard: u32,
    data: Arc<Vec<Pulled>>,
    start: i64,
    memory: Arc<BudgetShare>,
    pulled: Arc<AtomicU64>,
) -> BoxStream<'static, Result<ReadEvent, SlsError>> {
    futures::stream::unfold(start, move |cursor| {
        let (data, memory, pulled) = (data.clone(), memory.clone(), pulled.clone());
        async move {
            let b = &data[(cursor - start) as usize % data.len()];
            let charge = memory.reserve(b.raw_size).await;
            pulled.fetch_add(b.log_count as u64, Ordering::Relaxed);
            let batch = PulledBatch {
                shard,
                cursor: Cursor(cursor),
                next_cursor: Cursor(cursor + 1),
                groups: b.groups.clone(),
                raw_size: b.raw_size,
                log_count: b.log_count,
                end_of_shard: false,
                cursor_time: Some(i64::from(LOG_TIME)),
                memory: Some(Arc::new(charge)),
            };
            Some((Ok(ReadEvent::Batch(batch)), cursor + 1))
        }
    })
    .boxed()
}

/// The HEC sink without its network: renders with the real sink, encodes each send's
/// request bodies with it in a spawned task (the HEC sink runs each request as a task),
/// counts the events and accepts them all.
struct CountingSink {
    hec: Arc<HecSink>,
    events: Arc<AtomicU64>,
    body_bytes: Arc<AtomicU64>,
}

impl Sink for CountingSink {
    fn render(&self, payload: &Payload, out: &mut EventBatch) -> Result<(), RenderError> {
        self.hec.render(payload, out)
    }

    fn send(&self, batch: EventBatch) -> shipper_sinks::BoxFuture<'static, Delivery> {
        let (hec, events, body_bytes) = (
            self.hec.clone(),
            self.events.clone(),
            self.body_bytes.clone(),
        );
        Box::pin(async move {
            let batch = Arc::new(batch);
            let encoded = tokio::spawn({
                let batch = batch.clone();
                async move {
                    let bodies = hec.encode_requests(&batch);
                    bodies.iter().map(Bytes::len).sum::<usize>()
                }
            })
            .await
            .expect("the encoding task");
            body_bytes.fetch_add(encoded as u64, Ordering::Relaxed);
            events.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Delivery {
                rejected: Vec::new(),
                cancelled: false,
                batch: Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone()),
            }
        })
    }

    fn batch_config(&self) -> BatchConfig {
        self.hec.batch_config()
    }

    fn metrics(&self) -> Arc<shipper_sinks::SinkMetrics> {
        self.hec.metrics()
    }
}

/// Checkpoints accepted at once.
pub(crate) struct Accepted;

impl CheckpointStore for Accepted {
    fn commit(&self, _shard: u32, _cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>> {
        futures::future::ready(Ok(())).boxed()
    }
}

/// What every run shares: the configuration generation (with the counting sink), metrics,
/// ledger, data.
pub(crate) struct Rig {
    /// The parsed configuration (source, sink, plugin, ledger, budget size).
    pub(crate) settings: Settings,
    /// Generation 1 as `topology::build` made it, its sink replaced by the counting one.
    pub(crate) topology: Arc<Topology>,
    /// The registry every shard updates.
    pub(crate) metrics: Arc<Metrics>,
    /// The completeness ledger (on by default, as in `shipper run`).
    pub(crate) ledger: Option<shipper::ledger::Ledger>,
    /// Events the counting sink accepted so far.
    pub(crate) events: Arc<AtomicU64>,
    /// Request body bytes it encoded so far (gzip).
    pub(crate) body_bytes: Arc<AtomicU64>,
    /// Each shard's pre-pulled batches.
    pub(crate) data: Vec<Arc<Vec<Pulled>>>,
    _dir: tempfile::TempDir,
    /// Holds the sinks' background tasks; never driven while runs are timed.
    _setup: tokio::runtime::Runtime,
    _engine: PluginEngine,
    _stop: CancellationToken,
}

fn toml_str(s: &std::path::Path) -> String {
    serde_json::to_string(&s.display().to_string()).expect("a string")
}

impl Rig {
    pub(crate) fn new(data: Vec<Arc<Vec<Pulled>>>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = format!(
            "[source]\nendpoint = \"http://127.0.0.1:9\"\nproject = \"bench\"\n\
             logstore = \"threads\"\nconsumer_group = \"bench\"\naccess_key_id = \"id\"\n\
             access_key_secret = \"secret\"\n\n[plugin]\npath = {}\n\n\
             [sink]\ntype = \"hec\"\nendpoint = \"http://127.0.0.1:9\"\ntoken = \"bench\"\n\
             gzip = true\ngzip_level = 1\n\n[dead_letter]\npath = {}\n\n[ledger]\npath = {}\n",
            toml_str(std::path::Path::new(
                shipper_test_artifacts::PLUGIN_SPLUNK_HEC
            )),
            toml_str(&dir.path().join("dead-letter.jsonl")),
            toml_str(&dir.path().join("ledger.jsonl")),
        );
        let file = settings::parse_file(&dir.path().join("shipper.toml"), &config)?;
        let settings = settings::load(file, &|_| None, Overrides::default())?;
        let setup = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let engine = PluginEngine::new()?;
        let metrics = Metrics::new(Vec::new(), Vec::new(), Vec::new());
        let stop = CancellationToken::new();
        let (built, hec) = setup.block_on(async {
            let built =
                shipper::topology::build(&settings, &engine, &metrics, &stop, 1, &[]).await?;
            let SinkSettings::Hec(hec) = &settings.sinks[0].settings else {
                anyhow::bail!("the configuration has an HEC sink");
            };
            let hec = HecSink::build("default", hec.clone(), stop.clone()).await?;
            anyhow::Ok((built, Arc::new(hec)))
        })?;
        metrics.config_published(1, built.sink_views(), built.slots());
        let events = Arc::new(AtomicU64::new(0));
        let body_bytes = Arc::new(AtomicU64::new(0));
        let counting: Arc<dyn Sink> = Arc::new(CountingSink {
            hec,
            events: events.clone(),
            body_bytes: body_bytes.clone(),
        });
        let topology = Arc::new(Topology {
            sinks: built
                .topology
                .sinks
                .iter()
                .map(|s| SinkContext {
                    sink: counting.clone(),
                    ..s.clone()
                })
                .collect(),
            ..(*built.topology).clone()
        });
        let ledger = match &settings.ledger {
            Some(s) => Some(shipper::ledger::Ledger::open(s, None)?),
            None => None,
        };
        Ok(Self {
            settings,
            topology,
            metrics,
            ledger,
            events,
            body_bytes,
            data,
            _dir: dir,
            _setup: setup,
            _engine: engine,
            _stop: stop,
        })
    }

    /// Raw bytes per log of the data.
    pub(crate) fn raw_bytes_per_log(&self) -> f64 {
        let (bytes, logs) = self
            .data
            .iter()
            .flat_map(|d| d.iter())
            .fold((0usize, 0usize), |(b, l), p| {
                (b + p.raw_size, l + p.log_count)
            });
        bytes as f64 / logs as f64
    }
}
