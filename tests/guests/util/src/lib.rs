//! Tiny helpers shared by the test guests (not a guest itself: an rlib, so the artifacts
//! build skips it): find the logs of an SLS `LogGroup` in its protobuf bytes.

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

/// Calls `f` with the number and payload of every top-level field (length-delimited ones
/// get their bytes, others an empty slice).
fn fields<'a>(buf: &'a [u8], mut f: impl FnMut(u64, &'a [u8])) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        match tag & 7 {
            0 => {
                varint(buf, &mut pos)?;
                f(tag >> 3, &[]);
            }
            1 => pos += 8,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let payload = buf.get(pos..pos + len)?;
                pos += len;
                f(tag >> 3, payload);
            }
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(())
}

/// The `Log` messages (field 1) of a `LogGroup`, as bytes.
pub fn logs(group: &[u8]) -> Vec<&[u8]> {
    let mut logs = Vec::new();
    fields(group, |number, payload| {
        if number == 1 {
            logs.push(payload);
        }
    });
    logs
}

/// The contents (key, value) of one `Log`.
pub fn contents(log: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    fields(log, |number, payload| {
        if number == 2 {
            let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
            fields(payload, |n, p| match n {
                1 => key = p,
                2 => value = p,
                _ => {}
            });
            out.push((key, value));
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
