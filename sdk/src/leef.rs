//! IBM QRadar LEEF lines (docs/rendering.md §9 "LEEF"):
//!
//! - LEEF 1.0: `LEEF:1.0|Vendor|Product|Version|EventID|` then `key=value` attributes
//!   separated by TAB;
//! - LEEF 2.0: `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|` then attributes
//!   separated by that character (written in the header as itself when printable, else in
//!   its hex form `x09`).
//!
//! LEEF has no escape mechanism inside attribute values, so a value's delimiter characters,
//! CR and LF are replaced by a space. Header fields have `|` escaped as `\|` (QRadar splits
//! the header on `|`), CR/LF and a trailing backslash replaced by a space. Attribute keys are identifiers
//! ([`is_valid_key`]); plugins validate them in config.
//!
//! Does not own: the syslog header in front of the line, or the field mapping (the `leef`
//! plugin's config).

use std::fmt::Write as _;

/// LEEF format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// LEEF 1.0: TAB-delimited attributes.
    V1,
    /// LEEF 2.0: attributes delimited by the header's delimiter character.
    V2,
}

/// The attribute delimiter of a LEEF 2.0 line (always TAB for 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiter(char);

impl Delimiter {
    /// TAB, LEEF 1.0's fixed delimiter and LEEF 2.0's default.
    pub const TAB: Delimiter = Delimiter('\t');

    /// Parses a LEEF 2.0 delimiter as config or a header spells it: one character (`^`),
    /// or its hex code (`x09`, `0x09`). Refuses characters that would break the line: `=`,
    /// `|`, CR, LF, NUL, space, non-ASCII, and the characters of keys (letters, digits, `_`,
    /// `-`, `.`).
    pub fn parse(spec: &str) -> Result<Delimiter, String> {
        let hex = spec
            .strip_prefix("0x")
            .or_else(|| spec.strip_prefix("x"))
            .or_else(|| spec.strip_prefix("0X"))
            .or_else(|| spec.strip_prefix("X"));
        let c =
            match hex {
                Some(h) if !h.is_empty() && h.len() <= 2 => u8::from_str_radix(h, 16)
                    .map(char::from)
                    .map_err(|_| format!("`{spec}` is not a hex character code like `x09`"))?,
                _ => {
                    let mut chars = spec.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => c,
                        _ => {
                            return Err(format!(
                                "`{spec}` must be one character (`^`) or a hex code (`x09`)"
                            ));
                        }
                    }
                }
            };
        // A character that can be in a key would split keys; a space would not be replaced
        // in values (a value's delimiters become a space) and would split them.
        if !c.is_ascii()
            || matches!(c, '=' | '|' | '\r' | '\n' | '\0' | ' ')
            || is_valid_key(c.encode_utf8(&mut [0; 4]))
        {
            return Err(format!(
                "{c:?} cannot be a LEEF delimiter (it would break the line); use e.g. `^` or `x09`"
            ));
        }
        Ok(Delimiter(c))
    }

    /// The delimiter character.
    pub fn char(self) -> char {
        self.0
    }

    /// Appends the header's spelling: the character when it is printable ASCII, else `xHH`.
    pub fn write_header_form(self, out: &mut String) {
        if self.0.is_ascii_graphic() {
            out.push(self.0);
        } else {
            let _ = write!(out, "x{:02X}", self.0 as u32);
        }
    }
}

/// Appends `s` escaped for a LEEF header field. A backslash at the end of the field becomes
/// a space: LEEF has no escape for a backslash, and one right before the separating `|`
/// would turn it into an escaped pipe, shifting every later header field.
pub fn escape_header_into(out: &mut String, s: &str) {
    let mut start = 0;
    let last = s.len().wrapping_sub(1);
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'|' => "\\|",
            b'\r' | b'\n' => " ",
            b'\\' if i == last => " ",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends `s` as a LEEF attribute value: the delimiter, CR and LF become a space.
pub fn escape_value_into(out: &mut String, s: &str, delimiter: Delimiter) {
    let d = delimiter.0 as u8; // ASCII by construction
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == d || b == b'\r' || b == b'\n' {
            out.push_str(&s[start..i]);
            out.push(' ');
            start = i + 1;
        }
    }
    out.push_str(&s[start..]);
}

/// Whether `key` can be a LEEF attribute key: non-empty ASCII letters, digits, `_`, `-`
/// and `.` (QRadar's predefined keys and typical custom keys).
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Appends `key` made into a valid attribute key: every byte outside `[A-Za-z0-9_.-]`
/// becomes `_`; an empty key becomes `_`.
pub fn sanitize_key_into(out: &mut String, key: &str) {
    if key.is_empty() {
        out.push('_');
    }
    out.extend(key.bytes().map(|b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
            char::from(b)
        } else {
            '_'
        }
    }));
}

