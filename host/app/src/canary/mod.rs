//! The canary plugin (`[plugin.canary]`): a new plugin version run in shadow beside the
//! current one on a sample of live batches. Its output is compared event by event with the
//! current plugin's and never sent; the differences go to a report file, the metrics
//! (`shipper_canary_batches_total`, `shipper_canary_events_total{result}`) and a log line
//! per interval (docs/plugins.md "Canary").
//!
//! Off the delivery path: the shard only clones the current plugin's emits of a sampled
//! batch and queues them ([`Canary::submit`], never waiting; a full queue skips the sample).
//! One worker task per canary formats, renders both outputs with the sink's renderer and
//! compares them. A reload builds a new canary with the new configuration generation
//! ([`crate::topology`]); the old worker ends with its generation. Promotion is an ordinary
//! plugin change: point `[plugin] path` (and `config`) at the canary's and reload.
//!
//! - [`diff`]: one rendered event against another.
//! - [`report`]: the counts and first differences, written as JSON.

pub mod diff;
pub mod report;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shipper_runtime::{BatchInfo, Emit};
use shipper_sinks::{EventBatch, Sink};
use shipper_sls::proto::LogGroupView;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::generation::{Generation, PluginSlot};
use crate::metrics::Metrics;
use crate::pipeline::format::FormatInstance;
use crate::settings::plugin::CanarySettings;
use report::{Difference, Report};

/// Sampled batches waiting for the worker at most; more are skipped (counted).
const QUEUE: usize = 8;
/// How often the summary line is logged (when something was compared since).
const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// One sampled batch: logs `range` of a LogGroup and what the current plugin made of them.
pub struct Job {
    /// Shard id (for the report).
    pub shard: u32,
    /// Cursor of the LogGroup.
    pub cursor: i64,
    /// What the plugin is told about the batch.
    pub info: BatchInfo,
    /// The LogGroup (a cheap clone of the pulled bytes).
    pub view: LogGroupView,
    /// The logs formatted.
    pub range: Range<usize>,
    /// The current plugin's emits per log index (logs it failed on are left out).
    pub current: Vec<(usize, Vec<Emit>)>,
}

/// A running canary: its sample rate and the queue of its worker.
pub struct Canary {
    sample: f64,
    tx: mpsc::Sender<Job>,
    skipped: Arc<AtomicU64>,
    label: String,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("plugin", &self.label)
            .field("sample", &self.sample)
            .finish()
    }
}

impl Canary {
    /// Starts the worker of `canary` (loaded and self-tested), comparing with the plugin in
    /// `current`, rendering with `sink`.
    pub fn start(
        canary: Generation,
        current: Arc<PluginSlot>,
        sink: Arc<dyn Sink>,
        settings: &CanarySettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let skipped = Arc::new(AtomicU64::new(0));
        let label = canary.label();
        let worker = Worker {
            report: Report::new(&label, settings.sample, settings.max_differences),
            canary: Arc::new(canary),
            instance: None,
            current,
            sink,
            path: settings.report.clone(),
            metrics,
            skipped: skipped.clone(),
        };
        tokio::spawn(worker.run(rx));
        Arc::new(Self {
            sample: settings.sample,
            tx,
            skipped,
            label,
        })
    }

    /// True for the share of batches the canary formats too.
    pub fn sampled(&self) -> bool {
        self.sample > 0.0 && rand::random::<f64>() < self.sample
    }

