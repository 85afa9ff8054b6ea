//! One measured run of one subject (README.md "Performance"): start it on a fresh consumer
//! group, watch the receiver's tally and the subject's `/proc` entries, stop when every
//! expected event arrived and every shard's checkpoint reached its end cursor (polled with
//! shipper-sls's client: GetCheckPoint vs GetCursor(end)), then SIGTERM it.
//!
//! Figures of a run:
//! - CPU: the subject's utime+stime when the last expected event arrived (start-up
//!   included; `cpu_startup_s` is the part spent before the first event arrived);
//! - wall: first event received → last event received;
//! - peak RSS: VmHWM at that moment;
//! - the bench process's own CPU over the run (emulator + receivers + polling), to check that
//!   the rig is not the bottleneck.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shipper_sls::{Client, CursorPosition};
use shipper_test_support::event_tally::EventTally;

use crate::machine;
use crate::subject::{Launch, Subject};

/// Saturation or latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// A preloaded backlog, as fast as the subject goes.
    Saturation,
    /// Logs generated at a low steady rate; latency = receive time − generation time.
    Trickle,
}

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunResult {
    /// Subject name.
    pub subject: String,
    /// `saturation` or `trickle`.
    pub kind: String,
    /// Logstore read.
    pub logstore: String,
    /// Logs in it.
    pub expected_logs: u64,
    /// Raw bytes in it.
    pub raw_bytes: u64,
    /// Distinct sequence numbers received.
    pub received_unique: u64,
    /// Events received (duplicates included).
    pub received_events: u64,
    /// expected − unique.
    pub lost: u64,
    /// Extra sightings of a sequence number.
    pub duplicated: u64,
    /// Sequence numbers that are not in the data set.
    pub unexpected: u64,
    /// Events/frames fully checked, and how many of them failed.
    pub validated: u64,
    /// Failed full checks.
    pub invalid: u64,
    /// Requests (HEC) / reads (syslog) received.
    pub requests: u64,
    /// Bytes received as sent (gzip for HEC with gzip).
    pub wire_bytes: u64,
    /// Bytes received after decompression.
    pub decoded_bytes: u64,
    /// First → last event received, seconds.
    pub wall_s: f64,
    /// Start of the process → last event, seconds.
    pub wall_from_start_s: f64,
    /// Subject CPU seconds when the last event arrived.
    pub cpu_s: f64,
    /// Subject CPU seconds when the first event arrived.
    pub cpu_startup_s: f64,
    /// Seconds the subject's threads were runnable but waited for a CPU (others' work on
    /// its core; counted until the last event).
    pub cpu_wait_s: f64,
    /// Peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// Bench process (emulator + receivers) CPU seconds over the run.
    pub rig_cpu_s: f64,
    /// Raw MB per subject CPU-second.
    pub raw_mb_per_cpu_s: f64,
    /// Raw MB per wall second.
    pub raw_mb_per_s: f64,
    /// Logs per wall second.
    pub logs_per_s: f64,
    /// Logs per subject CPU-second.
    pub logs_per_cpu_s: f64,
    /// Every shard's checkpoint reached its end cursor.
    pub checkpoints_at_end: bool,
    /// Seconds from the last event to the checkpoints at end.
    pub checkpoint_lag_s: Option<f64>,
    /// Trickle: generation rate, logs/s.
    pub trickle_rate: Option<f64>,
    /// Trickle: latency samples.
    pub latency_samples: u64,
    /// Trickle: p50 latency, ms.
    pub latency_p50_ms: Option<f64>,
    /// Trickle: p99 latency, ms.
    pub latency_p99_ms: Option<f64>,
    /// Trickle: p99.9 latency, ms.
    pub latency_p999_ms: Option<f64>,
    /// Trickle: max latency, ms.
    pub latency_max_ms: Option<f64>,
    /// How the subject ended.
    pub exit: String,
    /// Every expected event arrived.
    pub complete: bool,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The scale-and-distance scenario of the run (`--shards`, `--latency`), if it is one.
    pub scenario: Option<Scenario>,
}

