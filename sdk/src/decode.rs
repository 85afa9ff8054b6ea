//! The zero-copy `LogGroup` decoder: [`Group`] and [`Log`] borrow `&str`s straight from the
//! protobuf bytes the host passed to `process`.
//!
//! Owns: walking the protobuf wire format of one SLS `LogGroup` (schema in
//! `docs/sls-protocol.md` §6.1) and of each of its `Log`s, UTF-8 checks, and the repair of
//! invalid UTF-8. Does not own: the per-log loop and the result list (`glue`), nor any view
//! that merges group and log fields (`flat`).
//!
//! Wire facts this relies on: `LogGroup.Logs` = field 1, `Topic` = 3, `Source` = 4,
//! `LogTags` = 6 (`LogTag{Key = 1, Value = 2}`); `Log.Time` = field 1 (varint),
//! `Log.Contents` = field 2 (`Content{Key = 1, Value = 2}`), `Log.Time_ns` = field 4
//! (**fixed32**). Unknown fields are skipped, as protobuf requires. Where protobuf says a
//! later scalar wins (a repeated `Topic`), the later one wins here too.
//!
//! Invalid UTF-8 (SLS stores values as bytes; Python's SDK falls back to a `bytes` schema for
//! them) is replaced by U+FFFD, the way `String::from_utf8_lossy` does. The official Python
//! SDK instead *drops* the invalid bytes (`decode('utf8', 'ignore')`); a replacement
//! character keeps the evidence that something was there. Only the affected log (or group
//! metadata) takes the slow path that allocates; valid input is never copied.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::{BatchInfo, Timestamp};

/// Why bytes are not a valid protobuf encoding of the message we expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Byte offset (within the message being decoded) where decoding failed.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for WireError {}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// One top-level field of a message.
#[derive(Debug, Clone, Copy)]
struct RawField<'a> {
    number: u32,
    wire_type: u8,
    /// Offset of the field's tag, for error messages.
    start: usize,
    /// The varint value (varint fields) or the little-endian value (fixed32).
    scalar: u64,
    /// The payload of a length-delimited field.
    bytes: &'a [u8],
}

/// Iterates over the fields of one message without decoding their payloads.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        // Fast path: one-byte varints (tags, small lengths) are the common case.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(WireError {
                    offset: start,
                    what: "truncated varint",
                });
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                break;
            }
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError {
            offset: start,
            what: "varint longer than 64 bits",
        })
    }

    #[inline]
    fn take(&mut self, len: usize, start: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError {
                offset: start,
                what: "field runs past the end of the message",
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    fn next_field(&mut self) -> Option<Result<RawField<'a>, WireError>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.read_field())
    }

    #[inline(always)]
    fn read_field(&mut self) -> Result<RawField<'a>, WireError> {
        let start = self.pos;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).unwrap_or(0);
        if number == 0 {
            return Err(WireError {
                offset: start,
                what: "invalid field number 0",
            });
        }
        let wire_type = (tag & 7) as u8;
        let mut field = RawField {
            number,
            wire_type,
            start,
            scalar: 0,
            bytes: &[],
        };
        match wire_type {
            WIRE_VARINT => field.scalar = self.varint()?,
            WIRE_FIXED64 => {
                self.take(8, start)?;
            }
            WIRE_LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| WireError {
                    offset: start,
                    what: "length does not fit in memory",
                })?;
                field.bytes = self.take(len, start)?;
            }
            WIRE_FIXED32 => {
                let b = self.take(4, start)?;
                field.scalar = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
            _ => {
                return Err(WireError {
                    offset: start,
                    what: "unsupported wire type (groups are not used by SLS)",
                });
            }
        }
        Ok(field)
    }
}

