//! The benchmark data: the emulator's deterministic ActionTrail + nginx generator
//! ([`shipper_emulator::Generator`], alternating groups of audit events with a nested JSON
//! `event` and 17-field nginx access logs, 200–1500 B per log), with two contents added to
//! every log for accounting: `__bench_seq__` (unique in the data set: `index * shards + shard`)
//! and `__bench_ts__` (generation time, ns since the epoch). They are inserted after the
//! log's own contents, so each format the subjects produce carries them next to each other.
//!
//! The backlog is generated once (one thread per shard) and shared: the slow subjects read a
//! prefix of every shard (the same first LogGroups, as `Bytes` clones: no copy). The trickle
//! workload generates groups in real time ([`Trickle`]).

use bytes::Bytes;
use shipper_emulator::{Generator, SampleKind};
use shipper_sls::proto::FieldIter;
use shipper_test_support::event_tally::{SEQ_FIELD, TS_FIELD, now_ns};

/// The log time of the backlog (2025-11-24T16:00:00Z): fixed, so the data set is the same
/// bytes on every run except the 19-digit `__bench_ts__` values.
pub const BACKLOG_TIME: u32 = 1_764_000_000;

/// One encoded LogGroup and its log count.
#[derive(Debug, Clone)]
pub struct Group {
    /// Protobuf `LogGroup` bytes.
    pub bytes: Bytes,
    /// Logs in it.
    pub logs: u32,
}

/// Groups per shard, in shard order.
#[derive(Debug, Clone, Default)]
pub struct Shards(pub Vec<Vec<Group>>);

/// Sizes of a [`Shards`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Totals {
    /// Logs.
    pub logs: u64,
    /// LogGroups.
    pub groups: u64,
    /// Raw bytes: the sum of the LogGroup encodings (what `x-log-bodyrawsize` counts, less
    /// 3–4 bytes of LogGroupList framing per group).
    pub raw_bytes: u64,
    /// One past the largest `__bench_seq__`.
    pub seq_range: u64,
}

impl Shards {
    /// Sizes.
    pub fn totals(&self) -> Totals {
        let n = self.0.len() as u64;
        let mut t = Totals::default();
        for (shard, groups) in self.0.iter().enumerate() {
            let logs: u64 = groups.iter().map(|g| u64::from(g.logs)).sum();
            t.logs += logs;
            t.groups += groups.len() as u64;
            t.raw_bytes += groups.iter().map(|g| g.bytes.len() as u64).sum::<u64>();
            if logs > 0 {
                t.seq_range = t.seq_range.max((logs - 1) * n + shard as u64 + 1);
            }
        }
        t
    }

