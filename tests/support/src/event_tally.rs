//! Loss, duplicate and latency accounting for benchmark receivers (README.md "Performance").
//!
//! The benchmark data set gives every log two extra contents: `__bench_seq__` (a number unique
//! in the data set) and `__bench_ts__` (the generation time in ns since the epoch). Whatever a
//! subject turns a log into — an HEC envelope with the log as a JSON object (shipper), a JSON
//! string holding Python `json.dumps` text (the seed script), or `key=value` syslog text — the
//! field name survives, followed within a few bytes by its digits. So a receiver counts events
//! without parsing them: one `memmem` pass over the body finds each `__bench_seq__`, the digits
//! after it, and the `__bench_ts__` right behind it.
//!
//! [`EventTally`] turns those hits into counts: unique sequence numbers (a bitmap), duplicates,
//! numbers outside the expected range, and, when asked, end-to-end latencies (receive time −
//! `__bench_ts__`). Receivers share one tally; the benchmark resets it between runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use memchr::memmem::Finder;

/// Name of the content holding a log's unique sequence number.
pub const SEQ_FIELD: &str = "__bench_seq__";
/// Name of the content holding a log's generation time (ns since the Unix epoch).
pub const TS_FIELD: &str = "__bench_ts__";

static SEQ_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(SEQ_FIELD));
static TS_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(TS_FIELD));

/// At most this many bytes of quoting/separators between a field name and its digits:
/// `":"`, `=`, or the seed's escaped `\": \"` (5 bytes).
const MAX_GAP: usize = 8;
/// The timestamp field must start within this many bytes after the sequence number's digits
/// (it is the next content of the log in every format the benchmark produces).
const TS_WINDOW: usize = 48;

/// One event found in a body: its sequence number and, when present, its generation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// `__bench_seq__`.
    pub seq: u64,
    /// `__bench_ts__` (ns since the epoch).
    pub ts_ns: Option<u64>,
}

/// Parses the digits that follow a field name ending at `from`: skips up to [`MAX_GAP`]
/// non-digit bytes, then reads up to 20 digits. Returns the value and the end offset.
fn number_after(body: &[u8], from: usize) -> Option<(u64, usize)> {
    let mut i = from;
    let gap_end = (from + MAX_GAP).min(body.len());
    while i < gap_end && !body[i].is_ascii_digit() {
        i += 1;
    }
    let start = i;
    let mut value: u64 = 0;
    while i < body.len() && i - start < 20 && body[i].is_ascii_digit() {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(body[i] - b'0'))?;
        i += 1;
    }
    (i > start).then_some((value, i))
}