/// Decodes a `{Key = 1, Value = 2}` pair (`Log.Content` and `LogTag` share the shape).
/// A missing key or value reads as empty, like a proto3 default, rather than failing the
/// log: SLS producers always send both, and an empty string loses nothing.
#[inline]
fn key_value(bytes: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    // Fast path: what every SDK writes, `0a len key 12 len value` and nothing else.
    if bytes.first() == Some(&0x0a) {
        let mut f = Fields { buf: bytes, pos: 1 };
        if let Some(len) = f.varint().ok().and_then(|l| usize::try_from(l).ok())
            && let Ok(key) = f.take(len, 0)
            && bytes.get(f.pos) == Some(&0x12)
        {
            f.pos += 1;
            if let Some(len) = f.varint().ok().and_then(|l| usize::try_from(l).ok())
                && let Ok(value) = f.take(len, 0)
                && f.pos == bytes.len()
            {
                return Ok((key, value));
            }
        }
    }
    // Empty slices inside `bytes`, so callers may compute offsets from them.
    let mut key: &[u8] = &bytes[..0];
    let mut value: &[u8] = &bytes[..0];
    let mut fields = Fields::new(bytes);
    while let Some(field) = fields.next_field() {
        let field = field?;
        match (field.number, field.wire_type) {
            (1, WIRE_LEN) => key = field.bytes,
            (2, WIRE_LEN) => value = field.bytes,
            (1 | 2, _) => {
                return Err(WireError {
                    offset: field.start,
                    what: "key/value is not length-delimited",
                });
            }
            _ => {}
        }
    }
    Ok((key, value))
}

/// Metadata shared by every log of one `process` call: the decoded `LogGroup` header plus
/// the host's [`BatchInfo`].
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    batch: &'a BatchInfo,
    topic: &'a str,
    source: &'a str,
    tags: &'a [(&'a str, &'a str)],
    cache: Option<&'a GroupCache>,
}

/// Text derived from a group once and reused for each of its logs (per `process` call).
#[derive(Debug, Default)]
pub(crate) struct GroupCache {
    /// The group's part of the flattened JSON object, compact and Python style.
    pub(crate) json: [std::cell::OnceCell<crate::flat::JsonMeta>; 2],
    /// Whether a tag key repeats within the group (the flattened dict then merges).
    pub(crate) tags_repeat: std::cell::OnceCell<bool>,
}

impl<'a> Group<'a> {
    /// A group from parts (for tests and for SDK code that builds views).
    pub fn new(
        batch: &'a BatchInfo,
        topic: &'a str,
        source: &'a str,
        tags: &'a [(&'a str, &'a str)],
    ) -> Self {
        Self {
            batch,
            topic,
            source,
            tags,
            cache: None,
        }
    }

    pub(crate) fn with_cache(mut self, cache: &'a GroupCache) -> Self {
        self.cache = Some(cache);
        self
    }

    pub(crate) fn cache(&self) -> Option<&'a GroupCache> {
        self.cache
    }

    /// `LogGroup.Topic` (`__topic__`); empty when unset.
    #[inline]
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// `LogGroup.Source` (`__source__`, usually the producer's IP); empty when unset.
    #[inline]
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// `LogGroup.LogTags` in wire order, keys without the `__tag__:` prefix that the
    /// flattened form adds (e.g. `("__receive_time__", "1700000005")`).
    #[inline]
    pub fn tags(&self) -> &'a [(&'a str, &'a str)] {
        self.tags
    }

    /// The value of tag `key` (without the `__tag__:` prefix); the last one wins when a key
    /// repeats, as in the official SDK's dict.
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// SLS project of this batch.
    #[inline]
    pub fn project(&self) -> &'a str {
        &self.batch.project
    }

    /// SLS logstore of this batch.
    #[inline]
    pub fn logstore(&self) -> &'a str {
        &self.batch.logstore
    }

    /// Shard id of this batch.
    #[inline]
    pub fn shard(&self) -> u32 {
        self.batch.shard
    }

    /// Host wall clock when the batch was pulled (use it instead of reading a clock, so that
    /// replaying a batch gives the same output).
    #[inline]
    pub fn received(&self) -> Timestamp {
        self.batch.received
    }

    /// The host's batch description.
    #[inline]
    pub fn batch(&self) -> &'a BatchInfo {
        self.batch
    }
}

/// One SLS log: its time and its contents, in wire order, borrowed from the input bytes.
#[derive(Debug, Clone, Copy)]
pub struct Log<'a> {
    time: u32,
    time_ns: Option<u32>,
    contents: &'a [(&'a str, &'a str)],
    encoded_len: usize,
    plain_keys: bool,
}

