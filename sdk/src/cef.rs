//! ArcSight CEF lines: `CEF:Version|Vendor|Product|Version|Event Class ID|Name|Severity|Extension`
//! with the escaping of docs/rendering.md §8 "CEF":
//!
//! - header fields: `\` → `\\`, `|` → `\|`; CR and LF (not allowed in the header) become a
//!   space; `=` is not escaped;
//! - extension values: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r` (backslash + letter);
//!   `|` is not escaped; values are not quoted, spaces stay (a parser ends a value at the
//!   next ` key=`);
//! - extension keys are identifiers ([`is_valid_ext_key`]); plugins validate them in config.
//!
//! Does not own: the syslog header in front of the line (the host renders it) or which
//! fields map to which keys (the `cef` plugin's config).

/// Appends `s` escaped for a CEF header field.
pub fn escape_header_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'\\' => "\\\\",
            b'|' => "\\|",
            b'\r' | b'\n' => " ",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends `s` escaped for a CEF extension value.
pub fn escape_ext_value_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'\\' => "\\\\",
            b'=' => "\\=",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Whether `key` can be a CEF extension key: non-empty ASCII letters, digits and `_`
/// (the dictionary keys, `cs1Label`, and custom `vendorKey` style names all fit).
pub fn is_valid_ext_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends `key` made into a valid extension key: every byte outside `[A-Za-z0-9_]`
/// becomes `_` (`__tag__:__hostname__` → `__tag_____hostname__`); an empty key becomes `_`.
pub fn sanitize_ext_key_into(out: &mut String, key: &str) {
    if key.is_empty() {
        out.push('_');
    }
    out.extend(key.bytes().map(|b| {
        if b.is_ascii_alphanumeric() || b == b'_' {
            char::from(b)
        } else {
            '_'
        }
    }));
}

/// The seven header fields of a CEF line (unescaped; [`write_header`] escapes them).
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// CEF format version: 0 (`CEF:0`, the common one) or 1.
    pub version: u8,
    /// Device Vendor.
    pub vendor: &'a str,
    /// Device Product.
    pub product: &'a str,
    /// Device Version.
    pub device_version: &'a str,
    /// Device Event Class ID (signature / type id).
    pub event_class_id: &'a str,
    /// Name: a human-readable description of the event.
    pub name: &'a str,
    /// Severity: `0`..`10` or `Unknown|Low|Medium|High|Very-High`.
    pub severity: &'a str,
}

/// Appends `CEF:v|…|severity|` (the extension follows; see [`Extension`]).
pub fn write_header(out: &mut String, h: &Header<'_>) {
    out.push_str("CEF:");
    out.push(char::from(b'0' + h.version.min(9)));
    for field in [
        h.vendor,
        h.product,
        h.device_version,
        h.event_class_id,
        h.name,
        h.severity,
    ] {
        out.push('|');
        escape_header_into(out, field);
    }
    out.push('|');
}

/// Appends `key=value` pairs of a CEF extension, space-separated.
///
/// ```
/// let mut line = String::new();
/// shipper_sdk::cef::write_header(&mut line, &shipper_sdk::cef::Header {
///     version: 0, vendor: "Alibaba Cloud", product: "SLS", device_version: "1.0",
///     event_class_id: "login", name: "Console login", severity: "3",
/// });
/// let mut ext = shipper_sdk::cef::Extension::new(&mut line);
/// ext.pair("suser", "alice");
/// ext.pair("msg", "a=b\nc");
/// assert_eq!(line, r"CEF:0|Alibaba Cloud|SLS|1.0|login|Console login|3|suser=alice msg=a\=b\nc");
/// ```
#[derive(Debug)]
pub struct Extension<'o> {
    out: &'o mut String,
    first: bool,
}

impl<'o> Extension<'o> {
    /// Starts an extension at the end of `out` (right after the header).
    pub fn new(out: &'o mut String) -> Self {
        Self { out, first: true }
    }

    /// Appends `key=value`; `key` must satisfy [`is_valid_ext_key`], `value` is escaped.
    pub fn pair(&mut self, key: &str, value: &str) {
        if !self.first {
            self.out.push(' ');
        }
        self.first = false;
        self.out.push_str(key);
        self.out.push('=');
        escape_ext_value_into(self.out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_escaping_matches_syslog_ng_format_cef_extension() {
        // Checked against syslog-ng 3.38 (docs/rendering.md §8 "CEF"): its
        // `$(format-cef-extension)` produced
        // `cs1=pipe|eq\=back\\slash msg=line1\nline2 suser=has space`.
        let mut out = String::new();
        let mut ext = Extension::new(&mut out);
        ext.pair("cs1", "pipe|eq=back\\slash");
        ext.pair("msg", "line1\nline2");
        ext.pair("suser", "has space");
        assert_eq!(
            out,
            r"cs1=pipe|eq\=back\\slash msg=line1\nline2 suser=has space"
        );
    }

    #[test]
    fn header_escaping() {
        let mut out = String::new();
        write_header(
            &mut out,
            &Header {
                version: 0,
                vendor: "A|B",
                product: "back\\slash",
                device_version: "1=0",
                event_class_id: "id\r\nx",
                name: "é ✓",
                severity: "10",
            },
        );
        assert_eq!(out, r"CEF:0|A\|B|back\\slash|1=0|id  x|é ✓|10|");
    }

    #[test]
    fn sanitized_keys() {
        let mut out = String::new();
        sanitize_ext_key_into(&mut out, "__tag__:é x");
        assert_eq!(out, "__tag______x");
        assert!(is_valid_ext_key(&out));
    }

    #[test]
    fn ext_values_keep_everything_else() {
        let mut out = String::new();
        escape_ext_value_into(&mut out, "a\r\nb|c é\\=");
        assert_eq!(out, r"a\r\nb|c é\\\=");
        assert!(is_valid_ext_key("cs1Label"));
        assert!(!is_valid_ext_key("bad key"));
        assert!(!is_valid_ext_key("a=b"));
        assert!(!is_valid_ext_key(""));
    }
}