/// The header fields of a LEEF line (unescaped; [`Line::new`] escapes them).
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// LEEF version.
    pub version: Version,
    /// Vendor.
    pub vendor: &'a str,
    /// Product.
    pub product: &'a str,
    /// Product version.
    pub product_version: &'a str,
    /// Event ID (QRadar maps it, with `cat`, to a QID).
    pub event_id: &'a str,
    /// Attribute delimiter (LEEF 2.0; LEEF 1.0 always uses TAB).
    pub delimiter: Delimiter,
}

/// Writes one LEEF line: the header, then attributes.
///
/// ```
/// use shipper_sdk::leef::{Delimiter, Header, Line, Version};
/// let mut out = String::new();
/// let mut line = Line::new(&mut out, &Header {
///     version: Version::V2, vendor: "Alibaba Cloud", product: "SLS",
///     product_version: "1.0", event_id: "login", delimiter: Delimiter::parse("^").unwrap(),
/// });
/// line.attr("usrName", "alice");
/// line.attr("msg", "a^b");
/// assert_eq!(out, "LEEF:2.0|Alibaba Cloud|SLS|1.0|login|^|usrName=alice^msg=a b");
/// ```
#[derive(Debug)]
pub struct Line<'o> {
    out: &'o mut String,
    delimiter: Delimiter,
    first: bool,
}

impl<'o> Line<'o> {
    /// Appends the header to `out` and returns a writer for the attributes.
    pub fn new(out: &'o mut String, h: &Header<'_>) -> Self {
        out.push_str(match h.version {
            Version::V1 => "LEEF:1.0|",
            Version::V2 => "LEEF:2.0|",
        });
        for field in [h.vendor, h.product, h.product_version, h.event_id] {
            escape_header_into(out, field);
            out.push('|');
        }
        let delimiter = match h.version {
            Version::V1 => Delimiter::TAB,
            Version::V2 => {
                h.delimiter.write_header_form(out);
                out.push('|');
                h.delimiter
            }
        };
        Self {
            out,
            delimiter,
            first: true,
        }
    }

    /// Appends `key=value`; `key` must satisfy [`is_valid_key`], `value` is cleaned.
    pub fn attr(&mut self, key: &str, value: &str) {
        if !self.first {
            self.out.push(self.delimiter.0);
        }
        self.first = false;
        self.out.push_str(key);
        self.out.push('=');
        escape_value_into(self.out, value, self.delimiter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: Version, delimiter: Delimiter) -> Header<'static> {
        Header {
            version,
            vendor: "V|x",
            product: "P\nq",
            product_version: "1.0",
            event_id: "e\\1",
            delimiter,
        }
    }

    #[test]
    fn leef1_uses_tabs() {
        let mut out = String::new();
        let mut l = Line::new(
            &mut out,
            &header(Version::V1, Delimiter::parse("^").unwrap()),
        );
        l.attr("a", "x\ty");
        l.attr("b", "1=2|3");
        assert_eq!(out, "LEEF:1.0|V\\|x|P q|1.0|e\\1|a=x y\tb=1=2|3");
    }

    #[test]
    fn leef2_writes_the_delimiter_in_the_header() {
        let mut out = String::new();
        let mut l = Line::new(&mut out, &header(Version::V2, Delimiter::TAB));
        l.attr("a", "1");
        l.attr("b", "2\r\n");
        assert_eq!(out, "LEEF:2.0|V\\|x|P q|1.0|e\\1|x09|a=1\tb=2  ");

        let mut out = String::new();
        let mut l = Line::new(
            &mut out,
            &header(Version::V2, Delimiter::parse("0x5E").unwrap()),
        );
        l.attr("a", "x^y");
        assert_eq!(out, "LEEF:2.0|V\\|x|P q|1.0|e\\1|^|a=x y");
    }

    #[test]
    fn a_trailing_backslash_cannot_escape_the_separator() {
        let mut out = String::new();
        let mut h = header(Version::V1, Delimiter::TAB);
        h.vendor = "ends\\";
        h.product = "a\\b";
        Line::new(&mut out, &h).attr("k", "v");
        assert_eq!(out, "LEEF:1.0|ends |a\\b|1.0|e\\1|k=v");
    }

    #[test]
    fn delimiter_parsing() {
        assert_eq!(Delimiter::parse("x09").unwrap(), Delimiter::TAB);
        assert_eq!(Delimiter::parse("0x09").unwrap(), Delimiter::TAB);
        assert_eq!(Delimiter::parse("\t").unwrap(), Delimiter::TAB);
        assert_eq!(Delimiter::parse("^").unwrap().char(), '^');
        for bad in [
            "", "ab", "=", "|", "x0a", "é", "xZZ", "x", "a", "7", "_", "-", ".", " ", "x20",
        ] {
            assert!(Delimiter::parse(bad).is_err(), "{bad:?}");
        }
        assert!(is_valid_key("devTime"));
        let mut k = String::new();
        sanitize_key_into(&mut k, "__tag__:a.b=c");
        assert_eq!(k, "__tag___a.b_c");
        assert!(!is_valid_key("a b"));
    }
}