    /// The first groups of every shard holding at least `bytes / shards` raw bytes each.
    pub fn prefix(&self, bytes: u64) -> Shards {
        let share = bytes.div_ceil(self.0.len().max(1) as u64);
        Shards(
            self.0
                .iter()
                .map(|groups| {
                    let mut sum = 0u64;
                    groups
                        .iter()
                        .take_while(|g| {
                            let take = sum < share;
                            sum += g.bytes.len() as u64;
                            take
                        })
                        .cloned()
                        .collect()
                })
                .collect(),
        )
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Appends a `Content { key, value }` as field 2 of a `Log`.
fn put_content(out: &mut Vec<u8>, key: &str, value: &str) {
    let inner_len = 2 + key.len() + value.len() + 2; // both lengths fit one varint byte
    out.push(0x12);
    put_varint(out, inner_len as u64);
    put_len(out, 0x0a, key.as_bytes());
    put_len(out, 0x12, value.as_bytes());
}

/// Re-encodes a generated `LogGroup` with the two benchmark contents in every log: log `i`
/// gets `__bench_seq__ = seq(i)` and `__bench_ts__ = ts_ns`. Contents go after the log's own
/// contents and before `Time_ns` (field order is free in protobuf; SLS writes it last).
pub fn add_bench_fields(group: &[u8], mut seq: impl FnMut(u64) -> u64, ts_ns: u64) -> Group {
    let ts = ts_ns.to_string();
    let mut out = Vec::with_capacity(group.len() + group.len() / 8 + 64);
    let mut log_buf = Vec::with_capacity(4096);
    let mut logs = 0u64;
    for field in FieldIter::new(group) {
        let field = field.expect("the generator writes valid protobuf");
        if field.number != 1 {
            out.extend_from_slice(&group[field.whole]);
            continue;
        }
        let log = &group[field.payload];
        log_buf.clear();
        let mut trailer = 0..0;
        for f in FieldIter::new(log) {
            let f = f.expect("the generator writes valid protobuf");
            if f.number == 4 {
                trailer = f.whole;
            } else {
                log_buf.extend_from_slice(&log[f.whole]);
            }
        }
        put_content(&mut log_buf, SEQ_FIELD, &seq(logs).to_string());
        put_content(&mut log_buf, TS_FIELD, &ts);
        log_buf.extend_from_slice(&log[trailer]);
        put_len(&mut out, 0x0a, &log_buf);
        logs += 1;
    }
    Group {
        bytes: Bytes::from(out),
        logs: logs as u32,
    }
}

/// Per-shard generator seed (the emulator's preload derives its seeds the same way).
fn shard_seed(seed: u64, shard: usize) -> u64 {
    seed ^ (shard as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Generates the backlog: `total_bytes` raw bytes spread evenly over `shards` shards, groups
/// of `logs_per_group` logs, one thread per shard.
pub fn generate_backlog(
    kind: SampleKind,
    shards: usize,
    total_bytes: u64,
    logs_per_group: usize,
    seed: u64,
) -> Shards {
    let share = total_bytes.div_ceil(shards as u64);
    let n = shards as u64;
    let ts = now_ns();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..shards)
            .map(|shard| {
                scope.spawn(move || {
                    let mut generator = Generator::new(kind, shard_seed(seed, shard));
                    let mut groups = Vec::new();
                    let (mut bytes, mut index) = (0u64, 0u64);
                    while bytes < share {
                        let raw = generator.group(logs_per_group, BACKLOG_TIME);
                        let base = index;
                        let g = add_bench_fields(&raw, |i| (base + i) * n + shard as u64, ts);
                        index += u64::from(g.logs);
                        bytes += g.bytes.len() as u64;
                        groups.push(g);
                    }
                    groups
                })
            })
            .collect();
        Shards(
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect(),
        )
    })
}

/// Real-time generation for the latency runs: every tick, one group per shard, stamped with
/// the time it was generated; sequence numbers count up from 0 in generation order.
#[derive(Debug)]
pub struct Trickle {
    generators: Vec<Generator>,
    next_seq: u64,
}

/// Logs a trickle at `rate` logs/s has generated after `ticks` ticks of `tick_secs`: the
/// schedule is integral, so tick `k` writes `planned(k + 1) - planned(k)` logs and the total
/// is known before the run.
pub fn planned(rate: f64, tick_secs: f64, ticks: u64) -> u64 {
    (rate * tick_secs * ticks as f64).floor() as u64
}

impl Trickle {
    /// A trickle of `kind` logs over `shards` shards.
    pub fn new(kind: SampleKind, shards: usize, seed: u64) -> Self {
        Self {
            generators: (0..shards)
                .map(|s| Generator::new(kind, shard_seed(seed ^ 0x7431, s)))
                .collect(),
            next_seq: 0,
        }
    }

    /// Logs generated so far.
    pub fn generated(&self) -> u64 {
        self.next_seq
    }

