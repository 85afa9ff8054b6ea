//! Reading ledgers back (several files or directories: one per instance) and checking that
//! a cursor window is covered by acknowledged ranges: what `shipper reconcile` prints.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{LedgerError, Record, Tally, merge};

/// Every record of `paths`. A directory stands for every ledger file in it (`*.jsonl` and
/// their rotated `*.jsonl.N`); a file for itself and its rotated `FILE.N` siblings. A line
/// that is not a record is an error naming the file and line, except a file's last line
/// (a write cut short by a crash), which is skipped with a warning.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Record>, LedgerError> {
    let mut records = Vec::new();
    for path in paths {
        for file in files_of(path)? {
            read_file(&file, &mut records)?;
        }
    }
    Ok(records)
}

/// Which names in a directory are ledger files.
type NameFilter = Box<dyn Fn(&str) -> bool>;

fn files_of(path: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let (dir, wanted): (&Path, NameFilter) = if meta.is_dir() {
        (
            path,
            Box::new(|name: &str| {
                name.ends_with(".jsonl")
                    || name
                        .rsplit_once(".jsonl.")
                        .is_some_and(|(_, n)| n.parse::<u32>().is_ok())
            }),
        )
    } else {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            Box::new(move |name: &str| {
                name == base
                    || name
                        .strip_prefix(&format!("{base}."))
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            }),
        )
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| wanted(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, out: &mut Vec<Record>) -> Result<(), LedgerError> {
    let file = File::open(path).map_err(|source| LedgerError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut bad: Option<(usize, String)> = None;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| LedgerError::Io {
            path: path.to_owned(),
            source,
        })?;
        if let Some((line, message)) = bad.take() {
            // Not the last line: the file is not a ledger (or was edited).
            return Err(LedgerError::Parse {
                path: path.to_owned(),
                line,
                message,
            });
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => out.push(r),
            Err(e) => bad = Some((i + 1, e.to_string())),
        }
    }
    if let Some((line, message)) = bad {
        tracing::warn!(path = %path.display(), line, error = %message, "last line of the ledger is cut short (a crash while writing); skipped");
    }
    Ok(())
}

/// How one shard's window is covered by one sink's acknowledged ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The window `[GetCursor(T1), GetCursor(T2))`.
    pub window: Range<i64>,
    /// The parts of the window no record covers, in order.
    pub missing: Vec<Range<i64>>,
    /// The counts of the merged ranges that overlap the window (they may reach past it).
    pub tally: Tally,
}

impl Coverage {
    /// LogGroups (cursor positions) not covered.
    pub fn missing_groups(&self) -> i64 {
        self.missing.iter().map(|r| r.end - r.start).sum()
    }
}

/// The coverage of `window` by the records of `logstore`, `shard` and `sink` in `merged`
/// (the output of [`merge`]).
pub fn cover(
    merged: &[Record],
    logstore: &str,
    shard: u32,
    sink: &str,
    window: Range<i64>,
) -> Coverage {
    let mut missing = Vec::new();
    let mut tally = Tally::default();
    let mut at = window.start;
    for r in merged.iter().filter(|r| r.key() == (logstore, shard, sink)) {
        if r.to <= window.start || r.from >= window.end {
            continue;
        }
        tally.add(&r.tally);
        if r.from > at {
            missing.push(at..r.from.min(window.end));
        }
        at = at.max(r.to);
    }
    if at < window.end {
        missing.push(at..window.end);
    }
    Coverage {
        window,
        missing,
        tally,
    }
}

/// Reads `paths` and merges their records (see [`read_paths`], [`merge`]).
pub fn read_merged(paths: &[PathBuf]) -> Result<Vec<Record>, LedgerError> {
    read_paths(paths).map(merge)
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn a_window_is_ok_only_when_every_cursor_is_in_some_range() {
        let merged = merge(vec![
            rec(0, "a", 0..10, 1),
            rec(0, "a", 10..20, 1),
            rec(0, "a", 25..40, 1),
            rec(1, "a", 0..40, 1),
        ]);
        let c = cover(&merged, "p/l", 0, "a", 5..30);
        assert_eq!(c.missing, vec![20..25]);
        assert_eq!(c.missing_groups(), 5);
        assert_eq!(c.tally.events, 3, "two merged ranges overlap the window");
        assert!(cover(&merged, "p/l", 1, "a", 5..30).missing.is_empty());
        assert_eq!(cover(&merged, "p/l", 0, "a", 35..50).missing, vec![40..50]);
        assert_eq!(cover(&merged, "p/l", 2, "a", 3..4).missing, vec![3..4]);
        assert_eq!(
            cover(&merged, "p/l", 0, "b", 3..3).missing,
            [],
            "empty window"
        );
    }

    #[test]
    fn directories_files_and_rotated_siblings_are_read_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let line = |r: &Record| serde_json::to_string(r).unwrap() + "\n";
        std::fs::write(dir.path().join("a.jsonl"), line(&rec(0, "s", 0..5, 1))).unwrap();
        std::fs::write(dir.path().join("a.jsonl.1"), line(&rec(0, "s", 5..9, 1))).unwrap();
        // A cut-short last line is skipped.
        std::fs::write(
            dir.path().join("b.jsonl"),
            line(&rec(1, "s", 0..5, 1)) + "{\"logst",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a ledger").unwrap();
        assert_eq!(read_paths(&[dir.path().to_owned()]).unwrap().len(), 3);
        assert_eq!(read_paths(&[dir.path().join("a.jsonl")]).unwrap().len(), 2);
        std::fs::write(dir.path().join("c.jsonl"), "oops\n{}\n").unwrap();
        let e = read_paths(&[dir.path().join("c.jsonl")]).unwrap_err();
        assert!(e.to_string().contains("c.jsonl line 1"), "{e}");
        assert!(read_paths(&[dir.path().join("none.jsonl")]).is_err());
    }
}
