//! The SDK's CEF and LEEF writers (docs/rendering.md §8 "CEF", §9 "LEEF"), round trip: a line
//! written from arbitrary header fields and attributes is read back by a parser written from
//! those specifications (below), and must give back what was written.
//!
//! Properties: CEF is lossless except CR/LF in header fields (a space); LEEF replaces the
//! delimiter, CR and LF in values by a space and CR/LF in header fields by a space; keys are
//! the sanitised keys; nothing else changes, nothing moves between fields, no field or
//! attribute appears or disappears.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shipper_sdk::{cef, leef};

#[derive(Arbitrary, Debug)]
struct Input {
    version: u8,
    header: [String; 6],
    pairs: Vec<(String, String)>,
    leef2: bool,
    delimiter: String,
}

/// Key/value pairs as a parser reads them back.
type Pairs = Vec<(String, String)>;

fuzz_target!(|input: Input| {
    check_cef(&input);
    check_leef(&input);
});

/// Header fields as the writers leave them: CR and LF become a space.
fn header_text(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn check_cef(input: &Input) {
    let h = &input.header;
    let mut line = String::new();
    cef::write_header(
        &mut line,
        &cef::Header {
            version: input.version,
            vendor: &h[0],
            product: &h[1],
            device_version: &h[2],
            event_class_id: &h[3],
            name: &h[4],
            severity: &h[5],
        },
    );
    let mut expected_pairs = Vec::new();
    let mut ext = cef::Extension::new(&mut line);
    for (k, v) in &input.pairs {
        let mut key = String::new();
        cef::sanitize_ext_key_into(&mut key, k);
        assert!(cef::is_valid_ext_key(&key));
        ext.pair(&key, v);
        expected_pairs.push((key, v.clone()));
    }
    let (version, fields, pairs) = parse_cef(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(version, input.version.min(9));
    let expected_fields: Vec<String> = h.iter().map(|f| header_text(f)).collect();
    assert_eq!(fields, expected_fields, "{line:?}");
    assert_eq!(pairs, expected_pairs, "{line:?}");
}

/// Reads a CEF line: `CEF:v|` six header fields separated by unescaped `|` (`\|`, `\\`),
/// then `key=value` pairs where a value runs to the space before the next `key=` and
/// unescapes `\\`, `\=`, `\n`, `\r`.
fn parse_cef(line: &str) -> Result<(u8, Vec<String>, Pairs), String> {
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut chars = rest.chars();
    let v = chars
        .next()
        .and_then(|c| c.to_digit(10))
        .ok_or("no version")? as u8;
    let mut rest = chars
        .as_str()
        .strip_prefix('|')
        .ok_or("no | after the version")?;
    let mut fields = Vec::new();
    for _ in 0..6 {
        let mut field = String::new();
        let mut it = rest.char_indices();
        let end = loop {
            match it.next() {
                None => return Err("header ends early".into()),
                Some((i, '|')) => break i,
                Some((_, '\\')) => match it.next() {
                    Some((_, c @ ('\\' | '|'))) => field.push(c),
                    other => return Err(format!("bad header escape {other:?}")),
                },
                Some((_, c)) => field.push(c),
            }
        };
        fields.push(field);
        rest = &rest[end + 1..];
    }
    let mut pairs = Vec::new();
    let b = rest.as_bytes();
    let mut pos = 0;
    while pos < b.len() {
        let eq = rest[pos..].find('=').ok_or("key without =")? + pos;
        let key = &rest[pos..eq];
        if !cef::is_valid_ext_key(key) {
            return Err(format!("bad key {key:?}"));
        }
        let mut value = String::new();
        let mut i = eq + 1;
        loop {
            if i >= b.len() {
                pos = i;
                break;
            }
            if b[i] == b' ' && next_is_key(&rest[i + 1..]) {
                pos = i + 1;
                break;
            }
            let c = rest[i..].chars().next().expect("in bounds");
            if c == '\\' {
                let n = rest[i + 1..].chars().next().ok_or("trailing backslash")?;
                value.push(match n {
                    '\\' => '\\',
                    '=' => '=',
                    'n' => '\n',
                    'r' => '\r',
                    other => return Err(format!("bad value escape {other:?}")),
                });
                i += 2;
            } else if c == '=' {
                return Err("unescaped = in a value".into());
            } else {
                value.push(c);
                i += c.len_utf8();
            }
        }
        pairs.push((key.to_owned(), value));
    }
    Ok((v, fields, pairs))
}

/// Whether `s` starts with `key=` (a CEF extension key and an unescaped `=`).
fn next_is_key(s: &str) -> bool {
    s.find('=')
        .is_some_and(|eq| cef::is_valid_ext_key(&s[..eq]))
}

fn check_leef(input: &Input) {
    let (version, delimiter) = if input.leef2 {
        match leef::Delimiter::parse(&input.delimiter) {
            Ok(d) => (leef::Version::V2, d),
            Err(_) => return,
        }
    } else {
        (leef::Version::V1, leef::Delimiter::TAB)
    };
    let h = &input.header;
    let mut out = String::new();
    let mut line = leef::Line::new(
        &mut out,
        &leef::Header {
            version,
            vendor: &h[0],
            product: &h[1],
            product_version: &h[2],
            event_id: &h[3],
            delimiter,
        },
    );
    let d = delimiter.char();
    let mut expected_pairs = Vec::new();
    for (k, v) in &input.pairs {
        let mut key = String::new();
        leef::sanitize_key_into(&mut key, k);
        assert!(leef::is_valid_key(&key));
        line.attr(&key, v);
        expected_pairs.push((key, v.replace([d, '\r', '\n'], " ")));
    }
    let (fields, pairs) = parse_leef(&out, input.leef2).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    // LEEF cannot escape a backslash: a trailing one becomes a space as well.
    let expected_fields: Vec<String> = h[..4]
        .iter()
        .map(|f| {
            let mut f = header_text(f);
            if f.ends_with('\\') {
                f.pop();
                f.push(' ');
            }
            f
        })
        .collect();
    assert_eq!(fields, expected_fields, "{out:?}");
    assert_eq!(pairs, expected_pairs, "{out:?}");
}

/// Reads a LEEF line: `LEEF:1.0|` or `LEEF:2.0|`, four header fields separated by `|`
/// (`\|` is a literal pipe), for 2.0 the delimiter (a character or `xHH`), then attributes
/// separated by the delimiter, each split at its first `=`.
fn parse_leef(line: &str, v2: bool) -> Result<(Vec<String>, Pairs), String> {
    let mut rest = line
        .strip_prefix(if v2 { "LEEF:2.0|" } else { "LEEF:1.0|" })
        .ok_or("no LEEF prefix")?;
    let mut fields = Vec::new();
    for _ in 0..4 {
        let mut field = String::new();
        let mut it = rest.char_indices().peekable();
        let end = loop {
            match it.next() {
                None => return Err("header ends early".into()),
                Some((i, '|')) => break i,
                Some((_, '\\')) if it.peek().map(|(_, c)| *c) == Some('|') => {
                    it.next();
                    field.push('|');
                }
                Some((_, c)) => field.push(c),
            }
        };
        fields.push(field);
        rest = &rest[end + 1..];
    }
    let delimiter = if v2 {
        let end = rest.find('|').ok_or("no delimiter field")?;
        let spec = &rest[..end];
        rest = &rest[end + 1..];
        match spec.strip_prefix('x').filter(|h| h.len() == 2) {
            Some(hex) => char::from(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?),
            None => spec.chars().next().ok_or("empty delimiter")?,
        }
    } else {
        '\t'
    };
    let mut pairs = Vec::new();
    if !rest.is_empty() {
        for attr in rest.split(delimiter) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| format!("attribute {attr:?} has no ="))?;
            pairs.push((k.to_owned(), v.to_owned()));
        }
    }
    Ok((fields, pairs))
}