impl<'a> Log<'a> {
    /// A log from parts (for tests and for SDK code that builds views).
    pub fn new(time: u32, time_ns: Option<u32>, contents: &'a [(&'a str, &'a str)]) -> Self {
        let encoded_len = contents.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        Self {
            time,
            time_ns,
            contents,
            encoded_len,
            plain_keys: false,
        }
    }

    /// A log as [`decode_log`] found it: `times.plain_keys` is trusted.
    #[inline]
    pub(crate) fn decoded(
        times: LogTimes,
        contents: &'a [(&'a str, &'a str)],
        encoded_len: usize,
    ) -> Self {
        Self {
            time: times.time,
            time_ns: times.time_ns,
            contents,
            encoded_len,
            plain_keys: times.plain_keys,
        }
    }

    /// True when the decoder saw that no content key names a group or time entry of the
    /// flattened dict (`__time__`, `__topic__`, `__source__`, `__time_ns_part__`,
    /// `__tag__:…`) and no two content keys are equal, so the flattened dict needs no
    /// merging of content keys. False means
    /// "unknown" (a log built by hand, or a possible repeat): check the keys.
    #[inline]
    pub(crate) fn plain_keys(&self) -> bool {
        self.plain_keys
    }

    /// `Log.Time`: seconds since the Unix epoch (`__time__`).
    #[inline]
    pub fn time(&self) -> u32 {
        self.time
    }

    /// `Log.Time_ns`: the nanosecond part, `None` when the field is absent. Present-but-zero
    /// is `Some(0)` (the flattened form treats both as "no nanoseconds").
    #[inline]
    pub fn time_ns(&self) -> Option<u32> {
        self.time_ns
    }

    /// The log time as a [`Timestamp`]; see [`Timestamp::from_sls`].
    #[inline]
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_sls(self.time, self.time_ns)
    }

    /// The contents (`Log.Contents`) as `(key, value)` pairs in wire order; a key may repeat.
    #[inline]
    pub fn contents(&self) -> &'a [(&'a str, &'a str)] {
        self.contents
    }

    /// The value of content `key`; when a key repeats the last one wins (a Python dict
    /// built from the log would hold the last value).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.contents
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Size of the encoded log in bytes: a good first guess for an output buffer.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }
}

/// The top level of one `LogGroup`: its metadata and where each encoded log is.
#[derive(Debug)]
pub(crate) struct GroupHeader<'a> {
    pub(crate) topic: Cow<'a, str>,
    pub(crate) source: Cow<'a, str>,
    pub(crate) tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) logs: Vec<Range<usize>>,
}

/// Scans one encoded `LogGroup`. A framing error here fails the whole call: without the
/// framing the log count (and so the index alignment of results) is unknown.
pub(crate) fn scan_group(bytes: &[u8]) -> Result<GroupHeader<'_>, WireError> {
    let mut header = GroupHeader {
        topic: Cow::Borrowed(""),
        source: Cow::Borrowed(""),
        tags: Vec::new(),
        logs: Vec::new(),
    };
    let base = bytes.as_ptr() as usize;
    let mut fields = Fields::new(bytes);
    while let Some(field) = fields.next_field() {
        let field = field?;
        let is_len = field.wire_type == WIRE_LEN;
        match field.number {
            1 | 3 | 4 | 6 if !is_len => {
                return Err(WireError {
                    offset: field.start,
                    what: "LogGroup field is not length-delimited",
                });
            }
            1 => {
                let start = field.bytes.as_ptr() as usize - base;
                header.logs.push(start..start + field.bytes.len());
            }
            3 => header.topic = String::from_utf8_lossy(field.bytes),
            4 => header.source = String::from_utf8_lossy(field.bytes),
            6 => {
                let (k, v) = key_value(field.bytes).map_err(|e| WireError {
                    offset: field.start + e.offset,
                    what: e.what,
                })?;
                header
                    .tags
                    .push((String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
            }
            _ => {}
        }
    }
    Ok(header)
}

/// `Log.Time` and `Log.Time_ns` of one decoded log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogTimes {
    pub(crate) time: u32,
    pub(crate) time_ns: Option<u32>,
    /// Set by [`decode_log`]: see [`Log::plain_keys`].
    pub(crate) plain_keys: bool,
}

