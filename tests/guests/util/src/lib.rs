//! Tiny helpers shared by the test guests (not a guest itself: an rlib, so the artifacts
//! build skips it): walk an SLS `LogGroup` in its protobuf bytes without copying, and the
//! HEC formatter the benchmark guests share.

/// One protobuf field value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Reads a varint at `*pos`.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Calls `f` with the number and value of every top-level field of one message.
fn fields<'a>(buf: &'a [u8], mut f: impl FnMut(u64, Value<'a>)) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let value = match tag & 7 {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let payload = buf.get(pos..pos + len)?;
                pos += len;
                Value::Bytes(payload)
            }
            5 => {
                let raw = buf.get(pos..pos + 4)?;
                pos += 4;
                Value::Fixed32(u32::from_le_bytes(raw.try_into().ok()?))
            }
            _ => return None,
        };
        f(tag >> 3, value);
    }
    Some(())
}

/// The `Log` messages (field 1) of a `LogGroup`, as bytes.
pub fn logs(group: &[u8]) -> Vec<&[u8]> {
    let mut logs = Vec::new();
    fields(group, |number, value| {
        if let (1, Value::Bytes(log)) = (number, value) {
            logs.push(log);
        }
    });
    logs
}

/// Topic (field 3) and source (field 4) of a `LogGroup`, empty when absent.
pub fn group_meta(group: &[u8]) -> (&str, &str) {
    let (mut topic, mut source) = ("", "");
    fields(group, |number, value| match (number, value) {
        (3, Value::Bytes(b)) => topic = std::str::from_utf8(b).unwrap_or(""),
        (4, Value::Bytes(b)) => source = std::str::from_utf8(b).unwrap_or(""),
        _ => {}
    });
    (topic, source)
}

/// `Log.Time` (field 1) and `Log.Time_ns` (field 4) of one `Log`.
pub fn log_time(log: &[u8]) -> (u32, Option<u32>) {
    let (mut time, mut nanos) = (0, None);
    fields(log, |number, value| match (number, value) {
        (1, Value::Varint(t)) => time = t as u32,
        (4, Value::Fixed32(ns)) => nanos = Some(ns),
        _ => {}
    });
    (time, nanos)
}

/// The contents (key, value) of one `Log`.
pub fn contents(log: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    fields(log, |number, value| {
        if let (2, Value::Bytes(content)) = (number, value) {
            let (mut key, mut val): (&[u8], &[u8]) = (&[], &[]);
            fields(content, |n, v| match (n, v) {
                (1, Value::Bytes(b)) => key = b,
                (2, Value::Bytes(b)) => val = b,
                _ => {}
            });
            out.push((key, val));
        }
    });
    out
}

/// The value of content `key` in one `Log`, if present.
pub fn content<'a>(log: &'a [u8], key: &str) -> Option<&'a [u8]> {
    contents(log)
        .into_iter()
        .find(|(k, _)| *k == key.as_bytes())
        .map(|(_, v)| v)
}

/// A tiny `"key": "value"` lookup in a flat JSON config (guests avoid serde to stay small).
pub fn config_str<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let start = config.find(&needle)? + needle.len();
    let rest = config[start..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next();
    }
    rest.split([',', '}']).next().map(str::trim)
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// The benchmark guests' formatter: the log's contents as one JSON object (the event body
/// of the seed script's HEC output), with keys and values as given.
pub fn hec_body<'a>(
    contents: impl Iterator<Item = (&'a str, &'a str)>,
    size_hint: usize,
) -> String {
    let mut out = String::with_capacity(size_hint + 64);
    out.push('{');
    for (i, (key, value)) in contents.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, key);
        out.push(':');
        json_string(&mut out, value);
    }
    out.push('}');
    out
}
