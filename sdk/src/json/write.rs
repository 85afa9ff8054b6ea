//! Writing JSON strings and objects into a caller's `String`.
//!
//! Two styles:
//! - [`JsonStyle::Compact`]: `,` and `:` separators; strings escape only `"`, `\` and
//!   control characters (`\n \r \t \b \f`, others `\u00xx`); non-ASCII is written as UTF-8.
//!   This is the rule shipper's sinks follow (docs/rendering.md §2 "Rendering rules", rule 3).
//! - [`JsonStyle::Python`]: what Python's `json.dumps(obj)` writes with its defaults:
//!   `, ` and `: ` separators and `ensure_ascii=True` (every character outside printable
//!   ASCII as `\uxxxx`, astral characters as a surrogate pair; DEL too). Use it to be
//!   byte-compatible with the seed scripts.
//!
//! Hex digits are lower case in both styles (as Python and serde_json write them).

/// Which JSON dialect a writer produces; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// Compact separators, UTF-8 as is.
    Compact,
    /// Python `json.dumps` defaults: `, ` / `: `, `ensure_ascii`.
    Python,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `ESCAPE[b]` is 0 when byte `b` needs no escape in a compact JSON string, otherwise the
/// character after the backslash (`u` = `\u00xx`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `w` is a control character, `"` or `\` (SWAR test: it may
/// say yes for a clean word, never no for a dirty one).
#[inline(always)]
fn word_may_need_escape(w: u64) -> bool {
    let ctl = w.wrapping_sub(LO * 0x20) & !w & HI;
    let q = w ^ (LO * b'"' as u64);
    let q = q.wrapping_sub(LO) & !q & HI;
    let b = w ^ (LO * b'\\' as u64);
    let b = b.wrapping_sub(LO) & !b & HI;
    (ctl | q | b) != 0
}

/// Index of the first byte at or after `from` that needs escaping in a compact JSON string
/// (`bytes.len()` if none). Skips 8 clean bytes at a time.
#[inline(always)]
pub(crate) fn find_escape(bytes: &[u8], mut from: usize) -> usize {
    let len = bytes.len();
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if len >= 16 {
        return simd::find_escape(bytes, from);
    }
    while from + 8 <= len {
        let w = u64::from_le_bytes(bytes[from..from + 8].try_into().expect("8 bytes"));
        if word_may_need_escape(w) {
            break;
        }
        from += 8;
    }
    // A clean tail shorter than a word: test the last 8 bytes (overlapping bytes already
    // known clean) instead of going byte by byte.
    if from < len && from + 8 > len && len >= 8 {
        let w = u64::from_le_bytes(bytes[len - 8..].try_into().expect("8 bytes"));
        if !word_may_need_escape(w) {
            return len;
        }
    }
    while from < len {
        if ESCAPE[bytes[from] as usize] != 0 {
            return from;
        }
        from += 1;
    }
    from
}

/// 16 bytes per step with wasm SIMD (plugins built by this repo enable `simd128`, see
/// `.cargo/config.toml`; without it the SWAR loop above runs).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::{
        i8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or,
    };

    /// Bit `i` set when byte `i` of the 16 at `at` needs escaping. `at + 16 <= bytes.len()`.
    #[inline(always)]
    fn dirty(bytes: &[u8], at: usize) -> u16 {
        assert!(at + 16 <= bytes.len());
        // SAFETY: the assert keeps the 16-byte load inside `bytes`; `v128_load` has no
        // alignment requirement.
        let v = unsafe { v128_load(bytes.as_ptr().add(at).cast::<v128>()) };
        let m = v128_or(
            u8x16_lt(v, u8x16_splat(0x20)),
            v128_or(
                u8x16_eq(v, u8x16_splat(b'"')),
                u8x16_eq(v, u8x16_splat(b'\\')),
            ),
        );
        i8x16_bitmask(m)
    }

    /// [`super::find_escape`] for `bytes.len() >= 16`.
    #[inline(always)]
    pub(super) fn find_escape(bytes: &[u8], mut from: usize) -> usize {
        let len = bytes.len();
        while from + 16 <= len {
            let bits = dirty(bytes, from);
            if bits != 0 {
                return from + bits.trailing_zeros() as usize;
            }
            from += 16;
        }
        if from >= len {
            return len;
        }
        // The tail as the last 16 bytes; those before `from` are known clean.
        let bits = dirty(bytes, len - 16) >> (from - (len - 16));
        if bits != 0 {
            from + bits.trailing_zeros() as usize
        } else {
            len
        }
    }
}

#[inline]
fn push_u_escape(out: &mut String, unit: u16) {
    let b = [
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xf],
        HEX[(unit >> 8) as usize & 0xf],
        HEX[(unit >> 4) as usize & 0xf],
        HEX[unit as usize & 0xf],
    ];
    out.push_str(std::str::from_utf8(&b).expect("ASCII"));
}

