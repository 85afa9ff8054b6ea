//! HEC request bodies: the `/event` envelope (docs/rendering.md §2 "Rendering rules": key
//! order, time format, JSON escaping), `/raw` lines, and the body of one request (events
//! concatenated, gzip level 1 by default). What is *not* here: sending and classifying
//! (`mod.rs`, `response.rs`).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::gzip::gzip_parts;
use crate::payload::{HecBody, HecEvent, Timestamp};
use crate::util::batch::EventBatch;
use crate::util::push_digits;

/// Appends `{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,"event":…,"fields":{…}}`
/// and the `\n` separator.
pub(crate) fn render_event(ev: &HecEvent, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    };
    if let Some(t) = ev.time {
        key(out, "time");
        write_time(out, t);
    }
    for (k, v) in [
        ("host", &ev.host),
        ("source", &ev.source),
        ("sourcetype", &ev.sourcetype),
        ("index", &ev.index),
    ] {
        if let Some(v) = v {
            key(out, k);
            write_json_str(out, v);
        }
    }
    key(out, "event");
    match &ev.body {
        HecBody::Text(s) => write_json_str(out, s),
        HecBody::Json(s) => out.extend_from_slice(s.as_bytes()),
    }
    if !ev.fields.is_empty() {
        key(out, "fields");
        out.push(b'{');
        for (i, f) in ev.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(out, &f.key);
            out.push(b':');
            write_json_str(out, &f.value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// Appends a `/raw` event: the bytes, then `\n` unless they already end with one (Splunk
/// breaks `/raw` bodies into events at line ends).
pub(crate) fn render_raw(raw: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(raw);
    if raw.last() != Some(&b'\n') {
        out.push(b'\n');
    }
}

/// Epoch seconds: an integer when there is no sub-second part, else the fraction truncated
/// to microseconds with trailing zeros trimmed (`1700000000.5`).
pub(crate) fn write_time(out: &mut Vec<u8>, t: Timestamp) {
    let micros = t.nanos.min(999_999_999) / 1_000;
    // itoa, not `write!`: core::fmt showed up in the render profile.
    let mut digits = itoa::Buffer::new();
    if t.seconds >= 0 || micros == 0 {
        out.extend_from_slice(digits.format(t.seconds).as_bytes());
        write_fraction(out, micros);
    } else {
        // -2 s + 0.25 s = -1.75 s: write the magnitude.
        out.push(b'-');
        out.extend_from_slice(digits.format(-(t.seconds + 1)).as_bytes());
        write_fraction(out, 1_000_000 - micros);
    }
}

fn write_fraction(out: &mut Vec<u8>, micros: u32) {
    if micros == 0 {
        return;
    }
    out.push(b'.');
    push_digits(out, micros, 6);
    // Trailing zeros trimmed (`micros` > 0, so a non-zero digit stays).
    while out.last() == Some(&b'0') {
        out.pop();
    }
}

/// A JSON string: `"` `\` and control characters escaped (`\n \r \t \b \f`, others
/// `\u00XX`); everything else, non-ASCII UTF-8 included, as is.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// A slice of a shared batch, so an uncompressed single-run body goes out without a copy.
struct BatchSlice {
    batch: Arc<EventBatch>,
    range: Range<usize>,
}

impl AsRef<[u8]> for BatchSlice {
    fn as_ref(&self) -> &[u8] {
        &self.batch.bytes()[self.range.clone()]
    }
}

/// The body of one request: the events in `parts` (index ranges into `batch`) back to back,
/// gzip-compressed at `gzip` when set. Returns the body and its uncompressed length.
pub(crate) fn encode_body(
    batch: &Arc<EventBatch>,
    parts: &[Range<usize>],
    gzip: Option<u32>,
) -> (Bytes, usize) {
    let ranges = parts.iter().map(|p| batch.byte_range(p.clone()));
    let raw_len: usize = ranges.clone().map(|r| r.len()).sum();
    match gzip {
        Some(level) => {
            let parts = ranges.map(|r| &batch.bytes()[r]);
            (Bytes::from(gzip_parts(parts, raw_len, level)), raw_len)
        }
        None if parts.len() == 1 => {
            let range = batch.byte_range(parts[0].clone());
            (
                Bytes::from_owner(BatchSlice {
                    batch: batch.clone(),
                    range,
                }),
                raw_len,
            )
        }
        None => {
            let mut body = Vec::with_capacity(raw_len);
            for r in ranges {
                body.extend_from_slice(&batch.bytes()[r]);
            }
            (Bytes::from(body), raw_len)
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "request parts are lists of event index ranges"
)]
mod tests {
    use super::*;
    use crate::payload::Field;
    use crate::util::batch::Lane;

    fn time(seconds: i64, nanos: u32) -> String {
        let mut v = Vec::new();
        write_time(&mut v, Timestamp { seconds, nanos });
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn time_rules() {
        assert_eq!(time(1_700_000_000, 0), "1700000000");
        assert_eq!(time(1_700_000_000, 123_456_789), "1700000000.123456");
        assert_eq!(time(1_700_000_000, 500_000_000), "1700000000.5");
        assert_eq!(
            time(1_700_000_000, 999),
            "1700000000",
            "below a microsecond"
        );
        assert_eq!(time(1_700_000_000, 1_000), "1700000000.000001");
        assert_eq!(time(0, 0), "0");
        assert_eq!(time(-1, 500_000_000), "-0.5");
        assert_eq!(time(-2, 250_000_000), "-1.75");
        assert_eq!(time(-5, 0), "-5");
    }

    fn json(s: &str) -> String {
        let mut v = Vec::new();
        write_json_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(json("l1\nl2\r\t\u{8}\u{c}"), r#""l1\nl2\r\t\b\f""#);
        assert_eq!(json("\u{1}\u{1f}\u{7f}"), "\"\\u0001\\u001f\u{7f}\"");
        assert_eq!(json("中文 ü 🙂"), "\"中文 ü 🙂\"");
        // Agrees with serde_json on a mixed string.
        let s = "x\u{0}y\"z\\\n中";
        assert_eq!(serde_json::from_str::<String>(&json(s)).unwrap(), s);
    }

    #[test]
    fn envelope_key_order_and_omissions() {
        let mut ev = HecEvent::new(HecBody::Json(r#"{"a":1}"#.into()));
        ev.time = Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 120_000_000,
        });
        ev.host = Some("h".into());
        ev.sourcetype = Some("st".into());
        ev.index = Some("main".into());
        ev.source = Some("src".into());
        ev.fields = vec![Field::new("k", "v\"")];
        let mut out = Vec::new();
        render_event(&ev, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":1700000000.12,\"host\":\"h\",\"source\":\"src\",\"sourcetype\":\"st\",\"index\":\"main\",\"event\":{\"a\":1},\"fields\":{\"k\":\"v\\\"\"}}\n"
        );
        let mut out = Vec::new();
        render_event(&HecEvent::new(HecBody::Text("hi\n".into())), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "{\"event\":\"hi\\n\"}\n");
    }

    #[test]
    fn bodies_plain_and_gzip() {
        use std::io::Read as _;
        let mut b = EventBatch::new();
        for s in ["a\n", "bb\n", "ccc\n"] {
            b.buf_mut().extend_from_slice(s.as_bytes());
            b.commit(Lane::Default);
        }
        let b = Arc::new(b);
        let (body, len) = encode_body(&b, &[0..3], None);
        assert_eq!((&body[..], len), (&b"a\nbb\nccc\n"[..], 9));
        let (body, len) = encode_body(&b, &[0..1, 2..3], None);
        assert_eq!((&body[..], len), (&b"a\nccc\n"[..], 6));
        let (gz, len) = encode_body(&b, &[1..3], Some(1));
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!((out.as_str(), len), ("bb\nccc\n", 7));
    }
}
