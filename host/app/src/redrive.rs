//! Dead-letter re-drive (`shipper dead-letter replay`): a dead-letter file
//! ([`crate::dead_letter`]) read back into LogGroups the shard pipeline can send again.
//!
//! Entry `k` becomes a made-up LogGroup at cursor `k` holding its one log; the entry's
//! real position (project, logstore, shard, cursor, index) goes to
//! [`ReplayOptions::originals`](crate::pipeline::replay::ReplayOptions), so the events get
//! the original logs' IDs and what fails again is written with the original position.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde::Deserialize;
use shipper_sls::consumer::PulledBatch;
use shipper_sls::cursor::Cursor;
use shipper_sls::flat;
use shipper_sls::proto::{LogGroupView, encode_group};

use crate::checkpoint::{CheckpointStore, CommitError};
use crate::pipeline::replay::OriginalPosition;

/// A dead-letter file that cannot be re-driven.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// Cannot be read.
    #[error("cannot read the dead-letter file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not a dead-letter entry.
    #[error(
        "{path} line {line} is not a shipper dead-letter entry ({message}); the file must be the JSON lines a dead-letter file holds (README section on the dead-letter file); nothing was sent"
    )]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One entry, read back.
#[derive(Debug, Clone)]
pub struct Redrive {
    /// Where the log is in SLS.
    pub original: OriginalPosition,
    /// The sink that refused it, when only that sink did.
    pub sink: Option<String>,
    /// The log as a one-log group, encoded.
    pub group: Bytes,
}

#[derive(Deserialize)]
struct Line {
    project: String,
    logstore: String,
    shard: u32,
    cursor: String,
    log_index: u32,
    #[serde(default)]
    sink: Option<String>,
    log: serde_json::Value,
}

/// Reads every entry of `path`; the first bad line fails the whole file, so nothing is sent
/// from a file that is not what it should be.
pub fn read(path: &Path) -> Result<Vec<Redrive>, RedriveError> {
    let text = std::fs::read_to_string(path).map_err(|source| RedriveError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| RedriveError::Line {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let entry: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let cursor = Cursor::parse(&entry.cursor).map_err(|e| bad(e.to_string()))?;
        if entry.log.is_null() {
            return Err(bad(
                "its `log` is null: the LogGroup could not be decoded when it failed; read it from SLS by its cursor".into(),
            ));
        }
        let groups = flat::parse(&entry.log.to_string()).map_err(|e| bad(format!("`log`: {e}")))?;
        let [group] = groups.as_slice() else {
            return Err(bad("`log` is not one flattened log".into()));
        };
        out.push(Redrive {
            original: OriginalPosition {
                project: entry.project,
                logstore: entry.logstore,
                shard: entry.shard,
                cursor,
                log_index: entry.log_index,
            },
            sink: entry.sink,
            group: Bytes::from(encode_group(group)),
        });
    }
    Ok(out)
}

/// The made-up pulled batches of `entries`: entry `k` (of the whole file) at cursor `k`.
pub fn batches(entries: &[(usize, &Redrive)]) -> Vec<PulledBatch> {
    entries
        .iter()
        .map(|&(k, r)| {
            let view = LogGroupView::parse(r.group.clone()).expect("encoded just above");
            PulledBatch {
                shard: r.original.shard,
                cursor: Cursor(k as i64),
                next_cursor: Cursor(k as i64 + 1),
                log_count: view.log_count,
                raw_size: r.group.len(),
                groups: vec![view],
                end_of_shard: false,
                cursor_time: None,
                memory: None,
            }
        })
        .collect()
}

/// The default output: `NAME.redrive.jsonl` next to the input, or `NAME.redrive-2.jsonl`
/// and so on when taken, so an earlier re-drive's failures are never appended to.
pub fn default_output(input: &Path) -> PathBuf {
    let stem = input.file_stem().map_or_else(
        || "dead-letter".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let dir = input.parent().unwrap_or(Path::new(""));
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            dir.join(format!("{stem}.redrive{suffix}.jsonl"))
        })
        .find(|p| !p.exists())
        .expect("a free name")
}

/// Where the pipeline reports delivered positions of a re-drive: the last one, to tell
/// whether every entry was handled.
#[derive(Debug, Default)]
pub struct Handled(std::sync::Mutex<Option<Cursor>>);

impl Handled {
    /// The position every sink acknowledged (entries before it were delivered or written
    /// to the new dead-letter file).
    pub fn get(&self) -> Option<Cursor> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CheckpointStore for Arc<Handled> {
    fn commit(&self, _shard: u32, cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cursor);
        futures::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_back_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl.jsonl");
        let good = r#"{"time":"t","stage":"plugin_trap","reason":"r","project":"p","logstore":"l","shard":3,"cursor":"MTA=","log_index":7,"plugin":"h","log":{"__time__":1700000000,"__topic__":"","__source__":"s","msg":"hi"}}"#;
        std::fs::write(&path, format!("{good}\n\n{good}\n")).unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].original.shard, 3);
        assert_eq!(entries[0].original.cursor, Cursor(10));
        assert_eq!(entries[0].original.log_index, 7);
        let view = LogGroupView::parse(entries[0].group.clone()).unwrap();
        let group = view.decode().unwrap();
        assert_eq!(group.logs[0].contents[0].key, "msg");
        assert_eq!(group.source.as_deref(), Some("s"));

        std::fs::write(&path, format!("{good}\nnot json\n")).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains("dl.jsonl line 2 is not a shipper dead-letter entry"),
            "{e}"
        );
        assert_eq!(default_output(&path), dir.path().join("dl.redrive.jsonl"));
        std::fs::write(dir.path().join("dl.redrive.jsonl"), "").unwrap();
        assert_eq!(default_output(&path), dir.path().join("dl.redrive-2.jsonl"));
    }
}