/// One point of the scale-and-distance grid.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Scenario {
    /// Shards of the logstore.
    pub shards: u32,
    /// Latency the emulator adds to every answer, ms.
    pub latency_ms: u64,
}

impl RunResult {
    /// Fills the rate fields from the sizes, CPU and wall times.
    pub fn compute_rates(&mut self) {
        let mb = self.raw_bytes as f64 / 1e6;
        if self.cpu_s > 0.0 {
            self.raw_mb_per_cpu_s = mb / self.cpu_s;
            self.logs_per_cpu_s = self.expected_logs as f64 / self.cpu_s;
        }
        if self.wall_s > 0.0 {
            self.raw_mb_per_s = mb / self.wall_s;
            self.logs_per_s = self.expected_logs as f64 / self.wall_s;
        }
    }
}

/// What a run needs besides the subject.
pub struct RunSpec<'a> {
    /// The subject.
    pub subject: Subject,
    /// Saturation or trickle.
    pub kind: RunKind,
    /// Logstore to read.
    pub logstore: String,
    /// Logs that will be in it (a trickle is still writing when the run starts).
    pub expected_logs: u64,
    /// Raw bytes in it (trickle: filled in at the end).
    pub raw_bytes: u64,
    /// Shards of the logstore.
    pub shards: u32,
    /// How to start subjects.
    pub launch: &'a Launch,
    /// SLS client for checkpoints.
    pub sls: &'a Client,
    /// The receivers' shared tally (already reset for this run).
    pub tally: &'a Arc<EventTally>,
    /// Where the subject's files go.
    pub dir: std::path::PathBuf,
    /// Give up after this long.
    pub timeout: Duration,
    /// Longest wait for checkpoints after the last event.
    pub checkpoint_wait: Duration,
}

async fn end_cursors(sls: &Client, logstore: &str, shards: u32) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for shard in 0..shards {
        let c = sls
            .get_cursor(logstore, shard, CursorPosition::End)
            .await
            .map_err(|e| format!("GetCursor(end) of shard {shard}: {e}"))?;
        out.push(c.0);
    }
    Ok(out)
}

async fn checkpoints_at(sls: &Client, logstore: &str, group: &str, ends: &[i64]) -> bool {
    let Ok(cps) = sls.get_checkpoints(logstore, group, None).await else {
        return false;
    };
    ends.iter().enumerate().all(|(shard, end)| {
        cps.iter()
            .find(|c| c.shard as usize == shard)
            .and_then(|c| c.cursor().ok().flatten())
            .is_some_and(|c| c.0 == *end)
    })
}

