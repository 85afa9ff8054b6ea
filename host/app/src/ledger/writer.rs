//! The ledger's writer thread: records queue up in memory, merged, and are appended as JSON
//! lines when a commit asks for a flush. At `max_file_bytes` the active file is rotated:
//! its records are merged (adjacent ranges become one line) into `PATH.1`, older files
//! shift to `PATH.2` … `PATH.keep`, the oldest is deleted. A busy shard writes a line per
//! commit, but a rotated file holds about one line per shard, sink and restart, so the kept
//! files reach far back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::{LedgerError, LedgerSettings, Msg, Record, merge};

pub(super) struct Writer {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: File,
    size: u64,
    /// Recorded, not yet written.
    pending: Vec<Record>,
    /// Recorded since the last watermark snapshot (only with watermarks on).
    watermarks: Option<Vec<Record>>,
    /// A write failed and was reported; the next success says so.
    failing: bool,
}

impl Writer {
    pub(super) fn open(settings: &LedgerSettings) -> Result<Self, LedgerError> {
        let io = |source| LedgerError::Io {
            path: settings.path.clone(),
            source,
        };
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&settings.path)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(Self {
            path: settings.path.clone(),
            max_bytes: settings.max_file_bytes,
            keep: settings.keep_files,
            file,
            size,
            pending: Vec::new(),
            watermarks: settings.watermark_interval.map(|_| Vec::new()),
            failing: false,
        })
    }

    /// Runs until every [`super::Ledger`] handle is gone, writing what is left.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut flushes = Vec::new();
            let mut next = Some(first);
            // Everything queued meanwhile is handled in one go: one write for many
            // records and as many flush requests as arrived.
            while let Some(msg) = next {
                match msg {
                    Msg::Record(r) => {
                        if let Some(w) = &mut self.watermarks {
                            w.push(r.clone());
                        }
                        self.pending.push(r);
                    }
                    Msg::Flush(done) => flushes.push(done),
                    Msg::Watermarks(reply) => {
                        let taken = self.watermarks.as_mut().map(std::mem::take);
                        let _ = reply.send(merge(taken.unwrap_or_default()));
                    }
                }
                next = rx.try_recv().ok();
            }
            if !flushes.is_empty() {
                self.write_pending();
                for done in flushes {
                    let _ = done.send(());
                }
            }
        }
        self.write_pending();
    }

    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut text = String::new();
        for r in merge(std::mem::take(&mut self.pending)) {
            if let Ok(line) = serde_json::to_string(&r) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        match self.file.write_all(text.as_bytes()) {
            Ok(()) => {
                self.size += text.len() as u64;
                if std::mem::take(&mut self.failing) {
                    tracing::info!(path = %self.path.display(), "ledger writable again");
                }
            }
            Err(e) => {
                // Delivery goes on: the ledger is evidence, not the data path. What is not
                // written shows as a gap in `shipper reconcile`, which is the truth about
                // the evidence.
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot write the ledger; its ranges since will show as gaps in `shipper reconcile` (free space on its disk)");
                }
            }
        }
        if self.size >= self.max_bytes
            && let Err(e) = self.rotate()
        {
            tracing::error!(path = %self.path.display(), error = %e, "cannot rotate the ledger; it keeps growing");
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let records = read_lenient(&self.path)?;
        let compacted = rotated_name(&self.path, 0);
        let mut out = File::create(&compacted)?;
        for r in merge(records) {
            if let Ok(line) = serde_json::to_string(&r) {
                writeln!(out, "{line}")?;
            }
        }
        out.sync_all()?;
        drop(out);
        let _ = std::fs::remove_file(rotated_name(&self.path, self.keep));
        for n in (1..self.keep).rev() {
            let from = rotated_name(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated_name(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&compacted, rotated_name(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        tracing::info!(path = %self.path.display(), "ledger rotated");
        Ok(())
    }
}

/// `PATH.n`; `n = 0` is the temporary file of a compaction.
pub(super) fn rotated_name(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    if n == 0 {
        name.push(".compacting");
    } else {
        name.push(format!(".{n}"));
    }
    PathBuf::from(name)
}

/// The records of one file, skipping lines that do not parse (a rotation must not fail on
/// one bad line).
fn read_lenient(path: &Path) -> std::io::Result<Vec<Record>> {
    let file = File::open(path)?;
    Ok(BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::{Ledger, Tally};
    use super::*;

    fn settings(dir: &Path, max: u64, keep: usize) -> LedgerSettings {
        LedgerSettings {
            path: dir.join("sub/ledger.jsonl"),
            max_file_bytes: max,
            keep_files: keep,
            watermark_interval: Some(std::time::Duration::from_secs(1)),
        }
    }

    #[tokio::test]
    async fn a_flush_writes_merged_lines_and_rotation_compacts_into_kept_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 400, 3);
        let ledger = Ledger::open(&s, None).unwrap();
        for i in 0..4 {
            ledger.record("p/l", 1, "a", i * 10..(i + 1) * 10, Tally::default());
        }
        ledger.flush().await;
        let text = std::fs::read_to_string(&s.path).unwrap();
        assert_eq!(
            text.lines().count(),
            1,
            "adjacent ranges in one flush: {text}"
        );
        assert!(text.contains(r#""from":0,"to":40"#), "{text}");
        // A line per flush, until the size cap rotates them: each rotated file is one
        // merged line, and only `keep` of them stay.
        for i in 4..20 {
            ledger.record("p/l", 1, "a", i * 10..(i + 1) * 10, Tally::default());
            ledger.flush().await;
        }
        for n in 1..=3 {
            let rotated = std::fs::read_to_string(rotated_name(&s.path, n)).unwrap();
            assert_eq!(rotated.lines().count(), 1, "compacted: {rotated}");
        }
        assert!(!rotated_name(&s.path, 4).exists(), "only 3 kept");
        let merged =
            merge(super::super::coverage::read_paths(std::slice::from_ref(&s.path)).unwrap());
        assert_eq!(merged.len(), 1, "the kept files join up: {merged:?}");
        assert_eq!(merged[0].to, 200);
        assert!(merged[0].from > 0, "the oldest file was deleted");
        // Watermarks: everything since the last snapshot, one record per key.
        let w = ledger.take_watermarks().await;
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].from, w[0].to), (0, 200));
        assert!(ledger.take_watermarks().await.is_empty());
    }
}