/// Longest string [`push_clean`] copies without a `memcpy` call.
const SHORT_COPY: usize = 32;

/// Appends `s`, a clean key or value, to `out`. In WebAssembly, strings of up to
/// [`SHORT_COPY`] bytes are copied by [`push_short`]: a `memcpy` there is one `memory.copy`
/// instruction, which wasmtime runs as a call out of the guest into the host's `memmove`,
/// costly next to a copy of a dozen bytes, and a log has two of them per field. Natively
/// `memcpy` is cheap and `push_str` stays.
#[inline(always)]
pub(crate) fn push_clean(out: &mut String, s: &str) {
    if cfg!(target_arch = "wasm32") && s.len() <= SHORT_COPY {
        push_short(out, s);
    } else {
        out.push_str(s);
    }
}

/// Appends `s` (at most [`SHORT_COPY`] bytes) with fixed-size moves only: the first and
/// last 8 (or 4) bytes of each half, overlapping in the middle, as small-size `memcpy`
/// implementations do. Fixed-size moves compile to plain loads and stores.
#[inline(always)]
fn push_short(out: &mut String, s: &str) {
    let len = s.len();
    assert!(len <= SHORT_COPY);
    out.reserve(len);
    let src = s.as_ptr();
    // SAFETY: `reserve` made room for `len` more bytes after `out.len()`; every move below
    // reads inside `s` and writes inside that room (each pair covers `0..len` from both
    // ends, so no offset exceeds `len`); `s` is UTF-8 and copied whole, so `out` stays
    // UTF-8 once its length covers the copy. `s` cannot alias `out`'s spare capacity.
    unsafe {
        let v = out.as_mut_vec();
        let dst = v.as_mut_ptr().add(v.len());
        let copy8 = |at: usize| {
            dst.add(at)
                .cast::<u64>()
                .write_unaligned(src.add(at).cast::<u64>().read_unaligned());
        };
        if len >= 16 {
            copy8(0);
            copy8(8);
            copy8(len - 16);
            copy8(len - 8);
        } else if len >= 8 {
            copy8(0);
            copy8(len - 8);
        } else if len >= 4 {
            let copy4 = |at: usize| {
                dst.add(at)
                    .cast::<u32>()
                    .write_unaligned(src.add(at).cast::<u32>().read_unaligned());
            };
            copy4(0);
            copy4(len - 4);
        } else if len > 0 {
            *dst = *src;
            *dst.add(len / 2) = *src.add(len / 2);
            *dst.add(len - 1) = *src.add(len - 1);
        }
        v.set_len(v.len() + len);
    }
}

/// Appends the escaped *contents* of a compact JSON string (no quotes).
#[inline(always)]
pub fn escape_str_into(out: &mut String, s: &str) {
    // Inlined clean check (most keys and values need no escaping); the loop stays out of
    // line so that callers stay small.
    let first = find_escape(s.as_bytes(), 0);
    if first == s.len() {
        push_clean(out, s);
    } else {
        escape_from(out, s, first);
    }
}

#[inline(never)]
fn escape_from(out: &mut String, s: &str, first: usize) {
    let bytes = s.as_bytes();
    out.push_str(&s[..first]);
    let mut start = first;
    loop {
        let i = find_escape(bytes, start);
        // `i` is at an ASCII byte or the end, so both slices are on char boundaries.
        out.push_str(&s[start..i]);
        if i == bytes.len() {
            return;
        }
        let b = bytes[i];
        match ESCAPE[b as usize] {
            b'u' => push_u_escape(out, u16::from(b)),
            c => {
                out.push('\\');
                out.push(c as char);
            }
        }
        start = i + 1;
    }
}

/// Appends `s` as a compact JSON string (with quotes).
#[inline]
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    escape_str_into(out, s);
    out.push('"');
}

/// Whether any of the 8 bytes in `w` needs escaping with `ensure_ascii`: what compact JSON
/// escapes, plus DEL and everything non-ASCII (SWAR, may say yes for a clean word).
#[inline(always)]
fn word_may_need_ascii_escape(w: u64) -> bool {
    let del = w ^ (LO * 0x7f);
    let del = del.wrapping_sub(LO) & !del & HI;
    word_may_need_escape(w) || (w & HI) != 0 || del != 0
}