/// Why one log could not be decoded on the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogError {
    /// The log's bytes are not a valid `Log` message; the log gets a record error.
    Wire(WireError),
    /// A key or value is not UTF-8; decode again with [`decode_log_lossy`].
    Utf8,
}

/// Why a content could not be taken on the fast path.
enum Stop {
    Wire(WireError),
    Utf8,
}

/// Walks one encoded `Log`, handing each `Content` message's payload to `content`.
#[inline]
fn walk_log<'a, E>(
    bytes: &'a [u8],
    mut content: impl FnMut(&'a [u8]) -> Result<(), E>,
    wire: impl Fn(WireError) -> E,
) -> Result<LogTimes, E> {
    let mut time = None;
    let mut time_ns = None;
    let mut fields = Fields::new(bytes);
    while fields.pos < bytes.len() {
        // Fast path for `Contents` (tag 0x12), nearly every field of a log.
        if bytes[fields.pos] == 0x12 {
            let start = fields.pos;
            fields.pos += 1;
            let len = fields.varint().map_err(&wire)?;
            let len = usize::try_from(len).map_err(|_| {
                wire(WireError {
                    offset: start,
                    what: "length does not fit in memory",
                })
            })?;
            content(fields.take(len, start).map_err(&wire)?)?;
            continue;
        }
        let field = fields.read_field().map_err(&wire)?;
        match (field.number, field.wire_type) {
            // uint32 in the schema: protobuf parsers keep the low 32 bits of a wider varint.
            (1, WIRE_VARINT) => time = Some(field.scalar as u32),
            (2, WIRE_LEN) => content(field.bytes)?,
            (4, WIRE_FIXED32) => time_ns = Some(field.scalar as u32),
            (1 | 2 | 4, _) => {
                return Err(wire(WireError {
                    offset: field.start,
                    what: match field.number {
                        1 => "Log.Time is not a varint",
                        2 => "Log.Contents is not length-delimited",
                        _ => "Log.Time_ns is not fixed32",
                    },
                }));
            }
            _ => {}
        }
    }
    match time {
        Some(time) => Ok(LogTimes {
            time,
            time_ns,
            plain_keys: false,
        }),
        None => Err(wire(WireError {
            offset: 0,
            what: "Log.Time (field 1, required) is missing",
        })),
    }
}

/// The offset of `content` within `log`, to report errors against the log's bytes.
fn offset_in(log: &[u8], content: &[u8], e: WireError) -> WireError {
    WireError {
        offset: content.as_ptr() as usize - log.as_ptr() as usize + e.offset,
        what: e.what,
    }
}

/// Whether a content key can land on an entry the flattened dict makes from something
/// other than the contents (`__time__`, `__topic__`, `__source__`, `__time_ns_part__`,
/// `__tag__:…`). Other `__` keys (Logtail's `__raw__`, a `__seq__` of one's own) are plain
/// content keys.
#[inline(always)]
pub(crate) fn collides_with_meta(key: &[u8]) -> bool {
    key.starts_with(b"__")
        && (matches!(
            key,
            b"__time__" | b"__topic__" | b"__source__" | b"__time_ns_part__"
        ) || key.starts_with(crate::flat::TAG_PREFIX.as_bytes()))
}

/// One bit of a 64-bit set standing for `key` (from its length and last byte): equal keys
/// always share the bit, so a bit not yet in the set proves the key new. Used to rule out
/// repeated keys without comparing every pair.
#[inline]
pub(crate) fn key_fingerprint(key: &[u8]) -> u64 {
    let last = usize::from(key.last().copied().unwrap_or(0));
    1u64 << ((key.len().wrapping_mul(7) ^ last.wrapping_mul(13)) & 63)
}

/// Whether every byte of `b` is ASCII: 8 bytes per step, the tail as an overlapping last
/// word. Cheaper than `str::from_utf8` on the short strings of a log (on wasm32 its fast
/// path works 4 bytes at a time after an alignment prologue).
#[inline(always)]
fn is_ascii(b: &[u8]) -> bool {
    const HI: u64 = 0x8080_8080_8080_8080;
    let n = b.len();
    if n < 8 {
        if n >= 4 {
            let first = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let last = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
            return (first | last) & 0x8080_8080 == 0;
        }
        return b.iter().fold(0u8, |acc, &c| acc | c) < 0x80;
    }
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let mut acc = word(n - 8);
    let mut i = 0;
    while i + 8 <= n {
        acc |= word(i);
        i += 8;
    }
    acc & HI == 0
}