/// Appends every event of `body` (any of the benchmark's output formats) to `out`.
pub fn scan(body: &[u8], out: &mut Vec<Hit>) {
    for pos in SEQ_FINDER.find_iter(body) {
        let Some((seq, end)) = number_after(body, pos + SEQ_FIELD.len()) else {
            continue;
        };
        let window = &body[end..(end + TS_WINDOW).min(body.len())];
        let ts_ns = TS_FINDER
            .find(window)
            .and_then(|p| number_after(body, end + p + TS_FIELD.len()))
            .map(|(v, _)| v);
        out.push(Hit { seq, ts_ns });
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a tally counted since its last reset.
#[derive(Debug, Clone, Default)]
pub struct TallySnapshot {
    /// Events seen (every sequence number found, duplicates included).
    pub events: u64,
    /// Distinct sequence numbers inside the expected range.
    pub unique: u64,
    /// Sequence numbers seen more than once (each extra sighting counts).
    pub duplicates: u64,
    /// Sequence numbers outside the expected range.
    pub out_of_range: u64,
    /// Requests (HEC) or reads (syslog) that carried data.
    pub requests: u64,
    /// Bytes as received (gzip-compressed, or TLS plaintext for syslog).
    pub wire_bytes: u64,
    /// Bytes after decompression.
    pub decoded_bytes: u64,
    /// Events (or frames) checked by a full parse.
    pub validated: u64,
    /// Of those, the ones that failed (bad JSON envelope, bad frame, event without a sequence
    /// number).
    pub invalid: u64,
    /// When the first event arrived.
    pub first_event: Option<Instant>,
    /// When the last event arrived.
    pub last_event: Option<Instant>,
    /// Latencies recorded (see [`EventTally::reset`]).
    pub latency_samples: u64,
}

#[derive(Debug, Default)]
struct Inner {
    range: u64,
    bitmap: Vec<u64>,
    latency_from_ns: Option<u64>,
    latencies_us: Vec<u64>,
    snap: TallySnapshot,
}

/// Shared counters of one benchmark run (see the module docs).
#[derive(Debug, Default)]
pub struct EventTally {
    inner: Mutex<Inner>,
    unique: AtomicU64,
    requests: AtomicU64,
}

impl EventTally {
    /// An empty tally expecting no sequence numbers (call [`EventTally::reset`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("tally poisoned")
    }

    /// Starts a new run: sequence numbers `0..range` are expected; latencies are recorded for
    /// events generated at or after `latency_from_ns` (`None`: no latency recording).
    pub fn reset(&self, range: u64, latency_from_ns: Option<u64>) {
        let mut g = self.lock();
        *g = Inner {
            range,
            bitmap: vec![0; range.div_ceil(64) as usize],
            latency_from_ns,
            latencies_us: Vec::new(),
            snap: TallySnapshot::default(),
        };
        self.unique.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
    }

    /// Counts one request/read's events, received at `received_ns` (for latency).
    pub fn record(&self, hits: &[Hit], wire_bytes: usize, decoded_bytes: usize, received_ns: u64) {
        let now = Instant::now();
        let mut g = self.lock();
        let g = &mut *g;
        let s = &mut g.snap;
        s.requests += 1;
        s.wire_bytes += wire_bytes as u64;
        s.decoded_bytes += decoded_bytes as u64;
        if hits.is_empty() {
            return;
        }
        s.first_event.get_or_insert(now);
        s.last_event = Some(now);
        s.events += hits.len() as u64;
        for h in hits {
            if h.seq >= g.range {
                s.out_of_range += 1;
                continue;
            }
            let (word, bit) = ((h.seq / 64) as usize, 1u64 << (h.seq % 64));
            if g.bitmap[word] & bit != 0 {
                s.duplicates += 1;
            } else {
                g.bitmap[word] |= bit;
                s.unique += 1;
            }
            if let (Some(from), Some(ts)) = (g.latency_from_ns, h.ts_ns)
                && ts >= from
            {
                g.latencies_us.push(received_ns.saturating_sub(ts) / 1_000);
            }
        }
        s.latency_samples = g.latencies_us.len() as u64;
        self.unique.store(s.unique, Ordering::Relaxed);
    }

    /// Records the outcome of a full check of `checked` events (or frames), `bad` of which
    /// failed.
    pub fn note_validation(&self, checked: u64, bad: u64) {
        let mut g = self.lock();
        g.snap.validated += checked;
        g.snap.invalid += bad;
    }

    /// A number that grows by one per call (receivers validate every Nth request).
    pub fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Distinct sequence numbers seen so far (cheap: no lock).
    pub fn unique(&self) -> u64 {
        self.unique.load(Ordering::Relaxed)
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> TallySnapshot {
        self.lock().snap.clone()
    }

    /// Latency percentiles in milliseconds (nearest rank), one per entry of `quantiles`
    /// (0.0..=1.0); `None` when nothing was recorded.
    pub fn latency_ms(&self, quantiles: &[f64]) -> Vec<Option<f64>> {
        let mut v = self.lock().latencies_us.clone();
        v.sort_unstable();
        quantiles
            .iter()
            .map(|q| {
                if v.is_empty() {
                    return None;
                }
                let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
                Some(v[rank - 1] as f64 / 1_000.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(body: &str) -> Vec<Hit> {
        let mut out = Vec::new();
        scan(body.as_bytes(), &mut out);
        out
    }

    #[test]
    fn finds_sequence_and_time_in_every_output_format() {
        let shipper = r#"{"time":1,"event":{"a":"b","__bench_seq__":"17","__bench_ts__":"1700000000123456789"}}
{"time":1,"event":{"__bench_seq__":"18","__bench_ts__":"5"}}"#;
        assert_eq!(
            hits(shipper),
            vec![
                Hit {
                    seq: 17,
                    ts_ns: Some(1_700_000_000_123_456_789)
                },
                Hit {
                    seq: 18,
                    ts_ns: Some(5)
                }
            ]
        );
        let seed = r#"{"event": "{\"x\": \"y\", \"__bench_seq__\": \"42\", \"__bench_ts__\": \"99\"}", "time": "1"}"#;
        assert_eq!(
            hits(seed),
            vec![Hit {
                seq: 42,
                ts_ns: Some(99)
            }]
        );
        let syslog = "<14>1 - h - - - - ||k=v||__bench_seq__=7||__bench_ts__=8\n";
        assert_eq!(
            hits(syslog),
            vec![Hit {
                seq: 7,
                ts_ns: Some(8)
            }]
        );
        assert_eq!(
            hits(r#""__bench_seq__":"3","other":"x""#),
            vec![Hit {
                seq: 3,
                ts_ns: None
            }]
        );
        assert!(hits(r#""__bench_seq__":"","x":"1""#).is_empty());
    }

    #[test]
    fn counts_unique_duplicates_and_out_of_range() {
        let t = EventTally::new();
        t.reset(10, Some(100));
        let h = |seq, ts| Hit {
            seq,
            ts_ns: Some(ts),
        };
        t.record(
            &[h(0, 50), h(1, 100), h(1, 100), h(12, 200)],
            10,
            20,
            1_100_000,
        );
        let s = t.snapshot();
        assert_eq!(
            (s.events, s.unique, s.duplicates, s.out_of_range),
            (4, 2, 1, 1)
        );
        assert_eq!(t.unique(), 2);
        assert_eq!((s.wire_bytes, s.decoded_bytes, s.requests), (10, 20, 1));
        // Only ts >= 100 is recorded: two sightings of seq 1, 1.0999 ms each.
        assert_eq!(s.latency_samples, 2);
        assert_eq!(t.latency_ms(&[0.5]), vec![Some(1.099)]);
        t.reset(10, None);
        assert_eq!(t.snapshot().events, 0);
        assert_eq!(t.latency_ms(&[0.5]), vec![None]);
    }
}