/// Whether `bytes` is printable ASCII without `"` and `\` (nothing to escape for
/// `ensure_ascii`), a word at a time.
#[inline(always)]
fn clean_for_ascii(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        if word_may_need_ascii_escape(u64::from_le_bytes(c.try_into().expect("8 bytes"))) {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Appends the escaped contents of a Python-`ensure_ascii` JSON string (no quotes).
#[inline(always)]
pub fn escape_str_ascii_into(out: &mut String, s: &str) {
    if clean_for_ascii(s.as_bytes()) {
        push_clean(out, s);
    } else {
        escape_ascii_slow(out, s);
    }
}

#[inline(never)]
fn escape_ascii_slow(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let cp = c as u32;
        if (0x20..0x7f).contains(&cp) && c != '"' && c != '\\' {
            continue;
        }
        out.push_str(&s[start..i]);
        start = i + c.len_utf8();
        push_python_unit_escape_char(out, c);
    }
    out.push_str(&s[start..bytes.len()]);
}

/// Python's `ensure_ascii` escape of one character outside printable ASCII (or `"`/`\`).
fn push_python_unit_escape_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        _ => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_u_escape(out, *unit);
            }
        }
    }
}

/// Python `ensure_ascii` escape of one UTF-16 code unit (lone surrogates included, which a
/// Rust `char` cannot hold); used when re-serialising parsed JSON.
pub(crate) fn push_python_unit(out: &mut String, unit: u16) {
    match unit {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        0x20..=0x7e => out.push(unit as u8 as char),
        _ => push_u_escape(out, unit),
    }
}

/// Appends `s` as a JSON string in `style` (with quotes).
#[inline]
pub fn write_string(out: &mut String, s: &str, style: JsonStyle) {
    out.push('"');
    match style {
        JsonStyle::Compact => escape_str_into(out, s),
        JsonStyle::Python => escape_str_ascii_into(out, s),
    }
    out.push('"');
}

/// Writes one JSON object member by member into a `String`.
///
/// ```
/// use shipper_sdk::json::{JsonStyle, ObjectWriter};
/// let mut out = String::new();
/// let mut obj = ObjectWriter::new(&mut out, JsonStyle::Compact);
/// obj.str("level", "INFO");
/// obj.raw("nested", "{\"a\":1}");
/// obj.key_parts("__tag__:", "host").push_str("\"web-1\"");
/// obj.finish();
/// assert_eq!(out, r#"{"level":"INFO","nested":{"a":1},"__tag__:host":"web-1"}"#);
/// ```
#[derive(Debug)]
pub struct ObjectWriter<'o> {
    out: &'o mut String,
    style: JsonStyle,
    empty: bool,
}

impl<'o> ObjectWriter<'o> {
    /// Starts an object (writes `{`).
    #[inline]
    pub fn new(out: &'o mut String, style: JsonStyle) -> Self {
        out.push('{');
        Self {
            out,
            style,
            empty: true,
        }
    }

    #[inline]
    fn separator(&mut self) {
        if !self.empty {
            self.out.push_str(match self.style {
                JsonStyle::Compact => ",",
                JsonStyle::Python => ", ",
            });
        }
        self.empty = false;
    }

    #[inline]
    fn colon(&mut self) {
        self.out.push_str(match self.style {
            JsonStyle::Compact => ":",
            JsonStyle::Python => ": ",
        });
    }

    /// Writes the separator, `key` and the colon, and returns the buffer for the value,
    /// which the caller must write as exactly one JSON value.
    #[inline]
    pub fn key(&mut self, key: &str) -> &mut String {
        self.separator();
        write_string(self.out, key, self.style);
        self.colon();
        self.out
    }

    /// Like [`key`](Self::key) for a key made of two parts (e.g. `__tag__:` + tag name),
    /// without building the joined key.
    #[inline]
    pub fn key_parts(&mut self, prefix: &str, key: &str) -> &mut String {
        self.separator();
        self.out.push('"');
        match self.style {
            JsonStyle::Compact => {
                escape_str_into(self.out, prefix);
                escape_str_into(self.out, key);
            }
            JsonStyle::Python => {
                escape_str_ascii_into(self.out, prefix);
                escape_str_ascii_into(self.out, key);
            }
        }
        self.out.push('"');
        self.colon();
        self.out
    }

    /// A member whose value is the string `value`.
    #[inline]
    pub fn str(&mut self, key: &str, value: &str) {
        let style = self.style;
        let out = self.key(key);
        write_string(out, value, style);
    }

    /// A member whose value is the JSON text `raw_json`, inserted as is (the caller
    /// guarantees it is one valid JSON value; see [`crate::json::is_valid`]).
    #[inline]
    pub fn raw(&mut self, key: &str, raw_json: &str) {
        self.key(key).push_str(raw_json);
    }

    /// The style this writer uses.
    #[inline]
    pub fn style(&self) -> JsonStyle {
        self.style
    }