/// Decodes one log on the fast path: every key and value borrowed, UTF-8 checked once per
/// content. `fields` is cleared first and receives the contents.
#[inline]
pub(crate) fn decode_log<'a>(
    bytes: &'a [u8],
    fields: &mut Vec<(&'a str, &'a str)>,
) -> Result<LogTimes, LogError> {
    fields.clear();
    // Whether the keys are "plain" (see `Log::plain_keys`), worked out here while each key
    // is at hand: a 64-bit set of key fingerprints (length and last byte) rules out most
    // repeats at once; only when a fingerprint was seen before are the keys compared.
    let mut seen = 0u64;
    let mut plain = true;
    let walked = walk_log(
        bytes,
        |content| {
            let (k, v) =
                key_value(content).map_err(|e| Stop::Wire(offset_in(bytes, content, e)))?;
            let bit = key_fingerprint(k);
            if collides_with_meta(k)
                || (seen & bit != 0 && fields.iter().any(|(p, _)| p.as_bytes() == k))
            {
                plain = false;
            }
            seen |= bit;
            // ASCII (nearly every key and value) is checked inline, 8 bytes at a time.
            if is_ascii(content) {
                // SAFETY: `k` and `v` are sub-slices of `content`, which is all ASCII, so
                // each is ASCII and therefore valid UTF-8.
                let pair = unsafe {
                    (
                        std::str::from_utf8_unchecked(k),
                        std::str::from_utf8_unchecked(v),
                    )
                };
                fields.push(pair);
                return Ok(());
            }
            // One check for key and value together: when the whole payload is UTF-8, its
            // length bytes are single-byte (a multi-byte varint after an ASCII tag is never
            // UTF-8), so key and value start and end on character boundaries.
            let pair = match std::str::from_utf8(content) {
                Ok(text) => {
                    let at = |part: &[u8]| {
                        let start = part.as_ptr() as usize - content.as_ptr() as usize;
                        text.get(start..start + part.len())
                    };
                    at(k).zip(at(v))
                }
                Err(_) => None,
            };
            let pair = match pair {
                Some(pair) => pair,
                None => match (std::str::from_utf8(k), std::str::from_utf8(v)) {
                    (Ok(k), Ok(v)) => (k, v),
                    _ => return Err(Stop::Utf8),
                },
            };
            fields.push(pair);
            Ok(())
        },
        Stop::Wire,
    );
    match walked {
        Ok(times) => Ok(LogTimes {
            plain_keys: plain,
            ..times
        }),
        Err(Stop::Wire(e)) => Err(LogError::Wire(e)),
        Err(Stop::Utf8) => Err(LogError::Utf8),
    }
}

