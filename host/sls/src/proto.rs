//! The SLS protobuf schema (docs/sls-protocol.md §6.1 "Protobuf schema") as prost types,
//! plus a zero-copy walker over `LogGroupList` bodies.
//!
//! Two ways in, on purpose:
//! - the prost messages (`LogGroupList`, `LogGroup`, `Log`) for the emulator, the producer
//!   side (PutLogs) and tests, where owning the data is convenient;
//! - [`split_log_groups`] / [`LogGroupView`] for the consumer hot path: it finds each
//!   `LogGroup` inside a decompressed PullLogs body without decoding it, so the host can hand
//!   the raw bytes to the plugin (which decodes them in place) and count logs cheaply.
//!
//! `Content.Value` is `bytes`: SLS values are arbitrary bytes in practice and a `string`
//! field would make prost reject a whole batch for one invalid UTF-8 value.

use bytes::Bytes;

/// One key/value of a log.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Content {
    /// Field name.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Field value (raw bytes; normally UTF-8).
    #[prost(bytes = "vec", required, tag = "2")]
    pub value: Vec<u8>,
}

/// One log: a time and its key/value contents.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Log {
    /// Unix seconds.
    #[prost(uint32, required, tag = "1")]
    pub time: u32,
    /// Key/value pairs in order.
    #[prost(message, repeated, tag = "2")]
    pub contents: Vec<Content>,
    /// Nanosecond part of the time (0..=999_999_999), when the producer set one.
    #[prost(fixed32, optional, tag = "4")]
    pub time_ns: Option<u32>,
}

/// A tag shared by every log of a group (`__tag__:<key>` in the flattened view).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LogTag {
    /// Tag name.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Tag value.
    #[prost(string, required, tag = "2")]
    pub value: String,
}

/// A group of logs sharing topic, source and tags: the unit SLS stores and cursors address.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LogGroup {
    /// The logs.
    #[prost(message, repeated, tag = "1")]
    pub logs: Vec<Log>,
    /// Internal to SLS ("Category" in Go); clients leave it unset.
    #[prost(string, optional, tag = "2")]
    pub reserved: Option<String>,
    /// `__topic__`.
    #[prost(string, optional, tag = "3")]
    pub topic: Option<String>,
    /// `__source__` (producer IP or host).
    #[prost(string, optional, tag = "4")]
    pub source: Option<String>,
    /// Producer machine id.
    #[prost(string, optional, tag = "5")]
    pub machine_uuid: Option<String>,
    /// Group tags.
    #[prost(message, repeated, tag = "6")]
    pub log_tags: Vec<LogTag>,
}

/// The PullLogs response body: a list of log groups.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LogGroupList {
    /// The groups, in cursor order.
    #[prost(message, repeated, tag = "1")]
    pub log_groups: Vec<LogGroup>,
}

/// Malformed protobuf found by the zero-copy walker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SLS protobuf at byte {offset}: {what}")]
pub struct WireError {
    /// Byte offset of the problem in the buffer being walked.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Protobuf wire types we meet.
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Reads a varint at `*pos`, advancing it.
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*pos) else {
            return Err(WireError {
                offset: start,
                what: "truncated varint",
            });
        };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError {
        offset: start,
        what: "varint longer than 10 bytes",
    })
}

/// One top-level field of a message: its number, wire type and payload range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField {
    /// Field number.
    pub number: u32,
    /// Wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
    pub wire_type: u8,
    /// For varints: the value. For the others: unused (0).
    pub varint: u64,
    /// Byte range of the whole field (tag included) in the walked buffer.
    pub whole: std::ops::Range<usize>,
    /// Byte range of the payload (length-delimited contents, or the fixed bytes).
    pub payload: std::ops::Range<usize>,
}