    /// Ends the object (writes `}`).
    #[inline]
    pub fn finish(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(s: &str) -> String {
        let mut o = String::new();
        write_str(&mut o, s);
        o
    }

    fn python(s: &str) -> String {
        let mut o = String::new();
        write_string(&mut o, s, JsonStyle::Python);
        o
    }

    /// Every length the fixed-size moves handle, after a prefix and at a capacity boundary
    /// (a fresh `String` each time, so `reserve` must grow it), multi-byte UTF-8 included.
    #[test]
    fn short_copies_append_exactly_the_string() {
        for text in [
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "é✓abcdefghijklmnopqrstuvwxyz0123",
        ] {
            short_copies_of(text);
        }
    }

    fn short_copies_of(text: &str) {
        for end in text.char_indices().map(|(i, _)| i).chain([text.len()]) {
            let s = &text[..end];
            if s.len() > SHORT_COPY {
                continue;
            }
            for prefix in ["", "x", "{\"key\":"] {
                let mut out = String::from(prefix);
                push_short(&mut out, s);
                assert_eq!(out, format!("{prefix}{s}"), "length {}", s.len());
                let mut again = out.clone();
                push_short(&mut again, s);
                assert_eq!(again, format!("{prefix}{s}{s}"));
            }
        }
    }

    #[test]
    fn compact_escapes_only_what_json_requires() {
        assert_eq!(compact("plain"), r#""plain""#);
        assert_eq!(compact("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(compact("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(compact("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(compact("héllo ✓ 😀 /"), "\"héllo ✓ 😀 /\"");
        assert_eq!(compact(""), r#""""#);
    }

    #[test]
    fn compact_escaping_is_right_at_every_word_offset() {
        // The SWAR path handles 8 bytes at a time: put the special byte at every position
        // of a long string, next to multi-byte characters.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for pos in 0..24 {
                let mut s: String = "é".repeat(3) + &"x".repeat(20);
                let at = s.char_indices().nth(pos).map_or(s.len(), |(i, _)| i);
                s.insert(at, special);
                let got = compact(&s);
                let mut want = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' => want.push_str("\\\""),
                        '\\' => want.push_str("\\\\"),
                        '\n' => want.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            want.push_str(&format!("\\u{:04x}", c as u32));
                        }
                        c => want.push(c),
                    }
                }
                want.push('"');
                assert_eq!(got, want, "special {special:?} at {pos}");
            }
        }
    }

    #[test]
    fn swar_never_misses_a_byte_that_needs_escaping() {
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut w = [b'a'; 8];
                w[pos] = b;
                let needs = ESCAPE[b as usize] != 0;
                if needs {
                    assert!(word_may_need_escape(u64::from_le_bytes(w)), "{b:#x}@{pos}");
                }
            }
        }
        assert!(!word_may_need_escape(u64::from_le_bytes(*b"abcdefgh")));
        assert!(!word_may_need_escape(u64::from_le_bytes([
            0xc3, 0xa9, 0xff, 0x80, 0x7f, b' ', b'~', b'!'
        ])));
    }

    #[test]
    fn ascii_fast_path_never_skips_a_byte_that_needs_escaping() {
        for b in 0u8..=255 {
            let needs = !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\';
            for len in [1, 7, 8, 9, 16, 17] {
                for pos in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = b;
                    assert_eq!(clean_for_ascii(&bytes), !needs, "{b:#x} at {pos} of {len}");
                }
            }
        }
        // And through a real string, next to multi-byte characters.
        assert_eq!(python("abcdefgh\u{7f}ijkl"), r#""abcdefgh\u007fijkl""#);
        assert_eq!(python("abcdefghé"), r#""abcdefgh\u00e9""#);
    }

    #[test]
    fn python_style_matches_json_dumps() {
        // Expected values produced by CPython 3.11 `json.dumps(s)`.
        assert_eq!(python("héllo ✓"), r#""h\u00e9llo \u2713""#);
        assert_eq!(python("😀"), r#""\ud83d\ude00""#);
        assert_eq!(python("a\"b\\c/"), r#""a\"b\\c/""#);
        assert_eq!(
            python("\n\r\t\u{8}\u{c}\u{0}\u{7f}"),
            r#""\n\r\t\b\f\u0000\u007f""#
        );
    }

    #[test]
    fn object_writer_styles() {
        let mut out = String::new();
        let mut o = ObjectWriter::new(&mut out, JsonStyle::Python);
        o.str("__topic__", "t");
        o.raw("n", "[1, 2]");
        o.key_parts("__tag__:", "é").push_str("\"v\"");
        o.finish();
        assert_eq!(
            out,
            r#"{"__topic__": "t", "n": [1, 2], "__tag__:\u00e9": "v"}"#
        );

        let mut out = String::new();
        ObjectWriter::new(&mut out, JsonStyle::Compact).finish();
        assert_eq!(out, "{}");
    }
}