    /// Queues a sampled batch; never waits (a full queue skips it).
    pub fn submit(&self, job: Job) {
        if self.tx.try_send(job).is_err() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Worker {
    canary: Arc<Generation>,
    instance: Option<Box<dyn FormatInstance>>,
    current: Arc<PluginSlot>,
    sink: Arc<dyn Sink>,
    path: PathBuf,
    metrics: Arc<Metrics>,
    report: Report,
    skipped: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut logged = Instant::now();
        let mut logged_batches = 0;
        while let Some(job) = rx.recv().await {
            let (same, different, error) = self.compare(job).await;
            self.metrics.canary_compared(same, different, error);
            self.report.current = self.current.current().label();
            self.report.skipped_batches = self.skipped.load(Ordering::Relaxed);
            if let Err(e) = self.report.write(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write the canary report (config key `plugin.canary.report`)");
            }
            if logged.elapsed() >= LOG_INTERVAL && self.report.batches > logged_batches {
                self.log();
                logged = Instant::now();
                logged_batches = self.report.batches;
            }
        }
        if self.report.batches > logged_batches {
            self.log();
        }
    }

    fn log(&self) {
        let r = &self.report;
        tracing::info!(
            canary = %r.canary,
            current = %r.current,
            batches = r.batches,
            same = r.events.same,
            different = r.events.different,
            errors = r.events.error,
            report = %self.path.display(),
            "canary plugin compared with the current one"
        );
    }

    /// Formats `job` with the canary and compares each event: (same, different, error).
    async fn compare(&mut self, job: Job) -> (u64, u64, u64) {
        let logs = job.range.len();
        let results = match job.view.slice(job.range.clone()) {
            Ok(bytes) => self.process(&job.info, &bytes, logs).await,
            Err(e) => Err(format!("malformed LogGroup: {e}")),
        };
        let results = match results {
            Ok(results) => results,
            Err(message) => {
                let n = job.current.iter().map(|(_, e)| e.len().max(1) as u64).sum();
                self.report.error(message);
                self.report.batches += 1;
                self.report.events.error += n;
                return (0, 0, n);
            }
        };
        let (mut same, mut different, mut error) = (0, 0, 0);
        for (li, current) in job.current {
            let Some(result) = results.get(li - job.range.start) else {
                continue;
            };
            let canary = match result {
                Ok(emits) => emits.clone(),
                Err(e) => {
                    error += current.len().max(1) as u64;
                    self.report.error(format!(
                        "record error on log {li}: {:?}: {}",
                        e.kind, e.message
                    ));
                    continue;
                }
            };
            let (a, b) = (self.render(current), self.render(canary));
            for ei in 0..a.len().max(b.len()) {
                let (x, y) = (a.get(ei), b.get(ei));
                let comparison = match (x, y) {
                    (Some(x), Some(y)) => diff::compare(x, y),
                    _ => diff::Comparison::Json(vec!["(event count)".into()]),
                };
                if comparison == diff::Comparison::Same {
                    same += 1;
                    continue;
                }
                different += 1;
                let text = |e: Option<&Vec<u8>>| {
                    e.map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                };
                self.report.different(
                    Difference {
                        shard: job.shard,
                        cursor: job.cursor,
                        log_index: li,
                        event: ei,
                        fields: match &comparison {
                            diff::Comparison::Json(f) => f.clone(),
                            _ => vec!["(text)".into()],
                        },
                        current: text(x),
                        canary: text(y),
                    },
                    matches!(comparison, diff::Comparison::Text),
                );
            }
        }
        self.report.batches += 1;
        self.report.events.same += same;
        self.report.events.different += different;
        self.report.events.error += error;
        (same, different, error)
    }

    async fn process(
        &mut self,
        info: &BatchInfo,
        bytes: &[u8],
        logs: usize,
    ) -> Result<Vec<shipper_runtime::RecordResult>, String> {
        if self.instance.is_none() {
            let g = &self.canary;
            self.instance = Some(
                g.plugin
                    .instantiate(&g.config_json)
                    .await
                    .map_err(|e| format!("cannot start the canary: {e}"))?,
            );
        }
        let instance = self.instance.as_mut().expect("just set");
        let result = instance.process(info, bytes, logs).await;
        result.map_err(|e| {
            // A trap poisons the instance: the next batch gets a fresh one.
            self.instance = None;
            format!("canary failed the batch: {e}")
        })
    }

    /// Each emit rendered by the sink (an emit it cannot render becomes its error text).
    fn render(&self, emits: Vec<Emit>) -> Vec<Vec<u8>> {
        emits
            .into_iter()
            .map(|emit| {
                let mut batch = EventBatch::new();
                let payload = crate::convert::payload(emit.payload);
                match self.sink.render(&payload, &mut batch) {
                    Ok(()) => batch.event(0).unwrap_or_default().to_vec(),
                    Err(e) => format!("(not renderable: {e})").into_bytes(),
                }
            })
            .collect()
    }
}
