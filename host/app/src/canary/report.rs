//! The canary's diff report: counts and the first differing events with the names of the
//! fields that differ, rewritten (atomically) after each compared batch.

use std::path::Path;

use serde::Serialize;

/// Canary errors kept in the report.
const MAX_ERRORS: usize = 10;

/// Events by result.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Rendered the same as the current plugin's.
    pub same: u64,
    /// Rendered differently (or a different number of events).
    pub different: u64,
    /// The canary failed on them (trap, record error, batch error).
    pub error: u64,
}

/// One differing event.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Shard id.
    pub shard: u32,
    /// Cursor of the LogGroup.
    pub cursor: i64,
    /// Log index in the LogGroup.
    pub log_index: usize,
    /// Which of the log's events.
    pub event: usize,
    /// The fields that differ (dotted paths into the rendered JSON), or `(text)`.
    pub fields: Vec<String>,
    /// The current plugin's rendered event.
    pub current: String,
    /// The canary's.
    pub canary: String,
}

/// The report file's content.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The canary plugin (`name@version#hash`).
    pub canary: String,
    /// The current plugin it is compared with.
    pub current: String,
    /// Share of batches sampled.
    pub sample: f64,
    /// Batches compared.
    pub batches: u64,
    /// Sampled batches skipped because the canary was still busy.
    pub skipped_batches: u64,
    /// Events by result.
    pub events: Counts,
    /// `json` when every difference was compared field by field; `text` when some events
    /// were not JSON and were compared as text (their fields say `(text)`).
    pub compared_as: &'static str,
    /// The first differing events.
    pub first_differences: Vec<Difference>,
    /// The first canary errors.
    pub errors: Vec<String>,
    /// When the report was written (RFC 3339).
    pub updated: String,
    #[serde(skip)]
    max_differences: usize,
}

impl Report {
    /// An empty report of `canary`.
    pub fn new(canary: &str, sample: f64, max_differences: usize) -> Self {
        Self {
            canary: canary.to_owned(),
            current: String::new(),
            sample,
            batches: 0,
            skipped_batches: 0,
            events: Counts::default(),
            compared_as: "json",
            first_differences: Vec::new(),
            errors: Vec::new(),
            updated: String::new(),
            max_differences,
        }
    }

    /// Keeps `d` if there is room; `as_text` when it was compared as text.
    pub fn different(&mut self, d: Difference, as_text: bool) {
        if as_text {
            self.compared_as = "text";
        }
        if self.first_differences.len() < self.max_differences {
            self.first_differences.push(d);
        }
    }

    /// Keeps a canary error if there is room.
    pub fn error(&mut self, message: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message);
        }
    }

    /// Writes the report to `path` (a temporary file renamed over it: a reader never sees
    /// half a report).
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        self.updated = jiff::Timestamp::now().to_string();
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}
