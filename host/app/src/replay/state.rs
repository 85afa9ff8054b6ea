//! The replay state: per shard, the cursor range to replay and the position every sink has
//! acknowledged. `--state FILE` keeps it on disk (docs/replay.md "State file"), written as
//! acknowledgements settle: a temporary file next to it, synced, renamed over it, and the
//! directory synced, so a `kill -9` or a power cut leaves the previous or the new state,
//! never a torn one. A rerun with the same file and window starts each shard at its
//! acknowledged position: nothing is lost, at most the sends in flight at the kill are
//! sent again.
//!
//! Without `--state` the same bookkeeping lives in memory only (progress and the final
//! "every shard reached its end" check).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use shipper_sls::cursor::Cursor;
use tokio::sync::Mutex;

use crate::checkpoint::{CheckpointStore, CommitError};
use crate::window::{Window, rfc3339};

/// Version of the file format.
const VERSION: u32 = 1;

/// A state file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Cannot be read (other than not existing).
    #[error("cannot read the replay state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a state file of this version.
    #[error(
        "{path} is not a shipper replay state file ({message}); give another --state path, or delete it to start the window over"
    )]
    Garbage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Made for another window or other logstores.
    #[error(
        "the replay state file {path} is for {theirs}, not {ours}; use another --state path for this replay (or the flags of that one to resume it)"
    )]
    OtherReplay {
        /// The file.
        path: PathBuf,
        /// What the file is for.
        theirs: String,
        /// What this run is.
        ours: String,
    },
    /// Cannot be written.
    #[error("cannot write the replay state file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One shard's part of the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// GetCursor(from): the first LogGroup of the window.
    pub start: String,
    /// GetCursor(to): the first LogGroup after it (excluded).
    pub end: String,
    /// Everything before this was acknowledged by every sink (or dead-lettered).
    pub acked: String,
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `VERSION`.
    pub version: u32,
    /// The window, unix seconds.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// `project/logstore` → shard id → its state.
    pub logstores: BTreeMap<String, BTreeMap<u32, ShardState>>,
}

impl State {
    /// A fresh state for `window` over `logstores` (no shard yet).
    pub fn new(window: Window, logstores: &[String]) -> Self {
        Self {
            version: VERSION,
            from: window.from,
            to: window.to,
            logstores: logstores
                .iter()
                .map(|l| (l.clone(), BTreeMap::new()))
                .collect(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "window [{}, {}) of {}",
            rfc3339(self.from),
            rfc3339(self.to),
            self.logstores
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Reads `path`: `Ok(None)` when it does not exist (a first run), an error when it cannot
/// be read, is not a state file, or is for another window or other logstores than `ours`.
pub fn load(path: &Path, ours: &State) -> Result<Option<State>, StateError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let garbage = |message: String| StateError::Garbage {
        path: path.to_owned(),
        message,
    };
    let state: State = serde_json::from_slice(&text).map_err(|e| garbage(e.to_string()))?;
    if state.version != VERSION {
        return Err(garbage(format!(
            "version {}, this shipper writes {VERSION}",
            state.version
        )));
    }
    for shards in state.logstores.values() {
        for (shard, s) in shards {
            for c in [&s.start, &s.end, &s.acked] {
                Cursor::parse(c).map_err(|e| garbage(format!("shard {shard}: {e}")))?;
            }
        }
    }
    let same = state.from == ours.from
        && state.to == ours.to
        && state.logstores.keys().eq(ours.logstores.keys());
    if !same {
        return Err(StateError::OtherReplay {
            path: path.to_owned(),
            theirs: state.describe(),
            ours: ours.describe(),
        });
    }
    Ok(Some(state))
}

/// The replay's state, shared by every shard task; persisted on each change when there is
/// a file.
#[derive(Debug)]
pub struct Tracker {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl Tracker {
    /// Tracks `state`, persisting it to `path` when given.
    pub fn new(path: Option<PathBuf>, state: State) -> Arc<Self> {
        Arc::new(Self {
            path,
            state: Mutex::new(state),
        })
    }

    /// A copy of the state.
    pub async fn snapshot(&self) -> State {
        self.state.lock().await.clone()
    }

    /// Writes the state now (the first write checks the file can be written before anything
    /// is sent).
    pub async fn persist(&self) -> Result<(), StateError> {
        let state = self.state.lock().await;
        self.write(&state).await
    }

    /// Records that everything of `logstore`'s `shard` before `acked` was acknowledged.
    pub async fn acknowledged(
        &self,
        logstore: &str,
        shard: u32,
        acked: Cursor,
    ) -> Result<(), StateError> {
        let mut state = self.state.lock().await;
        if let Some(s) = state
            .logstores
            .get_mut(logstore)
            .and_then(|m| m.get_mut(&shard))
        {
            s.acked = acked.encode();
        }
        // Written under the lock: two shards' writes never rename an older state over a
        // newer one.
        self.write(&state).await
    }

    async fn write(&self, state: &State) -> Result<(), StateError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(state).expect("the state serialises");
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|source| StateError::Write { path, source })
    }
}

/// Temp file + fsync + rename + directory fsync: the file is the old state or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = dir.join(name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The pipeline's checkpoints of one logstore's shards, into the [`Tracker`] instead of a
/// consumer group: a replay never reads or moves the group's checkpoints.
pub struct ReplayCheckpoints {
    /// The tracker.
    pub tracker: Arc<Tracker>,
    /// `project/logstore`.
    pub logstore: String,
}

impl CheckpointStore for ReplayCheckpoints {
    fn commit(&self, shard: u32, cursor: Cursor) -> BoxFuture<'_, Result<(), CommitError>> {
        async move {
            self.tracker
                .acknowledged(&self.logstore, shard, cursor)
                .await
                .map_err(|e| CommitError::Failed(e.to_string()))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window { from: 100, to: 200 }
    }

    fn shard(acked: i64) -> ShardState {
        ShardState {
            start: Cursor(10).encode(),
            end: Cursor(20).encode(),
            acked: Cursor(acked).encode(),
        }
    }

    #[tokio::test]
    async fn acknowledgements_are_persisted_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.state");
        let mut state = State::new(window(), &["p/ls".into()]);
        assert!(load(&path, &state).unwrap().is_none(), "no file: first run");
        state
            .logstores
            .get_mut("p/ls")
            .unwrap()
            .insert(3, shard(10));
        let tracker = Tracker::new(Some(path.clone()), state.clone());
        tracker.persist().await.unwrap();
        tracker.acknowledged("p/ls", 3, Cursor(15)).await.unwrap();
        let back = load(&path, &state).unwrap().unwrap();
        assert_eq!(back.logstores["p/ls"][&3], shard(15));
        assert!(
            !dir.path().join("replay.state.tmp").exists(),
            "the temp file is renamed"
        );
    }

    #[test]
    fn other_windows_logstores_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let ours = State::new(window(), &["p/ls".into()]);
        let other = State::new(Window { from: 100, to: 300 }, &["p/ls".into()]);
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        let e = load(&path, &ours).unwrap_err();
        assert!(matches!(e, StateError::OtherReplay { .. }), "{e}");
        let other = State::new(window(), &["p/other".into()]);
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(matches!(
            load(&path, &ours).unwrap_err(),
            StateError::OtherReplay { .. }
        ));
        std::fs::write(&path, b"{\"not\": \"a state\"}").unwrap();
        let e = load(&path, &ours).unwrap_err();
        assert!(
            e.to_string().contains("is not a shipper replay state file"),
            "{e}"
        );
    }
}