    /// The groups of one tick: `whole` logs split over the shards; `(shard, group)` pairs,
    /// empty groups left out.
    pub fn tick(&mut self, whole: u64) -> Vec<(u32, Group)> {
        let shards = self.generators.len() as u64;
        let now = now_ns();
        let time = (now / 1_000_000_000) as u32;
        let mut out = Vec::new();
        for (shard, generator) in self.generators.iter_mut().enumerate() {
            let n = whole / shards + u64::from((shard as u64) < whole % shards);
            if n == 0 {
                continue;
            }
            let raw = generator.group(n as usize, time);
            let base = self.next_seq;
            let g = add_bench_fields(&raw, |i| base + i, now);
            self.next_seq += u64::from(g.logs);
            out.push((shard as u32, g));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_sls::proto::LogGroup;

    fn content<'a>(log: &'a shipper_sls::proto::Log, key: &str) -> Option<&'a [u8]> {
        log.contents
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.as_slice())
    }

    #[test]
    fn every_log_gets_sequence_and_time_before_time_ns() {
        let raw = Generator::new(SampleKind::Nginx, 1).group(5, BACKLOG_TIME);
        let g = add_bench_fields(&raw, |i| 100 + i, 42);
        assert_eq!(g.logs, 5);
        let original: LogGroup = prost::Message::decode(raw).unwrap();
        let decoded: LogGroup = prost::Message::decode(g.bytes).unwrap();
        assert_eq!(decoded.topic, original.topic);
        assert_eq!(decoded.log_tags, original.log_tags);
        for (i, (a, b)) in original.logs.iter().zip(&decoded.logs).enumerate() {
            assert_eq!(b.time, a.time);
            assert_eq!(b.time_ns, a.time_ns);
            assert_eq!(b.contents[..a.contents.len()], a.contents[..]);
            assert_eq!(b.contents.len(), a.contents.len() + 2);
            assert_eq!(
                content(b, SEQ_FIELD),
                Some((100 + i).to_string().as_bytes())
            );
            assert_eq!(content(b, TS_FIELD), Some(&b"42"[..]));
        }
    }

    #[test]
    fn backlog_is_deterministic_with_unique_sequences_and_prefixes() {
        let a = generate_backlog(SampleKind::Mixed, 3, 300_000, 50, 7);
        let b = generate_backlog(SampleKind::Mixed, 3, 300_000, 50, 7);
        let t = a.totals();
        assert!(t.raw_bytes >= 300_000, "{t:?}");
        assert_eq!(t.logs, b.totals().logs);
        assert_eq!(t.raw_bytes, b.totals().raw_bytes);
        let mut seqs = std::collections::BTreeSet::new();
        for groups in &a.0 {
            for g in groups {
                let d: LogGroup = prost::Message::decode(g.bytes.clone()).unwrap();
                for log in &d.logs {
                    let s = std::str::from_utf8(content(log, SEQ_FIELD).unwrap()).unwrap();
                    assert!(seqs.insert(s.parse::<u64>().unwrap()));
                }
            }
        }
        assert_eq!(seqs.len() as u64, t.logs);
        assert!(*seqs.last().unwrap() < t.seq_range);
        let p = a.prefix(100_000).totals();
        assert!(p.raw_bytes >= 100_000 && p.raw_bytes < t.raw_bytes, "{p:?}");
    }

    #[test]
    fn trickle_schedule_is_integral_and_numbers_in_order() {
        let ticks: Vec<u64> = (0..4)
            .map(|k| planned(25.0, 0.1, k + 1) - planned(25.0, 0.1, k))
            .collect();
        assert_eq!(ticks, vec![2, 3, 2, 3]);
        assert_eq!(ticks.iter().sum::<u64>(), planned(25.0, 0.1, 4));
        let mut t = Trickle::new(SampleKind::Mixed, 4, 1);
        assert_eq!(t.tick(2).iter().map(|(_, g)| g.logs).sum::<u32>(), 2);
        assert_eq!(t.tick(7).len(), 4);
        assert_eq!(t.generated(), 9);
    }
}
