//! The dead-letter file: logs that could not be delivered, one JSON object per line, with
//! enough context to replay or investigate them (the original log, where it came from, why it
//! failed and which plugin generation saw it).
//!
//! Entries are written and flushed *before* the shard's checkpoint may move past them, so a
//! crash can duplicate an entry but never lose one (the same at-least-once rule as delivery).
//!
//! Each sink has its own file (`[[sinks]]` name theirs, or get one named after them): it
//! lists what did not reach that sink. A log its plugin refused did not reach any of the
//! plugin's sinks, so it is written to each of their files (once per distinct file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use shipper_sls::flat;
use shipper_sls::proto::LogGroup;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::pipeline::batch::{Origin, Source};
use crate::settings::LogstoreTarget;

/// At which step a log failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The plugin returned a record error for this log.
    Plugin,
    /// The plugin trapped or timed out on this log (found by bisection).
    PluginTrap,
    /// The sink (SIEM) rejected the formatted event.
    Sink,
    /// The host could not decode, route or render the log or its emits.
    Host,
}

impl Stage {
    /// Every stage, for series that start at zero.
    pub const ALL: [Stage; 4] = [Stage::Plugin, Stage::PluginTrap, Stage::Sink, Stage::Host];

    /// The name in entries and in the `stage` label of `shipper_dead_lettered_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Plugin => "plugin",
            Stage::PluginTrap => "plugin_trap",
            Stage::Sink => "sink",
            Stage::Host => "host",
        }
    }
}

/// One dead-letter line.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When the entry was written (RFC 3339, UTC).
    pub time: String,
    /// Failing step.
    pub stage: Stage,
    /// Human-readable reason (plugin message, HEC response text, trap message).
    pub reason: &'a str,
    /// SLS project.
    pub project: &'a str,
    /// SLS logstore.
    pub logstore: &'a str,
    /// Shard id.
    pub shard: u32,
    /// Cursor of the log's LogGroup (re-pull it with this cursor and count=1).
    pub cursor: String,
    /// Index of the log inside its LogGroup.
    pub log_index: usize,
    /// Plugin generation (sha256 of the component), when a plugin was involved.
    pub plugin: Option<&'a str>,
    /// The sink that refused or could not render the event; absent when the plugin (or
    /// the host before it) failed the log for every sink of that plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<&'a str>,
    /// The log, flattened the way the official SDK flattens it.
    pub log: serde_json::Value,
}

/// Appends entries to the dead-letter file. Cheap to clone; writes are serialised.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: PathBuf,
    file: Arc<Mutex<tokio::fs::File>>,
    /// Unit tests: writes stop half-way with "no space left" while set.
    #[cfg(test)]
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl DeadLetter {
    /// Opens (creating if needed) the file for appending.
    pub async fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(file)),
            #[cfg(test)]
            full: Arc::default(),
        })
    }

    /// Unit tests: make every write fail half-way, as on a full disk, until cleared.
    #[cfg(test)]
    pub(crate) fn set_full(&self, full: bool) {
        self.full.store(full, std::sync::atomic::Ordering::SeqCst);
    }

    /// The file's path (for log messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the entries and flushes them to the OS before returning. On failure (a full
    /// disk) the file is cut back to its length before the call, so a retry of the same
    /// entries leaves no torn line behind.
    pub async fn write(&self, entries: &[Entry<'_>]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 512);
        for e in entries {
            serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let mut file = self.file.lock().await;
        let before = file.metadata().await?.len();
        let written = async {
            #[cfg(test)]
            if self.full.load(std::sync::atomic::Ordering::SeqCst) {
                file.write_all(&buf[..buf.len() / 2]).await?;
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            file.write_all(&buf).await?;
            file.flush().await?;
            // The checkpoint moves past these logs next: make them survive a power cut too.
            file.sync_data().await
        }
        .await;
        if written.is_err() {
            // Best effort: the error that matters is the write's.
            let _ = file.set_len(before).await;
        }
        written
    }
}

/// RFC 3339 "now" for entries.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// Why a log failed: the step, the reason, the plugin generation that saw it and, for
/// sink-specific failures, the sink.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// Failing step.
    pub stage: Stage,
    /// Human-readable reason.
    pub reason: &'a str,
    /// Plugin generation (sha256), when a plugin was involved.
    pub plugin: Option<&'a str>,
    /// The sink, for a sink-specific failure.
    pub sink: Option<&'a str>,
}

/// Builds entries for logs of pulled batches, decoding each LogGroup at most once.
#[derive(Debug, Default)]
pub struct DecodeCache {
    last: Option<(usize, u32, LogGroup)>,
}

impl DecodeCache {
    /// The entry for the log at `origin` in `source` (a LogGroup that cannot be decoded
    /// gives an entry whose `log` is null; its cursor still finds it).
    pub fn entry<'a>(
        &mut self,
        target: &'a LogstoreTarget,
        shard: u32,
        source: &'a Arc<Source>,
        origin: Origin,
        cause: Cause<'a>,
    ) -> Entry<'a> {
        let key = Arc::as_ptr(source) as usize;
        let fresh = !matches!(&self.last, Some((k, g, _)) if *k == key && *g == origin.group);
        if fresh {
            let group = source.groups[origin.group as usize]
                .decode()
                .unwrap_or_default();
            self.last = Some((key, origin.group, group));
        }
        let (_, _, group) = self.last.as_ref().expect("just set");
        let log = group
            .logs
            .get(origin.log as usize)
            .map_or(serde_json::Value::Null, |l| flat::flatten(group, l));
        Entry {
            time: now_rfc3339(),
            stage: cause.stage,
            reason: cause.reason,
            project: &target.project,
            logstore: &target.logstore,
            shard,
            cursor: source.cursor.advance(i64::from(origin.group)).encode(),
            log_index: origin.log as usize,
            plugin: cause.plugin,
            sink: cause.sink,
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{self, Log};

    #[tokio::test]
    async fn entries_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dlq.jsonl");
        let dl = DeadLetter::open(&path).await.unwrap();
        let g = testing::group(&[Log::ok(0)]);
        let entry = |reason| Entry {
            time: now_rfc3339(),
            stage: Stage::Plugin,
            reason,
            project: "p",
            logstore: "l",
            shard: 3,
            cursor: "MTA=".into(),
            log_index: 0,
            plugin: Some("abc"),
            sink: (reason == "third").then_some("siem"),
            log: flat::flatten(&g, &g.logs[0]),
        };
        dl.write(&[entry("first")]).await.unwrap();
        dl.write(&[entry("second"), entry("third")]).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["reason"], "third");
        assert_eq!(lines[0]["stage"], "plugin");
        assert_eq!(lines[0]["shard"], 3);
        assert_eq!(lines[0]["log"]["seq"], "0");
        assert!(lines[0].get("sink").is_none(), "no sink: no key");
        assert_eq!(lines[2]["sink"], "siem");
    }
}
