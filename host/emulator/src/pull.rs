//! The PullLogs hot path: turn stored LogGroups into a `LogGroupList` body and compress it.
//!
//! A `LogGroupList` is the concatenation of its `LogGroups` fields (tag `0x0a`, varint
//! length, the group's bytes), so the body is built by copying the stored encodings behind a
//! 1–6 byte header each — no protobuf encoding at all. With an SPL query each group goes
//! through [`crate::spl::Query::apply`] instead. Compression is one raw LZ4 block
//! (`shipper_sls::codec`), the dominant cost; see `benches/pull.rs` for the figure.
//!
//! [`PullCache`] keeps compressed replies for re-reads (a benchmark running several shipper
//! configurations over the same preloaded data, several consumer groups, a restart from old
//! checkpoints). Stored data is append-only, so a reply that stopped at `count` or at the byte
//! cap (not at the end of the data) never changes and can be served again as is.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use shipper_sls::codec;
use shipper_sls::proto::WireError;

use crate::spl::Query;
use crate::store::StoredGroup;

/// A built PullLogs body and its counters.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// The uncompressed `LogGroupList`.
    pub raw: Vec<u8>,
    /// LogGroups in `raw`.
    pub groups: usize,
    /// Raw bytes of the groups scanned (before SPL), framed as in an unfiltered body.
    pub scanned_bytes: usize,
    /// Logs scanned / kept (counted only with SPL).
    pub lines_in: usize,
    /// Logs kept.
    pub lines_out: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Size of `group` framed as a `LogGroupList` element.
pub(crate) fn framed_len(group: &[u8]) -> usize {
    1 + varint_len(group.len() as u64) + group.len()
}

/// Builds the body for `groups` (already bounded by count and size).
pub(crate) fn build(groups: &[StoredGroup], query: Option<&Query>) -> Result<Body, WireError> {
    let scanned_bytes: usize = groups.iter().map(|g| framed_len(&g.bytes)).sum();
    let mut body = Body {
        raw: Vec::with_capacity(scanned_bytes),
        scanned_bytes,
        ..Body::default()
    };
    match query.filter(|q| !q.is_identity()) {
        None => {
            for g in groups {
                body.raw.push(0x0a);
                put_varint(&mut body.raw, g.bytes.len() as u64);
                body.raw.extend_from_slice(&g.bytes);
            }
            body.groups = groups.len();
        }
        Some(q) => {
            for g in groups {
                let before = body.raw.len();
                let applied = q.apply(&g.bytes, &mut body.raw)?;
                body.lines_in += applied.lines_in;
                body.lines_out += applied.lines_out;
                if body.raw.len() > before {
                    body.groups += 1;
                }
            }
        }
    }
    Ok(body)
}

/// Compresses a body as SLS serves it (raw LZ4 block).
pub(crate) fn compress(raw: &[u8]) -> Vec<u8> {
    codec::compress_lz4(raw)
}

/// What identifies a cacheable reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PullKey {
    /// [`crate::store::Shard::uid`] (unique for the process lifetime, unlike shard ids).
    pub shard: u64,
    pub start: usize,
    pub count: usize,
    pub end: Option<usize>,
    pub max_bytes: usize,
}

/// A cached lz4 reply.
#[derive(Debug, Clone)]
pub(crate) struct CachedPull {
    pub body: Bytes,
    pub raw_len: usize,
    pub groups: usize,
}

/// FIFO cache of compressed replies, bounded in bytes (0 disables it).
pub(crate) struct PullCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<PullKey, CachedPull>,
    order: VecDeque<PullKey>,
    bytes: usize,
}

impl PullCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    pub fn get(&self, key: &PullKey) -> Option<CachedPull> {
        crate::store::lock(&self.inner).map.get(key).cloned()
    }

    pub fn insert(&self, key: PullKey, value: CachedPull) {
        if value.body.len() > self.max_bytes / 4 {
            return;
        }
        let mut inner = crate::store::lock(&self.inner);
        inner.bytes += value.body.len();
        if let Some(old) = inner.map.insert(key, value) {
            inner.bytes -= old.body.len();
        } else {
            inner.order.push_back(key);
        }
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.body.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prost::Message;
    use shipper_sls::proto::{LogGroup, LogGroupList};

    #[test]
    fn cache_is_bounded() {
        let cache = PullCache::new(100);
        let key = |start| PullKey {
            shard: 1,
            start,
            count: 10,
            end: None,
            max_bytes: 1,
        };
        let value = || CachedPull {
            body: Bytes::from(vec![0u8; 20]),
            raw_len: 40,
            groups: 2,
        };
        for i in 0..10 {
            cache.insert(key(i), value());
        }
        assert!(cache.get(&key(0)).is_none(), "oldest evicted");
        assert_eq!(cache.get(&key(9)).unwrap().groups, 2);
        assert_eq!(crate::store::lock(&cache.inner).bytes, 100);
        cache.insert(
            key(20),
            CachedPull {
                body: Bytes::from(vec![0u8; 30]),
                raw_len: 1,
                groups: 1,
            },
        );
        assert!(cache.get(&key(20)).is_none(), "too large for the cache");
    }

    #[test]
    fn concatenation_is_a_valid_log_group_list() {
        let path = format!(
            "{}/../../tests/fixtures/sls/loggrouplist.pb",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read(path).unwrap();
        let list = LogGroupList::decode(raw.as_slice()).unwrap();
        let stored: Vec<StoredGroup> = list
            .log_groups
            .iter()
            .map(|g| StoredGroup {
                bytes: Bytes::from(g.encode_to_vec()),
                time: 0,
            })
            .collect();
        let body = build(&stored, None).unwrap();
        assert_eq!(body.raw, raw, "byte-identical to the SDK's vector");
        assert_eq!(body.groups, 2);
        assert_eq!(body.scanned_bytes, raw.len());
        let big = LogGroup {
            source: Some("x".repeat(300)),
            ..Default::default()
        };
        let b = Bytes::from(big.encode_to_vec());
        let body = build(&[StoredGroup { bytes: b, time: 0 }], None).unwrap();
        assert_eq!(
            LogGroupList::decode(body.raw.as_slice())
                .unwrap()
                .log_groups[0],
            big
        );
    }
}