/// Iterates over the top-level fields of one protobuf message without decoding them.
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> FieldIter<'a> {
    /// Walks `buf`, which must hold exactly one message's fields.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<RawField, WireError> {
        let start = self.pos;
        let key = read_varint(self.buf, &mut self.pos)?;
        let wire_type = (key & 7) as u8;
        let number = u32::try_from(key >> 3).map_err(|_| WireError {
            offset: start,
            what: "field number out of range",
        })?;
        if number == 0 {
            return Err(WireError {
                offset: start,
                what: "field number 0",
            });
        }
        let (varint, payload) = match wire_type {
            WIRE_VARINT => {
                let v = read_varint(self.buf, &mut self.pos)?;
                (v, self.pos..self.pos)
            }
            WIRE_FIXED64 | WIRE_FIXED32 => {
                let n = if wire_type == WIRE_FIXED64 { 8 } else { 4 };
                let end = self.pos + n;
                if end > self.buf.len() {
                    return Err(WireError {
                        offset: start,
                        what: "truncated fixed-width field",
                    });
                }
                let r = self.pos..end;
                self.pos = end;
                (0, r)
            }
            WIRE_LEN => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| self.pos.checked_add(l))
                    .filter(|&e| e <= self.buf.len())
                    .ok_or(WireError {
                        offset: start,
                        what: "length past end of buffer",
                    })?;
                let r = self.pos..end;
                self.pos = end;
                (0, r)
            }
            _ => {
                return Err(WireError {
                    offset: start,
                    what: "unsupported wire type",
                });
            }
        };
        Ok(RawField {
            number,
            wire_type,
            varint,
            whole: start..self.pos,
            payload,
        })
    }
}

impl Iterator for FieldIter<'_> {
    type Item = Result<RawField, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.next_field();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Protobuf wire encoding of one group, exactly as SLS serves a `LogGroup`.
pub fn encode_group(group: &LogGroup) -> Vec<u8> {
    prost::Message::encode_to_vec(group)
}

/// A `LogGroup` found inside a `LogGroupList` body, still encoded.
#[derive(Debug, Clone)]
pub struct LogGroupView {
    /// The group's protobuf bytes (a cheap slice of the decompressed body).
    pub bytes: Bytes,
    /// Number of logs in the group.
    pub log_count: usize,
}

impl LogGroupView {
    /// Scans one encoded `LogGroup`, counting its logs and checking the framing of every
    /// top-level field (not the contents of each log: the plugin SDK does that).
    pub fn parse(bytes: Bytes) -> Result<Self, WireError> {
        let mut log_count = 0;
        for field in FieldIter::new(&bytes) {
            let field = field?;
            if field.number == 1 {
                if field.wire_type != WIRE_LEN {
                    return Err(WireError {
                        offset: field.whole.start,
                        what: "Logs is not length-delimited",
                    });
                }
                log_count += 1;
            }
        }
        Ok(Self { bytes, log_count })
    }

    /// Byte ranges of each encoded `Log` (field 1 payloads), in order.
    pub fn log_ranges(&self) -> Result<Vec<std::ops::Range<usize>>, WireError> {
        let mut out = Vec::with_capacity(self.log_count);
        for field in FieldIter::new(&self.bytes) {
            let field = field?;
            if field.number == 1 {
                out.push(field.payload);
            }
        }
        Ok(out)
    }

    /// Builds the encoding of a `LogGroup` with the same topic, source and tags but only
    /// the logs `range` (indices into this group's logs). Protobuf encodes a message as the
    /// concatenation of its fields, so this is byte copying, not re-encoding. Used to cap the
    /// size of one plugin call and to bisect a batch around a poison log.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Bytes, WireError> {
        if range.start == 0 && range.end >= self.log_count {
            return Ok(self.bytes.clone());
        }
        let mut out = Vec::with_capacity(self.bytes.len());
        let mut index = 0;
        for field in FieldIter::new(&self.bytes) {
            let field = field?;
            if field.number == 1 {
                if range.contains(&index) {
                    out.extend_from_slice(&self.bytes[field.whole.clone()]);
                }
                index += 1;
            } else {
                out.extend_from_slice(&self.bytes[field.whole.clone()]);
            }
        }
        Ok(Bytes::from(out))
    }

    /// Decodes the whole group (e.g. to dead-letter one log with its metadata).
    pub fn decode(&self) -> Result<LogGroup, prost::DecodeError> {
        prost::Message::decode(self.bytes.clone())
    }
}