/// Decodes one log whose keys or values are not all UTF-8, replacing invalid sequences
/// with U+FFFD. Allocates only for the strings that need repair.
pub(crate) fn decode_log_lossy<'a>(
    bytes: &'a [u8],
    fields: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Result<LogTimes, WireError> {
    fields.clear();
    walk_log(
        bytes,
        |content| {
            let (k, v) = key_value(content).map_err(|e| offset_in(bytes, content, e))?;
            fields.push((String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
            Ok(())
        },
        |e| e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestGroup, TestLog, encode_group};

    fn fixture_pb() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/sls/loggrouplist.pb"
        );
        std::fs::read(path).unwrap()
    }

    /// Splits a `LogGroupList` into its groups (field 1), the way the host does.
    fn groups_of(list: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut fields = Fields::new(list);
        while let Some(f) = fields.next_field() {
            let f = f.unwrap();
            assert_eq!(f.number, 1);
            out.push(f.bytes);
        }
        out
    }

    #[test]
    fn decodes_the_python_sdk_vector() {
        let list = fixture_pb();
        let groups = groups_of(&list);
        assert_eq!(groups.len(), 2);

        let g0 = scan_group(groups[0]).unwrap();
        assert_eq!(g0.topic, "topic-a");
        assert_eq!(g0.source, "10.0.0.1");
        assert_eq!(
            g0.tags,
            vec![
                (Cow::Borrowed("host"), Cow::Borrowed("web-1")),
                (Cow::Borrowed("env"), Cow::Borrowed("prod"))
            ]
        );
        assert_eq!(g0.logs.len(), 2);
        let mut fields = Vec::new();
        let t = decode_log(&groups[0][g0.logs[0].clone()], &mut fields).unwrap();
        assert_eq!(
            t,
            LogTimes {
                time: 1_700_000_000,
                time_ns: Some(123_456_789),
                plain_keys: true,
            }
        );
        assert_eq!(fields, [("level", "INFO"), ("message", "hello world")]);
        let t = decode_log(&groups[0][g0.logs[1].clone()], &mut fields).unwrap();
        assert_eq!(t.time_ns, None);
        assert_eq!(
            fields,
            [
                ("level", "WARN"),
                ("message", "disk 91% full"),
                ("unicode", "héllo ✓")
            ]
        );

        let g1 = scan_group(groups[1]).unwrap();
        assert_eq!(g1.topic, "");
        assert_eq!(g1.logs.len(), 2);
        let t = decode_log(&groups[1][g1.logs[0].clone()], &mut fields).unwrap();
        // Time_ns present but zero stays distinguishable from absent.
        assert_eq!(t.time_ns, Some(0));
        assert_eq!(fields, [("status", "200"), ("empty", "")]);
        let t = decode_log(&groups[1][g1.logs[1].clone()], &mut fields).unwrap();
        assert_eq!(t.time_ns, Some(999_999_999));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // Group: Reserved(2) + MachineUUID(5) + a varint field 9 + a fixed64 field 10.
        let mut g = vec![0x12, 1, b'x', 0x2a, 1, b'y', 0x48, 0x96, 0x01];
        g.extend_from_slice(&[0x51, 1, 2, 3, 4, 5, 6, 7, 8]);
        // Log with an unknown fixed64 field 7 and an unknown field 3 inside a content.
        let log = [
            0x08, 0x05, 0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x09, 0x0a, 1, b'k', 0x18, 1, 0x12, 2,
            b'v', b'w',
        ];
        g.push(0x0a);
        g.push(log.len() as u8);
        g.extend_from_slice(&log);
        let h = scan_group(&g).unwrap();
        assert_eq!(h.logs.len(), 1);
        let mut fields = Vec::new();
        let t = decode_log(&g[h.logs[0].clone()], &mut fields).unwrap();
        assert_eq!(t.time, 5);
        assert_eq!(fields, [("k", "vw")]);
    }

    #[test]
    fn missing_key_or_value_reads_as_empty_and_long_values_decode() {
        let mut fields = Vec::new();
        // Content with only a value, then one with only a key.
        let log = [
            0x08, 0x01, 0x12, 0x03, 0x12, 0x01, b'x', 0x12, 0x03, 0x0a, 0x01, b'k',
        ];
        decode_log(&log, &mut fields).unwrap();
        assert_eq!(fields, [("", "x"), ("k", "")]);
        // Values of 127, 128 and 300 bytes (one- and two-byte lengths), ASCII and not.
        for value in ["a".repeat(127), "b".repeat(128), "é".repeat(150)] {
            let log = TestLog {
                time: 1,
                time_ns: None,
                contents: vec![("key".into(), value.clone())],
            };
            let bytes = crate::testing::encode_log(&log);
            let mut fields = Vec::new();
            decode_log(&bytes, &mut fields).unwrap();
            assert_eq!(fields, [("key", value.as_str())]);
        }
    }

    #[test]
    fn is_ascii_agrees_with_std_at_every_length_and_position() {
        for n in 0..40 {
            let ascii = vec![b'a'; n];
            assert!(is_ascii(&ascii), "{n}");
            for at in 0..n {
                let mut b = ascii.clone();
                b[at] = 0x80 | (at as u8);
                assert!(!is_ascii(&b), "{n} {at}");
            }
        }
    }

    #[test]
    fn plain_keys_means_no_meta_key_and_no_repeat() {
        let plain = |keys: &[&str]| {
            let log = TestLog {
                time: 1,
                time_ns: None,
                contents: keys.iter().map(|k| (k.to_string(), "v".into())).collect(),
            };
            let mut fields = Vec::new();
            decode_log(&crate::testing::encode_log(&log), &mut fields)
                .unwrap()
                .plain_keys
        };
        assert!(plain(&[]));
        assert!(plain(&["a", "b", "status", "_x", "x__"]));
        assert!(plain(&["a", "__raw__", "__seq__", "__tag__", "__time"]));
        for meta in [
            "__time__",
            "__topic__",
            "__source__",
            "__time_ns_part__",
            "__tag__:host",
            "__tag__:",
        ] {
            assert!(!plain(&["a", meta]), "{meta} is a meta key");
        }
        assert!(!plain(&["a", "b", "a"]), "a repeat");
        assert!(
            !plain(&["method", "status", "method"]),
            "a repeat, not adjacent"
        );
        // Many keys: fingerprints collide, and the keys are then compared.
        let many: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let mut many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(plain(&many));
        many.push("k17");
        assert!(!plain(&many));
    }

    #[test]
    fn group_framing_errors_name_the_offset() {
        // Field 1 claims 5 bytes, 1 present.
        let e = scan_group(&[0x0a, 0x05, 0x08]).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("past the end"), "{e}");
        // Topic as a varint.
        let e = scan_group(&[0x0a, 0x00, 0x18, 0x01]).unwrap_err();
        assert_eq!(e.offset, 2);
        // A group (wire type 3) is refused.
        assert!(scan_group(&[0x0b]).is_err());
        // Truncated varint.
        assert!(scan_group(&[0x0a, 0x80]).is_err());
        // Field number 0.
        assert!(scan_group(&[0x02, 0x00]).is_err());
    }

    #[test]
    fn malformed_logs_are_per_log_errors() {
        let mut fields = Vec::new();
        // No Time.
        let e = decode_log(&[0x12, 0x00], &mut fields).unwrap_err();
        assert!(
            matches!(e, LogError::Wire(ref w) if w.what.contains("Time")),
            "{e:?}"
        );
        // Time_ns as a varint.
        assert!(decode_log(&[0x08, 0x01, 0x20, 0x01], &mut fields).is_err());
        // Content truncated inside.
        assert!(decode_log(&[0x08, 0x01, 0x12, 0x02, 0x0a, 0x05], &mut fields).is_err());
    }

    #[test]
    fn invalid_utf8_takes_the_lossy_path() {
        let log = [0x08, 0x01, 0x12, 0x07, 0x0a, 1, b'k', 0x12, 2, 0xff, b'a'];
        let mut fields = Vec::new();
        assert_eq!(decode_log(&log, &mut fields), Err(LogError::Utf8));
        let mut lossy = Vec::new();
        decode_log_lossy(&log, &mut lossy).unwrap();
        assert_eq!(lossy[0].0, "k");
        assert_eq!(lossy[0].1, "\u{fffd}a");
        assert!(
            matches!(lossy[0].0, Cow::Borrowed(_)),
            "valid strings stay borrowed"
        );
    }

    #[test]
    fn round_trips_the_test_encoder() {
        let group = TestGroup {
            topic: "t".into(),
            source: "s".into(),
            tags: vec![("a".into(), "1".into())],
            logs: vec![TestLog {
                time: 300,
                time_ns: Some(7),
                contents: vec![("k".into(), "v".repeat(200))],
            }],
        };
        let bytes = encode_group(&group);
        let h = scan_group(&bytes).unwrap();
        assert_eq!((h.topic.as_ref(), h.source.as_ref()), ("t", "s"));
        let mut fields = Vec::new();
        let t = decode_log(&bytes[h.logs[0].clone()], &mut fields).unwrap();
        assert_eq!((t.time, t.time_ns), (300, Some(7)));
        assert_eq!(fields[0].1.len(), 200);
    }

    #[test]
    fn varints_up_to_64_bits() {
        let mut f = Fields::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(f.varint().unwrap(), u64::MAX);
        let mut f = Fields::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(f.varint().is_err());
        let mut f = Fields::new(&[0xac, 0x02]);
        assert_eq!(f.varint().unwrap(), 300);
    }
}