/// Runs `spec.subject` to completion. `until_written` resolves once the logstore holds every
/// log the run expects (immediately for a backlog; at the end of the generation for a
/// trickle).
pub async fn run(spec: RunSpec<'_>, until_written: impl Future<Output = ()>) -> RunResult {
    let group = format!(
        "{}-{}",
        spec.subject.name(),
        match spec.kind {
            RunKind::Saturation => "sat",
            RunKind::Trickle => "trickle",
        }
    );
    let mut r = RunResult {
        subject: spec.subject.name().into(),
        kind: match spec.kind {
            RunKind::Saturation => "saturation".into(),
            RunKind::Trickle => "trickle".into(),
        },
        logstore: spec.logstore.clone(),
        expected_logs: spec.expected_logs,
        raw_bytes: spec.raw_bytes,
        ..Default::default()
    };
    let rig_cpu0 = machine::self_cpu_seconds();
    let mut proc = match spec
        .launch
        .spawn(spec.subject, &spec.logstore, &group, &spec.dir)
    {
        Ok(p) => p,
        Err(e) => {
            r.error = Some(format!("{e:#}"));
            return r;
        }
    };
    let deadline = Instant::now() + spec.timeout;
    let mut written = std::pin::pin!(until_written);
    let mut ends: Option<Vec<i64>> = None;
    let mut delivered: Option<Instant> = None;
    let mut last_cp_poll = Instant::now();
    let mut startup: Option<f64> = None;
    let poll = Duration::from_millis(20);
    loop {
        tokio::select! {
            () = &mut written, if ends.is_none() => {
                match end_cursors(spec.sls, &spec.logstore, spec.shards).await {
                    Ok(e) => ends = Some(e),
                    Err(e) => { r.error = Some(e); break; }
                }
                continue;
            }
            () = tokio::time::sleep(poll) => {}
        }
        if let Some(status) = proc.exited() {
            r.error = Some(format!(
                "{} exited on its own ({status}); stderr ({}):\n{}",
                spec.subject.name(),
                proc.stderr.display(),
                proc.stderr_tail()
            ));
            break;
        }
        let unique = spec.tally.unique();
        if startup.is_none() && unique > 0 {
            startup = proc.cpu_seconds();
        }
        if delivered.is_none() && ends.is_some() && unique >= spec.expected_logs {
            delivered = Some(Instant::now());
            r.cpu_s = proc.cpu_seconds().unwrap_or(0.0);
            r.cpu_wait_s = proc.run_delay_seconds().unwrap_or(0.0);
            r.peak_rss_mib = proc.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
            r.rig_cpu_s = machine::self_cpu_seconds() - rig_cpu0;
            r.complete = true;
        }
        if let (Some(at), Some(ends)) = (delivered, &ends) {
            if last_cp_poll.elapsed() >= Duration::from_millis(200) {
                last_cp_poll = Instant::now();
                if checkpoints_at(spec.sls, &spec.logstore, &group, ends).await {
                    r.checkpoints_at_end = true;
                    r.checkpoint_lag_s = Some(at.elapsed().as_secs_f64());
                    break;
                }
            }
            if at.elapsed() > spec.checkpoint_wait {
                break;
            }
        }
        if Instant::now() > deadline {
            r.error = Some(format!(
                "timed out after {:?} with {unique} of {} events received",
                spec.timeout, spec.expected_logs
            ));
            break;
        }
    }
    if !r.complete {
        r.cpu_s = proc.cpu_seconds().unwrap_or(0.0);
        r.cpu_wait_s = proc.run_delay_seconds().unwrap_or(0.0);
        r.peak_rss_mib = proc.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        r.rig_cpu_s = machine::self_cpu_seconds() - rig_cpu0;
    }
    r.cpu_startup_s = startup.unwrap_or(0.0);
    let started = proc.started;
    r.exit = proc.terminate(Duration::from_secs(30)).await;
    // Let anything still in flight land before the counts are read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let snap = spec.tally.snapshot();
    r.received_unique = snap.unique;
    r.received_events = snap.events;
    r.lost = spec.expected_logs.saturating_sub(snap.unique);
    r.duplicated = snap.duplicates;
    r.unexpected = snap.out_of_range;
    r.validated = snap.validated;
    r.invalid = snap.invalid;
    r.requests = snap.requests;
    r.wire_bytes = snap.wire_bytes;
    r.decoded_bytes = snap.decoded_bytes;
    if let (Some(first), Some(last)) = (snap.first_event, snap.last_event) {
        r.wall_s = last.duration_since(first).as_secs_f64();
        r.wall_from_start_s = last.duration_since(started).as_secs_f64();
    }
    r.compute_rates();
    if spec.kind == RunKind::Trickle {
        let q = spec.tally.latency_ms(&[0.5, 0.99, 0.999, 1.0]);
        r.latency_samples = snap.latency_samples;
        (
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.latency_p999_ms,
            r.latency_max_ms,
        ) = (q[0], q[1], q[2], q[3]);
    }
    r
}