/// Splits a decompressed `LogGroupList` body into its groups without decoding them.
pub fn split_log_groups(body: &Bytes) -> Result<Vec<LogGroupView>, WireError> {
    let mut groups = Vec::new();
    for field in FieldIter::new(body) {
        let field = field?;
        match (field.number, field.wire_type) {
            (1, WIRE_LEN) => groups.push(LogGroupView::parse(body.slice(field.payload))?),
            (1, _) => {
                return Err(WireError {
                    offset: field.whole.start,
                    what: "LogGroups is not length-delimited",
                });
            }
            // Unknown fields are skippable by protobuf rules.
            _ => {}
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::read as testdata;
    use prost::Message;

    #[test]
    fn decodes_the_sdk_vector() {
        let list = LogGroupList::decode(testdata("loggrouplist.pb").as_slice()).unwrap();
        assert_eq!(list.log_groups.len(), 2);
        let g0 = &list.log_groups[0];
        assert_eq!(g0.topic.as_deref(), Some("topic-a"));
        assert_eq!(g0.source.as_deref(), Some("10.0.0.1"));
        assert_eq!(g0.log_tags.len(), 2);
        assert_eq!(g0.logs[0].time, 1_700_000_000);
        assert_eq!(g0.logs[0].time_ns, Some(123_456_789));
        assert_eq!(g0.logs[1].time_ns, None);
        let unicode = g0.logs[1]
            .contents
            .iter()
            .find(|c| c.key == "unicode")
            .unwrap();
        assert_eq!(std::str::from_utf8(&unicode.value).unwrap(), "héllo ✓");
        let g1 = &list.log_groups[1];
        assert_eq!(g1.topic.as_deref().unwrap_or(""), "");
        assert_eq!(
            g1.logs[0].time_ns,
            Some(0),
            "present-but-zero Time_ns is kept"
        );
        assert_eq!(g1.logs[1].time_ns, Some(999_999_999));
    }

    #[test]
    fn reencoding_is_byte_identical() {
        let raw = testdata("loggrouplist.pb");
        let list = LogGroupList::decode(raw.as_slice()).unwrap();
        assert_eq!(list.encode_to_vec(), raw);
    }

    #[test]
    fn annotated_log_encoding() {
        let raw = hex::decode("0880e2cfaa0612060a01611201622505000000").unwrap();
        let log = Log::decode(raw.as_slice()).unwrap();
        assert_eq!(log.time, 1_700_000_000);
        assert_eq!(
            log.contents,
            vec![Content {
                key: "a".into(),
                value: b"b".to_vec()
            }]
        );
        assert_eq!(log.time_ns, Some(5));
    }

    #[test]
    fn split_matches_prost() {
        let body = Bytes::from(testdata("loggrouplist.pb"));
        let views = split_log_groups(&body).unwrap();
        let list = LogGroupList::decode(body.clone()).unwrap();
        assert_eq!(views.len(), list.log_groups.len());
        for (view, group) in views.iter().zip(&list.log_groups) {
            assert_eq!(view.log_count, group.logs.len());
            assert_eq!(&view.decode().unwrap(), group);
        }
    }

    #[test]
    fn slice_keeps_metadata_and_selects_logs() {
        let body = Bytes::from(testdata("loggrouplist.pb"));
        let view = &split_log_groups(&body).unwrap()[0];
        let whole = view.decode().unwrap();
        let second = LogGroup::decode(view.slice(1..2).unwrap()).unwrap();
        assert_eq!(second.logs, vec![whole.logs[1].clone()]);
        assert_eq!(second.topic, whole.topic);
        assert_eq!(second.source, whole.source);
        assert_eq!(second.log_tags, whole.log_tags);
        let empty = LogGroup::decode(view.slice(2..2).unwrap()).unwrap();
        assert!(empty.logs.is_empty());
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() {
        let raw = testdata("loggrouplist.pb");
        for cut in 1..raw.len() {
            let body = Bytes::copy_from_slice(&raw[..cut]);
            // Either an error or (when the cut lands on a field boundary) fewer groups.
            if let Ok(groups) = split_log_groups(&body) {
                assert!(groups.len() <= 2);
            }
        }
        let bad = Bytes::from_static(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(split_log_groups(&bad).is_err());
    }
}
